"""What the peer scripts share: the Fashion-MNIST files and the model they are all given.

Each peer builds the *same* network as our config (`--model` is the config's `model:` block as
JSON, every field given: `channels`, `hidden`, `kernel_size`, `batch_norm`, `dropout`,
`conv_dropout`; bench/race.py's `peer_model` refuses what peers do not build), written the way its
framework's users write one, so that the race compares training pipelines, not models.
"""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import numpy as np

FILES = {"train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
         "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")}


def mirror() -> Path:
    """The Debian mirror's folder (apt-get install dataset-fashion-mnist)."""
    return Path(os.environ.get("VISIONSTUDY_DATA_DIR", "/usr/share/datasets")) / "fashion-mnist"


def read_idx(path: Path) -> np.ndarray:
    """An idx file as Keras' `fashion_mnist.load_data` reads it (uint8; images N×28×28)."""
    with gzip.open(path, "rb") as f:
        raw = f.read()
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(raw, np.uint8, offset=4 + 4 * ndim).reshape(dims)


def load_numpy(split: str) -> tuple[np.ndarray, np.ndarray]:
    images, labels = FILES[split]
    return read_idx(mirror() / images), read_idx(mirror() / labels)


def torchvision_root(tmp: Path) -> Path:
    """A folder laid out as torchvision.datasets.FashionMNIST expects (raw/ idx files), made
    offline from the mirror: what `download=True` would have left there."""
    raw = tmp / "FashionMNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for pair in FILES.values():
        for name in pair:
            with gzip.open(mirror() / name, "rb") as src:
                (raw / name.removesuffix(".gz")).write_bytes(src.read())
    return tmp


def stages(spec: dict) -> list[list[int]]:
    return [c if isinstance(c, list) else [c] for c in spec["channels"]]
