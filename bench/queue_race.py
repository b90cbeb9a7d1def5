"""Four processes work off 60 queued runs in one SQLite study database, three ways:

    .venv/bin/python bench/queue_race.py

- ask:    Optuna's `Study.ask()` (it pops a WAITING trial, or creates a new one when none is left);
- nolock: our `RunStore.claim` without its file lock (Optuna's WAITING → RUNNING update alone);
- lock:   our `RunStore.claim` as shipped.

Measured here (2026-12-02, 2 cores, two runs): ask 86 and 77 trials for 60 runs (25 and 14 runs
twice, 2 and 3 unplanned trials); nolock 64 and 69 (4 and 9 twice); lock 60 both times, each once.
SQLAlchemy's pysqlite reads outside the write transaction, so two processes can both see a run
WAITING and both move it to RUNNING.
"""

from __future__ import annotations

import multiprocessing as mp
import sys
import tempfile
from collections import Counter
from pathlib import Path

from visionstudy.store.db import RunStore

RUNS = 60
KEYS = {f"r{i}" for i in range(RUNS)}


def claim_worker(url: str, lock: bool, out) -> None:
    store = RunStore(url, "race")
    if not lock:
        store.lock_path = None
    got = []
    while (claim := store.claim(KEYS)) is not None:
        got.append(claim.key)
    out.put(got)


def ask_worker(url: str, lock: bool, out) -> None:
    from optuna.trial import TrialState

    store = RunStore(url, "race")
    got = []
    while store.trials((TrialState.WAITING,)):
        got.append(store.study.ask().user_attrs.get("run"))
    out.put(got)


def race(mode: str, folder: Path) -> str:
    url = f"sqlite:///{folder / f'{mode}.db'}"
    RunStore(url, "race").sync({k: "h" for k in KEYS}, {})
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    target = ask_worker if mode == "ask" else claim_worker
    procs = [ctx.Process(target=target, args=(url, mode == "lock", out)) for _ in range(4)]
    for p in procs:
        p.start()
    taken = [k for _ in procs for k in out.get()]
    for p in procs:
        p.join()
    twice = sum(n - 1 for k, n in Counter(taken).items() if k is not None)
    return (f"{mode:6s} {len(taken)} trials for {RUNS} runs: {twice} runs taken twice, "
            f"{taken.count(None)} unplanned trials")


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as tmp:
        for mode in sys.argv[1:] or ["ask", "nolock", "lock"]:
            print(race(mode, Path(tmp)), flush=True)
