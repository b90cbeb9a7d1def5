"""The layout of a run directory (DESIGN.md): everything a later report or a resume needs."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class RunDir:
    path: Path

    @property
    def config(self) -> Path:
        return self.path / "config.yaml"

    @property
    def history(self) -> Path:
        return self.path / "history.csv"

    @property
    def metrics(self) -> Path:
        return self.path / "metrics.json"

    @property
    def predictions(self) -> Path:
        return self.path / "predictions.npz"

    @property
    def last(self) -> Path:
        return self.path / "checkpoints" / "last.pt"

    @property
    def best(self) -> Path:
        return self.path / "checkpoints" / "best.pt"

    def is_finished(self) -> bool:
        """metrics.json is written last, atomically: its presence means the run completed."""
        return self.metrics.is_file()

    def has_progress(self) -> bool:
        return self.last.is_file()
