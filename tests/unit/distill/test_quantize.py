"""Outlier smoothing and the fp32-layer search of the int8 export, on a real tiny BERT."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")


def _tiny(seed: int = 3):
    import torch

    from secdistill.distill.config import StudentSettings
    from secdistill.distill.student import build_student, load_tokenizer
    from secdistill.schemas.task import load_task

    task = load_task()
    cfg = StudentSettings(tiny=True, max_length=64)
    model, _ = build_student(task, cfg, seed=seed)
    # Give layer 0's attention LayerNorm one outlier channel, as trained BERTs have.
    with torch.no_grad():
        model.bert.encoder.layer[0].attention.output.LayerNorm.weight[5] *= 25.0
    tok = load_tokenizer(cfg)
    texts = ["Path traversal in archive extraction allows writing outside the target directory.",
             "Denial of service via a crafted regular expression in the router.",
             "SQL injection in the search endpoint lets a user read other tenants' rows.",
             "Cross-site scripting in the admin panel through the display name."] * 6
    ids = tok(texts, truncation=True, max_length=64)["input_ids"]
    return task, model.eval(), ids


def test_smoothing_is_an_identity_in_fp32_and_caps_the_outlier() -> None:
    import copy

    from secdistill.distill.export import torch_logits
    from secdistill.distill.quantize import activation_absmax, smooth_outliers

    _, model, ids = _tiny()
    stats = activation_absmax(model, ids)
    name = "bert.encoder.layer.0.intermediate.dense"
    assert float(stats[name].max()) > 5 * float(stats[name].median())  # the outlier is there
    smoothed = copy.deepcopy(model)
    info = smooth_outliers(smoothed, ids, cap=2.0)
    assert info["channels_rescaled"] > 0
    np.testing.assert_allclose(torch_logits(smoothed, ids), torch_logits(model, ids), atol=1e-4)
    layer = smoothed.get_submodule(name)
    seen = (stats[name] * layer.inv_scale).max()
    assert float(seen) <= 2.0 * float(stats[name].median()) * 1.0001


def test_search_stops_at_target_and_keeps_attention_matmuls_fp32(tmp_path: Path) -> None:
    import onnx

    from secdistill.distill.config import ExportSettings
    from secdistill.distill.export import OnnxRunner, export_model, torch_logits

    task, model, ids = _tiny()
    sizes = [len(h.classes) for h in task.heads]
    easy = export_model(model, tmp_path / "easy", ExportSettings(fp16=False, agreement_target=0.01),
                        calib_ids=ids, head_sizes=sizes)
    assert easy["mixed_precision"]["fp32_layers"] == []
    assert len(easy["mixed_precision"]["tried"]) == 1
    graph = onnx.load(str(tmp_path / "easy" / "model.onnx"))
    ops = [n.op_type for n in graph.graph.node]
    # 2 layers x 6 linear layers are int8; the 2 x 2 attention MatMuls, the pooler and the
    # classifier stay float (the quantiser rewrote the last two from Gemm to MatMul + Add).
    assert ops.count("MatMulInteger") == 12 and ops.count("MatMul") == 6

    # A target above 1 cannot be reached (settings validation forbids it, hence model_copy).
    unreachable = ExportSettings(fp16=False, max_fp32_layers=2).model_copy(update={"agreement_target": 1.01})
    hard = export_model(model, tmp_path / "hard", unreachable, calib_ids=ids, head_sizes=sizes)
    tried = hard["mixed_precision"]["tried"]
    # Unreachable target: every option is tried, but one of the 2 layers always stays int8.
    assert [t["fp32_layers"] for t in tried] == [0, 1]
    best = max(t["min_agreement"] for t in tried)
    assert hard["mixed_precision"]["calibration_agreement"] == pytest.approx(best, abs=1e-5)
    int8 = OnnxRunner(tmp_path / "hard" / "model.onnx").logits(ids)
    np.testing.assert_allclose(int8, torch_logits(model, ids), atol=0.1)


def test_export_without_calibration_quantises_every_encoder_linear(tmp_path: Path) -> None:
    import onnx

    from secdistill.distill.config import ExportSettings
    from secdistill.distill.export import export_model

    _, model, _ = _tiny()
    info = export_model(model, tmp_path, ExportSettings(fp16=False))
    assert "smoothing" not in info and "mixed_precision" not in info
    ops = [n.op_type for n in onnx.load(str(tmp_path / "model.onnx")).graph.node]
    assert ops.count("MatMulInteger") == 12  # all encoder linear layers, nothing else


def test_export_with_given_fp32_layers_leaves_them_float(tmp_path: Path) -> None:
    import onnx

    from secdistill.distill.config import ExportSettings
    from secdistill.distill.export import export_model

    _, model, _ = _tiny()
    info = export_model(model, tmp_path, ExportSettings(fp16=False), fp32_layers=[0])
    assert info["mixed_precision"] == {"fp32_layers": [0], "given": True}
    nodes = onnx.load(str(tmp_path / "model.onnx")).graph.node
    int8 = [n.name for n in nodes if n.op_type == "MatMulInteger"]
    assert len(int8) == 6 and all("/layer.1/" in n for n in int8)  # layer 0 stayed fp32
