"""The run queue in Optuna's storage: why claiming is ours, not `Study.ask()`.

`bench/queue_race.py` measured four processes working off 60 queued runs on SQLite: Optuna's
`ask()` handed out 86 trials (25 runs twice, 2 trials that were never planned); our `claim`
without its file lock 64 (4 twice); with it exactly 60.
"""

from __future__ import annotations

import multiprocessing as mp
from collections import Counter

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
