"""ONNX export (optimum), int8 dynamic quantisation, an fp16 variant, and parity checks.

The real job and the tiny test model go through ``export_model``: one export path, tested.
"""

from __future__ import annotations

import copy
import itertools
import logging
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from secdistill.distill.config import ExportSettings
from secdistill.distill.errors import ParityError
from secdistill.distill.quantize import always_fp32, layer_nodes, quantize_search, smooth_outliers
from secdistill.schemas.manifest import MODEL_FP16, MODEL_FP32, MODEL_INT8, TOKENIZER

log = logging.getLogger(__name__)


def cpu_flags() -> set[str]:
    """The CPU's feature flags (Linux); empty where /proc/cpuinfo is absent."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return set()
    for line in text.splitlines():
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split())
    return set()


def choose_quantization(requested: str = "auto") -> str:
    """``avx512_vnni`` where the CPU has VNNI (2x the int8 throughput here), else ``avx2``."""
    if requested != "auto":
        return requested
    return "avx512_vnni" if "avx512_vnni" in cpu_flags() else "avx2"


def write_tokenizer(tokenizer: Any, dest: Path, max_length: int) -> None:
    """Save ``tokenizer.json`` with truncation at max_length and no padding (scorers pad)."""
    backend = tokenizer.backend_tokenizer
    backend.enable_truncation(max_length=max_length)
    backend.no_padding()
    backend.save(str(dest / TOKENIZER))


def export_model(model: Any, dest: Path, cfg: ExportSettings, *,
                 calib_ids: Sequence[Sequence[int]] | None = None,
                 head_sizes: Sequence[int] | None = None,
                 fp32_layers: Sequence[int] = ()) -> dict[str, Any]:
    """Write model.fp32.onnx, model.onnx (int8) and optionally model.fp16.onnx into ``dest``.

    With ``calib_ids`` (tokenised training texts) and ``head_sizes``, outlier channels are
    smoothed before export and leading layers stay fp32 until int8 agrees with fp32 on them at
    ``cfg.agreement_target`` (see ``quantize.py``); without, every encoder linear layer is int8
    except those of ``fp32_layers`` (the benchmark's speed twin copies a published recipe so).
    """
    from optimum.exporters.onnx import onnx_export_from_model

    config_name = choose_quantization(cfg.quantization)
    dest.mkdir(parents=True, exist_ok=True)
    model.eval()
    info: dict[str, Any] = {"config": config_name, "mode": "dynamic", "per_channel": True,
                            "operators": ["MatMul"]}
    with tempfile.TemporaryDirectory(prefix="secdistill-export-") as tmp:
        work = Path(tmp)
        exported = model
        if calib_ids and cfg.smooth_cap:
            exported = copy.deepcopy(model)
            info["smoothing"] = smooth_outliers(exported, calib_ids, cfg.smooth_cap)
        onnx_export_from_model(exported, work, task="text-classification", do_validation=False)
        fp32 = work / "model.onnx"
        trials = itertools.count()

        def quantize(exclude: list[str]) -> Path:
            return _quantize(work, f"q{next(trials)}", config_name, exclude)

        if calib_ids and head_sizes:
            int8, search = quantize_search(
                fp32, quantize, calib_ids, head_sizes, cfg.agreement_target, cfg.max_fp32_layers,
                lambda path, ids: OnnxRunner(path).logits(ids))
            info["mixed_precision"] = search
        else:
            import onnx

            graph = onnx.load(str(fp32), load_external_data=False)
            int8 = quantize(always_fp32(graph) + layer_nodes(graph, fp32_layers))
            if fp32_layers:
                info["mixed_precision"] = {"fp32_layers": list(fp32_layers), "given": True}
        shutil.copyfile(fp32, dest / MODEL_FP32)
        shutil.copyfile(int8, dest / MODEL_INT8)
    if cfg.fp16:
        write_fp16(dest / MODEL_FP32, dest / MODEL_FP16)
    flags = sorted(cpu_flags() & {"avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_int8"})
    return info | {"cpu_flags": flags, "fp16": cfg.fp16}


def _quantize(work: Path, name: str, config_name: str, exclude: list[str]) -> Path:
    """Optimum's dynamic int8 quantisation of ``work/model.onnx`` into ``work/name``."""
    from optimum.onnxruntime import ORTQuantizer
    from optimum.onnxruntime.configuration import AutoQuantizationConfig

    qconfig = getattr(AutoQuantizationConfig, config_name)(
        is_static=False, per_channel=True, operators_to_quantize=["MatMul"], nodes_to_exclude=exclude)
    quantizer = ORTQuantizer.from_pretrained(work, file_name="model.onnx")
    return _onnx_in(quantizer.quantize(quantization_config=qconfig, save_dir=work / name))


def _onnx_in(path: Path) -> Path:
    path = Path(path)
    return path if path.suffix == ".onnx" else next(path.glob("*.onnx"))


def write_fp16(src: Path, dest: Path) -> None:
    """An fp16 copy for GPU workers; inputs and the logits output stay int64/float32."""
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16

    model = convert_float_to_float16(onnx.load(str(src)), keep_io_types=True)
    onnx.save(model, str(dest))


class OnnxRunner:
    """An ONNX Runtime session over one exported file, fed like the worker feeds it."""

    def __init__(self, path: Path, threads: int | None = None) -> None:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        if threads:
            opts.intra_op_num_threads = threads
        self.session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        self.inputs = {i.name for i in self.session.get_inputs()}

    def logits(self, ids: list[list[int]], batch_size: int = 64) -> np.ndarray:
        """Logits for pre-tokenised rows, batched by length to avoid pad work."""
        out: np.ndarray | None = None
        order = np.argsort([len(x) for x in ids], kind="stable")
        for start in range(0, len(order), batch_size):
            idx = order[start:start + batch_size]
            feed = _pad([ids[i] for i in idx])
            res = self.session.run(["logits"], {k: v for k, v in feed.items() if k in self.inputs})[0]
            if out is None:
                out = np.zeros((len(ids), res.shape[1]), dtype=np.float32)
            out[idx] = res
        return out if out is not None else np.zeros((0, 0), dtype=np.float32)


def _pad(rows: list[list[int]]) -> dict[str, np.ndarray]:
    width = max(len(r) for r in rows)
    ids = np.zeros((len(rows), width), dtype=np.int64)
    mask = np.zeros((len(rows), width), dtype=np.int64)
    for i, r in enumerate(rows):
        ids[i, : len(r)] = r
        mask[i, : len(r)] = 1
    return {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}


def torch_logits(model: Any, ids: list[list[int]], batch_size: int = 64) -> np.ndarray:
    """Logits of the torch model for pre-tokenised rows (eval mode, no grad)."""
    import torch

    out = []
    model.eval()
    with torch.inference_mode():
        for start in range(0, len(ids), batch_size):
            feed = {k: torch.from_numpy(v) for k, v in _pad(ids[start:start + batch_size]).items()}
            out.append(model(**feed).logits.float().numpy())
    return np.concatenate(out) if out else np.zeros((0, 0), dtype=np.float32)


def check_parity(model: Any, onnx_path: Path, ids: list[list[int]], atol: float) -> float:
    """Max |torch - onnx| logit difference; raise ParityError above ``atol``."""
    expected = torch_logits(model, ids)
    actual = OnnxRunner(onnx_path).logits(ids)
    diff = float(np.max(np.abs(expected - actual))) if len(ids) else 0.0
    if not diff <= atol:
        raise ParityError(f"{onnx_path.name}: max logit difference {diff:.2e} exceeds {atol:.0e}")
    log.info("parity %s vs torch: max |diff| %.2e (atol %.0e)", onnx_path.name, diff, atol)
    return diff
