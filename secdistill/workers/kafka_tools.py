"""Topic admin, producer and consumer helpers over confluent-kafka (CLI tools, tests, demo)."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

from secdistill.schemas.config import KafkaSettings

log = logging.getLogger(__name__)


def create_topics(kafka: KafkaSettings, names: Iterable[str], partitions: int, replication: int = 1,
                  timeout_s: float = 30.0) -> list[str]:
    """Create topics that do not exist yet; return the ones created. Idempotent."""
    admin = AdminClient(kafka.confluent_config())  # type: ignore[arg-type]
    existing = set(admin.list_topics(timeout=timeout_s).topics)
    wanted = [n for n in dict.fromkeys(names) if n not in existing]
    if not wanted:
        return []
    futures = admin.create_topics(
        [NewTopic(n, num_partitions=partitions, replication_factor=replication) for n in wanted],
        operation_timeout=timeout_s,
    )
    created = []
    for name, fut in futures.items():
        try:
            fut.result(timeout_s)
            created.append(name)
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise
    return created


def make_producer(kafka: KafkaSettings, **extra: object) -> Producer:
    """An idempotent producer that partitions keys like Faust (murmur2), so outputs co-partition."""
    cfg = kafka.confluent_config() | {
        "enable.idempotence": True,
        "partitioner": "murmur2_random",
        "linger.ms": 5,
        "compression.type": "none",
    }
    cfg.update(extra)
    return Producer(cfg)


def make_consumer(kafka: KafkaSettings, group: str | None, **extra: object) -> Consumer:
    """A consumer reading from the earliest offset; group None means a throwaway group."""
    cfg = kafka.confluent_config() | {
        "group.id": group or f"secdistill-tool-{time.time_ns()}",
        "auto.offset.reset": "earliest",
        "enable.auto.commit": group is not None,
        "session.timeout.ms": int(kafka.session_timeout_s * 1000),
        "heartbeat.interval.ms": int(kafka.heartbeat_interval_s * 1000),
    }
    cfg.update(extra)
    return Consumer(cfg)


@dataclass(frozen=True)
class Record:
    """A consumed record."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    timestamp_ms: int


def consume(kafka: KafkaSettings, topics: list[str], *, max_records: int | None = None,
            timeout_s: float = 10.0, idle_s: float | None = None, group: str | None = None) -> Iterator[Record]:
    """Yield records until ``max_records``, the overall ``timeout_s``, or ``idle_s`` without data."""
    consumer = make_consumer(kafka, group)
    consumer.subscribe(topics)
    deadline = time.monotonic() + timeout_s
    last = time.monotonic()
    seen = 0
    try:
        while time.monotonic() < deadline and (max_records is None or seen < max_records):
            msg = consumer.poll(0.2)
            if msg is None:
                if idle_s is not None and seen and time.monotonic() - last > idle_s:
                    return
                continue
            err = msg.error()
            if err is not None:
                if err.code() != KafkaError._PARTITION_EOF:
                    log.warning("consume error: %s", err)
                continue
            seen += 1
            last = time.monotonic()
            yield Record(msg.topic() or "", msg.partition() or 0, msg.offset() or 0, msg.key(),
                         msg.value(), msg.timestamp()[1])
    finally:
        consumer.close()


def produce_values(producer: Producer, topic: str, items: Iterable[tuple[bytes | None, bytes]],
                   on_sent: object = None) -> int:
    """Produce (key, value) pairs, serving delivery callbacks; return how many were delivered."""
    delivered = 0
    failed: list[str] = []

    def _cb(err: KafkaError | None, _msg: object) -> None:
        nonlocal delivered
        if err is None:
            delivered += 1
        else:
            failed.append(str(err))

    for key, value in items:
        while True:
            try:
                producer.produce(topic, value=value, key=key, on_delivery=_cb)
                break
            except BufferError:
                producer.poll(0.05)
        producer.poll(0)
        if callable(on_sent):
            on_sent()
    producer.flush(60)
    if failed:
        raise KafkaException(f"{len(failed)} records failed delivery: {failed[0]}")
    return delivered
