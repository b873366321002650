"""The `secdistill` command: thin Typer commands over library functions.

This is the process-wiring module STYLE.md allows: it is the one place that mounts both the fleet
(`secdistill.workers`) and the offline job (`secdistill.distill`), and it imports the latter's
heavy modules only inside commands.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from secdistill.workers.logconfig import configure_logging

app = typer.Typer(help="Distilled security-finding triage on Kafka.", no_args_is_help=True,
                  pretty_exceptions_enable=False)
topics_app = typer.Typer(help="Create and list the topics of this deployment.", no_args_is_help=True)
schemas_app = typer.Typer(help="JSON Schemas of the record contracts.", no_args_is_help=True)
dlq_app = typer.Typer(help="Inspect and replay dead letters.", no_args_is_help=True)
app.add_typer(topics_app, name="topics")
app.add_typer(dlq_app, name="dlq")
app.add_typer(schemas_app, name="schemas")


@app.callback()
def main_callback(
    log_level: Annotated[str, typer.Option(help="DEBUG, INFO, WARNING, ERROR")] = "INFO",
    log_json: Annotated[bool, typer.Option(help="JSON-lines logs (for k8s)")] = False,
) -> None:
    """Configure logging once; everything else comes from SECDISTILL_* environment variables."""
    configure_logging(log_level, log_json)


def _settings():  # noqa: ANN202 - WorkerSettings, imported lazily to keep --help fast
    from secdistill.workers.config import WorkerSettings

    return WorkerSettings()


def _fail(message: str, code: int = 1) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


@app.command()
def broker(
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1; 0 picks a free one")] = 9092,
    host: Annotated[str, typer.Option(help="Loopback address to bind")] = "127.0.0.1",
) -> None:
    """Run the embedded Kafka-compatible broker (Tansu) in the foreground until SIGTERM/Ctrl-C."""
    from secdistill.workers.broker_cli import serve_broker

    raise typer.Exit(serve_broker(host, port or None))


@topics_app.command("create")
def topics_create() -> None:
    """Create every topic (input, outputs, routes, teacher, dead letters) with the configured partitions."""
    from secdistill.workers.topics_cli import create_all

    s = _settings()
    for name in create_all(s):
        typer.echo(name)


@topics_app.command("list")
def topics_list(as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False) -> None:
    """Print the topic name for each role."""
    from secdistill.workers.topics_cli import topic_names

    typer.echo(topic_names(_settings(), as_json=as_json))


@app.command()
def worker() -> None:
    """Run the student worker (Faust) in the foreground until SIGTERM."""
    from secdistill.workers.errors import ModelLoadError
    from secdistill.workers.logconfig import current_config
    from secdistill.workers.run import run_worker

    try:
        run_worker(_settings(), current_config())
    except ModelLoadError as exc:
        raise _fail(str(exc)) from exc


@app.command()
def produce(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="JSONL, one finding per line")],
    topic: Annotated[Optional[str], typer.Option(help="Default: the input topic")] = None,
    rate: Annotated[Optional[float], typer.Option(help="Records per second (default: as fast as possible)")] = None,
    repeat: Annotated[Optional[str], typer.Option(help="zipf:S replays lines with Zipf popularity")] = None,
    count: Annotated[Optional[int], typer.Option(help="Records to send (default: every line once)")] = None,
    assets: Annotated[int, typer.Option(help="Distinct assets for --repeat")] = 5000,
) -> None:
    """Publish findings; without --repeat each line's bytes go out unchanged."""
    from secdistill.workers.topics_cli import produce_findings

    s = _settings()
    try:
        n = produce_findings(s, file, topic=topic, rate=rate, repeat=repeat, count=count, assets=assets)
    except ValueError as exc:
        raise _fail(str(exc), 2) from exc
    typer.echo(f"produced {n} records", err=True)


@app.command()
def consume(
    topic: Annotated[str, typer.Argument(help="Topic name, or a role: labelled, teacher, deadletter, ...")],
    max_records: Annotated[Optional[int], typer.Option("--max", help="Stop after N records")] = None,
    timeout: Annotated[float, typer.Option(help="Stop after S seconds")] = 10.0,
) -> None:
    """Print records as JSON lines (JSON values inline, anything else base64)."""
    from secdistill.workers.topics_cli import consume_lines

    for line in consume_lines(_settings(), topic, max_records=max_records, timeout_s=timeout):
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


@app.command()
def predict(
    input: Annotated[Path, typer.Option("--input", exists=True, dir_okay=False, help="Findings JSONL")],
    output: Annotated[Path, typer.Option("--output", help="Predictions JSONL ('-': stdout)")] = Path("-"),
    model: Annotated[Optional[str], typer.Option(help="Channel, version or model folder (default: stable)")] = None,
) -> None:
    """Score a JSONL file offline with the worker's inference code; exit 1 if any line was bad."""
    from secdistill.workers.errors import ModelLoadError
    from secdistill.workers.topics_cli import predict_command

    try:
        bad = predict_command(_settings(), input, output, model)
    except ModelLoadError as exc:
        raise _fail(str(exc)) from exc
    raise typer.Exit(1 if bad else 0)


@schemas_app.command("dump")
def schemas_dump(directory: Annotated[Path, typer.Argument(help="Output folder")]) -> None:
    """Write one JSON Schema file per record contract."""
    from secdistill.schemas import codec
    from secdistill.schemas.records import json_schemas

    directory.mkdir(parents=True, exist_ok=True)
    for name, schema in json_schemas().items():
        (directory / f"{name}.schema.json").write_bytes(codec.dumps(schema, pretty=True, sort_keys=True))
        typer.echo(directory / f"{name}.schema.json")


@app.command()
def demo(
    findings: Annotated[int, typer.Option(help="Findings to replay")] = 2000,
    port: Annotated[int, typer.Option(help="Broker port (0: a free one)")] = 0,
) -> None:
    """Broker + student (built if missing) + worker + teacher, replay bundled findings, summarise."""
    from secdistill.demo import run_demo

    raise typer.Exit(run_demo(_settings(), findings=findings, port=port or None))


@dlq_app.command("replay")
def dlq_replay(
    reason: Annotated[Optional[list[str]], typer.Option(help="Only these reasons (repeatable)")] = None,
    since: Annotated[Optional[str], typer.Option(help="Only letters created at/after this ISO time")] = None,
    timeout: Annotated[float, typer.Option(help="Seconds to read the DLQ")] = 30.0,
    dry_run: Annotated[bool, typer.Option(help="Count, do not publish")] = False,
) -> None:
    """Re-publish dead letters' original bytes to the input topic (after a fix), and summarise."""
    from datetime import datetime

    from secdistill.workers.dlq import replay, scan_dlq

    s = _settings()
    when = datetime.fromisoformat(since) if since else None
    scan = scan_dlq(s, reasons=set(reason or []), since=when, timeout_s=timeout)
    for r, n in sorted(scan.by_reason.items()):
        typer.echo(f"{r:<20} {n}", err=True)
    sent = 0 if dry_run else replay(s, scan.selected)
    typer.echo(f"selected {len(scan.selected)}, replayed {sent}, unreadable {scan.unreadable}", err=True)


@app.command("settings")
def settings_table() -> None:
    """Print every SECDISTILL_* variable with its default (Markdown)."""
    from secdistill.settings_doc import markdown_table

    typer.echo(markdown_table())


def _mount_optional() -> None:
    """Sub-apps of the distillation job and the teacher; their modules import cheaply."""
    try:
        from secdistill.distill.cli import distill_app, eval_command, models_app

        app.add_typer(distill_app, name="distill")
        app.add_typer(models_app, name="models")
        app.command("eval")(eval_command)
    except ImportError:  # a worker-only install has no distill extra: the commands are absent
        pass
    from secdistill.workers.teacher_cli import register as register_teacher
    from secdistill.workers.teacher_cli import teacher_app

    teacher_app.command("run")(teacher_run)
    register_teacher(app)
    try:
        from secdistill.bench.cli import bench_app

        app.add_typer(bench_app, name="bench")
    except ImportError:
        pass


def teacher_run() -> None:
    """Run the teacher worker (Faust) over the teacher topic in the foreground until SIGTERM."""
    from secdistill.schemas.errors import RegistryError
    from secdistill.workers.errors import ModelLoadError
    from secdistill.workers.logconfig import current_config
    from secdistill.workers.run import run_teacher
    from secdistill.workers.teachers.factory import UnknownBackend

    try:
        run_teacher(_settings(), current_config())
    except (ModelLoadError, UnknownBackend, RegistryError) as exc:
        raise _fail(str(exc)) from exc


_mount_optional()


def main() -> None:
    """Console-script entry point."""
    app()
