"""`predict`: the training preprocessing, any image format, clear errors for bad files."""

from __future__ import annotations

import io
import pickle

import numpy as np
import pytest
import torch
from PIL import Image

from visionstudy.errors import CheckpointError, DataError
from visionstudy.evaluate.predict import load_predictor, predict, read_image
from visionstudy.report.runs import load_run
from visionstudy.training.checkpoint import seal


def test_predictions_on_image_files_match_the_run_test_predictions(digits_run, tmp_path):
    from visionstudy.data import prepare
    from visionstudy.validate import validate_run_config

    art = load_run(digits_run)
    cfg = validate_run_config({k: v for k, v in art.config.items() if k != "resolved"})
    test = prepare(cfg.data).test
    paths = []
    for i in range(12):
        path = tmp_path / f"img{i}.png"
        Image.fromarray(test.images[i, ..., 0]).save(path)
        paths.append(path)
    predictor = load_predictor(digits_run)
    results, pixels = predict(predictor, paths, top_k=3)
    assert pixels.shape == (12, 8, 8, 1)
    expected = art.predictions["logits"][:12].argmax(1)
    assert [r.top[0][0] for r in results] == [art.class_names[i] for i in expected]
    for r in results:
        probs = [p for _, p in r.top]
        assert len(r.top) == 3 and probs == sorted(probs, reverse=True) and 0 < sum(probs) <= 1 + 1e-6


def test_any_format_and_size_is_converted_to_the_training_shape(tmp_path):
    rgb = (np.random.default_rng(0).random((300, 200, 3)) * 255).astype(np.uint8)
    Image.fromarray(rgb).save(tmp_path / "big.jpg")
    Image.fromarray(rgb).convert("RGBA").save(tmp_path / "alpha.png")
    Image.fromarray(rgb[..., 0].astype(np.uint16) * 200).save(tmp_path / "deep.tif")
    for name in ("big.jpg", "alpha.png", "deep.tif"):
        assert read_image(tmp_path / name, (1, 8, 8)).shape == (8, 8, 1)
        assert read_image(tmp_path / name, (3, 32, 32)).shape == (32, 32, 3)


def test_bad_images_are_named(tmp_path):
    (tmp_path / "notes.png").write_text("not an image")
    with pytest.raises(DataError, match="notes.png: not a readable image"):
        read_image(tmp_path / "notes.png", (1, 8, 8))
    with pytest.raises(DataError, match="missing.png: no such image file"):
        read_image(tmp_path / "missing.png", (1, 8, 8))


def test_checkpoints_that_are_not_a_runs_are_refused(tmp_path):
    with pytest.raises(CheckpointError, match="no checkpoints/best.pt"):
        load_predictor(tmp_path)
    (tmp_path / "x.pt").write_text("hello")
    with pytest.raises(CheckpointError, match="x.pt: not a visionstudy checkpoint"):
        load_predictor(tmp_path / "x.pt")
    torch.save({"weights": torch.zeros(2)}, tmp_path / "plain.pt")
    with pytest.raises(CheckpointError, match="not a visionstudy checkpoint"):
        load_predictor(tmp_path / "plain.pt")

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    buf = io.BytesIO()
    torch.save({"format": "visionstudy-checkpoint-1", "x": Evil()}, buf, pickle_module=pickle)
    (tmp_path / "evil.pt").write_bytes(seal(buf.getvalue()))
    with pytest.raises(CheckpointError, match="refused"):
        load_predictor(tmp_path / "evil.pt")
