"""KD loss masking and limits, length batching, temperature fitting, ECE, thresholds, gates."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from secdistill.distill.calibration import ece, fit_temperature, softmax, thresholds_for_keep  # noqa: E402
from secdistill.distill.config import GateSettings  # noqa: E402
from secdistill.distill.gates import check_gates  # noqa: E402
from secdistill.distill.train import kd_loss, length_batches  # noqa: E402
from secdistill.schemas.task import load_task  # noqa: E402

TASK = load_task()


def _batch(n: int = 8, seed: int = 0) -> tuple:
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(n, TASK.num_logits, generator=g, requires_grad=True)
    hard = torch.stack([torch.randint(0, len(h.classes), (n,), generator=g) for h in TASK.heads], 1)
    targets = torch.zeros(n, TASK.num_logits)
    for j, (lo, _hi) in enumerate(TASK.slices().values()):
        targets[torch.arange(n), lo + hard[:, j]] = 1.0
    return logits, targets, hard


def test_masked_head_gets_no_gradient() -> None:
    logits, targets, hard = _batch()
    hard[:, -1] = -1  # cwe_class unlabelled everywhere
    kd_loss(logits, targets, hard, TASK, alpha=0.5, temperature=2.0).backward()
    lo, hi = TASK.slices()["cwe_class"]
    assert torch.all(logits.grad[:, lo:hi] == 0)
    assert torch.any(logits.grad[:, :lo] != 0)


def test_alpha_zero_is_weighted_cross_entropy() -> None:
    logits, targets, hard = _batch()
    loss = kd_loss(logits, targets, hard, TASK, alpha=0.0, temperature=3.0)
    ce = [torch.nn.functional.cross_entropy(logits[:, lo:hi], hard[:, j])
          for j, (lo, hi) in enumerate(TASK.slices().values())]
    assert torch.isclose(loss, torch.stack(ce).mean(), atol=1e-5)


def test_kl_term_vanishes_when_student_matches_teacher() -> None:
    logits, _, hard = _batch()
    teacher = torch.cat([torch.softmax(logits[:, lo:hi].detach(), -1) for lo, hi in TASK.slices().values()], 1)
    assert float(kd_loss(logits.detach(), teacher, hard, TASK, alpha=1.0, temperature=1.0)) == pytest.approx(0, abs=1e-5)


def test_length_batches_cover_everything_once_and_group_lengths() -> None:
    rng = np.random.default_rng(0)
    lengths = rng.integers(5, 128, 1000)
    batches = length_batches(lengths, 32, 8, np.random.default_rng(1))
    flat = np.concatenate(batches)
    assert sorted(flat.tolist()) == list(range(1000))
    spread = np.mean([np.ptp(lengths[b]) for b in batches])
    assert spread < 0.5 * np.mean([np.ptp(lengths[rng.permutation(1000)[:32]]) for _ in range(20)])


def test_temperature_recovers_overconfidence_and_lowers_ece() -> None:
    rng = np.random.default_rng(0)
    true_logits = rng.normal(size=(4000, 3)) * 2
    labels = np.array([rng.choice(3, p=p) for p in softmax(true_logits)])
    t = fit_temperature(true_logits * 3.0, labels)  # a model 3x too confident
    assert t == pytest.approx(3.0, rel=0.15)
    assert ece(softmax(true_logits * 3.0 / t), labels) < ece(softmax(true_logits * 3.0), labels) / 2


def test_thresholds_keep_the_target_share() -> None:
    rng = np.random.default_rng(0)
    probs = {h: softmax(rng.normal(size=(2000, 3)) * 2) for h in ("a", "b", "c")}
    thr = thresholds_for_keep(probs, ["a", "b", "c"], 0.8)
    kept = np.ones(2000, bool)
    for h in probs:
        kept &= probs[h].max(1) >= thr[h]
    assert kept.mean() == pytest.approx(0.8, abs=0.01)


def _metrics(agree: float, ece_after: float, student: float, tfidf: float) -> dict:
    return {"int8_vs_fp32": {"AV": 1.0, "cwe_class": agree},
            "calibration": {"AV": {"ece_after": 0.01}, "cwe_class": {"ece_after": ece_after}},
            "student": {"cvss_mean_accuracy": student, "heads": {"AV": {"accuracy": student}}},
            "baselines": {"tfidf": {"cvss_mean_accuracy": tfidf}}}


def test_gates_pass_and_refuse() -> None:
    cfg = GateSettings()
    assert check_gates(_metrics(1.0, 0.01, 0.9, 0.85), cfg, None)["passed"]
    for bad in (_metrics(0.95, 0.01, 0.9, 0.85), _metrics(1.0, 0.2, 0.9, 0.85), _metrics(1.0, 0.01, 0.8, 0.85)):
        assert not check_gates(bad, cfg, None)["passed"]
    regressed = check_gates(_metrics(1.0, 0.01, 0.9, 0.85), cfg, {"AV": 0.95})
    assert not regressed["passed"] and "no_regression_vs_stable" in regressed["failed"][0]
    assert check_gates(_metrics(0.5, 0.5, 0.1, 0.9), GateSettings(enabled=False), None)["passed"]


def test_logit_adjustment_applies_to_the_named_heads_only() -> None:
    from secdistill.distill.config import DataSettings
    from secdistill.distill.dataset import build_dataset
    from secdistill.distill.errors import SettingsError
    from secdistill.distill.examples import corpus_examples
    from secdistill.distill.train import _prior_shift

    split = build_dataset(corpus_examples(TASK), TASK, DataSettings(max_train=300, max_val=16)).train
    every = _prior_shift(split, TASK, 0.5).numpy()
    only = _prior_shift(split, TASK, 0.5, ["cwe_class"]).numpy()
    lo, hi = TASK.slices()["cwe_class"]
    assert np.allclose(only[lo:hi], every[lo:hi]) and (only[lo:hi] < 0).all()  # tau * log(prior)
    assert not only[:lo].any() and not only[hi:].any()
    assert every[:lo].any()
    assert _prior_shift(split, TASK, 0.0, ["cwe_class"]) is None
    with pytest.raises(SettingsError, match="unknown heads"):
        _prior_shift(split, TASK, 0.5, ["severity"])
