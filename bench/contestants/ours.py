"""Contestant "ours": `visionstudy` training a config, printing the test accuracy after every epoch.

    .venv/bin/python bench/contestants/ours.py examples/fashion-mnist-fast.yaml [--set key=value ...]

One JSON line per epoch on stdout: {"epoch", "test_accuracy", "train_seconds", "t"}; `t` is the
wall clock (time.time()) at the epoch's end, so that the caller measures from process start.
The run is the product's own path (`run_experiment`): data found through VISIONSTUDY_DATA_DIR.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path


def main() -> None:
    from visionstudy.experiment import run_experiment
    from visionstudy.validate import load_config

    ap = argparse.ArgumentParser()
    ap.add_argument("config", type=Path)
    ap.add_argument("--set", action="append", default=[], help="override: --set train.epochs=5")
    args = ap.parse_args()
    cfg = load_config(args.config, args.set)

    def report(row: dict[str, float]) -> None:
        print(json.dumps({"epoch": int(row["epoch"]), "test_accuracy": round(row["test_accuracy"], 4),
                          "train_seconds": round(row["seconds"], 2), "t": time.time()}), flush=True)

    with tempfile.TemporaryDirectory() as tmp:
        run_experiment(cfg, Path(tmp) / "run", device="cpu", quiet=True, on_test_epoch=report)


if __name__ == "__main__":
    main()
