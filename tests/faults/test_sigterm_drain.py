"""SIGTERM while batches are in flight: the worker drains, commits and exits 0; a successor finishes
the stream; nothing is lost and duplicates stay within one batch."""

from __future__ import annotations

import time
from collections import Counter

import pytest

from secdistill.schemas import codec
from secdistill.schemas.config import KafkaSettings
from secdistill.schemas.corpus import read_corpus_records, record_to_finding
from secdistill.schemas.topics import TopicMap
from tests.faults.conftest import NO_DEFERRAL_HEADS
from tests.integration.helpers import produce

pytestmark = pytest.mark.faults

BATCH = 32
SETTINGS = dict(model__thresholds=codec.dumps({h: 0.0 for h in NO_DEFERRAL_HEADS}).decode(),
                model__shadow_rate=0.0, batch__max_size=BATCH)


def test_sigterm_during_batch_drains_and_loses_nothing(kafka: KafkaSettings, topics: TopicMap,
                                                       start_worker, collect) -> None:
    recs = read_corpus_records()[2000:3200]
    ids = [f"t-{i}" for i in range(len(recs))]
    produce(kafka, topics.input, [codec.encode(record_to_finding(r, finding_id=i)) for r, i in zip(recs, ids)])

    first = start_worker("first", **SETTINGS)
    col = collect([topics.labelled])
    assert col.poll_until(lambda r: len(r[topics.labelled]) >= 6 * BATCH, 90), first.tail()
    # The agent is inside a batch nearly all the time while there is a backlog.
    started = time.monotonic()
    assert first.terminate(40) == 0, first.tail(60)
    stop_s = time.monotonic() - started
    log = first.log_path.read_text(errors="replace")
    assert "draining" in log, first.tail(60)
    col.drain()
    before = len(col.records[topics.labelled])
    assert before < len(ids), "the stream finished before SIGTERM; nothing was tested"

    second = start_worker("second", **SETTINGS)
    assert col.poll_until(lambda r: col.ids(topics.labelled) >= set(ids), 120), second.tail()
    col.drain(quiet_s=2)
    counts = Counter(r["finding_id"] for r in col.records[topics.labelled])
    duplicates = sum(n - 1 for n in counts.values())
    assert set(counts) == set(ids)
    # Drained and committed: at most the records of one batch may be redone.
    assert duplicates <= BATCH, f"{duplicates} duplicates after a graceful stop"
    print(f"sigterm: stop took {stop_s:.1f} s, {before} labelled before, "
          f"{duplicates} duplicates, drained in-flight batch: {'in-flight batch finished' in log}")
    assert second.terminate(40) == 0, second.tail(60)
