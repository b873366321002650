"""Examples -> a deduplicated, group-split dataset with per-head label arrays and a dataset card.

Dedupe: examples sharing a vulnerability id or alias form one group (union-find); within a group,
records with the same normalised description are one example (their labels merged by source
priority). Splits are by group, so no vulnerability sits on both sides.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass
from typing import Any

import numpy as np

from secdistill.distill.config import DataSettings
from secdistill.distill.errors import DataError
from secdistill.distill.examples import Example
from secdistill.schemas.task import TaskSpec


@dataclass
class Split:
    """One split as parallel arrays; a label of -1 means the head is unlabelled (masked)."""

    examples: list[Example]
    texts: list[str]  # generic titles masked
    texts_no_title: list[str]
    hard: np.ndarray  # (n, heads) int64 class index or -1
    teacher: np.ndarray  # (n, logits) float32 teacher distribution; zeros where none given
    has_teacher: np.ndarray  # (n, heads) bool

    def __len__(self) -> int:
        return len(self.examples)

    def subset(self, idx: np.ndarray) -> Split:
        """The rows in ``idx``."""
        return Split([self.examples[i] for i in idx], [self.texts[i] for i in idx],
                     [self.texts_no_title[i] for i in idx], self.hard[idx], self.teacher[idx],
                     self.has_teacher[idx])


@dataclass
class Dataset:
    """Train and validation splits plus the card that describes them."""

    train: Split
    val: Split
    card: dict[str, Any]


def _find(parent: dict[str, str], x: str) -> str:
    while parent.setdefault(x, x) != x:
        parent[x] = parent[parent[x]]
        x = parent[x]
    return x


def assign_groups(examples: list[Example]) -> None:
    """Union examples that share any id or alias; the group is the smallest key of the set."""
    parent: dict[str, str] = {}
    for ex in examples:
        root = _find(parent, ex.keys[0])
        for key in ex.keys[1:]:
            other = _find(parent, key)
            if other != root:
                lo, hi = sorted((root, other))
                parent[hi] = lo
                root = lo
    for ex in examples:
        ex.group = _find(parent, ex.keys[0])


def dedupe(examples: list[Example]) -> list[Example]:
    """One example per (group, normalised description); later duplicates merge into the first."""
    assign_groups(examples)
    seen: dict[tuple[str, str], Example] = {}
    for ex in examples:
        key = (ex.group, " ".join(ex.finding.description.lower().split()))
        if key in seen:
            seen[key].merge(ex)
        else:
            seen[key] = ex
    return list(seen.values())


def _unit(group: str, seed: int) -> float:
    digest = hashlib.blake2b(f"{seed}:{group}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def split_groups(examples: list[Example], cfg: DataSettings) -> tuple[list[Example], list[Example]]:
    """Group split by a seeded hash, or by time (groups first published after the cutoff)."""
    if cfg.split == "group":
        is_val = {ex.group: _unit(ex.group, cfg.seed) < cfg.val_fraction for ex in examples}
    else:
        first: dict[str, str] = {}
        for ex in examples:
            date = ex.published or "0000"
            first[ex.group] = min(first.get(ex.group, date), date)
        cutoff = cfg.time_cutoff or sorted(first.values())[int(len(first) * (1 - cfg.val_fraction))]
        is_val = {g: d >= cutoff for g, d in first.items()}
    train = [ex for ex in examples if not is_val[ex.group]]
    val = [ex for ex in examples if is_val[ex.group]]
    return train, val


def to_split(examples: list[Example], task: TaskSpec) -> Split:
    """Arrays for a list of examples in the task's head and logit order."""
    heads, slices = task.heads, task.slices()
    hard = np.full((len(examples), len(heads)), -1, dtype=np.int64)
    teacher = np.zeros((len(examples), task.num_logits), dtype=np.float32)
    has_teacher = np.zeros((len(examples), len(heads)), dtype=bool)
    for i, ex in enumerate(examples):
        for j, h in enumerate(heads):
            if h.name in ex.labels:
                hard[i, j] = h.classes.index(ex.labels[h.name])
            dist = ex.probs.get(h.name)
            if dist:
                lo, hi = slices[h.name]
                row = np.array([max(dist.get(c, 0.0), 0.0) for c in h.classes], dtype=np.float32)
                if row.sum() > 0:
                    teacher[i, lo:hi] = row / row.sum()
                    has_teacher[i, j] = True
    texts = [task.render(ex.finding, drop_title=ex.title_generic) for ex in examples]
    no_title = [task.render(ex.finding, drop_title=True) for ex in examples]
    return Split(examples, texts, no_title, hard, teacher, has_teacher)


def _subsample(examples: list[Example], limit: int | None, seed: int) -> list[Example]:
    if limit is None or len(examples) <= limit:
        return examples
    rng = np.random.default_rng(seed)
    return [examples[i] for i in sorted(rng.choice(len(examples), size=limit, replace=False))]


def build_dataset(examples: list[Example], task: TaskSpec, cfg: DataSettings,
                  extra_card: dict[str, Any] | None = None) -> Dataset:
    """Dedupe, split by group, subsample (presets) and encode; write the card's numbers."""
    if not examples:
        raise DataError("no training examples: enable the corpus or pass teacher label files")
    raw = len(examples)
    unique = dedupe(examples)
    train_ex, val_ex = split_groups(unique, cfg)
    train_ex = _subsample(train_ex, cfg.max_train, cfg.seed)
    val_ex = _subsample(val_ex, cfg.max_val, cfg.seed + 1)
    if len(train_ex) < 16 or len(val_ex) < 8:
        raise DataError(f"too little data: {len(train_ex)} train / {len(val_ex)} validation examples")
    train, val = to_split(train_ex, task), to_split(val_ex, task)
    card = {
        "records_in": raw, "examples_after_dedupe": len(unique),
        "split": cfg.split, "val_fraction": cfg.val_fraction, "seed": cfg.seed,
        "groups": {"train": len({e.group for e in train_ex}), "val": len({e.group for e in val_ex})},
        "train": describe(train, task), "val": describe(val, task),
        "title_generic_masked": sum(e.title_generic for e in unique),
        **(extra_card or {}),
    }
    return Dataset(train, val, card)


def describe(split: Split, task: TaskSpec) -> dict[str, Any]:
    """Counts, class balance per head, label sources, ecosystems and sources of one split."""
    balance = {}
    for j, h in enumerate(task.heads):
        col = split.hard[:, j]
        counts = np.bincount(col[col >= 0], minlength=len(h.classes))
        balance[h.name] = {"labelled": int((col >= 0).sum()),
                           "classes": {c: int(n) for c, n in zip(h.classes, counts)}}
    provenance = Counter(p.split("@")[0] for ex in split.examples for p in ex.provenance.values())
    return {
        "examples": len(split),
        "heads": balance,
        "label_sources": dict(provenance),
        "ecosystems": dict(Counter(ex.finding.ecosystem or "?" for ex in split.examples).most_common()),
        "sources": dict(Counter(ex.finding.source or "?" for ex in split.examples).most_common()),
    }
