"""A study's results as rows: one per planned run (from its manifest and the run folders), and one
per variant (mean ± sample std of the headline metric). `study run` prints the variant table at the
end; the Python API returns the run rows as a DataFrame."""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from visionstudy.store.reader import read_metrics
from visionstudy.store.rundir import RunDir
from visionstudy.study.manifest import Manifest
from visionstudy.tasks.metrics import RESULTS


def headline(manifest: Manifest) -> tuple[str, str, bool]:
    """(metric key, label, higher is better) of the study's task."""
    from visionstudy.tasks import get_task

    task = get_task(manifest.task)
    return task.headline, task.headline_label, task.maximize


def run_rows(study_dir: Path, manifest: Manifest) -> list[dict[str, Any]]:
    """Every planned run: its key, variant, seed, fold, whether it finished, and its metrics."""
    rows = []
    for r in manifest.runs:
        run = RunDir(study_dir / r.key)
        row: dict[str, Any] = {"key": r.key, "variant": r.variant, "seed": r.seed, "fold": r.fold,
                               "finished": run.is_finished()}
        metrics: dict[str, Any] = {}
        if row["finished"]:
            try:
                metrics = read_metrics(run.path)
            except (OSError, ValueError):
                row["finished"] = False
        row.update({k: metrics.get(k) for k in RESULTS})
        rows.append(row)
    return rows


@dataclass(frozen=True)
class VariantResult:
    variant: str
    runs: int
    mean: float | None
    std: float | None  # sample std (n - 1); None below two runs

    def text(self, percent: bool) -> str:
        if self.mean is None:
            return "–"
        spec = ".2%" if percent else ".4f"
        shown = format(self.mean, spec)
        return shown if self.std is None else f"{shown} ± {format(self.std, spec)}"


def variant_results(rows: list[dict[str, Any]], key: str, variants: list[str]) -> list[VariantResult]:
    by_variant: dict[str, list[float]] = {v: [] for v in variants}
    for r in rows:  # one pass: a 10,001-variant sweep scanned every row per variant
        if r["variant"] in by_variant and r["finished"] and r[key] is not None and math.isfinite(r[key]):
            by_variant[r["variant"]].append(r[key])
    out = []
    for v, values in by_variant.items():
        out.append(VariantResult(v, len(values), statistics.fmean(values) if values else None,
                                 statistics.stdev(values) if len(values) > 1 else None))
    return out
