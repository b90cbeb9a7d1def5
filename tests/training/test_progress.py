"""The train bar of a short epoch: the numbers it shows exist (no "loss nan" under 20 steps)."""

from __future__ import annotations

import math

import numpy as np
import torch

from visionstudy.config import SchedulerConfig
from visionstudy.data.loader import BatchLoader
from visionstudy.models import create_model
from visionstudy.training.loop import train_one_epoch
from visionstudy.training.optim import Schedule
from visionstudy.training.progress import epoch_line, step_text


def test_an_epoch_shorter_than_the_report_interval_reports_its_last_step():
    torch.manual_seed(0)
    model = create_model("cnn", 1, 4, 8, channels=[4], hidden=[8])
    images = np.random.default_rng(0).integers(0, 255, (21, 8, 8, 1), dtype=np.uint8)
    loader = BatchLoader(images, np.arange(21) % 4, 7, mean=(0.5,), std=(0.25,), num_classes=4)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    seen: list[tuple[int, float, float]] = []
    stats = train_one_epoch(model, loader, opt, Schedule(opt, SchedulerConfig(), 1, len(loader)),
                            backward=lambda loss: loss.backward(), report_every=20,
                            on_step=lambda *a: seen.append(a))
    assert len(loader) == 3 and [s[0] for s in seen] == [3]  # 3 steps < 20: the last one is reported
    step, loss, acc = seen[0]
    assert math.isclose(loss, stats.loss, rel_tol=1e-6) and math.isclose(acc, stats.accuracy)
    assert "nan" not in step_text(loss, acc) and step_text(loss, acc).startswith("loss ")


def test_missing_numbers_are_left_out_not_printed_as_nan():
    assert step_text(math.nan, math.nan) == ""
    assert step_text(0.5, math.nan) == "loss 0.5000"  # regression: no accuracy
    row = {"epoch": 1, "train_loss": 0.5, "train_accuracy": 0.75, "val_loss": math.nan,
           "val_accuracy": math.nan, "lr": 0.1, "seconds": 1.0}
    assert epoch_line(row, 3) == "epoch 1/3  train loss 0.5000 acc 0.750  lr 1.00e-01  1.0s"
