"""A one-process run imports neither Lightning nor dynamo and trains as Fabric would; a data-parallel
run gets the environment it asks for."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.helpers import ROOT
from visionstudy.training import devices

TINY = {"name": "dev", "data": {"dataset": "digits"},
        "model": {"name": "cnn", "channels": [4, 8], "hidden": [16]},
        "train": {"epochs": 1, "batch_size": 64, "threads": 1}}


def test_a_one_process_run_imports_neither_fabric_nor_dynamo_nor_scikit_learn(tmp_path):
    from visionstudy.config import RunConfig
    from visionstudy.data import prepare

    prepare(RunConfig.model_validate(TINY).data)  # the decoded digits cached, as a second run finds them
    config = tmp_path / "one.yaml"
    config.write_text(json.dumps(TINY))
    heavy = ("lightning", "lightning.pytorch", "torchmetrics", "lightning_fabric", "sklearn", "scipy.stats")
    code = ("import sys, visionstudy as vs; vs.train(sys.argv[1], out=sys.argv[2], quiet=True); "
            f"print(sorted(m for m in {heavy!r} if m in sys.modules), "
            "type(sys.modules['torch._dynamo']).__name__)")
    done = subprocess.run([sys.executable, "-c", code, str(config), str(tmp_path / "run")], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "[] DeferredDynamo"
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["test_accuracy"] > 0.12  # above chance (0.1) after one epoch


def test_the_dynamo_stand_in_gives_way_to_the_real_module_for_compile():
    code = """
import sys, torch
from visionstudy.training.devices import DeferredDynamo, defer_dynamo
defer_dynamo()
import torch._dynamo
assert isinstance(torch._dynamo, DeferredDynamo)
torch._dynamo.graph_break()
opt = torch.optim.SGD([torch.nn.Parameter(torch.ones(2))], lr=0.1)
opt.param_groups[0]["params"][0].grad = torch.ones(2)
opt.step(); opt.zero_grad()  # both pass through the stand-in
assert isinstance(sys.modules["torch._dynamo"], DeferredDynamo)
f = torch.compile(lambda x: torch.sin(x) * 2, backend="eager")
assert torch.allclose(f(torch.ones(3)), torch.sin(torch.ones(3)) * 2)
assert type(sys.modules["torch._dynamo"]).__name__ == "module"
assert torch._dynamo is sys.modules["torch._dynamo"]
print(opt.param_groups[0]["params"][0].tolist())
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["[0.8999999761581421,", "0.8999999761581421]"]


@pytest.mark.parametrize("precision", ["32", "bf16"])
def test_one_device_trains_exactly_as_fabric_on_one_device(precision, tmp_path, monkeypatch):
    from lightning_fabric import Fabric

    from visionstudy import experiment
    from visionstudy.config import RunConfig

    cfg = RunConfig.model_validate({**TINY, "train": {**TINY["train"], "epochs": 2, "precision": precision}})
    bf16 = precision == "bf16"
    results = {}
    for kind in ("fabric", "one"):
        device = (Fabric(accelerator="cpu", devices=1, precision="bf16-mixed" if bf16 else "32-true",
                         plugins=[devices.cluster_environment()])
                  if kind == "fabric" else devices.OneDevice("cpu", bf16))
        monkeypatch.setattr(experiment, "open_devices", lambda *a, d=device, **k: d)
        experiment.run_experiment(cfg, tmp_path / kind, device="cpu", quiet=True)
        results[kind] = (tmp_path / kind / "history.csv").read_text().splitlines()
    strip = [[",".join(line.split(",")[:-1]) for line in rows] for rows in results.values()]  # no seconds
    assert strip[0] == strip[1] and len(strip[0]) == 3


def test_the_environment_is_lightnings_own_unless_torchrun_launched_the_run(monkeypatch):
    for k in ("RANK", "GROUP_RANK", "LOCAL_RANK", "LOCAL_WORLD_SIZE"):
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv("SLURM_NTASKS", "1")  # inside a SLURM step: not SLURM's environment
    monkeypatch.setenv("SLURM_JOB_ID", "7")
    assert type(devices.cluster_environment()).__name__ == "LightningEnvironment"
    for k, v in {"RANK": "0", "GROUP_RANK": "0", "LOCAL_RANK": "0", "LOCAL_WORLD_SIZE": "1"}.items():
        monkeypatch.setenv(k, v)
    assert type(devices.cluster_environment()).__name__ == "TorchElasticEnvironment"


def test_bf16_on_a_cpu_without_bf16_units_warns_with_the_fix(tmp_path, monkeypatch, caplog):
    import torch

    from visionstudy import experiment
    from visionstudy.config import RunConfig

    native = bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())  # oneDNN's own answer on this CPU
    assert devices.cpu_runs_bf16() is native
    cfg = RunConfig.model_validate({**TINY, "train": {**TINY["train"], "precision": "bf16"}})
    for has_units in (True, False):
        monkeypatch.setattr(experiment, "cpu_runs_bf16", lambda has=has_units: has)
        caplog.clear()
        experiment.warn_emulated_bf16.cache_clear()  # said once a process
        with caplog.at_level("WARNING", logger="visionstudy.experiment"):
            experiment.run_experiment(cfg, tmp_path / str(has_units), device="cpu", quiet=True)
        warned = [r.getMessage() for r in caplog.records if "bf16" in r.getMessage()]
        assert bool(warned) is not has_units
        assert all("train.precision=32" in w for w in warned)
    fp32 = RunConfig.model_validate(TINY)  # auto: fp32 on CPU, nothing to warn about
    caplog.clear()
    experiment.warn_emulated_bf16.cache_clear()
    with caplog.at_level("WARNING", logger="visionstudy.experiment"):
        experiment.run_experiment(fp32, tmp_path / "auto", device="cpu", quiet=True)
    assert not [r for r in caplog.records if "bf16" in r.getMessage()]


FAULTS = """
import resource, sys, torch
from visionstudy.training.devices import keep_freed_memory
print(keep_freed_memory())
def step(i):  # a CPU step's activations and their gradients: 2-12 MB blocks, freed at its end
    xs = [torch.ones(n) for n in (3_000_000, 1_000_000, 2_000_000, 500_000)[i % 2:]]
    ys = [x * 2 for x in xs]
    return sum(x.numel() + y.numel() for x, y in zip(xs, ys)) * 4
for i in range(5):
    step(i)
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
pages = sum(step(i) for i in range(20)) // 4096
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before, pages)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_a_cpu_run_keeps_freed_memory_so_its_steps_do_not_fault_in_fresh_pages():
    """With glibc's defaults such steps faulted in 3-83% of their pages again each time (freed
    blocks went back to the kernel); kept, the 20 steps after a warm-up fault in almost none."""
    out = subprocess.run([sys.executable, "-c", FAULTS], capture_output=True, text=True, check=True,
                         cwd=ROOT).stdout.split()
    assert out[0] == "True"
    faults, pages = int(out[1]), int(out[2])
    assert pages > 100_000 and faults < 0.05 * pages, (faults, pages)


def test_a_cpu_run_asks_to_keep_its_freed_memory(tmp_path, monkeypatch):
    from visionstudy import experiment
    from visionstudy.validate import validate_run_config

    calls = []
    monkeypatch.setattr(experiment, "keep_freed_memory", lambda: calls.append(1) or True)
    experiment.run_experiment(validate_run_config(TINY), tmp_path / "run", device="cpu", quiet=True)
    assert calls == [1]


def test_the_dynamo_stand_in_survives_introspection_of_every_module():
    """inspect.getmodule asks every module in sys.modules for `__file__`; torch does so while it
    imports torch.distributed.tensor (which torch.testing.assert_close imports). The stand-in loaded
    dynamo there, mid-import, and the import failed as circular (a notebook that trained through
    the API and then compared tensors)."""
    code = """
import inspect, sys, torch
from visionstudy.training.devices import DeferredDynamo, defer_dynamo
defer_dynamo()
import torch.distributed.tensor
torch.testing.assert_close(torch.ones(2), torch.ones(2))
assert inspect.getmodule(compile('1', 'nowhere.py', 'eval')) is None  # asks every module for __file__
assert isinstance(sys.modules["torch._dynamo"], DeferredDynamo)
import torch._dynamo.config  # a submodule: the real package loads
assert type(sys.modules["torch._dynamo"]).__name__ == "module"
print("ok")
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["ok"]
