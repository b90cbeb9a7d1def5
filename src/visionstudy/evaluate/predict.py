"""Classify image files with a trained run: its best checkpoint, class names and preprocessing.

    visionstudy predict runs/digits-quick photo.png scan.jpg --top-k 3
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from visionstudy.config import check_count
from visionstudy.data.loader import normalise_images
from visionstudy.errors import CheckpointError, ConfigError, DataError, VisionStudyError
from visionstudy.models import Classifier, create_model
from visionstudy.training.checkpoint import load_checkpoint


@dataclass
class Predictor:
    model: torch.nn.Module  # a run's Classifier, or an exported file's model (serve.export)
    class_names: list[str]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    image_shape: tuple[int, int, int]  # (channels, height, width) the model was trained on
    checkpoint: Path
    tta: bool = False  # the run's test-time augmentation: average with the mirrored image


def checkpoint_path(path: Path) -> Path:
    """A run directory means the checkpoint that stands for the run (the store's choice: the one
    its test used); a file is itself."""
    from visionstudy.store.reader import holds_runs
    from visionstudy.store.rundir import RunDir

    if path.is_dir():
        found = RunDir(path).checkpoint() or next(
            (p for p in (path / "best.pt", path / "last.pt") if p.is_file()), None)  # a bare folder of .pt
        if found is None:
            raise CheckpointError(holds_runs(path, several=False) or
                                  f"{path}: no checkpoints/best.pt or last.pt; is it a visionstudy run?")
        return found
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint or run directory")
    return path


def meta_from_run_dir(ckpt: Path) -> dict[str, Any]:
    """Older checkpoints carry no class names: read them from the run's config.yaml."""
    from visionstudy.store.reader import read_config, resolved

    for folder in (ckpt.parent.parent, ckpt.parent):
        ds = resolved(read_config(folder)).get("dataset", {})
        if ds.get("class_names") and ds.get("mean") and ds.get("image_shape"):
            return {k: ds[k] for k in ("class_names", "mean", "std", "image_shape")}
    raise CheckpointError(
        f"{ckpt}: the checkpoint has no class names or preprocessing and no run config.yaml is "
        "beside it; keep the checkpoint inside its run directory"
    )


def load_run_model(path: Path) -> tuple[Classifier, dict[str, Any], Path]:
    """The model of a run (or of a checkpoint file) with its weights, the checkpoint's meta
    (class names, preprocessing) and the checkpoint's path: one loader for `predict` and the report."""
    from visionstudy.tasks import task_of_metrics
    from visionstudy.validate import validate_run_config

    ckpt = checkpoint_path(Path(path))
    state = load_checkpoint(ckpt)
    if not isinstance(state.get("config"), dict) or "model" not in state:
        raise CheckpointError(f"{ckpt}: a visionstudy checkpoint without its run config or weights")
    cfg = validate_run_config(dict(state["config"]), f"{ckpt} (embedded config)")
    meta = state.get("meta") or meta_from_run_dir(ckpt)
    if task_of_metrics(meta).model_kind != "image":
        raise CheckpointError(f"{ckpt}: a {meta['task']} run; predict, demo, export and the image "
                              "figures are for image classifiers (`visionstudy report` gives its "
                              "metrics and curves)")
    c, h, w = (int(v) for v in meta["image_shape"])
    net = create_model(cfg.model.name, c, len(meta["class_names"]), (h, w), skeleton=True,
                       **cfg.model.params())
    if not isinstance(net, Classifier):
        raise CheckpointError(f"{ckpt}: model {cfg.model.name!r} is not an image classifier")
    try:
        net.load_state_dict(state["model"])
    except RuntimeError as exc:
        raise CheckpointError(f"{ckpt}: the weights do not fit the model in its config ({exc})") from None
    return net.eval(), {**meta, "tta": cfg.train.tta}, ckpt


def load_predictor(path: Path, device: str = "cpu") -> Predictor:
    net, meta, ckpt = load_run_model(path)
    c, h, w = (int(v) for v in meta["image_shape"])
    return Predictor(net.to(device).eval(), list(meta["class_names"]), tuple(meta["mean"]),
                     tuple(meta["std"]), (c, h, w), ckpt, bool(meta.get("tta")))


def unfinished(path: Path, p: Predictor) -> str | None:
    """What predictions from a run directory that has not finished must say (stopped, or still
    training); None for a finished run, or a checkpoint file given by itself."""
    from visionstudy.store.rundir import RunDir

    run = RunDir(Path(path))
    if not run.path.is_dir() or not run.is_run() or run.is_finished():
        return None
    return (f"{path} has not finished (no metrics.json): these are the predictions of {p.checkpoint}, "
            "its test accuracy unknown")


def read_image(path: Path, shape: tuple[int, int, int]) -> np.ndarray:
    """An image file as the run's training read it (`visionstudy.data.images`): uint8 (H, W, C)."""
    from visionstudy.data.images import ImageReadError
    from visionstudy.data.images import read_image as decode

    c, h, w = shape
    try:
        return decode(path, (h, w), c)
    except FileNotFoundError:
        raise DataError(f"{path}: no such image file") from None
    except ImageReadError as exc:
        raise DataError(f"{path}: not a readable image ({exc})") from None


def preprocess(p: Predictor, images: np.ndarray) -> torch.Tensor:
    weight = next(p.model.parameters(), None)  # an ONNX export has none: it runs on the CPU
    return normalise_images(images, p.mean, p.std).to("cpu" if weight is None else weight.device)


@dataclass
class Prediction:
    path: str
    top: list[tuple[str, float]]  # (class name, probability), most likely first


@torch.inference_mode()
def logits_of(p: Predictor, images: np.ndarray) -> torch.Tensor:
    """The model's logits for uint8 images, with the run's test-time augmentation as in its test."""
    x = preprocess(p, images)
    logits = p.model(x).float()
    return (logits + p.model(x.flip(3)).float()) / 2 if p.tta else logits


BATCH = 256  # images per forward pass: a folder of thousands is classified in bounded memory


def classify(p: Predictor, images: np.ndarray, names: list[str], top_k: int = 5) -> list[Prediction]:
    """Top-k classes of uint8 images (N, H, W, C) already read by the one image reader."""
    probs = np.concatenate([torch.softmax(logits_of(p, images[i:i + BATCH]), dim=1).cpu().numpy()
                            for i in range(0, len(images), BATCH)])
    k = min(top_k, len(p.class_names))
    out = []
    for name, row in zip(names, probs, strict=True):
        order = np.argsort(-row, kind="stable")[:k]
        out.append(Prediction(name, [(p.class_names[i], float(row[i])) for i in order]))
    return out


def by_folder(results: list[Prediction], class_names: list[str]) -> tuple[int, int, int] | None:
    """(right at the top, right within the top k, images) when each image lies in a folder named
    after one of the run's classes, as a labelled test folder does (imagefolder's layout); else None."""
    labels = [Path(r.path).parent.name for r in results]
    if not results or any(label not in class_names for label in labels):
        return None
    first = sum(r.top[0][0] == label for r, label in zip(results, labels, strict=True))
    within = sum(label in [c for c, _ in r.top] for r, label in zip(results, labels, strict=True))
    return first, within, len(results)


@dataclass
class Predicted:
    results: list[Prediction]  # the images that could be read, in the order given
    pixels: np.ndarray  # their preprocessed uint8 images, for Grad-CAM
    failed: list[str]  # one message per file that could not be read, naming it


def image_paths(paths: list[Path]) -> tuple[list[Path], list[str]]:
    """The files to classify: each file as given, and for a folder its image files (subfolders
    too, by extension, sorted); a folder without any is named as a failure."""
    from visionstudy.data.images import EXTENSION_NAMES, image_files

    files, failed = [], []
    for path in map(Path, paths):
        if not path.is_dir():
            files.append(path)
        elif found := image_files(path):
            files += found
        else:
            failed.append(f"{path}: a folder without image files ({EXTENSION_NAMES})")
    return files, failed


def in_memory(item: Any) -> bool:
    """An image given as itself (a PIL image, an array, a tensor), not as a file's path."""
    from PIL import Image

    return isinstance(item, Image.Image | np.ndarray | torch.Tensor)


def as_inputs(images: Any) -> list[Any]:
    """`Run.predict`'s argument as a list of images: a path, a PIL image or one array is one image;
    an array of 4 axes (N, H, W, C), or of 3 whose last is not 1, 3 or 4 (N, H, W: a batch of
    grayscale images), is a batch; a list is its items."""
    if isinstance(images, str | Path):
        return [images]
    if not in_memory(images):
        if not hasattr(images, "__iter__"):
            raise ConfigError(f"images={images!r:.60}: expected an image file's path, a folder, a PIL "
                              "image, an array, or a list of them")
        return list(images)
    shape: tuple[int, ...] = tuple(getattr(images, "shape", ()))
    batch = len(shape) == 4 or (len(shape) == 3 and shape[-1] not in (1, 3, 4))
    return list(images) if batch else [images]


def predict(p: Predictor, inputs: Sequence[Any], top_k: int = 5) -> Predicted:
    """Top-k classes of each readable image: a file, each image file in a folder, or an image in
    memory (named by its position, `[2]`); a bad file among many is reported, not fatal."""
    from visionstudy.data.images import ImageReadError, image_array

    top_k = check_count(top_k, "top_k")
    if not len(inputs):
        raise VisionStudyError("give at least one image file or folder")
    read: list[str] = []
    images, failed = [], []
    c, h, w = p.image_shape
    for i, item in enumerate(inputs):
        if in_memory(item):
            try:
                images.append(image_array(item, (h, w), c))
                read.append(f"[{i}]")
            except ImageReadError as exc:
                failed.append(f"images[{i}]: {exc}")
            continue
        if not isinstance(item, str | Path):
            raise ConfigError(f"images[{i}]={item!r:.60}: expected an image file's path, a folder, a PIL "
                              "image or an array")
        files, missing = image_paths([Path(item)])
        failed += missing
        for f in files:
            try:
                images.append(read_image(f, p.image_shape))
                read.append(str(f))
            except DataError as exc:
                failed.append(str(exc))
    if not images:
        return Predicted([], np.zeros((0, h, w, c), np.uint8), failed)
    pixels = np.stack(images)
    return Predicted(classify(p, pixels, read, top_k), pixels, failed)
