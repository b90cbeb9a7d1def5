"""One run path for every task (issue #14, item 1): the task registry, set data as a dataset
source, and every training option working for set runs or refused at validation."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from tests.helpers import ROOT, vs
from visionstudy.errors import ConfigError, DataError
from visionstudy.experiment import run_experiment
from visionstudy.tasks import TASKS, get_task, list_tasks, task_of
from visionstudy.training.checkpoint import load_checkpoint
from visionstudy.validate import validate_run_config

SETS = {"name": "s", "data": {"dataset": "sets", "sets": {"train": 200, "val": 40, "test": 40}},
        "model": {"name": "deepsets", "layers": 2, "width": 8},
        "train": {"epochs": 2, "batch_size": 32, "optimizer": {"name": "adam", "lr": 1e-2}}}


def sets_cfg(**train):
    return validate_run_config({**SETS, "train": {**SETS["train"], **train}})


@pytest.mark.parametrize("name", list_tasks())
def test_every_task_declares_its_contract(name):
    task = get_task(name)
    assert task.name == name and task.headline.startswith("test_")
    assert isinstance(task.maximize, bool) and task.default_monitor in ("val_loss", "val_accuracy")
    assert task.sections and task.model_kind in ("image", "set")
    assert set(list_tasks()) == {"classification", "regression"} and len(TASKS.names()) == 2


def test_the_task_comes_from_the_dataset_source():
    assert task_of(sets_cfg()).name == "regression"
    assert task_of(validate_run_config({"data": {"dataset": "digits"}})).name == "classification"


def test_the_set_task_evaluates_in_the_shared_cpu_batches_too():
    """train.eval_batch_size is capped on a CPU for every task (tasks.base.eval_batch), not only
    for images; elsewhere it is the batch."""
    from visionstudy.tasks.base import CPU_EVAL_BATCH, eval_batch

    sizes = {"train": 64, "val": 40, "test": 300}
    cfg = validate_run_config({**SETS, "data": {"dataset": "sets", "sets": sizes},
                               "train": {**SETS["train"], "eval_batch_size": 1024}})
    task = task_of(cfg)
    _, _, test = task.loaders(task.prepare(cfg, None), cfg, torch.device("cpu"), False, 0, 1)
    assert [len(x) for x, _ in test] == [CPU_EVAL_BATCH, 300 - CPU_EVAL_BATCH]
    assert eval_batch(cfg, torch.device("cuda")) == 1024  # a GPU takes the configured batch whole


def test_sets_is_listed_with_the_datasets():
    result = vs("datasets", "list")
    assert result.returncode == 0 and "sets" in result.stdout


@pytest.mark.parametrize("train, field", [
    ({"tta": True}, "train.tta"),
    ({"label_smoothing": 0.1}, "train.label_smoothing"),
    ({"monitor": "val_accuracy"}, "train.monitor"),
    ({"early_stopping": {"monitor": "val_accuracy", "patience": 2}}, "train.early_stopping.monitor"),
    ({"scheduler": {"name": "plateau", "monitor": "val_accuracy"}}, "train.scheduler.monitor"),
    ({"channels_last": "on"}, "train.channels_last"),
])
def test_options_that_cannot_work_for_sets_are_refused(train, field):
    with pytest.raises(ConfigError, match=field.replace(".", r"\.")):
        sets_cfg(**train)


def test_l1_and_l2_apply_to_set_runs(tmp_path):
    """The old set path silently ignored l1/l2: the same seed gave the same weights."""
    plain = run_experiment(sets_cfg(), tmp_path / "plain", quiet=True)
    penal = run_experiment(sets_cfg(l2=0.5, l1=0.01), tmp_path / "penal", quiet=True)
    w0 = load_checkpoint(tmp_path / "plain" / "checkpoints" / "last.pt")["model"]
    w1 = load_checkpoint(tmp_path / "penal" / "checkpoints" / "last.pt")["model"]
    norm = {k: float(v.norm()) for k, v in w0.items()}
    assert sum(float(w1[k].norm()) for k in w1 if w1[k].ndim > 1) < sum(
        norm[k] for k in w0 if w0[k].ndim > 1)
    assert plain["task"] == penal["task"] == "regression" and plain["test_mse"] != penal["test_mse"]


def test_a_set_run_resumes_and_writes_the_run_folder_like_an_image_run(tmp_path):
    m = run_experiment(sets_cfg(), tmp_path / "r", quiet=True)
    for key in ("test_mse", "val_mse", "train_mse", "params", "flops", "epochs_run", "best_epoch"):
        assert key in m
    columns = get_task("regression").result_columns  # a study's results table: what its runs write
    assert all(m[k] is not None for k in columns) and "test_accuracy" not in columns, columns
    assert not any("accuracy" in k for k in m), m  # it wrote `val_accuracy: null`
    saved = json.loads((tmp_path / "r" / "metrics.json").read_text())
    assert saved["test_mse"] == pytest.approx(m["test_mse"])
    with np.load(tmp_path / "r" / "predictions.npz") as npz:
        assert npz["outputs"].shape == npz["targets"].shape == (40, 10, 1)
    # its notebook display: no accuracy panel left empty (matplotlib warned of a legend without lines)
    import warnings

    import visionstudy as vs

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        shown = vs.Run(tmp_path / "r")._repr_html_()
    assert "test MSE" in shown and "data:image/png;base64," in shown
    # the commands for image classifiers say so, each naming itself among them (export and demo
    # said "predict and image figures are for image classifiers")
    from tests.helpers import vs_here

    for command in (["predict", tmp_path / "r", tmp_path / "x.png"], ["export", tmp_path / "r"]):
        result = vs_here(*command)
        assert result.returncode == 2 and "a regression run; predict, demo, export and the image " \
            "figures are for image classifiers (`visionstudy report` gives" in " ".join(result.stderr.split())


def test_users_own_sets_from_an_npz_file(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(150, 6, 2)).astype(np.float32)
    y = x.sum(axis=(1, 2))  # one target per set: invariant
    np.savez(tmp_path / "mine.npz", x=x, y=y)
    cfg = validate_run_config({**SETS, "data": {"dataset": "sets", "path": str(tmp_path / "mine.npz"),
                                                "test_fraction": 0.2, "val_fraction": 0.25},
                               "model": {"name": "deepsets", "layers": 2, "width": 8, "invariant": True}})
    m = run_experiment(cfg, tmp_path / "r", quiet=True)
    assert m["test_samples"] == 30
    import yaml

    ds = yaml.safe_load((tmp_path / "r" / "config.yaml").read_text())["resolved"]["dataset"]
    assert (ds["set_size"], ds["dim"], ds["train"], ds["val"], ds["test"]) == (6, 2, 90, 30, 30)


def test_a_set_file_whose_targets_the_model_cannot_give_is_one_error_before_training(tmp_path):
    """A file of one target per set trained by an equivariant model (the default) ended in torch's
    "The size of tensor a (10) must match the size of tensor b" traceback at the first batch, and a
    study failed that run at training time; it is one error naming the file and the fix, and a
    study refuses it before any run trains."""
    from tests.helpers import assert_user_error, vs_here

    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 5, 2)).astype(np.float32)
    np.savez(tmp_path / "per_set.npz", x=x, y=x.sum(axis=(1, 2)))
    np.savez(tmp_path / "per_element.npz", x=x, y=x.sum(axis=2))
    for name, invariant, holds in (("per_set", False, "set"), ("per_element", True, "element")):
        cfg = validate_run_config({**SETS, "data": {"dataset": "sets", "path": str(tmp_path / f"{name}.npz")},
                                   "model": {"name": "deepsets", "layers": 2, "width": 4,
                                             "invariant": invariant}})
        said = (f"{name}.npz: y holds one target per {holds}, and model.invariant is {str(invariant).lower()}"
                f".*set model.invariant: {str(not invariant).lower()}")
        with pytest.raises(ConfigError, match=said):
            run_experiment(cfg, tmp_path / name, quiet=True)
        assert not (tmp_path / name / "metrics.json").exists()
    (tmp_path / "s.yaml").write_text(
        f"name: s\ndata: {{dataset: sets, path: {tmp_path / 'per_set.npz'}}}\n"
        "model: {name: deepsets, layers: 2, width: 4}\ntrain: {epochs: 1}\n"
        "variants: {fits: {model: {invariant: true}}, equivariant: {}}\n")
    refused = vs_here("study", "run", tmp_path / "s.yaml", "--runs-dir", tmp_path / "runs", "--quiet")
    assert_user_error(refused, "run equivariant/seed-0: data.path", "set model.invariant: true")
    assert not list((tmp_path / "runs").rglob("metrics.json"))  # refused before any run trained
    # `datasets info` tells which a file holds (it said "holds sets, not images" of every set file)
    info = vs_here("datasets", "info", "sets", "--path", tmp_path / "per_set.npz", "--json")
    assert info.returncode == 0, info.stderr
    said = json.loads(info.stdout)
    assert (said["set_size"], said["dim"], said["targets"]) == (5, 2, "one per set")
    assert said["train"] + said["val"] + said["test"] == 60
    table = vs_here("datasets", "info", "sets", "--path", tmp_path / "per_element.npz")
    assert "one per element (model.invariant: false)" in table.stdout, table.stdout + table.stderr
    missing = vs_here("datasets", "info", "sets", "--path", tmp_path / "nope.npz")  # the option it was given
    assert_user_error(missing, f"--path (data.path) {tmp_path / 'nope.npz'}: no such file")


@pytest.mark.parametrize("arrays, needle", [
    ({"x": np.zeros((10, 3))}, "needs arrays 'x'"),
    ({"x": np.zeros((10, 3)), "y": np.zeros(10)}, "must be (n sets, set size, features)"),
    ({"x": np.zeros((10, 3, 2)), "y": np.zeros(7)}, "fits neither"),
    ({"x": np.full((10, 3, 2), np.nan), "y": np.zeros(10)}, "NaN"),
])
def test_bad_set_files_are_one_clear_error(tmp_path, arrays, needle):
    np.savez(tmp_path / "bad.npz", **arrays)
    cfg = validate_run_config({**SETS, "data": {"dataset": "sets", "path": str(tmp_path / "bad.npz")}})
    with pytest.raises(DataError, match=needle.replace("(", r"\(").replace(")", r"\)")):
        run_experiment(cfg, tmp_path / "r", quiet=True)


def test_an_image_model_on_sets_is_refused():
    with pytest.raises(ConfigError, match="needs a set model"):
        validate_run_config({**SETS, "model": {"name": "cnn"}})
    _ = torch


def test_what_a_metric_is_lives_in_the_catalogue_alone():
    """Each task's report metrics come from `tasks.metrics`, and no module decides which way a
    metric is better, or its label, from its name (it reads the catalogue)."""
    import re

    from visionstudy.tasks.metrics import CATALOGUE

    for name in list_tasks():
        task = get_task(name)
        assert task.headline == task.metrics[0] and set(task.glance) <= set(task.metrics) <= set(CATALOGUE)
        assert task.headline_label == CATALOGUE[task.headline].label
    src = ROOT / "src" / "visionstudy"
    by_name = re.compile(r'[!=]= "(val|test|train)_(accuracy|loss|mse)"'  # a direction decided by name
                         r'|\("(test|validation) (accuracy|loss|MSE)", "')  # a (label, key) table
    found = [f"{p.relative_to(src)}:{i}" for p in sorted(src.rglob("*.py")) if p.parent.name != "tasks"
             for i, line in enumerate(p.read_text().splitlines(), 1) if by_name.search(line)]
    assert found == []


def test_a_result_line_counts_its_epochs_in_words():
    from visionstudy.study.execute import finished_line

    classification = {"test_accuracy": 0.5, "test_top5_accuracy": 0.9, "test_loss": 1.0, "f1_macro": 0.4,
                      "train_seconds": 0.25}
    regression = {"test_mse": 1.0, "val_mse": 1.0, "train_mse": 1.0, "train_seconds": 0.25}
    for metrics in (classification, regression):
        task = get_task("regression" if "test_mse" in metrics else "classification")
        assert task.result_line({**metrics, "epochs_run": 1}).endswith("(1 epoch, 0.2s)")
        assert task.result_line({**metrics, "epochs_run": 3}).endswith("(3 epochs, 0.2s)")
    assert finished_line("a/seed-0", {**classification, "epochs_run": 1}).endswith("(1 epoch, 0.2 s)")
    # top-5 where it can miss: not for 3 classes, where it is always 1
    task = get_task("classification")
    one = {**classification, "epochs_run": 1}
    assert "top-5 0.9000" in task.result_line({**one, "class_names": list("abcdef")})
    assert "top-5" not in task.result_line({**one, "class_names": ["a", "b", "c"]})
    assert finished_line("a/seed-0", {**classification, "epochs_run": 2}).endswith("(2 epochs, 0.2 s)")
    tiny = {**classification, "epochs_run": 3, "train_seconds": 0.043}  # not "0.0s"
    assert task.result_line(tiny).endswith("(3 epochs, 0.04s)")
    assert finished_line("a/seed-0", tiny).endswith("(3 epochs, 0.04 s)")
