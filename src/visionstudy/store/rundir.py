"""Run folders: their layout, who may write one, and which checkpoint stands for the run.

    runs/<study>/<variant>/seed-<k>[/fold-<f>]/   or the `--out` of `visionstudy train`
      config.yaml  history.csv  metrics.json  predictions.npz  run.log  checkpoints/{last,best}.pt
      analysis/    derived analyses a report cached (t-SNE), recomputed when missing or stale

This module is the one owner of that layout: training writes through `open_run`, and the report,
`predict`, the study pool and `study status` read through `RunDir`. A writer holds an exclusive
lock on the folder (`.lock`, an OS file lock, so a killed writer's lock is free at once); a second
writer is refused with the holder's PID. A folder that holds anything but a run is never written.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from visionstudy.config import few, identity
from visionstudy.errors import TrainingError, VisionStudyError
from visionstudy.fsutil import claim_output, ensure_dir, remove_partials, storage_error

RESULT_FILES = ("config.yaml", "history.csv", "steps.csv", "metrics.json", "predictions.npz", "run.log")
RUN_ENTRIES = {*RESULT_FILES, "checkpoints", "analysis", ".lock"}  # what a run folder may hold
MANIFEST = "manifest.json"  # a study folder's recorded plan (study.manifest writes and reads it)


class RunLockedError(VisionStudyError):
    """Another live process is writing this run folder."""


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
    def steps(self) -> Path:
        """Per-batch records (train.log_every_n_steps)."""
        return self.path / "steps.csv"

    @property
    def metrics(self) -> Path:
        return self.path / "metrics.json"

    @property
    def predictions(self) -> Path:
        return self.path / "predictions.npz"

    @property
    def log(self) -> Path:
        """Tracebacks of unexpected errors (the study pool prints this path)."""
        return self.path / "run.log"

    @property
    def last(self) -> Path:
        return self.path / "checkpoints" / "last.pt"

    @property
    def best(self) -> Path:
        return self.path / "checkpoints" / "best.pt"

    @property
    def lock_file(self) -> Path:
        return self.path / ".lock"

    @property
    def analysis(self) -> Path:
        """Derived analyses cached by reports (t-SNE): recomputable, never results."""
        return self.path / "analysis"

    def cached(self, name: str, key: str,
               compute: Callable[[], dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
        """`compute()` once per (name, key): kept in analysis/<name>.npz beside the predictions it
        derives from. A cache written from other predictions, an unreadable one or a folder that
        cannot be written (read-only media) only means computing again."""
        path = self.analysis / f"{name}.npz"
        stamp = f"{key}|{self.predictions.stat().st_mtime_ns if self.predictions.is_file() else 0}"
        try:
            with np.load(path, allow_pickle=False) as npz:
                if str(npz["key"]) == stamp:
                    return {k: npz[k] for k in npz.files if k != "key"}
        except (OSError, KeyError, ValueError, zipfile.BadZipFile):
            pass
        arrays = compute()
        partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
        try:
            self.analysis.mkdir(exist_ok=True)
            with partial.open("wb") as f:
                np.savez(f, key=np.array(stamp), **arrays)  # type: ignore[arg-type]
            os.replace(partial, path)
        except OSError:
            with contextlib.suppress(OSError):
                partial.unlink(missing_ok=True)
        return arrays

    def is_finished(self) -> bool:
        """metrics.json is written last, atomically: its presence means the run completed."""
        return self.metrics.is_file()

    def has_progress(self) -> bool:
        return self.last.is_file()

    def is_run(self) -> bool:
        """Written by a run: checkpoints, results, or a config with its `resolved` section (a
        user's own `config.yaml` has none)."""
        if (self.path / "checkpoints").is_dir() or self.metrics.is_file():
            return True
        try:
            return self.config.is_file() and any(
                line.startswith("resolved:") for line in self.config.read_text(errors="replace").splitlines())
        except OSError:
            return False

    def checkpoint(self) -> Path | None:
        """The checkpoint that stands for the run: the one its test was run with (metrics.json's
        `tested_checkpoint`: last with `restore_best: false`), else the best on validation, else
        the last."""
        order = [self.best, self.last]
        if self.tested_checkpoint() == "last":
            order.reverse()
        return next((path for path in order if path.is_file()), None)

    def tested_checkpoint(self) -> str | None:
        """'best' or 'last' as recorded by a finished run (None: unfinished or an older run)."""
        import json

        try:
            tested: str | None = json.loads(self.metrics.read_text()).get("tested_checkpoint")
            return tested
        except (OSError, ValueError, AttributeError):
            return None

    def foreign_entries(self) -> list[str]:
        """Entries that no run writes: a folder holding any is not ours to write into."""
        if not self.path.is_dir():
            return []
        def partial(name: str) -> bool:
            return name.startswith(".") and name.endswith(".part")

        out = sorted(e.name for e in self.path.iterdir() if e.name not in RUN_ENTRIES and not partial(e.name))
        if self.config.is_file() and not self.is_run():
            out.insert(0, "config.yaml")  # the user's own file of that name
        return out


# ------------------------------------------------------------------------------------- writing


class RunLock:
    """An exclusive OS lock on a run folder's `.lock` file, with the holder's PID written in it.

    `flock` locks belong to the open file: the kernel drops them when the holder exits, however it
    exits, so a dead holder's lock is simply taken over by the next writer."""

    def __init__(self, run: RunDir) -> None:
        self.run = run
        self.fd: int | None = None

    def acquire(self) -> RunLock:
        path = self.run.lock_file
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        except OSError as exc:
            raise storage_error(path, exc) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise RunLockedError(
                f"{self.run.path} is being written by another process (PID {holder}); wait for it to "
                "finish, stop it, or choose another folder with --out") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self.fd = fd
        return self

    def release(self) -> None:
        if self.fd is not None:
            with contextlib.suppress(OSError):
                os.ftruncate(self.fd, 0)
            os.close(self.fd)  # closing drops the flock
            self.fd = None

    def __enter__(self) -> RunLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def open_run(path: Path, *, resume: bool, force: bool, config: dict[str, Any],
             saved_config: Any = None) -> RunLock:
    """Take a run folder for writing and return its held lock.

    Refused (nothing in the folder changed): a non-empty folder that is not a run, a folder another
    process writes, a finished run without `force`, an unfinished one without `resume` or `force`,
    and resuming with another config. `saved_config(run)` reads the config a run was started with.
    With `force` the old run stays until the new one is about to write (`clear`, by the caller):
    a new run that stops before it trains (its data, its model) leaves the finished one whole."""
    run = RunDir(Path(path))
    foreign = run.foreign_entries()
    if foreign:
        raise TrainingError(
            f"{run.path} is not empty and is not a run folder (it holds {few(foreign)}); nothing was "
            "written there: choose a new or empty folder with --out")
    ensure_dir(run.path)
    lock = RunLock(run).acquire()
    try:
        check_state(run, resume=resume, force=force, config=config, saved_config=saved_config)
    except BaseException:
        lock.release()
        raise
    return lock


def check_state(run: RunDir, *, resume: bool, force: bool, config: dict[str, Any],
                saved_config: Any) -> None:
    for folder in (run.path, run.path / "checkpoints"):
        remove_partials(folder)  # temporary files of a writer killed mid-write
    if force:
        return
    if run.is_finished():
        if resume:  # nothing to continue: it said "pass --force to overwrite it", as to a plain train
            raise TrainingError(
                f"{run.path} holds a finished run: nothing to resume (its results are in "
                f"{run.metrics.name}); to train it again (or longer, with more train.epochs) pass --force, "
                "or train another run with --out")
        raise TrainingError(
            f"{run.path} holds a finished run; pass --force to overwrite it or --out another folder")
    if run.has_progress() and not resume:
        raise TrainingError(
            f"{run.path} holds an unfinished run; pass --resume to continue it or --force to start over")
    if resume and run.has_progress() and saved_config is not None:
        saved = saved_config(run)
        if isinstance(saved, dict) and identity(saved) != identity(config):
            diff = changes(identity(saved), identity(config))
            from visionstudy.errors import CheckpointError

            raise CheckpointError(
                f"{run.last}: the run was started with a different config (differs in: "
                f"{', '.join(diff)}); resume with the same config, or pass --force to start over")


def clear(run: RunDir) -> None:
    """Remove a run's results and checkpoints (the lock stays held)."""
    try:
        for name in RESULT_FILES:
            (run.path / name).unlink(missing_ok=True)
        shutil.rmtree(run.path / "checkpoints", ignore_errors=True)
        shutil.rmtree(run.path / "analysis", ignore_errors=True)
    except OSError as exc:
        raise storage_error(run.path, exc) from None


def move_run(run: RunDir, dest: Path) -> bool:
    """A run's own files (its results, checkpoints and analysis, not the runs nested in its folder)
    moved into `dest`, created; False when there were none (another process moved them first)."""
    own = RUN_ENTRIES - {run.lock_file.name}
    entries = [e for e in run.path.glob("*") if e.name in own] if run.path.is_dir() else []
    if not entries:
        return False
    dest.mkdir(parents=True, exist_ok=True)
    for entry in entries:
        with contextlib.suppress(FileNotFoundError):  # another process moved it first
            shutil.move(entry, dest / entry.name)
    with contextlib.suppress(OSError):  # emptied: gone (a folder that holds nested runs stays)
        run.lock_file.unlink(missing_ok=True)
        run.path.rmdir()
    return True


def nesting(keys: Iterable[str]) -> Callable[[str], bool]:
    """A test of whether a run's folder (by its key in a study, `a/seed-0`) holds the folder of one
    of `keys` or lies in one (`a/seed-0/fold-1`), but is none of them."""
    planned = set(keys)
    parents = {k.rsplit("/", i)[0] for k in planned for i in range(1, k.count("/") + 1)}

    def nests(key: str) -> bool:
        if key in planned:
            return False
        return key in parents or any(key.rsplit("/", i)[0] in planned for i in range(1, key.count("/") + 1))

    return nests


def free_stamp(parents: Iterable[Path]) -> str:
    """The time to the second (`20261207-155012`) as the name of a set-aside folder new under each of
    `parents`, `-2`, `-3`, ... added when one exists: a second set-aside within the same second
    (`cv` taken in, then out, around a run of a second) moved its runs into the first one's folder,
    nested in the run set aside there."""
    import itertools
    import time

    base, folders = time.strftime("%Y%m%d-%H%M%S"), list(parents)
    stamps = itertools.chain([base], (f"{base}-{n}" for n in itertools.count(2)))
    return next(s for s in stamps if not any((parent / s).exists() for parent in folders))


def stamp_order(name: str) -> tuple[str, int]:
    """A `free_stamp` name's place in time: `-10` after `-9` (their names sort the other way)."""
    base, _, n = name.rpartition("-") if name.count("-") > 1 else (name, "", "1")
    return base, int(n) if n.isdigit() else 0


def set_aside(folder: Path, keys: list[str], dest: Callable[[str], Path]) -> tuple[list[str], list[str]]:
    """The runs `keys` in `folder` moved each to `dest(key)` (`move_run`) under its lock; returns
    the keys moved and those held by a process writing them (left in place)."""
    moved, held = [], []
    for key in keys:
        run = RunDir(folder / key)
        try:
            with RunLock(run).acquire():
                if move_run(run, dest(key)):
                    moved.append(key)
        except RunLockedError:
            held.append(key)
    return moved, held


def differences(a: Any, b: Any, prefix: str = "") -> list[str]:
    """Dotted keys where two nested mappings differ."""
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for k in sorted(set(a) | set(b)):
            out += differences(a.get(k), b.get(k), f"{prefix}.{k}" if prefix else str(k))
        return out
    return [] if a == b else [prefix]


def changes(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """What changed between two configs, as errors name it: 'train.epochs: 20 → 6'."""
    from visionstudy.config import indexed, short_repr

    return [f"{k}: {short_repr(indexed(before, k))} → {short_repr(indexed(after, k))}"
            for k in differences(before, after)]


def inside_run(path: Path) -> Path | None:
    """The run folder that `path` lies in (or is), if any: outputs must never write into one."""
    p = Path(path).resolve()
    for folder in (p, *p.parents):
        if RunDir(folder).is_run():
            return folder
    return None


def run_place(path: Path) -> list[str]:
    """A run's name by its place: [study, variant, seed-k(, fold-f)] for a study's run (the study
    folder, holding its manifest, is at most three levels up), else [its folder's name]."""
    p = Path(path).resolve()
    for study in list(p.parents)[:3]:
        if (study / MANIFEST).is_file():
            return [study.name, *p.relative_to(study).parts]
    return [p.name]


STUDY_RUN = "VISIONSTUDY_STUDY_RUN"  # set by a study's worker for the `train` process of a data-parallel run


def study_around(path: Path) -> Path | None:
    """The study folder (the one holding the study's manifest) that `path` lies in, if any, unless
    the study itself trains it there (a data-parallel run is its own `visionstudy train`)."""
    p = Path(path).resolve()
    if os.environ.get(STUDY_RUN) == str(p):
        return None
    return next((folder for folder in p.parents if (folder / MANIFEST).is_file()), None)


def claim_destination(path: Path, flag: str, what: str, *, own: Callable[[Path], bool], force: bool = False,
                      folder: bool = False) -> Path:
    """Where a command writes (`--out`, `--gradcam`, `--log-dir`): never into a run folder, whose
    files are the run's record (even with `force`; `what` names the output: 'exports', 'reports'),
    then `fsutil.claim_output`'s rule (new, empty, the command's own earlier output, or `force`)."""
    from visionstudy.errors import ConfigError

    run = inside_run(path)
    if run is not None:
        raise ConfigError(f"{flag} {path}: inside the run folder {run}; {what} never write into runs. "
                          "Choose a path outside it")
    return claim_output(path, flag, own=own, force=force, folder=folder)
