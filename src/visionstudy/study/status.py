"""Where a study stands, for `study status`: its recorded plan (the manifest) against the run
database and the run folders. Reads only: a study that never ran creates nothing."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from visionstudy.errors import ConfigError
from visionstudy.study.execute import Placement, results_on_disk
from visionstudy.study.manifest import has_manifest, read_manifest

if TYPE_CHECKING:
    from visionstudy.study.spec import Study


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
    differs: str | None = None  # how the study file given differs from the plan recorded in its folder
    errors: dict[str, str] = field(default_factory=dict)  # failed run → its error
    silent: list[str] = field(default_factory=list)  # running runs whose worker is gone (no heartbeat)


def study_status(target: str, overrides: list[str], runs_dir: Path, db: str | None) -> StatusView:
    from visionstudy.store.db import existing_store
    from visionstudy.store.rundir import RunDir
    from visionstudy.study.spec import load_study
    from visionstudy.validate import shapes_later

    path, differs = Path(target), None
    if path.is_dir():
        if not is_study_dir(path):
            from visionstudy.store.reader import studies_hint

            raise ConfigError(f"{path}: not a study folder (no manifest.json); " + (
                studies_hint(path) or "give the study file or the folder `visionstudy study run` wrote"))
        place, name = Placement(path.parent, db), path.name
        manifest = read_manifest(path)
        runs: Sequence[PlanRow] = manifest.runs
        variants = manifest.variants
    else:
        with shapes_later():  # it only looks: no model built for its images (torch's import, 2 s)
            study = load_study(target, overrides)
        place, name = Placement(runs_dir, db), study.name
        study_dir = place.study_dir(name)
        if has_manifest(study_dir):  # the plan as it was recorded when it ran
            manifest = read_manifest(study_dir)
            variants, runs = manifest.variants, manifest.runs
            differs = plan_difference(study, study_dir, {r.key for r in runs})
        else:
            variants, runs = [n for n, _ in study.variants], study.runs
    study_dir = place.study_dir(name)
    keys = [r.key for r in runs]
    on_disk = {k for k in keys if RunDir(study_dir / k).is_finished()}
    store = existing_store(place.url(name), name)
    if store is None:
        fresh = {k: "done" if k in on_disk else "new" for k in keys}  # finished under another --db
        return StatusView(name, study_dir, variants, runs, fresh, bool(on_disk), differs=differs)
    from visionstudy.study.search import search_progress

    status = store.status(keys, on_disk)
    errors = store.failures([k for k, state in status.items() if state == "failed"])
    silent = [k for k in store.silent() if status.get(k) == "running"]
    search, trial_errors = search_progress(place.url(name), name)
    return StatusView(name, study_dir, variants, runs, status, True, search, differs,
                      {**errors, **trial_errors}, silent)


def failure_lines(errors: dict[str, str], most: int = 5) -> list[str]:
    """Failed runs as `study status` and the study report list them, runs with the same error
    together: 'boom/seed-0, boom/seed-1: the training loss became NaN or infinite; ...'."""
    from visionstudy.config import few

    by_error: dict[str, list[str]] = {}
    for key, error in errors.items():
        by_error.setdefault(error, []).append(key)
    lines = [f"{few(keys, 3)}: {error}" for error, keys in by_error.items()]
    return lines[:most] + ([f"... and {len(lines) - most} other errors"] if len(lines) > most else [])


def study_failures(study_dir: Path, db: str | None, keys: list[str]) -> dict[str, str]:
    """The errors of the study's failed runs among `keys`, from its database (none if it has none)."""
    from visionstudy.store.db import existing_store

    url = Placement(study_dir.parent, db).url(study_dir.name)
    store = existing_store(url, study_dir.name)
    return store.failures(keys) if store else {}


def plan_difference(study: Study, study_dir: Path, planned: set[str]) -> str | None:
    """The study file against the plan its folder recorded: changed runs (`study run` refuses
    the finished ones and trains the others anew) and runs it adds, or None when they agree."""
    from visionstudy.config import few
    from visionstudy.study.manifest import changed_runs, describe_change, replan_lines

    changed = changed_runs(study, study_dir)
    if changed:
        done = results_on_disk(study_dir, [r.key for r in changed])
        verdict = (f"{len(done)} of them finished, so `study run` refuses the change (give the changed "
                   "study another name)" if done else "none finished: `study run` trains them anew")
        return f"The study file changes {describe_change(study_dir, changed)}; {verdict}"
    said = []
    added = [r.key for r in study.runs if r.key not in planned]
    if added:
        said.append(f"The study file adds {len(added)} run{'s' * (len(added) > 1)} not planned yet "
                    f"({few(added, 3)}): `visionstudy study run` plans and trains them")
    said += replan_lines(study, study_dir)
    return "\n".join(said) or None
