"""Review items to a file a person edits (JSONL or CSV), and edited rows back to Corrections.

One row per finding: the text, why it was flagged, the teacher's / student's / reference labels per
head, and empty ``correct_<head>`` columns. Filling a ``correct_`` cell (or ``accept`` = teacher,
student or reference) makes a Correction for those heads; rows left empty are ignored.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal

from secdistill.schemas import codec
from secdistill.schemas.errors import ContractError
from secdistill.schemas.records import Correction, Finding, ReviewItem
from secdistill.schemas.task import TaskSpec

Source = Literal["review", "manual", "import"]
FINDING_COLUMNS = ("finding_id", "advisory_id", "ecosystem", "package", "title", "description")


class ReviewFileError(ValueError):
    """An edited review file has invalid rows; nothing is imported."""


def columns(task: TaskSpec) -> list[str]:
    """Column order of an exported review file."""
    cols = [*FINDING_COLUMNS, "fingerprint", "why"]
    for h in task.heads:
        cols += [f"teacher_{h.name}", f"student_{h.name}", f"reference_{h.name}"]
    cols += ["accept", *(f"correct_{h.name}" for h in task.heads), "author", "reason"]
    return cols


def to_row(item: ReviewItem, task: TaskSpec) -> dict[str, Any]:
    """One editable row for a review item."""
    f = item.finding
    row: dict[str, Any] = {c: getattr(f, c) or "" for c in FINDING_COLUMNS}
    row.update(fingerprint=f.fingerprint(), why="; ".join(item.why), accept="", author="", reason="")
    for h in task.heads:
        row[f"teacher_{h.name}"] = item.teacher_labels.get(h.name, "")
        row[f"student_{h.name}"] = item.student_labels.get(h.name, "")
        row[f"reference_{h.name}"] = item.reference_labels.get(h.name, "")
        row[f"correct_{h.name}"] = ""
    return row


def export_rows(items: Iterable[ReviewItem], task: TaskSpec, dest: Path) -> int:
    """Write the latest item per finding as CSV (``.csv``) or JSONL; return the row count."""
    latest: dict[str, ReviewItem] = {}
    for item in items:
        latest[item.finding_id] = item
    rows = [to_row(i, task) for i in latest.values()]
    dest.parent.mkdir(parents=True, exist_ok=True)
    if dest.suffix == ".csv":
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=columns(task))
        writer.writeheader()
        writer.writerows(rows)
        dest.write_text(buf.getvalue(), encoding="utf-8")
    else:
        dest.write_bytes(b"".join(codec.dumps(r) + b"\n" for r in rows))
    return len(rows)


def read_rows(src: Path) -> list[dict[str, Any]]:
    """Rows of an edited review file (CSV or JSONL)."""
    if src.suffix == ".csv":
        with src.open(newline="", encoding="utf-8") as fh:
            return list(csv.DictReader(fh))
    rows = []
    for lineno, line in enumerate(src.read_bytes().splitlines(), 1):
        if line.strip():
            try:
                rows.append(codec.loads(line, max_bytes=1 << 20))
            except ContractError as exc:
                raise ReviewFileError(f"{src}:{lineno}: {exc}") from exc
    return rows


def corrections_from_rows(rows: list[dict[str, Any]], task: TaskSpec, author: str,
                          source: Source = "review") -> list[Correction]:
    """Corrections for rows with decisions; ReviewFileError listing every invalid row."""
    out, errors = [], []
    for n, row in enumerate(rows, 1):
        try:
            corr = _correction(row, task, author, source)
        except (ValueError, ContractError) as exc:
            errors.append(f"row {n} ({row.get('finding_id', '?')}): {exc}")
            continue
        if corr is not None:
            out.append(corr)
    if errors:
        raise ReviewFileError("invalid review rows, nothing imported:\n" + "\n".join(errors))
    return out


def _correction(row: dict[str, Any], task: TaskSpec, author: str, source: Source) -> Correction | None:
    labels: dict[str, str] = {}
    accept = str(row.get("accept") or "").strip().lower()
    if accept:
        if accept not in ("teacher", "student", "reference"):
            raise ValueError(f"accept must be teacher, student or reference, not {accept!r}")
        labels = {h.name: str(row.get(f"{accept}_{h.name}") or "").strip() for h in task.heads}
        labels = {name: v for name, v in labels.items() if v}
    for h in task.heads:
        value = str(row.get(f"correct_{h.name}") or "").strip()
        if value:
            labels[h.name] = value  # an explicit cell beats ``accept``
    if not labels:
        return None
    heads = task.head_map()
    for name, v in labels.items():
        if v not in heads[name].classes:
            raise ValueError(f"{name}={v!r} is not one of {heads[name].classes}")
    finding = _finding(row)
    return Correction(
        finding_id=finding.finding_id, labels=labels,
        author=str(row.get("author") or "").strip() or author,
        reason=str(row.get("reason") or "").strip() or str(row.get("why") or ""),
        advisory_id=finding.advisory_id, fingerprint=finding.fingerprint(), finding=finding,
        source=source,
    )


def _finding(row: dict[str, Any]) -> Finding:
    values = {c: (str(row.get(c) or "") or None) for c in FINDING_COLUMNS}
    if not values["finding_id"] or not values["description"]:
        raise ValueError("finding_id and description are required")
    return Finding.model_validate(values)


def write_corrections(corrections: list[Correction], dest: Path) -> None:
    """Append corrections as JSONL (what ``secdistill distill run --corrections`` reads)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    with dest.open("ab") as fh:
        fh.write(b"".join(codec.encode(c) + b"\n" for c in corrections))


def read_review_items(src: Path) -> list[ReviewItem]:
    """ReviewItem JSONL (e.g. a dump of the review topic)."""
    items = []
    for lineno, line in enumerate(src.read_bytes().splitlines(), 1):
        if line.strip():
            try:
                items.append(codec.decode(ReviewItem, line, max_bytes=1 << 20))
            except ContractError as exc:
                raise ReviewFileError(f"{src}:{lineno}: not a ReviewItem ({exc})") from exc
    return items
