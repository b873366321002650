"""The `secdistill bench` commands as library functions: run, print the tables, write the JSON."""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from rich.console import Console

from secdistill.bench import report
from secdistill.bench.cost import CostOptions, quick_rate, run_cost
from secdistill.bench.fleet import BenchFleet
from secdistill.bench.inference import InferenceOptions, run_inference
from secdistill.bench.loadgen import CorpusPool
from secdistill.bench.machine import describe_machine
from secdistill.bench.models import Student, resolve_student
from secdistill.bench.naive import NaiveOptions, run_naive
from secdistill.bench.pipeline import PipelineOptions, design_on_stream, run_pipeline, sized, zipf_stream
from secdistill.workers.config import WorkerSettings

log = logging.getLogger(__name__)
console = Console()


def _for_student(nopts: NaiveOptions, student: Student) -> NaiveOptions:
    """The baseline runs the student's architecture and truncation."""
    return replace(nopts, layers=student.num_layers or 6, max_length=student.max_length)


def _finish(command: str, started: float, settings: dict[str, Any], sections: dict[str, Any],
            machine: dict[str, Any], student: Student, json_path: Path | None) -> dict[str, Any]:
    doc = report.document(command, started, settings | {"model": student.describe()}, sections, machine)
    if not student.trained:
        doc.setdefault("notes", []).append(student.source)
    report.print_ratios(console, doc)
    console.print(f"{command}: {doc['seconds']:.0f} s; model: {student.source}")
    if json_path:
        report.write_json(json_path, doc)
        console.print(f"wrote {json_path}")
    return doc


def bench_inference(settings: WorkerSettings, opts: InferenceOptions, cache_dir: Path,
                    json_path: Path | None) -> dict[str, Any]:
    """`bench inference`."""
    started, machine = time.time(), describe_machine()
    student = resolve_student(settings.registry, cache_dir)
    res = run_inference(opts, student, cache_dir)
    report.print_inference(console, res)
    return _finish("inference", started, {"inference": asdict(opts)}, {"inference": res}, machine, student,
                   json_path)


def bench_pipeline(settings: WorkerSettings, opts: PipelineOptions, cache_dir: Path,
                   json_path: Path | None) -> dict[str, Any]:
    """`bench pipeline`."""
    started, machine = time.time(), describe_machine()
    student = resolve_student(settings.registry, cache_dir)
    res = run_pipeline(opts, student)
    report.print_pipeline(console, res)
    return _finish("pipeline", started, {"pipeline": asdict(opts)}, {"pipeline": res}, machine, student, json_path)


def bench_cost(settings: WorkerSettings, opts: CostOptions, cache_dir: Path, json_path: Path | None) -> dict[str, Any]:
    """`bench cost` (rates from a quick scorer run; `bench all` uses pipeline rates)."""
    started, machine = time.time(), describe_machine()
    student = resolve_student(settings.registry, cache_dir)
    res = run_cost(opts, student)
    report.print_cost(console, res)
    return _finish("cost", started, {"cost": asdict(opts)}, {"cost": res}, machine, student, json_path)


def bench_naive(settings: WorkerSettings, popts: PipelineOptions, nopts: NaiveOptions, cache_dir: Path,
                json_path: Path | None) -> dict[str, Any]:
    """`bench naive`: the baseline and one worker on the same realistic stream."""
    started, machine = time.time(), describe_machine()
    student = resolve_student(settings.registry, cache_dir)
    _, count = sized(popts, quick_rate(student, 256))
    values = zipf_stream(CorpusPool(popts.seed), popts, count)
    with BenchFleet(student, popts.batch_max, popts.batch_wait_s, popts.partitions) as fleet:
        design = design_on_stream(fleet, values, popts)
        res = run_naive(fleet.kafka, values, _for_student(nopts, student))
    res["design"] = design
    res["ratios"] = {"design_over_naive": design["findings_per_s"] / res["findings_per_s"]}
    report.print_naive(console, res, design["findings_per_s"])
    return _finish("naive", started, {"naive": asdict(nopts), "pipeline": asdict(popts)}, {"naive": res},
                   machine, student, json_path)


def bench_all(settings: WorkerSettings, iopts: InferenceOptions, popts: PipelineOptions, nopts: NaiveOptions,
              copts: CostOptions, cache_dir: Path, json_path: Path | None) -> dict[str, Any]:
    """Everything, in one run, so every ratio is side by side."""
    started, machine = time.time(), describe_machine()
    student = resolve_student(settings.registry, cache_dir)
    inference = run_inference(iopts, student, cache_dir)
    report.print_inference(console, inference)
    keep: dict[str, Any] = {}
    with BenchFleet(student, popts.batch_max, popts.batch_wait_s, popts.partitions) as fleet:
        pipeline = run_pipeline(popts, student, fleet, keep)
        report.print_pipeline(console, pipeline)
        naive = run_naive(fleet.kafka, keep["values"], _for_student(nopts, student))
    zipf = pipeline["zipf"]
    naive["ratios"] = {"design_over_naive": zipf["findings_per_s"] / naive["findings_per_s"]}
    report.print_naive(console, naive, zipf["findings_per_s"])
    rates = {"unique texts": pipeline["unique"]["findings_per_s"], "realistic Zipf stream": zipf["findings_per_s"]}
    labelled = max(1, zipf["records"] - zipf["dead_letters"])
    cost = run_cost(copts, student, rates, zipf["distinct_texts_seen"] / labelled)
    report.print_cost(console, cost)
    settings_doc = {"inference": asdict(iopts), "pipeline": asdict(popts), "naive": asdict(nopts),
                    "cost": asdict(copts)}
    sections = {"inference": inference, "pipeline": pipeline, "naive": naive, "cost": cost}
    return _finish("all", started, settings_doc, sections, machine, student, json_path)
