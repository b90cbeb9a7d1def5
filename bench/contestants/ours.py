"""Contestant "ours": `visionstudy` training a config, printing the test accuracy after every epoch.

    .venv/bin/python bench/contestants/ours.py examples/fashion-mnist-fast.yaml [--set key=value ...]

One JSON line per epoch on stdout: {"epoch", "test_accuracy", "train_seconds", "t"}; `t` is the
wall clock (time.time()) at the epoch's end, so that the caller measures from process start.
The run is the product's own path (`run_experiment`): data found through VISIONSTUDY_DATA_DIR.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path


def main(argv: list[str]) -> None:
    from visionstudy.config import load_config
    from visionstudy.experiment import run_experiment

    config, sets = Path(argv[0]), [a for a in argv[1:] if a != "--set"]
    cfg = load_config(config, sets)

    def report(row: dict[str, float]) -> None:
        print(json.dumps({"epoch": int(row["epoch"]), "test_accuracy": round(row["test_accuracy"], 4),
                          "train_seconds": round(row["seconds"], 2), "t": time.time()}), flush=True)

    with tempfile.TemporaryDirectory() as tmp:
        run_experiment(cfg, Path(tmp) / "run", device="cpu", quiet=True, on_test_epoch=report)


if __name__ == "__main__":
    main(sys.argv[1:])
