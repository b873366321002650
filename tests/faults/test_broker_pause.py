"""The broker freezes (SIGSTOP) for longer than the session timeout, then resumes (SIGCONT): the
worker recovers without a restart and every finding, including those sent during the pause, ends
labelled."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from secdistill.procs import FleetProcess, fleet_env, start_fleet_process
from secdistill.schemas import codec
from secdistill.schemas.config import KafkaSettings, TopicSettings
from secdistill.schemas.corpus import read_corpus_records, record_to_finding
from secdistill.schemas.task import load_task
from secdistill.schemas.topics import topic_map
from secdistill.workers.broker import EmbeddedBroker, free_port, start_broker
from secdistill.workers.kafka_tools import create_topics, make_producer
from tests.faults.conftest import NO_DEFERRAL_HEADS
from tests.integration.helpers import Collector, produce

pytestmark = pytest.mark.faults

PAUSE_S = 9.0  # > the 6 s dev session timeout, so every member's session lapses meanwhile


@pytest.fixture
def own_broker() -> Iterator[EmbeddedBroker]:
    """A broker of this test alone: freezing the shared one would stall other tests' clients."""
    with start_broker() as b:
        yield b


def _findings(start: int, n: int, prefix: str) -> list[bytes]:
    recs = read_corpus_records()[start:start + n]
    return [codec.encode(record_to_finding(r, finding_id=f"{prefix}-{i}")) for i, r in enumerate(recs)]


def test_worker_recovers_after_broker_pause(own_broker: EmbeddedBroker, tiny_registry: str,
                                            tmp_path: Path) -> None:
    kafka = KafkaSettings(bootstrap_servers=own_broker.bootstrap)
    ns = "pause."
    topics = topic_map(TopicSettings(namespace=ns), load_task())
    create_topics(kafka, [s.name for s in topics.specs()], partitions=4)
    port = free_port()
    env = fleet_env(kafka__bootstrap_servers=own_broker.bootstrap, registry__uri=tiny_registry,
                    topics__namespace=ns, web__port=port, worker__datadir=tmp_path / "faust",
                    model__thresholds=codec.dumps({h: 0.0 for h in NO_DEFERRAL_HEADS}).decode(),
                    model__shadow_rate=0.0, batch__max_size=32)
    worker: FleetProcess = start_fleet_process(["worker"], env, tmp_path / "worker.log", port, "worker")
    col = Collector(kafka, [topics.labelled])
    try:
        before, during, after = _findings(3000, 300, "b"), _findings(3300, 100, "d"), _findings(3400, 100, "a")
        produce(kafka, topics.input, before)
        assert col.poll_until(lambda r: len(r[topics.labelled]) >= 100, 90), worker.tail()

        os.kill(own_broker.process.pid, signal.SIGSTOP)
        try:
            producer = make_producer(kafka)
            for value in during:  # buffered by the client while the broker is frozen
                producer.produce(topics.input, value=value)
            time.sleep(PAUSE_S)  # the fault itself is a duration; nothing is being waited for
        finally:
            os.kill(own_broker.process.pid, signal.SIGCONT)
        assert producer.flush(60) == 0
        assert worker.proc.poll() is None, worker.tail(60)

        produce(kafka, topics.input, after)
        wanted = {codec.loads(v)["finding_id"] for v in before + during + after}
        assert col.poll_until(lambda r: col.ids(topics.labelled) >= wanted, 120), worker.tail(60)
        assert worker.wait_ready(30)["ready"]
        dupes = len(col.records[topics.labelled]) - len(col.ids(topics.labelled))
        # At least once: only work not yet committed when the sessions lapsed may be redone.
        assert dupes <= len(before) + len(during), f"{dupes} duplicates"
        print(f"broker pause {PAUSE_S:.0f} s: {len(wanted)} findings labelled, {dupes} duplicates")
        assert worker.terminate(40) == 0, worker.tail(60)
    finally:
        col.close()
        worker.terminate(20)
