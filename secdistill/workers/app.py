"""build_app(settings, runtime) -> faust.App. No module-level app: tests and the CLI build their own."""

from __future__ import annotations

import logging
from typing import Any

import faust
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from secdistill.schemas.config import KafkaSettings
from secdistill.workers.agents import register_triage_agent
from secdistill.workers.reload import maybe_reload
from secdistill.workers.runtime import WorkerRuntime

log = logging.getLogger(__name__)


def faust_broker_options(kafka: KafkaSettings) -> dict[str, Any]:
    """Faust settings for the brokers: addresses, credentials and group timing."""
    opts: dict[str, Any] = {
        "broker": [f"kafka://{hp.strip()}" for hp in kafka.bootstrap_servers.split(",") if hp.strip()],
        "broker_session_timeout": kafka.session_timeout_s,
        "broker_heartbeat_interval": kafka.heartbeat_interval_s,
        "broker_request_timeout": kafka.request_timeout_s,
        "broker_client_id": kafka.client_id,
    }
    if kafka.sasl_mechanism:
        opts["broker_credentials"] = faust.SASLCredentials(
            username=kafka.sasl_username or "",
            password=kafka.sasl_password.get_secret_value() if kafka.sasl_password else "",
            mechanism=kafka.sasl_mechanism,
        )
    return opts


def build_app(rt: WorkerRuntime, *, app_id: str | None = None, web_port: int = 6066) -> faust.App:
    """The student worker app: triage agent, registry follower, health and metrics pages."""
    s = rt.settings
    app = faust.App(
        app_id or s.worker.app_id,
        **faust_broker_options(s.kafka),
        store="memory://",
        datadir=str(s.worker.datadir),
        web_enabled=True,
        web_port=web_port,
        web_bind=s.web.host,
        web_host=s.web.host,
        topic_partitions=s.topics.partitions,
        topic_replication_factor=s.topics.replication_factor,
        consumer_auto_offset_reset="earliest",
        producer_acks=-1,
        # We drain the in-flight batch ourselves on SIGTERM; waiting for "empty" would also wait
        # for records buffered by take() that will never be acked.
        stream_wait_empty=False,
        topic_disable_leader=True,
    )
    register_triage_agent(app, rt)
    rt.metrics.set_model(rt.labeller.version)

    async def follow_registry() -> None:
        await maybe_reload(rt)

    app.timer(interval=s.worker.reload_poll_s)(follow_registry)

    async def export_lag() -> None:
        update_lag(app, rt)

    app.timer(interval=5.0)(export_lag)

    add_health_pages(app, lambda: ready_state(app, rt), rt.metrics.registry)
    return app


def update_lag(app: faust.App, rt: WorkerRuntime) -> None:
    """Lag per topic = high watermark - committed position, over this worker's partitions."""
    lag: dict[str, int] = {}
    try:
        committed = app.consumer._committed_offset  # noqa: SLF001 - Faust keeps no public getter
        for tp in app.consumer.assignment():
            high = app.consumer.highwater(tp)
            done = committed.get(tp)
            if high is not None and high >= 0:
                lag[tp.topic] = lag.get(tp.topic, 0) + max(0, high - (done + 1 if done is not None else 0))
    except Exception:  # noqa: BLE001 - consumer not started or rebalancing: try next tick
        return
    for topic, n in lag.items():
        rt.metrics.consumer_lag.labels(topic=topic).set(n)


def ready_state(app: faust.App, rt: WorkerRuntime) -> dict[str, Any]:
    """What /readyz reports: partitions assigned, model loaded, not draining."""
    try:
        assigned = sorted(f"{tp.topic}[{tp.partition}]" for tp in app.consumer.assignment())
    except Exception:  # noqa: BLE001 - consumer not started yet
        assigned = []
    return {
        "ready": bool(assigned) and not rt.draining,
        "assigned": assigned,
        "model_version": rt.labeller.version,
        "draining": rt.draining,
        "batches": rt.batches,
    }


def add_health_pages(app: faust.App, state: Any, registry: Any) -> None:
    """/healthz (alive), /readyz (serving) and /metrics (Prometheus) on the Faust web port."""

    @app.page("/healthz")
    async def healthz(web: Any, request: Any) -> Any:
        return web.json({"ok": True})

    @app.page("/readyz")
    async def readyz(web: Any, request: Any) -> Any:
        st = state()
        return web.json(st, status=200 if st["ready"] else 503)

    @app.page("/metrics")
    async def metrics(web: Any, request: Any) -> Any:
        return web.bytes(generate_latest(registry), content_type=CONTENT_TYPE_LATEST.split(";")[0])
