"""Hand a planned study to a cluster engine. The engine only starts identical pull workers
(`visionstudy study work STUDY_DIR`), each of which claims runs from the study's database until
none are left; the plan, the queue and the run-level fault tolerance stay ours.

- SLURM: one job array written as a plain sbatch script (`STUDY_DIR/slurm/job.sh`, resubmittable
  by hand), with `--requeue`, `--signal=USR2@120` and per-job logs appended across requeues, and
  a job that writes the study report once the array has ended (`slurm/report.sh`).
  submitit was tried against the real SLURM and not kept: it reads job states from `sacct`, which
  needs SLURM's accounting daemon (a cluster without it reports every state UNKNOWN), and it
  pickles a callable for the compute nodes, where a CLI command is all a worker needs.
- Ray: the workers as Ray tasks with the job's CPUs and GPUs (a pool, not Ray Tune).

A stopped worker (SIGTERM or SIGUSR2: time limit, preemption, `scancel`) puts its runs back in the
queue. After SIGUSR2 (the time-limit warning) a SLURM job requeues itself, unless the study was
cancelled or its runs finished no epoch in two starts of the job; after SIGTERM SLURM requeues a
preempted job itself and a cancelled one stays cancelled.
A worker killed outright loses its claim after the heartbeat's grace period.
"""

from __future__ import annotations

import dataclasses
import getpass
import json
import logging
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, Literal

from visionstudy.config import check_count
from visionstudy.errors import ConfigError, VisionStudyError
from visionstudy.fsutil import atomic_write_text

Launcher = Literal["local", "slurm", "ray"]
SIGNAL_LEAD = 120  # seconds before the time limit SLURM warns the job (SIGUSR2), to stop cleanly
DB_ENV = "VISIONSTUDY_DB"  # the database URL reaches the workers through the environment, not argv
# how long `--wait` asks again when squeue fails (a busy or restarting controller times out)
SQUEUE_PATIENCE_SECONDS = 300
log = logging.getLogger(__name__)


class LaunchError(VisionStudyError):
    """A cluster engine refused the study's jobs, or cannot be reached."""


SBATCH_PATIENCE_SECONDS = 300  # a submission's wait for sbatch (its own retries included)


class Unanswered(LaunchError):
    """SLURM's controller is down or too busy to answer: asking again later, anywhere, may do."""


@dataclass(frozen=True)
class Jobs:
    """What each cluster job gets and runs."""

    count: int = 1  # jobs (SLURM array tasks, Ray tasks)
    gpus: int = 0  # GPUs per job
    cpus: int | None = None  # CPU cores per job (default: 1 per worker, or the engine's default)
    workers: int = 1  # runs at once inside a job (round-robin over its GPUs)
    partition: str | None = None
    time: str | None = None  # SLURM time limit, HH:MM:SS or D-HH:MM:SS
    slurm: list[str] = field(default_factory=list)  # extra sbatch options, KEY=VALUE or KEY
    address: str | None = None  # Ray: auto, HOST:PORT, or None for a local Ray on this machine

    def __post_init__(self) -> None:  # the CLI's options check theirs; the API's Jobs(...) here
        for what, least in (("count", 1), ("gpus", 0), ("workers", 1)):
            object.__setattr__(self, what, check_count(getattr(self, what), f"Jobs.{what}", least))
        if self.cpus is not None:  # None: the engine's default
            object.__setattr__(self, "cpus", check_count(self.cpus, "Jobs.cpus"))
        if self.time is not None:
            check_time_limit(self.time)
        for item in self.slurm:
            check_sbatch_option(item, self)

    @property
    def cpus_each(self) -> int:
        """CPU cores each job asks for: --cpus-per-job, else one per worker."""
        return self.cpus or self.workers

    def asks(self) -> str:
        """What each job asks its engine for: '8 CPUs and 1 GPU'."""
        cpus, gpus = self.cpus_each, self.gpus
        return f"{cpus} CPU{'s' * (cpus != 1)} and {gpus} GPU{'s' * (gpus != 1)}"


DAYS_LIMIT = re.compile(r"(\d+)-(\d+)(?::(\d+))?(?::(\d+))?")  # D-HH[:MM[:SS]]
CLOCK_LIMIT = re.compile(r"\d+(?::\d+){0,2}")  # M, M:S or H:M:S
UNLIMITED = ("UNLIMITED", "INFINITE")


def slurm_seconds(text: str) -> int | None:
    """A SLURM time limit in seconds (None: no limit), in sbatch's formats: minutes, MM:SS, HH:MM:SS,
    D-HH, D-HH:MM, D-HH:MM:SS; UNLIMITED, INFINITE and 0 mean none. ValueError if it is none of them."""
    text = text.strip()
    if text.upper() in UNLIMITED:
        return None
    if days := DAYS_LIMIT.fullmatch(text):
        d, h, m, sec = (int(g or 0) for g in days.groups())
    elif CLOCK_LIMIT.fullmatch(text):
        parts = [int(p) for p in text.split(":")]  # minutes first, unless there are hours
        d, h, m, sec = 0, *(parts if len(parts) == 3 else [0, *parts, 0][:3])
    else:
        raise ValueError(text)
    return (((d * 24 + h) * 60 + m) * 60 + sec) or None  # 0: no limit


def check_time_limit(text: str) -> None:
    """`--time`: a limit sbatch reads, long enough for a job to train before its warning (SIGUSR2,
    SIGNAL_LEAD seconds before the limit) makes it save its runs and requeue itself: a shorter one
    would requeue at once, again and again, and never train."""
    try:
        seconds = slurm_seconds(text)
    except ValueError:
        raise ConfigError(f"--time {text} (Jobs.time): not a SLURM time limit; give minutes, HH:MM:SS or "
                          "D-HH:MM:SS (12:00:00, 2-00:00:00), or leave it out for the partition's "
                          "default") from None
    if seconds is not None and seconds < 2 * SIGNAL_LEAD:
        raise ConfigError(f"--time {text} (Jobs.time) is {seconds} s: each job is told {SIGNAL_LEAD} s "
                          "before its limit to save its runs and requeue itself, which would leave it less "
                          f"than {SIGNAL_LEAD} s to train; give at least {2 * SIGNAL_LEAD // 60} minutes "
                          f"(00:{2 * SIGNAL_LEAD // 60:02d}:00)")


# sbatch options a launch sets itself: through --slurm, each would undo it or be undone by it
OWN_SBATCH = {
    "time": "--time", "partition": "--partition", "cpus-per-task": "--cpus-per-job",
    **dict.fromkeys(("array", "output", "error", "open-mode", "requeue", "no-requeue", "signal", "ntasks",
                     "wrap"), ""),
}
GPU_SBATCH = ("gres", "gpus", "gpus-per-node", "gpus-per-task")


def check_sbatch_option(item: str, jobs: Jobs) -> None:
    """One `--slurm` item: KEY=VALUE or KEY, and not an option the launch sets itself (the array, its
    logs, the requeue before the limit, or what --time, --partition, --cpus-per-job and
    --gpus-per-job give). GPUs of a type (`gres=gpu:a100:1`) may come from --slurm instead."""
    key, _, _ = item.partition("=")
    key = key.strip()
    if not key or key.startswith("-") or any(c.isspace() for c in item):
        raise ConfigError(f"--slurm {item!r}: give an sbatch option as KEY=VALUE (or KEY for a "
                          "flag) without dashes or spaces, e.g. --slurm account=proj42 --slurm exclusive")
    if key in OWN_SBATCH:
        instead = (f"give it as {OWN_SBATCH[key]}" if OWN_SBATCH[key] else
                   "the launch sets it (the job array of --jobs, its logs in STUDY/slurm/logs, the requeue "
                   f"{SIGNAL_LEAD} s before the time limit); leave it out")
        raise ConfigError(f"--slurm {item} (Jobs.slurm): {instead}")
    if key in GPU_SBATCH and jobs.gpus:
        raise ConfigError(f"--slurm {item} (Jobs.slurm) and --gpus-per-job {jobs.gpus} both ask for GPUs: "
                          "give one of them (--slurm gres=gpu:TYPE:N for GPUs of a type)")


def check_launch(name: str, jobs: Jobs, url: str) -> Launcher:
    """What a launch to the cluster engine `name` (`--launcher`) refuses before anything is written:
    an unknown engine, the other engine's settings, a database the jobs cannot share, a Ray address
    nothing answers on. The engine's name in any case (`SLURM`)."""
    name = name.lower() if isinstance(name, str) else name
    if name not in ("slurm", "ray"):
        raise ConfigError(f"--launcher {name}: choose slurm or ray (or leave it out to train here)")
    launcher: Launcher = name  # type: ignore[assignment]  # checked: one of the literal's values
    check_jobs(launcher, jobs)
    check_database(url, launcher, jobs)
    if launcher == "ray" and jobs.address:
        check_answers(jobs.address)
    return launcher


def fit_jobs(jobs: Jobs, units: int) -> Jobs:
    """`jobs` with no more jobs than there is work for: `units` runs (or search trials) to train,
    `jobs.workers` at once in each job (a ninth GPU job for eight runs would start, find the
    queue empty and leave, having waited for its allocation)."""
    return dataclasses.replace(jobs, count=max(1, min(jobs.count, -(-units // jobs.workers))))


ENGINE_FIELDS = {"SLURM": ("partition", "time", "slurm"), "Ray": ("address",)}  # each one's own Jobs fields


def check_jobs(launcher: Launcher, jobs: Jobs) -> None:
    """A setting of the other engine is refused, not ignored: a partition means nothing to Ray, an
    address nothing to SLURM."""
    for engine, fields in ENGINE_FIELDS.items():
        if engine.lower() == launcher:
            continue
        for name in fields:
            if getattr(jobs, name):
                raise ConfigError(f"--{name} (Jobs.{name}): a {engine} setting, and this is --launcher "
                                  f"{launcher}; leave it out")


def check_database(url: str, launcher: Launcher, jobs: Jobs) -> None:
    """A launcher whose jobs may run on other nodes needs a database server: SQLite's file locks and
    write-ahead log work on one machine only (on a shared file system they corrupt it)."""
    remote = launcher == "slurm" or (launcher == "ray" and jobs.address is not None)
    if remote and url.startswith("sqlite:"):
        where = "SLURM" if launcher == "slurm" else f"the Ray cluster at {jobs.address}"
        raise ConfigError(
            f"--launcher {launcher}: the study database is SQLite ({url.removeprefix('sqlite:///')}), but "
            f"jobs on {where} may run on other nodes, where SQLite corrupts or locks up; give "
            "--db postgresql://user:password@host/database (no server? `visionstudy db start --dir DIR` "
            "starts one and prints its URL)")


def job_command(command: list[str], study_dir: Path, data_dir: Path | None, *options: str) -> list[str]:
    """`visionstudy COMMAND STUDY_DIR OPTIONS [--data-dir DIR]` as a job runs it (absolute paths)."""
    cmd = [sys.executable, "-m", "visionstudy", *command, str(study_dir.resolve()), *options]
    return cmd + (["--data-dir", str(data_dir.resolve())] if data_dir else [])


def work_command(study_dir: Path, workers: int, device: str, data_dir: Path | None) -> list[str]:
    """The pull worker each job runs."""
    return job_command(["study", "work"], study_dir, data_dir, "--workers", str(workers), "--device", device)


def report_command(study_dir: Path, data_dir: Path | None) -> list[str]:
    """The study report's job."""
    return job_command(["report"], study_dir, data_dir)


# ------------------------------------------------------------------------------------------ SLURM


def slurm_dir(study_dir: Path) -> Path:
    return study_dir / "slurm"


def directive_path(path: Path) -> str:
    """A path as an #SBATCH line carries it: in double quotes where it holds a space (sbatch splits
    the line there: "Invalid directive found in batch script"); one with a double quote is refused."""
    text = str(path)
    if '"' in text:
        raise ConfigError(f"{text}: SLURM's job script cannot name a folder with a double quote in its path; "
                          "give --runs-dir a folder without one")
    return f'"{text}"' if any(c.isspace() for c in text) else text


def sbatch_options(name: str, study_dir: Path, jobs: Jobs) -> list[str]:
    logs = directive_path(slurm_dir(study_dir).resolve() / "logs" / "%A_%a.log")
    options = [f"--job-name=vs-{name}", f"--array=0-{jobs.count - 1}", f"--output={logs}",
               "--open-mode=append", "--requeue", f"--signal=USR2@{SIGNAL_LEAD}", "--ntasks=1",
               f"--cpus-per-task={jobs.cpus_each}"]
    if jobs.gpus:
        options.append(f"--gres=gpu:{jobs.gpus}")
    return options + placement_options(jobs)


def placement_options(jobs: Jobs, leave: tuple[str, ...] = ()) -> list[str]:
    """Where and for how long any job of the study runs: its folder, --partition, --time and every
    --slurm option (an account, a QOS, a constraint: what the cluster wants of each job) but those
    named in `leave`."""
    options = []
    if not any(item.partition("=")[0].strip() == "chdir" for item in jobs.slurm):  # --slurm chdir=DIR wins
        options.append(f"--chdir={directive_path(Path.cwd())}")  # where `study run` ran: relative paths hold
    if jobs.partition:
        options.append(f"--partition={jobs.partition}")
    if jobs.time:
        options.append(f"--time={jobs.time}")
    for item in jobs.slurm:  # checked by Jobs
        key, sep, value = item.partition("=")
        if key.strip() not in leave:
            options.append(f"--{key.strip()}={value}" if sep else f"--{key.strip()}")
    return options


def sbatch_script(name: str, study_dir: Path, jobs: Jobs, command: list[str], url: str) -> str:
    """The job array's script: each task runs one pull worker as a job step (`srun`), so that
    `scancel --signal` and the time-limit warning reach it."""
    return job_script(sbatch_options(name, study_dir, jobs), url, [
        "# one pull worker per array task: it claims runs from the study database until none are left",
        "export OMP_NUM_THREADS=${SLURM_CPUS_PER_TASK:-1}",
        'echo "$(date "+%F %T") job ${SLURM_ARRAY_JOB_ID}_${SLURM_ARRAY_TASK_ID} on $(hostname),'
        ' start ${SLURM_RESTART_COUNT:-0}"',
        f"exec srun --ntasks=1 --kill-on-bad-exit=1 {shlex.join(command)}"])


def job_script(options: list[str], url: str, body: list[str]) -> str:
    """An sbatch script: its #SBATCH options, the database URL for the job, then `body`."""
    lines = ["#!/bin/bash", *(f"#SBATCH {o}" for o in options), f"export {DB_ENV}={shlex.quote(url)}", *body]
    return "\n".join(lines) + "\n"


def write_private(path: Path, text: str) -> None:
    """A job script, readable by its owner alone from its first byte: it holds the database URL."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o700)
    with os.fdopen(fd, "w") as f:
        os.fchmod(f.fileno(), 0o700)  # a script written before, with a wider mode
        f.write(text)


def sbatch(script: Path) -> subprocess.CompletedProcess[str] | None:
    """`sbatch --parsable SCRIPT`, or None where it gave no answer in SBATCH_PATIENCE_SECONDS (sbatch
    retries a silent controller for its MessageTimeout, minutes where that is long)."""
    try:
        return subprocess.run([need("sbatch"), "--parsable", str(script.resolve())], capture_output=True,
                              text=True, timeout=SBATCH_PATIENCE_SECONDS)
    except subprocess.TimeoutExpired:
        return None


def record_job(study_dir: Path, done: subprocess.CompletedProcess[str]) -> str:
    """The id sbatch gave, added to the study's jobs.json (`study status` and `cancel` read it)."""
    job_id = done.stdout.strip().split(";")[0]
    atomic_write_text(slurm_dir(study_dir) / "jobs.json", json.dumps([*recorded_jobs(study_dir), job_id]))
    return job_id


REPORT_CPUS = 4  # the report job's CPUs at most: its drawing processes (report.drawing.MAX_WORKERS)
# --slurm options of the array that are not the report job's: its GPUs' memory and cores, and the
# array's own dependency (the report job has one of its own)
REPORT_LEAVES = ("mem-per-gpu", "cpus-per-gpu", "dependency", "kill-on-invalid-dep")


def report_script(name: str, study_dir: Path, jobs: Jobs, after: list[str], command: list[str],
                  url: str) -> str:
    """The study report's job: it starts once every job in `after` has ended, however it ended
    (`afterany`), and writes the report of what they trained."""
    logs = directive_path(slurm_dir(study_dir).resolve() / "logs" / "report.log")
    options = [f"--job-name=vs-{name}-report", f"--dependency=afterany:{':'.join(after)}",
               "--kill-on-invalid-dep=yes", f"--output={logs}", "--open-mode=append", "--ntasks=1",
               f"--cpus-per-task={min(jobs.cpus_each, REPORT_CPUS)}",
               *placement_options(jobs, leave=(*GPU_SBATCH, *REPORT_LEAVES))]
    return job_script(options, url, ["# the study's report, once its jobs have ended",
                                     f"exec {shlex.join(command)}"])


def submit_report(name: str, study_dir: Path, jobs: Jobs, array: str, data_dir: Path | None,
                  url: str) -> str | None:
    """Submit the report's job, to start when the job array `array` and every other job of the study
    still queued or running (an earlier launch's array, its report) have ended: one report at a
    time, of everything trained. Returns its id, or None (with a warning saying how to write the
    report) where sbatch refuses it: the runs train all the same."""
    try:
        live = [j.id.split("_")[0] for j in slurm_jobs(study_dir)]
    except LaunchError:
        live = []
    after = list(dict.fromkeys([array, *live]))
    script = slurm_dir(study_dir) / "report.sh"
    command = report_command(study_dir, data_dir)
    write_private(script, report_script(name, study_dir, jobs, after, command, url))
    done = sbatch(script)
    if done is None or done.returncode != 0:
        said = f"no answer in {SBATCH_PATIENCE_SECONDS} s" if done is None else done.stderr.strip()
        log.warning("the study report's job was not submitted (sbatch: %s); once the jobs have ended, write "
                    "it with `visionstudy report %s`", said, shlex.quote(str(study_dir)))
        return None
    return record_job(study_dir, done)


def need(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        raise LaunchError(f"`{tool}` is not on PATH: run this on a SLURM login node (or load its module)")
    return path


def check_startable(script: str, jobs: Jobs) -> str | None:
    """SLURM's own answer (`sbatch --test-only`, the script on its stdin) to whether a node could
    ever run one of the jobs: a cluster that does not enforce its partitions' limits accepts a
    job that asks for more than any node has (--cpus-per-job 8 on 2-CPU nodes) and leaves it
    pending for ever (reason PartitionConfig). Refused here; returns SLURM's estimate of when the
    first job would start, or None where sbatch is missing or gives none (its other errors are the
    real submission's to say)."""
    sbatch = shutil.which("sbatch")
    if sbatch is None:
        return None
    try:
        done = subprocess.run([sbatch, "--test-only"], input=script, capture_output=True, text=True,
                              timeout=120)
    except (OSError, subprocess.SubprocessError):
        return None
    said = " ".join((done.stderr + done.stdout).split())
    if done.returncode != 0 and "allocation failure:" in said:
        answer = said.split("allocation failure:", 1)[1].strip()
        if unanswered(answer):
            raise Unanswered(f"SLURM's controller did not answer sbatch --test-only ({answer!r}), so "
                              "nothing was submitted; run the command again once `scontrol ping` says UP")
        where = f" in partition {jobs.partition}" if jobs.partition else ""
        where += f", with --slurm {' '.join(jobs.slurm)}" if jobs.slurm else ""
        raise LaunchError(named_refusal(answer, jobs) or (
            f"SLURM would never start the study's jobs: each asks for {jobs.asks()}{where}, and "
            f"sbatch --test-only says {answer!r}; ask for less (--cpus-per-job, --gpus-per-job, "
            "--workers-per-job, --slurm mem=...) or another --partition (`sinfo -o \"%P %c %m %G\"` lists "
            "each partition's CPUs, memory and GPUs per node)"))
    return said.removeprefix("sbatch: ") if done.returncode == 0 and said else None


def max_array_size() -> int | None:
    """The cluster's MaxArraySize (`scontrol show config`; 1001 by default: array ids 0-1000), or None
    where scontrol does not say."""
    try:
        config = subprocess.run([need("scontrol"), "show", "config"], capture_output=True, text=True,
                                timeout=60).stdout
    except (LaunchError, OSError, subprocess.SubprocessError):
        return None
    found = re.search(r"^MaxArraySize\s*=\s*(\d+)", config, re.MULTILINE)
    return int(found.group(1)) if found else None


CONTROLLER_SILENT = ("unable to contact slurm controller", "socket timed out", "zero bytes were transmitted",
                     "connection refused")  # sbatch's words for a controller that is down or too busy


def unanswered(answer: str) -> bool:
    return any(words in answer.lower() for words in CONTROLLER_SILENT)


def named_refusal(answer: str, jobs: Jobs) -> str | None:
    """sbatch's refusals that one option of ours caused, each named with its fix: a job array
    larger than the cluster allows (--jobs), a partition it does not have (--partition); None for
    the others."""
    said = f"sbatch says {answer!r}"
    if "job array" in answer.lower():
        limit = max_array_size()
        most = (f"this cluster's MaxArraySize is {limit}, so a job array holds at most {limit} jobs; give "
                f"--jobs {limit} or fewer" if limit else "give fewer --jobs (the cluster's MaxArraySize, in "
                "`scontrol show config`, caps an array's size)")
        return (f"SLURM refused a job array of {jobs.count} jobs (--jobs {jobs.count}): {said}; {most} (each "
                "job trains runs until none are left, so fewer jobs still train every run)")
    if "invalid partition" in answer.lower() and jobs.partition:
        return (f"--partition {jobs.partition}: {said}; give one of the cluster's partitions (`sinfo -s` "
                "lists them) or leave --partition out for the default one")
    return None


def submit_slurm(name: str, study_dir: Path, jobs: Jobs, command: list[str], url: str) -> str:
    """Write the job script, check that SLURM could start it, submit the array, record its id;
    returns the job id."""
    folder = slurm_dir(study_dir)
    (folder / "logs").mkdir(parents=True, exist_ok=True)
    script = folder / "job.sh"
    text = sbatch_script(name, study_dir, jobs, command, url)
    write_private(script, text)
    check_startable(text, jobs)
    (folder / "cancelled").unlink(missing_ok=True)
    # a timeout after the controller read the request: it may have taken the array even so
    maybe = (f"where `squeue --name vs-{name}` lists jobs it took the array even so (`scancel --name "
             f"vs-{name}` ends them); run the command again once `scontrol ping` says UP")
    done = sbatch(script)
    if done is None:
        raise Unanswered(f"sbatch gave no answer in {SBATCH_PATIENCE_SECONDS} s; {maybe}")
    if done.returncode != 0:
        said = done.stderr.strip() or done.stdout.strip()
        answer = said.rsplit("Batch job submission failed:", 1)[-1].strip()
        if unanswered(answer):
            raise Unanswered(f"SLURM's controller did not answer sbatch ({answer!r}); {maybe}")
        raise LaunchError(named_refusal(answer, jobs) or f"sbatch refused the study's jobs: {said}; check "
                          f"--partition/--time/--slurm, or the script {script}")
    return record_job(study_dir, done)  # `study cancel` may read it now


def yield_to_local_jobs(jobs: Jobs) -> bool:
    """Lowest CPU priority for the rest of this process when this machine is one of the nodes the
    jobs may run on (a workstation or one-node SLURM): the launcher's checks and planning (torch's
    import, the database) then share its cores with the starting jobs, and the jobs should win
    (bench/cluster.py). On a login node, which runs no jobs, it keeps its priority and returns at
    once even when the node is busy (at the lowest priority on a saturated machine it would not)."""
    query = ["sinfo", "-h", "-N", "-o", "%N", *(["-p", jobs.partition] if jobs.partition else [])]
    try:
        nodes = subprocess.run(query, capture_output=True, text=True, timeout=10).stdout.split()
    except (OSError, subprocess.SubprocessError):
        return False
    if socket.gethostname().split(".")[0] not in nodes:
        return False
    try:
        os.nice(19)
    except OSError:  # not permitted here: same priority as before
        return False
    return True


def recorded_jobs(study_dir: Path) -> list[str]:
    path = slurm_dir(study_dir) / "jobs.json"
    try:
        return [str(i) for i in json.loads(path.read_text())]
    except (OSError, ValueError):
        return []


@dataclass(frozen=True)
class JobState:
    id: str  # ARRAY_TASK form, e.g. 1234_5
    state: str  # PENDING, RUNNING, COMPLETING, ...
    reason: str
    elapsed: str
    node: str


# Pending reasons that SLURM does not clear by itself: the job asks for more than its partition, its
# QOS or its account allows one job (group limits, `QOSGrp...`, clear as other jobs end)
NEVER_REASONS = ("PartitionConfig", "PartitionTimeLimit", "BadConstraints", "InvalidQOS", "InvalidAccount")


def stuck(jobs: list[JobState]) -> list[JobState]:
    """The pending jobs whose reason SLURM clears only when the cluster's limits change."""
    return [j for j in jobs if j.state == "PENDING" and (
        j.reason in NEVER_REASONS or (j.reason.startswith(("QOSMax", "AssocMax")) and "PerJob" in j.reason))]


def stuck_note(jobs: list[JobState], study_dir: Path) -> str | None:
    """What to do about the jobs that wait for ever, or None."""
    held = stuck(jobs)
    if not held:
        return None
    reasons = ", ".join(dict.fromkeys(j.reason for j in held))
    where = shlex.quote(str(study_dir))
    return (f"{len(held)} of the study's jobs wait{'s' * (len(held) == 1)} for a reason SLURM does not clear "
            f"until the cluster's limits change ({reasons}: each asks for more than its partition, QOS or "
            f"account allows a job); `visionstudy study cancel {where}`, then run it again asking for less "
            "(--cpus-per-job, --gpus-per-job, --time, --slurm mem=...) or with another --partition")


def slurm_jobs(study_dir: Path) -> list[JobState]:
    """The study's jobs SLURM still knows (`squeue`, one line per array task). Only this user's
    jobs are listed (`-u`): a cluster's whole queue can be tens of thousands of lines, and `-j` with
    job ids SLURM has forgotten is an error."""
    ids = recorded_jobs(study_dir)
    if not ids:
        return []
    try:  # squeue has its own timeouts; a missing config file makes it look for one for a minute
        done = subprocess.run([need("squeue"), "-h", "-r", "-u", getpass.getuser(), "-o", "%i|%T|%r|%M|%N"],
                              capture_output=True, text=True, timeout=120)
    except subprocess.TimeoutExpired:
        raise LaunchError("squeue failed: no answer in 120 s") from None
    if done.returncode != 0:
        lines = done.stderr.strip().splitlines() or [f"exit code {done.returncode}"]
        if unanswered(lines[-1]):
            raise Unanswered(f"squeue failed: SLURM's controller did not answer ({lines[-1]}); run it again "
                             "once `scontrol ping` says UP")
        raise LaunchError(f"squeue failed: {lines[-1]}")
    out = []
    for line in done.stdout.splitlines():
        parts = line.strip().split("|")
        if len(parts) == 5 and parts[0].split("_")[0] in ids:
            out.append(JobState(*parts))
    return out


def cancel_slurm(study_dir: Path) -> tuple[list[str], list[str]]:
    """Cancel the study's jobs still queued or running; their workers put their runs back in the
    queue and do not requeue. Returns the study's job ids and those cancelled."""
    ids = recorded_jobs(study_dir)
    live = sorted({j.id.split("_")[0] for j in slurm_jobs(study_dir)}, key=ids.index) if ids else []
    if live:
        scancel(study_dir, live)
    return ids, live


def scancel(study_dir: Path, ids: list[str]) -> None:
    """Cancel these jobs of the study, marked cancelled first so that their workers do not requeue."""
    (slurm_dir(study_dir) / "cancelled").write_text(time.strftime("%F %T\n"))
    done = subprocess.run([need("scancel"), *ids], capture_output=True, text=True)
    if done.returncode != 0:
        raise LaunchError(f"scancel failed: {done.stderr.strip()}")


def wait_slurm(study_dir: Path, finished: Callable[[], bool] = lambda: False,
               patience: float = SQUEUE_PATIENCE_SECONDS) -> None:
    """Until `finished()` (every run's results on disk: the jobs are then only saying so and
    exiting; checked four times a second) or none of the study's jobs is queued or running
    (`squeue`, every half second at first, then less often: every 10 s after ten minutes, so that
    a long study does not load the controller). A failing squeue (a controller that is busy or
    restarting times out) is asked again for `patience` seconds before the wait gives up. Jobs that
    pend for a reason SLURM does not clear by itself (`stuck`) are warned about, once."""
    start = time.monotonic()
    asked = start
    failing_since: float | None = None
    said: str | None = None  # the warning about jobs that wait for ever, once
    while not finished():
        now = time.monotonic()
        if now >= asked:
            try:
                jobs = slurm_jobs(study_dir)
            except LaunchError as exc:
                if failing_since is None:
                    failing_since = now
                    log.warning("%s; asking again for up to %.0f s", exc, patience)
                elif now - failing_since > patience:
                    follow = f"visionstudy study status {shlex.quote(str(study_dir))}"
                    raise LaunchError(f"{exc} (for {now - failing_since:.0f} s); the jobs go on: follow "
                                      f"them with `{follow}`") from None
                asked = now + 2.0
                continue
            if failing_since is not None:
                log.warning("squeue answers again, after %.0f s", now - failing_since)
                failing_since = None
            if not jobs:
                return
            note = stuck_note(jobs, study_dir)
            if note and note != said:  # once, and again only if it changes
                log.warning(note)
            said = note
            asked = now + min(10.0, 0.5 + (now - start) / 60)
        time.sleep(0.25)


def requeue_this_job(study_dir: Path, signum: int, started: float) -> tuple[bool, str] | None:
    """In a SLURM job stopped by a signal: after SIGUSR2 (the warning before the time limit, or
    `scancel --signal=USR2`) requeue it so it goes on later (`scontrol requeue`), unless the study
    was cancelled, or no run of the study finished an epoch in this start of the job (since
    `started`) nor in the one before (`stalled`). SIGTERM is SLURM's stop for a preemption, which
    requeues the job itself (`--requeue`), and for `scancel`, which must stay cancelled: nothing is
    requeued here. Returns whether the job was requeued and what happened, for its log; None
    outside SLURM."""
    job = os.environ.get("SLURM_JOB_ID")
    if not job or shutil.which("scontrol") is None:
        return None
    if signum != signal.SIGUSR2:
        return False, "SLURM requeues a preempted job itself; a cancelled one stays cancelled"
    if (slurm_dir(study_dir) / "cancelled").exists():
        return False, "the study was cancelled: the job is not requeued"
    stalled(study_dir, job, started)
    done = subprocess.run(["scontrol", "requeue", job], capture_output=True, text=True)
    if done.returncode != 0:
        return False, f"scontrol requeue {job}: {done.stderr.strip() or done.returncode}"
    return True, f"job {job} requeued"


def stalled(study_dir: Path, job: str, started: float) -> None:
    """Raises where neither this start of the job nor the one before saw a run of the study finish an
    epoch (its `last.pt` written): an epoch longer than the job's time limit allows, requeued, would
    start over for ever. One start without (a long plan or data load first) is let go, and noted."""
    note = slurm_dir(study_dir) / "stalled" / job
    if any(path.stat().st_mtime >= started for path in study_dir.rglob("last.pt")):
        note.unlink(missing_ok=True)
        return
    seconds = time.time() - started
    if note.exists():
        note.unlink()
        took = f"{seconds / 60:.0f} min" if seconds >= 120 else f"{seconds:.0f} s"
        raise LaunchError(
            f"no run of the study finished an epoch in this job's last two starts ({took} this time, to "
            "the time limit's warning): an epoch takes longer than --time allows, and a job "
            "requeued would start it over for ever, so this job ends here; run the study again with a "
            f"longer --time (an epoch, the job's start and {SIGNAL_LEAD} s to spare): its runs resume "
            "from their last finished epoch")
    note.parent.mkdir(parents=True, exist_ok=True)
    note.write_text(f"{seconds:.0f} s without a finished epoch\n")


def await_requeue(seconds: float = 120) -> None:
    """After a successful `scontrol requeue` of this job: wait for SLURM to end this instance of it
    (it signals the step at once, SIGTERM then SIGKILL after KillWait), so that the instance ends by
    the requeue alone and not by a race between this process's exit and the requeue."""
    from visionstudy.stops import STOP_SIGNALS

    for s in STOP_SIGNALS:
        signal.signal(s, signal.SIG_DFL)
    time.sleep(seconds)


def log_sizes(study_dir: Path) -> dict[Path, int]:
    """Each job log's size now: what a launch's jobs add to them comes after (Ray's logs are
    appended across launches; SLURM's are one per array task, appended across its requeues)."""
    return {p: p.stat().st_size for folder in ("slurm/logs", "ray")
            for p in (study_dir / folder).glob("*.log")}


def job_errors(study_dir: Path, before: dict[Path, int]) -> list[str]:
    """The error each job's log ended with since `before` (a worker that stopped before it trained:
    data it cannot find, a database it cannot open), each message once with the logs that said it:
    `error: data.path: photos is not a folder (1_0.log, 1_1.log)`."""
    said: dict[str, list[str]] = {}
    for path, size in log_sizes(study_dir).items():
        start = before.get(path, 0)
        with open(path, "rb") as f:
            f.seek(start if start <= size else 0)  # a log cut short since: read it whole
            lines = f.read().decode(errors="replace").splitlines()
        last = next((line.strip() for line in reversed(lines) if line.startswith("error: ")), None)
        if last:
            said.setdefault(last, []).append(path.name)
    return [f"{error} ({', '.join(sorted(names))})" for error, names in said.items()]


# ------------------------------------------------------------------------------------------ Ray


RAY_RETRIES = 3  # a Ray task whose process died (its node lost, killed for memory) starts again, this often


def run_worker(command: list[str], env: dict[str, str], log: str, workdir: str) -> int:
    """One pull worker as a child process of a Ray task (Ray set CUDA_VISIBLE_DEVICES for it), in
    the folder `study run` ran in where this node has it: a study's relative data paths hold. The
    worker ends with the task's process (a task Ray retries must not find its runs still trained)."""
    from visionstudy.stops import PARENT

    with open(log, "a") as f:
        return subprocess.run(command, env={**os.environ, **env, PARENT: str(os.getpid())}, stdout=f,
                              stderr=subprocess.STDOUT,
                              cwd=workdir if os.path.isdir(workdir) else None).returncode


def job_ended(ray: ModuleType, ref: Any, log_file: Path) -> int:
    """A Ray job's exit code. One whose task died more often than Ray starts it again (or raised)
    says so in its log, where the launch's closing lines read the jobs' errors, and counts as failed
    (it raised through the launch: a traceback, and the other jobs stopped)."""
    try:
        return int(ray.get(ref))
    except ray.exceptions.RayError as exc:
        what = f"{type(exc).__name__}: {(str(exc).strip().splitlines() or [''])[0][:200]}"
        if isinstance(exc, ray.exceptions.RayTaskError):  # raised in run_worker itself: not retried
            said = f"error: its Ray task failed ({what})"
        else:
            said = f"error: its Ray task died ({what}), started {RAY_RETRIES + 1} times"
        try:
            with open(log_file, "a") as f:
                f.write(said + "\n")
        except OSError:  # where the launch's closing lines look: said here instead
            log.warning("%s: %s", log_file.stem, said)
        return 1


# HTTP/2's client preface and an empty SETTINGS frame: a gRPC server (Ray's GCS) answers with its own
# SETTINGS frame (byte 3 of the reply: frame type 4) before anything else
HTTP2_HELLO = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + bytes([0, 0, 0, 4, 0, 0, 0, 0, 0])


def check_answers(address: str, seconds: float = 5.0) -> None:
    """A HOST:PORT that is not a Ray cluster's GCS is one error at once: Ray retries its connection
    for minutes, printing a warning every few seconds, whether nothing answers there or another
    server does (the dashboard's port, 8265, given for the GCS's). `auto` and `ray://` are Ray's own."""
    host, _, port = address.rpartition(":")
    if address == "auto" or "://" in address or not host or not port.isdigit():
        return
    fix = "start the cluster's head (`ray start --head` prints its address) or fix the address"
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=seconds) as conn:
            conn.sendall(HTTP2_HELLO)
            reply = conn.recv(64)
    except (TimeoutError, ConnectionResetError, BrokenPipeError):  # silent, or answered and hung up
        reply = b""
    except OSError as exc:
        raise LaunchError(f"--address {address}: nothing answers there ({exc.strerror or exc}); "
                          f"{fix}") from None
    if len(reply) < 4 or reply[3] != 4:
        said = reply.split(b"\n", 1)[0].decode(errors="replace").strip()[:60]
        raise LaunchError(f"--address {address}: a server answers there, but not a Ray cluster's GCS "
                          f"({f'it said {said!r}' if said else 'no gRPC reply'}); give the head's address "
                          "that `ray start --head` prints (port 6379 unless its --port; the dashboard's "
                          "8265 is not it)")


def send_token() -> None:
    """Send Ray's authentication token where this machine has one: `ray start --head` turns token
    authentication on and saves the token in ~/.ray/auth_token, but a client sends it only with
    RAY_AUTH_MODE=token (read as Ray is imported): without it `ray.init` was refused ("InvalidAuthToken")
    by the head it was told to join. A cluster without authentication ignores it."""
    if "RAY_AUTH_MODE" in os.environ:
        return
    saved = Path(os.environ.get("RAY_AUTH_TOKEN_PATH") or Path.home() / ".ray" / "auth_token")
    if os.environ.get("RAY_AUTH_TOKEN") or saved.is_file():
        os.environ["RAY_AUTH_MODE"] = "token"


def local_ray_nodes() -> list[dict[str, float]] | None:
    """The one node a Ray started here would have, as Ray itself counts its CPUs (cgroup limits
    included) and GPUs, without starting it (a dry run); None where this Ray cannot say."""
    try:
        from ray._private import accelerators, utils  # Ray's own detection (ray.init calls these)

        manager = accelerators.get_accelerator_manager_for_resource("GPU")
        gpus = manager.get_current_node_num_accelerators() if manager else 0
        return [{"CPU": float(utils.get_num_cpus()), "GPU": float(gpus)}]
    except Exception:  # noqa: BLE001  (not installed, or another Ray's private layout)
        return None


def check_fits(nodes: list[dict[str, float]], jobs: Jobs) -> None:
    """A job asking for more CPUs or GPUs than any node (each one's Ray resources) has waited for
    ever, without a word (Ray leaves an infeasible task queued for a node that may come): refused
    on a Ray started for the study, which gets no other node; a warning on a cluster, whose
    autoscaler may add one."""
    cpus, gpus = jobs.cpus_each, jobs.gpus
    if any(n.get("CPU", 0) >= cpus and n.get("GPU", 0) >= gpus for n in nodes):
        return
    most = max(nodes, key=lambda n: (n.get("GPU", 0), n.get("CPU", 0)), default={})

    def count(n: float, what: str) -> str:
        return f"{n:g} {what}{'s' * (n != 1)}"

    where = f"the Ray cluster at {jobs.address}" if jobs.address else "this machine's Ray"
    said = (f"each job asks for {jobs.asks()}, and no node of {where} has "
            f"them (the largest: {count(most.get('CPU', 0), 'CPU')}, {count(most.get('GPU', 0), 'GPU')})")
    if not jobs.address:
        raise LaunchError(f"{said}; ask for less (--cpus-per-job, --gpus-per-job, --workers-per-job) or "
                          "give --address of a cluster that has them")
    log.warning("%s: the jobs wait for a node that the cluster's autoscaler may add (Ctrl-C stops them)",
                said)


def run_ray(study_dir: Path, jobs: Jobs, command: list[str], url: str) -> list[int]:
    """The workers as Ray tasks with `jobs`' resources, until all have ended; their exit codes."""
    if jobs.address:
        send_token()
    if not sys.stdout.isatty():  # Ray's own lines ("(raylet) A worker died ...") without colour codes in
        os.environ.setdefault("RAY_COLOR_PREFIX", "0")  # a file; its "[repeated 2x]" notes are green always:
        os.environ.setdefault("RAY_DEDUP_LOGS", "0")  # each line (read as Ray is imported)
    try:
        import ray
    except ImportError:
        raise LaunchError("--launcher ray needs Ray: pip install 'visionstudy[cluster]'") from None
    logs = study_dir.resolve() / "ray"
    logs.mkdir(parents=True, exist_ok=True)
    on_term = signal.getsignal(signal.SIGTERM)
    try:
        if jobs.address:
            ray.init(address=jobs.address, log_to_driver=False, logging_level=logging.WARNING)  # not its INFO
        else:  # ours: its start-up notes (token auth, "Started a local Ray instance") are no user's concern;
            # "local", or Ray joins a cluster started on this machine (`ray start`), whose nodes may not
            # see the study's SQLite database
            ray.init(address="local", include_dashboard=False, log_to_driver=False,
                     logging_level=logging.ERROR)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise LaunchError(f"--address {jobs.address}: cannot reach the Ray cluster "
                          f"({str(exc).splitlines()[0][:200]}); start it (`ray start --head`) or fix "
                          "the address (a head with token authentication, `ray start`'s default, wants "
                          "its token here: its ~/.ray/auth_token, or $RAY_AUTH_TOKEN)") from None
    if callable(on_term):  # Ray's own handler dumped a stack and killed the process
        signal.signal(signal.SIGTERM, on_term)
    try:
        check_fits([n["Resources"] for n in ray.nodes() if n.get("Alive")], jobs)  # type: ignore[no-untyped-call]
        task = ray.remote(run_worker).options(num_cpus=jobs.cpus_each, num_gpus=jobs.gpus,
                                               max_retries=RAY_RETRIES)
        env = {DB_ENV: url, "OMP_NUM_THREADS": str(jobs.cpus_each)}
        refs = [task.remote(command, env, str(logs / f"job-{i}.log"), os.getcwd()) for i in range(jobs.count)]
        return [job_ended(ray, ref, logs / f"job-{i}.log") for i, ref in enumerate(refs)]
    finally:
        ray.shutdown()
