"""Student-teacher agreement on shadow samples, per head and per slice (ecosystem, text length)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from secdistill.schemas.records import Finding, TeacherLabel


def length_bucket(chars: int) -> str:
    """Description length bucket (the distillation report uses the same bounds)."""
    return "<300 chars" if chars < 300 else "300-800 chars" if chars < 800 else ">=800 chars"


def slices_of(finding: Finding) -> dict[str, str]:
    """The slices a finding belongs to."""
    return {"ecosystem": finding.ecosystem or "?", "length": length_bucket(len(finding.description))}


class ShadowStats:
    """Running agreement counts; ``snapshot`` gives rates for reports and gauges."""

    def __init__(self) -> None:
        self.n = 0
        self.heads: dict[str, list[int]] = defaultdict(lambda: [0, 0])  # head -> [agree, total]
        self.slices: dict[tuple[str, str, str], list[int]] = defaultdict(lambda: [0, 0])

    def add(self, finding: Finding, student: dict[str, str], teacher: dict[str, str]) -> None:
        """Count one shadow sample's per-head agreement."""
        self.n += 1
        cuts = slices_of(finding)
        for head, label in teacher.items():
            if head not in student:
                continue
            agree = int(student[head] == label)
            self.heads[head][0] += agree
            self.heads[head][1] += 1
            for kind, value in cuts.items():
                cell = self.slices[(kind, value, head)]
                cell[0] += agree
                cell[1] += 1

    def rate(self, head: str) -> float | None:
        """Agreement rate of one head, None before any sample."""
        agree, total = self.heads.get(head, (0, 0))
        return agree / total if total else None

    def snapshot(self) -> dict[str, Any]:
        """``{"n", "heads": {head: {rate, n}}, "slices": {kind: {value: {head: rate, "n": n}}}}``."""
        heads = {h: {"rate": a / t, "n": t} for h, (a, t) in sorted(self.heads.items()) if t}
        slices: dict[str, dict[str, dict[str, float]]] = defaultdict(dict)
        for (kind, value, head), (a, t) in sorted(self.slices.items()):
            cell = slices[kind].setdefault(value, {"n": 0})
            cell[head] = a / t
            cell["n"] = max(cell["n"], t)
        return {"n": self.n, "heads": heads, "slices": dict(slices)}


def from_labels(labels: Iterable[TeacherLabel]) -> ShadowStats:
    """Agreement from TeacherLabel records (the teacher-labels topic): shadow ones only."""
    stats = ShadowStats()
    for rec in labels:
        if rec.shadow and rec.student_labels:
            stats.add(rec.finding, rec.student_labels, rec.labels)
    return stats
