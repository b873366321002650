"""The alert rules and the Grafana dashboard: valid PromQL, known metrics, a runbook per alert."""

from __future__ import annotations

import json
import re

import pytest
import yaml
from manifests import K8S, ROOT

# What the application exports (Prometheus client; histograms add _bucket/_sum/_count). Keep in
# step with the workers' metrics module: a renamed metric silently empties a panel or an alert.
EXPORTED = {
    "secdistill_findings_in_total",
    "secdistill_findings_out_total",
    "secdistill_dead_letters_total",
    "secdistill_batch_size",
    "secdistill_batch_seconds",
    "secdistill_inference_seconds",
    "secdistill_deferred_total",
    "secdistill_deferrals_total",
    "secdistill_cache_hits_total",
    "secdistill_cache_misses_total",
    "secdistill_model_info",
    "secdistill_model_reloads_total",
    "secdistill_shadow_agreement",
    "secdistill_teacher_calls_total",
    "secdistill_teacher_seconds",
    "secdistill_teacher_cost_usd_total",
    "secdistill_teacher_budget_remaining_usd",
    "secdistill_last_progress_timestamp_seconds",
    "secdistill_consumer_lag",
    "secdistill_labelled_total",
    "secdistill_shadow_samples_total",
}
HISTOGRAMS = {
    "secdistill_batch_size",
    "secdistill_batch_seconds",
    "secdistill_inference_seconds",
    "secdistill_teacher_seconds",
}
# Grafana variables are not PromQL; substitute plausible values before parsing.
GRAFANA_VARS = {"$__rate_interval": "5m", "$__range": "6h", "$namespace": "secdistill"}

RULES = yaml.safe_load((K8S / "components/monitoring/prometheusrule.yaml").read_text())
DASHBOARD = json.loads((K8S / "components/monitoring/dashboards/secdistill.json").read_text())
DOCS = (ROOT / "docs/operations.md").read_text()


def _rules() -> list[dict[str, object]]:
    return [r for g in RULES["spec"]["groups"] for r in g["rules"]]


def _recorded() -> set[str]:
    return {str(r["record"]) for r in _rules() if "record" in r}


def _dashboard_exprs() -> list[str]:
    exprs = []
    for p in DASHBOARD["panels"]:
        for t in p.get("targets", []):
            expr = t["expr"]
            for var, value in GRAFANA_VARS.items():
                expr = expr.replace(var, value)
            exprs.append(expr)
    return exprs


def _metric_names(expr: str) -> set[str]:
    return set(re.findall(r"\b(secdistill(?:_[a-z0-9]+)+|secdistill:[a-z0-9_:]+)\b", expr))


def _check_known(expr: str) -> None:
    for name in _metric_names(expr):
        if ":" in name:
            assert name in _recorded(), f"unknown recording rule {name}"
            continue
        base = re.sub(r"_(bucket|sum|count)$", "", name)
        if base != name:
            assert base in HISTOGRAMS, f"{name}: {base} is not a histogram"
        assert base in EXPORTED, f"unknown metric {name} in: {expr}"


def test_the_app_exports_nothing_unlisted() -> None:
    """A metric added to the fleet must be added here, and so to the dashboard (next test)."""
    from prometheus_client import CollectorRegistry

    from secdistill.workers.metrics import FleetMetrics

    registry = CollectorRegistry()
    FleetMetrics(registry)
    names = set()
    for family in registry.collect():
        names.add(family.name + ("_total" if family.type == "counter" else ""))
    assert names <= EXPORTED, f"not on the dashboard or in EXPORTED: {sorted(names - EXPORTED)}"


def test_every_expression_is_valid_promql() -> None:
    promql_parser = pytest.importorskip(
        "promql_parser", reason="pip install promql-parser (.ci/lint.sh installs it)"
    )
    for expr in [str(r["expr"]) for r in _rules()] + _dashboard_exprs():
        try:
            promql_parser.parse(expr)
        except ValueError as e:
            pytest.fail(f"{e}: {expr}")


def test_expressions_use_exported_metrics_only() -> None:
    for expr in [str(r["expr"]) for r in _rules()] + _dashboard_exprs():
        _check_known(expr)


def test_every_alert_has_severity_summary_and_a_runbook() -> None:
    headings = {
        re.sub(r"[^a-z0-9 -]", "", h.strip().lower()).replace(" ", "-")
        for h in re.findall(r"^#+\s+(.+)$", DOCS, re.M)
    }
    alerts = [r for r in _rules() if "alert" in r]
    assert len(alerts) >= 4
    for r in alerts:
        labels, ann = r["labels"], r["annotations"]
        assert isinstance(labels, dict) and isinstance(ann, dict)
        assert labels["severity"] in {"info", "warning", "critical"}, r["alert"]
        assert ann.get("summary") and ann.get("description"), r["alert"]
        page, _, anchor = str(ann["runbook_url"]).partition("#")
        assert page == "docs/operations.md" and anchor in headings, (r["alert"], anchor)


def test_the_required_alerts_exist() -> None:
    """Issue 5: dead-letter ratio, deferral spike, teacher budget, no progress."""
    names = {r["alert"] for r in _rules() if "alert" in r}
    for required in (
        "SecdistillDeadLetterRatioHigh",
        "SecdistillDeferralSpike",
        "SecdistillTeacherBudgetExhausted",
        "SecdistillNoProgress",
    ):
        assert required in names


def test_dashboard_shape() -> None:
    panels = DASHBOARD["panels"]
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    assert DASHBOARD["uid"] and DASHBOARD["title"]
    variables = {v["name"] for v in DASHBOARD["templating"]["list"]}
    assert {"datasource", "namespace"} <= variables
    for p in panels:
        if p["type"] == "row":
            continue
        assert p["targets"], p["title"]
        assert p["datasource"]["uid"] == "${datasource}", p["title"]
        g = p["gridPos"]
        assert 0 <= g["x"] and g["x"] + g["w"] <= 24, p["title"]
        for t in p["targets"]:
            assert 'namespace="$namespace"' in t["expr"], f"{p['title']}: not scoped to $namespace"


def test_dashboard_covers_the_issue_metrics() -> None:
    """Issue 5 §3: every exported metric appears on the dashboard."""
    used: set[str] = set()
    for expr in _dashboard_exprs():
        used |= {re.sub(r"_(bucket|sum|count)$", "", n) for n in _metric_names(expr)}
    for expr in (str(r["expr"]) for r in _rules() if "record" in r):
        if any(str(r["record"]) in e for r in _rules() if "record" in r for e in _dashboard_exprs()):
            used |= _metric_names(expr)
    missing = EXPORTED - used
    assert not missing, f"not on the dashboard: {sorted(missing)}"
