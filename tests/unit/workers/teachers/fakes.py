"""An in-process scripted teacher backend for service tests."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from secdistill.schemas.records import Finding
from secdistill.schemas.task import TaskSpec
from secdistill.workers.teachers.base import (
    TeacherAnswer,
    TeacherError,
    TransientTeacherError,
    answer_from_probs,
    smoothed_one_hot,
)

COMMON = {"AV": "N", "AC": "L", "PR": "N", "UI": "N", "S": "U", "C": "H", "I": "H", "A": "H",
          "cwe_class": "xss"}


class ScriptedBackend:
    """Answers COMMON (or ``labels``) after ``delay``; ``fail(finding)`` may return an error to raise."""

    name = "fake"
    version = "1"

    def __init__(self, task: TaskSpec, *, labels: dict[str, str] | None = None, delay: float = 0.0,
                 cost: float = 0.001, batchable: bool = False,
                 fail: Callable[[Finding], TeacherError | None] | None = None) -> None:
        self.task, self.delay, self.cost, self.batchable, self.fail = task, delay, cost, batchable, fail
        self.labels = labels or COMMON
        self.down = False
        self.calls = 0
        self.batches: list[int] = []
        self.probes = 0
        self.call_times: list[float] = []

    async def label(self, findings: list[Finding]) -> list[TeacherAnswer]:
        self.calls += 1
        self.batches.append(len(findings))
        self.call_times.append(asyncio.get_running_loop().time())
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.down:
            raise TransientTeacherError("teacher down")
        for f in findings:
            err = self.fail(f) if self.fail else None
            if err is not None:
                raise err
        probs = {h.name: smoothed_one_hot(h.classes, self.labels[h.name], 0.1) for h in self.task.heads}
        return [answer_from_probs(self.task, probs, ["CVE-0000-0001"], cost_usd=self.cost)
                for _ in findings]

    async def probe(self) -> None:
        self.probes += 1
        if self.down:
            raise TransientTeacherError("still down")

    async def aclose(self) -> None:
        return None
