"""Permutation-equivariant networks on sets (Zaheer et al. 2017, "Deep Sets"), as in seed 004 P3.

Each layer maps a set X (n elements × d_in) to λ(X) + γ(pool(X)) + b: λ a weight matrix applied to
every element alone (no bias), γ one applied to the pooled set (mean or sum) and broadcast back, b
a bias. Permuting the elements permutes the output rows the same way (equivariance). `layers` L
counts every such layer: d → width, L - 2 × (width → width), width → outputs, with the activation
between them. With `invariant: true` the last layer's output is pooled over the elements: one
output per set, the same for any order (invariance).

Parameter counts of seed 004's table for 3-dimensional elements and one output per element:
(L, width) = (3, 100) 21,001; (3, 200) 82,001; (3, 10) 301; (2, 10) 91; (2, 200) 1,801;
(2, 100) 901; (3, 5) 101; (5, 2) 49.
"""

from __future__ import annotations

import torch
from torch import nn

from visionstudy.models.base import activation
from visionstudy.models.registry import DeepSetsParams


class Equivariant(nn.Module):
    """X → X λ + pool(X) γ + b, over (N, n, d) batches of sets."""

    def __init__(self, d_in: int, d_out: int, pool: str) -> None:
        super().__init__()
        self.element = nn.Linear(d_in, d_out, bias=False)  # λ, shared by all elements
        self.pooled = nn.Linear(d_in, d_out)  # γ and the bias b
        self.pool = pool

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = x.mean(1, keepdim=True) if self.pool == "mean" else x.sum(1, keepdim=True)
        return self.element(x) + self.pooled(pooled)


class DeepSets(nn.Module):
    convolutional = False
    own_init = True
    input_stats = None

    def __init__(self, d_in: int, outputs: int, p: DeepSetsParams) -> None:
        super().__init__()
        dims = [d_in] + [p.width] * (p.layers - 1) + [outputs]
        blocks: list[nn.Module] = []
        for i, (a, b) in enumerate(zip(dims[:-1], dims[1:], strict=True)):
            blocks.append(Equivariant(a, b, p.pool))
            if i < len(dims) - 2:
                blocks.append(activation(p.activation))
        self.net = nn.Sequential(*blocks)
        self.invariant, self.pool = p.invariant, p.pool

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, n, d) sets → (N, n, outputs), or (N, outputs) when invariant."""
        out = self.net(x)
        if self.invariant:
            return out.mean(1) if self.pool == "mean" else out.sum(1)
        return out


def build_deepsets(in_channels: int, num_classes: int, size: tuple[int, int], p: DeepSetsParams) -> DeepSets:
    return DeepSets(in_channels, num_classes, p)
