"""Where a run's steps execute: one device in this process, or Lightning Fabric's data-parallel
processes when `train.devices > 1` (or under torchrun).

A one-process run does not import Fabric or `torch._dynamo`. Both cost the same here: Fabric
imports `torch._dynamo` at import time, and every `optimizer.step()` imports it for a graph break
that means nothing outside `torch.compile` (bench/startup.py measures what that does to a run's
start). `defer_dynamo` puts a stand-in under that name which answers those two eager-mode calls
(`graph_break`, `disable`) as dynamo itself does outside tracing, and loads the real module on any
other use, so `torch.compile` and everything else see the real one.
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib
import os
import random
import sys
import types
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn

DYNAMO = "torch._dynamo"


class DeferredDynamo(types.ModuleType):
    """`torch._dynamo` until something needs more than an eager graph break or `disable`."""

    def __init__(self) -> None:
        super().__init__(DYNAMO, "stands in for torch._dynamo until it is used (visionstudy)")

    @staticmethod
    def graph_break(msg: str = "") -> None:
        """Outside tracing dynamo's own graph_break does nothing either."""

    @staticmethod
    def disable(fn: Callable[..., Any] | None = None, recursive: bool = True,
                wrapping: bool = True) -> Any:
        """Nothing is being traced while dynamo is not loaded: the function runs as it is."""
        return fn if fn is not None else (lambda f: f)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") and name.endswith("__") and name != "__path__":  # a submodule's import
            # Introspection over sys.modules (inspect.getmodule asks every module for __file__, as
            # torch's own op registration does while importing torch.distributed.tensor) must not
            # load dynamo in the middle of another import: that import then fails as circular.
            raise AttributeError(name)
        return getattr(real_dynamo(), name)


def defer_dynamo() -> None:
    """Install the stand-in, unless dynamo is loaded already (then nothing changes)."""
    if DYNAMO in sys.modules:
        return
    stand_in = DeferredDynamo()
    sys.modules[DYNAMO] = stand_in
    torch._dynamo = stand_in  # `import torch._dynamo` binds the attribute


def real_dynamo() -> types.ModuleType:
    """The real `torch._dynamo`, loaded in place of the stand-in."""
    if isinstance(sys.modules.get(DYNAMO), DeferredDynamo):
        del sys.modules[DYNAMO]
        if isinstance(getattr(torch, "_dynamo", None), DeferredDynamo):
            delattr(torch, "_dynamo")
    return importlib.import_module(DYNAMO)


class OneDevice:
    """The part of Fabric's interface a run uses, for one process on one device: the same seeding,
    autocast (bf16 outputs returned as float32, as Fabric's mixed precision does), backward and
    gradient clipping (non-finite norms raise), without importing Fabric."""

    world_size = 1
    global_rank = 0
    is_global_zero = True

    def __init__(self, accelerator: str, bf16: bool) -> None:
        self.device = torch.device("cuda", torch.cuda.current_device()) if accelerator == "cuda" \
            else torch.device("cpu")
        self.bf16 = bf16

    def launch(self) -> None:
        """One process: nothing to start."""

    def barrier(self) -> None:
        """One process: nothing to wait for."""

    def seed_everything(self, seed: int, verbose: bool = False) -> None:
        """Python's, NumPy's and torch's generators (CUDA's too), as Fabric's seed_everything."""
        random.seed(seed)
        np.random.seed(seed)
        torch.manual_seed(seed)

    def autocast(self) -> contextlib.AbstractContextManager[Any]:
        if not self.bf16:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=torch.bfloat16)

    def setup(self, net: nn.Module,
              optimizer: torch.optim.Optimizer) -> tuple[nn.Module, torch.optim.Optimizer]:
        net.to(self.device)
        return (AutocastModule(net, self.autocast) if self.bf16 else net), optimizer

    def backward(self, loss: torch.Tensor) -> None:
        loss.backward()

    def clip_gradients(self, model: nn.Module, optimizer: torch.optim.Optimizer,
                       max_norm: float) -> torch.Tensor:
        params = [p for group in optimizer.param_groups for p in group["params"]]
        return torch.nn.utils.clip_grad_norm_(params, max_norm, error_if_nonfinite=True)

    def all_reduce(self, tensor: torch.Tensor, reduce_op: str = "sum") -> torch.Tensor:
        return tensor


class AutocastModule(nn.Module):
    """`module` run under autocast, its floating outputs returned as float32."""

    def __init__(self, module: nn.Module,
                 autocast: Callable[[], contextlib.AbstractContextManager[Any]]) -> None:
        super().__init__()
        self.module = module
        self.autocast = autocast

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        with self.autocast():
            out = self.module(*args, **kwargs)
        return out.float() if isinstance(out, torch.Tensor) and out.is_floating_point() else out


# glibc's malloc serves blocks above its mmap threshold (128 KiB at first, rising as such blocks are
# freed) with fresh mappings and gives a freed heap top back to the kernel (trim): a CPU step's
# activations (6-13 MB each for the fast CNN at batch 128) then fault in zeroed pages on every step.
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # mallopt's parameters (malloc.h)
MMAP_CEILING = 4 * 1024 * 1024 * ctypes.sizeof(ctypes.c_long)  # glibc's largest M_MMAP_THRESHOLD: 32 MiB


def keep_freed_memory() -> bool:
    """Serve blocks below 32 MiB from the heap and keep freed memory for the next step (glibc's
    mallopt, what jemalloc or tcmalloc do by design; README "Performance" has what it buys). The
    process then holds its peak memory until it exits. False where the C library has no
    mallopt (not glibc) or refuses."""
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_CEILING)) and bool(mallopt(M_TRIM_THRESHOLD, 2**31 - 1))


def under_torchrun() -> bool:
    """Lightning's TorchElasticEnvironment.detect(), without importing it."""
    return all(v in os.environ for v in ("RANK", "GROUP_RANK", "LOCAL_RANK", "LOCAL_WORLD_SIZE"))


def cpu_runs_bf16() -> bool:
    """Whether this CPU computes bf16 natively (AVX512-BF16 or AMX, as oneDNN reports it). Without
    it, bf16 autocast on CPU is emulated and far slower than fp32 (README "Performance")."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):  # a build without oneDNN: no native path either
        return False


BF16_ON_SLOW_CPU = ("train.precision: bf16 on a CPU without bf16 units (no AVX512-BF16 or AMX): autocast "
                    "is emulated and several times slower than fp32 here; set train.precision: 32 (or "
                    "auto, fp32 on CPU), e.g. --set train.precision=32")


def open_devices(accelerator: str, devices: int, bf16: bool, compiled: bool = False) -> Any:
    """A run's devices: `OneDevice` for one process, else Fabric on `devices` devices of kind
    `accelerator` ("cpu", "cuda"). `compiled`: the run uses torch.compile (dynamo loads anyway)."""
    if devices == 1 and not under_torchrun():
        if not compiled:
            defer_dynamo()
        return OneDevice(accelerator, bf16)
    from lightning_fabric import Fabric

    return Fabric(accelerator=accelerator, devices=devices, strategy="ddp" if devices > 1 else "auto",
                  precision="bf16-mixed" if bf16 else "32-true", plugins=[cluster_environment()])


def cluster_environment() -> Any:
    """Fabric's cluster environment, chosen here rather than detected: a run starts its own
    `train.devices` processes wherever it is. Detected, SLURM's would take the world size from the
    job step (`SLURM_NTASKS`, 1 for a study's worker) and warn on every machine with `srun`
    installed. A run inside a torchrun launch keeps torchrun's."""
    from lightning_fabric.plugins.environments import LightningEnvironment, TorchElasticEnvironment

    return TorchElasticEnvironment() if under_torchrun() else LightningEnvironment()

