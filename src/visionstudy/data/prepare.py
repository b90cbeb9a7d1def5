"""From a raw dataset to what training needs: class subset, train/val split or fold, normalisation."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from visionstudy.config import ChannelStats, DataConfig
from visionstudy.data.base import RawDataset, Split, load_raw
from visionstudy.errors import ConfigError, DataError

log = logging.getLogger(__name__)


@dataclass
class PreparedData:
    """The three splits of one run, with the class names and the normalisation to apply."""

    name: str
    train: Split
    val: Split
    test: Split
    class_names: list[str]
    mean: tuple[float, ...]  # per channel, in 0..1 units, from the training split only
    std: tuple[float, ...]
    checksum: str
    files: list[Path] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)  # class folders without image files (imagefolder)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(channels, height, width)"""
        _, h, w, c = self.train.images.shape
        return c, h, w

    def __repr__(self) -> str:  # not every pixel (the dataclass's repr printed the arrays)
        from visionstudy.config import few

        sizes = ", ".join(f"{name} {len(getattr(self, name)):,}" for name in ("train", "val", "test"))
        shape = " x ".join(map(str, self.image_shape))
        return (f"PreparedData({self.name!r}: {sizes} images of {shape} (C x H x W); "
                f"{self.num_classes} classes: {few(self.class_names, 5)})")


def select_classes(raw: RawDataset, spec: str | list[str] | None) -> RawDataset:
    """Keep a subset of classes ('first:N' or names), re-indexed 0..K-1 in the given order."""
    if spec is None:
        return raw
    if isinstance(spec, str):
        kind, _, n = spec.partition(":")
        if kind != "first" or not n.isdigit() or not 2 <= int(n) <= len(raw.class_names):
            raise ConfigError(
                f"data.classes: {spec!r} is not understood; use 'first:N' with 2 <= N <= "
                f"{len(raw.class_names)}, or a list of class names"
            )
        keep = list(range(int(n)))
    else:
        unknown = [c for c in spec if c not in raw.class_names]
        if unknown:
            raise ConfigError(
                f"data.classes: unknown class names {unknown}; {raw.name} has: "
                + ", ".join(raw.class_names)
            )
        if len(set(spec)) < 2 or len(set(spec)) != len(spec):
            raise ConfigError("data.classes: give at least two distinct class names")
        keep = [raw.class_names.index(c) for c in spec]
    remap = np.full(len(raw.class_names), -1, dtype=np.int64)
    remap[keep] = np.arange(len(keep))

    def subset(split: Split) -> Split:
        mask = np.isin(split.labels, keep)
        return Split(split.images[mask], remap[split.labels[mask]])

    return RawDataset(
        name=raw.name, train=subset(raw.train), test=subset(raw.test),
        val=subset(raw.val) if raw.val is not None else None,
        class_names=[raw.class_names[i] for i in keep], files=raw.files,
        checksum=raw.checksum, skipped=raw.skipped, ignored=raw.ignored,
    )


def class_name(c: int, names: Sequence[str] | None) -> str:
    """A class as errors name it: its index, and its name where known and other ("1 ('cat')")."""
    named = names is not None and c < len(names) and str(names[c]) != str(c)
    return f"{c} ({names[c]!r})" if named and names is not None else str(c)


def stratified_split(
    labels: np.ndarray, fraction: float, seed: int, setting: str | None = None,
    names: Sequence[str] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(kept, held-out) indices; each class contributes round(fraction * its count) to held-out.

    Exact per class, so every class is in both parts; a class too small for that is an error
    naming `setting` as the user wrote it (default: data.val_fraction=FRACTION) and the class
    (by its name in `names`).
    """
    setting = setting or f"data.val_fraction={fraction}"
    rng = np.random.default_rng(seed)
    kept, held = [], []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        n_held = int(round(fraction * len(idx)))
        if n_held < 1 or n_held >= len(idx):
            raise DataError(
                f"{setting}: class {class_name(int(c), names)} has {len(idx)} samples, too few to keep "
                "some on both sides "
                "of the split; use another value or drop the class (data.classes)"
            )
        idx = rng.permutation(idx)
        held.append(idx[:n_held])
        kept.append(idx[n_held:])
    return np.sort(np.concatenate(kept)), np.sort(np.concatenate(held))


def kfold_indices(labels: np.ndarray, folds: int, seed: int,
                  names: Sequence[str] | None = None) -> list[tuple[np.ndarray, np.ndarray]]:
    """Deterministic stratified k-fold: [(train, val)] per fold; the vals are disjoint and cover."""
    from sklearn.model_selection import StratifiedKFold

    counts = np.bincount(labels)
    small = [int(c) for c in np.flatnonzero((counts > 0) & (counts < folds))]
    if small:
        listed = ", ".join(f"{names[c]!r}: {counts[c]}" if names is not None and c < len(names) else
                           f"{c}: {counts[c]}" for c in small[:8])  # the classes by name, after their indices
        listed += f" and {len(small) - 8} more" if len(small) > 8 else ""
        least = int(counts[small].min())
        fix = f"at most {least} folds" if least >= 2 else "fewer folds, or drop the class (data.classes)"
        raise DataError(
            f"data.folds={folds} (a study's cv.folds): classes {small} have fewer than {folds} training "
            f"samples ({listed}); use {fix}"
        )
    kf = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    return [(np.sort(tr), np.sort(va)) for tr, va in kf.split(np.zeros(len(labels)), labels)]


def channel_stats(images: np.ndarray, chunk: int = 8192) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and std of uint8 (N, H, W, C) images, in 0..1 units."""
    c = images.shape[-1]
    total = np.zeros(c)
    total_sq = np.zeros(c)
    for i in range(0, len(images), chunk):
        block = images[i : i + chunk].reshape(-1, c).astype(np.float64) / 255.0
        total += block.sum(0)
        total_sq += (block**2).sum(0)
    n = images.size // c
    mean = total / n
    std = np.sqrt(np.maximum(total_sq / n - mean**2, 1e-12))
    return tuple(float(m) for m in mean), tuple(float(s) for s in std)


def split_train_val(raw: RawDataset, cfg: DataConfig) -> tuple[Split, Split]:
    """(train, validation): a fold, the test set (`validation: test`), nothing (`val_fraction: 0`),
    the dataset's own validation split, or a stratified share of the training split."""
    if cfg.validates_on == "test":
        return raw.train, raw.test
    if cfg.validates_on == "none":
        if raw.val is not None and len(raw.val):
            log.warning("data.val_fraction: 0 trains without validation; the dataset's own "
                        "validation split (%d images) is not used", len(raw.val))
        return raw.train, raw.train.take(np.zeros(0, dtype=np.int64))
    if problem := cfg.fold_problem():
        raise ConfigError(problem)
    if cfg.folds is not None and cfg.fold is not None:
        tr, va = kfold_indices(raw.train.labels, cfg.folds, cfg.split_seed, raw.class_names)[cfg.fold]
        return raw.train.take(tr), raw.train.take(va)
    if raw.val is not None and len(raw.val):
        return raw.train, raw.val
    tr, va = stratified_split(raw.train.labels, cfg.val_fraction, cfg.split_seed, names=raw.class_names)
    return raw.train.take(tr), raw.train.take(va)


def prepare(cfg: DataConfig, cli_dir: Path | None = None) -> PreparedData:
    raw = select_classes(load_raw(cfg, cli_dir), cfg.classes)
    train, val = split_train_val(raw, cfg)
    if cfg.max_train_samples is not None and cfg.max_train_samples < len(train):
        classes = len(np.unique(train.labels))
        if cfg.max_train_samples < classes:
            raise DataError(f"data.max_train_samples={cfg.max_train_samples}: fewer than one image for each "
                            f"of the {classes} classes; give at least {classes}")
        drop = 1 - cfg.max_train_samples / len(train)
        keep, _ = stratified_split(train.labels, drop, cfg.split_seed,
                                   f"data.max_train_samples={cfg.max_train_samples}", raw.class_names)
        train = train.take(keep)
    mean, std = normalisation(cfg, train.images)
    return PreparedData(
        name=raw.name, train=train, val=val, test=raw.test, class_names=raw.class_names,
        mean=mean, std=std, checksum=raw.checksum, files=raw.files, skipped=raw.skipped, ignored=raw.ignored,
    )


def normalisation(cfg: DataConfig, train_images: np.ndarray) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """The (mean, std) per channel the loaders normalise with, as `data.normalize` says."""
    c = train_images.shape[-1]
    if isinstance(cfg.normalize, ChannelStats):  # checked here too: a folder's channels show when read
        return cfg.normalize.for_channels(c, cfg.dataset)
    return channel_stats(train_images) if cfg.normalize else ((0.0,) * c, (1.0,) * c)
