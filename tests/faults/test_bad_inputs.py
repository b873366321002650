"""The bad-input corpus through a real worker: every record ends labelled or dead-lettered with the
reason the contract promises, the worker keeps running, and the counts reconcile."""

from __future__ import annotations

import base64
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import orjson
import pytest

from secdistill.schemas import codec
from secdistill.schemas.config import KafkaSettings
from secdistill.schemas.errors import ContractError
from secdistill.schemas.records import Finding
from secdistill.schemas.topics import TopicMap
from secdistill.workers.config import BatchSettings
from secdistill.workers.kafka_tools import make_producer, produce_values
from tests.faults.conftest import NO_DEFERRAL_HEADS

pytestmark = pytest.mark.faults

CASES = Path(__file__).with_name("bad_inputs") / "cases.jsonl"
MAX_RECORD_BYTES = BatchSettings().max_record_bytes


@dataclass(frozen=True)
class Case:
    """One corpus entry with its payload materialised."""

    name: str
    category: str
    expect: str
    value: bytes | None  # None: a tombstone


def load_cases() -> list[Case]:
    """Read ``cases.jsonl`` (format: bad_inputs/README.md)."""
    out = []
    for line in CASES.read_bytes().splitlines():
        c = orjson.loads(line)
        value: bytes | None
        if c.get("tombstone"):
            value = None
        elif "text" in c:
            value = c["text"].encode("utf-8")
        else:
            value = base64.b64decode(c["b64"])
        if value is not None and "fill" in c:
            fill = c["fill"]
            value = value.replace(fill["marker"].encode(), (fill["char"] * fill["count"]).encode("utf-8"))
        out.append(Case(c["case"], c["category"], c["expect"], value))
    return out


def test_corpus_is_large_and_covers_every_category() -> None:
    cases = load_cases()
    assert len(cases) >= 200
    assert len({c.name for c in cases}) == len(cases)
    assert {c.category for c in cases} >= {
        "truncated_json", "malformed_json", "non_utf8", "control_bytes", "wrong_types", "missing_fields",
        "empty_record", "huge_fields", "deep_nesting", "unicode_edge", "non_english", "prompt_injection",
        "duplicate_ids"}


@pytest.mark.parametrize("case", load_cases(), ids=lambda c: c.name)
def test_codec_classifies_each_case(case: Case) -> None:
    """The decode stage alone agrees with each expectation (quick diagnostics, no broker)."""
    try:
        codec.decode(Finding, case.value or b"", MAX_RECORD_BYTES)
        got = "labelled"
    except ContractError as exc:
        got = exc.kind
    assert got == case.expect


def test_worker_labels_or_dead_letters_every_case(kafka: KafkaSettings, topics: TopicMap, start_worker,
                                                  collect) -> None:
    cases = load_cases()
    thresholds = codec.dumps({h: 0.0 for h in NO_DEFERRAL_HEADS}).decode()
    worker = start_worker(model__thresholds=thresholds, model__shadow_rate=0.0)
    col = collect([topics.labelled, topics.deadletter, topics.teacher])
    sent = produce_values(make_producer(kafka), topics.input, [(None, c.value) for c in cases])
    assert sent == len(cases)

    def settled(r: dict) -> bool:
        return len(r[topics.labelled]) + len(r[topics.deadletter]) >= len(cases)

    assert col.poll_until(settled, 120), worker.tail(40)
    col.drain(quiet_s=2.0)
    labelled, dead = col.records[topics.labelled], col.records[topics.deadletter]

    # Counts reconcile: every input record is exactly one labelled record or one dead letter.
    assert len(labelled) + len(dead) == len(cases)
    assert not col.records[topics.teacher]
    want_dead = Counter((c.value or b"", c.expect) for c in cases if c.expect != "labelled")
    got_dead = Counter((base64.b64decode(d["payload_b64"]), d["reason"]) for d in dead)
    missing = want_dead - got_dead
    assert not missing, [(raw[:60], reason) for raw, reason in missing]
    assert got_dead == want_dead
    want_ids = Counter(codec.loads(c.value or b"")["finding_id"] for c in cases if c.expect == "labelled")
    assert Counter(r["finding_id"] for r in labelled) == want_ids
    for r in labelled:
        assert r["decided_by"] == "student" and r["model_version"]

    # The worker is alive and still consuming.
    assert worker.proc.poll() is None, worker.tail(40)
    status, body = worker.get("/metrics")
    text = body.decode()
    assert status == 200
    assert f'secdistill_findings_in_total{{topic="{topics.input}"}} {float(len(cases))}' in text
    assert "internal_error" not in text
    assert worker.terminate(40) == 0, worker.tail(40)
