"""Stage a model folder (task spec, reports) and publish it: the last, atomic step of a run."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import yaml

from secdistill.schemas import codec
from secdistill.schemas.manifest import TASK, ModelManifest
from secdistill.schemas.registry import Registry, verify
from secdistill.schemas.task import TaskSpec

log = logging.getLogger(__name__)


def write_task(task: TaskSpec, dest: Path) -> None:
    """The task spec the model was trained for, as YAML next to the model."""
    (dest / TASK).write_text(yaml.safe_dump(task.model_dump(mode="json"), sort_keys=False), "utf-8")


def write_json(dest: Path, name: str, data: Any) -> None:
    """A report file (eval.json, dataset_card.json, calibration.json ...)."""
    (dest / name).write_bytes(codec.dumps(data, pretty=True))


def publish_folder(registry_uri: str, folder: Path, manifest: ModelManifest,
                   promote: str | None) -> ModelManifest:
    """Publish ``folder`` as a new immutable version, verify it, and optionally promote it."""
    registry = Registry(registry_uri)
    written = registry.publish(folder, manifest)
    verify(registry.version_dir(written.name, written.version))
    if promote:
        registry.promote(written.name, written.version, promote)
    log.info("published %s %s to %s%s", written.name, written.version, registry.root,
             f" and promoted it to {promote}" if promote else "")
    return written


def parent_version(registry_uri: str, model: str, channel: str = "stable") -> str | None:
    """The version currently on ``channel`` (the new model's parent), if any."""
    return Registry(registry_uri).channel_version(model, channel)
