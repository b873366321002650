"""Which models the benchmarks run: the registry's student, and MiniLM layer variants built for speed.

Speed does not depend on trained weights, so the runtime comparison (torch fp32 vs ONNX fp32 vs
int8) and the layer variants use MiniLM-L6 (or its bottom N layers) with a random classifier head,
exported through the project's own export path and cached between runs. Accuracy-dependent
figures (int8 agreement, deferral rate) come from the published student only.
"""

from __future__ import annotations

import logging
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from secdistill.schemas import codec
from secdistill.schemas.config import RegistrySettings
from secdistill.schemas.manifest import MODEL_FP32, MODEL_INT8, TOKENIZER, ModelManifest
from secdistill.schemas.registry import Registry
from secdistill.schemas.task import TaskSpec, load_task

log = logging.getLogger(__name__)

META = "bench_meta.json"


def default_cache_dir() -> Path:
    """Where exported variants are kept between runs (exporting costs ~30 s each)."""
    return Path.home() / ".cache" / "secdistill" / "bench"


@dataclass(frozen=True)
class Variant:
    """An exported MiniLM variant: fp32 and int8 ONNX files plus shape facts for op counts."""

    layers: int
    folder: Path
    hidden: int
    intermediate: int
    parameters: int
    export_s: float | None  # None: taken from the cache

    @property
    def matmul_params(self) -> int:
        """Weights in the per-token matrix multiplications (Q, K, V, O and the two FFN layers)."""
        return self.layers * (4 * self.hidden * self.hidden + 2 * self.hidden * self.intermediate)


@dataclass(frozen=True)
class Student:
    """The model the pipeline, cost and agreement figures use."""

    registry_uri: str
    version: str
    folder: Path
    trained: bool
    source: str
    num_layers: int | None
    max_length: int = 128
    fp32_layers: tuple[int, ...] = ()  # layers the published int8 model keeps in fp32

    def describe(self) -> dict[str, Any]:
        """For the JSON report."""
        return {"registry": self.registry_uri, "version": self.version, "trained": self.trained,
                "source": self.source, "num_layers": self.num_layers,
                "max_length": self.max_length}


def _cache_key(layers: int, quantization: str, fp32_layers: tuple[int, ...] = ()) -> str:
    from secdistill.bench.machine import versions

    v = versions()
    if fp32_layers:
        quantization += "-fp32l" + "".join(map(str, fp32_layers))
    # "r2": the export recipe (attention MatMuls, pooler and classifier in fp32 since 2026-12-05).
    return (f"minilm-l{layers}-{quantization}-r2-ort{v.get('onnxruntime', '?')}"
            f"-optimum{v.get('optimum', '?')}")


def torch_variant(layers: int, task: TaskSpec | None = None) -> Any:
    """MiniLM with its bottom ``layers`` layers and a seeded random head, eval mode (torch)."""
    from secdistill.distill.config import StudentSettings
    from secdistill.distill.student import build_student

    model, _ = build_student(task or load_task(), StudentSettings(num_layers=layers), seed=0)
    return model.eval()


def variant(layers: int, cache_dir: Path, quantization: str = "auto",
            fp32_layers: tuple[int, ...] = ()) -> Variant:
    """The exported variant, from the cache or built now (fp32 + int8, no fp16 on CPU).

    ``fp32_layers``: keep these encoder layers in fp32, as the published student's export chose.
    """
    from secdistill.distill.export import choose_quantization

    quant = choose_quantization(quantization)
    folder = cache_dir / _cache_key(layers, quant, fp32_layers)
    started = time.perf_counter()
    export_s: float | None = None
    if not (folder / META).is_file():
        from secdistill.distill.config import ExportSettings, StudentSettings
        from secdistill.distill.export import export_model, write_tokenizer
        from secdistill.distill.student import load_tokenizer

        model = torch_variant(layers)
        tmp = folder.with_name(folder.name + ".partial")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        export_model(model, tmp, ExportSettings(quantization=quant, fp16=False), fp32_layers=fp32_layers)
        write_tokenizer(load_tokenizer(StudentSettings()), tmp, 128)
        cfg = model.config
        meta = {"layers": layers, "hidden": cfg.hidden_size, "intermediate": cfg.intermediate_size,
                "parameters": int(sum(p.numel() for p in model.parameters())), "quantization": quant,
                "fp32_layers": list(fp32_layers)}
        (tmp / META).write_bytes(codec.dumps(meta, pretty=True))
        shutil.rmtree(folder, ignore_errors=True)
        tmp.rename(folder)  # complete folders only: an interrupted export is redone
        export_s = time.perf_counter() - started
        log.info("exported MiniLM-L%d variant in %.0f s to %s", layers, export_s, folder)
    meta = codec.loads((folder / META).read_bytes())
    return Variant(layers, folder, meta["hidden"], meta["intermediate"], meta["parameters"], export_s)


def resolve_student(registry: RegistrySettings, cache_dir: Path) -> Student:
    """The registry's channel model when it is a trained student, else a speed twin (said so)."""
    reg = Registry(registry.uri)
    version = reg.channel_version(registry.model, registry.channel)
    why = f"no {registry.channel} model in {registry.uri}"
    if version is not None:
        manifest = reg.manifest(registry.model, version)
        if "tiny" not in manifest.base_model:
            mixed = manifest.quantization.get("mixed_precision") or {}
            return Student(registry.uri, version, reg.version_dir(registry.model, version), True,
                           f"registry {registry.uri}, channel {registry.channel}", manifest.num_layers,
                           manifest.max_length, tuple(mixed.get("fp32_layers") or ()))
        why = f"the {registry.channel} model {version} is the tiny test model"
    return _speed_twin(cache_dir, why)


def _speed_twin(cache_dir: Path, why: str) -> Student:
    """MiniLM-L6 with a random head, published into a private registry: the student's speed."""
    task = load_task()
    uri = str(cache_dir / "registry")
    reg = Registry(uri)
    version = reg.channel_version(task.name, "stable")
    if version is None or reg.manifest(task.name, version).task_sha256 != task.sha256():
        v = variant(6, cache_dir)
        stage = cache_dir / "twin-stage"
        shutil.rmtree(stage, ignore_errors=True)
        stage.mkdir(parents=True)
        for name in (MODEL_INT8, MODEL_FP32, TOKENIZER):
            shutil.copyfile(v.folder / name, stage / name)
        from secdistill.distill.publish import write_task

        write_task(task, stage)
        manifest = ModelManifest(
            name=task.name, task=task.name, task_sha256=task.sha256(),
            heads={h.name: list(h.classes) for h in task.heads}, max_length=128,
            temperatures={h.name: 1.0 for h in task.heads}, thresholds={h.name: h.threshold for h in task.heads},
            base_model="minilm-l6 random head (bench speed twin)", num_layers=6,
            notes="same architecture and runtime as the student, untrained: for speed figures only",
        )
        version = reg.publish(stage, manifest).version
        reg.promote(task.name, version, "stable")
        shutil.rmtree(stage, ignore_errors=True)
    source = f"{why}: using an untrained MiniLM-L6 speed twin ({uri}); accuracy-dependent figures are not meaningful"
    log.warning(source)
    return Student(uri, version, reg.version_dir(task.name, version), False, source, 6)
