"""A study recorded as data: the manifest of its planned runs, written once by `study run`.

    runs/<study>/manifest.json

holds the study's name, description, baseline, variants in order, every planned run (key, variant,
seed index, seed, fold, config hash and resolved config), every sweep chart (its block, key and
the value each member variant has), the search and the published reference. `study status` and
the report read it; they never re-expand or re-validate the study file.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from visionstudy.errors import ReportError
from visionstudy.fsutil import atomic_write_text
from visionstudy.store.rundir import MANIFEST

if TYPE_CHECKING:
    from visionstudy.study.spec import RunSpec, Study

FORMAT = 1


@dataclass(frozen=True)
class PlannedRun:
    key: str
    variant: str
    seed_index: int
    seed: int
    fold: int | None
    config_hash: str
    config: dict[str, Any]


@dataclass(frozen=True)
class SweepChart:
    label: str
    block: int
    key: str
    points: dict[str, Any]  # variant → the value of `key` it runs with


@dataclass
class Manifest:
    name: str
    description: str
    reproduces: str
    baseline: str
    task: str
    variants: list[str]
    runs: list[PlannedRun]
    sweeps: list[SweepChart] = field(default_factory=list)
    search: dict[str, Any] | None = None
    reference: dict[str, Any] | None = None
    overrides: list[str] = field(default_factory=list)
    source: str = ""
    notes: dict[str, str] = field(default_factory=dict)  # variant → what it reproduces
    ladder: list[str] = field(default_factory=list)  # variants that build on each other, in order
    settings: dict[str, dict[str, Any]] = field(default_factory=dict)  # variant → config, defaults filled
    report: dict[str, Any] = field(default_factory=dict)  # the study file's `report:` (ReportPlan)

    def matching(self, patterns: list[str]) -> list[str]:
        """The variants (in the study's order, `search-best` last) that match any of `patterns`."""
        import fnmatch

        names = list(dict.fromkeys([*self.variants, *(["search-best"] if self.search else [])]))
        return [n for n in names if any(fnmatch.fnmatchcase(n, p) for p in patterns)]

    def validates_on(self, variant: str) -> str:
        """'split', 'test' or 'none' for a variant's runs (from their planned configs)."""
        from visionstudy.config import DataConfig

        try:
            return DataConfig.model_validate(self.data_of(variant)).validates_on
        except ValueError:
            return "split"

    @property
    def data(self) -> dict[str, Any]:
        """The data section of the first run (what the published numbers are compared on)."""
        return self.runs[0].config.get("data", {}) if self.runs else {}

    def data_of(self, variant: str) -> dict[str, Any]:
        """The data section of a variant's first planned run ({} for a variant not planned)."""
        run = next((r for r in self.runs if r.variant == variant), None)
        return (run.config.get("data") or {}) if run else {}

    def search_config(self) -> Any:
        from visionstudy.study.schema import SearchConfig

        return SearchConfig.model_validate(self.search) if self.search else None

    def reference_config(self) -> Any:
        from visionstudy.study.schema import ReferenceConfig

        return ReferenceConfig.model_validate(self.reference) if self.reference else None


def from_study(study: Study) -> Manifest:
    """The manifest of an expanded `Study`."""
    from visionstudy.config import dump_config, indexed
    from visionstudy.tasks import task_of
    from visionstudy.validate import resolved_with_defaults

    by_variant: dict[str, RunSpec] = {}
    for r in study.runs:
        by_variant.setdefault(r.variant, r)
    sweeps = []
    for label, block, key, members in study.sweep_members():  # in the study's order: the file's values
        points = {v: indexed(resolved_with_defaults(r.config), key)
                  for v, r in by_variant.items() if v in members}
        sweeps.append(SweepChart(label, block, key, points))
    c = study.config
    return Manifest(
        name=study.name, description=c.description, reproduces=c.reproduces, baseline=study.baseline,
        task=task_of(study.runs[0].config).name if study.runs else "classification",
        variants=[n for n, _ in study.variants],
        runs=[PlannedRun(r.key, r.variant, r.seed_index, r.config.seed, r.fold, r.config_hash,
                         dump_config(r.config)) for r in study.runs],
        sweeps=sweeps, search=c.search.model_dump(mode="json") if c.search else None,
        reference=c.reference.model_dump(mode="json") if c.reference else None,
        overrides=[*study.study_overrides, *study.overrides], source=study.source,
        notes={n: text for n in [*(n for n, _ in study.variants), "search-best"]
               if (text := study.note(n))},
        ladder=list(c.ladder or []),
        settings={v: resolved_with_defaults(r.config) for v, r in by_variant.items()},
        report=c.report.model_dump(mode="json"),
    )


def write_manifest(manifest: Manifest, study_dir: Path) -> Path:
    doc = {"format": FORMAT, **{k: v for k, v in manifest.__dict__.items() if k not in ("runs", "sweeps")},
           "runs": [r.__dict__ for r in manifest.runs], "sweeps": [s.__dict__ for s in manifest.sweeps]}
    path = study_dir / MANIFEST
    atomic_write_text(path, json.dumps(doc, indent=1, default=str))
    return path


def has_manifest(study_dir: Path) -> bool:
    return (study_dir / MANIFEST).is_file()


_last_read: dict[Path, tuple[tuple[int, int], Manifest]] = {}  # the last manifest read, by its file's state


def read_manifest(study_dir: Path) -> Manifest:
    """The study's manifest (treat it as read-only: the one read last is kept while its file is
    unchanged, as `study run` reads it to plan and again to print; 31 MB at 10,001 runs)."""
    path = study_dir / MANIFEST
    if not path.is_file():
        raise ReportError(f"{study_dir}: not a study folder (no {MANIFEST}); run `visionstudy study run` "
                          "first, or give a run folder")
    try:
        state = path.stat()
        version = (state.st_mtime_ns, state.st_size)
        if path in _last_read and _last_read[path][0] == version:
            return _last_read[path][1]
        doc = json.loads(path.read_text())
        runs = [PlannedRun(**r) for r in doc.pop("runs")]
        sweeps = [SweepChart(**s) for s in doc.pop("sweeps")]
        doc.pop("format", None)
        manifest = Manifest(**doc, runs=runs, sweeps=sweeps)
        _last_read.clear()
        _last_read[path] = (version, manifest)
        return manifest
    except (OSError, ValueError, TypeError, KeyError) as exc:
        raise ReportError(f"{path}: unreadable study manifest ({exc}); run `visionstudy study run` "
                          "again to rewrite it (finished runs are kept)") from None


def changed_runs(study: Study, study_dir: Path) -> list[RunSpec]:
    """The study's runs that its folder's manifest planned with another config (none when there
    is no manifest, or it cannot be read: the database still knows each run's config hash)."""
    if not has_manifest(study_dir):
        return []
    try:
        before = {r.key: r.config_hash for r in read_manifest(study_dir).runs}
    except ReportError:
        return []
    return [r for r in study.runs if before.get(r.key, r.config_hash) != r.config_hash]


def unplanned_runs(study: Study, study_dir: Path) -> list[str]:
    """Run folders its folder's manifest planned that the study no longer has, finished or not
    (fewer seeds, a variant taken out, cv taken in or out of one). A search's final runs are its
    own to change (moved aside when its best values change)."""
    from visionstudy.store.rundir import RunDir
    from visionstudy.study.spec import FINAL_VARIANT

    if not has_manifest(study_dir):
        return []
    try:
        before = [r.key for r in read_manifest(study_dir).runs]
    except ReportError:
        return []
    now = {r.key for r in study.runs}
    return [k for k in before if k not in now and not k.startswith(f"{FINAL_VARIANT}/")
            and RunDir(study_dir / k).is_run()]


def left_out_runs(study: Study, study_dir: Path) -> list[str]:
    """Finished runs the study no longer plans whose folders stay, out of its results and report
    (but the nested ones, which `study run` moves aside)."""
    from visionstudy.store.rundir import RunDir, nesting

    nests = nesting(r.key for r in study.runs)
    return [k for k in unplanned_runs(study, study_dir)
            if RunDir(study_dir / k).is_finished() and not nests(k)]


def nested_runs(study: Study, study_dir: Path) -> list[str]:
    """Runs the study no longer plans whose folder holds a planned run's or lies in one: a variant
    cross-validated now (`a/seed-0` became `a/seed-0/fold-0`, ...) or no more. Left there, the new
    runs would train inside the old one's folder, or fail in a folder holding the old folds."""
    from visionstudy.store.rundir import nesting

    nests = nesting(r.key for r in study.runs)
    return [k for k in unplanned_runs(study, study_dir) if nests(k)]


def aside_folder(study_dir: Path, key: str, stamp: str) -> Path:
    """Where a nested run no longer planned is kept: `<variant>/previous/<stamp>/seed-0[/fold-1]`
    (a variant's runs are its `seed-N` folders: the report and `study status` read the manifest)."""
    return aside_root(study_dir, key) / stamp / key.split("/", 1)[1]


def aside_root(study_dir: Path, key: str) -> Path:
    """The `previous/` folder of a run's variant: its set-aside folders, one per time stamp."""
    return study_dir / key.split("/", 1)[0] / "previous"


def set_aside_matches(study: Study, study_dir: Path) -> dict[str, str]:
    """Planned runs with no folder of their own whose run was set aside before (`cv` taken in, then
    out again) with the same definition: key → the finished run's folder, relative to the study's
    (the newest such copy). They are moved back, not trained again."""
    from visionstudy.errors import VisionStudyError
    from visionstudy.store.reader import as_asked, read_config
    from visionstudy.store.rundir import RunDir, stamp_order
    from visionstudy.study.spec import config_hash

    found: dict[str, str] = {}
    for run in study.runs:
        kept = aside_root(study_dir, run.key)
        if not kept.is_dir() or RunDir(study_dir / run.key).is_run():
            continue
        copies = kept.glob(f"*/{run.key.split('/', 1)[1]}")
        for copy in sorted(copies, key=lambda c: stamp_order(c.relative_to(kept).parts[0]), reverse=True):
            try:
                config = as_asked(read_config(copy))
            except VisionStudyError:
                continue
            if RunDir(copy).is_finished() and config_hash(config) == run.config_hash:
                found[run.key] = copy.relative_to(study_dir).as_posix()
                break
    return found


def back_line(back: dict[str, str], study_dir: Path, done: bool = False) -> str:
    """What becomes of the runs `set_aside_matches` found: `study run` says it moved them back
    (`done`), the dry run and `study status` that it will."""
    from visionstudy.config import few

    keys = list(back)
    one = len(keys) == 1
    runs = f"1 run ({keys[0]})" if one else f"{len(keys)} runs ({few(keys, 3)})"
    where = f"{study_dir / back[keys[0]]}{'' if one else ', ...'}"
    if done:
        return (f"{runs} back from {where}: set aside before, planned again as "
                f"{'it was' if one else 'they were'}; not trained again")
    them = "it" if one else "them"
    return (f"{runs} set aside before {'matches' if one else 'match'} the plan again: `visionstudy study "
            f"run` moves {them} back ({where}) instead of training {them}")


def replan_lines(study: Study, study_dir: Path, back: dict[str, str] | None = None) -> list[str]:
    """What `study run` would do with the runs of the folder's plan that the study file plans
    otherwise now (the dry run and `study status` say it before the run does); `back`: the
    `set_aside_matches` the caller found already."""
    lines = []
    left_out, nested = left_out_runs(study, study_dir), nested_runs(study, study_dir)
    back = set_aside_matches(study, study_dir) if back is None else back
    if left_out:
        lines.append(left_out_line(left_out, replanned=False))
    if nested:
        lines.append(nested_line(nested, study_dir))
    if back:
        lines.append(back_line(back, study_dir))
    return lines


def nested_line(keys: list[str], study_dir: Path, stamp: str | None = None) -> str:
    """What becomes of the nested runs (`nested_runs`): `study run` says where it moved them
    (`stamp`: the folder's), the dry run and `study status` that it will."""
    from visionstudy.config import few

    one = len(keys) == 1
    runs = f"1 run ({keys[0]}) is" if one else f"{len(keys)} runs ({few(keys, 3)}) are"
    shown = stamp or "<time>"
    first = f"{aside_folder(study_dir, keys[0], shown)}{'' if one else ', ...'}"
    place = f"variant's previous/{shown}/ folder ({first})"
    what = (f"moved {'to its' if one else 'each to its'} {place}" if stamp else
            f"`visionstudy study run` moves {'it to its' if one else 'each to its'} {place}")
    return (f"{runs} planned otherwise now (the study file's cv: the new runs' folders and the old "
            f"would nest): {what}, kept there out of the study's results and report")


def held_line(keys: list[str]) -> str:
    """Runs to set aside that a process is still writing (`store.rundir.set_aside` left them)."""
    from visionstudy.config import few

    return (f"not moved: {few(keys, 3)}, being written by another process (an older `study run` or "
            f"job); stop it and run the study again to set {'it' if len(keys) == 1 else 'them'} aside")


def left_out_line(keys: list[str], replanned: bool) -> str:
    """What becomes of finished runs a study file no longer plans: `study run` (`replanned`) and
    `study status` (the file given against the folder's plan) say it."""
    from visionstudy.config import few

    one = len(keys) == 1
    them, folders = ("it", "its folder stays") if one else ("them", "their folders stay")
    fate = (f"{folders} on disk, out of the study's results and report" if replanned
            else f"`visionstudy study run` leaves {them} out of the study's results and report ({folders})")
    runs = f"1 finished run ({keys[0]}) is" if one else f"{len(keys)} finished runs ({few(keys, 3)}) are"
    return f"{runs} not in the study file any more: {fate}; put {them} back in the file to count {them} again"


def describe_change(study_dir: Path, runs: list[RunSpec]) -> str:
    """'3 runs (a/seed-0, ...; a/seed-0 differs in train.epochs: 1 → 2)': what the manifest has
    for the first of `runs` against its new config."""
    from visionstudy.config import dump_config, few, identity
    from visionstudy.store.rundir import changes

    old = next(r.config for r in read_manifest(study_dir).runs if r.key == runs[0].key)
    fields = changes(identity(old), identity(dump_config(runs[0].config)))
    return (f"{len(runs)} run{'s' * (len(runs) > 1)} ({few([r.key for r in runs], 3)}; "
            f"{runs[0].key} differs in {few(fields, 4)})")
