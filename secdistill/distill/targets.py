"""Soft training targets per head: the teacher's distribution where one exists, else the smoothed
hard label, optionally mixed with out-of-fold TF-IDF probabilities for the curated corpus."""

from __future__ import annotations

import numpy as np

from secdistill.distill.dataset import Split
from secdistill.schemas.task import TaskSpec


def soft_targets(split: Split, task: TaskSpec, smoothing: float, oof: np.ndarray | None = None,
                 oof_weight: float = 0.0) -> np.ndarray:
    """(n, logits) targets; rows of unlabelled heads stay zero (the loss masks them)."""
    out = split.teacher.copy()
    for j, (lo, hi) in enumerate(task.slices().values()):
        k = hi - lo
        rows = np.where((split.hard[:, j] >= 0) & ~split.has_teacher[:, j])[0]
        if not len(rows):
            continue
        smooth = np.full((len(rows), k), smoothing / k, dtype=np.float32)
        smooth[np.arange(len(rows)), split.hard[rows, j]] += 1.0 - smoothing
        if oof is not None and oof_weight > 0:
            smooth = (1 - oof_weight) * smooth + oof_weight * oof[rows, lo:hi]
        out[rows, lo:hi] = smooth
    return out
