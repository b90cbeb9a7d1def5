"""One regression run on sets (`data.dataset: sets`, a `deepsets` model): the same run folder,
checkpoints, resume, schedules, early stopping and history as an image run, with mean squared
error as the loss and the metric (`test_mse`, `val_mse`, `train_mse` in metrics.json).

Validation picks the best checkpoint by validation MSE (`val_loss`); `train.monitor` and
`early_stopping.monitor` are read as `val_loss` whatever they say, since there is no accuracy.
"""

from __future__ import annotations

import io
import json
import math
import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
import yaml
from torch import nn

from visionstudy.config import EarlyStoppingConfig, RunConfig, dump_config
from visionstudy.data.sets import SetSplits, make_sets
from visionstudy.errors import ConfigError, TrainingError
from visionstudy.fsutil import atomic_write_bytes, atomic_write_text
from visionstudy.models import count_params, create_model, model_kind
from visionstudy.train.checkpoint import load_checkpoint, rng_state, save_checkpoint, set_rng_state
from visionstudy.train.fit import EarlyStopping, FitResult, better, history_csv
from visionstudy.train.optim import Schedule, build_optimizer
from visionstudy.train.rundir import RunDir


def is_set_run(cfg: RunConfig) -> bool:
    return cfg.data.dataset == "sets"


def check_set_config(cfg: RunConfig) -> None:
    """Sets need a set model, images an image model, and the output level must match."""
    if (model_kind(cfg.model.name) == "set") != is_set_run(cfg):
        raise ConfigError(f"model.name {cfg.model.name!r} does not fit data.dataset {cfg.data.dataset!r}: "
                          "the deepsets model takes dataset 'sets', image models take image datasets")
    if not is_set_run(cfg):
        return
    invariant = bool(cfg.model.params().get("invariant", False))
    if invariant != (cfg.data.sets.target == "set"):
        raise ConfigError("model.invariant and data.sets.target disagree: an invariant model gives one "
                          "output per set (target: set), an equivariant one per element (target: element)")


def batches(n: int, size: int, gen: torch.Generator, device: torch.device) -> list[torch.Tensor]:
    order = torch.randperm(n, generator=gen).to(device)
    return list(order.split(size))


@torch.inference_mode()
def mse(net: nn.Module, x: torch.Tensor, y: torch.Tensor, batch: int) -> float:
    net.eval()
    total = sum(F.mse_loss(net(x[i:i + batch]), y[i:i + batch], reduction="sum").item()
                for i in range(0, len(x), batch))
    return total / y.numel()


def run_set_experiment(
    cfg: RunConfig, out: Path, *, device: torch.device, resume: bool, force: bool,
    on_epoch_end: Callable[[dict[str, float]], None] | None = None,
) -> dict[str, Any]:
    from visionstudy.experiment import check_run_dir

    check_set_config(cfg)
    t = cfg.train
    run = RunDir(out)
    cfg_dump = dump_config(cfg)
    check_run_dir(run, resume, force, cfg_dump)
    random.seed(cfg.seed)
    np.random.seed(cfg.seed)
    torch.manual_seed(cfg.seed)
    data = make_sets(cfg.data.sets, cfg.data.split_seed).to(device)
    outputs = data.train[1].shape[-1]
    net = create_model(cfg.model.name, cfg.data.sets.dim, outputs, (cfg.data.sets.size, cfg.data.sets.dim),
                       **cfg.model.params()).to(device)
    params = count_params(net)
    write_set_config(run, cfg_dump, data, params)
    optimizer = build_optimizer(net, t.optimizer)
    steps = math.ceil(len(data.train[0]) / t.batch_size)
    schedule = Schedule(optimizer, t.scheduler, t.epochs, steps)
    early = EarlyStopping(EarlyStoppingConfig(**{**t.early_stopping.model_dump(), "monitor": "val_loss"})
                          if t.early_stopping else None)
    shuffle = torch.Generator().manual_seed(cfg.seed)
    result = FitResult()
    if resume and run.has_progress():
        state = load_checkpoint(run.last)
        net.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        schedule.load_state_dict(state["schedule"])
        early.load_state_dict(state["early_stopping"])
        shuffle.set_state(state["loader"])
        result = FitResult(**state["result"])
        set_rng_state(state["rng"])
    meta = {"task": "regression", "set_size": cfg.data.sets.size, "dim": cfg.data.sets.dim}
    x_train, y_train = data.train
    for epoch in range(len(result.history), t.epochs):
        if result.stopped_early:
            break
        start, lr = time.perf_counter(), schedule.lr()
        net.train()
        loss_sum = torch.zeros((), device=device, dtype=torch.float64)
        for idx in batches(len(x_train), t.batch_size, shuffle, device):
            loss = F.mse_loss(net(x_train[idx]), y_train[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if t.grad_clip:
                nn.utils.clip_grad_norm_(net.parameters(), t.grad_clip)
            optimizer.step()
            schedule.step_batch()
            loss_sum += loss.detach() * len(idx)
        train_loss = loss_sum.item() / len(x_train)
        if not math.isfinite(train_loss):
            raise TrainingError("the training loss became NaN or infinite; lower train.optimizer.lr or set "
                                "train.grad_clip. The last good epoch is kept in checkpoints/last.pt")
        val_loss = mse(net, *data.val, t.eval_batch_size)
        row = {"epoch": epoch + 1, "train_loss": train_loss, "train_accuracy": math.nan,
               "val_loss": val_loss, "val_accuracy": math.nan, "lr": lr,
               "seconds": time.perf_counter() - start}
        result.history.append(row)
        result.train_seconds += row["seconds"]
        schedule.step_epoch({**row, "val_accuracy": -val_loss})  # a plateau on accuracy watches -MSE
        if better("val_loss", val_loss, result.best_value):
            result.best_epoch, result.best_value = epoch + 1, val_loss
            save_checkpoint({"model": net.state_dict(), "epoch": epoch + 1, "config": cfg_dump,
                             "meta": meta}, run.best)
        result.stopped_early = early.update(row)
        save_checkpoint({
            "model": net.state_dict(), "optimizer": optimizer.state_dict(),
            "schedule": schedule.state_dict(), "loader": shuffle.get_state(),
            "early_stopping": early.state_dict(), "rng": rng_state(), "result": result.__dict__,
            "epoch": epoch + 1, "config": cfg_dump, "meta": meta,
        }, run.last)
        atomic_write_text(run.history, history_csv(result.history))
        if on_epoch_end is not None:
            on_epoch_end(row)
    if t.restore_best and run.best.is_file():
        net.load_state_dict(load_checkpoint(run.best)["model"])
    metrics = set_metrics(net, data, result, params, t.eval_batch_size)
    net.eval()
    with torch.inference_mode():
        pred = torch.cat([net(data.test[0][i:i + t.eval_batch_size])
                          for i in range(0, len(data.test[0]), t.eval_batch_size)])
    buf = io.BytesIO()
    np.savez_compressed(buf, outputs=pred.cpu().numpy(), targets=data.test[1].cpu().numpy())
    atomic_write_bytes(run.predictions, buf.getvalue())
    atomic_write_text(run.metrics, json.dumps(metrics, indent=2))  # last: marks the run finished
    return metrics


def set_metrics(net: nn.Module, data: SetSplits, result: FitResult, params: int,
                batch: int) -> dict[str, Any]:
    test = mse(net, *data.test, batch)
    return {
        "task": "regression", "test_mse": test, "test_loss": test,
        "val_mse": mse(net, *data.val, batch), "train_mse": mse(net, *data.train, batch),
        "test_rmse": math.sqrt(test), "params": params, "train_seconds": result.train_seconds,
        "epochs_run": len(result.history), "best_epoch": result.best_epoch,
        "stopped_early": result.stopped_early, "test_samples": len(data.test[0]),
    }


def write_set_config(run: RunDir, cfg_dump: dict[str, Any], data: SetSplits, params: int) -> None:
    from visionstudy.experiment import versions

    x = data.train[0]
    doc = {**cfg_dump, "resolved": {
        "versions": versions(),
        "dataset": {"name": "sets", "set_size": int(x.shape[1]), "dim": int(x.shape[2]),
                    "train": len(x), "val": len(data.val[0]), "test": len(data.test[0])},
        "model": {"params": params},
    }}
    atomic_write_text(run.config, yaml.safe_dump(doc, sort_keys=False))
