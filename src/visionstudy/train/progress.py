"""A progress bar per epoch (step, loss, accuracy, lr, ETA), or nothing with --quiet."""

from __future__ import annotations

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
        self.console = Console(stderr=True)
        self.progress: Progress | None = None
        self.task: Any = None

    def __enter__(self) -> EpochProgress:
        if self.enabled:
            self.progress = Progress(
                TextColumn("epoch {task.fields[epoch]}/{task.fields[epochs]}"), BarColumn(),
                MofNCompleteColumn(), TextColumn("loss {task.fields[loss]:.4f}"),
                TextColumn("acc {task.fields[acc]:.3f}"), TextColumn("lr {task.fields[lr]:.2e}"),
                TimeElapsedColumn(), TimeRemainingColumn(), console=self.console, transient=True,
            )
            self.progress.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.progress is not None:
            self.progress.__exit__(*exc)

    def start_epoch(self, epoch: int, steps: int, lr: float) -> None:
        if self.progress is None:
            return
        if self.task is not None:
            self.progress.remove_task(self.task)
        self.task = self.progress.add_task(
            "train", total=steps, epoch=epoch, epochs=self.epochs, loss=float("nan"),
            acc=float("nan"), lr=lr,
        )

    def step(self, step: int, loss: float, acc: float) -> None:
        if self.progress is not None:
            self.progress.update(self.task, completed=step, loss=loss, acc=acc)

    def end_epoch(self, row: dict[str, float]) -> None:
        if self.enabled:
            self.console.print(
                f"epoch {int(row['epoch'])}/{self.epochs}  train loss {row['train_loss']:.4f} "
                f"acc {row['train_accuracy']:.4f}  val loss {row['val_loss']:.4f} "
                f"acc {row['val_accuracy']:.4f}  lr {row['lr']:.2e}  {row['seconds']:.1f}s",
                highlight=False,
            )
