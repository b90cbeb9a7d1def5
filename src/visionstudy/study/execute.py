"""Run a study: queue its runs in the database, start N worker processes, show overall progress.

Finished runs are never redone or overwritten (their folder's metrics.json is the proof); an
interrupted run resumes from its last.pt; adding a variant runs only the new runs.
"""

from __future__ import annotations

import json
import logging
import multiprocessing as mp
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from visionstudy.validate import validate_run_config
from visionstudy.errors import VisionStudyError
from visionstudy.fsutil import atomic_write_text
from visionstudy.store import Claim, RunStore, default_url
from visionstudy.study.spec import RunSpec, Study
from visionstudy.store.rundir import RunDir

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Placement:
    """Where a study lives: its folder of runs and its database."""

    runs_dir: Path  # the parent folder: runs go to runs_dir/<study>/<variant>/seed-k
    db: str | None = None

    def study_dir(self, study: Study | str) -> Path:
        return self.runs_dir / (study if isinstance(study, str) else study.name)

    def url(self, study: Study | str) -> str:
        return self.db or default_url(self.study_dir(study))


def headline(metrics: dict[str, Any]) -> float:
    """The number a run's trial records: test accuracy, or test MSE for a regression run."""
    return float(metrics["test_mse"] if metrics.get("task") == "regression" else metrics["test_accuracy"])


def finished_runs(study_dir: Path, runs: list[RunSpec]) -> dict[str, float | None]:
    out = {}
    for r in runs:
        rd = RunDir(study_dir / r.key)
        if rd.is_finished():
            try:
                out[r.key] = float(headline(json.loads(rd.metrics.read_text())))
            except (ValueError, KeyError, OSError):
                out[r.key] = None
    return out


def write_definition(study: Study, study_dir: Path) -> None:
    """The study file as run (with --set overrides), for `study status` and the report."""
    doc = {**study.config.model_dump(mode="json", exclude_none=True), "overrides": study.overrides,
           "source": study.source}
    study_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(study_dir / "study.yaml", yaml.safe_dump(doc, sort_keys=False))


# ---------------------------------------------------------------------------------- workers


def heartbeat_loop(store: RunStore, claim: Claim, stop: threading.Event, parent: int) -> None:
    while not stop.wait(min(5.0, store.storage.get_heartbeat_interval() or 5)):
        if parent and os.getppid() != parent:  # the study process died: stop, the run resumes later
            os._exit(3)
        try:
            store.heartbeat(claim.trial_id)
        except Exception as exc:  # noqa: BLE001 - a lost heartbeat must not kill the training
            log.warning("heartbeat failed: %s", exc)


def run_claim(store: RunStore, claim: Claim, cfg_dump: dict[str, Any], study_dir: Path, device: str,
              data_dir: Path | None, parent: int, threads: int) -> None:
    from visionstudy.experiment import run_experiment

    out = study_dir / claim.key
    run = RunDir(out)
    stop = threading.Event()
    beat = threading.Thread(target=heartbeat_loop, args=(store, claim, stop, parent), daemon=True)
    beat.start()
    try:
        if run.is_finished():  # finished before the database knew: never retrain
            metrics = json.loads(run.metrics.read_text())
        else:
            cfg = validate_run_config(cfg_dump, claim.key)
            metrics = run_experiment(cfg, out, device=device, resume=run.has_progress(), quiet=True,
                                     data_dir=data_dir, threads=threads)
        store.complete(claim, headline(metrics), {
            "test_accuracy": metrics.get("test_accuracy"), "test_loss": metrics["test_loss"],
            "train_seconds": metrics["train_seconds"]})
    except VisionStudyError as exc:
        store.fail(claim, str(exc))
        log.error("%s failed: %s", claim.key, exc)
    finally:
        stop.set()


def worker_main(url: str, study_name: str, plan: dict[str, dict[str, Any]], study_dir: str,
                threads: int, device: str, data_dir: str | None, parent: int) -> None:
    """One worker process: claim and train runs until none is waiting."""
    import torch

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s", force=True)
    torch.set_num_threads(threads)
    store = RunStore(url, study_name)
    while (claim := store.claim(set(plan))) is not None:
        run_claim(store, claim, plan[claim.key], Path(study_dir), device,
                  Path(data_dir) if data_dir else None, parent, threads)


# ------------------------------------------------------------------------------------ driver


@dataclass
class Outcome:
    total: int
    done: int
    failed: list[tuple[str, str]]  # (run key, error)
    trained: int  # runs finished by this call (0: there was nothing to do)
    seconds: float


def run_study(study: Study, place: Placement, *, workers: int = 1, device: str = "auto",
              data_dir: Path | None = None, progress: bool = True) -> Outcome:
    """Queue the study's runs and work them off with `workers` processes."""
    start = time.perf_counter()
    study_dir = place.study_dir(study)
    store = RunStore(place.url(study), study.name)
    write_definition(study, study_dir)
    plan = {r.key: r.config_hash for r in study.runs}
    store.sync(plan, finished_runs(study_dir, study.runs))
    counts = store.counts(list(plan))
    done_before = counts["done"]
    if counts["waiting"] + counts["running"] == 0:
        return Outcome(len(plan), counts["done"], failures(store, list(plan)), 0,
                       time.perf_counter() - start)
    dumps = {r.key: r.config.model_dump(mode="json") for r in study.runs}
    threads = max(1, (os.cpu_count() or 1) // max(workers, 1))
    for _ in range(ROUNDS):
        work_off(place, study, dumps, study_dir, threads, workers, device, data_dir, store, list(plan),
                 progress)
        store.fail_dead_local_workers()  # a worker killed mid-run: its run is queued again
        if store.counts(list(plan))["waiting"] == 0:
            break
    counts = store.counts(list(plan))
    return Outcome(len(plan), counts["done"], failures(store, list(plan)), counts["done"] - done_before,
                   time.perf_counter() - start)


ROUNDS = 3  # worker rounds: a run whose worker died after the others had stopped gets another one


def work_off(place: Placement, study: Study, dumps: dict[str, Any], study_dir: Path, threads: int,
             workers: int, device: str, data_dir: Path | None, store: RunStore, keys: list[str],
             progress: bool) -> None:
    """Start `workers` processes and watch them until every one has exited."""
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=worker_main, daemon=False, args=(
        place.url(study), study.name, dumps, str(study_dir), threads, device,
        str(data_dir) if data_dir else None, os.getpid())) for _ in range(max(workers, 1))]
    for p in procs:
        p.start()
    try:
        watch(store, keys, procs, progress)
    except KeyboardInterrupt:
        for p in procs:
            p.terminate()
        raise
    finally:
        for p in procs:
            p.join()


def failures(store: RunStore, keys: list[str]) -> list[tuple[str, str]]:
    from optuna.trial import TrialState

    status = store.status(keys)
    out = []
    for key, trials in store.by_key().items():
        if status.get(key) == "failed":
            last = max(trials, key=lambda t: t.number)
            if last.state == TrialState.FAIL:
                out.append((key, str(last.user_attrs.get("error", "worker stopped"))))
    return out


def watch(store: RunStore, keys: list[str], procs: list[Any], progress: bool) -> None:
    """Overall progress (done / running / left, ETA) until every worker has exited."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    columns = [TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("{task.fields[detail]}"), TimeRemainingColumn()]
    with Progress(*columns, disable=not progress, transient=False) as bar:
        task = bar.add_task("runs", total=len(keys), detail="")
        while any(p.is_alive() for p in procs):
            c = store.counts(keys)
            bar.update(task, completed=c["done"],
                       detail=f"running {c['running']}, left {c['waiting'] + c['new']}, failed {c['failed']}")
            time.sleep(1.0)
        c = store.counts(keys)
        bar.update(task, completed=c["done"], detail=f"running 0, failed {c['failed']}")
