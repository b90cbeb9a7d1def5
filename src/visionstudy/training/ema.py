"""An exponential moving average of a model's weights (`train.ema`), the weights that are evaluated.

After every optimizer step the average moves toward the live weights by `1 - d`, with
TensorFlow's warm-up `d = min(decay, (1 + t) / (10 + t))` at step `t`, so that the average follows
the model closely in the first steps instead of keeping the random initial weights. Floating
buffers (batch-norm statistics) are averaged too; integer ones (batch counts) are copied.
Validation, the checkpoints' `model` and the test use the averaged weights (`applied`); training
goes on with the live ones, which `last.pt` keeps beside them for a resume (`live_model`). timm's
`ModelEmaV2` and airbench's look-ahead average for the same reason: at a high learning rate the
average is ahead of any single step's weights.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn


class WeightAverage:
    def __init__(self, net: nn.Module, decay: float) -> None:
        self.decay = decay
        self.steps = 0
        self.state = {k: v.detach().clone() for k, v in net.state_dict().items()}
        self.floats = [k for k, v in self.state.items() if v.is_floating_point()]
        self.counts = [k for k, v in self.state.items() if not v.is_floating_point()]

    def rate(self) -> float:
        """The share `1 - d` of the live weights taken at this step."""
        return 1.0 - min(self.decay, (1 + self.steps) / (10 + self.steps))

    @torch.no_grad()
    def update(self, net: nn.Module) -> None:
        live = net.state_dict()
        averages, weights = [self.state[k] for k in self.floats], [live[k] for k in self.floats]
        torch._foreach_lerp_(averages, weights, self.rate())
        for k in self.counts:
            self.state[k].copy_(live[k])
        self.steps += 1

    @contextmanager
    def applied(self, net: nn.Module) -> Iterator[dict[str, torch.Tensor]]:
        """`net` holds the averaged weights inside the block, and its own (given to the block, for
        the resume checkpoint) again after it."""
        live = {k: v.detach().clone() for k, v in net.state_dict().items()}
        net.load_state_dict(self.state)
        try:
            yield live
        finally:
            net.load_state_dict(live)

    def load(self, weights: dict[str, torch.Tensor], steps: int) -> None:
        """Resume: the average and its step count as `last.pt` holds them."""
        for k, v in weights.items():
            self.state[k].copy_(v)
        self.steps = steps
