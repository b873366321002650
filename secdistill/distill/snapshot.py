"""Snapshot the teacher-labels and corrections topics for redistillation.

A run reads each partition from where the previous model's snapshot ended (recorded in its
manifest's ``data_snapshot.kafka``) to what is there now, and writes JSONL files the dataset reader
already understands. "Now" is "until the topic is idle for a few seconds", not the high watermark:
the embedded dev broker reports a wrong high watermark (DESIGN.md §6), and idleness works on both.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, KafkaError, TopicPartition

from secdistill.schemas.config import KafkaSettings
from secdistill.schemas.errors import RegistryError
from secdistill.schemas.registry import Registry

log = logging.getLogger(__name__)

Offsets = dict[str, dict[str, int]]  # topic -> partition (as str, JSON keys) -> next offset to read


@dataclass
class Snapshot:
    """Files written and where each partition ended."""

    files: dict[str, Path]
    offsets: Offsets
    counts: dict[str, int] = field(default_factory=dict)

    def manifest_entry(self) -> dict[str, Any]:
        """What the published manifest records, so the next run starts after it."""
        return {"offsets": self.offsets, "counts": self.counts, "taken_at": time.time()}


def previous_offsets(registry_uri: str, model: str) -> Offsets:
    """Where the newest published version's Kafka snapshot ended (empty: read from the start)."""
    try:
        versions = Registry(registry_uri).versions(model)
    except RegistryError:
        return {}
    for manifest in reversed(versions):
        kafka = manifest.data_snapshot.get("kafka")
        if isinstance(kafka, dict) and isinstance(kafka.get("offsets"), dict):
            return {t: {str(p): int(o) for p, o in parts.items()} for t, parts in kafka["offsets"].items()}
    return {}


def snapshot_topics(kafka: KafkaSettings, topics: dict[str, str], dest: Path, since: Offsets, *,
                    idle_s: float = 5.0, timeout_s: float = 600.0) -> Snapshot:
    """Copy ``{role: topic}`` from ``since`` to the current end into ``dest/<role>.jsonl``."""
    dest.mkdir(parents=True, exist_ok=True)
    consumer = Consumer(kafka.confluent_config() | {
        "group.id": f"secdistill-snapshot-{time.time_ns()}", "enable.auto.commit": False,
        "auto.offset.reset": "earliest", "enable.partition.eof": False,
    })
    files = {role: dest / f"{role}.jsonl" for role in topics}
    handles = {role: files[role].open("wb") for role in topics}
    role_of = {topic: role for role, topic in topics.items()}
    offsets: Offsets = {t: dict(since.get(t, {})) for t in topics.values()}
    counts = dict.fromkeys(topics, 0)
    try:
        assignment = []
        for topic in topics.values():
            meta = consumer.list_topics(topic, timeout=30).topics.get(topic)
            for p in sorted(meta.partitions if meta and not meta.error else []):
                start = offsets[topic].get(str(p), 0)
                offsets[topic].setdefault(str(p), start)
                assignment.append(TopicPartition(topic, p, start))
        consumer.assign(assignment)
        deadline, last = time.monotonic() + timeout_s, time.monotonic()
        while time.monotonic() < deadline and time.monotonic() - last < idle_s:
            msg = consumer.poll(0.5)
            if msg is None:
                continue
            err = msg.error()
            if err is not None:
                if err.code() != KafkaError._PARTITION_EOF:
                    log.warning("snapshot read error: %s", err)
                continue
            topic, role = msg.topic() or "", role_of[msg.topic() or ""]
            handles[role].write((msg.value() or b"").rstrip(b"\n") + b"\n")
            offsets[topic][str(msg.partition())] = int(msg.offset() or 0) + 1
            counts[role] += 1
            last = time.monotonic()
    finally:
        for fh in handles.values():
            fh.close()
        consumer.close()
    log.info("kafka snapshot: %s", ", ".join(f"{r}={n}" for r, n in counts.items()))
    return Snapshot(files, offsets, counts)
