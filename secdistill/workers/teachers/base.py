"""The teacher interface: every backend returns per-head distributions over the task's classes.

Errors are typed so the service knows what to do without parsing messages:
``TransientTeacherError`` is retried (and opens the breaker), ``RejectedAnswer`` and
``TeacherFailed`` dead-letter the one request (``teacher_rejected`` / ``teacher_failed``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np

from secdistill.schemas.records import Finding, Probs
from secdistill.schemas.task import TaskSpec


class TeacherError(RuntimeError):
    """Base of every teacher failure. ``cost_usd``: what the failed call still cost (tokens spent)."""

    cost_usd: float = 0.0


class TransientTeacherError(TeacherError):
    """Worth retrying: 429, 5xx, timeouts, connection errors. ``retry_after`` in seconds if known."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class RejectedAnswer(TeacherError):
    """The teacher answered outside the label set, or malformed, after its own retries."""

    def __init__(self, message: str, raw_answer: str | None = None) -> None:
        super().__init__(message)
        self.raw_answer = raw_answer


class TeacherFailed(TeacherError):
    """The teacher cannot answer this request (no curated label, a 4xx for this input, ...)."""


class RetriesExhausted(TeacherError):
    """This request kept failing while the teacher answered others: a poison request."""


class BudgetExhausted(TeacherError):
    """The daily call or cost budget is spent (raised only where the caller asked not to wait)."""


@dataclass(frozen=True)
class TeacherAnswer:
    """One finding's answer: distributions per head, argmax labels, evidence, raw text and cost."""

    probs: Probs
    labels: dict[str, str]
    evidence: list[str] = field(default_factory=list)
    raw_answer: str | None = None
    cost_usd: float = 0.0
    latency_ms: float = 0.0
    decided_by: str = ""  # which voice answered (e.g. "reference" inside an ensemble)


@runtime_checkable
class TeacherBackend(Protocol):
    """What the teacher service calls. ``label`` returns one answer per finding, in order."""

    name: str
    version: str
    batchable: bool  # one call may label many findings cheaply (local backends)

    async def label(self, findings: list[Finding]) -> list[TeacherAnswer]:
        """Label findings; raise a TeacherError subclass for the whole call on failure."""
        ...

    async def probe(self) -> None:
        """Cheap health check for the circuit breaker's half-open state; raise if unhealthy."""
        ...

    async def aclose(self) -> None:
        """Release connections, sessions and threads."""
        ...


def answer_from_probs(
    task: TaskSpec,
    probs: dict[str, np.ndarray],
    evidence: list[str] | None = None,
    *,
    raw_answer: str | None = None,
    cost_usd: float = 0.0,
    decided_by: str = "",
) -> TeacherAnswer:
    """Build an answer from per-head probability vectors in the task's class order."""
    out: Probs = {}
    labels: dict[str, str] = {}
    for head in task.heads:
        p = np.asarray(probs[head.name], dtype=np.float64)
        p = np.clip(p, 0.0, None)
        total = float(p.sum())
        p = p / total if total > 0 else np.full(len(head.classes), 1.0 / len(head.classes))
        out[head.name] = {c: round(float(v), 6) for c, v in zip(head.classes, p)}
        labels[head.name] = head.classes[int(np.argmax(p))]
    return TeacherAnswer(
        probs=out, labels=labels, evidence=list(evidence or []), raw_answer=raw_answer,
        cost_usd=cost_usd, decided_by=decided_by,
    )


def smoothed_one_hot(classes: list[str], label: str, eps: float = 0.02) -> np.ndarray:
    """(1 - eps) on ``label`` and eps spread over the other classes."""
    p = np.full(len(classes), eps / (len(classes) - 1))
    p[classes.index(label)] = 1.0 - eps
    return p


def validate_answer(task: TaskSpec, answer: TeacherAnswer) -> None:
    """Refuse an answer whose heads or classes differ from the task's (a backend bug, not input)."""
    heads = task.head_map()
    if set(answer.probs) != set(heads) or set(answer.labels) != set(heads):
        raise RejectedAnswer(f"answer heads {sorted(answer.probs)} != task heads {sorted(heads)}")
    for name, dist in answer.probs.items():
        if set(dist) != set(heads[name].classes) or answer.labels[name] not in heads[name].classes:
            raise RejectedAnswer(f"answer for {name} is outside the label set")
