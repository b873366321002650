"""Agent bodies: thin loops (take -> process_batch in an executor -> produce -> ack). No business rules."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import faust

from secdistill.workers.pipeline import BatchOutcome, Output, RawEvent, process_batch
from secdistill.workers.runtime import WorkerRuntime

log = logging.getLogger(__name__)


async def produce_all(app: faust.App, outputs: list[Output]) -> None:
    """Send every output and wait for the broker to acknowledge all of them."""
    futures = [await app.producer.send(o.topic, o.key, o.value, partition=None, timestamp=None,
                                       headers=None) for o in outputs]
    await asyncio.gather(*futures)


def register_triage_agent(app: faust.App, rt: WorkerRuntime) -> Any:
    """Attach the student agent: batches of raw bytes from the input topic."""
    topic = app.topic(rt.topics.input, key_type=bytes, value_type=bytes,
                      key_serializer="raw", value_serializer="raw")
    batch = rt.settings.batch

    async def triage(stream: Any) -> None:  # faust.Stream; take_events is not on StreamT
        async for events in stream.take_events(batch.max_size, within=batch.max_wait_s):
            rt.in_batch = True
            try:
                await handle_batch(app, rt, events)
            finally:
                rt.in_batch = False
            if rt.draining:
                break  # closing the take generator acks this batch before Faust commits
        if rt.drained is not None:
            rt.drained.set()

    return app.agent(topic, name="triage")(triage)


async def handle_batch(app: faust.App, rt: WorkerRuntime, events: list[Any]) -> BatchOutcome:
    """One batch end to end; never raises for a record, so one poison record cannot stop the agent."""
    start = time.perf_counter()
    raw = [
        RawEvent(
            value=e.value if isinstance(e.value, bytes) else bytes(e.value or b""),
            topic=e.message.topic, partition=e.message.partition, offset=e.message.offset,
        )
        for e in events
    ]
    labeller = rt.labeller  # one model version per batch, even if a reload lands meanwhile
    loop = asyncio.get_running_loop()
    outcome = await loop.run_in_executor(
        None,
        lambda: process_batch(raw, labeller, rt.topics, max_record_bytes=rt.settings.batch.max_record_bytes,
                              app=rt.settings.worker.app_id),
    )
    await produce_all(app, outcome.outputs)
    record_batch(rt, outcome, len(raw), time.perf_counter() - start)
    return outcome


def record_batch(rt: WorkerRuntime, outcome: BatchOutcome, n_in: int, seconds: float) -> None:
    """Metrics and the one INFO line per batch."""
    m = rt.metrics
    m.findings_in.labels(topic=rt.topics.input).inc(n_in)
    for o in outcome.outputs:
        m.findings_out.labels(topic=o.topic).inc()
    for reason, n in outcome.dead_letters.items():
        m.dead_letters.labels(reason=reason).inc(n)
    for head, n in outcome.deferred_heads.items():
        m.deferred_head.labels(head=head).inc(n)
    m.deferrals.inc(outcome.deferred)
    m.labelled.labels(decided_by="student").inc(outcome.labelled)
    m.shadow.inc(outcome.shadow)
    m.cache_hits.inc(outcome.cache_hits)
    m.cache_misses.inc(outcome.labelled + outcome.deferred - outcome.cache_hits)
    m.batch_size.observe(n_in)
    m.batch_seconds.observe(seconds)
    m.inference_seconds.observe(outcome.inference_s)
    m.last_progress.set_to_current_time()
    rt.batches += 1
    log.info(
        "batch size=%d labelled=%d deferred=%d dlq=%d cache_hits=%d model=%s ms=%.0f",
        n_in, outcome.labelled, outcome.deferred, sum(outcome.dead_letters.values()),
        outcome.cache_hits, outcome.model_version, 1000 * seconds,
    )
