"""Dataset: alias grouping, dedupe, group and time splits, title masking, label masks, corrections."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pytest

from secdistill.distill.config import DataSettings
from secdistill.distill.dataset import build_dataset, dedupe, split_groups, to_split
from secdistill.distill.errors import DataError
from secdistill.distill.examples import (
    apply_corrections,
    corpus_examples,
    read_corrections,
    read_teacher_labels,
)
from secdistill.schemas import codec
from secdistill.schemas.records import Correction, Finding, TeacherLabel
from secdistill.schemas.task import load_task

TASK = load_task()


def rec(rid: str, vid: str, aliases: list[str], desc: str, vector: str | None = "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H",
        cwe: str | None = None, title: str = "t", generic: bool = False, published: str = "2021-01-01") -> dict:
    return {"record_id": rid, "id": vid, "aliases": aliases, "description": desc, "cvss_vector": vector,
            "cwe_class": cwe, "title": title, "title_generic": generic, "published": published,
            "ecosystem": "npm", "package": "p", "source": "gitlab-advisories-community"}


def test_aliases_link_groups_and_duplicates_merge() -> None:
    exs = corpus_examples(TASK, [
        rec("a", "CVE-1", ["GHSA-x"], "Same text."),
        rec("b", "GHSA-x", ["GHSA-y"], "same  TEXT."),  # shares GHSA-x: same group, same text
        rec("c", "GHSA-y", [], "Other text."),  # linked transitively through GHSA-y
        rec("d", "CVE-2", [], "Unrelated."),
    ])
    unique = dedupe(exs)
    assert len(unique) == 3
    groups = {ex.uid: ex.group for ex in unique}
    assert groups["a"] == groups["c"] != groups["d"]


def test_group_split_never_shares_a_vulnerability() -> None:
    exs = corpus_examples(TASK, [rec(f"r{i}", f"CVE-{i // 3}", [], f"text {i}") for i in range(300)])
    train, val = split_groups(dedupe(exs), DataSettings(val_fraction=0.3, seed=3))
    assert train and val
    assert not {e.group for e in train} & {e.group for e in val}


def test_time_split_puts_later_groups_in_validation() -> None:
    rows = [rec(f"r{i}", f"CVE-{i}", [], f"text {i}", published=f"20{10 + i // 10:02d}-01-01") for i in range(100)]
    train, val = split_groups(dedupe(corpus_examples(TASK, rows)), DataSettings(split="time", val_fraction=0.2))
    assert max(e.published for e in train) < min(e.published for e in val)


def test_generic_titles_masked_and_missing_heads_unlabelled() -> None:
    exs = corpus_examples(TASK, [rec("a", "CVE-1", [], "Desc one.", vector=None, cwe="xss",
                                     title="Cross-site Scripting", generic=True),
                                 rec("b", "CVE-2", [], "Desc two.", title="Specific title")])
    split = to_split(exs, TASK)
    assert "Cross-site" not in split.texts[0] and "Specific title" in split.texts[1]
    assert "Specific title" not in split.texts_no_title[1]
    names = [h.name for h in TASK.heads]
    assert split.hard[0, names.index("AV")] == -1 and split.hard[0, names.index("cwe_class")] == 0
    assert split.hard[1, names.index("cwe_class")] == -1 and split.hard[1, names.index("C")] == 2


def _write(path: Path, records: list) -> Path:
    path.write_bytes(b"\n".join(codec.encode(r) for r in records) + b"\n")
    return path


def test_teacher_labels_and_corrections_with_provenance(tmp_path: Path) -> None:
    f = Finding(finding_id="f1", description="Stored XSS in comments.", advisory_id="CVE-9")
    label = TeacherLabel(finding_id="f1", finding=f, fingerprint=f.fingerprint(),
                         probs={"cwe_class": {"xss": 0.7, "sql-injection": 0.3}, "AV": {"N": 1.0}},
                         labels={"cwe_class": "xss"}, teacher_id="knn", teacher_version="2")
    exs = read_teacher_labels([_write(tmp_path / "t.jsonl", [label])], TASK)
    assert exs[0].labels == {"cwe_class": "xss", "AV": "N"}
    assert exs[0].provenance["cwe_class"] == "teacher:knn@2"
    corr = Correction(finding_id="f1", labels={"cwe_class": "sql-injection"}, author="alice",
                      created_at=datetime(2024, 1, 1, tzinfo=timezone.utc))
    corrected, stats = apply_corrections(exs, read_corrections([_write(tmp_path / "c.jsonl", [corr])]), TASK)
    ex = corrected[0]
    assert ex.labels["cwe_class"] == "sql-injection" and "cwe_class" not in ex.probs
    assert ex.provenance["cwe_class"] == "correction:alice" and ex.provenance["AV"].startswith("teacher")
    assert stats["applied"] == 1
    split = to_split(corrected, TASK)
    lo, hi = TASK.slices()["AV"]
    assert split.has_teacher[0, 0] and np.allclose(split.teacher[0, lo:hi], [1, 0, 0, 0])


def test_bad_inputs_raise_data_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"finding_id": "x"}\n')
    with pytest.raises(DataError, match="bad.jsonl:1"):
        read_teacher_labels([bad], TASK)
    with pytest.raises(DataError, match="not in the task"):
        apply_corrections([], [Correction(finding_id="x", labels={"AV": "Z"}, author="a")], TASK)
    with pytest.raises(DataError):
        build_dataset([], TASK, DataSettings())


def test_bundled_corpus_card() -> None:
    data = build_dataset(corpus_examples(TASK), TASK, DataSettings(max_train=400, max_val=100))
    card = data.card
    assert card["records_in"] == 12980 and card["examples_after_dedupe"] < 12980
    assert card["train"]["examples"] == 400
    assert set(card["train"]["heads"]) == {h.name for h in TASK.heads}
    assert card["train"]["label_sources"] == {"reference": int((data.train.hard >= 0).sum())}
