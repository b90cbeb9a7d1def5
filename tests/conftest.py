"""Shared fixtures: tiny datasets written in the official on-disk formats, an isolated cache."""

from __future__ import annotations

import contextlib
import gzip
import io
import os
import pickle
import shutil
import subprocess
import tarfile
from pathlib import Path

import numpy as np
import pytest


def pytest_configure(config: pytest.Config) -> None:
    """Under pytest-xdist each worker, and every process it starts, gets its share of the cores
    (visionstudy reads OMP_NUM_THREADS): two workers each training on both cores of a 2-core
    machine slowed every run several-fold (a 15-epoch digits run 1.6 s → 18 s)."""
    from visionstudy.validate import usable_cores

    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if workers > 1 and "OMP_NUM_THREADS" not in os.environ:
        os.environ["OMP_NUM_THREADS"] = str(max(1, usable_cores() // workers))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The cluster tests first: they are one xdist group (one SLURM) on one worker, mostly waiting on
    jobs, so the other worker's share runs beside them instead of after them (collected in place,
    they ran last and alone: minutes of one idle worker). Then the slow ones, so that the suite
    ends on short tests shared by both workers, not on one worker's minute."""
    items.sort(key=lambda item: (item.get_closest_marker("cluster") is None,
                                 item.get_closest_marker("slow") is None))


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path_factory, monkeypatch):
    """Each test gets its own cache and no data dir from the environment."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("cache")))
    monkeypatch.delenv("VISIONSTUDY_DATA_DIR", raising=False)
    monkeypatch.setenv("VISIONSTUDY_DOWNLOAD_URL", "http://127.0.0.1:9/unreachable")


def idx_bytes(array: np.ndarray) -> bytes:
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(d.to_bytes(4, "big") for d in array.shape)
    return header + array.astype(np.uint8).tobytes()


def write_idx_gz(path: Path, array: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(idx_bytes(array)))
    return path


def glyphs(n: int, classes: int, size: int = 28, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Images whose class is visible: a bright block at a class-dependent row, plus noise."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % classes
    images = rng.integers(0, 40, (n, size, size), dtype=np.uint8)
    for i, c in enumerate(labels):
        r = (c * size) // classes
        images[i, r : r + max(1, size // classes), 2:-2] = 250
    return images, labels.astype(np.uint8)


def write_mnist_like(folder: Path, classes: int = 10, n_train: int = 200, n_test: int = 50,
                     prefix: str = "", transpose: bool = False) -> Path:
    names = ["train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
             "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"]
    if prefix:
        names = [prefix + n.replace("t10k", "test") for n in names]
    for (img_name, lab_name), (n, seed) in zip(
        ((names[0], names[1]), (names[2], names[3])), ((n_train, 0), (n_test, 1)), strict=True
    ):
        x, y = glyphs(n, classes, seed=seed)
        write_idx_gz(folder / img_name, x.transpose(0, 2, 1) if transpose else x)
        write_idx_gz(folder / lab_name, y)
    return folder


def cifar_tarball(path: Path, hundred: bool = False, n_per_batch: int = 40) -> Path:
    """A CIFAR-10 or CIFAR-100 python tarball with the official names, keys and layout."""
    rng = np.random.default_rng(0)
    folder = "cifar-100-python" if hundred else "cifar-10-batches-py"
    k = 100 if hundred else 10

    def batch(n: int) -> dict:
        fine = (np.arange(n) % k).tolist()
        data = rng.integers(0, 255, (n, 3072), dtype=np.uint8)
        if hundred:
            return {b"data": data, b"fine_labels": fine, b"coarse_labels": [f // 5 for f in fine]}
        return {b"data": data, b"labels": fine}

    files: dict[str, dict] = {}
    if hundred:
        files["train"] = batch(n_per_batch * 25)
        files["test"] = batch(n_per_batch * 2)
        files["meta"] = {b"fine_label_names": [f"fine{i}".encode() for i in range(100)],
                         b"coarse_label_names": [f"coarse{i}".encode() for i in range(20)]}
    else:
        for i in range(1, 6):
            files[f"data_batch_{i}"] = batch(n_per_batch)
        files["test_batch"] = batch(n_per_batch)
        files["batches.meta"] = {b"label_names": [f"class{i}".encode() for i in range(10)]}
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w:gz") as tar:
        for name, obj in files.items():
            blob = pickle.dumps(obj, protocol=2)
            info = tarfile.TarInfo(f"{folder}/{name}")
            info.size = len(blob)
            tar.addfile(info, io.BytesIO(blob))
    return path


@pytest.fixture
def mnist_dir(tmp_path) -> Path:
    return write_mnist_like(tmp_path / "mnist")


def train_tiny(out: Path, data: dict, model: dict, epochs: int, data_dir: Path | None = None) -> Path:
    """A real run directory from a few epochs of a small model (used by report/predict tests)."""
    from visionstudy.experiment import run_experiment
    from visionstudy.validate import validate_run_config

    cfg = validate_run_config({
        "name": out.name, "seed": 0, "data": data, "model": model,
        "train": {"epochs": epochs, "batch_size": 64, "optimizer": {"name": "adam", "lr": 3e-3}},
    })
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("XDG_CACHE_HOME", str(out.parent / "cache"))
        run_experiment(cfg, out, quiet=True, data_dir=data_dir)
    return out


@pytest.fixture(scope="session")
def digits_run(tmp_path_factory) -> Path:
    """10 classes, a CNN trained to well above chance, with augmentation."""
    root = tmp_path_factory.mktemp("runs")
    return train_tiny(root / "digits", {"dataset": "digits", "augment": ["flip"]},
                      {"name": "cnn", "channels": [8, 16], "hidden": [32], "batch_norm": True}, 6)


@pytest.fixture(scope="session")
def cifar100_run(tmp_path_factory) -> tuple[Path, Path]:
    """100 classes from a tiny CIFAR-100 tarball in the official format: (run, data dir)."""
    root = tmp_path_factory.mktemp("runs100")
    data_dir = root / "mirror"
    cifar_tarball(data_dir / "cifar-100-python.tar.gz", hundred=True, n_per_batch=20)
    run = train_tiny(root / "cifar100", {"dataset": "cifar100", "verify": False},
                     {"name": "resnet", "blocks": [1, 1], "widths": [8, 16]}, 1, data_dir)
    return run, data_dir


@contextlib.contextmanager
def read_only_copy(folder: Path):
    """`folder`'s files on a real read-only file system (a tmpfs remounted ro; root ignores
    permission bits, so chmod alone proves nothing)."""
    saved = folder.with_name(folder.name + ".saved")
    shutil.copytree(folder, saved)
    shutil.rmtree(folder)
    folder.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", str(folder)]).returncode != 0:
        pytest.skip("cannot mount a tmpfs here")
    try:
        shutil.copytree(saved, folder, dirs_exist_ok=True)
        subprocess.run(["mount", "-o", "remount,ro", str(folder)], check=True)
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], check=False)
        shutil.rmtree(folder, ignore_errors=True)
        saved.rename(folder)
