"""Integration tier: one embedded Tansu broker per session on a free loopback port, unique topics
per test, and real `python -m secdistill worker` processes against a tiny published model."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from secdistill.procs import FleetProcess, fleet_env, start_fleet_process
from secdistill.schemas.config import KafkaSettings, TopicSettings
from secdistill.schemas.task import load_task
from secdistill.schemas.topics import TopicMap, topic_map
from secdistill.workers.broker import EmbeddedBroker, free_port, start_broker
from secdistill.workers.kafka_tools import create_topics
from tests.integration.helpers import Collector

pytestmark = pytest.mark.integration


@pytest.fixture(scope="session")
def broker() -> Iterator[EmbeddedBroker]:
    """The embedded broker, started once for the tier."""
    with start_broker() as b:
        yield b


@pytest.fixture
def kafka(broker: EmbeddedBroker) -> KafkaSettings:
    """Client settings for the session broker (fast group joins, see DESIGN.md §6)."""
    return KafkaSettings(bootstrap_servers=broker.bootstrap)


@pytest.fixture
def namespace() -> str:
    """A unique topic prefix: tests never share topics."""
    return f"t{uuid.uuid4().hex[:10]}."


@pytest.fixture
def topics(kafka: KafkaSettings, namespace: str) -> TopicMap:
    """Every topic of the bundled task under this test's namespace, created with 4 partitions."""
    tm = topic_map(TopicSettings(namespace=namespace), load_task())
    create_topics(kafka, [s.name for s in tm.specs()], partitions=4)
    return tm


@pytest.fixture
def collect(kafka: KafkaSettings) -> Iterator[Callable[[list[str]], Collector]]:
    """Collectors over output topics, closed at teardown even when the test fails."""
    made: list[Collector] = []

    def _make(topic_names: list[str]) -> Collector:
        made.append(Collector(kafka, topic_names))
        return made[-1]

    yield _make
    for c in made:
        c.close()


@pytest.fixture
def start_worker(broker: EmbeddedBroker, tiny_registry: str, namespace: str, tmp_path: Path,
                 topics: TopicMap) -> Iterator[Callable[..., FleetProcess]]:
    """Start `secdistill worker` processes for this test; all are stopped at teardown."""
    started: list[FleetProcess] = []

    def _start(name: str = "worker", command: tuple[str, ...] = ("worker",), **settings: object) -> FleetProcess:
        port = free_port()
        defaults: dict[str, object] = dict(
            kafka__bootstrap_servers=broker.bootstrap, registry__uri=tiny_registry,
            topics__namespace=namespace, web__port=port, worker__datadir=tmp_path / f"faust-{name}",
            worker__reload_poll_s=1,
        )
        env = fleet_env(**(defaults | settings))
        proc = start_fleet_process(list(command), env, tmp_path / f"{name}.log", port, name)
        started.append(proc)
        return proc

    yield _start
    for p in started:
        p.terminate(20)
