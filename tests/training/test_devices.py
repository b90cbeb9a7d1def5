"""A run imports Lightning Fabric alone, never all of Lightning, and gets the environment it asks for."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.helpers import ROOT
from visionstudy import experiment as devices

TINY = {"name": "dev", "data": {"dataset": "digits"},
        "model": {"name": "cnn", "channels": [4, 8], "hidden": [16]},
        "train": {"epochs": 1, "batch_size": 64, "threads": 1}}


def test_a_run_imports_fabric_but_not_lightning_pytorch_or_torchmetrics(tmp_path):
    config = tmp_path / "one.yaml"
    config.write_text(json.dumps(TINY))
    code = ("import sys, visionstudy as vs; vs.train(sys.argv[1], out=sys.argv[2], quiet=True); "
            "print(sorted(m for m in ('lightning', 'lightning.pytorch', 'torchmetrics', 'lightning_fabric') "
            "if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code, str(config), str(tmp_path / "run")], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "['lightning_fabric']"
    assert (tmp_path / "run" / "metrics.json").is_file()


def test_the_environment_is_lightnings_own_unless_torchrun_launched_the_run(monkeypatch):
    for k in ("RANK", "GROUP_RANK", "LOCAL_RANK", "LOCAL_WORLD_SIZE"):
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv("SLURM_NTASKS", "1")  # inside a SLURM step: not SLURM's environment
    monkeypatch.setenv("SLURM_JOB_ID", "7")
    assert type(devices.cluster_environment()).__name__ == "LightningEnvironment"
    for k, v in {"RANK": "0", "GROUP_RANK": "0", "LOCAL_RANK": "0", "LOCAL_WORLD_SIZE": "1"}.items():
        monkeypatch.setenv(k, v)
    assert type(devices.cluster_environment()).__name__ == "TorchElasticEnvironment"
