"""The ``ensemble`` teacher: curated reference labels when known, another teacher for the rest."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from secdistill.schemas.records import Finding
from secdistill.schemas.task import TaskSpec
from secdistill.workers.teachers.base import TeacherAnswer, TeacherBackend, answer_from_probs
from secdistill.workers.teachers.reference import ReferenceBackend


class EnsembleBackend:
    """Reference first; heads the reference leaves unlabelled (or unknown findings) go to ``fallback``."""

    name = "ensemble"

    def __init__(self, task: TaskSpec, reference: ReferenceBackend, fallback: TeacherBackend) -> None:
        self.task, self.reference, self.fallback = task, reference, fallback
        self.version = f"{reference.name}@{reference.version}+{fallback.name}@{fallback.version}"
        self.batchable = fallback.batchable

    async def label(self, findings: list[Finding]) -> list[TeacherAnswer]:
        """Curated where complete; the fallback teacher answers (or completes) the rest."""
        looked = [self.reference.lookup(f) for f in findings]
        heads = {h.name for h in self.task.heads}
        todo = [i for i, (probs, _) in enumerate(looked) if set(probs) != heads]
        answers: dict[int, TeacherAnswer] = {}
        if todo:
            fb = await self.fallback.label([findings[i] for i in todo])
            answers = dict(zip(todo, fb))
        out = []
        for i, (probs, evidence) in enumerate(looked):
            if not probs:
                out.append(answers[i])
            elif i not in answers:
                out.append(answer_from_probs(self.task, probs, evidence, decided_by="reference"))
            else:  # partial curated labels (e.g. a vector but no CWE): complete from the fallback
                fb_ans = answers[i]
                merged = {h: probs[h] if h in probs else _vec(self.task, fb_ans, h) for h in heads}
                ans = answer_from_probs(self.task, merged, [*evidence, *fb_ans.evidence],
                                        raw_answer=fb_ans.raw_answer, cost_usd=fb_ans.cost_usd,
                                        decided_by=f"reference+{fb_ans.decided_by or self.fallback.name}")
                out.append(replace(ans, latency_ms=fb_ans.latency_ms))
        return out

    async def probe(self) -> None:
        """Healthy when the fallback is."""
        await self.fallback.probe()

    async def aclose(self) -> None:
        """Close the fallback."""
        await self.fallback.aclose()


def _vec(task: TaskSpec, ans: TeacherAnswer, head: str) -> np.ndarray:
    return np.array([ans.probs[head][c] for c in task.head_map()[head].classes])
