"""Start-up benchmark (not run in CI): seconds from a command's start to its first training step.

    .venv/bin/python bench/startup.py              # median of 5 of each, warm page cache
    .venv/bin/python bench/startup.py --repeat 9

Measures, each as a new process started from here:
- `floor`: `python -c "import torch"`, what any PyTorch process pays here;
- `torch+dynamo`: `python -c "import torch, torch._dynamo"`, what a training process paid before
  one-process runs stopped importing torch._dynamo (Fabric and every `optimizer.step()` import it);
- `train`: `visionstudy train examples/digits-quick.yaml` until its first backward pass;
- `work`: `visionstudy study work STUDY` on a planned one-run digits study (SQLite), the pull worker
  every cluster job runs, until its first backward pass.

The child replaces `torch.autograd.backward`, when torch is imported, by a function that writes the
time of the first call in any of its processes and exits, so the clock stops at the first step
(data loading, model building and the memory check included). The decoded dataset cache is warmed
first, as a user's second run finds it. Writes bench/results/startup.md and prints one JSON line per
command.
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

ROOT = Path(__file__).resolve().parents[1]
CHILD = """
import importlib.abc, importlib.machinery, os, sys, time

def stop(*args, **kwargs):
    try:  # the first step of the command, its own or its first worker's: a study's driver starts
        with open(os.environ["STARTUP_OUT"], "x") as f:  # another worker when this one exits here
            f.write(repr(time.time()))
    except FileExistsError:
        pass
    os._exit(0)

class PatchBackward(importlib.abc.MetaPathFinder):
    # torch.autograd.backward replaced by `stop` once torch imports it, in whichever process that
    # is: the command does not import torch earlier than it would (a study worker forks first)
    def find_spec(self, name, path, target=None):
        if name != "torch.autograd":
            return None
        sys.meta_path.remove(self)
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        run = spec.loader.exec_module
        def exec_module(module):
            run(module)
            module.backward = stop
        spec.loader.exec_module = exec_module
        return spec

sys.meta_path.insert(0, PatchBackward())
from visionstudy.cli import main
sys.argv = ["visionstudy", *sys.argv[1:]]
main()
"""


def seconds_to_first_step(args: list[str], cwd: Path) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "t"
        env = {**os.environ, "STARTUP_OUT": str(out)}
        start = time.time()
        done = subprocess.run([sys.executable, "-c", CHILD, *args], cwd=cwd, env=env, capture_output=True,
                              text=True)
        if not out.is_file():
            raise SystemExit(f"{args}: no training step ({done.returncode})\n{done.stderr[-2000:]}")
        return float(out.read_text()) - start


def seconds_to_exit(cmd: list[str]) -> float:
    start = time.time()
    subprocess.run(cmd, check=True, capture_output=True)
    return time.time() - start


def plan_study(folder: Path) -> list[str]:
    """A one-run digits study planned (not trained) in `folder`; the args of its pull worker."""
    study = folder / "one.yaml"
    study.write_text("name: one\ndata: {dataset: digits}\n"
                     "model: {name: cnn, channels: [8, 16], hidden: [32]}\n"
                     "train: {epochs: 1}\nvariants: {base: {}}\n")
    from visionstudy.study.execute import Placement, plan
    from visionstudy.study.spec import load_study

    plan(load_study(study), Placement(folder / "runs"))
    return ["study", "work", str(folder / "runs" / "one")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    opts = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        train = ["train", "examples/digits-quick.yaml", "--out", str(work / "run"), "--force", "--quiet"]
        subprocess.run([sys.executable, "-m", "visionstudy", *train, "--set", "train.epochs=1"], check=True,
                       capture_output=True, cwd=ROOT)  # warms the decoded-dataset cache
        cases = {
            "floor": lambda: seconds_to_exit([sys.executable, "-c", "import torch"]),
            "torch+dynamo": lambda: seconds_to_exit([sys.executable, "-c", "import torch, torch._dynamo"]),
            "train": lambda: seconds_to_first_step(train, ROOT),
            "work": lambda: seconds_to_first_step(plan_study(Path(tempfile.mkdtemp(dir=work))), ROOT),
        }
        for name, measure in cases.items():
            times = [measure() for _ in range(opts.repeat)]
            row = {"case": name, "median_s": round(statistics.median(times), 2),
                   "min_s": round(min(times), 2), "max_s": round(max(times), 2), "repeat": opts.repeat}
            print(json.dumps(row), flush=True)
            results.append(row)
    lines = ["| case | median s | min s | max s |", "|---|---|---|---|"]
    lines += [f"| {r['case']} | {r['median_s']} | {r['min_s']} | {r['max_s']} |" for r in results]
    (ROOT / "bench" / "results" / "startup.md").write_text(
        f"Start-up to the first training step, median of {opts.repeat} "
        f"({time.strftime('%Y-%m-%d')}, {os.cpu_count()} cores; `.venv/bin/python bench/startup.py`)\n\n"
        + "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
