"""A seeded synthetic set-regression task for permutation-equivariant networks (seed 004 P3).

A set is `size` elements x_1..x_n drawn from N(0, I_dim). Each element's target is

    y_i = sin(a · x_i) + (x_i · x̄) + ε_i,   a = (1, -1, 0.5, 1, -1, 0.5, ...)[:dim],
    x̄ = mean_j x_j,  ε_i ~ N(0, noise²)

so it needs both the element itself (first term) and the whole set (second term): a network that
sees elements one at a time cannot fit it, and permuting the set permutes the targets. With
`target: set` the target is the set's mean of the y_i (permutation-invariant). The noise variance
is the floor of the test MSE (0.09 for the default noise 0.3). The sets are drawn from
`data.split_seed`, so every model of a study sees the same data.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from visionstudy.config import DataConfig, SetsConfig
from visionstudy.data.base import DatasetSource, RawDataset, register_dataset
from visionstudy.errors import DataError

if TYPE_CHECKING:
    import torch


@dataclass
class SetSplits:
    train: tuple[torch.Tensor, torch.Tensor]  # (N, n, d) float32 sets, (N, n, 1) or (N, 1) targets
    val: tuple[torch.Tensor, torch.Tensor]
    test: tuple[torch.Tensor, torch.Tensor]

    def to(self, device: torch.device) -> SetSplits:
        return SetSplits(*((x.to(device), y.to(device)) for x, y in (self.train, self.val, self.test)))


def set_targets(x: torch.Tensor, noise: float, per_set: bool, gen: torch.Generator) -> torch.Tensor:
    """The documented target function (see the module docstring)."""
    import torch

    a = torch.tensor([1.0, -1.0, 0.5] * (x.shape[-1] // 3 + 1))[: x.shape[-1]]
    mean = x.mean(1, keepdim=True)
    y = torch.sin(x @ a) + (x * mean).sum(-1)
    y = y + noise * torch.randn(y.shape, generator=gen)
    return y.mean(1, keepdim=True) if per_set else y.unsqueeze(-1)


def make_sets(cfg: SetsConfig, seed: int) -> SetSplits:
    import torch  # lazily: listing and checking datasets needs no torch

    gen = torch.Generator().manual_seed(seed)

    def split(n: int) -> tuple[torch.Tensor, torch.Tensor]:
        x = torch.randn(n, cfg.size, cfg.dim, generator=gen)
        return x, set_targets(x, cfg.noise, cfg.target == "set", gen)

    return SetSplits(split(cfg.train), split(cfg.val), split(cfg.test))


# ------------------------------------------------------------------------------ the data source


@dataclass
class SetData:
    """The three splits of a set run, with what a checkpoint needs to know."""

    name: str
    train: tuple[torch.Tensor, torch.Tensor]
    val: tuple[torch.Tensor, torch.Tensor]
    test: tuple[torch.Tensor, torch.Tensor]
    checksum: str
    files: list[Path]

    @property
    def input_shape(self) -> tuple[int, int]:
        """(set size, features per element)"""
        return int(self.train[0].shape[1]), int(self.train[0].shape[2])

    @property
    def outputs(self) -> int:
        return int(self.train[1].shape[-1])

    @property
    def per_set(self) -> bool:
        """One target per set, (n, 1), which an invariant model gives; else one per element, (n, size, 1)."""
        return self.train[1].ndim == 2


def tensor_checksum(*tensors: torch.Tensor) -> str:
    import hashlib

    digest = hashlib.md5(usedforsecurity=False)
    for t in tensors:
        digest.update(t.contiguous().numpy().tobytes())
    return digest.hexdigest()


def read_set_file(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """An `.npz` with `x` (n, set size, features) and `y` (n, set size[, 1]) per element or (n[, 1])
    per set."""
    if not path.is_file():
        raise DataError(f"data.path {path}: no such file; give an .npz with arrays x and y")
    try:
        with np.load(path, allow_pickle=False) as npz:
            if "x" not in npz.files or "y" not in npz.files:
                raise DataError(f"{path}: needs arrays 'x' (n, set size, features) and 'y' "
                                f"(targets); it holds {', '.join(npz.files) or 'nothing'}")
            x, y = np.asarray(npz["x"]), np.asarray(npz["y"])
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise DataError(f"{path}: not a readable .npz file ({str(exc).splitlines()[0][:160]})") from None
    if x.ndim != 3:
        raise DataError(f"{path}: x has shape {x.shape}; it must be (n sets, set size, features)")
    if y.ndim == 1 or (y.ndim == 2 and y.shape[1] != x.shape[1]):
        y = y.reshape(len(y), -1)  # one target per set
    elif y.ndim == 2:
        y = y[..., None]  # one target per element
    if len(y) != len(x) or not (y.ndim == 2 or y.shape[:2] == x.shape[:2]):
        raise DataError(f"{path}: y has shape {y.shape}, which fits neither one target per set "
                        f"({len(x)},) nor one per element {x.shape[:2]}")
    if not (np.issubdtype(x.dtype, np.number) and np.issubdtype(y.dtype, np.number)):
        raise DataError(f"{path}: x and y must be numeric arrays")
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        raise DataError(f"{path}: x or y holds NaN or infinite values")
    return x.astype(np.float32), y.astype(np.float32)


def split_file_sets(x: np.ndarray, y: np.ndarray, cfg: DataConfig) -> SetSplits:
    """Seeded random test and validation splits (`test_fraction`, `val_fraction`)."""
    n = len(x)
    order = np.random.default_rng(cfg.split_seed).permutation(n)
    n_test = int(round(cfg.test_fraction * n))
    n_val = int(round(cfg.val_fraction * (n - n_test))) if cfg.validates_on == "split" else 0
    if min(n_test, n - n_test - n_val) < 1 or (cfg.validates_on == "split" and n_val < 1):
        raise DataError(f"data.path: {n} sets are too few for test_fraction {cfg.test_fraction} and "
                        f"val_fraction {cfg.val_fraction}; give more sets or other fractions")
    test, val, train = order[:n_test], order[n_test:n_test + n_val], order[n_test + n_val:]

    def part(idx: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        import torch

        return torch.from_numpy(x[idx]), torch.from_numpy(y[idx])

    return SetSplits(part(train), part(val), part(test))


def load_sets(cfg: DataConfig, data_dir: Path | None = None) -> SetData:
    """The generated sets of `data.sets`, or the user's own from `data.path` (an .npz)."""
    if cfg.path is not None:
        x, y = read_set_file(Path(cfg.path))
        splits, files, name = split_file_sets(x, y, cfg), [Path(cfg.path)], f"sets:{Path(cfg.path).name}"
    else:
        splits, files, name = make_sets(cfg.sets, cfg.split_seed), [], "sets"
    if cfg.validates_on == "test":
        splits = SetSplits(splits.train, splits.test, splits.test)
    elif cfg.validates_on == "none":
        tx, ty = splits.train
        splits = SetSplits(splits.train, (tx[:0], ty[:0]), splits.test)
    checksum = tensor_checksum(*splits.train, *splits.val, *splits.test)
    return SetData(name, splits.train, splits.val, splits.test, checksum, files)


@register_dataset
class SetsSource(DatasetSource):
    """Listed with the image datasets; its runs are set regression (`visionstudy.tasks`)."""

    name = "sets"
    options = ("path", "test_fraction", "sets")
    description = ("Sets of vectors with a target per element or per set (regression): generated "
                   "(data.sets) or your own .npz (data.path, arrays x and y)")
    task = "regression"

    def find(self, cfg: DataConfig, roots: list[Path]) -> list[Path] | None:
        return [Path(cfg.path)] if cfg.path else []

    def model_io(self, cfg: DataConfig) -> tuple[int, int, tuple[int, int]] | None:
        """Generated sets: `dim` features per element, one target (per element or per set); a
        user's .npz (data.path) tells only when read."""
        if cfg.path is not None:
            return None
        return cfg.sets.dim, 1, (cfg.sets.size, cfg.sets.dim)

    def decode(self, cfg: DataConfig, paths: list[Path]) -> RawDataset:
        raise DataError("dataset 'sets' holds sets, not images: train it with a set model (deepsets)")
