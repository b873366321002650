"""OnnxScorer: load a verified model folder, tokenise with dynamic padding, score off the event loop.

The same object serves the Faust worker (through an executor) and `secdistill predict`, so the
offline and streaming answers are the same answers.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort
from tokenizers import Encoding, Tokenizer

from secdistill.schemas import cvss
from secdistill.schemas.config import RegistrySettings
from secdistill.schemas.errors import RegistryError, TaskSpecError
from secdistill.schemas.manifest import MODEL_FP16, MODEL_INT8, TASK, TOKENIZER, ModelManifest
from secdistill.schemas.records import Finding, Prediction, SeverityOut
from secdistill.schemas.registry import Registry, verify
from secdistill.schemas.task import TaskSpec, load_task
from secdistill.workers.config import ModelSettings
from secdistill.workers.errors import InferenceError, ModelLoadError

log = logging.getLogger(__name__)

# Sub-batch by similar length: one long text must not make 63 short ones pay for its padding.
# 8 rows per chunk measured +60 % int8 throughput over 32 on the corpus's real lengths
# (docs/benchmarks.md: 152 vs 95 seq/s at batch 64, 128-token cap), since 17 % of texts hit the cap.
_CHUNK = 8


@dataclass(frozen=True)
class HeadOutput:
    """Calibrated probabilities of one batch, per head, columns in the task's class order."""

    probs: dict[str, np.ndarray]


class OnnxScorer:
    """A loaded, verified, warmed-up model version."""

    def __init__(self, folder: Path, settings: ModelSettings | None = None) -> None:
        self.settings = settings or ModelSettings()
        self.folder = Path(folder)
        try:
            self.manifest: ModelManifest = verify(self.folder)
            self.task: TaskSpec = load_task(self.folder / TASK)
        except (RegistryError, TaskSpecError) as exc:
            raise ModelLoadError(f"refusing model at {folder}: {exc}") from exc
        self._check_heads()
        self.version = self.manifest.version or self.folder.name
        self.max_length = min(self.manifest.max_length, self.task.input.max_tokens)
        self.tokenizer = Tokenizer.from_file(str(self.folder / TOKENIZER))
        self.tokenizer.no_padding()
        self.tokenizer.enable_truncation(self.max_length)
        self.pad_id = self.tokenizer.token_to_id("[PAD]") or 0
        self.session = self._session()
        self.input_names = {i.name for i in self.session.get_inputs()}
        self.slices = self.task.slices()
        self.temperatures = {h: float(self.manifest.temperatures.get(h, 1.0)) for h in self.slices}
        self._chaos = self.settings.chaos_marker
        self.warm_up()

    def _check_heads(self) -> None:
        expected = {h.name: h.classes for h in self.task.heads}
        if self.manifest.heads != expected:
            raise ModelLoadError(f"manifest heads {list(self.manifest.heads)} differ from task {list(expected)}")

    def _session(self) -> ort.InferenceSession:
        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        threads = self.settings.threads or int(os.environ.get("OMP_NUM_THREADS", "0") or 0)
        if threads:
            opts.intra_op_num_threads = threads
            opts.inter_op_num_threads = 1
        providers = ["CPUExecutionProvider"]
        path = self.folder / MODEL_INT8
        cuda = "CUDAExecutionProvider" in ort.get_available_providers()
        if self.settings.provider in ("auto", "cuda") and cuda and (self.folder / MODEL_FP16).exists():
            providers = ["CUDAExecutionProvider", "CPUExecutionProvider"]
            path = self.folder / MODEL_FP16
        try:
            return ort.InferenceSession(str(path), sess_options=opts, providers=providers)
        except Exception as exc:  # ORT raises its own exception types for bad graphs
            raise ModelLoadError(f"cannot load {path}: {exc}") from exc

    def warm_up(self) -> None:
        """Run one tiny batch so the first real batch does not pay for lazy initialisation."""
        start = time.perf_counter()
        self.logits(["warm up the session", "a second, slightly longer warm-up text for shapes"])
        log.info("model %s warmed up in %.0f ms", self.version, 1000 * (time.perf_counter() - start))

    def texts(self, findings: list[Finding]) -> list[str]:
        """The model's input text for each finding (the task's template)."""
        return [self.task.render(f) for f in findings]

    def logits(self, texts: list[str]) -> np.ndarray:
        """Raw logits, shape (n, task.num_logits); raises InferenceError."""
        if self._chaos and any(self._chaos in t for t in texts):
            raise InferenceError("fault drill: input carries the configured chaos marker")
        try:
            encodings = self.tokenizer.encode_batch(texts)
        except Exception as exc:  # tokenizers raises plain Exceptions from Rust
            raise InferenceError(f"tokenizer failed: {exc}") from exc
        order = sorted(range(len(texts)), key=lambda i: len(encodings[i].ids))
        out = np.empty((len(texts), self.task.num_logits), dtype=np.float32)
        for start in range(0, len(order), _CHUNK):
            idx = order[start : start + _CHUNK]
            out[idx] = self._run([encodings[i] for i in idx])
        if not np.isfinite(out).all():
            raise InferenceError("model produced non-finite logits")
        return out

    def _run(self, encodings: list[Encoding]) -> np.ndarray:
        width = max(len(e.ids) for e in encodings)
        n = len(encodings)
        ids = np.full((n, width), self.pad_id, dtype=np.int64)
        mask = np.zeros((n, width), dtype=np.int64)
        for row, enc in enumerate(encodings):
            ids[row, : len(enc.ids)] = enc.ids
            mask[row, : len(enc.ids)] = 1
        feed = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in self.input_names:
            feed["token_type_ids"] = np.zeros_like(ids)
        try:
            result: np.ndarray = self.session.run(["logits"], feed)[0]
            return result
        except Exception as exc:  # onnxruntime's Fail/InvalidArgument/RuntimeException
            raise InferenceError(f"onnxruntime failed: {exc}") from exc

    def head_probs(self, logits: np.ndarray) -> dict[str, np.ndarray]:
        """Temperature-calibrated softmax per head slice."""
        out = {}
        for head, (a, b) in self.slices.items():
            z = logits[:, a:b].astype(np.float64) / self.temperatures[head]
            z -= z.max(axis=1, keepdims=True)
            e = np.exp(z)
            out[head] = e / e.sum(axis=1, keepdims=True)
        return out

    def score(self, findings: list[Finding]) -> list[Prediction]:
        """Predictions (no deferral decision yet) for a batch; raises InferenceError."""
        if not findings:
            return []
        probs = self.head_probs(self.logits(self.texts(findings)))
        return predictions_from_probs(self.task, findings, probs, self.version)


def predictions_from_probs(
    task: TaskSpec, findings: list[Finding], probs: dict[str, np.ndarray], version: str
) -> list[Prediction]:
    """Turn per-head probability arrays into Prediction records (labels, derived CVSS outputs)."""
    heads = task.head_map()
    sev_dist = None
    if "cvss31" in task.derived:
        sev_dist = cvss.severity_distribution({m: probs[m] for m in cvss.METRICS})
    preds = []
    for row, finding in enumerate(findings):
        labels, p, conf = {}, {}, {}
        for name, arr in probs.items():
            classes = heads[name].classes
            k = int(arr[row].argmax())
            labels[name] = classes[k]
            conf[name] = round(float(arr[row, k]), 6)
            p[name] = {c: round(float(v), 6) for c, v in zip(classes, arr[row])}
        vector = score = severity = None
        if sev_dist is not None:
            metrics = {m: labels[m] for m in cvss.METRICS}
            vector = cvss.format_vector(metrics)
            score = cvss.base_score(metrics)
            dist = {s: round(float(v), 6) for s, v in zip(cvss.SEVERITIES, sev_dist[row])}
            severity = SeverityOut(label=cvss.severity_of(score), distribution=dist)
        preds.append(
            Prediction(
                finding_id=finding.finding_id, labels=labels, probs=p, confidence=conf,
                cvss_vector=vector, score=score, severity=severity, model_version=version,
            )
        )
    return preds


def load_scorer(registry: RegistrySettings, model: ModelSettings, ref: str | None = None) -> OnnxScorer:
    """Resolve a reference (folder, version, channel; default: the followed channel) and load it."""
    try:
        folder = Registry(registry.uri).resolve(registry.model, ref or registry.version, registry.channel)
    except RegistryError as exc:
        raise ModelLoadError(str(exc)) from exc
    return OnnxScorer(folder, model)
