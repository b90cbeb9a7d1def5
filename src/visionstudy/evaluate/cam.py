"""Grad-CAM heat-maps (captum's LayerGradCam) over the last spatial layer of a convolutional model."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from visionstudy.errors import ReportError

SKIP = (nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d, nn.Dropout,
        nn.Dropout2d, nn.Flatten)


def cam_layer(model: nn.Module, image_shape: tuple[int, int, int]) -> nn.Module:
    """The last module of `model.features` that outputs a spatial map (N, C, H, W), skipping
    pooling and dropout: the last convolutional block, where Grad-CAM is usually taken."""
    features = getattr(model, "features", None)
    if not isinstance(features, nn.Module) or not list(features.children()):
        raise ReportError("Grad-CAM needs a model with a `features` module of layers")
    spatial: list[nn.Module] = []

    def keep(mod: nn.Module, _inputs: Any, out: Any) -> None:
        if isinstance(out, torch.Tensor) and out.ndim == 4 and out.shape[-1] * out.shape[-2] > 1:
            spatial.append(mod)

    hooks = [m.register_forward_hook(keep) for m in features.children() if not isinstance(m, SKIP)]
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(torch.zeros(1, *image_shape, device=next(model.parameters()).device))
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)
    if not spatial:
        raise ReportError(
            f"Grad-CAM needs a convolutional model; {type(model).__name__} has no spatial layers"
        )
    return spatial[-1]


def gradcam(model: nn.Module, images: torch.Tensor, targets: torch.Tensor,
            layer: nn.Module | None = None) -> np.ndarray:
    """Heat-maps (N, H, W) in 0..1 at the input resolution, for class `targets[i]` of image i."""
    from captum.attr import LayerAttribution, LayerGradCam

    model.eval()
    c, h, w = images.shape[1:]
    layer = layer or cam_layer(model, (c, h, w))
    cam = LayerGradCam(model, layer).attribute(images, target=targets.tolist(),
                                               relu_attributions=True)
    cam = LayerAttribution.interpolate(cam.detach(), tuple(images.shape[2:]), interpolate_mode="bilinear")
    cam = cam[:, 0].clamp(min=0)
    peak = cam.flatten(1).amax(1).clamp(min=1e-12).view(-1, 1, 1)
    return (cam / peak).cpu().numpy()
