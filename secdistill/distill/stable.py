"""The model currently on ``stable``, scored on this run's validation split (regression gate)."""

from __future__ import annotations

import logging

import numpy as np

from secdistill.distill.calibration import head_probs
from secdistill.distill.dataset import Split
from secdistill.distill.export import OnnxRunner
from secdistill.schemas.errors import RegistryError
from secdistill.schemas.manifest import MODEL_INT8, TOKENIZER
from secdistill.schemas.registry import Registry, verify
from secdistill.schemas.task import TaskSpec

log = logging.getLogger(__name__)


def stable_head_accuracy(registry_uri: str, task: TaskSpec, val: Split,
                         channel: str = "stable") -> dict[str, float] | None:
    """Per-head accuracy of the channel's model, or None when there is no comparable model."""
    from tokenizers import Tokenizer

    registry = Registry(registry_uri)
    version = registry.channel_version(task.name, channel)
    if version is None:
        return None
    folder = registry.version_dir(task.name, version)
    try:
        manifest = verify(folder)
    except RegistryError as exc:
        log.warning("stable model %s fails verification, not compared: %s", version, exc)
        return None
    if manifest.task_sha256 != task.sha256() or "tiny" in manifest.base_model:
        log.info("stable model %s is for another task spec or a test model: not compared", version)
        return None
    tok = Tokenizer.from_file(str(folder / TOKENIZER))
    ids = [e.ids for e in tok.encode_batch(val.texts)]
    logits = OnnxRunner(folder / MODEL_INT8).logits(ids)
    probs = head_probs(logits, task, manifest.temperatures)
    out = {}
    for j, h in enumerate(task.heads):
        rows = val.hard[:, j] >= 0
        out[h.name] = float(np.mean(probs[h.name][rows].argmax(1) == val.hard[rows, j]))
    log.info("stable model %s on this validation split: %s", version, out)
    return out
