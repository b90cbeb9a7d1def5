"""The dataset contract: a source finds its files, verifies them and decodes them to uint8 arrays.

`load_raw` adds what every source shares: where to look, downloading when allowed, and a cache of the
decoded arrays so that a second run starts in about a second.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from visionstudy.config import DataConfig
from visionstudy.data.files import (
    RemoteFile,
    cache_root,
    download,
    download_dir,
    download_url,
    search_roots,
    warn_unverified,
)
from visionstudy.errors import DataError
from visionstudy.registry import Registry

log = logging.getLogger(__name__)

CACHE_VERSION = 3  # bump when decoding changes, so stale caches are ignored (3: ignored class folders)


@dataclass
class Split:
    """Images as uint8 (N, H, W, C) and integer labels (N,)."""

    images: np.ndarray
    labels: np.ndarray

    def __len__(self) -> int:
        return len(self.labels)

    def __repr__(self) -> str:  # not every pixel: a notebook shows it whole
        n, *shape = self.images.shape
        return f"Split({n:,} images of {' x '.join(map(str, shape))} (H x W x C), uint8, with their labels)"

    def take(self, index: np.ndarray) -> Split:
        return Split(self.images[index], self.labels[index])


@dataclass
class RawDataset:
    """A dataset as its source gives it: official splits, class names, where it came from."""

    name: str
    train: Split
    test: Split
    class_names: list[str]
    val: Split | None = None  # only sources with an official validation split
    files: list[Path] = field(default_factory=list)
    checksum: str = ""  # md5 over the decoded arrays: the same data give the same checksum
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (file, reason) not loaded
    ignored: list[str] = field(default_factory=list)  # image folders' class folders without image files

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(channels, height, width)"""
        _, h, w, c = self.train.images.shape
        return c, h, w

    @classmethod
    def of(cls, name: str, train: Split, test: Split, class_names: list[str],
           files: list[Path]) -> RawDataset:
        """A dataset whose checksum is computed over its decoded arrays."""
        checksum = arrays_checksum(train.images, train.labels, test.images, test.labels)
        return cls(name=name, train=train, test=test, class_names=class_names, files=files,
                   checksum=checksum)


class DatasetSource(ABC):
    """A dataset kind. Subclasses set `name`, `description`, and implement `find` and `decode`."""

    name: ClassVar[str]
    description: ClassVar[str]
    subdirs: ClassVar[tuple[str, ...]] = ()  # folder names a data root may hold it under
    task: ClassVar[str] = "classification"  # what runs on it optimise (`visionstudy.tasks`)
    image_shape: ClassVar[tuple[int, int, int] | None] = None  # (C, H, W) when known without the files
    options: ClassVar[tuple[str, ...]] = ()  # the dataset-specific `data` fields it reads (EMNIST's split)

    def shape_of(self, cfg: DataConfig) -> tuple[int, int, int] | None:
        """(channels, height, width) of its images before reading any file, when known: lets
        validation build every model of a study for the data's shape (a kernel or a pooling that
        shrinks the input to nothing is an error before anything trains)."""
        return self.image_shape

    def class_count(self, cfg: DataConfig) -> int | None:
        """How many classes its runs learn (after `data.classes`), when known without the files:
        `recipes show --runs` counts each model's parameters with it."""
        if isinstance(cfg.classes, list):
            return len(cfg.classes)
        if isinstance(cfg.classes, str):
            kind, _, n = cfg.classes.partition(":")
            return int(n) if kind == "first" and n.isdigit() else None
        return self.known_class_count(cfg)

    def known_class_count(self, cfg: DataConfig) -> int | None:
        """The dataset's own number of classes when fixed (None: read from its files)."""
        return None

    def model_io(self, cfg: DataConfig) -> tuple[int, int, tuple[int, int]] | None:
        """What its runs' models are built for, known without the files: (input channels or
        features, outputs, input shape) as `create_model` takes them; None when the files tell."""
        shape, classes = self.shape_of(cfg), self.class_count(cfg)
        if shape is None or classes is None:
            return None
        return shape[0], classes, (shape[1], shape[2])

    def remote_files(self, cfg: DataConfig) -> list[RemoteFile]:
        """The official files to download; empty for sources that cannot be downloaded."""
        return []

    @abstractmethod
    def find(self, cfg: DataConfig, roots: list[Path]) -> list[Path] | None:
        """The local files this dataset needs, or None when some are not there."""

    def verify(self, cfg: DataConfig, paths: list[Path]) -> None:  # noqa: B027 (optional hook)
        """Raise a `DataError` unless the files are the official ones (checksums by default)."""

    @abstractmethod
    def decode(self, cfg: DataConfig, paths: list[Path]) -> RawDataset:
        """Read the files into arrays; raise a `DataError` naming a damaged file."""

    def cache_options(self, cfg: DataConfig) -> dict[str, object]:
        """The config fields that change what `decode` returns."""
        return {"split": cfg.split, "label": cfg.label}


DATASETS: Registry[DatasetSource] = Registry("dataset")


def register_dataset(cls: type[DatasetSource]) -> type[DatasetSource]:
    DATASETS.add(cls.name, cls())
    return cls


def unused_options(cfg: DataConfig) -> list[str]:
    """A dataset-specific `data` field (another source's `options`) set away from its default for
    a dataset that does not read it: `split: val` on digits, `label: coarse` on CIFAR-10 were
    silently ignored."""
    source = get_source(cfg.dataset)
    owners: dict[str, list[str]] = {}
    for name in DATASETS.names():
        for option in DATASETS.get(name).options:
            owners.setdefault(option, []).append(name)
    out = []
    for option, names in owners.items():
        default = DataConfig.model_fields[option].get_default(call_default_factory=True)
        if option not in source.options and getattr(cfg, option) != default:
            does = "does" if len(names) == 1 else "do"
            out.append(f"data.{option}: dataset {cfg.dataset} does not read it (only {' and '.join(names)} "
                       f"{does}); leave it out")
    return out


def data_config(name: str, **fields: Any) -> DataConfig:
    """The `data` section of a run from a dataset name and its keys, as `datasets` commands and
    `vs.load_dataset` take them: validated, and a key the dataset does not read refused (`path` on
    digits read the digits, saying nothing)."""
    from pydantic import ValidationError

    from visionstudy.config import format_validation_error
    from visionstudy.errors import ConfigError

    try:
        cfg = DataConfig(dataset=name, **fields)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, "data", DataConfig)) from None
    refused = unused_options(cfg)
    if refused:
        raise ConfigError(refused[0])
    return cfg


def list_datasets() -> list[str]:
    return DATASETS.names()


def get_source(name: str) -> DatasetSource:
    return DATASETS.get(name, "data.dataset")


def arrays_checksum(*arrays: np.ndarray) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    for a in arrays:
        digest.update(np.ascontiguousarray(a).data)
    return digest.hexdigest()


def fetch(cfg: DataConfig, cli_dir: Path | None = None, found: list[Path] | None = None) -> list[Path]:
    """Make sure the files are present (download them if needed) and verified; return them.

    `found`: what `source.find` already returned, so the search is not done twice.
    """
    source = get_source(cfg.dataset)
    roots = search_roots(cfg.data_dir, cli_dir)
    paths = found if found is not None else source.find(cfg, roots)
    if paths is None:
        remotes = source.remote_files(cfg)
        if not remotes or not cfg.download:
            raise missing_error(source, cfg, roots)
        target = download_dir(source.name, cfg.data_dir, cli_dir)
        for remote in remotes:
            download(remote, target, cfg.verify)
        paths = source.find(cfg, [target])
        if paths is None:
            raise missing_error(source, cfg, [target])
    if cfg.verify:
        source.verify(cfg, paths)
    else:
        for p in paths:
            warn_unverified(p)
    return paths


def as_loaded(cfg: DataConfig) -> DataConfig:
    """The data as loaded from its files, before a run augments it or takes its fold: runs that
    differ only there share one load (and one look for the files)."""
    return cfg.model_copy(update={"augment": [], "folds": None, "fold": None})


def not_on_disk(cfg: DataConfig, cli_dir: Path | None = None) -> str | None:
    """What a run would do for files not on disk, without downloading: None when they are there;
    else that it downloads them first (which files, from where, into which folder), or, where it
    cannot, the error it would stop with."""
    source = get_source(cfg.dataset)
    roots = search_roots(cfg.data_dir, cli_dir)
    if source.find(cfg, roots) is not None:
        return None
    remotes = source.remote_files(cfg)
    if not remotes or not cfg.download:
        return str(missing_error(source, cfg, roots))
    target = download_dir(source.name, cfg.data_dir, cli_dir)
    site = download_url(remotes[0]).rsplit("/", 1)[0]
    return (f"dataset {cfg.dataset!r}: not on disk (looked in {', '.join(map(str, roots))}); the first run "
            f"downloads {', '.join(r.name for r in remotes)} from {site} "
            f"into {target} (without internet, put the files in a folder and pass --data-dir FOLDER)")


def missing_error(source: DatasetSource, cfg: DataConfig, roots: list[Path]) -> DataError:
    names = ", ".join(r.name for r in source.remote_files(cfg)) or "the dataset files"
    looked = ", ".join(str(r) for r in roots)
    how = (
        "enable downloads (data.download: true) or " if source.remote_files(cfg) else ""
    ) + "put the official files in a folder and pass --data-dir FOLDER (or set VISIONSTUDY_DATA_DIR)"
    return DataError(f"dataset {cfg.dataset!r}: {names} not found (looked in {looked}); {how}")


def _cache_key(source: DatasetSource, cfg: DataConfig, paths: list[Path]) -> str:
    stats = [(str(p.resolve()), p.stat().st_size, p.stat().st_mtime_ns) for p in paths]
    blob = json.dumps(
        [CACHE_VERSION, source.name, source.cache_options(cfg), cfg.verify, stats], default=str
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:24]


def load_raw(cfg: DataConfig, cli_dir: Path | None = None, use_cache: bool = True) -> RawDataset:
    """Find, verify and decode a dataset; decoded arrays are cached keyed by the files' stats."""
    source = get_source(cfg.dataset)
    roots = search_roots(cfg.data_dir, cli_dir)
    paths = source.find(cfg, roots)
    cache = cache_root() / "decoded"
    if paths is not None and use_cache and paths:
        key = _cache_key(source, cfg, paths)
        hit = _read_cache(cache / key)
        if hit is not None:
            if hit.ignored:  # said when decoded; said again by every run that reads the cache
                warn_ignored(hit.ignored)
            return hit
    paths = fetch(cfg, cli_dir, found=paths)
    raw = source.decode(cfg, paths)
    if use_cache and paths:
        _write_cache(cache / _cache_key(source, cfg, paths), raw)
    return raw


def warn_ignored(folders: list[str]) -> None:
    """Class folders of an image folder that hold no image file are not classes: said each time."""
    from visionstudy.data.images import EXTENSION_NAMES

    log.warning("%s %s no %s files; %s", ", ".join(folders), "holds" if len(folders) == 1 else "hold",
                EXTENSION_NAMES, "it is not a class" if len(folders) == 1 else "they are not classes")


def _read_cache(folder: Path) -> RawDataset | None:
    try:
        meta = json.loads((folder / "meta.json").read_text())
        arrays = {k: np.load(folder / f"{k}.npy") for k in meta["arrays"]}
    except (OSError, ValueError, KeyError):
        return None
    val = Split(arrays["val_images"], arrays["val_labels"]) if "val_images" in arrays else None
    return RawDataset(
        name=meta["name"],
        train=Split(arrays["train_images"], arrays["train_labels"]),
        test=Split(arrays["test_images"], arrays["test_labels"]),
        val=val,
        class_names=meta["class_names"],
        files=[Path(p) for p in meta["files"]],
        checksum=meta["checksum"],
        skipped=[(str(s[0]), str(s[1])) for s in meta["skipped"]],
        ignored=[str(f) for f in meta.get("ignored", [])],
    )


def _write_cache(folder: Path, raw: RawDataset) -> None:
    """Write into a temporary folder and rename: a crash never leaves a half cache."""
    arrays = {"train_images": raw.train.images, "train_labels": raw.train.labels,
              "test_images": raw.test.images, "test_labels": raw.test.labels}
    if raw.val is not None:
        arrays |= {"val_images": raw.val.images, "val_labels": raw.val.labels}
    meta = {"name": raw.name, "class_names": raw.class_names, "arrays": list(arrays),
            "files": [str(p) for p in raw.files], "checksum": raw.checksum, "skipped": raw.skipped,
            "ignored": raw.ignored}
    tmp: Path | None = None
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=folder.parent, prefix=".partial-"))
        for k, a in arrays.items():
            np.save(tmp / f"{k}.npy", a)
        (tmp / "meta.json").write_text(json.dumps(meta))
        os.rename(tmp, folder)  # fails if another process cached it first: theirs is as good
        tmp = None
    except OSError:
        pass  # a read-only or full home only costs speed
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
