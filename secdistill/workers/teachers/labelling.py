"""Offline labelling: findings JSONL in, TeacherLabel JSONL out (``secdistill teacher label``).

Resumable: finding ids already in the output are skipped, and every label is appended and flushed
as soon as it exists, so an interrupted run (Ctrl-C, a spent budget) loses nothing. Budget-aware:
the service raises ``BudgetExhausted`` instead of waiting for tomorrow, and the run stops cleanly.
Refused findings go to a ``.rejected.jsonl`` file next to the output, with their reason.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from secdistill.schemas import codec
from secdistill.schemas.errors import ContractError
from secdistill.schemas.records import Finding, Prediction, TeacherLabel, TeacherRequest
from secdistill.workers.teachers.base import BudgetExhausted
from secdistill.workers.teachers.service import TeacherOutcome, TeacherService

log = logging.getLogger(__name__)

Progress = Callable[[int], None]


@dataclass
class LabelReport:
    """What one run did."""

    total: int = 0
    skipped_existing: int = 0
    labelled: int = 0
    cached: int = 0
    rejected: int = 0
    bad_input: int = 0
    cost_usd: float = 0.0
    stopped: str | None = None  # why the run ended early (budget)
    reasons: dict[str, int] = field(default_factory=dict)


def done_ids(path: Path) -> set[str]:
    """Finding ids already labelled in an output file (a torn last line is ignored)."""
    if not path.exists():
        return set()
    ids = set()
    with path.open("rb") as fh:
        for line in fh:
            try:
                ids.add(codec.decode(TeacherLabel, line, max_bytes=1 << 20).finding_id)
            except ContractError:
                continue  # the line an interrupted run was writing
    return ids


def read_findings(path: Path, report: LabelReport) -> Iterator[Finding]:
    """Valid findings from JSONL; bad lines are counted and logged, not fatal."""
    with path.open("rb") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                yield codec.decode(Finding, line)
            except ContractError as exc:
                report.bad_input += 1
                log.warning("%s:%d: not a Finding (%s): %s", path, lineno, exc.kind, exc)


def offline_request(finding: Finding) -> TeacherRequest:
    """A request with no student opinion (offline labelling has no student)."""
    student = Prediction(finding_id=finding.finding_id, labels={}, probs={}, confidence={},
                         model_version="none")
    return TeacherRequest(finding_id=finding.finding_id, finding=finding, student=student,
                          reasons=["offline_label"])


async def label_file(service: TeacherService, src: Path, dest: Path, *, batch_size: int = 32,
                     progress: Progress | None = None) -> LabelReport:
    """Label every finding of ``src`` not yet in ``dest``; append TeacherLabel lines to ``dest``."""
    report = LabelReport()
    done = done_ids(dest)
    todo = []
    for f in read_findings(src, report):
        report.total += 1
        if f.finding_id in done:
            report.skipped_existing += 1
            continue
        done.add(f.finding_id)  # a duplicate id later in the input is labelled once
        todo.append(f)
    if progress and report.skipped_existing:
        progress(report.skipped_existing)
    rejects = dest.with_name(dest.name + ".rejected.jsonl")
    dest.parent.mkdir(parents=True, exist_ok=True)
    with dest.open("ab") as out:
        for start in range(0, len(todo), batch_size):
            batch = [offline_request(f) for f in todo[start:start + batch_size]]
            results = await service.handle_batch(batch, return_exceptions=True)
            _write([r for r in results if isinstance(r, TeacherOutcome)], out, rejects, report)
            if progress:
                progress(len(batch))
            errors = [r for r in results if isinstance(r, BaseException)]
            spent = [e for e in errors if isinstance(e, BudgetExhausted)]
            if spent:
                report.stopped = str(spent[0])
                log.warning("stopping: %s; rerun the same command to resume", spent[0])
                break
            if errors:
                raise errors[0]
    report.cost_usd = round(service.budget.total_usd, 6)
    return report


def _write(outcomes: list[TeacherOutcome], out: BinaryIO, rejects: Path, report: LabelReport) -> None:
    lines = []
    for o in outcomes:
        if o.label is not None:
            lines.append(codec.encode(o.label) + b"\n")
            report.labelled += 1
            report.cached += int(o.cached)
        elif o.dead_letter_reason is not None:
            report.rejected += 1
            reason = o.dead_letter_reason.value
            report.reasons[reason] = report.reasons.get(reason, 0) + 1
            with rejects.open("ab") as fh:
                fh.write(codec.dumps({"finding_id": o.request.finding_id, "reason": reason,
                                      "error": o.error, "finding": o.request.finding}) + b"\n")
    out.write(b"".join(lines))
    out.flush()


def run_label_file(service: TeacherService, src: Path, dest: Path, *, batch_size: int = 32,
                   progress: Progress | None = None) -> LabelReport:
    """``label_file`` in a fresh event loop, closing the service's connections afterwards."""

    async def _main() -> LabelReport:
        try:
            return await label_file(service, src, dest, batch_size=batch_size, progress=progress)
        finally:
            await service.aclose()

    return asyncio.run(_main())
