"""SIGKILL a worker mid-stream and restart it: no finding lost; duplicates allowed and counted."""

from __future__ import annotations

from collections import Counter

import pytest

from secdistill.schemas import codec
from secdistill.schemas.config import KafkaSettings
from secdistill.schemas.corpus import read_corpus_records, record_to_finding
from secdistill.schemas.topics import TopicMap
from tests.integration.helpers import produce

pytestmark = pytest.mark.integration

NO_DEFERRAL = codec.dumps({h: 0.0 for h in ("AV", "AC", "PR", "UI", "S", "C", "I", "A", "cwe_class")}).decode()


def test_sigkill_mid_stream_loses_nothing(kafka: KafkaSettings, topics: TopicMap, start_worker, collect) -> None:
    recs = read_corpus_records()[:1500]
    findings = [record_to_finding(r, finding_id=f"k-{i}") for i, r in enumerate(recs)]
    ids = {f.finding_id for f in findings}
    produce(kafka, topics.input, [codec.encode(f) for f in findings])

    # Small batches, so the kill lands with work committed, in flight and not yet read.
    settings = dict(model__thresholds=NO_DEFERRAL, model__shadow_rate=0.0, batch__max_size=16)
    first = start_worker("first", **settings)
    col = collect([topics.labelled])
    assert col.poll_until(lambda r: len(r[topics.labelled]) >= 200, 120), first.tail()
    first.kill()
    col.drain()  # everything the first worker produced before it died
    seen_before_kill = len(col.records[topics.labelled])
    assert seen_before_kill < len(ids), "the worker finished before it could be killed"

    second = start_worker("second", **settings)
    assert col.poll_until(lambda r: col.ids(topics.labelled) >= ids, 180), second.tail()

    counts = Counter(r["finding_id"] for r in col.records[topics.labelled])
    duplicates = sum(n - 1 for n in counts.values())
    assert set(counts) == ids
    # At-least-once: only what was labelled but not yet committed at the kill is redone.
    assert duplicates <= seen_before_kill, f"{duplicates} duplicates"
    print(f"sigkill: {len(ids)} findings, {duplicates} duplicates after restart")
    assert second.terminate() == 0
