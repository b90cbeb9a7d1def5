"""Multi-layer perceptron on flattened images (seed 003's MLP)."""

from __future__ import annotations

from pydantic import Field
from torch import nn

from visionstudy.models.base import (
    Activation,
    Classifier,
    Params,
    Rate,
    Size,
    dense_stack,
    per_layer,
    register_model,
)


class MLPParams(Params):
    hidden: list[Size] = Field([256, 128], min_length=1, description="hidden layer sizes")
    activation: Activation = Field("relu", description="activation after each hidden layer")  # type: ignore[assignment]
    batch_norm: bool = Field(False, description="batch norm after each hidden linear layer")
    dropout: Rate | list[Rate] = Field(0.0, description="dropout after each hidden layer")

    def check(self) -> None:
        per_layer(self.dropout, len(self.hidden), "dropout")


class MLP(Classifier):
    convolutional = False

    def __init__(self, in_features: int, num_classes: int, p: MLPParams) -> None:
        super().__init__()
        drops = per_layer(p.dropout, len(p.hidden), "dropout")
        dense, width = dense_stack(in_features, p.hidden, drops, p.batch_norm, p.activation)
        layers: list[nn.Module] = [nn.Flatten(), *dense]
        self.features = nn.Sequential(*layers)
        self.num_features = width
        self.head = nn.Linear(width, num_classes)


@register_model("mlp", MLPParams)
def build_mlp(in_channels: int, num_classes: int, size: tuple[int, int], p: MLPParams) -> MLP:
    """Multi-layer perceptron: hidden sizes, activation, batch norm, dropout per layer."""
    return MLP(in_channels * size[0] * size[1], num_classes, p)
