"""A progress bar per epoch (step, loss, accuracy, lr, ETA), or nothing with --quiet."""

from __future__ import annotations

import math
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)


class EpochProgress:
    def __init__(self, epochs: int, enabled: bool = True) -> None:
        self.epochs = epochs
        self.enabled = enabled
        self.console = Console(stderr=True, soft_wrap=True, emoji=False, markup=False,  # text as written,
                               highlight=False)  # never hard-wrapped in a log
        self.progress: Progress | None = None
        self.task: Any = None

    def __enter__(self) -> EpochProgress:
        if self.enabled:
            self.progress = Progress(
                TextColumn("epoch {task.fields[epoch]}/{task.fields[epochs]}"), BarColumn(),
                MofNCompleteColumn(), TextColumn("{task.fields[stats]}"),
                TextColumn("lr {task.fields[lr]:.2e}"),
                TimeElapsedColumn(), TimeRemainingColumn(), console=self.console, transient=True,
            )
            self.progress.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.progress is not None:
            self.progress.__exit__(*exc)

    def start_epoch(self, epoch: int, steps: int, lr: float) -> None:
        if self.progress is None:
            return
        if self.task is not None:
            self.progress.remove_task(self.task)
        self.task = self.progress.add_task(
            "train", total=steps, epoch=epoch, epochs=self.epochs, stats="", lr=lr,
        )

    def step(self, step: int, loss: float, acc: float) -> None:
        if self.progress is not None:
            self.progress.update(self.task, completed=step, stats=step_text(loss, acc))

    def end_epoch(self, row: dict[str, float]) -> None:
        if self.enabled:
            self.console.print(epoch_line(row, self.epochs))


def step_text(loss: float, acc: float) -> str:
    """'loss 0.4123 acc 0.871' with only the numbers that exist (no accuracy for regression)."""
    return " ".join(part for part, value in ((f"loss {loss:.4f}", loss), (f"acc {acc:.3f}", acc))
                    if math.isfinite(value))


def epoch_line(row: dict[str, float], epochs: int) -> str:
    """One line per epoch; a missing number (no validation set, no accuracy) is left out."""
    parts = [f"epoch {int(row['epoch'])}/{epochs}"]
    for label, loss, acc in (("train", row["train_loss"], row["train_accuracy"]),
                             ("val", row["val_loss"], row["val_accuracy"])):
        text = step_text(loss, acc)
        if text:
            parts.append(f"{label} {text}")
    return "  ".join([*parts, f"lr {row['lr']:.2e}", f"{row['seconds']:.1f}s"])
