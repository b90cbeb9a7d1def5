"""Multi-layer perceptron on flattened images (seed 003's MLP)."""

from __future__ import annotations

from torch import nn

from visionstudy.models.base import Classifier, dense_stack
from visionstudy.models.registry import MLPParams, per_layer


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


def build_mlp(in_channels: int, num_classes: int, size: tuple[int, int], p: MLPParams) -> MLP:
    return MLP(in_channels * size[0] * size[1], num_classes, p)
