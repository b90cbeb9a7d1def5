"""scikit-learn's embedded 8x8 digits: the offline default, no files needed."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from visionstudy.config import DataConfig
from visionstudy.data.base import (
    DatasetSource,
    RawDataset,
    Split,
    arrays_checksum,
    register_dataset,
)

TEST_FRACTION = 0.25  # digits has no official test split; a fixed stratified quarter is held out
TEST_SEED = 1797  # fixed, so every run and every study sees the same test images


@register_dataset
class Digits(DatasetSource):
    name = "digits"
    image_shape = (1, 8, 8)
    description = "scikit-learn's embedded handwritten digits, 8x8 grayscale, 1,797 images"

    def known_class_count(self, cfg: DataConfig) -> int | None:
        return 10

    def find(self, cfg: DataConfig, roots: list[Path]) -> list[Path] | None:
        """scikit-learn's own copy of the file, found without importing scikit-learn: the
        decoded arrays and the fixed split are then cached like any dataset's, keyed by its stats."""
        from importlib.util import find_spec

        spec = find_spec("sklearn")
        if spec is None or spec.origin is None:
            return []
        csv = Path(spec.origin).parent / "datasets" / "data" / "digits.csv.gz"
        return [csv] if csv.is_file() else []

    def decode(self, cfg: DataConfig, paths: list[Path]) -> RawDataset:
        from sklearn.datasets import load_digits
        from sklearn.model_selection import train_test_split

        bunch = load_digits()
        # pixel values are 0..16: scale to the 0..255 bytes every other source gives
        images = np.round(bunch.images * (255 / 16)).astype(np.uint8)[..., None]
        labels = bunch.target.astype(np.int64)
        tr, te = train_test_split(
            np.arange(len(labels)), test_size=TEST_FRACTION, stratify=labels, random_state=TEST_SEED
        )
        train, test = Split(images[tr], labels[tr]), Split(images[te], labels[te])
        return RawDataset(
            name=self.name, train=train, test=test, class_names=[str(i) for i in range(10)],
            checksum=arrays_checksum(images, labels),
        )
