"""Prometheus metrics of the fleet, registered on an explicit registry (tests get their own)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

_LATENCY = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class FleetMetrics:
    """Every metric a worker exports; names are documented in docs/operations.md."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.findings_in = Counter("secdistill_findings_in", "Records consumed", ["topic"], registry=r)
        self.findings_out = Counter("secdistill_findings_out", "Records produced", ["topic"], registry=r)
        self.dead_letters = Counter("secdistill_dead_letters", "Dead letters", ["reason"], registry=r)
        self.batch_size = Histogram(
            "secdistill_batch_size", "Records per batch", buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256),
            registry=r,
        )
        self.batch_seconds = Histogram("secdistill_batch_seconds", "Batch latency", buckets=_LATENCY, registry=r)
        self.inference_seconds = Histogram(
            "secdistill_inference_seconds", "Model time per batch", buckets=_LATENCY, registry=r
        )
        self.deferred_head = Counter("secdistill_deferred", "Deferrals by head", ["head"], registry=r)
        self.deferrals = Counter("secdistill_deferrals", "Findings sent to the teacher", registry=r)
        self.labelled = Counter("secdistill_labelled", "Findings labelled", ["decided_by"], registry=r)
        self.shadow = Counter("secdistill_shadow_samples", "Confident findings shadow-sampled", registry=r)
        self.cache_hits = Counter("secdistill_cache_hits", "Prediction cache hits", registry=r)
        self.cache_misses = Counter("secdistill_cache_misses", "Prediction cache misses", registry=r)
        self.model_info = Gauge("secdistill_model_info", "Loaded model version", ["version"], registry=r)
        self.reloads = Counter("secdistill_model_reloads", "Hot-reload attempts", ["result"], registry=r)
        self.consumer_lag = Gauge(
            "secdistill_consumer_lag", "Records behind the high watermark on assigned partitions",
            ["topic"], registry=r,
        )
        self.last_progress = Gauge(
            "secdistill_last_progress_timestamp_seconds", "Unix time of the last finished batch", registry=r
        )

    def set_model(self, version: str) -> None:
        """Expose exactly one model version as loaded."""
        self.model_info.clear()
        self.model_info.labels(version=version).set(1)
