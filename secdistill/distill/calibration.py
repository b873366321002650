"""Per-head temperature scaling, expected calibration error, and deferral thresholds.

Everything here runs on the **int8** model's logits: int8 shifts probabilities by a few hundredths,
so a temperature fitted on fp32 would be fitted to a model the workers never run.
"""

from __future__ import annotations

import numpy as np

from secdistill.schemas.task import TaskSpec


def softmax(z: np.ndarray) -> np.ndarray:
    """Row-wise softmax, numerically stable."""
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def head_probs(logits: np.ndarray, task: TaskSpec, temperatures: dict[str, float] | None = None
               ) -> dict[str, np.ndarray]:
    """Per-head probabilities from concatenated logits, each slice divided by its temperature."""
    temps = temperatures or {}
    return {name: softmax(logits[:, lo:hi] / temps.get(name, 1.0))
            for name, (lo, hi) in task.slices().items()}


def nll(logits: np.ndarray, labels: np.ndarray, temperature: float) -> float:
    """Mean negative log-likelihood of ``labels`` at a temperature."""
    p = softmax(logits / temperature)
    return float(-np.mean(np.log(np.clip(p[np.arange(len(labels)), labels], 1e-12, None))))


def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    """The NLL-minimising temperature: a log grid, then a finer grid around the best point."""
    if len(labels) < 10:
        return 1.0
    grid = np.exp(np.linspace(np.log(0.25), np.log(8.0), 61))
    best = min(grid, key=lambda t: nll(logits, labels, t))
    fine = np.linspace(best / 1.07, best * 1.07, 41)
    return float(min(fine, key=lambda t: nll(logits, labels, t)))


def ece(probs: np.ndarray, labels: np.ndarray, bins: int = 15) -> float:
    """Expected calibration error of the top-1 confidence, equal-width bins."""
    if not len(labels):
        return 0.0
    conf = probs.max(axis=1)
    correct = probs.argmax(axis=1) == labels
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(conf, edges[1:-1]), 0, bins - 1)
    total = 0.0
    for b in range(bins):
        sel = which == b
        if sel.any():
            total += sel.mean() * abs(correct[sel].mean() - conf[sel].mean())
    return float(total)


def reliability(probs: np.ndarray, labels: np.ndarray, bins: int = 10) -> list[dict[str, float]]:
    """Reliability diagram points: per bin, mean confidence, accuracy and count."""
    conf = probs.max(axis=1)
    correct = probs.argmax(axis=1) == labels
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(conf, edges[1:-1]), 0, bins - 1)
    return [{"confidence": float(conf[which == b].mean()), "accuracy": float(correct[which == b].mean()),
             "count": int((which == b).sum())} for b in range(bins) if (which == b).any()]


def keep_mask(probs: dict[str, np.ndarray], thresholds: dict[str, float], heads: list[str]) -> np.ndarray:
    """Findings whose every deferring head is at least as confident as its threshold."""
    n = len(next(iter(probs.values())))
    keep = np.ones(n, dtype=bool)
    for h in heads:
        keep &= probs[h].max(axis=1) >= thresholds[h]
    return keep


def thresholds_for_keep(probs: dict[str, np.ndarray], heads: list[str], target_keep: float
                        ) -> dict[str, float]:
    """Per-head thresholds at one shared confidence quantile, so ``target_keep`` of findings stay.

    Sharing the quantile spreads deferral evenly over heads; bisection finds the quantile at which
    the *finding-level* keep rate (all heads confident) meets the target.
    """
    conf = {h: probs[h].max(axis=1) for h in heads}
    lo, hi = 0.0, 1.0 - target_keep  # quantile q defers at most q of each head
    for _ in range(40):
        mid = (lo + hi) / 2
        thr = {h: float(np.quantile(conf[h], mid)) for h in heads}
        if keep_mask(probs, thr, heads).mean() >= target_keep:
            lo = mid
        else:
            hi = mid
    return {h: float(np.quantile(conf[h], lo)) for h in heads}
