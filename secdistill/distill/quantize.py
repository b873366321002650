"""Outlier smoothing and accuracy-driven mixed precision for the int8 export.

Why both exist: ONNX Runtime's dynamic quantisation gives each activation tensor one scale (its
max |x|). BERT's LayerNorm and GELU outputs carry a few channels 10-15x larger than the rest
(measured on the full student: 28 against a median channel max of 2.1), so most channels get a
handful of int8 steps, and the full student's int8 argmax agreed with fp32 on only 97.7 % of one
head. Two remedies, both measured in docs/distillation.md:

1. ``smooth_outliers`` divides each outlier channel of a linear layer's input by ``s`` and
   multiplies the matching weight row by ``s`` (SmoothQuant's identity, applied only to channels
   above ``cap`` x the median). In fp32 the function is unchanged (checked by the parity test);
   in int8 the activation scale shrinks and the weights, quantised per channel, absorb ``s``.
2. ``quantize_search`` keeps the first encoder layers in fp32, one more at a time, until the int8
   model agrees with fp32 on a calibration sample of *training* texts (never validation: the gate
   measures there) at ``target``.

Activation x activation MatMuls (Q.K^T, attention x V) always stay fp32: quantising softmax
probabilities to uint8 cost agreement and saves little time at 128 tokens. So do the pooler and
the classifier (one row per sequence).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

# Linear layers inside the encoder whose inputs get smoothed (Q/K/V, attention output, FFN in/out).
_ENCODER_LINEAR = re.compile(r"encoder\.layer\.\d+\..*(query|key|value|dense)$")


def activation_absmax(model: Any, ids: Sequence[Sequence[int]], batch_size: int = 32
                      ) -> dict[str, Any]:
    """Per-input-channel max |x| of every encoder linear layer over ``ids`` (torch, eval mode)."""
    import torch

    from secdistill.distill.export import _pad

    stats: dict[str, Any] = {}

    def hook(name: str) -> Callable[..., None]:
        def record(_mod: Any, inputs: tuple[Any, ...], _out: Any) -> None:
            x = inputs[0].detach().abs().reshape(-1, inputs[0].shape[-1]).amax(0)
            stats[name] = torch.maximum(stats[name], x) if name in stats else x
        return record

    handles = [mod.register_forward_hook(hook(name)) for name, mod in model.named_modules()
               if isinstance(mod, torch.nn.Linear) and _ENCODER_LINEAR.search(name)]
    model.eval()
    try:
        with torch.inference_mode():
            for start in range(0, len(ids), batch_size):
                feed = _pad([list(r) for r in ids[start:start + batch_size]])
                model(**{k: torch.from_numpy(v) for k, v in feed.items()})
    finally:
        for h in handles:
            h.remove()
    return stats


def _scaled_linear_cls() -> Any:
    import torch

    class ScaledLinear(torch.nn.Module):
        """``lin(x / s)`` with ``s`` folded into the weights: the same function in exact arithmetic."""

        def __init__(self, lin: Any, s: Any) -> None:
            super().__init__()
            self.register_buffer("inv_scale", (1.0 / s).to(lin.weight.dtype))
            self.lin = torch.nn.Linear(lin.in_features, lin.out_features, bias=lin.bias is not None)
            with torch.no_grad():
                self.lin.weight.copy_(lin.weight * s[None, :])
                if lin.bias is not None:
                    self.lin.bias.copy_(lin.bias)

        def forward(self, x: Any) -> Any:
            return self.lin(x * self.inv_scale)

    return ScaledLinear


def smooth_outliers(model: Any, ids: Sequence[Sequence[int]], cap: float) -> dict[str, Any]:
    """Rescale (in place) input channels whose max |x| exceeds ``cap`` x the layer's median.

    Returns what the manifest records: the cap, the layers touched and the channels rescaled.
    """
    stats = activation_absmax(model, ids)
    cls = _scaled_linear_cls()
    channels = 0
    for name, amax in stats.items():
        parent_name, attr = name.rsplit(".", 1)
        parent = model.get_submodule(parent_name)
        limit = cap * float(amax.median().clamp(min=1e-6))
        s = (amax / limit).clamp(min=1.0)
        channels += int((s > 1.0).sum())
        setattr(parent, attr, cls(getattr(parent, attr), s))
    log.info("smoothed %d outlier channels over %d linear layers (cap %.1f x median)",
             channels, len(stats), cap)
    return {"cap": cap, "layers": len(stats), "channels_rescaled": channels,
            "calibration_rows": len(ids)}


def always_fp32(onnx_model: Any) -> list[str]:
    """Nodes never quantised: activation x activation MatMuls (Q.K^T, probabilities x V) and the
    pooler and classifier, which run once per sequence (no time to win, only noise to add)."""
    inits = {i.name for i in onnx_model.graph.initializer}
    attention = [n.name for n in onnx_model.graph.node
                 if n.op_type == "MatMul" and not any(i in inits for i in n.input)]
    # The quantiser first rewrites Gemm as "<name>_MatMul" + Add, so both names are excluded.
    head = [name for n in onnx_model.graph.node
            if n.op_type in ("MatMul", "Gemm") and ("/pooler/" in n.name or "/classifier/" in n.name)
            for name in (n.name, f"{n.name}_MatMul")]
    return attention + head


def layer_nodes(onnx_model: Any, layers: Sequence[int]) -> list[str]:
    """Every node of the given encoder layers (matched by optimum's ``/layer.N/`` node names)."""
    marks = tuple(f"/layer.{i}/" for i in layers)
    return [n.name for n in onnx_model.graph.node if any(m in n.name for m in marks)]


def head_agreement(a: np.ndarray, b: np.ndarray, head_sizes: Sequence[int]) -> list[float]:
    """Argmax agreement per head between two logit matrices laid out as concatenated heads."""
    out, off = [], 0
    for k in head_sizes:
        out.append(float((a[:, off:off + k].argmax(1) == b[:, off:off + k].argmax(1)).mean()))
        off += k
    return out


def quantize_search(fp32: Path, quantize: Callable[[list[str]], Path], ids: Sequence[Sequence[int]],
                    head_sizes: Sequence[int], target: float, max_fp32_layers: int,
                    logits: Callable[[Path, Sequence[Sequence[int]]], np.ndarray]
                    ) -> tuple[Path, dict[str, Any]]:
    """Quantise with 0, 1, ... leading layers left in fp32 until agreement on ``ids`` >= target.

    ``quantize(excluded_nodes)`` writes an int8 file and returns its path. When no setting reaches
    the target, the one with the best worst-head agreement is returned; the release gate decides.
    At least one layer stays int8: an "int8" model that is all fp32 would be a mislabel.
    """
    import onnx

    graph = onnx.load(str(fp32), load_external_data=False)
    layers = len({m.group(1) for n in graph.graph.node if (m := re.search(r"/layer\.(\d+)/", n.name))})
    max_fp32_layers = min(max_fp32_layers, max(layers - 1, 0))
    reference = logits(fp32, ids)
    always = always_fp32(graph)
    tried: list[dict[str, Any]] = []
    best: tuple[float, Path, int] | None = None
    for n in range(max_fp32_layers + 1):
        path = quantize(always + layer_nodes(graph, range(n)))
        worst = min(head_agreement(logits(path, ids), reference, head_sizes))
        tried.append({"fp32_layers": n, "min_agreement": round(worst, 5)})
        log.info("int8 with %d leading fp32 layer(s): calibration agreement %.4f (target %.4f)",
                 n, worst, target)
        if best is None or worst > best[0]:
            best = (worst, path, n)
        if worst >= target:
            break
    assert best is not None
    return best[1], {"fp32_layers": list(range(best[2])), "calibration_agreement": best[0],
                     "target": target, "tried": tried, "always_fp32_nodes": len(always)}
