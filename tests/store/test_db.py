"""The run queue in Optuna's storage: why claiming is ours, not `Study.ask()`.

`bench/queue_race.py` measured four processes working off 60 queued runs on SQLite: Optuna's
`ask()` handed out 86 trials (25 runs twice, 2 trials that were never planned); our `claim`
without its file lock 64 (4 twice); with it exactly 60.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import time
from collections import Counter

import pytest

from tests.helpers import plan_twice_at_once, trials_by_run
from visionstudy.store.db import RunStore

KEYS = {f"r{i}" for i in range(24)}


def claim_all(url: str, out) -> None:
    store = RunStore(url, "queue")
    got = []
    while (claim := store.claim(KEYS)) is not None:
        got.append(claim.key)
    out.put(got)


def test_four_processes_claim_each_queued_run_exactly_once_on_sqlite(tmp_path):
    url = f"sqlite:///{tmp_path / 'q.db'}"
    RunStore(url, "queue").sync({k: "h" for k in KEYS}, {})
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    procs = [ctx.Process(target=claim_all, args=(url, out)) for _ in range(4)]
    for p in procs:
        p.start()
    claimed = [k for _ in procs for k in out.get(timeout=120)]
    for p in procs:
        p.join(30)
    assert Counter(claimed) == Counter(KEYS)  # every run once, none twice


def test_optunas_ask_starts_an_unplanned_trial_when_the_queue_is_empty(tmp_path):
    """Why a worker does not take runs with `ask()`: past the last queued run it creates a new
    trial instead of saying the queue is empty, and it cannot be limited to `--only`'s runs."""
    from optuna.trial import TrialState

    store = RunStore(f"sqlite:///{tmp_path / 'q.db'}", "queue")
    store.sync({"a": "h"}, {})
    first = store.study.ask()
    assert first.user_attrs["run"] == "a"
    extra = store.study.ask()
    assert "run" not in extra.user_attrs  # a trial no plan holds
    assert store.claim({"a"}) is None  # ours: the queue is empty
    running = store.study.get_trials(states=(TrialState.RUNNING,))
    assert len(running) == 2


def test_an_sqlite_file_of_something_else_is_refused_and_left_as_it_is(tmp_path):
    """A valid SQLite file with another schema once gave an Optuna/SQLAlchemy traceback from
    `study run`, while `status` called the study "not started"."""
    import sqlite3

    import pytest

    from tests.helpers import assert_user_error, vs_here
    from visionstudy.errors import StorageError

    theirs = tmp_path / "theirs.db"
    with sqlite3.connect(theirs) as con:
        con.execute("CREATE TABLE users (name TEXT)")
        con.execute("INSERT INTO users VALUES ('ada')")
    before = theirs.read_bytes()
    with pytest.raises(StorageError, match="an SQLite database of something else .tables users.*left as"):
        RunStore(f"sqlite:///{theirs}", "queue")
    for command in ("run", "status"):
        assert_user_error(vs_here("study", command, "recipe:quick", "--db", f"sqlite:///{theirs}",
                                  "--runs-dir", tmp_path / "runs"), "something else", "tables users")
    assert theirs.read_bytes() == before
    optunaish = tmp_path / "optunaish.db"  # Optuna's table names, a schema version it does not know
    with sqlite3.connect(optunaish) as con:
        con.execute("CREATE TABLE studies (x TEXT)")
        con.execute("CREATE TABLE alembic_version (version_num TEXT)")
        con.execute("INSERT INTO alembic_version VALUES ('v99')")
    assert_user_error(vs_here("study", "status", "recipe:quick", "--db", f"sqlite:///{optunaish}"),
                      "not a study database this Optuna", "give --db a new database")


def test_a_study_database_follows_the_umask_so_a_group_can_share_it(tmp_path):
    """SQLite creates files 0644 whatever the umask: under umask 002 the group could not write."""
    import os

    old = os.umask(0o002)
    try:
        RunStore(f"sqlite:///{tmp_path / 'study.db'}", "queue").sync({"a": "h"}, {})
    finally:
        os.umask(old)
    assert (tmp_path / "study.db").stat().st_mode & 0o777 == 0o664


def test_the_run_records_query_agrees_with_optunas_own_trials(tmp_path):
    """`run_records` reads Optuna's tables directly (Optuna's reader loads every trial whole):
    the same keys, numbers, states and config hashes."""
    from optuna.trial import TrialState

    store = RunStore(f"sqlite:///{tmp_path / 'r.db'}", "r")
    store.sync({"a/seed-0": "h1", "b/seed-0": "h2", "c/seed-0": "h3"}, {"c/seed-0": 0.5})
    claim = store.claim({"a/seed-0"}, 1)
    assert claim is not None
    ours = {k: sorted((r.number, r.state, r.config_hash) for r in v) for k, v in store.run_records().items()}
    theirs = {k: sorted((t.number, t.state, t.user_attrs.get("config_hash")) for t in v)
              for k, v in trials_by_run(store).items()}
    assert ours == theirs and ours["a/seed-0"][0][1] == TrialState.RUNNING
    assert store.status(["a/seed-0", "b/seed-0", "c/seed-0", "d/seed-0"], {"c/seed-0"}) == {
        "a/seed-0": "running", "b/seed-0": "waiting", "c/seed-0": "done", "d/seed-0": "new"}


def test_two_planners_at_once_queue_each_run_once_in_sqlite(tmp_path):
    assert plan_twice_at_once(f"sqlite:///{tmp_path / 'study.db'}", "twice") == [0, 40]


def test_a_run_whose_claim_went_stale_while_it_trained_still_records_its_result(tmp_path):
    """A worker whose heartbeat stalled past the grace period (a loaded machine, a database
    hiccup) has its trial failed and re-queued by another worker's check; when its run then
    finishes, the result goes on the queued copy, and the worker does not crash on the ended trial."""
    from optuna.trial import TrialState

    from visionstudy.store.db import retry_callback

    store = RunStore(f"sqlite:///{tmp_path / 'study.db'}", "stale")
    store.sync({"a/seed-0": "h", "b/seed-0": "h"}, {})
    claim = store.claim({"a/seed-0"})
    store.storage.set_trial_state_values(claim.trial_id, state=TrialState.FAIL)  # what fail_stale_trials does
    retry_callback(None)(store.study, store.storage.get_trial(claim.trial_id))
    store.complete(claim, 0.9, {"test_accuracy": 0.9})
    states = sorted((t.state.name, t.value) for t in trials_by_run(store)["a/seed-0"])
    assert states == [("COMPLETE", 0.9), ("FAIL", None)]
    assert store.status(["a/seed-0", "b/seed-0"]) == {"a/seed-0": "done", "b/seed-0": "waiting"}
    other = store.claim({"b/seed-0"})
    store.storage.set_trial_state_values(other.trial_id, state=TrialState.FAIL)  # ended, no copy queued
    store.complete(other, 0.5, {})  # nothing to record it on: no error either
    assert store.status(["b/seed-0"]) == {"b/seed-0": "failed"}


def test_a_worker_killed_right_after_taking_a_run_has_named_itself_and_the_run_returns(
        tmp_path, monkeypatch):
    """A claim is several writes: a worker killed (SIGKILL, the OOM killer, a test's killpg) the
    moment its run is RUNNING has already written who trains it and a heartbeat, so the next claim
    on this machine takes the run back at once when that process is gone, and otherwise (a process
    that cannot be judged from here) the grace period does. Named after the take, the run stayed
    RUNNING for ever."""
    import os
    import subprocess
    import sys

    from optuna.trial import TrialState

    url = f"sqlite:///{tmp_path / 'study.db'}"
    gone = int(subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                              capture_output=True, text=True).stdout)  # a process that has ended
    for name, pid, wait in (("gone", gone, 0.0), ("alive", os.getpid(), 3.0)):
        store = RunStore(url, name, heartbeat=1, grace=2)
        store.sync({"a/seed-0": "h"}, {})
        original = store.storage.set_trial_state_values

        def killed(trial_id, state, values=None, original=original):
            done = original(trial_id, state=state, values=values)
            if state == TrialState.RUNNING:
                raise SystemExit("killed")  # the process ends the moment the run is RUNNING
            return done

        monkeypatch.setattr(store.storage, "set_trial_state_values", killed)
        with pytest.raises(SystemExit):
            store.claim({"a/seed-0"}, worker_pid=pid)
        other = RunStore(url, name, heartbeat=1, grace=2)
        assert other.status(["a/seed-0"]) == {"a/seed-0": "running"}, name
        if wait:
            assert other.claim({"a/seed-0"}) is None  # its worker may still train it
            time.sleep(wait)  # its heartbeat goes stale
        claim = other.claim({"a/seed-0"})
        assert claim is not None and (claim.key, claim.number) == ("a/seed-0", 1), name  # the copy


def test_a_run_queued_twice_is_trained_once_and_its_second_trial_marked_duplicate(tmp_path):
    """Two planners that raced may queue one run twice: the lower-numbered trial is the run, the
    other is pruned as a duplicate when claimed (read with one query for that run's trials)."""
    from optuna.trial import TrialState

    store = RunStore(f"sqlite:///{tmp_path / 'q.db'}", "twice")
    for key in ("a", "b", "a"):
        store.study.enqueue_trial({}, user_attrs={"run": key, "config_hash": "h"})
    assert sorted(store.run_records("a")) == ["a"] and len(store.run_records("a")["a"]) == 2
    first = store.claim({"a"})
    assert first is not None and (first.key, first.number) == ("a", 0)
    assert store.claim({"a"}) is None  # trial 2 is the same run: pruned, not trained twice
    dup = [t for t in store.trials() if t.number == 2][0]
    assert dup.state == TrialState.PRUNED and dup.user_attrs.get("duplicate") is True
    assert store.claim({"a", "b"}).key == "b"


def test_a_claim_reads_the_queue_in_one_query_not_every_trial_through_optuna(tmp_path, monkeypatch):
    """Reading every queued trial through Optuna (parameters, attributes, values) made each claim
    cost O(study): 0.4 s in a study of 2,000 runs. A claim, a dead worker's check and the record
    of a result never call Optuna's get_trials; the lowest-numbered queued run is taken first."""
    store = RunStore(f"sqlite:///{tmp_path / 'study.db'}", "big")
    store.sync({f"r{i:03d}": "h" for i in range(300)}, {})

    def refused(*args, **kwargs):
        raise AssertionError("a claim read every trial through Optuna")

    monkeypatch.setattr(store.study, "get_trials", refused)
    first = store.claim({"r005", "r007", "r100"}, worker_pid=os.getpid())
    assert first is not None and (first.key, first.number) == ("r005", 5)
    store.complete(first, 0.5, {"test_accuracy": 0.5})
    assert store.claim({"r005"}) is None and store.claim({"r007"}).key == "r007"


def test_a_recorded_database_that_cannot_be_opened_is_named_with_its_file_and_the_way_back(
        tmp_path, monkeypatch):
    """A launch whose sbatch failed had recorded its --db in STUDY/db-url before anything opened it;
    every later `study run` without --db then failed on that URL, naming `--db` the user never
    gave. A URL is recorded once its database opened, and a recorded one that cannot be opened says
    where it came from and how to leave it."""
    from tests.helpers import assert_user_error, vs_here
    from visionstudy.store.db import URL_FILE, record_url

    monkeypatch.chdir(tmp_path)
    (tmp_path / "s.yaml").write_text("name: s\ndata: {dataset: digits}\nmodel: {name: mlp, hidden: [8]}\n"
                                     "train: {epochs: 1}\n")
    (tmp_path / "slurm.conf").write_text("")
    monkeypatch.setenv("SLURM_CONF", str(tmp_path / "slurm.conf"))  # sbatch fails at once (none: in 60 s)
    launched = vs_here("study", "run", "s.yaml", "--launcher", "slurm", "--db",
                       "postgresql://u:secret@127.0.0.1:1/none")
    assert launched.returncode != 0 and not (tmp_path / "runs" / "s" / URL_FILE).exists()
    assert vs_here("study", "run", "s.yaml", "--quiet", "--no-report").returncode == 0  # its own SQLite
    record_url(tmp_path / "runs" / "s", "postgresql://u:secret@127.0.0.1:1/none")  # a server gone since
    where = os.path.join("runs", "s", URL_FILE)  # as the user named the folder (--runs-dir's default)
    assert_user_error(vs_here("study", "status", "s.yaml"), "cannot open the database",
                      f"it is the database recorded in {where} when the study ran with --db: give --db to "
                      f"use another, or delete {where} to go back to the study's own SQLite file")
    os.unlink(where)
    assert vs_here("study", "status", "s.yaml").returncode == 0
