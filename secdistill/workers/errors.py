"""The fleet's error tree: what the batch boundary knows how to dead-letter."""

from __future__ import annotations


class WorkerError(Exception):
    """Base of every error the fleet raises on purpose."""


class InferenceError(WorkerError):
    """The ONNX session failed on a batch (the pipeline bisects to isolate the poison record)."""


class ModelLoadError(WorkerError):
    """No usable model at startup, or a new version refused at reload (old model keeps serving)."""


class UnroutableError(WorkerError):
    """Routing produced no topic (cannot happen with a default route; kept as a guard)."""


class BrokerError(WorkerError):
    """The embedded broker could not start (port taken, binary missing)."""
