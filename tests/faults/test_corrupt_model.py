"""Corrupt model artefacts reach the followed channel while a worker serves: each is refused
(``secdistill_model_reloads_total{result="refused"}``) and the old model keeps labelling."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest

from secdistill.schemas import codec
from secdistill.schemas.config import KafkaSettings
from secdistill.schemas.corpus import read_corpus_records, record_to_finding
from secdistill.schemas.errors import RegistryError
from secdistill.schemas.manifest import MODEL_INT8
from secdistill.schemas.registry import MANIFEST, Registry
from secdistill.schemas.topics import TopicMap
from tests.faults.conftest import NO_DEFERRAL_HEADS
from tests.integration.helpers import produce

pytestmark = pytest.mark.faults

MODEL = "advisory-triage"


def _stage_copy(reg: Registry, version: str, dest: Path, model_bytes: bytes | None) -> Path:
    """A publishable folder: the version's files, with model.onnx replaced when bytes are given."""
    dest.mkdir()
    for f in reg.version_dir(MODEL, version).iterdir():
        if f.name != MANIFEST:
            shutil.copyfile(f, dest / f.name)
    if model_bytes is not None:
        (dest / MODEL_INT8).write_bytes(model_bytes)
    return dest


def _refused(worker) -> float:  # noqa: ANN001
    _, body = worker.get("/metrics")
    for line in body.decode().splitlines():
        if line.startswith('secdistill_model_reloads_total{result="refused"}'):
            return float(line.split()[1])
    return 0.0


def _wait_refused(worker, n: int, timeout_s: float = 30.0) -> None:  # noqa: ANN001
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and _refused(worker) < n:
        time.sleep(0.3)  # polling the metrics page with a deadline
    assert _refused(worker) >= n, worker.tail(40)


def test_corrupt_artefacts_are_refused_and_old_model_serves(
    kafka: KafkaSettings, topics: TopicMap, tiny_registry: str, tmp_path: Path, start_worker, collect,
) -> None:
    registry_dir = tmp_path / "registry"  # a private copy: the shared registry must stay healthy
    shutil.copytree(tiny_registry, registry_dir)
    reg = Registry(str(registry_dir))
    good = reg.channel_version(MODEL, "stable")
    assert good
    manifest = reg.manifest(MODEL, good)
    original = (reg.version_dir(MODEL, good) / MODEL_INT8).read_bytes()

    worker = start_worker(registry__uri=registry_dir, worker__reload_poll_s=1, model__shadow_rate=0.0,
                          model__thresholds=codec.dumps({h: 0.0 for h in NO_DEFERRAL_HEADS}).decode())
    worker.wait_ready(90)
    # 1: garbage bytes, published with matching checksums (only loading can refuse it).
    bad1 = reg.publish(_stage_copy(reg, good, tmp_path / "g1", b"\x08\x07garbage" * 64), manifest)
    reg.promote(MODEL, bad1.version, "stable")
    _wait_refused(worker, 1)
    # 2: a truncated graph (an interrupted upload), checksums matching the truncated bytes.
    bad2 = reg.publish(_stage_copy(reg, good, tmp_path / "g2", original[: len(original) // 2]), manifest)
    reg.promote(MODEL, bad2.version, "stable")
    _wait_refused(worker, 2)
    # 3: bit rot after promotion: the file no longer matches the manifest's sha256.
    # `promote` verifies first, so the pointer is flipped by hand (the documented layout) to
    # model storage that rots after promotion, without a window where the worker sees it whole.
    bad3 = reg.publish(_stage_copy(reg, good, tmp_path / "g3", None), manifest)
    rotten = bytearray(original)
    rotten[len(rotten) // 2] ^= 0xFF
    (reg.version_dir(MODEL, bad3.version) / MODEL_INT8).write_bytes(bytes(rotten))
    with pytest.raises(RegistryError):
        reg.promote(MODEL, bad3.version, "stable")
    pointer = registry_dir / MODEL / "channels" / "stable.json"
    pointer.write_bytes(codec.dumps({"version": bad3.version, "history": [good]}))
    _wait_refused(worker, 3)

    assert worker.proc.poll() is None, worker.tail(40)
    assert worker.ready()["model_version"] == good
    findings = [record_to_finding(r, finding_id=f"c-{i}") for i, r in enumerate(read_corpus_records()[:40])]
    produce(kafka, topics.input, [codec.encode(f) for f in findings])
    col = collect([topics.labelled])
    ids = {f.finding_id for f in findings}
    assert col.poll_until(lambda r: col.ids(topics.labelled) >= ids, 60), worker.tail(40)
    assert {r["model_version"] for r in col.records[topics.labelled]} == {good}
    log = worker.log_path.read_text(errors="replace")
    for bad in (bad1, bad2, bad3):
        assert f"refused model {bad.version}" in log
    assert worker.terminate(40) == 0, worker.tail(40)
