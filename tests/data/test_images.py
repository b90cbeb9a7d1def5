"""One image reader for training, predict and Grad-CAM: each format maps to the pixels it shows,
and `predict` on a run's test files gives exactly the run's own test predictions."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from visionstudy.data.images import ImageReadError, read_image


def base_rgb(seed: int = 0, h: int = 12, w: int = 10) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (h, w, 3), dtype=np.uint8)


def gray_of(rgb: np.ndarray) -> np.ndarray:
    return np.asarray(Image.fromarray(rgb).convert("L"))


def test_16_bit_and_float_keep_their_full_range(tmp_path):
    gray = gray_of(base_rgb())
    Image.fromarray(gray.astype(np.uint16) * 257).save(tmp_path / "deep.png")  # 16-bit PNG
    Image.fromarray(gray.astype(np.uint16) * 257).save(tmp_path / "deep.tif")
    Image.fromarray((gray / 255).astype(np.float32)).save(tmp_path / "float.tif")
    Image.fromarray(gray.astype(np.float32)).save(tmp_path / "float255.tif")  # 0..255 floats
    for name in ("deep.png", "deep.tif", "float.tif", "float255.tif"):
        got = read_image(tmp_path / name, gray.shape, 1)[..., 0]
        assert np.array_equal(got, gray), name  # not all white, not stretched per image
    dim = (gray // 16).astype(np.uint16) * 257  # a dark 16-bit image stays dark
    Image.fromarray(dim).save(tmp_path / "dim.png")
    assert read_image(tmp_path / "dim.png", gray.shape, 1).max() <= 16


def test_bilevel_palette_cmyk_and_alpha(tmp_path):
    rgb = base_rgb()
    h, w = rgb.shape[:2]
    Image.fromarray(rgb).convert("1").save(tmp_path / "bilevel.png")
    got = read_image(tmp_path / "bilevel.png", (h, w), 1)
    assert set(np.unique(got)) <= {0, 255}
    pal = Image.fromarray(rgb).convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    pal.save(tmp_path / "palette.png")
    assert np.array_equal(read_image(tmp_path / "palette.png", (h, w), 3), np.asarray(pal.convert("RGB")))
    Image.fromarray(rgb).convert("CMYK").save(tmp_path / "cmyk.tif")
    assert np.abs(read_image(tmp_path / "cmyk.tif", (h, w), 3).astype(int) - rgb).max() <= 1
    rgba = np.dstack([rgb, np.full((h, w), 255, np.uint8)])
    rgba[: h // 2, :, 3] = 0  # top half transparent
    rgba[: h // 2, :, :3] = 0  # ... over black pixels: shown white, as any viewer shows it
    Image.fromarray(rgba, "RGBA").save(tmp_path / "alpha.png")
    got = read_image(tmp_path / "alpha.png", (h, w), 3)
    assert (got[: h // 2] == 255).all() and np.array_equal(got[h // 2:], rgb[h // 2:])
    la = np.dstack([gray_of(rgb), rgba[..., 3]])
    Image.fromarray(la, "LA").save(tmp_path / "la.png")
    got = read_image(tmp_path / "la.png", (h, w), 1)[..., 0]
    assert (got[: h // 2] == 255).all() and np.array_equal(got[h // 2:], gray_of(rgb)[h // 2:])
    pal_t = Image.fromarray(rgba, "RGBA").convert("P", palette=Image.Palette.ADAPTIVE)
    pal_t.save(tmp_path / "palette-alpha.png", transparency=0)
    assert read_image(tmp_path / "palette-alpha.png", (h, w), 3).shape == (h, w, 3)


def test_exif_orientation_is_applied(tmp_path):
    rgb = np.zeros((12, 20, 3), np.uint8)
    rgb[:, :10] = 250  # bright left half, as the camera showed it
    stored = Image.fromarray(rgb).transpose(Image.Transpose.ROTATE_90)  # sensor order: 20 x 12
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    stored.save(tmp_path / "phone.jpg", exif=exif, quality=95)
    got = read_image(tmp_path / "phone.jpg", (12, 20), 1)[..., 0]
    assert got[:, :8].mean() > 200 and got[:, 12:].mean() < 50


def test_unreadable_files_and_folders_are_an_image_read_error(tmp_path):
    (tmp_path / "notes.png").write_text("hello")
    with pytest.raises(ImageReadError, match="not a format PIL can decode"):
        read_image(tmp_path / "notes.png", (8, 8), 1)
    (tmp_path / "folder.png").mkdir()
    with pytest.raises(ImageReadError, match="a folder, not an image file"):
        read_image(tmp_path / "folder.png", (8, 8), 1)
    with pytest.raises(FileNotFoundError):  # callers name a missing file themselves
        read_image(tmp_path / "missing.png", (8, 8), 1)


FORMATS = {  # file name → how it is written from an 8-bit RGB image
    "rgb.png": lambda rgb: Image.fromarray(rgb),
    "gray16.png": lambda rgb: Image.fromarray(gray_of(rgb).astype(np.uint16) * 257),
    "bilevel.png": lambda rgb: Image.fromarray(rgb).convert("1"),
    "float.tif": lambda rgb: Image.fromarray((gray_of(rgb) / 255).astype(np.float32)),
    "palette.png": lambda rgb: Image.fromarray(rgb).convert("P", palette=Image.Palette.ADAPTIVE),
    "cmyk.jpg": lambda rgb: Image.fromarray(rgb).convert("CMYK"),
    "alpha.png": lambda rgb: Image.fromarray(np.dstack([rgb, np.where(rgb[..., 0] > 128, 255, 90)
                                                        .astype(np.uint8)]), "RGBA"),
    "gray-alpha.png": lambda rgb: Image.fromarray(np.dstack([gray_of(rgb), np.full(rgb.shape[:2], 128,
                                                                                  np.uint8)]), "LA"),
    "exif.jpg": lambda rgb: Image.fromarray(rgb),
}


def write_format_folder(root, per_format: int = 1):
    rng = np.random.default_rng(0)
    for split in ("train", "test"):
        for c, name in enumerate(("left", "right")):
            folder = root / split / name
            folder.mkdir(parents=True)
            for k in range(per_format):
                for fmt, make in FORMATS.items():
                    rgb = rng.integers(0, 60, (24, 24, 3), dtype=np.uint8)
                    rgb[:, c * 12:(c + 1) * 12] += 180  # the class: which half is bright
                    im = make(rgb)
                    path = folder / f"{k}-{fmt}"
                    if fmt == "exif.jpg":
                        exif = Image.Exif()
                        exif[0x0112] = 3  # stored upside down
                        im.transpose(Image.Transpose.ROTATE_180).save(path, exif=exif)
                    else:
                        im.save(path)
    return root


def test_predict_on_a_runs_test_files_gives_its_own_test_predictions(tmp_path):
    """Every format through training (image folder) and through `predict` gives the same tensor:
    the probabilities `predict` prints are the softmax of the run's recorded test logits."""
    import torch

    from visionstudy.data.sources.imagefolder import list_images
    from visionstudy.evaluate.predict import load_predictor, predict
    from visionstudy.experiment import run_experiment
    from visionstudy.store.reader import load_run
    from visionstudy.validate import validate_run_config

    root = write_format_folder(tmp_path / "images", per_format=2)
    cfg = validate_run_config({
        "name": "formats", "data": {"dataset": "imagefolder", "path": str(root), "image_size": 16,
                                    "channels": 3, "val_fraction": 0.25},
        "model": {"name": "mlp", "hidden": [16]},
        "train": {"epochs": 2, "batch_size": 8, "tta": True, "threads": 1}})
    run_experiment(cfg, tmp_path / "run", device="cpu", quiet=True)
    art = load_run(tmp_path / "run")
    mean = art.config["resolved"]["dataset"]["mean"]
    assert all(0.2 < m < 0.8 for m in mean), mean  # not the all-white 16-bit images of before
    files = [f for f, _ in list_images(root / "test")]
    results = predict(load_predictor(tmp_path / "run"), files, top_k=2).results
    expected = torch.softmax(torch.from_numpy(art.predictions["logits"]), 1).numpy()
    for f, r, row in zip(files, results, expected, strict=True):
        got = dict(r.top)
        assert r.top[0][0] == art.class_names[int(row.argmax())], f.name
        for i, name in enumerate(art.class_names):
            assert got[name] == pytest.approx(float(row[i]), abs=1e-5), f.name


def test_a_large_transparent_png_is_composited_in_bounded_memory(tmp_path):
    """A 4096² RGBA PNG (a few hundred KB on disk) once took 1.7 GB of float64 copies and 7.6 s;
    the composite now runs in uint16 rows: numpy's peak stays near the image's own uint8 size,
    and the result is the exact rounding of colour·α + white·(1 − α)."""
    import tracemalloc

    side = 4096
    rgba = np.zeros((side, side, 4), np.uint8)
    rgba[..., 0] = np.arange(side, dtype=np.uint32)[:, None] % 256
    rgba[..., 3] = np.arange(side, dtype=np.uint32)[None, :] % 256
    Image.fromarray(rgba, "RGBA").save(tmp_path / "big.png", compress_level=1)
    tracemalloc.start()
    try:
        got = read_image(tmp_path / "big.png", (side, side), 3)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 3.5 * side * side * 4, f"{peak / 2**20:.0f} MiB"  # the float64 way: > 12× the image
    colour, alpha = rgba[..., :3].astype(np.float64), rgba[..., 3:].astype(np.float64) / 255
    rows = slice(0, 300)  # a band checked against the float formula
    want = np.round(colour[rows] * alpha[rows] + 255 * (1 - alpha[rows])).astype(np.uint8)
    assert np.array_equal(got[rows], want)
