"""Re-export a saved torch checkpoint (safetensors) to the ONNX files of a model folder."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from secdistill.distill.config import ExportSettings
from secdistill.distill.examples import corpus_examples
from secdistill.distill.export import check_parity, export_model
from secdistill.distill.student import offline
from secdistill.distill.train import calibration_ids
from secdistill.schemas.manifest import MODEL_FP32
from secdistill.schemas.task import TaskSpec, load_task


def export_checkpoint(checkpoint: Path, output: Path, cfg: ExportSettings,
                      task: TaskSpec | None = None, max_length: int = 128) -> dict[str, Any]:
    """Load ``checkpoint`` (save_pretrained output), export fp32/int8(/fp16), check fp32 parity.

    Smoothing and the precision search calibrate on a seeded sample of the bundled corpus (the
    run's own training split is not stored with a checkpoint).
    """
    offline()
    from transformers import AutoTokenizer, BertForSequenceClassification

    task = task or load_task()
    model = BertForSequenceClassification.from_pretrained(str(checkpoint))
    tokenizer = AutoTokenizer.from_pretrained(str(checkpoint))
    texts = [task.render(e.finding) for e in corpus_examples(task)]
    calib = calibration_ids(tokenizer, texts, cfg.calibration_rows, max_length, seed=0)
    info = export_model(model, output, cfg, calib_ids=calib,
                        head_sizes=[len(h.classes) for h in task.heads])
    probe = ["Cross-site scripting in the admin panel.", "Buffer overflow in the PNG decoder."]
    ids = tokenizer(probe, truncation=True, max_length=max_length)["input_ids"]
    info["parity_max_abs_diff_fp32"] = check_parity(model, output / MODEL_FP32, ids, cfg.parity_atol)
    return info
