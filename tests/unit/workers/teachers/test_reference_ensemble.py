"""Reference lookups and the reference-first ensemble."""

from __future__ import annotations

import asyncio

import pytest

from secdistill.schemas.task import TaskSpec
from secdistill.workers.teachers.base import TeacherFailed
from secdistill.workers.teachers.corpus import CorpusRecord
from secdistill.workers.teachers.ensemble import EnsembleBackend
from secdistill.workers.teachers.reference import ReferenceBackend
from tests.unit.workers.teachers.conftest import finding
from tests.unit.workers.teachers.fakes import COMMON, ScriptedBackend

CVSS = {"AV": "L", "AC": "H", "PR": "L", "UI": "R", "S": "U", "C": "L", "I": "N", "A": "N"}


@pytest.fixture
def reference(task: TaskSpec) -> ReferenceBackend:
    rows = [
        ("CVE-2021-1", ("GHSA-one",), {**CVSS, "cwe_class": "sql-injection"}),
        ("CVE-2021-2", ("GHSA-two",), dict(CVSS)),  # a vector, no CWE
        ("CVE-2021-3", (), {**CVSS, "AV": "N"}),  # two sources disagree on AV
        ("CVE-2021-3", (), dict(CVSS)),
    ]
    return ReferenceBackend(task, rows, version="t")


def test_lookup_by_id_and_alias_is_smoothed(task: TaskSpec, reference: ReferenceBackend) -> None:
    [by_alias] = asyncio.run(reference.label([finding(1, advisory_id="ghsa-one")]))
    assert by_alias.labels["cwe_class"] == "sql-injection" and by_alias.evidence == ["CVE-2021-1"]
    assert by_alias.probs["AV"]["L"] == pytest.approx(0.98)
    [by_alias_list] = asyncio.run(reference.label([finding(2, aliases=["CVE-2021-1"])]))
    assert by_alias_list.labels == by_alias.labels


def test_conflicting_sources_are_averaged(task: TaskSpec, reference: ReferenceBackend) -> None:
    probs, _ = reference.lookup(finding(1, advisory_id="CVE-2021-3"))
    av = dict(zip(task.head_map()["AV"].classes, probs["AV"]))
    assert av["N"] == pytest.approx((0.98 + 0.02 / 3) / 2)
    assert av["L"] == pytest.approx(av["N"])


def test_unknown_findings_fail_and_missing_heads_use_priors(task: TaskSpec, reference: ReferenceBackend) -> None:
    with pytest.raises(TeacherFailed):
        asyncio.run(reference.label([finding(1, advisory_id="CVE-1999-0")]))
    ans = reference.answer(finding(2, advisory_id="GHSA-two"))
    assert ans is not None and ans.probs["cwe_class"]["sql-injection"] < 0.5


def test_bundled_corpus_reference(task: TaskSpec, corpus: list[CorpusRecord]) -> None:
    ref = ReferenceBackend.from_corpus(task)
    assert len(ref) > 12_000
    rec = corpus[5]
    assert ref.labels_for(rec.finding).items() >= {k: v for k, v in rec.labels.items()
                                                   if k == "cwe_class"}.items()


def test_ensemble_prefers_reference_and_completes_partial_labels(
        task: TaskSpec, reference: ReferenceBackend) -> None:
    fallback = ScriptedBackend(task, batchable=True)
    ens = EnsembleBackend(task, reference, fallback)
    full, partial, unknown = asyncio.run(ens.label([
        finding(1, advisory_id="CVE-2021-1"), finding(2, advisory_id="CVE-2021-2"), finding(3)]))
    assert fallback.batches == [2]  # only the partial and the unknown finding
    assert full.decided_by == "reference" and full.labels["cwe_class"] == "sql-injection"
    assert partial.decided_by == "reference+fake"
    assert partial.labels["AV"] == "L" and partial.labels["cwe_class"] == COMMON["cwe_class"]
    assert unknown.labels == COMMON
