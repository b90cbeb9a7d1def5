"""The weight average of `train.ema`: TensorFlow's warm-up, buffers, swapping in and out, and a
run whose checkpoints and test use the average."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch import nn

from visionstudy.experiment import run_experiment
from visionstudy.tasks.base import task_of
from visionstudy.training.checkpoint import load_checkpoint
from visionstudy.training.ema import WeightAverage
from visionstudy.validate import validate_run_config


def small_net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))


def test_the_average_follows_tensorflows_warm_up_and_copies_integer_buffers():
    net = small_net()
    avg = WeightAverage(net, decay=0.99)
    expected = {k: v.clone() for k, v in net.state_dict().items()}
    for step in range(30):
        with torch.no_grad():
            net[0].weight.add_(1.0)
            net(torch.randn(8, 3))  # moves the batch-norm statistics and its batch count
        d = min(0.99, (1 + step) / (10 + step))
        for k, v in net.state_dict().items():
            expected[k] = d * expected[k] + (1 - d) * v if v.is_floating_point() else v.clone()
        avg.update(net)
    assert avg.steps == 30
    for k, v in expected.items():
        assert torch.allclose(avg.state[k], v, atol=1e-5), k
    assert avg.state["1.num_batches_tracked"].item() == 30
    live = net[0].weight.detach().clone()
    assert not torch.allclose(avg.state["0.weight"], live)  # the average lags the live weights


def test_applied_swaps_the_average_in_and_the_live_weights_back():
    net = small_net()
    avg = WeightAverage(net, decay=0.5)
    with torch.no_grad():
        net[0].weight.fill_(2.0)
    avg.update(net)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    with avg.applied(net) as live:
        assert torch.equal(net[0].weight, avg.state["0.weight"])
        assert torch.equal(live["0.weight"], before["0.weight"])
    for k, v in net.state_dict().items():
        assert torch.equal(v, before[k]), k
    with pytest.raises(RuntimeError), avg.applied(net):  # an error inside still restores
        raise RuntimeError
    assert torch.equal(net[0].weight, before["0.weight"])


def loaders(cfg):
    task = task_of(cfg)
    data = task.prepare(cfg, None)
    return task, data, task.loaders(data, cfg, torch.device("cpu"), False, 0, 1)


def logits_of(cfg, weights) -> np.ndarray:
    """The test set's logits of the run's model with `weights`, through the task's own loaders."""
    task, data, (_, _, test_loader) = loaders(cfg)
    net = task.build_model(cfg, data)
    net.load_state_dict(weights)
    return task.evaluate(net, test_loader, keep_outputs=True).logits


def test_a_run_validates_checkpoints_and_tests_the_average(tmp_path):
    cfg = validate_run_config({
        "name": "ema", "seed": 1, "data": {"dataset": "digits", "val_fraction": 0.2},
        "model": {"name": "mlp", "hidden": [32]},
        "train": {"epochs": 3, "batch_size": 64, "ema": 0.9, "restore_best": False,
                  "optimizer": {"name": "sgd", "lr": 0.2}},
    })
    run_experiment(cfg, tmp_path / "run", quiet=True)
    last = load_checkpoint(tmp_path / "run" / "checkpoints" / "last.pt")
    assert last["ema_steps"] == 3 * len(loaders(cfg)[2][0])  # one update per optimizer step
    assert any(not torch.equal(v, last["live_model"][k]) for k, v in last["model"].items())
    saved = np.load(tmp_path / "run" / "predictions.npz")["logits"]
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["tested_checkpoint"] == "last"
    assert np.allclose(saved, logits_of(cfg, last["model"]), atol=1e-5)  # the average was tested
    assert not np.allclose(saved, logits_of(cfg, last["live_model"]), atol=1e-3)


def test_best_pt_holds_the_average_that_was_validated(tmp_path):
    cfg = validate_run_config({
        "name": "ema1", "seed": 1, "data": {"dataset": "digits", "val_fraction": 0.2},
        "model": {"name": "mlp", "hidden": [32]},
        "train": {"epochs": 1, "batch_size": 64, "ema": 0.9, "optimizer": {"name": "sgd", "lr": 0.2}},
    })
    run_experiment(cfg, tmp_path / "run", quiet=True)
    last = load_checkpoint(tmp_path / "run" / "checkpoints" / "last.pt")
    best = load_checkpoint(tmp_path / "run" / "checkpoints" / "best.pt")  # epoch 1, the only one
    assert all(torch.equal(v, best["model"][k]) for k, v in last["model"].items())
    assert any(not torch.equal(v, last["live_model"][k]) for k, v in best["model"].items())
