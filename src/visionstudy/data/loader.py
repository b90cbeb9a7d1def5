"""A batch loader for datasets that fit in memory: tensors stay on the device, batches are
shuffled, normalised and augmented there, reproducibly under a seed. No worker processes."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from visionstudy.data.augment import Pipeline


def image_tensor(images: np.ndarray) -> torch.Tensor:
    """uint8 (N, H, W, C) → contiguous (N, C, H, W) that torch may write, with one copy at most
    (none for a writable one-channel array). A read-only array (a cached or memory-mapped dataset)
    is never shared: torch warned on every run, and a view of it could not be written."""
    nchw = np.ascontiguousarray(images.transpose(0, 3, 1, 2))
    return torch.from_numpy(nchw if nchw.flags.writeable else nchw.copy())


def normalise_images(images: np.ndarray, mean: tuple[float, ...], std: tuple[float, ...]) -> torch.Tensor:
    """uint8 (N, H, W, C) → normalised float (N, C, H, W), as the loader feeds the model
    (without augmentation): for evaluation outside a loader (predict, Grad-CAM)."""
    x = image_tensor(images).float().div_(255)
    return (x - torch.tensor(mean).view(1, -1, 1, 1)) / torch.tensor(std).view(1, -1, 1, 1)


class ShuffledShards:
    """The batch order every loader shares: a seeded permutation of `n` samples (resumable through
    `state_dict`), of which each of `world` data-parallel processes takes every `world`-th."""

    def init_order(self, n: int, batch_size: int, *, shuffle: bool, drop_last: bool,
                   device: torch.device, seed: int, rank: int, world: int) -> None:
        self.n, self.batch_size, self.shuffle, self.drop_last = n, batch_size, shuffle, drop_last
        self.device, self.rank, self.world = device, rank, world
        self.generator = torch.Generator(device=device)
        self.generator.manual_seed(seed)

    @property
    def num_samples(self) -> int:
        """Samples this process sees per epoch."""
        return self.n // self.world

    def __len__(self) -> int:
        n = self.num_samples
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def order(self) -> torch.Tensor:
        if self.shuffle:
            idx = torch.randperm(self.n, generator=self.generator, device=self.device)
        else:
            idx = torch.arange(self.n, device=self.device)
        return idx[: self.num_samples * self.world][self.rank :: self.world]

    def batch_indices(self) -> Iterator[torch.Tensor]:
        idx = self.order()
        for start in range(0, len(self) * self.batch_size, self.batch_size):
            yield idx[start : start + self.batch_size]

    def state_dict(self) -> dict[str, Any]:
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.generator.set_state(state["generator"])


class BatchLoader(ShuffledShards):
    """Yields (images float (B, C, H, W) normalised, targets) batches.

    Images are kept as uint8 (4x smaller than float) and converted per batch. With `world > 1`
    each process takes every `world`-th sample of one shared permutation (data-parallel training);
    all processes must use the same seed.
    """

    def __init__(
        self,
        images: np.ndarray,
        labels: np.ndarray,
        batch_size: int,
        *,
        mean: tuple[float, ...],
        std: tuple[float, ...],
        num_classes: int,
        augment: Pipeline | None = None,
        shuffle: bool = False,
        drop_last: bool = False,
        device: torch.device | str = "cpu",
        seed: int = 0,
        channels_last: bool = False,
        rank: int = 0,
        world: int = 1,
    ) -> None:
        self.device = torch.device(device)
        self.x = image_tensor(images)
        self.y = torch.from_numpy(np.asarray(labels, dtype=np.int64))
        self.x, self.y = self.x.to(self.device), self.y.to(self.device)
        self.mean = torch.tensor(mean, device=self.device).view(1, -1, 1, 1)
        self.std = torch.tensor(std, device=self.device).view(1, -1, 1, 1)
        self.num_classes = num_classes
        self.augment = augment or Pipeline([])
        self.channels_last = channels_last
        self.init_order(len(self.y), batch_size, shuffle=shuffle, drop_last=drop_last, device=self.device,
                        seed=seed, rank=rank, world=world)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for idx in self.batch_indices():
            yield self.batch(idx)

    def batch(self, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x, y = self.x[idx], self.y[idx]
        for op in self.augment.uint8_ops:
            x, y = op(x, y, self.generator)
        x = x.float().div_(255)
        target: torch.Tensor = y
        if self.augment.mixes_labels:
            target = F.one_hot(y, self.num_classes).float()
        for op in self.augment.float_ops:
            x, target = op(x, target, self.generator)
        x = x.sub_(self.mean).div_(self.std)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return x, target


class SetLoader(ShuffledShards):
    """Batches of (sets, targets) on the device, with the `BatchLoader` interface (seeded shuffle,
    resumable state, one shard per data-parallel process)."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor, batch_size: int, *, shuffle: bool = False,
                 seed: int = 0, device: torch.device | str = "cpu", rank: int = 0, world: int = 1) -> None:
        dev = torch.device(device)
        self.x, self.y = x.to(dev), y.to(dev)
        self.init_order(len(y), batch_size, shuffle=shuffle, drop_last=False, device=dev, seed=seed,
                        rank=rank, world=world)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for idx in self.batch_indices():
            yield self.x[idx], self.y[idx]
