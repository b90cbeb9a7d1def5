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

from dataclasses import dataclass

import torch

from visionstudy.config import SetsConfig


@dataclass
class SetSplits:
    train: tuple[torch.Tensor, torch.Tensor]  # (N, n, d) float32 sets, (N, n, 1) or (N, 1) targets
    val: tuple[torch.Tensor, torch.Tensor]
    test: tuple[torch.Tensor, torch.Tensor]

    def to(self, device: torch.device) -> SetSplits:
        return SetSplits(*((x.to(device), y.to(device)) for x, y in (self.train, self.val, self.test)))


def set_targets(x: torch.Tensor, noise: float, per_set: bool, gen: torch.Generator) -> torch.Tensor:
    """The documented target function (see the module docstring)."""
    a = torch.tensor([1.0, -1.0, 0.5] * (x.shape[-1] // 3 + 1))[: x.shape[-1]]
    mean = x.mean(1, keepdim=True)
    y = torch.sin(x @ a) + (x * mean).sum(-1)
    y = y + noise * torch.randn(y.shape, generator=gen)
    return y.mean(1, keepdim=True) if per_set else y.unsqueeze(-1)


def make_sets(cfg: SetsConfig, seed: int) -> SetSplits:
    gen = torch.Generator().manual_seed(seed)

    def split(n: int) -> tuple[torch.Tensor, torch.Tensor]:
        x = torch.randn(n, cfg.size, cfg.dim, generator=gen)
        return x, set_targets(x, cfg.noise, cfg.target == "set", gen)

    return SetSplits(split(cfg.train), split(cfg.val), split(cfg.test))
