"""``publish_tiny_model``: a tiny, real student in a registry, for worker tests and smoke checks.

    from secdistill.distill.tiny import publish_tiny_model
    manifest = publish_tiny_model("file:///tmp/reg")   # -> advisory-triage, promoted to stable

A 2-layer BERT (hidden 32) built from a config with MiniLM's tokenizer, trained a few steps on a
few hundred bundled advisories, exported through the same optimum ONNX + int8 path as the real job
(``export.export_model``), and published with manifest checksums. Runs in seconds on 2 CPU cores.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from secdistill.distill.config import DataSettings, DistillSettings, apply_preset
from secdistill.distill.dataset import build_dataset
from secdistill.distill.examples import corpus_examples
from secdistill.distill.export import check_parity, export_model, write_tokenizer
from secdistill.distill.publish import parent_version, publish_folder, write_json, write_task
from secdistill.distill.student import build_student, load_tokenizer
from secdistill.distill.targets import soft_targets
from secdistill.distill.train import calibration_ids, encode_texts, train_student
from secdistill.schemas.config import RegistrySettings
from secdistill.schemas.manifest import MODEL_FP32, ModelManifest
from secdistill.schemas.task import TaskSpec, load_task


def tiny_settings(registry_uri: str, seed: int = 0, steps: int = 20) -> DistillSettings:
    """The ``tiny`` preset pointed at a registry (no environment read)."""
    base = DistillSettings.model_construct(
        **{k: f.get_default(call_default_factory=True) for k, f in DistillSettings.model_fields.items()})
    base = base.model_copy(update={"registry": RegistrySettings(uri=registry_uri),
                                   "data": DataSettings(seed=seed)})
    settings = apply_preset(base, "tiny")
    return settings.model_copy(update={"train": settings.train.model_copy(
        update={"max_steps": steps, "seed": seed})})


def publish_tiny_model(registry_uri: str, *, task: TaskSpec | None = None,
                       promote: str | None = "stable", seed: int = 0, steps: int = 20,
                       workdir: Path | None = None) -> ModelManifest:
    """Train, export (fp32 + int8), check parity and publish a tiny student; return its manifest."""
    task = task or load_task()
    s = tiny_settings(registry_uri, seed, steps)
    data = build_dataset(corpus_examples(task), task, s.data)
    tokenizer = load_tokenizer(s.student)
    model, info = build_student(task, s.student, seed=seed)
    targets = soft_targets(data.train, task, s.data.smoothing)
    result = train_student(model, tokenizer, data.train, targets, task, s.train,
                           s.student.max_length, s.data.title_dropout)
    with tempfile.TemporaryDirectory(prefix="secdistill-tiny-") as tmp:
        folder = Path(workdir) if workdir else Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        calib = calibration_ids(tokenizer, data.train.texts, s.export.calibration_rows,
                                s.student.max_length, seed)
        quant = export_model(model, folder, s.export, calib_ids=calib,
                             head_sizes=[len(h.classes) for h in task.heads])
        ids = encode_texts(tokenizer, data.val.texts[:32], s.student.max_length)
        diff = check_parity(model, folder / MODEL_FP32, ids, s.export.parity_atol)
        write_tokenizer(tokenizer, folder, s.student.max_length)
        write_task(task, folder)
        write_json(folder, "dataset_card.json", data.card)
        manifest = ModelManifest(
            name=task.name, task=task.name, task_sha256=task.sha256(),
            heads={h.name: list(h.classes) for h in task.heads}, max_length=s.student.max_length,
            temperatures={h.name: 1.0 for h in task.heads},
            thresholds={h.name: h.threshold for h in task.heads},
            quantization=quant, base_model=info["base_model"], num_layers=info["num_layers"],
            metrics={"train_steps": result.steps, "train_loss": result.final_loss,
                     "parity_max_abs_diff_fp32": diff},
            gates={"enabled": False, "passed": True, "reason": "tiny test model"},
            parent=parent_version(registry_uri, task.name, promote or "stable"),
            data_snapshot={"corpus": "bundled", "train": len(data.train), "val": len(data.val)},
            notes="tiny test model (2 layers, hidden 32): for tests, not for triage",
        )
        return publish_folder(registry_uri, folder, manifest, promote)
