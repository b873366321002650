"""Start a student worker process: load the model, build the app, run Faust until SIGTERM."""

from __future__ import annotations

import logging
from typing import Any

import faust

from secdistill.schemas.topics import topic_map
from secdistill.workers.app import build_app
from secdistill.workers.broker import free_port
from secdistill.workers.config import WorkerSettings
from secdistill.workers.inference import load_scorer
from secdistill.workers.kafka_tools import create_topics
from secdistill.workers.labeller import Labeller
from secdistill.workers.metrics import FleetMetrics
from secdistill.workers.runtime import WorkerRuntime

log = logging.getLogger(__name__)


class DrainingWorker(faust.Worker):
    """faust.Worker whose SIGTERM first lets the in-flight batch finish, so it is committed."""

    def __init__(self, app: faust.App, rt: WorkerRuntime, drain_timeout_s: float, **kw: Any) -> None:
        super().__init__(app, **kw)
        self._rt = rt
        self._drain_timeout_s = drain_timeout_s

    async def _stop_on_signal(self, signal: Any) -> None:
        log.info("signal %s: draining", getattr(signal, "name", signal))
        await self._rt.drain(self._drain_timeout_s)
        await super()._stop_on_signal(signal)


def build_runtime(settings: WorkerSettings) -> WorkerRuntime:
    """Load and warm the model (ModelLoadError at startup exits non-zero) and create topics."""
    scorer = load_scorer(settings.registry, settings.model)
    topics = topic_map(settings.topics, scorer.task)
    if settings.worker.create_topics:
        made = create_topics(settings.kafka, [s.name for s in topics.specs()],
                             settings.topics.partitions, settings.topics.replication_factor)
        if made:
            log.info("created topics: %s", ", ".join(made))
    log.info(
        "worker starting: model=%s sha256=%s input=%s bootstrap=%s batch=%d/%.2fs",
        scorer.version, scorer.manifest.files.get("model.onnx", "")[:12], topics.input,
        settings.kafka.bootstrap_servers, settings.batch.max_size, settings.batch.max_wait_s,
    )
    return WorkerRuntime(settings, topics, Labeller(scorer, settings.model), FleetMetrics())


def run_worker(settings: WorkerSettings, logging_config: dict[str, Any]) -> None:
    """Run until SIGTERM/SIGINT; raises SystemExit(0) after a clean shutdown."""
    rt = build_runtime(settings)
    settings.worker.datadir.mkdir(parents=True, exist_ok=True)  # Faust creates only the last level
    port = settings.web.port if settings.web.port is not None else 6066
    app = build_app(rt, web_port=port or free_port())  # 0: any free port (tests, demo)
    level = logging_config.get("root", {}).get("level", "INFO")
    worker = DrainingWorker(app, rt, settings.worker.drain_timeout_s, loglevel=level,
                            logging_config=logging_config, redirect_stdouts=False)
    worker.execute_from_commandline()


def run_teacher(settings: WorkerSettings, logging_config: dict[str, Any]) -> None:
    """Run the teacher worker until SIGTERM/SIGINT (exit 0 after a clean shutdown)."""
    from prometheus_client import CollectorRegistry

    from secdistill.schemas.task import load_task
    from secdistill.workers.teacher_app import TeacherRuntime, build_teacher_app
    from secdistill.workers.teachers.factory import build_service

    task = load_task(settings.worker.task_path)
    topics = topic_map(settings.topics, task)
    if settings.worker.create_topics:
        create_topics(settings.kafka, [s.name for s in topics.specs()],
                      settings.topics.partitions, settings.topics.replication_factor)
    registry = CollectorRegistry()
    (settings.worker.datadir / "teacher").mkdir(parents=True, exist_ok=True)
    service = build_service(task, settings.teacher, settings.registry, metrics_registry=registry,
                            threads=settings.model.threads)
    rt = TeacherRuntime(settings, topics, service, FleetMetrics(registry))
    log.info("teacher starting: backend=%s version=%s input=%s budget=$%.2f/day rate=%.1f/s in-flight=%d",
             service.backend.name, service.backend.version, topics.teacher,
             settings.teacher.daily_budget_usd, settings.teacher.rate_per_s, settings.teacher.max_in_flight)
    port = settings.web.port if settings.web.port is not None else 6067
    app = build_teacher_app(rt, web_port=port or free_port())
    level = logging_config.get("root", {}).get("level", "INFO")
    worker = DrainingWorker(app, rt, settings.worker.drain_timeout_s, loglevel=level,  # type: ignore[arg-type]
                            logging_config=logging_config, redirect_stdouts=False)
    worker.execute_from_commandline()
