"""Two worker processes on one study in a real PostgreSQL server: every run done exactly once.

The server is Debian's `postgresql` (installed by `scripts/setup.sh --dev`), started in a temporary
folder on a private port as the `postgres` user and stopped afterwards.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import yaml

from tests.helpers import (
    ROOT,
    check_killed_worker_study,
    hold_first_claimer,
    kill_one_worker_mid_run,
    plan_twice_at_once,
)


def pg_bin() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not found or shutil.which("runuser") is None or os.geteuid() != 0:
        if os.environ.get("CI"):
            pytest.fail("PostgreSQL is not installed: scripts/setup.sh --dev installs Debian's postgresql")
        pytest.skip("needs Debian's postgresql and root (to run the server as the postgres user)")
    return Path(found[-1]).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def postgres():
    bin_dir = pg_bin()
    home = Path(tempfile.mkdtemp(prefix="visionstudy-pg-"))  # pytest's folders are root-only
    os.chmod(home, 0o755)
    data = home / "data"
    data.mkdir()
    shutil.chown(data, "postgres")
    port = free_port()
    as_pg = ["runuser", "-u", "postgres", "--"]
    subprocess.run([*as_pg, str(bin_dir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres"],
                   check=True, capture_output=True)
    subprocess.run([*as_pg, str(bin_dir / "pg_ctl"), "-D", str(data), "-w", "-l", str(data / "log"),
                    "-o", f"-p {port} -k {data} -c listen_addresses=127.0.0.1", "start"],
                   check=True, capture_output=True)
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"  # the README's form
    finally:
        subprocess.run([*as_pg, str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "fast", "stop"],
                       capture_output=True)
        shutil.rmtree(home, ignore_errors=True)


def test_two_workers_share_one_study_in_postgres(postgres, tmp_path):
    from optuna.trial import TrialState

    from visionstudy.store import RunStore
    from visionstudy.study import load_study

    study = tmp_path / "pg.yaml"
    study.write_text(yaml.safe_dump({
        "name": "pgstudy", "data": {"dataset": "digits"},
        "model": {"name": "cnn", "channels": [4, 8], "hidden": [16]},
        "train": {"epochs": 3, "batch_size": 64}, "seeds": 3,
        "variants": {"a": {}, "b": {"model": {"batch_norm": True}}},
    }, sort_keys=False))
    runs = tmp_path / "shared-runs"
    cmd = [sys.executable, "-m", "visionstudy", "study", "run", str(study), "--db", postgres,
           "--runs-dir", str(runs), "--quiet", "--no-report"]
    # two "machines": two study processes started at once on one database and runs folder
    procs = [subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for _ in range(2)]
    try:
        pair = hold_first_claimer(postgres, "pgstudy")
    finally:
        outs = [p.communicate(timeout=600)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    store = RunStore(postgres, "pgstudy")
    done: dict[str, int] = {}
    for t in store.trials((TrialState.COMPLETE,)):
        done[t.user_attrs["run"]] = done.get(t.user_attrs["run"], 0) + 1
    keys = [r.key for r in load_study(study).runs]
    assert done == {k: 1 for k in keys}
    assert all((runs / "pgstudy" / k / "metrics.json").is_file() for k in keys)
    workers = {(t.user_attrs["worker"]["pid"]) for t in store.trials((TrialState.COMPLETE,))}
    assert workers >= set(pair)  # both processes took runs from the one queue
    again = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert "nothing to do" in again.stdout


def test_unreachable_database_is_a_clear_error(tmp_path):
    study = tmp_path / "s.yaml"
    study.write_text(yaml.safe_dump({"name": "x", "data": {"dataset": "digits"}}))
    result = subprocess.run(
        [sys.executable, "-m", "visionstudy", "study", "run", str(study), "--db",
         "postgresql://nobody:secret@127.0.0.1:9/none", "--runs-dir", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "cannot open the database" in " ".join(result.stderr.split())
    assert "secret" not in result.stderr
    assert not (tmp_path / "x" / "baseline").exists()  # nothing trained


def test_four_workers_ten_runs_one_worker_killed_postgres(postgres, tmp_path):
    study = tmp_path / "pg4.yaml"
    study.write_text(yaml.safe_dump({
        "name": "pgfour", "data": {"dataset": "digits"},
        "model": {"name": "cnn", "channels": [4, 8], "hidden": [16]},
        "train": {"epochs": 5, "batch_size": 64}, "seeds": 5,
        # b's runs last seconds: the poller, slow on a busy machine, must see one training
        "variants": {"a": {}, "b": {"model": {"batch_norm": True}, "train": {"epochs": 12}}},
    }, sort_keys=False))
    runs = tmp_path / "runs"
    cmd = [sys.executable, "-m", "visionstudy", "study", "run", str(study), "--db", postgres,
           "--runs-dir", str(runs), "--workers", "4", "--quiet", "--no-report"]
    proc, victim, key = kill_one_worker_mid_run(cmd, postgres, "pgfour", runs / "pgfour")
    check_killed_worker_study(proc, postgres, "pgfour", runs, victim, key, 10)



def test_two_planners_at_once_queue_each_run_once_in_postgres(postgres):
    assert plan_twice_at_once(postgres, "twice") == [0, 40]
