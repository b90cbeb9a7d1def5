"""The model contract, the registry and `create_model`.

Every model is a `Classifier`: `forward_features(x)` gives the penultimate features (N, D),
`forward_head(features)` the logits; `forward` is both. Each registered model has a pydantic class
of parameters, so a config is checked before anything is built.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import torch
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_serializer, model_validator
from torch import nn

from visionstudy import config
from visionstudy.errors import ConfigError
from visionstudy.registry import Registry


class Params(config.Params):
    """Base of every model's parameter class: the registries' `Params` (unknown keys, non-finite
    numbers and coerced types are errors), with defaults validated too."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, validate_default=True)

    def check(self) -> None:
        """Consistency checks between fields that need no input shape (e.g. one dropout rate per
        hidden layer), so a study fails at validation rather than when its run starts."""

    def skeleton(self) -> Params:
        """The parameters that rebuild the same structure without fetching any weights (to
        load a checkpoint into)."""
        return self


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


@dataclass(frozen=True)
class ModelSpec:
    builder: Callable[..., nn.Module]  # (in_channels, num_classes, input_size, params) -> model
    params: type[Params]
    description: str
    kind: str = "image"  # "image": a Classifier of (N, C, H, W) images; "set": (N, n, d) sets


MODELS: Registry[ModelSpec] = Registry("model")


def register_model(name: str, params: type[Params],
                   kind: str = "image") -> Callable[[Callable[..., nn.Module]], Any]:
    """Decorator: `@register_model('cnn', CNNParams)` over `build(in_ch, classes, size, p)`."""

    def decorator(builder: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        doc = (builder.__doc__ or name).strip().splitlines()[0]
        MODELS.add(name, ModelSpec(builder, params, doc, kind))
        return builder

    return decorator


def list_models(kind: str = "image") -> list[str]:
    return [n for n in MODELS.names() if MODELS.get(n).kind == kind]


def model_kind(name: str) -> str:
    return MODELS.get(name, "model.name").kind


def validate_params(name: str, params: dict[str, Any], prefix: str = "model") -> Params:
    from visionstudy.config import format_validation_error

    spec = MODELS.get(name, f"{prefix}.name")
    try:
        p = spec.params.model_validate(params)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, prefix)) from None
    p.check()
    return p


def check_model_params(model_cfg: Any, source: str) -> Params:
    try:
        return validate_params(model_cfg.name, model_cfg.params())
    except ConfigError as exc:
        raise ConfigError(f"{source}: invalid config\n{exc}") from None


def create_model(
    name: str, in_channels: int, num_classes: int, input_size: int | tuple[int, int] = 32,
    *, skeleton: bool = False, **params: Any,
) -> nn.Module:
    """Build a registered model for (in_channels, H, W) inputs; impossible shapes raise ConfigError.
    `skeleton`: the structure only, for a checkpoint's weights or a meta-device probe (no
    pretrained download, no weight initialisation)."""
    spec = MODELS.get(name, "model.name")
    p = validate_params(name, params)
    if skeleton:
        p = p.skeleton()
    size = (input_size, input_size) if isinstance(input_size, int) else tuple(input_size)
    model = spec.builder(in_channels, num_classes, size, p)
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


def count_flops(model: nn.Module, input_shape: tuple[int, int, int]) -> int:
    """FLOPs of one forward pass on one image (torch's flop counter: 2 per multiply-add)."""
    from torch.utils.flop_counter import FlopCounterMode

    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            model(torch.zeros(1, *input_shape, device=device))
    finally:
        model.train(was_training)
    return int(counter.get_total_flops())


Rate = Annotated[float, Field(ge=0.0, lt=1.0)]  # a dropout probability
Size = Annotated[int, Field(ge=1)]  # a layer width, a kernel size, a block count
class NoActivationParams(Params):
    pass


class LeakyReLUParams(Params):
    negative_slope: float = Field(0.01, ge=0, description="slope for negative inputs (Keras: alpha)")


class ELUParams(Params):
    alpha: float = Field(1.0, gt=0, description="saturation value for negative inputs")


class GELUParams(Params):
    approximate: Literal["none", "tanh"] = Field("none", description="tanh: the fast approximation")


class PReLUParams(Params):
    init: float = Field(0.25, ge=0, description="initial learned slope for negative inputs")


# name → (builder from its params, params class); `activation: NAME` or `{name: NAME, **params}`
ACTIVATIONS: dict[str, tuple[Callable[[Any], nn.Module], type[Params]]] = {
    "relu": (lambda p: nn.ReLU(), NoActivationParams),
    "elu": (lambda p: nn.ELU(p.alpha), ELUParams),
    "leaky_relu": (lambda p: nn.LeakyReLU(p.negative_slope), LeakyReLUParams),
    "prelu": (lambda p: nn.PReLU(init=p.init), PReLUParams),
    "gelu": (lambda p: nn.GELU(approximate=p.approximate), GELUParams),
    "selu": (lambda p: nn.SELU(), NoActivationParams),
    "silu": (lambda p: nn.SiLU(), NoActivationParams),
    "tanh": (lambda p: nn.Tanh(), NoActivationParams),
    "sigmoid": (lambda p: nn.Sigmoid(), NoActivationParams),
}
ActivationName = Literal["relu", "elu", "leaky_relu", "prelu", "gelu", "selu", "silu", "tanh", "sigmoid"]


class ActivationSpec(BaseModel):
    """An activation by name, with its parameters when it has any:
    `activation: leaky_relu` (slope 0.01) or `activation: {name: leaky_relu, negative_slope: 0.1}`."""

    model_config = ConfigDict(extra="allow", allow_inf_nan=False)
    name: ActivationName

    @model_validator(mode="before")
    @classmethod
    def _plain_name(cls, value: Any) -> Any:
        return {"name": value} if isinstance(value, str) else value

    @model_validator(mode="after")
    def _own_params(self) -> ActivationSpec:
        try:
            ACTIVATIONS[self.name][1].model_validate(self.model_extra or {})
        except ValidationError as exc:
            from visionstudy.config import format_validation_error

            raise ValueError(f"{self.name}: {format_validation_error(exc)}") from None
        return self

    @model_serializer(mode="wrap")
    def _as_written(self, handler: Any) -> Any:
        return self.name if not self.model_extra else handler(self)

    def build(self) -> nn.Module:
        builder, params = ACTIVATIONS[self.name]
        return builder(params.model_validate(self.model_extra or {}))


Activation = ActivationSpec  # a plain name is read as {name: NAME}


def activation(spec: ActivationSpec | str) -> nn.Module:
    return (spec if isinstance(spec, ActivationSpec) else ActivationSpec(name=spec)).build()


def per_layer(value: Any, count: int, field: str) -> list[Any]:
    """A scalar applies to every layer; a list must have one value per layer."""
    if isinstance(value, list):
        if len(value) != count:
            raise ConfigError(
                f"model.{field}: {len(value)} values for {count} layers; give one per layer "
                "or a single value for all"
            )
        return value
    return [value] * count


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
