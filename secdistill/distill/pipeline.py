"""``run_distillation``: data -> teacher targets -> train -> export -> calibrate -> evaluate ->
gates -> publish. Reads top to bottom; each step is a function in its own module."""

from __future__ import annotations

import logging
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from secdistill.distill import baseline, evaluate
from secdistill.distill.calibrate_step import calibrate_int8
from secdistill.distill.config import DistillSettings
from secdistill.distill.dataset import Dataset, build_dataset
from secdistill.distill.errors import GateError
from secdistill.distill.examples import (
    apply_corrections,
    corpus_examples,
    read_corrections,
    read_teacher_labels,
)
from secdistill.distill.export import OnnxRunner, check_parity, export_model, write_tokenizer
from secdistill.distill.gates import check_gates
from secdistill.distill.publish import parent_version, publish_folder, write_json, write_task
from secdistill.distill.report import write_reports
from secdistill.distill.snapshot import Snapshot, previous_offsets, snapshot_topics
from secdistill.distill.stable import stable_head_accuracy
from secdistill.distill.student import build_student, load_tokenizer
from secdistill.distill.targets import soft_targets
from secdistill.distill.train import calibration_ids, encode_texts, train_student
from secdistill.schemas import codec
from secdistill.schemas.manifest import MODEL_FP32, MODEL_INT8, ModelManifest
from secdistill.schemas.task import TaskSpec, load_task
from secdistill.schemas.topics import topic_map

log = logging.getLogger(__name__)

CANDIDATE, CHECKPOINT, DRAFT = "candidate", "checkpoint", "manifest.draft.json"
TRAINING = "training.json"


def load_data(s: DistillSettings, task: TaskSpec, teacher_files: list[Path],
              correction_files: list[Path]) -> Dataset:
    """Corpus (reference teacher) + teacher label files + corrections -> split dataset."""
    examples = corpus_examples(task) if s.data.use_corpus else []
    examples += read_teacher_labels(teacher_files, task)
    examples, corr_stats = apply_corrections(examples, read_corrections(correction_files), task)
    card_extra = {"inputs": {"corpus": "secdistill/data/advisories.jsonl.gz" if s.data.use_corpus else None,
                             "teacher_label_files": [str(p) for p in teacher_files],
                             "correction_files": [str(p) for p in correction_files],
                             "corrections": corr_stats}}
    return build_dataset(examples, task, s.data, card_extra)


def run_distillation(settings: DistillSettings, teacher_files: list[Path] | None = None,
                     correction_files: list[Path] | None = None, *, from_kafka: bool = False
                     ) -> ModelManifest:
    """Build, gate and publish a student; raise GateError (publishing nothing) on refusal.

    ``from_kafka`` adds a snapshot of the teacher-labels and corrections topics, from where the
    newest published version's snapshot ended, and records the new end offsets in the manifest.
    """
    with tempfile.TemporaryDirectory(prefix="secdistill-run-") as tmp:
        work = Path(settings.publish.workdir) if settings.publish.workdir else Path(tmp)
        snapshot = None
        if from_kafka:
            snap = kafka_snapshot(settings, work / "snapshot")
            teacher_files = [*(teacher_files or []), snap.files["teacher_labels"]]
            correction_files = [*(correction_files or []), snap.files["corrections"]]
            snapshot = snap.manifest_entry()
        draft = build_candidate(settings, work, teacher_files, correction_files, snapshot=snapshot)
        return publish_folder(settings.registry.uri, work / CANDIDATE, draft, settings.publish.promote)


def kafka_snapshot(settings: DistillSettings, dest: Path) -> Snapshot:
    """Teacher labels and corrections since the last published snapshot, as JSONL under ``dest``."""
    task = load_task(settings.data.task_path)
    topics = topic_map(settings.topics, task)
    wanted = {"teacher_labels": topics.teacher_labels, "corrections": topics.corrections}
    since = previous_offsets(settings.registry.uri, task.name)
    return snapshot_topics(settings.kafka, wanted, dest, since)


def build_candidate(settings: DistillSettings, work: Path, teacher_files: list[Path] | None = None,
                    correction_files: list[Path] | None = None, *, enforce_gates: bool = True,
                    snapshot: dict[str, Any] | None = None) -> ModelManifest:
    """Train, export, calibrate, evaluate and gate into ``work/candidate``; return the draft manifest.

    ``work/checkpoint`` keeps the torch weights (safetensors) for ``secdistill distill export``;
    ``work/manifest.draft.json`` the unpublished manifest for ``secdistill distill publish``.
    """
    s = settings
    started = time.perf_counter()
    log.info("settings: %s", s.model_dump(mode="json", exclude={"kafka"}))
    task = load_task(s.data.task_path)
    data = load_data(s, task, list(teacher_files or []), list(correction_files or []))
    log.info("data: %d train / %d validation examples", len(data.train), len(data.val))

    tfidf = baseline.TfidfBaseline(task).fit(data.train.texts, data.train.hard)
    model, tokenizer, info, training = trained_student(s, task, data, work)

    folder = work / CANDIDATE
    folder.mkdir(parents=True, exist_ok=True)
    calib_ids = calibration_ids(tokenizer, data.train.texts, s.export.calibration_rows,
                                s.student.max_length, s.data.seed)
    quant = export_model(model, folder, s.export, calib_ids=calib_ids,
                         head_sizes=[len(h.classes) for h in task.heads])
    val_ids = encode_texts(tokenizer, data.val.texts, s.student.max_length)
    parity = check_parity(model, folder / MODEL_FP32, val_ids[:64], s.export.parity_atol)
    int8_logits = OnnxRunner(folder / MODEL_INT8, s.train.threads).logits(val_ids)
    fp32_logits = OnnxRunner(folder / MODEL_FP32, s.train.threads).logits(val_ids)
    calib = calibrate_int8(int8_logits, data.val, task, s.calibration)
    ev = evaluate_run(task, data, calib, int8_logits, fp32_logits, tfidf)
    ev.update(model=task.name, student_info=info, n_train=len(data.train), n_val=len(data.val),
              training=training,
              parity_max_abs_diff_fp32=parity, notes=_notes(s))
    stable = stable_head_accuracy(s.registry.uri, task, data.val)
    ev["gates"] = check_gates(ev, s.gates, stable)
    write_reports(ev, folder)
    write_json(folder, "eval.json", ev)
    write_json(folder, "dataset_card.json", data.card)
    write_json(folder, "calibration.json", calib["per_head"])
    write_tokenizer(tokenizer, folder, s.student.max_length)
    write_task(task, folder)
    draft = ModelManifest(
        name=task.name, task=task.name, task_sha256=task.sha256(),
        heads={h.name: list(h.classes) for h in task.heads}, max_length=s.student.max_length,
        temperatures=calib["temperatures"], thresholds=calib["thresholds"], quantization=quant,
        base_model=info["base_model"], num_layers=info["num_layers"],
        metrics=headline(ev, time.perf_counter() - started), gates=ev["gates"],
        parent=parent_version(s.registry.uri, task.name),
        data_snapshot=data.card["inputs"] | ({"kafka": snapshot} if snapshot else {}),
    )
    (work / DRAFT).write_bytes(codec.encode(draft))
    log.info("candidate written to %s: %s", folder, _one_line(ev))
    if enforce_gates and not ev["gates"]["passed"]:
        log.error("gates refused the model (report: %s)", folder / "report.md")
        raise GateError(ev["gates"]["failed"])
    return draft


def trained_student(s: DistillSettings, task: TaskSpec, data: Dataset, work: Path
                    ) -> tuple[Any, Any, dict[str, Any], dict[str, Any]]:
    """Train a student (saving ``work/checkpoint``), or load ``student.checkpoint`` to re-export,
    re-calibrate and re-evaluate a trained one without training again."""
    if s.student.checkpoint:
        return load_checkpoint(Path(s.student.checkpoint))
    # Teacher targets: reference labels smoothed, mixed with out-of-fold TF-IDF distributions.
    oof = (baseline.out_of_fold(data.train, task, s.data.oof_folds, s.data.seed)
           if s.data.oof_weight > 0 else None)
    targets = soft_targets(data.train, task, s.data.smoothing, oof, s.data.oof_weight)
    tokenizer = load_tokenizer(s.student)
    model, info = build_student(task, s.student, seed=s.train.seed)
    trained = train_student(model, tokenizer, data.train, targets, task, s.train,
                            s.student.max_length, s.data.title_dropout)
    log.info("trained %d steps (%.2f epochs) in %.0f s", trained.steps, trained.epochs, trained.seconds)
    training = {"steps": trained.steps, "epochs": trained.epochs, "seconds": trained.seconds,
                "examples_per_s": trained.examples_per_s, "final_loss": trained.final_loss,
                "settings": s.train.model_dump(mode="json"), "student": info}
    model.save_pretrained(str(work / CHECKPOINT), safe_serialization=True)
    tokenizer.save_pretrained(str(work / CHECKPOINT))
    write_json(work / CHECKPOINT, TRAINING, training)
    return model, tokenizer, info, training


def load_checkpoint(path: Path) -> tuple[Any, Any, dict[str, Any], dict[str, Any]]:
    """A checkpoint written by ``trained_student`` (safetensors + tokenizer + training.json)."""
    from secdistill.distill.student import offline

    offline()
    from transformers import AutoTokenizer, BertForSequenceClassification

    model = BertForSequenceClassification.from_pretrained(str(path)).eval()
    tokenizer = AutoTokenizer.from_pretrained(str(path))
    training = codec.loads((path / TRAINING).read_bytes()) if (path / TRAINING).is_file() else {}
    info = training.get("student") or {"base_model": f"checkpoint:{path.name}",
                                       "num_layers": model.config.num_hidden_layers,
                                       "hidden_size": model.config.hidden_size}
    log.info("loaded trained student from %s (no training in this run)", path)
    return model, tokenizer, info, {**training, "resumed_from": str(path)}


def publish_candidate(registry_uri: str, work: Path, promote: str | None) -> ModelManifest:
    """Publish a candidate written by ``build_candidate``; refuse one whose gates failed."""
    draft = codec.decode(ModelManifest, (work / DRAFT).read_bytes(), max_bytes=16 << 20)
    if not draft.gates.get("passed", False):
        raise GateError(list(draft.gates.get("failed", ["gates did not pass"])))
    return publish_folder(registry_uri, work / CANDIDATE, draft, promote)


def _one_line(ev: dict[str, Any]) -> str:
    s, t = ev["student"], ev["baselines"]["tfidf"]
    return (f"CVSS mean acc {s['cvss_mean_accuracy']:.4f} (TF-IDF {t['cvss_mean_accuracy']:.4f}), "
            f"macro-F1 {s['cvss_mean_macro_f1']:.4f} (TF-IDF {t['cvss_mean_macro_f1']:.4f}), "
            f"cwe top-1 {s['cwe_class'].get('top1', float('nan')):.4f} "
            f"(TF-IDF {t['cwe_class'].get('top1', float('nan')):.4f}), "
            f"severity {s['derived'].get('severity_accuracy', float('nan')):.4f}")


def evaluate_run(task: TaskSpec, data: Dataset, calib: dict[str, Any], int8_logits: np.ndarray,
                 fp32_logits: np.ndarray, tfidf: baseline.TfidfBaseline) -> dict[str, Any]:
    """Student (int8, calibrated) next to TF-IDF and majority on the same validation split."""
    from secdistill.distill.calibration import head_probs

    student = head_probs(int8_logits, task, calib["temperatures"])
    fp32 = head_probs(fp32_logits, task, calib["temperatures"])
    tf = head_probs(np.log(np.clip(tfidf.predict_proba(data.val.texts), 1e-9, None)), task)
    maj = head_probs(np.log(np.clip(baseline.majority_proba(data.train, task, len(data.val)), 1e-9, None)), task)
    oracle = {h.name: np.eye(len(h.classes))[np.clip(data.val.hard[:, j], 0, None)]
              for j, h in enumerate(task.heads)}
    ensemble = {h: (student[h] + tf[h]) / 2 for h in student}
    return {
        "student": evaluate.summary(student, data.val, task),
        "baselines": {"tfidf": evaluate.summary(tf, data.val, task),
                      "majority": evaluate.summary(maj, data.val, task),
                      "student_plus_tfidf": evaluate.summary(ensemble, data.val, task)},
        "int8_vs_fp32": evaluate.agreement(student, fp32),
        "student_vs_tfidf_agreement": evaluate.agreement(student, tf),
        "calibration": calib["per_head"], "thresholds": calib["thresholds"],
        "kept": calib["kept"],
        "cascade": evaluate.cascade(student, {"oracle": oracle, "tfidf": tf, "ensemble": ensemble},
                                    data.val, task, calib["thresholds_at"]),
        "slices": evaluate.slices(student, data.val, task),
        "confusion": evaluate.confusions(student, data.val, task),
    }


def headline(ev: dict[str, Any], seconds: float) -> dict[str, Any]:
    """The few numbers a manifest carries (the rest is in eval.json)."""
    s, t = ev["student"], ev["baselines"]["tfidf"]
    return {"cvss_mean_accuracy": s["cvss_mean_accuracy"], "cvss_mean_macro_f1": s["cvss_mean_macro_f1"],
            "tfidf_cvss_mean_accuracy": t["cvss_mean_accuracy"],
            "tfidf_cvss_mean_macro_f1": t["cvss_mean_macro_f1"],
            "severity_accuracy": s["derived"].get("severity_accuracy"),
            "cwe_top1": s["cwe_class"].get("top1"), "tfidf_cwe_top1": t["cwe_class"].get("top1"),
            "head_accuracy": {h: v["accuracy"] for h, v in s["heads"].items()},
            "int8_vs_fp32_min": min(ev["int8_vs_fp32"].values()),
            "kept": ev["kept"], "train_seconds": ev["training"].get("seconds"), "run_seconds": seconds}


def _notes(s: DistillSettings) -> list[str]:
    return [
        "Teacher for the curated corpus: reference labels (smoothing "
        f"{s.data.smoothing}) mixed with out-of-fold TF-IDF+LR probabilities (weight {s.data.oof_weight}); "
        "the TF-IDF part is fitted on training folds only.",
        "Generic titles are masked for every head (they leak the CWE); other titles are dropped "
        f"with probability {s.data.title_dropout} during training.",
        "Calibration and thresholds are fitted on the int8 model's validation logits; ECE and kept-set "
        "precision are cross-fitted (fit on one half, measured on the other).",
        "Cascade 'oracle' uses the curated labels for deferred items (an upper bound); 'tfidf' and "
        "'ensemble' (student+TF-IDF average) are offline teachers that exist in this repository.",
    ]
