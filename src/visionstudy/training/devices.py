"""Where a run trains: one device in this process, or Lightning Fabric's data-parallel processes.

`open_devices` returns an object with the part of Fabric's interface the loop uses (`launch`,
`setup`, `backward`, `clip_gradients`, `autocast`, `all_reduce`, `barrier`, `seed_everything`,
`device`, `global_rank`, `world_size`, `is_global_zero`). A run on one device (every study run,
`train.devices: 1`) gets `OneDevice`, which does what Fabric does there — move the model, run its
forward under the precision's autocast and return fp32 outputs, clip with `clip_grad_norm_` — and
skips importing Fabric: `lightning_fabric` imports `torch._dynamo` (1.1-1.4 s here, measured with
`python -X importtime`), more than the whole first epoch of a small run. `train.devices > 1` and
runs inside a torchrun launch get Fabric itself (DDP, its cluster environment).
"""

from __future__ import annotations

import os
import random
from contextlib import AbstractContextManager, nullcontext
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.optim import Optimizer


def under_torchrun() -> bool:
    """Lightning's TorchElasticEnvironment.detect(), without importing it."""
    return all(v in os.environ for v in ("RANK", "GROUP_RANK", "LOCAL_RANK", "LOCAL_WORLD_SIZE"))


def open_devices(accelerator: str, devices: int, bf16: bool) -> Any:
    """The device layer for a run on `devices` devices of kind `accelerator` ("cpu", "cuda")."""
    if devices == 1 and not under_torchrun():
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


class AutocastForward(nn.Module):
    """`module`'s forward under bf16 autocast, its outputs back in fp32 (Fabric's bf16-mixed)."""

    def __init__(self, module: nn.Module, device_type: str) -> None:
        super().__init__()
        self.module = module
        self.device_type = device_type

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        with torch.autocast(self.device_type, dtype=torch.bfloat16):
            out = self.module(*args, **kwargs)
        return out.float() if isinstance(out, torch.Tensor) and out.is_floating_point() else out


class OneDevice:
    """One process on one device: Fabric's single-device strategy, without importing Fabric."""

    global_rank = 0
    world_size = 1
    is_global_zero = True

    def __init__(self, accelerator: str, bf16: bool) -> None:
        self.device = torch.device("cuda", torch.cuda.current_device()) if accelerator == "cuda" \
            else torch.device("cpu")
        self.bf16 = bf16

    def launch(self) -> None:
        """Nothing to start: this process is the run."""

    def barrier(self) -> None:
        """One process: nothing to wait for."""

    def seed_everything(self, seed: int, verbose: bool = False) -> None:
        """Python's, NumPy's and torch's generators (CUDA's with torch's), as Fabric seeds them."""
        os.environ["PL_GLOBAL_SEED"] = str(seed)
        random.seed(seed)
        np.random.seed(seed)
        torch.manual_seed(seed)

    def setup(self, net: nn.Module, optimizer: Optimizer) -> tuple[nn.Module, Optimizer]:
        net.to(self.device)
        return (AutocastForward(net, self.device.type) if self.bf16 else net), optimizer

    def autocast(self) -> AbstractContextManager[object]:
        return torch.autocast(self.device.type, dtype=torch.bfloat16) if self.bf16 else nullcontext()

    def backward(self, loss: torch.Tensor) -> None:
        loss.backward()

    def clip_gradients(self, model: nn.Module, optimizer: Optimizer, max_norm: float) -> torch.Tensor:
        params = [p for group in optimizer.param_groups for p in group["params"]]  # Fabric's main_params
        return torch.nn.utils.clip_grad_norm_(params, max_norm=max_norm, error_if_nonfinite=True)

    def all_reduce(self, t: torch.Tensor, reduce_op: str = "sum") -> torch.Tensor:
        return t
