"""The tensor-resident loader and the evaluation transform take what datasets hand them."""

from __future__ import annotations

import warnings

import numpy as np
import torch

from visionstudy.data.loader import BatchLoader, normalise_images


def test_a_read_only_dataset_loads_without_a_warning_and_is_never_written():
    """Cached and memory-mapped datasets are read-only arrays: torch warned on every run ("The given
    NumPy array is not writable"), and a one-channel loader kept a view of them."""
    images = np.arange(6 * 4 * 4, dtype=np.uint8).reshape(6, 4, 4, 1)
    images.setflags(write=False)
    before = images.copy()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loader = BatchLoader(images, np.arange(6) % 2, 3, mean=(0.5,), std=(0.25,), num_classes=2)
        x = normalise_images(images, (0.5,), (0.25,))
    loader.x.add_(1)  # the loader owns its copy
    assert np.array_equal(images, before)
    first = torch.from_numpy(before[0, :, :, 0])
    assert loader.x.shape == (6, 1, 4, 4) and torch.equal(loader.x[0, 0], first + 1)
    assert torch.allclose(x[0, 0], (first.float() / 255 - 0.5) / 0.25)


def test_images_become_contiguous_nchw_tensors_of_their_own_for_any_channel_count():
    for channels, writable in ((1, True), (3, True), (3, False)):
        images = np.random.default_rng(channels).integers(0, 256, (5, 4, 6, channels), dtype=np.uint8)
        images.setflags(write=writable)
        loader = BatchLoader(images, np.arange(5) % 2, 5, mean=(0.5,) * channels, std=(0.25,) * channels,
                             num_classes=2)
        assert loader.x.is_contiguous() and loader.x.shape == (5, channels, 4, 6)
        assert np.array_equal(loader.x.numpy(), images.transpose(0, 3, 1, 2))
        shares = np.shares_memory(loader.x.numpy(), images)
        assert shares is (writable and channels == 1)  # a view only where no copy is needed
