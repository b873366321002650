"""A rich progress bar that disappears when disabled (tests, non-interactive CronJobs)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


class _NoBar:
    def add_task(self, description: str, total: int) -> int:
        return 0

    def update(self, task: int, advance: int = 0, description: str | None = None) -> None:
        return None


@contextmanager
def progress_bar(enabled: bool) -> Iterator[Any]:
    """Yield a rich Progress (or a silent stand-in) with the usual columns."""
    if not enabled:
        yield _NoBar()
        return
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), TimeRemainingColumn()) as bar:
        yield bar
