"""TF-IDF + logistic regression inference in numpy, from exported artefacts (no scikit-learn).

Mirrors scikit-learn's ``TfidfVectorizer(lowercase=True, token_pattern=r"(?u)\\b\\w\\w+\\b",
ngram_range=(1, n), sublinear_tf=True, norm="l2")`` and ``LogisticRegression.predict_proba``; the
unit tests check parity against scikit-learn. Artefacts (written by ``secdistill teacher build``):
``tfidf_vocab.json`` (terms in column order), ``tfidf_idf.npy`` (F,), ``lr_coef.npy`` (F, L) and
``lr_intercept.npy`` (L,), L being the task's concatenated head classes. A class the training data
never showed has a zero column and a very negative intercept.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from pathlib import Path

import numpy as np

from secdistill.schemas import codec
from secdistill.schemas.task import TaskSpec

TOKEN_RE = re.compile(r"(?u)\b\w\w+\b")
VOCAB = "tfidf_vocab.json"
IDF = "tfidf_idf.npy"
COEF = "lr_coef.npy"
INTERCEPT = "lr_intercept.npy"


def ngrams(text: str, max_n: int) -> list[str]:
    """Word n-grams (1..max_n) exactly as scikit-learn's word analyzer builds them."""
    tokens = TOKEN_RE.findall(text.lower())
    out = list(tokens)
    for n in range(2, max_n + 1):
        out.extend(" ".join(tokens[i : i + n]) for i in range(len(tokens) - n + 1))
    return out


def softmax_slices(logits: np.ndarray, task: TaskSpec) -> dict[str, np.ndarray]:
    """Per-head softmax over the task's logit slices; logits shape (n, L)."""
    out = {}
    for head, (a, b) in task.slices().items():
        z = logits[:, a:b] - logits[:, a:b].max(axis=1, keepdims=True)
        e = np.exp(z)
        out[head] = e / e.sum(axis=1, keepdims=True)
    return out


class TfidfLogReg:
    """A fitted TF-IDF vectorizer and one multinomial logistic regression per head."""

    def __init__(self, task: TaskSpec, vocab: list[str], idf: np.ndarray, coef: np.ndarray,
                 intercept: np.ndarray, max_n: int = 2, sublinear_tf: bool = True) -> None:
        if coef.shape != (len(vocab), task.num_logits) or idf.shape != (len(vocab),):
            raise ValueError(f"artefact shapes disagree: vocab {len(vocab)}, idf {idf.shape}, "
                             f"coef {coef.shape}, task logits {task.num_logits}")
        self.task = task
        self.vocab = {term: i for i, term in enumerate(vocab)}
        self.idf = idf.astype(np.float64)
        self.coef = coef.astype(np.float32)
        self.intercept = intercept.astype(np.float64)
        self.max_n = max_n
        self.sublinear_tf = sublinear_tf

    @classmethod
    def load(cls, folder: Path, task: TaskSpec, max_n: int = 2) -> TfidfLogReg:
        """Load the four artefacts (``.npy`` without pickle)."""
        vocab = codec.loads((folder / VOCAB).read_bytes(), max_bytes=1 << 30)
        return cls(
            task, list(vocab),
            np.load(folder / IDF, allow_pickle=False),
            np.load(folder / COEF, allow_pickle=False),
            np.load(folder / INTERCEPT, allow_pickle=False),
            max_n=max_n,
        )

    def features(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        """Sparse l2-normalised TF-IDF row: (column indices, values)."""
        counts = Counter(self.vocab[g] for g in ngrams(text, self.max_n) if g in self.vocab)
        if not counts:
            return np.zeros(0, dtype=np.int64), np.zeros(0)
        idx = np.fromiter(counts.keys(), dtype=np.int64, count=len(counts))
        tf = np.fromiter(counts.values(), dtype=np.float64, count=len(counts))
        if self.sublinear_tf:
            tf = 1.0 + np.log(tf)
        val = tf * self.idf[idx]
        norm = math.sqrt(float(val @ val))
        return idx, (val / norm if norm > 0 else val)

    def logits(self, texts: list[str]) -> np.ndarray:
        """Concatenated head logits, shape (n, L)."""
        out = np.tile(self.intercept, (len(texts), 1))
        for row, text in enumerate(texts):
            idx, val = self.features(text)
            if len(idx):
                out[row] += val @ self.coef[idx].astype(np.float64)
        return out

    def predict_proba(self, texts: list[str]) -> dict[str, np.ndarray]:
        """Per-head probabilities, each (n, classes) in the task's class order."""
        return softmax_slices(self.logits(texts), self.task)
