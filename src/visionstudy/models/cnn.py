"""Plain convolutional networks: stages of convolutions, pooling, then dense layers.

Expresses every CNN of the seeds, e.g. seed 000's baseline `channels: [32, 64], hidden: [128]`
(546,388 parameters for 20 classes) and its advanced CNN
`channels: [[64, 64], [128, 128], [256, 256]], hidden: [512, 256], batch_norm: true`.

Training runs each stage's max pooling before its activation where the activation never decreases
(ReLU and its kin): `act(maxpool(x)) == maxpool(act(x))`, and the activation then sees a quarter of
the values (README "Performance"). The model itself evaluates in the written order, so that
Grad-CAM's hooks see each activation at full size; `evaluate` takes its `for_inference` copy.
"""

from __future__ import annotations

import torch
from torch import nn

from visionstudy.errors import ConfigError
from visionstudy.models.base import Classifier, activation, dense_stack, pool_first
from visionstudy.models.registry import CNNParams, per_layer, stage_kernels


class CNN(Classifier):
    def __init__(self, in_channels: int, num_classes: int, size: tuple[int, int], p: CNNParams):
        super().__init__()
        stages = [c if isinstance(c, list) else [c] for c in p.channels]
        kernels = stage_kernels(p)
        conv_drops = per_layer(p.conv_dropout, len(stages), "conv_dropout")
        pools = per_layer(p.pool, len(stages), "pool")
        h, w = size
        layers: list[nn.Module] = []
        width = in_channels
        layout = zip(stages, kernels, conv_drops, pools, strict=True)
        for i, (convs, ks, drop, pool_kind) in enumerate(layout):
            for c, k in zip(convs, ks, strict=True):
                layers.append(nn.Conv2d(width, c, k, padding=p.padding))
                if p.batch_norm:
                    layers.append(nn.BatchNorm2d(c))
                layers.append(activation(p.activation))
                width = c
                if p.padding == "valid":
                    h, w = h - k + 1, w - k + 1
            if pool_kind != "none":
                pool = nn.MaxPool2d if pool_kind == "max" else nn.AvgPool2d
                layers.append(pool(p.pool_size))
                h, w = h // p.pool_size, w // p.pool_size
            if h < 1 or w < 1:
                raise ConfigError(
                    f"model.channels: stage {i + 1} of {len(stages)} shrinks the {size[0]}x{size[1]} "
                    f"input to {max(h, 0)}x{max(w, 0)}; use fewer stages, padding: same, "
                    "or pool: none"
                )
            if drop > 0:
                layers.append(nn.Dropout(drop))
        if p.global_pool:
            layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
            flat = width
        else:
            layers.append(nn.Flatten())
            flat = width * h * w
        dense_drops = per_layer(p.dropout, max(len(p.hidden), 1), "dropout")
        if not p.hidden and dense_drops[0] > 0:
            layers.append(nn.Dropout(dense_drops[0]))
        dense, flat = dense_stack(flat, p.hidden, dense_drops, p.batch_norm, p.activation)
        layers += dense
        self.features = nn.Sequential(*layers)
        self.train_order = pool_first(layers)
        self.num_features = flat
        self.head = nn.Linear(flat, num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return super().forward_features(x)
        for layer in self.train_order:
            x = layer(x)
        return x


def build_cnn(in_channels: int, num_classes: int, size: tuple[int, int], p: CNNParams) -> CNN:
    return CNN(in_channels, num_classes, size, p)
