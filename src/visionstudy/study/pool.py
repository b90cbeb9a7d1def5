"""The one worker pool of a study: N processes that train the runs the driver hands them.

The driver (the `study run` process) decides what runs next — a planned run claimed from the run
database, or a search trial asked from Optuna's one sampler — and the pool only trains. So a search
with N workers never samples a configuration twice because of N, and variants and searches share
the same processes, GPU pinning, thread division, failure handling and signal handling:

- each worker gets `cores // N` CPU threads and, on a machine with several GPUs, one GPU (round
  robin, through `CUDA_VISIBLE_DEVICES`);
- a run whose config asks for `train.devices: K > 1` is launched as its own `visionstudy train`
  process, which Lightning Fabric turns into K data-parallel processes;
- any exception in a run is one `failed` event with its message; anything but our own errors also
  writes its traceback to the run's `run.log`;
- workers ignore SIGINT (the driver stops them: no worker tracebacks on Ctrl-C) and exit when the
  driver dies; the driver holds a stop back while it hands out or records a run (`stop_deferred`).
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
import queue
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from visionstudy.errors import VisionStudyError
from visionstudy.stops import raise_lost_stop
from visionstudy.tasks.metrics import metric

if TYPE_CHECKING:
    from visionstudy.config import RunConfig
    from visionstudy.store.rundir import RunDir


@dataclass(frozen=True)
class Job:
    """One run to train: its key in the study, its folder and its config, validated once where the
    study was expanded or its plan read (a worker trains it as it comes: pickling a pydantic model
    keeps it valid)."""

    key: str
    out: str
    config: RunConfig
    trial: dict[str, Any] | None = None  # search trials: {url, study, trial_id, objective, pruner}


@dataclass
class Event:
    kind: str  # "done" | "failed" | "pruned" | "died"
    worker: int
    key: str
    metrics: dict[str, Any] = field(default_factory=dict)
    message: str = ""
    log: str | None = None
    value: float | None = None  # pruned: the best objective value reached


def start_context(fork: bool) -> Any:
    """How workers start. `fork` (the `study run` and `study work` commands, whose process never
    runs a torch op before its workers start): forked from it on Linux. Where it has not imported
    torch (a pull worker: its plan is read without torch), each worker imports torch itself while
    this process opens the database; where it has, on a machine without CUDA, workers share its
    import (spawn re-imports everything per worker: bench/results/study.md). Otherwise (a notebook
    or test process that may have started torch's OpenMP threads — a fork then deadlocks — or
    CUDA): forked from a forkserver that imported them once."""
    linux_alone = sys.platform.startswith("linux") and threading.active_count() == 1
    if fork and linux_alone and "torch" not in sys.modules:
        return mp.get_context("fork")
    import torch

    if fork and linux_alone and not torch.cuda.is_available():
        import visionstudy.experiment  # noqa: F401  (imported once, shared by every fork)

        return mp.get_context("fork")
    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload(["visionstudy.study.pool", "visionstudy.experiment"])
    return ctx


@contextlib.contextmanager
def caller_script_not_rerun(ctx: Any) -> Iterator[None]:
    """A spawned or forkserver child runs the caller's main script again before its target (as
    `__mp_main__`), so a script calling `Study.run` without an `if __name__ == "__main__":` guard
    ran its top-level code (training, reports, deletions) once more in every worker, then failed
    with multiprocessing's bootstrapping RuntimeError. Workers need nothing from that script (their
    target and arguments are ours), so while they start `__main__` names itself as multiprocessing's
    preparation skips (`spawn._fixup_main_from_name` returns for the name `__main__`)."""
    main = sys.modules.get("__main__")
    if ctx.get_start_method() == "fork" or main is None:
        yield
        return
    import importlib.machinery

    had, spec = hasattr(main, "__spec__"), getattr(main, "__spec__", None)
    main.__spec__ = importlib.machinery.ModuleSpec("__main__", None)
    try:
        yield
    finally:
        if had:
            main.__spec__ = spec
        else:
            del main.__spec__


def gpu_count() -> int:
    """GPUs this process may use: torch's count where torch is imported, else (a pull worker that
    forks its workers before importing torch) CUDA_VISIBLE_DEVICES' entries or the NVIDIA
    driver's list of GPUs."""
    if "torch" in sys.modules:
        import torch

        try:
            return int(torch.cuda.device_count())
        except Exception:  # noqa: BLE001 - no usable CUDA
            return 0
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return len([v for v in visible.split(",") if v.strip()])
    try:
        return len(os.listdir("/proc/driver/nvidia/gpus"))
    except OSError:
        return 0


def gpu_for(worker: int) -> str | None:
    """The GPU a worker is pinned to (round robin) when the machine has several, else None."""
    count = gpu_count()
    if count <= 1:
        return None
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    ids = [v for v in visible.split(",") if v.strip()] if visible else [str(i) for i in range(count)]
    return ids[worker % len(ids)]


# ------------------------------------------------------------------------------------ the worker


def watch_parent(parent: int) -> None:
    """Exit when the driver is gone (a forkserver child's parent is the forkserver, so the driver
    is watched by its PID)."""
    from visionstudy.store.db import pid_alive

    while True:
        time.sleep(1.0)
        if not pid_alive(parent):  # the driver died: stop; the run resumes from last.pt later
            os._exit(3)


def worker_main(index: int, inbox: Any, outbox: Any, device: str, data_dir: str | None, threads: int,
                parent: int) -> None:
    """Take jobs from `inbox` until None; put one Event per job in `outbox`."""
    import logging

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group: the driver decides
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # a forked worker inherits the driver's handler, which
    # raised in the middle of `import torch` below when a driver that failed to plan ended its workers
    # (a traceback in the job's log beside the driver's one-line error)
    signal.signal(signal.SIGUSR2, signal.SIG_IGN)  # a scheduler's warning (SLURM signals every process of
    # the job step): the driver stops the workers and queues their runs again
    import torch
    loud = logging.getLogger().getEffectiveLevel() <= logging.WARNING  # the driver's, unless --quiet
    logging.basicConfig(level=logging.ERROR, format="%(levelname)s: %(message)s", force=True)
    if loud:  # what a run's settings cost here (bf16 emulated on this CPU): once a worker
        logging.getLogger("visionstudy.experiment").setLevel(logging.WARNING)
    torch.set_num_threads(threads)
    import visionstudy.experiment  # noqa: F401  (before the first job: the driver may not have)

    threading.Thread(target=watch_parent, args=(parent,), daemon=True).start()
    while (job := inbox.get()) is not None:
        outbox.put(execute(index, job, device, Path(data_dir) if data_dir else None, threads))


def execute(index: int, job: Job, device: str, data_dir: Path | None, threads: int) -> Event:
    """Train one job to its end and say how it ended (never raises)."""
    from visionstudy.store.reader import read_metrics
    from visionstudy.store.rundir import RunDir

    run = RunDir(Path(job.out))
    try:
        if run.is_finished():  # finished before the database knew: never retrain
            return Event("done", index, job.key, read_metrics(run.path))
        cfg = job.config
        from visionstudy.validate import check_shapes

        check_shapes([(f"run {job.key}", cfg)])  # where torch is: a pull worker's driver defers it
        if cfg.train.devices > 1:
            return Event("done", index, job.key, train_data_parallel(job, run, device, data_dir))
        from visionstudy.experiment import run_experiment

        hook = pruning_hook(job.trial, cfg.train.epochs) if job.trial else None
        metrics = run_experiment(cfg, run.path, device=device, resume=run.has_progress(), quiet=True,
                                 data_dir=data_dir, threads=threads, on_epoch_end=hook)
        return Event("done", index, job.key, metrics)
    except Pruned as exc:
        return Event("pruned", index, job.key, message=str(exc), value=exc.value)
    except VisionStudyError as exc:
        return Event("failed", index, job.key, message=str(exc))
    except Exception as exc:  # noqa: BLE001 - a bug or a library error: keep its traceback
        return Event("failed", index, job.key, message=f"{type(exc).__name__}: {exc}",
                     log=write_traceback(run, job.key))


def write_traceback(run: RunDir, key: str) -> str | None:
    text = f"{time.strftime('%Y-%m-%d %H:%M:%S')} {key}\n{traceback.format_exc()}\n"
    try:
        run.path.mkdir(parents=True, exist_ok=True)
        with open(run.log, "a") as f:
            f.write(text)
        return str(run.log)
    except OSError:
        return None


class Pruned(Exception):
    def __init__(self, message: str, value: float | None) -> None:
        super().__init__(message)
        self.value = value


def pruning_hook(trial: dict[str, Any], epochs: int) -> Any:
    """Report each epoch's objective to the search's pruner; stop the run when it says so, before
    its last epoch (`epochs`): a trial that has trained them all is complete, its value kept."""
    import optuna

    from visionstudy.store.db import storage_for
    from visionstudy.study.samplers import make_pruner

    study = optuna.load_study(study_name=trial["study"], storage=storage_for(trial["url"]),
                              pruner=make_pruner(trial["search"], trial["epochs"]))
    handle = optuna.trial.Trial(study, trial["trial_id"])
    objective = trial["search"].objective
    seen: list[float] = []

    def hook(row: dict[str, float]) -> None:
        seen.append(row[objective])
        handle.report(row[objective], int(row["epoch"]))
        if int(row["epoch"]) < epochs and handle.should_prune():
            best = max(seen) if metric(objective).maximize else min(seen)
            raise Pruned(f"pruned after epoch {int(row['epoch'])}", best)

    return hook


def ddp_config_file(run: Path) -> Path:
    """Where a data-parallel run's config waits for its ranks (each reads it as it starts): one file
    per run, not a new temporary name per attempt, so that a killed worker's file (its `finally`
    never ran) is taken over when the run resumes and removed at its end, not left in /tmp."""
    import getpass
    import hashlib

    digest = hashlib.sha256(str(run.resolve()).encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"visionstudy-{getpass.getuser()}-ddp-{digest}.yaml"


def train_data_parallel(job: Job, run: RunDir, device: str, data_dir: Path | None) -> dict[str, Any]:
    """`visionstudy train` as a child process, which Fabric launches as K ranks (the launcher
    re-executes its own command line, so it must be a train command, not the study's)."""
    import yaml

    from visionstudy.config import dump_config
    from visionstudy.errors import TrainingError

    config = ddp_config_file(run.path)
    fd = os.open(config, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)  # a known name in /tmp
    with os.fdopen(fd, "w") as f:
        yaml.safe_dump(dump_config(job.config), f, sort_keys=False)
    cmd = [sys.executable, "-m", "visionstudy", "train", str(config), "--out", str(run.path), "--quiet",
           "--device", device, *(["--resume"] if run.has_progress() else [])]
    if data_dir is not None:
        cmd += ["--data-dir", str(data_dir)]
    from visionstudy.stops import PARENT
    from visionstudy.store.rundir import STUDY_RUN

    try:
        env = {**os.environ, STUDY_RUN: str(run.path.resolve()), PARENT: str(os.getpid())}
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    finally:
        config.unlink(missing_ok=True)
    if proc.returncode != 0 or not run.is_finished():
        lines = [ln for ln in (proc.stderr or proc.stdout).splitlines() if ln.strip()]
        raise TrainingError(f"the data-parallel run exited with {proc.returncode}: "
                            f"{lines[-1] if lines else 'no output'}")
    from visionstudy.store.reader import read_metrics

    return read_metrics(run.path)


# ------------------------------------------------------------------------------------ the pool


class Pool:
    """`workers` processes, each fed one job at a time by the driver."""

    def __init__(self, workers: int, device: str, data_dir: Path | None, fork: bool = False) -> None:
        from visionstudy.validate import thread_budget

        self.ctx = start_context(fork)
        self.size, self.device, self.data_dir = max(workers, 1), device, data_dir
        self.threads = thread_budget(self.size)
        self.outbox = self.ctx.Queue()
        self.procs: list[Any] = [None] * self.size
        self.inboxes: list[Any] = [None] * self.size
        self.jobs: dict[int, Job] = {}  # worker → the job it holds
        for i in range(self.size):
            self.start(i)

    def start(self, i: int) -> None:
        inbox = self.ctx.Queue()
        proc = self.ctx.Process(target=worker_main, daemon=True, args=(
            i, inbox, self.outbox, self.device, str(self.data_dir) if self.data_dir else None,
            self.threads, os.getpid()))
        gpu = gpu_for(i)
        saved = os.environ.get("CUDA_VISIBLE_DEVICES")
        if gpu is not None:
            os.environ["CUDA_VISIBLE_DEVICES"] = gpu  # a spawned child copies the environment
        try:
            with caller_script_not_rerun(self.ctx):
                proc.start()
        finally:
            if gpu is not None:
                if saved is None:
                    os.environ.pop("CUDA_VISIBLE_DEVICES", None)
                else:
                    os.environ["CUDA_VISIBLE_DEVICES"] = saved
        self.procs[i], self.inboxes[i] = proc, inbox

    def pid(self, i: int) -> int:
        return int(self.procs[i].pid)

    def idle(self) -> list[int]:
        """Workers holding no job. One that died between two runs (killed, out of memory) is
        replaced first: the run handed to it would have counted a death it never had."""
        for i in range(self.size):
            if i not in self.jobs and not self.procs[i].is_alive():
                self.start(i)
        return [i for i in range(self.size) if i not in self.jobs]

    def submit(self, i: int, job: Job) -> None:
        self.jobs[i] = job
        self.inboxes[i].put(job)

    def events(self, timeout: float) -> list[Event]:
        """Finished jobs, and jobs whose worker died (that worker is replaced); a stop whose first
        exception was lost is raised here, where every driver loop looks."""
        raise_lost_stop()
        out: list[Event] = []
        with contextlib.suppress(queue.Empty):
            out.append(self.outbox.get(timeout=timeout))
            while True:
                out.append(self.outbox.get_nowait())
        for ev in out:
            self.jobs.pop(ev.worker, None)
        for i, proc in enumerate(self.procs):
            if not proc.is_alive():
                job = self.jobs.pop(i, None)
                if job is not None:
                    out.append(ended(i, job, proc.exitcode))
                self.start(i)
        return out

    def close(self) -> None:
        """Let the workers exit; stop any that do not within a few seconds."""
        for inbox in self.inboxes:
            with contextlib.suppress(Exception):
                inbox.put(None)
        deadline = time.time() + 10.0
        for proc in self.procs:
            proc.join(max(0.0, deadline - time.time()))
        self.stop(grace=2.0)

    def stop(self, grace: float = 5.0) -> None:
        """SIGTERM every live worker, SIGKILL what still runs after `grace` seconds."""
        for proc in self.procs:
            if proc.is_alive():
                proc.terminate()
        deadline = time.time() + grace
        for proc in self.procs:
            proc.join(max(0.0, deadline - time.time()))
        for proc in self.procs:
            if proc.is_alive():
                proc.kill()
                proc.join(2.0)
        self.jobs.clear()
        for q in [*self.inboxes, self.outbox]:  # end their feeder threads: the study's report
            q.close()                            # forks its drawing process only from one thread
            q.join_thread()


def ended(worker: int, job: Job, code: int | None) -> Event:
    """What became of the job of a worker that died: done where the run's results are on disk (it
    died after writing them, its own event lost with it: the run is not retrained or counted a
    death), else died."""
    from visionstudy.store.reader import read_metrics

    try:
        return Event("done", worker, job.key, read_metrics(Path(job.out)))
    except (OSError, ValueError):
        return Event("died", worker, job.key, message=f"its worker process ended ({exit_text(code)})")


def exit_text(code: int | None) -> str:
    if code is not None and code < 0:
        with contextlib.suppress(ValueError):
            return f"killed by {signal.Signals(-code).name}"
    return f"exit code {code}"
