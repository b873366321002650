"""A real worker process on the embedded broker: valid, malformed and poison input in; every record
ends labelled, deferred or dead-lettered with the right reason and its original bytes."""

from __future__ import annotations

import base64
import statistics

import pytest

from secdistill.schemas import codec
from secdistill.schemas.config import KafkaSettings
from secdistill.schemas.corpus import read_corpus_records, record_to_finding
from secdistill.schemas.registry import Registry
from secdistill.schemas.topics import TopicMap
from secdistill.workers.config import ModelSettings
from secdistill.workers.inference import OnnxScorer
from tests.integration.helpers import produce

pytestmark = pytest.mark.integration

POISON = "POISON-PILL-7f3a"


def _findings(n: int, offset: int = 0):  # noqa: ANN202
    recs = read_corpus_records()[offset : offset + n]
    return [record_to_finding(r, finding_id=f"f-{offset + i}") for i, r in enumerate(recs)]


def _median_confidence(registry: str, findings) -> float:  # noqa: ANN001
    folder = Registry(registry).resolve("advisory-triage", "stable")
    preds = OnnxScorer(folder, ModelSettings()).score(findings)
    return statistics.median(p.confidence["cwe_class"] for p in preds)


def test_mixed_input_is_labelled_deferred_or_dead_lettered(
    kafka: KafkaSettings, topics: TopicMap, start_worker, collect, tiny_registry: str
) -> None:
    valid = _findings(40)
    # Defer on cwe_class only, at the median confidence: about half the findings go to the teacher.
    cut = _median_confidence(tiny_registry, valid)
    thresholds = {h: 0.0 for h in ("AV", "AC", "PR", "UI", "S", "C", "I", "A")} | {"cwe_class": cut}
    worker = start_worker(model__chaos_marker=POISON, model__shadow_rate=0.3,
                          model__thresholds=codec.dumps(thresholds).decode())
    worker.wait_ready(90)

    bad = {
        b'{"finding_id": "m1", "description": "trunc': "bad_json",
        b"not json at all": "bad_json",
        b'{"finding_id": "m2", "description": "caf\xe9 \xff\xfe"}': "bad_encoding",
        b'{"finding_id": "m3"}': "schema_violation",
        b'{"finding_id": ["m4"], "description": "x"}': "schema_violation",
        b"[1, 2, 3]": "schema_violation",
        b'{"finding_id": "m5", "description": "' + b"x" * 300_000 + b'"}': "too_large",
    }
    poison = record_to_finding(read_corpus_records()[100], finding_id="poison-1")
    poison = poison.model_copy(update={"description": f"{poison.description} {POISON}"})
    payloads = [codec.encode(f) for f in valid] + list(bad) + [codec.encode(poison)]
    produce(kafka, topics.input, payloads)

    col = collect([topics.labelled, topics.teacher, topics.deadletter, *topics.routes.values()])
    valid_ids = {f.finding_id for f in valid}

    def settled(_r) -> bool:  # noqa: ANN001
        deferred = {r["finding_id"] for r in col.records[topics.teacher] if not r["shadow"]}
        return (col.ids(topics.labelled) | deferred) >= valid_ids and len(col.records[topics.deadletter]) >= len(bad) + 1

    assert col.poll_until(settled, 120), worker.tail()

    labelled = col.ids(topics.labelled)
    deferred = {r["finding_id"] for r in col.records[topics.teacher] if not r["shadow"]}
    shadow = {r["finding_id"] for r in col.records[topics.teacher] if r["shadow"]}
    assert labelled | deferred == valid_ids
    assert not labelled & deferred, "a finding was both labelled and deferred"
    assert labelled and deferred, "thresholds at the median must give a mix"
    assert shadow and shadow <= labelled, "shadow samples are confident, labelled items"
    for r in col.records[topics.teacher]:
        assert r["student"]["model_version"] and r["finding"]["finding_id"] == r["finding_id"]
    for r in col.records[topics.labelled]:
        assert r["decided_by"] == "student" and r["model_version"]
        for route in r["routes"]:
            assert r["finding_id"] in col.ids(topics.routes[route])

    dead = col.records[topics.deadletter]
    by_payload = {base64.b64decode(d["payload_b64"]): d for d in dead}
    for raw, reason in bad.items():
        assert raw in by_payload, f"missing dead letter for {raw[:40]!r}"
        assert by_payload[raw]["reason"] == reason
        assert by_payload[raw]["topic"] == topics.input and by_payload[raw]["offset"] is not None
    poison_dl = [d for d in dead if d.get("finding_id") == "poison-1"]
    assert [d["reason"] for d in poison_dl] == ["inference_failed"]
    assert len(dead) == len(bad) + 1

    # Still consuming afterwards.
    more = _findings(5, offset=500)
    produce(kafka, topics.input, [codec.encode(f) for f in more])
    more_ids = {f.finding_id for f in more}

    def more_done(_r) -> bool:  # noqa: ANN001
        got = col.ids(topics.labelled) | {r["finding_id"] for r in col.records[topics.teacher]}
        return more_ids <= got

    assert col.poll_until(more_done, 60), worker.tail()

    status, body = worker.get("/metrics")
    text = body.decode()
    assert status == 200
    assert f'secdistill_findings_in_total{{topic="{topics.input}"}} {float(len(payloads) + 5)}' in text
    assert 'secdistill_dead_letters_total{reason="inference_failed"} 1.0' in text
    assert worker.terminate() == 0, worker.tail()
