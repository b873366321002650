"""`secdistill bench inference`: runtimes, padding, batch sizes and layer variants on real texts."""

from __future__ import annotations

import gc
import logging
import random
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from secdistill.bench.gemm import int8_gemm_peak
from secdistill.bench.machine import peak_memory, percentile
from secdistill.bench.models import Student, Variant, torch_variant, variant
from secdistill.bench.runtimes import (
    PADDINGS,
    Forward,
    argmax_agreement,
    fastest_threads,
    load_tokenizer,
    logits_all,
    max_tokens,
    measure,
    ort_forward,
    ort_session,
    torch_forward,
)
from secdistill.schemas.corpus import holdout_unit, read_corpus_records, record_to_finding
from secdistill.schemas.manifest import MODEL_FP16, MODEL_FP32, MODEL_INT8
from secdistill.schemas.task import TaskSpec, load_task

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class InferenceOptions:
    """What `bench inference` measures; defaults fit the 10-minute `bench all` budget on 2 cores."""

    texts: int | None = None  # None: about ``seconds_per_pass`` of int8 work, 64..256, whole batches
    seconds_per_pass: float = 3.2
    repeats: int = 3
    threads: int = 2
    compare_batch: int = 64  # the worker's default batch (BatchSettings.max_size)
    batch_sizes: tuple[int, ...] = (1, 8, 32, 64)
    chunks: tuple[int, ...] = (8, 16)  # bucketed/N at the comparison batch: is the worker's chunk right?
    layers: tuple[int, ...] = (3, 4, 6)
    agreement_texts: int = 384
    seed: int = 0


def realistic_texts(n: int, seed: int, task: TaskSpec) -> list[str]:
    """``n`` corpus advisories drawn at random, rendered as the model sees them (real lengths)."""
    records = read_corpus_records()
    picked = random.Random(seed).sample(records, min(n, len(records)))
    return [task.render(record_to_finding(r)) for r in picked]


def validation_texts(n: int, task: TaskSpec) -> list[str]:
    """The held-out-leaning end of the corpus (by id hash), as ``secdistill demo`` replays it."""
    records = sorted(read_corpus_records(), key=lambda r: holdout_unit(r["id"]))[:n]
    return [task.render(record_to_finding(r)) for r in records]


def length_profile(tokenizer: Any, texts: list[str]) -> dict[str, float]:
    """Token lengths before truncation: what dynamic padding can save."""
    limit = max_tokens(tokenizer)
    tokenizer.no_truncation()
    lengths = [len(e.ids) for e in tokenizer.encode_batch(texts)]
    tokenizer.enable_truncation(limit)
    return {"median": percentile(lengths, 50), "p90": percentile(lengths, 90), "p99": percentile(lengths, 99),
            "max_tokens": limit, "share_truncated": float(np.mean(np.array(lengths) > limit))}


def _runtime_rows(name: str, load: Callable[[], Any], bind: Callable[[Any, int], Forward], tok: Any,
                  texts: list[str], opts: InferenceOptions, paddings: tuple[str, ...] = PADDINGS) -> dict[str, Any]:
    """One runtime at its faster thread count, every padding mode, with its memory peak."""
    gc.collect()  # the previous runtime's model and sessions, before this one's peak is measured
    with peak_memory() as mem:
        obj = load()
        threads, probe = fastest_threads(lambda t: bind(obj, t), tok, texts, opts.compare_batch,
                                         tuple(sorted({1, opts.threads})))
        forward = bind(obj, threads)
        rows = {p: measure(forward, tok, texts, batch_size=opts.compare_batch, padding=p, repeats=opts.repeats)
                for p in paddings}
    for p, row in rows.items():
        log.info("%-10s %-9s %d thread(s) %7.1f seq/s", name, p, threads, row["seq_per_s"]["median"])
    return {"threads": threads, "thread_probe_seq_per_s": probe, "padding": rows,
            "peak_rss_mb": round(mem.peak_mb, 1), "rss_growth_mb": round(mem.growth_mb, 1)}


def _torch_bind(model: Any, threads: int) -> Forward:
    import torch

    torch.set_num_threads(threads)
    return torch_forward(model)


def _ort_bind(path: Any, threads: int) -> Forward:
    return ort_forward(ort_session(path, threads))


def compare_runtimes(v: Variant, tok: Any, texts: list[str], opts: InferenceOptions,
                     student: Student) -> dict[str, Any]:
    """torch fp32 eager vs ONNX fp32 vs ONNX int8: the student's architecture, same batches."""
    import onnxruntime as ort

    # Arrival-order dynamic padding only for int8: it shows what the length sort adds; the
    # slower runtimes get the two modes the headline compares, to keep `bench all` in budget.
    two = ("fixed", "bucketed")
    out = {
        "torch_fp32": _runtime_rows("torch_fp32", lambda: torch_variant(v.layers), _torch_bind, tok, texts, opts, two),
        "onnx_fp32": _runtime_rows("onnx_fp32", lambda: v.folder / MODEL_FP32, _ort_bind, tok, texts, opts, two),
        "onnx_int8": _runtime_rows("onnx_int8", lambda: v.folder / MODEL_INT8, _ort_bind, tok, texts, opts),
    }
    fp16 = student.folder / MODEL_FP16
    if "CUDAExecutionProvider" in ort.get_available_providers() and fp16.is_file():
        out["onnx_fp16_cuda"] = _runtime_rows(
            "fp16_cuda", lambda: fp16, lambda p, t: ort_forward(ort_session(p, t, "CUDAExecutionProvider")),
            tok, texts, opts, ("dynamic", "bucketed"))
    return out


def agreement(student: Student, texts: list[str], threads: int) -> dict[str, Any]:
    """int8 vs fp32 argmax agreement per head, on the published student's own two files."""
    task = load_task(student.folder / "task.yaml")
    tok = load_tokenizer(student.folder, student.max_length)
    fp32 = logits_all(ort_forward(ort_session(student.folder / MODEL_FP32, threads)), tok, texts)
    int8 = logits_all(ort_forward(ort_session(student.folder / MODEL_INT8, threads)), tok, texts)
    per_head = argmax_agreement(fp32, int8, task.slices())
    return {"texts": len(texts), "model": student.describe(), "per_head": per_head,
            "min": min(per_head.values()), "mean": float(np.mean(list(per_head.values()))),
            "max_abs_logit_diff": float(np.max(np.abs(fp32 - int8)))}


def _sized(v: Variant, tok: Any, task: TaskSpec, opts: InferenceOptions) -> int:
    """Texts per pass so one int8 pass takes about ``seconds_per_pass`` here (a busy machine gets fewer)."""
    probe = realistic_texts(64, opts.seed + 1, task)
    fwd = ort_forward(ort_session(v.folder / MODEL_INT8, opts.threads))
    rate = measure(fwd, tok, probe, batch_size=opts.compare_batch, padding="bucketed", repeats=1)["seq_per_s"]["max"]
    n = int(rate * opts.seconds_per_pass) // opts.compare_batch * opts.compare_batch
    return max(2 * opts.compare_batch, min(256, n))


def run_inference(opts: InferenceOptions, student: Student, cache_dir: Any) -> dict[str, Any]:
    """Every inference figure, plus the ratios computed from this run alone."""
    task = load_task()
    layers = student.num_layers or 6  # the student's architecture: MiniLM-L6 or its bottom N layers
    # The student's own layer count gets the student's precision recipe (its fp32 layers); the
    # other layer variants are all-int8 size/speed points.
    variants = {n: variant(n, cache_dir, fp32_layers=student.fp32_layers if n == layers else ())
                for n in sorted({*opts.layers, layers})}
    vs = variants[layers]
    tok = load_tokenizer(vs.folder, student.max_length)
    texts = realistic_texts(opts.texts or _sized(vs, tok, task, opts), opts.seed, task)
    out: dict[str, Any] = {"options": asdict(opts) | {"texts": len(texts)}, "token_lengths": length_profile(tok, texts),
                           "variants": {str(n): {"parameters": v.parameters, "matmul_params": v.matmul_params,
                                            "export_s": v.export_s, "folder": str(v.folder)}
                                        for n, v in variants.items()}}
    out["student_layers"] = layers
    out["student_fp32_layers"] = list(student.fp32_layers)
    out["runtimes"] = compare_runtimes(vs, tok, texts, opts, student)
    out["batch_sweep"] = {}
    threads = out["runtimes"]["onnx_int8"]["threads"]
    int8 = ort_forward(ort_session(vs.folder / MODEL_INT8, threads))
    for bs in opts.batch_sizes:
        row = measure(int8, tok, texts, batch_size=bs, padding="bucketed", repeats=opts.repeats)
        out["batch_sweep"][str(bs)] = row
        log.info("int8 batch %-3d %7.1f seq/s", bs, row["seq_per_s"]["median"])
    out["chunk_sweep"] = {}
    for chunk in opts.chunks:
        row = measure(int8, tok, texts, batch_size=opts.compare_batch, padding=f"bucketed/{chunk}",
                      repeats=opts.repeats)
        out["chunk_sweep"][str(chunk)] = row
        log.info("int8 batch %d chunks of %d: %7.1f seq/s", opts.compare_batch, chunk, row["seq_per_s"]["median"])
    out["layers"] = {}
    for n, v in variants.items():
        if n == layers:  # measured above, same texts and settings
            row = out["runtimes"]["onnx_int8"]["padding"]["bucketed"]
            out["layers"][str(n)] = row | {"peak_rss_mb": out["runtimes"]["onnx_int8"]["peak_rss_mb"],
                                        "parameters": v.parameters}
            continue
        with peak_memory() as mem:
            fwd = ort_forward(ort_session(v.folder / MODEL_INT8, threads))
            row = measure(fwd, tok, texts, batch_size=opts.compare_batch, padding="bucketed", repeats=opts.repeats)
        out["layers"][str(n)] = row | {"peak_rss_mb": round(mem.peak_mb, 1), "parameters": v.parameters}
        log.info("int8 %d layers %7.1f seq/s", n, row["seq_per_s"]["median"])
    gemm = {t: int8_gemm_peak(t) for t in sorted({1, opts.threads})}
    out["gemm"] = max(gemm.values(), key=lambda g: g["peak_ops_per_s"])
    out["gemm"]["peak_by_threads"] = {str(t): g["peak_ops_per_s"] for t, g in gemm.items()}
    out["agreement"] = agreement(student, validation_texts(opts.agreement_texts, task), opts.threads)
    best = out["runtimes"]["onnx_int8"]["padding"]["bucketed"]
    achieved = 2 * vs.matmul_params * best["computed_tokens_per_s"]
    out["achieved"] = {"int8_matmul_ops_per_s": achieved, "peak_ops_per_s": out["gemm"]["peak_ops_per_s"],
                       "basis": f"{layers}-layer int8, bucketed, comparison batch: 2 x matmul weights x computed tokens/s "
                                "(attention score products are fp32 and not counted)"}
    out["ratios"] = inference_ratios(out)
    return out


def inference_ratios(res: dict[str, Any]) -> dict[str, float]:
    """Side-by-side ratios of this run (medians)."""
    rt = res["runtimes"]

    def med(runtime: str, padding: str) -> float:
        return float(rt[runtime]["padding"][padding]["seq_per_s"]["median"])

    return {
        "int8_over_torch_fp32": med("onnx_int8", "bucketed") / med("torch_fp32", "bucketed"),
        "int8_over_torch_fp32_fixed": med("onnx_int8", "fixed") / med("torch_fp32", "fixed"),
        "int8_bucketed_over_torch_fp32_fixed": med("onnx_int8", "bucketed") / med("torch_fp32", "fixed"),
        "int8_over_onnx_fp32": med("onnx_int8", "bucketed") / med("onnx_fp32", "bucketed"),
        "int8_bucketed_over_int8_fixed": med("onnx_int8", "bucketed") / med("onnx_int8", "fixed"),
        "int8_fp32_argmax_agreement": float(res["agreement"]["min"]),
        "achieved_fraction_of_int8_peak": res["achieved"]["int8_matmul_ops_per_s"] / res["achieved"]["peak_ops_per_s"],
    }
