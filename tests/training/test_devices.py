"""One device without Fabric trains exactly as Fabric would, and a one-device run never imports it."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

from tests.helpers import ROOT
from visionstudy.config import RunConfig
from visionstudy.experiment import run_experiment
from visionstudy.training import devices


def tiny(precision: str, grad_clip: float | None) -> RunConfig:
    return RunConfig.model_validate({
        "name": "dev", "data": {"dataset": "digits"},
        "model": {"name": "cnn", "channels": [4, 8], "hidden": [16]},
        "train": {"epochs": 2, "batch_size": 64, "threads": 1, "precision": precision, "grad_clip": grad_clip,
                  "scheduler": {"name": "cosine"}}})


@pytest.mark.parametrize("precision, clip", [("32", None), ("bf16", 1.0)])
def test_one_device_trains_bit_for_bit_as_fabric_does(tmp_path, monkeypatch, precision, clip):
    from lightning_fabric import Fabric
    from lightning_fabric.plugins.environments import LightningEnvironment

    from visionstudy.training.checkpoint import load_checkpoint

    cfg = tiny(precision, clip)
    ours = run_experiment(cfg, tmp_path / "ours", device="cpu", quiet=True)
    monkeypatch.setattr(devices, "open_devices", lambda accelerator, n, bf16: Fabric(
        accelerator=accelerator, devices=n, precision="bf16-mixed" if bf16 else "32-true",
        plugins=[LightningEnvironment()]))
    theirs = run_experiment(cfg, tmp_path / "fabric", device="cpu", quiet=True)
    assert ours["test_loss"] == theirs["test_loss"] and ours["test_accuracy"] == theirs["test_accuracy"]
    a = load_checkpoint(tmp_path / "ours" / "checkpoints" / "last.pt")["model"]
    b = load_checkpoint(tmp_path / "fabric" / "checkpoints" / "last.pt")["model"]
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_a_one_device_run_does_not_import_lightning(tmp_path):
    config = tmp_path / "one.yaml"
    config.write_text(json.dumps(tiny("32", None).model_dump(mode="json", exclude_none=True)))
    code = ("import sys, visionstudy as vs; vs.train(sys.argv[1], out=sys.argv[2], quiet=True); "
            "print(sorted(m for m in sys.modules if m.startswith(('lightning', 'torchmetrics'))))")
    done = subprocess.run([sys.executable, "-c", code, str(config), str(tmp_path / "run")], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "[]"
    assert (tmp_path / "run" / "metrics.json").is_file()


def test_torchrun_and_several_devices_get_fabric(monkeypatch):
    assert isinstance(devices.open_devices("cpu", 1, False), devices.OneDevice)
    for k, v in {"RANK": "0", "GROUP_RANK": "0", "LOCAL_RANK": "0", "LOCAL_WORLD_SIZE": "1"}.items():
        monkeypatch.setenv(k, v)
    assert type(devices.open_devices("cpu", 1, False)).__name__ == "Fabric"
