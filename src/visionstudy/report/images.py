"""Figures that need the images themselves: samples, augmentations, misclassified, Grad-CAM.

They reload the run's dataset through the data stage (no training) and its best checkpoint;
when the dataset files are not on this machine the report says so and goes on without them.
"""

from __future__ import annotations

import logging
from functools import partial
from pathlib import Path

import numpy as np
import torch

from visionstudy.config import RunConfig
from visionstudy.data import PreparedData, build_pipeline, prepare
from visionstudy.data.loader import normalise_images
from visionstudy.data.preview import sample_grid
from visionstudy.errors import VisionStudyError
from visionstudy.evaluate import probabilities, top_losses
from visionstudy.evaluate.cam import gradcam
from visionstudy.models import Classifier
from visionstudy.report import figures as F
from visionstudy.report.drawing import Sketch
from visionstudy.store.reader import RunArtifacts

log = logging.getLogger(__name__)


def run_config(art: RunArtifacts) -> RunConfig:
    """The run's config (without its `resolved` section; a relative data.path read from the folder
    the run started in), validated as a run config."""
    from visionstudy.store.reader import asked_here
    from visionstudy.store.rundir import RunDir
    from visionstudy.validate import validate_run_config

    return validate_run_config(asked_here(art.config), str(RunDir(art.path).config))


def load_data(art: RunArtifacts, data_dir: Path | None) -> tuple[PreparedData | None, str]:
    """The run's prepared data, or None and the reason it could not be had."""
    try:
        cfg = run_config(art)
        data = prepare(cfg.data, data_dir)
    except VisionStudyError as exc:
        return None, f"the dataset could not be loaded here ({exc}); image figures are left out"
    if art.predictions is not None and not np.array_equal(data.test.labels, art.predictions["labels"]):
        return None, ("the test set loaded here differs from the one the run was evaluated on; "
                      "image figures are left out")
    return data, ""


def load_model(art: RunArtifacts, data: PreparedData) -> Classifier:
    """The run's model with the weights that stand for it (the store's best-else-last), through the
    loader `predict` uses."""
    from visionstudy.evaluate.predict import load_run_model

    return load_run_model(art.path)[0]


def to_unit(images: np.ndarray) -> np.ndarray:
    """uint8 (N, H, W, C) → float 0..1 for display."""
    return images.astype(np.float32) / 255.0


def samples_figure(data: PreparedData, seed: int) -> Sketch:
    images, titles = sample_grid(data, None, 32, seed)
    return partial(F.image_grid, images, titles, "Training images")


def one_per_class_figure(data: PreparedData, seed: int) -> Sketch:
    """One training image of every class, in class order (the seeds' first figure)."""
    rng = np.random.default_rng(seed)
    labels = data.train.labels
    idx = [int(rng.choice(np.flatnonzero(labels == c))) for c in range(data.num_classes)
           if (labels == c).any()]
    titles = [F.short(data.class_names[int(labels[i])], 12) for i in idx]
    cols = 10 if len(idx) > 12 else len(idx)
    return partial(F.image_grid, to_unit(data.train.images[idx]), titles, "One training image per class",
                   cols=cols)


def predictions_figure(data: PreparedData, art: RunArtifacts, count: int, seed: int) -> Sketch | None:
    """A seeded sample of test images with true and predicted class: right ones in green, wrong in
    red, half of each where the run has enough errors."""
    assert art.predictions is not None
    labels = art.predictions["labels"]
    probs = probabilities(art.predictions["logits"])
    pred = probs.argmax(1)
    rng = np.random.default_rng(seed)
    right, wrong = np.flatnonzero(pred == labels), np.flatnonzero(pred != labels)
    n_wrong = min(len(wrong), count // 2)
    picks = [*rng.permutation(wrong)[:n_wrong], *rng.permutation(right)[:count - n_wrong]]
    if not picks:
        return None
    idx = np.array(sorted(int(i) for i in picks))
    names = art.class_names
    titles = [f"{F.short(names[labels[i]], 10)}\n→ {F.short(names[pred[i]], 10)} {probs[i, pred[i]]:.0%}"
              for i in idx]
    colors = ["#1a7f37" if pred[i] == labels[i] else "#b22222" for i in idx]
    return partial(F.image_grid, to_unit(data.test.images[idx]), titles,
                        "Test predictions (true → predicted, confidence): green right, red wrong", colors)


def augmentation_figure(data: PreparedData, art: RunArtifacts, seed: int) -> Sketch | None:
    augment = run_config(art).data.augment
    if not augment:
        return None
    images, titles = sample_grid(data, build_pipeline(augment), 32, seed)
    names = ", ".join(a.name for a in augment)
    return partial(F.image_grid, images, titles, f"The same kind of batch after augmentation ({names})")


def misclassified_figure(data: PreparedData, art: RunArtifacts, count: int) -> Sketch | None:
    """The most confidently wrong test images (highest loss first)."""
    assert art.predictions is not None
    names = art.class_names
    top = top_losses(art.predictions["logits"], art.predictions["labels"], count)
    if not len(top.index):
        return None
    truth = art.predictions["labels"][top.index]
    titles = [f"{F.short(names[t], 10)} → {F.short(names[p], 10)}\n{c:.0%}"
              for t, p, c in zip(truth, top.predicted, top.confidence, strict=True)]
    return partial(F.image_grid, to_unit(data.test.images[top.index]), titles,
                        "Most confidently wrong test images (true → predicted, confidence)",
                        colors=["#b22222"] * len(titles))


def gradcam_figure(data: PreparedData, net: Classifier, art: RunArtifacts, count: int,
                   seed: int) -> Sketch:
    """Grad-CAM for the predicted class over one test image per class (up to `count`)."""
    assert art.predictions is not None
    labels = art.predictions["labels"]
    rng = np.random.default_rng(seed)
    picks = [int(rng.choice(np.flatnonzero(labels == c))) for c in range(data.num_classes)
             if (labels == c).any()]
    idx = np.array(sorted(rng.permutation(picks)[:count]))
    preds = probabilities(art.predictions["logits"][idx]).argmax(1)
    stats = art.resolved.get("dataset", {})  # what the run trained with (e.g. ImageNet's for weights)
    x = normalise_images(data.test.images[idx], stats.get("mean", data.mean), stats.get("std", data.std))
    heat = gradcam(net, x, torch.from_numpy(preds))
    names = art.class_names
    titles = [f"{F.short(names[t], 10)} → {F.short(names[p], 10)}" for t, p in
              zip(labels[idx], preds, strict=True)]
    colors = ["#1a7f37" if t == p else "#b22222" for t, p in zip(labels[idx], preds, strict=True)]
    return partial(F.image_grid, to_unit(data.test.images[idx]), titles,
                        "Grad-CAM for the predicted class (true → predicted)", colors, heat)
