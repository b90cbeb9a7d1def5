"""Cluster throughput (not run in CI): a 20-run digits study through SLURM against one machine.

    .venv/bin/python bench/cluster.py             # as root, after scripts/setup.sh --dev
    .venv/bin/python bench/cluster.py --runs 40 --epochs 4

Trains the same study (digits, a small CNN, --runs runs of --epochs epochs: 10 variants x 2 seeds by
default) twice, each time in a fresh runs folder, and times it from the command's start until every run
is finished:
- `local`: `visionstudy study run STUDY --workers 2` (SQLite), one process pool on this machine;
- `slurm`: `visionstudy study run STUDY --launcher slurm --jobs 2 --wait` on a one-node SLURM
  (tests/helpers.py's, 2 CPUs) with a PostgreSQL server from `visionstudy db start`: 2 jobs, each a
  `study work` pull worker with one core.
Neither writes the report (`--no-report`), so both measure training throughput. Then it reads the
SLURM jobs' logs to say where the difference goes: the seconds from submission to each job's first
log line (queueing and `sbatch`), from there to its first finished run (imports, planning, the first
claim), and the seconds between one run's end and the next one's start (claims). Prints a JSON line
and writes bench/results/cluster.md.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from tests.helpers import one_node_slurm, slurm_missing  # noqa: E402

VS = [sys.executable, "-m", "visionstudy"]


def study_file(folder: Path, runs: int, epochs: int) -> Path:
    variants = {f"v{i}": {"train": {"optimizer": {"lr": round(1e-3 * (1 + i), 4)}}} for i in range(runs // 2)}
    path = folder / "bench.json"
    path.write_text(json.dumps({
        "name": "bench", "data": {"dataset": "digits"},
        "model": {"name": "cnn", "channels": [8, 16], "hidden": [32]},
        "train": {"epochs": epochs, "batch_size": 64}, "seeds": 2, "variants": variants}))
    return path


def timed(cmd: list[str], env: dict[str, str]) -> float:
    start = time.monotonic()
    done = subprocess.run(cmd, cwd=ROOT, env={**os.environ, **env}, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(map(str, cmd))} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return time.monotonic() - start


STAMP = re.compile(r"^(\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d)")


def stamps(log: Path, word: str) -> list[float]:
    """The times of the log lines that contain `word`."""
    out = []
    for line in log.read_text().splitlines():
        m = STAMP.match(line)
        if m and word in line:
            out.append(datetime.fromisoformat(m.group(1).replace(" ", "T")).timestamp())
    return out


def where_it_goes(study_dir: Path, submitted: float) -> dict[str, float]:
    logs = sorted((study_dir / "slurm" / "logs").glob("*.log"))
    starts = [stamps(p, " job ")[0] for p in logs]  # the job script's first line
    firsts = [stamps(p, "done ")[0] for p in logs if stamps(p, "done ")]
    return {"jobs": len(logs), "submit_to_job_start_s": round(max(starts) - submitted, 1),
            "job_start_to_first_run_done_s": round(max(f - s for f, s in zip(firsts, starts, strict=False)),
                                                   1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--epochs", type=int, default=4)
    opts = parser.parse_args()
    if reason := slurm_missing():
        raise SystemExit(reason)
    folder = Path(tempfile.mkdtemp(prefix="visionstudy-bench-"))
    os.chmod(folder, 0o755)
    study = study_file(folder, opts.runs, opts.epochs)
    local = timed([*VS, "study", "run", str(study), "--runs-dir", str(folder / "local"), "--workers", "2",
                   "--no-report", "--quiet"], {})
    started = subprocess.run([*VS, "db", "start", "--dir", str(folder / "pg")], capture_output=True,
                             text=True, check=True)
    url = started.stdout.strip()
    try:
        with one_node_slurm(folder / "slurm") as env:
            submitted = time.time()
            slurm = timed([*VS, "study", "run", str(study), "--runs-dir", str(folder / "slurm-runs"),
                           "--db", url, "--launcher", "slurm", "--jobs", "2", "--wait", "--no-report",
                           "--quiet"], env)
            detail = where_it_goes(folder / "slurm-runs" / "bench", submitted)
    finally:
        subprocess.run([*VS, "db", "stop", "--dir", str(folder / "pg")], capture_output=True)
    row = {"runs": opts.runs, "epochs": opts.epochs, "local_s": round(local, 1), "slurm_s": round(slurm, 1),
           "local_runs_per_min": round(60 * opts.runs / local, 1),
           "slurm_runs_per_min": round(60 * opts.runs / slurm, 1),
           "slurm_over_local": round(local / slurm, 3), **detail}
    print(json.dumps(row))
    (ROOT / "bench" / "results" / "cluster.md").write_text(
        f"Cluster throughput ({time.strftime('%Y-%m-%d')}, {os.cpu_count()} cores; "
        f"`.venv/bin/python bench/cluster.py --runs {opts.runs} --epochs {opts.epochs}`)\n\n"
        "| | wall s | runs/min |\n|---|---|---|\n"
        f"| study run --workers 2 (SQLite) | {row['local_s']} | {row['local_runs_per_min']} |\n"
        f"| --launcher slurm --jobs 2 (PostgreSQL) | {row['slurm_s']} | {row['slurm_runs_per_min']} |\n\n"
        f"SLURM reaches {100 * row['slurm_over_local']:.0f}% of the local runs per minute. "
        f"Submission to the later job's start: {row['submit_to_job_start_s']} s; a job's start to its first "
        f"finished run: {row['job_start_to_first_run_done_s']} s (imports, planning, the first claim).\n")
    subprocess.run(["rm", "-rf", str(folder)], check=False)


if __name__ == "__main__":
    main()
