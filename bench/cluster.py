"""Cluster throughput (not run in CI): a 20-run digits study through SLURM against one machine.

    .venv/bin/python bench/cluster.py                  # as root, after scripts/setup.sh --dev
    .venv/bin/python bench/cluster.py --runs 40 --epochs 15

Trains the same study (scikit-learn's digits with the quick study's model and schedule, --runs runs:
runs/2 learning rates x 2 seeds) in --repeat pairs for each --epochs value, each study its own:
- `local`: `visionstudy study run STUDY --workers 2` (SQLite), one process pool on this machine;
- `slurm`: `visionstudy study run STUDY --launcher slurm --jobs 2 --wait` on a one-node SLURM
  (tests/helpers.py's, 2 CPUs) with a PostgreSQL server from `visionstudy db start`: 2 jobs, each a
  `study work` pull worker with one core.
Neither writes the report (`--no-report`), so both measure training throughput. The run folders'
times split each wall time into the start (to the first run's start: validation, planning, job
start, imports, the first claim), the runs, and the tail (to the command's end). Prints a JSON line
per row and writes bench/results/cluster.md.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "src"))
from tests.helpers import one_node_slurm, slurm_missing  # noqa: E402

VS = [sys.executable, "-m", "visionstudy"]


def study_file(folder: Path, runs: int, epochs: int | None, name: str = "bench") -> Path:
    """`runs` runs of the quick digits study's model and training (recipe:quick): runs // 2
    learning rates x 2 seeds; `epochs` replaces its 15 epochs."""
    from visionstudy.study.schema import recipe_path

    quick = yaml.safe_load(recipe_path("quick").read_text())
    train = {**quick["train"], "epochs": epochs or quick["train"]["epochs"]}
    lr = float(train["optimizer"]["lr"])
    variants = {f"v{i}": {"train": {"optimizer": {"lr": round(lr * (0.5 + 0.1 * i), 5)}}}
                for i in range(runs // 2)}
    path = folder / f"{name}.json"
    path.write_text(json.dumps({"name": name, "data": quick["data"], "model": quick["model"],
                                "train": train, "seeds": 2, "variants": variants}))
    return path


def timed(cmd: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(start, end) wall-clock times of the command."""
    start = time.time()
    done = subprocess.run(cmd, cwd=ROOT, env={**os.environ, **env}, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(map(str, cmd))} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return start, time.time()


def phases(study_dir: Path, start: float, end: float) -> dict[str, float]:
    """Where the wall time went, from the run folders: the command's start to the first run's
    start (validation, planning, job start, imports, the first claim), the runs (first start to
    last end) and the last run's end to the command's end (noticing it, the results table)."""
    first = min(p.stat().st_mtime for p in study_dir.glob("*/seed-*/config.yaml"))
    last = max(p.stat().st_mtime for p in study_dir.glob("*/seed-*/metrics.json"))
    return {"wall": end - start, "to_first_run": first - start, "runs": last - first, "tail": end - last}


def one_row(folder: Path, runs: int, epochs: int | None, repeat: int) -> dict[str, Any]:
    """`repeat` pairs (local, then SLURM, alternating, so that a slower spell of a shared machine
    falls on both), each study under its own name; the median of each side's phases."""
    local_rows, slurm_rows = [], []
    started = subprocess.run([*VS, "db", "start", "--dir", str(folder / "pg")], capture_output=True,
                             text=True, check=True)
    try:
        with one_node_slurm(folder / "slurm") as env:
            for i in range(repeat):
                study = study_file(folder, runs, epochs, f"bench{i}")
                local_rows.append(phases(folder / "local" / f"bench{i}", *timed(
                    [*VS, "study", "run", str(study), "--runs-dir", str(folder / "local"), "--workers", "2",
                     "--no-report", "--quiet"], {})))
                slurm_rows.append(phases(folder / "slurm-runs" / f"bench{i}", *timed(
                    [*VS, "study", "run", str(study), "--runs-dir", str(folder / "slurm-runs"),
                     "--db", started.stdout.strip(), "--launcher", "slurm", "--jobs", "2", "--wait",
                     "--no-report", "--quiet"], env)))
                print(json.dumps({"epochs": epochs, "pair": i, "local": local_rows[-1]["wall"],
                                  "slurm": slurm_rows[-1]["wall"]}), file=sys.stderr, flush=True)
    finally:
        subprocess.run([*VS, "db", "stop", "--dir", str(folder / "pg")], capture_output=True)
    local, slurm = ({k: statistics.median(r[k] for r in rows) for k in rows[0]}
                    for rows in (local_rows, slurm_rows))
    return {"runs": runs, "epochs": epochs or 15, "repeat": repeat,
            "ratio": round(local["wall"] / slurm["wall"], 3),
            "ratios": [round(a["wall"] / b["wall"], 3) for a, b in zip(local_rows, slurm_rows, strict=True)],
            **{f"local_{k}": round(v, 1) for k, v in local.items()},
            **{f"slurm_{k}": round(v, 1) for k, v in slurm.items()}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--epochs", type=int, nargs="+", default=[15, 40, 80],
                        help="one row per value (the quick study trains 15)")
    parser.add_argument("--repeat", type=int, default=3, help="pairs per row; the medians are shown")
    opts = parser.parse_args()
    if reason := slurm_missing():
        raise SystemExit(reason)
    folder = Path(tempfile.mkdtemp(prefix="visionstudy-bench-"))
    os.chmod(folder, 0o755)
    rows = []
    for i, epochs in enumerate(opts.epochs):
        (folder / str(i)).mkdir()
        rows.append(one_row(folder / str(i), opts.runs, epochs, opts.repeat))
        print(json.dumps(rows[-1]), flush=True)
    subprocess.run(["rm", "-rf", str(folder)], check=False)
    command = (f"bench/cluster.py --runs {opts.runs} --epochs {' '.join(map(str, opts.epochs))} "
               f"--repeat {opts.repeat}")
    lines = [f"Cluster throughput ({time.strftime('%Y-%m-%d %H:%M')}, {os.cpu_count()} cores; "
             f"`.venv/bin/python {command}`)", "",
             "A 20-run digits study (the quick study's model) trained by `study run --workers 2` (SQLite) "
             "and by `study run --launcher slurm --jobs 2 --wait` (PostgreSQL, one-node SLURM). Seconds: "
             "the command's start to the first run's start | the runs (first start to last end) | the "
             "last end to the command's end. Medians of the pairs (local then SLURM, alternating); "
             "the last column gives each pair's ratio.", "",
             "| epochs | local wall s | SLURM wall s | SLURM / local runs per minute "
             "| local: start, runs, tail | SLURM: start, runs, tail | each pair |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        pairs = ", ".join(f"{x:.0%}" for x in r["ratios"])
        lines.append(f"| {r['epochs']} | {r['local_wall']} | {r['slurm_wall']} | {r['ratio']:.0%} "
                     f"| {r['local_to_first_run']}, {r['local_runs']}, {r['local_tail']} "
                     f"| {r['slurm_to_first_run']}, {r['slurm_runs']}, {r['slurm_tail']} | {pairs} |")
    (ROOT / "bench" / "results" / "cluster.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
