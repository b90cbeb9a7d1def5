"""`predict`: the training preprocessing, any image format, clear errors for bad files."""

from __future__ import annotations

import io
import json
import os
import pickle

import numpy as np
import pytest
import torch
from PIL import Image

import visionstudy as vs
from visionstudy.errors import CheckpointError, DataError
from visionstudy.evaluate.predict import load_predictor, predict, read_image
from visionstudy.store.reader import load_run
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
    done = predict(predictor, paths, top_k=3)
    results, pixels = done.results, done.pixels
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
    (tmp_path / "study" / "bn" / "seed-0" / "checkpoints").mkdir(parents=True)  # a study's folders
    with pytest.raises(CheckpointError, match=r"study/bn: not a run directory, but it holds 1 run "
                                              r"\(.*study/bn/seed-0\); pass it"):
        load_predictor(tmp_path / "study" / "bn")
    (tmp_path / "study" / "bn" / "seed-1" / "checkpoints").mkdir(parents=True)
    with pytest.raises(CheckpointError, match=r"holds 2 runs \(.*seed-0, .*seed-1\); pass one of them$"):
        load_predictor(tmp_path / "study")  # predict takes one run
    (tmp_path / "study" / "cv" / "seed-0" / "fold-1" / "checkpoints").mkdir(parents=True)
    (tmp_path / "study" / "manifest.json").write_text("{}")  # the study's own folder: its fold runs too
    with pytest.raises(CheckpointError, match=r"study: a study folder, not a run directory, but it holds "
                                              r"3 runs \(.*bn/seed-0, .*seed-1, .*cv/seed-0/fold-1\)"):
        load_predictor(tmp_path / "study")  # it said "no checkpoints/best.pt or last.pt"
    (tmp_path / "study" / "a-search" / "trial-000" / "checkpoints").mkdir(parents=True)  # not planned
    (tmp_path / "study" / "manifest.json").write_text(json.dumps({"runs": [
        {"key": k} for k in ("bn/seed-0", "bn/seed-1", "cv/seed-0/fold-1")]}))
    with pytest.raises(CheckpointError, match=r"holds 4 runs \(.*bn/seed-0, .*bn/seed-1, .*cv/seed-0/fold-1 "
                                              r"and 1 more\)"):  # the planned runs named first
        load_predictor(tmp_path / "study")
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


def test_bad_files_among_good_ones_are_named_after_the_good_ones_results(digits_run, tmp_path):
    """A FIFO, a folder, a text file and a missing file beside two images: the images are
    classified and printed, each bad file is named once, the command exits 2 (and never blocks on
    the FIFO)."""
    from tests.helpers import assert_user_error, vs_here

    good = []
    for i in range(2):
        good.append(tmp_path / f"good{i}.png")
        Image.fromarray((np.arange(64).reshape(8, 8) * 4).astype(np.uint8)).save(good[-1])
    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)
    (tmp_path / "notes.png").write_text("not an image")
    (tmp_path / "folder.png").mkdir()
    bad = [fifo, tmp_path / "notes.png", tmp_path / "folder.png", tmp_path / "missing.png"]
    result = vs_here("predict", digits_run, good[0], *bad, good[1], "--json")
    assert_user_error(result, "4 of 6 images could not be read", "pipe.png: not a readable image (not a "
                      "regular file", "notes.png: not a readable image (not a format", "missing.png: no such")
    printed = json.loads(result.stdout)
    assert [r["image"] for r in printed] == [str(good[0]), str(good[1])]
    assert printed[0]["top"] == printed[1]["top"]  # the same picture, the same answer
    with pytest.raises(DataError, match="pipe.png.*notes.png"):
        vs.Run(digits_run).predict([good[0], fifo, tmp_path / "notes.png"])


def test_a_folder_of_class_folders_is_scored_by_their_names(digits_run, tmp_path):
    """A labelled test folder (imagefolder's layout: one folder per class): the printed table is
    followed by how many the run got right, by the folders' names, as a user would count them."""
    from tests.helpers import vs_here
    from visionstudy.data import prepare
    from visionstudy.validate import validate_run_config

    art = load_run(digits_run)
    test = prepare(validate_run_config({k: v for k, v in art.config.items() if k != "resolved"}).data).test
    for i in range(20):
        (tmp_path / "mine" / art.class_names[test.labels[i]]).mkdir(parents=True, exist_ok=True)
        Image.fromarray(test.images[i, ..., 0]).save(tmp_path / "mine" / art.class_names[test.labels[i]]
                                                     / f"{i}.png")
    rows = json.loads(vs_here("predict", digits_run, tmp_path / "mine", "--json", "--top-k", "2").stdout)
    labels = [os.path.basename(os.path.dirname(r["image"])) for r in rows]
    right = sum(r["top"][0]["class"] == label for r, label in zip(rows, labels, strict=True))
    within = sum(label in [t["class"] for t in r["top"]] for r, label in zip(rows, labels, strict=True))
    assert right >= 10  # trained well above chance (chance: 2 of 20)
    shown = vs_here("predict", digits_run, tmp_path / "mine", "--top-k", "2")
    assert shown.stdout.rstrip().endswith(
        f"by their folders' class names: {right} of 20 right ({right / 20:.1%}); within the top 2: "
        f"{within} of 20 ({within / 20:.1%})"), shown.stdout[-300:]
    # a folder that is not a class (or an image beside the class folders): no count
    Image.fromarray(test.images[0, ..., 0]).save(tmp_path / "mine" / "loose.png")
    assert "by their folders" not in vs_here("predict", digits_run, tmp_path / "mine").stdout


def test_a_folder_is_classified_image_by_image_in_bounded_batches(digits_run, tmp_path, monkeypatch):
    """A folder (subfolders too) gives each image file's own prediction, in sorted order, skipping
    hidden files and other files; an empty folder is named as a failure. The forward passes take
    at most BATCH images each, with the same probabilities as one pass."""
    from tests.helpers import assert_user_error, vs_here
    from visionstudy.evaluate import predict as module

    folder = tmp_path / "photos"
    (folder / "b").mkdir(parents=True)
    (folder / ".cache").mkdir()
    rng = np.random.default_rng(0)
    files = [folder / "z.png", folder / "a.jpg", folder / "b" / "c.PNG", folder / ".cache" / "d.png",
             folder / "._a.jpg"]
    for f in files:
        Image.fromarray(rng.integers(0, 255, (8, 8), dtype=np.uint8)).save(f, format="PNG")
    (folder / "notes.txt").write_text("not an image")
    expected = sorted(files[:3])
    predictor = load_predictor(digits_run)
    one_by_one = {str(f): predict(predictor, [f], top_k=3).results[0].top for f in expected}
    monkeypatch.setattr(module, "BATCH", 2)
    done = predict(predictor, [folder], top_k=3)
    assert [r.path for r in done.results] == [str(f) for f in expected] and not done.failed
    for r in done.results:
        assert [c for c, _ in r.top] == [c for c, _ in one_by_one[r.path]]
        assert [q for _, q in r.top] == pytest.approx([q for _, q in one_by_one[r.path]], abs=1e-6)
    (tmp_path / "empty").mkdir()
    result = vs_here("predict", digits_run, folder, tmp_path / "empty", "--json")
    assert_user_error(result, "1 of 4 images could not be read", "empty: a folder without image files (bmp")
    assert [r["image"] for r in json.loads(result.stdout)] == [str(f) for f in expected]
    # the printed table tells apart images of one name in two folders (both were shown as x.png)
    for sub in ("cat", "dog"):
        (folder / sub).mkdir()
        Image.fromarray(rng.integers(0, 255, (8, 8), dtype=np.uint8)).save(folder / sub / "x[1].png")
    from visionstudy.cli import shown_names

    shown = vs_here("predict", digits_run, folder)
    rows = [line.split("│")[1].strip() for line in shown.stdout.splitlines() if line.startswith("│")]
    assert rows == ["a.jpg", "b/c.PNG", "cat/x[1].png", "dog/x[1].png", "z.png"], shown.stdout
    assert shown_names(["a/x.png", "b/x.png"]) == ["a/x.png", "b/x.png"]
    assert shown_names(["/p/a/x.png", "/p/b/y.png"]) == ["x.png", "y.png"]
    assert shown_names(["/p/a/x.png", "b/x.png"]) == ["/p/a/x.png", "b/x.png"]  # no folder shared


def test_gradcam_never_writes_into_a_users_folder(digits_run, tmp_path):
    from tests.helpers import assert_user_error, vs_here

    img = tmp_path / "a.png"
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(img)
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "thesis.tex").write_text("mine")
    assert_user_error(vs_here("predict", digits_run, img, "--gradcam", mine), "--gradcam", "is not this "
                      "command's output", "--force")
    assert sorted(p.name for p in mine.iterdir()) == ["thesis.tex"]
    cams = tmp_path / "cams"
    for _ in range(2):  # its own folder is taken again
        assert vs_here("predict", digits_run, img, "--gradcam", cams).returncode == 0
    assert [p.name for p in cams.iterdir()] == ["01_a_gradcam.png"]


def test_predicting_with_an_unfinished_run_says_so(digits_run, tmp_path):
    """It printed the predictions of a half-trained model as a finished run's, without a word
    (`export` warned)."""
    import shutil

    from tests.helpers import vs_here

    image = tmp_path / "x.png"
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(image)
    finished = vs_here("predict", digits_run, image)
    assert finished.returncode == 0 and "warning" not in finished.stderr, finished.stderr
    run = tmp_path / "run"
    shutil.copytree(digits_run, run)
    (run / "metrics.json").unlink()
    unfinished = vs_here("predict", run, image, "--json")
    assert unfinished.returncode == 0, unfinished.stderr
    assert json.loads(unfinished.stdout)[0]["image"] == str(image)  # the JSON stays clean
    said = " ".join(unfinished.stderr.split())
    assert f"warning: {run} has not finished (no metrics.json)" in said and "--resume --out" in said
    with pytest.warns(UserWarning, match="has not finished"):  # the API says it too
        assert vs.Run(run).predict([image], top_k=1)[0]["image"] == str(image)
