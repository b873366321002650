"""The loop on the embedded broker: findings in -> some deferred -> the teacher worker labels them ->
every finding labelled exactly once downstream -> `distill run --from-kafka` publishes a canary from
the Kafka snapshot -> the worker following `canary` switches to it while traffic flows, losing nothing."""

from __future__ import annotations

import shutil
import statistics
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from secdistill.procs import fleet_env
from secdistill.schemas import codec
from secdistill.schemas.config import KafkaSettings
from secdistill.schemas.corpus import read_corpus_records, record_to_finding
from secdistill.schemas.registry import Registry
from secdistill.schemas.topics import TopicMap
from secdistill.workers.config import ModelSettings
from secdistill.workers.inference import OnnxScorer
from tests.integration.helpers import produce

pytestmark = pytest.mark.integration
MODEL = "advisory-triage"


def test_deferred_findings_teacher_labels_redistil_canary_switch(
    kafka: KafkaSettings, topics: TopicMap, start_worker, collect, tiny_registry: str,
    namespace: str, tmp_path: Path,
) -> None:
    reg_path = tmp_path / "registry"
    shutil.copytree(tiny_registry, reg_path)
    reg = Registry(str(reg_path))
    v1 = reg.channel_version(MODEL, "stable")
    reg.promote(MODEL, v1, "canary")

    recs = read_corpus_records()
    findings = [record_to_finding(r, finding_id=f"loop-{i}") for i, r in enumerate(recs[:120])]
    preds = OnnxScorer(reg.version_dir(MODEL, v1), ModelSettings()).score(findings)
    cut = statistics.median(p.confidence["cwe_class"] for p in preds)
    thresholds = {h: 0.0 for h in ("AV", "AC", "PR", "UI", "S", "C", "I", "A")} | {"cwe_class": cut}

    # The curated-reference teacher: the corpus knows every replayed advisory, and it needs no build.
    teacher = start_worker("teacher", command=("teacher", "run"), registry__uri=reg_path,
                           teacher__backend="reference")
    student = start_worker("student", registry__uri=reg_path, registry__channel="canary",
                           model__thresholds=codec.dumps(thresholds).decode(), model__shadow_rate=0.1)
    teacher.wait_ready(90)
    student.wait_ready(90)

    produce(kafka, topics.input, [codec.encode(f) for f in findings])
    ids = {f.finding_id for f in findings}
    col = collect([topics.labelled, topics.teacher, topics.teacher_labels])
    assert col.poll_until(lambda r: col.ids(topics.labelled) >= ids, 120), teacher.tail() + student.tail()
    col.drain(quiet_s=2)

    decided = Counter((r["finding_id"], r["decided_by"]) for r in col.records[topics.labelled])
    by_id = Counter(fid for fid, _ in decided)
    assert set(by_id) == ids
    assert max(by_id.values()) == 1, "a finding was labelled by both the student and the teacher"
    deferred = {r["finding_id"] for r in col.records[topics.teacher] if not r["shadow"]}
    assert deferred and {fid for fid, who in decided if who == "teacher"} == deferred
    shadow = [r for r in col.records[topics.teacher_labels] if r["shadow"]]
    assert shadow and all(r["student_labels"] for r in shadow)
    assert b"secdistill_shadow_agreement{" in teacher.get("/metrics")[1]

    # Redistil from the Kafka snapshot: the run publishes a canary that records where it read to.
    env = fleet_env(kafka__bootstrap_servers=kafka.bootstrap_servers, registry__uri=reg_path,
                    topics__namespace=namespace)
    run = subprocess.run([sys.executable, "-m", "secdistill", "distill", "run", "--preset", "tiny",
                          "--from-kafka"], env=env, capture_output=True, timeout=420)
    assert run.returncode == 0, run.stderr.decode()[-3000:]
    v2 = reg.channel_version(MODEL, "canary")
    assert v2 and v2 != v1 and reg.channel_version(MODEL, "stable") == v1
    snap = reg.manifest(MODEL, v2).data_snapshot["kafka"]
    assert snap["counts"]["teacher_labels"] == len(col.records[topics.teacher_labels])

    # The canary-following worker switches while traffic flows; nothing is lost.
    more = [record_to_finding(r, finding_id=f"after-{i}") for i, r in enumerate(recs[200:320])]
    produce(kafka, topics.input, [codec.encode(f) for f in more])
    more_ids = {f.finding_id for f in more}
    assert col.poll_until(lambda r: col.ids(topics.labelled) >= more_ids, 120), student.tail()
    student_versions = {r["model_version"] for r in col.records[topics.labelled]
                        if r["finding_id"] in more_ids and r["decided_by"] == "student"}
    assert v2 in student_versions, f"worker did not switch: {student_versions}"
    assert student.ready()["model_version"] == v2  # type: ignore[index]
