"""``secdistill teacher label``, ``review export/import`` and ``report shadow/cost`` on files."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from secdistill.cli import app
from secdistill.schemas import codec
from secdistill.schemas.records import Correction, DecidedBy, ReviewItem, TeacherLabel
from secdistill.schemas.task import TaskSpec
from secdistill.workers.teachers.corpus import CorpusRecord
from secdistill.workers.teachers.reports import read_jsonl
from tests.unit.workers.teachers.conftest import finding, request_for
from tests.unit.workers.teachers.fakes import COMMON

runner = CliRunner()


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SECDISTILL_REGISTRY__URI", str(tmp_path / "empty-registry"))


def write_findings(path: Path, corpus: list[CorpusRecord], n: int) -> list[str]:
    lines = [codec.encode(r.finding) for r in corpus[:n]]
    lines.insert(1, b'{"finding_id": "broken"')  # a bad line is counted, not fatal
    lines.append(codec.encode(finding("unknown", "a finding no curated record knows")))
    path.write_bytes(b"\n".join(lines) + b"\n")
    return [r.finding.finding_id for r in corpus[:n]]


def test_label_is_resumable_and_budget_aware(tmp_path: Path, corpus: list[CorpusRecord],
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    src, out = tmp_path / "findings.jsonl", tmp_path / "labels.jsonl"
    ids = write_findings(src, corpus, 5)
    monkeypatch.setenv("SECDISTILL_TEACHER__MAX_CALLS_PER_DAY", "3")
    first = runner.invoke(app, ["teacher", "label", "--input", str(src), "--output", str(out),
                                "--backend", "reference", "--batch-size", "4"])
    assert first.exit_code == 1 and "rerun" in first.output
    assert [r.finding_id for r in read_jsonl(out, TeacherLabel)] == ids[:3]
    monkeypatch.setenv("SECDISTILL_TEACHER__MAX_CALLS_PER_DAY", "100")
    second = runner.invoke(app, ["teacher", "label", "--input", str(src), "--output", str(out),
                                 "--backend", "reference"])
    assert second.exit_code == 0, second.output
    labels = list(read_jsonl(out, TeacherLabel))
    assert [r.finding_id for r in labels] == ids and labels[0].teacher_id == "reference"
    rejected = (tmp_path / "labels.jsonl.rejected.jsonl").read_bytes().splitlines()
    assert [codec.loads(x)["reason"] for x in rejected] == ["teacher_failed"]
    third = runner.invoke(app, ["teacher", "label", "--input", str(src), "--output", str(out),
                                "--backend", "reference"])
    assert third.exit_code == 0 and len(list(read_jsonl(out, TeacherLabel))) == len(ids)


def test_label_with_the_local_teacher(tmp_path: Path, corpus: list[CorpusRecord], teacher_registry: str,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SECDISTILL_REGISTRY__URI", teacher_registry)
    src, out = tmp_path / "findings.jsonl", tmp_path / "labels.jsonl"
    ids = write_findings(src, corpus[100:], 6)
    res = runner.invoke(app, ["teacher", "label", "--input", str(src), "--output", str(out)])
    assert res.exit_code == 0, res.output
    labels = list(read_jsonl(out, TeacherLabel))
    assert {r.finding_id for r in labels} == {*ids, "f-unknown"}
    assert all(r.teacher_id == "local" and r.evidence for r in labels)


def test_label_without_a_built_teacher_says_how_to_build_one(tmp_path: Path, corpus: list[CorpusRecord]) -> None:
    src = tmp_path / "findings.jsonl"
    write_findings(src, corpus, 1)
    res = runner.invoke(app, ["teacher", "label", "--input", str(src), "--output", str(tmp_path / "o"),
                              "--backend", "local"])
    assert res.exit_code == 1 and "secdistill teacher build" in res.output
    res = runner.invoke(app, ["teacher", "label", "--input", str(src), "--output", str(tmp_path / "o"),
                              "--backend", "nope"])
    assert res.exit_code == 2


def review_items(task: TaskSpec) -> list[ReviewItem]:
    out = []
    for i in range(3):
        f = finding(i, f"advisory {i}, with a comma and\na newline", advisory_id=f"CVE-2020-{i}")
        out.append(ReviewItem(finding_id=f.finding_id, finding=f, why=["confident_student_disagrees:AV"],
                              teacher_labels=COMMON, student_labels={**COMMON, "AV": "L"}))
    return out


@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
def test_review_round_trip(tmp_path: Path, task: TaskSpec, suffix: str) -> None:
    items = tmp_path / "review.jsonl"
    items.write_bytes(b"".join(codec.encode(i) + b"\n" for i in review_items(task)))
    edit = tmp_path / f"edit{suffix}"
    res = runner.invoke(app, ["review", "export", "--input", str(items), "--output", str(edit)])
    assert res.exit_code == 0, res.output
    if suffix == ".csv":
        import csv

        rows = list(csv.DictReader(edit.open(newline="", encoding="utf-8")))
    else:
        rows = [codec.loads(x) for x in edit.read_bytes().splitlines()]
    rows[0]["correct_AV"] = "L"
    rows[1]["accept"] = "teacher"
    rows[1]["author"] = "bob"
    _write_rows(edit, rows)
    out = tmp_path / "corrections.jsonl"
    res = runner.invoke(app, ["review", "import", "--input", str(edit), "--author", "alice",
                              "--no-publish", "--output", str(out)])
    assert res.exit_code == 0, res.output
    corr = list(read_jsonl(out, Correction))
    assert [(c.finding_id, c.author) for c in corr] == [("f-0", "alice"), ("f-1", "bob")]
    assert corr[0].labels == {"AV": "L"} and corr[1].labels == COMMON
    assert corr[0].finding and corr[0].fingerprint == review_items(task)[0].finding.fingerprint()
    rows[2]["correct_AV"] = "Z"
    _write_rows(edit, rows)
    res = runner.invoke(app, ["review", "import", "--input", str(edit), "--no-publish",
                              "--output", str(tmp_path / "none.jsonl")])
    assert res.exit_code == 2 and "AV='Z'" in res.output and not (tmp_path / "none.jsonl").exists()


def _write_rows(path: Path, rows: list[dict]) -> None:
    if path.suffix == ".csv":
        import csv

        with path.open("w", newline="", encoding="utf-8") as fh:
            w = csv.DictWriter(fh, fieldnames=list(rows[0]))
            w.writeheader()
            w.writerows(rows)
    else:
        path.write_bytes(b"".join(codec.dumps(r) + b"\n" for r in rows))


def teacher_label(i: int, *, shadow: bool, cached: bool = False, av: str = "N") -> TeacherLabel:
    req = request_for(finding(i, ecosystem="npm"), shadow=shadow, student={**COMMON, "AV": av})
    return TeacherLabel(finding_id=req.finding_id, finding=req.finding, fingerprint="x", probs={},
                        labels=COMMON, teacher_id="t", cost_usd=0.0 if cached else 0.002,
                        shadow=shadow, student_labels=req.student.labels, cached=cached)


def test_report_shadow_and_cost(tmp_path: Path, task: TaskSpec) -> None:
    labels = [teacher_label(i, shadow=True, av="N" if i % 2 else "L") for i in range(4)]
    labels += [teacher_label(10 + i, shadow=False, cached=i > 0) for i in range(6)]
    tl = tmp_path / "tl.jsonl"
    tl.write_bytes(b"".join(codec.encode(x) + b"\n" for x in labels))
    res = runner.invoke(app, ["report", "shadow", "--input", str(tl), "--json"])
    assert res.exit_code == 0, res.output
    snap = codec.loads(res.output)
    assert snap["n"] == 4 and snap["heads"]["AV"]["rate"] == 0.5 and snap["heads"]["C"]["rate"] == 1.0
    text = runner.invoke(app, ["report", "shadow", "--input", str(tl)]).output
    assert "AV" in text and "npm" in text

    from secdistill.workers.teachers.base import answer_from_probs, smoothed_one_hot
    from secdistill.workers.teachers.outputs import labelled_finding

    ans = answer_from_probs(task, {h.name: smoothed_one_hot(h.classes, COMMON[h.name]) for h in task.heads})
    lfs = [labelled_finding(task, request_for(finding(i)), ans, "t:1") for i in range(100)]
    lfs = [lf if i < 6 else lf.model_copy(update={"decided_by": DecidedBy.STUDENT}) for i, lf in enumerate(lfs)]
    lf_path = tmp_path / "lf.jsonl"
    lf_path.write_bytes(b"".join(codec.encode(x) + b"\n" for x in lfs))
    res = runner.invoke(app, ["report", "cost", "--labelled", str(lf_path), "--teacher-labels", str(tl), "--json"])
    assert res.exit_code == 0, res.output
    table = codec.loads(res.output)
    assert table["inputs"]["findings"] == 100 and table["inputs"]["teacher_calls"] == 5
    assert table["inputs"]["teacher_usd_per_call"] == pytest.approx(0.002)
    per = table["per_million_usd"]
    assert per["teacher_only"] == pytest.approx(2000.0)
    assert per["student_only"] < per["actual_mix"] < per["teacher_only"]
    assert per["actual_mix"] == pytest.approx(per["student_only"] + 0.05 * 2000.0, rel=1e-3)
