"""Metrics that match the consequences: per-head accuracy/macro-F1, derived severity and score,
weakness top-k, slices, and the cascade curve (what the deployed student + teacher system does)."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import numpy as np

from secdistill.distill.calibration import keep_mask
from secdistill.distill.dataset import Split
from secdistill.schemas.cvss import METRICS, SEVERITIES, base_score, severity_distribution, severity_of
from secdistill.schemas.task import TaskSpec

Probs = dict[str, np.ndarray]


def macro_f1(y_true: np.ndarray, y_pred: np.ndarray, k: int) -> float:
    """Macro-F1 over the classes present in y_true or y_pred (sklearn's default behaviour)."""
    scores = []
    for c in range(k):
        tp = np.sum((y_pred == c) & (y_true == c))
        fp = np.sum((y_pred == c) & (y_true != c))
        fn = np.sum((y_pred != c) & (y_true == c))
        if tp + fp + fn:
            scores.append(2 * tp / (2 * tp + fp + fn))
    return float(np.mean(scores)) if scores else 0.0


def per_head(probs: Probs, split: Split, task: TaskSpec) -> dict[str, dict[str, float]]:
    """Accuracy, macro-F1 and count per head over the rows where the head is labelled."""
    out = {}
    for j, h in enumerate(task.heads):
        rows = split.hard[:, j] >= 0
        y, pred = split.hard[rows, j], probs[h.name][rows].argmax(axis=1)
        out[h.name] = {"accuracy": float(np.mean(pred == y)) if len(y) else None,
                       "macro_f1": macro_f1(y, pred, len(h.classes)), "n": int(len(y))}
    return out


def cvss_rows(split: Split, task: TaskSpec) -> np.ndarray:
    """Rows with all eight CVSS metrics labelled."""
    idx = [j for j, h in enumerate(task.heads) if h.name in METRICS]
    return np.all(split.hard[:, idx] >= 0, axis=1) if len(idx) == len(METRICS) else np.zeros(len(split), bool)


def _vectors(probs: Probs, rows: np.ndarray) -> list[dict[str, str]]:
    picks = {m: probs[m][rows].argmax(axis=1) for m in METRICS}
    return [{m: METRICS[m][picks[m][i]] for m in METRICS} for i in range(int(rows.sum()))]


def derived(probs: Probs, split: Split, task: TaskSpec) -> dict[str, float]:
    """Severity (argmax of the derived distribution), score MAE and exact-vector rate."""
    rows = cvss_rows(split, task)
    if not rows.any():
        return {}
    true_m = [{m: METRICS[m][split.hard[i, j]] for j, m in enumerate(h.name for h in task.heads)
               if m in METRICS} for i in np.where(rows)[0]]
    true_score = np.array([base_score(m) for m in true_m])
    true_sev = np.array([SEVERITIES.index(severity_of(s)) for s in true_score])
    sev_dist = severity_distribution({m: probs[m][rows] for m in METRICS})
    pred_sev = sev_dist.argmax(axis=1)
    pred_m = _vectors(probs, rows)
    pred_score = np.array([base_score(m) for m in pred_m])
    return {"severity_accuracy": float(np.mean(pred_sev == true_sev)),
            "severity_macro_f1": macro_f1(true_sev, pred_sev, len(SEVERITIES)),
            "score_mae": float(np.mean(np.abs(pred_score - true_score))),
            "exact_vector": float(np.mean([p == t for p, t in zip(pred_m, true_m)])),
            "n": int(rows.sum())}


def topk(probs: Probs, split: Split, task: TaskSpec, head: str = "cwe_class") -> dict[str, float]:
    """Top-1 and top-3 accuracy of one head (the weakness class)."""
    names = [h.name for h in task.heads]
    if head not in names:
        return {}
    y = split.hard[:, names.index(head)]
    rows = y >= 0
    if not rows.any():
        return {"top1": None, "top3": None, "n": 0}
    top = np.argsort(-probs[head][rows], axis=1)
    return {"top1": float(np.mean(top[:, 0] == y[rows])),
            "top3": float(np.mean(np.any(top[:, :3] == y[rows, None], axis=1))), "n": int(rows.sum())}


def summary(probs: Probs, split: Split, task: TaskSpec) -> dict[str, Any]:
    """Everything for one predictor: heads, CVSS means, derived outputs, weakness top-k."""
    heads = per_head(probs, split, task)
    cvss = [heads[m] for m in METRICS if m in heads and heads[m]["n"]]
    return {"heads": heads,
            "cvss_mean_accuracy": float(np.mean([h["accuracy"] for h in cvss])) if cvss else None,
            "cvss_mean_macro_f1": float(np.mean([h["macro_f1"] for h in cvss])) if cvss else None,
            "derived": derived(probs, split, task), "cwe_class": topk(probs, split, task)}


def slices(probs: Probs, split: Split, task: TaskSpec) -> dict[str, dict[str, Any]]:
    """Mean CVSS accuracy and weakness accuracy per ecosystem, source and text length."""
    keys: dict[str, list[str]] = {
        "ecosystem": [ex.finding.ecosystem or "?" for ex in split.examples],
        "source": [ex.finding.source or "?" for ex in split.examples],
        "length": [_length_bucket(len(t)) for t in split.texts],
        # Agreement with whoever labelled the row: reference (curated), teacher:<id>, correction.
        "label_source": [sorted({p.split("@")[0] for p in ex.provenance.values()})[0]
                         if ex.provenance else "?" for ex in split.examples],
    }
    out: dict[str, dict[str, Any]] = {}
    for kind, values in keys.items():
        groups: dict[str, list[int]] = defaultdict(list)
        for i, v in enumerate(values):
            groups[v].append(i)
        out[kind] = {}
        for value, idx in sorted(groups.items(), key=lambda kv: -len(kv[1])):
            sub = split.subset(np.array(idx))
            s = summary({h: p[idx] for h, p in probs.items()}, sub, task)
            out[kind][value] = {"n": len(idx), "cvss_mean_accuracy": s["cvss_mean_accuracy"],
                                "cwe_top1": s["cwe_class"].get("top1")}
    return out


def _length_bucket(chars: int) -> str:
    return "<300 chars" if chars < 300 else "300-800 chars" if chars < 800 else ">=800 chars"


def agreement(a: Probs, b: Probs) -> dict[str, float]:
    """Per-head argmax agreement of two predictors on the same rows."""
    return {h: float(np.mean(a[h].argmax(1) == b[h].argmax(1))) for h in a}


def cascade(student: Probs, teachers: dict[str, Probs], split: Split, task: TaskSpec,
            thresholds_at: dict[float, dict[str, float]]) -> list[dict[str, Any]]:
    """Accuracy of the kept items and of the whole system (teacher answers deferred items)."""
    heads = [h.name for h in task.heads if h.defer]
    points = []
    for keep_target, thr in sorted(thresholds_at.items()):
        keep = keep_mask(student, thr, heads)
        kept = split.subset(np.where(keep)[0])
        s_kept = summary({h: p[keep] for h, p in student.items()}, kept, task)
        point: dict[str, Any] = {"target_keep": keep_target, "kept": float(keep.mean()),
                                 "kept_cvss_mean_accuracy": s_kept["cvss_mean_accuracy"],
                                 "kept_severity_accuracy": s_kept["derived"].get("severity_accuracy"),
                                 "kept_cwe_top1": s_kept["cwe_class"].get("top1")}
        for name, teacher in teachers.items():
            system = {h: np.where(keep[:, None], student[h], teacher[h]) for h in student}
            s_sys = summary(system, split, task)
            point[f"system_{name}"] = {"cvss_mean_accuracy": s_sys["cvss_mean_accuracy"],
                                       "severity_accuracy": s_sys["derived"].get("severity_accuracy"),
                                       "cwe_top1": s_sys["cwe_class"].get("top1")}
        points.append(point)
    return points


def confusions(probs: Probs, split: Split, task: TaskSpec) -> dict[str, dict[str, Any]]:
    """Confusion matrix per head (rows true, columns predicted) over labelled rows."""
    out = {}
    for j, h in enumerate(task.heads):
        rows = split.hard[:, j] >= 0
        k = len(h.classes)
        m = np.zeros((k, k), dtype=np.int64)
        np.add.at(m, (split.hard[rows, j], probs[h.name][rows].argmax(axis=1)), 1)
        out[h.name] = {"classes": list(h.classes), "matrix": m.tolist()}
    return out
