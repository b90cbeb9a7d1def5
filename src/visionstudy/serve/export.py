"""Export a finished run's model to hand it on: ONNX, TorchScript or safetensors, with its class
names and normalisation in a JSON file beside it, and a parity check against the run's own model.

    visionstudy export runs/digits-quick --format onnx            # → exports/digits-quick.onnx (+ .json)
    visionstudy export runs/digits-quick --format safetensors --out model.safetensors

Every format takes float32 NCHW images normalised as the JSON says, ((pixel / 255) - mean) / std, and
gives logits (the raw model: a run's test-time flip averaging is the caller's to repeat; the JSON
says whether the run used it). The parity check runs a batch of the run's test images (random
images of the right shape when the dataset is not on this machine, and the JSON says so) through
the exported file — ONNX through onnxruntime, TorchScript through torch.jit.load, safetensors by
rebuilding the model from the config its JSON gives — and compares the logits with the run's
model: max |Δlogit| is printed and written; above 1e-3 the export is refused and removed. The same
loaders let `predict` and `demo` use an exported file (`exported`).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from visionstudy.errors import ConfigError, VisionStudyError
from visionstudy.store.rundir import claim_destination

FORMATS = {"onnx": ".onnx", "torchscript": ".pt", "safetensors": ".safetensors"}
NEEDS = {"onnx": ("onnx", "onnxruntime", "onnxscript"), "safetensors": ("safetensors",)}  # the export extra
TOLERANCE = 1e-3  # max |Δlogit| an export may differ by (float32 kernels differ in summation order)
BATCH = 32


@dataclass(frozen=True)
class Exported:
    path: Path
    sidecar: Path
    format: str
    max_abs_diff: float
    images: int
    test_images: bool  # False: random images (the dataset was not here)
    finished: bool  # False: the run has no metrics.json (its last checkpoint was exported)


def default_out(run: Path, fmt: str) -> Path:
    """exports/<run>.<ext>; a study's run is named by its place in the study (quick-baseline-seed-0)."""
    from visionstudy.store.rundir import run_place

    return Path("exports") / f"{'-'.join(run_place(run))}{FORMATS[fmt]}"


def export_run(run: Path, fmt: str, out: Path | None = None, data_dir: Path | None = None,
               force: bool = False) -> Exported:
    """Write the run's model as `fmt` to `out` (default exports/<run>.<ext>) with its JSON sidecar,
    after checking the file against the run's model. An existing file is replaced only when it is
    an earlier export of this same run (its sidecar says so), or with `force`."""
    from visionstudy.evaluate.predict import load_predictor, preprocess
    from visionstudy.fsutil import file_mode, storage_error

    if fmt not in FORMATS:
        raise ConfigError(f"--format {fmt}: not an export format; choose from {', '.join(FORMATS)}")
    out = Path(out) if out else default_out(run, fmt)
    if out.is_dir():  # the file the message offers is the run's own name with the format's suffix
        raise ConfigError(f"--out {out}: is a folder; give the file to write, e.g. --out "
                          f"{out / default_out(run, fmt).name}")
    check_out(out, run, force)  # a read-only or impossible folder fails before the model is loaded
    predictor = load_predictor(run)  # a folder that is no run is told so before a missing package
    check_installed(fmt)
    pixels, real = parity_images(run, predictor.image_shape, data_dir)
    x = preprocess(predictor, pixels).float().contiguous()
    with torch.inference_mode():
        expected = predictor.model(x).float().numpy()
    info = sidecar(run, fmt, predictor, predictor.checkpoint)
    partial = out.with_name(f".{out.name}.partial")
    side = out.with_name(out.name + ".json")
    try:
        WRITERS[fmt](predictor.model, x, partial, info)
        with torch.no_grad():
            got = LOADERS[fmt](partial, info)(x).float().numpy()
        diff = float(np.abs(got - expected).max())
        if not np.isfinite(diff) or diff > TOLERANCE:
            raise VisionStudyError(f"the {fmt} export disagrees with the run's model: max |Δlogit| "
                                   f"{diff:.3g} on {len(x)} images (tolerance {TOLERANCE:g}); "
                                   "nothing was written")
        os.chmod(partial, file_mode())  # as every file we write: readable by colleagues under 022
        info["parity"] = {"max_abs_logit_diff": diff, "images": len(x),
                          "on": "test images" if real
                          else "random images (the dataset was not on this machine)"}
        side_partial = side.with_name(f".{side.name}.partial")
        side_partial.write_text(json.dumps(info, indent=1))
        os.replace(partial, out)
        os.replace(side_partial, side)
    except OSError as exc:  # a read-only folder, a full disk: nothing half-written is left
        raise storage_error(out, exc) from None
    finally:
        partial.unlink(missing_ok=True)
        side.with_name(f".{side.name}.partial").unlink(missing_ok=True)
    return Exported(out, side, fmt, diff, len(x), real, info["finished"])


def check_installed(fmt: str) -> None:
    """The packages `fmt` is written and checked with, or one error naming the extra to install."""
    import importlib.util

    missing = [m for m in NEEDS.get(fmt, ()) if importlib.util.find_spec(m) is None]
    if missing:
        raise VisionStudyError(f"--format {fmt} needs {', '.join(missing)}: "
                               "pip install 'visionstudy[export]'")


def sidecar_of(path: Path) -> dict[str, Any] | None:
    """The JSON `export` wrote beside `path` (classes, input, the run it came from), or None where
    `path` is no export of ours."""
    try:
        info = json.loads(path.with_name(path.name + ".json").read_text())
    except (OSError, ValueError):
        return None
    return info if isinstance(info, dict) and info.get("format") in FORMATS else None


def exported_run(out: Path) -> str | None:
    """The run an existing export was made from (its sidecar says), or None."""
    info = sidecar_of(out)
    return None if info is None else info.get("run")


def check_out(out: Path, run: Path, force: bool) -> None:
    """Replace only an earlier export of this same run (the one rule of `claim_destination`); an
    export of another run is named as such."""
    earlier = exported_run(out) if out.is_file() else None
    if earlier is not None and not force and Path(earlier).resolve() != Path(run).resolve():
        raise ConfigError(f"--out {out}: the file exists and is an export of another run ({earlier}); "
                          "it is kept. Choose another --out, or pass --force to replace it")
    claim_destination(out, "--out", "exports", own=lambda p: exported_run(p) is not None, force=force)


def parity_images(run: Path, shape: tuple[int, int, int], data_dir: Path | None) -> tuple[np.ndarray, bool]:
    """The first BATCH test images of the run's dataset (uint8 N, H, W, C), or seeded random ones."""
    from visionstudy.report.images import load_data
    from visionstudy.store.reader import load_run

    try:
        data, _ = load_data(load_run(run), data_dir)
    except VisionStudyError:
        data = None
    if data is not None and len(data.test):
        return data.test.images[:BATCH], True
    c, h, w = shape
    return np.random.default_rng(0).integers(0, 256, (BATCH, h, w, c), dtype=np.uint8), False


def sidecar(run: Path, fmt: str, predictor: Any, ckpt: Path) -> dict[str, Any]:
    """What a user of the file needs: classes, input shape and normalisation, and where it came from."""
    from visionstudy.store.reader import read_config, read_metrics
    from visionstudy.store.rundir import RunDir

    config = read_config(run)
    try:
        metrics = read_metrics(run)
    except (OSError, ValueError):  # an unfinished run: its last checkpoint was exported
        metrics = {}
    return {
        "format": fmt, "class_names": predictor.class_names,
        "input": {"shape": ["batch", *predictor.image_shape], "dtype": "float32", "layout": "NCHW",
                  "normalise": "(pixel / 255 - mean) / std, per channel", "mean": list(predictor.mean),
                  "std": list(predictor.std)},
        "output": "logits (softmax gives probabilities)",
        "test_time_augmentation": ("the run averaged logits with the mirrored image" if predictor.tta
                                   else "none"),
        "model": {k: v for k, v in (config.get("model") or {}).items()},
        "run": str(Path(run).resolve()), "checkpoint": str(ckpt),
        "test_accuracy": metrics.get("test_accuracy"),
        "finished": RunDir(run).is_finished(),
    }


# --------------------------------------------------------------------------------- the formats


def write_onnx(model: torch.nn.Module, x: torch.Tensor, path: Path, info: dict[str, Any]) -> None:
    """torch.export-based ONNX (the maintained exporter), any batch size."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        program = torch.onnx.export(model.eval(), (x,), input_names=["images"], output_names=["logits"],
                                    dynamic_shapes=({0: torch.export.Dim("batch")},), dynamo=True,
                                    verbose=False)
    if program is None:
        raise VisionStudyError("torch.onnx.export returned no program")
    program.save(str(path))


def write_torchscript(model: torch.nn.Module, x: torch.Tensor, path: Path, info: dict[str, Any]) -> None:
    """A traced TorchScript file (PyTorch 2.14 deprecates TorchScript for torch.export: it is kept
    for the C++ runtimes and mobile tools that still load it), the JSON inside as an extra file."""
    import warnings

    from visionstudy.training.devices import real_dynamo

    real_dynamo()  # the trace's output check imports torch.distributed.tensor, which reaches for dynamo
    #                mid-import: a run's deferred stand-in loading it then is a circular import
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore", FutureWarning)
        traced = torch.jit.trace(model.eval(), x)
        torch.jit.save(traced, str(path), _extra_files={"visionstudy.json": json.dumps(info)})


def write_safetensors(model: torch.nn.Module, x: torch.Tensor, path: Path, info: dict[str, Any]) -> None:
    from safetensors.torch import save_file

    state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(path), metadata={"visionstudy": json.dumps(info)})


class OnnxModel(torch.nn.Module):
    """An ONNX export run by onnxruntime, called as the run's model is: images in, logits out."""

    def __init__(self, path: Path) -> None:
        import onnxruntime

        super().__init__()
        self.session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(self.session.run(["logits"], {"images": x.float().cpu().numpy()})[0])


def torchscript_model(path: Path, info: dict[str, Any]) -> torch.nn.Module:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        return torch.jit.load(str(path)).eval()


def safetensors_model(path: Path, info: dict[str, Any]) -> torch.nn.Module:
    """The model rebuilt from the config the JSON gives, with the file's tensors."""
    from safetensors.torch import load_file

    from visionstudy.models import create_model

    model = dict(info["model"])
    c, h, w = info["input"]["shape"][1:]
    net = create_model(model.pop("name"), c, len(info["class_names"]), (h, w), skeleton=True, **model)
    net.load_state_dict(load_file(str(path)))
    return net.eval()


def exported(path: Path, device: str = "cpu") -> tuple[Any, dict[str, Any]] | None:
    """An exported file read as `predict` reads a run (its model, classes and normalisation in a
    Predictor) with its JSON; None for a file or folder that is no export (a run, a checkpoint)."""
    from visionstudy.errors import CheckpointError
    from visionstudy.evaluate.predict import Predictor

    info = sidecar_of(path) if path.is_file() else None
    if info is None:
        if path.is_file() and path.suffix in (".onnx", ".safetensors"):
            raise CheckpointError(f"{path}: an exported model is read with the JSON `export` wrote beside "
                                  f"it ({path.name}.json: its classes and normalisation), and there is "
                                  "none; copy it beside the file, or give the run folder")
        return None
    fmt = info["format"]
    check_installed(fmt)
    try:
        model = LOADERS[fmt](path, info).to(device)  # an ONNX graph has no weights to move: the CPU's
        c, h, w = (int(v) for v in info["input"]["shape"][1:])
        predictor = Predictor(model, [str(n) for n in info["class_names"]], tuple(info["input"]["mean"]),
                              tuple(info["input"]["std"]), (c, h, w), path,
                              info.get("test_time_augmentation", "none") != "none")
    except Exception as exc:  # noqa: BLE001 - a damaged file or JSON: named, not a traceback
        raise CheckpointError(f"{path}: not a readable {fmt} export with {path.name}.json ({exc})") from None
    return predictor, info


WRITERS = {"onnx": write_onnx, "torchscript": write_torchscript, "safetensors": write_safetensors}
LOADERS = {"onnx": lambda path, info: OnnxModel(path), "torchscript": torchscript_model,
           "safetensors": safetensors_model}
