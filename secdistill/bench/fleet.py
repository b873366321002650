"""A benchmark fleet: the embedded broker, real worker processes, and a reader of output topics.

Workers run as `python -m secdistill worker` (``procs.start_fleet_process``), exactly as deployed.
Output topics are read after each run by explicit partition offsets: no consumer group to join
(Tansu answers a join after half the session timeout) and no reader competing for the CPU while
the run is measured; timing comes from the records' own timestamps.
"""

from __future__ import annotations

import logging
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, TopicPartition

from secdistill.bench.models import Student
from secdistill.procs import FleetProcess, fleet_env, start_fleet_process
from secdistill.schemas import codec
from secdistill.schemas.config import KafkaSettings, TopicSettings
from secdistill.schemas.task import load_task
from secdistill.schemas.topics import TopicMap, topic_map
from secdistill.workers.broker import EmbeddedBroker, free_port, start_broker
from secdistill.workers.kafka_tools import create_topics, make_producer

log = logging.getLogger(__name__)

HEADS = ("AV", "AC", "PR", "UI", "S", "C", "I", "A", "cwe_class")


@dataclass(frozen=True)
class OutRecord:
    """The parts of an output record the benchmarks need."""

    topic: str
    timestamp_ms: int
    value: dict[str, Any]


class TopicReader:
    """Reads output topics from where the previous read stopped (assigned partitions, no group)."""

    def __init__(self, kafka: KafkaSettings, topics: list[str], partitions: int) -> None:
        self.kafka = kafka
        self.next = {(t, p): OFFSET_BEGINNING for t in topics for p in range(partitions)}

    def read(self, done: Callable[[list[OutRecord]], bool], timeout_s: float) -> list[OutRecord]:
        """New records until ``done(records)`` holds or the timeout passes."""
        consumer = Consumer(self.kafka.confluent_config() | {
            "group.id": f"secdistill-bench-reader-{time.time_ns()}", "enable.auto.commit": False,
            "fetch.wait.max.ms": 50})
        consumer.assign([TopicPartition(t, p, off) for (t, p), off in self.next.items()])
        out: list[OutRecord] = []
        deadline = time.monotonic() + timeout_s
        try:
            while time.monotonic() < deadline and not done(out):
                for msg in consumer.consume(1000, 0.2):
                    err = msg.error()
                    if err is not None:
                        if err.code() != KafkaError._PARTITION_EOF:
                            log.warning("reader: %s", err)
                        continue
                    topic, partition, offset = str(msg.topic()), int(msg.partition() or 0), int(msg.offset() or 0)
                    self.next[(topic, partition)] = offset + 1
                    out.append(OutRecord(topic, msg.timestamp()[1], codec.loads(msg.value() or b"null", 1 << 24)))
        finally:
            consumer.close()
        return out


@dataclass
class BenchFleet:
    """Broker + work folder; workers and topics are created per scenario and stopped with it."""

    student: Student
    batch_max: int = 64
    batch_wait_s: float = 0.5
    partitions: int = 4
    broker: EmbeddedBroker | None = None
    work: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="secdistill-bench-")))
    workers: list[FleetProcess] = field(default_factory=list)

    def __enter__(self) -> BenchFleet:
        self.broker = start_broker()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop_workers()
        if self.broker is not None:
            self.broker.stop()

    @property
    def kafka(self) -> KafkaSettings:
        """Client settings for the embedded broker."""
        assert self.broker is not None, "use BenchFleet as a context manager"
        return KafkaSettings(bootstrap_servers=self.broker.bootstrap)

    def topics(self, namespace: str) -> TopicMap:
        """Create every topic of the task under ``namespace``."""
        tm = topic_map(TopicSettings(namespace=namespace, partitions=self.partitions), load_task())
        create_topics(self.kafka, [s.name for s in tm.specs()], self.partitions)
        return tm

    def start_workers(self, namespace: str, count: int, threads: int) -> list[FleetProcess]:
        """Start ``count`` workers on the namespace (no deferral: every finding reaches labelled)."""
        no_deferral = codec.dumps({h: 0.0 for h in HEADS}).decode()
        for i in range(count):
            port = free_port()
            env = fleet_env(
                kafka__bootstrap_servers=self.kafka.bootstrap_servers, registry__uri=self.student.registry_uri,
                registry__version=self.student.version, topics__namespace=namespace,
                topics__partitions=self.partitions, web__port=port, web__host="127.0.0.1",
                worker__datadir=self.work / f"faust-{namespace}{i}", worker__app_id=f"bench-{namespace}",
                worker__reload_poll_s=3600, model__thresholds=no_deferral, model__shadow_rate=0.0,
                model__threads=threads, batch__max_size=self.batch_max, batch__max_wait_s=self.batch_wait_s,
            )
            self.workers.append(start_fleet_process(["worker"], env, self.work / f"worker-{namespace}{i}.log",
                                                    port, f"worker {namespace}{i}"))
        return self.workers[-count:]

    def wait_assigned(self, procs: list[FleetProcess], input_topic: str, timeout_s: float = 120.0) -> None:
        """Until the workers own every input partition between them, each at least one, no overlap."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            owned = []
            for p in procs:
                if p.proc.poll() is not None:
                    raise RuntimeError(f"{p.name} exited:\n{p.tail()}")
                assigned: Any = (p.ready() or {}).get("assigned", [])
                owned.append([str(a) for a in assigned if str(a).startswith(input_topic + "[")])
            flat = [a for o in owned for a in o]
            if all(owned) and len(flat) == len(set(flat)) == self.partitions:
                return
            time.sleep(0.3)  # polling /readyz with a deadline
        raise TimeoutError(f"workers did not share {self.partitions} partitions:\n{procs[0].tail()}")

    def stop_workers(self) -> None:
        """SIGTERM every worker (they drain and commit)."""
        for p in self.workers:
            p.terminate(30)
        self.workers.clear()


def metric_total(proc: FleetProcess, name: str) -> float:
    """Sum of a Prometheus counter's samples on a worker's /metrics page (0 when absent)."""
    try:
        _, body = proc.get("/metrics")
    except OSError:
        return 0.0
    total = 0.0
    for line in body.decode().splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            total += float(line.rsplit(" ", 1)[1])
    return total


def broker_fetch_hold(kafka: KafkaSettings, topic: str, waits_ms: tuple[int, ...] = (1500, 100), n: int = 10,
                      interval_s: float = 0.2) -> dict[str, dict[str, float]]:
    """Produce-to-fetch latency of a bare aiokafka consumer per ``fetch_max_wait_ms``.

    Faust's consumer always asks for fetch_max_wait_ms=1500; a broker should answer as soon as
    data arrives, but the embedded Tansu holds the fetch. This isolates that share of latency.
    """
    import asyncio

    from secdistill.bench.machine import percentile

    async def probe(wait_ms: int) -> list[float]:
        from aiokafka import AIOKafkaConsumer
        from aiokafka.structs import TopicPartition as AioTP

        consumer = AIOKafkaConsumer(bootstrap_servers=kafka.bootstrap_servers, fetch_max_wait_ms=wait_ms,
                                    enable_auto_commit=False)
        await consumer.start()
        lats: list[float] = []
        try:
            tp = AioTP(topic, 0)
            consumer.assign([tp])
            await consumer.seek_to_end(tp)
            producer = make_producer(kafka, **{"linger.ms": 0})
            for _ in range(n):
                producer.produce(topic, value=str(time.time()).encode(), partition=0)
                producer.flush(5)
                deadline = time.monotonic() + 3
                while time.monotonic() < deadline:
                    got = await consumer.getmany(tp, timeout_ms=100)
                    if got:
                        lats += [1000 * (time.time() - float(m.value)) for m in got[tp]]
                        break
                await asyncio.sleep(interval_s)
        finally:
            await consumer.stop()
        return lats

    out = {}
    for wait in waits_ms:
        lats = asyncio.run(probe(wait))
        out[str(wait)] = {"p50": percentile(lats, 50), "max": max(lats) if lats else float("nan"), "n": len(lats)}
    return out
