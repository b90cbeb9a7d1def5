"""t-SNE and Grad-CAM: seeded, shaped right, and pointing where the evidence is."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from visionstudy.errors import ReportError
from visionstudy.evaluate import cam_layer, gradcam, subsample, tsne_embedding
from visionstudy.models import create_model, list_models


def test_tsne_is_seeded_subsampled_and_separates_clusters():
    rng = np.random.default_rng(0)
    labels = np.repeat([0, 1, 2], 100)
    features = rng.normal(size=(300, 16)) + labels[:, None] * 8.0
    a, idx = tsne_embedding(features, labels, max_points=150, seed=3)
    b, idx_b = tsne_embedding(features, labels, max_points=150, seed=3)
    assert a.shape == (150, 2) and len(idx) == 150 and np.array_equal(idx, idx_b)
    assert np.allclose(a, b)
    sub = labels[idx]
    centres = np.array([a[sub == c].mean(0) for c in range(3)])
    spread = max(a[sub == c].std(0).max() for c in range(3))
    gaps = [np.linalg.norm(centres[i] - centres[j]) for i in range(3) for j in range(i + 1, 3)]
    assert min(gaps) > 2 * spread


def test_subsample_is_sorted_unique_and_bounded():
    idx = subsample(np.zeros(1000), 100, seed=1)
    assert len(idx) == 100 and len(set(idx)) == 100 and np.all(np.diff(idx) > 0)
    assert np.array_equal(subsample(np.zeros(5), 100, seed=1), np.arange(5))


class Spot(nn.Module):
    """conv 1x1 (identity) → ReLU → global average → linear: class 0 rises with brightness."""

    def __init__(self) -> None:
        super().__init__()
        conv = nn.Conv2d(1, 1, 1, bias=False)
        nn.init.ones_(conv.weight)
        self.features = nn.Sequential(conv, nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.head = nn.Linear(1, 2)
        with torch.no_grad():
            self.head.weight.copy_(torch.tensor([[1.0], [-1.0]]))
            self.head.bias.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def test_gradcam_highlights_the_evidence():
    x = torch.zeros(2, 1, 16, 16)
    x[0, 0, 2:5, 10:13] = 1.0  # a spot top right
    x[1, 0, 11:14, 1:4] = 1.0  # a spot bottom left
    heat = gradcam(Spot(), x, torch.tensor([0, 0]))
    assert heat.shape == (2, 16, 16) and heat.min() >= 0 and heat.max() == pytest.approx(1.0)
    assert heat[0, 3, 11] == pytest.approx(1.0) and heat[0, 12, 2] < 0.1
    assert heat[1, 12, 2] == pytest.approx(1.0) and heat[1, 3, 11] < 0.1


@pytest.mark.parametrize("name", [n for n in list_models() if n != "mlp"])
def test_gradcam_runs_on_every_convolutional_model(name):
    torch.manual_seed(0)
    size = 32
    params = {"weights": None, "mode": "from-scratch"} if name == "torchvision" else {}
    model = create_model(name, 3, 10, (size, size), **params).eval()
    x = torch.randn(3, 3, size, size)
    layer = cam_layer(model, (3, size, size))
    a = gradcam(model, x, torch.tensor([1, 2, 3]), layer)
    b = gradcam(model, x, torch.tensor([1, 2, 3]), layer)
    assert a.shape == (3, size, size) and np.allclose(a, b)
    assert np.isfinite(a).all() and a.min() >= 0 and a.max() <= 1 + 1e-6


def test_gradcam_refuses_a_model_without_spatial_layers():
    with pytest.raises(ReportError, match="convolutional"):
        cam_layer(create_model("mlp", 1, 10, (8, 8)), (1, 8, 8))
