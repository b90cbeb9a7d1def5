"""Helpers the tests (and bench/cluster.py) share: the repository root, running the CLI as a user
does (`vs`, `assert_user_error`), finding Chromium, and a real one-node SLURM.

`one_node_slurm(folder)` starts Debian's munged, slurmctld and slurmd (installed by
`scripts/setup.sh --dev`) on private ports, sockets and state folders, with two partitions: `work`
(the default) and `urgent`, whose jobs preempt `work`'s (partition priority, REQUEUE). It yields
the environment that points SLURM's commands at it (`SLURM_CONF`).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TINY = {"name": "api-digits", "data": {"dataset": "digits"},  # a run config that trains in a second
        "model": {"name": "cnn", "channels": [8], "hidden": [16]},
        "train": {"epochs": 3, "batch_size": 64, "optimizer": {"name": "adam", "lr": 1e-2}}}


def patient(seconds: float) -> float:
    """A time limit that scales with the machine: × the 1-minute load per core when the machine is
    busier than its cores (users' CI machines often are), or × $VISIONSTUDY_TEST_SLOWDOWN. Limits
    that guard against hangs use it; a test that measures a promise ("stops within 10 s") does not,
    and says so in its name."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    busy = os.getloadavg()[0] / cores if hasattr(os, "getloadavg") else 1.0
    return seconds * max(1.0, busy, float(os.environ.get("VISIONSTUDY_TEST_SLOWDOWN") or 1))


def vs(*args: object, env: dict | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    """`python -m visionstudy ARGS` from the repository root, as a user runs it (no stdin), in a
    process of its own (`run_cli`)."""
    return run_cli([sys.executable, "-m", "visionstudy", *map(str, args)], env, timeout)


# What a `python -m visionstudy` process imports before its work (torch is 3 s of it on a slow
# machine): imported once by a forkserver, whose forks then start as fresh CLI processes. Not the
# CLI module itself (0.04 s): its consoles read the terminal and the environment as it is imported.
WARM_MODULES = ["torch", "visionstudy.experiment", "visionstudy.study.pool",
                "visionstudy.study.execute", "visionstudy.store.db", "visionstudy.report",
                "matplotlib.pyplot", "scipy.stats"]


def run_cli(cmd: list[str], env: dict | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    """`cmd`, a `python -m visionstudy ...` command (as `Popen` would take it), run to its end from
    the repository root with no stdin, its output captured, in a process forked from a forkserver
    that imported `WARM_MODULES` once per test process: its own process, environment, exit code,
    signals and children, without the interpreter's start-up and the imports (the tests start a
    few hundred; `warm_cli_main`)."""
    assert cmd[:3] == [sys.executable, "-m", "visionstudy"], f"not a visionstudy command: {cmd[:3]}"
    env = {**os.environ, **(env or {})}
    import multiprocessing
    import tempfile

    from visionstudy.study.pool import caller_script_not_rerun

    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(WARM_MODULES)  # the first start of this process's forkserver uses it
    with tempfile.TemporaryDirectory(prefix="vs-cli-") as folder:
        out, err = Path(folder) / "stdout", Path(folder) / "stderr"
        out.touch()
        err.touch()
        proc = ctx.Process(target=warm_cli_main, args=(cmd, env, str(out), str(err)))
        with caller_script_not_rerun(ctx):
            proc.start()
        proc.join(patient(timeout))
        if proc.exitcode is None:
            proc.kill()
            proc.join()
            raise subprocess.TimeoutExpired(cmd, patient(timeout), out.read_text(), err.read_text())
        return subprocess.CompletedProcess(cmd, proc.exitcode, out.read_text(errors="replace"),
                                           err.read_text(errors="replace"))


# Environment variables a process may read while it imports `WARM_MODULES` (Python's own, the
# thread pools', torch's, CUDA's, matplotlib's, and ours: module constants such as
# VISIONSTUDY_GRACE_SECONDS)
IMPORT_TIME_ENV = ("PYTHON", "VISIONSTUDY_", "OMP_", "MKL_", "KMP_", "OPENBLAS_", "TORCH", "CUDA", "MPL",
                   "LD_", "HOME", "XDG_")
# but these are read where they are used, not at import: each test's own cache folder (the autouse
# `isolated_cache`; matplotlib's font list, read from the forkserver's at import, is only a cache), its
# data folder, torch hub's folder (`torch.hub.get_dir`) and torch's compile cache; and scikit-learn
# sets these two itself as it is imported (a test process that has not imported it lacks them). A
# fallback to `exec` for any of them made a hundred of the suite's CLI processes fresh interpreters
# (bench/results/suite.md).
READ_WHEN_USED_ENV = {"XDG_CACHE_HOME", "VISIONSTUDY_DATA_DIR", "VISIONSTUDY_DOWNLOAD_URL", "TORCH_HOME",
                      "TORCHINDUCTOR_CACHE_DIR"}
SET_BY_IMPORTS = {"KMP_DUPLICATE_LIB_OK": "True", "KMP_INIT_AT_FORK": "FALSE"}


def import_time_env(env: dict[str, str]) -> dict[str, str]:
    """The variables of `env` that a process reads as it imports `WARM_MODULES`."""
    out = {k: v for k, v in env.items() if k.startswith(IMPORT_TIME_ENV) and k not in READ_WHEN_USED_ENV}
    return {**out, **{k: out.get(k, v) for k, v in SET_BY_IMPORTS.items()}}


def warm_cli_main(cmd: list[str], env: dict[str, str], out: str, err: str) -> None:
    """In the forked process: become `cmd` (`python -m visionstudy ARGS`: environment, working
    folder, no stdin, stdout and stderr to files), then end as the interpreter ends: threads joined,
    atexit's functions, and the SQLite connections still open closed (multiprocessing's child ends
    with `os._exit`, where an interpreter's end closes them, and the last to close folds SQLite's
    write-ahead log into the database file). Where the environment differs from the forkserver's in
    a variable read at import, the process becomes a fresh interpreter instead (`exec`)."""
    import atexit
    import gc
    import runpy
    import sqlite3
    import threading

    os.chdir(ROOT)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    for fd, path in ((1, out), (2, err)):
        target = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.dup2(target, fd)
        os.close(target)
    if import_time_env(dict(os.environ)) != import_time_env(env):
        os.execve(cmd[0], cmd, env)
    os.environ.clear()
    os.environ.update(env)
    sys.argv = [str(ROOT / "src" / "visionstudy" / "__main__.py"), *cmd[3:]]
    try:
        runpy.run_module("visionstudy", run_name="__main__", alter_sys=True)
    finally:
        threading._shutdown()  # type: ignore[attr-defined]  # as the interpreter does at its end
        atexit._run_exitfuncs()
        for connection in [o for o in gc.get_objects() if type(o) is sqlite3.Connection]:
            with contextlib.suppress(sqlite3.Error):
                connection.close()


def vs_here(*args: object) -> subprocess.CompletedProcess:
    """The CLI run in this process (no interpreter start-up), with `vs`'s result: for commands
    whose start-up is not what the test is about. The root logger is given back as it was (the CLI
    configures it: `--quiet` would hide later tests' warnings from caplog)."""
    import io
    import logging
    from unittest import mock

    from visionstudy import cli

    root = logging.getLogger()
    level, handlers = root.level, root.handlers[:]
    out, err, code = io.StringIO(), io.StringIO(), 0
    # This process is no fresh CLI process: earlier tests ran torch here (its OpenMP threads), and
    # a study's workers forked from it hung in their first parallel region (a single-process
    # pytest; xdist's own thread hid it). Beside another Python thread the commands take their
    # thread-safe paths (a forkserver, figures drawn in place), as in a notebook.
    stop = threading.Event()
    threading.Thread(target=stop.wait, daemon=True).start()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), \
            mock.patch.object(sys, "argv", ["visionstudy", *map(str, args)]):
        try:
            cli.main()
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        finally:
            stop.set()
            root.setLevel(level)
            root.handlers[:] = handlers
    return subprocess.CompletedProcess(list(args), code, out.getvalue(), err.getvalue())


def assert_user_error(result: subprocess.CompletedProcess, *needles: str) -> None:
    """A user error: exit 2, no traceback, and each needle in the message."""
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    for needle in needles:
        assert needle in " ".join(result.stderr.split()), result.stderr


def chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed: scripts/setup.sh --dev installs Debian's chromium")
        pytest.skip("chromium is not installed (scripts/setup.sh --dev installs it)")
    return path


SLURM_TOOLS = ("munged", "slurmctld", "slurmd", "sbatch", "squeue", "scontrol", "scancel")


def slurm_missing() -> str | None:
    """Why a one-node SLURM cannot start here, or None."""
    missing = [t for t in SLURM_TOOLS if shutil.which(t) is None and not Path(f"/usr/sbin/{t}").exists()]
    if missing:
        return (f"{', '.join(missing)} not installed "
                "(scripts/setup.sh --dev installs slurmctld, slurmd, munge)")
    if os.geteuid() != 0:
        return "a one-node SLURM runs its daemons as root (SlurmUser=root) and munged as munge"
    return None


def free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def slurm_conf(folder: Path, host: str, ports: list[int], cpus: int) -> str:
    return f"""ClusterName=vstest
SlurmctldHost={host}(127.0.0.1)
SlurmctldPort={ports[0]}
SlurmdPort={ports[1]}
AuthType=auth/munge
AuthInfo=socket={folder}/munge/socket
CredType=cred/munge
SlurmUser=root
SlurmdUser=root
StateSaveLocation={folder}/state
SlurmdSpoolDir={folder}/spool
SlurmctldPidFile={folder}/slurmctld.pid
SlurmdPidFile={folder}/slurmd.pid
SlurmctldLogFile={folder}/slurmctld.log
SlurmdLogFile={folder}/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/builtin
# the main scheduling pass every second, not every minute: a requeued job released by the tests
# starts at once instead of at the next periodic pass (130 s -> 31 s for the preemption test)
SchedulerParameters=sched_interval=1
PreemptType=preempt/partition_prio
PreemptMode=REQUEUE
JobRequeue=1
MpiDefault=none
ReturnToService=2
KillWait=10
MinJobAge=300
# a small cap on a job array's size (1001 by default), for the test of a --jobs beyond it
MaxArraySize=5
NodeName={host} NodeAddr=127.0.0.1 CPUs={cpus} State=UNKNOWN
PartitionName=work Nodes={host} Default=YES MaxTime=INFINITE State=UP PriorityTier=1
PartitionName=urgent Nodes={host} MaxTime=INFINITE State=UP PriorityTier=10 PreemptMode=OFF
"""


def start_munge(folder: Path) -> None:
    munge = folder / "munge"
    munge.mkdir()
    key = munge / "key"
    key.write_bytes(os.urandom(1024))
    for path in (munge, key):
        shutil.chown(path, "munge")
    os.chmod(key, 0o400)
    os.chmod(munge, 0o711)  # munged checks that clients can reach its socket
    subprocess.run(["runuser", "-u", "munge", "--", "munged", f"--socket={munge}/socket",
                    f"--key-file={key}", f"--pid-file={munge}/pid", f"--log-file={munge}/log",
                    f"--seed-file={munge}/seed"], check=True, capture_output=True)


@contextlib.contextmanager
def one_node_slurm(folder: Path, cpus: int = 2) -> Iterator[dict[str, str]]:
    """A running one-node SLURM whose files live in `folder`; yields its environment."""
    folder.mkdir(parents=True, exist_ok=True)
    os.chmod(folder, 0o755)  # the munge user must traverse it
    for name in ("state", "spool"):
        (folder / name).mkdir()
    host = socket.gethostname()
    conf = folder / "slurm.conf"
    conf.write_text(slurm_conf(folder, host, free_ports(2), cpus))
    env = {**os.environ, "SLURM_CONF": str(conf)}
    start_munge(folder)
    try:
        subprocess.run(["slurmctld", "-i"], env=env, check=True, capture_output=True)
        subprocess.run(["slurmd", "-N", host], env=env, check=True, capture_output=True)
        deadline = time.monotonic() + 30
        while "idle" not in subprocess.run(["sinfo", "-h", "-o", "%T"], env=env, capture_output=True,
                                           text=True).stdout:
            if time.monotonic() > deadline:
                raise RuntimeError("the one-node SLURM did not come up:\n" +
                                   (folder / "slurmctld.log").read_text()[-2000:])
            time.sleep(0.1)
        yield {"SLURM_CONF": str(conf)}
    finally:
        stop_slurm(folder, env)


def stop_slurm(folder: Path, env: dict[str, str]) -> None:
    """Every job killed and gone from the queue (a few seconds at most), then the daemons stopped:
    stopped while jobs still ran, slurmd left their job-step daemons behind."""
    subprocess.run(["scancel", "--full", "--signal=KILL", "-u", "root"], env=env, capture_output=True)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and subprocess.run(
            ["squeue", "-h"], env=env, capture_output=True, text=True).stdout.strip():
        time.sleep(0.2)
    pids = []
    for pid_file in ("slurmd.pid", "slurmctld.pid", "munge/pid"):
        with contextlib.suppress(OSError, ValueError):
            pids.append(int((folder / pid_file).read_text().strip()))
    for pid in pids:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and any(Path(f"/proc/{pid}").exists() for pid in pids):
        time.sleep(0.1)
    for pid in pids:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)


# --------------------------------------------------------------------------------- printed reports


def squash(text: str) -> str:
    """Text as compared across PDF extractors: NFKC (ligatures), no spaces, no underscores
    (pdflatex's OT1 fonts draw `_` as a rule)."""
    import re
    import unicodedata

    return re.sub(r"[\s_]+", "", unicodedata.normalize("NFKC", text))


def text_off_the_page(pdf: Path) -> list[tuple[int, str]]:
    """(page, text) for each fragment drawn past a page's edge (width by 0.5 em a character)."""
    import pypdf

    out: list[tuple[int, str]] = []
    for n, page in enumerate(pypdf.PdfReader(pdf).pages, 1):
        width = float(page.mediabox.width)

        def visit(text, cm, tm, font, size, n=n, width=width):
            x = tm[4] * cm[0] + tm[5] * cm[2] + cm[4]
            if text.strip() and (x < -1 or x + 0.5 * abs(size * cm[0]) * len(text.rstrip()) > width + 1):
                out.append((n, text[:60]))

        page.extract_text(visitor_text=visit)
    return out


def assert_printed_whole(study_dir: Path, out: Path, tables: list[str]) -> dict[str, str]:
    """Write the study's report as PDF (Chromium) and LaTeX, compile the LaTeX with pdflatex, and
    check every character stays on the page: TeX reports no overfull line, the Chromium PDF draws
    no text past a page's edge, and every header of `tables` is in both documents. Returns each
    PDF's squashed text."""
    import csv

    import pypdf

    pdflatex = shutil.which("pdflatex")
    if pdflatex is None:
        if os.environ.get("CI"):
            pytest.fail("pdflatex is not installed: scripts/setup.sh --dev installs texlive-latex-base")
        pytest.skip("pdflatex is not installed (scripts/setup.sh --dev installs it)")
    chromium()
    made = vs("report", study_dir, "--out", out, "--format", "pdf", "--format", "latex", "--no-images",
              "--tsne-points", "60")
    assert made.returncode == 0, made.stderr
    tex = subprocess.run([pdflatex, "-interaction=nonstopmode", "-halt-on-error", "report-latex.tex"],
                         cwd=out, capture_output=True, text=True, timeout=300)
    assert tex.returncode == 0, tex.stdout[-3000:]
    overfull = [line for line in (out / "report-latex.log").read_text(errors="replace").splitlines()
                if line.startswith("Overfull")]
    assert overfull == []
    assert text_off_the_page(out / "report.pdf") == []
    texts = {pdf: squash("".join(p.extract_text() for p in pypdf.PdfReader(out / pdf).pages))
             for pdf in ("report.pdf", "report-latex.pdf")}
    for table in tables:
        with (out / "tables" / table).open(newline="") as f:
            header = next(csv.reader(f))
        for pdf, text in texts.items():
            assert [c for c in header if squash(c) not in text] == [], (pdf, table)
    return texts


def kill_one_worker_mid_run(cmd: list[str], url: str, name: str,
                            study_dir: Path) -> tuple[subprocess.Popen, int, str]:
    """Start `study run` and SIGKILL one worker process while it trains a run (of `study_dir`)."""
    from optuna.trial import TrialState

    from visionstudy.store import RunStore

    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + patient(240)
    # each look opens the study read-only (create_study, a write, raced the workers for SQLite's lock)
    # and afresh (a store kept across looks once saw no run of a whole study: a fresh clone, 11:35)
    while time.time() < deadline:
        if proc.poll() is not None:  # it looked for 240 s more at a study that had ended
            raise AssertionError(f"the study ended before a run was seen running:\n{proc.stdout.read()}")
        try:
            store = RunStore(url, name, create=False)
            running = store.trials((TrialState.RUNNING,))
        except Exception:  # the database is being created
            running = []
        if running:  # a claim marks its trial RUNNING, then records its worker: seen between, wait
            worker = running[0].user_attrs.get("worker")
            if worker and worker["pid"] != proc.pid:
                # frozen first, so that the run it holds now is the one the kill interrupts: on a busy
                # machine a tiny run (0.3 s) could end between this look and the kill, and the kill
                # land in the next run or between two (CI, 2026-12-06)
                pid = worker["pid"]
                os.kill(pid, signal.SIGSTOP)
                # a run still RUNNING in the database whose results are on disk is one the worker has
                # finished and the driver not yet recorded: the worker waits for its next run, and
                # the kill would fail that next one (CI, 2026-12-07: killed b/seed-1, not a/seed-2)
                from visionstudy.store.rundir import RunDir

                held = [t.user_attrs["run"] for t in store.trials((TrialState.RUNNING,))
                        if (t.user_attrs.get("worker") or {}).get("pid") == pid
                        and not RunDir(study_dir / t.user_attrs["run"]).is_finished()]
                if held:
                    os.kill(pid, signal.SIGKILL)
                    return proc, pid, held[0]
                os.kill(pid, signal.SIGCONT)  # between two runs: look again
        time.sleep(0.05)
    proc.kill()
    raise AssertionError("no run was ever seen running")


def hold_first_claimer(url: str, name: str, limit: float = 240) -> tuple[int, int]:
    """Stop (SIGSTOP) the first worker seen training a run of study `name` until a worker of another
    process claims one too, then let it go on; returns both workers' pids. However unevenly a loaded
    machine starts two processes (a tiny run takes 0.3 s; the second process's start can take
    seconds), each then takes a run: the test shows that they share the queue, not which was faster.
    A stopped worker stays alive and within its heartbeat's grace, so nothing reclaims its run."""
    import sqlalchemy as sa
    from optuna.trial import TrialState

    from visionstudy.store import RunStore
    from visionstudy.store.db import normalize_url

    engine = sa.create_engine(normalize_url(url))

    def claimers() -> list[int]:
        # only once the processes under test made the tables (they race to; Optuna's storage would
        # make them itself and take part in that race)
        if not sa.inspect(engine).has_table("trial_user_attributes"):
            return []
        try:
            trials = RunStore(url, name, create=False).trials((TrialState.RUNNING, TrialState.COMPLETE))
        except Exception:  # the study is not recorded yet
            return []
        return [t.user_attrs["worker"]["pid"] for t in trials if "worker" in t.user_attrs]

    deadline = time.time() + patient(limit)
    first = 0
    try:
        while time.time() < deadline:
            pids = claimers()
            if pids and not first:
                first = pids[0]
                os.kill(first, signal.SIGSTOP)
            others = [p for p in pids if p != first]
            if others:
                return first, others[0]
            time.sleep(0.05)
        raise AssertionError(f"no second worker claimed a run within {limit} s (first: {first or None})")
    finally:
        if first:
            os.kill(first, signal.SIGCONT)
        engine.dispose()


def check_killed_worker_study(proc: subprocess.Popen, url: str, name: str, runs: Path, victim: int,
                              key: str, total: int) -> None:
    """The study `kill_one_worker_mid_run` started finished every run exactly once."""
    from optuna.trial import TrialState

    from visionstudy.store import RunStore

    out = proc.communicate(timeout=600)[0]
    assert proc.returncode == 0, out
    assert f"{total}/{total} runs finished" in out
    store = RunStore(url, name)
    done: dict[str, int] = {}
    for t in store.trials((TrialState.COMPLETE,)):
        done[t.user_attrs["run"]] = done.get(t.user_attrs["run"], 0) + 1
    assert len(done) == total and set(done.values()) == {1}  # every run exactly once
    killed = [t.user_attrs["run"] for t in store.trials((TrialState.FAIL,))
              if t.user_attrs["worker"]["pid"] == victim]
    assert killed == [key], (killed, key)  # the victim's run failed, then was redone
    assert len(list((runs / name).glob("*/seed-*/metrics.json"))) == total
    assert "database is locked" not in out


PLAN_AT = """
import sys, time
from visionstudy.store import RunStore
store = RunStore(sys.argv[1], sys.argv[2])
plan = {f"v{i}/seed-0": f"hash{i}" for i in range(40)}
time.sleep(max(0.0, float(sys.argv[3]) - time.time()))
print(store.sync(plan, {}))
"""


def plan_twice_at_once(url: str, name: str) -> list[int]:
    """Two processes plan the same 40-run study in `url` at the same instant (a cluster's launcher
    and its first job); returns how many runs each queued, after checking each run is queued once."""
    from visionstudy.store import RunStore

    RunStore(url, name)  # the study exists: the race under test is the planning, not its creation
    at = str(time.time() + patient(6))  # both processes have imported by then
    procs = [subprocess.Popen([sys.executable, "-c", PLAN_AT, url, name, at], cwd=ROOT, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(2)]
    outs = [p.communicate(timeout=patient(120)) for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    keys = Counter(t.user_attrs["run"] for t in RunStore(url, name).trials())
    assert keys == {f"v{i}/seed-0": 1 for i in range(40)}
    return sorted(int(out.strip()) for out, _ in outs)


def drawn_texts(fig) -> list[tuple[str, object]]:
    """Every text a drawn figure shows, with its box in pixels (matplotlib's renderer): titles,
    axis labels, legends, annotations and the tick labels inside each axis's view (an axis keeps
    label objects for ticks it does not draw)."""
    from matplotlib.text import Text

    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    ticks: dict[int, bool] = {}
    for ax in fig.axes:
        for axis in (ax.xaxis, ax.yaxis):
            lo, hi = sorted(axis.get_view_interval())
            slack = (hi - lo) * 1e-9
            for tick in [*axis.get_major_ticks(), *axis.get_minor_ticks()]:
                shown = lo - slack <= tick.get_loc() <= hi + slack
                for label in (tick.label1, tick.label2):
                    ticks[id(label)] = shown and label.get_visible()
    return [(t.get_text(), t.get_window_extent(renderer)) for t in fig.findobj(Text)
            if ticks.get(id(t), t.get_visible()) and t.get_text().strip()]


def assert_texts_fit(fig) -> list[str]:
    """No text leaves the figure and no two texts overlap (a pixel of slack); returns the texts."""
    texts = drawn_texts(fig)
    width, height = fig.canvas.get_width_height()
    for text, box in texts:
        assert box.x0 >= -1 and box.y0 >= -1 and box.x1 <= width + 1 and box.y1 <= height + 1, \
            f"{text!r} leaves the {width}x{height} figure: {box}"
    for i, (a, box_a) in enumerate(texts):
        for b, box_b in texts[i + 1:]:
            shrunk = box_b.expanded(1.0, 1.0).padded(-1)
            assert not box_a.overlaps(shrunk), f"{a!r} overlaps {b!r}"
    return [t for t, _ in texts]


@contextlib.contextmanager
def every_figure_checked() -> Iterator[dict[str, list[str]]]:
    """Inside: each report figure is drawn in this process and checked by `assert_texts_fit`
    before its files are written; yields {file name within figures/: its texts}. On leaving,
    every figure that failed is named in one assertion."""
    from visionstudy.report import drawing

    checked: dict[str, list[str]] = {}
    failed: list[str] = []
    write = drawing.write_files

    def check_then_write(fig, jobs):
        from PIL import Image

        png = jobs[0][0]
        name = f"{png.parent.name}/{png.name}" if png.parent.name != "figures" else png.name
        fig.set_dpi(jobs[0][1]["dpi"])  # drawn once at the PNG's resolution: checked, then written
        try:
            checked[name] = assert_texts_fit(fig)
        except AssertionError as exc:
            failed.append(f"{name}: {exc}")
        Image.frombuffer("RGBA", fig.canvas.get_width_height(), fig.canvas.buffer_rgba()).save(png)
        write(fig, jobs[1:])  # the vector copies, if any

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(drawing, "drawing_workers", lambda: 0)
        mp.setattr(drawing, "write_files", check_then_write)
        yield checked
    assert not failed, "\n".join(failed)


def trials_by_run(store) -> dict:
    """A RunStore's trials through Optuna, by run key (what the store's own queries must agree with)."""
    out: dict = {}
    for trial in store.trials():
        out.setdefault(trial.user_attrs["run"], []).append(trial)
    return out


def processes_with(*words: str) -> dict[int, tuple[int, str]]:
    """pid → (parent pid, command line) of this machine's processes whose command line holds `words`."""
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        with contextlib.suppress(OSError):
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode()
            ppid = int(Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[1])
            if all(w in cmdline for w in words):
                found[int(entry)] = (ppid, cmdline)
    return found
