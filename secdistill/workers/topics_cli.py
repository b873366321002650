"""Library functions behind the topic, produce, consume and predict commands."""

from __future__ import annotations

import base64
import sys
from collections.abc import Iterator
from pathlib import Path

from secdistill.schemas import codec
from secdistill.schemas.errors import ContractError
from secdistill.schemas.task import TaskSpec, load_task
from secdistill.schemas.topics import TopicMap, topic_map
from secdistill.workers.config import WorkerSettings
from secdistill.workers.kafka_tools import consume, create_topics
from secdistill.workers.producer_tool import produce_file


def deployment_topics(s: WorkerSettings, task: TaskSpec | None = None) -> TopicMap:
    """Topic names from settings and the task spec (the configured one, else the bundled one)."""
    return topic_map(s.topics, task or load_task(s.worker.task_path))


def create_all(s: WorkerSettings) -> list[str]:
    """Create every topic; return all names (created or already there)."""
    names = [spec.name for spec in deployment_topics(s).specs()]
    create_topics(s.kafka, names, s.topics.partitions, s.topics.replication_factor)
    return names


def topic_names(s: WorkerSettings, as_json: bool) -> str:
    """Role -> topic, as JSON or a table."""
    data = deployment_topics(s).as_json()
    if as_json:
        return codec.dumps(data).decode()
    rows = [f"{role:<15} {name}" for role, name in data.items() if role != "routes"]
    rows += [f"route:{r:<9} {t}" for r, t in deployment_topics(s).routes.items()]
    return "\n".join(rows)


def resolve_topic(s: WorkerSettings, name: str) -> str:
    """A role name (labelled, deadletter, route:critical, ...) or a literal topic name."""
    tm = deployment_topics(s).as_json()
    if name in tm and name != "routes":
        return str(tm[name])
    if name.startswith("route:") and name[6:] in tm["routes"]:  # type: ignore[operator]
        return str(tm["routes"][name[6:]])  # type: ignore[index]
    return name


def produce_findings(s: WorkerSettings, path: Path, *, topic: str | None, rate: float | None,
                     repeat: str | None, count: int | None, assets: int) -> int:
    """Publish a findings file to the input topic (or another)."""
    target = resolve_topic(s, topic) if topic else deployment_topics(s).input
    return produce_file(s.kafka, target, path, rate=rate, repeat=repeat, count=count, assets=assets)


def consume_lines(s: WorkerSettings, topic: str, *, max_records: int | None, timeout_s: float) -> Iterator[str]:
    """One JSON object per record: metadata plus the value (parsed JSON, else base64)."""
    for rec in consume(s.kafka, [resolve_topic(s, topic)], max_records=max_records, timeout_s=timeout_s):
        doc: dict[str, object] = {"topic": rec.topic, "partition": rec.partition, "offset": rec.offset,
                                  "key": rec.key.decode("utf-8", "replace") if rec.key else None}
        try:
            doc["value"] = codec.loads(rec.value or b"", max_bytes=1 << 30)
        except ContractError:
            doc["value_b64"] = base64.b64encode(rec.value or b"").decode()
        yield codec.dumps(doc).decode()


def predict_command(s: WorkerSettings, src: Path, dest: Path, model: str | None) -> int:
    """Run offline prediction with progress; return the number of bad lines."""
    from rich.console import Console
    from rich.progress import Progress

    from secdistill.workers.inference import load_scorer
    from secdistill.workers.labeller import Labeller
    from secdistill.workers.predict import predict_file

    scorer = load_scorer(s.registry, s.model, model)
    # The bar goes to stderr: with --output - the predictions own stdout.
    with Progress(transient=True, console=Console(stderr=True)) as bar:
        task = bar.add_task(f"scoring with {scorer.version}", total=None)
        report = predict_file(Labeller(scorer, s.model), src, dest, batch_size=s.batch.max_size,
                              max_record_bytes=s.batch.max_record_bytes,
                              progress=lambda n: bar.advance(task, n))
    for lineno, kind, msg in report.bad:
        sys.stderr.write(f"{src}:{lineno}: {kind}: {msg}\n")
    where = "stdout" if str(dest) == "-" else dest
    sys.stderr.write(f"wrote {report.written} predictions to {where}; {len(report.bad)} bad lines\n")
    return len(report.bad)
