"""The ``local`` teacher: the strongest offline ensemble, loaded from a teacher version in the registry.

Curated labels when the finding is a known advisory (reference), else a weighted average of
TF-IDF + logistic-regression probabilities and kNN votes (weights in ``teacher.json``, chosen by
``secdistill teacher build``). The reference part covers exactly the records the models were fitted
on (the training split), so validation numbers stay honest.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import numpy as np

from secdistill.schemas import codec
from secdistill.schemas.errors import RegistryError
from secdistill.schemas.manifest import ModelManifest
from secdistill.schemas.records import Finding
from secdistill.schemas.registry import Registry, verify
from secdistill.schemas.task import TaskSpec
from secdistill.workers.teachers.base import TeacherAnswer, answer_from_probs
from secdistill.workers.teachers.embed import Embedder
from secdistill.workers.teachers.knn import KnnBackend, KnnIndex
from secdistill.workers.teachers.reference import ReferenceBackend
from secdistill.workers.teachers.tfidf import TfidfLogReg

log = logging.getLogger(__name__)

CONFIG = "teacher.json"


class TeacherArtefacts:
    """A verified teacher version: manifest, config and the loaded parts."""

    def __init__(self, folder: Path, task: TaskSpec, threads: int = 0) -> None:
        self.folder = folder
        self.manifest: ModelManifest = verify(folder)
        if self.manifest.kind != "teacher":
            raise RegistryError(f"{folder} holds a {self.manifest.kind}, not a teacher")
        if self.manifest.heads != {h.name: h.classes for h in task.heads}:
            raise RegistryError(f"teacher in {folder} was built for other heads than task {task.name}")
        self.config: dict[str, Any] = codec.loads((folder / CONFIG).read_bytes())
        self.task = task
        self.tfidf = TfidfLogReg.load(folder, task, max_n=int(self.config["tfidf"]["max_n"]))
        self.index = KnnIndex.load(folder, task)
        self.embedder = Embedder.load(folder, int(self.config.get("max_length", 128)), threads)

    @property
    def version(self) -> str:
        """The registry version."""
        return self.manifest.version

    def knn(self) -> KnnBackend:
        """A kNN backend over these artefacts."""
        cfg = self.config["knn"]
        return KnnBackend(self.task, self.embedder, self.index, self.version,
                          k=int(cfg["k"]), tau=float(cfg["tau"]))

    def reference(self) -> ReferenceBackend:
        """Curated labels of the records the teacher was fitted on."""
        rows = ((self.index.ids[i], tuple(self.index.aliases[i]), self.index.row_labels(i))
                for i in range(len(self.index)))
        return ReferenceBackend(self.task, rows, version=self.version)


def teacher_model_name(task: TaskSpec) -> str:
    """Registry name of a task's teacher (``advisory-triage-teacher``)."""
    return f"{task.name}-teacher"


def load_teacher(registry_uri: str, task: TaskSpec, ref: str | None = None,
                 model: str | None = None, threads: int = 0) -> TeacherArtefacts:
    """Resolve a teacher version (folder, version or channel; ``stable`` by default) and load it."""
    model = model or teacher_model_name(task)
    folder = Registry(registry_uri).resolve(model, ref, default_channel="stable")
    arts = TeacherArtefacts(folder, task, threads)
    log.info("teacher %s version %s loaded from %s", model, arts.version, folder)
    return arts


class LocalBackend:
    """Reference when known, else ``w_tfidf[head] * P_tfidf + w_knn[head] * P_knn``."""

    name = "local"
    batchable = True

    def __init__(self, arts: TeacherArtefacts, use_reference: bool = True) -> None:
        self.task = arts.task
        self.version = arts.version
        self.tfidf = arts.tfidf
        self.knn = arts.knn()
        self.reference = arts.reference() if use_reference else None
        weights = arts.config["weights"]
        self.w_tfidf = _per_head(weights["tfidf"], self.task)
        self.w_knn = _per_head(weights["knn"], self.task)

    def model_probs(self, findings: list[Finding]) -> list[tuple[dict[str, np.ndarray], list[str]]]:
        """The blended model distributions and kNN evidence, reference ignored (blocking)."""
        texts = [self.task.render(f) for f in findings]
        lr = self.tfidf.predict_proba(texts)
        out = []
        for i, (votes, evidence) in enumerate(self.knn.vote_probs(findings)):
            blend = {h: self.w_tfidf[h] * lr[h][i] + self.w_knn[h] * votes[h] for h in votes}
            out.append((blend, evidence))
        return out

    def _label_sync(self, findings: list[Finding]) -> list[TeacherAnswer]:
        answers = []
        for f, (blend, evidence) in zip(findings, self.model_probs(findings)):
            ref, ref_ids = self.reference.lookup(f) if self.reference else ({}, [])
            if ref:
                # Heads the curated record leaves unlabelled (many have no CWE) come from the models.
                probs = {h: ref.get(h, blend[h]) for h in blend}
                answers.append(answer_from_probs(self.task, probs, ref_ids, decided_by="reference"))
            else:
                answers.append(answer_from_probs(self.task, blend, evidence, decided_by="local"))
        return answers

    async def label(self, findings: list[Finding]) -> list[TeacherAnswer]:
        """Label off the event loop."""
        return await asyncio.to_thread(self._label_sync, findings)

    async def probe(self) -> None:
        """Always healthy once loaded."""

    async def aclose(self) -> None:
        """Nothing to release."""


def _per_head(weight: float | dict[str, float], task: TaskSpec) -> dict[str, float]:
    """A weight per head (older configs hold one number for all heads)."""
    if isinstance(weight, dict):
        return {h.name: float(weight[h.name]) for h in task.heads}
    return {h.name: float(weight) for h in task.heads}
