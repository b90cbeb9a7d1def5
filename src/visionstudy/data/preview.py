"""A labelled grid of sample images, plain or augmented, to see what the model will see."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from visionstudy.data.augment import Pipeline
from visionstudy.data.loader import BatchLoader
from visionstudy.data.prepare import PreparedData

PREVIEW_TAG = "visionstudy datasets preview"  # the PNG's Software field: our own file to replace


def is_preview(path: Path) -> bool:
    from PIL import Image

    try:
        with Image.open(path) as im:
            return im.info.get("Software") == PREVIEW_TAG
    except (OSError, ValueError):
        return False


SPLITS = ("train", "val", "test")


def sample_grid(
    data: PreparedData, augment: Pipeline | None, count: int = 32, seed: int = 0, split: str = "train"
) -> tuple[np.ndarray, list[str]]:
    """`count` seeded random images of `split` (train, val, test) as (N, H, W, C) floats in 0..1,
    after augmentation (training images only: a test image is shown as the model is tested on it),
    and their titles."""
    from visionstudy.errors import DataError

    part = getattr(data, split)
    if not len(part):
        raise DataError(f"--from {split}: the {data.name} dataset as configured has no {split} images")
    rng = np.random.default_rng(seed)
    idx = rng.choice(len(part), size=min(count, len(part)), replace=False)
    loader = BatchLoader(
        part.images[idx], part.labels[idx], len(idx), mean=data.mean, std=data.std,
        num_classes=data.num_classes, augment=augment if split == "train" else None, seed=seed,
    )
    x, target = next(iter(loader))
    mean = torch.tensor(data.mean).view(1, -1, 1, 1)
    std = torch.tensor(data.std).view(1, -1, 1, 1)
    images = (x * std + mean).clamp(0, 1).permute(0, 2, 3, 1).numpy()
    labels = target.argmax(1) if target.ndim == 2 else target
    return images, [data.class_names[int(i)] for i in labels]
