"""Realistic traffic for the benchmarks: corpus findings spread over many assets with Zipf
repetition (``producer_tool.zipf_replay``), bursts, and a share of malformed records.

Runs draw disjoint slices of the corpus (``CorpusPool.take``), so one run's texts never warm the
prediction cache for the next.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from confluent_kafka import Producer

from secdistill.schemas import codec
from secdistill.schemas.corpus import read_corpus_records, record_to_finding
from secdistill.schemas.errors import ContractError
from secdistill.schemas.records import Finding
from secdistill.workers.producer_tool import key_of, zipf_replay

# Kinds of broken records real producers send; each ends as a dead letter, never as an outage.
MALFORMED: tuple[Callable[[int], bytes], ...] = (
    lambda i: b'{"finding_id": "broken-%d", "description": "truncated' % i,
    lambda i: b'{"finding_id": "latin1-%d", "description": "caf\xe9"}' % i,
    lambda i: b'{"finding_id": %d, "description": "id is a number"}' % i,
    lambda i: b'{"finding_id": "nodesc-%d"}' % i,
    lambda i: b'["not", "an", "object", %d]' % i,
)


class CorpusPool:
    """The bundled advisories with distinct model texts, shuffled once, handed out in disjoint slices."""

    def __init__(self, seed: int = 0) -> None:
        seen: set[str] = set()
        self._findings: list[Finding] = []
        records = read_corpus_records()
        random.Random(seed).shuffle(records)
        for rec in records:
            f = record_to_finding(rec)
            if f.fingerprint() not in seen:
                seen.add(f.fingerprint())
                self._findings.append(f)
        self._next = 0

    def __len__(self) -> int:
        return len(self._findings) - self._next

    def take(self, n: int, prefix: str) -> list[Finding]:
        """``n`` findings whose texts no earlier ``take`` returned, with ids ``prefix-<i>``."""
        if n > len(self):
            raise ValueError(f"corpus pool exhausted: {n} wanted, {len(self)} left")
        chunk = self._findings[self._next:self._next + n]
        self._next += n
        return [f.model_copy(update={"finding_id": f"{prefix}-{i}"}) for i, f in enumerate(chunk)]


@dataclass(frozen=True)
class Traffic:
    """A stream: ``count`` records from ``pool`` distinct texts (Zipf ``zipf_s``; None: all unique)."""

    count: int
    zipf_s: float | None = 1.1
    assets: int = 5000
    malformed_share: float = 0.01
    seed: int = 0


def build_stream(pool: CorpusPool, traffic: Traffic, distinct: int, prefix: str) -> list[bytes]:
    """Encoded records in send order; malformed ones interleaved at ``malformed_share``."""
    lines = [codec.encode(f) for f in pool.take(distinct, prefix)]
    values = lines if traffic.zipf_s is None else list(
        zipf_replay(lines, traffic.count, traffic.zipf_s, traffic.assets, traffic.seed))
    rng = random.Random(traffic.seed + 1)
    out: list[bytes] = []
    for i, value in enumerate(values):
        if traffic.malformed_share and rng.random() < traffic.malformed_share:
            out.append(MALFORMED[rng.randrange(len(MALFORMED))](i))
        out.append(value)
    return out


def bursty_offsets(n: int, rate: float, *, burst_factor: float = 1.0, burst_s: float = 1.0,
                   period_s: float = 5.0) -> list[float]:
    """Send times (s from start) averaging ``rate``/s; the first ``burst_s`` of every period runs
    ``burst_factor`` times faster than the rest of it. ``burst_factor=1`` is a steady rate."""
    if burst_factor <= 1.0:
        return [i / rate for i in range(n)]
    low = rate * period_s / (burst_factor * burst_s + period_s - burst_s)
    out: list[float] = []
    t = 0.0
    while len(out) < n:
        out.append(t)
        t += 1.0 / (low * burst_factor if t % period_s < burst_s else low)
    return out


def stamp(raw: bytes, now_ms: float) -> bytes:
    """Put ``produced_at`` (ms since the epoch) into a finding's attributes; other bytes unchanged."""
    try:
        obj = codec.loads(raw)
    except ContractError:
        return raw
    if not isinstance(obj, dict) or not isinstance(obj.get("attributes", {}), dict):
        return raw
    obj["attributes"] = {**obj.get("attributes", {}), "produced_at": round(now_ms, 3)}
    return codec.dumps(obj)


def send(producer: Producer, topic: str, values: list[bytes], offsets: list[float] | None = None,
         *, stamp_time: bool = False) -> tuple[float, int]:
    """Produce (paced by ``offsets`` when given); return (wall-clock start, records delivered)."""
    delivered = 0

    def on_delivery(err: object, _msg: object) -> None:
        nonlocal delivered
        delivered += err is None

    start_wall, start = time.time(), time.monotonic()
    for i, value in enumerate(_paced(values, offsets, start)):
        if stamp_time:
            value = stamp(value, time.time() * 1000)
        while True:
            try:
                producer.produce(topic, value=value, key=key_of(values[i]), on_delivery=on_delivery)
                break
            except BufferError:
                producer.poll(0.05)
        producer.poll(0)
    producer.flush(120)
    return start_wall, delivered


def _paced(values: list[bytes], offsets: list[float] | None, start: float) -> Iterator[bytes]:
    for i, value in enumerate(values):
        if offsets is not None:
            wait = start + offsets[i] - time.monotonic()
            if wait > 0:
                time.sleep(wait)  # pacing the load itself, not synchronisation
        yield value
