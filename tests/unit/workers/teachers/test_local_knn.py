"""The built teacher: registry artefacts, kNN, local ensemble, TF-IDF parity, build metrics."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest

from secdistill.schemas.errors import RegistryError
from secdistill.schemas.registry import Registry
from secdistill.schemas.task import TaskSpec
from secdistill.workers.teachers.corpus import CorpusRecord
from secdistill.workers.teachers.local import LocalBackend, TeacherArtefacts, load_teacher
from secdistill.workers.teachers.tfidf import TfidfLogReg
from tests.unit.workers.teachers.conftest import finding


@pytest.fixture(scope="module")
def arts(teacher_registry: str, task: TaskSpec) -> TeacherArtefacts:
    return load_teacher(teacher_registry, task, threads=1)


def test_manifest_is_a_teacher_with_validation_metrics(arts: TeacherArtefacts) -> None:
    m = arts.manifest
    assert m.kind == "teacher" and m.name == "advisory-triage-teacher"
    for name in ("local", "tfidf", "knn"):
        assert 0.0 < m.metrics["val"][name]["cvss_mean_accuracy"] <= 1.0
    assert m.data_snapshot["train"] == len(arts.index) and m.data_snapshot["val"] > 0
    assert {"embedder.onnx", "tokenizer.json", "index.npy", "labels.npy", "records.json",
            "tfidf_vocab.json", "lr_coef.npy", "teacher.json", "val_probs.npy",
            "val_uids.json"} <= set(m.files)
    val = np.load(arts.folder / "val_probs.npy", allow_pickle=False)
    assert val.shape == (m.data_snapshot["val"], 38) and np.all(val >= 0)


def test_worker_embedder_reproduces_the_index(arts: TeacherArtefacts) -> None:
    vecs = arts.embedder.embed(arts.index.texts[:16])
    assert np.abs(vecs - arts.index.vectors[:16]).max() < 1e-4
    assert np.allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-4)


def test_knn_votes_cite_their_neighbours(arts: TeacherArtefacts) -> None:
    knn = arts.knn()
    text = arts.index.texts[3]
    [ans] = asyncio.run(knn.label([finding(1, text)]))
    assert ans.evidence and set(ans.evidence) <= set(arts.index.ids)
    for dist in ans.probs.values():
        assert sum(dist.values()) == pytest.approx(1.0, abs=1e-5)
    [[(ex_text, ex_labels), *_]] = knn.examples([finding(1, text)], 3)
    assert ex_text in arts.index.texts and ex_labels


def test_local_uses_reference_for_known_advisories(arts: TeacherArtefacts) -> None:
    local = LocalBackend(arts)
    row = next(i for i in range(len(arts.index)) if arts.index.labels[i, 0] >= 0)
    known = finding("k", "anything at all", advisory_id=arts.index.ids[row])
    unknown = finding("u", arts.index.texts[row])
    k, u = asyncio.run(local.label([known, unknown]))
    assert k.decided_by == "reference" and k.evidence == [arts.index.ids[row]]
    assert k.labels["AV"] == arts.index.row_labels(row)["AV"]
    assert u.decided_by == "local" and len(u.evidence) > 0


def test_tampered_artefact_is_refused(teacher_registry: str, task: TaskSpec, tmp_path: Path) -> None:
    reg = Registry(teacher_registry)
    src = reg.resolve("advisory-triage-teacher")
    import shutil

    copy = tmp_path / "teacher"
    shutil.copytree(src, copy)
    (copy / "lr_intercept.npy").write_bytes(b"\x93NUMPY tampered")
    with pytest.raises(RegistryError, match="checksum"):
        load_teacher(teacher_registry, task, ref=str(copy))


def test_numpy_tfidf_matches_scikit_learn(task: TaskSpec, corpus: list[CorpusRecord], tmp_path: Path) -> None:
    pytest.importorskip("sklearn")
    from secdistill.distill.baseline import TfidfBaseline
    from secdistill.distill.teacher_build import export_tfidf

    texts = [task.render(r.finding) for r in corpus]
    hard = np.array([[h.classes.index(r.labels[h.name]) if h.name in r.labels else -1
                      for h in task.heads] for r in corpus])
    hard[:, 0] = np.where(hard[:, 0] >= 0, np.minimum(hard[:, 0], 2), -1)  # AV: drop class P
    model = TfidfBaseline(task).fit(texts[:300], hard[:300])
    export_tfidf(model, task, tmp_path)
    ours = TfidfLogReg.load(tmp_path, task).predict_proba(texts[300:])
    theirs = model.predict_proba(texts[300:])
    for head, (lo, hi) in task.slices().items():
        assert np.abs(ours[head] - theirs[:, lo:hi]).max() < 1e-4, head
