"""Config loading: overrides, merging, validation messages, round trip."""

from __future__ import annotations

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from visionstudy.config import apply_overrides, dump_config, merge_run, parse_override
from visionstudy.errors import ConfigError
from visionstudy.validate import load_config, validate_run_config


def test_override_parses_yaml_values():
    assert parse_override("train.optimizer.lr=0.01") == {"train": {"optimizer": {"lr": 0.01}}}
    assert parse_override("model.hidden=[64, 32]") == {"model": {"hidden": [64, 32]}}
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        parse_override("train.epochs")


def test_a_numeric_part_of_a_set_key_sets_one_element_of_a_list(tmp_path):
    """`--set model.channels.1=48` as a sweep's `model.channels.1: [48]` does (it was an error,
    `model.channels: Input should be a valid list (got {'1': 48})`); the model's default list
    too, and a mapping's numeric key stays a key."""
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({"data": {"dataset": "digits"},
                                    "model": {"name": "cnn", "channels": [8, 16]}}))
    assert load_config(path, ["model.channels.1=48"]).model.params()["channels"] == [8, 48]
    resnet = load_config(path, ["model.name=resnet", "model.widths.0=4"]).model.params()
    assert resnet["widths"][0] == 4 and len(resnet["widths"]) > 1  # the rest: ResNet's default widths
    with pytest.raises(ConfigError, match=r"model.channels.5: model.channels must be a list with an "
                                          r"element 5 \(got \[8, 16\]\); give the whole list"):
        load_config(path, ["model.channels.5=3"])
    assert apply_overrides({"variants": {"1": {}}}, ["variants.1.seed=3"]) == {"variants": {"1": {"seed": 3}}}
    # from the end, as in Python (`model.channels.-1` was read as a key: "Input should be a valid list")
    assert load_config(path, ["model.channels.-1=64"]).model.params()["channels"] == [8, 64]
    assert load_config(path, ["model.channels.-2=4"]).model.params()["channels"] == [4, 16]
    with pytest.raises(ConfigError, match=r"model.channels must be a list with an element -3"):
        load_config(path, ["model.channels.-3=3"])
    with pytest.raises(ConfigError, match=r"--set model.channels.0.x=3: model.channels.0.x: model.channels.0 "
                                          r"is 8, which has no keys; set model.channels.0 itself"):
        load_config(path, ["model.channels.0.x=3"])  # was a TypeError traceback
    with pytest.raises(ConfigError, match=r"--set train..lr=3: train..lr: a dotted key with an empty part"):
        load_config(path, ["train..lr=3"])


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


@pytest.mark.parametrize("key, says", [
    ("train.batchsize", "train.batchsize: unknown key; did you mean batch_size?"),
    ("data.val_frac", "data.val_frac: unknown key; did you mean val_fraction?"),
    ("model.hiddn", "model.hiddn: unknown key; did you mean hidden?"),  # the registered model's own keys
    ("train.optimizer.weight_decy", "did you mean weight_decay?"),  # the optimizer's own keys
    ("train.scheduler.warmup", "did you mean warmup_epochs?"),  # a key every schedule shares
    ("train.scheduler.xyz", "train.scheduler.xyz: unknown key; the keys here: min_lr, name, warmup_epochs"),
    ("data.augment.0.fractoin", "translate has no parameter fractoin; allowed: fraction"),
    ("data.name", "data.name: unknown key; the keys here: dataset, split, label, path"),  # other tools' word
    ("epochs", "epochs: unknown key; did you mean train.epochs?"),  # a level too high
    ("lr", "lr: unknown key; did you mean train.optimizer.lr?"),
    ("train.lr", "train.lr: unknown key; did you mean train.optimizer.lr?"),
    ("monitor", "did you mean train.monitor or train.early_stopping.monitor?"),
    # a key of another section: named there, not matched to a look-alike here (batch_size → image_size)
    ("data.batch_size", "data.batch_size: unknown key; did you mean train.batch_size?"),
    ("model.lr", "model.lr: unknown key; did you mean train.optimizer.lr?"),
    ("data.epochs", "data.epochs: unknown key; did you mean train.epochs?"),
    ("data.name", "; did you mean data.dataset?"),  # another tool's word, after the keys
    ("train.weight_decay", "; did you mean train.optimizer.weight_decay?"),
    # timm's and torchvision's word on our own (from-scratch) families: where ImageNet weights are
    ("model.pretrained", "model.pretrained: unknown key; pretrained weights come with `name: torchvision`"),
    ("model.weights", "model: {name: torchvision, arch: resnet18, weights: DEFAULT}"),
])
def test_a_misspelt_key_is_told_the_key_it_meant(key, says):
    """A misspelt key said only "unknown key; check the spelling": it names the nearest known key
    of the section it is in, or, with none near, the keys there are; a key written a level too high
    (`epochs: 5`, what a Keras user writes) names where it belongs."""
    base = {"data": {"dataset": "digits", "augment": [{"name": "translate", "fraction": 0.1}]},
            "model": {"name": "mlp", "hidden": [8]}, "train": {"scheduler": {"name": "cosine"}}}
    with pytest.raises(ConfigError) as err:
        validate_run_config(apply_overrides(base, [f"{key}=1"]), "c.yaml")
    assert says in str(err.value) and "check the spelling" not in str(err.value)


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
    "train.optimizer.lr": [0, -0.1, "fast", float("nan"), float("inf")],
    "train.optimizer.momentum": [1.0, -0.5],
    "train.scheduler.name": ["warp"],
    "train.label_smoothing": [1.0, -1],
    "train.precision": ["fp8"],
    "train.early_stopping.patience": [0],
    "data.val_fraction": [-0.1, 1.5, "x"],
    "data.validation": ["train"],
    "data.split_seed": [-1, 2**32],
    "data.folds": [1, 5],  # 5: without a fold (each run of a study's `cv:` has both)
    "data.fold": [-1, 3],  # 3: without folds
    "data.dataset": ["imagenet21k", 7],
    "data.classes": [5],
    "model.channels": ["abc", [0.5], []],
    "model.dropout": [1.5, -0.1, [0.1, 0.2]],
    "model.name": ["vgg", None],
    "seed": ["x", 1.5, -1, 99999999999999, 2**32],
    "train.optimizer.betas": [[float("nan"), 0.9], [0.9, float("inf")]],
    "train.l2": [float("nan")],
    "model.kernel_size": [0, [0], [3, -1]],
    "model.hidden": [[0], [-5]],
    "model.activation": ["swish", {"name": "leaky_relu", "slope": 0.1},
                         {"name": "leaky_relu", "negative_slope": float("nan")}],
    "train.threads": [100000],
    "train.log_every_n_steps": [0],
    "train.epochz": [3],
    "model.chanels": [[1]],
    "data.augment": [[{"name": "blur"}], [{"name": "crop", "size": 3}], "crop,warp"],
}


@pytest.mark.parametrize("dataset, field, value, readers", [
    ("digits", "split", "val", "only emnist does"),  # "the validation split": silently ignored
    ("cifar10", "label", "coarse", "only cifar100 does"),
    ("mnist", "path", "/data/mine", "only imagefolder and sets do"),
    ("digits", "image_size", 16, "only imagefolder does"),
    ("fashion_mnist", "channels", 3, "only imagefolder does"),
    ("digits", "test_fraction", 0.3, "only imagefolder and sets do"),
    ("cifar10", "sets", {"size": 5}, "only sets does"),
])
def test_a_data_field_the_dataset_does_not_read_is_refused_not_ignored(dataset, field, value, readers):
    raw = {**VALID, "data": {"dataset": dataset, field: value}}
    with pytest.raises(ConfigError, match=rf"data.{field}: dataset {dataset} does not read it \({readers}\); "
                                          "leave it out"):
        validate_run_config(raw, "bad.yaml")
    validate_run_config({**VALID, "data": {"dataset": dataset}})  # without it: valid


def set_path(raw: dict, key: str, value) -> dict:
    from visionstudy.config import deep_merge, dotted

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


@pytest.mark.parametrize("field, value, says", [
    # a union's members each gave an error ('model.channels.0.constrained-int: ...' and
    # 'model.channels.0.list[constrained-int]: Input should be a valid list'): one line, the meant one
    ("model.channels", [0], "model.channels.0: Input should be greater than or equal to 1 (got 0)"),
    ("model.channels", [[8, 0]], "model.channels.0.1: Input should be greater than or equal to 1 (got 0)"),
    # a section given as something else: no class name of ours
    ("train.scheduler", [1], "train.scheduler: expected a mapping of keys and values (got [1])"),
    # a name alone would be replaced whole by a variant's {lr: 0.1}: refused, with the form to write
    ("train.optimizer", "sgd", "train.optimizer: write {name: sgd}: a section of a name and its keys, "
     "not the name alone"),
])
def test_a_union_or_a_section_is_one_line_in_our_words(field, value, says):
    with pytest.raises(ConfigError) as err:
        validate_run_config(set_path(VALID, field, value), "bad.yaml")
    lines = str(err.value).splitlines()
    assert len(lines) == 2 and lines[1].startswith(says) and "Config" not in lines[1]


@settings(max_examples=3, deadline=None)
@given(st.sampled_from([(k, v) for k, vs in BAD_VALUES.items() for v in vs[:1]]))
def test_the_cli_exits_2_without_a_traceback_on_invalid_configs(tmp_path_factory, case):
    import sys

    from tests.helpers import run_cli

    field, value = case
    path = tmp_path_factory.mktemp("bad") / "bad.yaml"
    path.write_text(yaml.safe_dump(set_path(VALID, field, value)))
    result = run_cli([sys.executable, "-m", "visionstudy", "train", str(path), "--out",
                      str(path.parent / "run")], timeout=120)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert field.split(".")[-1] in result.stderr or "augment" in result.stderr
    assert not (path.parent / "run").exists()  # nothing was written


@settings(max_examples=40, deadline=None)
@given(epochs=st.integers(1, 500), lr=st.floats(1e-6, 10.0),
       channels=st.lists(st.integers(1, 128), min_size=1, max_size=3),  # 8x8 digits: 3 poolings
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


VAL_REFUSED = {  # with data.val_fraction: 0 there is no validation set: these cannot work
    "train.early_stopping": {"patience": 3},
    "train.restore_best": True,
    "train.monitor": "val_loss",
    "train.scheduler": {"name": "plateau"},
}


@pytest.mark.parametrize("field", sorted(VAL_REFUSED))
def test_what_needs_a_validation_set_is_refused_without_one(field):
    raw = set_path(set_path(VALID, "data.val_fraction", 0), field, VAL_REFUSED[field])
    with pytest.raises(ConfigError, match=field.replace(".", r"\.") + ".*val_fraction: 0"):
        validate_run_config(raw, "bad.yaml")
    validate_run_config(set_path(raw, "data.val_fraction", 0.1))  # with one it is fine
    with pytest.raises(ConfigError, match="data.folds"):
        validate_run_config(set_path(set_path(VALID, "data.validation", "test"), "data.folds", 3))


def test_a_key_written_twice_is_an_error_naming_both_lines(tmp_path):
    path = tmp_path / "twice.yaml"
    path.write_text("name: a\ntrain:\n  epochs: 2\nmodel: {name: mlp}\ntrain:\n  epochs: 3\n")
    with pytest.raises(ConfigError, match=r"twice.yaml: key 'train' is written twice \(lines 2 and 5\)"):
        load_config(path)
    path.write_text("train:\n  epochs: 2\n  optimizer: {lr: 0.1, lr: 0.2}\n")
    with pytest.raises(ConfigError, match=r"key 'lr' is written twice \(both on line 3\)"):
        load_config(path)
    path.write_text("base: &b {epochs: 2}\ntrain:\n  <<: *b\n  epochs: 3\n")  # merge keys may be overridden
    from visionstudy.config import read_yaml

    assert read_yaml(path)["train"] == {"epochs": 3}


def test_seeds_and_fetch_options_do_not_change_a_runs_identity():
    from visionstudy.config import identity

    cfg = dump_config(validate_run_config(VALID))
    quiet = set_path(cfg, "data.verify", False)
    assert identity(quiet) == identity(cfg) and identity(quiet, minimal=True) == identity(cfg, minimal=True)
    assert identity(set_path(cfg, "seed", 1)) != identity(cfg)
    old = {k: v for k, v in cfg.items()}
    old["train"] = {k: v for k, v in cfg["train"].items() if k != "log_every_n_steps"}  # an older dump
    assert identity(old) == identity(cfg)


@pytest.mark.parametrize("value, expected", [
    ("1", 1), (" 2 ", 2), ("100000", "cores"), ("0", "cores"), ("-3", "cores"), ("two", "cores"),
    (None, "cores"),
])
def test_the_thread_budget_follows_omp_num_threads_within_the_cores(monkeypatch, value, expected):
    from visionstudy.validate import thread_budget, usable_cores

    if value is None:
        monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    else:
        monkeypatch.setenv("OMP_NUM_THREADS", value)
    want = usable_cores() if expected == "cores" else min(expected, usable_cores())
    assert thread_budget() == want
    assert thread_budget(2) == max(1, want // 2) and thread_budget(1000) == 1


def test_yaml_nested_too_deeply_is_one_clear_error(tmp_path):
    path = tmp_path / "deep.yaml"
    path.write_text("name: deep\ndata: " + "[" * 100_000 + "]" * 100_000 + "\n")
    with pytest.raises(ConfigError, match="nested too deeply"):
        load_config(path)


def test_a_self_multiplying_yaml_file_is_refused_at_once(tmp_path):
    """Nine levels of ten aliases are 10⁹ values in a 500-byte file (`study status` once grew to
    4.3 GB); counted once per distinct node, it is refused in milliseconds."""
    import time

    lines = ['l0: &l0 ["xxxxxxxx", "xxxxxxxx", "xxxxxxxx", "xxxxxxxx", "xxxxxxxx", '
             '"xxxxxxxx", "xxxxxxxx", "xxxxxxxx", "xxxxxxxx", "xxxxxxxx"]']
    lines += [f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 10)}]" for i in range(1, 10)]
    path = tmp_path / "laughs.yaml"
    path.write_text("\n".join(lines) + "\nname: laughs\ntrain: {epochs: *l9}\n")
    start = time.perf_counter()
    with pytest.raises(ConfigError, match=r"laughs.yaml: its aliases \(\*name\) expand to more than 1,0"):
        load_config(path)
    assert time.perf_counter() - start < 5
    path.write_text("\n".join(lines[:3]) + "\nname: laughs\ntrain: {epochs: *l2}\n")  # 1,000 values: read
    with pytest.raises(ConfigError) as caught:  # ... and quoted short
        load_config(path)
    assert "train.epochs" in str(caught.value) and len(str(caught.value)) < 3000
    path.write_text("name: big\nnotes: '" + "x" * (5 * 2**20) + "'\n")
    with pytest.raises(ConfigError, match="5.0 MB of YAML; a config is at most 4 MB"):
        load_config(path)


def test_numbers_are_read_as_yaml_1_2_and_json_write_them_everywhere(tmp_path):
    """`1e-3` is text to PyYAML (YAML 1.1) and was refused in augmentations; the API writes
    `1e-12` through json.dumps. Both are numbers now, in files, --set and the API alike."""
    from visionstudy.config import load_yaml_text

    assert load_yaml_text("a: 1e-3\nb: -2E+2\nc: .5e1\nd: 1_000\ne: 1e\nf: '1e-3'") == {
        "a": 0.001, "b": -200.0, "c": 5.0, "d": 1000, "e": "1e", "f": "1e-3"}
    path = tmp_path / "c.yaml"
    path.write_text("data:\n  augment: [{name: mixup, alpha: 1e-3}]\ntrain:\n  optimizer: {lr: 5e-4}\n")
    cfg = load_config(path, ["train.l2=1e-12"])
    assert cfg.data.augment[0].model_extra == {"alpha": 0.001}
    assert cfg.train.optimizer.lr == 5e-4 and cfg.train.l2 == 1e-12


@pytest.mark.parametrize(("field", "value", "says"), [
    ("seed", True, "expected a number, not the boolean true"),
    ("seed", "7", "expected a number, not the text '7'; write it without quotes"),
    ("train.epochs", "1", "expected a number, not the text '1'"),
    ("train.optimizer.lr", "abc", "expected a number, not the text 'abc' (got"),  # no "without quotes"
    ("train.epochs", True, "expected a number, not the boolean true"),
    ("train.optimizer.lr", False, "expected a number, not the boolean false"),
    ("train.tta", 1, "expected true or false, not the number 1"),
    ("data.normalize", "yes", "expected true or false, not the text 'yes'"),
    ("model.channels", [8, "16"], "expected a number, not the text '16'"),
    ("train.optimizer.betas", [0.9, True], "expected a number, not the boolean true"),
])
def test_integers_and_booleans_are_strict(field, value, says):
    """`seed: true` once became seed 1, and `epochs: "1"` passed silently."""
    with pytest.raises(ConfigError, match=field.split(".")[-1] + ": " + says.replace("(", r"\(")):
        validate_run_config(set_path(VALID, field, value), "c.yaml")
    assert validate_run_config(set_path(VALID, "train.optimizer.lr", 1), "c.yaml").train.optimizer.lr == 1.0


def test_a_run_name_longer_than_a_folder_name_allows_is_refused_before_training():
    with pytest.raises(ConfigError, match="one folder of at most 200 bytes"):
        validate_run_config({"name": "n" * 300}, "cli")
    assert validate_run_config({"name": "n" * 200}, "cli").name == "n" * 200


def test_one_owner_for_overrides_and_no_task_or_dataset_name_tested_outside_its_registry():
    """`--set` is applied by `config.apply_overrides` alone, and only `tasks/` and the data sources
    compare a task's or a dataset's name (everything else asks the task what it can do)."""
    import re

    from tests.helpers import ROOT

    src = ROOT / "src" / "visionstudy"
    own = re.compile(r"def apply_overrides\(|parse_override\(")
    assert sorted({p.name for p in src.rglob("*.py") if own.search(p.read_text())}) == ["config.py"]
    named = re.compile(r"""\b(task|dataset|task_name|dataset_name)(\.name)?\s*(==|!=|in|not in)\s*[("'\[]""")
    found = [f"{p.relative_to(src)}:{i}: {line.strip()}" for p in sorted(src.rglob("*.py"))
             if p.parent.name != "tasks" and p.parent != src / "data" / "sources"
             for i, line in enumerate(p.read_text().splitlines(), 1) if named.search(line)]
    assert found == [], "ask the task (visionstudy.tasks) instead:\n" + "\n".join(found)


def test_no_lower_layer_imports_a_higher_one():
    """config, data, models, training and store import only each other, the shared leaves (errors,
    fsutil, registry) and, for training, the task it trains: never the study, the report, the
    evaluation, serving, the API, the CLI or the trackers above them."""
    import ast

    from tests.helpers import ROOT

    src = ROOT / "src" / "visionstudy"
    lower = {"config", "data", "models", "training", "store"}
    allowed = lower | {"errors", "fsutil", "registry"}
    found = []
    for path in sorted(src.rglob("*.py")):
        layer = path.relative_to(src).parts[0].removesuffix(".py")
        if layer not in lower:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([node.module or ""] if isinstance(node, ast.ImportFrom)
                     else [a.name for a in node.names] if isinstance(node, ast.Import) else [])
            for name in names:
                parts = name.split(".")
                if parts[0] == "visionstudy" and len(parts) > 1:
                    target = parts[1]
                    if target not in allowed and not (layer == "training" and target == "tasks"):
                        found.append(f"{path.relative_to(src)}:{node.lineno} imports {name}")
    assert found == [], "\n".join(found)


def test_no_docstring_quotes_a_measured_time_or_speed_up():
    """Measurements go stale in docstrings; they live in bench/results/ and the README. A line that
    says how often something happens ("every 10 s") states a setting, not a measurement."""
    import ast
    import re

    from tests.helpers import ROOT

    measured = re.compile(r"\b\d+(?:\.\d+)?\s?(?:ms|s|seconds|minutes)\b"
                          r"|\b\d+(?:\.\d+)?\s?[x×] (?:faster|slower|more|less|as fast|as slow)")
    found = []
    for path in sorted((ROOT / "src" / "visionstudy").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Module)):
                for line in (ast.get_docstring(node) or "").splitlines():
                    if measured.search(line) and "every " not in line:
                        found.append(f"{path.relative_to(ROOT)}: {line.strip()}")
    assert found == [], "move the number to bench/results/ or the README:\n" + "\n".join(found)


@pytest.mark.parametrize(("fold", "folds"), [(None, 5), (3, None), (5, 5)])
def test_a_fold_without_its_folds_or_past_them_is_refused_when_the_config_is_read(fold, folds):
    """Not when the run loads its data (a study's worker then failed the run, at expansion's
    'validated once' promise)."""
    data = {k: v for k, v in (("fold", fold), ("folds", folds)) if v is not None}
    says = rf"data.fold={fold}, data.folds={folds}: a k-fold run .* give both, with 0 <= fold < folds"
    with pytest.raises(ConfigError, match=says):
        validate_run_config(set_path(VALID, "data", {**VALID.get("data", {}), **data}), "bad.yaml")
    validate_run_config(set_path(VALID, "data", {**VALID.get("data", {}), "fold": 4, "folds": 5}), "ok.yaml")


def test_every_function_the_config_docs_point_to_exists():
    """Field descriptions said `visionstudy.training.list_optimizers()`, which did not exist (the
    function is in `visionstudy.training.optim`)."""
    import importlib
    import re

    from tests.helpers import ROOT

    text = (ROOT / "src" / "visionstudy" / "config.py").read_text()
    named = set(re.findall(r"`(visionstudy(?:\.\w+)+)(?:\(\))?`", text))
    assert named
    for path in sorted(named):
        module, _, attr = path.rpartition(".")
        assert hasattr(importlib.import_module(module), attr), path


def test_digit_class_names_may_be_written_as_numbers():
    """`classes: [0, 1, 7]` (digits', MNIST's names as YAML reads them) said "Input should be a
    valid string"; they are the names '0', '1', '7', and a subset of digits trains on them."""
    from visionstudy.config import DataConfig
    from visionstudy.data import prepare

    assert DataConfig(classes=[0, 1, 7]).classes == ["0", "1", "7"]
    data = prepare(DataConfig(dataset="digits", classes=[0, 7]))
    assert data.class_names == ["0", "7"] and set(data.train.labels.tolist()) == {0, 1}
    with pytest.raises(ValidationError):
        DataConfig(classes=[True])


def test_a_tab_indent_and_a_sections_name_alone_are_told_the_fix(tmp_path):
    """A tab indent was "found character that cannot start any token"; `model: cnn` was "expected a
    mapping of keys and values" alone."""
    tabbed = tmp_path / "tab.yaml"
    tabbed.write_text("name: t\ndata:\n\tdataset: digits\n")
    with pytest.raises(ConfigError, match=r"(?s)tab.yaml: not valid YAML: .*\n\(a tab indents a line there: "
                                          r"YAML indents with spaces\)"):
        load_config(tabbed)
    named = tmp_path / "m.yaml"
    named.write_text("name: t\nmodel: cnn\n")
    with pytest.raises(ConfigError, match=r"model: expected a mapping of keys and values \(got 'cnn'\); "
                                          r"write \{name: cnn\}"):
        load_config(named)
    number = tmp_path / "es.yaml"  # a section given as a number: the keys it takes
    number.write_text("name: t\ntrain: {early_stopping: 5}\n")
    with pytest.raises(ConfigError, match=r"train.early_stopping: expected a mapping of keys and values "
                                          r"\(got 5\); its keys: monitor, patience, min_delta"):
        load_config(number)
    spaced = tmp_path / "colon.yaml"  # another YAML error: no tab hint
    spaced.write_text("name: t\ndata: {dataset: digits\n")
    with pytest.raises(ConfigError) as err:
        load_config(spaced)
    assert "a tab indents" not in str(err.value)
