"""DeferralPolicy: per-head thresholds (model over task), threshold_scale, deterministic shadow sample."""

from __future__ import annotations

from importlib import resources

import pytest
import yaml

from secdistill.schemas.records import Prediction
from secdistill.schemas.task import TaskSpec, load_task
from secdistill.workers.deferral import DeferralPolicy

TASK = load_task()
CONFIDENT = {h.name: 0.99 for h in TASK.heads}


def _pred(fid: str = "f", **conf: float) -> Prediction:
    return Prediction(finding_id=fid, labels={}, probs={}, confidence={**CONFIDENT, **conf},
                      model_version="v")


def test_thresholds_come_from_the_task() -> None:
    policy = DeferralPolicy(TASK)
    assert policy.thresholds == {h.name: h.threshold for h in TASK.heads}
    assert policy.shadow_rate == TASK.shadow_rate


def test_below_threshold_head_is_deferred_with_reasons() -> None:
    policy = DeferralPolicy(TASK, shadow_rate=0.0)
    av = TASK.head_map()["AV"].threshold
    out = policy.apply(_pred(AV=av - 0.01, cwe_class=0.2))
    assert out.deferred and not out.shadow
    assert out.deferral_reasons == ["low_confidence:AV", "low_confidence:cwe_class"]
    at = policy.apply(_pred(AV=av))  # exactly at the threshold stands alone
    assert not at.deferred and at.deferral_reasons == []


def test_confident_prediction_is_not_deferred_and_is_a_copy() -> None:
    pred = _pred()
    out = DeferralPolicy(TASK, shadow_rate=0.0).apply(pred)
    assert not out.deferred and not out.shadow and out.deferral_reasons == []
    assert out is not pred


def test_missing_confidence_counts_as_confident() -> None:
    pred = Prediction(finding_id="f", labels={}, probs={}, confidence={"AV": 0.1}, model_version="v")
    assert DeferralPolicy(TASK, shadow_rate=0.0).apply(pred).deferral_reasons == ["low_confidence:AV"]


def test_model_thresholds_override_the_task() -> None:
    policy = DeferralPolicy(TASK, {"AV": 0.3, "not_a_head": 0.99}, shadow_rate=0.0)
    assert policy.thresholds["AV"] == 0.3
    assert "not_a_head" not in policy.thresholds
    assert policy.thresholds["AC"] == TASK.head_map()["AC"].threshold
    assert not policy.apply(_pred(AV=0.5)).deferred  # the task alone (0.8) would defer
    assert DeferralPolicy(TASK, shadow_rate=0.0).apply(_pred(AV=0.5)).deferred


def test_threshold_scale() -> None:
    av = TASK.head_map()["AV"].threshold
    half = DeferralPolicy(TASK, threshold_scale=0.5, shadow_rate=0.0)
    assert half.thresholds["AV"] == pytest.approx(av / 2)
    assert not half.apply(_pred(AV=av * 0.6)).deferred
    capped = DeferralPolicy(TASK, threshold_scale=10.0, shadow_rate=0.0)
    assert set(capped.thresholds.values()) == {1.0}  # never above certainty
    assert capped.apply(_pred()).deferred
    assert not capped.apply(Prediction(finding_id="f", labels={}, probs={}, model_version="v",
                                       confidence={h.name: 1.0 for h in TASK.heads})).deferred


def test_heads_marked_no_defer_never_defer() -> None:
    text = resources.files("secdistill").joinpath("tasks/advisory-triage.yaml").read_text("utf-8")
    data = yaml.safe_load(text)
    for h in data["heads"]:
        if h["name"] == "cwe_class":
            h["defer"] = False
    task = TaskSpec.model_validate(data)
    policy = DeferralPolicy(task, {"cwe_class": 0.9}, shadow_rate=0.0)
    assert "cwe_class" not in policy.thresholds
    assert not policy.apply(_pred(cwe_class=0.01)).deferred


def test_shadow_rate_is_close_to_configured_and_deterministic() -> None:
    ids = [f"finding-{i}" for i in range(10_000)]
    policy = DeferralPolicy(TASK, shadow_rate=0.1, seed=7)
    shadow = {fid for fid in ids if policy.apply(_pred(fid)).shadow}
    assert abs(len(shadow) / len(ids) - 0.1) < 0.015  # ~5 binomial standard deviations
    again = DeferralPolicy(TASK, shadow_rate=0.1, seed=7)
    assert {fid for fid in ids if again.apply(_pred(fid)).shadow} == shadow
    other_seed = {fid for fid in ids if DeferralPolicy(TASK, shadow_rate=0.1, seed=8).apply(_pred(fid)).shadow}
    assert other_seed != shadow and abs(len(other_seed) - len(shadow)) < 300
    out = policy.apply(_pred(next(iter(shadow))))
    assert out.shadow and not out.deferred and out.deferral_reasons == ["shadow"]


def test_shadow_rate_extremes_and_task_default() -> None:
    ids = [f"f{i}" for i in range(500)]
    assert not any(DeferralPolicy(TASK, shadow_rate=0.0).apply(_pred(i)).shadow for i in ids)
    assert all(DeferralPolicy(TASK, shadow_rate=1.0).apply(_pred(i)).shadow for i in ids)
    assert DeferralPolicy(TASK, shadow_rate=None).shadow_rate == TASK.shadow_rate


def test_deferred_items_are_never_shadow() -> None:
    policy = DeferralPolicy(TASK, shadow_rate=1.0)
    for i in range(200):
        out = policy.apply(_pred(f"f{i}", AV=0.1))
        assert out.deferred and not out.shadow and "shadow" not in out.deferral_reasons


def test_apply_is_idempotent_on_its_output() -> None:
    policy = DeferralPolicy(TASK, shadow_rate=0.5)
    for i in range(50):
        once = policy.apply(_pred(f"f{i}", AV=0.99 if i % 2 else 0.1))
        assert policy.apply(once) == once
