"""`secdistill demo`: the whole loop on one machine, on embedded defaults.

Broker (embedded Tansu) -> a student (the quick preset is distilled if the registry has none) ->
student worker (+ teacher worker when available) -> bundled findings replayed as scanner traffic
-> live progress -> a summary. Lives beside cli.py because it wires fleet and distill together.
"""

from __future__ import annotations

import logging
import os
import signal
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.live import Live

from secdistill.demo_watch import Tally, summary_table, watch_outputs
from secdistill.procs import FleetProcess, fleet_env, start_fleet_process
from secdistill.schemas import codec
from secdistill.schemas.corpus import holdout_unit, read_corpus_records, record_to_finding
from secdistill.schemas.registry import Registry
from secdistill.schemas.task import load_task
from secdistill.schemas.topics import topic_map
from secdistill.workers.broker import free_port, start_broker
from secdistill.workers.config import WorkerSettings
from secdistill.workers.errors import BrokerError
from secdistill.workers.kafka_tools import create_topics
from secdistill.workers.producer_tool import produce_file

log = logging.getLogger(__name__)
console = Console(stderr=True)

# A handful of broken records show the dead-letter path next to the happy one.
BAD_RECORDS = [b'{"finding_id": "bad-1", "description": ', b"\xff\xfenot utf-8",
               b'{"finding_id": 42}', b'["not", "an", "object"]',
               b'{"finding_id": "big", "description": "' + b"A" * 300_000 + b'"}']


def write_demo_findings(path: Path, unique: int) -> int:
    """Held-out-leaning advisories (by id hash) as Finding JSONL."""
    recs = sorted(read_corpus_records(), key=lambda r: holdout_unit(r["id"]))[:unique]
    with path.open("wb") as fh:
        for rec in recs:
            fh.write(codec.encode(record_to_finding(rec)) + b"\n")
    return len(recs)


def ensure_student(settings: WorkerSettings) -> str:
    """The stable student's version, distilling the quick preset first if there is none."""
    reg = Registry(settings.registry.uri)
    version = reg.channel_version(settings.registry.model, settings.registry.channel)
    if version:
        return version
    console.print("[bold]No student in the registry: distilling the quick preset (about 3 minutes)...")
    from secdistill.distill.models import ensure_student as distill_quick  # lazy: torch

    return distill_quick(settings.registry.uri).version


def ensure_teacher(settings: WorkerSettings) -> str:
    """The stable local teacher's version, building a quick one first if there is none.

    The quick teacher is the curated reference plus TF-IDF + logistic regression on the whole
    corpus; its kNN voice uses a tiny random encoder and gets weight 0, so building takes about a
    minute instead of embedding 11k advisories with MiniLM (`secdistill teacher build` does that).
    """
    reg = Registry(settings.registry.uri)
    name = f"{settings.registry.model}-teacher"
    version = reg.channel_version(name, "stable")
    if version:
        return version
    console.print("[bold]No local teacher in the registry: building the quick one (about a minute)...")
    from secdistill.distill.teacher_build import TeacherBuildConfig, build_teacher  # lazy: sklearn

    cfg = TeacherBuildConfig(tiny_encoder=True, weight_folds=0, w_tfidf=1.0)
    return build_teacher(settings.registry.uri, cfg).version


def run_demo(settings: WorkerSettings, *, findings: int = 2000, port: int | None = None) -> int:
    """Run the demo; return the exit code."""
    # SIGTERM unwinds like Ctrl-C, so the finally below stops the worker and the broker.
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    try:
        broker = start_broker(port)
    except BrokerError as exc:
        console.print(f"[red]error:[/red] {exc}")
        return 1
    procs: list[FleetProcess] = []
    work = Path(tempfile.mkdtemp(prefix="secdistill-demo-"))
    try:
        version = ensure_student(settings)
        teacher_version = ensure_teacher(settings)
        console.print(f"broker {broker.bootstrap}; student {version}; teacher {teacher_version}; "
                      f"registry {settings.registry.uri}")
        task = load_task()
        namespace = f"demo{int(time.time())}."
        topics = topic_map(settings.topics.model_copy(update={"namespace": namespace}), task)
        kafka = settings.kafka.model_copy(update={"bootstrap_servers": broker.bootstrap})
        create_topics(kafka, [s.name for s in topics.specs()], settings.topics.partitions)
        env = fleet_env(kafka__bootstrap_servers=broker.bootstrap, registry__uri=settings.registry.uri,
                        topics__namespace=namespace, worker__datadir=work / "faust")
        procs.append(_start(["worker"], env, work, "student worker", "worker"))
        teacher = _start(["teacher", "run"], env, work, "teacher worker", "teacher")
        procs.append(teacher)
        for p in procs:
            p.wait_ready(120)
        src = work / "findings.jsonl"
        unique = write_demo_findings(src, max(50, findings // 3))
        tally = Tally(expected=findings + len(BAD_RECORDS), teacher_running=True,
                      teacher_price_usd=settings.prices.teacher_per_call_usd,
                      cpu_hour_usd=settings.prices.cpu_hour_usd, cores=os.cpu_count() or 1)
        with Live(summary_table(tally), console=console, refresh_per_second=4) as live:
            watcher = watch_outputs(kafka, topics, tally, on_update=lambda: live.update(summary_table(tally)))
            tally.started = time.monotonic()
            produce_file(kafka, topics.input, src, repeat="zipf:1.3", count=findings, seed=7)
            produce_file(kafka, topics.input, _bad_only(work))
            tally.wait_done(timeout_s=240)
            watcher.stop()
            tally.cache_hit_rate = _cache_hit_rate(procs[0])
            live.update(summary_table(tally, final=True))
        console.print(f"{unique} distinct advisories replayed as {findings} findings (Zipf 1.3) "
                      f"+ {len(BAD_RECORDS)} malformed records")
        return 0 if tally.done else 1
    finally:
        for p in procs:
            p.terminate()
        broker.stop()


def _bad_only(work: Path) -> Path:
    path = work / "bad.jsonl"
    path.write_bytes(b"\n".join(BAD_RECORDS) + b"\n")
    return path


def _start(cmd: list[str], env: dict[str, str], work: Path, name: str, log_name: str) -> FleetProcess:
    port = free_port()
    env = dict(env, SECDISTILL_WEB__PORT=str(port))
    return start_fleet_process(cmd, env, work / f"{log_name}.log", port, name)


def _cache_hit_rate(proc: FleetProcess) -> float | None:
    try:
        _, body = proc.get("/metrics")
    except OSError:
        return None
    vals = {}
    for line in body.decode().splitlines():
        for name in ("secdistill_cache_hits_total", "secdistill_cache_misses_total"):
            if line.startswith(name + " "):
                vals[name] = float(line.split()[1])
    total = sum(vals.values())
    return vals.get("secdistill_cache_hits_total", 0.0) / total if total else None
