"""The memory check: an estimate on the meta device, a refusal before training with both numbers."""

from __future__ import annotations

import sys

import torch
import yaml

from tests.helpers import run_cli
from visionstudy.models import count_params, create_model
from visionstudy.training.memory import MemoryEstimate, check_fits, estimate, optimizer_state_per_param


def test_the_estimate_counts_weights_gradients_optimizer_state_and_activations():
    with torch.device("meta"):
        net = create_model("mlp", 1, 10, 8, hidden=[1000])
    real = create_model("mlp", 1, 10, 8, hidden=[1000])
    adam = estimate(net, (1, 8, 8), 32, lambda p: torch.optim.Adam(p))
    assert adam.params == count_params(real) and adam.weights == 4 * adam.params
    assert adam.optimizer == 2 * adam.weights  # Adam keeps two moments per parameter
    sgd = estimate(net, (1, 8, 8), 32, lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9))
    assert sgd.optimizer == sgd.weights
    assert optimizer_state_per_param(lambda p: torch.optim.SGD(p, lr=0.1)) == 0
    # activations: the outputs of flatten (64), linear (1000), relu (1000), head (10) per image
    assert adam.activations == 32 * 4 * (64 + 1000 + 1000 + 10)
    assert estimate(net, (1, 8, 8), 64, lambda p: torch.optim.Adam(p)).activations == 2 * adam.activations
    # the built model, run on one sample and scaled, gives the same count and is left as it was
    real.train()
    before = [p.clone() for p in real.parameters()]
    assert estimate(real, (1, 8, 8), 32, lambda p: torch.optim.Adam(p)).activations == adam.activations
    assert real.training and all(torch.equal(a, b) for a, b in zip(before, real.parameters(), strict=True))
    assert estimate(net, (1, 8, 8), 32, lambda p: torch.optim.Adam(p), activations=False).activations == 0


def test_a_run_that_fits_passes_and_one_that_does_not_is_refused_with_both_numbers(monkeypatch):
    est = MemoryEstimate(params=10, weights=40, gradients=40, optimizer=80, activations=1000, batch_size=8)
    assert check_fits(est, torch.device("cpu")) is None
    huge = MemoryEstimate(params=10**12, weights=4 * 10**12, gradients=4 * 10**12, optimizer=0,
                          activations=0, batch_size=8)
    reason = check_fits(huge, torch.device("cpu"))
    assert reason and "7450.6 GiB" in reason and "GiB of RAM available" in reason and "batch_size" in reason
    monkeypatch.setenv("VISIONSTUDY_NO_MEMORY_CHECK", "1")
    assert check_fits(huge, torch.device("cpu")) is None


def test_train_refuses_a_model_too_big_for_memory_in_seconds_without_a_traceback(tmp_path):
    path = tmp_path / "big.yaml"
    path.write_text(yaml.safe_dump({"name": "big", "model": {"name": "mlp", "hidden": [100_000_000]},
                                    "train": {"epochs": 1}}))
    result = run_cli([sys.executable, "-m", "visionstudy", "train", str(path), "--out",
                      str(tmp_path / "run")], timeout=120)
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert "does not fit in memory" in result.stderr and "7,500,000,010 parameters" in result.stderr
    assert not (tmp_path / "run" / "history.csv").exists()


def test_the_cpu_limit_is_the_ram_still_available():
    import os

    from visionstudy.training.memory import available_bytes

    free, what = available_bytes(torch.device("cpu"))
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    assert 0 < free <= total and what
