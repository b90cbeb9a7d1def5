"""Run a study: record its plan, queue its runs in the database, and drive the one worker pool.

The driver (this process) claims planned runs from the database and asks search trials from
Optuna, hands each to an idle worker of `study.pool.Pool`, and records how it ended. The database
and the disk always agree: a run is done only when its folder has metrics.json; a failure is
recorded once with its message; a stopped run goes back to the queue and resumes from last.pt.
"""

from __future__ import annotations

import contextlib
import logging
import shlex
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from visionstudy.config import check_device, few
from visionstudy.errors import ConfigError, StorageError, VisionStudyError
from visionstudy.fsutil import atomic_write_text
from visionstudy.stops import stop_deferred
from visionstudy.store import Claim, RunStore, default_url
from visionstudy.store.db import DB_FILE, GRACE_SECONDS, HEARTBEAT_SECONDS, URL_FILE, record_url, recorded_url
from visionstudy.store.reader import read_metrics, studies_hint
from visionstudy.store.rundir import MANIFEST, RunDir, clear
from visionstudy.study.manifest import (
    aside_folder,
    aside_root,
    back_line,
    changed_runs,
    describe_change,
    from_study,
    has_manifest,
    held_line,
    left_out_line,
    left_out_runs,
    nested_line,
    nested_runs,
    set_aside_matches,
    write_manifest,
)
from visionstudy.study.pool import Event, Job, Pool
from visionstudy.study.spec import FINAL_VARIANT, RunSpec, Study, near_names

log = logging.getLogger(__name__)

HEARTBEAT_EVERY = min(5.0, HEARTBEAT_SECONDS / 2)  # seconds between the driver's heartbeats for its runs
DEATHS_ALLOWED = 2  # a run whose worker process dies this often in one call is marked failed
SETTLE_SECONDS = 3.0  # a pull worker with nothing to claim and nothing held elsewhere looks again this long


@dataclass(frozen=True)
class Placement:
    """Where a study lives: its folder of runs and its database."""

    runs_dir: Path  # the parent folder: runs go to runs_dir/<study>/<variant>/seed-k
    db: str | None = None

    def study_dir(self, study: Study | str) -> Path:
        return self.runs_dir / (study if isinstance(study, str) else study.name)

    def url(self, study: Study | str) -> str:
        """--db, else the server a launcher recorded for the study, else its SQLite file."""
        folder = self.study_dir(study)
        return self.db or recorded_url(folder) or default_url(folder)


def headline(metrics: dict[str, Any]) -> float:
    """The number a run's trial records: its task's headline metric."""
    from visionstudy.tasks import task_of_metrics

    return float(metrics[task_of_metrics(metrics).headline])


def finished_runs(study_dir: Path, runs: list[RunSpec]) -> dict[str, float | None]:
    """Runs whose folder holds results (the disk is the proof of a finished run)."""
    out: dict[str, float | None] = {}
    for r in runs:
        rd = RunDir(study_dir / r.key)
        if rd.is_finished():
            try:
                out[r.key] = float(headline(read_metrics(rd.path)))
            except (ValueError, KeyError, OSError):
                out[r.key] = None
    return out


def results_on_disk(study_dir: Path, keys: list[str]) -> set[str]:
    """Keys whose folder holds metrics.json (existence only: cheap enough for every poll)."""
    return {k for k in keys if RunDir(study_dir / k).is_finished()}


STUDY_FILE = "study.yaml"  # the study as planned, in its folder: what a cluster's workers read
PLAN_DIGEST = ".plan.sha256"  # of the study.yaml and the version that wrote the manifest
INPUT_DIGEST = ".plan.input"  # `Study.input_digest`s the manifest was written for: of the study file
#                                as read, and of its study.yaml (what a cluster's workers read)


def write_definition(study: Study, study_dir: Path) -> None:
    """The study file as run (with --set overrides) and its manifest of planned runs; both are
    left as they are when the same study was planned by the same version (a 10,001-run manifest
    is 31 MB: rewriting it was most of a re-run with nothing to do)."""
    import hashlib

    import visionstudy

    doc = {**study.config.model_dump(mode="json", exclude_none=True), "overrides": study.overrides,
           "source": study.source}
    text = yaml.safe_dump(doc, sort_keys=False)
    runs = "\n".join(f"{r.key} {r.config_hash}" for r in study.runs)  # a search adds its final runs
    digest = hashlib.sha256(f"{visionstudy.__version__}\n{text}\n{runs}".encode()).hexdigest()
    recorded, read_from = study_dir / PLAN_DIGEST, study_dir / INPUT_DIGEST
    if not (has_manifest(study_dir) and recorded.is_file() and recorded.read_text().strip() == digest
            and (study_dir / STUDY_FILE).is_file()):
        read_from.unlink(missing_ok=True)  # it names the manifest about to be replaced
        atomic_write_text(study_dir / STUDY_FILE, text)
        write_manifest(from_study(study), study_dir)
        atomic_write_text(recorded, digest + "\n")
    inputs = [study.input_digest, definition_digest(doc)] if study.input_digest else []
    if inputs and lines(read_from) != inputs:
        atomic_write_text(read_from, "\n".join(inputs) + "\n")


def definition_digest(doc: dict[str, Any]) -> str:
    """The input digest of a study.yaml's contents, as `load_study_dir` computes it."""
    from visionstudy.study.spec import input_digest

    raw = {k: v for k, v in doc.items() if k not in ("overrides", "source")}
    return input_digest(raw, [str(o) for o in doc["overrides"]], str(doc["source"]))


def lines(path: Path) -> list[str]:
    try:
        return path.read_text().split()
    except OSError:
        return []


def load_planned(raw: dict[str, Any], source: str, overrides: list[str], place: Placement) -> Study:
    """A study file's contents as a Study. When this version planned the same contents with the
    same overrides in `place` before (and the study has no search, whose final runs join the plan
    later), its runs come from the manifest, each validated when it is about to train: a re-run of
    a 10,001-run sweep does not expand and validate the sweep again. Else expanded and validated."""
    from visionstudy.study.manifest import read_manifest
    from visionstudy.study.schema import study_config
    from visionstudy.study.spec import base_config, input_digest, split_overrides, study_from

    digest = input_digest(raw, overrides, source)
    contents, run_overrides, own, named = split_overrides(raw, overrides, source)
    cfg = study_config(contents, named)
    study_dir = place.study_dir(cfg.name)
    if cfg.search is None and has_manifest(study_dir) and digest in lines(study_dir / INPUT_DIGEST):
        with contextlib.suppress(VisionStudyError):  # unreadable: expanded again below
            manifest = read_manifest(study_dir)
            runs = [RunSpec(r.key, r.variant, r.seed_index, r.fold, planned=r.config,
                            planned_hash=r.config_hash) for r in manifest.runs]
            return Study(cfg, base_config(cfg, run_overrides), run_overrides,
                         [(v, {}) for v in manifest.variants], runs, source, digest, own)
    return study_from(raw, source, overrides)


def check_study_folder(study_dir: Path) -> None:
    """A study writes its database, plan and runs into its folder (RUNS_DIR/NAME); refused, with
    nothing written, where that folder is a training run's (`visionstudy train` of a config with the
    same name) or holds files and none of a study's."""
    if RunDir(study_dir).is_run():
        raise ConfigError(f"{study_dir} is the folder of a training run (`visionstudy train`), not of a "
                          "study; nothing was written there: give the study another `name:` or --runs-dir")
    try:
        held = sorted(p.name for p in study_dir.iterdir())
    except OSError:  # not there yet (or unreadable: said where it is written)
        return
    if held and not {STUDY_FILE, MANIFEST, DB_FILE, URL_FILE} & set(held):
        raise ConfigError(f"{study_dir} is not empty and is not a study folder (it holds {few(held)}); "
                          "nothing was written there: give the study another `name:` or --runs-dir")


def planned_study_file(study_dir: Path) -> Path:
    """A planned study folder's study.yaml; a ConfigError where the folder holds none (a typo, or
    the study file given instead of its folder)."""
    path = study_dir / STUDY_FILE
    if path.is_file():
        return path
    fix = ("give the folder `visionstudy study run` wrote (RUNS_DIR/NAME; with --launcher it plans the study "
           "there before the workers start)")
    if study_dir.is_file():
        from visionstudy.config import read_yaml

        try:
            name = read_yaml(study_dir).get("name")
        except (ConfigError, AttributeError):
            name = None
        if isinstance(name, str):  # the study file itself: its folder is named in it
            raise ConfigError(f"{study_dir}: a study file, not its planned folder; plan it with "
                              f"`visionstudy study run {shlex.quote(str(study_dir))}` (with --launcher it "
                              "trains in the jobs), "
                              f"then give its folder (runs/{name} unless it ran with --runs-dir)")
    fix = studies_hint(study_dir) or fix  # a runs folder: its studies
    what = "no such folder" if not study_dir.exists() else f"not a planned study folder (no {STUDY_FILE})"
    raise ConfigError(f"{study_dir}: {what}; {fix}")


def load_study_dir(study_dir: Path, db: str | None = None) -> Study:
    """The study a folder was planned from (its study.yaml: the study file as run, with its --set
    overrides), for the workers a cluster job starts there: they train what `study run` planned, each
    run's config as the manifest resolved it (validated when it is about to train, not all again)."""
    from visionstudy.config import read_yaml

    path = planned_study_file(study_dir)
    raw = read_yaml(path)
    overrides = [str(o) for o in raw.pop("overrides", None) or []]
    source = str(raw.pop("source", path))
    return load_planned(raw, source, overrides, Placement(study_dir.parent, db))


def refuse_redefined(study: Study, study_dir: Path) -> list[RunSpec]:
    """The runs the study file redefines against its folder's plan (they train anew); a finished
    one among them is refused, with the fix."""
    changed = changed_runs(study, study_dir)
    finished = results_on_disk(study_dir, [r.key for r in changed])
    done = [r for r in changed if r.key in finished]
    if done:
        raise StorageError(
            f"{study_dir} holds finished runs of another definition: {describe_change(study_dir, done)}"
            "; a finished run keeps its definition, so the study's results stay comparable: undo "
            "the change, or give the changed study another name (--set name=...) or --runs-dir")
    return changed


def plan(study: Study, place: Placement,
         echo: Callable[[str], None] | None = None) -> tuple[RunStore, dict[str, float | None]]:
    """Record the study (its file and manifest) and queue every run not finished in its database;
    returns the store and the runs finished on disk. Safe to repeat, and from several processes."""
    study_dir = place.study_dir(study)
    check_study_folder(study_dir)
    refuse_redefined(study, study_dir)
    store = RunStore(place.url(study), study.name)
    with store.planning():  # one planner moves them (another then finds them gone)
        say = echo or (lambda line: None)
        set_aside_nested(study, study_dir, say)
        bring_back(study, study_dir, say)
    on_disk: dict[str, float | None] = {}

    def read_disk() -> dict[str, float | None]:  # by planning, after the run records (RunStore.sync)
        on_disk.update(finished_runs(study_dir, study.runs))
        return on_disk

    def replace(keys: list[str]) -> None:  # unfinished runs redefined: their old progress goes
        for key in keys:
            if (study_dir / key).is_dir():
                clear(RunDir(study_dir / key))
        keys = [k for k in keys if not k.startswith(f"{FINAL_VARIANT}/")]  # new best values: said where found
        if echo and keys:
            echo(f"{len(keys)} unfinished run{'s' * (len(keys) > 1)} redefined by the study file "
                 f"({few(keys, 3)}): they train anew")

    # refuses a changed definition of a run that finished or is training elsewhere
    store.sync({r.key: r.config_hash for r in study.runs}, read_disk, replace)
    left_out = left_out_runs(study, study_dir)
    if echo and left_out:
        echo(left_out_line(left_out, replanned=True))
    write_definition(study, study_dir)
    if place.db:  # opened: status, report and work on the folder find it without --db
        record_url(study_dir, place.db)
    return store, on_disk


def set_aside_nested(study: Study, study_dir: Path, echo: Callable[[str], None]) -> None:
    """Runs of before whose folders would nest with the new plan's (`nested_runs`) moved into their
    variant's `previous/<time>/` folder, results and checkpoints kept; one held by a process writing
    it stays (said)."""
    from visionstudy.store.rundir import free_stamp, set_aside

    nested = nested_runs(study, study_dir)
    if not nested:
        return
    stamp = free_stamp({aside_root(study_dir, key) for key in nested})
    moved, held = set_aside(study_dir, nested, lambda key: aside_folder(study_dir, key, stamp))
    if moved:
        echo(nested_line(moved, study_dir, stamp))
    if held:
        echo(held_line(held))


def bring_back(study: Study, study_dir: Path, echo: Callable[[str], None]) -> None:
    """Runs set aside before and planned again as they were (`set_aside_matches`: `cv` taken in,
    then out) moved back to their own folders, not trained again; the set-aside folders they
    emptied go, up to their variant's `previous/`."""
    from visionstudy.store.rundir import set_aside

    home = {copy: key for key, copy in set_aside_matches(study, study_dir).items()}
    restored, _ = set_aside(study_dir, list(home), lambda copy: study_dir / home[copy])
    for copy in restored:
        folder, root = (study_dir / copy).parent, aside_root(study_dir, home[copy])
        while folder != root:
            with contextlib.suppress(OSError):
                folder.rmdir()
            folder = folder.parent
    if restored:
        echo(back_line({home[c]: c for c in restored}, study_dir, done=True))


def check_data(runs: list[RunSpec], data_dir: Path | None) -> None:
    """Validate `runs` (a study planned before validates its runs only when they are about to
    train) and load each distinct dataset (and pretrained weights file) once, before any worker
    starts: a missing mirror, an impossible class subset or unreachable weights is one clear error
    (exit 2), not one failure per run; the caches are then warm for the workers."""
    from visionstudy.data.base import as_loaded
    from visionstudy.data.prepare import prepare
    from visionstudy.models import validate_params
    from visionstudy.tasks import task_of

    seen: set[object] = set()
    for run in runs:
        model = run.config.model
        if model.name == "torchvision" and ("weights", model.model_dump_json()) not in seen:
            from visionstudy.models.pretrained import fetch_weights

            seen.add(("weights", model.model_dump_json()))
            fetch_weights(validate_params(model.name, model.params()))  # type: ignore[arg-type]
        data = run.config.data
        task = task_of(run.config)
        if task.model_kind != "image":  # sets: generated, or one small file read with its model's needs
            pair = (data.model_dump_json(), model.model_dump_json())
            if data.path is not None and pair not in seen:
                seen.add(pair)
                try:
                    task.prepare(run.config, data_dir)
                except ConfigError as exc:
                    raise ConfigError(f"run {run.key}: {exc}") from None
            continue
        whole = as_loaded(data)
        if data.folds is not None:  # and its folds: more than a class has images is one error
            whole = whole.model_copy(update={"folds": data.folds, "fold": 0})
        key = whole.model_dump_json()
        if key not in seen:
            seen.add(key)
            prepare(whole, data_dir)


@dataclass
class Outcome:
    total: int
    done: int
    failed: list[tuple[str, str]]  # (run key, error)
    trained: int  # runs finished by this call (0: there was nothing to do)
    seconds: float  # wall time, to the hundredth (its repr in a notebook)
    elsewhere: int = 0  # runs another process is training right now
    # (key, metrics) of each run this call finished; left out of the repr (whole metrics.json files)
    finished: list[tuple[str, dict[str, Any]]] = field(default_factory=list, repr=False)

    def __post_init__(self) -> None:  # also where a search's time is added (dataclasses.replace)
        self.seconds = round(self.seconds, 2)


Echo = Callable[[str], None]


class Driver:
    """Feeds one pool from the run database (planned runs) and Optuna (search trials)."""

    def __init__(self, workers: int, device: str, data_dir: Path | None, progress: bool,
                 echo: Echo | None = None, fork: bool = False, linger: bool = False) -> None:
        self.workers, self.data_dir, self.progress = workers, data_dir, progress
        self.device = check_device(device)
        self.fork = fork  # see `pool.start_context`
        self.linger = linger  # a cluster's pull worker: see `lingers`
        self.idle_since: float | None = None  # a pull worker's: since it found nothing to claim
        self.quiet_since: float | None = None  # ... and no run held elsewhere either
        self.echo = echo or (lambda line: None)
        self.pool: Pool | None = None
        self.beat = 0.0

    def get_pool(self, jobs: int | None = None) -> Pool:
        """The pool, started on first use with `workers` processes, or `jobs` where fewer runs are
        to be trained (`--workers 8` for 2 runs starts 2, which share the cores: each idle one would
        import torch for nothing)."""
        if self.pool is None:
            size = min(self.workers, jobs) if jobs else self.workers
            self.pool = Pool(size, self.device, self.data_dir, self.fork)
        return self.pool

    def close(self) -> None:
        if self.pool is not None:
            self.pool.close()
            self.pool = None

    def stop(self) -> None:
        if self.pool is not None:
            self.pool.stop()
            self.pool = None

    # --------------------------------------------------------------------------- planned runs

    def run_planned(self, study: Study, place: Placement, only: list[str] | None = None) -> Outcome:
        """Train the planned runs not finished yet (of the variants matching `only`, when given)."""
        start = time.perf_counter()
        study_dir = place.study_dir(study)
        if self.linger and self.fork:  # a pull worker: its workers import torch while it plans
            self.get_pool()
        store, on_disk = plan(study, place, self.echo)
        keys = [r.key for r in study.runs if selected(r.variant, only)]
        by_key = {r.key: r for r in study.runs}
        held: dict[int, Claim] = {}
        deaths: Counter[str] = Counter()
        failed: dict[str, str] = {}
        finished: list[tuple[str, dict[str, Any]]] = []
        try:
            now = store.status(keys, on_disk)
            to_train = [by_key[k] for k, s in now.items() if s == "waiting"]
            if to_train:
                check_data(to_train, self.data_dir)  # before any worker starts
                # workers fork before the progress bar starts its thread; a search trains after
                self.get_pool(None if study.config.search else len(to_train))
            open_runs = any(s in ("waiting", "running") for s in now.values())  # none: no 0/N bar
            with progress_bar(self.progress and open_runs, len(keys)) as bar:
                bar(Counter(now.values()))  # a resumed study starts at its finished runs
                while True:
                    if "waiting" in now.values():
                        pool = self.get_pool()
                        for i in pool.idle():
                            with stop_deferred():
                                claim = store.claim(set(keys), pool.pid(i))
                                if claim is None:
                                    break
                                config = by_key[claim.key].config  # validated once, here or at expansion
                                pool.submit(i, Job(claim.key, str(study_dir / claim.key), config))
                                held[i] = claim
                            self.idle_since = self.quiet_since = None
                    if not held:
                        if not self.lingers(store, keys, study_dir):
                            break
                        now = store.status(keys, results_on_disk(study_dir, keys))
                        continue
                    for ev in self.get_pool().events(1.0):
                        with stop_deferred():
                            self.record(store, held[ev.worker], ev, deaths, failed, finished)
                            del held[ev.worker]
                    self.heartbeat(store.heartbeat, [claim.trial_id for claim in held.values()])
                    now = store.status(keys, results_on_disk(study_dir, keys))
                    bar(Counter(now.values()))
        except BaseException:
            self.stop()
            for claim in held.values():  # back to the queue: the next `study run` resumes them
                try:
                    store.requeue(claim)
                except Exception:  # noqa: BLE001 - the database is gone: its stale heartbeat requeues it later
                    break
            raise
        counts = Counter(now.values())  # as of the last look, after the last record
        errors = [(k, failed.get(k) or last_error(store, k)) for k, s in now.items() if s == "failed"]
        return Outcome(len(keys), counts["done"], errors, len(finished), time.perf_counter() - start,
                       counts["running"], finished)

    def lingers(self, store: RunStore, keys: list[str], study_dir: Path) -> bool:
        """With nothing to claim, a pull worker (`linger`) stays while runs are held elsewhere, for
        one grace period: a run whose worker was killed goes back to the queue within it (its
        heartbeat stops) and this worker takes it. With none held it still looks again for
        SETTLE_SECONDS: a run another process is re-queueing reads as failed between its trial's
        end and its copy's queueing (a stopped job's last act); a run whose copy is still missing
        then (that process died in between) is queued here. Without `linger` the call ends at once."""
        if not self.linger:
            return False
        now = time.monotonic()
        self.idle_since = self.idle_since or now
        running = store.counts(keys, results_on_disk(study_dir, keys))["running"]
        self.quiet_since = None if running else self.quiet_since or now
        if self.quiet_since is not None and now - self.quiet_since > SETTLE_SECONDS:
            orphans = store.orphaned_stops(keys)  # its re-queuer died between the two steps
            for trial_id in orphans:
                store.queue_copy(trial_id)  # a copy queued twice is pruned when claimed (duplicate)
            self.idle_since = self.quiet_since = None
            return bool(orphans)  # queued ones are claimed on the next look
        if now - self.idle_since > GRACE_SECONDS + 2 * HEARTBEAT_SECONDS:
            self.idle_since = self.quiet_since = None
            return False
        time.sleep(min(HEARTBEAT_SECONDS, 2.0) if running else 0.5)
        store.reclaim_stale()
        return True

    def record(self, store: RunStore, claim: Claim, ev: Event, deaths: Counter[str],
               failed: dict[str, str], finished: list[tuple[str, dict[str, Any]]]) -> None:
        if ev.kind == "done":
            m = ev.metrics
            store.complete(claim, headline(m), {"test_accuracy": m.get("test_accuracy"),
                                                "test_loss": m.get("test_loss"),
                                                "train_seconds": m.get("train_seconds")})
            finished.append((claim.key, m))
            self.echo(finished_line(claim.key, m))
        elif ev.kind == "died" and deaths[claim.key] + 1 < DEATHS_ALLOWED:
            deaths[claim.key] += 1
            self.echo(f"{claim.key}: {ev.message}; it resumes in another worker")
            store.requeue(claim)
        else:
            message = ev.message + (f" (traceback in {ev.log})" if ev.log else "")
            store.fail(claim, message, ev.log)
            failed[claim.key] = message
            self.echo(f"failed {claim.key}: {message}")

    def heartbeat(self, record: Callable[[int], None], trial_ids: list[int]) -> None:
        """`record` (a storage's heartbeat) for each trial this driver's workers train, every
        HEARTBEAT_EVERY seconds at most."""
        if time.monotonic() - self.beat < HEARTBEAT_EVERY:
            return
        self.beat = time.monotonic()
        for trial_id in trial_ids:
            try:
                record(trial_id)
            except Exception as exc:  # noqa: BLE001 - a lost heartbeat must not stop the study
                from visionstudy.store.db import connection_lost

                why = connection_lost(exc)  # Optuna's own words blame "invalid data in the commit"
                log.warning("heartbeat failed: %s", f"the database does not answer ({why})" if why else exc)


def selected(variant: str, only: list[str] | None) -> bool:
    """Whether `variant` matches one of the `--only` patterns (shell-style: `resnet*`)."""
    import fnmatch

    return only is None or any(fnmatch.fnmatchcase(variant, pattern) for pattern in only)


def chosen(study: Study, only: str | Sequence[str] | None) -> list[str] | None:
    """`--only` (comma-separated text or a list) as patterns over the study's variants and its
    search, or None for all; patterns that match none of them are one error naming the choices."""
    names = [n for n, _ in study.variants] + (["search"] if study.config.search else [])
    if only is not None and not isinstance(only, str) and not (
            isinstance(only, Sequence) and all(isinstance(p, str) for p in only)):
        raise ConfigError(f"only={only!r}: give variant names or patterns, as text ('a,b*') or a list "
                          "of texts")
    patterns = only_patterns(only, names) if isinstance(only, str) else list(only) if only else None
    unmatched = [p for p in patterns or [] if not any(selected(n, [p]) for n in names)]
    if unmatched:  # each one: `--only bn,lr=0.1` trained bn alone, the typo of lr=0.01 unsaid
        close = near_names(unmatched, names)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise ConfigError(f"--only {','.join(unmatched)}: matches no variant; choose from "
                          f"{', '.join(names)}{hint}")
    return patterns or None


def only_patterns(text: str, variants: list[str]) -> list[str]:
    """`--only`'s comma-separated names and patterns, a grid variant's own commas kept: pieces
    that join into a variant name ('lr=0.1,dropout=0.25') are that one name."""
    pieces, out, i = text.split(","), [], 0
    while i < len(pieces):
        j = next((j for j in range(len(pieces), i + 1, -1) if ",".join(pieces[i:j]).strip() in variants),
                 i + 1)
        if ",".join(pieces[i:j]).strip():
            out.append(",".join(pieces[i:j]).strip())
        i = j
    return out


def last_error(store: RunStore, key: str) -> str:
    trials = store.rows("error", key=key)  # lowest number first
    return str(trials[-1].value or "failed") if trials else "failed"


def finished_line(key: str, metrics: dict[str, Any]) -> str:
    from visionstudy.tasks import task_of_metrics
    from visionstudy.tasks.base import seconds_figure

    task = task_of_metrics(metrics)
    value = metrics.get(task.headline)
    shown = f"{value:.4f}" if isinstance(value, int | float) else "?"
    epochs = metrics.get("epochs_run", "?")
    return (f"done {key}: {task.headline_label} {shown} ({epochs} epoch{'s' * (epochs != 1)}, "
            f"{seconds_figure(float(metrics.get('train_seconds') or 0))} s)")


class progress_bar:
    """Overall progress (done / running / left, ETA) while the driver works."""

    def __init__(self, enabled: bool, total: int) -> None:
        self.enabled, self.total = enabled, total

    def __enter__(self) -> Callable[[Counter[str]], None]:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self.bar = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                            TextColumn("{task.fields[detail]}"), TimeRemainingColumn(),
                            disable=not self.enabled, transient=False)
        self.bar.__enter__()
        self.task = self.bar.add_task("runs", total=self.total, detail="")

        def update(c: Counter[str]) -> None:
            self.bar.update(self.task, completed=c["done"],
                            detail=f"running {c['running']}, left {c['waiting'] + c['new']}, "
                                   f"failed {c['failed']}")

        return update

    def __exit__(self, *exc: object) -> None:
        self.bar.__exit__(None, None, None)


def run_study(study: Study, place: Placement, *, workers: int = 1, device: str = "auto",
              data_dir: Path | None = None, progress: bool = True, driver: Driver | None = None) -> Outcome:
    """Queue the study's runs and work them off with `workers` processes."""
    own = driver is None
    driver = driver or Driver(workers, device, data_dir, progress)
    try:
        return driver.run_planned(study, place)
    finally:
        if own:
            driver.close()
