"""The calibration step of a run: temperatures and thresholds from the int8 validation logits.

ECE-after and kept-set precision are *cross-fitted*: fit on one half of the validation split,
measure on the other, and average; the temperatures shipped are then fitted on all of it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from secdistill.distill.calibration import (
    ece,
    fit_temperature,
    head_probs,
    keep_mask,
    reliability,
    thresholds_for_keep,
)
from secdistill.distill.config import CalibrationSettings
from secdistill.distill.dataset import Split
from secdistill.schemas.task import TaskSpec

CASCADE_KEEPS = (1.0, 0.95, 0.9, 0.85, 0.8, 0.7, 0.6, 0.5)


def _fit(logits: np.ndarray, split: Split, task: TaskSpec, rows: np.ndarray) -> dict[str, float]:
    temps = {}
    for j, (name, (lo, hi)) in enumerate(task.slices().items()):
        sel = rows & (split.hard[:, j] >= 0)
        temps[name] = fit_temperature(logits[sel, lo:hi], split.hard[sel, j])
    return temps


def calibrate_int8(logits: np.ndarray, split: Split, task: TaskSpec, cfg: CalibrationSettings
                   ) -> dict[str, Any]:
    """Temperatures, thresholds for the target keep rate, and honest before/after numbers."""
    n = len(split)
    half = np.zeros(n, dtype=bool)
    half[np.random.default_rng(0).permutation(n)[: n // 2]] = True
    defer_heads = [h.name for h in task.heads if h.defer]
    raw = head_probs(logits, task)
    crossed = {h: np.zeros_like(p) for h, p in raw.items()}
    kept_by_row = np.zeros(n, dtype=bool)
    for fit_rows in (half, ~half):
        temps = _fit(logits, split, task, fit_rows)
        probs = head_probs(logits, task, temps)
        thr = thresholds_for_keep({h: p[fit_rows] for h, p in probs.items()}, defer_heads, cfg.target_keep)
        for h in probs:
            crossed[h][~fit_rows] = probs[h][~fit_rows]
        kept_by_row[~fit_rows] = keep_mask({h: p[~fit_rows] for h, p in probs.items()}, thr, defer_heads)
    temperatures = _fit(logits, split, task, np.ones(n, dtype=bool))
    final = head_probs(logits, task, temperatures)
    thresholds = thresholds_for_keep(final, defer_heads, cfg.target_keep)
    per_head = {}
    for j, h in enumerate(task.heads):
        rows = split.hard[:, j] >= 0
        y = split.hard[rows, j]
        kept_rows = rows & (final[h.name].max(axis=1) >= thresholds.get(h.name, 0.0))
        per_head[h.name] = {
            "temperature": temperatures[h.name],
            "ece_before": ece(raw[h.name][rows], y, cfg.bins),
            "ece_after": ece(crossed[h.name][rows], y, cfg.bins),
            "ece_after_in_sample": ece(final[h.name][rows], y, cfg.bins),
            "threshold": thresholds.get(h.name, 0.0),
            "kept": float(kept_rows.sum() / max(rows.sum(), 1)),
            "precision_kept": float(np.mean(final[h.name][kept_rows].argmax(1) == split.hard[kept_rows, j]))
            if kept_rows.any() else None,
            "reliability_before": reliability(raw[h.name][rows], y),
            "reliability_after": reliability(crossed[h.name][rows], y),
        }
    thresholds_at = {k: thresholds_for_keep(final, defer_heads, k) if k < 1.0
                     else {h: 0.0 for h in defer_heads} for k in CASCADE_KEEPS}
    return {"temperatures": temperatures, "thresholds": thresholds, "per_head": per_head,
            "thresholds_at": thresholds_at,
            "kept": {"in_sample": float(keep_mask(final, thresholds, defer_heads).mean()),
                     "cross_fitted": float(kept_by_row.mean())}}
