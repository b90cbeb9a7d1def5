"""A study on a real one-node SLURM and a real local Ray: pull workers, signals, requeues,
preemption, a killed job, and the PostgreSQL server `visionstudy db start` runs.

Every test here is marked `cluster` and grouped on one pytest-xdist worker (they share one SLURM):
`pytest -m "not cluster"` leaves them out locally; CI runs them.
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

import pytest
import yaml

from tests.helpers import (
    ROOT,
    assert_user_error,
    free_ports,
    one_node_slurm,
    patient,
    processes_with,
    slurm_missing,
    trials_by_run,
    vs,
    vs_here,
)

pytestmark = [pytest.mark.cluster, pytest.mark.xdist_group("cluster")]

MODEL = {"name": "cnn", "channels": [4, 8], "hidden": [16]}
VARIANTS = {"a": {}, "b": {"model": {"batch_norm": True}}, "c": {"model": {"dropout": 0.2}}}
LONG = 60  # epochs of a run a test stops mid-way: at 24 (4 s of training) a loaded machine's test
#            process polled too late and found the run finished (beside two CPU hogs)
# The killed-job test kills the job whose run is ahead, so that the other stays busy for nearly a
# whole run after the kill (a job with nothing left to claim waits one grace period for runs held
# elsewhere, then ends). Once (CI, 2026-12-05) a job whose run had started seconds before its
# partner's had ended it and gone when the partner was killed. Twice LONG: a job may start up to
# one run's time after the other.
KILLED_RUN = 2 * LONG


def needs(reason: str | None) -> None:
    if reason is None:
        return
    if os.environ.get("CI"):
        pytest.fail(reason)
    pytest.skip(reason)


@pytest.fixture(scope="module")
def workdir():
    """A folder SLURM's daemons and the postgres user can traverse (pytest's are root-only)."""
    folder = Path(tempfile.mkdtemp(prefix="visionstudy-cluster-"))
    os.chmod(folder, 0o755)
    yield folder
    subprocess.run(["rm", "-rf", str(folder)], check=False)


@pytest.fixture(scope="module")
def slurm(workdir):
    needs(slurm_missing())
    with one_node_slurm(workdir / "slurm") as env:
        yield env


@pytest.fixture(scope="module")
def pg(workdir):
    """A PostgreSQL server started and stopped through the product's own `db start` / `db stop`."""
    import glob

    needs(None if glob.glob("/usr/lib/postgresql/*/bin/initdb") else
          "PostgreSQL is not installed: scripts/setup.sh --dev installs Debian's postgresql")
    folder = workdir / "pg"
    started = vs("db", "start", "--dir", folder)
    assert started.returncode == 0, started.stderr
    url = started.stdout.strip()
    assert url.startswith("postgresql://visionstudy:") and url == (folder / "url").read_text().strip()
    yield url
    stopped = vs("db", "stop", "--dir", folder)
    assert stopped.returncode == 0 and "stopped" in stopped.stdout, stopped.stderr


def study_file(folder: Path, name: str, epochs: int = 2, variants: dict | None = None, seeds: int = 2,
               batch_size: int = 64) -> Path:
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump({
        "name": name, "data": {"dataset": "digits"}, "model": MODEL,
        "train": {"epochs": epochs, "batch_size": batch_size}, "seeds": seeds,
        "variants": variants or VARIANTS}, sort_keys=False))
    return path


def squeue(env: dict[str, str], job: str) -> list[tuple[str, str]]:
    out = subprocess.run(["squeue", "-h", "-r", "-o", "%i %T"], env={**os.environ, **env},
                         capture_output=True, text=True).stdout
    return [tuple(line.split()) for line in out.splitlines() if line.split()[0].split("_")[0] == job]


def wait_for(condition, seconds: float, what: str, every: float = 0.2):
    seconds = patient(seconds)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {seconds:.0f} s waiting for {what}")


def release_pending(env: dict[str, str], job: str) -> bool:
    """A requeued job waits two minutes (SLURM sets its begin time); start it in two seconds. Not at
    once: slurmd revokes the old instance's credential at the requeue, with a one-second clock, and
    kills a new instance whose credential has the same second ("Job credential revoked"): the job
    then ends instead of running."""
    from datetime import datetime

    out = subprocess.run(["squeue", "-h", "-r", "-o", "%i %T %S"], env={**os.environ, **env},
                         capture_output=True, text=True).stdout
    pending = [line.split() for line in out.splitlines() if line.split()[0].split("_")[0] == job
               and line.split()[1] == "PENDING"]
    for i, _, begin in pending:
        try:
            waits = (datetime.fromisoformat(begin) - datetime.now()).total_seconds()
        except ValueError:  # N/A: no begin time set
            continue
        if waits > 10:  # SLURM's two minutes, not the two seconds set here already
            subprocess.run(["scontrol", "update", f"JobId={i}", "StartTime=now+2"], env={**os.environ, **env},
                           capture_output=True)
    return bool(pending)


def wait_done(env: dict[str, str], job: str, seconds: float = 240) -> None:
    def gone() -> bool:
        release_pending(env, job)
        return not squeue(env, job)

    wait_for(gone, seconds, f"SLURM job {job} to end", every=0.5)


def slurm_story(slurm: dict[str, str], job: str, study_dir: Path) -> str:
    """What SLURM and the job said, for a failure's message: the queue, the job's log and the
    daemons' lines about the job (a failure on a loaded CI machine must explain itself)."""
    queue = subprocess.run(["squeue", "-h", "-r", "-o", "%i %T %r %S"], env={**os.environ, **slurm},
                           capture_output=True, text=True).stdout
    logs = "".join(p.read_text() for p in (study_dir / "slurm" / "logs").glob("*.log"))
    folder = Path(slurm["SLURM_CONF"]).parent
    daemons = [f"{name}: {line}" for name in ("slurmctld.log", "slurmd.log") if (folder / name).is_file()
               for line in (folder / name).read_text().splitlines()
               if job in line or "requeue" in line.lower() or "error" in line.lower()][-40:]
    return f"squeue:\n{queue}\njob log:\n{logs}\ndaemons:\n" + "\n".join(daemons)


def array_task(pid: int) -> str | None:
    """The SLURM array task (JOB_TASK) process `pid` runs in, from its environment; None outside one."""
    try:
        env = dict(item.split(b"=", 1) for item in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
                   if b"=" in item)
        return f"{env[b'SLURM_ARRAY_JOB_ID'].decode()}_{env[b'SLURM_ARRAY_TASK_ID'].decode()}"
    except (OSError, KeyError):
        return None


def kill_job_processes(job: str) -> list[int]:
    """SIGKILL every visionstudy process of array task `job`, as the OOM killer or a node failure
    would: no signal handler runs. `scancel --signal=KILL` would not do: SLURM treats it as a
    cancellation and sends SIGTERM first."""
    killed = []
    for proc in Path("/proc").iterdir():
        try:
            if not proc.name.isdigit() or b"visionstudy" not in (proc / "cmdline").read_bytes():
                continue
            if array_task(int(proc.name)) == job:
                os.kill(int(proc.name), 9)
                killed.append(int(proc.name))
        except OSError:
            pass
    return killed


def trial_story(url: str, name: str) -> str:
    """Each run's trials in the queue: number, state and who held it, for a failure's message."""
    from visionstudy.store import RunStore

    return "; ".join(f"{key}: " + ", ".join(f"#{t.number} {t.state.name} {t.user_attrs.get('worker')}"
                                            for t in trials)
                     for key, trials in trials_by_run(RunStore(url, name)).items())


def holder(url: str, name: str, key: str) -> str | None:
    """The SLURM array task (JOB_TASK) whose process trains run `key` now: the process its running
    trial names."""
    from optuna.trial import TrialState

    from visionstudy.store import RunStore

    running = [t for t in trials_by_run(RunStore(url, name)).get(key, []) if t.state == TrialState.RUNNING]
    return array_task(int(running[-1].user_attrs["worker"]["pid"])) if running else None


def history_rows(run: Path) -> list[int]:
    path = run / "history.csv"
    if not path.is_file():
        return []
    with open(path) as f:
        return [int(row["epoch"]) for row in csv.DictReader(f)]


def check_once(url: str, name: str, study_dir: Path, epochs: dict[str, int]) -> None:
    """Every planned run has its results and one completed trial, and its history runs 1..epochs
    without a gap or a repeat (a resumed run continued where it stopped)."""
    from optuna.trial import TrialState

    from visionstudy.store import RunStore

    groups = trials_by_run(RunStore(url, name))
    assert sorted(groups) == sorted(epochs)
    for key, n in epochs.items():
        assert (study_dir / key / "metrics.json").is_file(), key
        complete = [t for t in groups[key] if t.state == TrialState.COMPLETE]
        assert len(complete) == 1, (key, [t.state for t in groups[key]])
        assert history_rows(study_dir / key) == list(range(1, n + 1)), key


LAUNCHERS: list[subprocess.Popen] = []


def launch(study: Path, runs: Path, url: str, env: dict[str, str], *extra: object) -> str:
    """Start `study run --launcher slurm` and return the job id as soon as the array is submitted
    (its jobs.json): the launcher still checks and plans while the jobs start, and on a loaded
    machine that took 10 s, by when a 60-epoch run had finished and a test that acts mid-run came
    too late (CI, stop 34). Its exit is checked after the test (`launchers_succeed`). Without the
    report's job (`--no-report`): the tests that use it are about the array."""
    jobs_file = runs / yaml.safe_load(study.read_text())["name"] / "slurm" / "jobs.json"
    proc = subprocess.Popen(
        [sys.executable, "-m", "visionstudy", "study", "run", str(study), "--runs-dir", str(runs),
         "--db", url, "--launcher", "slurm", "--quiet", "--no-report", *map(str, extra)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, **env}, cwd=ROOT,
        stdin=subprocess.DEVNULL)
    LAUNCHERS.append(proc)

    def submitted() -> str | None:
        try:
            return str(json.loads(jobs_file.read_text())[-1])
        except (OSError, ValueError, IndexError):
            if proc.poll() is not None:
                output = "".join(proc.communicate())
                raise AssertionError(f"the launcher ended before submitting: {output}") from None
            return None

    return wait_for(submitted, 120, "the job array's submission")


@pytest.fixture(autouse=True)
def launchers_succeed():
    """Every launcher a test started printed its job array and exited 0."""
    yield
    while LAUNCHERS:
        proc = LAUNCHERS.pop()
        out, err = proc.communicate(timeout=patient(300))
        assert proc.returncode == 0 and "submitted job array " in out, err + out


# ------------------------------------------------------------------------------------------- tests


def test_the_cluster_tests_share_one_worker_and_one_slurm(request):
    """pytest 9.2 keeps a node's id where pytest-xdist 3.8's `loadgroup` cannot suffix it: the group
    was silently ignored, each worker started its own SLURM beside the other's jobs, and tests that
    act in the middle of a run found it finished (CI, stop 34). The dev extra pins pytest below 9.2."""
    if request.config.getoption("loadgroup", False):  # set on xdist's workers under --dist loadgroup
        assert request.node.nodeid.endswith("@cluster"), (
            f"pytest {pytest.__version__} with this pytest-xdist ignores xdist_group: the cluster tests "
            "run on two workers at once. Install the dev extra's pytest: pip install -e '.[dev]'")


def test_db_start_serves_the_study_database_and_stop_ends_it(pg, workdir):
    import sqlalchemy as sa

    from visionstudy.store.db import normalize_url
    from visionstudy.store.server import Server, is_running

    engine = sa.create_engine(normalize_url(pg))
    with engine.connect() as con:
        assert con.execute(sa.text("select current_user")).scalar() == "visionstudy"
    engine.dispose()
    again = vs("db", "start", "--dir", workdir / "pg")  # already running: the same URL, nothing new
    assert again.returncode == 0 and again.stdout.strip() == pg
    assert is_running(Server(workdir / "pg"))
    missing = vs("db", "stop", "--dir", workdir / "nothing-here")
    assert missing.returncode == 2 and "no database server here" in missing.stderr
    (workdir / "notes.txt").write_text("mine")
    file = vs_here("db", "start", "--dir", workdir / "notes.txt")
    assert_user_error(file, "notes.txt: a file, not a folder")
    assert (workdir / "notes.txt").read_text() == "mine"


def test_status_and_a_dry_run_create_nothing_in_an_empty_database(pg, workdir, tmp_path):
    """`study status` and `study run --dry-run` with a new, empty database opened an Optuna storage
    there, which creates Optuna's tables: a dry run wrote to the user's database."""
    import sqlalchemy as sa

    from visionstudy.store.db import normalize_url

    admin = sa.create_engine(normalize_url(pg), isolation_level="AUTOCOMMIT")
    with admin.connect() as con:
        con.execute(sa.text("drop database if exists empty_one"))
        con.execute(sa.text("create database empty_one"))
    admin.dispose()
    empty = pg.rsplit("/", 1)[0] + "/empty_one"
    study = study_file(tmp_path, "untouched", epochs=1, seeds=1)
    search = {"trials": 2, "space": {"train.optimizer.lr": [0.01, 0.1]}}
    study.write_text(study.read_text() + yaml.safe_dump({"search": search}))
    runs = ["--runs-dir", tmp_path / "runs", "--db", empty]
    dry = vs_here("study", "run", study, *runs, "--launcher", "slurm", "--dry-run")
    assert dry.returncode == 0 and "then its 2-trial search" in dry.stdout, dry.stdout + dry.stderr
    assert vs_here("study", "status", study, *runs).returncode == 0
    engine = sa.create_engine(normalize_url(empty))
    assert sa.inspect(engine).get_table_names() == []
    engine.dispose()


def test_db_start_keeps_its_url_and_never_takes_another_programs_port(pg, workdir):
    """Restarted, the server had a new port (the URL studies recorded went dead); a port another
    program held was taken: the server listened on IPv6 alone and clients of the URL hung."""
    import socket
    from urllib.parse import urlsplit

    port = urlsplit(pg).port
    moved = vs("db", "start", "--dir", workdir / "pg", "--port", port + 1)
    assert_user_error(moved, f"--port {port + 1}: the server in", f"runs already, on port {port}", "db stop")
    assert vs("db", "stop", "--dir", workdir / "pg").returncode == 0
    try:
        with socket.socket() as holder:  # another program on the server's port while it is stopped
            holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # the server's closed connections
            holder.bind(("0.0.0.0", port))
            holder.listen()
            taken = vs("db", "start", "--dir", workdir / "pg")
            assert_user_error(taken, f"port {port} of this server's URL", "taken by another program",
                              "--port N")
            other = vs("db", "start", "--dir", workdir / "pg-other", "--port", port)
            assert_user_error(other, f"--port {port}: another program listens on it")
    finally:
        again = vs("db", "start", "--dir", workdir / "pg")  # restarted: the same URL, the studies' one
    assert again.returncode == 0 and again.stdout.strip() == pg, again.stderr


def test_a_database_that_goes_away_mid_study_stops_it_cleanly_and_the_study_resumes(pg, workdir):
    """The study's PostgreSQL stopped while runs trained: every process ended in a 300-line
    traceback (Optuna's 'invalid data in the commit'). Now: one line naming the database, exit 2,
    once it stayed away longer than VISIONSTUDY_DB_PATIENCE_SECONDS, and when the server is back the
    same command finishes each run once, from its last.pt; a restart within the patience (a
    second outage, below) is waited out and the study goes on."""
    # batches of 16: epochs of ~0.2 s, so that the runs are still training when the outage is met
    # (at 64, a fast machine trained both runs' 60 epochs while `db stop` ran: nothing left to resume)
    study = study_file(workdir, "outage", epochs=LONG, variants={"a": {}}, seeds=2, batch_size=16)
    runs = workdir / "outage-runs"
    cmd = [sys.executable, "-m", "visionstudy", "study", "run", str(study), "--db", pg,
           "--runs-dir", str(runs), "--workers", "2", "--quiet", "--no-report"]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "VISIONSTUDY_DB_PATIENCE_SECONDS": "1",
                                 "VISIONSTUDY_HEARTBEAT_SECONDS": "1"})  # the outage met mid-run
    try:
        wait_for(lambda: proc.poll() is not None or list(runs.glob("outage/a/seed-*/checkpoints/last.pt")),
                 120, "a run's first epoch")
        assert proc.poll() is None, proc.communicate()
        assert vs("db", "stop", "--dir", workdir / "pg").returncode == 0
        out, err = proc.communicate(timeout=patient(120))
    finally:
        proc.kill()
        restarted = vs("db", "start", "--dir", workdir / "pg")  # the same URL: the other tests go on
    assert restarted.returncode == 0 and restarted.stdout.strip() == pg, restarted.stderr
    said = " ".join(err.split())
    assert proc.returncode == 2, out + err
    assert "Traceback" not in err and "invalid data in the commit" not in err
    assert "the study database postgresql://visionstudy:***@" in said and "failed mid-study" in said
    assert "when the database is back, run the study again" in said
    before = {k: len(history_rows(runs / "outage" / "a" / k)) for k in ("seed-0", "seed-1")}
    loud = [c for c in cmd if c != "--quiet"]  # its warnings shown
    again = subprocess.Popen(loud, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={
        **os.environ, "VISIONSTUDY_DB_PATIENCE_SECONDS": "120", "VISIONSTUDY_HEARTBEAT_SECONDS": "1"})
    try:  # the server restarted while the runs train: the driver's heartbeats meet it stopped
        wait_for(lambda: again.poll() is not None or any(
            len(history_rows(runs / "outage" / "a" / k)) >= n + 2 for k, n in before.items()), 120,
            "the resumed runs to train")
        assert again.poll() is None, again.communicate()
        assert vs("db", "stop", "--dir", workdir / "pg").returncode == 0
        time.sleep(3)
    finally:
        restarted = vs("db", "start", "--dir", workdir / "pg")
    assert restarted.returncode == 0, restarted.stderr
    out, err = again.communicate(timeout=patient(600))
    assert again.returncode == 0, out + err
    assert "the database does not answer" in err and "the database answers again" in err, out + err
    check_once(pg, "outage", runs / "outage", {"a/seed-0": LONG, "a/seed-1": LONG})


def test_the_launcher_yields_its_cpu_only_on_a_node_that_runs_the_jobs(slurm):
    """After submitting, the launcher lowers its priority where its jobs may run (here: the one-node
    SLURM's node), and keeps it on a machine that is no node of the cluster (a login node)."""
    probe = ("import os; from visionstudy.study.launch import Jobs, yield_to_local_jobs; "
             "before = os.nice(0); print(yield_to_local_jobs(Jobs()), os.nice(0) - before, os.nice(0))")
    env = {k: v for k, v in os.environ.items() if k != "SLURM_CONF"}
    on_node = subprocess.run([sys.executable, "-c", probe], env={**env, **slurm}, capture_output=True,
                             text=True, timeout=patient(60))
    yielded, _, niceness = on_node.stdout.split()
    assert (yielded, niceness) == ("True", "19"), on_node.stderr
    elsewhere = subprocess.run([sys.executable, "-c", probe], env={**env, "SLURM_CONF": "/nonexistent"},
                               capture_output=True, text=True, timeout=patient(60))
    assert elsewhere.stdout.split()[:2] == ["False", "0"], elsewhere.stderr  # unchanged, even if niced before


def test_a_failing_squeue_leaves_status_whole_a_wait_asks_again_and_cancel_takes_live_jobs(
        slurm, tmp_path, monkeypatch, caplog):
    """Where squeue fails (no SLURM config on this machine, a controller that times out), `study status`
    still prints the runs and exits 0, naming the jobs whose states are unknown; `--wait` asks again
    until squeue answers, and gives up after its patience naming how to follow the jobs."""
    import threading

    from visionstudy.study.launch import LaunchError, wait_slurm

    study = study_file(tmp_path, "asked", epochs=1, variants={"z": {}}, seeds=1)
    trained = vs("study", "run", study, "--runs-dir", tmp_path / "runs", "--no-report", "--quiet")
    assert trained.returncode == 0, trained.stderr
    study_dir = tmp_path / "runs" / "asked"
    sbatch = subprocess.run(["sbatch", "--parsable", "--wrap", "sleep 3", "-o", "/dev/null"],
                            env={**os.environ, **slurm}, capture_output=True, text=True, check=True)
    job = sbatch.stdout.strip().split(";")[0]
    (study_dir / "slurm").mkdir()
    (study_dir / "slurm" / "jobs.json").write_text(json.dumps([job]))

    broken = tmp_path / "slurm.conf"
    broken.write_text("")  # fails at once (a missing file makes squeue look for a config for a minute)
    lost = vs("study", "status", study_dir, env={"SLURM_CONF": str(broken)})
    assert lost.returncode == 0, lost.stderr
    assert "asked: 1/1 runs done" in lost.stdout
    assert f"SLURM jobs {job}: their states are unknown here (squeue failed:" in " ".join(lost.stderr.split())
    assert "Traceback" not in lost.stderr

    monkeypatch.setenv("SLURM_CONF", str(broken))
    with pytest.raises(LaunchError, match="squeue failed.*study status"):
        wait_slurm(study_dir, patience=1)
    threading.Timer(1.5, os.environ.__setitem__, ("SLURM_CONF", slurm["SLURM_CONF"])).start()
    caplog.set_level("WARNING", "visionstudy.study.launch")
    wait_slurm(study_dir, patience=patient(120))  # returns once the job has left the queue
    assert not squeue(slurm, job)
    said = caplog.text
    assert "squeue failed" in said and "asking again for up to" in said and "squeue answers again" in said

    # `study cancel` cancels the study's jobs still queued or running, and says so when none is
    ended = vs("study", "cancel", study_dir, env=slurm)
    assert ended.returncode == 0
    assert f"SLURM job {job}: none queued or running; nothing to cancel" in ended.stdout
    assert not (study_dir / "slurm" / "cancelled").exists()  # a worker started later would not requeue
    live = []
    for _ in range(2):
        sbatch = subprocess.run(["sbatch", "--parsable", "--wrap", "sleep 120", "-o", "/dev/null"],
                                env={**os.environ, **slurm}, capture_output=True, text=True, check=True)
        live.append(sbatch.stdout.strip().split(";")[0])
    (study_dir / "slurm" / "jobs.json").write_text(json.dumps([job, live[0]]))
    cancelled = vs("study", "cancel", study_dir, env=slurm)
    assert cancelled.returncode == 0, cancelled.stderr
    assert f"cancelled SLURM job {live[0]};" in cancelled.stdout
    assert (study_dir / "slurm" / "cancelled").exists()
    wait_for(lambda: not squeue(slurm, live[0]), 30, "the cancelled job to leave the queue")
    (study_dir / "slurm" / "jobs.json").write_text(json.dumps([job, live[0], live[1]]))
    import visionstudy as vs_api

    assert vs_api.Study.load(study, runs_dir=tmp_path / "runs").cancel() == [live[1]]  # the API's
    wait_for(lambda: not squeue(slurm, live[1]), 30, "the cancelled job to leave the queue")


def test_a_slurm_launcher_refuses_sqlite(tmp_path):
    study = study_file(tmp_path, "lite")
    done = vs("study", "run", study, "--runs-dir", tmp_path / "runs", "--launcher", "slurm", "--jobs", "2")
    assert done.returncode == 2
    assert "SQLite" in done.stderr and "--db postgresql://" in done.stderr and "db start" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize("options, needles", [
    (["--jobs", "8"], ["--jobs: a cluster launch's option", "--launcher slurm or ray", "--workers N"]),
    (["--gpus-per-job", "1"], ["--gpus-per-job: a cluster launch's option"]),
    (["--time", "1:00:00"], ["--time: a cluster launch's option"]),
    (["--wait"], ["--wait: a cluster launch's option"]),
    (["--launcher", "ray", "--workers", "2"], ["--workers: not with --launcher ray", "--workers-per-job"]),
    (["--launcher", "slurm", "--only", "a"], ["--only: not with --launcher slurm", "without --launcher"]),
    (["--launcher", "ray", "--log", "mlflow"], ["--log: not with --launcher ray"]),
    (["--launcher", "ray", "--wait"], ["--wait: a SLURM option", "always waits"]),
    (["--launcher", "ray", "--partition", "gpu"], ["--partition (Jobs.partition): a SLURM setting"]),
    (["--launcher", "slurm", "--address", "auto", "--db", "postgresql://u@localhost:1/d"],
     ["--address (Jobs.address): a Ray setting", "--launcher slurm"]),
    # a Ray address nothing answers on: Ray retried for about 12 minutes, a warning every few seconds
    (["--launcher", "ray", "--address", "127.0.0.1:1", "--db", "postgresql://u@localhost:1/d"],
     ["--address 127.0.0.1:1: nothing answers there (Connection refused)", "ray start --head"]),
    (["--launcher", "ray", "--address", "127.0.0.1:1", "--db", "postgresql://u@localhost:1/d", "--dry-run"],
     ["--address 127.0.0.1:1: nothing answers there"]),
    (["--launcher", "SLURM", "--dry-run"], ["--launcher slurm: the study database is SQLite"]),  # any case
])
def test_an_option_that_does_nothing_where_the_runs_train_is_refused(tmp_path, options, needles):
    """`--jobs 8` without a launcher trained one run at a time here, silently; `--partition` with Ray
    and `--only` with a cluster were dropped as silently. Each is one clear error, before anything is
    written or submitted."""
    study = study_file(tmp_path, "opts")
    runs = tmp_path / "runs"
    assert_user_error(vs_here("study", "run", study, "--runs-dir", runs, *options), *needles)
    assert not runs.exists() or not any(runs.rglob("metrics.json"))


def test_a_time_limit_is_read_as_sbatch_reads_it(slurm):
    """Every format `--time` takes (sbatch's), in seconds, and sbatch itself (`--test-only`, nothing
    submitted) takes each of them and refuses what `--time` refuses."""
    from visionstudy.study.launch import slurm_seconds

    formats = {"90": 5400, "5:00": 300, "4:30": 270, "12:00:00": 43200, "1-12": 129600, "1-12:30": 131400,
               "2-00:00:00": 172800, "0": None, "UNLIMITED": None, "infinite": None}
    assert {t: slurm_seconds(t) for t in formats} == formats
    for bad in ("12h", "1:2:3:4", "-5", "1-", ""):
        with pytest.raises(ValueError):
            slurm_seconds(bad)
    env = {**os.environ, **slurm}

    def takes(limit: str) -> bool:
        done = subprocess.run(["sbatch", "--test-only", f"--time={limit}", "--wrap", "true"], env=env,
                              capture_output=True, text=True, timeout=patient(30))
        return done.returncode == 0

    assert all(takes(t) for t in formats), [t for t in formats if not takes(t)]
    assert not any(takes(t) for t in ("12h", "1:2:3:4")), "sbatch took a time limit --time refuses"


def test_a_study_folder_with_a_space_in_its_path_is_submitted_and_its_jobs_start_where_it_ran(
        slurm, workdir, monkeypatch):
    """`--runs-dir "/scratch/my runs"`: sbatch refused the job script ("Invalid directive found in
    batch script": an #SBATCH line splits at the space); its log path is quoted now. The jobs
    started in the study's folder, where a relative `data.path: photos` (found by `study run` and by
    a local run) was no folder: every job failed and the run stayed waiting. They start where
    `study run` ran (`--chdir`)."""
    from visionstudy.errors import ConfigError
    from visionstudy.study.launch import Jobs, sbatch_script, submit_slurm

    monkeypatch.setenv("SLURM_CONF", slurm["SLURM_CONF"])
    here = workdir / "my data"
    here.mkdir()
    monkeypatch.chdir(here)
    study_dir = workdir / "my runs" / "é" / "spaced"
    study_dir.mkdir(parents=True)
    job = submit_slurm("spaced", study_dir, Jobs(count=1), ["sh", "-c", "echo the job ran in $(pwd)"],
                       "sqlite:///unused")
    wait_done(slurm, job, seconds=patient(60))
    logs = list((study_dir / "slurm" / "logs").glob("*.log"))
    assert len(logs) == 1, slurm_story(slurm, job, study_dir)
    assert f"the job ran in {here}\n" in logs[0].read_text(), slurm_story(slurm, job, study_dir)
    with pytest.raises(ConfigError, match="cannot name a folder with a double quote"):
        sbatch_script("q", workdir / 'say "hi"', Jobs(count=1), ["true"], "sqlite:///unused")


def test_a_slurm_job_no_node_can_take_is_refused_before_anything_is_submitted(slurm, pg, workdir):
    """`--cpus-per-job 8` on 2-CPU nodes: sbatch took the job array (a cluster that does not enforce
    its partitions' limits does), and it pended for ever (reason PartitionConfig) without a word.
    SLURM's `sbatch --test-only` is asked first, in a dry run too, which also says when a job that
    fits would start."""
    study = study_file(workdir, "toobig", epochs=1, seeds=1, variants={"a": {}})
    runs = workdir / "runs-toobig"
    for extra in (["--dry-run"], []):
        done = vs("study", "run", study, "--runs-dir", runs, "--db", pg, "--launcher", "slurm",
                  "--cpus-per-job", "8", *extra, env=slurm)
        assert_user_error(done, "SLURM would never start the study's jobs: each asks for 8 CPUs and 0 "
                          "GPUs, and sbatch", "Requested node configuration is not available",
                          "ask for less (--cpus-per-job", "another --partition")
    assert not (runs / "toobig" / "slurm" / "jobs.json").exists()
    assert (runs / "toobig" / "slurm" / "job.sh").stat().st_mode & 0o077 == 0  # it holds the database URL
    queue = subprocess.run(["squeue", "-h", "-o", "%j"], env={**os.environ, **slurm}, capture_output=True,
                           text=True, timeout=patient(30)).stdout
    assert "vs-toobig" not in queue
    fits = vs("study", "run", study, "--runs-dir", runs, "--db", pg, "--launcher", "slurm", "--cpus-per-job",
              "2", "--dry-run", env=slurm)
    said = " ".join(fits.stdout.split())
    assert fits.returncode == 0 and "dry run: sbatch --test-only: Job " in said, fits.stderr + fits.stdout
    assert "to start at" in said and "using 2 processors" in said


def test_an_array_beyond_max_array_size_and_an_unknown_partition_name_their_option(slurm, pg, workdir):
    """`--jobs 6` where the cluster's MaxArraySize is 5 (the test cluster's; 1001 by default) was
    refused as if each job asked for too much ("ask for less (--cpus-per-job ..."), and `--partition
    nope` likewise: each error now names the option that caused it and its fix, in a dry run too,
    and nothing is submitted."""
    study = study_file(workdir, "wide", epochs=1, seeds=6, variants={"a": {}})
    runs = workdir / "runs-wide"
    for extra in (["--dry-run"], []):
        done = vs("study", "run", study, "--runs-dir", runs, "--db", pg, "--launcher", "slurm", "--jobs", "6",
                  *extra, env=slurm)
        assert_user_error(done, "SLURM refused a job array of 6 jobs (--jobs 6)", "Invalid job array",
                          "this cluster's MaxArraySize is 5", "give --jobs 5 or fewer")
        assert "ask for less" not in done.stderr
        done = vs("study", "run", study, "--runs-dir", runs, "--db", pg, "--launcher", "slurm", "--partition",
                  "nope", *extra, env=slurm)
        assert_user_error(done, "--partition nope: sbatch says 'Invalid partition name specified'",
                          "`sinfo -s` lists them")
    assert not (runs / "wide" / "slurm" / "jobs.json").exists()
    queue = subprocess.run(["squeue", "-h", "-o", "%j"], env={**os.environ, **slurm}, capture_output=True,
                           text=True, timeout=patient(30)).stdout
    assert "vs-wide" not in queue
    fits = vs("study", "run", study, "--runs-dir", runs, "--db", pg, "--launcher", "slurm", "--jobs", "5",
              "--dry-run", env=slurm)
    assert fits.returncode == 0 and "job array of 5 jobs" in " ".join(fits.stdout.split()), fits.stderr


def test_a_controller_that_does_not_answer_is_named_as_such(slurm, pg, workdir):
    """A controller that is down or too busy made `sbatch --test-only` say 'allocation failure: Unable
    to contact slurm controller', and the launch said that SLURM would never start the jobs, each
    asking for too much. The test's cluster, seen through a copy of its config whose controller port
    nothing listens on (and short timeouts: sbatch retries for 18 s by default)."""
    conf = Path(slurm["SLURM_CONF"])
    dead = workdir / "dead-controller.conf"
    dead.write_text(re.sub(r"SlurmctldPort=\d+", f"SlurmctldPort={free_ports(1)[0]}", conf.read_text())
                    + "MessageTimeout=2\nTCPTimeout=1\n")
    study = study_file(workdir, "silent", epochs=1, seeds=1, variants={"a": {}})
    runs = workdir / "runs-silent"
    done = vs("study", "run", study, "--runs-dir", runs, "--db", pg, "--launcher", "slurm",
              env={"SLURM_CONF": str(dead)})
    assert_user_error(done, "SLURM's controller did not answer sbatch --test-only ('Unable to contact slurm "
                      "controller", "so nothing was submitted", "once `scontrol ping` says UP")
    assert "would never start" not in done.stderr and "ask for less" not in done.stderr
    assert not (runs / "silent" / "slurm" / "jobs.json").exists()
    # the study's jobs, asked after (the refused launch wrote the study's folder; a job recorded by
    # hand): `study cancel` said only "squeue failed: ...", and `study status` told the user to ask on
    # a login node
    (runs / "silent" / "slurm" / "jobs.json").write_text('["99"]')
    cancel = vs("study", "cancel", runs / "silent", env={"SLURM_CONF": str(dead)})
    assert_user_error(cancel, "squeue failed: SLURM's controller did not answer (slurm_load_jobs error: "
                      "Unable to contact slurm controller", "run it again once `scontrol ping` says UP")
    status = vs("study", "status", runs / "silent", env={"SLURM_CONF": str(dead)})
    assert status.returncode == 0 and "0/1 runs done" in status.stdout, status.stderr
    said = " ".join(status.stderr.split())
    assert "SLURM jobs 99: their states are unknown here (squeue failed: SLURM's controller did not" in said
    assert "login node" not in said


def test_a_submission_sbatch_does_not_answer_in_time_says_how_to_see_what_slurm_took(slurm, workdir,
                                                                                   monkeypatch):
    """The real submission waited on sbatch without a limit (it retries a silent controller for its
    MessageTimeout, minutes on some clusters); now for SBATCH_PATIENCE_SECONDS, here cut short."""
    from visionstudy.study import launch

    monkeypatch.setenv("SLURM_CONF", slurm["SLURM_CONF"])
    monkeypatch.setattr(launch, "SBATCH_PATIENCE_SECONDS", 0.001)
    study_dir = workdir / "late"
    try:
        with pytest.raises(launch.LaunchError) as raised:
            launch.submit_slurm("late", study_dir, launch.Jobs(count=1), ["true"], "sqlite:///unused")
    finally:  # the killed sbatch may have reached the controller
        subprocess.run(["scancel", "--name", "vs-late"], capture_output=True, timeout=patient(30))
    said = str(raised.value)
    assert said.startswith("sbatch gave no answer in 0.001 s; where `squeue --name vs-late` lists jobs")
    assert "`scancel --name vs-late` ends them" in said and "once `scontrol ping` says UP" in said
    assert not (study_dir / "slurm" / "jobs.json").exists()


def test_only_reasons_slurm_never_clears_by_itself_count_as_stuck(tmp_path):
    """Per-job limits and a request beyond the partition never clear; a group limit, resources taken
    by other jobs, a priority or a hold do, and a running job is not waiting at all."""
    from visionstudy.study.launch import JobState, stuck, stuck_note

    never = ["PartitionConfig", "PartitionTimeLimit", "QOSMaxGRESPerJob", "AssocMaxCpuPerJobLimit",
             "QOSMaxWallDurationPerJobLimit"]
    clears = ["Resources", "Priority", "JobHeldUser", "QOSGrpCpuLimit", "AssocGrpGRES", "Dependency"]
    jobs = [JobState(f"7_{i}", "PENDING", r, "0:00", "") for i, r in enumerate(never + clears)]
    jobs.append(JobState("7_99", "RUNNING", "PartitionConfig", "0:05", "n1"))
    assert [j.reason for j in stuck(jobs)] == never
    assert stuck_note(jobs[len(never):], tmp_path) is None
    note = stuck_note(jobs[:2], tmp_path / "my runs")
    assert note is not None and note.startswith("2 of the study's jobs wait for a reason")
    assert "(PartitionConfig, PartitionTimeLimit:" in note and f"study cancel '{tmp_path}/my runs'" in note


def test_jobs_that_pend_for_ever_are_named_where_the_launch_waits_and_in_status(slurm, pg, workdir):
    """A job that pends for a reason SLURM never clears by itself (its request beyond the partition,
    its QOS's or account's per-job limits: PartitionConfig, QOSMaxGRESPerJob) left `--wait` waiting
    without a word. Made here by raising a held job's CPUs past the node's before releasing it."""
    study = study_file(workdir, "forever", epochs=1, seeds=1, variants={"a": {}})
    runs = workdir / "runs-forever"
    env = {**os.environ, **slurm}
    args = [sys.executable, "-m", "visionstudy", "study", "run", str(study), "--runs-dir", str(runs), "--db",
            pg, "--launcher", "slurm", "--slurm", "hold", "--wait"]
    launch = subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, stdin=subprocess.DEVNULL)
    import threading

    lines: list[str] = []  # its warnings as they come: they can only come once it waits
    reader = threading.Thread(target=lambda: lines.extend(iter(launch.stderr.readline, "")), daemon=True)
    reader.start()
    try:
        jobs_file = runs / "forever" / "slurm" / "jobs.json"
        wait_for(lambda: launch.poll() is not None or jobs_file.is_file(), 120, "the job array")
        job = json.loads(jobs_file.read_text())[0]
        for command in (["scontrol", "update", f"JobId={job}", "NumCPUs=8"], ["scontrol", "release", job]):
            subprocess.run(command, env=env, capture_output=True, timeout=patient(30))
        reasons = ["squeue", "-h", "-r", "-j", job, "-o", "%r"]  # set by the scheduler's next pass
        wait_for(lambda: "PartitionConfig" in subprocess.run(reasons, env=env, capture_output=True, text=True,
                                                             timeout=patient(30)).stdout, 60, "its reason")
        status = vs("study", "status", runs / "forever", env=slurm)
        assert status.returncode == 0 and "PartitionConfig" in status.stdout, status.stdout + status.stderr
        said = " ".join(status.stderr.split())
        assert "warning: 1 of the study's jobs waits for a reason SLURM does not clear until the cluster's " \
               "limits change (PartitionConfig" in said, said
        assert f"visionstudy study cancel {runs / 'forever'}" in said
        # it waits once it has planned, at the lowest CPU priority on a node that runs the jobs (beside
        # two CPU hogs that took minutes)
        wait_for(lambda: launch.poll() is not None or any("SLURM does not clear" in x for x in lines),
                 400, "the launch's warning")
        time.sleep(2)  # it asks squeue again (every half second at first), and says nothing more
        assert launch.poll() is None, "".join(lines)
        launch.send_signal(signal.SIGTERM)
        launch.wait(timeout=patient(60))
        reader.join(timeout=patient(10))
        err = "".join(lines)
    finally:
        if launch.poll() is None:
            launch.kill()
        vs("study", "cancel", runs / "forever", env=slurm)
    said = " ".join(err.split())
    assert said.count("waits for a reason SLURM does not clear") == 1, said
    assert "(PartitionConfig: each asks for more than its partition, QOS or account allows a job)" in said
    assert f"job array {job} goes on" in said


def test_a_database_that_cannot_be_opened_cancels_the_jobs_submitted_before_it(slurm, workdir):
    """The launcher submits as soon as the study is valid and plans while the jobs start: when the
    database then fails, the jobs are cancelled and the one error says so."""
    study = study_file(workdir, "nodb")
    runs = workdir / "runs-nodb"
    done = vs("study", "run", study, "--runs-dir", runs, "--db", "postgresql://nobody:secret@127.0.0.1:1/none",
              "--launcher", "slurm", "--jobs", "2", env=slurm)
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    assert "cannot open the database" in done.stderr and "secret" not in done.stderr
    job = done.stderr.split("job array ")[1].split()[0]
    assert "was cancelled" in done.stderr and (runs / "nodb" / "slurm" / "cancelled").is_file()
    assert not (runs / "nodb" / "db-url").exists()  # never opened: a later run without --db is not sent there
    wait_done(slurm, job, seconds=60)


def test_a_job_that_stops_before_it_trains_says_why_where_the_launch_waits(slurm, pg, workdir):
    """Jobs that start where a relative `data.path` is no folder (`--slurm chdir=/`) stop before
    training: `study run --wait` said "1 run is not finished (1 waiting); see the jobs' logs", and
    each log held a traceback of a worker ended while it imported torch beside the one-line error.
    The wait now ends with what the logs said, and the logs hold the error alone."""
    import numpy as np
    from PIL import Image

    here = workdir / "elsewhere"
    for c, shade in (("a", 40), ("b", 200)):
        (here / "photos" / c).mkdir(parents=True)
        for i in range(6):
            Image.fromarray(np.full((8, 8), shade + i, dtype=np.uint8)).save(here / "photos" / c / f"{i}.png")
    study = here / "s.yaml"
    study.write_text(yaml.safe_dump({"name": "elsewhere", "model": {"name": "mlp", "hidden": [8]},
                                     "data": {"dataset": "imagefolder", "path": "photos"},
                                     "train": {"epochs": 1}}))
    runs = workdir / "runs-elsewhere"
    done = subprocess.run(
        [sys.executable, "-m", "visionstudy", "study", "run", str(study), "--runs-dir", str(runs), "--db", pg,
         "--launcher", "slurm", "--wait", "--slurm", "chdir=/", "--no-report"],
        cwd=here, env={**os.environ, **slurm}, capture_output=True, text=True, timeout=patient(300),
        stdin=subprocess.DEVNULL)
    err = " ".join(done.stderr.split())
    assert done.returncode == 1, done.stdout + done.stderr
    assert "1 run is not finished (1 waiting)" in err
    assert "the jobs' logs end with: error: data.path: photos is not a folder (" in err, err
    logs = "".join(p.read_text() for p in (runs / "elsewhere" / "slurm" / "logs").glob("*.log"))
    assert "error: data.path: photos is not a folder" in logs and "Traceback" not in logs, logs


def test_a_model_that_cannot_take_the_images_is_refused_after_the_jobs_were_submitted(slurm, pg, workdir):
    """The launcher checks a study without torch, submits, then builds each model for its data's
    shape while the jobs start: a layout the images cannot go through cancels the jobs, and the one
    error names the run and the fix (exit 2)."""
    study = study_file(workdir, "shrink", variants={"ok": {}, "deep": {"model": {
        "channels": [4, 4, 4, 4], "padding": "valid"}}}, seeds=1)
    runs = workdir / "runs-shrink"
    done = vs("study", "run", study, "--runs-dir", runs, "--db", pg, "--launcher", "slurm", "--jobs", "2",
              env=slurm)
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    assert "run deep/seed-0: invalid config" in done.stderr and "shrinks the 8x8 input" in done.stderr
    job = done.stderr.split("job array ")[1].split()[0]
    assert "was cancelled" in done.stderr and (runs / "shrink" / "slurm" / "cancelled").is_file()
    wait_done(slurm, job, seconds=60)


def test_a_launch_that_does_not_wait_leaves_the_report_to_a_job_that_follows_the_array(slurm, pg, workdir):
    """Submitted without `--wait` (from a login node, then logged out), the study trained and no
    report was ever written: that took another `visionstudy report`. A job that depends on the array
    (`afterany`) writes it once the array has ended."""
    study = study_file(workdir, "later", epochs=1, seeds=1, variants={"a": {}})
    runs = workdir / "runs-later"
    dry = vs("study", "run", study, "--runs-dir", runs, "--db", pg, "--launcher", "slurm", "--dry-run",
             env=slurm)
    said = " ".join(dry.stdout.split())
    assert dry.returncode == 0, dry.stderr
    assert "dry run: and then the report's job, once the array has ended" in said, said
    assert "#SBATCH --dependency=afterany:ARRAY" in dry.stdout and "visionstudy report" in dry.stdout
    assert pg.split("@")[0].rsplit(":", 1)[1] not in dry.stdout  # the database password as ***
    done = vs("study", "run", study, "--runs-dir", runs, "--db", pg, "--launcher", "slurm", env=slurm)
    assert done.returncode == 0, done.stderr + done.stdout
    study_dir = runs / "later"
    array, report_job = json.loads((study_dir / "slurm" / "jobs.json").read_text())
    said = " ".join(done.stdout.split())
    assert f"submitted job array {array}" in said and f"the report: job {report_job}, once the array" in said
    script = (study_dir / "slurm" / "report.sh").read_text()
    assert f"#SBATCH --dependency=afterany:{array}\n" in script
    assert (study_dir / "slurm" / "report.sh").stat().st_mode & 0o077 == 0  # it holds the database URL
    try:
        wait_done(slurm, array)
        wait_done(slurm, report_job)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{slurm_story(slurm, report_job, study_dir)}") from None
    report = study_dir / "report" / "report.html"
    log = (study_dir / "slurm" / "logs" / "report.log").read_text()
    assert report.is_file(), log
    assert f"report: {report}" in " ".join(log.split()) and "error" not in log, log
    assert report.stat().st_mtime >= (study_dir / "a" / "seed-0" / "metrics.json").stat().st_mtime


def test_the_report_job_keeps_the_arrays_account_but_not_its_gpus_or_dependency(tmp_path):
    """The report job asks for what the cluster wants of every job (an account, a constraint, the
    partition and time) but not the array's GPUs (`--slurm gres=gpu:a100:1`: the report would wait
    for a GPU it never uses), nor its `--slurm dependency` (it has its own), nor more than 4 CPUs."""
    from visionstudy.study.launch import Jobs, report_command, report_script

    jobs = Jobs(count=8, cpus=16, partition="gpu", time="4:00:00",
                slurm=["account=proj42", "gres=gpu:a100:1", "mem-per-gpu=40G", "dependency=afterok:7",
                       "constraint=skylake", "exclusive"])
    script = report_script("s", tmp_path / "s", jobs, ["41", "40"], report_command(tmp_path / "s", None),
                           "postgresql://u:***@h/d").splitlines()
    for line in ("--dependency=afterany:41:40", "--kill-on-invalid-dep=yes", "--cpus-per-task=4",
                 "--partition=gpu", "--time=4:00:00", "--account=proj42", "--constraint=skylake",
                 "--exclusive", "--ntasks=1", f"--output={tmp_path / 's' / 'slurm' / 'logs' / 'report.log'}"):
        assert f"#SBATCH {line}" in script, script
    directives = [line for line in script if line.startswith("#SBATCH")]
    unwanted = ("gres", "gpu:", "mem-per-gpu", "afterok")
    assert not [line for line in directives if any(w in line for w in unwanted)], directives
    assert script[-1].endswith(f"-m visionstudy report {tmp_path / 's'}")


def test_two_slurm_jobs_train_a_six_run_study_once_and_write_its_report(slurm, pg, workdir):
    study = study_file(workdir, "six")
    runs = workdir / "runs-six"
    done = vs("study", "run", study, "--runs-dir", runs, "--db", pg, "--launcher", "slurm", "--jobs", "2",
              "--wait", "--quiet", env=slurm)
    assert done.returncode == 0, done.stderr + done.stdout
    assert "submitted job array" in done.stdout and "6/6 runs finished" in done.stdout
    study_dir = runs / "six"
    # --wait returns once every run's results are on disk; the jobs then say so and end
    wait_done(slurm, done.stdout.split("submitted job array ")[1].split()[0])
    check_once(pg, "six", study_dir, {f"{v}/seed-{s}": 2 for v in VARIANTS for s in range(2)})
    assert (study_dir / "report" / "report.html").is_file()
    logs = sorted((study_dir / "slurm" / "logs").glob("*.log"))
    assert len(logs) == 2 and all("no runs left to claim" in log.read_text() for log in logs)
    trained = sum(log.read_text().count("done ") for log in logs)
    assert trained == 6  # each run trained once, by one of the two jobs
    status = vs("study", "status", study_dir, env=slurm)  # the recorded database: no --db needed
    assert status.returncode == 0 and "6/6 runs done" in status.stdout, status.stderr
    again = vs("study", "run", study, "--runs-dir", runs, "--db", pg, "--launcher", "slurm", "--jobs", "8",
               "--wait", "--quiet", env=slurm)  # a finished study submits nothing, and reports
    assert again.returncode == 0, again.stderr
    assert "every run of six is finished: no job started" in again.stdout
    assert "submitted" not in again.stdout and "6/6 runs finished" in again.stdout
    assert len(list((study_dir / "slurm" / "logs").glob("*.log"))) == 2


def test_usr2_and_scontrol_requeue_resume_the_run_from_last_pt(slurm, pg, workdir):
    study = study_file(workdir, "resume", epochs=LONG, variants={"long": {}}, seeds=1, batch_size=16)
    runs = workdir / "runs-resume"
    job = launch(study, runs, pg, slurm)
    run = runs / "resume" / "long" / "seed-0"
    env = {**os.environ, **slurm}
    wait_for(lambda: len(history_rows(run)) >= 3, 120, "the run's third epoch")
    signalled = subprocess.run(["scancel", "--signal=USR2", f"{job}_0"], env=env, capture_output=True,
                               text=True)
    try:
        assert signalled.returncode == 0, f"scancel: {signalled.stderr}"
        wait_for(lambda: ("PENDING",) == tuple(s for _, s in squeue(slurm, job)), 60,
                 "the job to requeue itself")
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{slurm_story(slurm, job, runs / 'resume')}") from None
    stopped_at = len(history_rows(run))
    assert stopped_at < LONG - 3 and not (run / "metrics.json").exists()
    # released on every poll: an update sent while SLURM still finishes the requeue does not hold
    def resumed() -> bool:
        release_pending(slurm, job)
        return len(history_rows(run)) >= stopped_at + 3

    try:
        wait_for(resumed, 120, "the resumed run's epochs", every=0.5)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\nhistory: {history_rows(run)}\n"
                             f"{slurm_story(slurm, job, runs / 'resume')}") from None
    subprocess.run(["scontrol", "requeue", f"{job}_0"], env=env, check=True)  # from outside, mid-run
    wait_done(slurm, job)
    check_once(pg, "resume", runs / "resume", {"long/seed-0": LONG})
    log = next((runs / "resume" / "slurm" / "logs").glob("*.log")).read_text()
    assert "stopped by SIGUSR2" in log and "requeued" in log
    assert log.count("worker on ") == 3  # started, requeued by itself, requeued by scontrol
    assert "start 2" in log  # SLURM_RESTART_COUNT: the same array task, started a third time


def test_a_job_whose_runs_finish_no_epoch_in_two_starts_is_not_requeued_again(slurm, pg, workdir):
    """A `--time` shorter than one epoch: each start of the job trained part of an epoch, was warned
    (SIGUSR2), requeued itself and started the epoch over, for ever, on the cluster's time. One start
    without a finished epoch is let go (a long plan or data load first); the second in a row ends the
    job with an error naming --time, and the launch's `--wait` would show it (`job_errors`)."""
    from optuna.trial import TrialState

    from visionstudy.store import RunStore

    study = workdir / "stall.yaml"  # one epoch of tens of seconds: a ResNet at batch 1
    study.write_text(yaml.safe_dump({
        "name": "stall", "data": {"dataset": "digits"},
        "model": {"name": "resnet", "blocks": [2, 2, 2], "widths": [128, 256, 512]},
        "train": {"epochs": 2, "batch_size": 1}, "seeds": 1, "variants": {"slow": {}}}))
    runs = workdir / "runs-stall"
    job = launch(study, runs, pg, slurm)
    run = runs / "stall" / "slow" / "seed-0"
    logs = runs / "stall" / "slurm" / "logs"
    env = {**os.environ, **slurm}

    def log() -> str:
        return "".join(p.read_text() for p in logs.glob("*.log"))

    def training(starts: int) -> bool:  # claimed inside the worker's run (its stop handlers set)
        release_pending(slurm, job)
        trials = trials_by_run(RunStore(pg, "stall")).get("slow/seed-0", [])
        return log().count("worker on ") == starts and any(t.state == TrialState.RUNNING for t in trials)

    try:
        for starts in (1, 2):
            wait_for(partial(training, starts), 180, f"start {starts} of the job to train its run", every=0.5)
            assert not history_rows(run), "an epoch finished: the test's epoch is too short"
            subprocess.run(["scancel", "--signal=USR2", f"{job}_0"], env=env, check=True, timeout=patient(30))
            if starts == 1:
                wait_for(lambda: f"job {job} requeued" in log(), 120, "the first start to requeue itself")
                assert (runs / "stall" / "slurm" / "stalled").is_dir()
        wait_done(slurm, job)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{slurm_story(slurm, job, runs / 'stall')}") from None
    said = " ".join(log().split())
    assert log().count("worker on ") == 2 and said.count(f"job {job} requeued") == 1, said
    assert ("error: no run of the study finished an epoch in this job's last two starts" in said
            and "a longer --time" in said), said
    states = [t.state for t in trials_by_run(RunStore(pg, "stall"))["slow/seed-0"]]
    assert TrialState.WAITING in states and TrialState.RUNNING not in states, states  # back in the queue


def test_a_cancelled_job_stays_cancelled_and_its_run_goes_back_to_the_queue(slurm, pg, workdir):
    study = study_file(workdir, "cancel", epochs=60, variants={"z": {}}, seeds=1, batch_size=16)
    runs = workdir / "runs-cancel"
    job = launch(study, runs, pg, slurm)
    run = runs / "cancel" / "z" / "seed-0"
    wait_for(lambda: len(history_rows(run)) >= 2, 120, "the run's second epoch")
    subprocess.run(["scancel", job], env={**os.environ, **slurm}, check=True)  # a user's plain scancel
    wait_for(lambda: not squeue(slurm, job), 60, "the job to end")
    time.sleep(2)
    assert not squeue(slurm, job)  # not requeued by the worker
    log = next((runs / "cancel" / "slurm" / "logs").glob("*.log")).read_text()
    assert "stopped by SIGTERM" in log and "job " + job not in log.split("stopped by SIGTERM")[1]
    from optuna.trial import TrialState

    from visionstudy.store import RunStore

    states = [t.state for t in trials_by_run(RunStore(pg, "cancel"))["z/seed-0"]]
    assert TrialState.WAITING in states and TrialState.RUNNING not in states, states  # back in the queue


def test_a_wait_stopped_by_sigterm_says_the_jobs_go_on_and_they_do(slurm, pg, workdir):
    """`study run --launcher slurm --wait` stopped by SIGTERM (`timeout`, the end of the job it runs
    in) ended without a word; as Ctrl-C, it now says that the job array goes on and how to follow it."""
    # a run of minutes: on a loaded machine the job trained a 60-epoch run to its end while the launch
    # still planned, and the launch's wait then ended at once (CI)
    study = study_file(workdir, "waitterm", epochs=3000, variants={"w": {}}, seeds=1, batch_size=16)
    runs = workdir / "runs-waitterm"
    proc = subprocess.Popen(
        [sys.executable, "-m", "visionstudy", "study", "run", str(study), "--runs-dir", str(runs), "--db", pg,
         "--launcher", "slurm", "--wait", "--quiet", "--no-report"], stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True, env={**os.environ, **slurm}, cwd=ROOT, stdin=subprocess.DEVNULL)
    import threading

    said: list[str] = []  # its output as it comes: it waits from the "submitted job array" line on
    reader = threading.Thread(target=lambda: said.extend(iter(proc.stdout.readline, "")), daemon=True)
    reader.start()
    try:
        run = runs / "waitterm" / "w" / "seed-0"
        waiting = lambda: any("submitted job array" in line for line in said)  # noqa: E731
        wait_for(lambda: proc.poll() is not None or (history_rows(run) and waiting()), 120,
                 "the launch's wait and the run's first epoch")
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=patient(60))
        reader.join(timeout=patient(10))
        out, err = "".join(said), proc.stderr.read()
    finally:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
    job = json.loads((runs / "waitterm" / "slurm" / "jobs.json").read_text())[-1]
    assert proc.returncode == 130, out + err
    assert (f"stopped waiting (by SIGTERM); job array {job} goes on: follow with `visionstudy study status"
            in " ".join(err.split())), err
    assert squeue(slurm, str(job)), "the job array did not go on"
    cancelled = vs("study", "cancel", runs / "waitterm", env=slurm)  # as the message says
    assert cancelled.returncode == 0, cancelled.stderr
    wait_for(lambda: not squeue(slurm, str(job)), 60, "the cancelled job to end")
    assert not (run / "metrics.json").exists()


def test_a_killed_job_loses_its_claim_and_another_job_finishes_the_run(slurm, pg, workdir):
    study = study_file(workdir, "kill", epochs=KILLED_RUN, seeds=1, batch_size=16,
                       variants={"x": {}, "y": {"model": {"batch_norm": True}}})
    runs = workdir / "runs-kill"
    fast = {**slurm, "VISIONSTUDY_HEARTBEAT_SECONDS": "1", "VISIONSTUDY_GRACE_SECONDS": "4"}
    job = launch(study, runs, pg, fast, "--jobs", "2")
    study_dir = runs / "kill"
    keys = ("x/seed-0", "y/seed-0")
    wait_for(lambda: all(len(history_rows(study_dir / k)) >= 2 for k in keys), 120, "both runs to train")
    ahead = max(keys, key=lambda k: len(history_rows(study_dir / k)))
    victim = holder(pg, "kill", ahead)
    assert victim and len(history_rows(study_dir / ahead)) < KILLED_RUN, (
        f"{ahead} was not in training in a job of {job} when the other run had started "
        f"({victim}): {trial_story(pg, 'kill')}\n{slurm_story(fast, job, study_dir)}")
    killed = kill_job_processes(victim)  # as the OOM killer or a node failure would: no signal handler runs
    assert killed, f"no visionstudy process found in job {victim}"
    wait_done(slurm, job)
    try:
        check_once(pg, "kill", study_dir, {k: KILLED_RUN for k in keys})
    except AssertionError as exc:  # once on a loaded CI machine (2026-12-05): say what each job did
        story = f"{slurm_story(fast, job, study_dir)}\ntrials: {trial_story(pg, 'kill')}"
        raise AssertionError(f"{exc}\nkilled {victim} (training {ahead}): pids {killed}\n{story}") from None
    logs = study_dir / "slurm" / "logs"
    survivor = next(p for p in logs.glob("*.log") if p.stem != victim).read_text()
    both = "\n".join(f"{p.name}:\n{p.read_text()}" for p in sorted(logs.glob("*.log")))
    assert survivor.count("done ") == 2, both  # its own run, then the killed job's, resumed


def test_a_higher_priority_partition_preempts_the_workers_and_nothing_is_lost(slurm, pg, workdir):
    study = study_file(workdir, "preempt", epochs=LONG, variants={"p": {}, "q": {"model": {"dropout": 0.1}}},
                       seeds=1, batch_size=16)
    runs = workdir / "runs-preempt"
    job = launch(study, runs, pg, slurm, "--jobs", "2", "--partition", "work")
    study_dir = runs / "preempt"
    keys = ("p/seed-0", "q/seed-0")
    wait_for(lambda: all(len(history_rows(study_dir / k)) >= 2 for k in keys), 120, "both runs to train")
    env = {**os.environ, **slurm}
    urgent = subprocess.run(["sbatch", "--parsable", "-p", "urgent", "-c", "2", "--output=/dev/null",
                             "--wrap", "sleep 1"],
                            env=env, capture_output=True, text=True, check=True).stdout.strip()
    wait_for(lambda: not squeue(slurm, urgent), 90, "the urgent job to run and end")
    wait_done(slurm, job)
    check_once(pg, "preempt", study_dir, {k: LONG for k in keys})
    text = "".join(p.read_text() for p in (study_dir / "slurm" / "logs").glob("*.log"))
    assert "stopped by SIGTERM" in text  # preempted: stopped, claims back, SLURM requeued the jobs


def test_a_run_in_a_slurm_step_keeps_its_world_size(slurm, tmp_path):
    config = tmp_path / "ddp.yaml"
    config.write_text(yaml.safe_dump({"name": "ddp", "data": {"dataset": "digits"},
                                      "model": {"name": "mlp", "hidden": [16]},
                                      "train": {"epochs": 1, "batch_size": 64, "threads": 1, "devices": 2}}))
    env = {**os.environ, **slurm}
    step = subprocess.run(["srun", "--ntasks=1", "-c", "2", sys.executable, "-m", "visionstudy", "train",
                           config, "--out", tmp_path / "in-step", "--quiet"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    assert step.returncode == 0, step.stderr
    assert json.loads((tmp_path / "in-step" / "metrics.json").read_text())["processes"] == 2
    assert "srun" not in step.stderr  # outside a step: tests/cli/test_cli.py's data-parallel test


def test_ray_runs_a_six_run_study_once(tmp_path):
    pytest.importorskip("ray", reason="pip install 'visionstudy[cluster]'")
    study = study_file(tmp_path, "rayed")
    runs = tmp_path / "runs"
    done = vs("study", "run", study, "--runs-dir", runs, "--launcher", "ray", "--jobs", "2", "--quiet",
              "--no-report", env={"RAY_ENABLE_UV_RUN_RUNTIME_ENV": "0"})
    assert done.returncode == 0, done.stderr + done.stdout
    assert "2 Ray jobs ended (0 with an error)" in done.stdout and "6/6 runs finished" in done.stdout
    # our own local Ray's start-up notes (token auth, "Started a local Ray instance") were printed
    assert "Token authentication" not in done.stderr and "local Ray instance" not in done.stderr
    study_dir = runs / "rayed"
    check_once(f"sqlite:///{study_dir / 'study.db'}", "rayed", study_dir,
               {f"{v}/seed-{s}": 2 for v in VARIANTS for s in range(2)})
    logs = sorted((study_dir / "ray").glob("job-*.log"))
    assert len(logs) == 2 and sum(p.read_text().count("done ") for p in logs) == 6


def test_a_ray_launch_with_a_failed_run_names_its_error_where_users_look(tmp_path):
    """The launch's closing lines and each job's log name the failed run with its error (a job's
    log said "each error is above" of an error printed in the other job's log)."""
    pytest.importorskip("ray", reason="pip install 'visionstudy[cluster]'")
    boom = {"train": {"optimizer": {"name": "sgd", "lr": 1.0e30}}}  # NaN at the first step
    study = study_file(tmp_path, "rayfail", variants={"a": {}, "boom": boom}, seeds=1)
    runs = tmp_path / "runs"
    done = vs("study", "run", study, "--runs-dir", runs, "--launcher", "ray", "--jobs", "3", "--quiet",
              "--no-report", env={"RAY_ENABLE_UV_RUN_RUNTIME_ENV": "0"})
    err = " ".join(done.stderr.split())
    assert done.returncode == 1, done.stderr + done.stdout
    assert "3 jobs asked for 2 run(s) to train, 1 at once in each: starting 2" in done.stdout
    assert "2 Ray jobs ended" in done.stdout and len(list((runs / "rayfail" / "ray").glob("job-*.log"))) == 2
    assert "1/2 runs finished" in done.stdout
    assert "1 run is not finished (1 failed)" in err and "boom/seed-0: the training loss became NaN" in err
    for log in sorted((runs / "rayfail" / "ray").glob("job-*.log")):
        text = log.read_text()
        assert "1 of 2 runs failed:" in text and "boom/seed-0: the training loss became NaN" in text
        assert "each error is above" not in text


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_ray_address_where_another_server_answers_is_refused_at_once(tmp_path):
    """The dashboard's port (8265) given for the GCS's, or any server that is not Ray: Ray retried
    for minutes, printing a warning every few seconds (it once did for a port nothing answered on)."""
    import http.server
    import threading

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.SimpleHTTPRequestHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    address = f"127.0.0.1:{server.server_address[1]}"
    study = study_file(tmp_path, "notray")
    try:
        for extra in (["--dry-run"], []):
            started = time.monotonic()
            done = vs("study", "run", study, "--runs-dir", tmp_path / "runs", "--launcher", "ray",
                      "--address", address, "--db", "postgresql://u@localhost:1/d", *extra, timeout=120)
            assert_user_error(done, f"--address {address}: a server answers there, but not a Ray "
                              "cluster's GCS", "ray start --head", "8265")
            assert time.monotonic() - started < 60
    finally:
        server.shutdown()
    assert not (tmp_path / "runs" / "notray").exists()


# every `study work` process started where this folder is on PYTHONPATH notes its PID in `marks`
MARK = """
import os
if b"\\0visionstudy\\0study\\0work\\0" in open("/proc/self/cmdline", "rb").read():
    with open(os.environ["VS_MARKS"], "a") as f:
        f.write(f"{os.getpid()}\\n")
"""


def test_ray_address_trains_on_that_cluster_and_no_address_starts_a_ray_of_its_own(pg, workdir, tmp_path):
    """With --address the jobs run on that cluster; without one the launch starts a Ray of its own
    even where one was started on this machine (`ray start --head`): Ray's `init()` joined that
    one, whose other nodes may not see the study's SQLite database."""
    pytest.importorskip("ray", reason="pip install 'visionstudy[cluster]'")
    ray = Path(sys.executable).parent / "ray"
    hooks, marks = workdir / "ray-hooks", workdir / "ray-marks"
    hooks.mkdir()
    (hooks / "sitecustomize.py").write_text(MARK)
    port = free_port()
    head_env = {**os.environ, "PYTHONPATH": str(hooks), "VS_MARKS": str(marks),
                "RAY_ENABLE_UV_RUN_RUNTIME_ENV": "0"}
    started = subprocess.run([ray, "start", "--head", "--port", str(port), "--num-cpus", "2",
                              "--include-dashboard=false", "--disable-usage-stats"],
                             env=head_env, capture_output=True, text=True, timeout=patient(120))
    try:
        assert started.returncode == 0, started.stderr
        on_head = study_file(workdir, "rayhead", epochs=1, seeds=2, variants={"a": {}})
        runs = workdir / "runs"
        done = vs("study", "run", on_head, "--runs-dir", runs, "--launcher", "ray", "--address",
                  f"127.0.0.1:{port}", "--jobs", "2", "--db", pg, "--quiet", "--no-report",
                  env={"RAY_ENABLE_UV_RUN_RUNTIME_ENV": "0"})
        assert done.returncode == 0, done.stderr + done.stdout
        assert "2 Ray jobs ended (0 with an error)" in done.stdout and "2/2 runs finished" in done.stdout
        assert len(marks.read_text().split()) == 2  # both jobs' workers ran on the head's node
        # its own Ray, stopped by a scheduler's SIGTERM mid-run (Ray's handler dumped a stack and killed
        # the launch without a word), then run again: each run once, resumed where it stopped
        own = study_file(tmp_path, "rayown", epochs=LONG, seeds=2, variants={"a": {}})
        args = ["study", "run", str(own), "--runs-dir", str(tmp_path / "runs"), "--launcher", "ray", "--jobs",
                "1", "--workers-per-job", "2", "--quiet", "--no-report"]
        ray_env = {**os.environ, "RAY_ENABLE_UV_RUN_RUNTIME_ENV": "0"}
        launch = subprocess.Popen([sys.executable, "-m", "visionstudy", *args], cwd=ROOT, env=ray_env,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        study_dir = tmp_path / "runs" / "rayown"
        wait_for(lambda: launch.poll() is not None or list(study_dir.glob("a/seed-*/history.csv")), 120,
                 "a run training")
        launch.send_signal(signal.SIGTERM)
        out, err = launch.communicate(timeout=patient(120))
        assert launch.returncode == 130, out + err
        assert "stopped by SIGTERM: the Ray jobs ended, and the runs they trained go back to the queue" in (
            " ".join(err.split())) and "Traceback" not in err
        wait_for(lambda: not processes_with(str(study_dir)), 30, "the jobs' workers to end")
        done = vs(*args, env={"RAY_ENABLE_UV_RUN_RUNTIME_ENV": "0"})
        assert done.returncode == 0, done.stderr + done.stdout
        assert "1 Ray job ended (0 with an error)" in done.stdout and "2/2 runs finished" in done.stdout
        assert "trained 2 here" in (study_dir / "ray" / "job-0.log").read_text()
        check_once(f"sqlite:///{study_dir / 'study.db'}", "rayown", study_dir,
                   {f"a/seed-{s}": LONG for s in range(2)})
        assert len(marks.read_text().split()) == 2  # none on the cluster started by hand
    finally:
        subprocess.run([ray, "stop", "--force"], capture_output=True, timeout=patient(120))


def test_a_ray_job_no_node_can_take_is_refused_on_a_ray_of_its_own(tmp_path):
    """`--gpus-per-job 1` on a machine without a GPU (or more CPUs than it has) waited for ever,
    without a word: Ray leaves a task no node can take queued."""
    pytest.importorskip("ray", reason="pip install 'visionstudy[cluster]'")
    study = study_file(tmp_path, "raybig", epochs=1, seeds=1, variants={"a": {}})
    done = vs("study", "run", study, "--runs-dir", tmp_path / "runs", "--launcher", "ray", "--jobs", "1",
              "--gpus-per-job", "1", "--cpus-per-job", "1", "--quiet", "--no-report", timeout=patient(120),
              env={"RAY_ENABLE_UV_RUN_RUNTIME_ENV": "0", "CUDA_VISIBLE_DEVICES": ""})
    assert_user_error(done, "each job asks for 1 CPU and 1 GPU, and no node of this machine's Ray has them",
                      "(the largest: ", "0 GPUs)", "ask for less (--cpus-per-job, --gpus-per-job")


def test_a_ray_dry_run_refuses_a_job_no_node_of_its_own_ray_can_take(tmp_path):
    """A dry run with `--launcher ray` said it would start the tasks, and the real launch then
    refused them; now the dry run asks Ray's own count of this machine's CPUs and GPUs (without
    starting a Ray) and refuses as the launch does."""
    pytest.importorskip("ray", reason="pip install 'visionstudy[cluster]'")
    study = study_file(tmp_path, "raydry", epochs=1, seeds=1, variants={"a": {}})
    env = {"RAY_ENABLE_UV_RUN_RUNTIME_ENV": "0", "CUDA_VISIBLE_DEVICES": ""}
    done = vs("study", "run", study, "--runs-dir", tmp_path / "runs", "--launcher", "ray", "--gpus-per-job",
              "1", "--cpus-per-job", "1", "--dry-run", timeout=patient(120), env=env)
    assert_user_error(done, "each job asks for 1 CPU and 1 GPU, and no node of this machine's Ray has them",
                      "(the largest: ", "0 GPUs)", "ask for less")
    fits = vs("study", "run", study, "--runs-dir", tmp_path / "runs", "--launcher", "ray", "--cpus-per-job",
              "1", "--dry-run", timeout=patient(120), env=env)
    assert fits.returncode == 0 and "dry run: would start 1 Ray task" in fits.stdout, fits.stderr
    assert not (tmp_path / "runs" / "raydry").exists()  # a dry run writes nothing


def children(pid: int) -> list[int]:
    return [child for child, (parent, _) in processes_with().items() if parent == pid]


def ray_task_of(log_name: str) -> int | None:
    """The process of the Ray task (`ray::run_worker`) that writes the job log `log_name`."""
    for pid in processes_with("ray::run_worker"):
        with contextlib.suppress(OSError):
            if any(os.readlink(fd).endswith(log_name) for fd in Path(f"/proc/{pid}/fd").iterdir()):
                return pid
    return None


def test_a_ray_task_whose_process_dies_starts_again_and_one_that_keeps_dying_is_named(tmp_path):
    """A Ray task killed (its node lost, Ray's memory monitor): the launch raised Ray's
    WorkerCrashedError with a traceback and stopped every other job. Now Ray starts it again, its
    `study work` dies with it (never two workers for one job), and a job that dies every time is named
    while the other job finishes the study."""
    pytest.importorskip("ray", reason="pip install 'visionstudy[cluster]'")
    from visionstudy.store.db import pid_alive
    from visionstudy.study.launch import RAY_RETRIES

    study = study_file(tmp_path, "raydies", epochs=LONG, seeds=3, variants={"a": {}})
    runs = tmp_path / "runs"
    proc = subprocess.Popen([sys.executable, "-m", "visionstudy", "study", "run", str(study), "--runs-dir",
                             str(runs), "--launcher", "ray", "--jobs", "2", "--quiet", "--no-report"],
                            cwd=ROOT, env={**os.environ, "RAY_ENABLE_UV_RUN_RUNTIME_ENV": "0"},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    kills, workers = [], []
    try:
        deadline = time.monotonic() + patient(240)
        while proc.poll() is None and time.monotonic() < deadline:
            task = ray_task_of("job-0.log")
            started = kills or any((runs / "raydies").glob("a/seed-*/history.csv"))
            if task and task not in kills and children(task) and started:
                workers += children(task)
                os.kill(task, signal.SIGKILL)
                kills.append(task)
            time.sleep(0.05)
        out, err = proc.communicate(timeout=patient(120))
    finally:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
    assert len(kills) == RAY_RETRIES + 1, (kills, out, err)
    assert proc.returncode == 0, out + err
    assert "2 Ray jobs ended (1 with an error)" in out and "3/3 runs finished" in out
    said = " ".join(err.split())
    assert "warning: every run finished, but 1 job ended with an error; the jobs' logs end with:" in said
    assert "error: its Ray task died (" in said and f"started {RAY_RETRIES + 1} times (job-0.log)" in said
    assert "Traceback" not in err
    assert "(raylet)" in out + err and "\x1b[" not in out + err  # Ray's lines, without colour codes in a file
    assert not [pid for pid in workers if pid_alive(pid)]  # each killed task's worker ended with it
    study_dir = runs / "raydies"
    check_once(f"sqlite:///{study_dir / 'study.db'}", "raydies", study_dir,
               {f"a/seed-{s}": LONG for s in range(3)})
