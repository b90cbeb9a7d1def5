"""The epoch loop around `train_one_epoch`: validation, schedule, early stopping, checkpoints.

`last.pt` (everything a resume needs) is written atomically after every epoch, `best.pt` (weights)
whenever the monitored validation metric improves. Resuming restores model, optimizer, schedule,
loader shuffling state, RNG states, early-stopping state and history, so that on CPU a resumed run
ends with the same weights as an uninterrupted one.
"""

from __future__ import annotations

import csv
import io
import math
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from visionstudy.config import EarlyStoppingConfig, TrainConfig
from visionstudy.data.loader import BatchLoader
from visionstudy.fsutil import atomic_write_text
from visionstudy.store.rundir import RunDir
from visionstudy.tasks.metrics import metric
from visionstudy.training.checkpoint import load_checkpoint, rng_state, save_checkpoint, set_rng_state
from visionstudy.training.ema import WeightAverage
from visionstudy.training.loop import EpochStats, evaluate, train_one_epoch
from visionstudy.training.optim import Schedule, build_optimizer
from visionstudy.training.progress import EpochProgress

if TYPE_CHECKING:
    from visionstudy.tasks.base import Task

HISTORY_FIELDS = ["epoch", "train_loss", "train_accuracy", "val_loss", "val_accuracy", "lr", "seconds"]
STEP_FIELDS = ["step", "epoch", "batch", "loss", "accuracy", "lr"]


def better(monitor: str, value: float, best: float | None, min_delta: float = 0.0) -> bool:
    if best is None:
        return True
    return value > best + min_delta if metric(monitor).maximize else value < best - min_delta


@dataclass
class EarlyStopping:
    """Stops after `patience` epochs without improvement of the monitored metric."""

    cfg: EarlyStoppingConfig | None
    best: float | None = None
    bad_epochs: int = 0

    def update(self, metrics: dict[str, float]) -> bool:
        """Record an epoch; True when training should stop."""
        if self.cfg is None:
            return False
        value = metrics[self.cfg.monitor]
        if better(self.cfg.monitor, value, self.best, self.cfg.min_delta):
            self.best, self.bad_epochs = value, 0
        else:
            self.bad_epochs += 1
        return self.bad_epochs >= self.cfg.patience

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best, "bad_epochs": self.bad_epochs}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best, self.bad_epochs = state["best"], state["bad_epochs"]


@dataclass
class FitResult:
    history: list[dict[str, float]] = field(default_factory=list)
    best_epoch: int = 0
    best_value: float | None = None
    stopped_early: bool = False
    train_seconds: float = 0.0
    steps: list[dict[str, float]] = field(default_factory=list)  # train.log_every_n_steps records


def history_csv(history: list[dict[str, float]], fields: list[str] = HISTORY_FIELDS) -> str:
    """CSV of the rows; a NaN (no validation set, no accuracy) is an empty cell."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fields, lineterminator="\n")
    writer.writeheader()
    writer.writerows({k: ("" if isinstance(v, float) and math.isnan(v) else v) for k, v in row.items()}
                     for row in history)
    return out.getvalue()


def write_history(run: RunDir, result: FitResult, cfg: TrainConfig) -> None:
    """history.csv (and steps.csv where per-step records are on) from the run's record so far."""
    atomic_write_text(run.history, history_csv(result.history))
    if cfg.log_every_n_steps:
        atomic_write_text(run.steps, history_csv(result.steps, STEP_FIELDS))


def fit(
    fabric: Any,
    net: nn.Module,
    train_loader: BatchLoader,
    val_loader: BatchLoader,
    cfg: TrainConfig,
    run: RunDir,
    *,
    resume: bool = False,
    quiet: bool = False,
    config_dump: dict[str, Any] | None = None,
    meta: dict[str, Any] | None = None,
    on_epoch_end: Callable[[dict[str, float]], None] | None = None,
    task: Task[Any] | None = None,
) -> FitResult:
    """Train `net` under `fabric` (devices, precision, DDP); rank 0 writes the checkpoints.
    `task` gives the loss, the validation and the default monitor (default: classification)."""
    monitor = cfg.monitor or (task.default_monitor if task is not None else "val_accuracy")
    validate = task.evaluate if task is not None else evaluate
    validating = len(val_loader) > 0  # data.val_fraction: 0 leaves no validation set
    optimizer = build_optimizer(net, cfg.optimizer)
    schedule = Schedule(optimizer, cfg.scheduler, cfg.epochs, len(train_loader))
    model, fab_optimizer = fabric.setup(net, optimizer)
    early = EarlyStopping(cfg.early_stopping)
    ema = WeightAverage(net, cfg.ema) if cfg.ema else None
    result = FitResult()
    if resume and run.has_progress():
        state = load_checkpoint(run.last)
        net.load_state_dict(state["model"] if ema is None else state["live_model"])
        if ema is not None:  # last.pt's model is the average; the live weights are beside it
            ema.load(state["model"], state["ema_steps"])
        optimizer.load_state_dict(state["optimizer"])
        schedule.load_state_dict(state["schedule"])
        train_loader.load_state_dict(state["loader"])
        early.load_state_dict(state["early_stopping"])
        result = FitResult(**state["result"])
        set_rng_state(state["rng"])
        if fabric.is_global_zero:  # last.pt's history is the record: a stop after it was written and
            write_history(run, result, cfg)  # before history.csv left the file an epoch short
    clip = (lambda: fabric.clip_gradients(model, fab_optimizer, max_norm=cfg.grad_clip)) \
        if cfg.grad_clip else None

    def all_reduce(t: torch.Tensor) -> torch.Tensor:
        return fabric.all_reduce(t, reduce_op="sum") if fabric.world_size > 1 else t

    def end_epoch(epoch: int, lr: float, stats: EpochStats, live: dict[str, torch.Tensor] | None) -> None:
        """Validate, record, checkpoint and hand the row on; `net` holds the weights to evaluate and
        `live` the training ones where they differ (train.ema)."""
        t0 = time.perf_counter()
        val = validate(net, val_loader, autocast=fabric.autocast()) if validating else None
        row = {
            "epoch": epoch + 1, "train_loss": stats.loss, "train_accuracy": stats.accuracy,
            "val_loss": val.loss if val else math.nan, "val_accuracy": val.accuracy if val else math.nan,
            "lr": lr, "seconds": stats.seconds + time.perf_counter() - t0,
        }
        result.history.append(row)
        result.steps += [{"step": epoch * len(train_loader) + s["batch"], "epoch": epoch + 1, **s}
                         for s in stats.steps]
        result.train_seconds += row["seconds"]
        schedule.step_epoch(row)
        if validating and better(monitor, row[monitor], result.best_value):
            result.best_epoch, result.best_value = epoch + 1, row[monitor]
            if fabric.is_global_zero:
                save_checkpoint({"model": net.state_dict(), "epoch": epoch + 1,
                                 "config": config_dump, "meta": meta or {}}, run.best)
        result.stopped_early = early.update(row)
        if fabric.is_global_zero:
            save_checkpoint({
                "model": net.state_dict(), "optimizer": optimizer.state_dict(),
                "schedule": schedule.state_dict(), "loader": train_loader.state_dict(),
                "early_stopping": early.state_dict(), "rng": rng_state(),
                **({"live_model": live, "ema_steps": ema.steps} if ema is not None else {}),
                "result": result.__dict__, "epoch": epoch + 1, "config": config_dump, "meta": meta or {},
            }, run.last)
            write_history(run, result, cfg)
        progress.end_epoch(row)
        if on_epoch_end is not None:  # e.g. a search reporting to its pruner (may raise)
            on_epoch_end(row)

    start_epoch = len(result.history)
    with EpochProgress(cfg.epochs, enabled=not quiet and fabric.is_global_zero) as progress:
        for epoch in range(start_epoch, cfg.epochs):
            if result.stopped_early:
                break
            lr = schedule.lr()
            progress.start_epoch(epoch + 1, len(train_loader), lr)
            stats = train_one_epoch(
                model, train_loader, fab_optimizer, schedule, backward=fabric.backward, clip=clip,
                label_smoothing=cfg.label_smoothing, l1=cfg.l1, l2=cfg.l2, all_reduce=all_reduce,
                on_step=progress.step if not quiet else None, task=task, log_every=cfg.log_every_n_steps,
                after_step=(lambda: ema.update(net)) if ema is not None else None,
            )
            with ema.applied(net) if ema is not None else nullcontext(None) as live:
                end_epoch(epoch, lr, stats, live)
    if ema is not None:  # the last weights tested are the averaged ones
        net.load_state_dict(ema.state)
    return result
