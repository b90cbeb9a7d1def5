"""One command for a lent GPU (under 8 minutes on one): every number to JSON and a Markdown table.

    .venv/bin/python bench/gpu.py                      # on the GPU machine; data from VISIONSTUDY_DATA_DIR
    .venv/bin/python bench/gpu.py --smoke --out /tmp/g # tiny sizes on any device (the suite runs this on CPU)

It measures, each part in its own `part` of the JSON:
1. `throughput`: training images/s (forward, backward, step; the loader excluded) of every model
   family (cnn, mlp, resnet, resnet9, resnet20, resnet18) at fp32 and bf16 autocast, eager and
   `torch.compile`d (compile: CUDA, or `--compile-on-cpu`: inductor's C++ build takes minutes on CPU);
2. `fashion-mnist`: examples/fashion-mnist-fast.yaml to 94%: test accuracy, epochs, train and wall
   seconds (`--smoke`: examples/digits-quick.yaml for one epoch);
3. `cifar10`: examples/cifar10-fast.yaml to 94%, and airbench's published 94% recipe (the `airbench`
   package) on the same GPU when it is installed and CIFAR-10 is on the machine;
4. `two-workers`: a 2-worker study with each worker pinned to its own GPU (CUDA_VISIBLE_DEVICES),
   against one worker, when the machine has two GPUs.
A part that cannot run here is written as skipped, with the reason: nothing is left out silently.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from train_speed import throughput  # noqa: E402  (the one training-step timer of bench/)

ROOT = Path(__file__).resolve().parents[1]
FAMILIES = {"cnn": {"channels": [32, 64], "hidden": [128]}, "mlp": {"hidden": [256]},
            "resnet": {"blocks": [1, 1], "widths": [16, 32]}, "resnet9": {}, "resnet20": {}, "resnet18": {}}


def device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


def machine() -> str:
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return f"{gpu}, {os.cpu_count()} CPU cores, torch {torch.__version__}, {platform.node()}"


def throughputs(smoke: bool, compile_on_cpu: bool) -> list[dict[str, Any]]:
    out = []
    for name, params in FAMILIES.items():
        shape = (3, 32, 32) if name.startswith("resnet") else (1, 28, 28)
        if smoke:
            shape = (shape[0], 16, 16)
        compiles = [False, True] if device() == "cuda" or compile_on_cpu else [False]
        for bf16 in (False, True):
            for compiled in compiles:
                sizes = {"batch": 8, "steps": 1, "warm": 1} if smoke else {"batch": 512, "steps": 30}
                row = throughput(name, params, shape, bf16=bf16, compiled=compiled, device=device(),
                                 channels_last=name != "mlp", **sizes)
                out.append({"part": "throughput", **row, "precision": "bf16" if bf16 else "fp32"})
        if len(compiles) == 1:
            out.append(skipped("throughput", f"{name} compiled", "torch.compile on CPU builds C++ for "
                               "minutes; run on CUDA or pass --compile-on-cpu"))
    return out


def skipped(part: str, what: str, why: str) -> dict[str, Any]:
    return {"part": part, "model": what, "skipped": why}


def train(config: Path, sets: list[str], part: str, target: float | None) -> dict[str, Any]:
    """One run of a config through the public API: accuracy, epochs, train and wall seconds."""
    import visionstudy as vs

    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        run = vs.train(config, set=sets, out=Path(tmp) / "run", quiet=True, device=device())
        m = run.metrics
    accuracy = m["test_accuracy"]
    return {"part": part, "model": config.name, "test_accuracy": round(accuracy, 4),
            "reached_target": None if target is None else accuracy >= target, "target": target,
            "epochs": m["epochs_run"], "train_seconds": round(m["train_seconds"], 1),
            "wall_seconds": round(time.perf_counter() - start, 1), "device": device()}


def data_dir() -> Path:
    return Path(os.environ.get("VISIONSTUDY_DATA_DIR", "/usr/share/datasets"))


def fashion(smoke: bool) -> dict[str, Any]:
    if smoke:
        return train(ROOT / "examples" / "digits-quick.yaml", ["train.epochs=1"], "fashion-mnist", None)
    if not (data_dir() / "fashion-mnist").is_dir():
        return skipped("fashion-mnist", "fashion-mnist-fast.yaml", f"no fashion-mnist in {data_dir()}")
    return train(ROOT / "examples" / "fashion-mnist-fast.yaml", [f"data.data_dir={data_dir()}"],
                 "fashion-mnist", 0.94)


def cifar(smoke: bool) -> list[dict[str, Any]]:
    found = any((data_dir() / name).exists() for name in ("cifar-10-python.tar.gz", "cifar-10-batches-py",
                                                          "cifar10"))
    if smoke or not found:
        why = "--smoke" if smoke else f"no CIFAR-10 in {data_dir()} (cifar-10-python.tar.gz)"
        return [skipped("cifar10", "cifar10-fast.yaml", why), skipped("cifar10", "airbench", why)]
    out = [train(ROOT / "examples" / "cifar10-fast.yaml", [f"data.data_dir={data_dir()}"], "cifar10", 0.94)]
    if importlib.util.find_spec("airbench") is None:
        out.append(skipped("cifar10", "airbench", "pip install airbench (its 94% recipe) to race it"))
    else:
        out.append(airbench())
    return out


def airbench() -> dict[str, Any]:
    """airbench's published 94% recipe, timed from its own process start."""
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", "import airbench; print(airbench.train94())"],
                          capture_output=True, text=True, timeout=600)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        return skipped("cifar10", "airbench", "failed: " + (done.stderr.strip().splitlines() or ["?"])[-1])
    return {"part": "cifar10", "model": "airbench train94", "wall_seconds": round(wall, 1),
            "output": done.stdout.strip()[-200:], "device": device()}


def two_workers(smoke: bool) -> list[dict[str, Any]]:
    gpus = torch.cuda.device_count()
    if gpus < 2:
        return [skipped("two-workers", "recipe:quick", f"{gpus} GPU(s) here; the part needs two")]
    out = []
    for workers in (1, 2):
        with tempfile.TemporaryDirectory() as tmp:
            start = time.perf_counter()
            done = subprocess.run([sys.executable, "-m", "visionstudy", "study", "run", "recipe:quick",
                                   "--runs-dir", tmp, "--workers", str(workers), "--device", "cuda",
                                   "--no-report", "--quiet", *(["--set", "train.epochs=1"] if smoke else [])],
                                  capture_output=True, text=True, timeout=900)
            out.append({"part": "two-workers", "model": "recipe:quick", "workers": workers,
                        "ok": done.returncode == 0, "wall_seconds": round(time.perf_counter() - start, 1)})
    return out


def markdown(rows: list[dict[str, Any]], where: str) -> str:
    lines = [f"# bench/gpu.py on {where}", ""]
    for part in dict.fromkeys(r["part"] for r in rows):
        mine = [r for r in rows if r["part"] == part]
        keys = list(dict.fromkeys(k for r in mine for k in r if k != "part"))
        lines += [f"## {part}", "", "| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
        lines += ["| " + " | ".join(str(r.get(k, "")) for k in keys) + " |" for r in mine]
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes; runs on CPU too")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results", help="output folder")
    parser.add_argument("--compile-on-cpu", action="store_true", help="also time torch.compile on CPU")
    args = parser.parse_args(argv)
    rows: list[dict[str, Any]] = []
    start = time.perf_counter()
    for part in (lambda: throughputs(args.smoke, args.compile_on_cpu), lambda: [fashion(args.smoke)],
                 lambda: cifar(args.smoke), lambda: two_workers(args.smoke)):
        for row in part():
            print(json.dumps(row), flush=True)
            rows.append(row)
    where = machine()
    args.out.mkdir(parents=True, exist_ok=True)
    name = "gpu-smoke" if args.smoke else "gpu"
    (args.out / f"{name}.json").write_text(json.dumps({"machine": where, "smoke": args.smoke, "rows": rows,
                                                       "seconds": round(time.perf_counter() - start, 1)},
                                                      indent=1))
    (args.out / f"{name}.md").write_text(markdown(rows, where))
    return 0


if __name__ == "__main__":
    sys.exit(main())
