"""Offline prediction: score a JSONL file of Findings with the worker's own inference code."""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from secdistill.schemas import codec
from secdistill.schemas.errors import ContractError
from secdistill.schemas.records import Finding
from secdistill.workers.labeller import Labeller

log = logging.getLogger(__name__)


@dataclass
class PredictReport:
    """How a predict run went; bad lines carry their 1-based line number and reason."""

    written: int = 0
    bad: list[tuple[int, str, str]] = field(default_factory=list)


def _read(path: Path, max_bytes: int) -> Iterator[tuple[int, Finding | ContractError]]:
    with path.open("rb") as fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                yield lineno, codec.decode(Finding, line.rstrip(b"\r\n"), max_bytes)
            except ContractError as exc:
                yield lineno, exc


def predict_file(labeller: Labeller, src: Path, dest: Path, *, batch_size: int = 64,
                 max_record_bytes: int = 256 * 1024, progress: object = None) -> PredictReport:
    """Write one Prediction JSON per valid line of ``src`` (``-``: stdout); report the bad ones."""
    report = PredictReport()
    batch: list[Finding] = []
    with _open_output(dest) as out:

        def flush() -> None:
            for pred in labeller.label(batch):
                out.write(codec.encode(pred) + b"\n")
            report.written += len(batch)
            if callable(progress):
                progress(len(batch))
            batch.clear()

        for lineno, item in _read(src, max_record_bytes):
            if isinstance(item, ContractError):
                report.bad.append((lineno, item.kind, str(item)))
                log.warning("line %d: %s: %s", lineno, item.kind, item)
                continue
            batch.append(item)
            if len(batch) >= batch_size:
                flush()
        if batch:
            flush()
    return report


def _open_output(dest: Path) -> contextlib.AbstractContextManager[BinaryIO]:
    """``dest`` opened for writing; ``-`` is standard output (left open for the caller)."""
    if str(dest) == "-":
        return contextlib.nullcontext(sys.stdout.buffer)
    return dest.open("wb")
