"""ModelManifest: what a registry version contains and how it was made."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from secdistill.schemas.records import SCHEMA_VERSION, utc_now

MODEL_INT8 = "model.onnx"
MODEL_FP32 = "model.fp32.onnx"
MODEL_FP16 = "model.fp16.onnx"
TOKENIZER = "tokenizer.json"
TASK = "task.yaml"


class ModelManifest(BaseModel):
    """Manifest of one immutable model version (``manifest.json`` in its folder)."""

    model_config = ConfigDict(frozen=True, extra="forbid", protected_namespaces=())

    schema_version: int = SCHEMA_VERSION
    name: str
    version: str = ""  # assigned by the registry at publish time
    created_at: datetime = Field(default_factory=utc_now)
    task: str
    task_sha256: str
    files: dict[str, str] = Field(default_factory=dict)  # file name -> sha256, set at publish
    heads: dict[str, list[str]]  # head -> classes, in logit order
    max_length: int = 128
    # Per-head temperature fitted on the int8 model's validation logits.
    temperatures: dict[str, float] = Field(default_factory=dict)
    thresholds: dict[str, float] = Field(default_factory=dict)
    quantization: dict[str, Any] = Field(default_factory=dict)
    base_model: str = ""
    num_layers: int | None = None
    metrics: dict[str, Any] = Field(default_factory=dict)
    gates: dict[str, Any] = Field(default_factory=dict)
    parent: str | None = None
    data_snapshot: dict[str, Any] = Field(default_factory=dict)
    kind: str = "student"  # student | teacher (teacher artefacts live in the same registry)
    notes: str = ""
