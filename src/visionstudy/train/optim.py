"""Optimizers and learning-rate schedules, by name, from `OptimizerConfig` / `SchedulerConfig`."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import nn
from torch.optim import lr_scheduler

from visionstudy.config import OptimizerConfig, SchedulerConfig
from visionstudy.registry import Registry

OPTIMIZERS: Registry[Callable[[Any, OptimizerConfig], torch.optim.Optimizer]] = Registry("optimizer")


@OPTIMIZERS.register("sgd")
def _sgd(params: Any, c: OptimizerConfig) -> torch.optim.Optimizer:
    return torch.optim.SGD(params, lr=c.lr, momentum=c.momentum, nesterov=c.nesterov,
                           weight_decay=c.weight_decay)


@OPTIMIZERS.register("adam")
def _adam(params: Any, c: OptimizerConfig) -> torch.optim.Optimizer:
    return torch.optim.Adam(params, lr=c.lr, betas=c.betas, eps=c.eps, weight_decay=c.weight_decay)


@OPTIMIZERS.register("adamw")
def _adamw(params: Any, c: OptimizerConfig) -> torch.optim.Optimizer:
    return torch.optim.AdamW(params, lr=c.lr, betas=c.betas, eps=c.eps, weight_decay=c.weight_decay)


@OPTIMIZERS.register("rmsprop")
def _rmsprop(params: Any, c: OptimizerConfig) -> torch.optim.Optimizer:
    return torch.optim.RMSprop(params, lr=c.lr, alpha=c.alpha, eps=c.eps, momentum=c.momentum,
                               weight_decay=c.weight_decay)


@OPTIMIZERS.register("adagrad")
def _adagrad(params: Any, c: OptimizerConfig) -> torch.optim.Optimizer:
    return torch.optim.Adagrad(params, lr=c.lr, eps=c.eps, weight_decay=c.weight_decay)


def build_optimizer(model: nn.Module, c: OptimizerConfig) -> torch.optim.Optimizer:
    """The named optimizer over the trainable parameters (in the model's own groups if it has
    them, e.g. a pretrained backbone at a lower learning rate than its new head)."""
    groups = getattr(model, "param_groups", None)
    params = groups(c.lr) if callable(groups) else [p for p in model.parameters() if p.requires_grad]
    return OPTIMIZERS.get(c.name, "train.optimizer.name")(params, c)


def penalised_weights(model: nn.Module) -> list[torch.Tensor]:
    """The weights that L1/L2 penalties apply to: matrices and kernels, not biases or norms."""
    return [p for p in model.parameters() if p.requires_grad and p.ndim > 1]


def weight_penalty(weights: Iterable[torch.Tensor], l1: float, l2: float) -> torch.Tensor | float:
    """l1 * sum|w| + l2 * sum w^2 over the given weights (Keras kernel_regularizer semantics)."""
    total: torch.Tensor | float = 0.0
    for w in weights:
        if l1:
            total = total + l1 * w.abs().sum()
        if l2:
            total = total + l2 * w.pow(2).sum()
    return total


class Schedule:
    """The configured schedule and optional linear warm-up, stepped per epoch (one-cycle: per batch).

    Plateau watches a validation metric; the others ignore it.
    """

    def __init__(self, optimizer: torch.optim.Optimizer, c: SchedulerConfig, epochs: int,
                 steps_per_epoch: int) -> None:
        self.c = c
        self.optimizer = optimizer
        self.per_batch = c.name == "onecycle"
        main_epochs = max(1, epochs - c.warmup_epochs)
        self.main = self._build(optimizer, c, main_epochs, steps_per_epoch)
        # built after the main schedule, so that its starting lr (base / 10) is the one in force
        self.warmup = (
            lr_scheduler.LinearLR(optimizer, 0.1, 1.0, total_iters=c.warmup_epochs)
            if c.warmup_epochs else None
        )
        self.epoch = 0

    @staticmethod
    def _build(opt: torch.optim.Optimizer, c: SchedulerConfig, epochs: int, steps: int) -> Any:
        if c.name == "step":
            return lr_scheduler.StepLR(opt, c.step_size, c.gamma)
        if c.name == "halve":
            return lr_scheduler.StepLR(opt, c.every, 0.5)
        if c.name == "multistep":
            return lr_scheduler.MultiStepLR(opt, c.milestones, c.gamma)
        if c.name == "exponential":
            return lr_scheduler.ExponentialLR(opt, c.gamma)
        if c.name == "cosine":
            return lr_scheduler.CosineAnnealingLR(opt, epochs, c.min_lr)
        if c.name == "onecycle":
            top = max(g["lr"] for g in opt.param_groups)  # groups keep their ratios
            max_lr = [(c.max_lr or top) * g["lr"] / top for g in opt.param_groups]
            return lr_scheduler.OneCycleLR(opt, max_lr, total_steps=epochs * steps,
                                           pct_start=c.pct_start)
        if c.name == "plateau":
            mode = "min" if c.monitor == "val_loss" else "max"
            return lr_scheduler.ReduceLROnPlateau(opt, mode, c.factor, c.patience, min_lr=c.min_lr)
        return None

    @property
    def in_warmup(self) -> bool:
        return self.warmup is not None and self.epoch < self.c.warmup_epochs

    def step_batch(self) -> None:
        if self.per_batch and not self.in_warmup:
            self.main.step()

    def step_epoch(self, metrics: dict[str, float]) -> None:
        if self.in_warmup:
            self.warmup.step()
        elif isinstance(self.main, lr_scheduler.ReduceLROnPlateau):
            self.main.step(metrics[self.c.monitor])
        elif self.main is not None and not self.per_batch:
            self.main.step()
        self.epoch += 1

    def lr(self) -> float:
        return float(max(g["lr"] for g in self.optimizer.param_groups))

    def state_dict(self) -> dict[str, Any]:
        return {
            "epoch": self.epoch,
            "warmup": self.warmup.state_dict() if self.warmup else None,
            "main": self.main.state_dict() if self.main is not None else None,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.epoch = state["epoch"]
        if self.warmup is not None and state["warmup"] is not None:
            self.warmup.load_state_dict(state["warmup"])
        if self.main is not None and state["main"] is not None:
            self.main.load_state_dict(state["main"])
