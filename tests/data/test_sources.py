"""Every dataset source round-trips tiny files written in its official format."""

from __future__ import annotations

import gzip
import re
import string
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.conftest import cifar_tarball, write_idx_gz, write_mnist_like
from visionstudy.config import DataConfig
from visionstudy.data import DATASETS, list_datasets, load_raw, prepare
from visionstudy.data.base import DatasetSource, register_dataset
from visionstudy.errors import ConfigError, DataError

FASHION = Path("/usr/share/datasets/fashion-mnist")


def test_registry_lists_all_sources_and_refuses_duplicates():
    assert {"digits", "mnist", "fashion_mnist", "emnist", "cifar10", "cifar100",
            "imagefolder"} <= set(list_datasets())

    class Again(DatasetSource):
        name = "digits"
        description = "duplicate"

        def find(self, cfg, roots):
            return []

        def decode(self, cfg, paths):
            raise AssertionError

    with pytest.raises(ValueError, match="already registered"):
        register_dataset(Again)


def test_unknown_dataset_names_the_choices():
    with pytest.raises(ConfigError, match="unknown dataset 'cifar11'.*cifar10"):
        load_raw(DataConfig(dataset="cifar11"))


def test_digits_is_embedded():
    raw = load_raw(DataConfig(dataset="digits"))
    assert raw.train.images.shape[1:] == (8, 8, 1) and raw.train.images.dtype == np.uint8
    assert len(raw.train) + len(raw.test) == 1797 and raw.class_names == list("0123456789")


@pytest.mark.parametrize("name", ["mnist", "fashion_mnist"])
def test_idx_round_trip(name, tmp_path):
    folder = write_mnist_like(tmp_path / "root" / ("fashion-mnist" if name != "mnist" else "mnist"))
    # a root with one subfolder per dataset is found, like /usr/share/datasets
    raw = load_raw(DataConfig(dataset=name, data_dir=tmp_path / "root", verify=False))
    assert len(raw.train) == 200 and len(raw.test) == 50
    assert raw.train.images.shape == (200, 28, 28, 1)
    x = gzip.decompress((folder / "train-images-idx3-ubyte.gz").read_bytes())[16:]
    assert np.array_equal(raw.train.images.reshape(-1), np.frombuffer(x, np.uint8))
    assert raw.class_names == list(DATASETS.get(name).classes)


def test_checksums_are_verified_by_default(mnist_dir):
    with pytest.raises(DataError, match="checksum mismatch.*--no-verify"):
        load_raw(DataConfig(dataset="mnist", data_dir=mnist_dir))


def test_truncated_idx_names_the_file(mnist_dir):
    path = mnist_dir / "train-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(DataError, match="train-images-idx3-ubyte.gz.*(truncated|corrupt)"):
        load_raw(DataConfig(dataset="mnist", data_dir=mnist_dir, verify=False))


def test_header_larger_than_data_is_refused(tmp_path):
    folder = write_mnist_like(tmp_path / "m")
    blob = gzip.decompress((folder / "t10k-images-idx3-ubyte.gz").read_bytes())
    (folder / "t10k-images-idx3-ubyte.gz").write_bytes(gzip.compress(blob[:-28]))
    with pytest.raises(DataError, match="t10k-images.*header declares"):
        load_raw(DataConfig(dataset="mnist", data_dir=folder, verify=False))


def test_missing_files_say_where_to_put_them(tmp_path):
    with pytest.raises(DataError, match="not found.*--data-dir"):
        load_raw(DataConfig(dataset="mnist", data_dir=tmp_path, download=False))


def test_emnist_comes_out_upright_with_47_names(tmp_path):
    folder = tmp_path / "emnist"
    write_mnist_like(folder, classes=47, n_train=94, n_test=47, prefix="emnist-balanced-",
                     transpose=True)
    # an asymmetric glyph: an "L" (vertical bar on the left, foot at the bottom), stored transposed
    glyph = np.zeros((1, 28, 28), np.uint8)
    glyph[0, 4:24, 4] = 255
    glyph[0, 23, 4:20] = 255
    write_idx_gz(folder / "emnist-balanced-test-images-idx3-ubyte.gz", glyph.transpose(0, 2, 1))
    write_idx_gz(folder / "emnist-balanced-test-labels-idx1-ubyte.gz", np.array([21], np.uint8))
    raw = load_raw(DataConfig(dataset="emnist", split="balanced", data_dir=tmp_path))
    assert np.array_equal(raw.test.images[0, :, :, 0], glyph[0])
    assert raw.class_names[:10] == list(string.digits) and len(raw.class_names) == 47
    assert raw.class_names[36:] == list("abdefghnqrt") and raw.class_names[21] == "L"


def test_emnist_unknown_split():
    with pytest.raises(ConfigError, match="unknown EMNIST split 'bogus'"):
        load_raw(DataConfig(dataset="emnist", split="bogus"))


def test_cifar10_tarball_round_trip(tmp_path):
    cifar_tarball(tmp_path / "mirror" / "cifar-10-python.tar.gz")
    raw = load_raw(DataConfig(dataset="cifar10", data_dir=tmp_path / "mirror", verify=False))
    assert raw.train.images.shape == (200, 32, 32, 3) and len(raw.test) == 40
    assert raw.class_names[3] == "class3" and set(raw.train.labels) == set(range(10))


def test_cifar100_fine_and_coarse(tmp_path):
    cifar_tarball(tmp_path / "cifar-100-python.tar.gz", hundred=True)
    fine = load_raw(DataConfig(dataset="cifar100", data_dir=tmp_path, verify=False))
    coarse = load_raw(DataConfig(dataset="cifar100", label="coarse", data_dir=tmp_path,
                                 verify=False))
    assert len(fine.class_names) == 100 and len(coarse.class_names) == 20
    assert np.array_equal(coarse.train.labels, fine.train.labels // 5)
    first20 = prepare(DataConfig(dataset="cifar100", classes="first:20", data_dir=tmp_path,
                                 verify=False))
    assert first20.class_names == [f"fine{i}" for i in range(20)]
    assert first20.train.labels.max() == 19


def test_cifar_tarball_checksum_and_truncation(tmp_path):
    tar = cifar_tarball(tmp_path / "cifar-10-python.tar.gz")
    with pytest.raises(DataError, match="cifar-10-python.tar.gz: checksum mismatch"):
        load_raw(DataConfig(dataset="cifar10", data_dir=tmp_path))
    tar.write_bytes(tar.read_bytes()[: tar.stat().st_size // 2])
    with pytest.raises(DataError, match="truncated or corrupt"):
        load_raw(DataConfig(dataset="cifar10", data_dir=tmp_path, verify=False))


def test_cifar_pickle_that_runs_code_is_refused(tmp_path):
    import io
    import pickle
    import tarfile

    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    with tarfile.open(tmp_path / "cifar-10-python.tar.gz", "w:gz") as tar:
        for name in ["data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4",
                     "data_batch_5", "test_batch", "batches.meta"]:
            blob = pickle.dumps({b"data": Evil()})
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(blob)
            tar.addfile(info, io.BytesIO(blob))
    with pytest.raises(DataError, match="refusing to load"):
        load_raw(DataConfig(dataset="cifar10", data_dir=tmp_path, verify=False))
    assert not marker.exists()


def make_image_folder(root: Path) -> Path:
    rng = np.random.default_rng(0)
    for cls in ("cat", "dog"):
        (root / cls).mkdir(parents=True)
        for i in range(6):
            arr = rng.integers(0, 255, (20 + i, 24, 3), dtype=np.uint8)
            Image.fromarray(arr).save(root / cls / f"{i}.{'png' if i % 2 else 'jpg'}")
    (root / "cat" / "empty.png").write_bytes(b"")
    (root / "cat" / "notes.png").write_text("not an image")
    jpg = (root / "dog" / "0.jpg").read_bytes()
    (root / "dog" / "truncated.jpg").write_bytes(jpg[: len(jpg) // 3])
    bomb = Image.new("L", (30000, 30000))  # mode L, 900 MB declared; PNG compresses it to ~1 MB
    bomb.save(root / "dog" / "bomb.png", optimize=False)
    return root


def test_imagefolder_skips_and_counts_bad_files(tmp_path, caplog):
    root = make_image_folder(tmp_path / "pets")
    raw = load_raw(DataConfig(dataset="imagefolder", path=root, image_size=16, channels=1))
    assert raw.class_names == ["cat", "dog"]
    assert raw.train.images.shape[1:] == (16, 16, 1)
    assert len(raw.train) + len(raw.test) == 12
    skipped = sorted(Path(f).name for f, _ in raw.skipped)
    assert skipped == ["bomb.png", "empty.png", "notes.png", "truncated.jpg"]
    assert "skipping" in caplog.text


def test_imagefolder_with_split_folders(tmp_path):
    for split in ("train", "test"):
        make_dir = tmp_path / "ds" / split
        for cls in ("a", "b", "c"):
            (make_dir / cls).mkdir(parents=True)
            for i in range(4):
                Image.new("RGB", (10, 10), (i * 40, 0, 0)).save(make_dir / cls / f"{i}.png")
    raw = load_raw(DataConfig(dataset="imagefolder", path=tmp_path / "ds", image_size=8))
    assert len(raw.train) == 12 and len(raw.test) == 12 and raw.train.images.shape[-1] == 3
    # a test class the training folder lacks: named with the training classes it could have been
    (tmp_path / "ds" / "test" / "owl").mkdir()
    Image.new("RGB", (10, 10)).save(tmp_path / "ds" / "test" / "owl" / "0.png")
    with pytest.raises(DataError, match=re.escape(
            "class 'owl' is not among the training classes (a, b, c in ")):
        load_raw(DataConfig(dataset="imagefolder", path=tmp_path / "ds", image_size=8))


def test_second_load_comes_from_the_cache(mnist_dir, monkeypatch):
    cfg = DataConfig(dataset="mnist", data_dir=mnist_dir, verify=False)
    first = load_raw(cfg)
    source = DATASETS.get("mnist")
    monkeypatch.setattr(type(source), "decode", lambda *a: (_ for _ in ()).throw(AssertionError))
    second = load_raw(cfg)
    assert np.array_equal(first.train.images, second.train.images)
    assert second.checksum == first.checksum


@pytest.mark.skipif(not FASHION.is_dir(), reason="Debian dataset-fashion-mnist not installed")
def test_debian_fashion_mnist_is_found_without_being_named_and_verifies():
    raw = load_raw(DataConfig(dataset="fashion_mnist"))
    assert (len(raw.train), len(raw.test)) == (60000, 10000)
    assert raw.class_names[9] == "Ankle boot"


def test_cached_archive_dataset_is_not_rehashed_or_reextracted(tmp_path, monkeypatch):
    from visionstudy.data.sources import cifar

    cifar_tarball(tmp_path / "cifar-10-python.tar.gz")
    first = load_raw(DataConfig(dataset="cifar10", data_dir=tmp_path, verify=False))

    def forbidden(*args, **kwargs):
        raise AssertionError("archive touched on a cached load")

    monkeypatch.setattr(cifar, "safe_extract_tar", forbidden)
    monkeypatch.setattr(cifar, "verify_file", forbidden)
    again = load_raw(DataConfig(dataset="cifar10", data_dir=tmp_path, verify=False))
    assert again.checksum == first.checksum


def test_training_on_a_hostile_image_folder_completes_and_reports_the_skipped_files(tmp_path):
    """0-byte, truncated, text-as-png and a 30000x30000 bomb: listed exactly, skipped, counted in the
    run's config and report; training runs on the rest; loading stays small in memory."""
    import json
    import subprocess
    import sys

    import yaml

    root = make_image_folder(tmp_path / "pets")
    probe = ("import re; from pathlib import Path; from visionstudy.config import DataConfig;"
             "from visionstudy.data.base import load_raw;"
             f"raw = load_raw(DataConfig(dataset='imagefolder', path=Path({str(root)!r}), image_size=16));"
             "peak = re.search(r'VmHWM:\\s+(\\d+)', Path('/proc/self/status').read_text()).group(1);"
             "print(len(raw.skipped), peak)")  # VmHWM: this process's peak (ru_maxrss survives exec)
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=300)
    skipped, peak_kb = map(int, out.stdout.split())
    assert skipped == 4 and peak_kb < 1_000_000  # torch's import is ~520 MB; the bomb's 900 MB never come
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump({"name": "pets", "data": {"dataset": "imagefolder", "path": str(root),
                                                            "image_size": 16, "val_fraction": 0.25},
                                   "model": {"name": "mlp", "hidden": [16]},
                                   "train": {"epochs": 1, "batch_size": 4}}))
    run = tmp_path / "run"
    from visionstudy.experiment import run_experiment
    from visionstudy.report import ReportOptions, build_report
    from visionstudy.validate import load_config

    run_experiment(load_config(cfg), run, quiet=True)  # the commands' own code, in this process
    build_report([run], tmp_path / "rep", ReportOptions(images=False))
    assert json.loads((run / "metrics.json").read_text())["epochs_run"] == 1
    resolved = yaml.safe_load((run / "config.yaml").read_text())["resolved"]["dataset"]
    assert resolved["skipped_files"] == 4
    assert sorted(Path(d["file"]).name for d in resolved["skipped"]) == [
        "bomb.png", "empty.png", "notes.png", "truncated.jpg"]
    html = (tmp_path / "rep" / "report.html").read_text()
    assert "4 unreadable files skipped" in html and "bomb.png" in html


def test_digits_is_decoded_once_then_read_from_the_cache(monkeypatch):
    """The second load reads the cached arrays (keyed by scikit-learn's digits.csv.gz) and never
    decodes, so a run process need not import scikit-learn (1 s) to get its data."""

    first = load_raw(DataConfig(dataset="digits"))
    assert first.files == [] or first.files[0].name == "digits.csv.gz"

    def refuse(*_):
        raise AssertionError("decoded again")

    monkeypatch.setattr(type(DATASETS.get("digits")), "decode", refuse)
    again = load_raw(DataConfig(dataset="digits"))
    assert np.array_equal(again.train.images, first.train.images)
    assert np.array_equal(again.test.labels, first.test.labels) and again.checksum == first.checksum


def test_an_image_folder_says_which_class_folders_hold_no_images_or_none_readable(tmp_path, caplog,
                                                                                   monkeypatch):
    """A class folder of .heic files was dropped without a word; one whose every image was
    unreadable became a class with no training image. The dropped folder is said by every load
    (the cached ones said nothing) and recorded in the run's dataset section, for its report."""
    from visionstudy.tasks import get_task

    root = make_image_folder(tmp_path / "pets")
    (root / "bird").mkdir()
    (root / "bird" / "0.heic").write_bytes(b"not read")
    cfg = DataConfig(dataset="imagefolder", path=root, image_size=16)
    raw = load_raw(cfg)
    assert raw.class_names == ["cat", "dog"] and raw.ignored == [str(root / "bird")]
    says = f"{root / 'bird'} holds no bmp/gif/jpeg/jpg/pgm/png/ppm/tif/tiff/webp files; it is not a class"
    assert says in caplog.text
    caplog.clear()
    with monkeypatch.context() as m:
        m.setattr(type(DATASETS.get("imagefolder")), "decode", lambda *_: pytest.fail("decoded again"))
        assert load_raw(cfg).ignored == [str(root / "bird")] and says in caplog.text  # from the cache
        doc = get_task("classification").dataset_doc(prepare(cfg))
    assert doc["not_classes"] == [str(root / "bird")]
    (root / "bird" / "0.png").write_text("not an image either")
    with pytest.raises(DataError, match=r"no readable image in class folder bird \(each was skipped"):
        load_raw(DataConfig(dataset="imagefolder", path=root, image_size=16))
