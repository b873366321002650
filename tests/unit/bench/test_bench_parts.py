"""Bench building blocks that need no model weights: padding, GEMM graph, stats, cost, targets."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import numpy_helper

from secdistill.bench.cost import CostOptions, cost_rows
from secdistill.bench.gemm import int8_gemm_peak, matmul_integer_model
from secdistill.bench.machine import describe_machine, peak_memory, percentile, summary
from secdistill.bench.report import document, targets
from secdistill.bench.runtimes import WORKER_CHUNK, argmax_agreement, pad_batch
from secdistill.workers.config import PriceSettings


def test_padding_modes() -> None:
    rows = [[1] * 5, [2] * 40, [3] * 3, [4] * 7]
    (fixed,) = pad_batch(rows, "fixed")
    assert fixed[0].shape == (4, 128) and fixed[1].sum() == 55
    (dyn,) = pad_batch(rows, "dynamic")
    assert dyn[0].shape == (4, 40)
    mixed = [[2] * 40] * 8 + [[1] * 5] * 32
    chunks = pad_batch(mixed, "bucketed")  # sorted by length, then the worker's chunks (8 rows)
    assert WORKER_CHUNK == 8
    assert [c[0].shape for c in chunks] == [(8, 5)] * 4 + [(8, 40)]
    assert [c[0].shape for c in pad_batch(mixed, "bucketed/32")] == [(32, 5), (8, 40)]
    assert [c[0].shape for c in pad_batch(mixed, "bucketed/16")] == [(16, 5), (16, 5), (8, 40)]


def test_gemm_graph_computes_the_product_and_reports_a_rate() -> None:
    model = matmul_integer_model(4, 8, 3)
    weights = next(numpy_helper.to_array(t) for t in onnx.load_from_string(model).graph.initializer if t.name == "B")
    sess = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    a = np.full((4, 8), 129, dtype=np.uint8)  # minus the zero point 128: a matrix of ones
    out = sess.run(None, {"A": a})[0]
    assert out.dtype == np.int32
    assert (out == weights.astype(np.int32).sum(axis=0)).all()
    res = int8_gemm_peak(threads=1, repeats=1, iters=1, shapes=((64, 64, 64),))
    assert res["peak_ops_per_s"] > 0


def test_stats_and_memory() -> None:
    assert summary([3.0, 1.0, 2.0]) == {"min": 1.0, "median": 2.0, "max": 3.0, "n": 3}
    values = list(range(1, 101))
    assert percentile(values, 50) == 50 and percentile(values, 99) == 99 and percentile(values, 100) == 100
    with peak_memory() as mem:
        block = np.ones(20_000_000)  # 160 MB
        del block
    assert mem.growth_mb > 100
    assert describe_machine()["usable_cpus"] >= 1


def test_argmax_agreement_per_head() -> None:
    a = np.array([[1.0, 0.0, 0.0, 2.0], [0.0, 1.0, 3.0, 0.0]])
    b = np.array([[1.0, 0.5, 0.0, 2.0], [2.0, 1.0, 3.0, 0.0]])
    assert argmax_agreement(a, b, {"x": (0, 2), "y": (2, 4)}) == {"x": 0.5, "y": 1.0}


def test_cost_rows_price_the_mix() -> None:
    opts = CostOptions(prices=PriceSettings(cpu_hour_usd=0.05, teacher_per_call_usd=0.002), cores_per_worker=2)
    mix = {"teacher_share": 0.2}
    rows = {r["how"]: r for r in cost_rows(opts, {"unique texts": 100.0, "realistic Zipf stream": 1000.0}, mix, 0.1)}
    assert rows["teacher only (API call per finding)"]["usd_per_million"] == pytest.approx(2000.0)
    cpu = 1_000_000 / 100 / 3600 * 2 * 0.05
    assert rows["student only (unique texts)"]["usd_per_million"] == pytest.approx(cpu)
    assert rows["student + teacher on deferred (unique texts)"]["usd_per_million"] == pytest.approx(cpu + 400.0)
    # The teacher's own cache means one call per distinct deferred text on the realistic stream.
    assert rows["student + teacher on deferred (realistic Zipf stream)"]["teacher_calls"] == pytest.approx(20_000)


def test_document_merges_ratios_and_judges_targets() -> None:
    sections = {"a": {"ratios": {"int8_over_torch_fp32": 4.2, "design_over_naive": 12.0}},
                "b": {"ratios": {"latency_p99_at_half_load_over_batch_window": 1.5}}}
    doc = document("all", 0.0, {}, sections, {"cpu_model": "x"})
    assert doc["ratios"] == {"int8_over_torch_fp32": 4.2, "design_over_naive": 12.0,
                             "latency_p99_at_half_load_over_batch_window": 1.5}
    met = {t["ratio"]: t["met"] for t in targets(doc["ratios"])}
    assert met["int8_over_torch_fp32"] is True and met["design_over_naive"] is False
    assert met["latency_p99_at_half_load_over_batch_window"] is True and met["pipeline_zipf_over_unique"] is None
