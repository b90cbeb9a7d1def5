"""Every optimizer and schedule steps and changes what it should."""

from __future__ import annotations

import copy
import math

import pytest
import torch

from visionstudy.config import OptimizerConfig, SchedulerConfig
from visionstudy.training.optim import OPTIMIZERS, Schedule, build_optimizer, weight_penalty


@pytest.mark.parametrize("name", OPTIMIZERS.names())
def test_optimizers_step(name):
    model = torch.nn.Linear(4, 2)
    before = model.weight.detach().clone()
    momentum = {"momentum": 0.5} if name in ("sgd", "rmsprop") else {}
    opt = build_optimizer(model, OptimizerConfig(name=name, lr=0.1, weight_decay=1e-4, **momentum))
    model(torch.randn(8, 4)).pow(2).sum().backward()
    opt.step()
    assert not torch.equal(before, model.weight)


def lrs(cfg: SchedulerConfig, epochs=6, steps=3, metric=None):
    opt = torch.optim.SGD(torch.nn.Linear(1, 1).parameters(), lr=1.0)
    sched = Schedule(opt, cfg, epochs, steps)
    out = []
    for e in range(epochs):
        out.append(sched.lr())
        for _ in range(steps):
            opt.step()
            sched.step_batch()
        sched.step_epoch({"val_loss": metric[e] if metric else 1.0, "val_accuracy": 0.5})
    return out


def test_schedules():
    assert lrs(SchedulerConfig(name="none")) == [1.0] * 6
    assert lrs(SchedulerConfig(name="step", step_size=2, gamma=0.1)) == pytest.approx(
        [1, 1, 0.1, 0.1, 0.01, 0.01])
    assert lrs(SchedulerConfig(name="halve", every=2)) == pytest.approx([1, 1, .5, .5, .25, .25])
    assert lrs(SchedulerConfig(name="multistep", milestones=[1, 4], gamma=0.5)) == pytest.approx(
        [1, .5, .5, .5, .25, .25])
    assert lrs(SchedulerConfig(name="exponential", gamma=0.5))[:3] == pytest.approx([1, .5, .25])
    cos = lrs(SchedulerConfig(name="cosine"))
    assert cos[0] == 1.0 and all(a > b for a, b in zip(cos, cos[1:], strict=False)) and cos[-1] > 0
    one = lrs(SchedulerConfig(name="onecycle", pct_start=0.3))
    assert max(one) > one[0] and one[-1] < max(one)
    plateau = lrs(SchedulerConfig(name="plateau", patience=1, factor=0.5), metric=[1, .5, .5, .5, .5, .5])
    assert plateau[0] == 1.0 and plateau[-1] < 1.0
    warm = lrs(SchedulerConfig(name="cosine", warmup_epochs=2))
    assert warm[0] == pytest.approx(0.1) and warm[0] < warm[1] < warm[2] == pytest.approx(1.0)


@pytest.mark.parametrize(("epochs", "steps", "pct_start"), [(1, 50, 0.02), (1, 4, 0.25), (2, 5, 0.1)])
def test_a_one_cycle_whose_rise_is_exactly_one_step_peaks_at_once_and_anneals(epochs, steps, pct_start):
    """torch's OneCycleLR raises ZeroDivisionError when pct_start × total steps is exactly 1 (the
    fast Fashion-MNIST config's 0.02 on 50 steps, the default 0.25 on 4)."""
    opt = torch.optim.SGD(torch.nn.Linear(1, 1).parameters(), lr=1.0)
    sched = Schedule(opt, SchedulerConfig(name="onecycle", pct_start=pct_start), epochs, steps)
    seen = []
    for _ in range(epochs * steps):
        seen.append(sched.lr())
        opt.step()
        sched.step_batch()
    assert seen[0] == pytest.approx(1.0)  # the peak at the first step
    assert all(a > b for a, b in zip(seen, seen[1:], strict=False)) and seen[-1] < 0.05


def test_weight_penalty_skips_biases():
    w = [torch.tensor([[1.0, -2.0]])]
    assert float(weight_penalty(w, 0.1, 0.0)) == pytest.approx(0.3)
    assert float(weight_penalty(w, 0.0, 0.5)) == pytest.approx(2.5)


def test_cosine_restarts_anneal_each_cycle_and_start_again():
    flat = lrs(SchedulerConfig(name="cosine_restarts", first=2), epochs=6)
    assert flat == pytest.approx([1.0, 0.5, 1.0, 0.5, 1.0, 0.5])
    longer = lrs(SchedulerConfig(name="cosine_restarts", first=2, mult=2, min_lr=0.1), epochs=6)
    cosine = [0.1 + 0.9 * (1 + math.cos(math.pi * t / n)) / 2 for n in (2, 4) for t in range(n)]
    assert longer == pytest.approx(cosine)  # a cycle of 2 epochs, then of 4: 1, 0.55 | 1, 0.87, 0.55, 0.23


# ------------------------------------------------------------------ registry contract (issue #14, 5)
from visionstudy.training.optim import OPTIMIZERS, SCHEDULES, list_optimizers, list_schedules  # noqa: E402


@pytest.mark.parametrize("name", list_optimizers())
def test_every_registered_optimizer_builds_from_its_defaults_and_steps(name):
    entry = OPTIMIZERS.get(name)
    assert entry.params().model_dump() is not None and entry.description
    model = torch.nn.Linear(3, 2)
    before = model.weight.detach().clone()
    opt = build_optimizer(model, OptimizerConfig(name=name, lr=0.1))
    model(torch.ones(4, 3)).sum().backward()
    opt.step()
    assert not torch.equal(before, model.weight)


@pytest.mark.parametrize("name", list_schedules())
def test_every_registered_schedule_builds_from_its_defaults_and_keeps_the_lr_positive(name):
    entry = SCHEDULES.get(name)
    assert entry.description
    values = lrs(SchedulerConfig(name=name), epochs=4, steps=2, metric=[1.0] * 4)
    assert len(values) == 4 and all(v > 0 for v in values)


def test_a_key_of_another_entry_is_refused_with_its_field():
    from visionstudy.errors import ConfigError
    from visionstudy.validate import validate_run_config

    with pytest.raises(ConfigError, match=r"train\.optimizer\.momentum: unknown key"):
        validate_run_config({"train": {"optimizer": {"name": "adam", "momentum": 0.9}}})
    with pytest.raises(ConfigError, match=r"train\.scheduler\.step_size: unknown key"):
        validate_run_config({"train": {"scheduler": {"name": "cosine", "step_size": 3}}})


def test_naming_another_optimizer_replaces_the_section():
    from visionstudy.config import merge_run

    base = {"train": {"optimizer": {"name": "sgd", "lr": 0.1, "momentum": 0.9}}}
    assert merge_run(base, {"train": {"optimizer": {"name": "adam"}}}) == {
        "train": {"optimizer": {"name": "adam", "lr": 0.1}}}  # lr is every optimizer's
    assert merge_run(base, {"train": {"optimizer": {"lr": 0.2}}})["train"]["optimizer"]["momentum"] == 0.9


@pytest.mark.parametrize(("name", "kind", "params"), [
    ("nadam", "NAdam", {"betas": (0.8, 0.99), "eps": 1e-6, "weight_decay": 1e-3}),
    ("radam", "RAdam", {"betas": (0.8, 0.99), "eps": 1e-6, "weight_decay": 1e-3}),
    ("adamax", "Adamax", {"betas": (0.8, 0.99), "eps": 1e-6, "weight_decay": 1e-3}),
    ("adadelta", "Adadelta", {"rho": 0.95, "eps": 1e-7, "weight_decay": 1e-3}),
])
def test_keras_other_optimizers_are_torch_s_with_every_key_passed_on(name, kind, params):
    """Nadam, RAdam, Adamax and Adadelta (Keras offers them beside the seeds' four): torch's class,
    with each key of the config (not torch's defaults) in its settings."""
    opt = build_optimizer(torch.nn.Linear(3, 2), OptimizerConfig(name=name, lr=0.01, **params))
    assert type(opt).__name__ == kind and opt.defaults["lr"] == 0.01
    assert {k: opt.defaults[k] for k in params} == {k: v for k, v in params.items()}


@pytest.mark.parametrize(("name", "params"), [
    ("sgd", {"momentum": 0.9, "nesterov": True, "weight_decay": 1e-3}),
    ("adam", {"weight_decay": 1e-3}),
    ("adamw", {"weight_decay": 1e-2}),
    ("adagrad", {"weight_decay": 1e-3}),
])
def test_the_fused_optimizers_take_the_steps_of_torch_s_default_ones(name, params):
    """SGD, Adam, AdamW and Adagrad use torch's fused kernel (README "Performance"): the same
    weights as the default multi-tensor update after several steps, in every parameter group."""
    torch.manual_seed(0)
    ours = torch.nn.Sequential(torch.nn.Linear(5, 4), torch.nn.ReLU(), torch.nn.Linear(4, 3))
    plain = copy.deepcopy(ours)
    opt = build_optimizer(ours, OptimizerConfig(name=name, lr=0.05, **params))
    assert opt.defaults["fused"] is True
    kind = {"sgd": torch.optim.SGD, "adam": torch.optim.Adam, "adamw": torch.optim.AdamW,
            "adagrad": torch.optim.Adagrad}[name]
    ref = kind(plain.parameters(), lr=0.05, foreach=True, **params)
    for _ in range(6):
        x = torch.randn(16, 5)
        for model, o in ((ours, opt), (plain, ref)):
            o.zero_grad()
            model(x).square().mean().backward()
            o.step()
    for a, b in zip(ours.parameters(), plain.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
