"""Regression on sets (seed 004 P3): mean squared error as the loss and the metric."""

from __future__ import annotations

import math
from contextlib import nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from visionstudy.config import RunConfig
from visionstudy.tasks.base import Task, eval_batch, register_task, trained_for

if TYPE_CHECKING:
    import torch

    from visionstudy.data.sets import SetData


@register_task
class SetRegression(Task["SetData"]):
    name = "regression"
    description = "sets of vectors → a target per element or per set (mean squared error)"
    metrics = ("test_mse", "val_mse", "train_mse", "params", "train_seconds", "epochs_run")
    glance = ("test_mse", "val_mse", "train_mse")
    results = ("test_mse", "test_rmse", "test_loss", "val_mse", "train_mse")
    default_monitor = "val_loss"
    validation_metrics = ("val_loss",)
    model_kind = "set"
    sections = ("curves",)
    prediction_keys = ("outputs", "targets")

    def refuse(self, cfg: RunConfig) -> list[str]:
        t, out = cfg.train, []
        if t.label_smoothing:
            out.append("train.label_smoothing: classification only; remove it for a regression run")
        if t.tta:
            out.append("train.tta: flips images; remove it for a regression run")
        if cfg.data.augment:
            out.append("data.augment: image augmentations do not apply to sets; remove them")
        if t.channels_last == "on":
            out.append("train.channels_last: on is for images; use auto or off")
        for field, value in (("train.monitor", t.monitor),
                             ("train.early_stopping.monitor", t.early_stopping and t.early_stopping.monitor),
                             ("train.scheduler.monitor", t.scheduler.params().get("monitor"))):
            if value == "val_accuracy":
                out.append(f"{field}: val_accuracy does not exist for regression; use val_loss (the MSE)")
        invariant = bool(cfg.model.params().get("invariant", False))
        if cfg.data.path is None and invariant != (cfg.data.sets.target == "set"):
            out.append("model.invariant and data.sets.target disagree: an invariant model gives one "
                       "output per set (target: set), an equivariant one per element (target: element)")
        return out

    def prepare(self, cfg: RunConfig, data_dir: Path | None) -> SetData:
        from visionstudy.data.sets import load_sets
        from visionstudy.errors import ConfigError

        data = load_sets(cfg.data, data_dir)
        per_set = data.per_set
        if cfg.data.path is not None and per_set != bool(cfg.model.params().get("invariant", False)):
            raise ConfigError(
                f"data.path {cfg.data.path}: y holds one target per {'set' if per_set else 'element'}, and "
                f"model.invariant is {str(not per_set).lower()}: an invariant model gives one output per "
                f"set, an equivariant one per element; set model.invariant: {str(per_set).lower()}")
        return data

    def input_shape(self, data: SetData) -> tuple[int, ...]:
        return tuple(data.input_shape)

    def build_model(self, cfg: RunConfig, data: SetData, skeleton: bool = False) -> torch.nn.Module:
        from visionstudy.models import create_model

        return create_model(cfg.model.name, data.input_shape[1], data.outputs, data.input_shape,
                            skeleton=skeleton, **cfg.model.params())

    def loaders(self, data: SetData, cfg: RunConfig, device: torch.device, channels_last: bool,
                rank: int, world: int) -> tuple[Any, Any, Any]:
        from visionstudy.data.loader import SetLoader

        t = cfg.train
        train = SetLoader(*data.train, t.batch_size, shuffle=True, seed=cfg.seed, device=device,
                          rank=rank, world=world)
        size = eval_batch(cfg, device)
        return train, SetLoader(*data.val, size, device=device), SetLoader(*data.test, size, device=device)

    def checkpoint_meta(self, data: SetData) -> dict[str, Any]:
        return {"task": self.name, "input_shape": list(data.input_shape), "outputs": data.outputs}

    def dataset_doc(self, data: SetData) -> dict[str, Any]:
        return {"name": data.name, "checksum": data.checksum, "checksum_algorithm": "md5",
                "files": [str(p) for p in data.files], "set_size": data.input_shape[0],
                "dim": data.input_shape[1], "outputs": data.outputs, "train": len(data.train[0]),
                "val": len(data.val[0]), "test": len(data.test[0])}

    def loss(self, outputs: torch.Tensor, target: torch.Tensor, label_smoothing: float) -> torch.Tensor:
        import torch.nn.functional as F

        return F.mse_loss(outputs, target)

    def evaluate(self, model: torch.nn.Module, loader: Any, *, tta: bool = False,
                 keep_outputs: bool = False, autocast: Any = None) -> Any:
        import torch
        import torch.nn.functional as F

        from visionstudy.training.loop import Evaluation

        model.eval()
        outs, targets = [], []
        with torch.inference_mode(), autocast or nullcontext():
            for x, y in loader:
                outs.append(model(x).float())
                targets.append(y)
        out, target = torch.cat(outs), torch.cat(targets)
        mse = F.mse_loss(out, target).item()
        return Evaluation(mse, math.nan, math.nan, out.cpu().numpy() if keep_outputs else np.empty(0),
                          target.cpu().numpy() if keep_outputs else np.empty(0))

    def test_metrics(self, ev: Any, data: SetData) -> dict[str, Any]:
        return {"task": self.name, "test_mse": ev.loss, "test_loss": ev.loss,
                "test_rmse": math.sqrt(ev.loss), "test_samples": len(ev.labels)}

    def extra_metrics(self, net: torch.nn.Module, data: SetData, cfg: RunConfig,
                      device: Any) -> dict[str, Any]:
        """Seed 004's table: train and validation MSE of the restored model."""
        train, val, _ = self.loaders(data, cfg, device, False, 0, 1)
        return {"val_mse": self.evaluate(net, val).loss if len(val) else None,
                "train_mse": self.evaluate(net, train).loss}

    def prediction_arrays(self, ev: Any, data: SetData) -> dict[str, np.ndarray]:
        return {"outputs": ev.logits, "targets": ev.labels}

    def result_line(self, metrics: dict[str, Any]) -> str:
        m = metrics
        return (f"test MSE {m['test_mse']:.4f}  val MSE {m['val_mse']:.4f}  train MSE {m['train_mse']:.4f}  "
                + trained_for(m))

    def metric_rows(self, metrics: dict[str, Any]) -> list[tuple[str, Any]]:
        m = metrics
        return [("test MSE", m.get("test_mse")), ("test RMSE", m.get("test_rmse")),
                ("validation MSE", m.get("val_mse")), ("train MSE", m.get("train_mse")),
                ("test sets", m.get("test_samples"))]

    def metric_cards(self, metrics: dict[str, Any]) -> list[tuple[str, str]]:
        return [("test MSE", f"{metrics['test_mse']:.4f}"), ("train MSE", f"{metrics['train_mse']:.4f}")]
