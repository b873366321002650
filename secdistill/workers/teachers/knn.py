"""The ``knn`` teacher: nearest curated advisories by embedding, similarity-weighted votes per head.

Evidence is the advisory ids of the nearest neighbours, so a reviewer can open what the vote rests on.
Artefacts (``secdistill teacher build``): ``index.npy`` (n, d) unit vectors, ``labels.npy`` (n, heads)
class indices with -1 where a record leaves a head unlabelled, ``records.json`` (ids, aliases, texts).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from secdistill.schemas import codec
from secdistill.schemas.records import Finding
from secdistill.schemas.task import TaskSpec
from secdistill.workers.teachers.base import TeacherAnswer, answer_from_probs
from secdistill.workers.teachers.embed import Embedder

INDEX = "index.npy"
LABELS = "labels.npy"
RECORDS = "records.json"


@dataclass(frozen=True)
class Neighbours:
    """Row numbers and cosine similarities of one query's nearest records, best first."""

    rows: np.ndarray
    sims: np.ndarray


class KnnIndex:
    """Curated records as unit vectors with their labels, ids and texts."""

    def __init__(self, task: TaskSpec, vectors: np.ndarray, labels: np.ndarray,
                 records: dict[str, list[Any]]) -> None:
        if labels.shape != (len(vectors), len(task.heads)):
            raise ValueError(f"labels {labels.shape} do not fit {len(vectors)} vectors x heads")
        self.task = task
        self.vectors = vectors.astype(np.float32)
        self.labels = labels.astype(np.int64)
        self.ids: list[str] = list(records["ids"])
        self.aliases: list[list[str]] = [list(a) for a in records.get("aliases", [[]] * len(self.ids))]
        self.texts: list[str] = list(records.get("texts", [""] * len(self.ids)))

    @classmethod
    def load(cls, folder: Path, task: TaskSpec) -> KnnIndex:
        """Load ``index.npy``, ``labels.npy`` (no pickle) and ``records.json``."""
        records = codec.loads((folder / RECORDS).read_bytes(), max_bytes=1 << 30)
        return cls(task, np.load(folder / INDEX, allow_pickle=False),
                   np.load(folder / LABELS, allow_pickle=False), records)

    def __len__(self) -> int:
        return len(self.ids)

    def search(self, queries: np.ndarray, k: int) -> list[Neighbours]:
        """The k most similar records per query (cosine on unit vectors)."""
        sims = queries.astype(np.float32) @ self.vectors.T
        k = min(k, sims.shape[1])
        out = []
        for row in sims:
            top = np.argpartition(-row, k - 1)[:k]
            top = top[np.argsort(-row[top], kind="stable")]
            out.append(Neighbours(top, row[top]))
        return out

    def row_labels(self, row: int) -> dict[str, str]:
        """Labels of one record, unlabelled heads left out."""
        return {h.name: h.classes[c] for h, c in zip(self.task.heads, self.labels[row]) if c >= 0}

    def votes(self, nb: Neighbours, tau: float, alpha: float = 1e-3) -> dict[str, np.ndarray]:
        """Similarity-weighted votes (softmax of sim / tau) per head, lightly smoothed."""
        w = np.exp((nb.sims - nb.sims.max()) / tau)
        out = {}
        for j, head in enumerate(self.task.heads):
            lab = self.labels[nb.rows, j]
            v = np.full(len(head.classes), alpha)
            ok = lab >= 0
            np.add.at(v, lab[ok], w[ok])
            out[head.name] = v / v.sum()
        return out


class KnnBackend:
    """Grounded teacher: embeds the finding, votes over its nearest curated advisories."""

    name = "knn"
    batchable = True

    def __init__(self, task: TaskSpec, embedder: Embedder, index: KnnIndex, version: str = "0",
                 k: int = 25, tau: float = 0.05, evidence_k: int = 5) -> None:
        self.task, self.embedder, self.index = task, embedder, index
        self.version, self.k, self.tau, self.evidence_k = version, k, tau, evidence_k

    def neighbours(self, findings: list[Finding], k: int | None = None) -> list[Neighbours]:
        """Nearest curated records per finding (blocking: call from a thread)."""
        q = self.embedder.embed([self.task.render(f) for f in findings])
        return self.index.search(q, k or self.k)

    def evidence(self, nb: Neighbours) -> list[str]:
        """Distinct advisory ids of the closest records, best first."""
        seen: list[str] = []
        for r in nb.rows:
            if self.index.ids[r] not in seen:
                seen.append(self.index.ids[r])
            if len(seen) == self.evidence_k:
                break
        return seen

    def vote_probs(self, findings: list[Finding]) -> list[tuple[dict[str, np.ndarray], list[str]]]:
        """Per finding: head distributions and evidence ids (blocking)."""
        return [(self.index.votes(nb, self.tau), self.evidence(nb)) for nb in self.neighbours(findings)]

    def examples(self, findings: list[Finding], k: int) -> list[list[tuple[str, dict[str, str]]]]:
        """Nearest curated (text, labels) pairs per finding, for an LLM prompt (blocking)."""
        return [[(self.index.texts[r], self.index.row_labels(int(r))) for r in nb.rows]
                for nb in self.neighbours(findings, k)]

    async def retrieve(self, findings: list[Finding], k: int) -> list[list[tuple[str, dict[str, str]]]]:
        """``examples`` off the event loop: the ``Retriever`` the openai backend takes."""
        return await asyncio.to_thread(self.examples, findings, k)

    def _label_sync(self, findings: list[Finding]) -> list[TeacherAnswer]:
        return [answer_from_probs(self.task, p, ev, decided_by="knn")
                for p, ev in self.vote_probs(findings)]

    async def label(self, findings: list[Finding]) -> list[TeacherAnswer]:
        """Vote off the event loop (ONNX inference blocks)."""
        return await asyncio.to_thread(self._label_sync, findings)

    async def probe(self) -> None:
        """Always healthy once loaded."""

    async def aclose(self) -> None:
        """Nothing to release."""
