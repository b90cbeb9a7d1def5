"""A user's own images: one subfolder per class, optionally under train/, val/ and test/."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from visionstudy.config import DataConfig, few
from visionstudy.data.base import (
    DatasetSource,
    RawDataset,
    Split,
    arrays_checksum,
    register_dataset,
    warn_ignored,
)
from visionstudy.data.images import image_files, read_image
from visionstudy.errors import ConfigError, DataError

log = logging.getLogger(__name__)

DEFAULT_SIZE = 32  # side length when data.image_size is not given
SPLIT_DIRS = {"train": ("train",), "val": ("val", "valid", "validation"), "test": ("test",)}


def split_folders(root: Path) -> dict[str, Path]:
    """{'train': ..., 'val': ..., 'test': ...} where present; a flat layout is all 'train'."""
    found = {}
    for split, names in SPLIT_DIRS.items():
        for name in names:
            if (root / name).is_dir():
                found[split] = root / name
                break
    if "train" not in found:
        return {"train": root}
    return found


def class_folders(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def list_images(folder: Path) -> list[tuple[Path, str]]:
    """(file, class name) for every file with an image extension, in a stable order."""
    return [(f, class_dir.name) for class_dir in class_folders(folder) for f in image_files(class_dir)]


@register_dataset
class ImageFolder(DatasetSource):
    name = "imagefolder"
    options = ("path", "image_size", "channels", "test_fraction")
    description = "your own images: data.path with one subfolder per class (optional train/val/test)"

    def shape_of(self, cfg: DataConfig) -> tuple[int, int, int]:
        size = cfg.image_size or DEFAULT_SIZE
        return (cfg.channels or 3, size, size)

    def root(self, cfg: DataConfig) -> Path:
        if cfg.path is None:
            raise ConfigError("data.path: imagefolder needs the folder of class subfolders")
        if not cfg.path.is_dir():
            raise DataError(f"data.path: {cfg.path} is not a folder")
        return cfg.path

    def find(self, cfg: DataConfig, roots: list[Path]) -> list[Path] | None:
        root = self.root(cfg)
        return [f for folder in split_folders(root).values() for f, _ in list_images(folder)]

    def cache_options(self, cfg: DataConfig) -> dict[str, object]:
        return {"path": str(cfg.path), "size": cfg.image_size, "channels": cfg.channels,
                "test_fraction": cfg.test_fraction, "seed": cfg.split_seed}

    def decode(self, cfg: DataConfig, paths: list[Path]) -> RawDataset:
        root = self.root(cfg)
        size, channels = cfg.image_size or DEFAULT_SIZE, cfg.channels or 3
        folders = split_folders(root)
        class_names = sorted({c for _, c in list_images(folders["train"])})
        no_images = [str(p) for p in class_folders(folders["train"]) if p.name not in class_names]
        if no_images:  # e.g. .heic or .avif files only: the folder is not a class
            warn_ignored(no_images)
        if len(class_names) < 2:
            raise DataError(f"{folders['train']}: needs at least two class subfolders with images")
        skipped: list[tuple[str, str]] = []
        splits: dict[str, Split] = {}
        for split, folder in folders.items():
            xs, ys = [], []
            for f, cls in list_images(folder):
                if cls not in class_names:
                    raise DataError(f"{f}: class {cls!r} is not among the training classes "
                                    f"({few(class_names, 8)} in {folders['train']}); every class of "
                                    f"{split} needs images in the training folder too")
                try:
                    xs.append(read_image(f, (size, size), channels))
                    ys.append(class_names.index(cls))
                except ValueError as exc:
                    skipped.append((str(f), str(exc)))
                    log.warning("skipping %s: %s", f, exc)
            images = np.stack(xs) if xs else np.zeros((0, size, size, channels), np.uint8)
            splits[split] = Split(images, np.asarray(ys, dtype=np.int64))
        if len(splits["train"]) == 0:
            raise DataError(f"{folders['train']}: no readable images")
        unread = [c for i, c in enumerate(class_names) if not (splits["train"].labels == i).any()]
        if unread:
            raise DataError(f"{folders['train']}: no readable image in class folder {', '.join(unread)} "
                            "(each was skipped, see the warnings); fix or remove its images")
        if "test" not in splits:
            splits["train"], splits["test"] = _hold_out(splits["train"], cfg, class_names)
        t = splits["train"]
        return RawDataset(
            name=f"imagefolder:{root.name}", train=t, test=splits["test"], val=splits.get("val"),
            class_names=class_names, files=[root], skipped=skipped, ignored=no_images,
            checksum=arrays_checksum(t.images, t.labels, splits["test"].images),
        )


def _hold_out(split: Split, cfg: DataConfig, names: list[str]) -> tuple[Split, Split]:
    from visionstudy.data.prepare import stratified_split

    keep, test = stratified_split(split.labels, cfg.test_fraction, cfg.split_seed,
                                  f"data.test_fraction={cfg.test_fraction}", names)
    return split.take(keep), split.take(test)
