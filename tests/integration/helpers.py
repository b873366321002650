"""Producing and collecting records in integration tests (poll with deadlines, never sleep)."""

from __future__ import annotations

import time
from collections import defaultdict

from confluent_kafka import KafkaError

from secdistill.schemas import codec
from secdistill.schemas.config import KafkaSettings
from secdistill.workers.kafka_tools import make_consumer, make_producer, produce_values


def produce(kafka: KafkaSettings, topic: str, values: list[bytes]) -> None:
    """Send raw values (keys derived from nothing: bad records have no id)."""
    assert produce_values(make_producer(kafka), topic, [(None, v) for v in values]) == len(values)


class Collector:
    """A consumer over output topics that accumulates decoded records per topic."""

    def __init__(self, kafka: KafkaSettings, topics: list[str]) -> None:
        self.consumer = make_consumer(kafka, None)
        self.consumer.subscribe(topics)
        self.records: dict[str, list[dict]] = defaultdict(list)

    def poll_until(self, done, timeout_s: float = 90.0) -> bool:  # noqa: ANN001
        """Poll until ``done(records)`` is true or the deadline passes; return done's last value."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            msg = self.consumer.poll(0.2)
            if msg is not None and not msg.error():
                self.records[msg.topic()].append(codec.loads(msg.value(), max_bytes=1 << 24))
            elif msg is not None and msg.error().code() != KafkaError._PARTITION_EOF:
                raise RuntimeError(msg.error())
            if done(self.records):
                return True
        return bool(done(self.records))

    def drain(self, quiet_s: float = 3.0, timeout_s: float = 30.0) -> None:
        """Read until nothing new arrives for ``quiet_s`` seconds."""
        deadline = time.monotonic() + timeout_s
        last = time.monotonic()
        while time.monotonic() < deadline and time.monotonic() - last < quiet_s:
            msg = self.consumer.poll(0.2)
            if msg is not None and not msg.error():
                self.records[msg.topic()].append(codec.loads(msg.value(), max_bytes=1 << 24))
                last = time.monotonic()

    def ids(self, topic: str) -> set[str]:
        """Distinct finding ids seen on a topic."""
        return {r["finding_id"] for r in self.records[topic]}

    def close(self) -> None:
        """Leave the group (idempotent)."""
        if self.consumer is not None:
            self.consumer.close()
            self.consumer = None
