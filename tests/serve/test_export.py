"""`visionstudy export`: each format loads with its own library and gives the run's logits."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.helpers import assert_user_error, vs, vs_here
from visionstudy.serve.export import export_run


def reference(run, images):
    from visionstudy.evaluate.predict import load_predictor, preprocess

    p = load_predictor(run)
    x = preprocess(p, images).float()
    with torch.no_grad():
        return x, p.model(x).numpy()


def digits_test(n: int = 40) -> np.ndarray:
    from visionstudy.config import DataConfig
    from visionstudy.data import prepare

    return prepare(DataConfig(dataset="digits")).test.images[-n:]  # not the batch the check used


def predicts_as_the_run(run, exported, folder) -> Path:
    """`predict` with an exported file (beside its JSON) gives the run's top classes: the file handed
    on is checked with the tool that wrote it (it was "not a visionstudy checkpoint")."""
    from PIL import Image

    images = folder / "images"
    images.mkdir()
    for i, pixels in enumerate(digits_test(6)):
        Image.fromarray(pixels[..., 0]).save(images / f"{i}.png")
    expected = json.loads(vs_here("predict", run, images, "--json", "--top-k", "3").stdout)
    got = vs_here("predict", exported, images, "--json", "--top-k", "3")
    assert got.returncode == 0, got.stderr
    rows = json.loads(got.stdout)
    classes = lambda found: [[t["class"] for t in r["top"]] for r in found]  # noqa: E731
    probabilities = lambda found: [t["probability"] for r in found for t in r["top"]]  # noqa: E731
    assert classes(rows) == classes(expected) and len(rows) == 6
    assert np.allclose(probabilities(rows), probabilities(expected), atol=1e-4)
    return images


def test_onnx_from_the_command_runs_in_onnxruntime_with_the_runs_logits(digits_run, tmp_path):
    import onnxruntime

    out = tmp_path / "model.onnx"
    done = vs("export", digits_run, "--format", "onnx", "--out", out)
    assert done.returncode == 0, done.stderr
    assert "parity: max |Δlogit|" in done.stdout and "on 32 test images" in done.stdout
    printed = float(done.stdout.split("max |Δlogit| ")[1].split()[0])
    side = json.loads((tmp_path / "model.onnx.json").read_text())
    metrics = json.loads((digits_run / "metrics.json").read_text())
    assert side["class_names"] == metrics["class_names"] and side["input"]["shape"] == ["batch", 1, 8, 8]
    assert side["parity"]["max_abs_logit_diff"] == pytest.approx(printed, rel=0.01, abs=1e-9)
    assert printed < 1e-3
    x, expected = reference(digits_run, digits_test())
    session = onnxruntime.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    got = session.run(None, {"images": x.numpy()})[0]  # 40 images: the batch axis is dynamic
    assert got.shape == expected.shape and np.abs(got - expected).max() < 1e-3
    images = predicts_as_the_run(digits_run, out, tmp_path)
    # Grad-CAM needs the model's layers, which an ONNX graph does not give
    assert_user_error(vs_here("predict", out, images, "--gradcam", tmp_path / "cams"),
                      "--gradcam: ", "model.onnx is an exported model", "give the run folder it was exported")
    (tmp_path / "bad.onnx").write_text("not a graph")  # a damaged file beside a JSON: one error
    (tmp_path / "bad.onnx.json").write_text(json.dumps({"format": "onnx"}))
    assert_user_error(vs_here("predict", tmp_path / "bad.onnx", images),
                      "bad.onnx: not a readable onnx export")
    (tmp_path / "model.onnx.json").unlink()  # the file handed on without its JSON: told what is missing
    assert_user_error(vs_here("predict", out, images),
                      "model.onnx: an exported model is read with the JSON `export` wrote beside it "
                      "(model.onnx.json")


@pytest.mark.parametrize("fmt", ["torchscript", "safetensors"])
def test_torchscript_and_safetensors_load_with_their_libraries(digits_run, tmp_path, fmt):
    done = export_run(digits_run, fmt, tmp_path / f"m.{fmt}")
    assert done.max_abs_diff < 1e-3 and done.test_images and done.images == 32
    x, expected = reference(digits_run, digits_test())
    if fmt == "torchscript":
        extra = {"visionstudy.json": ""}
        loaded = torch.jit.load(str(done.path), _extra_files=extra)
        got = loaded(x).detach().numpy()
        assert json.loads(extra["visionstudy.json"])["class_names"] == [str(i) for i in range(10)]
    else:
        from safetensors import safe_open

        from visionstudy.models import create_model

        with safe_open(str(done.path), framework="pt") as f:
            meta = json.loads(f.metadata()["visionstudy"])
            state = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118
        model = dict(meta["model"])
        net = create_model(model.pop("name"), 1, 10, (8, 8), skeleton=True, **model)
        net.load_state_dict(state)
        got = net.eval()(x).detach().numpy()
    assert np.abs(got - expected).max() < 1e-4
    images = predicts_as_the_run(digits_run, done.path, tmp_path)
    if fmt == "safetensors":  # the rebuilt model has its layers: Grad-CAM as with the run
        cams = vs_here("predict", done.path, images / "0.png", "--gradcam", tmp_path / "cams")
        assert cams.returncode == 0 and (tmp_path / "cams" / "01_0_gradcam.png").is_file(), cams.stderr


def test_export_errors_are_clear(digits_run, tmp_path):
    assert_user_error(vs_here("export", digits_run, "--format", "tflite", "--out", tmp_path / "m"),
                      "not an export format", "onnx, torchscript, safetensors")
    done = vs_here("export", digits_run, "--format", "SafeTensors", "--out", tmp_path / "m.safetensors")
    assert done.returncode == 0 and (tmp_path / "m.safetensors").stat().st_size > 1000, done.stderr
    assert_user_error(vs_here("export", digits_run, "--format", "torchscript", "--out", digits_run / "m.pt"),
                      "inside the run folder", "exports never write into runs")
    assert not (digits_run / "m.pt").exists()


def test_a_missing_export_package_is_named_after_the_folder_is_checked(digits_run, tmp_path, monkeypatch):
    """Without the export extra, `export` of a folder that is no run said to pip install onnx (and,
    once installed, that the folder holds runs); the folder is checked first, then the packages."""
    import importlib.util

    found = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name.startswith("onnx")
                        else found(name, *a))
    (tmp_path / "study" / "a" / "seed-0" / "checkpoints").mkdir(parents=True)
    assert_user_error(vs_here("export", tmp_path / "study" / "a"), "holds 1 run", "pass it")
    assert_user_error(vs_here("export", digits_run, "--out", tmp_path / "m.onnx"),
                      "--format onnx needs onnx, onnxruntime, onnxscript",
                      "pip install 'visionstudy[export]'")
    assert not (tmp_path / "m.onnx").exists()


def test_a_study_run_is_exported_under_its_place_in_the_study(tmp_path):
    from visionstudy.serve.export import default_out

    run = tmp_path / "runs" / "quick" / "baseline" / "seed-1"
    run.mkdir(parents=True)
    (tmp_path / "runs" / "quick" / "manifest.json").write_text("{}")
    assert default_out(run, "onnx").as_posix() == "exports/quick-baseline-seed-1.onnx"
    assert default_out(tmp_path / "alone", "safetensors").as_posix() == "exports/alone.safetensors"


def test_export_never_replaces_a_users_file_or_another_runs_export(digits_run, tmp_path):
    import shutil

    from visionstudy.errors import ConfigError

    notes = tmp_path / "notes.txt"
    notes.write_text("mine")
    assert_user_error(vs_here("export", digits_run, "--format", "safetensors", "--out", notes),
                      "exists and is not this command's output", "--force")
    assert notes.read_text() == "mine"
    out = tmp_path / "m.safetensors"
    export_run(digits_run, "safetensors", out)
    export_run(digits_run, "safetensors", out)  # the same run again: its own earlier export is replaced
    other = tmp_path / "elsewhere" / digits_run.name  # another run with the same folder name
    shutil.copytree(digits_run, other)
    before = out.read_bytes()
    with pytest.raises(ConfigError, match="an export of another run"):
        export_run(other, "safetensors", out)
    assert out.read_bytes() == before
    export_run(other, "safetensors", out, force=True)
    assert json.loads((tmp_path / "m.safetensors.json").read_text())["run"] == str(other.resolve())


def test_export_into_a_folder_or_an_impossible_path_is_one_clear_error(digits_run, tmp_path):
    assert_user_error(vs_here("export", digits_run, "--format", "torchscript", "--out", tmp_path),
                      "is a folder", f"e.g. --out {tmp_path / digits_run.name}.pt")  # not {tmp_path}/out
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert_user_error(vs_here("export", digits_run, "--format", "torchscript", "--out", blocker / "m.pt"),
                      "cannot write")
    assert blocker.read_text() == "x"


def test_an_unfinished_run_is_exported_with_a_warning(digits_run, tmp_path):
    import shutil

    run = tmp_path / "unfinished"
    shutil.copytree(digits_run, run)
    (run / "metrics.json").unlink()
    done = vs_here("export", run, "--format", "torchscript", "--out", tmp_path / "u.pt")
    assert done.returncode == 0, done.stderr
    assert "has not finished" in done.stderr and "--resume" in done.stderr
    assert json.loads((tmp_path / "u.pt.json").read_text())["finished"] is False


def test_torchscript_exports_in_the_process_that_trained_the_run(digits_run, tmp_path):
    """A notebook trains a run (which defers torch._dynamo) and exports it: tracing imports
    torch.distributed.tensor, which reached for dynamo mid-import and failed as a circular import."""
    import subprocess
    import sys

    code = ("from pathlib import Path\nfrom visionstudy.training.devices import defer_dynamo\n"
            "defer_dynamo()\nfrom visionstudy.serve.export import export_run\n"
            f"done = export_run(Path({str(digits_run)!r}), 'torchscript', Path({str(tmp_path / 'm.pt')!r}))\n"
            "print(done.max_abs_diff < 1e-3, done.images)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.stdout.split() == ["True", "32"], out.stderr[-2000:]
