"""One worker pool, and the database and the disk always agreeing (issue #14, item 4)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from tests.conftest import read_only_copy
from tests.helpers import ROOT, assert_user_error, patient, processes_with, run_cli
from visionstudy.store import RunStore
from visionstudy.study import Placement, load_study, run_all

TINY = {"data": {"dataset": "digits", "max_train_samples": 400},
        "model": {"name": "cnn", "channels": [4, 8], "hidden": [16]},
        "train": {"epochs": 2, "batch_size": 64, "optimizer": {"name": "adam", "lr": 1e-2}}}

# imported by every process of a study started with PYTHONPATH=<its folder>: a model width of 7
# raises an error that is not ours (a bug, a library error) inside the run
CRASH = """
import visionstudy.models.cnn as cnn
_build = cnn.build_cnn
def build(in_channels, num_classes, size, p):
    if list(p.channels) == [7, 7]:
        raise RuntimeError("boom inside the model builder")
    return _build(in_channels, num_classes, size, p)
cnn.build_cnn = build
import visionstudy.models.base as base
spec = base.MODELS.get("cnn")
base.MODELS._items["cnn"] = base.ModelSpec(build, spec.params, spec.description, spec.kind)
"""


def write(tmp_path: Path, name: str, **fields) -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump({"name": name, **TINY, **fields}, sort_keys=False))
    return path


def study_cmd(path: Path, runs: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "visionstudy", "study", "run", str(path), "--runs-dir", str(runs),
            "--quiet", *extra]


def status(path: Path, runs: Path) -> str:
    return run_cli([sys.executable, "-m", "visionstudy", "study", "status", str(path), "--runs-dir",
                    str(runs)]).stdout


def test_an_unexpected_error_fails_its_run_once_the_others_go_on_and_the_exit_is_1(tmp_path):
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    (hooks / "sitecustomize.py").write_text(CRASH)
    path = write(tmp_path, "crash", variants={"ok": {}, "bad": {"model": {"channels": [7, 7]}}})
    runs = tmp_path / "runs"
    result = run_cli(study_cmd(path, runs, "--workers", "2", "--no-report"),
                     env={"PYTHONPATH": f"{hooks}:{os.environ.get('PYTHONPATH', '')}"})
    out = result.stdout + result.stderr
    assert result.returncode == 1, out
    assert "Traceback" not in out
    assert out.count("boom inside the model builder") == 1  # once, as it happens (it was printed twice)
    assert "1 of 2 runs failed (bad/seed-0; each error is above)" in " ".join(out.split())
    log = runs / "crash" / "bad" / "seed-0" / "run.log"
    assert "Traceback" in log.read_text() and "RuntimeError: boom" in log.read_text()
    assert str(log) in out
    assert (runs / "crash" / "ok" / "seed-0" / "metrics.json").is_file()
    from optuna.trial import TrialState

    store = RunStore(Placement(runs).url("crash"), "crash")
    bad = [t for t in store.trials() if t.user_attrs["run"] == "bad/seed-0"]
    assert [t.state for t in bad] == [TrialState.FAIL]  # once, not three worker deaths
    table = status(path, runs)
    assert next(ln for ln in table.splitlines() if " bad " in ln).split("│")[6].strip() == "1"  # failed


def test_a_study_says_each_of_its_runs_warnings_once_unless_quiet(tmp_path):
    """Each run of a study meets the same settings: bf16 emulated on this CPU, `data.val_fraction: 0`
    beside the dataset's own validation folder. Each is said once (the data's by the driver, which
    loads the data to check the models' shapes; bf16 by the worker, once, not once per run), and
    not at all with --quiet."""
    from PIL import Image

    from visionstudy.training.devices import cpu_runs_bf16

    root = tmp_path / "shapes"
    for split in ("train", "val", "test"):
        for c, cls in enumerate(("a", "b")):
            (root / split / cls).mkdir(parents=True)
            for i in range(6):
                Image.new("L", (8, 8), 40 + 150 * c + i).save(root / split / cls / f"{i}.png")
    path = write(tmp_path, "warned", data={"dataset": "imagefolder", "path": str(root), "image_size": 8,
                                           "val_fraction": 0},
                 train={**TINY["train"], "epochs": 1, "precision": "bf16"},
                 variants={"a": {}, "b": {"train": {"batch_size": 32}}, "c": {"train": {"batch_size": 16}}})
    said = {}
    for quiet in (False, True):
        cmd = study_cmd(path, tmp_path / f"runs-{quiet}", "--workers", "1", "--no-report", "--device", "cpu")
        result = run_cli(cmd if quiet else [c for c in cmd if c != "--quiet"])
        assert result.returncode == 0, result.stdout + result.stderr
        assert "3/3 runs finished" in result.stdout
        out = result.stdout + result.stderr
        said[quiet] = (out.count("bf16 on a CPU without bf16 units"),
                       out.count("data.val_fraction: 0 trains without validation; the dataset's own"))
    assert said == {False: (0 if cpu_runs_bf16() else 1, 1), True: (0, 0)}  # one worker, three runs


def test_a_search_with_two_workers_never_repeats_a_configuration(tmp_path):
    search = {"sampler": "random", "pruner": "none", "trials": 6, "seed": 3,
              "space": {"train.optimizer.lr": {"type": "float", "low": 1e-3, "high": 1e-1, "log": True}}}
    study = load_study(write(tmp_path, "srch", train={**TINY["train"], "epochs": 1}, search=search))
    place = Placement(tmp_path / "runs")
    run_all(study, place, workers=2, progress=False)
    import optuna

    from visionstudy.store.db import storage_for

    trials = optuna.load_study(study_name="srch:search", storage=storage_for(place.url("srch"))).get_trials()
    done = [t for t in trials if t.state.name == "COMPLETE"]
    assert len(done) == 6
    assert len({t.params["train.optimizer.lr"] for t in done}) == 6  # 6 distinct, not 3 twice
    folders = sorted(p.parent.name for p in (place.study_dir("srch") / "search").glob("*/metrics.json"))
    assert len(folders) == 6
    for t in done:  # each trial's folder ran its own values
        folder = place.study_dir("srch") / "search" / t.user_attrs["folder"]
        cfg = yaml.safe_load((folder / "config.yaml").read_text())
        assert cfg["train"]["optimizer"]["lr"] == pytest.approx(t.params["train.optimizer.lr"])


def test_a_search_over_a_small_space_runs_each_configuration_once_and_says_so(tmp_path):
    """Issue 26 item 4: TPE with `trials: 12` over 8 configurations once ran 4 and stopped
    silently, with 41 "duplicate" trials stored as FAILed. Now every configuration runs once, the
    database holds no failed trial, and both the run and `status` say the space was smaller."""
    search = {"sampler": {"name": "tpe", "n_startup_trials": 2, "multivariate": True}, "pruner": "none",
              "trials": 30,
              "space": {"model.hidden": [[8], [16]], "train.batch_size": [32, 64],
                        "train.optimizer.lr": [0.01, 0.02]}}
    path = write(tmp_path, "tiny8", train={**TINY["train"], "epochs": 1}, search=search)
    runs = tmp_path / "runs"
    result = run_cli(study_cmd(path, runs, "--workers", "2", "--no-report", "--only", "search",
                               "--trials", "12"))
    out = " ".join((result.stdout + result.stderr).split())
    assert result.returncode == 0, out
    assert "then a 12-trial search" in out  # the study's header says what runs (it once said 30)
    assert "the space holds 8 configurations, fewer than the 12 trials asked" in out
    import optuna

    from visionstudy.store.db import storage_for

    storage = storage_for(Placement(runs).url("tiny8"))
    trials = optuna.load_study(study_name="tiny8:search", storage=storage).get_trials()
    assert [t.state.name for t in trials] == ["COMPLETE"] * 8  # nothing FAILed, nothing twice
    assert len({json.dumps(t.params, sort_keys=True) for t in trials}) == 8
    shown = " ".join(status(path, runs).split())
    assert ("search: 8 of 12 trials (8 complete, 0 pruned, 0 running, 0 failed); the space holds only 8"
            in shown)


def test_data_parallel_run_inside_a_study_finishes(tmp_path):
    """`train.devices: 2` in a study used to hang forever (Fabric re-ran `study run` as rank 1)."""
    path = write(tmp_path, "ddp", train={**TINY["train"], "devices": 2, "threads": 1})
    runs = tmp_path / "runs"
    result = run_cli(study_cmd(path, runs, "--no-report", "--device", "cpu"), timeout=240)
    assert result.returncode == 0, result.stdout + result.stderr
    metrics = json.loads((runs / "ddp" / "baseline" / "seed-0" / "metrics.json").read_text())
    assert metrics["test_accuracy"] > 0.1 and metrics["epochs_run"] == 2


def test_deleted_results_are_missing_and_exactly_they_are_retrained(tmp_path):
    path = write(tmp_path, "miss", seeds=2)
    runs = tmp_path / "runs"
    place = Placement(runs)
    study = load_study(path)
    run_all(study, place, progress=False)
    kept = runs / "miss" / "baseline" / "seed-0" / "metrics.json"
    before = kept.stat().st_mtime_ns
    (runs / "miss" / "baseline" / "seed-1" / "metrics.json").unlink()
    line = next(ln for ln in status(path, runs).splitlines() if "baseline" in ln)
    assert [c.strip() for c in line.split("│")[1:-1]] == ["baseline", "2", "1", "0", "0", "0", "1", "0"]
    _, outcome = run_all(load_study(path), place, progress=False)
    assert outcome.trained == 1 and [k for k, _ in outcome.finished] == ["baseline/seed-1"]
    assert kept.stat().st_mtime_ns == before
    import shutil

    shutil.rmtree(runs / "miss" / "baseline" / "seed-0")
    _, outcome = run_all(load_study(path), place, progress=False)
    assert [k for k, _ in outcome.finished] == ["baseline/seed-0"] and outcome.done == 2


def test_nothing_to_do_is_not_said_while_another_process_trains(tmp_path):
    path = write(tmp_path, "busy", train={**TINY["train"], "epochs": 1000})  # killed below
    runs = tmp_path / "runs"
    proc = subprocess.Popen(study_cmd(path, runs, "--no-report"), cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        wait_running(Placement(runs).url("busy"), "busy", proc)
        result = run_cli(study_cmd(path, runs, "--no-report"))
        assert result.returncode == 0, result.stderr
        assert "nothing to do" not in result.stdout
        assert "1 runs are being trained by another process" in result.stdout
    finally:
        proc.kill()
        proc.wait()


def wait_running(url: str, name: str, proc: subprocess.Popen, timeout: float = 120) -> list:
    from optuna.trial import TrialState

    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            running = RunStore(url, name).trials((TrialState.RUNNING,))
        except Exception:  # noqa: BLE001 - the database is being created
            running = []
        if running and all("worker" in t.user_attrs for t in running):  # a claim writes its owner next
            return running
        assert proc.poll() is None, proc.communicate()[0]
        time.sleep(0.2)
    raise AssertionError("no run was ever seen running")


def stop_mid_run(path: Path, runs: Path, sig: int) -> str:
    """Start `study run` with 2 workers, send `sig` while runs train; check the stop, return output."""
    from optuna.trial import TrialState

    from visionstudy.store.db import pid_alive

    url = Placement(runs).url(path.stem)
    proc = subprocess.Popen(study_cmd(path, runs, "--workers", "2", "--no-report"), cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    running = wait_running(url, path.stem, proc)
    workers = [t.user_attrs["worker"]["pid"] for t in running]
    time.sleep(1.0)
    start = time.time()
    if sig == signal.SIGINT:
        os.killpg(proc.pid, sig)  # Ctrl-C reaches the whole process group
    else:
        proc.send_signal(sig)  # a scheduler's stop reaches the study process only
    out = proc.communicate(timeout=30)[0]
    assert time.time() - start < 10, out
    assert proc.returncode == 130, out
    assert "Traceback" not in out and "Error closing cursor" not in out
    said = "stopped by SIGTERM" if sig == signal.SIGTERM else "interrupted"
    assert f"{said}: the runs in progress went back to the queue" in " ".join(out.split()), out
    time.sleep(0.5)
    assert not any(pid_alive(p) for p in workers), out  # no orphan keeps training
    assert not RunStore(url, path.stem).trials((TrialState.RUNNING,))  # back in the queue
    return out


@pytest.mark.slow
def test_sigterm_and_ctrl_c_stop_every_worker_and_the_rerun_finishes_each_run_once(tmp_path):
    from optuna.trial import TrialState

    path = write(tmp_path, "stop", seeds=3, train={**TINY["train"], "epochs": 80})  # trains at each stop
    runs = tmp_path / "runs"
    stop_mid_run(path, runs, signal.SIGTERM)
    stop_mid_run(path, runs, signal.SIGINT)
    result = run_cli(study_cmd(path, runs, "--workers", "2", "--no-report"))
    assert result.returncode == 0, result.stdout + result.stderr
    done: dict[str, int] = {}
    for t in RunStore(Placement(runs).url("stop"), "stop").trials((TrialState.COMPLETE,)):
        done[t.user_attrs["run"]] = done.get(t.user_attrs["run"], 0) + 1
    assert done == {f"baseline/seed-{k}": 1 for k in range(3)}
    for k in range(3):
        history = (runs / "stop" / "baseline" / f"seed-{k}" / "history.csv").read_text().splitlines()
        assert [int(r.split(",")[0]) for r in history[1:]] == list(range(1, 81))  # resumed, not redone


@pytest.fixture(scope="module")
def finished_study(tmp_path_factory) -> Path:
    """The runs folder of a finished one-run study 'dmg' (copied by each test that damages it)."""
    root = tmp_path_factory.mktemp("dmg")
    path = write(root, "dmg", train={**TINY["train"], "epochs": 1})
    assert run_cli(study_cmd(path, root / "runs", "--no-report")).returncode == 0
    return root / "runs"


@pytest.mark.parametrize("damage", ["truncated", "random", "read-only"])
def test_a_damaged_or_read_only_database_is_one_clear_error(tmp_path, damage, finished_study):
    import shutil

    path = write(tmp_path, "dmg", train={**TINY["train"], "epochs": 1})
    runs = tmp_path / "runs"
    shutil.copytree(finished_study, runs)
    db = runs / "dmg" / "study.db"
    for extra in (runs / "dmg").glob("study.db-*"):
        extra.unlink()
    if damage == "truncated":
        db.write_bytes(db.read_bytes()[:1500])
    elif damage == "random":
        db.write_bytes(os.urandom(8192))
    with read_only_copy(db.parent) if damage == "read-only" else contextlib.nullcontext():
        status_cmd = [sys.executable, "-m", "visionstudy", "study", "status", str(path), "--runs-dir",
                      str(runs)]
        # `status` opens the database through the same check as `run`: once per kind of message
        for cmd in [study_cmd(path, runs, "--no-report"), *([status_cmd] if damage != "truncated" else [])]:
            result = run_cli(cmd)
            assert_user_error(result, str(db))
            assert ("read-only" if damage == "read-only" else "damaged") in result.stderr
    if damage != "read-only":  # the fix the message names: move it aside, the runs rebuild it
        db.rename(db.with_suffix(".bad"))
        result = run_cli(study_cmd(path, runs, "--no-report"))
        assert result.returncode == 0 and "nothing to do" in result.stdout, result.stderr
        assert "0/1" not in result.stdout  # no progress bar at 0 of the finished runs


def test_status_of_a_study_that_never_ran_creates_nothing(tmp_path):
    path = write(tmp_path, "never")
    runs = tmp_path / "runs"
    out = status(path, runs)
    assert "not started" in out and "0/1 runs done" in out
    assert not runs.exists()


def test_status_with_a_new_database_reads_the_finished_runs_from_their_folders(tmp_path, finished_study):
    """The runs finished under the study folder's own database; another, empty `--db` holds no
    queue, but the study has started: its finished runs are read from their folders."""
    import shutil

    path = write(tmp_path, "dmg", train={**TINY["train"], "epochs": 1})
    runs = tmp_path / "runs"
    shutil.copytree(finished_study, runs)
    shown = run_cli([sys.executable, "-m", "visionstudy", "study", "status", str(path), "--runs-dir",
                     str(runs), "--db", f"sqlite:///{tmp_path / 'other.db'}"])
    assert shown.returncode == 0, shown.stderr
    assert "1/1 runs done" in shown.stdout and "not started" not in shown.stdout, shown.stdout


def test_sqlite_on_a_network_file_system_is_refused(tmp_path, monkeypatch):
    from visionstudy.errors import StorageError
    from visionstudy.store import db

    monkeypatch.setattr(db, "mount_table", lambda: [("/", "ext4"), (str(tmp_path), "nfs4")])
    with pytest.raises(StorageError, match=r"network file system \(nfs4\).*--db postgresql://"):
        RunStore(f"sqlite:///{tmp_path / 'x' / 'study.db'}", "x")
    assert not (tmp_path / "x" / "study.db").exists()


def test_workers_are_pinned_to_gpus_round_robin(monkeypatch):
    import torch

    from visionstudy.study.pool import gpu_for

    monkeypatch.setattr(torch.cuda, "device_count", lambda: 3)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    assert [gpu_for(i) for i in range(5)] == ["0", "1", "2", "0", "1"]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "4,6,7")
    assert [gpu_for(i) for i in range(4)] == ["4", "6", "7", "4"]
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    assert gpu_for(3) is None  # one GPU: every worker shares it


def test_a_variant_cannot_take_the_report_or_search_folder(tmp_path):
    from visionstudy.errors import ConfigError

    for name in ("report", "search"):
        with pytest.raises(ConfigError, match=f"variant name '{name}' is reserved"):
            load_study(write(tmp_path, "rsv", variants={name: {}}))


def test_a_variant_cannot_take_a_launchers_folder_or_anothers_name_in_another_case(tmp_path):
    """`slurm` and `ray` hold a launch's job script and logs; `Report` and `report`, `cnn` and
    `CNN` are one folder on macOS's and Windows' disks (the second variant read the first's runs)."""
    from visionstudy.errors import ConfigError

    for name in ("slurm", "ray", "Report", "SEARCH"):
        with pytest.raises(ConfigError, match=f"variant name '{name}' is reserved"):
            load_study(write(tmp_path, "rsv", variants={name: {}}))
    with pytest.raises(ConfigError, match="variant names cnn and CNN differ only in case, and share one"):
        load_study(write(tmp_path, "case", variants={"cnn": {}, "CNN": {"model": {"batch_norm": True}}}))


def test_a_study_report_refuses_an_out_inside_a_run_and_a_read_only_folder(tmp_path, finished_study):
    import shutil

    runs = tmp_path / "runs"
    shutil.copytree(finished_study, runs)
    inside = runs / "dmg" / "baseline" / "seed-0" / "my-report"
    result = run_cli([sys.executable, "-m", "visionstudy", "report", str(runs / "dmg"), "--out", str(inside),
                      "--no-images"])
    assert_user_error(result, "inside the run folder")
    assert not inside.exists()
    locked = tmp_path / "ro"
    locked.mkdir()
    with read_only_copy(locked):
        result = run_cli([sys.executable, "-m", "visionstudy", "report", str(runs / "dmg"), "--out",
                          str(locked / "r"), "--no-images"])
        assert_user_error(result, "read-only", str(locked / "r"))


def test_an_interrupted_search_trial_resumes_from_its_last_checkpoint(tmp_path):
    import optuna

    from visionstudy.store.db import storage_for

    search = {"sampler": "random", "pruner": "none", "trials": 2, "seed": 1,
              "space": {"train.optimizer.lr": {"type": "float", "low": 1e-3, "high": 1e-2, "log": True}}}
    path = write(tmp_path, "sres", data={"dataset": "digits", "max_train_samples": 200},
                 train={**TINY["train"], "epochs": 40}, search=search)
    runs = tmp_path / "runs"
    proc = subprocess.Popen(study_cmd(path, runs, "--no-report"), cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    folder = runs / "sres" / "search" / "trial-000"
    deadline = time.time() + 120
    while not (folder / "history.csv").is_file():  # written just after last.pt, each epoch
        assert time.time() < deadline and proc.poll() is None
        time.sleep(0.1)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=20) == 130
    epochs_before = len((folder / "history.csv").read_text().splitlines()) - 1
    assert 1 <= epochs_before < 40
    result = run_cli(study_cmd(path, runs, "--no-report"))
    assert result.returncode == 0, result.stdout + result.stderr
    storage = storage_for(Placement(runs).url("sres"))
    trials = optuna.load_study(study_name="sres:search", storage=storage).get_trials()
    done = [t for t in trials if t.state.name == "COMPLETE"]
    folders = sorted(t.user_attrs["folder"] for t in done)
    assert len(done) == 2 and folders[0] == "trial-000" and len(set(folders)) == 2
    first = [t for t in trials if t.user_attrs.get("folder") == "trial-000"]
    assert len({t.params["train.optimizer.lr"] for t in first}) == 1  # resumed with its own values
    history = (folder / "history.csv").read_text().splitlines()[1:]
    assert [int(r.split(",")[0]) for r in history] == list(range(1, 41))  # continued, not restarted


def test_a_closed_pool_leaves_no_thread_behind():
    """Each queue's feeder thread outlived the pool, so the study's report (which forks its drawing
    process only from a process with one thread) drew every figure in place after `study run`."""
    import threading

    from visionstudy.study.pool import Pool

    def feeders() -> int:
        return sum(t.name == "QueueFeederThread" for t in threading.enumerate())

    before = feeders()
    pool = Pool(2, "cpu", None)
    pool.close()  # puts a stop sentinel in each inbox: a feeder thread per inbox
    assert feeders() == before and not any(p.is_alive() for p in pool.procs)


def test_a_worker_killed_between_two_runs_is_replaced_before_it_is_handed_one():
    """A worker killed while it waited for its next run was handed that run: the run then failed
    with "its worker process ended" (a death it never had, counted against it) and went back to
    the queue."""
    from visionstudy.study.pool import Pool

    pool = Pool(2, "cpu", None)
    try:
        gone = pool.pid(0)
        os.kill(gone, signal.SIGKILL)
        pool.procs[0].join(patient(30))
        assert pool.idle() == [0, 1]
        assert pool.pid(0) != gone and pool.procs[0].is_alive() and pool.procs[1].is_alive()
    finally:
        pool.close()


def test_a_worker_that_dies_after_writing_its_runs_results_reports_the_run_done(tmp_path):
    """A worker killed after its run's metrics.json was written and before its "done" event left it
    (the event lost with the process) made the run "died": counted a death, put back in the queue and
    said to resume in another worker. It is done, with its metrics; a run without results still died."""
    from visionstudy.config import RunConfig
    from visionstudy.study.pool import Job, Pool

    cfg = RunConfig.model_validate({"data": {"dataset": "digits"}})
    pool = Pool(2, "cpu", None)
    try:
        for i in (0, 1):
            os.kill(pool.pid(i), signal.SIGSTOP)  # holds its job unopened: the kill comes first
            pool.submit(i, Job(f"a/seed-{i}", str(tmp_path / f"seed-{i}"), cfg))
        (tmp_path / "seed-0").mkdir()
        (tmp_path / "seed-0" / "metrics.json").write_text('{"test_accuracy": 0.75}')
        for i in (0, 1):
            os.kill(pool.pid(i), signal.SIGKILL)
            pool.procs[i].join(patient(30))
        events = sorted(pool.events(0.1), key=lambda ev: ev.key)
        assert [(ev.kind, ev.key) for ev in events] == [("done", "a/seed-0"), ("died", "a/seed-1")]
        assert events[0].metrics == {"test_accuracy": 0.75}
        assert events[1].message == "its worker process ended (killed by SIGKILL)"
    finally:
        pool.close()


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_stop_during_a_claim_waits_for_its_end_then_acts(sig):
    steps: list[str] = []
    before = signal.signal(signal.SIGINT, signal.default_int_handler)  # a shell may start us ignoring it
    with contextlib.ExitStack() as restore:
        restore.callback(signal.signal, signal.SIGINT, before)
        check_stop_deferred(sig, steps)


def check_stop_deferred(sig: int, steps: list[str]) -> None:
    from visionstudy.stops import Stopped, sigterm_as_interrupt, stop_deferred

    with pytest.raises(KeyboardInterrupt) as stopped, sigterm_as_interrupt():
        with stop_deferred():
            os.kill(os.getpid(), sig)
            time.sleep(0.05)  # a handler would have run here
            steps.append("claimed")
            steps.append("noted")  # the bookkeeping finishes
        steps.append("after")  # never reached: the stop acts at the block's end
    assert steps == ["claimed", "noted"]
    assert isinstance(stopped.value, Stopped) == (sig == signal.SIGTERM)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # handlers restored


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")  # the lost exception
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_stop_whose_exception_python_swallowed_is_raised_where_the_driver_looks(sig, monkeypatch):
    """A Ctrl-C that landed in a weakref callback (SQLAlchemy's `_collection_gced`) was printed as
    "Exception ignored" and lost, and the study trained to its end (a SIGTERM so lost also left
    further stops ignored). The stop is remembered and raised at the driver loop's next look
    (`Pool.events`), without the traceback Python printed for it; one that unwound the study leaves
    nothing behind for the next."""
    import weakref

    from visionstudy.stops import STOPS, Stopped, raise_lost_stop, sigterm_as_interrupt

    class Held:
        pass

    printed: list = []  # what Python's hook would print as "Exception ignored ... Traceback"
    monkeypatch.setattr(sys, "unraisablehook", printed.append)
    before = signal.signal(signal.SIGINT, signal.default_int_handler)  # a shell may start us ignoring it
    try:
        with pytest.raises(KeyboardInterrupt) as stopped, sigterm_as_interrupt():
            held = Held()
            ref = weakref.ref(held, lambda r: signal.getsignal(sig)(sig, None))  # the handler, in a callback
            del held  # its exception would be printed as "Exception ignored" and the code goes on
            assert ref() is None
            raise_lost_stop()
        assert isinstance(stopped.value, Stopped) == (sig == signal.SIGTERM)
        assert printed == [] and sys.unraisablehook == printed.append  # others' still printed, after
        with sigterm_as_interrupt():  # the next study in this process (a notebook's) is not stopped
            assert not STOPS
            raise_lost_stop()
    finally:
        signal.signal(signal.SIGINT, before)


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads processes from /proc")
def test_a_killed_workers_data_parallel_train_process_ends_with_it_and_the_run_is_redone(tmp_path):
    """A data-parallel run is a `visionstudy train` child of its worker: killed with the worker, the
    child trained on, holding the run folder's lock, and the worker that took the run next failed
    on that lock ("being written by another process")."""
    path = write(tmp_path, "ddpkill", train={**TINY["train"], "epochs": 40, "devices": 2, "threads": 1})
    runs = tmp_path / "runs"
    run = runs / "ddpkill" / "baseline" / "seed-0"
    started = time.time() - 1
    proc = subprocess.Popen(study_cmd(path, runs, "--no-report", "--device", "cpu", "--workers", "1"),
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline, ranks = time.time() + patient(180), {}
        while time.time() < deadline and proc.poll() is None:
            ranks = processes_with("visionstudy", " train ", str(run))
            lock = run / ".lock"
            held = lock.is_file() and lock.read_text().strip()
            if len(ranks) == 2 and held and (run / "history.csv").is_file():
                break
            time.sleep(0.1)
        assert len(ranks) == 2, f"the run's two ranks never trained: {ranks}"
        worker = next(ppid for ppid, _ in ranks.values() if ppid not in ranks)
        os.kill(worker, signal.SIGKILL)
        gone = time.time() + patient(15)
        while time.time() < gone and set(ranks) & set(processes_with("visionstudy", " train ", str(run))):
            time.sleep(0.1)
        left = set(ranks) & set(processes_with("visionstudy", " train ", str(run)))
        assert not left, "the killed worker's train processes outlived it"
        out, _ = proc.communicate(timeout=patient(240))
    finally:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        for pid in processes_with("visionstudy", " train ", str(run)):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    assert proc.returncode == 0, out
    assert "resumes in another worker" in out and "being written by another process" not in out
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["epochs_run"] == 40
    # the killed worker's config for the ranks was left in /tmp, one more file per kill
    import tempfile

    left = [p for p in Path(tempfile.gettempdir()).glob("*.yaml")
            if p.stat().st_mtime >= started and "name: ddpkill.baseline" in p.read_text(errors="replace")]
    assert left == []
