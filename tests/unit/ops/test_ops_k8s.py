"""Invariants of every rendered overlay: pod security, probes, resources, scaling bounds, wiring."""

from __future__ import annotations

import json
import re
from pathlib import Path

import jsonschema
import pytest
from manifests import (
    K8S,
    OVERLAYS,
    ROOT,
    Doc,
    by_kind,
    config_env,
    find,
    pod_specs,
    selects,
)

# Secrets that production creates out of band (docs/operations.md, "Secrets"); every other
# reference must resolve inside the rendered overlay.
OUT_OF_BAND_SECRETS = {"secdistill-kafka", "secdistill-teacher"}
CONSUMER_GROUPS = {"secdistill-worker": "secdistill-worker", "secdistill-teacher": "secdistill-teacher"}
CRD_SCHEMAS = {
    ("keda.sh/v1alpha1", "ScaledObject"): "keda.sh/scaledobject_v1alpha1.json",
    ("keda.sh/v1alpha1", "TriggerAuthentication"): "keda.sh/triggerauthentication_v1alpha1.json",
    ("monitoring.coreos.com/v1", "ServiceMonitor"): "monitoring.coreos.com/servicemonitor_v1.json",
    ("monitoring.coreos.com/v1", "PrometheusRule"): "monitoring.coreos.com/prometheusrule_v1.json",
}
CORE_GROUPS = {"v1", "apps/v1", "batch/v1", "policy/v1", "networking.k8s.io/v1", "autoscaling/v2"}


def test_every_overlay_is_checked(rendered: dict[str, list[Doc]]) -> None:
    assert {"dev", "prod"} <= set(rendered), OVERLAYS
    for name, docs in rendered.items():
        assert docs, name


def test_every_resource_is_core_or_has_a_schema(rendered: dict[str, list[Doc]]) -> None:
    """kubernetes-validate covers core kinds; anything else needs a schema in k8s/schemas."""
    for name, docs in rendered.items():
        for d in docs:
            if d["apiVersion"] in CORE_GROUPS:
                continue
            assert (d["apiVersion"], d["kind"]) in CRD_SCHEMAS, f"{name}: no schema for {d['kind']}"


def test_custom_resources_match_their_schemas(rendered: dict[str, list[Doc]]) -> None:
    schemas = {key: json.loads((K8S / "schemas" / rel).read_text()) for key, rel in CRD_SCHEMAS.items()}
    for name, docs in rendered.items():
        for d in docs:
            schema = schemas.get((d["apiVersion"], d["kind"]))
            if schema is not None:
                try:
                    jsonschema.validate(d, schema)
                except jsonschema.ValidationError as e:
                    path = "/".join(str(p) for p in e.absolute_path)
                    pytest.fail(f"{name} {d['kind']}/{d['metadata']['name']} at {path}: {e.message}")


def test_schemas_reject_a_typo() -> None:
    """The CRD schemas are strict enough to catch a misspelt field."""
    schema = json.loads((K8S / "schemas/keda.sh/scaledobject_v1alpha1.json").read_text())
    bad = {
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "ScaledObject",
        "metadata": {"name": "x"},
        "spec": {
            "scaleTargetRef": {"name": "x"},
            "maxReplicaCounts": 3,
            "triggers": [{"type": "kafka", "metadata": {}}],
        },
    }
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, schema)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_pod_security_and_resources(rendered: dict[str, list[Doc]], overlay: str) -> None:
    for pod in pod_specs(rendered[overlay]):
        where = f"{overlay} {pod.kind}/{pod.name}"
        spec = pod.spec
        assert spec.get("automountServiceAccountToken") is False, where
        psc = spec.get("securityContext", {})
        assert psc.get("runAsNonRoot") is True, where
        assert psc.get("runAsUser") == 1000, where
        assert psc.get("seccompProfile", {}).get("type") == "RuntimeDefault", where
        assert spec.get("hostNetwork") is not True and spec.get("hostPID") is not True, where
        for c in spec.get("initContainers", []) + spec["containers"]:
            cw = f"{where} container {c['name']}"
            sc = c.get("securityContext", {})
            assert sc.get("runAsNonRoot", psc.get("runAsNonRoot")) is True, cw
            assert sc.get("readOnlyRootFilesystem") is True, cw
            assert sc.get("allowPrivilegeEscalation") is False, cw
            assert sc.get("privileged", False) is False, cw
            assert "ALL" in sc.get("capabilities", {}).get("drop", []), cw
            assert not sc.get("capabilities", {}).get("add"), cw
            seccomp = sc.get("seccompProfile", psc.get("seccompProfile", {}))
            assert seccomp.get("type") == "RuntimeDefault", cw
            res = c.get("resources", {})
            for kind in ("requests", "limits"):
                for r in ("cpu", "memory"):
                    assert r in res.get(kind, {}), f"{cw}: no {kind}.{r}"
            if not pod.is_batch:
                # Batch jobs serve nothing; activeDeadlineSeconds bounds a hung run instead.
                assert "livenessProbe" in c and "readinessProbe" in c, f"{cw}: probes"
            assert c["image"].count(":") >= 1 and not c["image"].endswith(":latest"), cw
            assert "/" in c["image"], f"{cw}: image name was not mapped by the overlay"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_writable_paths_are_empty_dirs(rendered: dict[str, list[Doc]], overlay: str) -> None:
    """Read-only root: /tmp and the Faust data dir must be emptyDir mounts."""
    env = config_env(rendered[overlay])
    datadir = env["SECDISTILL_WORKER__DATADIR"]
    for pod in pod_specs(rendered[overlay]):
        empty = {v["name"] for v in pod.spec.get("volumes", []) if "emptyDir" in v}
        for c in pod.spec["containers"]:
            mounts = {m["mountPath"]: m["name"] for m in c.get("volumeMounts", [])}
            where = f"{overlay} {pod.name}/{c['name']}"
            assert mounts.get("/tmp") in empty, f"{where}: /tmp"
            assert any(
                datadir == p or datadir.startswith(p.rstrip("/") + "/")
                for p, v in mounts.items()
                if v in empty
            ), f"{where}: {datadir} is not on an emptyDir"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_registry_volume_is_read_only_except_for_distill(
    rendered: dict[str, list[Doc]], overlay: str
) -> None:
    docs = rendered[overlay]
    pvcs = {d["metadata"]["name"] for d in by_kind(docs, "PersistentVolumeClaim")}
    uri = config_env(docs)["SECDISTILL_REGISTRY__URI"]
    for pod in pod_specs(docs):
        claims = {
            v["name"]: v["persistentVolumeClaim"]
            for v in pod.spec.get("volumes", [])
            if "persistentVolumeClaim" in v
        }
        for claim in claims.values():
            assert claim["claimName"] in pvcs, f"{overlay} {pod.name}: missing PVC"
        for c in pod.spec["containers"]:
            m = next(m for m in c["volumeMounts"] if m["mountPath"] == uri)
            writer = pod.kind == "CronJob"
            assert m.get("readOnly", False) is (not writer), f"{overlay} {pod.name}"
            assert claims[m["name"]].get("readOnly", False) is (not writer), f"{overlay} {pod.name}"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_graceful_termination_covers_a_batch(rendered: dict[str, list[Doc]], overlay: str) -> None:
    env = config_env(rendered[overlay])
    # The batch window, a worst-case batch (< 2 s int8 on one core, x5 margin), commit and flush.
    needed = float(env["SECDISTILL_BATCH__MAX_WAIT_S"]) + 10 + 15
    for name in ("secdistill-worker", "secdistill-teacher"):
        dep = find(rendered[overlay], "Deployment", name)
        grace = dep["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
        assert grace >= needed, f"{overlay} {name}: {grace} s < {needed} s"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_replicas_never_exceed_partitions(rendered: dict[str, list[Doc]], overlay: str) -> None:
    docs = rendered[overlay]
    partitions = int(config_env(docs)["SECDISTILL_TOPICS__PARTITIONS"])
    scaled: dict[str, str] = {}
    for so in by_kind(docs, "ScaledObject"):
        target = so["spec"]["scaleTargetRef"]["name"]
        assert target not in scaled, f"{overlay}: two autoscalers on {target}"
        scaled[target] = "keda"
        lo, hi = so["spec"].get("minReplicaCount", 0), so["spec"]["maxReplicaCount"]
        assert lo <= hi <= partitions, f"{overlay} ScaledObject/{target}: {lo}..{hi} > {partitions}"
    for hpa in by_kind(docs, "HorizontalPodAutoscaler"):
        target = hpa["spec"]["scaleTargetRef"]["name"]
        assert target not in scaled, f"{overlay}: two autoscalers on {target}"
        scaled[target] = "hpa"
        lo, hi = hpa["spec"].get("minReplicas", 1), hpa["spec"]["maxReplicas"]
        assert lo <= hi <= partitions, f"{overlay} HPA/{target}: {lo}..{hi} > {partitions}"
    for dep in by_kind(docs, "Deployment"):
        name = dep["metadata"]["name"]
        if name in scaled:
            # The autoscaler owns the count; a replicas field would reset it on every apply.
            assert "replicas" not in dep["spec"], f"{overlay} {name}"
        else:
            assert dep["spec"].get("replicas", 1) <= partitions, f"{overlay} {name}"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_kafka_triggers(rendered: dict[str, list[Doc]], overlay: str) -> None:
    """Lag scaling on the right group, from the consumers' own settings, poison-safe."""
    docs = rendered[overlay]
    env = config_env(docs)
    for so in by_kind(docs, "ScaledObject"):
        target = so["spec"]["scaleTargetRef"]["name"]
        kafka = [t for t in so["spec"]["triggers"] if t["type"] == "kafka"]
        assert kafka, f"{overlay} {target}: no lag trigger"
        for t in kafka:
            md = t["metadata"]
            assert md["consumerGroup"] == CONSUMER_GROUPS[target]
            for key in ("bootstrapServersFromEnv", "topicFromEnv"):
                assert md[key] in env, f"{overlay} {target}: {md[key]} not in secdistill-config"
            assert md["allowIdleConsumers"] == "false"
            assert md["excludePersistentLag"] == "true"
            assert int(md["lagThreshold"]) > 0
            if "authenticationRef" in t:
                find(docs, "TriggerAuthentication", t["authenticationRef"]["name"])


def test_worker_input_topic_is_the_scaled_one(rendered: dict[str, list[Doc]]) -> None:
    docs = rendered["prod"]
    so = find(docs, "ScaledObject", "secdistill-worker")
    assert so["spec"]["triggers"][0]["metadata"]["topicFromEnv"] == "SECDISTILL_TOPICS__INPUT"
    assert config_env(docs)["SECDISTILL_TOPICS__INPUT"] == "findings.raw.v1"


def test_teacher_scaling_is_bounded_by_budget(rendered: dict[str, list[Doc]]) -> None:
    for name, docs in rendered.items():
        for so in by_kind(docs, "ScaledObject"):
            if so["spec"]["scaleTargetRef"]["name"] != "secdistill-teacher":
                continue
            spec = so["spec"]
            assert spec["maxReplicaCount"] <= 5, f"{name}: teacher max replicas multiply the spend"
            formula = spec["advanced"]["scalingModifiers"]["formula"]
            names = {t["name"] for t in spec["triggers"]}
            assert {"lag", "budget"} <= names and all(n in formula for n in names), formula
            budget = next(t for t in spec["triggers"] if t["name"] == "budget")
            assert "secdistill_teacher_budget_remaining_usd" in budget["metadata"]["query"]
            assert spec["fallback"]["replicas"] <= spec.get("minReplicaCount", 1) + 1


def test_namespace_literals_match_the_rendered_namespace(rendered: dict[str, list[Doc]]) -> None:
    """PromQL in ScaledObjects and rules names a namespace; it must be the one deployed to."""
    pattern = re.compile(r'namespace="([^"]+)"')
    for name, docs in rendered.items():
        for d in docs:
            if d["kind"] not in {"ScaledObject", "PrometheusRule"}:
                continue
            ns = d["metadata"].get("namespace")
            for found in pattern.findall(json.dumps(d)):
                assert found == ns, f"{name} {d['kind']}/{d['metadata']['name']}: {found} != {ns}"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_references_resolve(rendered: dict[str, list[Doc]], overlay: str) -> None:
    docs = rendered[overlay]
    names = {(d["kind"], d["metadata"]["name"]) for d in docs}
    for pod in pod_specs(docs):
        assert ("ServiceAccount", pod.spec["serviceAccountName"]) in names
        for v in pod.spec.get("volumes", []):
            if "configMap" in v:
                assert ("ConfigMap", v["configMap"]["name"]) in names, v
        for c in pod.spec["containers"]:
            for src in c.get("envFrom", []):
                if "configMapRef" in src:
                    assert ("ConfigMap", src["configMapRef"]["name"]) in names, src
                if "secretRef" in src:
                    ref = src["secretRef"]["name"]
                    assert ("Secret", ref) in names or ref in OUT_OF_BAND_SECRETS, ref
    for so in by_kind(docs, "ScaledObject") + by_kind(docs, "HorizontalPodAutoscaler"):
        assert ("Deployment", so["spec"]["scaleTargetRef"]["name"]) in names


def test_dev_overlay_is_self_contained(rendered: dict[str, list[Doc]]) -> None:
    """dev brings its own placeholder secrets: `kubectl apply -k` works on an empty cluster."""
    names = {(d["kind"], d["metadata"]["name"].rsplit("-", 1)[0]) for d in rendered["dev"]}
    for secret in OUT_OF_BAND_SECRETS:
        assert ("Secret", secret) in names


def test_prod_overlays_commit_no_secrets(rendered: dict[str, list[Doc]]) -> None:
    for name, docs in rendered.items():
        if name.startswith("prod"):
            assert not by_kind(docs, "Secret"), name


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_selectors_match_workloads(rendered: dict[str, list[Doc]], overlay: str) -> None:
    docs = rendered[overlay]
    pods = {p.name: p for p in pod_specs(docs)}
    for kind in ("Service", "PodDisruptionBudget"):
        for d in by_kind(docs, kind):
            sel = d["spec"]["selector"]
            sel = sel if kind == "PodDisruptionBudget" else {"matchLabels": sel}
            matched = [p for p in pods.values() if selects(sel, p.labels)]
            assert matched, f"{overlay} {kind}/{d['metadata']['name']} selects no pod"
    for svc in by_kind(docs, "Service"):
        pod = next(p for p in pods.values() if selects({"matchLabels": svc["spec"]["selector"]}, p.labels))
        ports = {p["name"] for c in pod.spec["containers"] for p in c.get("ports", [])}
        for port in svc["spec"]["ports"]:
            assert port["targetPort"] in ports, f"{overlay} {svc['metadata']['name']}"
    for sm in by_kind(docs, "ServiceMonitor"):
        svcs = [
            s for s in by_kind(docs, "Service") if selects(sm["spec"]["selector"], s["metadata"]["labels"])
        ]
        assert {s["metadata"]["name"] for s in svcs} == {"secdistill-worker", "secdistill-teacher"}
        for ep in sm["spec"]["endpoints"]:
            assert all(ep["port"] in {p["name"] for p in s["spec"]["ports"]} for s in svcs)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_default_deny_network_policy(rendered: dict[str, list[Doc]], overlay: str) -> None:
    docs = rendered[overlay]
    deny = [
        n
        for n in by_kind(docs, "NetworkPolicy")
        if set(n["spec"]["policyTypes"]) == {"Ingress", "Egress"}
        and not n["spec"].get("ingress")
        and not n["spec"].get("egress")
    ]
    assert deny, overlay
    for pod in pod_specs(docs):
        assert any(selects(n["spec"]["podSelector"], pod.labels) for n in deny), pod.name


def test_gpu_overlay_puts_only_the_worker_on_a_gpu(rendered: dict[str, list[Doc]]) -> None:
    docs = rendered["prod-gpu"]
    for pod in pod_specs(docs):
        for c in pod.spec["containers"]:
            gpus = c["resources"].get("limits", {}).get("nvidia.com/gpu")
            if pod.name == "secdistill-worker":
                assert gpus == "1" and "worker-gpu" in c["image"]
                assert pod.spec["tolerations"] and pod.spec["nodeSelector"]
            else:
                assert gpus is None and "gpu" not in c["image"], pod.name


def test_task_spec_copy_matches_the_package() -> None:
    """k8s/base/task/ holds a copy (kustomize cannot read outside k8s/base); keep it identical."""
    packaged = (ROOT / "secdistill/tasks/advisory-triage.yaml").read_bytes()
    copy = (K8S / "base/task/advisory-triage.yaml").read_bytes()
    assert copy == packaged, "cp secdistill/tasks/advisory-triage.yaml k8s/base/task/"


def _settings_fields() -> dict[str, set[str]]:
    """section -> field names of the settings classes the processes read."""
    from secdistill.workers.config import WorkerSettings

    sections: dict[str, set[str]] = {}
    for name, field in WorkerSettings.model_fields.items():
        sub = getattr(field.annotation, "model_fields", {})
        sections[name] = set(sub)
        for sub_name, sub_field in sub.items():
            nested = getattr(sub_field.annotation, "model_fields", None)
            if nested:
                sections[f"{name}__{sub_name}"] = set(nested)
    try:  # DistillSettings, once it exists, adds its own sections.
        from secdistill.distill.config import DistillSettings  # type: ignore[attr-defined]
    except ImportError:
        return sections
    for name, field in DistillSettings.model_fields.items():
        sections.setdefault(name, set()).update(getattr(field.annotation, "model_fields", {}))
    return sections


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_config_keys_are_real_settings(rendered: dict[str, list[Doc]], overlay: str) -> None:
    """A misspelt SECDISTILL_* key would be silently ignored by pydantic-settings."""
    sections = _settings_fields()
    env = dict(config_env(rendered[overlay]))
    for pod in pod_specs(rendered[overlay]):
        for c in pod.spec["containers"]:
            env.update({e["name"]: "" for e in c.get("env", []) if e["name"].startswith("SECDISTILL_")})
    for key in env:
        if not key.startswith("SECDISTILL_"):
            continue
        section, _, field = key.removeprefix("SECDISTILL_").lower().rpartition("__")
        assert section in sections, f"{overlay}: {key}: no settings section {section!r}"
        assert field in sections[section], f"{overlay}: {key}: no field {field!r} in {section}"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_config_values_parse(
    rendered: dict[str, list[Doc]], overlay: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from secdistill.workers.config import WorkerSettings

    for key, value in config_env(rendered[overlay]).items():
        monkeypatch.setenv(key, value)
    s = WorkerSettings()
    assert s.kafka.session_timeout_s >= 10, "production session timeout"
    assert s.topics.partitions >= 1


def test_kustomize_sources_exist() -> None:
    """Every file a kustomization names exists (kustomize would fail, but say which)."""
    for k in K8S.rglob("kustomization.yaml"):
        text = k.read_text()
        for rel in re.findall(r"^\s*-\s+(?:path:\s+)?([\w./-]+\.(?:ya?ml|env|json))\s*$", text, re.M):
            assert (k.parent / rel).exists(), f"{k.relative_to(ROOT)}: {rel}"
        assert Path(k.parent).is_dir()
