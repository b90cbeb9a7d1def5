"""Deep Sets: the parameter counts of seed 004's table, equivariance and invariance, the set task."""

from __future__ import annotations

import json

import pytest
import torch

from visionstudy.config import SetsConfig
from visionstudy.data.sets import make_sets
from visionstudy.errors import ConfigError
from visionstudy.experiment import run_experiment
from visionstudy.models import count_params, create_model, list_models
from visionstudy.validate import validate_run_config

SEED_004 = {(3, 100): 21_001, (3, 200): 82_001, (3, 10): 301, (2, 10): 91, (2, 200): 1_801,
            (2, 100): 901, (3, 5): 101, (5, 2): 49}


@pytest.mark.parametrize("layers, width", SEED_004)
def test_seed_004_parameter_counts(layers, width):
    model = create_model("deepsets", 3, 1, (10, 3), layers=layers, width=width)
    assert count_params(model) == SEED_004[(layers, width)]


@pytest.mark.parametrize("pool", ["mean", "sum"])
def test_permuting_the_set_permutes_the_outputs(pool):
    torch.manual_seed(0)
    model = create_model("deepsets", 3, 2, (7, 3), layers=3, width=16, pool=pool).eval()
    x = torch.randn(5, 7, 3)
    perm = torch.randperm(7)
    out = model(x)
    assert out.shape == (5, 7, 2)
    assert torch.allclose(model(x[:, perm]), out[:, perm], atol=1e-5)
    assert not torch.allclose(out[:, 0], out[:, 1])  # elements are not all mapped alike


def test_the_pooled_head_is_invariant_and_the_layers_see_the_set():
    torch.manual_seed(0)
    model = create_model("deepsets", 3, 1, (6, 3), layers=2, width=8, invariant=True).eval()
    x = torch.randn(4, 6, 3)
    out = model(x)
    assert out.shape == (4, 1)
    assert torch.allclose(model(x[:, torch.randperm(6)]), out, atol=1e-5)
    equivariant = create_model("deepsets", 3, 1, (6, 3), layers=2, width=8).eval()
    changed = x.clone()
    changed[:, 5] += 3.0  # another element changes: element 0's output must change too
    assert not torch.allclose(equivariant(changed)[:, 0], equivariant(x)[:, 0])


def test_set_models_are_not_image_models():
    assert "deepsets" in list_models("set") and "deepsets" not in list_models()
    with pytest.raises(ConfigError, match="does not fit data.dataset 'digits'"):
        validate_run_config({"data": {"dataset": "digits"}, "model": {"name": "deepsets"}})
    with pytest.raises(ConfigError, match="does not fit data.dataset 'sets'"):
        validate_run_config({"data": {"dataset": "sets"}, "model": {"name": "cnn"}})
    with pytest.raises(ConfigError, match="model.invariant and data.sets.target disagree"):
        validate_run_config({"data": {"dataset": "sets", "sets": {"target": "set"}},
                             "model": {"name": "deepsets"}})


def test_the_task_is_seeded_and_its_noise_is_the_floor():
    cfg = SetsConfig(train=200, val=50, test=50, noise=0.3)
    a, b = make_sets(cfg, 5), make_sets(cfg, 5)
    assert torch.equal(a.train[0], b.train[0]) and torch.equal(a.test[1], b.test[1])
    assert not torch.equal(make_sets(cfg, 6).train[0], a.train[0])
    x, y = make_sets(SetsConfig(train=2000, val=10, test=10, noise=0.0), 0).train
    noisy = make_sets(SetsConfig(train=2000, val=10, test=10, noise=0.3), 0).train[1]
    assert float(((noisy - y) ** 2).mean()) == pytest.approx(0.09, rel=0.1)
    perm = torch.randperm(10)
    from visionstudy.data.sets import set_targets
    clean = set_targets(x[:, perm], 0.0, False, torch.Generator())
    assert torch.allclose(clean, y[:, perm], atol=1e-5)  # the targets are equivariant too


def sets_config(epochs: int) -> dict:
    return {"name": "ds", "seed": 1, "data": {"dataset": "sets", "sets": {"train": 600, "val": 100,
                                                                         "test": 100, "noise": 0.1}},
            "model": {"name": "deepsets", "layers": 3, "width": 32},
            "train": {"epochs": epochs, "batch_size": 32, "optimizer": {"name": "adam", "lr": 3e-3},
                      "monitor": "val_loss"}}


def test_a_set_run_learns_and_writes_a_complete_run_folder(tmp_path):
    metrics = run_experiment(validate_run_config(sets_config(8)), tmp_path / "run", quiet=True)
    saved = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert saved == metrics and metrics["task"] == "regression" and metrics["params"] == 2369
    history = (tmp_path / "run" / "history.csv").read_text().splitlines()
    assert len(history) == 9
    first_val = float(history[1].split(",")[3])
    assert metrics["val_mse"] < 0.6 * first_val  # it learns
    assert metrics["test_mse"] == metrics["test_loss"] and metrics["train_mse"] > 0


def test_a_set_run_resumes_to_the_same_weights(tmp_path):
    from visionstudy.training.checkpoint import load_checkpoint

    straight = run_experiment(validate_run_config(sets_config(4)), tmp_path / "a", quiet=True)
    run_experiment(validate_run_config(sets_config(2)), tmp_path / "b", quiet=True)
    (tmp_path / "b" / "metrics.json").unlink()  # as if killed after epoch 2 of 4
    resumed = run_experiment(validate_run_config(sets_config(4)), tmp_path / "b", quiet=True, resume=True,
                             force=True)
    a = load_checkpoint(tmp_path / "a" / "checkpoints" / "last.pt")["model"]
    b = load_checkpoint(tmp_path / "b" / "checkpoints" / "last.pt")["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert resumed["test_mse"] == straight["test_mse"]
