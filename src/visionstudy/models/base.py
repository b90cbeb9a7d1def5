"""The model contract, `create_model` and the layers the families share.

Every model is a `Classifier`: `forward_features(x)` gives the penultimate features (N, D),
`forward_head(features)` the logits; `forward` is both. What a model accepts, and which builder
makes it, is the registry's (`models/registry.py`, torch-free).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from copy import deepcopy
from itertools import pairwise
from typing import Any

import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval, fuse_linear_bn_eval

from visionstudy.models.registry import (  # noqa: F401  (MODELS, ModelSpec, register_model: their old home)
    ACTIVATION_PARAMS,
    MODELS,
    ActivationSpec,
    ModelSpec,
    model_spec,
    register_model,
    validate_params,
)


class Classifier(nn.Module):
    """Base class: subclasses build `self.features` (input → (N, num_features)) and `self.head`."""

    num_features: int
    convolutional: bool = True  # channels_last pays off for convolutions only
    own_init: bool = False  # True: keep the model's own (or loaded) weights, skip `init_weights`
    input_stats: tuple[list[float], list[float]] | None = None  # normalise inputs with these

    features: nn.Module
    head: nn.Module

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.features(x)
        return out

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.head(features)
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))

    def for_inference(self) -> Classifier:
        """The model to evaluate with (validation, test): where `features` is a Sequential, a copy in
        eval mode with each batch norm folded into the convolution or dense layer before it and each
        max pooling taken before the activation it follows (`fold_batch_norms`, `pool_first`), as
        inference engines do: the same function in fewer passes over memory (README "Performance").
        The model itself otherwise, and where it was compiled (its compiled call stays its own)."""
        layers = list(self.features) if isinstance(self.features, nn.Sequential) else []
        compiled = getattr(self, "_compiled_call_impl", None) is not None
        if compiled or not any(foldable(a, b) or swappable(a, b) for a, b in pairwise(layers)):
            return self
        copy = deepcopy(self).eval()
        copy.features = nn.Sequential(*pool_first(fold_batch_norms(list(copy.features.children()))))
        return copy


NON_DECREASING = (nn.ReLU, nn.LeakyReLU, nn.ELU, nn.SELU, nn.Tanh, nn.Sigmoid)  # slopes, alphas ≥ 0


def swappable(layer: nn.Module, after: nn.Module) -> bool:
    return isinstance(layer, NON_DECREASING) and isinstance(after, nn.MaxPool2d)


def pool_first(layers: Sequence[nn.Module]) -> tuple[nn.Module, ...]:
    """The same layers with every non-decreasing activation that a max pooling follows swapped
    behind it: the same function, on a quarter of the values."""
    out = list(layers)
    for i in range(len(out) - 1):
        if swappable(out[i], out[i + 1]):
            out[i], out[i + 1] = out[i + 1], out[i]
    return tuple(out)


# a layer type → the batch norm that can follow it → torch's function merging the two for evaluation
FUSE: dict[tuple[type[nn.Module], type[nn.Module]], Callable[[Any, Any], nn.Module]] = {
    (nn.Conv2d, nn.BatchNorm2d): fuse_conv_bn_eval,
    (nn.Linear, nn.BatchNorm1d): fuse_linear_bn_eval,
}


def foldable(layer: nn.Module, norm: nn.Module) -> bool:
    """A batch norm with running statistics right after the layer whose weights can absorb it."""
    return (type(layer), type(norm)) in FUSE and getattr(norm, "running_mean", None) is not None


def fold_batch_norms(layers: Sequence[nn.Module]) -> list[nn.Module]:
    """Layers in eval mode with each foldable batch norm merged into the layer before it (`FUSE`):
    in evaluation a batch norm is a fixed affine map per channel."""
    out: list[nn.Module] = []
    for layer in layers:
        if out and foldable(out[-1], layer):
            out[-1] = FUSE[type(out[-1]), type(layer)](out[-1], layer)
        else:
            out.append(layer)
    return out


def create_model(
    name: str, in_channels: int, num_classes: int, input_size: int | tuple[int, int] = 32,
    *, skeleton: bool = False, **params: Any,
) -> nn.Module:
    """Build a registered model for (in_channels, H, W) inputs; impossible shapes raise ConfigError.
    `skeleton`: the structure only, for a checkpoint's weights or a meta-device probe (no
    pretrained download, no weight initialisation)."""
    spec = model_spec(name, "model.name")
    p = validate_params(name, params)
    if skeleton:
        p = p.skeleton()
    size = (input_size, input_size) if isinstance(input_size, int) else tuple(input_size)
    model = spec.build()(in_channels, num_classes, size, p)
    if not getattr(model, "own_init", False) and not skeleton:
        init_weights(model)
    return model


def init_weights(model: nn.Module) -> None:
    """Kaiming-normal weights for convolutions and linear layers, zero biases, unit norms."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d | nn.Linear):
            nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm1d | nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


def count_params(model: nn.Module, trainable_only: bool = False) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def flop_counter() -> type:
    """torch's `FlopCounterMode`. Its module imports triton where it is installed (CUDA wheels), only
    to accept a user's triton kernels as flop-formula targets: 90 ms of every run's start before its
    first step (bench/startup.py), for kernels an eager model has none of. Where nothing imported
    triton yet, that import is refused for the while (torch then takes no triton kernels as targets,
    and says nothing: its warning is for CUDA builds without triton) and triton stays importable."""
    import logging
    import sys

    if "torch.utils.flop_counter" not in sys.modules and "triton" not in sys.modules:
        logger = logging.getLogger("torch.utils.flop_counter")
        level = logger.level
        sys.modules["triton"] = None  # type: ignore[assignment]  # import refused: ImportError
        logger.setLevel(logging.ERROR)
        try:
            import torch.utils.flop_counter  # noqa: F401
        except ImportError:  # a torch that needs triton here: imported as it asks
            pass
        finally:
            del sys.modules["triton"]
            logger.setLevel(level)
    from torch.utils.flop_counter import FlopCounterMode

    return FlopCounterMode


def count_flops(model: nn.Module, input_shape: tuple[int, ...]) -> int:
    """FLOPs of one forward pass on one image (torch's flop counter: 2 per multiply-add)."""
    FlopCounterMode = flop_counter()  # noqa: N806
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            model(torch.zeros(1, *input_shape, device=device))
    finally:
        model.train(was_training)
    return int(counter.get_total_flops())


# name → the activation's module from its parameters (`registry.ACTIVATION_PARAMS`)
ACTIVATIONS: dict[str, Callable[[Any], nn.Module]] = {
    "relu": lambda p: nn.ReLU(),
    "elu": lambda p: nn.ELU(p.alpha),
    "leaky_relu": lambda p: nn.LeakyReLU(p.negative_slope),
    "prelu": lambda p: nn.PReLU(init=p.init),
    "gelu": lambda p: nn.GELU(approximate=p.approximate),
    "selu": lambda p: nn.SELU(),
    "silu": lambda p: nn.SiLU(),
    "tanh": lambda p: nn.Tanh(),
    "sigmoid": lambda p: nn.Sigmoid(),
}


def activation(spec: ActivationSpec | str) -> nn.Module:
    spec = spec if isinstance(spec, ActivationSpec) else ActivationSpec(name=spec)
    return ACTIVATIONS[spec.name](ACTIVATION_PARAMS[spec.name].model_validate(spec.model_extra or {}))


def dense_stack(
    width: int, sizes: list[int], drops: list[float], batch_norm: bool, act: ActivationSpec | str
) -> tuple[list[nn.Module], int]:
    """Linear → [batch norm] → activation → [dropout] per size; returns layers and output width."""
    layers: list[nn.Module] = []
    for size, drop in zip(sizes, drops, strict=False):
        layers.append(nn.Linear(width, size))
        if batch_norm:
            layers.append(nn.BatchNorm1d(size))
        layers.append(activation(act))
        if drop > 0:
            layers.append(nn.Dropout(drop))
        width = size
    return layers, width
