"""Run one model over real texts the way a worker would: tokenise, pad, forward, per batch.

Every runtime gets the same tokenizer (the worker's Rust ``tokenizers``), the same batches and the
same padding, so the only difference between two rows is the runtime itself.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
from tokenizers import Tokenizer

from secdistill.bench.machine import percentile, summary
from secdistill.workers.inference import _CHUNK

Forward = Callable[[np.ndarray, np.ndarray], np.ndarray]
# fixed: every row padded to the model's max length (128 here); dynamic: to the batch's longest row, arrival order;
# bucketed: what the worker does (sort the batch by length, run chunks of WORKER_CHUNK rows, each
# padded to its own longest); bucketed/N: the same with chunks of N rows.
PADDINGS = ("fixed", "dynamic", "bucketed")
WORKER_CHUNK: int = _CHUNK
MAX_TOKENS = 128


def load_tokenizer(folder: Path, max_tokens: int = MAX_TOKENS) -> Tokenizer:
    """The model folder's tokenizer, truncating at ``max_tokens``, no padding (we pad)."""
    tok = Tokenizer.from_file(str(folder / "tokenizer.json"))
    tok.no_padding()
    tok.enable_truncation(max_tokens)
    return tok


def max_tokens(tokenizer: Tokenizer) -> int:
    """The truncation length: the width of ``fixed`` padding."""
    trunc = tokenizer.truncation
    return int(trunc["max_length"]) if trunc else MAX_TOKENS


def pad_batch(rows: list[list[int]], padding: str, fixed_width: int = MAX_TOKENS
              ) -> list[tuple[np.ndarray, np.ndarray]]:
    """Arrays to feed for one batch: one padded block, or length-sorted chunks (bucketed)."""
    if padding.startswith("bucketed"):
        chunk = int(padding.partition("/")[2] or WORKER_CHUNK)
        ordered = sorted(rows, key=len)
        groups = [ordered[i:i + chunk] for i in range(0, len(ordered), chunk)]
    else:
        groups = [rows]
    out = []
    for group in groups:
        width = fixed_width if padding == "fixed" else max(len(r) for r in group)
        ids = np.zeros((len(group), width), dtype=np.int64)
        mask = np.zeros((len(group), width), dtype=np.int64)
        for i, r in enumerate(group):
            ids[i, :len(r)] = r
            mask[i, :len(r)] = 1
        out.append((ids, mask))
    return out


def ort_session(path: Path, threads: int, provider: str = "CPUExecutionProvider") -> ort.InferenceSession:
    """A session configured like the worker's (all graph optimisations, fixed intra-op threads)."""
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    providers = [provider] if provider == "CPUExecutionProvider" else [provider, "CPUExecutionProvider"]
    return ort.InferenceSession(str(path), sess_options=opts, providers=providers)


def ort_forward(session: ort.InferenceSession) -> Forward:
    """ids, mask -> logits through ONNX Runtime."""
    names = {i.name for i in session.get_inputs()}

    def forward(ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        feed = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in names:
            feed["token_type_ids"] = np.zeros_like(ids)
        return np.asarray(session.run(["logits"], feed)[0])

    return forward


def torch_forward(model: Any) -> Forward:
    """ids, mask -> logits through eager torch (inference mode, no autograd)."""
    import torch

    def forward(ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            t = torch.from_numpy(ids)
            out = model(input_ids=t, attention_mask=torch.from_numpy(mask), token_type_ids=torch.zeros_like(t))
        return np.asarray(out.logits.float().numpy())

    return forward


def measure(forward: Forward, tokenizer: Tokenizer, texts: list[str], *, batch_size: int, padding: str,
            repeats: int) -> dict[str, Any]:
    """Throughput (min/median/max over repeats), per-batch latency and tokens computed."""
    def one_batch(batch: list[str]) -> int:
        rows = [e.ids for e in tokenizer.encode_batch(batch)]
        computed = 0
        for ids, mask in pad_batch(rows, padding, max_tokens(tokenizer)):
            forward(ids, mask)
            computed += ids.size
        return computed

    one_batch(texts[:batch_size])  # warm-up: lazy kernels and shapes
    rates, latencies = [], []
    computed = 0
    for _ in range(repeats):
        computed = 0
        start = time.perf_counter()
        for i in range(0, len(texts), batch_size):
            t0 = time.perf_counter()
            computed += one_batch(texts[i:i + batch_size])
            latencies.append(time.perf_counter() - t0)
        rates.append(len(texts) / (time.perf_counter() - start))
    med = summary(rates)["median"]
    return {
        "batch_size": batch_size, "padding": padding, "texts": len(texts), "repeats": repeats,
        "seq_per_s": summary(rates),
        "batch_latency_ms": {"p50": 1000 * percentile(latencies, 50), "p99": 1000 * percentile(latencies, 99)},
        "computed_tokens_per_seq": computed / len(texts),
        "computed_tokens_per_s": med * computed / len(texts),
    }


def fastest_threads(bind: Callable[[int], Forward], tokenizer: Tokenizer, texts: list[str], batch_size: int,
                    candidates: tuple[int, ...]) -> tuple[int, dict[str, float]]:
    """The thread count that runs one batch fastest right now, and each candidate's seq/s.

    On a dedicated machine all cores win; on a shared one a thread pool that waits on a
    descheduled sibling can be many times slower than one thread (torch at batch 1 here: 712 vs
    26 ms per call), so every runtime gets its better setting rather than a pathological one.
    """
    rates = {}
    for threads in candidates:
        row = measure(bind(threads), tokenizer, texts[:batch_size], batch_size=batch_size, padding="bucketed",
                      repeats=2)
        rates[str(threads)] = float(row["seq_per_s"]["max"])
    return max(candidates, key=lambda t: rates[str(t)]), rates


def logits_all(forward: Forward, tokenizer: Tokenizer, texts: list[str], batch_size: int = 32) -> np.ndarray:
    """Logits for every text in input order (length-sorted batches, as the worker runs them)."""
    rows = [e.ids for e in tokenizer.encode_batch(texts)]
    order = sorted(range(len(rows)), key=lambda i: len(rows[i]))
    out: np.ndarray | None = None
    for start in range(0, len(order), batch_size):
        idx = order[start:start + batch_size]
        ((ids, mask),) = pad_batch([rows[i] for i in idx], "dynamic")
        res = forward(ids, mask)
        if out is None:
            out = np.zeros((len(rows), res.shape[1]), dtype=np.float32)
        out[idx] = res
    return out if out is not None else np.zeros((0, 0), dtype=np.float32)


def argmax_agreement(a: np.ndarray, b: np.ndarray, slices: dict[str, tuple[int, int]]) -> dict[str, float]:
    """Per head: share of rows where both logit sets pick the same class."""
    return {h: float(np.mean(a[:, s:e].argmax(1) == b[:, s:e].argmax(1))) for h, (s, e) in slices.items()}
