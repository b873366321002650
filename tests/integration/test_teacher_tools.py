"""Teacher tools against the embedded broker: review import publishes Corrections; the shadow and
cost reports read the teacher-labels and labelled topics."""

from __future__ import annotations

import csv
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from secdistill.cli import app
from secdistill.schemas import codec
from secdistill.schemas.config import KafkaSettings
from secdistill.schemas.records import ReviewItem, TeacherLabel
from secdistill.schemas.task import load_task
from secdistill.schemas.topics import TopicMap
from secdistill.workers.kafka_tools import make_producer, produce_values
from secdistill.workers.teachers.base import answer_from_probs, smoothed_one_hot
from secdistill.workers.teachers.outputs import labelled_finding
from tests.integration.helpers import Collector
from tests.unit.workers.teachers.conftest import finding, request_for
from tests.unit.workers.teachers.fakes import COMMON

pytestmark = pytest.mark.integration
runner = CliRunner()


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, kafka: KafkaSettings, namespace: str, topics: TopicMap) -> None:
    monkeypatch.setenv("SECDISTILL_KAFKA__BOOTSTRAP_SERVERS", kafka.bootstrap_servers)
    monkeypatch.setenv("SECDISTILL_TOPICS__NAMESPACE", namespace)


def send(kafka: KafkaSettings, topic: str, records: list) -> None:
    items = [(r.finding_id.encode(), codec.encode(r)) for r in records]
    assert produce_values(make_producer(kafka), topic, items) == len(records)


def test_review_export_import_over_kafka(env: None, kafka: KafkaSettings, topics: TopicMap,
                                         tmp_path: Path, collect: Callable[[list[str]], Collector]) -> None:
    items = [ReviewItem(finding_id=f"f-{i}", finding=finding(i), why=["rare_class:AV=P"],
                        teacher_labels=COMMON) for i in range(3)]
    send(kafka, topics.review, items)
    edit = tmp_path / "review.csv"
    res = runner.invoke(app, ["review", "export", "--output", str(edit), "--timeout", "20"])
    assert res.exit_code == 0 and "3 review rows" in res.output, res.output
    with edit.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    rows[0]["accept"] = "teacher"  # the reviewer confirms the teacher on one row
    with edit.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    res = runner.invoke(app, ["review", "import", "--input", str(edit), "--author", "alice"])
    assert res.exit_code == 0 and f"published to {topics.corrections}" in res.output, res.output
    out = collect([topics.corrections])
    assert out.poll_until(lambda r: len(r[topics.corrections]) >= 1, timeout_s=30)
    [corr] = out.records[topics.corrections]
    assert corr["author"] == "alice" and corr["labels"] == COMMON and corr["source"] == "review"


def test_reports_read_the_topics(env: None, kafka: KafkaSettings, topics: TopicMap) -> None:
    task = load_task()
    labels = []
    for i in range(4):
        req = request_for(finding(i, ecosystem="PyPI"), shadow=i < 2, student={**COMMON, "AV": "L"})
        labels.append(TeacherLabel(finding_id=req.finding_id, finding=req.finding, fingerprint="x",
                                   probs={}, labels=COMMON, teacher_id="t", cost_usd=0.01,
                                   shadow=req.shadow, student_labels=req.student.labels))
    send(kafka, topics.teacher_labels, labels)
    ans = answer_from_probs(task, {h.name: smoothed_one_hot(h.classes, COMMON[h.name]) for h in task.heads})
    send(kafka, topics.labelled, [labelled_finding(task, request_for(finding(i)), ans, "t:1")
                                  for i in range(10)])
    res = runner.invoke(app, ["report", "shadow", "--json", "--timeout", "20"])
    assert res.exit_code == 0, res.output
    snap = codec.loads(res.output)
    assert snap["n"] == 2 and snap["heads"]["AV"]["rate"] == 0.0
    res = runner.invoke(app, ["report", "cost", "--json", "--timeout", "20"])
    assert res.exit_code == 0, res.output
    table = codec.loads(res.output)
    assert table["inputs"]["findings"] == 10 and table["inputs"]["teacher_calls"] == 4
