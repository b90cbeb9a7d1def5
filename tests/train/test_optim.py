"""Every optimizer and schedule steps and changes what it should."""

from __future__ import annotations

import pytest
import torch

from visionstudy.config import OptimizerConfig, SchedulerConfig
from visionstudy.train.optim import OPTIMIZERS, Schedule, build_optimizer, weight_penalty


@pytest.mark.parametrize("name", OPTIMIZERS.names())
def test_optimizers_step(name):
    model = torch.nn.Linear(4, 2)
    before = model.weight.detach().clone()
    opt = build_optimizer(model, OptimizerConfig(name=name, lr=0.1, momentum=0.5 if name in (
        "sgd", "rmsprop") else 0.0, weight_decay=1e-4))
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


def test_weight_penalty_skips_biases():
    w = [torch.tensor([[1.0, -2.0]])]
    assert float(weight_penalty(w, 0.1, 0.0)) == pytest.approx(0.3)
    assert float(weight_penalty(w, 0.0, 0.5)) == pytest.approx(2.5)
