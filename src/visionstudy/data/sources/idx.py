"""MNIST, Fashion-MNIST and EMNIST: the official IDX files, gzip-compressed."""

from __future__ import annotations

import gzip
import string
import zlib
from pathlib import Path

import numpy as np

from visionstudy.config import DataConfig
from visionstudy.data.base import (
    DatasetSource,
    RawDataset,
    Split,
    register_dataset,
)
from visionstudy.data.files import (
    RemoteFile,
    cache_root,
    candidate_dirs,
    find_file,
    safe_extract_zip,
    verify_file,
)
from visionstudy.errors import ConfigError, DataError

IDX_DTYPE = {0x08: np.uint8}
SPLIT_FILES = (
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
)


def read_idx(path: Path) -> np.ndarray:
    """Decode one IDX file (gzip-compressed or plain); any damage is a `DataError` naming the file."""
    try:
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rb") as f:
            blob = f.read()
    except (OSError, EOFError, zlib.error) as exc:
        raise DataError(f"{path}: truncated or corrupt ({exc}); delete it and fetch it again") from None
    if len(blob) < 4 or blob[0] != 0 or blob[1] != 0 or blob[2] not in IDX_DTYPE:
        raise DataError(f"{path}: not an IDX file of unsigned bytes; is it the official file?")
    ndim = blob[3]
    header = 4 + 4 * ndim
    dims = tuple(int.from_bytes(blob[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    if len(blob) != header + int(np.prod(dims)):
        raise DataError(
            f"{path}: holds {len(blob) - header} data bytes but its header declares {dims}; "
            "the file is truncated or damaged: fetch it again"
        )
    return np.frombuffer(blob, dtype=np.uint8, offset=header).reshape(dims)


def decode_idx_pair(images: Path, labels: Path, transpose: bool = False) -> Split:
    x = read_idx(images)
    y = read_idx(labels).astype(np.int64)
    if x.ndim != 3 or y.ndim != 1 or len(x) != len(y):
        raise DataError(f"{images}, {labels}: image and label files do not match ({x.shape}, {y.shape})")
    if transpose:  # EMNIST stores every image transposed
        x = x.transpose(0, 2, 1)
    return Split(np.ascontiguousarray(x[..., None]), y)


class IdxSource(DatasetSource):
    """The four official files of an MNIST-format dataset."""

    image_shape = (1, 28, 28)
    files: tuple[RemoteFile, ...] = ()
    classes: tuple[str, ...] = ()

    def known_class_count(self, cfg: DataConfig) -> int | None:
        return len(self.classes)

    def remote_files(self, cfg: DataConfig) -> list[RemoteFile]:
        return list(self.files)

    def find(self, cfg: DataConfig, roots: list[Path]) -> list[Path] | None:
        for folder in candidate_dirs(roots, self.subdirs):
            paths = [folder / r.name for r in self.files]
            if all(p.is_file() for p in paths):
                return paths
        return None

    def verify(self, cfg: DataConfig, paths: list[Path]) -> None:
        for path, remote in zip(paths, self.files, strict=True):
            verify_file(path, remote)

    def decode(self, cfg: DataConfig, paths: list[Path]) -> RawDataset:
        train = decode_idx_pair(paths[0], paths[1])
        test = decode_idx_pair(paths[2], paths[3])
        return RawDataset.of(self.name, train, test, list(self.classes), paths)


MNIST_URL = "https://ossci-datasets.s3.amazonaws.com/mnist/"
FASHION_URL = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"


@register_dataset
class MNIST(IdxSource):
    name = "mnist"
    description = "MNIST handwritten digits, 28x28 grayscale, 60k train / 10k test"
    subdirs = ("mnist", "MNIST", "MNIST/raw")
    classes = tuple(str(i) for i in range(10))
    files = tuple(
        RemoteFile(n, MNIST_URL + n, md5)
        for n, md5 in zip(SPLIT_FILES, (
            "f68b3c2dcbeaaa9fbdd348bbdeb94873", "d53e105ee54ea40749a09fcbcd1e9432",
            "9fb629c4189551a2d022fa330f9573f3", "ec29112dd5afa0611ce80d1b7f02629c",
        ), strict=True)
    )


@register_dataset
class FashionMNIST(IdxSource):
    name = "fashion_mnist"
    description = "Fashion-MNIST clothing, 28x28 grayscale, 60k train / 10k test"
    subdirs = ("fashion-mnist", "fashion_mnist", "FashionMNIST", "FashionMNIST/raw")
    classes = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
               "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
    files = tuple(
        RemoteFile(n, FASHION_URL + n, md5, sha)
        for n, md5, sha in zip(SPLIT_FILES, (
            "8d4fb7e6c68d591d4c3dfef9ec88bf0d", "25c81989df183df01b3e8a0aad5dffbe",
            "bef4ecab320f06d8554ea6380940ec79", "bb300cfdad3c16e7a12a480ee83cd310",
        ), (
            "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
            "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
            "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
            "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
        ), strict=True)
    )


# EMNIST: one official zip holding every split. Class names per split (label → name).
DIGITS = tuple(string.digits)
UPPER = tuple(string.ascii_uppercase)
EMNIST_CLASSES: dict[str, tuple[str, ...]] = {
    "balanced": DIGITS + UPPER + tuple("abdefghnqrt"),
    "bymerge": DIGITS + UPPER + tuple("abdefghnqrt"),
    "byclass": DIGITS + UPPER + tuple(string.ascii_lowercase),
    "letters": tuple(string.ascii_lowercase),  # labels 1..26 in the files, re-indexed to 0..25
    "digits": DIGITS,
    "mnist": DIGITS,
}
EMNIST_ZIP = RemoteFile(
    "gzip.zip", "https://biometrics.nist.gov/cs_links/EMNIST/gzip.zip",
    "58c8d27c78d21e728a6bc7b3cc06412e",
)


@register_dataset
class EMNIST(DatasetSource):
    name = "emnist"
    options = ("split",)
    image_shape = (1, 28, 28)
    description = "EMNIST handwritten characters (split: balanced|byclass|bymerge|letters|digits|mnist)"
    subdirs = ("emnist", "EMNIST", "EMNIST/raw", "gzip", "emnist/gzip")

    def known_class_count(self, cfg: DataConfig) -> int | None:
        return len(EMNIST_CLASSES[self.split_name(cfg)])

    def split_name(self, cfg: DataConfig) -> str:
        split = cfg.split or "balanced"
        if split not in EMNIST_CLASSES:
            raise ConfigError(
                f"data.split: unknown EMNIST split {split!r}; choose one of: "
                + ", ".join(EMNIST_CLASSES)
            )
        return split

    def file_names(self, cfg: DataConfig) -> list[str]:
        split = self.split_name(cfg)
        return [f"emnist-{split}-{n}" for n in SPLIT_FILES[:2]] + [
            f"emnist-{split}-{n.replace('t10k', 'test')}" for n in SPLIT_FILES[2:]
        ]

    def remote_files(self, cfg: DataConfig) -> list[RemoteFile]:
        return [EMNIST_ZIP]

    def find(self, cfg: DataConfig, roots: list[Path]) -> list[Path] | None:
        names = self.file_names(cfg)
        for folder in candidate_dirs(roots, self.subdirs):
            if all((folder / n).is_file() for n in names):
                return [folder / n for n in names]
        archive = find_file("gzip.zip", roots, self.subdirs) or find_file(
            "emnist.zip", roots, self.subdirs
        )
        if archive is None:
            return None
        extracted = [cache_root() / "extracted" / "emnist" / n for n in names]
        if not all(p.is_file() for p in extracted):
            if cfg.verify:
                verify_file(archive, EMNIST_ZIP)
            safe_extract_zip(archive, names, extracted[0].parent)
        return extracted

    def verify(self, cfg: DataConfig, paths: list[Path]) -> None:
        """The split files have no published checksums: gzip CRCs and IDX headers are checked
        when decoding, and the zip's official md5 before extraction."""

    def decode(self, cfg: DataConfig, paths: list[Path]) -> RawDataset:
        split = self.split_name(cfg)
        train = decode_idx_pair(paths[0], paths[1], transpose=True)
        test = decode_idx_pair(paths[2], paths[3], transpose=True)
        if split == "letters":
            train.labels -= 1
            test.labels -= 1
        classes = list(EMNIST_CLASSES[split])
        for s, path in ((train, paths[1]), (test, paths[3])):
            if len(s) and (s.labels.min() < 0 or s.labels.max() >= len(classes)):
                raise DataError(f"{path}: labels outside 0..{len(classes) - 1} for split {split!r}")
        return RawDataset.of(f"emnist-{split}", train, test, classes, paths)
