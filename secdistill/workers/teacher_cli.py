"""``secdistill teacher build|label``, ``secdistill review export|import``, ``secdistill report
shadow|cost``: thin Typer commands over ``secdistill.workers.teachers``.

``teacher build`` is the one documented place where a workers module imports ``secdistill.distill``
(torch, scikit-learn), lazily inside the command. ``register(app)`` mounts the three sub-apps on
the root CLI; the teacher worker itself (``secdistill teacher run``) is mounted by the fleet CLI.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

log = logging.getLogger(__name__)

teacher_app = typer.Typer(help="The teacher: build the local one, label findings offline.",
                          no_args_is_help=True)
review_app = typer.Typer(help="Move review items to and from a file a person edits.",
                         no_args_is_help=True)
report_app = typer.Typer(help="Shadow agreement and the cost ledger.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    """Mount ``teacher``, ``review`` and ``report`` on the root CLI."""
    app.add_typer(teacher_app, name="teacher")
    app.add_typer(review_app, name="review")
    app.add_typer(report_app, name="report")


def _settings() -> Any:
    from secdistill.workers.config import WorkerSettings

    return WorkerSettings()


def _task(s: Any) -> Any:
    from secdistill.schemas.task import load_task

    return load_task(s.worker.task_path)


def _fail(message: str, code: int = 1) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


def _emit(data: Any, as_json: bool, text: str) -> None:
    from secdistill.schemas import codec

    typer.echo(codec.dumps(data, pretty=True).decode() if as_json else text)


@teacher_app.command("build")
def build(
    tiny: Annotated[bool, typer.Option(help="Random 2-layer encoder (smoke tests): fast, weak kNN")] = False,
    promote: Annotated[Optional[str], typer.Option(help="Channel to promote to ('' for none)")] = "stable",
    max_records: Annotated[Optional[int], typer.Option(help="Use an even subset of the corpus")] = None,
    threads: Annotated[Optional[int], typer.Option(help="ONNX Runtime threads for embedding")] = None,
) -> None:
    """Fit TF-IDF+LR, export MiniLM to ONNX, index the corpus, publish ``<task>-teacher``."""
    from secdistill.distill.teacher_build import TeacherBuildConfig, build_teacher
    from secdistill.schemas.corpus import read_corpus_records

    s = _settings()
    records = read_corpus_records()
    subset = records[:: max(1, len(records) // max_records)] if max_records else None
    cfg = TeacherBuildConfig(task_path=str(s.worker.task_path) if s.worker.task_path else None,
                             tiny_encoder=tiny, promote=promote or None, threads=threads)
    m = build_teacher(s.registry.uri, cfg, records=subset)
    acc = m.metrics["val"]
    typer.echo(f"published {m.name} {m.version}; validation CVSS mean accuracy: local "
               f"{acc['local'].get('cvss_mean_accuracy', 0):.4f}, TF-IDF "
               f"{acc['tfidf'].get('cvss_mean_accuracy', 0):.4f}, kNN {acc['knn'].get('cvss_mean_accuracy', 0):.4f}")


@teacher_app.command("label")
def label(
    input: Annotated[Path, typer.Option("--input", help="Findings JSONL", exists=True, dir_okay=False)],
    output: Annotated[Path, typer.Option("--output", help="TeacherLabel JSONL (appended; resumable)")],
    backend: Annotated[Optional[str], typer.Option(help="local, knn, reference, openai, ensemble[:openai]")] = None,
    batch_size: Annotated[int, typer.Option(min=1, help="Findings per teacher batch")] = 32,
    teacher: Annotated[Optional[str], typer.Option(help="Teacher version or channel (default stable)")] = None,
) -> None:
    """Label findings with the teacher; skips ids already in OUTPUT; stops when the budget is spent."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    from secdistill.schemas.errors import RegistryError
    from secdistill.workers.teachers.factory import UnknownBackend, build_service
    from secdistill.workers.teachers.flow import ServiceOptions
    from secdistill.workers.teachers.labelling import run_label_file

    s = _settings()
    try:
        service = build_service(_task(s), s.teacher, s.registry, backend=backend, teacher_ref=teacher,
                                options=ServiceOptions(on_budget="raise"))
    except UnknownBackend as exc:
        raise _fail(str(exc), 2) from exc
    except RegistryError as exc:
        raise _fail(f"{exc} (build the local teacher with `secdistill teacher build`)") from exc
    total = sum(1 for line in input.open("rb") if line.strip())
    columns = ("{task.description}", BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, transient=not os.isatty(2)) as bar:
        task_id = bar.add_task("teacher labels", total=total)
        report = run_label_file(service, input, output, batch_size=batch_size,
                                progress=lambda n: bar.advance(task_id, n))
    typer.echo(f"labelled {report.labelled} (cached {report.cached}), already done "
               f"{report.skipped_existing}, rejected {report.rejected} {report.reasons or ''}, "
               f"bad input {report.bad_input}, cost ${report.cost_usd:.4f}", err=True)
    if report.stopped:
        raise _fail(f"{report.stopped}; rerun the same command to resume")


@review_app.command("export")
def review_export(
    output: Annotated[Path, typer.Option("--output", help="Editable file: .csv or .jsonl")],
    input: Annotated[Optional[Path], typer.Option("--input", help="ReviewItem JSONL (default: the review topic)")] = None,
    timeout: Annotated[float, typer.Option(help="Seconds to read the review topic")] = 30.0,
) -> None:
    """Write review items (latest per finding) as rows with empty ``correct_<head>`` columns."""
    from secdistill.schemas.records import ReviewItem
    from secdistill.schemas.topics import topic_map
    from secdistill.workers.teachers.reports import read_topic
    from secdistill.workers.teachers.review_io import export_rows, read_review_items

    s = _settings()
    task = _task(s)
    items = (read_review_items(input) if input else
             list(read_topic(s.kafka, topic_map(s.topics, task).review, ReviewItem, timeout)))
    typer.echo(f"{export_rows(items, task, output)} review rows written to {output}", err=True)


@review_app.command("import")
def review_import(
    input: Annotated[Path, typer.Option("--input", help="The edited .csv/.jsonl", exists=True)],
    author: Annotated[str, typer.Option(help="Who reviewed (rows may name their own)")] = os.environ.get("USER", "reviewer"),
    output: Annotated[Optional[Path], typer.Option("--output", help="Also append Corrections JSONL here")] = None,
    publish: Annotated[bool, typer.Option(help="Publish to the corrections topic")] = True,
) -> None:
    """Turn edited rows into Corrections: publish them (and/or write JSONL); invalid rows abort."""
    from secdistill.schemas import codec
    from secdistill.schemas.topics import topic_map
    from secdistill.workers.kafka_tools import make_producer, produce_values
    from secdistill.workers.teachers.review_io import (
        ReviewFileError,
        corrections_from_rows,
        read_rows,
        write_corrections,
    )

    s = _settings()
    task = _task(s)
    try:
        corrections = corrections_from_rows(read_rows(input), task, author)
    except ReviewFileError as exc:
        raise _fail(str(exc), 2) from exc
    if output:
        write_corrections(corrections, output)
    if publish and corrections:
        topic = topic_map(s.topics, task).corrections
        produce_values(make_producer(s.kafka), topic,
                       ((c.finding_id.encode(), codec.encode(c)) for c in corrections))
    typer.echo(f"{len(corrections)} corrections" + (f" published to {topic}" if publish and corrections else "")
               + (f", written to {output}" if output else ""), err=True)


@report_app.command("shadow")
def report_shadow(
    input: Annotated[Optional[Path], typer.Option("--input", help="TeacherLabel JSONL (default: the topic)")] = None,
    timeout: Annotated[float, typer.Option(help="Seconds to read the teacher-labels topic")] = 30.0,
    json: Annotated[bool, typer.Option("--json", help="JSON instead of a table")] = False,
) -> None:
    """Student-teacher agreement on shadow samples, per head and per slice."""
    from secdistill.schemas.records import TeacherLabel
    from secdistill.schemas.topics import topic_map
    from secdistill.workers.teachers.reports import format_shadow, read_jsonl, read_topic, shadow_report

    s = _settings()
    labels = (read_jsonl(input, TeacherLabel) if input else
              read_topic(s.kafka, topic_map(s.topics, _task(s)).teacher_labels, TeacherLabel, timeout))
    snap = shadow_report(labels)
    _emit(snap, json, format_shadow(snap))


@report_app.command("cost")
def report_cost(
    labelled: Annotated[Optional[Path], typer.Option(help="LabelledFinding JSONL (default: the topic)")] = None,
    teacher_labels: Annotated[Optional[Path], typer.Option(help="TeacherLabel JSONL (default: the topic)")] = None,
    student_seq_per_s: Annotated[float, typer.Option(help="Student throughput per process")] = 132.7,
    student_cpus: Annotated[int, typer.Option(help="CPUs one student process uses")] = 2,
    timeout: Annotated[float, typer.Option(help="Seconds to read each topic")] = 30.0,
    json: Annotated[bool, typer.Option("--json", help="JSON instead of a table")] = False,
) -> None:
    """Cost per million findings: student only, teacher only, the observed mix, and the savings."""
    from secdistill.schemas.records import LabelledFinding, TeacherLabel
    from secdistill.schemas.topics import topic_map
    from secdistill.workers.teachers.reports import (
        cost_table,
        format_cost,
        read_jsonl,
        read_topic,
        traffic_from,
    )

    s = _settings()
    topics = topic_map(s.topics, _task(s))
    lf = (read_jsonl(labelled, LabelledFinding) if labelled else
          read_topic(s.kafka, topics.labelled, LabelledFinding, timeout))
    tl = (read_jsonl(teacher_labels, TeacherLabel) if teacher_labels else
          read_topic(s.kafka, topics.teacher_labels, TeacherLabel, timeout))
    table = cost_table(traffic_from(lf, tl), s.prices, student_seq_per_s=student_seq_per_s,
                       student_cpus=student_cpus)
    _emit(table, json, format_cost(table))
