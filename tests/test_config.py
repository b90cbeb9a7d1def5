"""Config loading: overrides, merging, validation messages, round trip."""

from __future__ import annotations

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from visionstudy.config import (
    dump_config,
    load_config,
    merge_run,
    parse_override,
    validate_run_config,
)
from visionstudy.errors import ConfigError


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
