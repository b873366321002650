"""`secdistill produce`: publish a JSONL file's lines as they are, or replay them as scanner traffic."""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from pathlib import Path

from secdistill.schemas import codec
from secdistill.schemas.config import KafkaSettings
from secdistill.schemas.errors import ContractError
from secdistill.workers.kafka_tools import make_producer, produce_values


def parse_repeat(spec: str | None) -> float | None:
    """``zipf:S`` -> S (S > 1); None when no repetition."""
    if not spec:
        return None
    kind, _, value = spec.partition(":")
    if kind != "zipf" or not value:
        raise ValueError(f"--repeat expects zipf:S (e.g. zipf:1.2), got {spec!r}")
    s = float(value)
    if s <= 1.0:
        raise ValueError("zipf exponent must be > 1")
    return s


def zipf_replay(lines: list[bytes], count: int, s: float, assets: int, seed: int = 0) -> Iterator[bytes]:
    """``count`` findings drawn from ``lines`` with Zipf-distributed popularity over many assets.

    Real scanner traffic repeats the same advisory on many assets: each replay gets a fresh
    ``finding_id`` and an ``asset``, the text stays the same (so the prediction cache can hit).
    Lines that are not JSON objects are replayed unchanged (bad input stays bad).
    """
    rng = random.Random(seed)
    weights = [1.0 / (rank**s) for rank in range(1, len(lines) + 1)]
    order = list(range(len(lines)))
    rng.shuffle(order)  # popularity independent of file order
    for i in range(count):
        idx = order[rng.choices(range(len(lines)), weights=weights)[0]]
        raw = lines[idx]
        try:
            obj = codec.loads(raw)
        except ContractError:
            yield raw
            continue
        if not isinstance(obj, dict):
            yield raw
            continue
        asset = f"asset-{rng.randrange(assets):06d}"
        obj["finding_id"] = f"{obj.get('finding_id', 'f')}@{asset}#{i}"
        obj["asset"] = asset
        yield codec.dumps(obj)


def key_of(raw: bytes) -> bytes | None:
    """The finding id as the record key (co-partitioned outputs), None for unparsable records."""
    try:
        obj = codec.loads(raw)
    except ContractError:
        return None
    fid = obj.get("finding_id") if isinstance(obj, dict) else None
    return str(fid).encode() if isinstance(fid, str) else None


def _paced(values: Iterator[bytes], rate: float | None) -> Iterator[tuple[bytes | None, bytes]]:
    start = time.monotonic()
    for i, raw in enumerate(values):
        if rate:
            wait = start + i / rate - time.monotonic()
            if wait > 0:
                time.sleep(wait)
        yield key_of(raw), raw


def produce_file(kafka: KafkaSettings, topic: str, path: Path, *, rate: float | None = None,
                 repeat: str | None = None, count: int | None = None, assets: int = 5000,
                 seed: int = 0) -> int:
    """Publish; return the number of records delivered."""
    # Split on \n only: a stray \r inside a line is part of that (possibly bad) record.
    lines = [ln.removesuffix(b"\r") for ln in path.read_bytes().split(b"\n") if ln.strip()]
    s = parse_repeat(repeat)
    values: Iterator[bytes]
    if s is None:
        values = iter(lines if count is None else lines[:count])
    else:
        values = zipf_replay(lines, count or len(lines), s, assets, seed)
    return produce_values(make_producer(kafka), topic, _paced(values, rate))
