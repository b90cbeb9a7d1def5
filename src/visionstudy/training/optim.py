"""Optimizers and learning-rate schedules: one registry each, every entry with its own parameter
class, so adding one is one registration here (`@register_optimizer`, `@register_schedule`)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import Field

from visionstudy.config import OptimizerConfig, Params, SchedulerConfig, entry_params
from visionstudy.registry import Registry
from visionstudy.tasks.metrics import metric

if TYPE_CHECKING:
    import torch
    from torch import nn

Unit = Annotated[float, Field(ge=0.0, lt=1.0)]


@dataclass(frozen=True)
class Entry:
    """A registered optimizer or schedule: its builder, its own parameter class, a description."""

    builder: Callable[..., Any]
    params: type[Params]
    description: str
    per_batch: bool = False  # schedules: stepped every batch instead of every epoch


def torch_optim() -> ModuleType:
    """`torch.optim`, imported when an optimizer is built: checking a config needs no torch."""
    import torch.optim

    return torch.optim


def lr_scheduler() -> ModuleType:
    from torch.optim import lr_scheduler

    return lr_scheduler


OPTIMIZERS: Registry[Entry] = Registry("optimizer")
SCHEDULES: Registry[Entry] = Registry("schedule")


def register_optimizer(name: str, params: type[Params]) -> Callable[[Callable[..., Any]], Any]:
    """`@register_optimizer('sgd', SGDParams)` over `build(param_groups, lr, p) -> Optimizer`."""

    def decorator(builder: Callable[..., Any]) -> Callable[..., Any]:
        OPTIMIZERS.add(name, Entry(builder, params, (builder.__doc__ or name).strip().splitlines()[0]))
        return builder

    return decorator


def register_schedule(name: str, params: type[Params],
                      per_batch: bool = False) -> Callable[[Callable[..., Any]], Any]:
    """`@register_schedule('step', StepParams)` over `build(optimizer, p, epochs, steps)`."""

    def decorator(builder: Callable[..., Any]) -> Callable[..., Any]:
        doc = (builder.__doc__ or name).strip().splitlines()[0]
        SCHEDULES.add(name, Entry(builder, params, doc, per_batch))
        return builder

    return decorator


def list_optimizers() -> list[str]:
    return OPTIMIZERS.names()


def list_schedules() -> list[str]:
    return SCHEDULES.names()


def optimizer_params(c: OptimizerConfig) -> Params:
    return entry_params(OPTIMIZERS, c, "train.optimizer")


def schedule_params(c: SchedulerConfig) -> Params:
    return entry_params(SCHEDULES, c, "train.scheduler")


# ------------------------------------------------------------------------------- optimizers


class SGDParams(Params):
    momentum: Unit = Field(0.0, description="momentum")
    nesterov: bool = Field(False, description="Nesterov momentum (needs momentum > 0)")
    weight_decay: float = Field(0.0, ge=0, allow_inf_nan=False, description="L2 in the gradient")

    def check(self) -> None:
        if self.nesterov and self.momentum == 0:
            raise ValueError("nesterov: true needs momentum > 0, e.g. momentum: 0.9")


class AdamParams(Params):
    betas: tuple[Unit, Unit] = Field((0.9, 0.999), description="running-average factors")
    eps: float = Field(1e-8, gt=0, allow_inf_nan=False, description="numerical epsilon")
    weight_decay: float = Field(0.0, ge=0, allow_inf_nan=False,
                                description="decoupled for adamw, L2 in the gradient for the others")


class RMSpropParams(Params):
    alpha: float = Field(0.99, gt=0, lt=1, description="smoothing (Keras 'rho')")
    eps: float = Field(1e-8, gt=0, allow_inf_nan=False, description="numerical epsilon")
    momentum: Unit = Field(0.0, description="momentum")
    weight_decay: float = Field(0.0, ge=0, allow_inf_nan=False, description="L2 in the gradient")


class AdagradParams(Params):
    eps: float = Field(1e-10, gt=0, allow_inf_nan=False, description="numerical epsilon")
    weight_decay: float = Field(0.0, ge=0, allow_inf_nan=False, description="L2 in the gradient")


class AdadeltaParams(Params):
    rho: float = Field(0.9, gt=0, lt=1, description="running-average factor")
    eps: float = Field(1e-6, gt=0, allow_inf_nan=False, description="numerical epsilon")
    weight_decay: float = Field(0.0, ge=0, allow_inf_nan=False, description="L2 in the gradient")


# torch's fused kernels (one kernel over all parameters, CPU and CUDA since torch 2.4): the same
# update as the default multi-tensor one, 2.6-3.0x quicker a step on the fast CNN's parameters
# (README "Performance"). RMSprop has none.
FUSED = {"fused": True}


@register_optimizer("sgd", SGDParams)
def _sgd(params: Any, lr: float, p: SGDParams) -> torch.optim.Optimizer:
    """Stochastic gradient descent, with momentum and Nesterov."""
    return torch_optim().SGD(params, lr=lr, momentum=p.momentum, nesterov=p.nesterov,
                             weight_decay=p.weight_decay, **FUSED)


@register_optimizer("adam", AdamParams)
def _adam(params: Any, lr: float, p: AdamParams) -> torch.optim.Optimizer:
    """Adam (Kingma & Ba)."""
    return torch_optim().Adam(params, lr=lr, betas=p.betas, eps=p.eps, weight_decay=p.weight_decay, **FUSED)


@register_optimizer("adamw", AdamParams)
def _adamw(params: Any, lr: float, p: AdamParams) -> torch.optim.Optimizer:
    """AdamW: Adam with decoupled weight decay."""
    return torch_optim().AdamW(params, lr=lr, betas=p.betas, eps=p.eps, weight_decay=p.weight_decay, **FUSED)


@register_optimizer("rmsprop", RMSpropParams)
def _rmsprop(params: Any, lr: float, p: RMSpropParams) -> torch.optim.Optimizer:
    """RMSprop."""
    return torch_optim().RMSprop(params, lr=lr, alpha=p.alpha, eps=p.eps, momentum=p.momentum,
                                 weight_decay=p.weight_decay)


@register_optimizer("adagrad", AdagradParams)
def _adagrad(params: Any, lr: float, p: AdagradParams) -> torch.optim.Optimizer:
    """Adagrad."""
    return torch_optim().Adagrad(params, lr=lr, eps=p.eps, weight_decay=p.weight_decay, **FUSED)


def adam_like(torch_class: str, doc: str) -> Callable[..., Any]:
    """A builder of `torch.optim.<torch_class>` from Adam's keys."""

    def build(params: Any, lr: float, p: AdamParams) -> torch.optim.Optimizer:
        return getattr(torch_optim(), torch_class)(params, lr=lr, betas=p.betas, eps=p.eps,
                                                   weight_decay=p.weight_decay)

    build.__doc__ = doc
    return build


for _name, _class, _doc in (("nadam", "NAdam", "Nadam: Adam with Nesterov momentum (Keras' Nadam)."),
                            ("radam", "RAdam", "RAdam: Adam with the variance of its early steps rectified."),
                            ("adamax", "Adamax", "Adamax: Adam with the infinity norm.")):
    register_optimizer(_name, AdamParams)(adam_like(_class, _doc))


@register_optimizer("adadelta", AdadeltaParams)
def _adadelta(params: Any, lr: float, p: AdadeltaParams) -> torch.optim.Optimizer:
    """Adadelta (torch's lr, 1.0 in its paper; Keras' default is 0.001)."""
    return torch_optim().Adadelta(params, lr=lr, rho=p.rho, eps=p.eps, weight_decay=p.weight_decay)


def build_optimizer(model: nn.Module, c: OptimizerConfig) -> torch.optim.Optimizer:
    """The named optimizer over the trainable parameters (in the model's own groups if it has
    them, e.g. a pretrained backbone at a lower learning rate than its new head)."""
    groups = getattr(model, "param_groups", None)
    params = groups(c.lr) if callable(groups) else [p for p in model.parameters() if p.requires_grad]
    return optimizer_factory(c)(params)


def optimizer_factory(c: OptimizerConfig) -> Callable[[Any], torch.optim.Optimizer]:
    """The configured optimizer as a function of its parameters (or parameter groups)."""
    entry, p = OPTIMIZERS.get(c.name, "train.optimizer.name"), optimizer_params(c)
    return lambda params: entry.builder(params, c.lr, p)


# -------------------------------------------------------------------------------- schedules


class NoParams(Params):
    pass


class StepParams(Params):
    step_size: int = Field(10, ge=1, description="epochs between decays")
    gamma: float = Field(0.1, gt=0, le=1, description="decay factor")


class HalveParams(Params):
    every: int = Field(10, ge=1, description="halve the lr every this many epochs")


class MultiStepParams(Params):
    milestones: list[Annotated[int, Field(ge=1)]] = Field(default_factory=list, description="decay epochs")
    gamma: float = Field(0.1, gt=0, le=1, description="decay factor")


class ExponentialParams(Params):
    gamma: float = Field(0.1, gt=0, le=1, description="decay factor per epoch")


class CosineParams(Params):
    min_lr: float = Field(0.0, ge=0, description="the floor")


class RestartParams(Params):
    first: int = Field(10, ge=1, description="epochs of the first cycle")
    mult: int = Field(1, ge=1, description="each cycle this many times longer than the last")
    min_lr: float = Field(0.0, ge=0, description="the floor")


class OneCycleParams(Params):
    max_lr: float | None = Field(None, gt=0, description="peak lr (default: lr)")
    pct_start: float = Field(0.25, gt=0, lt=1, description="share of rising steps")


class PlateauParams(Params):
    factor: float = Field(0.5, gt=0, lt=1, description="lr multiplier on a plateau")
    patience: int = Field(5, ge=0, description="epochs without improvement")
    monitor: Literal["val_loss", "val_accuracy"] = Field("val_loss", description="metric watched")
    min_lr: float = Field(0.0, ge=0, description="the floor")


@register_schedule("none", NoParams)
def _none(opt: Any, p: NoParams, epochs: int, steps: int) -> Any:
    """A constant learning rate."""
    return None


@register_schedule("step", StepParams)
def _step(opt: Any, p: StepParams, epochs: int, steps: int) -> Any:
    """Multiply by gamma every step_size epochs."""
    return lr_scheduler().StepLR(opt, p.step_size, p.gamma)


@register_schedule("halve", HalveParams)
def _halve(opt: Any, p: HalveParams, epochs: int, steps: int) -> Any:
    """Halve every `every` epochs (seed 000's schedule)."""
    return lr_scheduler().StepLR(opt, p.every, 0.5)


@register_schedule("multistep", MultiStepParams)
def _multistep(opt: Any, p: MultiStepParams, epochs: int, steps: int) -> Any:
    """Multiply by gamma at each milestone epoch."""
    return lr_scheduler().MultiStepLR(opt, p.milestones, p.gamma)


@register_schedule("exponential", ExponentialParams)
def _exponential(opt: Any, p: ExponentialParams, epochs: int, steps: int) -> Any:
    """Multiply by gamma every epoch."""
    return lr_scheduler().ExponentialLR(opt, p.gamma)


@register_schedule("cosine", CosineParams)
def _cosine(opt: Any, p: CosineParams, epochs: int, steps: int) -> Any:
    """Cosine annealing to min_lr over the run."""
    return lr_scheduler().CosineAnnealingLR(opt, epochs, p.min_lr)


@register_schedule("cosine_restarts", RestartParams)
def _cosine_restarts(opt: Any, p: RestartParams, epochs: int, steps: int) -> Any:
    """Cosine annealing to min_lr, restarted every cycle (SGDR; Keras' CosineDecayRestarts)."""
    return lr_scheduler().CosineAnnealingWarmRestarts(opt, p.first, p.mult, p.min_lr)


@register_schedule("onecycle", OneCycleParams, per_batch=True)
def _onecycle(opt: Any, p: OneCycleParams, epochs: int, steps: int) -> Any:
    """One-cycle (Smith), stepped per batch."""
    top = max(g["lr"] for g in opt.param_groups)  # groups keep their ratios
    max_lr = [(p.max_lr or top) * g["lr"] / top for g in opt.param_groups]
    total = epochs * steps
    # torch divides by the rise's width, pct_start × total - 1 steps: a rise of exactly one step
    # (0.02 of 50 steps, 0.25 of 4) raises ZeroDivisionError (pytorch/pytorch#180187); a hair less
    # peaks at the first step, which is what a one-step rise means
    pct = p.pct_start if p.pct_start * total != 1 else (1 - 1e-9) / total
    return lr_scheduler().OneCycleLR(opt, max_lr, total_steps=total, pct_start=pct)


@register_schedule("plateau", PlateauParams)
def _plateau(opt: Any, p: PlateauParams, epochs: int, steps: int) -> Any:
    """Multiply by factor when the monitored metric stops improving."""
    mode: Literal["min", "max"] = "max" if metric(p.monitor).maximize else "min"
    return lr_scheduler().ReduceLROnPlateau(opt, mode, p.factor, p.patience, min_lr=p.min_lr)


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
        self.p = schedule_params(c)
        self.optimizer = optimizer
        entry = SCHEDULES.get(c.name, "train.scheduler.name")
        self.per_batch = entry.per_batch
        main_epochs = max(1, epochs - c.warmup_epochs)
        self.main = entry.builder(optimizer, self.p, main_epochs, steps_per_epoch)
        # built after the main schedule, so that its starting lr (base / 10) is the one in force
        self.warmup = (
            lr_scheduler().LinearLR(optimizer, 0.1, 1.0, total_iters=c.warmup_epochs)
            if c.warmup_epochs else None
        )
        self.epoch = 0

    @property
    def in_warmup(self) -> bool:
        return self.warmup is not None and self.epoch < self.c.warmup_epochs

    def step_batch(self) -> None:
        if self.per_batch and not self.in_warmup:
            self.main.step()

    def step_epoch(self, metrics: dict[str, float]) -> None:
        if self.warmup is not None and self.in_warmup:
            self.warmup.step()
        elif isinstance(self.main, lr_scheduler().ReduceLROnPlateau):
            self.main.step(metrics[self.p.monitor])  # type: ignore[attr-defined]
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
