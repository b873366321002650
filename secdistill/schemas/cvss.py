"""CVSS v3.1 base score and severity, exactly as the specification defines them.

https://www.first.org/cvss/v3.1/specification-document (section 7.1 formulas, Appendix A Roundup).
The severity *distribution* follows from the eight metric heads' distributions: we enumerate all
2,592 base vectors once, and a batch's distribution is a product of per-head probabilities summed
per band (heads treated as independent, which is what a per-head softmax model asserts).
"""

from __future__ import annotations

import itertools
import math
from functools import lru_cache

import numpy as np

METRICS: dict[str, tuple[str, ...]] = {
    "AV": ("N", "A", "L", "P"),
    "AC": ("L", "H"),
    "PR": ("N", "L", "H"),
    "UI": ("N", "R"),
    "S": ("U", "C"),
    "C": ("N", "L", "H"),
    "I": ("N", "L", "H"),
    "A": ("N", "L", "H"),
}
SEVERITIES: tuple[str, ...] = ("NONE", "LOW", "MEDIUM", "HIGH", "CRITICAL")

_AV = {"N": 0.85, "A": 0.62, "L": 0.55, "P": 0.2}
_AC = {"L": 0.77, "H": 0.44}
_PR_U = {"N": 0.85, "L": 0.62, "H": 0.27}
_PR_C = {"N": 0.85, "L": 0.68, "H": 0.5}
_UI = {"N": 0.85, "R": 0.62}
_CIA = {"H": 0.56, "L": 0.22, "N": 0.0}


def roundup(value: float) -> float:
    """CVSS v3.1 Roundup: smallest one-decimal number >= value, robust to float noise (Appendix A)."""
    int_input = round(value * 100_000)
    if int_input % 10_000 == 0:
        return int_input / 100_000.0
    return (math.floor(int_input / 10_000) + 1) / 10.0


def base_score(m: dict[str, str]) -> float:
    """Base score from the eight metric values, e.g. {"AV": "N", "AC": "L", ...}."""
    changed = m["S"] == "C"
    iss = 1 - (1 - _CIA[m["C"]]) * (1 - _CIA[m["I"]]) * (1 - _CIA[m["A"]])
    if changed:
        impact = 7.52 * (iss - 0.029) - 3.25 * (iss - 0.02) ** 15
    else:
        impact = 6.42 * iss
    pr = (_PR_C if changed else _PR_U)[m["PR"]]
    exploitability = 8.22 * _AV[m["AV"]] * _AC[m["AC"]] * pr * _UI[m["UI"]]
    if impact <= 0:
        return 0.0
    if changed:
        return roundup(min(1.08 * (impact + exploitability), 10.0))
    return roundup(min(impact + exploitability, 10.0))


def severity_of(score: float) -> str:
    """Qualitative severity rating scale (specification section 5)."""
    if score == 0.0:
        return "NONE"
    if score < 4.0:
        return "LOW"
    if score < 7.0:
        return "MEDIUM"
    if score < 9.0:
        return "HIGH"
    return "CRITICAL"


def parse_vector(vector: str) -> dict[str, str]:
    """``CVSS:3.x/AV:N/...`` to a metric dict; raises ValueError on anything else."""
    parts = vector.strip().split("/")
    if not parts or not parts[0].startswith("CVSS:3"):
        raise ValueError(f"not a CVSS v3 vector: {vector!r}")
    out: dict[str, str] = {}
    for part in parts[1:]:
        key, _, val = part.partition(":")
        if key in METRICS:
            if val not in METRICS[key]:
                raise ValueError(f"bad value {val!r} for {key} in {vector!r}")
            out[key] = val
    missing = set(METRICS) - set(out)
    if missing:
        raise ValueError(f"vector {vector!r} lacks {sorted(missing)}")
    return out


def format_vector(m: dict[str, str]) -> str:
    """Metric dict to a normalised ``CVSS:3.1/...`` base vector."""
    return "CVSS:3.1/" + "/".join(f"{k}:{m[k]}" for k in METRICS)


@lru_cache(maxsize=1)
def _table() -> tuple[np.ndarray, np.ndarray]:
    """Scores and severity one-hot for every base vector, in itertools.product order over METRICS."""
    keys = list(METRICS)
    combos = list(itertools.product(*(METRICS[k] for k in keys)))
    scores = np.array([base_score(dict(zip(keys, c))) for c in combos], dtype=np.float64)
    onehot = np.zeros((len(combos), len(SEVERITIES)), dtype=np.float64)
    for i, s in enumerate(scores):
        onehot[i, SEVERITIES.index(severity_of(float(s)))] = 1.0
    return scores, onehot


def severity_distribution(head_probs: dict[str, np.ndarray]) -> np.ndarray:
    """Batch severity distribution, shape (n, 5), from per-head arrays of shape (n, classes).

    Each head's columns must follow ``METRICS`` order. The joint is the outer product over heads;
    its mass per severity band is the answer. Rows sum to 1 up to float error.
    """
    _, onehot = _table()
    dist: np.ndarray = _joint(head_probs) @ onehot
    out: np.ndarray = dist / np.clip(dist.sum(axis=1, keepdims=True), 1e-12, None)
    return out


def expected_score(head_probs: dict[str, np.ndarray]) -> np.ndarray:
    """Expected base score under the head distributions, shape (n,)."""
    scores, _ = _table()
    out: np.ndarray = _joint(head_probs) @ scores
    return out


def _joint(head_probs: dict[str, np.ndarray]) -> np.ndarray:
    """Probability of every base vector, shape (n, 2592), heads independent."""
    keys = list(METRICS)
    joint = np.asarray(head_probs[keys[0]], dtype=np.float64)
    n = joint.shape[0]
    for k in keys[1:]:
        nxt = np.asarray(head_probs[k], dtype=np.float64)
        joint = (joint[:, :, None] * nxt[:, None, :]).reshape(n, -1)
    return joint
