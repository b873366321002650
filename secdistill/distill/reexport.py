"""Re-export a saved torch checkpoint (safetensors) to the ONNX files of a model folder."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from secdistill.distill.config import ExportSettings
from secdistill.distill.export import check_parity, export_model
from secdistill.distill.student import offline
from secdistill.schemas.manifest import MODEL_FP32


def export_checkpoint(checkpoint: Path, output: Path, cfg: ExportSettings) -> dict[str, Any]:
    """Load ``checkpoint`` (save_pretrained output), export fp32/int8(/fp16), check fp32 parity."""
    offline()
    from transformers import AutoTokenizer, BertForSequenceClassification

    model = BertForSequenceClassification.from_pretrained(str(checkpoint))
    tokenizer = AutoTokenizer.from_pretrained(str(checkpoint))
    info = export_model(model, output, quantization=cfg.quantization, fp16=cfg.fp16)
    probe = ["Cross-site scripting in the admin panel.", "Buffer overflow in the PNG decoder."]
    ids = tokenizer(probe, truncation=True, max_length=128)["input_ids"]
    info["parity_max_abs_diff_fp32"] = check_parity(model, output / MODEL_FP32, ids, cfg.parity_atol)
    return info
