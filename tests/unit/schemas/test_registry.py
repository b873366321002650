"""The file-system model registry: immutable versions, checksums, channels, resolve."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import orjson
import pytest

from secdistill.schemas import registry as registry_mod
from secdistill.schemas.errors import RegistryError
from secdistill.schemas.manifest import ModelManifest
from secdistill.schemas.registry import MANIFEST, Registry, read_manifest, verify

MODEL = "advisory-triage"


def _manifest() -> ModelManifest:
    return ModelManifest(name=MODEL, task=MODEL, task_sha256="0" * 64, heads={"AV": ["N", "A", "L", "P"]})


def _src(tmp_path: Path, tag: str = "a") -> Path:
    src = tmp_path / f"src-{tag}"
    src.mkdir()
    (src / "model.onnx").write_bytes(b"\x08\x01onnx-bytes-" + tag.encode())
    (src / "tokenizer.json").write_bytes(b'{"tokenizer": "' + tag.encode() + b'"}')
    (src / "task.yaml").write_text("name: advisory-triage\n", "utf-8")
    return src


@pytest.fixture
def reg(tmp_path: Path) -> Registry:
    return Registry(str(tmp_path / "registry"))


def test_publish_creates_version_with_sha256s(reg: Registry, tmp_path: Path) -> None:
    src = _src(tmp_path)
    (src / MANIFEST).write_text("stale manifest in the source folder", "utf-8")
    written = reg.publish(src, _manifest(), "v1")
    folder = reg.version_dir(MODEL, "v1")
    assert written.version == "v1"
    assert set(written.files) == {"model.onnx", "tokenizer.json", "task.yaml"}
    for name, digest in written.files.items():
        assert digest == hashlib.sha256((src / name).read_bytes()).hexdigest()
        assert (folder / name).read_bytes() == (src / name).read_bytes()
    assert read_manifest(folder) == written
    assert verify(folder) == written
    assert [m.version for m in reg.versions(MODEL)] == ["v1"]


def test_publish_without_version_generates_one(reg: Registry, tmp_path: Path) -> None:
    a = reg.publish(_src(tmp_path, "a"), _manifest())
    b = reg.publish(_src(tmp_path, "b"), _manifest())
    assert a.version and b.version and a.version != b.version
    assert [m.version for m in reg.versions(MODEL)] == sorted([a.version, b.version])


def test_publishing_the_same_version_twice_fails(reg: Registry, tmp_path: Path) -> None:
    reg.publish(_src(tmp_path, "a"), _manifest(), "v1")
    before = verify(reg.version_dir(MODEL, "v1"))
    with pytest.raises(RegistryError, match="already exists"):
        reg.publish(_src(tmp_path, "b"), _manifest(), "v1")
    assert verify(reg.version_dir(MODEL, "v1")) == before  # untouched


def test_publish_of_an_empty_folder_fails(reg: Registry, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(RegistryError):
        reg.publish(empty, _manifest(), "v1")
    assert not reg.version_dir(MODEL, "v1").exists()


def test_no_half_written_version_after_a_failed_publish(
    reg: Registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = registry_mod.shutil.copyfile
    calls = []

    def failing_copy(src: Path, dst: Path) -> None:
        calls.append(src)
        if len(calls) == 2:
            raise OSError("disk full")
        real(src, dst)

    monkeypatch.setattr(registry_mod.shutil, "copyfile", failing_copy)
    with pytest.raises(OSError, match="disk full"):
        reg.publish(_src(tmp_path), _manifest(), "v1")
    versions = reg.root / MODEL / "versions"
    assert list(versions.iterdir()) == []  # neither the version nor its temporary sibling
    assert reg.versions(MODEL) == []
    monkeypatch.setattr(registry_mod.shutil, "copyfile", real)
    assert reg.publish(_src(tmp_path, "b"), _manifest(), "v1").version == "v1"


def test_verify_detects_a_corrupted_file(reg: Registry, tmp_path: Path) -> None:
    reg.publish(_src(tmp_path), _manifest(), "v1")
    folder = reg.version_dir(MODEL, "v1")
    data = bytearray((folder / "model.onnx").read_bytes())
    data[3] ^= 0x01
    (folder / "model.onnx").write_bytes(bytes(data))
    with pytest.raises(RegistryError, match="checksum mismatch for model.onnx"):
        verify(folder)


def test_verify_detects_a_missing_file(reg: Registry, tmp_path: Path) -> None:
    reg.publish(_src(tmp_path), _manifest(), "v1")
    folder = reg.version_dir(MODEL, "v1")
    (folder / "tokenizer.json").unlink()
    with pytest.raises(RegistryError, match="missing artefact tokenizer.json"):
        verify(folder)


def test_verify_detects_a_missing_or_broken_manifest(reg: Registry, tmp_path: Path) -> None:
    reg.publish(_src(tmp_path), _manifest(), "v1")
    folder = reg.version_dir(MODEL, "v1")
    (folder / MANIFEST).write_bytes(b"{not json")
    with pytest.raises(RegistryError):
        verify(folder)
    (folder / MANIFEST).unlink()
    with pytest.raises(RegistryError):
        verify(folder)
    assert reg.versions(MODEL) == []  # a damaged version is not listed


def test_promote_and_rollback_flip_channels_and_keep_history(reg: Registry, tmp_path: Path) -> None:
    for tag in ("v1", "v2", "v3"):
        reg.publish(_src(tmp_path, tag), _manifest(), tag)
    assert reg.channel_version(MODEL, "stable") is None
    reg.promote(MODEL, "v1", "stable")
    reg.promote(MODEL, "v2", "stable")
    reg.promote(MODEL, "v3", "canary")
    assert reg.channels(MODEL) == {"canary": "v3", "stable": "v2"}
    pointer = orjson.loads((reg.root / MODEL / "channels" / "stable.json").read_bytes())
    assert pointer["version"] == "v2" and pointer["history"] == ["v1"]
    reg.promote(MODEL, "v3", "stable")
    assert reg.rollback(MODEL, "stable") == "v2"
    assert reg.channel_version(MODEL, "stable") == "v2"
    assert reg.rollback(MODEL, "stable") == "v1"
    assert reg.resolve(MODEL, "stable") == reg.version_dir(MODEL, "v1")
    with pytest.raises(RegistryError, match="no previous version"):
        reg.rollback(MODEL, "stable")
    with pytest.raises(RegistryError, match="does not exist"):
        reg.rollback(MODEL, "nightly")
    assert reg.channel_version(MODEL, "canary") == "v3"  # other channels untouched
    # Versions themselves are never touched by channel moves.
    assert [m.version for m in reg.versions(MODEL)] == ["v1", "v2", "v3"]
    assert not [p for p in (reg.root / MODEL / "channels").iterdir() if p.name.startswith(".")]


def test_promote_refuses_a_version_that_does_not_verify(reg: Registry, tmp_path: Path) -> None:
    reg.publish(_src(tmp_path, "a"), _manifest(), "v1")
    reg.publish(_src(tmp_path, "b"), _manifest(), "v2")
    reg.promote(MODEL, "v1", "stable")
    (reg.version_dir(MODEL, "v2") / "model.onnx").write_bytes(b"tampered")
    with pytest.raises(RegistryError):
        reg.promote(MODEL, "v2", "stable")
    with pytest.raises(RegistryError):
        reg.promote(MODEL, "v9", "stable")
    assert reg.channel_version(MODEL, "stable") == "v1"


def test_resolve_by_channel_version_and_folder(reg: Registry, tmp_path: Path) -> None:
    reg.publish(_src(tmp_path, "a"), _manifest(), "v1")
    reg.publish(_src(tmp_path, "b"), _manifest(), "v2")
    reg.promote(MODEL, "v1", "stable")
    v1, v2 = reg.version_dir(MODEL, "v1"), reg.version_dir(MODEL, "v2")
    assert reg.resolve(MODEL) == v1  # default channel
    assert reg.resolve(MODEL, None, default_channel="stable") == v1
    assert reg.resolve(MODEL, "stable") == v1
    assert reg.resolve(MODEL, "v2") == v2
    assert reg.resolve(MODEL, str(v2)) == v2  # a folder with a manifest
    with pytest.raises(RegistryError, match="not a folder, a version, or a channel"):
        reg.resolve(MODEL, "v7")
    with pytest.raises(RegistryError):
        reg.resolve(MODEL, "canary")
    with pytest.raises(RegistryError):
        reg.resolve("other-model")
    # A folder without a manifest is not a model, and a path never names a version or channel
    # (joined onto the registry root it would point outside it).
    with pytest.raises(RegistryError, match="not a model folder"):
        reg.resolve(MODEL, str(tmp_path / "src-a"))
    with pytest.raises(RegistryError, match="not a model folder"):
        reg.resolve(MODEL, "../advisory-triage/versions/v1")


def test_uri_forms(tmp_path: Path) -> None:
    assert Registry(f"file://{tmp_path}").root == tmp_path
    assert Registry(str(tmp_path)).root == tmp_path
    with pytest.raises(RegistryError, match="unsupported"):
        Registry("s3://bucket/registry")


def test_unreadable_channel_pointer_is_a_registry_error(reg: Registry, tmp_path: Path) -> None:
    reg.publish(_src(tmp_path), _manifest(), "v1")
    reg.promote(MODEL, "v1", "stable")
    path = reg.root / MODEL / "channels" / "stable.json"
    path.write_bytes(b"[1, 2]")
    with pytest.raises(RegistryError):
        reg.resolve(MODEL, "stable")
    path.write_bytes(b"\xff garbage")
    with pytest.raises(RegistryError):
        reg.channels(MODEL)
    assert os.path.exists(reg.version_dir(MODEL, "v1"))
