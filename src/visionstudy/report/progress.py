"""What the report is doing while it is written: a bar on a terminal, one line per step in a log
(SLURM, `> file`), nothing when off (tests, the Python API's quiet mode)."""

from __future__ import annotations

import sys
import time
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn


class ReportProgress:
    def __init__(self, total: int, enabled: bool) -> None:
        self.total, self.enabled, self.done = total, enabled, 0
        self.console = Console(stderr=True, soft_wrap=True, emoji=False)
        self.bar: Progress | None = None
        self.task: Any = None
        self.start = time.perf_counter()

    def __enter__(self) -> ReportProgress:
        if self.enabled and self.console.is_terminal:
            self.bar = Progress(TextColumn("report"), BarColumn(), MofNCompleteColumn(),
                                TextColumn("{task.description}", markup=False), TimeElapsedColumn(),
                                console=self.console, transient=True)
            self.bar.__enter__()
            self.task = self.bar.add_task("", total=self.total)
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.bar is not None:
            self.bar.__exit__(*exc)

    def step(self, what: str) -> None:
        """Announce the step about to run (`what`), counting the previous one done."""
        if not self.enabled:
            return
        if self.bar is not None:
            self.bar.update(self.task, completed=self.done, description=what)
        else:
            print(f"report {self.done + 1}/{self.total}: {what} ({time.perf_counter() - self.start:.0f} s)",
                  file=sys.stderr, flush=True)
        self.done += 1
