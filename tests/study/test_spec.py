"""Study files: expansion into runs, and whole-file validation before anything trains."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from visionstudy.errors import ConfigError
from visionstudy.study import load_study

BASE = {"name": "s", "data": {"dataset": "digits"}, "model": {"name": "cnn", "channels": [4, 8]},
        "train": {"epochs": 1}}


def study_file(tmp_path: Path, **fields) -> Path:
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump({**BASE, **fields}, sort_keys=False))
    return path


def test_variants_seeds_and_folds_expand_to_every_run(tmp_path):
    study = load_study(study_file(tmp_path, seeds=2, cv={"folds": 3}, variants={
        "baseline": {}, "bn": {"model": {"batch_norm": True}},
        "resnet": {"model": {"name": "resnet", "blocks": [1], "widths": [8]}}}))
    assert len(study.runs) == 3 * 2 * 3
    keys = [r.key for r in study.runs]
    assert keys[:3] == ["baseline/seed-0/fold-0", "baseline/seed-0/fold-1", "baseline/seed-0/fold-2"]
    assert len(set(keys)) == len(keys)
    bn = next(r for r in study.runs if r.key == "bn/seed-1/fold-2")
    assert bn.config.model.params()["batch_norm"] is True and bn.config.seed == 1
    assert (bn.config.data.folds, bn.config.data.fold) == (3, 2)
    resnet = next(r for r in study.runs if r.variant == "resnet")
    assert resnet.config.model.name == "resnet" and "channels" not in resnet.config.model.params()


def test_one_at_a_time_sweep_varies_each_factor_alone(tmp_path):
    study = load_study(study_file(tmp_path, sweep={
        "mode": "one-at-a-time", "train.optimizer.lr": [1.0e-3, 1.0e-2, 0.1],
        "model.channels": [[4, 8], [8, 16]], "model.activation": ["relu", "tanh"]}))
    names = [n for n, _ in study.variants]
    # lr 1e-3, channels [4, 8] and relu are the base's values: no separate variant
    assert names == ["baseline", "lr=0.01", "lr=0.1", "channels=8-16", "activation=tanh"]
    tanh = next(r for r in study.runs if r.variant == "activation=tanh").config
    assert tanh.model.params()["activation"] == "tanh" and tanh.train.optimizer.lr == 1e-3
    members = {label: (key, names) for label, _, key, names in study.sweep_members()}
    assert members["model.activation"] == ("model.activation", {"baseline", "activation=tanh"})
    assert members["train.optimizer.lr"][1] == {"baseline", "lr=0.01", "lr=0.1"}


def test_a_search_parameters_type_may_be_left_to_its_values(tmp_path):
    """`{choices: [...]}` said "type: Field required": choices are categorical, a range of whole
    numbers as written is int, any other range float; a written type is kept."""
    space = {"train.optimizer.lr": {"low": 0.001, "high": 0.1, "log": True},
             "train.batch_size": {"low": 16, "high": 64, "step": 16},
             "model.channels.0": {"choices": [4, 8]},
             "train.l2": {"type": "float", "low": 0, "high": 1}}  # written: kept
    study = load_study(study_file(tmp_path, search={"trials": 2, "space": space}))
    kinds = {k: (p.type, p.log) for k, p in study.config.search.space.items()}
    assert kinds == {"train.optimizer.lr": ("float", True), "train.batch_size": ("int", False),
                     "model.channels.0": ("categorical", False), "train.l2": ("float", False)}
    with pytest.raises(ConfigError, match=r"search.space.model.channels.0: .*give a non-empty `choices`"):
        load_study(study_file(tmp_path, search={"trials": 2, "space": {"model.channels.0": {"choices": []}}}))


def test_the_readmes_study_file_is_a_valid_study(tmp_path):
    """The README's annotated study file, every section in it, loads as a study (its notes and
    report curves named variants it did not have)."""
    from tests.helpers import ROOT

    readme = (ROOT / "README.md").read_text()
    block = readme.split("## Studies", 1)[1].split("```yaml\n", 1)[1].split("```", 1)[0]
    assert "search:" in block and "notes:" in block and "report:" in block
    (tmp_path / "study.yaml").write_text(block)
    study = load_study(tmp_path / "study.yaml")
    assert study.config.search is not None and study.config.search.space["model.dropout"].type == "float"
    assert {"baseline", "batchnorm", "resnet", "lr=0.001"} <= {n for n, _ in study.variants}
    # a name that matches no variant: the one it was meant as, else a pattern this study's variants have
    # (the hint was always "patterns such as resnet+*", the README's own broken pattern)
    for notes, hint in (("baselin", "did you mean baseline?"),
                        ("wd=*", "use variant names or patterns such as lr=*")):
        (tmp_path / "study.yaml").write_text(block.replace('  "lr=*": "one', f'  "{notes}": "one'))
        with pytest.raises(ConfigError, match=re.escape(f"notes: {notes} match no variant; {hint} (the "
                                                        "variants: baseline, batchnorm, resnet, lr=0.001")):
            load_study(tmp_path / "study.yaml")


def test_sweep_and_search_keys_may_be_nested_as_set_writes_them(tmp_path):
    """`model: {activation: [relu, tanh]}` is `model.activation: [relu, tanh]` (a sweep's nested
    form was an error naming `sweep.model`), and a search space nests the same way."""
    lr, channels = {"type": "float", "low": 1e-4, "high": 1e-2, "log": True}, [[4, 8], [8, 16]]
    flat = load_study(study_file(
        tmp_path, sweep={"mode": "one-at-a-time", "model.activation": ["relu", "tanh"],
                         "train.optimizer.lr": [0.1]},
        search={"trials": 2, "space": {"train.optimizer.lr": lr, "model.channels": channels}}))
    nested = load_study(study_file(
        tmp_path, sweep={"mode": "one-at-a-time", "model": {"activation": ["relu", "tanh"]},
                         "train": {"optimizer": {"lr": [0.1]}}},
        search={"trials": 2, "space": {"train": {"optimizer": {"lr": lr}}, "model": {"channels": channels}}}))
    assert [n for n, _ in nested.variants] == ["baseline", "activation=tanh", "lr=0.1"]
    assert [n for n, _ in flat.variants] == [n for n, _ in nested.variants]
    assert nested.config.search == flat.config.search
    assert [r.config for r in nested.runs] == [r.config for r in flat.runs]


def test_a_variant_may_name_dotted_keys_as_sweeps_and_set_do(tmp_path):
    """`b: {model.hidden: [64]}` was refused as "model.hidden: unknown key" (a variant was only
    nested); dotted keys, indexed lists and a sweep around such a variant now mean what they say."""
    nested = {"wide": {"model": {"channels": [4, 16]}, "train": {"optimizer": {"lr": 0.1}}}}
    dotted = {"wide": {"model.channels.1": 16, "train.optimizer.lr": 0.1}}
    a, b = (load_study(study_file(tmp_path, variants=v, sweep={"from": "wide", "train.epochs": [2]}))
            for v in (nested, dotted))
    assert [r.config for r in a.runs] == [r.config for r in b.runs]
    config = {r.variant: r.config for r in b.runs}
    assert config["wide"].model.params()["channels"] == [4, 16] and config["wide"].train.optimizer.lr == 0.1
    assert config["wide+epochs=2"].model.params()["channels"] == [4, 16]
    # a study's --set on such a variant has the last word, as on a nested one
    moved = load_study(study_file(tmp_path, variants=dotted), ["variants.wide.model.channels=[2, 2]"])
    assert moved.runs[0].config.model.params()["channels"] == [2, 2]
    last = load_study(study_file(tmp_path, variants={"wide": {}}, sweep={"model.channels.-1": [16, 32]}))
    assert [n for n, _ in last.variants] == ["wide", "channels.-1=16", "channels.-1=32"]
    assert [r.config.model.params()["channels"] for r in last.runs][1:] == [[4, 16], [4, 32]]
    with pytest.raises(ConfigError, match=r"variant 'wide': model.channels.5: model.channels must be a list "
                                          r"with an element 5"):
        load_study(study_file(tmp_path, variants={"wide": {"model.channels.5": 16}}))


def test_a_mistake_in_the_base_config_is_named_there_not_in_the_first_variant(tmp_path):
    """`data: {name: digits}` said "variant 'a': invalid config", pointing at an empty variant."""
    with pytest.raises(ConfigError, match=r"study.yaml: the base config \(data, model, train: every "
                                          r"variant\): invalid config\ntrain.optimiser: unknown key; "
                                          r"did you mean optimizer"):
        load_study(study_file(tmp_path, train={**BASE["train"], "optimiser": {"name": "sgd"}},
                              variants={"a": {}, "b": {"model": {"channels": [4, 8]}}}))
    with pytest.raises(ConfigError, match=r"variant 'b': invalid config\nmodel.chanels: unknown key; did you "
                                          r"mean channels\?"):  # the variant's own mistake names it
        load_study(study_file(tmp_path, variants={"a": {}, "b": {"model": {"chanels": [4, 8]}}}))
    with pytest.raises(ConfigError, match=r"invalid study file\nvarients: unknown key; did you mean "
                                          r"variants\?"):
        load_study(study_file(tmp_path, varients={"a": {}}))
    # a study without a name is told the line to add (it said "name: Field required" alone)
    nameless = tmp_path / "ablation.yaml"
    unnamed = {k: v for k, v in BASE.items() if k != "name"}
    nameless.write_text(yaml.safe_dump({**unnamed, "variants": {"a": {}}}))
    with pytest.raises(ConfigError, match=r"ablation.yaml: invalid study file\nname: Field required; a study "
                                          r"is named by the folder its runs go to \(runs/<name>\): add "
                                          r"`name: ablation` at the file's top"):
        load_study(nameless)


def test_a_run_key_or_a_base_section_at_a_studys_top_names_where_it_belongs(tmp_path):
    """`epochs: 3` at a study's top said "did you mean reproduces?", and `base: {data: ...}` (as
    search.base is written) "did you mean baseline?": both pointed at an unrelated key."""
    with pytest.raises(ConfigError, match=r"invalid study file\nepochs: unknown key; did you mean "
                                          r"train.epochs\?"):
        load_study(study_file(tmp_path, epochs=3, variants={"a": {}}))
    with pytest.raises(ConfigError, match=r"base: unknown key; a study's base run config is written at "
                                          r"its top level \(data, model, train\)") as err:
        load_study(study_file(tmp_path, base={"data": {"dataset": "digits"}}, variants={"a": {}}))
    assert "baseline" not in str(err.value)
    with pytest.raises(ConfigError, match=r"variant 'a': invalid config\nlr: unknown key; did you mean "
                                          r"train.optimizer.lr\?"):
        load_study(study_file(tmp_path, variants={"a": {"lr": 0.1}}))
    # a key in the wrong section names its own section, not a look-alike there (batch_size → image_size)
    with pytest.raises(ConfigError, match=r"variant 'a': invalid config\nmodel.lr: unknown key; did you mean "
                                          r"train.optimizer.lr\?"):
        load_study(study_file(tmp_path, variants={"a": {"model": {"lr": 0.1}}}))
    with pytest.raises(ConfigError, match=r"variant 'batch_size=16': invalid config\ndata.batch_size: "
                                          r"unknown key; did you mean train.batch_size\?"):
        load_study(study_file(tmp_path, variants={"a": {}}, sweep={"data.batch_size": [16, 32]}))
    from visionstudy.config import RunConfig
    from visionstudy.study.schema import StudyConfig
    from visionstudy.validate import STUDY_KEYS  # what tells `train` it was given a study file

    assert set(STUDY_KEYS) <= set(StudyConfig.model_fields) - set(RunConfig.model_fields)


def test_sweeps_around_variants_with_indexed_keys_and_partial_cv(tmp_path):
    study = load_study(study_file(tmp_path, variants={
        "small": {}, "wide": {"model": {"channels": [8, 16]}}}, sweep=[
        {"from": "small", "mode": "one-at-a-time", "model.channels.1": [8, 16], "train.epochs": [1, 3]},
        {"from": "wide", "mode": "grid", "model.channels.0": [4, 12]}],
        cv={"folds": 3, "variants": ["wide"]}))
    names = [n for n, _ in study.variants]
    # small has channels [4, 8] and epochs 1 (the base): 8 and 1 are its own values
    assert names == ["small", "wide", "small+channels.1=16", "small+epochs=3",
                     "wide+channels.0=4", "wide+channels.0=12"]
    config = {r.variant: r.config for r in study.runs}
    assert config["small+channels.1=16"].model.params()["channels"] == [4, 16]
    assert config["wide+channels.0=12"].model.params()["channels"] == [12, 16]
    assert config["small+epochs=3"].train.epochs == 3
    assert [r.key for r in study.runs if r.variant == "wide"] == [f"wide/seed-0/fold-{f}" for f in range(3)]
    assert [r.key for r in study.runs if r.variant == "small"] == ["small/seed-0"]
    members = {label: (key, names) for label, _, key, names in study.sweep_members()}
    assert members["small: model.channels.1"] == ("model.channels.1", {"small", "small+channels.1=16"})
    assert members["wide: model.channels.0"][1] == {"wide+channels.0=4", "wide+channels.0=12"}


def default_params(name):
    from visionstudy.models import validate_params

    return validate_params(name, {}).model_dump(mode="json")


def test_set_on_a_study_changes_its_settings_and_its_runs_fields(tmp_path):
    """`--set seeds=2` was refused as an unknown run key, and `--set seed=5` dropped silently (each
    run's seed is the study's seed + k): keys outside data, model and train change the study file's
    contents; those inside change every run."""
    from visionstudy.api import Study

    path = study_file(tmp_path, variants={"a": {}, "b": {"model": {"dropout": 0.1}}})
    study = load_study(path, ["seeds=2", "seed=5", "variants.a.model.batch_norm=true", "train.epochs=3"])
    assert [(r.key, r.config.seed) for r in study.runs] == [
        ("a/seed-0", 5), ("a/seed-1", 6), ("b/seed-0", 5), ("b/seed-1", 6)]
    assert all(r.config.train.epochs == 3 for r in study.runs)
    batch_norm = {r.variant: r.config.model.params().get("batch_norm", False) for r in study.runs}
    assert batch_norm == {"a": True, "b": False}
    assert study.overrides == ["train.epochs=3"] and study.config.seeds == 2
    with pytest.raises(ConfigError, match=r"with --set bogus=1: invalid study file\nbogus: unknown key"):
        load_study(path, ["bogus=1"])
    # a variant the file lacks: refused (`variants.bb...` added a variant bb, b trained as before), unless
    # given whole
    with pytest.raises(ConfigError, match=r"--set variants.bb.model.dropout=0.3: .* has no variant 'bb'; "
                                          r"did you mean b\? \(its variants: a, b\)"):
        load_study(path, ["variants.bb.model.dropout=0.3"])
    added = load_study(path, ["variants.c={model: {dropout: 0.3}}"])
    assert [r.variant for r in added.runs] == ["a", "b", "c"]
    # an index into a list the file leaves to the model's default, as `train --set` does (a study
    # said "model.hidden must be a list with an element 0 (got None)" of the base and of a variant)
    plain = study_file(tmp_path, model={"name": "mlp"}, variants={"a": {}, "b": {"model": {"dropout": 0.1}}})
    hidden = {r.variant: r.config.model.params().get("hidden")
              for r in load_study(plain, ["model.hidden.0=48"]).runs}
    default = default_params("mlp")["hidden"]
    assert hidden == {"a": [48, *default[1:]], "b": [48, *default[1:]]}
    one = {r.variant: r.config.model.params().get("hidden")
           for r in load_study(plain, ["variants.b.model.hidden.0=48"]).runs}
    assert one == {"a": None, "b": [48, *default[1:]]}
    # planned once, read back from its manifest by a worker: the same runs
    planned = Study.load(path, set=["seeds=2", "train.epochs=3"], runs_dir=tmp_path / "runs")
    planned.run(1, quiet=True, report=False, only=["a"])
    again = Study.load(path, set=["seeds=2", "train.epochs=3"], runs_dir=tmp_path / "runs")
    assert [r.key for r in again.spec.runs] == ["a/seed-0", "a/seed-1", "b/seed-0", "b/seed-1"]
    assert again.spec.overrides == ["train.epochs=3"]
    from visionstudy.report.study_report import changes_results
    from visionstudy.study.manifest import read_manifest

    # the report sees every --set: more or fewer seeds are the same measurement, another variant is not
    assert read_manifest(tmp_path / "runs" / "s").overrides == ["seeds=2", "train.epochs=3"]
    assert not changes_results("seeds=1") and changes_results("variants.a.model.dropout=0.2")
    assert sorted(p.parent.name for p in (tmp_path / "runs" / "s" / "a").glob("*/metrics.json")) == [
        "seed-0", "seed-1"]


def test_seeds_may_be_listed_and_each_repeat_takes_its_listed_seed(tmp_path):
    """`seeds: [0, 42, 1234]` (the seeds a paper reports) instead of a count: repeat k trains with the
    k-th listed seed, in every variant; the search's trials take the first, its final runs the list's."""
    search = {"trials": 2, "space": {"train.optimizer.lr": [0.01, 0.1]}, "final": {"seeds": 2}}
    study = load_study(study_file(tmp_path, seeds=[42, 7, 1234], variants={"a": {}, "b": {}},
                                  model={"name": "cnn", "channels": [4]}, search=search,
                                  data={"dataset": "digits", "val_fraction": 0.2}))
    assert [(r.key, r.seed_index, r.config.seed) for r in study.runs] == [
        ("a/seed-0", 0, 42), ("a/seed-1", 1, 7), ("a/seed-2", 2, 1234),
        ("b/seed-0", 0, 42), ("b/seed-1", 1, 7), ("b/seed-2", 2, 1234)]
    assert study.describe().startswith("6 runs (2 variants × 3 seeds)")
    from visionstudy.study.search import final_runs, trial_config

    assert trial_config(study, {"train.optimizer.lr": 0.1}).seed == 42
    assert [r.config.seed for r in final_runs(study, {"train.optimizer.lr": 0.1})] == [42, 7]
    # `seed` may name the first listed seed (a recipe's seed: 0 with --set seeds=[0, 42]), no other
    assert [r.config.seed for r in load_study(study_file(tmp_path, seed=3, seeds=[3, 9])).runs] == [3, 9]
    assert [r.config.seed for r in load_study(study_file(tmp_path, seed=5), ["seeds=[5,6]"]).runs] == [5, 6]


@pytest.mark.parametrize("fields, needle", [
    ({"seeds": []}, "seeds: an empty list; give the seeds of the repeats ([0, 42]) or their number"),
    ({"seeds": [1, 2, 1]}, "seeds: seed 1 is listed twice; each repeat needs its own seed"),
    ({"seeds": [0, -1]}, "seeds: -1 is not a seed; seeds are whole numbers from 0 to 4294967295"),
    ({"seeds": [0.5]}, "seeds: 0.5 is not a seed"),
    ({"seeds": [2**32]}, "seeds: 4294967296 is not a seed"),
    ({"seeds": 0}, "seeds: 0 repeats; give 1 or more, or the seeds themselves: [0, 42]"),
    ({"seed": 0, "seeds": [7, 42]}, "invalid study file\nseed: 0 is not the first of seeds [7, 42] (seed is "
     "the first repeat's); drop seed or make it 7"),
    ({"seeds": [1], "search": {"space": {"train.optimizer.lr": [0.1]}, "final": {"seeds": 2}}},
     "search.final.seeds: 2 final runs, but seeds lists 1; list 2 seeds or fewer final runs"),
    ({"seed": 2**32 - 1, "seeds": 2}, "invalid study file\nseed 4294967295 + 1 repeats passes"),
])
def test_a_bad_list_or_number_of_seeds_is_one_line_naming_the_fix(tmp_path, fields, needle):
    with pytest.raises(ConfigError) as caught:
        load_study(study_file(tmp_path, **fields))
    assert needle in str(caught.value) and "(got {" not in str(caught.value)
    assert len(str(caught.value).splitlines()) == 2


@pytest.mark.parametrize("fields, needle", [
    ({"sweep": {"from": "nope", "train.epochs": [2]}}, "sweep.from 'nope' is not a variant"),
    ({"sweep": {"model.hidden.3": [2]}},
     "study.yaml: sweep.model.hidden.3: model.hidden must be a list with an element 3"),
    # a part inside a list element that is a number: a TypeError traceback ("'int' object does not
    # support item assignment"), and an empty part: "model: unknown key"
    ({"sweep": {"model.channels.0.x": [2]}},
     "sweep.model.channels.0.x: model.channels.0 is 4, which has no keys"),
    ({"variants": {"b": {"model.channels.0.x": 2}}},
     "variant 'b': model.channels.0.x: model.channels.0 is 4"),
    ({"variants": {"b": {"model..x": 2}}}, "model..x: a dotted key with an empty part; name each level"),
    ({"search": {"trials": 2, "space": {"model.channels.5": [8, 16]}}},
     "study.yaml: search.space.model.channels.5: model.channels must be a list with an element 5"),
    ({"variants": {"a": {}}, "cv": {"folds": 2, "variants": ["b"]}}, "cv.variants: b not variants"),
    ({"variants": {"baseline": {}}, "cv": {"folds": 2, "variants": ["basline"]}},
     "cv.variants: basline not variants; did you mean baseline? choose from baseline"),
    # a sweep without keys said "variant name '' names a folder"
    ({"sweep": {"mode": "grid"}}, "sweep: names no key to vary; give dotted keys with lists of values"),
    ({"variants": {"a": {}, "b": {}}, "ladder": ["a", "zz"]},
     "ladder: 'zz' is not a variant; choose from a, b"),
    # a key inside a varied section that one of its values sets too: which lr did a point train with?
    # (the value written later won, and the name or the trial's record said the other)
    ({"sweep": {"train.optimizer.lr": [1e-3, 0.1], "train.optimizer": [{"name": "sgd"},
                                                                      {"name": "adam", "lr": 0.01}]}},
     'sweep: train.optimizer.lr is varied, and the train.optimizer value {"name": "adam", "lr": 0.01} sets '
     "it too; take lr out of that value, or stop varying train.optimizer.lr"),
    ({"search": {"trials": 2, "space": {"model.channels": [[8, 16], [16, 32]], "model.channels.1": [4, 8]}}},
     "search.space: model.channels.1 is varied, and the model.channels value [8, 16] sets it too"),
])
def test_bad_sweep_origins_indices_and_cv_variants(tmp_path, fields, needle):
    with pytest.raises(ConfigError, match=re.escape(needle)):
        load_study(study_file(tmp_path, **fields))


def test_grid_sweep_and_overrides(tmp_path):
    study = load_study(study_file(tmp_path, sweep={"train.optimizer.lr": [0.01, 0.1],
                                                   "train.batch_size": [16, 32]}),
                       ["train.epochs=3"])
    assert len(study.runs) == 4
    assert {r.variant for r in study.runs} == {"lr=0.01,batch_size=16", "lr=0.01,batch_size=32",
                                               "lr=0.1,batch_size=16", "lr=0.1,batch_size=32"}
    assert all(r.config.train.epochs == 3 for r in study.runs)


@pytest.mark.parametrize("fields, needles", [
    ({"variants": {"typo": {"model": {"chanels": [1]}}}}, ["variant 'typo'", "model.chanels"]),
    ({"variants": {"bad": {"trian": {"epochs": 2}}}}, ["variant 'bad'", "trian"]),
    ({"sweep": {"train.optimizer.lrr": [1, 2]}}, ["train.optimizer.lrr", "unknown key"]),
    ({"sweep": {"train.epochs": []}}, ["sweep.train.epochs", "non-empty"]),
    ({"search": {"space": {"train.optimizer.lr": {"type": "float", "low": 0.1, "high": 0.01}}}},
     ["empty range"]),
    ({"search": {"space": {"train.epochz": {"type": "int", "low": 1, "high": 3}}}},
     ["search.space.train.epochz"]),
    ({"search": {"sampler": "grid", "space": {"train.optimizer.lr": {"type": "float", "low": 0.1,
                                                                       "high": 1.0}}}}, ["step"]),
    ({"baseline": "nope"}, ["baseline 'nope'"]),
    ({"name": "../evil"}, ["name"]),
    ({"cv": {"folds": 1}}, ["cv.folds"]),
    ({"sweep": {"model.kernel_size": [3, 0]}}, ["kernel_size=0", "model.kernel_size"]),
    ({"sweep": {"train.optimizer.betas": [[0.9, 0.99], [float("nan"), 0.9]]}}, ["betas", "finite"]),
    ({"search": {"space": {"model.kernel_size": [3, 0]}}}, ["search.space.model.kernel_size = 0"]),
    ({"search": {"space": {"model.kernel_size": {"type": "int", "low": 0, "high": 5}}}},
     ["search.space.model.kernel_size = 0"]),
    ({"search": {"space": {"model.pool_size": {"type": "int", "low": 2, "high": 9, "step": 1}}}},
     ["search.space.model.pool_size = 3", "shrinks the 8x8 input"]),  # 2 pools of 3: 8 -> 2 -> 0
    ({"search": {"space": {"train.batch_size": {"type": "int", "low": 16.5, "high": 64}}}},
     ["whole numbers", "low 16.5", "type: float"]),  # int(16.5) silently searched from 16
    ({"search": {"space": {"train.epochs": {"type": "int", "low": 1, "high": 9, "step": 0.5}}}},
     ["whole numbers", "step 0.5"]),
    ({"seed": 2**32 - 2, "seeds": 3}, ["seed", "2^32 - 1"]),
    ({"seed": -1}, ["seed"]),
    ({"search": {"base": {"data": {"val_fraction": 0}},
                 "space": {"train.optimizer.lr": [0.1, 0.01]}}}, ["search.objective", "val_fraction: 0"]),
])
def test_bad_study_files_fail_before_training(tmp_path, fields, needles):
    with pytest.raises(ConfigError) as err:
        load_study(study_file(tmp_path, **fields))
    for needle in needles:
        assert needle in str(err.value), str(err.value)


def test_two_swept_keys_of_one_last_name_are_told_apart_in_variant_names(tmp_path):
    """A grid over the optimizer's and the schedule's names named its variants 'name=sgd,name=none';
    each key is now named by its shortest ending that the block's other keys do not share. A key
    alone keeps its short name (the folders of studies already run stay theirs)."""
    both = load_study(study_file(tmp_path, sweep={"train.optimizer.name": ["sgd", "adam"],
                                                  "train.scheduler.name": ["none", "cosine"]}))
    assert [n for n, _ in both.variants] == [
        "optimizer.name=sgd,scheduler.name=none", "optimizer.name=sgd,scheduler.name=cosine",
        "optimizer.name=adam,scheduler.name=none", "optimizer.name=adam,scheduler.name=cosine"]
    run = next(r for r in both.runs if r.variant == "optimizer.name=adam,scheduler.name=none").config
    assert (run.train.optimizer.name, run.train.scheduler.name) == ("adam", "none")
    one = load_study(study_file(tmp_path, sweep={"mode": "one-at-a-time", "train.optimizer.name": ["sgd"],
                                                 "train.scheduler.name": ["cosine"], "train.epochs": [2]}))
    assert [n for n, _ in one.variants] == ["baseline", "optimizer.name=sgd", "scheduler.name=cosine",
                                            "epochs=2"]
    alone = load_study(study_file(tmp_path, sweep={"train.optimizer.name": ["sgd", "adam"]}))
    assert [n for n, _ in alone.variants] == ["name=sgd", "name=adam"]


def test_unknown_recipe_is_named():
    with pytest.raises(ConfigError, match="recipe:nope: no such recipe"):
        load_study("recipe:nope")
    # written as other names are (emnist_balanced, Quick): the recipe meant
    with pytest.raises(ConfigError, match=r"recipe:emnist_balanced: no such recipe; known: .*; did you "
                                          r"mean recipe:emnist-balanced\?"):
        load_study("recipe:emnist_balanced")
    # printed as written: rich turned `recipe:zzz:` into an emoji
    from tests.helpers import assert_user_error, vs_here

    assert_user_error(vs_here("recipes", "show", "zzz"), "error: recipe:zzz: no such recipe")


def test_two_sweep_blocks_over_one_key_keep_their_own_charts(tmp_path):
    """Seed 004's optimizer x dropout grid beside a plain dropout sweep: the later block used to
    replace the earlier one's chart (one dict key per swept key)."""
    study = load_study(study_file(tmp_path, sweep=[
        {"mode": "grid", "train.optimizer.name": ["adam", "sgd"], "model.dropout": [0.0, 0.5]},
        {"mode": "one-at-a-time", "model.dropout": [0.25]}]))
    charts = study.sweep_members()
    dropout = [(label, block) for label, block, key, _ in charts if key == "model.dropout"]
    assert dropout == [("model.dropout (sweep 1)", 0), ("model.dropout (sweep 2)", 1)]
    from visionstudy.study.manifest import from_study

    points = {c.label: c.points for c in from_study(study).sweeps}
    assert set(points["model.dropout (sweep 1)"].values()) == {0.0, 0.5}
    assert points["model.dropout (sweep 2)"] == {"baseline": 0.0, "dropout=0.25": 0.25}
    # the values of a key as the file lists them (the charts draw categories in this order), not
    # sorted by variant name: adam before sgd was only the alphabet; here sgd is written first
    study = load_study(study_file(tmp_path, sweep=[
        {"mode": "grid", "train.optimizer": [{"name": "sgd", "momentum": 0.9}, {"name": "adamw"}],
         "model.dropout": [0.5, 0.0]},
        {"mode": "one-at-a-time", "model.activation": ["tanh", "elu"]}]))
    points = {c.label: list(c.points.values()) for c in from_study(study).sweeps}
    assert points["train.optimizer"] == [{"name": "sgd", "lr": 0.001, "momentum": 0.9}] * 2 + [
        {"name": "adamw", "lr": 0.001}] * 2
    assert points["model.dropout"] == [0.5, 0.0, 0.5, 0.0]
    assert points["model.activation"] == ["relu", "tanh", "elu"]  # its origin first, then the file's


def test_a_variant_written_twice_is_an_error_not_a_lost_variant(tmp_path):
    path = tmp_path / "twice.yaml"
    path.write_text("name: s\ndata: {dataset: digits}\nvariants:\n  wide: {}\n  narrow: {}\n"
                    "  wide: {model: {hidden: [9]}}\n")
    with pytest.raises(ConfigError, match=r"key 'wide' is written twice \(lines 4 and 6\)"):
        load_study(path)


def test_every_recipe_file_has_unique_keys():
    """Recipes go through the same loader: a recipe with a repeated key cannot ship."""
    from visionstudy.config import read_yaml
    from visionstudy.study import list_recipes, recipe_path

    for name in list_recipes():
        assert read_yaml(recipe_path(name))  # raises ConfigError on a duplicate key


def test_a_study_is_checked_without_torch_and_its_shapes_when_asked(tmp_path):
    """A cluster launcher validates every run without importing torch (`shapes_later`: the model
    registry, optimizers and schedules are torch-free), submits, then `check_shapes` builds each
    model for its data on the meta device and names the run whose layout the images cannot take."""
    import subprocess
    import sys

    from visionstudy.api import Study
    from visionstudy.validate import check_shapes, shapes_later

    study = tmp_path / "s.yaml"
    study.write_text(yaml.safe_dump({
        "name": "s", "data": {"dataset": "digits"}, "model": {"name": "cnn", "channels": [4]},
        "train": {"optimizer": {"name": "sgd", "momentum": 0.9}, "scheduler": {"name": "onecycle"}},
        "variants": {"ok": {}, "deep": {"model": {"channels": [4, 4, 4, 4], "padding": "valid"}}}}))
    code = ("import sys\nfrom visionstudy.api import Study\nfrom visionstudy.validate import shapes_later\n"
            f"with shapes_later():\n    s = Study.load({str(study)!r}, runs_dir={str(tmp_path)!r})\n"
            "print(len(s.spec.runs), 'torch' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.stdout.strip() == "2 False", out.stderr
    with shapes_later():
        runs = Study.load(study, runs_dir=tmp_path).spec.runs
    with pytest.raises(ConfigError, match=r"deep/seed-0: invalid config\n.*shrinks the 8x8 input"):
        check_shapes((r.key, r.config) for r in runs)
    with pytest.raises(ConfigError, match="shrinks the 8x8 input"):  # without shapes_later: at loading
        load_study(study)


def test_a_run_config_is_validated_once_at_expansion_and_trained_as_it_comes(tmp_path, monkeypatch):
    """Expansion validates each run once; the worker trains the validated config it is handed
    (a pickled RunConfig), and nothing else in the study layer validates a run config."""
    import pickle

    from tests.helpers import ROOT
    from visionstudy import validate
    from visionstudy.study import pool, spec

    calls: list[str] = []

    def counting(raw, source="config"):
        calls.append(source)
        return validate.validate_run_config(raw, source)

    monkeypatch.setattr(spec, "validate_run_config", counting)
    variants = {"a": {}, "b": {"model": {"batch_norm": True}}}
    study = load_study(study_file(tmp_path, seeds=2, variants=variants))
    assert [r.config.seed for r in study.runs] == [0, 1, 0, 1]
    assert len(calls) == len(study.runs) == 4  # each run once, and reading it again validates nothing

    def refused(*args, **kwargs):
        raise AssertionError("a worker validated its run config again")

    monkeypatch.setattr(validate, "validate_run_config", refused)
    monkeypatch.setattr(spec, "validate_run_config", refused)
    run = study.runs[1]
    job = pool.Job(run.key, str(tmp_path / "out" / run.key), pickle.loads(pickle.dumps(run.config)))
    event = pool.execute(0, job, "cpu", None, 1)
    assert (event.kind, event.key) == ("done", "a/seed-1"), event.message
    assert 0 <= event.metrics["test_accuracy"] <= 1

    callers = sorted(p.name for p in (ROOT / "src" / "visionstudy" / "study").glob("*.py")
                     if "validate_run_config(" in p.read_text())
    assert callers == ["spec.py"], "validate a study's run configs in spec.py alone"


def test_a_searchs_objective_is_its_tasks_and_one_its_runs_do_not_record_is_refused():
    """A Deep Sets study's search took the default val_accuracy, which set regression does not
    record: every trial failed ("no validation history") and `study run` said "0/0 runs finished",
    exit 0. The default is the task's own; naming one its runs do not record is refused."""
    from visionstudy.study.schema import recipe_path
    from visionstudy.study.spec import study_from

    raw = yaml.safe_load(recipe_path("deepsets").read_text())
    lr = {"type": "float", "low": 1e-3, "high": 1e-2, "log": True}
    raw["search"] = {"sampler": "random", "trials": 2, "space": {"train.optimizer.lr": lr}}
    assert study_from(raw, "ds.yaml").config.search.objective == "val_loss"
    with pytest.raises(ConfigError, match="ds.yaml: search.objective: val_accuracy is not measured by "
                                          "regression runs; use val_loss"):
        study_from(raw, "ds.yaml", ["search.objective=val_accuracy"])
    image = yaml.safe_load(yaml.safe_dump({**BASE, "search": raw["search"]}))
    assert study_from(image, "im.yaml").config.search.objective == "val_accuracy"
    assert study_from(image, "im.yaml", ["search.objective=val_loss"]).config.search.objective == "val_loss"
