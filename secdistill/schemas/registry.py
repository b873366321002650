"""The model registry: ONE implementation of publish / verify / resolve / promote / rollback.

Layout (a contract both the workers and the distillation job rely on)::

    <root>/<model>/versions/<version>/manifest.json, model.onnx, tokenizer.json, task.yaml, ...
    <root>/<model>/channels/<channel>.json   {"version": ..., "history": [...]}

Versions are immutable folders, published by copying into a temporary sibling and renaming it into
place; channels are small JSON pointers replaced atomically (write temp + ``os.replace``). Nothing
here unpickles anything: artefacts are ONNX, JSON, YAML and ``.npy`` files loaded without pickle.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from secdistill.schemas import codec
from secdistill.schemas.errors import ContractError, RegistryError
from secdistill.schemas.manifest import ModelManifest

MANIFEST = "manifest.json"


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, streamed."""
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _atomic_write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


class Registry:
    """A file-system registry (``file://`` URI or plain path)."""

    def __init__(self, uri: str) -> None:
        parsed = urlparse(uri)
        if parsed.scheme in ("", "file"):
            self.root = Path(parsed.path if parsed.scheme else uri).expanduser()
        else:
            raise RegistryError(f"unsupported registry URI scheme {parsed.scheme!r} in {uri!r}")

    def _model_dir(self, model: str) -> Path:
        return self.root / model

    def version_dir(self, model: str, version: str) -> Path:
        """Folder of one version (may not exist)."""
        return self._model_dir(model) / "versions" / version

    def publish(self, src: Path, manifest: ModelManifest, version: str | None = None) -> ModelManifest:
        """Copy ``src``'s files into a new immutable version; return the manifest as written."""
        version = version or datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
        dest = self.version_dir(manifest.name, version)
        if dest.exists():
            raise RegistryError(f"version {version} of {manifest.name} already exists")
        files = sorted(p for p in src.iterdir() if p.is_file() and p.name != MANIFEST)
        if not files:
            raise RegistryError(f"nothing to publish in {src}")
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=dest.parent, prefix=f".{version}."))
        try:
            sums = {}
            for f in files:
                shutil.copyfile(f, tmp / f.name)
                sums[f.name] = sha256_file(tmp / f.name)
            final = manifest.model_copy(update={"version": version, "files": sums})
            _atomic_write(tmp / MANIFEST, codec.dumps(final.model_dump(mode="json"), pretty=True))
            os.rename(tmp, dest)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return final

    def manifest(self, model: str, version: str) -> ModelManifest:
        """Read a version's manifest."""
        return read_manifest(self.version_dir(model, version))

    def versions(self, model: str) -> list[ModelManifest]:
        """All versions of a model, oldest first."""
        vdir = self._model_dir(model) / "versions"
        if not vdir.is_dir():
            return []
        out = []
        for d in sorted(p for p in vdir.iterdir() if p.is_dir() and not p.name.startswith(".")):
            try:
                out.append(read_manifest(d))
            except RegistryError:
                continue  # a damaged version is listed by `verify`, not here
        return out

    def channels(self, model: str) -> dict[str, str]:
        """Channel name to version."""
        cdir = self._model_dir(model) / "channels"
        if not cdir.is_dir():
            return {}
        return {p.stem: str(self._read_channel(p)["version"]) for p in sorted(cdir.glob("*.json"))}

    def channel_version(self, model: str, channel: str) -> str | None:
        """The version a channel points at, or None."""
        path = self._model_dir(model) / "channels" / f"{channel}.json"
        return str(self._read_channel(path)["version"]) if path.exists() else None

    def promote(self, model: str, version: str, channel: str) -> None:
        """Point ``channel`` at ``version`` (atomic); the old pointer is kept for rollback."""
        verify(self.version_dir(model, version))
        path = self._model_dir(model) / "channels" / f"{channel}.json"
        history: list[str] = []
        if path.exists():
            old = self._read_channel(path)
            history = [*old.get("history", []), old["version"]][-50:]
        data = {"version": version, "history": history,
                "promoted_at": datetime.now(timezone.utc).isoformat()}
        _atomic_write(path, codec.dumps(data, pretty=True))

    def rollback(self, model: str, channel: str) -> str:
        """Point ``channel`` back at its previous version; return that version."""
        path = self._model_dir(model) / "channels" / f"{channel}.json"
        if not path.exists():
            raise RegistryError(f"channel {channel} of {model} does not exist")
        cur = self._read_channel(path)
        history = list(cur.get("history", []))
        if not history:
            raise RegistryError(f"channel {channel} of {model} has no previous version")
        prev = str(history.pop())
        data = {"version": prev, "history": history,
                "promoted_at": datetime.now(timezone.utc).isoformat()}
        _atomic_write(path, codec.dumps(data, pretty=True))
        return prev

    def resolve(self, model: str, ref: str | None = None, default_channel: str = "stable") -> Path:
        """A model folder from a reference: a folder path, a version, or a channel name."""
        ref = ref or default_channel
        candidate = Path(ref).expanduser()
        if (candidate / MANIFEST).is_file():
            return candidate
        if "/" in ref or os.sep in ref or ref in (".", ".."):
            # A path is never a version or channel name: joined onto the registry it would escape it.
            raise RegistryError(f"{ref!r} is not a model folder (no {MANIFEST} in it)")
        if self.version_dir(model, ref).is_dir():
            return self.version_dir(model, ref)
        version = self.channel_version(model, ref)
        if version is None:
            raise RegistryError(
                f"no model {ref!r} for {model} in registry {self.root} "
                f"(not a folder, a version, or a channel); build one with `secdistill distill run`"
            )
        return self.version_dir(model, version)

    @staticmethod
    def _read_channel(path: Path) -> dict[str, Any]:
        try:
            data = codec.loads(path.read_bytes())
        except (OSError, ContractError) as exc:
            raise RegistryError(f"unreadable channel pointer {path}: {exc}") from exc
        if not isinstance(data, dict) or "version" not in data:
            raise RegistryError(f"bad channel pointer {path}")
        return data


def read_manifest(folder: Path) -> ModelManifest:
    """Read and validate ``manifest.json`` in a model folder."""
    try:
        return codec.decode(ModelManifest, (folder / MANIFEST).read_bytes(), max_bytes=16 << 20)
    except (OSError, ContractError) as exc:
        raise RegistryError(f"bad or missing manifest in {folder}: {exc}") from exc


def verify(folder: Path) -> ModelManifest:
    """Check every file's sha256 against the manifest; raise RegistryError on any mismatch."""
    manifest = read_manifest(folder)
    if not manifest.files:
        raise RegistryError(f"manifest in {folder} lists no files")
    for name, expected in manifest.files.items():
        path = folder / name
        if not path.is_file():
            raise RegistryError(f"{folder}: missing artefact {name}")
        actual = sha256_file(path)
        if actual != expected:
            raise RegistryError(f"{folder}: checksum mismatch for {name} ({actual[:12]} != {expected[:12]})")
    return manifest
