"""A study of 10⁴ runs (not run in CI): planning, a re-run with nothing to do, and `study status`.

    .venv/bin/python bench/scale.py              # 10,001 runs (a 10,000-point sweep + its base)
    .venv/bin/python bench/scale.py --points 2000

A learning-rate sweep of --points values around one variant (1 epoch of a tiny CNN on 200 digits).
`study run --only base` plans every run and trains one; the same command again has nothing to do;
`study status` reads the plan and the database. Each is timed as a whole command (wall seconds).
Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

VS = [sys.executable, "-m", "visionstudy"]


def timed(cmd: list[str]) -> float:
    start = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return round(time.perf_counter() - start, 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=10_000)
    opts = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="visionstudy-scale-"))
    study = folder / "big.yaml"
    rates = [round(1e-4 + i * 1e-7, 8) for i in range(opts.points)]
    study.write_text(yaml.safe_dump({
        "name": "big", "data": {"dataset": "digits", "max_train_samples": 200},
        "model": {"name": "cnn", "channels": [4], "hidden": [8]}, "train": {"epochs": 1, "batch_size": 64},
        "variants": {"base": {}}, "sweep": {"train.optimizer.lr": rates}}))
    run = [*VS, "study", "run", str(study), "--runs-dir", str(folder / "runs"), "--only", "base",
           "--no-report", "--quiet"]
    row = {"runs": opts.points + 1, "first_run": timed(run), "rerun_nothing_to_do": timed(run),
           "status": timed([*VS, "study", "status", str(folder / "runs" / "big")])}
    print(json.dumps(row))
    subprocess.run(["rm", "-rf", str(folder)], check=False)


if __name__ == "__main__":
    main()
