"""The teacher worker: a separate Faust app over the teacher topic, built by a factory.

Batches of TeacherRequests go to the TeacherService (bounded in-flight calls, rate limit, budget,
breaker, cache). While the service has no capacity (breaker open, budget spent) the agent waits
*before* taking work off the batch: Faust keeps polling and pauses the partitions when its buffer
fills, so requests wait in Kafka, nothing is dropped and the group does not rebalance.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any

import faust

from secdistill.schemas import codec
from secdistill.schemas.envelopes import Stage
from secdistill.schemas.records import TeacherRequest
from secdistill.schemas.topics import TopicMap
from secdistill.workers.agents import produce_all
from secdistill.workers.app import add_health_pages, faust_broker_options
from secdistill.workers.config import WorkerSettings
from secdistill.workers.deadletter import to_dead_letter
from secdistill.workers.metrics import FleetMetrics
from secdistill.workers.pipeline import Output
from secdistill.workers.teachers.service import TeacherOutcome, TeacherService

log = logging.getLogger(__name__)


@dataclass
class TeacherRuntime:
    """State shared by the teacher agent and its pages."""

    settings: WorkerSettings
    topics: TopicMap
    service: TeacherService
    metrics: FleetMetrics
    draining: bool = False
    in_batch: bool = False
    drained: asyncio.Event | None = None
    batches: int = 0

    async def drain(self, timeout_s: float) -> None:
        """Stop taking batches; wait for the in-flight one (same contract as the student worker)."""
        self.draining = True
        if not self.in_batch:
            return
        self.drained = self.drained or asyncio.Event()
        try:
            await asyncio.wait_for(self.drained.wait(), timeout_s)
        except TimeoutError:
            log.warning("teacher batch did not finish within %.0f s; it will be redelivered", timeout_s)


def outcome_outputs(rt: TeacherRuntime, raw: bytes, outcome: TeacherOutcome, where: Any) -> list[Output]:
    """Records to produce for one request's outcome."""
    key = outcome.request.finding_id.encode("utf-8", "surrogatepass")
    out: list[Output] = []
    if outcome.label is not None:
        out.append(Output(rt.topics.teacher_labels, key, codec.encode(outcome.label)))
    if outcome.labelled is not None:
        value = codec.encode(outcome.labelled)
        out.append(Output(rt.topics.labelled, key, value))
        out += [Output(rt.topics.routes[r], key, value) for r in outcome.labelled.routes]
    if outcome.review is not None:
        out.append(Output(rt.topics.review, key, codec.encode(outcome.review)))
    if outcome.dead_letter_reason is not None:
        dl = to_dead_letter(raw, RuntimeError(outcome.error or ""), Stage.TEACHER,
                            topic=where.topic, partition=where.partition, offset=where.offset,
                            finding_id=outcome.request.finding_id, app=rt.settings.teacher.app_id,
                            reason=outcome.dead_letter_reason)
        out.append(Output(rt.topics.deadletter, key, codec.encode(dl)))
    return out


async def handle_teacher_batch(app: faust.App, rt: TeacherRuntime, events: list[Any]) -> None:
    """Decode, wait for capacity, label through the service, produce everything, then ack."""
    start = time.perf_counter()
    outputs: list[Output] = []
    requests: list[tuple[bytes, Any, TeacherRequest]] = []
    for e in events:
        raw = e.value if isinstance(e.value, bytes) else bytes(e.value or b"")
        try:
            requests.append((raw, e.message, codec.decode(TeacherRequest, raw, 1 << 22)))
        except Exception as exc:  # noqa: BLE001 - classified by the one reason map
            dl = to_dead_letter(raw, exc, Stage.DECODE, topic=e.message.topic, partition=e.message.partition,
                                offset=e.message.offset, app=rt.settings.teacher.app_id)
            outputs.append(Output(rt.topics.deadletter, None, codec.encode(dl)))
            rt.metrics.dead_letters.labels(reason=dl.reason.value).inc()
    if requests:
        await rt.service.wait_for_capacity()
        outcomes = await rt.service.handle_batch([r for _, _, r in requests])
        for (raw, msg, _), outcome in zip(requests, outcomes):
            if isinstance(outcome, BaseException):  # only with return_exceptions; kept for safety
                raise outcome
            outputs += outcome_outputs(rt, raw, outcome, msg)
            if outcome.dead_letter_reason is not None:
                rt.metrics.dead_letters.labels(reason=outcome.dead_letter_reason.value).inc()
            if outcome.labelled is not None:
                rt.metrics.labelled.labels(decided_by="teacher").inc()
    await produce_all(app, outputs)
    m = rt.metrics
    m.findings_in.labels(topic=rt.topics.teacher).inc(len(events))
    for o in outputs:
        m.findings_out.labels(topic=o.topic).inc()
    m.batch_size.observe(len(events))
    m.batch_seconds.observe(time.perf_counter() - start)
    m.last_progress.set_to_current_time()
    rt.batches += 1
    log.info("teacher batch size=%d outputs=%d ms=%.0f", len(events), len(outputs),
             1000 * (time.perf_counter() - start))


def build_teacher_app(rt: TeacherRuntime, *, web_port: int) -> faust.App:
    """The teacher worker app: one agent over the teacher topic, health and metrics pages."""
    s = rt.settings
    app = faust.App(
        s.teacher.app_id, **faust_broker_options(s.kafka), store="memory://",
        datadir=str(s.worker.datadir / "teacher"), web_enabled=True, web_port=web_port, web_bind=s.web.host,
        web_host=s.web.host, topic_partitions=s.topics.partitions, consumer_auto_offset_reset="earliest",
        producer_acks=-1, stream_wait_empty=False, topic_disable_leader=True,
        # A slow teacher must not get this consumer evicted: the agent may wait minutes for budget.
        broker_max_poll_interval=max(300.0, 10 * s.teacher.openai.timeout_s),
    )
    topic = app.topic(rt.topics.teacher, key_type=bytes, value_type=bytes,
                      key_serializer="raw", value_serializer="raw")
    size = max(1, 2 * s.teacher.max_in_flight)

    async def teach(stream: Any) -> None:
        async for events in stream.take_events(size, within=0.25):
            rt.in_batch = True
            try:
                await handle_teacher_batch(app, rt, list(events))
            finally:
                rt.in_batch = False
            if rt.draining:
                break
        if rt.drained is not None:
            rt.drained.set()

    app.agent(topic, name="teach")(teach)

    def state() -> dict[str, Any]:
        try:
            assigned = sorted(f"{tp.topic}[{tp.partition}]" for tp in app.consumer.assignment())
        except Exception:  # noqa: BLE001 - consumer not started yet
            assigned = []
        st = rt.service.stats()
        return {"ready": bool(assigned) and not rt.draining, "assigned": assigned,
                "backend": st["backend"], "breaker": st["breaker"], "budget": st["budget"],
                "batches": rt.batches}

    add_health_pages(app, state, rt.metrics.registry)
    return app
