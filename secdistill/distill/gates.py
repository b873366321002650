"""Release gates: a candidate is published only if every enabled gate passes."""

from __future__ import annotations

from typing import Any

from secdistill.distill.config import GateSettings


def check_gates(metrics: dict[str, Any], cfg: GateSettings,
                stable: dict[str, float] | None) -> dict[str, Any]:
    """Evaluate every gate; return {name: {passed, value, bound}} plus an overall ``passed``.

    ``metrics`` is the eval report (student, baselines, calibration, int8_vs_fp32); ``stable``
    holds the current stable model's per-head accuracy on this run's validation split.
    """
    results: dict[str, Any] = {}
    agree = metrics["int8_vs_fp32"]
    worst = min(agree.values())
    results["int8_fp32_agreement"] = {"passed": worst >= cfg.min_int8_agreement,
                                      "value": worst, "bound": cfg.min_int8_agreement}
    ece_after = {h: c["ece_after"] for h, c in metrics["calibration"].items()}
    worst_head = max(ece_after, key=ece_after.__getitem__)
    results["ece_after_calibration"] = {"passed": ece_after[worst_head] <= cfg.max_ece,
                                        "value": ece_after[worst_head], "head": worst_head,
                                        "bound": cfg.max_ece}
    if cfg.beat_baseline:
        student = metrics["student"]["cvss_mean_accuracy"]
        base = metrics["baselines"]["tfidf"]["cvss_mean_accuracy"]
        results["beats_tfidf"] = {"passed": student > base + cfg.baseline_margin,
                                  "value": student, "bound": base + cfg.baseline_margin}
    if stable:
        heads = metrics["student"]["heads"]
        drops = {h: stable[h] - heads[h]["accuracy"] for h in stable
                 if h in heads and heads[h]["accuracy"] is not None}
        worst_drop = max(drops, key=drops.__getitem__) if drops else None
        value = drops[worst_drop] if worst_drop else 0.0
        results["no_regression_vs_stable"] = {"passed": value <= cfg.max_regression, "value": value,
                                              "head": worst_drop, "bound": cfg.max_regression}
    else:
        results["no_regression_vs_stable"] = {"passed": True, "value": None,
                                              "note": "no comparable stable model"}
    failed = [f"{name}: {r.get('value')} vs bound {r.get('bound')}" for name, r in results.items()
              if not r["passed"]]
    return {"enabled": cfg.enabled, "passed": not failed or not cfg.enabled,
            "failed": failed, "checks": results}
