"""CIFAR-style residual networks (He et al. 2016) and the DAWNBench ResNet-9.

`resnet` is the builder: stages of basic blocks, strided downsampling with 1x1 projection
shortcuts, global average pooling. The presets are 5-line entry points over it. Seed 000's ResNet
(`blocks: [3, 3, 3], widths: [64, 128, 256]`) has 4,330,324 parameters for 20 classes.
"""

from __future__ import annotations

import torch
from torch import nn

from visionstudy.errors import ConfigError
from visionstudy.models.base import Classifier, activation
from visionstudy.models.registry import ResNet9Params, ResNet18Params, ResNet20Params, ResNetParams


def conv_bn(c_in: int, c_out: int, k: int = 3, stride: int = 1, bn: bool = True) -> list[nn.Module]:
    """A convolution and its batch norm; without batch norm the convolution has a bias instead."""
    conv = nn.Conv2d(c_in, c_out, k, stride, padding=k // 2, bias=not bn)
    return [conv, nn.BatchNorm2d(c_out)] if bn else [conv]


class BasicBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, stride: int, p: ResNetParams) -> None:
        super().__init__()
        drop = [nn.Dropout(p.dropout)] if p.dropout > 0 else []
        bn = p.batch_norm
        self.body = nn.Sequential(
            *conv_bn(c_in, c_out, p.kernel_size, stride, bn), activation(p.activation), *drop,
            *conv_bn(c_out, c_out, p.kernel_size, bn=bn),
        )
        projection = stride != 1 or c_in != c_out
        self.shortcut = nn.Sequential(*conv_bn(c_in, c_out, 1, stride, bn)) if projection else nn.Identity()
        self.act = activation(p.activation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.body(x) + self.shortcut(x))


class ResNet(Classifier):
    def __init__(self, in_channels: int, num_classes: int, size: tuple[int, int], p: ResNetParams):
        super().__init__()
        if p.stem == "conv3":
            layers: list[nn.Module] = [*conv_bn(in_channels, p.widths[0], bn=p.batch_norm),
                                       activation(p.activation)]
            h = min(size)
        else:
            layers = [*conv_bn(in_channels, p.widths[0], 7, 2, p.batch_norm), activation(p.activation),
                      nn.MaxPool2d(3, 2, 1)]
            h = min(size) // 4
        width = p.widths[0]
        for i, (n, c) in enumerate(zip(p.blocks, p.widths, strict=True)):
            stride = 1 if i == 0 else 2
            if h < stride:
                raise ConfigError(
                    f"model.blocks: stage {i + 1} cannot downsample a {h}x{h} map from the "
                    f"{size[0]}x{size[1]} input; use fewer stages or stem: conv3"
                )
            h = -(-h // stride)
            for j in range(n):
                layers.append(BasicBlock(width, c, stride if j == 0 else 1, p))
                width = c
        layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
        if p.head_dropout > 0:
            layers.append(nn.Dropout(p.head_dropout))
        self.features = nn.Sequential(*layers)
        self.num_features = width
        self.head = nn.Linear(width, num_classes)


def build_resnet(in_channels: int, num_classes: int, size: tuple[int, int], p: ResNetParams):
    return ResNet(in_channels, num_classes, size, p)


def build_resnet20(in_channels: int, num_classes: int, size: tuple[int, int], p: ResNet20Params):
    return ResNet(in_channels, num_classes, size, p)


def build_resnet18(in_channels: int, num_classes: int, size: tuple[int, int], p: ResNet18Params):
    return ResNet(in_channels, num_classes, size, p)


class Residual(nn.Module):
    def __init__(self, *layers: nn.Module) -> None:
        super().__init__()
        self.body = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class ResNet9(Classifier):
    """The DAWNBench ResNet-9 (Page 2018): max pooling downsamples, two residual blocks."""

    def __init__(self, in_channels: int, num_classes: int, size: tuple[int, int], p: ResNet9Params):
        super().__init__()
        if min(size) < 8:
            raise ConfigError(f"model.name: resnet9 pools 3 times and needs inputs >= 8x8, got {size}")
        c0, c1, c2, c3 = p.widths

        def cba(a: int, b: int) -> list[nn.Module]:
            return [*conv_bn(a, b, bn=p.batch_norm), activation(p.activation)]

        layers = [
            *cba(in_channels, c0),
            *cba(c0, c1), nn.MaxPool2d(2), Residual(*cba(c1, c1), *cba(c1, c1)),
            *cba(c1, c2), nn.MaxPool2d(2),
            *cba(c2, c3), nn.MaxPool2d(2), Residual(*cba(c3, c3), *cba(c3, c3)),
            nn.AdaptiveMaxPool2d(1), nn.Flatten(),
        ]
        if p.head_dropout > 0:
            layers.append(nn.Dropout(p.head_dropout))
        self.features = nn.Sequential(*layers)
        self.num_features = c3
        self.head = nn.Linear(c3, num_classes)


def build_resnet9(in_channels: int, num_classes: int, size: tuple[int, int], p: ResNet9Params):
    return ResNet9(in_channels, num_classes, size, p)
