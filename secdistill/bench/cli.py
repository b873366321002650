"""`secdistill bench ...`: a Typer sub-app; imports cheaply, the benchmarks load inside commands."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer

if TYPE_CHECKING:
    from secdistill.bench.cost import CostOptions
    from secdistill.workers.config import WorkerSettings

bench_app = typer.Typer(help="Benchmarks: inference runtimes, the pipeline, cost, the naive baseline, all.",
                        no_args_is_help=True)

JsonOut = Annotated[Optional[Path], typer.Option("--json", help="Also write the figures as JSON here")]
Threads = Annotated[int, typer.Option(help="Threads per model session (default: usable CPUs)")]
CacheDir = Annotated[Optional[Path], typer.Option(help="Exported model variants (default ~/.cache/secdistill/bench)")]
CpuHour = Annotated[Optional[float], typer.Option(help="USD per CPU-hour (default: SECDISTILL_PRICES__CPU_HOUR_USD)")]
GpuHour = Annotated[Optional[float], typer.Option(help="USD per GPU-hour (default: SECDISTILL_PRICES__GPU_HOUR_USD)")]
PerCall = Annotated[Optional[float], typer.Option(help="USD per teacher call (default: SECDISTILL_PRICES__...)")]
GpuRate = Annotated[Optional[float], typer.Option(help="Self-hosted teacher findings/s per GPU (adds a row)")]


def _cpus() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def _common(cache_dir: Optional[Path]) -> tuple[WorkerSettings, Path]:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    from secdistill.bench.models import default_cache_dir
    from secdistill.workers.config import WorkerSettings

    return WorkerSettings(), cache_dir or default_cache_dir()


def _cost_options(settings: WorkerSettings, cpu_hour: float | None, gpu_hour: float | None,
                  per_call: float | None, gpu_rate: float | None, cores: int) -> CostOptions:
    from secdistill.bench.cost import CostOptions

    overrides = {"cpu_hour_usd": cpu_hour, "gpu_hour_usd": gpu_hour, "teacher_per_call_usd": per_call}
    prices = settings.prices.model_copy(update={k: v for k, v in overrides.items() if v is not None})
    return CostOptions(prices=prices, cores_per_worker=cores, teacher_gpu_rate=gpu_rate)


@bench_app.command("inference")
def inference(json_out: JsonOut = None, texts: int = 192, repeats: int = 3, threads: Threads = 0,
              cache_dir: CacheDir = None) -> None:
    """torch fp32 vs ONNX fp32 vs int8; padding; batch sizes; layer variants; GEMM peak; agreement."""
    from secdistill.bench.inference import InferenceOptions
    from secdistill.bench.suite import bench_inference

    settings, cache = _common(cache_dir)
    bench_inference(settings, InferenceOptions(texts=texts, repeats=repeats, threads=threads or _cpus()), cache,
                    json_out)


@bench_app.command("pipeline")
def pipeline(json_out: JsonOut = None, run_s: float = 12.0, workers: int = 2, threads: Threads = 0,
             cache_dir: CacheDir = None) -> None:
    """Broker + worker processes: unique texts, Zipf stream, latency at 50/90 % load, 1 vs N workers."""
    from secdistill.bench.pipeline import PipelineOptions
    from secdistill.bench.suite import bench_pipeline

    settings, cache = _common(cache_dir)
    opts = PipelineOptions(run_s=run_s, scale_workers=workers, threads=threads or _cpus())
    bench_pipeline(settings, opts, cache, json_out)


@bench_app.command("cost")
def cost(json_out: JsonOut = None, cpu_hour: CpuHour = None, gpu_hour: GpuHour = None, per_call: PerCall = None,
         teacher_gpu_rate: GpuRate = None, cores_per_worker: int = 2, cache_dir: CacheDir = None) -> None:
    """USD per million findings: student only, teacher only, and the measured mix."""
    from secdistill.bench.suite import bench_cost

    settings, cache = _common(cache_dir)
    opts = _cost_options(settings, cpu_hour, gpu_hour, per_call, teacher_gpu_rate, cores_per_worker)
    bench_cost(settings, opts, cache, json_out)


@bench_app.command("naive")
def naive(json_out: JsonOut = None, messages: int = 300, threads: Threads = 0, cache_dir: CacheDir = None) -> None:
    """A transformers pipeline per message from a plain consumer, next to the worker, same stream."""
    from secdistill.bench.naive import NaiveOptions
    from secdistill.bench.pipeline import PipelineOptions
    from secdistill.bench.suite import bench_naive

    settings, cache = _common(cache_dir)
    n = threads or _cpus()
    bench_naive(settings, PipelineOptions(threads=n), NaiveOptions(messages=messages, threads=n), cache, json_out)


@bench_app.command("all")
def all_(json_out: JsonOut = None, threads: Threads = 0, cpu_hour: CpuHour = None, gpu_hour: GpuHour = None,
         per_call: PerCall = None, teacher_gpu_rate: GpuRate = None, cache_dir: CacheDir = None) -> None:
    """Every benchmark in one run (ratios side by side); about 10 minutes on 2 cores."""
    from secdistill.bench.inference import InferenceOptions
    from secdistill.bench.naive import NaiveOptions
    from secdistill.bench.pipeline import PipelineOptions
    from secdistill.bench.suite import bench_all

    settings, cache = _common(cache_dir)
    n = threads or _cpus()
    copts = _cost_options(settings, cpu_hour, gpu_hour, per_call, teacher_gpu_rate, n)
    bench_all(settings, InferenceOptions(threads=n), PipelineOptions(threads=n), NaiveOptions(threads=n), copts,
              cache, json_out)
