"""Class subsets, exact stratified splits, k-folds and normalisation."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from visionstudy.config import DataConfig
from visionstudy.data import channel_stats, kfold_indices, prepare, stratified_split
from visionstudy.errors import ConfigError, DataError


@settings(max_examples=30, deadline=None)
@given(st.lists(st.integers(5, 40), min_size=2, max_size=6), st.floats(0.15, 0.5), st.integers(0, 99))
def test_stratified_split_is_exact_per_class(counts, fraction, seed):
    labels = np.repeat(np.arange(len(counts)), counts)
    kept, held = stratified_split(labels, fraction, seed)
    assert len(np.intersect1d(kept, held)) == 0 and len(kept) + len(held) == len(labels)
    for c, n in enumerate(counts):
        assert (labels[held] == c).sum() == round(fraction * n)


def test_split_is_reproducible_and_seed_dependent():
    labels = np.arange(100) % 4
    assert np.array_equal(stratified_split(labels, 0.2, 1)[1], stratified_split(labels, 0.2, 1)[1])
    assert not np.array_equal(stratified_split(labels, 0.2, 1)[1], stratified_split(labels, 0.2, 2)[1])


def test_too_small_class_is_a_clear_error():
    with pytest.raises(DataError, match="class 1 has 1 samples"):
        stratified_split(np.array([0, 0, 0, 0, 1]), 0.2, 0)


def test_kfolds_are_disjoint_cover_and_stratified():
    labels = np.repeat(np.arange(3), [20, 30, 50])
    folds = kfold_indices(labels, 5, seed=0)
    vals = np.concatenate([va for _, va in folds])
    assert sorted(vals) == list(range(100))
    for tr, va in folds:
        assert len(np.intersect1d(tr, va)) == 0 and len(tr) + len(va) == 100
        assert np.bincount(labels[va]).tolist() == [4, 6, 10]
    again = kfold_indices(labels, 5, seed=0)
    assert all(np.array_equal(a[1], b[1]) for a, b in zip(folds, again, strict=True))


def test_kfold_needs_enough_samples_per_class():
    """The classes too small are also named as the data names them ('cat'), with their counts."""
    with pytest.raises(DataError, match=r"classes \[1\] have fewer than 5 training samples \(1: 3\); use "):
        kfold_indices(np.array([0] * 10 + [1] * 3), 5, 0)
    with pytest.raises(DataError, match=r"classes \[0, 2\] have fewer than 5 training samples \('cat': 3, "
                                        r"'dog': 1\); use fewer folds, or drop the class"):
        kfold_indices(np.array([0] * 3 + [1] * 10 + [2]), 5, 0, ["cat", "bird", "dog"])
    with pytest.raises(DataError, match=r"class 1 \('dog'\) has 1 samples"):
        stratified_split(np.array([0, 0, 0, 0, 1]), 0.2, 0, names=["cat", "dog"])


def test_prepare_fold_uses_the_fold_as_validation():
    from visionstudy.data import load_raw

    raw = load_raw(DataConfig(dataset="digits"))
    folds = kfold_indices(raw.train.labels, 5, seed=0)
    for k in (0, 3):
        data = prepare(DataConfig(dataset="digits", folds=5, fold=k))
        tr, va = folds[k]
        assert np.array_equal(data.val.images, raw.train.images[va])
        assert np.array_equal(data.train.images, raw.train.images[tr])
        assert np.array_equal(data.test.images, raw.test.images)  # every fold tests on the test set
    with pytest.raises(ConfigError, match="fold"):
        prepare(DataConfig(dataset="digits", folds=5, fold=5))


def test_class_subsets_by_count_and_name():
    sub = prepare(DataConfig(dataset="digits", classes="first:3"))
    assert sub.class_names == ["0", "1", "2"] and set(sub.test.labels) == {0, 1, 2}
    named = prepare(DataConfig(dataset="digits", classes=["7", "3"]))
    assert named.class_names == ["7", "3"] and set(named.train.labels) == {0, 1}
    with pytest.raises(ConfigError, match="unknown class names \\['cat'\\]"):
        prepare(DataConfig(dataset="digits", classes=["cat", "3"]))
    with pytest.raises(ConfigError, match="first:N"):
        prepare(DataConfig(dataset="digits", classes="first:99"))


def test_val_fraction_bounds_are_validated():
    with pytest.raises(ValueError, match="val_fraction"):
        DataConfig(val_fraction=1.0)


def test_normalisation_comes_from_the_training_split():
    data = prepare(DataConfig(dataset="digits"))
    mean, std = channel_stats(data.train.images)
    assert data.mean == mean and abs(mean[0] - data.train.images.mean() / 255) < 1e-9
    assert abs(std[0] - (data.train.images / 255).std()) < 1e-6
    plain = prepare(DataConfig(dataset="digits", normalize=False))
    assert plain.mean == (0.0,) and plain.std == (1.0,)


def test_max_train_samples_is_named_as_written():
    """`max_train_samples: 1` was once reported as `data.max_train_samples=0.999…`."""
    from visionstudy.config import DataConfig
    from visionstudy.data import prepare

    with pytest.raises(DataError, match=r"^data.max_train_samples=1: fewer than one image for each of the "
                                        r"10 classes; give at least 10$"):
        prepare(DataConfig(dataset="digits", max_train_samples=1))
    assert len(prepare(DataConfig(dataset="digits", max_train_samples=10)).train) == 10


def test_normalisation_can_be_switched_off_or_fixed_to_published_constants():
    """Seed 000/002 scale pixels to 0..1 only; seed 001 normalises with fixed CIFAR-100 constants."""
    from visionstudy.data.loader import normalise_images
    from visionstudy.validate import validate_run_config

    off = prepare(DataConfig(dataset="digits", normalize=False))
    assert off.mean == (0.0,) and off.std == (1.0,)
    x = normalise_images(off.train.images[:4], off.mean, off.std)
    assert float(x.min()) >= 0.0 and float(x.max()) <= 1.0 and float(x.max()) > 0.5
    stats = {"mean": [0.5], "std": [0.25]}
    fixed = prepare(DataConfig.model_validate({"dataset": "digits", "normalize": stats}))
    assert fixed.mean == (0.5,) and fixed.std == (0.25,)
    y = normalise_images(fixed.train.images[:4], fixed.mean, fixed.std)
    assert np.allclose(y.numpy(), (x.numpy() - 0.5) / 0.25, atol=1e-6)
    with pytest.raises(ConfigError, match="data.normalize: 3 means and stds, but digits images have 1 "):
        validate_run_config({"data": {"dataset": "digits", "normalize": {"mean": [0.5, 0.5, 0.5],
                                                                         "std": [0.2, 0.2, 0.2]}}}, "c.yaml")
    three = {"mean": [0.5] * 3, "std": [0.2] * 3}  # unchecked config: prepare finds the channels itself
    with pytest.raises(ConfigError, match="data.normalize: 3 means and stds, but digits images have 1 "):
        prepare(DataConfig.model_validate({"dataset": "digits", "normalize": three}))
    with pytest.raises(ConfigError, match="mean has 2 values and std 1"):
        validate_run_config({"data": {"dataset": "digits",
                                      "normalize": {"mean": [0.5, 0.4], "std": [0.2]}}}, "c")
