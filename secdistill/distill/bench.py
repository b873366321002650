"""Side-by-side throughput: torch fp32 vs ONNX fp32 vs ONNX int8 on the same texts, one process."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from secdistill.distill.export import OnnxRunner, torch_logits
from secdistill.distill.student import offline
from secdistill.schemas.manifest import MODEL_FP32, MODEL_INT8

log = logging.getLogger(__name__)


def benchmark(checkpoint: Path, folder: Path, texts: list[str], *, max_length: int = 128,
              batch_size: int = 32, threads: int = 2, repeats: int = 2) -> dict[str, Any]:
    """Sequences per second of each runtime (best of ``repeats``), same tokens, same batching."""
    offline()
    import torch
    from transformers import AutoTokenizer, BertForSequenceClassification

    torch.set_num_threads(threads)
    tokenizer = AutoTokenizer.from_pretrained(str(checkpoint))
    ids = tokenizer(texts, truncation=True, max_length=max_length)["input_ids"]
    # Length-sorted once for every runtime: each gets the same batches and the same padding, so the
    # ratios compare runtimes, not padding (OnnxRunner sorts by itself; torch_logits does not).
    ids = sorted(ids, key=len)
    model = BertForSequenceClassification.from_pretrained(str(checkpoint)).eval()
    runners = {"torch_fp32": lambda: torch_logits(model, ids, batch_size)}
    for name, file in (("onnx_fp32", MODEL_FP32), ("onnx_int8", MODEL_INT8)):
        runner = OnnxRunner(folder / file, threads)
        runners[name] = lambda r=runner: r.logits(ids, batch_size)
    out: dict[str, Any] = {"texts": len(texts), "batch_size": batch_size, "threads": threads,
                           "mean_tokens": sum(map(len, ids)) / max(len(ids), 1)}
    for name, run in runners.items():
        run()  # warm-up
        best = min(_timed(run) for _ in range(repeats))
        out[name] = {"seconds": best, "seq_per_s": len(texts) / best}
        log.info("%s: %.1f seq/s", name, len(texts) / best)
    return out


def _timed(fn: Any) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def benchmark_work(work: Path, n_texts: int = 512) -> dict[str, Any]:
    """Benchmark a work folder (``checkpoint/`` + ``candidate/``) on bundled advisory texts."""
    from secdistill.distill.examples import corpus_examples
    from secdistill.schemas.task import load_task

    task = load_task(work / "candidate" / "task.yaml")
    examples = corpus_examples(task)[-n_texts:]
    texts = [task.render(ex.finding, drop_title=ex.title_generic) for ex in examples]
    return benchmark(work / "checkpoint", work / "candidate", texts)
