"""Library functions behind ``secdistill models ...`` and ``ensure_student``."""

from __future__ import annotations

import logging
from typing import Any

from secdistill.distill.config import DistillSettings, apply_preset
from secdistill.schemas.config import RegistrySettings
from secdistill.schemas.manifest import ModelManifest
from secdistill.schemas.registry import Registry

log = logging.getLogger(__name__)


def list_models(registry: RegistrySettings) -> list[dict[str, Any]]:
    """Every version of the model with its channels and headline metrics, oldest first."""
    reg = Registry(registry.uri)
    channels = reg.channels(registry.model)
    rows = []
    for m in reg.versions(registry.model):
        rows.append({"version": m.version, "created_at": m.created_at.isoformat(),
                     "channels": sorted(c for c, v in channels.items() if v == m.version),
                     "base_model": m.base_model, "num_layers": m.num_layers, "parent": m.parent,
                     "cvss_mean_accuracy": m.metrics.get("cvss_mean_accuracy"),
                     "gates_passed": m.gates.get("passed")})
    return rows


def promote(registry: RegistrySettings, version: str, channel: str) -> None:
    """Point ``channel`` at ``version`` (verified first, flipped atomically)."""
    Registry(registry.uri).promote(registry.model, version, channel)
    log.info("%s: %s -> %s", registry.model, channel, version)


def rollback(registry: RegistrySettings, channel: str) -> str:
    """Point ``channel`` back at its previous version; return it."""
    version = Registry(registry.uri).rollback(registry.model, channel)
    log.info("%s: %s rolled back to %s", registry.model, channel, version)
    return version


def ensure_student(registry_uri: str, settings: DistillSettings | None = None) -> ModelManifest:
    """The ``stable`` student, building the quick preset first when the registry has none."""
    from secdistill.distill.pipeline import run_distillation

    base = settings or DistillSettings()
    model = base.registry.model
    reg = Registry(registry_uri)
    version = reg.channel_version(model, "stable")
    if version is not None:
        return reg.manifest(model, version)
    log.info("no stable %s in %s: building the quick preset (about 3 minutes on 2 cores)",
             model, registry_uri)
    quick = apply_preset(base.model_copy(update={
        "registry": base.registry.model_copy(update={"uri": registry_uri})}), "quick")
    return run_distillation(quick)
