"""CIFAR-10 and CIFAR-100: the official python-pickle tarballs, or their extracted folders."""

from __future__ import annotations

import io
import pickle
from pathlib import Path
from typing import Any

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
    safe_extract_tar,
    verify_file,
)
from visionstudy.errors import DataError

# The only globals a CIFAR pickle needs; anything else (os.system, ...) is refused, so a damaged or
# hostile "--no-verify" copy cannot run code.
ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("copy_reg", "_reconstructor"),
    ("__builtin__", "object"),
    ("_codecs", "encode"),  # bytes in protocol-2 pickles written by Python 3
}


class _DataUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in ALLOWED_GLOBALS:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}")
        return super().find_class(module, name)


def load_pickle(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as f:
            data = _DataUnpickler(io.BufferedReader(f), encoding="bytes").load()
    except (pickle.UnpicklingError, EOFError, OSError, ValueError, TypeError, IndexError) as exc:
        raise DataError(f"{path}: not a readable CIFAR batch ({exc}); fetch it again") from None
    if not isinstance(data, dict):
        raise DataError(f"{path}: not a CIFAR batch (expected a dict)")
    return {k.decode() if isinstance(k, bytes) else k: v for k, v in data.items()}


def _names(values: list[Any]) -> list[str]:
    return [v.decode() if isinstance(v, bytes) else str(v) for v in values]


def _images(batch: dict[str, Any], path: Path) -> np.ndarray:
    data = np.asarray(batch.get("data"))
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072:
        raise DataError(f"{path}: 'data' is not N x 3072 bytes; is it the official file?")
    return data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)


class CifarSource(DatasetSource):
    image_shape = (3, 32, 32)
    archive: RemoteFile
    folder: str  # the folder the tarball extracts to
    members: tuple[tuple[str, str], ...]  # (file, md5) inside the folder; last one is the metadata

    def remote_files(self, cfg: DataConfig) -> list[RemoteFile]:
        return [self.archive]

    def find(self, cfg: DataConfig, roots: list[Path]) -> list[Path] | None:
        names = [m for m, _ in self.members]
        for folder in candidate_dirs(roots, (self.folder, *self.subdirs)):
            if all((folder / n).is_file() for n in names):
                return [folder / n for n in names]
        archive = find_file(self.archive.name, roots, self.subdirs)
        if archive is None:
            return None
        extracted = [cache_root() / "extracted" / self.name / self.folder / n for n in names]
        if not all(p.is_file() for p in extracted):
            if cfg.verify:
                verify_file(archive, self.archive)
            safe_extract_tar(archive, extracted[0].parent.parent)
            if not all(p.is_file() for p in extracted):
                raise DataError(f"{archive}: has no {self.folder}/ folder; is it the official archive?")
        return extracted

    def verify(self, cfg: DataConfig, paths: list[Path]) -> None:
        for path, (name, md5) in zip(paths, self.members, strict=True):
            verify_file(path, RemoteFile(name, self.archive.url, md5))


CIFAR10_MEMBERS = (
    ("data_batch_1", "c99cafc152244af753f735de768cd75f"),
    ("data_batch_2", "d4bba439e000b95fd0a9bffe97cbabec"),
    ("data_batch_3", "54ebc095f3ab1f0389bbae665268c751"),
    ("data_batch_4", "634d18415352ddfa80567beed471001a"),
    ("data_batch_5", "482c414d41f54cd18b22e5b47cb7c3cb"),
    ("test_batch", "40351d587109b95175f43aff81a1287e"),
    ("batches.meta", "5ff9c542aee3614f3951f8cda6e48888"),
)


@register_dataset
class Cifar10(CifarSource):
    name = "cifar10"
    description = "CIFAR-10 natural images, 32x32 RGB, 10 classes, 50k train / 10k test"
    subdirs = ("cifar10", "cifar-10", "CIFAR10")
    folder = "cifar-10-batches-py"
    members = CIFAR10_MEMBERS
    archive = RemoteFile(
        "cifar-10-python.tar.gz", "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
        "c58f30108f718f92721af3b95e74349a",
    )

    def known_class_count(self, cfg: DataConfig) -> int | None:
        return 10

    def decode(self, cfg: DataConfig, paths: list[Path]) -> RawDataset:
        batches = [load_pickle(p) for p in paths[:6]]
        xs = [_images(b, p) for b, p in zip(batches, paths, strict=False)]
        ys = [np.asarray(b.get("labels"), dtype=np.int64) for b in batches]
        train = Split(np.concatenate(xs[:5]), np.concatenate(ys[:5]))
        test = Split(xs[5], ys[5])
        names = _names(load_pickle(paths[6]).get("label_names", []))
        return RawDataset.of(self.name, train, test, names, paths)


@register_dataset
class Cifar100(CifarSource):
    name = "cifar100"
    options = ("label",)
    description = "CIFAR-100 natural images, 32x32 RGB, 100 fine / 20 coarse classes (label: coarse)"
    subdirs = ("cifar100", "cifar-100", "CIFAR100")
    folder = "cifar-100-python"
    members = (
        ("train", "16019d7e3df5f24257cddd939b257f8d"),
        ("test", "f0ef6b0ae62326f3e7ffdfab6717acfc"),
        ("meta", "7973b15100ade9c7d40fb424638fde48"),
    )
    archive = RemoteFile(
        "cifar-100-python.tar.gz", "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz",
        "eb9058c3a382ffc7106e4002c42a8d85",
    )

    def known_class_count(self, cfg: DataConfig) -> int | None:
        return 100 if cfg.label == "fine" else 20

    def decode(self, cfg: DataConfig, paths: list[Path]) -> RawDataset:
        key = f"{cfg.label}_labels"
        train_b, test_b = load_pickle(paths[0]), load_pickle(paths[1])
        train = Split(_images(train_b, paths[0]), np.asarray(train_b.get(key), dtype=np.int64))
        test = Split(_images(test_b, paths[1]), np.asarray(test_b.get(key), dtype=np.int64))
        names = _names(load_pickle(paths[2]).get(f"{cfg.label}_label_names", []))
        name = self.name if cfg.label == "fine" else "cifar100-coarse"
        return RawDataset.of(name, train, test, names, paths)
