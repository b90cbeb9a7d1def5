"""The one reader of a run folder (its layout: `rundir.RunDir`; its writers: the experiment and
the training loop): config, history, per-step history, metrics, predictions, never writing. Reports,
the API, trackers, export, the demo, prediction and the study layer all read runs through it.

`load_run` gives a whole run for a report: a run interrupted before the end still gives what
exists, with `missing` saying what does not.
"""

from __future__ import annotations

import csv
import json
import math
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from visionstudy.errors import ReportError
from visionstudy.store.rundir import MANIFEST, RunDir

SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml: an order of magnitude faster


@dataclass
class RunArtifacts:
    path: Path
    label: str  # unique, readable name within one report
    config: dict[str, Any]  # config.yaml as written (with its `resolved` section)
    history: list[dict[str, float]] = field(default_factory=list)
    steps: list[dict[str, float]] = field(default_factory=list)  # per-batch records, if logged
    metrics: dict[str, Any] | None = None
    predictions: dict[str, np.ndarray] | None = None
    missing: list[str] = field(default_factory=list)  # what an incomplete run lacks, in words

    @property
    def finished(self) -> bool:
        return self.metrics is not None and self.predictions is not None

    @property
    def class_names(self) -> list[str]:
        if self.predictions is not None and "class_names" in self.predictions:
            return [str(c) for c in self.predictions["class_names"]]
        return list(self.resolved.get("dataset", {}).get("class_names", []))

    @property
    def resolved(self) -> dict[str, Any]:
        return resolved(self.config)

    @property
    def asked(self) -> dict[str, Any]:
        return as_asked(self.config)


def resolved(config: dict[str, Any]) -> dict[str, Any]:
    """What a run's config.yaml says its run resolved: versions, the dataset's facts, the model's size."""
    return config.get("resolved") or {}


def as_asked(config: dict[str, Any]) -> dict[str, Any]:
    """A run's config.yaml without the `resolved` section its run added: the config as asked."""
    return {k: v for k, v in config.items() if k != "resolved"}


def asked_here(config: dict[str, Any]) -> dict[str, Any]:
    """The config as asked, its relative `data.path` joined to the folder the run started in
    (`resolved.workdir`) where this process runs elsewhere and that folder is here: what loads the
    run's data again from any folder (a report, an export, `vs.Run.config`)."""
    asked = as_asked(config)
    path, workdir = (asked.get("data") or {}).get("path"), resolved(config).get("workdir")
    if (not isinstance(path, str) or not isinstance(workdir, str) or Path(path).expanduser().is_absolute()
            or Path(workdir) == Path.cwd() or not (Path(workdir) / path).exists()):
        return asked
    return {**asked, "data": {**asked["data"], "path": str(Path(workdir) / path)}}


def read_metrics(run: Path) -> dict[str, Any]:
    """A finished run's metrics.json (`run`: its folder); OSError or ValueError if it has none or
    it cannot be read."""
    metrics = json.loads(RunDir(run).metrics.read_text())
    if not isinstance(metrics, dict):
        raise ValueError(f"{RunDir(run).metrics}: not a mapping")
    return metrics


def read_config(run: Path) -> dict[str, Any]:
    """A run's config.yaml as written, its `resolved` section included (`run`: its folder); {}
    when it has none. A config that cannot be read is a `ReportError`."""
    path = RunDir(run).config
    if not path.is_file():
        return {}
    try:
        config = yaml.load(path.read_text(), Loader=SAFE_LOADER) or {}
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ReportError(f"{path}: unreadable config ({str(exc).splitlines()[0]})") from None
    if not isinstance(config, dict):
        raise ReportError(f"{path}: not a run config (expected a mapping)")
    return config


def read_history(path: Path) -> list[dict[str, float]]:
    with path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    out: list[dict[str, float]] = []
    for row in rows:
        parsed = {}
        for k, v in row.items():
            try:
                parsed[k] = float(v) if v not in ("", None) else math.nan
            except ValueError:
                parsed[k] = math.nan
        parsed["epoch"] = int(parsed.get("epoch", len(out) + 1))
        out.append(parsed)
    return out


def filled_columns(history: list[dict[str, float]]) -> list[str]:
    """The columns of `read_history`'s rows that some epoch filled (history.csv keeps one schema
    for every task: a regression's accuracy columns stay empty)."""
    return [c for c in history[0] if not all(isinstance(r[c], float) and math.isnan(r[c]) for r in history)]


def read_predictions(path: Path) -> dict[str, np.ndarray]:
    """predictions.npz's arrays (which ones a run holds is its task's `prediction_keys`)."""
    with np.load(path, allow_pickle=False) as npz:
        data = {k: npz[k] for k in npz.files}
    if not data:
        raise ValueError("no arrays")
    return data


def runs_inside(folder: Path, depth: int = 2) -> list[Path]:
    """The run folders up to `depth` levels below `folder` (a study's <variant>/seed-k[/fold-f]),
    in order."""
    found: list[Path] = []
    for sub in sorted(p for p in folder.iterdir() if p.is_dir()):
        if RunDir(sub).is_run():
            found.append(sub)
        elif depth > 1:
            found += runs_inside(sub, depth - 1)
    return found


def studies_inside(folder: Path) -> list[str]:
    """The study folders (each holding its manifest) right inside `folder`: a runs folder's."""
    folder = Path(folder)
    return sorted(p.parent.name for p in folder.glob(f"*/{MANIFEST}")) if folder.is_dir() else []


def studies_hint(folder: Path) -> str:
    """'it holds the study folders a, b: give one of them (runs/a)', or '' for a folder without."""
    from visionstudy.config import few

    inside = studies_inside(folder)
    if not inside:
        return ""
    return (f"it holds the study folder{'s' * (len(inside) > 1)} {few(inside, 4)}: give one of them "
            f"({Path(folder) / inside[0]})")


def holds_runs(path: Path, several: bool = True) -> str | None:
    """For a folder that is no run but holds some (a study's variant folder), or study folders (a
    runs folder; `several`: the command takes those too, as `report` does): the error naming them;
    else None."""
    from visionstudy.config import few

    study = (Path(path) / MANIFEST).is_file()  # a study folder: its runs lie up to 3 levels down
    inside = runs_inside(Path(path), depth=3 if study else 2) if Path(path).is_dir() else []
    studies = studies_inside(path) if several else []
    if not inside:
        return f"{path}: not a run directory or a study folder; {studies_hint(path)}" if studies else None
    depth = {len(r.relative_to(path).parts) for r in inside}
    glob = "/".join(["*"] * depth.pop()) if len(depth) == 1 else None
    exact = glob is not None and sorted(Path(path).glob(glob)) == inside  # the shell's match: runs alone
    if study:
        inside = planned_first(Path(path), inside)
    shown = ", ".join(str(Path(path) / r.relative_to(path)) for r in inside[:3])
    more = f" and {len(inside) - 3} more" if len(inside) > 3 else ""
    pattern = f" (all: {Path(path) / glob})" if exact and glob else ""
    runs = f"{len(inside)} run{'s' * (len(inside) > 1)} ({shown}{more})"
    which = "it" if len(inside) == 1 else f"one or more of them{pattern}" if several else "one of them"
    if studies:
        which = "the run" if len(inside) == 1 else which
        return (f"{path}: not a run directory, but it holds {runs} and the study folder"
                f"{'s' * (len(studies) > 1)} {few(studies, 4)}; pass {which}, or one study folder "
                f"({Path(path) / studies[0]})")
    what = "a study folder, not a run directory" if study else "not a run directory"
    return f"{path}: {what}, but it holds {runs}; pass {which}"


def planned_first(study_dir: Path, runs: list[Path]) -> list[Path]:
    """A study folder's runs, those its manifest plans (its variants') before the others (its
    search's trials), each group in its order."""
    try:
        planned = {r["key"] for r in json.loads((study_dir / MANIFEST).read_text())["runs"]}
    except (OSError, ValueError, KeyError, TypeError):
        return runs
    return sorted(runs, key=lambda r: r.relative_to(study_dir).as_posix() not in planned)


def load_run(path: Path, label: str | None = None) -> RunArtifacts:
    """The artifacts of the run in `path`; a folder that is not a run is a `ReportError`."""
    run = RunDir(Path(path))
    if not run.path.is_dir():
        raise ReportError(f"{path}: no such directory")
    if not run.is_run():
        raise ReportError(holds_runs(run.path) or (
            f"{path}: not a run directory (no checkpoints, no results, no config.yaml written by a run); "
            "pass a folder written by `visionstudy train` or `visionstudy study run`"))
    config = read_config(run.path)
    art = RunArtifacts(run.path, label or str(config.get("name") or run.path.name), config)
    if run.history.is_file():
        art.history = read_history(run.history)
    if run.steps.is_file():
        art.steps = read_history(run.steps)
    if not art.history:
        art.missing.append("history.csv (no epoch finished)")
    if run.metrics.is_file():
        try:
            art.metrics = read_metrics(run.path)
        except (OSError, ValueError) as exc:
            art.missing.append(f"metrics.json is unreadable ({exc})")
    else:
        art.missing.append("metrics.json (training did not finish: no test evaluation)")
    if run.predictions.is_file():
        try:
            art.predictions = read_predictions(run.predictions)
        except (OSError, ValueError, zipfile.BadZipFile, KeyError) as exc:
            art.missing.append(f"predictions.npz is unreadable ({exc})")
    else:
        art.missing.append("predictions.npz (no test predictions)")
    return art


REPEAT_FOLDER = re.compile(r"(seed|fold)-\d+")  # a study run's repeat: not a name by itself


def unique_labels(paths: list[Path]) -> list[str]:
    """The shortest path suffixes that tell the runs apart (`resnet/seed-1`, not the whole path),
    each starting at a name: a study's run as its key (`base/seed-0/fold-1`, not `fold-1`, which
    read as another study's `seed-0` beside it)."""
    parts = [Path(p).resolve().parts for p in paths]
    start = [next((d for d in range(1, len(p) + 1) if not REPEAT_FOLDER.fullmatch(p[-d])), len(p))
             for p in parts]
    for extra in range(max(len(p) for p in parts)):
        labels = ["/".join(p[-(d + extra):]) for p, d in zip(parts, start, strict=True)]
        if len(set(labels)) == len(labels):
            return labels
    return [str(p) for p in paths]
