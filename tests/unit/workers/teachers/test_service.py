"""TeacherService: cache, rate limit, budget, breaker, retries, outputs and metrics."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import date
from typing import Any

import numpy as np
import pytest
from prometheus_client import CollectorRegistry, generate_latest

from secdistill.schemas.envelopes import DeadLetterReason
from secdistill.schemas.records import DecidedBy, Finding
from secdistill.schemas.task import TaskSpec
from secdistill.workers.config import TeacherSettings
from secdistill.workers.teachers.base import (
    BudgetExhausted,
    RejectedAnswer,
    TeacherFailed,
    TransientTeacherError,
)
from secdistill.workers.teachers.flow import ServiceOptions
from secdistill.workers.teachers.metrics import TeacherMetrics
from secdistill.workers.teachers.reference import ReferenceBackend
from secdistill.workers.teachers.service import TeacherOutcome, TeacherService
from tests.unit.workers.teachers.conftest import finding, request_for
from tests.unit.workers.teachers.fakes import COMMON, ScriptedBackend

FAST = dict(rate_per_s=10_000.0, burst=1000, backoff_base_s=0.01, backoff_max_s=0.05,
            breaker_reset_s=0.1, max_in_flight=8)


def service(task: TaskSpec, backend: ScriptedBackend, *, registry: CollectorRegistry | None = None,
            reference: ReferenceBackend | None = None, opts: dict[str, Any] | None = None,
            **settings: Any) -> TeacherService:
    cfg = TeacherSettings(**{**FAST, **settings})
    options = ServiceOptions(poll_s=0.01, seed=0, **(opts or {}))
    return TeacherService(backend, task, cfg, metrics=TeacherMetrics(registry or CollectorRegistry()),
                          reference=reference, options=options)


def run(coro: Awaitable[Any]) -> Any:
    return asyncio.run(coro)  # type: ignore[arg-type]


async def gather(*aws: Awaitable[Any]) -> list[Any]:
    return list(await asyncio.gather(*aws))


async def until(cond: Callable[[], bool], timeout: float = 5.0) -> None:
    """Poll ``cond`` with a deadline (no fixed sleeps for synchronisation)."""
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.005)


def test_zipf_repeats_cost_one_call_per_text(task: TaskSpec) -> None:
    backend = ScriptedBackend(task, delay=0.001)
    svc = service(task, backend)
    rng = np.random.default_rng(0)
    ranks = np.minimum(rng.zipf(1.2, size=3000), 2000)  # Zipf-like traffic over <= 2000 texts
    reqs = [request_for(finding(f"r{i}", f"advisory text {r}")) for i, r in enumerate(ranks)]

    async def main() -> list[TeacherOutcome]:
        out: list[TeacherOutcome] = []
        for start in range(0, len(reqs), 100):
            out += await asyncio.gather(*(svc.handle(r) for r in reqs[start:start + 100]))
        return out

    outcomes = run(main())
    distinct = len(set(ranks.tolist()))
    assert backend.calls == distinct
    assert all(o.label is not None for o in outcomes)
    assert sum(o.cached for o in outcomes) == len(reqs) - distinct
    assert svc.counts["cache_hits"] == len(reqs) - distinct
    assert sum(o.label.cost_usd for o in outcomes if o.label) == pytest.approx(0.001 * distinct)


def test_concurrent_duplicates_share_one_call(task: TaskSpec) -> None:
    backend = ScriptedBackend(task, delay=0.05)
    svc = service(task, backend)
    reqs = [request_for(finding(i, "the same advisory text")) for i in range(20)]
    outcomes = run(gather(*(svc.handle(r) for r in reqs)))
    assert backend.calls == 1 and sum(o.cached for o in outcomes) == 19
    assert {o.label.finding_id for o in outcomes if o.label} == {r.finding_id for r in reqs}


def test_token_bucket_limits_the_call_rate(task: TaskSpec) -> None:
    backend = ScriptedBackend(task)
    svc = service(task, backend, rate_per_s=40.0, burst=2)
    started = time.monotonic()
    run(gather(*(svc.handle(request_for(finding(i))) for i in range(12))))
    assert time.monotonic() - started >= (12 - 2) / 40 * 0.95
    assert backend.calls == 12


def test_spent_budget_holds_requests_until_the_next_day(task: TaskSpec) -> None:
    day = {"today": date(2026, 1, 1)}
    backend = ScriptedBackend(task)
    svc = service(task, backend, max_calls_per_day=3, opts={"today": lambda: day["today"]})

    async def main() -> list[TeacherOutcome]:
        tasks = [asyncio.create_task(svc.handle(request_for(finding(i)))) for i in range(5)]
        await until(lambda: sum(t.done() for t in tasks) == 3)
        await asyncio.sleep(0.1)  # nothing else may finish while the budget is spent
        assert sum(t.done() for t in tasks) == 3 and backend.calls == 3
        assert svc.backpressure() == "budget_exhausted"
        day["today"] = date(2026, 1, 2)
        return list(await asyncio.wait_for(asyncio.gather(*tasks), 5))

    outcomes = run(main())
    assert all(o.label is not None for o in outcomes) and backend.calls == 5


def test_dollar_budget_and_raise_mode(task: TaskSpec) -> None:
    backend = ScriptedBackend(task, cost=0.001)
    svc = service(task, backend, daily_budget_usd=0.0025, max_in_flight=1,
                  opts={"on_budget": "raise"})

    async def main() -> None:
        for i in range(5):
            await svc.handle(request_for(finding(i)))

    with pytest.raises(BudgetExhausted):
        run(main())
    assert backend.calls == 2 and svc.budget.spent_usd <= 0.0025


def test_breaker_opens_requests_wait_and_resume_after_outage(task: TaskSpec) -> None:
    backend = ScriptedBackend(task)
    backend.down = True
    svc = service(task, backend, breaker_failures=3, max_retries=2)

    async def main() -> list[TeacherOutcome]:
        tasks = [asyncio.create_task(svc.handle(request_for(finding(i)))) for i in range(10)]
        await until(lambda: svc.breaker.state.value == "open")
        await until(lambda: backend.probes >= 2)  # probes, not calls, while open
        calls_while_open = backend.calls
        await until(lambda: backend.probes >= 4)
        assert backend.calls == calls_while_open  # nothing spins against a dead teacher
        assert not any(t.done() for t in tasks)
        backend.down = False
        return list(await asyncio.wait_for(asyncio.gather(*tasks), 10))

    outcomes = run(main())
    assert all(o.label is not None and o.dead_letter_reason is None for o in outcomes)
    assert svc.breaker.state.value == "closed" and svc.breaker.opened_count >= 1


@pytest.mark.parametrize("in_flight", [8, 1])
def test_poison_request_dead_letters_while_others_succeed(task: TaskSpec, in_flight: int) -> None:
    def fail(f: Finding) -> TransientTeacherError | None:
        return TransientTeacherError("500 for this input") if f.finding_id == "f-poison" else None

    backend = ScriptedBackend(task, delay=0.005, fail=fail)
    svc = service(task, backend, max_retries=2, breaker_failures=3, max_in_flight=in_flight)
    reqs = [request_for(finding("poison"))] + [request_for(finding(i)) for i in range(5)]
    outcomes = run(gather(*(svc.handle(r) for r in reqs)))
    assert outcomes[0].dead_letter_reason is DeadLetterReason.RETRIES_EXHAUSTED
    assert all(o.label is not None for o in outcomes[1:])


def test_rejected_and_failed_requests_dead_letter(task: TaskSpec) -> None:
    def fail(f: Finding) -> Any:
        return {"f-bad": RejectedAnswer("AV=X"), "f-gone": TeacherFailed("HTTP 400")}.get(f.finding_id)

    svc = service(task, ScriptedBackend(task, fail=fail))
    bad, gone, ok = run(gather(*(svc.handle(request_for(finding(i))) for i in ("bad", "gone", 1))))
    assert bad.dead_letter_reason is DeadLetterReason.TEACHER_REJECTED and bad.label is None
    assert gone.dead_letter_reason is DeadLetterReason.TEACHER_FAILED
    assert ok.label is not None and svc.breaker.state.value == "closed"


def test_retry_after_pauses_every_caller(task: TaskSpec) -> None:
    first = {"done": False}

    def fail(f: Finding) -> TransientTeacherError | None:
        if not first["done"]:
            first["done"] = True
            return TransientTeacherError("429", retry_after=0.3)
        return None

    backend = ScriptedBackend(task, fail=fail)
    svc = service(task, backend)

    async def main() -> list[TeacherOutcome]:
        first_req = asyncio.create_task(svc.handle(request_for(finding(0))))
        await until(lambda: svc.backpressure() == "retry_after")
        later = [svc.handle(request_for(finding(i))) for i in (1, 2)]
        return await gather(first_req, *later)

    outcomes = run(main())
    assert all(o.label for o in outcomes)
    assert min(backend.call_times[1:]) - backend.call_times[0] >= 0.29


def test_deferred_output_is_a_routed_teacher_decision(task: TaskSpec) -> None:
    svc = service(task, ScriptedBackend(task, labels={**COMMON, "S": "C"}))
    out = run(svc.handle(request_for(finding(1), student={"AV": "N"})))
    lf = out.labelled
    assert lf is not None and lf.decided_by is DecidedBy.TEACHER
    assert lf.prediction.decided_by is DecidedBy.TEACHER and lf.model_version == "fake:1"
    assert lf.prediction.cvss_vector == "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H"
    assert lf.prediction.severity and lf.prediction.severity.label == "CRITICAL"
    assert "critical" in lf.routes and "team-appsec" in lf.routes
    assert out.label and out.label.teacher_id == "fake" and out.label.evidence == ["CVE-0000-0001"]
    assert out.label.student_labels == {"AV": "N"} and not out.label.shadow


def test_shadow_samples_update_agreement_and_metrics(task: TaskSpec) -> None:
    registry = CollectorRegistry()
    svc = service(task, ScriptedBackend(task), registry=registry)
    student = {**COMMON, "AV": "L"}
    reqs = [request_for(finding(i, ecosystem="npm"), shadow=True, student=student) for i in range(4)]
    outs = run(gather(*(svc.handle(r) for r in reqs)))
    assert all(o.labelled is None and o.label and o.label.shadow for o in outs)
    snap = svc.stats()["shadow"]
    assert snap["heads"]["AV"]["rate"] == 0.0 and snap["heads"]["AC"]["rate"] == 1.0
    assert snap["slices"]["ecosystem"]["npm"]["n"] == 4
    assert registry.get_sample_value("secdistill_shadow_agreement", {"head": "AC"}) == 1.0


def test_review_items_for_disagreements(task: TaskSpec) -> None:
    rows = [("CVE-2020-0001", ("GHSA-aaaa",), {"AV": "L", "cwe_class": "xss"})]
    ref = ReferenceBackend(task, rows)
    svc = service(task, ScriptedBackend(task), reference=ref)
    known = finding(1, advisory_id="GHSA-aaaa")
    sure = request_for(finding(2), student={"C": "N"}, confidence=0.97)
    out_ref, out_sure, out_plain = run(gather(
        svc.handle(request_for(known)), svc.handle(sure), svc.handle(request_for(finding(3)))))
    assert out_ref.review and "teacher_vs_reference:AV" in out_ref.review.why
    assert out_ref.review.reference_labels == {"AV": "L", "cwe_class": "xss"}
    assert out_sure.review and out_sure.review.why == ["confident_student_disagrees:C"]
    assert out_plain.review is None


def test_batchable_backend_labels_a_batch_in_one_call(task: TaskSpec) -> None:
    backend = ScriptedBackend(task, batchable=True)
    svc = service(task, backend)
    reqs = [request_for(finding(i % 7)) for i in range(10)]
    outcomes = run(svc.handle_batch(reqs))
    assert backend.batches == [7] and all(o.label for o in outcomes)
    assert sum(not o.cached for o in outcomes) == 7  # first use of a prefetched answer is paid
    assert sum(o.label.cost_usd for o in outcomes if o.label) == pytest.approx(7 * 0.001)


def test_low_budget_is_kept_for_deferred_items(task: TaskSpec) -> None:
    backend = ScriptedBackend(task)
    svc = service(task, backend, max_calls_per_day=10)
    svc.budget.calls = 9  # 10 % left, under the 20 % shadow reserve
    shadow = run(svc.handle(request_for(finding(1), shadow=True, student=COMMON, confidence=0.99)))
    deferred = run(svc.handle(request_for(finding(2))))
    assert shadow.skipped and shadow.label is None and deferred.label is not None


def test_metrics_are_exported(task: TaskSpec) -> None:
    registry = CollectorRegistry()
    svc = service(task, ScriptedBackend(task), registry=registry)
    run(gather(*(svc.handle(request_for(finding(i % 2))) for i in range(4))))
    text = generate_latest(registry).decode()
    for name in ("secdistill_teacher_calls_total", "secdistill_teacher_seconds_bucket",
                 "secdistill_teacher_cost_usd_total", "secdistill_teacher_budget_remaining_usd",
                 "secdistill_teacher_cache_hits_total"):
        assert name in text
    assert registry.get_sample_value("secdistill_teacher_calls_total",
                                     {"backend": "fake", "result": "ok"}) == 2
    assert registry.get_sample_value("secdistill_teacher_cache_hits_total") == 2


def test_student_blend_is_optional_and_skips_curated_answers(task: TaskSpec) -> None:
    from secdistill.schemas.records import Prediction

    svc = service(task, ScriptedBackend(task), opts={"student_weight": 0.5})
    probs = {h.name: {c: (1.0 if c == (h.classes[-1]) else 0.0) for c in h.classes} for h in task.heads}
    f = finding(1)
    req = request_for(f)
    req = req.model_copy(update={"student": Prediction(
        finding_id=f.finding_id, labels={h: max(d, key=d.__getitem__) for h, d in probs.items()},
        probs=probs, confidence={h: 1.0 for h in probs}, model_version="s")})
    out = run(svc.handle(req))
    assert out.label is not None and out.label.probs["AV"]["P"] == pytest.approx(0.5 + 0.5 * 0.1 / 3, abs=1e-4)
    assert out.label.probs["AV"]["N"] == pytest.approx(0.45, abs=1e-4)
    plain = run(service(task, ScriptedBackend(task)).handle(req))
    assert plain.label is not None and plain.label.probs["AV"]["N"] == pytest.approx(0.9)
