"""The model registry: each model's name, its parameters (a pydantic class, so a config is checked
before anything is built), its kind and its builder. Nothing here imports torch: validating a study
(its launcher, `visionstudy validate`, the API) does not pay for it; the builders live beside their
networks (`models/cnn.py`, ...) and are imported when a model is built (`base.create_model`)."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_serializer, model_validator

from visionstudy import config
from visionstudy.config import format_validation_error
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


Rate = Annotated[float, Field(ge=0.0, lt=1.0)]  # a dropout probability
Size = Annotated[int, Field(ge=1)]  # a layer width, a kernel size, a block count
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


# `activation: NAME` or `{name: NAME, **params}`: each one's parameters (modules: `base.ACTIVATIONS`)
ACTIVATION_PARAMS: dict[str, type[Params]] = {
    "relu": NoActivationParams, "elu": ELUParams, "leaky_relu": LeakyReLUParams, "prelu": PReLUParams,
    "gelu": GELUParams, "selu": NoActivationParams, "silu": NoActivationParams, "tanh": NoActivationParams,
    "sigmoid": NoActivationParams,
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
            ACTIVATION_PARAMS[self.name].model_validate(self.model_extra or {})
        except ValidationError as exc:
            detail = format_validation_error(exc, schema=ACTIVATION_PARAMS[self.name])
            raise ValueError(f"{self.name}: {detail}") from None
        return self

    @model_serializer(mode="wrap")
    def _as_written(self, handler: Any) -> Any:
        return self.name if not self.model_extra else handler(self)


Activation = ActivationSpec  # a plain name is read as {name: NAME}


# ------------------------------------------------------------------------------------ the models


class MLPParams(Params):
    hidden: list[Size] = Field([256, 128], min_length=1, description="hidden layer sizes")
    activation: Activation = Field("relu", description="activation after each hidden layer")  # type: ignore[assignment]
    batch_norm: bool = Field(False, description="batch norm after each hidden linear layer")
    dropout: Rate | list[Rate] = Field(0.0, description="dropout after each hidden layer")

    def check(self) -> None:
        per_layer(self.dropout, len(self.hidden), "dropout")


Pool = Literal["max", "avg", "none"]


class CNNParams(Params):
    channels: list[Size | list[Size]] = Field(
        [32, 64], min_length=1, description="per stage: filters of its conv layer(s)"
    )
    kernel_size: Size | list[Size | list[Size]] = Field(
        3, description="one size for all, one per stage, or one list per stage (e.g. [5, 5, 3])"
    )
    padding: Literal["same", "valid"] = Field("same", description="convolution padding")
    pool: Pool | list[Pool] = Field(
        "max", description="pooling after each stage, or one per stage (e.g. [max, max, none])"
    )
    pool_size: int = Field(2, ge=2, description="pooling window and stride")
    batch_norm: bool = Field(False, description="batch norm after every conv and dense layer")
    conv_dropout: Rate | list[Rate] = Field(0.0, description="dropout after each stage")
    hidden: list[Size] = Field([128], description="dense layer sizes before the classifier")
    dropout: Rate | list[Rate] = Field(
        0.0, description="dropout after each dense layer (or before the classifier if none)"
    )
    activation: Activation = Field("relu", description="activation after conv and dense layers")  # type: ignore[assignment]
    global_pool: bool = Field(False, description="global average pooling instead of flatten")

    def check(self) -> None:
        stages = len(stage_kernels(self))
        per_layer(self.conv_dropout, stages, "conv_dropout")
        per_layer(self.pool, stages, "pool")
        per_layer(self.dropout, max(len(self.hidden), 1), "dropout")


def stage_kernels(p: CNNParams) -> list[list[int]]:
    stages = [c if isinstance(c, list) else [c] for c in p.channels]
    ks = per_layer(p.kernel_size, len(stages), "kernel_size")
    out = []
    for i, (convs, k) in enumerate(zip(stages, ks, strict=True)):
        k_list = k if isinstance(k, list) else [k] * len(convs)
        if len(k_list) != len(convs):
            raise ConfigError(f"model.kernel_size[{i}]: {len(k_list)} sizes for {len(convs)} convs")
        out.append(k_list)
    return out


class ResNetParams(Params):
    blocks: list[Size] = Field([2, 2, 2], min_length=1, description="basic blocks per stage")
    widths: list[Size] = Field([64, 128, 256], min_length=1, description="channels per stage")
    kernel_size: int = Field(3, ge=1, description="kernel size inside blocks")
    stem: Literal["conv3", "conv7"] = Field(
        "conv3", description="conv3: 3x3 stride 1 (32x32 inputs); conv7: 7x7/2 + max pool"
    )
    dropout: Rate = Field(0.0, description="dropout between the two convs of each block")
    head_dropout: Rate = Field(0.0, description="dropout before the classifier")
    activation: Activation = Field("relu", description="activation")  # type: ignore[assignment]
    batch_norm: bool = Field(True, description="batch norm after every conv (false: biased convs, "
                             "as seed 003's ResNet without batch norm)")

    @model_validator(mode="after")
    def _same_length(self) -> ResNetParams:
        if len(self.blocks) != len(self.widths):
            raise ValueError(
                f"blocks has {len(self.blocks)} stages but widths has {len(self.widths)}; "
                "give one width per stage"
            )
        return self


class ResNet20Params(ResNetParams):
    blocks: list[Size] = Field([3, 3, 3], min_length=1, description="basic blocks per stage")
    widths: list[Size] = Field([16, 32, 64], min_length=1, description="channels per stage")


class ResNet18Params(ResNetParams):
    blocks: list[Size] = Field([2, 2, 2, 2], min_length=1, description="basic blocks per stage")
    widths: list[Size] = Field([64, 128, 256, 512], min_length=1, description="channels per stage")


class ResNet9Params(Params):
    widths: list[Size] = Field(
        [64, 128, 256, 512], min_length=4, max_length=4, description="prep, layer1..3 channels"
    )
    activation: Activation = Field("relu", description="activation")  # type: ignore[assignment]
    head_dropout: Rate = Field(0.0, description="dropout before the classifier")
    batch_norm: bool = Field(True, description="batch norm after every conv (false: biased convs)")


class DeepSetsParams(Params):
    layers: int = Field(3, ge=1, description="equivariant layers, the output layer included")
    width: int = Field(100, ge=1, description="features per element in the hidden layers")
    pool: Literal["mean", "sum"] = Field("mean", description="pooling over the set's elements")
    activation: Activation = Field("relu", description="activation between layers")  # type: ignore[assignment]
    invariant: bool = Field(False, description="pool the last layer's output: one output per set")


Mode = Literal["linear-probe", "fine-tune", "from-scratch"]


class TorchvisionParams(Params):
    arch: str = Field("resnet18", description="torchvision classification model name")
    weights: str | None = Field(
        "DEFAULT", description="torchvision weights name (DEFAULT, IMAGENET1K_V1, ...) or a file path"
    )
    mode: Mode = Field("fine-tune", description="linear-probe | fine-tune | from-scratch")
    backbone_lr_factor: float = Field(
        1.0, gt=0, le=1, description="fine-tune: learning-rate multiplier of the backbone"
    )
    resize: int | None = Field(None, ge=16, le=1024, description="upsample inputs to this size")
    stem: Literal["imagenet", "cifar"] = Field(
        "imagenet", description="cifar: ResNet stem replaced by a 3x3 stride-1 conv, no max-pool"
    )

    normalize: Literal["weights", "dataset"] = Field(
        "weights", description="normalise inputs with the weights' ImageNet statistics or the dataset's"
    )

    def skeleton(self) -> TorchvisionParams:
        return self.model_copy(update={"weights": None, "mode": "from-scratch"})


# ------------------------------------------------------------------------------------ the registry


@dataclass(frozen=True)
class ModelSpec:
    # (in_channels, num_classes, input_size, params) -> model, or "module:function" naming it (imported
    # when a model is built: checking a config needs no torch)
    builder: Callable[..., Any] | str
    params: type[Params]
    description: str
    kind: str = "image"  # "image": a Classifier of (N, C, H, W) images; "set": (N, n, d) sets

    def build(self) -> Callable[..., Any]:
        if callable(self.builder):
            return self.builder
        module, _, name = self.builder.partition(":")
        builder: Callable[..., Any] = getattr(importlib.import_module(module), name)
        return builder


MODELS: Registry[ModelSpec] = Registry("model")


def register_model(name: str, params: type[Params],
                   kind: str = "image") -> Callable[[Callable[..., Any]], Any]:
    """Decorator: `@register_model('cnn', CNNParams)` over `build(in_ch, classes, size, p)`."""

    def decorator(builder: Callable[..., Any]) -> Callable[..., Any]:
        doc = (builder.__doc__ or name).strip().splitlines()[0]
        MODELS.add(name, ModelSpec(builder, params, doc, kind))
        return builder

    return decorator


def list_models(kind: str = "image") -> list[str]:
    return [n for n in MODELS.names() if MODELS.get(n).kind == kind]


def model_kind(name: str) -> str:
    return model_spec(name, "model.name").kind


def model_spec(name: str, field: str) -> ModelSpec:
    """The registered family `name`; a torchvision architecture that is not one of ours (`vgg16`,
    `resnet50`) is told the section that builds it."""
    if name in MODELS:
        return MODELS.get(name)
    import torchvision.models  # only on this error path: torchvision is heavy

    arch = str(name).lower().replace("-", "_")
    tv = arch not in MODELS and arch in torchvision.models.list_models(module=torchvision.models)
    hint = (f"{name!r} is a torchvision architecture: write model: {{name: torchvision, arch: {arch}}} "
            "(with its ImageNet weights; mode: from-scratch and weights: null train it without them)")
    return MODELS.get(name, field, hint if tv else None)


# keys of timm's and torchvision's pretrained models, which our own families (trained from scratch) lack
PRETRAINED = ("pretrained weights come with `name: torchvision` and its `weights`, e.g. model: {name: "
              "torchvision, arch: resnet18, weights: DEFAULT} (our resnet18 trains from scratch)")


def validate_params(name: str, params: dict[str, Any], prefix: str = "model") -> Params:
    spec = model_spec(name, f"{prefix}.name")
    try:
        p = spec.params.model_validate(params)
    except ValidationError as exc:
        hints = dict.fromkeys(("pretrained", "weights", "arch", "model_name"), PRETRAINED)
        raise ConfigError(format_validation_error(exc, prefix, spec.params, ["name"], hints)) from None
    p.check()
    return p


# the built-in models: name, builder ("module:function" in visionstudy.models), parameters, kind,
# description (each builder is imported when its model is built)
BUILT_IN: tuple[tuple[str, str, type[Params], str, str], ...] = (
    ("mlp", "mlp:build_mlp", MLPParams, "image",
     "Multi-layer perceptron: hidden sizes, activation, batch norm, dropout per layer."),
    ("cnn", "cnn:build_cnn", CNNParams, "image",
     "Plain CNN: conv stages (channels, kernels, padding, pooling, BN, dropout), dense head."),
    ("resnet", "resnet:build_resnet", ResNetParams, "image",
     "CIFAR-style ResNet: basic blocks per stage, widths, projection shortcuts, GAP."),
    ("resnet20", "resnet:build_resnet20", ResNet20Params, "image",
     "ResNet-20 (He et al.): 3 stages x 3 blocks, 16/32/64 channels (seed 004's model 3)."),
    ("resnet18", "resnet:build_resnet18", ResNet18Params, "image",
     "ResNet-18 adapted to 32x32: 3x3 stem, no max pool, 2-2-2-2 blocks, 64..512 channels."),
    ("resnet9", "resnet:build_resnet9", ResNet9Params, "image",
     "ResNet-9 (DAWNBench): 64/128/256/512 channels, max-pool downsampling (seed 004's model 2)."),
    ("deepsets", "deepsets:build_deepsets", DeepSetsParams, "set",
     "Deep Sets: permutation-equivariant layers λx + γ·pool(x) + b (sets, not images)."),
    ("torchvision", "pretrained:build_torchvision", TorchvisionParams, "image",
     "A torchvision classifier (e.g. ResNet-18), pretrained or not, with a new head."),
)
for _name, _builder, _params, _kind, _description in BUILT_IN:
    MODELS.add(_name, ModelSpec(f"visionstudy.models.{_builder}", _params, _description, _kind))
