"""`secdistill bench pipeline`: findings/s through broker + worker, Zipf repetition, latency under
load, and 1 vs 2 worker processes, with the raw int8 rate on the same texts measured alongside."""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, replace
from typing import Any

from secdistill.bench.fleet import BenchFleet, OutRecord, TopicReader, broker_fetch_hold, metric_total
from secdistill.bench.loadgen import CorpusPool, Traffic, build_stream, bursty_offsets, send
from secdistill.bench.machine import percentile, summary
from secdistill.bench.models import Student
from secdistill.bench.runtimes import fastest_threads, load_tokenizer, ort_forward, ort_session
from secdistill.schemas import codec
from secdistill.schemas.manifest import MODEL_INT8
from secdistill.schemas.records import Finding
from secdistill.schemas.topics import TopicMap
from secdistill.workers.config import ModelSettings
from secdistill.workers.inference import OnnxScorer
from secdistill.workers.kafka_tools import make_producer

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PipelineOptions:
    """Sizes of the runs. Counts scale with the machine: about ``run_s`` seconds of work each,
    between the bounds, so `bench all` stays inside its budget on a slow or busy machine."""

    run_s: float = 12.0
    unique_max: int = 1500
    zipf_max: int = 20000
    zipf_repeat: int = 20  # findings per distinct text in the Zipf stream (pool = count / repeat)
    zipf_s: float = 1.1
    reference_texts: int = 128
    malformed_share: float = 0.01
    latency_s: float = 8.0
    loads: tuple[float, ...] = (0.5, 0.9)
    batch_max: int = 64
    batch_wait_s: float = 0.5
    partitions: int = 4
    scale_workers: int = 2
    threads: int = 2
    repeats: int = 3
    seed: int = 0


def sized(opts: PipelineOptions, raw_rate: float) -> tuple[int, int]:
    """(unique texts, Zipf stream length) for this machine's raw rate."""
    unique = int(min(opts.unique_max, max(200, raw_rate * opts.run_s)))
    zipf = int(min(opts.zipf_max, max(2000, opts.zipf_repeat * raw_rate * opts.run_s)))
    return unique, zipf


def raw_rate(student: Student, findings: list[Finding], batch: int, threads: int, repeats: int) -> dict[str, Any]:
    """The worker's own scorer on the same texts in this process: tokenise+forward, and full score()."""
    scorer = OnnxScorer(student.folder, ModelSettings(threads=threads))
    texts = scorer.texts(findings)
    logits, score = [], []
    for r in range(repeats):
        start = time.perf_counter()
        for i in range(0, len(texts), batch):
            scorer.logits(texts[i:i + batch])
        logits.append(len(texts) / (time.perf_counter() - start))
        if r == 0:  # once: score() adds only probabilities and records on top of logits()
            start = time.perf_counter()
            for i in range(0, len(findings), batch):
                scorer.score(findings[i:i + batch])
            score.append(len(findings) / (time.perf_counter() - start))
    return {"texts": len(texts), "batch_size": batch, "logits_seq_per_s": summary(logits),
            "score_seq_per_s": summary(score)}


class Scenario:
    """One namespace (topics + workers) and a reader of its labelled and dead-letter topics."""

    def __init__(self, fleet: BenchFleet, name: str, workers: int, threads: int) -> None:
        self.fleet = fleet
        namespace = f"{name}{int(time.time())}."
        self.topics: TopicMap = fleet.topics(namespace)
        self.procs = fleet.start_workers(namespace, workers, threads)
        fleet.wait_assigned(self.procs, self.topics.input)
        self.reader = TopicReader(fleet.kafka, [self.topics.labelled, self.topics.deadletter], fleet.partitions)

    def run(self, values: list[bytes], prefix: str, *, offsets: list[float] | None = None,
            stamp: bool = False, timeout_s: float = 300.0) -> tuple[float, list[OutRecord]]:
        """Send ``values``; return (send start, output records) once every one came out."""
        start, sent = send(make_producer(self.fleet.kafka), self.topics.input, values, offsets, stamp_time=stamp)
        if sent != len(values):
            raise RuntimeError(f"only {sent} of {len(values)} records were delivered")

        def mine(r: OutRecord) -> bool:
            return r.topic == self.topics.deadletter or str(r.value.get("finding_id", "")).startswith(prefix)

        records = self.reader.read(lambda rs: sum(map(mine, rs)) >= len(values), timeout_s)
        records = [r for r in records if mine(r)]
        if len(records) < len(values):
            raise TimeoutError(f"{len(records)} of {len(values)} outputs after {timeout_s:.0f} s:\n"
                               f"{self.procs[0].tail()}")
        return start, records

    def cache_counts(self) -> tuple[float, float]:
        """(hits, misses) summed over this scenario's workers."""
        return (sum(metric_total(p, "secdistill_cache_hits_total") for p in self.procs),
                sum(metric_total(p, "secdistill_cache_misses_total") for p in self.procs))


def throughput(start_wall: float, records: list[OutRecord]) -> dict[str, Any]:
    """Records per second from the first send to the last output's broker timestamp."""
    end = max(r.timestamp_ms for r in records) / 1000
    return {"records": len(records), "seconds": end - start_wall, "findings_per_s": len(records) / (end - start_wall)}


def latency_run(sc: Scenario, pool: CorpusPool, rate: float, seconds: float, prefix: str) -> dict[str, Any]:
    """Steady traffic at ``rate``/s of fresh unique texts; produce-to-labelled latency per finding."""
    n = max(20, int(rate * seconds))
    values = [codec.encode(f) for f in pool.take(n, prefix)]
    start, records = sc.run(values, prefix, offsets=bursty_offsets(n, rate), stamp=True)
    lat = [r.timestamp_ms - r.value["finding"]["attributes"]["produced_at"] for r in records
           if r.topic == sc.topics.labelled]
    return {"target_rate": rate, "findings": n, "achieved_rate": throughput(start, records)["findings_per_s"],
            "latency_ms": {"p50": percentile(lat, 50), "p99": percentile(lat, 99), "max": max(lat)}}


def zipf_stream(pool: CorpusPool, opts: PipelineOptions, count: int) -> list[bytes]:
    """The realistic stream: Zipf repetition over many assets, a share of malformed records."""
    traffic = Traffic(count=count, zipf_s=opts.zipf_s, malformed_share=opts.malformed_share, seed=opts.seed)
    return build_stream(pool, traffic, max(1, count // opts.zipf_repeat), "z")


def zipf_run(sc: Scenario, values: list[bytes], opts: PipelineOptions) -> dict[str, Any]:
    """The realistic stream at full speed through the scenario's workers."""
    hits0, miss0 = sc.cache_counts()
    start, records = sc.run(values, "z-")
    hits, miss = sc.cache_counts()
    dead = sum(r.topic == sc.topics.deadletter for r in records)
    distinct = len({r.value["finding"]["description"] for r in records if r.topic == sc.topics.labelled})
    return throughput(start, records) | {
        "zipf_s": opts.zipf_s, "repeat": opts.zipf_repeat, "distinct_texts_seen": distinct, "dead_letters": dead,
        "cache_hit_rate": (hits - hits0) / max(1.0, (hits - hits0) + (miss - miss0))}


def _fastest(student: Student, findings: list[Finding], opts: PipelineOptions) -> tuple[int, dict[str, float]]:
    scorer = OnnxScorer(student.folder, ModelSettings(threads=1))
    tok = load_tokenizer(student.folder)
    return fastest_threads(lambda t: ort_forward(ort_session(student.folder / MODEL_INT8, t)), tok,
                           scorer.texts(findings), opts.batch_max, tuple(sorted({1, opts.threads})))


def run_pipeline(opts: PipelineOptions, student: Student, fleet: BenchFleet | None = None,
                 keep_stream: dict[str, Any] | None = None) -> dict[str, Any]:
    """Every pipeline figure; ``keep_stream["values"]`` receives the Zipf stream for the naive run."""
    pool = CorpusPool(opts.seed)
    first = pool.take(opts.reference_texts, "u")
    threads, probe = _fastest(student, first, opts)
    opts = replace(opts, threads=threads)  # the worker gets the thread count that is faster here now
    ref = raw_rate(student, first, opts.batch_max, opts.threads, opts.repeats)
    n_unique, n_zipf = sized(opts, ref["logits_seq_per_s"]["median"])
    unique = first[:n_unique] + pool.take(max(0, n_unique - len(first)), "u-more")
    out: dict[str, Any] = {"options": asdict(opts), "model": student.describe(), "reference": ref,
                           "thread_probe_seq_per_s": probe,
                           "sizes": {"unique": n_unique, "zipf": n_zipf},
                           "runs": "each stream run once (time budget); the reference repeats"}
    log.info("raw scorer on the first %d texts: %.1f seq/s", len(first), ref["logits_seq_per_s"]["median"])
    own = fleet is None
    fleet = fleet or BenchFleet(student, opts.batch_max, opts.batch_wait_s, opts.partitions).__enter__()
    try:
        out["broker_fetch_hold_ms"] = broker_fetch_hold(fleet.kafka, fleet.topics(f"probe{int(time.time())}.").input)
        sc = Scenario(fleet, "bench1", 1, opts.threads)
        start, records = sc.run([codec.encode(f) for f in unique], "u-")
        out["unique"] = throughput(start, records) | {"workers": 1, "threads_per_worker": opts.threads}
        rate = out["unique"]["findings_per_s"]
        log.info("pipeline, unique texts: %.1f findings/s", rate)
        out["latency"] = {}
        for load in opts.loads:
            out["latency"][f"{load:.2f}"] = latency_run(sc, pool, load * rate, opts.latency_s, f"l{int(load * 100)}-")
            log.info("latency at %.0f%% load: %s", 100 * load, out["latency"][f"{load:.2f}"]["latency_ms"])
        stream = zipf_stream(pool, opts, n_zipf)
        out["zipf"] = zipf_run(sc, stream, opts)
        log.info("pipeline, Zipf stream: %.1f findings/s", out["zipf"]["findings_per_s"])
        if keep_stream is not None:
            keep_stream["values"] = stream
        fleet.stop_workers()
        sc2 = Scenario(fleet, "bench2", opts.scale_workers, max(1, opts.threads // opts.scale_workers))
        start, records = sc2.run([codec.encode(f) for f in pool.take(n_unique, "s")], "s-")
        out["scaling"] = {"1": out["unique"], str(opts.scale_workers): throughput(start, records) | {
            "workers": opts.scale_workers, "threads_per_worker": max(1, opts.threads // opts.scale_workers)}}
        fleet.stop_workers()
    finally:
        if own:
            fleet.__exit__(None, None, None)
    out["ratios"] = pipeline_ratios(out, opts)
    return out


def pipeline_ratios(res: dict[str, Any], opts: PipelineOptions) -> dict[str, float]:
    """Side-by-side ratios of this run."""
    unique = res["unique"]["findings_per_s"]
    half = res["latency"].get(f"{min(opts.loads):.2f}", {}).get("latency_ms", {}).get("p99", float("nan"))
    scale = res["scaling"][str(opts.scale_workers)]["findings_per_s"]
    return {
        "pipeline_unique_over_inference": unique / res["reference"]["logits_seq_per_s"]["median"],
        "pipeline_unique_over_scorer": unique / res["reference"]["score_seq_per_s"]["median"],
        "pipeline_zipf_over_unique": res["zipf"]["findings_per_s"] / unique,
        "latency_p99_at_half_load_over_batch_window": half / 1000 / opts.batch_wait_s,
        f"workers_{opts.scale_workers}_over_1": scale / unique,
    }


def design_on_stream(fleet: BenchFleet, values: list[bytes], opts: PipelineOptions) -> dict[str, Any]:
    """One worker on a given stream (for `bench naive` run on its own)."""
    sc = Scenario(fleet, "design", 1, opts.threads)
    try:
        return zipf_run(sc, values, opts)
    finally:
        fleet.stop_workers()
