"""Follow a registry channel: load + verify + warm the new version off the loop, then swap."""

from __future__ import annotations

import asyncio
import logging

from secdistill.schemas.errors import RegistryError
from secdistill.schemas.registry import Registry
from secdistill.workers.errors import ModelLoadError
from secdistill.workers.inference import OnnxScorer
from secdistill.workers.labeller import Labeller
from secdistill.workers.runtime import WorkerRuntime

log = logging.getLogger(__name__)


async def maybe_reload(rt: WorkerRuntime) -> str | None:
    """Swap to the channel's version if it moved; return the new version, or None."""
    reg = rt.settings.registry
    if reg.version:  # pinned: never follow a channel
        return None
    registry = Registry(reg.uri)
    try:
        target = registry.channel_version(reg.model, reg.channel)
    except RegistryError as exc:
        log.warning("cannot read channel %s: %s", reg.channel, exc)
        return None
    if target is None or target == rt.labeller.version or target in rt.refused_versions:
        return None
    folder = registry.version_dir(reg.model, target)
    loop = asyncio.get_running_loop()
    try:
        scorer = await loop.run_in_executor(None, OnnxScorer, folder, rt.settings.model)
        if scorer.task.sha256() != rt.labeller.task.sha256():
            # Heads or routes changed: outputs would change contract mid-stream; needs a deploy.
            raise ModelLoadError(f"version {target} uses a different task spec")
    except ModelLoadError as exc:
        rt.refused_versions.add(target)
        rt.metrics.reloads.labels(result="refused").inc()
        log.error("refused model %s, keeping %s: %s", target, rt.labeller.version, exc)
        return None
    rt.swap(Labeller(scorer, rt.settings.model))
    rt.metrics.reloads.labels(result="ok").inc()
    return target
