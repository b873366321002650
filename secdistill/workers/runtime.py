"""WorkerRuntime: the mutable state one worker process shares between its agent, timers and pages.

The current Labeller is swapped whole on hot reload; the agent reads it once per batch, so a batch
is always labelled by exactly one model version.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

from secdistill.schemas.topics import TopicMap
from secdistill.workers.config import WorkerSettings
from secdistill.workers.labeller import Labeller
from secdistill.workers.metrics import FleetMetrics

log = logging.getLogger(__name__)


@dataclass
class WorkerRuntime:
    """Shared state of a student worker process."""

    settings: WorkerSettings
    topics: TopicMap
    labeller: Labeller
    metrics: FleetMetrics
    refused_versions: set[str] = field(default_factory=set)
    draining: bool = False
    in_batch: bool = False
    drained: asyncio.Event | None = None
    batches: int = 0

    def swap(self, labeller: Labeller) -> None:
        """Make a freshly loaded, warmed model the current one (between batches)."""
        old = self.labeller.version
        self.labeller = labeller
        self.metrics.set_model(labeller.version)
        log.info("model swapped %s -> %s", old, labeller.version)

    async def drain(self, timeout_s: float) -> None:
        """Stop taking batches; wait for the in-flight one to be produced and acked."""
        self.draining = True
        if not self.in_batch:
            return
        if self.drained is None:
            self.drained = asyncio.Event()
        try:
            await asyncio.wait_for(self.drained.wait(), timeout_s)
            log.info("in-flight batch finished before shutdown")
        except TimeoutError:
            log.warning("in-flight batch did not finish within %.0f s; it will be redelivered", timeout_s)
