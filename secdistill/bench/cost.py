"""`secdistill bench cost`: dollars per million findings for student-only, teacher-only and the
measured mix, from ``PriceSettings`` (overridable) and rates measured on this machine."""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass
from typing import Any

from secdistill.bench.inference import validation_texts
from secdistill.bench.models import Student
from secdistill.schemas.corpus import holdout_unit, read_corpus_records, record_to_finding
from secdistill.schemas.task import load_task
from secdistill.workers.config import ModelSettings, PriceSettings
from secdistill.workers.inference import OnnxScorer
from secdistill.workers.labeller import Labeller

log = logging.getLogger(__name__)

MILLION = 1_000_000


@dataclass(frozen=True)
class CostOptions:
    """Prices and the capacity assumptions behind them."""

    prices: PriceSettings = PriceSettings()
    cores_per_worker: int = 2  # a worker process here uses both cores; price it as 2 CPU-hours per hour
    teacher_gpu_rate: float | None = None  # findings/s of a self-hosted teacher on one GPU, if known
    mix_texts: int = 512


def deferral_mix(student: Student, n: int) -> dict[str, Any]:
    """Share of validation-like findings the student defers or shadow-samples (its own thresholds)."""
    records = sorted(read_corpus_records(), key=lambda r: holdout_unit(r["id"]))[:n]
    findings = [record_to_finding(r, finding_id=f"v-{i}") for i, r in enumerate(records)]
    labeller = Labeller(OnnxScorer(student.folder, ModelSettings()), ModelSettings())
    preds = [p for i in range(0, len(findings), 64) for p in labeller.label(findings[i:i + 64])]
    deferred = sum(p.deferred for p in preds) / len(preds)
    shadow = sum(p.shadow for p in preds) / len(preds)
    heads: dict[str, int] = {}
    for p in preds:
        for r in p.deferral_reasons:
            heads[r.split(":", 1)[-1]] = heads.get(r.split(":", 1)[-1], 0) + 1
    return {"findings": len(preds), "deferred_share": deferred, "shadow_share": shadow,
            "teacher_share": deferred + shadow, "deferred_by_head": {h: n / len(preds) for h, n in heads.items()},
            "model": student.describe(),
            "meaningful": student.trained}


def quick_rate(student: Student, n: int = 512) -> float:
    """Raw scorer findings/s (no broker) when no pipeline rate is at hand."""
    scorer = OnnxScorer(student.folder, ModelSettings())
    texts = validation_texts(n, load_task())
    start = time.perf_counter()
    for i in range(0, len(texts), 64):
        scorer.logits(texts[i:i + 64])
    return len(texts) / (time.perf_counter() - start)


def cost_rows(opts: CostOptions, rates: dict[str, float], mix: dict[str, Any],
              distinct_fraction: float | None) -> list[dict[str, Any]]:
    """One row per way of labelling a million findings."""
    p = opts.prices

    def cpu(rate: float) -> float:
        return MILLION / rate / 3600 * opts.cores_per_worker * p.cpu_hour_usd

    teacher = mix["teacher_share"]
    rows = [{"how": "teacher only (API call per finding)", "usd_per_million": MILLION * p.teacher_per_call_usd,
             "teacher_calls": MILLION, "basis": f"{p.teacher_per_call_usd} USD per call"}]
    if opts.teacher_gpu_rate:
        rows.append({"how": "teacher only (self-hosted, one GPU)", "teacher_calls": MILLION,
                     "usd_per_million": MILLION / opts.teacher_gpu_rate / 3600 * p.gpu_hour_usd,
                     "basis": f"{opts.teacher_gpu_rate} findings/s per GPU at {p.gpu_hour_usd} USD/GPU-hour"})
    for name, rate in rates.items():
        rows.append({"how": f"student only ({name})", "usd_per_million": cpu(rate), "teacher_calls": 0,
                     "basis": f"{rate:.1f} findings/s per worker x {opts.cores_per_worker} CPUs"})
        repeated = "zipf" in name.lower()
        calls = MILLION * teacher * (distinct_fraction if repeated and distinct_fraction else 1.0)
        rows.append({"how": f"student + teacher on deferred ({name})", "teacher_calls": calls,
                     "usd_per_million": cpu(rate) + calls * p.teacher_per_call_usd,
                     "basis": f"{100 * teacher:.1f}% deferred or shadow-sampled"
                              + (", teacher cache: calls x distinct-text share" if repeated else "")})
    return rows


def run_cost(opts: CostOptions, student: Student, rates: dict[str, float] | None = None,
             distinct_fraction: float | None = None) -> dict[str, Any]:
    """The cost table; ``rates`` from the pipeline run when given, else a quick scorer rate."""
    mix = deferral_mix(student, opts.mix_texts)
    rate_note = "pipeline findings/s measured in this run"
    if not rates:
        rates = {"raw scorer": quick_rate(student)}
        rate_note = "raw scorer seq/s (no broker; run `bench all` for pipeline rates)"
    rows = cost_rows(opts, rates, mix, distinct_fraction)
    by = {r["how"]: r["usd_per_million"] for r in rows}
    mixes = [v for k, v in by.items() if k.startswith("student + teacher")]
    out: dict[str, Any] = {"options": asdict(opts), "rates": rates, "rate_note": rate_note, "mix": mix,
                           "rows": rows}
    out["ratios"] = {"cost_teacher_only_over_mix": by["teacher only (API call per finding)"] / min(mixes)}
    if not student.trained:
        out["warning"] = "the model is an untrained speed twin: its deferral share is not a real mix"
    return out
