"""Every registered augmentation: shapes and labels kept, per-sample randomness, reproducible."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from visionstudy.config import DataConfig
from visionstudy.data import AUGMENTATIONS, build_pipeline, list_augmentations
from visionstudy.data.augment import build_augment
from visionstudy.data.loader import BatchLoader
from visionstudy.errors import ConfigError


def batch(n=16, c=3, size=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, c, size, size, generator=g)
    return x, torch.arange(n) % 4


@pytest.mark.parametrize("name", list_augmentations())
@pytest.mark.parametrize("channels", [1, 3])
def test_augmentation_contract(name, channels):
    op = AUGMENTATIONS.get(name)()
    x, y = batch(c=channels)
    if op.on_uint8:
        x = (x * 255).to(torch.uint8)
    target = torch.nn.functional.one_hot(y, 4).float() if op.mixes_labels else y
    out1, t1 = op(x.clone(), target.clone(), torch.Generator().manual_seed(3))
    out2, t2 = op(x.clone(), target.clone(), torch.Generator().manual_seed(3))
    assert out1.shape == x.shape and out1.dtype == x.dtype
    assert torch.equal(out1, out2) and torch.equal(t1, t2)  # repeats under a seed
    if op.mixes_labels:
        assert torch.allclose(t1.sum(1), torch.ones(len(x)))
    else:
        assert torch.equal(t1, target)
    changed = [not torch.equal(out1[i], x[i]) for i in range(len(x))]
    assert any(changed)
    deltas = {round(float((out1[i].float() - x[i].float()).abs().sum()), 3) for i in range(len(x))}
    assert len(deltas) > 1  # per-sample randomness, not one transform for the whole batch


def test_crop_shifts_content_with_black_fill():
    x = torch.ones(8, 1, 8, 8)
    out, _ = build_augment("crop", {"padding": 2})(x, torch.zeros(8), torch.Generator().manual_seed(0))
    assert set(out.unique().tolist()) <= {0.0, 1.0}
    assert (out.sum((1, 2, 3)) >= 36).all()  # at most 2 rows and 2 columns shifted out


def test_flip_is_exact_mirror():
    x, y = batch()
    out, _ = build_augment("flip", {"p": 1.0})(x, y, torch.Generator())
    assert torch.equal(out, x.flip(3))


def test_shear_in_degrees_is_keras_shear_range():
    """Keras' shear_range is an angle in degrees: 0.2 means a factor of tan(0.2°) ≈ 0.0035."""
    assert build_augment("shear", {"degrees": 0.2}).factor == pytest.approx(0.0034907, rel=1e-4)
    assert build_augment("shear", {"degrees": 45}).factor == pytest.approx(1.0)
    assert build_augment("shear", {}).factor == 0.2
    with pytest.raises(ConfigError, match="factor or degrees, not both"):
        build_augment("shear", {"degrees": 10, "factor": 0.1})


def test_bad_parameters_name_the_field():
    with pytest.raises(ConfigError, match="crop has no parameter size"):
        build_augment("crop", {"size": 3})
    with pytest.raises(ConfigError, match="padding"):
        build_augment("crop", {"padding": -1})
    with pytest.raises(ConfigError, match="unknown augmentation 'blur'"):
        build_augment("blur", {})


def test_loader_is_reproducible_and_augments_on_the_fly():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 255, (50, 8, 8, 3), dtype=np.uint8)
    labels = np.arange(50) % 5
    pipe = build_pipeline(DataConfig(augment=["crop", "flip", "mixup"]).augment)

    def epoch(seed):
        loader = BatchLoader(images, labels, 16, mean=(0.5,) * 3, std=(0.25,) * 3, num_classes=5,
                             augment=pipe, shuffle=True, seed=seed)
        return [b for b in loader]

    a, b, c = epoch(1), epoch(1), epoch(2)
    assert len(a) == 4 and a[0][0].shape == (16, 3, 8, 8) and a[0][1].shape == (16, 5)
    assert all(torch.equal(x1, x2) and torch.equal(y1, y2) for (x1, y1), (x2, y2) in zip(a, b, strict=False))
    assert not torch.equal(a[0][0], c[0][0])


def test_loader_shards_one_permutation_across_processes():
    labels = np.arange(40)
    images = np.zeros((40, 4, 4, 1), np.uint8)
    seen = []
    for rank in range(2):
        loader = BatchLoader(images, labels, 8, mean=(0,), std=(1,), num_classes=40,
                             shuffle=True, seed=5, rank=rank, world=2)
        seen.append(torch.cat([y for _, y in loader]))
    assert len(seen[0]) == len(seen[1]) == 20
    assert sorted(torch.cat(seen).tolist()) == list(range(40))
