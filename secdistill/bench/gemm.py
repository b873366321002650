"""The machine's int8 GEMM peak in ONNX Runtime: one large quantised MatMulInteger graph.

The student's int8 graph is made of the same op (dynamic quantisation: uint8 activations times
int8 weights, int32 accumulation), so its achieved rate over this peak says how much of the
machine the student's matrix multiplications get, and how much goes elsewhere.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

from secdistill.bench.machine import summary

# Shapes near the student's (tokens x hidden x FFN) and one square one; the peak is the best of all.
SHAPES = ((2048, 384, 1536), (2048, 1536, 384), (1024, 1024, 1024))


def matmul_integer_model(m: int, k: int, n: int, seed: int = 0) -> bytes:
    """A serialized graph Y[int32] = MatMulInteger(A[uint8, m x k], B[int8, k x n] constant)."""
    rng = np.random.default_rng(seed)
    weights = rng.integers(-127, 128, (k, n), dtype=np.int8)
    inits = [numpy_helper.from_array(weights, "B"), numpy_helper.from_array(np.array(128, np.uint8), "a_zero"),
             numpy_helper.from_array(np.array(0, np.int8), "b_zero")]
    node = helper.make_node("MatMulInteger", ["A", "B", "a_zero", "b_zero"], ["Y"])
    graph = helper.make_graph([node], "int8_gemm", [helper.make_tensor_value_info("A", TensorProto.UINT8, [m, k])],
                              [helper.make_tensor_value_info("Y", TensorProto.INT32, [m, n])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    return bytes(model.SerializeToString())


def int8_gemm_peak(threads: int, repeats: int = 5, iters: int = 5, shapes: tuple[tuple[int, int, int], ...] = SHAPES
                   ) -> dict[str, Any]:
    """Integer ops/s (2*m*k*n per run) per shape; ``peak_ops_per_s`` is the best repeat of any shape."""
    rows: list[dict[str, Any]] = []
    for m, k, n in shapes:
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        sess = ort.InferenceSession(matmul_integer_model(m, k, n), opts, providers=["CPUExecutionProvider"])
        a = np.random.default_rng(1).integers(0, 256, (m, k), dtype=np.uint8)
        sess.run(None, {"A": a})  # warm-up: weight prepacking
        rates = []
        for _ in range(repeats):
            start = time.perf_counter()
            for _ in range(iters):
                sess.run(None, {"A": a})
            rates.append(2 * m * k * n * iters / (time.perf_counter() - start))
        rows.append({"shape_mkn": [m, k, n], "ops_per_s": summary(rates)})
    peak = max(r["ops_per_s"]["max"] for r in rows)
    return {"op": "MatMulInteger (u8 x s8 -> s32)", "threads": threads, "shapes": rows, "peak_ops_per_s": peak}
