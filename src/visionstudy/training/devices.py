"""Where a run trains: Lightning Fabric with its cluster environment chosen, not detected.

Fabric gives devices, bf16 autocast and data-parallel processes (`train.devices > 1`: DDP). It is
imported from `lightning-fabric` alone: the whole `lightning` package imported lightning.pytorch,
torchmetrics and torchvision's detection ops (3.1 s under `python -X importtime`). What is left of
Fabric's import is `torch._dynamo`, which torch imports anyway on a process's first
`optimizer.step()`: after it, Fabric costs 0.1 s.
"""

from __future__ import annotations

import os
from typing import Any


def under_torchrun() -> bool:
    """Lightning's TorchElasticEnvironment.detect(), without importing it."""
    return all(v in os.environ for v in ("RANK", "GROUP_RANK", "LOCAL_RANK", "LOCAL_WORLD_SIZE"))


def open_devices(accelerator: str, devices: int, bf16: bool) -> Any:
    """Fabric for a run on `devices` devices of kind `accelerator` ("cpu", "cuda")."""
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
