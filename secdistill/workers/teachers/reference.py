"""The ``reference`` teacher: curated labels looked up by advisory id or alias (smoothed one-hot)."""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from secdistill.schemas.records import Finding
from secdistill.schemas.task import TaskSpec
from secdistill.workers.teachers.base import (
    TeacherAnswer,
    TeacherFailed,
    answer_from_probs,
    smoothed_one_hot,
)
from secdistill.workers.teachers.corpus import corpus_path, read_corpus

LabelRow = tuple[str, tuple[str, ...], dict[str, str]]  # (advisory id, aliases, labels)


def _key(identifier: str) -> str:
    return identifier.strip().upper()


class ReferenceBackend:
    """Curated labels by id/alias. Heads the curated record leaves unlabelled are filled from priors."""

    name = "reference"
    batchable = True

    def __init__(self, task: TaskSpec, rows: Iterable[LabelRow], version: str = "0",
                 eps: float = 0.02) -> None:
        self.task = task
        self.version = version
        self.eps = eps
        self._rows: list[LabelRow] = []
        self._index: dict[str, list[int]] = defaultdict(list)
        counts = {h.name: np.ones(len(h.classes)) for h in task.heads}  # add-one prior
        for row in rows:
            advisory, aliases, labels = row
            labels = {h: c for h, c in labels.items() if h in counts and c in self._classes(h)}
            if not labels:
                continue
            idx = len(self._rows)
            self._rows.append((advisory, aliases, labels))
            for ident in {advisory, *aliases}:
                self._index[_key(ident)].append(idx)
            for h, c in labels.items():
                counts[h][self._classes(h).index(c)] += 1
        self.priors = {h: v / v.sum() for h, v in counts.items()}

    @classmethod
    def from_corpus(cls, task: TaskSpec, path: Path | None = None) -> ReferenceBackend:
        """Every labelled record of the curated corpus (the bundled one by default)."""
        path = path or corpus_path()
        version = hashlib.sha256(path.read_bytes()).hexdigest()[:12]
        rows = ((r.id, r.aliases, r.labels) for r in read_corpus(path))
        return cls(task, rows, version=version)

    def _classes(self, head: str) -> list[str]:
        return self.task.head_map()[head].classes

    def __len__(self) -> int:
        return len(self._rows)

    def matches(self, finding: Finding) -> list[int]:
        """Row numbers of curated records sharing an id or alias with the finding."""
        found: set[int] = set()
        for ident in [finding.advisory_id or "", *finding.aliases]:
            if ident:
                found.update(self._index.get(_key(ident), ()))
        return sorted(found)

    def lookup(self, finding: Finding) -> tuple[dict[str, np.ndarray], list[str]]:
        """Per-head distributions for the heads curated records label, and their ids as evidence."""
        rows = [self._rows[i] for i in self.matches(finding)]
        probs: dict[str, np.ndarray] = {}
        for head in self.task.heads:
            votes = [r[2][head.name] for r in rows if head.name in r[2]]
            if votes:
                # Sources can disagree on a vector (GitLab vs NVD): average their one-hots.
                probs[head.name] = np.mean(
                    [smoothed_one_hot(head.classes, v, self.eps) for v in votes], axis=0
                )
        return probs, sorted({r[0] for r in rows})

    def labels_for(self, finding: Finding) -> dict[str, str]:
        """Curated labels (argmax per labelled head); empty when the finding is unknown."""
        probs, _ = self.lookup(finding)
        return {h: self._classes(h)[int(np.argmax(p))] for h, p in probs.items()}

    def answer(self, finding: Finding) -> TeacherAnswer | None:
        """A full answer (priors for unlabelled heads), or None when no curated record matches."""
        probs, evidence = self.lookup(finding)
        if not probs:
            return None
        filled = {h: probs.get(h, self.priors[h]) for h in self.priors}
        return answer_from_probs(self.task, filled, evidence, decided_by="reference")

    async def label(self, findings: list[Finding]) -> list[TeacherAnswer]:
        """Curated answers; a finding with no curated record fails the call (TeacherFailed)."""
        out = []
        for f in findings:
            ans = self.answer(f)
            if ans is None:
                raise TeacherFailed(f"no curated label for {f.advisory_id or f.finding_id}")
            out.append(ans)
        return out

    async def probe(self) -> None:
        """Always healthy: an in-memory table."""

    async def aclose(self) -> None:
        """Nothing to release."""
