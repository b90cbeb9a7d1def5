"""Where a study stands, for `study status`: its recorded plan (the manifest) against the run
database and the run folders. Reads only: a study that never ran creates nothing."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from visionstudy.errors import ConfigError
from visionstudy.study.execute import Placement
from visionstudy.study.manifest import has_manifest, read_manifest


class PlanRow(Protocol):
    """A planned run as the manifest (`PlannedRun`) or the expanded study file (`RunSpec`) has it."""

    @property
    def key(self) -> str: ...

    @property
    def variant(self) -> str: ...


def is_study_dir(path: Path) -> bool:
    return has_manifest(path)


@dataclass
class StatusView:
    name: str
    study_dir: Path
    variants: list[str]
    runs: Sequence[PlanRow]
    status: dict[str, str]  # key → done / running / waiting / failed / missing / new
    started: bool
    search: str | None = None  # the search's trials of how many were asked, when it has one


def study_status(target: str, overrides: list[str], runs_dir: Path, db: str | None) -> StatusView:
    from visionstudy.store.db import existing_store
    from visionstudy.store.rundir import RunDir
    from visionstudy.study.spec import load_study

    path = Path(target)
    if path.is_dir():
        if not is_study_dir(path):
            raise ConfigError(f"{path}: not a study folder (no manifest.json); give the study file or "
                              "the folder `visionstudy study run` wrote")
        place, name = Placement(path.parent, db), path.name
        manifest = read_manifest(path)
        runs: Sequence[PlanRow] = manifest.runs
        variants = manifest.variants
    else:
        study = load_study(target, overrides)
        place, name = Placement(runs_dir, db), study.name
        study_dir = place.study_dir(name)
        if has_manifest(study_dir):  # the plan as it was recorded when it ran
            manifest = read_manifest(study_dir)
            variants, runs = manifest.variants, manifest.runs
        else:
            variants, runs = [n for n, _ in study.variants], study.runs
    study_dir = place.study_dir(name)
    keys = [r.key for r in runs]
    on_disk = {k for k in keys if RunDir(study_dir / k).is_finished()}
    store = existing_store(place.url(name), name)
    if store is None:
        fresh = {k: "done" if k in on_disk else "new" for k in keys}
        return StatusView(name, study_dir, variants, runs, fresh, False)
    from visionstudy.study.search import search_progress

    return StatusView(name, study_dir, variants, runs, store.status(keys, on_disk), True,
                      search_progress(place.url(name), name))
