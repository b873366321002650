"""Typer sub-apps of the distillation job: ``distill_app``, ``models_app`` and ``eval_command``.

Imports nothing heavy at module level (the root CLI mounts these): torch, transformers and optimum
load inside the library functions each command calls. Exit codes: 0 ok, 1 failure (gates refused,
parity failed, bad data, registry error), 2 usage.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated, Optional

import typer

distill_app = typer.Typer(help="Train, evaluate, gate, export and publish a student.", no_args_is_help=True)
models_app = typer.Typer(help="List, promote and roll back model versions.", no_args_is_help=True)

Files = Annotated[Optional[list[Path]], typer.Option(exists=True, dir_okay=False)]
Preset = Annotated[str, typer.Option(help="quick (< 3 min on 2 cores) or full (the quality model)")]


def _settings(preset: str | None = None):  # noqa: ANN202 - DistillSettings, imported lazily
    from secdistill.distill.config import DistillSettings, apply_preset

    try:
        return apply_preset(DistillSettings(), preset)
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc


def _fail(exc: Exception) -> typer.Exit:
    typer.echo(f"error: {exc}", err=True)
    return typer.Exit(1)


def _known_errors() -> tuple[type[Exception], ...]:
    from secdistill.distill.errors import DistillError
    from secdistill.schemas.errors import RegistryError, TaskSpecError

    return (DistillError, RegistryError, TaskSpecError)


@distill_app.command("run")
def run(preset: Preset = "full", teacher_labels: Files = None, corrections: Files = None,
        promote: Annotated[Optional[str], typer.Option(
            help="Channel to promote to; '' for none (default: stable, or canary with --from-kafka)")] = None,
        from_kafka: Annotated[bool, typer.Option(
            "--from-kafka", help="Add teacher labels and corrections from Kafka since the last snapshot")] = False,
        ) -> None:
    """Build a student end to end; publish and promote it only if every gate passes."""
    from secdistill.distill.pipeline import run_distillation

    s = _settings(preset)
    promote = ("canary" if from_kafka else "stable") if promote is None else promote
    s = s.model_copy(update={"publish": s.publish.model_copy(update={"promote": promote or None})})
    try:
        m = run_distillation(s, teacher_labels or [], corrections or [], from_kafka=from_kafka)
    except _known_errors() as exc:
        raise _fail(exc) from exc
    typer.echo(f"published {m.name} {m.version}" + (f" -> {promote}" if promote else ""))


@distill_app.command("train")
def train(output: Annotated[Path, typer.Option(help="Work folder: candidate/, checkpoint/, draft")],
          preset: Preset = "full", teacher_labels: Files = None, corrections: Files = None) -> None:
    """Train, export, calibrate and evaluate into a folder without publishing (gates reported)."""
    from secdistill.distill.pipeline import build_candidate

    try:
        draft = build_candidate(_settings(preset), output, teacher_labels or [], corrections or [],
                                enforce_gates=False)
    except _known_errors() as exc:
        raise _fail(exc) from exc
    typer.echo(f"candidate in {output / 'candidate'}; gates passed: {draft.gates.get('passed')}")


@distill_app.command("export")
def export(checkpoint: Annotated[Path, typer.Argument(exists=True, file_okay=False)],
           output: Annotated[Path, typer.Option(help="Folder for model*.onnx")]) -> None:
    """Re-export a saved checkpoint to ONNX fp32 + int8 (+ fp16) with a parity check."""
    from secdistill.distill.reexport import export_checkpoint

    try:
        info = export_checkpoint(checkpoint, output, _settings().export)
    except _known_errors() as exc:
        raise _fail(exc) from exc
    typer.echo(f"exported to {output} ({info['config']})")


@distill_app.command("publish")
def publish(work: Annotated[Path, typer.Argument(exists=True, file_okay=False, help="Folder from `train`")],
            promote: Annotated[Optional[str], typer.Option(help="Channel to promote to")] = None) -> None:
    """Publish a candidate built by `train` (refused if its gates failed)."""
    from secdistill.distill.pipeline import publish_candidate

    try:
        m = publish_candidate(_settings().registry.uri, work, promote)
    except _known_errors() as exc:
        raise _fail(exc) from exc
    typer.echo(f"published {m.name} {m.version}")


@distill_app.command("bench")
def bench(work: Annotated[Path, typer.Argument(exists=True, file_okay=False, help="Folder from `train`/run")],
          texts: Annotated[int, typer.Option(help="Validation-like texts to score")] = 512) -> None:
    """Throughput of torch fp32 vs ONNX fp32 vs ONNX int8, side by side (seq/s)."""
    from secdistill.distill.bench import benchmark_work
    from secdistill.schemas import codec

    typer.echo(codec.dumps(benchmark_work(work, texts), pretty=True).decode())


@models_app.command("list")
def models_list(as_json: Annotated[bool, typer.Option("--json", help="JSON lines")] = False) -> None:
    """Versions in the registry with their channels and headline metrics."""
    from secdistill.distill.models import list_models
    from secdistill.schemas import codec

    for row in list_models(_settings().registry):
        typer.echo(codec.dumps(row).decode() if as_json else
                   f"{row['version']}  {','.join(row['channels']) or '-':14} "
                   f"{row['base_model']} L{row['num_layers']}  cvss_acc={row['cvss_mean_accuracy']}")


@models_app.command("promote")
def models_promote(version: str, channel: Annotated[str, typer.Option(help="stable or canary")] = "stable"
                   ) -> None:
    """Point a channel at a version (checksums verified first)."""
    from secdistill.distill.models import promote

    try:
        promote(_settings().registry, version, channel)
    except _known_errors() as exc:
        raise _fail(exc) from exc
    typer.echo(f"{channel} -> {version}")


@models_app.command("rollback")
def models_rollback(channel: Annotated[str, typer.Option(help="stable or canary")] = "stable") -> None:
    """Point a channel back at its previous version."""
    from secdistill.distill.models import rollback

    try:
        version = rollback(_settings().registry, channel)
    except _known_errors() as exc:
        raise _fail(exc) from exc
    typer.echo(f"{channel} -> {version}")


def eval_command(model: Annotated[Optional[str], typer.Option(help="Channel, version or folder")] = None,
                 input: Annotated[Path, typer.Option("--input", exists=True, dir_okay=False,
                                                     help="Labelled JSONL")] = Path("labelled.jsonl"),
                 output: Annotated[Optional[Path], typer.Option(help="Write eval JSON here")] = None) -> None:
    """Evaluate a published model on labelled JSONL (TeacherLabel, LabelledFinding or advisory rows)."""
    from secdistill.distill.eval_file import evaluate_file
    from secdistill.schemas import codec

    try:
        report = evaluate_file(_settings().registry, model, input)
    except _known_errors() as exc:
        raise _fail(exc) from exc
    data = codec.dumps(report, pretty=True)
    output.write_bytes(data) if output else typer.echo(data.decode())


def main() -> None:
    """Standalone entry (``python -m secdistill.distill.cli``) until the root CLI mounts us."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)-7s %(name)s: %(message)s")
    root = typer.Typer(no_args_is_help=True, pretty_exceptions_enable=False)
    root.registered_commands.extend(distill_app.registered_commands)  # run | train | export | publish
    root.add_typer(models_app, name="models")
    root.command("eval")(eval_command)
    root()


if __name__ == "__main__":
    main()
