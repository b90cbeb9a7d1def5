"""Will a run fit? The memory of one training step against what the device has free. A run that
cannot fit is refused before training with the estimate and the limit, instead of dying out of
memory minutes later. Weights, gradients and optimizer state are counted on the meta device
(nothing is allocated, so a model of 10^10 parameters is measured in milliseconds), before the
model is built; the activations then from the built model on one sample (a forward on the meta
device imports torch's Python meta kernels and sympy, seconds of every run's start).

The estimate: weights + gradients (4 bytes per parameter each) + the optimizer's state (counted
by stepping the configured optimizer once on a one-element parameter: Adam keeps 2 values per
parameter, SGD with momentum 1) + the activations autograd keeps for the backward pass (every
layer's output at the training batch size). It leaves out the allocator's overhead and
temporaries, so it is a lower bound: a run refused by it cannot fit.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

GIB = 1024**3
SKIP_ENV = "VISIONSTUDY_NO_MEMORY_CHECK"  # "1": train without the check (the estimate is a bound)


@dataclass(frozen=True)
class MemoryEstimate:
    params: int
    weights: int  # bytes
    gradients: int
    optimizer: int
    activations: int
    batch_size: int
    processes: int = 1  # data-parallel processes sharing this memory (CPU)

    @property
    def total(self) -> int:
        return (self.weights + self.gradients + self.optimizer + self.activations) * self.processes

    def describe(self) -> str:
        def g(n: int) -> str:
            return f"{n / GIB:.1f} GiB"

        parts = (f"weights {g(self.weights)}, gradients {g(self.gradients)}, optimizer state "
                 f"{g(self.optimizer)}, activations at batch {self.batch_size} {g(self.activations)}")
        each = f" per process × {self.processes} processes" if self.processes > 1 else ""
        return f"about {g(self.total)} ({parts}{each}; {self.params:,} parameters)"


def optimizer_state_per_param(make_optimizer: Callable[[list[nn.Parameter]], torch.optim.Optimizer]) -> float:
    """Values of optimizer state kept per parameter value, by stepping it once."""
    p = nn.Parameter(torch.zeros(16))
    p.grad = torch.ones(16)
    opt = make_optimizer([p])
    opt.step()
    values = sum(t.numel() for state in opt.state.values() for t in state.values()
                 if isinstance(t, torch.Tensor) and t.numel() > 1)
    return values / p.numel()


def activation_bytes(model: nn.Module, sample_shape: tuple[int, ...], batch_size: int) -> int:
    """Bytes of the outputs of every leaf module for one training batch: one sample run on the
    model's device (a built model's, or the meta device) in eval mode without gradients (nothing in
    the model changes), scaled to the batch: every layer's output grows with the batch."""
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    total = 0

    def hook(_module: nn.Module, _inputs: Any, output: Any) -> None:
        nonlocal total
        for t in output if isinstance(output, tuple | list) else (output,):
            if isinstance(t, torch.Tensor):
                total += t.numel() * t.element_size()

    leaves = [m for m in model.modules() if not any(True for _ in m.children())]
    handles = [m.register_forward_hook(hook) for m in leaves]
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(torch.zeros(1, *sample_shape, device=device))
    except (NotImplementedError, RuntimeError):
        return 0  # an op without a meta kernel: no activation estimate (the rest still counts)
    finally:
        model.train(was_training)
        for h in handles:
            h.remove()
    return batch_size * total


def estimate(model: nn.Module, sample_shape: tuple[int, ...], batch_size: int,
             make_optimizer: Callable[[list[nn.Parameter]], torch.optim.Optimizer],
             processes: int = 1, activations: bool = True) -> MemoryEstimate:
    """The estimate for a model (built, or on the meta device); `activations=False` leaves them
    out (0), for the check before a model is built."""
    params = [p for p in model.parameters()]
    n = sum(p.numel() for p in params)
    trainable = sum(p.numel() for p in params if p.requires_grad)
    state = optimizer_state_per_param(make_optimizer)
    return MemoryEstimate(
        params=n, weights=4 * n, gradients=4 * trainable, optimizer=int(4 * trainable * state),
        activations=activation_bytes(model, sample_shape, batch_size) if activations else 0,
        batch_size=batch_size,
        processes=processes,
    )


def available_bytes(device: torch.device) -> tuple[int, str]:
    """(bytes free, what that is) on the device: a GPU's free memory, or the RAM this process may
    still use (MemAvailable, capped by a cgroup limit such as a container's)."""
    if device.type == "cuda":
        free, _total = torch.cuda.mem_get_info(device)
        return int(free), f"free on {torch.cuda.get_device_name(device)}"
    avail = meminfo_available()
    limit = cgroup_room()
    if limit is not None and (avail is None or limit < avail):
        return limit, "left under this container's memory limit"
    if avail is not None:
        return avail, "of RAM available"
    return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")), "of RAM"


def meminfo_available() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def cgroup_room() -> int | None:
    """cgroup v2: memory.max - memory.current of this process's group, when it has a limit."""
    try:
        group = Path("/proc/self/cgroup").read_text().strip().split("::", 1)[-1]
        folder = Path("/sys/fs/cgroup") / group.lstrip("/")
        limit = (folder / "memory.max").read_text().strip()
        if limit == "max":
            return None
        return max(int(limit) - int((folder / "memory.current").read_text()), 0)
    except (OSError, ValueError):
        return None


def check_fits(est: MemoryEstimate, device: torch.device) -> str | None:
    """None when it fits (or the check is switched off), else the reason with the numbers."""
    if os.environ.get(SKIP_ENV) == "1":
        return None
    free, what = available_bytes(device)
    if est.total <= free:
        return None
    return (f"the model does not fit in memory: one training step needs {est.describe()}, but "
            f"there are {free / GIB:.1f} GiB {what}. Make the model smaller (model.hidden, "
            "model.channels, model.widths), lower train.batch_size, or train on a larger device "
            f"({SKIP_ENV}=1 trains without this check)")
