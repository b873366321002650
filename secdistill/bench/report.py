"""Rich tables for the terminal and the JSON document: machine, settings, figures, ratios, targets."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from secdistill.bench.machine import busy, describe_machine
from secdistill.bench.runtimes import WORKER_CHUNK
from secdistill.schemas import codec

# The targets, measured as ratios in one run: (ratio key, comparison, bound).
TARGETS = (
    ("int8_over_torch_fp32", ">=", 4.0),
    ("int8_fp32_argmax_agreement", ">=", 0.99),
    ("pipeline_unique_over_inference", ">=", 0.85),
    ("pipeline_zipf_over_unique", ">=", 20.0),
    ("design_over_naive", ">=", 30.0),
    ("latency_p99_at_half_load_over_batch_window", "<=", 2.0),
)


def _f(x: Any, digits: int = 1) -> str:
    return "-" if x is None else f"{x:,.{digits}f}"


def _rate(s: dict[str, float]) -> str:
    return f"{_f(s['median'])} ({_f(s['min'])}-{_f(s['max'])})"


def targets(ratios: dict[str, float]) -> list[dict[str, Any]]:
    """Each target with this run's value and whether it was met (None: not measured)."""
    out = []
    for key, op, bound in TARGETS:
        value = ratios.get(key)
        met = None if value is None else (value >= bound if op == ">=" else value <= bound)
        out.append({"ratio": key, "target": f"{op} {bound:g}", "value": value, "met": met})
    return out


def document(command: str, started: float, settings: dict[str, Any], sections: dict[str, Any],
             machine: dict[str, Any] | None = None) -> dict[str, Any]:
    """The JSON report; ``ratios`` merges every section's ratios."""
    ratios: dict[str, float] = {}
    for sec in sections.values():
        ratios.update(sec.get("ratios", {}))
    machine = machine or describe_machine()
    machine["busy_at_end"] = busy()
    return {"schema": "secdistill.bench/1", "command": command, "seconds": time.time() - started,
            "machine": machine, "settings": settings, **sections, "ratios": ratios, "targets": targets(ratios)}


def write_json(path: Path, doc: dict[str, Any]) -> None:
    """Write the report (parents created)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(codec.dumps(doc, pretty=True))


def print_inference(console: Console, res: dict[str, Any]) -> None:
    """Runtimes x padding, batch sizes, layer variants, GEMM peak, agreement."""
    t = Table(title=f"Inference: {res['student_layers']} layers, batch {res['options']['compare_batch']}, "
                    f"threads: the faster of 1 and {res['options']['threads']}, {res['options']['texts']} corpus texts "
                    f"(median {res['token_lengths']['median']:.0f} tokens)")
    for c in ("runtime", "threads", "padding", "seq/s median (min-max)", "batch p50 ms", "batch p99 ms",
              "tokens/seq", "peak RSS MB"):
        t.add_column(c)
    for name, rt in res["runtimes"].items():
        for pad, row in rt["padding"].items():
            t.add_row(name, str(rt["threads"]), pad, _rate(row["seq_per_s"]), _f(row["batch_latency_ms"]["p50"]),
                      _f(row["batch_latency_ms"]["p99"]), _f(row["computed_tokens_per_seq"]), _f(rt["peak_rss_mb"], 0))
    console.print(t)
    t = Table(title=f"ONNX int8, bucketed (the worker's scheme: sort, chunks of {WORKER_CHUNK}): batch size")
    for c in ("batch", "seq/s median (min-max)", "batch p50 ms", "batch p99 ms", "tokens/seq"):
        t.add_column(c)
    for bs, row in res["batch_sweep"].items():
        t.add_row(bs, _rate(row["seq_per_s"]), _f(row["batch_latency_ms"]["p50"]), _f(row["batch_latency_ms"]["p99"]),
                  _f(row["computed_tokens_per_seq"]))
    for chunk, row in res.get("chunk_sweep", {}).items():
        t.add_row(f"{res['options']['compare_batch']}, chunks of {chunk}", _rate(row["seq_per_s"]),
                  _f(row["batch_latency_ms"]["p50"]), _f(row["batch_latency_ms"]["p99"]),
                  _f(row["computed_tokens_per_seq"]))
    console.print(t)
    t = Table(title=f"ONNX int8 layer variants (bottom N layers of MiniLM-L6), batch {res['options']['compare_batch']}, "
                    "bucketed")
    for c in ("layers", "parameters (M)", "seq/s median (min-max)", "batch p99 ms", "peak RSS MB"):
        t.add_column(c)
    for n, row in res["layers"].items():
        t.add_row(n, _f(row["parameters"] / 1e6), _rate(row["seq_per_s"]), _f(row["batch_latency_ms"]["p99"]),
                  _f(row["peak_rss_mb"], 0))
    console.print(t)
    t = Table(title="int8 GEMM peak (ONNX Runtime MatMulInteger) and the student's share of it")
    for c in ("what", "GOPS median (min-max)"):
        t.add_column(c)
    for row in res["gemm"]["shapes"]:
        g = {k: v / 1e9 for k, v in row["ops_per_s"].items() if k != "n"}
        t.add_row("GEMM m,k,n=" + ",".join(map(str, row["shape_mkn"])), _rate(g))
    a = res["achieved"]
    t.add_row("student int8 matmuls (achieved)", f"{_f(a['int8_matmul_ops_per_s'] / 1e9)} = "
              f"{100 * a['int8_matmul_ops_per_s'] / a['peak_ops_per_s']:.1f}% of peak {_f(a['peak_ops_per_s'] / 1e9)}")
    console.print(t)
    ag = res["agreement"]
    console.print(f"int8 vs fp32 argmax agreement ({ag['texts']} texts, model {ag['model']['version']}, "
                  f"trained={ag['model']['trained']}): min {ag['min']:.4f}, mean {ag['mean']:.4f}; "
                  + ", ".join(f"{h} {v:.3f}" for h, v in ag["per_head"].items()))


def print_pipeline(console: Console, res: dict[str, Any]) -> None:
    """Throughput runs, latency under load, scaling."""
    ref = res["reference"]
    t = Table(title=f"Pipeline: embedded broker + worker process(es), batch {res['options']['batch_max']} "
                    f"within {res['options']['batch_wait_s']} s, {res['options']['partitions']} partitions")
    for c in ("run", "records", "findings/s", "notes"):
        t.add_column(c)
    t.add_row("raw scorer, same texts (no broker)", str(ref["texts"]), _rate(ref["logits_seq_per_s"]),
              f"score() incl. probabilities: {_rate(ref['score_seq_per_s'])}")
    t.add_row(f"unique texts, 1 worker x {res['unique']['threads_per_worker']} thread(s)", str(res["unique"]["records"]),
              _f(res["unique"]["findings_per_s"]), "")
    z = res["zipf"]
    t.add_row(f"Zipf {z['zipf_s']}, {z['distinct_texts_seen']} distinct texts, 1 worker", str(z["records"]), _f(z["findings_per_s"]),
              f"cache hit rate {100 * z['cache_hit_rate']:.1f}%, {z['dead_letters']} malformed -> DLQ")
    for n, row in res["scaling"].items():
        if n != "1":
            t.add_row(f"unique texts, {n} workers x {row['threads_per_worker']} thread", str(row["records"]),
                      _f(row["findings_per_s"]), "")
    console.print(t)
    t = Table(title="Produce-to-labelled latency (fresh unique texts, steady rate)")
    for c in ("load", "target /s", "achieved /s", "p50 ms", "p99 ms", "max ms"):
        t.add_column(c)
    for load, row in res["latency"].items():
        lat = row["latency_ms"]
        t.add_row(f"{100 * float(load):.0f}%", _f(row["target_rate"]), _f(row["achieved_rate"]), _f(lat["p50"], 0),
                  _f(lat["p99"], 0), _f(lat["max"], 0))
    console.print(t)
    hold = res.get("broker_fetch_hold_ms", {})
    if hold:
        console.print("embedded-broker fetch hold (bare aiokafka consumer, produce-to-fetch ms): "
                      + "; ".join(f"fetch_max_wait_ms={w}: p50 {_f(h['p50'], 0)}, max {_f(h['max'], 0)}"
                                  for w, h in hold.items())
                      + " (Faust always asks for 1500)")


def print_naive(console: Console, res: dict[str, Any], design_rate: float | None) -> None:
    """The baseline next to the design on the same stream."""
    t = Table(title="Naive baseline vs the design, same realistic stream")
    for c in ("what", "records", "findings/s"):
        t.add_column(c)
    t.add_row(f"{res['what']}; torch threads {res['threads']}", str(res["records"]), _f(res["findings_per_s"], 2))
    if design_rate is not None:
        t.add_row("secdistill worker (pipeline, Zipf stream)", "", _f(design_rate))
    console.print(t)


def print_cost(console: Console, res: dict[str, Any]) -> None:
    """Dollars per million findings."""
    mix = res["mix"]
    t = Table(title=f"Cost per million findings (deferred+shadow share {100 * mix['teacher_share']:.1f}% "
                    f"on {mix['findings']} validation-like findings)")
    for c in ("how", "USD / million", "teacher calls", "basis"):
        t.add_column(c)
    for row in res["rows"]:
        t.add_row(row["how"], _f(row["usd_per_million"], 2), _f(row["teacher_calls"], 0), row["basis"])
    console.print(t)
    if "warning" in res:
        console.print(f"[yellow]{res['warning']}")


def print_ratios(console: Console, doc: dict[str, Any]) -> None:
    """Every ratio, and the targets met or missed."""
    t = Table(title="Ratios (side by side, this run) and targets")
    for c in ("ratio", "value", "target", "met"):
        t.add_column(c)
    tgt = {x["ratio"]: x for x in doc["targets"]}
    for key, value in doc["ratios"].items():
        x = tgt.get(key, {})
        met = {True: "[green]yes", False: "[red]no", None: "-"}[x.get("met")]
        t.add_row(key, _f(value, 3), x.get("target", ""), met)
    console.print(t)
    m = doc["machine"]
    console.print(f"machine: {m['cpu_model']}, {m['usable_cpus']} CPUs, flags {' '.join(m['cpu_flags'])}; "
                  f"busy at start {m['busy_at_start']}, at end {m['busy_at_end']} (cpu_pressure: % of time tasks "
                  "waited for a CPU; high means other work shared the cores)")
