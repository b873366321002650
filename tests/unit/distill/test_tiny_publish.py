"""publish_tiny_model: checksums, ONNX contract (inputs/outputs), int8 parity with torch."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("optimum.onnxruntime")

import onnxruntime as ort  # noqa: E402
from tokenizers import Tokenizer  # noqa: E402

from secdistill.distill.tiny import publish_tiny_model  # noqa: E402
from secdistill.schemas.errors import RegistryError  # noqa: E402
from secdistill.schemas.registry import Registry, verify  # noqa: E402
from secdistill.schemas.task import load_task  # noqa: E402


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory) -> tuple[Registry, Path]:
    uri = str(tmp_path_factory.mktemp("registry"))
    manifest = publish_tiny_model(uri, steps=10)
    registry = Registry(uri)
    return registry, registry.version_dir(manifest.name, manifest.version)


def test_published_version_verifies_and_is_stable(published: tuple[Registry, Path]) -> None:
    registry, folder = published
    manifest = verify(folder)
    assert registry.resolve("advisory-triage") == folder
    assert {"model.onnx", "model.fp32.onnx", "tokenizer.json", "task.yaml"} <= set(manifest.files)
    task = load_task()
    assert manifest.heads == {h.name: h.classes for h in task.heads}
    assert manifest.quantization["config"] in {"avx512_vnni", "avx2"}


def test_corrupted_file_fails_verification(published: tuple[Registry, Path], tmp_path: Path) -> None:
    _, folder = published
    copy = tmp_path / "copy"
    copy.mkdir()
    for f in folder.iterdir():
        (copy / f.name).write_bytes(f.read_bytes())
    data = bytearray((copy / "model.onnx").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (copy / "model.onnx").write_bytes(bytes(data))
    with pytest.raises(RegistryError, match="checksum mismatch"):
        verify(copy)


def test_onnx_contract_and_int8_matches_fp32(published: tuple[Registry, Path]) -> None:
    _, folder = published
    task = load_task()
    tok = Tokenizer.from_file(str(folder / "tokenizer.json"))
    enc = tok.encode("SQL injection in login form allows remote attackers to read the database " * 40)
    assert len(enc.ids) == 64  # truncation at the manifest's max_length is baked in
    texts = ["Cross-site scripting in the comment field.", "Heap overflow when parsing PNG chunks."]
    rows = [tok.encode(t).ids for t in texts]
    width = max(map(len, rows))
    ids = np.array([r + [0] * (width - len(r)) for r in rows], dtype=np.int64)
    mask = (ids != 0).astype(np.int64)
    outs = {}
    for name in ("model.onnx", "model.fp32.onnx"):
        sess = ort.InferenceSession(str(folder / name), providers=["CPUExecutionProvider"])
        names = {i.name for i in sess.get_inputs()}
        assert {"input_ids", "attention_mask"} <= names <= {"input_ids", "attention_mask", "token_type_ids"}
        feed = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
        outs[name] = sess.run(["logits"], {k: v for k, v in feed.items() if k in names})[0]
        assert outs[name].shape == (2, task.num_logits)
    np.testing.assert_allclose(outs["model.onnx"], outs["model.fp32.onnx"], atol=0.1)


def test_int8_and_fp32_onnx_match_torch(tmp_path: Path) -> None:
    from secdistill.distill.config import ExportSettings, StudentSettings
    from secdistill.distill.export import OnnxRunner, export_model, torch_logits
    from secdistill.distill.student import build_student, load_tokenizer

    task = load_task()
    cfg = StudentSettings(tiny=True, max_length=64)
    model, _ = build_student(task, cfg, seed=1)
    export_model(model, tmp_path, ExportSettings(fp16=True))
    tok = load_tokenizer(cfg)
    ids = tok(["Path traversal in archive extraction.", "Denial of service via regex."] * 4,
              truncation=True, max_length=64)["input_ids"]
    expected = torch_logits(model, ids)
    np.testing.assert_allclose(OnnxRunner(tmp_path / "model.fp32.onnx").logits(ids), expected, atol=1e-4)
    np.testing.assert_allclose(OnnxRunner(tmp_path / "model.onnx").logits(ids), expected, atol=0.05)
    np.testing.assert_allclose(OnnxRunner(tmp_path / "model.fp16.onnx").logits(ids), expected, atol=0.02)
