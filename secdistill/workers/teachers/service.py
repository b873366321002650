"""TeacherService: the teacher worker's logic without Faust (unit-testable, used by the CLI too).

The Faust agent calls ``await service.handle(request)`` (or ``handle_batch``) and sends what the
returned ``TeacherOutcome`` holds; ``backpressure()`` says why calls cannot start now, and
``await wait_for_capacity()`` returns when they can. Flow control lives in ``flow.py``; answers are
cached by text fingerprint, and concurrent requests for the same text share one call.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from secdistill.schemas.envelopes import DeadLetterReason
from secdistill.schemas.records import Finding, LabelledFinding, ReviewItem, TeacherLabel, TeacherRequest
from secdistill.schemas.task import TaskSpec
from secdistill.workers.config import TeacherSettings
from secdistill.workers.teachers import outputs
from secdistill.workers.teachers.base import (
    RejectedAnswer,
    RetriesExhausted,
    TeacherAnswer,
    TeacherBackend,
    TeacherFailed,
    answer_from_probs,
)
from secdistill.workers.teachers.flow import ServiceOptions, TeacherCaller
from secdistill.workers.teachers.limits import CircuitBreaker, DailyBudget
from secdistill.workers.teachers.metrics import TeacherMetrics
from secdistill.workers.teachers.reference import ReferenceBackend
from secdistill.workers.teachers.shadow import ShadowStats

__all__ = ["AnswerCache", "ServiceOptions", "TeacherOutcome", "TeacherService"]

log = logging.getLogger(__name__)


class AnswerCache:
    """Bounded LRU of teacher answers by text fingerprint."""

    def __init__(self, max_entries: int) -> None:
        self.max_entries = max_entries
        self._data: OrderedDict[str, TeacherAnswer] = OrderedDict()

    def __contains__(self, key: str) -> bool:
        return key in self._data

    def __len__(self) -> int:
        return len(self._data)

    def get(self, key: str) -> TeacherAnswer | None:
        """The answer, refreshed as most recent, or None."""
        if key in self._data:
            self._data.move_to_end(key)
            return self._data[key]
        return None

    def put(self, key: str, value: TeacherAnswer) -> None:
        """Insert, evicting the least recently used beyond the bound."""
        if self.max_entries > 0:
            self._data[key] = value
            self._data.move_to_end(key)
            while len(self._data) > self.max_entries:
                self._data.popitem(last=False)


@dataclass(frozen=True)
class TeacherOutcome:
    """What to send for one request: every field that is set goes to its topic."""

    request: TeacherRequest
    label: TeacherLabel | None = None  # -> teacher-labels topic
    labelled: LabelledFinding | None = None  # -> labelled + route topics (non-shadow only)
    review: ReviewItem | None = None  # -> review topic
    dead_letter_reason: DeadLetterReason | None = None  # -> dead-letter topic (stage=teacher)
    error: str | None = None
    skipped: str | None = None  # a shadow sample the budget chose not to spend on
    cached: bool = False


class TeacherService:
    """Bounded, rate-limited, budgeted, breaker-guarded and cached access to one teacher backend."""

    def __init__(self, backend: TeacherBackend, task: TaskSpec, settings: TeacherSettings, *,
                 metrics: TeacherMetrics | None = None, reference: ReferenceBackend | None = None,
                 router: outputs.Router | None = None, options: ServiceOptions | None = None) -> None:
        self.backend, self.task, self.settings = backend, task, settings
        self.opts = options or ServiceOptions()
        self.metrics = metrics or TeacherMetrics()
        self.reference, self.router = reference, router
        self.priors = ({h: dict(zip(task.head_map()[h].classes, map(float, p)))
                        for h, p in reference.priors.items()} if reference else None)
        self.caller = TeacherCaller(backend, task, settings, self.metrics, self.opts)
        self.cache = AnswerCache(settings.cache_size)
        self.shadow = ShadowStats()
        self._pending: dict[str, asyncio.Future[TeacherAnswer]] = {}
        self._fresh: dict[str, TeacherAnswer] = {}  # prefetched, not yet handed to a request

    @property
    def counts(self) -> Any:
        """Counters by event (calls_ok, calls_transient, cache_hits, labelled, review, ...)."""
        return self.caller.counts

    @property
    def budget(self) -> DailyBudget:
        """Today's call/cost budget."""
        return self.caller.budget

    @property
    def breaker(self) -> CircuitBreaker:
        """The circuit breaker in front of the backend."""
        return self.caller.breaker

    def backpressure(self, n: int = 1) -> str | None:
        """Why a call could not start now (``breaker_open``, ``retry_after``, ``budget_exhausted``)."""
        return self.caller.backpressure(n)

    async def wait_for_capacity(self, n: int = 1) -> None:
        """Return when a call may start (waits through an open breaker or a spent budget)."""
        await self.caller.wait_for_capacity(n)

    async def answer(self, finding: Finding) -> tuple[TeacherAnswer, bool]:
        """The teacher's answer for a finding and whether it came without a call (cache or shared)."""
        fp = finding.fingerprint()
        fresh = self._fresh.pop(fp, None)
        if fresh is not None:  # labelled by this batch's prefetch call: a paid answer, not a hit
            self.cache.put(fp, fresh)
            return fresh, False
        hit = self.cache.get(fp)
        if hit is not None:
            self._cache_hit()
            return hit, True
        if fp in self._pending:  # the same text is being asked right now: share that call
            self._cache_hit()
            return await asyncio.shield(self._pending[fp]), True
        fut: asyncio.Future[TeacherAnswer] = asyncio.get_running_loop().create_future()
        self._pending[fp] = fut
        try:
            ans = (await self.caller.call([finding]))[0]
        except BaseException as exc:
            fut.set_exception(exc if isinstance(exc, Exception) else RuntimeError("cancelled"))
            fut.exception()  # mark retrieved: waiters re-raise it, nobody else must
            raise
        finally:
            self._pending.pop(fp, None)
        self.cache.put(fp, ans)
        fut.set_result(ans)
        return ans, False

    def _cache_hit(self) -> None:
        self.counts["cache_hits"] += 1
        self.metrics.cache_hits.inc()

    async def prefetch(self, findings: list[Finding]) -> None:
        """Label uncached texts in one backend call (batchable backends); failures are left to
        ``handle``, which retries and isolates them one by one."""
        todo: dict[str, Finding] = {}
        for f in findings:
            fp = f.fingerprint()
            if fp not in self._pending and fp not in self.cache and fp not in self._fresh:
                todo.setdefault(fp, f)
        if len(todo) < 2 or self.caller.budget.exhausted(len(todo)):
            return  # a batch the budget cannot take whole goes one by one, as far as it reaches
        try:
            answers = await self.caller.call(list(todo.values()))
        except (RejectedAnswer, TeacherFailed, RetriesExhausted) as exc:
            log.info("batched teacher call failed (%s); labelling one by one", exc)
            return
        for fp, ans in zip(todo, answers):
            self._fresh[fp] = ans
            self.counts["prefetched"] += 1

    # -- requests -----------------------------------------------------------------------------

    def _skip_shadow(self, request: TeacherRequest) -> bool:
        if self.budget.remaining_fraction >= self.opts.shadow_reserve:
            return False
        prio = outputs.sample_priority(request.student, self.task, self.priors)
        return prio < self.opts.shadow_min_priority

    async def handle(self, request: TeacherRequest) -> TeacherOutcome:
        """Teacher outputs for one request. Waits through outages and spent budgets; never drops."""
        if request.shadow and request.finding.fingerprint() not in self.cache and self._skip_shadow(request):
            self._outcome_count("shadow_skipped")
            return TeacherOutcome(request, skipped="budget_reserved_for_deferred")
        try:
            answer, cached = await self.answer(request.finding)
        except RejectedAnswer as exc:
            return self._dead(request, DeadLetterReason.TEACHER_REJECTED, exc)
        except TeacherFailed as exc:
            return self._dead(request, DeadLetterReason.TEACHER_FAILED, exc)
        except RetriesExhausted as exc:
            return self._dead(request, DeadLetterReason.RETRIES_EXHAUSTED, exc)
        return self._outcome(request, answer, cached)

    async def handle_batch(self, requests: list[TeacherRequest], *, return_exceptions: bool = False
                           ) -> list[TeacherOutcome | BaseException]:
        """``handle`` for many; a batchable backend labels the uncached texts in one call first.

        With ``return_exceptions`` an exception (``BudgetExhausted`` in raise mode) takes its
        request's place, so the outcomes finished beside it are not lost.
        """
        if self.backend.batchable and len(requests) > 1:
            await self.prefetch([r.finding for r in requests
                                 if not (r.shadow and self._skip_shadow(r))])
        return list(await asyncio.gather(*(self.handle(r) for r in requests),
                                         return_exceptions=return_exceptions))

    def _dead(self, request: TeacherRequest, reason: DeadLetterReason, exc: Exception) -> TeacherOutcome:
        log.warning("teacher dead letter %s for %s: %s", reason.value, request.finding_id, exc)
        self._outcome_count(f"dead_letter_{reason.value}")
        return TeacherOutcome(request, dead_letter_reason=reason, error=str(exc)[:4000])

    def _blend_student(self, request: TeacherRequest, answer: TeacherAnswer) -> TeacherAnswer:
        w = self.opts.student_weight
        student = request.student.probs
        if w <= 0 or answer.decided_by == "reference" or set(student) != set(answer.probs):
            return answer
        probs = {h.name: np.array([(1 - w) * answer.probs[h.name][c] + w * student[h.name].get(c, 0.0)
                                   for c in h.classes]) for h in self.task.heads}
        blended = answer_from_probs(self.task, probs, answer.evidence,
                                            raw_answer=answer.raw_answer, cost_usd=answer.cost_usd,
                                            decided_by=f"{answer.decided_by or self.backend.name}+student")
        return replace(blended, latency_ms=answer.latency_ms)

    def _outcome(self, request: TeacherRequest, answer: TeacherAnswer, cached: bool) -> TeacherOutcome:
        answer = self._blend_student(request, answer)
        version = self.backend.version
        teacher_id = self.backend.name
        label = outputs.teacher_label(request, answer, teacher_id, version, cached=cached)
        labelled = None
        if not request.shadow:
            labelled = outputs.labelled_finding(self.task, request, answer, f"{teacher_id}:{version}",
                                                self.router)
        reference = self.reference.labels_for(request.finding) if self.reference else {}
        why = outputs.review_reasons(self.task, request, answer, reference, self.priors, self.opts.review)
        review = outputs.review_item(request, answer, why, reference) if why else None
        if request.shadow:
            self.shadow.add(request.finding, request.student.labels, answer.labels)
            self._export_shadow()
        self._outcome_count("shadow" if request.shadow else "labelled")
        if review is not None:
            self._outcome_count("review")
        return TeacherOutcome(request, label=label, labelled=labelled, review=review, cached=cached)

    def _outcome_count(self, outcome: str) -> None:
        self.counts[outcome] += 1
        self.metrics.outcomes.labels(outcome=outcome).inc()

    def _export_shadow(self) -> None:
        snap = self.shadow.snapshot()
        for head, cell in snap["heads"].items():
            self.metrics.shadow_agreement.labels(head=head).set(cell["rate"])
        for kind, values in snap["slices"].items():
            for value, cell in values.items():
                for head, rate in cell.items():
                    if head != "n":
                        self.metrics.shadow_slice.labels(head=head, slice=kind, value=value).set(rate)

    def stats(self) -> dict[str, Any]:
        """Counters, cost, budget, breaker and shadow agreement (``secdistill report`` reads this)."""
        calls = sum(v for k, v in self.counts.items() if k.startswith("calls_"))
        return {
            "backend": self.backend.name, "version": self.backend.version,
            "counts": dict(self.counts), "calls": calls, "cache_entries": len(self.cache),
            "cost_usd_total": round(self.budget.total_usd, 6),
            "budget": {"day": self.budget.day.isoformat(), "spent_usd": round(self.budget.spent_usd, 6),
                       "calls": self.budget.calls, "remaining_usd": round(self.budget.remaining_usd, 6)},
            "breaker": {"state": self.breaker.state.value, "opened": self.breaker.opened_count},
            "shadow": self.shadow.snapshot(),
        }

    async def aclose(self) -> None:
        """Close the backend (HTTP sessions)."""
        await self.backend.aclose()
