"""OnnxScorer and predict_file on a real tiny student: probabilities, derived CVSS, padding, loading."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import orjson
import pytest

from secdistill.schemas import codec, cvss
from secdistill.schemas.config import RegistrySettings
from secdistill.schemas.manifest import MODEL_FP32, MODEL_INT8
from secdistill.schemas.records import Finding, Prediction
from secdistill.schemas.registry import MANIFEST, Registry, read_manifest
from secdistill.workers.config import ModelSettings
from secdistill.workers.errors import InferenceError, ModelLoadError
from secdistill.workers.inference import OnnxScorer, load_scorer
from secdistill.workers.labeller import Labeller
from secdistill.workers.predict import predict_file

MODEL = "advisory-triage"
TEXTS = [
    "XSS",
    "SQL injection in the login form lets remote attackers read arbitrary rows of the users table.",
    "Heap overflow in the PNG parser.",
    "A crafted archive can write files outside the extraction directory (zip slip) " * 3,
    "DoS",
    "Improper certificate validation in the TLS client allows man-in-the-middle attacks.",
]


@pytest.fixture(scope="module")
def model_folder(tiny_registry: str) -> Path:
    return Registry(tiny_registry).resolve(MODEL)


@pytest.fixture(scope="module")
def scorer(model_folder: Path) -> OnnxScorer:
    return OnnxScorer(model_folder, ModelSettings(threads=1))


@pytest.fixture(scope="module")
def fp32_folder(model_folder: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same student published with its fp32 graph as model.onnx (checksums recomputed)."""
    src = tmp_path_factory.mktemp("fp32-src")
    for f in model_folder.iterdir():
        if f.name != MANIFEST:
            shutil.copyfile(f, src / f.name)
    shutil.copyfile(model_folder / MODEL_FP32, src / MODEL_INT8)
    reg = Registry(str(tmp_path_factory.mktemp("fp32-registry")))
    reg.publish(src, read_manifest(model_folder), "fp32")
    return reg.version_dir(MODEL, "fp32")


def _copy(folder: Path, dest: Path) -> Path:
    shutil.copytree(folder, dest)
    return dest


def _findings(texts: list[str]) -> list[Finding]:
    return [Finding(finding_id=f"f-{i}", description=t) for i, t in enumerate(texts)]


def test_head_probabilities_sum_to_one(scorer: OnnxScorer) -> None:
    logits = scorer.logits(TEXTS)
    assert logits.shape == (len(TEXTS), scorer.task.num_logits) and np.isfinite(logits).all()
    probs = scorer.head_probs(logits)
    assert set(probs) == {h.name for h in scorer.task.heads}
    for head in scorer.task.heads:
        p = probs[head.name]
        assert p.shape == (len(TEXTS), len(head.classes))
        assert (p >= 0).all()
        np.testing.assert_allclose(p.sum(axis=1), 1.0, atol=1e-12)


def test_temperature_softens_probabilities(scorer: OnnxScorer) -> None:
    logits = np.zeros((1, scorer.task.num_logits), dtype=np.float32)
    a, _ = scorer.slices["AV"]
    logits[0, a] = 2.0
    base = scorer.head_probs(logits)["AV"][0, 0]
    old = dict(scorer.temperatures)
    try:
        scorer.temperatures["AV"] = 2.0
        hot = scorer.head_probs(logits)["AV"][0, 0]
    finally:
        scorer.temperatures.update(old)
    assert base == pytest.approx(np.exp(2) / (np.exp(2) + 3))
    assert hot == pytest.approx(np.exp(1) / (np.exp(1) + 3))


def test_predictions_are_consistent_with_their_probabilities(scorer: OnnxScorer) -> None:
    preds = scorer.score(_findings(TEXTS))
    assert [p.finding_id for p in preds] == [f"f-{i}" for i in range(len(TEXTS))]
    heads = scorer.task.head_map()
    for p in preds:
        assert p.model_version == scorer.version and not p.deferred
        for name, head in heads.items():
            dist = p.probs[name]
            assert list(dist) == head.classes
            assert sum(dist.values()) == pytest.approx(1.0, abs=1e-5)
            assert p.labels[name] == max(dist, key=dist.get)
            assert p.confidence[name] == dist[p.labels[name]]
        metrics = {m: p.labels[m] for m in cvss.METRICS}
        assert p.cvss_vector == cvss.format_vector(metrics)
        assert p.score == cvss.base_score(metrics)
        assert p.severity is not None and p.severity.label == cvss.severity_of(p.score)
        assert list(p.severity.distribution) == list(cvss.SEVERITIES)
        assert sum(p.severity.distribution.values()) == pytest.approx(1.0, abs=1e-5)
        codec.decode(Prediction, codec.encode(p))  # a valid contract record


def test_score_of_nothing_and_chaos_marker(model_folder: Path) -> None:
    s = OnnxScorer(model_folder, ModelSettings(threads=1, chaos_marker="BOOM"))
    assert s.score([]) == []
    with pytest.raises(InferenceError, match="chaos marker"):
        s.score(_findings(["fine", "this one goes BOOM"]))
    assert len(s.score(_findings(["fine"]))) == 1


def test_dynamic_padding_gives_the_same_logits_as_scoring_alone(fp32_folder: Path) -> None:
    s = OnnxScorer(fp32_folder, ModelSettings(threads=1))
    # More texts than one sub-batch (32), lengths all different, in an order unlike the sorted one.
    texts = [("word " * ((i * 7) % 45 + 1)) + f"advisory {i}" for i in range(40)] + TEXTS
    batch = s.logits(texts)
    alone = np.concatenate([s.logits([t]) for t in texts])
    np.testing.assert_allclose(batch, alone, atol=1e-4)
    lengths = {len(s.tokenizer.encode(t).ids) for t in texts}
    assert len(lengths) > 10  # padding really happened


def test_int8_batch_and_alone_agree_closely(scorer: OnnxScorer) -> None:
    # Dynamic int8 quantisation picks one activation scale per tensor, i.e. per batch, so the int8
    # graph's logits depend slightly on the batch's other rows (measured ~4e-4 on the tiny model);
    # the fp32 test above pins the padding itself exactly.
    batch = scorer.logits(TEXTS)
    alone = np.concatenate([scorer.logits([t]) for t in TEXTS])
    np.testing.assert_allclose(batch, alone, atol=5e-3)


def test_truncation_at_max_length(scorer: OnnxScorer) -> None:
    long = "overflow " * 2000
    assert len(scorer.tokenizer.encode(long).ids) == scorer.max_length
    assert np.isfinite(scorer.logits([long])).all()


def test_predict_file_writes_one_line_per_valid_input(scorer: OnnxScorer, tmp_path: Path) -> None:
    lines = [
        orjson.dumps({"finding_id": "p-1", "description": "XSS in the search box."}),
        b"",
        b'{"finding_id": "p-x", "description": ',
        orjson.dumps({"finding_id": "p-2", "description": "XSS in the search box."}),
        b'{"finding_id": "p-y", "description": "\xff\xfe"}',
        orjson.dumps({"finding_id": "p-3", "description": "Integer overflow in the allocator."}) + b"\r",
        b'{"finding_id": ["p-z"], "description": "x"}',
        orjson.dumps({"finding_id": "p-4", "description": "Open redirect after login."}),
    ]
    src, dest = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    src.write_bytes(b"\n".join(lines) + b"\n")
    settings = ModelSettings(shadow_rate=0.0)
    labeller = Labeller(scorer, settings)
    seen: list[int] = []
    report = predict_file(labeller, src, dest, batch_size=2, progress=seen.append)
    out = [codec.decode(Prediction, line) for line in dest.read_bytes().splitlines()]
    assert [p.finding_id for p in out] == ["p-1", "p-2", "p-3", "p-4"]
    assert report.written == 4 and sum(seen) == 4
    assert [(n, kind) for n, kind, _ in report.bad] == [(3, "bad_json"), (5, "bad_encoding"),
                                                       (7, "schema_violation")]
    assert all(p.model_version == labeller.version for p in out)
    assert out[1].cached and out[1].probs == out[0].probs  # same text: scored once


def test_predict_file_with_only_bad_lines(scorer: OnnxScorer, tmp_path: Path) -> None:
    src, dest = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    src.write_bytes(b"nope\n[]\n")
    settings = ModelSettings()
    report = predict_file(Labeller(scorer, settings), src, dest)
    assert report.written == 0 and [n for n, _, _ in report.bad] == [1, 2]
    assert dest.read_bytes() == b""


def test_corrupted_model_is_refused(model_folder: Path, tmp_path: Path) -> None:
    folder = _copy(model_folder, tmp_path / "model")
    OnnxScorer(folder)  # the intact copy loads
    data = bytearray((folder / MODEL_INT8).read_bytes())
    data[len(data) // 2] ^= 0x01
    (folder / MODEL_INT8).write_bytes(bytes(data))
    with pytest.raises(ModelLoadError, match="checksum mismatch"):
        OnnxScorer(folder)


def test_missing_artefact_or_manifest_is_refused(model_folder: Path, tmp_path: Path) -> None:
    a = _copy(model_folder, tmp_path / "a")
    (a / "tokenizer.json").unlink()
    with pytest.raises(ModelLoadError, match="missing artefact"):
        OnnxScorer(a)
    b = _copy(model_folder, tmp_path / "b")
    (b / MANIFEST).unlink()
    with pytest.raises(ModelLoadError):
        OnnxScorer(b)


def test_manifest_heads_that_differ_from_the_task_are_refused(model_folder: Path, tmp_path: Path) -> None:
    folder = _copy(model_folder, tmp_path / "model")
    doc = orjson.loads((folder / MANIFEST).read_bytes())
    doc["heads"]["cwe_class"] = list(reversed(doc["heads"]["cwe_class"]))
    (folder / MANIFEST).write_bytes(orjson.dumps(doc))
    with pytest.raises(ModelLoadError, match="differ from task"):
        OnnxScorer(folder)


def test_load_scorer_resolves_channel_version_and_refuses_unknown(tiny_registry: str) -> None:
    reg = RegistrySettings(uri=tiny_registry)
    stable = load_scorer(reg, ModelSettings())
    assert stable.folder == Registry(tiny_registry).resolve(MODEL, "stable")
    pinned = load_scorer(RegistrySettings(uri=f"file://{tiny_registry}", version=stable.version), ModelSettings())
    assert pinned.version == stable.version
    with pytest.raises(ModelLoadError):
        load_scorer(reg, ModelSettings(), ref="no-such-version")
    with pytest.raises(ModelLoadError):
        load_scorer(RegistrySettings(uri=tiny_registry, channel="canary"), ModelSettings())


def test_predict_cli_writes_to_stdout_by_default(tiny_registry: str, tmp_path: Path) -> None:
    """`secdistill predict --input F` (no --model, no --output): the stable model, JSON on stdout."""
    import os
    import subprocess
    import sys

    src = tmp_path / "in.jsonl"
    src.write_bytes(orjson.dumps({"finding_id": "c-1", "description": "XSS in the search box."})
                    + b"\nnot json\n")
    env = {**os.environ, "SECDISTILL_REGISTRY__URI": tiny_registry}
    done = subprocess.run([sys.executable, "-m", "secdistill", "predict", "--input", str(src)],
                          capture_output=True, env=env, timeout=120)
    assert done.returncode == 1  # one bad line
    out = [codec.decode(Prediction, line) for line in done.stdout.splitlines()]
    assert [p.finding_id for p in out] == ["c-1"]
    assert out[0].model_version == Registry(tiny_registry).channel_version(MODEL, "stable")
    assert b":2: bad_json" in done.stderr and b"wrote 1 predictions to stdout" in done.stderr
