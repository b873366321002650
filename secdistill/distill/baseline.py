"""The same-run baselines: majority class and TF-IDF + logistic regression, per head.

TF-IDF + LR is also a teacher ingredient: its out-of-fold probabilities on the training split give
the curated corpus real distributions (fitted on other folds only, so no row sees its own label).
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from secdistill.distill.dataset import Split
from secdistill.schemas.task import TaskSpec

log = logging.getLogger(__name__)


class TfidfBaseline:
    """One TF-IDF vocabulary, one multinomial logistic regression per head."""

    def __init__(self, task: TaskSpec, c: float = 4.0, max_features: int = 200_000) -> None:
        self.task, self.c, self.max_features = task, c, max_features
        self.vectorizer: Any = None
        self.models: dict[str, Any] = {}

    def fit(self, texts: list[str], hard: np.ndarray) -> TfidfBaseline:
        """Fit on texts and (n, heads) labels; -1 rows are skipped per head."""
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression

        self.vectorizer = TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True,
                                          max_features=self.max_features, dtype=np.float32)
        x = self.vectorizer.fit_transform(texts)
        for j, head in enumerate(self.task.heads):
            rows = np.where(hard[:, j] >= 0)[0]
            if len(np.unique(hard[rows, j])) < 2:
                continue  # one class or none: predict the prior below
            model = LogisticRegression(C=self.c, max_iter=2000)
            model.fit(x[rows], hard[rows, j])
            self.models[head.name] = model
        return self

    def predict_proba(self, texts: list[str], hard_prior: np.ndarray | None = None) -> np.ndarray:
        """(n, logits) probabilities; a head without a model predicts uniform."""
        x = self.vectorizer.transform(texts)
        out = np.zeros((len(texts), self.task.num_logits), dtype=np.float32)
        for head, (lo, hi) in zip(self.task.heads, self.task.slices().values()):
            model = self.models.get(head.name)
            if model is None:
                out[:, lo:hi] = 1.0 / (hi - lo)
                continue
            proba = model.predict_proba(x)
            out[:, lo + model.classes_] = proba  # classes absent from training keep probability 0
        return out


def out_of_fold(split: Split, task: TaskSpec, folds: int, seed: int) -> np.ndarray:
    """TF-IDF probabilities for every training row from a model that never saw its group."""
    groups = np.array([ex.group for ex in split.examples])
    uniq = np.unique(groups)
    fold_of = dict(zip(uniq, np.random.default_rng(seed).integers(0, folds, len(uniq))))
    fold = np.array([fold_of[g] for g in groups])
    out = np.zeros((len(split), task.num_logits), dtype=np.float32)
    for k in range(folds):
        test = np.where(fold == k)[0]
        train = np.where(fold != k)[0]
        model = TfidfBaseline(task).fit([split.texts[i] for i in train], split.hard[train])
        out[test] = model.predict_proba([split.texts[i] for i in test])
        log.info("out-of-fold TF-IDF teacher: fold %d/%d done", k + 1, folds)
    return out


def majority_proba(train: Split, task: TaskSpec, n: int) -> np.ndarray:
    """(n, logits) one-hot on each head's most frequent training class."""
    out = np.zeros((n, task.num_logits), dtype=np.float32)
    for j, (lo, hi) in enumerate(task.slices().values()):
        col = train.hard[:, j]
        counts = np.bincount(col[col >= 0], minlength=hi - lo)
        out[:, lo + int(np.argmax(counts))] = 1.0
    return out
