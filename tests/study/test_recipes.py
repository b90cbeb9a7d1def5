"""Recipes: every built-in study validates and expands to the runs of the report it reproduces,
its models have the published parameter counts, and each runs end to end for one epoch on tiny
data written in the dataset's official format."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import yaml

from tests.conftest import cifar_tarball, write_mnist_like
from tests.helpers import ROOT, vs, vs_here
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
    ema = {run.variant: run.config for run in load_study(ROOT / "bench" / "fashion-ema.yaml").runs}
    with_ema = ema["ema"]
    assert (with_ema.data, with_ema.model, with_ema.train) == (example.data, example.model, example.train)
    assert ema["no-ema"].train == example.train.model_copy(update={"ema": None})


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


def test_recipes_cli_lists_shows_and_expands():
    listed = vs_here("recipes", "list")
    assert listed.returncode == 0, listed.stderr
    assert all(name in listed.stdout for name in EXPECTED)
    assert "seed 000" in listed.stdout and "62 runs" in listed.stdout
    shown = vs_here("recipes", "show", "cifar100-first20")
    assert yaml.safe_load(shown.stdout)["name"] == "cifar100-first20"
    knobs = vs_here("recipes", "show", "cifar10-keras", "--runs")
    assert knobs.returncode == 0 and "multistep" in knobs.stdout and "test set" in knobs.stdout
    assert "reproduces" in knobs.stdout and "section 4.3" in knobs.stdout
    runs = vs_here("recipes", "show", "quick", "--runs", "--set", "train.epochs=2")
    assert runs.returncode == 0 and runs.stdout.count("/seed-") == 10
    assert "10 runs (5 variants × 2 seeds)" in runs.stdout
    missing = vs_here("recipes", "show", "cifar1000")
    assert missing.returncode == 2 and "no such recipe; known: cifar10-keras" in missing.stderr
    assert "Traceback" not in missing.stderr


def test_listing_and_looking_import_no_torch(tmp_path):
    """`recipes list` built every recipe's models for their images (torch, torchvision and dynamo's
    import: 6.3 s to print a table of nine rows); `recipes show NAME` and `study status FILE` did
    too (2.5 s and 3.2 s). They only look: the models are checked where runs are planned."""
    import subprocess
    import sys

    commands = [["recipes", "list"], ["recipes", "show", "quick"],
                ["study", "status", "recipe:quick", "--runs-dir", str(tmp_path)]]
    code = (f"import sys\nfrom visionstudy import cli\nfor argv in {commands!r}:\n"
            "    sys.argv = ['visionstudy', *argv]\n"
            "    try:\n        cli.main()\n"
            "    except SystemExit as exc:\n        assert not exc.code, exc.code\n"
            "print(sorted(m for m in ('torch', 'torchvision') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "quick: 0/10 runs done" in done.stdout and done.stdout.splitlines()[-1] == "[]", done.stdout


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

# What each seed report shows, and where the study report of its recipe writes it (issue 27).
# Paths are under the study's report/ folder; a variant's folder holds its full section's figures.
FIRST20_MODELS = ["baseline", "dropout-only", "batchnorm-only", "both", "both-augment", "advanced-augment",
                  "resnet"]
EMNIST_BEST = ["mlp-best", "cnn-best", "resnet"]
P2_MODELS = ["simple-cnn", "resnet9", "resnet20"]
SEED_ARTEFACTS: dict[str, dict[str, list[str]]] = {
    "cifar100-first20": {  # seed 000
        # the image figures from one run's report (`IMAGES_OF`): all seven in full are a minute of drawing
        "Fig 1, class distribution": ["both-augment-run/figures/class_distribution.png"],
        "Fig 2, an image of every class": ["both-augment-run/figures/one_per_class.png"],
        "Fig 3, the baseline's history": ["figures/baseline/curves.png"],
        "Figs 4-5, histories per technique": ["figures/curves_techniques_val_accuracy.png",
                                              "figures/curves_techniques_train_loss.png"],
        "Fig 6, augmentation examples": ["both-augment-run/figures/augmentation.png"],
        "Fig 7, with and without augmentation": ["figures/curves_augmentation_val_accuracy.png"],
        "Fig 8, the advanced CNN's history": ["figures/advanced-augment/curves.png"],
        "Fig 9, the ResNet's history": ["figures/resnet/curves.png"],
        "Fig 10, tuning (depth, width)": ["figures/sweep_baseline_model_channels.png",
                                          "figures/sweep_baseline_model_hidden.png",
                                          "figures/curves_depth-and-width_val_accuracy.png"],
        "Fig 11, accuracy against complexity": ["figures/costs.png"],
        "Fig 12, test accuracy of every model": ["figures/variant_bars.png"],
        "Fig 13, confusion matrices of all models": [
            "figures/ladder_confusions.png",
            *(f"figures/{m}/confusion_normalised.png" for m in FIRST20_MODELS)],
        "Table 1, the baseline's metrics": ["tables/baseline_metrics.csv"],
        "Tables 2-3, techniques and augmentation": ["tables/trajectory.csv"],
        "Table 4, every model with its parameters": ["tables/settings.csv", "tables/reference.csv"],
    },
    "cifar100-transfer": {  # seed 001: tables only
        "accuracy mean ± std over repeated runs": ["tables/variants.csv"],
        "fine-tuned against from scratch, paired": ["tables/paired_tests.csv"],
        "the published numbers": ["tables/reference.csv"],
    },
    "cifar10-keras": {  # seed 002
        "the tuning's trials": ["tables/search_trials.csv"],
        "per-combination curves labelled by their values": ["figures/search_trial_curves.png"],
        "training and validation accuracy of each model": [
            "figures/search-best/curves.png", "figures/augmented/curves.png", "figures/enhanced/curves.png",
            "figures/curves_phase-1-and-the-tuned-model_val_accuracy.png"],
        "a grid of test images with their labels": ["figures/search-best/predictions.png"],
        "the tuned model against the augmented and enhanced ones": ["tables/variants.csv",
                                                                     "figures/variant_bars.png"],
    },
    "emnist-balanced": {  # seed 003: of its 62 runs, those below (the other sweeps and CV: the same code)
        "Table 1": ["tables/variants.csv", "tables/reference.csv", "figures/curves_Table-1_val_accuracy.png"],
        "sections 3.1-3.3, test curves": [f"figures/{m}/curves.png" for m in EMNIST_BEST],
        "section 3, predictions on test images": [f"figures/{m}/predictions.png"
                                                  for m in EMNIST_BEST],
        "section 2.1, a one-at-a-time sweep around the MLP baseline": [
            "figures/sweep_mlp_baseline_model_activation.png",
            "figures/curves_MLP-section-2.1_val_accuracy.png"],
        "5-fold cross-validation": ["tables/cv_summary.csv", "tables/cv_folds.csv"],
    },
    "cifar10-optimizers": {  # seed 004 P1
        "training loss per optimizer, without and with dropout": [
            "figures/curves_optimizers-no-dropout_train_loss.png",
            "figures/curves_optimizers-dropout-0.25_train_loss.png"],
        "validation accuracy per optimizer": ["figures/curves_optimizers-no-dropout_val_accuracy.png",
                                              "figures/curves_optimizers-dropout-0.25_val_accuracy.png"],
        "optimizer × dropout": ["figures/interaction_train_optimizer_model_conv_dropout.png"],
        "the dropout rate swept for the two best": ["figures/sweep_model_conv_dropout_sweep_2_.png",
                                                    "figures/curves_dropout-rate-Adam_val_accuracy.png"],
        "every run's numbers": ["tables/variants.csv", "tables/settings.csv"],
    },
    "cifar10-models": {  # seed 004 P2
        "test loss, top-1 and top-5 error": ["tables/variants.csv", "tables/reference.csv"],
        "per-class accuracy": [f"figures/{m}/per_class_accuracy.png" for m in P2_MODELS],
        "confusion matrices": [f"figures/{m}/confusion_normalised.png" for m in P2_MODELS],
        "per-batch curves": [f"figures/{m}/steps.png" for m in P2_MODELS],
    },
    "deepsets": {  # seed 004 P3
        "one table: L, width, test/val/train MSE, parameters, time, epochs": ["tables/settings.csv"],
        "the published table": ["tables/reference.csv"],
        "the best and the smallest its discussion names": ["figures/L3-w100/curves.png",
                                                           "figures/L5-w2/curves.png"],
    },
}
# `report`: how the test writes the report: `study run` itself, or `--no-report` and then the report
# command with t-SNE on 10 points (`images`), also without image figures (`tables`: seeds without any)
REPORT_OPTIONS = {"images": ["--tsne-points", "10"], "tables": ["--no-images", "--tsne-points", "10"]}
# and, with image figures, the report of this variant's first run, into report/<folder>
IMAGES_OF = {"cifar100-first20": ("both+augment", "both-augment-run")}


@pytest.mark.slow
@pytest.mark.parametrize("name, extra, report", [
    ("cifar100-first20", [], "tables"),
    # the seed's two models on 10 of the 100 classes (its figures for 100 classes: a minute of drawing)
    ("cifar100-transfer", ["--set", "train.batch_size=64", "--set", "data.classes=first:10",
                           "--only", "cnn-scratch,resnet18-finetune"], "tables"),
    ("cifar10-keras", ["--trials", "3"], "study run"),
    # the best MLP, CNN and ResNet, the MLP baseline's activation sweep and the best MLP's 5 folds on
    # 10 of the 47 transposed classes (the same figures, a third of the drawing): 11 of its 62 runs;
    # the other sweeps and CV folds are the same code, their configs checked by the expansion tests
    ("emnist-balanced", ["--only", ",".join([*EMNIST_BEST, "mlp-baseline", "mlp-baseline+activation=*",
                                             "mlp-best-cv"]), "--set", "data.classes=first:10"], "study run"),
    ("cifar10-optimizers", [], "tables"),
    ("cifar10-models", ["--set", "train.log_every_n_steps=1"], "tables"),  # tiny data: a step per batch
    ("fashion-mnist", [], "none"),  # ours: no seed report to match
    ("deepsets", ["--set", "data.sets.train=300", "--set", "data.sets.val=50", "--set", "data.sets.test=50"],
     "study run"),
])
def test_recipe_runs_end_to_end_for_one_epoch_and_writes_its_seeds_figures(name, extra, report, mirror,
                                                                          tmp_path):
    result = vs("study", "run", f"recipe:{name}", *ONE_EPOCH, *extra, "--data-dir", str(mirror),
                "--runs-dir", str(tmp_path), "--workers", "2", "--quiet",
                *(["--no-report"] if report != "study run" else []),
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
    if report in REPORT_OPTIONS:  # the report command on the study folder
        written = vs("report", tmp_path / name, *REPORT_OPTIONS[report], "--data-dir", str(mirror))
        assert written.returncode == 0, written.stderr
    if name in IMAGES_OF:
        variant, folder_name = IMAGES_OF[name]
        written = vs("report", tmp_path / name / variant / "seed-0", *REPORT_OPTIONS["images"],
                     "--data-dir", str(mirror), "--out", tmp_path / name / "report" / folder_name)
        assert written.returncode == 0, written.stderr
    folder = tmp_path / name / "report"
    missing = {what: [p for p in paths if not (folder / p).is_file() or (folder / p).stat().st_size < 100]
               for what, paths in SEED_ARTEFACTS.get(name, {}).items()}
    assert not any(missing.values()), {what: paths for what, paths in missing.items() if paths}
    if name == "deepsets":  # a regression study: ranked and tested on test MSE, no accuracy
        html = (folder / "report.html").read_text()
        assert "Test MSE difference to" in html and "L3-w100" in html
        variants = (folder / "tables" / "variants.csv").read_text()
        assert variants.startswith("variant,runs,test MSE mean") and "accuracy" not in variants
        reference = (folder / "tables" / "reference.csv").read_text()
        assert 'L5-w2,params,49,49' in reference
        table = (folder / "tables" / "settings.csv").read_text().splitlines()  # seed 004 P3's one table
        assert table[0] == ("variant,layers,width,test MSE mean,std,runs,validation MSE,train MSE,parameters,"
                            "train seconds,epochs") and len(table) == 9
    if name == "cifar10-models":  # seed 004 P2's per-batch curves are recorded in every run
        assert all((p.parent / "steps.csv").read_text().startswith("step,epoch,batch") for p in metrics)
        html = (folder / "report.html").read_text()
        assert "Published numbers" in html and "Against seed 004, P2 table" in html
        reference = (folder / "tables" / "reference.csv").read_text()
        assert "resnet9,top1_error" in reference and "0.111" in reference
        assert "top-5 error mean" in (folder / "tables" / "variants.csv").read_text()
    if name == "cifar100-transfer":  # all the training images: no validation split held out
        for p in metrics:
            ds = yaml.safe_load((p.parent / "config.yaml").read_text())["resolved"]["dataset"]
            assert ds["val"] == 0 and ds["train"] == 50, ds  # 10 classes of the fixture's 100
    if name == "cifar10-keras":  # each trial's line is named by its values
        assert "labelled by its values" in (folder / "report.html").read_text()


def test_every_seed_recipe_lists_its_seeds_figures():
    """The seed recipes (not ours: quick, fashion-mnist) each have their artefact list above."""
    ours = {"quick", "fashion-mnist"}
    assert set(SEED_ARTEFACTS) == set(list_recipes()) - ours


def test_recipes_show_runs_prints_each_models_parameter_count():
    """Checking a recipe against its seed's table needs no run: the published counts of seed 000's
    Table 4 (counted on the meta device for 20 classes) and of seed 004 P3's Deep Sets (sets of
    3-dimensional elements, one output each) are printed on their variants' rows."""
    for recipe, published_counts in [("cifar100-first20", 7), ("deepsets", 8)]:
        shown = vs("recipes", "show", recipe, "--runs", env={"COLUMNS": "250"})
        assert shown.returncode == 0, shown.stderr
        rows = {line.split("│")[1].strip(): [c.strip() for c in line.split("│")[2:-1]]
                for line in shown.stdout.splitlines() if "/seed-" in line}
        published = load_study(f"recipe:{recipe}").config.reference.variants
        counted = {key.split("/")[0]: cells[1] for key, cells in rows.items()}
        expected = {v: f"{numbers['params']:,}" for v, numbers in published.items() if "params" in numbers}
        assert len(expected) == published_counts, expected
        assert all(counted[v] == n for v, n in expected.items()), (counted, expected)
    emnist = vs("recipes", "show", "emnist-balanced", "--runs", "--set", "data.classes=first:5",
                env={"COLUMNS": "250"})
    assert emnist.returncode == 0, emnist.stderr
    counts = [line.split("│")[3].strip() for line in emnist.stdout.splitlines() if "/seed-" in line]
    assert len(counts) == 62 and all(c.replace(",", "").isdigit() for c in counts), counts


def test_recipes_show_runs_expands_a_study_file_of_ones_own(tmp_path):
    """`recipes show --runs` lists a recipe's runs with their parameter counts before they train;
    a study file of one's own was "no such recipe"."""
    from tests.helpers import vs_here

    path = tmp_path / "mine.yaml"
    path.write_text(yaml.safe_dump({"name": "mine", "data": {"dataset": "digits"}, "seeds": 2,
                                    "model": {"name": "mlp", "hidden": [8]},
                                    "variants": {"small": {}, "wide": {"model.hidden": [64]}}}))
    shown = vs_here("recipes", "show", path, "--runs", "--set", "train.epochs=3")
    assert shown.returncode == 0, shown.stderr
    rows = [line.split("│")[1:4] for line in shown.stdout.splitlines() if "/seed-" in line]
    assert [[c.strip() for c in row] for row in rows] == [
        ["small/seed-0", "mlp", "610"], ["small/seed-1", "mlp", "610"],
        ["wide/seed-0", "mlp", "4,810"], ["wide/seed-1", "mlp", "4,810"]]
    assert "mine: 4 runs (2 variants × 2 seeds)" in shown.stdout
    assert vs_here("recipes", "show", path).stdout == path.read_text()  # the file itself, as for a recipe
    # what each run validates on: its fold (a k-fold run said "held-out split"), or its held-out share
    folds = vs_here("recipes", "show", path, "--runs", "--set", "cv.folds=3", "--set", "seeds=1")
    assert [line.split("│")[-2].strip() for line in folds.stdout.splitlines() if "/seed-" in line] == [
        "fold 0 of 3", "fold 1 of 3", "fold 2 of 3"] * 2, folds.stdout + folds.stderr
    assert "│ 20% held out" in vs_here("recipes", "show", path, "--runs").stdout
