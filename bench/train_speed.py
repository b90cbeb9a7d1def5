"""Training benchmarks for the engine (not run in CI). One JSON line per result.

    .venv/bin/python bench/train_speed.py quick          # digits: accuracy and wall time
    .venv/bin/python bench/train_speed.py fashion        # Fashion-MNIST CNN: accuracy, wall time
    .venv/bin/python bench/train_speed.py throughput     # training images/second, CNN and ResNet

Fashion-MNIST is read from VISIONSTUDY_DATA_DIR (default /usr/share/datasets, Debian's mirror).
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]


def train_config(path: Path, **overrides: str) -> dict:
    from visionstudy.config import load_config
    from visionstudy.experiment import run_experiment

    cfg = load_config(path, [f"{k}={v}" for k, v in overrides.items()])
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        metrics = run_experiment(cfg, Path(tmp) / "run", quiet=True)
    return {"config": path.name, "test_accuracy": round(metrics["test_accuracy"], 4),
            "epochs": metrics["epochs_run"], "train_seconds": round(metrics["train_seconds"], 1),
            "wall_seconds": round(time.perf_counter() - start, 1), "threads": torch.get_num_threads()}


def throughput(model_name: str, params: dict, shape=(1, 28, 28), batch=256, steps=20,
               channels_last: bool = True) -> dict:
    """Images/second of forward+backward+step on random data (the loader excluded)."""
    from visionstudy.models import count_flops, create_model

    torch.manual_seed(0)
    model = create_model(model_name, shape[0], 10, shape[1:], **params)
    flops = count_flops(model, shape)
    layout = torch.channels_last if channels_last else torch.contiguous_format
    model = model.to(memory_format=layout)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x = torch.randn(batch, *shape).contiguous(memory_format=layout)
    y = torch.randint(0, 10, (batch,))
    for i in range(steps + 3):
        if i == 3:
            start = time.perf_counter()
        loss = torch.nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    seconds = time.perf_counter() - start
    ips = steps * batch / seconds
    return {"model": model_name, **params, "channels_last": channels_last,
            "images_per_second": round(ips),
            "train_gflops_per_second": round(3 * flops * ips / 1e9, 1)}


def main(what: str) -> None:
    os.environ.setdefault("VISIONSTUDY_DATA_DIR", "/usr/share/datasets")
    if what == "quick":
        print(json.dumps(train_config(ROOT / "examples" / "digits-quick.yaml")))
    elif what == "fashion":
        print(json.dumps(train_config(ROOT / "examples" / "fashion-mnist-cnn.yaml")))
    elif what == "throughput":
        cnn = {"channels": [[32, 32], [64, 64]], "hidden": [256], "batch_norm": True}
        for layout in (True, False):
            print(json.dumps(throughput("cnn", cnn, channels_last=layout)))
            print(json.dumps(throughput("resnet", {"blocks": [1, 1, 1], "widths": [32, 64, 128]},
                                        channels_last=layout)))
    else:
        sys.exit(f"unknown benchmark {what!r}: quick, fashion or throughput")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "quick")
