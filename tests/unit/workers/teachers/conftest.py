"""Fixtures for the teacher tests: the task, a small labelled corpus, a tiny teacher in a registry."""

from __future__ import annotations

import pytest

from secdistill.schemas.records import Finding, Prediction, TeacherRequest
from secdistill.schemas.task import TaskSpec, load_task
from secdistill.workers.teachers.corpus import CorpusRecord, read_corpus


@pytest.fixture(scope="session")
def task() -> TaskSpec:
    """The bundled advisory-triage task."""
    return load_task()


@pytest.fixture(scope="session")
def corpus() -> list[CorpusRecord]:
    """Every 30th curated record (~430, old and new sources, CVSS and CWE labels)."""
    return [r for i, r in enumerate(read_corpus()) if i % 30 == 0]


@pytest.fixture(scope="session")
def corpus_rows() -> list[dict]:
    """The same subset as raw corpus rows (what ``build_teacher`` takes)."""
    from secdistill.distill.examples import read_corpus_records

    return [r for i, r in enumerate(read_corpus_records()) if i % 30 == 0]


@pytest.fixture(scope="session")
def teacher_registry(tmp_path_factory: pytest.TempPathFactory, corpus_rows: list[dict]) -> str:
    """A registry with a tiny teacher (random 2-layer encoder) built from the subset, on stable."""
    from secdistill.distill.config import DataSettings
    from secdistill.distill.teacher_build import TeacherBuildConfig, build_teacher

    root = tmp_path_factory.mktemp("teacher-registry")
    cfg = TeacherBuildConfig(tiny_encoder=True, data=DataSettings(val_fraction=0.25), threads=1,
                             weight_folds=2, c=0.5)  # a small C converges fast on 340 rows
    build_teacher(str(root), cfg, records=corpus_rows)
    return str(root)


def request_for(finding: Finding, *, shadow: bool = False, student: dict[str, str] | None = None,
                confidence: float = 0.5) -> TeacherRequest:
    """A TeacherRequest with a student opinion (labels at one confidence)."""
    labels = student or {}
    pred = Prediction(
        finding_id=finding.finding_id, labels=labels,
        probs={h: {c: confidence} for h, c in labels.items()},
        confidence={h: confidence for h in labels}, model_version="student-test",
        deferred=not shadow, shadow=shadow,
    )
    return TeacherRequest(finding_id=finding.finding_id, finding=finding, student=pred, shadow=shadow,
                          reasons=[] if shadow else ["low_confidence:AV"])


def finding(i: int | str, text: str | None = None, **kw: object) -> Finding:
    """A synthetic finding."""
    return Finding(finding_id=f"f-{i}", description=text or f"advisory text number {i}", **kw)  # type: ignore[arg-type]
