"""`secdistill bench naive`: what a user would write first, on the same stream as the design.

A plain confluent-kafka consumer that calls a ``transformers`` text-classification pipeline (torch
fp32, the student's architecture) once per message and produces the answer: no batching, no ONNX,
no quantisation, no cache. Its rate next to the worker's is the whole design's speed-up.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass
from typing import Any

from confluent_kafka import Consumer

from secdistill.bench.loadgen import send
from secdistill.schemas import codec
from secdistill.schemas.config import KafkaSettings
from secdistill.schemas.errors import ContractError
from secdistill.schemas.records import Finding
from secdistill.schemas.task import load_task
from secdistill.workers.kafka_tools import create_topics, make_producer

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class NaiveOptions:
    """How many messages the baseline gets (it is slow: a few hundred are enough for a rate)."""

    messages: int = 300
    threads: int = 2
    layers: int = 6  # the student's (MiniLM-L6 or its bottom N layers)
    max_length: int = 128  # the student's truncation
    max_seconds: float = 40.0  # stop early on a slow machine: the rate is what matters
    timeout_s: float = 120.0


def _findings(values: list[bytes]) -> list[Finding]:
    out = []
    for v in values:
        try:
            out.append(codec.decode(Finding, v))
        except ContractError:
            continue
    return out


def naive_classifier(threads: int, layers: int) -> Any:
    """transformers' text-classification pipeline over the student's architecture, torch fp32, CPU."""
    import torch
    from transformers import pipeline

    from secdistill.bench.models import torch_variant
    from secdistill.distill.config import StudentSettings
    from secdistill.distill.student import load_tokenizer

    torch.set_num_threads(threads)
    return pipeline("text-classification", model=torch_variant(layers), tokenizer=load_tokenizer(StudentSettings()),
                    device=-1)


def _fastest_threads(classify: Any, texts: list[str], candidates: tuple[int, ...], max_length: int
                     ) -> tuple[int, dict[str, float]]:
    """Give the baseline its better torch thread count (see runtimes.fastest_threads for why)."""
    import torch

    per_call = {}
    for threads in candidates:
        torch.set_num_threads(threads)
        classify(texts[0], truncation=True, max_length=max_length)
        start = time.perf_counter()
        for text in texts:
            classify(text, truncation=True, max_length=max_length)
        per_call[str(threads)] = 1000 * (time.perf_counter() - start) / len(texts)
    best = min(candidates, key=lambda t: per_call[str(t)])
    torch.set_num_threads(best)
    return best, per_call


def run_naive(kafka: KafkaSettings, values: list[bytes], opts: NaiveOptions) -> dict[str, Any]:
    """Consume the first ``opts.messages`` records of ``values`` one by one; messages/s."""
    ns = f"naive{int(time.time())}."
    topic_in, topic_out = ns + "findings.raw.v1", ns + "naive.labels.v1"
    create_topics(kafka, [topic_in, topic_out], partitions=4)
    stream = values[:opts.messages]
    send(make_producer(kafka), topic_in, stream)
    classify = naive_classifier(opts.threads, opts.layers)
    task = load_task()
    sample = [task.render(f) for f in _findings(stream[:16])][:8]
    threads, probe = _fastest_threads(classify, sample, tuple(sorted({1, opts.threads})), opts.max_length)
    consumer = Consumer(kafka.confluent_config() | {
        "group.id": f"naive-{time.time_ns()}", "auto.offset.reset": "earliest",
        "session.timeout.ms": int(kafka.session_timeout_s * 1000)})
    consumer.subscribe([topic_in])
    producer = make_producer(kafka)
    done = bad = 0
    first: float | None = None
    deadline = time.monotonic() + opts.timeout_s
    try:
        while done + bad < len(stream) and time.monotonic() < deadline:
            if first is not None and time.perf_counter() - first > opts.max_seconds:
                break
            msg = consumer.poll(1.0)
            if msg is None or msg.error():
                continue
            first = first or time.perf_counter()  # the clock starts at the first record, after the join
            try:
                finding = codec.decode(Finding, msg.value() or b"")
            except ContractError:
                bad += 1
                continue
            answer = classify(task.render(finding), truncation=True, max_length=opts.max_length)
            producer.produce(topic_out, key=msg.key(), value=codec.dumps({"finding_id": finding.finding_id,
                                                                           "answer": answer}))
            producer.poll(0)
            done += 1
        producer.flush(30)
    finally:
        consumer.close()
    seconds = time.perf_counter() - (first or time.perf_counter())
    rate = (done + bad) / seconds if seconds > 0 else 0.0
    log.info("naive baseline: %d records (%d bad) in %.1f s: %.1f/s", done + bad, bad, seconds, rate)
    return {"options": asdict(opts), "threads": threads, "thread_probe_ms_per_call": probe, "records": done + bad, "malformed_skipped": bad, "seconds": seconds,
            "findings_per_s": rate,
            "what": "confluent-kafka consumer + transformers text-classification pipeline per message "
                    f"(torch fp32 eager, MiniLM {opts.layers} layers), produce each answer"}
