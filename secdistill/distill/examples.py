"""Training examples: one finding, its per-head labels and distributions, and their provenance.

Three inputs become examples: the curated corpus bundled in the package (a ``reference`` teacher),
TeacherLabel JSONL files, and Correction JSONL files (which override the other two, per head).
"""

from __future__ import annotations

import gzip
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from secdistill.distill.errors import DataError
from secdistill.schemas import codec
from secdistill.schemas.corpus import read_corpus_records
from secdistill.schemas.cvss import parse_vector
from secdistill.schemas.errors import ContractError
from secdistill.schemas.records import Correction, Finding, TeacherLabel
from secdistill.schemas.task import TaskSpec

# Source priority per head when several inputs label the same text: a person beats the curated
# reference, which beats a model teacher.
PRIORITY = {"correction": 3, "reference": 2, "teacher": 1}


@dataclass
class Example:
    """One training text with whatever labels its sources give, head by head."""

    uid: str
    finding: Finding
    keys: tuple[str, ...]  # vulnerability id + aliases: examples sharing one are one group
    labels: dict[str, str] = field(default_factory=dict)
    probs: dict[str, dict[str, float]] = field(default_factory=dict)  # teacher distributions
    provenance: dict[str, str] = field(default_factory=dict)  # head -> "reference" | "teacher:x" ...
    published: str | None = None
    title_generic: bool = False
    group: str = ""

    def kind(self, head: str) -> str:
        """Source kind of a head's label (correction, reference, teacher)."""
        return self.provenance.get(head, "").split(":", 1)[0]

    def merge(self, other: Example) -> None:
        """Take ``other``'s heads where its source outranks ours (same text, another source)."""
        for head, label in other.labels.items():
            if PRIORITY.get(other.kind(head), 0) > PRIORITY.get(self.kind(head), 0):
                self.labels[head] = label
                self.provenance[head] = other.provenance[head]
                if head in other.probs:
                    self.probs[head] = other.probs[head]
                else:
                    self.probs.pop(head, None)
        self.keys = tuple(dict.fromkeys([*self.keys, *other.keys]))
        self.published = min(filter(None, [self.published, other.published]), default=None)


def corpus_examples(task: TaskSpec, records: Iterable[dict] | None = None) -> list[Example]:
    """Curated advisories as examples labelled by the ``reference`` teacher."""
    heads = task.head_map()
    out = []
    for rec in read_corpus_records() if records is None else records:
        labels: dict[str, str] = {}
        if rec.get("cvss_vector"):
            labels.update({k: v for k, v in parse_vector(rec["cvss_vector"]).items() if k in heads})
        if rec.get("cwe_class") and "cwe_class" in heads:
            labels["cwe_class"] = rec["cwe_class"]
        if not labels:
            continue
        finding = Finding(
            finding_id=rec["record_id"], description=rec["description"], title=rec.get("title"),
            ecosystem=rec.get("ecosystem"), package=rec.get("package"), advisory_id=rec["id"],
            aliases=rec.get("aliases", [])[:64], source=rec.get("source"),
        )
        out.append(Example(
            uid=rec["record_id"], finding=finding, keys=(rec["id"], *rec.get("aliases", [])),
            labels=labels, provenance={h: "reference" for h in labels},
            published=rec.get("published"), title_generic=bool(rec.get("title_generic")),
        ))
    return out


def _jsonl(path: Path) -> Iterator[tuple[int, bytes]]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as fh:
        for lineno, line in enumerate(fh, 1):
            if line.strip():
                yield lineno, line


def read_teacher_labels(paths: Iterable[Path], task: TaskSpec) -> list[Example]:
    """TeacherLabel JSONL files (from ``secdistill teacher label``) as examples."""
    heads = task.head_map()
    out = []
    for path in paths:
        for lineno, line in _jsonl(Path(path)):
            try:
                rec = codec.decode(TeacherLabel, line, max_bytes=1 << 20)
            except ContractError as exc:
                raise DataError(f"{path}:{lineno}: not a TeacherLabel ({exc})") from exc
            labels = {h: c for h, c in rec.labels.items() if h in heads and c in heads[h].classes}
            probs = {h: d for h, d in rec.probs.items() if h in heads and d}
            for h, dist in probs.items():  # a distribution without an argmax label still teaches
                labels.setdefault(h, max(dist, key=dist.__getitem__))
            f = rec.finding
            out.append(Example(
                uid=rec.finding_id, finding=f, keys=_finding_keys(f),
                labels=labels, probs=probs,
                provenance={h: f"teacher:{rec.teacher_id}@{rec.teacher_version}" for h in labels},
                published=rec.created_at.date().isoformat(),
            ))
    return out


def read_corrections(paths: Iterable[Path]) -> list[Correction]:
    """Correction JSONL files, validated."""
    out = []
    for path in paths:
        for lineno, line in _jsonl(Path(path)):
            try:
                out.append(codec.decode(Correction, line, max_bytes=1 << 20))
            except ContractError as exc:
                raise DataError(f"{path}:{lineno}: not a Correction ({exc})") from exc
    return out


def apply_corrections(examples: list[Example], corrections: list[Correction],
                      task: TaskSpec) -> tuple[list[Example], dict[str, int]]:
    """Override labels with corrections (matched by finding id, fingerprint or advisory id)."""
    heads = task.head_map()
    by_key: dict[str, list[Example]] = {}
    for ex in examples:
        for key in (ex.uid, ex.finding.fingerprint(), *ex.keys):
            by_key.setdefault(key, []).append(ex)
    stats = {"applied": 0, "unmatched": 0, "new_examples": 0}
    for corr in sorted(corrections, key=lambda c: c.created_at):  # the latest correction wins
        for h, c in corr.labels.items():
            if h not in heads or c not in heads[h].classes:
                raise DataError(f"correction {corr.finding_id}: {h}={c} is not in the task")
        keys = [k for k in (corr.finding_id, corr.fingerprint, corr.advisory_id) if k]
        targets = next((by_key[k] for k in keys if k in by_key), None)
        if targets is None and corr.finding is not None:
            ex = Example(uid=corr.finding_id, finding=corr.finding, keys=_finding_keys(corr.finding),
                         published=corr.created_at.date().isoformat())
            examples.append(ex)
            targets = [ex]
            stats["new_examples"] += 1
        if targets is None:
            stats["unmatched"] += 1
            continue
        for ex in targets:
            for head, label in corr.labels.items():
                ex.labels[head] = label
                ex.probs.pop(head, None)
                ex.provenance[head] = f"correction:{corr.author}"
        stats["applied"] += 1
    return examples, stats


def _finding_keys(f: Finding) -> tuple[str, ...]:
    keys = [k for k in (f.advisory_id, *f.aliases) if k]
    return tuple(keys) if keys else (f.finding_id,)
