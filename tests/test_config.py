"""Config loading: overrides, merging, validation messages, round trip."""

from __future__ import annotations

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from visionstudy.config import dump_config, merge_run, parse_override
from visionstudy.errors import ConfigError
from visionstudy.validate import load_config, validate_run_config


def test_override_parses_yaml_values():
    assert parse_override("train.optimizer.lr=0.01") == {"train": {"optimizer": {"lr": 0.01}}}
    assert parse_override("model.hidden=[64, 32]") == {"model": {"hidden": [64, 32]}}
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        parse_override("train.epochs")


def test_naming_another_model_drops_the_old_parameters():
    base = {"model": {"name": "cnn", "channels": [8]}, "train": {"epochs": 3}}
    assert merge_run(base, {"model": {"name": "resnet"}})["model"] == {"name": "resnet"}
    assert merge_run(base, {"model": {"hidden": [4]}})["model"] == {
        "name": "cnn", "channels": [8], "hidden": [4]}


def test_errors_name_the_file_field_and_value(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({"train": {"epochs": 0, "optimizer": {"name": "lion"}}}))
    with pytest.raises(ConfigError) as err:
        load_config(path)
    text = str(err.value)
    assert str(path) in text and "train.epochs" in text and "(got 0)" in text
    assert "train.optimizer.name" in text and "'lion'" in text
    path.write_text("train: [unclosed")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(path)


@settings(max_examples=25, deadline=None)
@given(epochs=st.integers(1, 50), lr=st.floats(1e-5, 1.0), width=st.integers(1, 64),
       aug=st.sampled_from([[], ["flip"], [{"name": "crop", "padding": 2}]]))
def test_valid_configs_round_trip(epochs, lr, width, aug):
    raw = {"data": {"augment": aug}, "model": {"name": "cnn", "channels": [width]},
           "train": {"epochs": epochs, "optimizer": {"lr": lr}}}
    cfg = validate_run_config(raw)
    assert validate_run_config(yaml.safe_load(yaml.safe_dump(dump_config(cfg)))) == cfg


VALID = {"name": "h", "data": {"dataset": "digits", "augment": ["flip"]},
         "model": {"name": "cnn", "channels": [8, 16], "hidden": [32], "dropout": 0.2},
         "train": {"epochs": 3, "batch_size": 32, "optimizer": {"name": "adam", "lr": 1e-3},
                   "scheduler": {"name": "cosine"}}}
BAD_VALUES = {  # field → values that must be refused, each naming that field
    "train.epochs": [0, -1, "ten", 1.5, None, [3]],
    "train.batch_size": [0, "big"],
    "train.optimizer.name": ["lion", 3],
    "train.optimizer.lr": [0, -0.1, "fast"],
    "train.optimizer.momentum": [1.0, -0.5],
    "train.scheduler.name": ["warp"],
    "train.label_smoothing": [1.0, -1],
    "train.precision": ["fp8"],
    "train.early_stopping.patience": [0],
    "data.val_fraction": [0, 1.5, "x"],
    "data.dataset": ["imagenet21k", 7],
    "data.classes": [5],
    "model.channels": ["abc", [0.5], []],
    "model.dropout": [1.5, -0.1, [0.1, 0.2]],
    "model.activation": ["swish"],
    "model.name": ["vgg", None],
    "seed": ["x", 1.5],
    "train.epochz": [3],
    "model.chanels": [[1]],
    "data.augment": [[{"name": "blur"}], [{"name": "crop", "size": 3}], "crop,warp"],
}


def set_path(raw: dict, key: str, value) -> dict:
    from visionstudy.config import deep_merge
    from visionstudy.study.spec import dotted

    return deep_merge(raw, dotted(key, value))


@settings(max_examples=120, deadline=None)
@given(st.sampled_from([(k, v) for k, vs in BAD_VALUES.items() for v in vs]))
def test_every_invalid_value_is_one_clear_error_naming_its_field(case):
    field, value = case
    raw = set_path(VALID, field, value)
    with pytest.raises(ConfigError) as err:
        validate_run_config(raw, "bad.yaml")
    text = str(err.value)
    assert text.startswith("bad.yaml")
    problem = [line for line in text.splitlines()[1:] if line.strip()]
    assert problem, text
    head = field.split(".")[-1] if field.startswith("data.augment") is False else "augment"
    assert any(head in line for line in problem), (field, value, text)


@settings(max_examples=6, deadline=None)
@given(st.sampled_from([(k, v) for k, vs in BAD_VALUES.items() for v in vs[:1]]))
def test_the_cli_exits_2_without_a_traceback_on_invalid_configs(tmp_path_factory, case):
    import subprocess
    import sys

    field, value = case
    path = tmp_path_factory.mktemp("bad") / "bad.yaml"
    path.write_text(yaml.safe_dump(set_path(VALID, field, value)))
    result = subprocess.run([sys.executable, "-m", "visionstudy", "train", str(path), "--out",
                             str(path.parent / "run")], capture_output=True, text=True, timeout=120,
                            stdin=subprocess.DEVNULL)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert field.split(".")[-1] in result.stderr or "augment" in result.stderr
    assert not (path.parent / "run").exists()  # nothing was written


@settings(max_examples=40, deadline=None)
@given(epochs=st.integers(1, 500), lr=st.floats(1e-6, 10.0),
       channels=st.lists(st.integers(1, 128), min_size=1, max_size=4),
       dropout=st.floats(0.0, 0.9), smoothing=st.floats(0.0, 0.5),
       optimizer=st.sampled_from(["sgd", "adam", "adamw", "rmsprop", "adagrad"]),
       schedule=st.sampled_from(["none", "step", "cosine", "onecycle", "plateau", "halve"]),
       model=st.sampled_from(["cnn", "mlp", "resnet"]))
def test_generated_valid_configs_round_trip_through_yaml(epochs, lr, channels, dropout, smoothing,
                                                         optimizer, schedule, model):
    params = {"cnn": {"channels": channels, "dropout": dropout},
              "mlp": {"hidden": channels, "dropout": dropout},
              "resnet": {"blocks": [1] * len(channels), "widths": channels}}[model]
    raw = {"data": {"dataset": "digits"}, "model": {"name": model, **params},
           "train": {"epochs": epochs, "label_smoothing": smoothing,
                     "optimizer": {"name": optimizer, "lr": lr}, "scheduler": {"name": schedule}}}
    cfg = validate_run_config(raw)
    assert validate_run_config(yaml.safe_load(yaml.safe_dump(dump_config(cfg)))) == cfg
