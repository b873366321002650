"""Promote a model while traffic flows: every worker switches within 30 s, nothing is lost, no
finding is labelled by two versions; a corrupt artefact is refused and the old model keeps serving."""

from __future__ import annotations

import shutil
import threading
import time
from collections import defaultdict
from pathlib import Path

import pytest

from secdistill.schemas import codec
from secdistill.schemas.config import KafkaSettings
from secdistill.schemas.corpus import read_corpus_records, record_to_finding
from secdistill.schemas.registry import Registry
from secdistill.schemas.topics import TopicMap
from secdistill.workers.kafka_tools import make_producer, produce_values
from tests.integration.helpers import Collector

pytestmark = pytest.mark.integration

MODEL = "advisory-triage"
NO_DEFERRAL = codec.dumps({h: 0.0 for h in ("AV", "AC", "PR", "UI", "S", "C", "I", "A", "cwe_class")}).decode()


def _republish(reg: Registry, version: str) -> str:
    """The same artefacts as a new immutable version (what a redistillation publishes)."""
    folder = reg.version_dir(MODEL, version)
    return reg.publish(folder, reg.manifest(MODEL, version)).version


def _trickle(kafka: KafkaSettings, topic: str, payloads: list[bytes], rate: float) -> threading.Thread:
    def run() -> None:
        producer = make_producer(kafka)
        for i in range(0, len(payloads), 20):
            produce_values(producer, topic, [(None, p) for p in payloads[i : i + 20]])
            time.sleep(20 / rate)  # paced traffic, not synchronisation

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


def test_promote_under_load_switches_without_loss(
    kafka: KafkaSettings, topics: TopicMap, start_worker, collect, tiny_registry: str, tmp_path: Path
) -> None:
    reg_path = tmp_path / "registry"
    shutil.copytree(tiny_registry, reg_path)
    reg = Registry(str(reg_path))
    v1 = reg.channel_version(MODEL, "stable")
    assert v1
    workers = [start_worker(f"w{i}", registry__uri=reg_path, model__thresholds=NO_DEFERRAL,
                            model__shadow_rate=0.0) for i in range(2)]
    for w in workers:
        w.wait_ready(90)

    recs = read_corpus_records()[:2400]
    findings = [record_to_finding(r, finding_id=f"h-{i}") for i, r in enumerate(recs)]
    col: Collector = collect([topics.labelled])
    feeder = _trickle(kafka, topics.input, [codec.encode(f) for f in findings], rate=120)
    assert col.poll_until(lambda r: len(r[topics.labelled]) >= 300, 90)

    v2 = _republish(reg, v1)
    reg.promote(MODEL, v2, "stable")
    promoted_at = time.time()
    ids = {f.finding_id for f in findings}
    assert col.poll_until(lambda r: col.ids(topics.labelled) >= ids, 180), workers[0].tail()
    feeder.join(60)

    versions_by_id: dict[str, set[str]] = defaultdict(set)
    first_v2_ms = None
    for r in col.records[topics.labelled]:
        versions_by_id[r["finding_id"]].add(r["model_version"])
        if r["model_version"] == v2:
            ts = r["labelled_at"]
            first_v2_ms = min(first_v2_ms or ts, ts)
    assert set(versions_by_id) == ids, "findings lost"
    assert not [i for i, v in versions_by_id.items() if len(v) > 1], "labelled by two versions"
    seen = {v for vs in versions_by_id.values() for v in vs}
    assert seen == {v1, v2}
    for w in workers:  # every worker reports the new model
        assert w.ready()["model_version"] == v2  # type: ignore[index]
    from datetime import datetime

    switch_s = datetime.fromisoformat(first_v2_ms).timestamp() - promoted_at
    assert switch_s < 30, f"switch took {switch_s:.1f} s"

    # A corrupt artefact is refused; the old model keeps serving.
    v3 = _republish(reg, v1)
    onnx = reg.version_dir(MODEL, v3) / "model.onnx"
    onnx.chmod(0o644)
    data = bytearray(onnx.read_bytes())
    data[len(data) // 2] ^= 0xFF
    onnx.write_bytes(bytes(data))
    # promote() verifies checksums too, so flip the pointer the way a broken publisher would.
    (reg_path / MODEL / "channels" / "stable.json").write_bytes(codec.dumps({"version": v3, "history": [v2]}))
    more = [record_to_finding(r, finding_id=f"after-{i}") for i, r in enumerate(recs[:40])]
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not all(
        b'secdistill_model_reloads_total{result="refused"} 1.0' in w.get("/metrics")[1] for w in workers
    ):
        col.poll_until(lambda r: False, 1.0)
    for w in workers:
        assert b'secdistill_model_reloads_total{result="refused"} 1.0' in w.get("/metrics")[1], w.tail()
    produce_values(make_producer(kafka), topics.input, [(None, codec.encode(f)) for f in more])
    after = {f.finding_id for f in more}
    assert col.poll_until(lambda r: col.ids(topics.labelled) >= after, 60)
    assert {r["model_version"] for r in col.records[topics.labelled] if r["finding_id"] in after} == {v2}
