"""Recipes: every built-in study validates and expands to the runs of the report it reproduces,
its models have the published parameter counts, and each runs end to end for one epoch on tiny
data written in the dataset's official format."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from tests.conftest import cifar_tarball, write_mnist_like
from tests.helpers import ROOT
from visionstudy.models import count_params, create_model
from visionstudy.study import list_recipes, load_study

EXPECTED = {  # recipe → (runs, variants, search trials)
    "cifar100-first20": (12, 12, 0),
    "cifar100-transfer": (12, 4, 0),
    "cifar10-keras": (2, 2, 30),
    "emnist-balanced": (62, 50, 0),
    "cifar10-optimizers": (16, 16, 0),
    "cifar10-models": (3, 3, 0),
    "fashion-mnist": (6, 6, 0),
    "quick": (10, 5, 0),
    "deepsets": (8, 8, 0),
}


def test_every_recipe_is_listed_and_expands_to_its_runs():
    assert set(list_recipes()) == set(EXPECTED)
    for name, (runs, variants, trials) in EXPECTED.items():
        study = load_study(f"recipe:{name}")
        assert (len(study.runs), len(study.variants)) == (runs, variants), name
        assert (study.config.search.trials if study.config.search else 0) == trials, name
        assert study.config.reproduces, name
        if study.config.reference:  # every published number names a variant of the recipe
            assert set(study.config.reference.variants) <= {v for v, _ in study.variants}, name


def test_fashion_mnist_fast_variant_is_the_fast_example_config():
    from visionstudy.validate import load_config

    example = load_config(ROOT / "examples" / "fashion-mnist-fast.yaml")
    fast = next(run.config for run in load_study("recipe:fashion-mnist").runs if run.variant == "fast")
    assert (fast.data, fast.model, fast.train) == (example.data, example.model, example.train)
    assert example.train.precision == "bf16" and example.train.epochs == 12


def test_recipes_scale_and_normalise_as_their_seeds_and_seed_000s_ladder_is_its_trajectory():
    """Seeds 000 and 002 scale pixels to 0..1 only; seed 001 normalises with fixed constants;
    seed 000's section 9.3 reads baseline → BatchNorm → data augmentation → advanced → ResNet."""
    first20 = load_study("recipe:cifar100-first20")
    assert first20.config.ladder == ["baseline", "batchnorm-only", "both+augment", "advanced+augment",
                                     "resnet"]
    assert {r.config.data.normalize for r in first20.runs} == {False}
    assert {r.config.data.normalize for r in load_study("recipe:cifar10-keras").runs} == {False}
    transfer = {r.config.data.normalize.model_dump_json()  # type: ignore[union-attr]
                for r in load_study("recipe:cifar100-transfer").runs}
    assert transfer == {'{"mean":[0.5071,0.4867,0.4408],"std":[0.2675,0.2565,0.2761]}'}


def test_cifar100_first20_has_the_published_parameter_counts():
    study = load_study("recipe:cifar100-first20")
    published = study.config.reference.variants
    checked = 0
    for run in study.runs:
        expected = published.get(run.variant, {}).get("params")
        if expected is None:
            continue
        model = create_model(run.config.model.name, 3, 20, 32, **run.config.model.params())
        assert count_params(model) == expected, run.variant
        checked += 1
    assert checked == 7


def test_emnist_cross_validates_only_the_best_configurations():
    study = load_study("recipe:emnist-balanced")
    folded = sorted({r.variant for r in study.runs if r.fold is not None})
    assert folded == ["cnn-best-cv", "mlp-best-cv", "resnet-cv"]
    assert sum(r.fold is not None for r in study.runs) == 15
    best = {r.variant: r.config for r in study.runs}
    assert best["mlp-best-cv"].model == best["mlp-best"].model
    assert best["mlp-best"].train.optimizer.name == "sgd" and best["mlp-best"].train.l1 == 1e-5
    assert best["cnn-baseline+kernel_size=5-3"].model.params()["kernel_size"] == [5, 3]
    assert best["resnet+blocks=1-2-3"].model.params()["kernel_size"] == 5


def test_emnist_has_every_sweep_of_seed_003_around_the_configurations_it_varied():
    study = load_study("recipe:emnist-balanced")
    cfg = {r.variant: r.config for r in study.runs}
    near = cfg["cnn-near-best"].model.params()
    assert near["kernel_size"] == [5, 5, 3] and near["dropout"] == 0.5
    assert near["activation"] == {"name": "leaky_relu", "negative_slope": 0.1}  # LeakyReLU(0.1)
    for kernels in ("3-3-3", "5-3-3"):  # the three-layer kernels, around the near-best CNN
        assert cfg[f"cnn-near-best+kernel_size={kernels}"].model.params()["channels"] == [32, 64, 128]
    assert cfg["mlp-baseline+reg=l2"].train.l2 > 0 and cfg["mlp-baseline+reg=l2"].train.l1 == 0
    assert cfg["cnn-best+l1=1e-05"].train.l1 == 1e-5 and cfg["resnet+l1=1e-05"].train.l1 == 1e-5
    assert cfg["resnet+batch_norm=False"].model.params()["batch_norm"] is False
    assert study.config.reference.variants["resnet+batch_norm=False"]["test_accuracy"] == 0.1315
    # the report validated (its curves, its early stopping) on the test set; the CV runs on folds
    assert {c.data.validates_on for v, c in cfg.items() if not v.endswith("-cv")} == {"test"}
    assert {c.data.validates_on for v, c in cfg.items() if v.endswith("-cv")} == {"split"}
    assert all(study.note(v) for v, _ in study.variants)  # every variant says what it reproduces


def test_cifar10_keras_phase_1_enhanced_model_and_keras_tuner_search():
    study = load_study("recipe:cifar10-keras")
    cfg = {r.variant: r.config for r in study.runs}
    first = cfg["augmented"].train.scheduler
    assert (first.name, first.params()) == ("multistep", {"milestones": [10], "gamma": 0.1})
    assert all(c.data.validates_on == "test" for c in cfg.values())  # Keras' validation_data=test

    def convs(c):
        return sum(len(s) if isinstance(s, list) else 1 for s in c.model.params()["channels"])

    assert convs(cfg["enhanced"]) > convs(cfg["augmented"])  # "increased depth"
    s = study.config.search
    assert (s.sampler.name, s.pruner.name, s.trial_epochs) == ("random", "hyperband", 10)
    assert s.base["data"]["augment"] == [] and s.base["train"]["early_stopping"]["patience"] == 3
    from visionstudy.study.search import final_runs

    values = {"model.channels.0": 48, "model.channels.1": 96, "model.hidden.0": 64,
              "train.optimizer.lr": 3e-4, "train.optimizer": json.dumps({"name": "adam"})}
    best = final_runs(study, values)[0].config  # the final training, 15 epochs
    assert best.train.epochs == 15 and best.data.augment == [] and best.data.validates_on == "test"


def test_cifar10_keras_search_varies_single_filters_of_its_hypermodel():
    from visionstudy.study.search import trial_override

    study = load_study("recipe:cifar10-keras")
    aug = {a.name: a for a in study.runs[0].config.data.augment}
    assert aug["shear"].model_extra == {"degrees": 0.2}  # Keras shear_range is in degrees
    params = {"model.channels.0": 48, "model.channels.1": 128, "model.hidden.0": 96,
              "train.optimizer.lr": 3e-4, "train.optimizer": json.dumps({"name": "sgd", "momentum": 0.9})}
    override = trial_override(study, params)
    assert override["model"]["channels"] == [48, 128] and override["model"]["hidden"] == [96]
    assert override["model"]["pool"] == "max"
    assert override["train"]["optimizer"] == {"lr": 3e-4, "name": "sgd", "momentum": 0.9}


def vs(*args: str, env: dict | None = None, timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "visionstudy", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=timeout, env={**os.environ, **(env or {})},
                          stdin=subprocess.DEVNULL)


def test_recipes_cli_lists_shows_and_expands():
    listed = vs("recipes", "list", env={"COLUMNS": "250"})
    assert listed.returncode == 0, listed.stderr
    assert all(name in listed.stdout for name in EXPECTED)
    assert "seed 000" in listed.stdout and "62 runs" in listed.stdout
    shown = vs("recipes", "show", "cifar100-first20")
    assert yaml.safe_load(shown.stdout)["name"] == "cifar100-first20"
    knobs = vs("recipes", "show", "cifar10-keras", "--runs", env={"COLUMNS": "250"})
    assert knobs.returncode == 0 and "multistep" in knobs.stdout and "test set" in knobs.stdout
    assert "reproduces" in knobs.stdout and "section 4.3" in knobs.stdout
    runs = vs("recipes", "show", "quick", "--runs", "--set", "train.epochs=2", env={"COLUMNS": "250"})
    assert runs.returncode == 0 and runs.stdout.count("/seed-") == 10
    assert "10 runs (5 variants × 2 seeds)" in runs.stdout
    missing = vs("recipes", "show", "cifar1000")
    assert missing.returncode == 2 and "no such recipe; known: cifar10-keras" in missing.stderr
    assert "Traceback" not in missing.stderr


@pytest.fixture(scope="module")
def mirror(tmp_path_factory) -> Path:
    """Tiny copies of every recipe dataset in their official formats, plus cached 'ImageNet'
    ResNet-18 weights where torchvision keeps them."""
    root = tmp_path_factory.mktemp("mirror")
    cifar_tarball(root / "cifar-10-python.tar.gz", n_per_batch=30)
    cifar_tarball(root / "cifar-100-python.tar.gz", hundred=True, n_per_batch=20)
    write_mnist_like(root / "fashion-mnist", n_train=300, n_test=60)
    write_mnist_like(root / "emnist", classes=47, n_train=470, n_test=94, prefix="emnist-balanced-",
                     transpose=True)
    import torchvision

    hub = root / "torch" / "hub" / "checkpoints"
    hub.mkdir(parents=True)
    torch.save(torchvision.models.resnet18(weights=None).state_dict(), hub / "resnet18-f37072fd.pth")
    return root


ONE_EPOCH = ["--set", "train.epochs=1", "--set", "data.verify=false"]


@pytest.mark.parametrize("name, extra", [
    ("cifar100-first20", []),
    ("cifar100-transfer", ["--set", "train.batch_size=64", "--only", "resnet18-finetune"]),
    ("cifar10-keras", ["--trials", "3"]),
    # the MLP and the CNN with its parameterised LeakyReLU on the 47 transposed classes: 2 of its 62
    # runs; the others are the same code at minutes more CPU, their configs checked by the expansion
    # tests; ResNets run end to end in cifar100-first20, cross-validation in tests/study/test_execute.py
    ("emnist-balanced", ["--only", "mlp-baseline,cnn-near-best"]),
    ("cifar10-optimizers", []),
    ("cifar10-models", []),
    ("fashion-mnist", []),
    ("deepsets", ["--set", "data.sets.train=300", "--set", "data.sets.val=50", "--set", "data.sets.test=50"]),
])
def test_recipe_runs_end_to_end_for_one_epoch(name, extra, mirror, tmp_path):
    result = vs("study", "run", f"recipe:{name}", *ONE_EPOCH, *extra, "--data-dir", str(mirror),
                "--runs-dir", str(tmp_path), "--workers", "2", "--quiet",
                *(["--no-report"] if name != "deepsets" else []),
                env={"TORCH_HOME": str(mirror / "torch")}, timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    study = load_study(f"recipe:{name}")
    metrics = sorted(p for p in (tmp_path / name).glob("**/metrics.json") if "search" not in p.parts)
    extra_runs = 1 if study.config.search else 0  # the search's final run
    only = extra[extra.index("--only") + 1].split(",") if "--only" in extra else None
    from visionstudy.study import selected

    planned = [r for r in study.runs if selected(r.variant, only)]
    assert len(metrics) == len(planned) + extra_runs
    assert {p.parent.relative_to(tmp_path / name).as_posix() for p in metrics} >= {r.key for r in planned}
    for path in metrics:
        m = json.loads(path.read_text())
        assert m["epochs_run"] == 1
        assert m["test_mse"] > 0 if name == "deepsets" else 0.0 <= m["test_accuracy"] <= 1.0
    if name == "deepsets":  # a regression study: ranked and tested on test MSE, no accuracy
        html = (tmp_path / name / "report" / "report.html").read_text()
        assert "Test MSE difference to" in html and "L3-w100" in html
        variants = (tmp_path / name / "report" / "tables" / "variants.csv").read_text()
        assert variants.startswith("variant,runs,test MSE mean") and "accuracy" not in variants
        reference = (tmp_path / name / "report" / "tables" / "reference.csv").read_text()
        assert 'L5-w2,params,49,49' in reference
    if name == "cifar10-models":  # seed 004 P2's per-batch curves are recorded in every run
        assert all((p.parent / "steps.csv").read_text().startswith("step,epoch,batch") for p in metrics)
    if name == "cifar100-transfer":  # all the training images: no validation split held out
        for p in metrics:
            ds = yaml.safe_load((p.parent / "config.yaml").read_text())["resolved"]["dataset"]
            assert ds["val"] == 0 and ds["train"] == 500, ds
    if name == "cifar10-models":  # the report command on the study folder, without image figures
        report = vs("report", tmp_path / name, "--no-images", "--tsne-points", "10")
        assert report.returncode == 0, report.stderr
        html = (tmp_path / name / "report" / "report.html").read_text()
        assert "Published numbers" in html and "Against seed 004, P2 table" in html
        reference = (tmp_path / name / "report" / "tables" / "reference.csv").read_text()
        assert "resnet9,top1_error" in reference and "0.111" in reference


def test_recipes_show_runs_prints_each_models_parameter_count():
    """Checking a recipe against its seed's table needs no run: the published counts of seed 000's
    Table 4 are printed on their variants' rows (counted on the meta device for 20 classes)."""
    shown = vs("recipes", "show", "cifar100-first20", "--runs", env={"COLUMNS": "250"})
    assert shown.returncode == 0, shown.stderr
    rows = {line.split("│")[1].strip(): [c.strip() for c in line.split("│")[2:-1]]
            for line in shown.stdout.splitlines() if "/seed-" in line}
    published = load_study("recipe:cifar100-first20").config.reference.variants
    counted = {key.split("/")[0]: cells[1] for key, cells in rows.items()}
    expected = {v: f"{numbers['params']:,}" for v, numbers in published.items() if "params" in numbers}
    assert len(expected) == 7 and all(counted[v] == n for v, n in expected.items()), (counted, expected)
    emnist = vs("recipes", "show", "emnist-balanced", "--runs", "--set", "data.classes=first:5",
                env={"COLUMNS": "250"})
    assert emnist.returncode == 0, emnist.stderr
    counts = [line.split("│")[3].strip() for line in emnist.stdout.splitlines() if "/seed-" in line]
    assert len(counts) == 62 and all(c.replace(",", "").isdigit() for c in counts), counts
