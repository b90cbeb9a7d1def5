"""The real `visionstudy` command, run as a user would: outputs, exit codes, no tracebacks."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from tests.conftest import write_mnist_like
from tests.helpers import ROOT, assert_user_error, vs, vs_here
from visionstudy.training.checkpoint import load_checkpoint

QUICK = ROOT / "examples" / "digits-quick.yaml"


def test_datasets_list_and_info(tmp_path):
    listed = vs("datasets", "list")
    assert listed.returncode == 0 and "fashion_mnist" in listed.stdout and "emnist" in listed.stdout
    folder = write_mnist_like(tmp_path / "fashion-mnist")
    info = vs("datasets", "info", "fashion_mnist", "--data-dir", tmp_path, "--no-verify", "--json")
    data = json.loads(info.stdout)
    assert data["train"] == 200 and data["test"] == 50 and data["classes"] == 10
    assert data["class_names"][0] == "T-shirt/top" and str(folder) in data["files"][0]


def test_datasets_errors_are_one_clear_line(tmp_path):
    assert_user_error(vs("datasets", "info", "cifar11"), "unknown dataset 'cifar11'")
    write_mnist_like(tmp_path)
    assert_user_error(vs("datasets", "info", "mnist", "--data-dir", tmp_path),
                      "checksum mismatch", "--no-verify")
    assert_user_error(vs("datasets", "fetch", "cifar10", "--data-dir", tmp_path / "none"),
                      "could not download", "--data-dir")
    # the commands' options by their names before the config fields they fill (`data.path: imagefolder
    # needs ...`), and an option the dataset does not read is refused (`--path` on digits read the digits)
    cases = [(["info", "imagefolder"], "--path (data.path): imagefolder needs the folder of class "),
             (["info", "imagefolder", "--path", tmp_path / "nope"], "--path (data.path): "),
             (["preview", "digits", "--augment", "flop"],
              "--augment (data.augment[0].name): unknown augmentation 'flop'"),
             (["info", "digits", "--path", tmp_path], "--path (data.path): dataset digits does not read it"),
             (["fetch", "cifar10", "--split", "letters"], "--split (data.split): dataset cifar10 does not "),
             (["info", "emnist", "--split", "nope"], "--split (data.split): unknown EMNIST split 'nope'")]
    for args, needle in cases:
        result = vs_here("datasets", *args, *(["--out", tmp_path / "g.png"] if "preview" in args else []))
        assert_user_error(result, needle)
    assert not (tmp_path / "g.png").exists()


@pytest.mark.parametrize("augment", ["", "crop,flip,rotate,cutout"])
def test_datasets_preview_writes_a_grid(tmp_path, augment):
    out = tmp_path / "grid.png"
    result = vs_here("datasets", "preview", "digits", "--out", out, "--augment", augment, "--count", 16)
    assert result.returncode == 0, result.stderr
    from PIL import Image

    with Image.open(out) as im:
        assert im.size[0] > 600 and im.size[1] > 150
        assert len(set(np.asarray(im.convert("L")).ravel().tolist())) > 20  # not blank


def test_a_preview_that_asks_for_more_images_than_the_split_has_says_how_many_it_drew(mnist_dir, tmp_path):
    out = tmp_path / "all.png"
    mirror = ["--data-dir", mnist_dir.parent, "--no-verify", "--from", "test", "--out", out]
    made = vs_here("datasets", "preview", "mnist", *mirror, "--count", 64)
    assert made.returncode == 0, made.stderr
    assert " ".join(made.stdout.split()) == f"wrote {out}: 50 images, all the test split has (--count 64)"
    made = vs_here("datasets", "preview", "mnist", *mirror, "--count", 50)
    assert " ".join(made.stdout.split()) == f"wrote {out}"


def test_preview_of_test_images_and_its_destination_rule(tmp_path):
    """Seed 002's grid of 10 random test images (`--from test`), and the one rule for --out: its
    own earlier grid is replaced, a user's file is not."""
    from PIL import Image

    from visionstudy.config import DataConfig
    from visionstudy.data import prepare
    from visionstudy.data.preview import sample_grid

    data = prepare(DataConfig(dataset="digits"))
    images, titles = sample_grid(data, None, 10, seed=0, split="test")
    test = {data.test.images[i].tobytes() for i in range(len(data.test))}
    assert len(images) == 10 and all(np.round(img * 255).astype(np.uint8).tobytes() in test for img in images)
    out = tmp_path / "test-grid.png"
    for _ in range(2):  # the second time over its own grid
        made = vs_here("datasets", "preview", "digits", "--from", "test", "--count", 10, "--out", out)
        assert made.returncode == 0, made.stderr
    with Image.open(out) as im:
        assert im.info["Software"] == "visionstudy datasets preview"
    mine = tmp_path / "photo.png"
    Image.new("L", (4, 4)).save(mine)
    before = mine.read_bytes()
    assert_user_error(vs_here("datasets", "preview", "digits", "--out", mine), "is not this command's output")
    assert mine.read_bytes() == before
    assert_user_error(vs_here("datasets", "preview", "digits", "--from", "test", "--augment", "flip", "--out",
                              tmp_path / "x.png"), "--augment applies to training images")


def test_train_quick_config_end_to_end(tmp_path):
    result = vs("train", QUICK, "--out", tmp_path / "run", "--quiet", "--set", "train.epochs=15",
                env={"OMP_NUM_THREADS": "1"})  # a job script's share of the cores: honoured, recorded
    assert result.returncode == 0, result.stderr
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["test_accuracy"] > 0.9 and metrics["epochs_run"] == 15
    assert metrics["cpu_threads"] == 1
    again = vs("train", QUICK, "--out", tmp_path / "run", "--quiet")
    assert_user_error(again, "finished run", "--force")


def test_a_runs_config_yaml_trains_that_config_again(digits_run, tmp_path):
    """The file a run wrote is the config to reproduce it: its `resolved:` record was refused as an
    unknown key, and the run's folder given to train was "no such config file"."""
    import yaml

    from visionstudy.config import dump_config
    from visionstudy.validate import load_config

    saved = yaml.safe_load((digits_run / "config.yaml").read_text())
    assert "resolved" in saved
    assert dump_config(load_config(digits_run / "config.yaml")) == {k: v for k, v in saved.items()
                                                                     if k != "resolved"}
    again = vs_here("train", digits_run / "config.yaml", "--set", "train.epochs=1", "--out",
                    tmp_path / "again", "--quiet")
    assert again.returncode == 0 and (tmp_path / "again" / "metrics.json").is_file(), again.stderr
    assert_user_error(vs_here("train", digits_run), f"{digits_run}: a run folder, not a config file",
                      f"visionstudy train {digits_run / 'config.yaml'} --out NEW_FOLDER",
                      f"--resume --out {digits_run}")


@pytest.mark.parametrize("override, needles", [
    ("model.name=vgg", ["unknown model 'vgg'"]),
    ("train.optimizer.name=lion", ["train.optimizer.name", "'lion'", "sgd"]),
    ("train.scheduler.name=warp", ["train.scheduler.name", "'warp'"]),
    ("train.epochs=abc", ["train.epochs", "'abc'"]),
    ("data.val_fraction=1.5", ["data.val_fraction", "1.5"]),
    ("train.bogus=1", ["train.bogus: unknown key"]),
    ("lr=0.1", ["with --set lr=0.1: invalid config", "lr: unknown key; did you mean train.optimizer.lr?"]),
    ("model.channels=[8,8,8,8,8]", ["model.channels", "shrinks the 8x8 input"]),
    ("data.classes=[cat]", ["data.classes", "unknown class names"]),
    ("data.augment=[blur]", ["unknown augmentation 'blur'"]),
    # other tools' spellings: the name meant, and the section of a torchvision architecture
    ("data.dataset=fashion-mnist", ["unknown dataset 'fashion-mnist'; choose one of:",
                                    "sets; did you mean fashion_mnist?"]),
    ("train.optimizer.name=SGD", ["unknown optimizer 'SGD'; choose one of:", "; did you mean sgd?"]),
    ("model.name=ResNet18", ["unknown model 'ResNet18'; choose one of:", "; did you mean resnet18?"]),
    ("train.scheduler.name=OneCycle", ["; did you mean onecycle?"]),
    ("model.name=vgg16", ["model.name: unknown model 'vgg16'; choose one of:",
                          "'vgg16' is a torchvision architecture: write model:",
                          "{name: torchvision, arch: vgg16}"]),
])
def test_bad_configs_exit_2_with_the_field_named(tmp_path, override, needles):
    """In this process (the same CLI, no interpreter start-up); a bad config in a process of its
    own, as a user runs it: test_missing_config_file and the other `vs` error tests."""
    result = vs_here("train", QUICK, "--out", tmp_path / "r", "--quiet", "--set", override)
    assert_user_error(result, *needles)


def test_missing_config_file(tmp_path):
    assert_user_error(vs("train", tmp_path / "nope.yaml"), "no such config file")


def test_a_study_file_given_to_train_is_told_to_use_study_run(tmp_path):
    """It listed each study key as unknown ("seeds: ... did you mean seed?")."""
    recipe = ROOT / "src" / "visionstudy" / "recipes" / "quick.yaml"
    result = vs_here("train", recipe, "--out", tmp_path / "r")
    assert_user_error(result, "a study file (it has variants, seeds, ladder), not the config of one run",
                      f"visionstudy study run {recipe}")
    assert "unknown key" not in result.stderr and not (tmp_path / "r").exists()
    # a run config given a study key by --set: the command to run it (it read "study run c.yaml with --set")
    config = ROOT / "examples" / "digits-quick.yaml"
    assert_user_error(vs_here("train", config, "--set", "seeds=2"), "a study file (it has seeds)",
                      f"`visionstudy study run {config} --set seeds=2`")


def test_data_parallel_two_cpu_processes_match_single_process(tmp_path):
    """DDP through Lightning Fabric (gloo on CPU): 2 x 32 per step equals 1 x 64 per step."""
    common = ["--quiet", "--set", "model.name=mlp", "--set", "model.hidden=[64]",
              "--set", "model.batch_norm=false", "--set", "model.dropout=0.0",
              "--set", "data.augment=[]", "--set", "train.epochs=3",
              "--set", "train.label_smoothing=0.0"]
    single = vs("train", QUICK, "--out", tmp_path / "one", *common, "--set", "train.batch_size=64")
    ddp = vs("train", QUICK, "--out", tmp_path / "two", *common, "--set", "train.batch_size=32",
             "--set", "train.devices=2")
    assert single.returncode == 0, single.stderr
    assert ddp.returncode == 0, ddp.stderr
    # where SLURM's client is installed (scripts/setup.sh --dev), Fabric's detected environment would
    # print "The `srun` command is available on your system but is not used"; ours is chosen
    assert "srun" not in ddp.stderr + single.stderr
    a = load_checkpoint(tmp_path / "one" / "checkpoints" / "last.pt")["model"]
    b = load_checkpoint(tmp_path / "two" / "checkpoints" / "last.pt")["model"]
    for k in a:
        assert torch.allclose(a[k], b[k], atol=1e-4, rtol=1e-3), k
    ma = json.loads((tmp_path / "one" / "metrics.json").read_text())
    mb = json.loads((tmp_path / "two" / "metrics.json").read_text())
    assert abs(ma["test_accuracy"] - mb["test_accuracy"]) < 0.01


def test_report_and_predict_commands(digits_run, tmp_path):
    from PIL import Image

    # the command and its options; every figure (Grad-CAM, t-SNE, images) is checked in process by
    # tests/report/test_report.py::test_ten_class_run_report_has_every_figure_and_table
    result = vs_here("report", digits_run, "--out", tmp_path / "rep", "--tsne-points", "100", "--no-images",
                     "--format", "SVG")  # in capitals, as a user types it (it was "not a report format")
    assert result.returncode == 0, result.stderr
    assert f"report: {tmp_path / 'rep' / 'report.html'}" in " ".join(result.stdout.split())
    assert (tmp_path / "rep" / "figures" / "tsne.png").is_file()
    assert (tmp_path / "rep" / "figures" / "tsne.svg").read_text().lstrip().startswith("<?xml")
    assert not (tmp_path / "rep" / "figures" / "gradcam.png").exists()  # --no-images
    # comma-separated as the API's formats="svg,latex" (it was "--format svg,latex: not a report format")
    both = vs_here("report", digits_run, "--out", tmp_path / "both", "--tsne-points", "0", "--no-images",
                   "--format", "svg,LaTeX")
    assert both.returncode == 0, both.stderr
    assert (tmp_path / "both" / "report-latex.tex").is_file()
    assert (tmp_path / "both" / "figures" / "curves.svg").is_file()
    assert_user_error(vs_here("report", digits_run, "--out", tmp_path / "no", "--format", "pdf,doc"),
                      "--format doc: not a report format; choose from html, pdf, latex, svg")
    # a folder that is not a run and --out inside a run: tests/report/test_report.py, in process

    image = tmp_path / "digit.png"
    Image.fromarray(np.full((40, 30), 200, dtype=np.uint8)).save(image)
    result = vs_here("predict", digits_run, image, "--top-k", "3", "--json", "--gradcam", tmp_path / "cam")
    assert result.returncode == 0, result.stderr
    (row,) = json.loads(result.stdout)
    assert row["image"] == str(image) and len(row["top"]) == 3
    assert sum(t["probability"] for t in row["top"]) <= 1 + 1e-6
    assert (tmp_path / "cam" / "01_digit_gradcam.png").stat().st_size > 1000
    table = vs_here("predict", digits_run / "checkpoints" / "best.pt", image)
    assert table.returncode == 0 and "digit.png" in table.stdout
    assert_user_error(vs_here("predict", digits_run, tmp_path / "none.png"), "none.png", "no such image")
    # a file that is not a checkpoint: tests/evaluate/test_predict.py, in process


@pytest.mark.parametrize("command", [["report", "RUN"], ["datasets", "preview", "digits"]])
@pytest.mark.parametrize("seed", ["-1", str(2**32)])
def test_a_seed_option_outside_the_seeds_numpy_takes_is_a_usage_error(digits_run, tmp_path, command, seed):
    """`report --seed -1` and `datasets preview --seed 99999999999` ended in numpy's or
    scikit-learn's traceback once the figures were drawn."""
    args = [digits_run if a == "RUN" else a for a in command]
    result = vs_here(*args, "--seed", seed, "--out", tmp_path / "out")
    assert result.returncode == 2 and "--seed" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "out").exists()


def test_no_output_option_writes_into_a_run_folder_even_with_force(digits_run, tmp_path):
    """`predict --gradcam RUN/checkpoints --force` wrote overlays among the run's checkpoints and
    `datasets preview --out RUN/x.png --force` a grid into the run, as `report` and `export` never
    do; `--out grid.jpg` ended in matplotlib's traceback and `--out grid` wrote grid.png, saying grid."""
    before = sorted(p.relative_to(digits_run) for p in digits_run.rglob("*"))
    image = tmp_path / "a.png"
    from PIL import Image

    Image.new("L", (8, 8)).save(image)
    for args, says in [
        (["predict", digits_run, image, "--gradcam", digits_run / "checkpoints", "--force"],
         "Grad-CAM overlays never write into runs"),
        (["datasets", "preview", "digits", "--out", digits_run / "grid.png", "--force"],
         "previews never write into runs"),
        (["train", QUICK, "--out", tmp_path / "r", "--log", "tensorboard", "--log-dir", digits_run],
         "trackers never write into runs"),
        (["datasets", "preview", "digits", "--out", tmp_path / "grid.jpg"],
         "the grid is a PNG image; give a file ending in .png"),
        (["datasets", "preview", "digits", "--out", tmp_path / "grid"], "ending in .png"),
    ]:
        assert_user_error(vs_here(*args), says)
    assert sorted(p.relative_to(digits_run) for p in digits_run.rglob("*")) == before
    assert not list(tmp_path.glob("grid*")) and not (tmp_path / "r").exists()


def test_every_example_config_validates():
    from visionstudy.validate import load_config

    examples = sorted((ROOT / "examples").glob("*.yaml"))
    assert {"fashion-mnist-fast.yaml", "digits-quick.yaml"} <= {p.name for p in examples}
    for path in examples:
        load_config(path)


@pytest.mark.parametrize("example, dataset", [("fashion-mnist-fast", "fashion_mnist"),
                                              ("cifar10-fast", "cifar10")])
def test_train_runs_the_fast_examples_with_data_from_the_environment(tmp_path, example, dataset):
    """README: `VISIONSTUDY_DATA_DIR=/usr/share/datasets visionstudy train
    examples/fashion-mnist-fast.yaml`, here on tiny copies in the official formats."""
    from tests.conftest import cifar_tarball

    if dataset == "cifar10":
        (tmp_path / "data").mkdir()
        cifar_tarball(tmp_path / "data" / "cifar-10-python.tar.gz", n_per_batch=30)
        test_samples = 30
    else:
        write_mnist_like(tmp_path / "data" / "fashion-mnist", n_train=300, n_test=60)
        test_samples = 60
    narrow = ["--set", "model.widths=[8,16,32,64]"] if dataset == "cifar10" else []  # ResNet-9 at full
    # width trains 135 images in 90 s on one bf16 CPU thread: the test is about the data and the file
    result = vs("train", ROOT / "examples" / f"{example}.yaml", "--out", tmp_path / "run",
                "--set", "train.epochs=1", "--set", "train.batch_size=64", "--set", "data.verify=false",
                *narrow, "--quiet", env={"VISIONSTUDY_DATA_DIR": str(tmp_path / "data")})
    assert result.returncode == 0, result.stderr[-2000:]
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["epochs_run"] == 1 and metrics["test_samples"] == test_samples
    config = (tmp_path / "run" / "config.yaml").read_text()
    assert "precision: bf16" in config and dataset in config


LONG = "a-variant-whose-name-alone-passes-the-eighty-columns-a-log-file-was-wrapped-at"


def test_study_run_no_verify_trains_a_repacked_mirror_and_keeps_the_runs(tmp_path):
    import yaml

    write_mnist_like(tmp_path / "mirror" / "fashion-mnist")  # re-packed: not the official checksums
    study = tmp_path / "s.yaml"
    study.write_text(yaml.safe_dump({
        "name": "nv", "data": {"dataset": "fashion_mnist", "max_train_samples": 60},
        "model": {"name": "mlp", "hidden": [8]}, "train": {"epochs": 1, "threads": 1},
        "variants": {LONG: {}}}))
    common = ("study", "run", study, "--runs-dir", tmp_path / "runs", "--data-dir", tmp_path / "mirror",
              "--quiet", "--no-report")
    assert_user_error(vs(*common), "checksum mismatch", "--no-verify")
    done = vs(*common, "--no-verify")
    assert done.returncode == 0, done.stderr
    assert "1/1 runs finished" in done.stdout
    lines = done.stdout.splitlines()  # not a terminal: a line per finished run, never hard-wrapped
    assert any(line.startswith(f"done {LONG}/seed-0: test accuracy 0.") and len(line) > 100 for line in lines)
    assert "nv: test accuracy per variant (mean ± std over runs)" in done.stdout  # the results table
    assert any(LONG in line and "│" in line for line in lines)
    from visionstudy.study import load_study  # the same runs: verification is not their identity

    assert [r.config_hash for r in load_study(study, ["data.verify=false"]).runs] == \
        [r.config_hash for r in load_study(study).runs]
    saved = yaml.safe_load((tmp_path / "runs" / "nv" / LONG / "seed-0" / "config.yaml").read_text())
    assert saved["data"]["verify"] is False


def test_only_keeps_a_grid_variants_commas():
    """A grid's variants are named 'key=value,key=value': `--only` with that name selects that one
    variant, beside other names and patterns, instead of splitting it into two that match nothing."""
    from visionstudy.study.execute import only_patterns

    grid = ["optimizer=sgd,conv_dropout=0", "optimizer=sgd,conv_dropout=0.25", "baseline"]
    assert only_patterns("optimizer=sgd,conv_dropout=0.25", grid) == ["optimizer=sgd,conv_dropout=0.25"]
    assert only_patterns("baseline,optimizer=sgd,conv_dropout=0", grid) == [
        "baseline", "optimizer=sgd,conv_dropout=0"]
    assert only_patterns("resnet*, search,", grid) == ["resnet*", "search"]
    assert only_patterns("*conv_dropout=0,baseline", grid) == ["*conv_dropout=0", "baseline"]


def test_every_command_lists_a_one_line_summary():
    """A command's list entry in --help is its docstring's first paragraph, with its line breaks: a
    summary wrapped in the source was listed broken mid-sentence (`predict`, `study work`)."""
    import typer

    from visionstudy.cli import app

    def commands(group, prefix: str = ""):
        for name, cmd in group.commands.items():
            yield f"{prefix}{name}", cmd
            if hasattr(cmd, "commands"):
                yield from commands(cmd, f"{prefix}{name} ")

    summaries = {name: (cmd.help or "").strip().split("\n\n")[0]
                 for name, cmd in commands(typer.main.get_command(app))}
    assert len(summaries) >= 15 and {"predict", "study work", "db start"} <= set(summaries)
    assert not [name for name, text in summaries.items() if "\n" in text or not text], summaries


def test_version_and_flags_read_as_users_expect():
    """`visionstudy --version` was "No such option"; the help wrote `<bool>` beside every flag
    (`--quiet`, `--report/--no-report`, `--help`), as if it took a value."""
    import visionstudy

    done = vs_here("--version")
    assert done.returncode == 0 and done.stdout.strip() == f"visionstudy {visionstudy.__version__}"
    for command in (["--help"], ["study", "run", "--help"], ["train", "--help"], ["report", "--help"]):
        shown = vs_here(*command)
        assert shown.returncode == 0 and "--help" in shown.stdout, shown.stderr
        assert "<bool>" not in shown.stdout, shown.stdout
    assert "<int range>" in vs_here("study", "run", "--help").stdout  # a value's type is kept


def test_a_flag_off_unless_given_has_no_negative_twin():
    """`--quiet --no-quiet ... [default: no-quiet]`: a flag that is off unless given is shown (and
    taken) alone; one that is on unless refused keeps its `--no-` form."""
    shown = vs_here("study", "run", "--help").stdout
    for flag in ("quiet", "wait", "dry-run"):
        assert f"--{flag}" in shown and f"--no-{flag}" not in shown and f"default: no-{flag}" not in shown
    assert "--no-report" in shown
    assert "--no-force" not in vs_here("train", "--help").stdout


def test_study_cancel_of_a_folder_that_is_no_study_is_a_user_error(tmp_path):
    """Not "no SLURM jobs were submitted" and exit 0 for a typo or the study file itself; each
    mistake is told what it is: a folder that does not exist, the study file (plan it, then its
    folder), the runs folder (the studies in it), a folder of something else."""
    study = tmp_path / "s.yaml"
    study.write_text("name: s\n")
    assert_user_error(vs_here("study", "cancel", tmp_path / "typo"), f"{tmp_path / 'typo'}: no such folder")
    for command in ("cancel", "work"):
        assert_user_error(vs_here("study", command, study), f"{study}: a study file, not its planned "
                          f"folder; plan it with `visionstudy study run {study}`",
                          "then give its folder (runs/s unless")
    (tmp_path / "planned").mkdir()
    (tmp_path / "planned" / "study.yaml").write_text("name: planned\n")
    (tmp_path / "planned" / "manifest.json").write_text("{}")  # as `study run` plans a folder
    done = vs_here("study", "cancel", tmp_path / "planned")
    assert done.returncode == 0 and "no SLURM jobs were submitted" in done.stdout, done.stderr
    assert_user_error(vs_here("study", "work", tmp_path),
                      f"{tmp_path}: not a planned study folder (no study.yaml)",
                      f"it holds the study folder planned: give one of them ({tmp_path / 'planned'})")
    assert_user_error(vs_here("study", "status", tmp_path), "not a study folder (no manifest.json); it holds "
                      f"the study folder planned: give one of them ({tmp_path / 'planned'})")
    (tmp_path / "other").mkdir()
    assert_user_error(vs_here("study", "work", tmp_path / "other"), "other: not a planned study folder (no "
                      "study.yaml); give the folder `visionstudy study run` wrote")


def test_a_study_command_given_a_missing_path_says_no_such_study_file(tmp_path):
    """Not "no such config file" (a run config's wording): every command that reads a study file
    says it is a study file it wanted, and what else it takes."""
    missing = tmp_path / "typo.yaml"
    for command in (("study", "status"), ("study", "run"), ("recipes", "show")):
        target = missing if command[0] == "study" else "recipe:nope"
        needle = f"{missing}: no such study file" if command[0] == "study" else "no such recipe"
        assert_user_error(vs_here(*command, target), needle)
    assert_user_error(vs_here("study", "status", missing), "recipe:NAME", "the folder `study run` wrote")


def test_an_unknown_device_is_one_user_error_before_a_study_queues_anything(tmp_path, monkeypatch):
    """--device tpu used to queue the study and fail each of its runs with the same message."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "s.yaml").write_text("name: s\ndata: {dataset: digits}\nvariants: {a: {}, b: {}}\n")
    for launcher in ("local", "ray"):
        assert_user_error(vs_here("study", "run", "s.yaml", "--device", "tpu", "--launcher", launcher),
                          "--device 'tpu': choose auto, cpu or cuda")
        assert not (tmp_path / "runs").exists()
    (tmp_path / "r.yaml").write_text("name: r\ndata: {dataset: digits}\n")
    assert_user_error(vs_here("train", "r.yaml", "--device", "gpu"),
                      "--device 'gpu': choose auto, cpu or cuda")
    assert not (tmp_path / "runs").exists()
    from visionstudy.config import check_device  # the case of a known one does not matter (CPU)

    assert [check_device(d) for d in ("CPU", "Auto", "cuda")] == ["cpu", "auto", "cuda"]


def test_study_run_dry_run_shows_what_would_train_and_a_job_script_and_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "s.yaml").write_text("name: s\ndata: {dataset: digits}\nmodel: {name: cnn, channels: [4], "
                                     "hidden: [8]}\ntrain: {epochs: 1}\nvariants: {a: {}, b: {}}\n")
    dry = vs_here("study", "run", "s.yaml", "--dry-run", "--workers", "2")
    assert dry.returncode == 0, dry.stderr
    assert "would train 2 runs here, 2 at once; nothing was trained, queued or written" in dry.stdout
    dry = vs_here("study", "run", "s.yaml", "--dry-run", "--launcher", "slurm", "--jobs", "4",
                  "--gpus-per-job", "1", "--time", "4:00:00", "--db", "postgresql://me:secret@db.example/studies")
    assert dry.returncode == 0, dry.stderr
    assert "would submit a job array of 2 jobs for 2 runs" in " ".join(dry.stdout.split())  # 4 asked
    for line in ("#SBATCH --array=0-1", "#SBATCH --gres=gpu:1", "#SBATCH --time=4:00:00",
                 "export VISIONSTUDY_DB='postgresql://me:***@db.example/studies'"):
        assert line in dry.stdout.splitlines(), dry.stdout
    assert "secret" not in dry.stdout and f"study work {tmp_path / 'runs' / 's'}" in dry.stdout
    assert not (tmp_path / "runs").exists()  # no plan, database, slurm folder or definition
    assert_user_error(vs_here("study", "run", "s.yaml", "--dry-run", "--launcher", "slurm"),
                      "the study database is SQLite")  # what the launch would refuse
    assert_user_error(vs_here("study", "run", "s.yaml", "--dry-run", "--launcher", "slurmm"),
                      "--launcher slurmm: choose slurm or ray")
    assert_user_error(vs_here("study", "run", "s.yaml", "--dry-run", "--device", "tpu"), "--device 'tpu'")
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("ideas")  # a folder of the user's where the study would go
    mine = vs_here("study", "run", "s.yaml", "--dry-run", "--runs-dir", tmp_path, "--set", "name=mine")
    assert_user_error(mine, "mine is not empty and is not a study folder (it holds notes.txt)")
    assert vs_here("study", "run", "s.yaml", "--only", "a", "--quiet", "--no-report").returncode == 0
    study_dir = tmp_path / "runs" / "s"
    # files that stay (SQLite's -wal and -shm live while this process holds a connection: a CLI
    # process closes them at exit)
    kept = lambda: sorted(p.name for p in study_dir.iterdir() if not p.name.endswith(("-wal", "-shm")))  # noqa: E731
    before = kept()
    dry = vs_here("study", "run", "s.yaml", "--dry-run")
    cells = [line.strip("│ ").split("│") for line in dry.stdout.splitlines() if line[2:4] in ("a ", "b ")]
    rows = {c[0].strip(): [x.strip() for x in c[1:]] for c in cells}  # runs, done, running, to train
    assert rows == {"a": ["1", "1", "0", "0"], "b": ["1", "0", "0", "1"]}, dry.stdout
    assert "would train 1 run here" in dry.stdout
    dry = vs_here("study", "run", "s.yaml", "--dry-run", "--only", "a")
    assert "nothing to train: every run --only names is finished" in dry.stdout
    assert kept() == before
    asked = (tmp_path / "s.yaml").read_text()
    (tmp_path / "s.yaml").write_text(asked.replace("variants: {a: {}, b: {}}", "variants: {b: {}}"))
    dry = vs_here("study", "run", "s.yaml", "--dry-run")  # said before the run leaves a finished run out
    said = " ".join(dry.stdout.split())
    assert ("dry run: 1 finished run (a/seed-0) is not in the study file any more: `visionstudy study run` "
            "leaves it out of the study's results and report (its folder stays)") in said
    (tmp_path / "s.yaml").write_text(asked)
    # the study file changed since its folder was planned: the dry run shows the new plan (it said
    # "nothing to train" for a second seed, which the run then trained), and refuses what the run refuses
    (tmp_path / "s.yaml").write_text((tmp_path / "s.yaml").read_text() + "seeds: 2\n")
    dry = vs_here("study", "run", "s.yaml", "--dry-run")
    rows = {line.split("│")[1].strip(): [c.strip() for c in line.split("│")[2:-1]]
            for line in dry.stdout.splitlines() if line.startswith("│")}
    assert rows == {"a": ["2", "1", "0", "1"], "b": ["2", "0", "0", "2"]}, dry.stdout + dry.stderr
    assert "would train 3 runs here" in dry.stdout
    (tmp_path / "s.yaml").write_text((tmp_path / "s.yaml").read_text().replace("epochs: 1", "epochs: 2"))
    assert_user_error(vs_here("study", "run", "s.yaml", "--dry-run"),
                      "holds finished runs of another definition", "a/seed-0 differs in train.epochs: 1 → 2")


def test_a_dry_run_says_what_the_runs_would_do_for_data_not_on_disk(tmp_path, monkeypatch):
    """A dry run said "would train 3 runs" of a study whose CIFAR-10 was nowhere on disk (the runs,
    or a cluster's jobs without internet, then stopped at the download) and whose image folder
    did not exist. It now says so, once per dataset, and nothing for a dataset that is there."""
    from tests.conftest import cifar_tarball

    monkeypatch.chdir(tmp_path)
    (tmp_path / "s.yaml").write_text(
        "name: s\ndata: {dataset: cifar10}\nmodel: {name: mlp, hidden: [8]}\ntrain: {epochs: 1}\n"
        "variants: {a: {}, b: {model: {hidden: [16]}}, c: {data: {dataset: imagefolder, path: photos}},\n"
        "           d: {data: {dataset: digits}}}\n")
    dry = vs_here("study", "run", "s.yaml", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    said = [line for line in " ".join(dry.stderr.split()).split("dry run: ") if line]
    assert len(said) == 2, dry.stderr  # cifar10 once for its two variants; digits is embedded
    assert said[0].startswith("dataset 'cifar10': not on disk (looked in ")
    assert "the first run downloads cifar-10-python.tar.gz from http://127.0.0.1:9/unreachable into " in \
        said[0]
    assert "pass --data-dir FOLDER" in said[0]
    assert said[1].startswith("data.path: photos is not a folder")
    assert "would train 4 runs here" in dry.stdout
    cifar_tarball(tmp_path / "mirror" / "cifar-10-python.tar.gz")
    (tmp_path / "photos" / "cat").mkdir(parents=True)
    (tmp_path / "photos" / "dog").mkdir()
    import numpy as np
    from PIL import Image

    for i in range(4):
        for label in ("cat", "dog"):
            image = Image.fromarray(np.full((8, 8, 3), 40 * i, np.uint8))
            image.save(tmp_path / "photos" / label / f"{i}.png")
    there = vs_here("study", "run", "s.yaml", "--dry-run", "--data-dir", tmp_path / "mirror", "--no-verify")
    assert there.returncode == 0 and "dry run: dataset" not in there.stderr, there.stderr
    assert "not a folder" not in there.stderr and not (tmp_path / "runs").exists()


def test_a_dry_run_says_what_the_runs_would_do_for_pretrained_weights_not_on_disk(tmp_path, monkeypatch):
    """The dry run of the cifar100-transfer recipe said nothing of its ResNet-18 weights, which the
    first run (or a cluster's job without internet) downloads or stops at; now said, once per
    weights, as for data, and nothing once they are in torch hub's cache."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    model = "{name: torchvision, arch: resnet18, resize: null}"
    (tmp_path / "s.yaml").write_text(
        f"name: s\ndata: {{dataset: digits}}\nmodel: {model}\ntrain: {{epochs: 1}}\n"
        "variants: {a: {}, b: {train: {epochs: 2}}, mine: {model: {weights: mine.pth}}}\n")
    dry = vs_here("study", "run", "s.yaml", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    said = [line for line in " ".join(dry.stderr.split()).split("dry run: ") if line]
    hub = tmp_path / "torch" / "hub" / "checkpoints"
    assert said == [f"model.weights DEFAULT of resnet18: not on disk (looked in torch hub's cache, {hub}); "
                    "the first run downloads resnet18-f37072fd.pth from https://download.pytorch.org/models "
                    "(without internet, put that file there, or set model.weights to a local copy's path) ",
                    "model.weights: mine.pth: no such file"], dry.stderr
    hub.mkdir(parents=True)
    (hub / "resnet18-f37072fd.pth").write_bytes(b"")  # a dry run looks, it does not read
    (tmp_path / "mine.pth").write_bytes(b"")
    there = vs_here("study", "run", "s.yaml", "--dry-run")
    assert there.returncode == 0 and "dry run: model.weights" not in there.stderr, there.stderr
    assert not (tmp_path / "runs").exists()


def test_tables_print_users_names_and_texts_literally(tmp_path):
    """rich read a class folder `a[red]` and a note `Table [see fig 2]` as markup: `datasets info` said
    "classes 2: a, b" and `recipes show --runs` dropped the bracketed words."""
    import numpy as np
    from PIL import Image

    for label in ("a[red]", "b"):
        (tmp_path / "photos" / label).mkdir(parents=True)
        for i in range(4):
            image = Image.fromarray(np.full((8, 8, 3), 50 * i, np.uint8))
            image.save(tmp_path / "photos" / label / f"{i}.png")
    info = vs_here("datasets", "info", "imagefolder", "--path", tmp_path / "photos")
    assert info.returncode == 0 and "2: a[red], b" in info.stdout, info.stdout + info.stderr
    (tmp_path / "s.yaml").write_text("name: s\nreproduces: 'Smith [see fig 2]'\ndata: {dataset: digits}\n"
                                     "model: {name: mlp}\nvariants: {a: {}}\nnotes: {a: 'Table [red] 3'}\n")
    shown = vs_here("recipes", "show", tmp_path / "s.yaml", "--runs")
    assert shown.returncode == 0 and "Table [red] 3" in shown.stdout, shown.stdout + shown.stderr
    (tmp_path / "r.yaml").write_text("name: r\ndata: {dataset: digits}\nmodel: {name: mlp, hidden: [8]}\n"
                                     "train: {epochs: 1}\n")
    out = tmp_path / "runs" / "[bold]x"  # a path: the result line said "→ .../runs/x"
    trained = vs_here("train", tmp_path / "r.yaml", "--out", out)
    assert trained.returncode == 0 and f"→ {out}" in trained.stdout, trained.stdout + trained.stderr
    # every line prints as written (the consoles take no markup): export said "safetensors: .../x.safetensors"
    exported = vs_here("export", out, "--format", "safetensors", "--out", tmp_path / "[red]x.safetensors")
    assert f"safetensors: {tmp_path / '[red]x.safetensors'} (classes" in exported.stdout, exported.stderr
    assert_user_error(vs_here("train", tmp_path / "[red]none.yaml"), f"{tmp_path / '[red]none.yaml'}")


def test_a_study_folder_among_several_report_paths_is_named_as_such(tmp_path):
    """It said "not a run directory" of the study's folder, which is no help."""
    (tmp_path / "s").mkdir()
    (tmp_path / "s" / "manifest.json").write_text("{}")
    assert_user_error(vs_here("report", tmp_path / "s", tmp_path / "s" / "a" / "seed-0"),
                      f"{tmp_path / 's'} is a study folder: report it alone", "or compare run folders")
    # a study file or recipe that never ran: the command that runs it (it said "run `visionstudy
    # study run` first, or give a run folder")
    (tmp_path / "q.yaml").write_text("name: q\ndata: {dataset: digits}\nvariants: {a: {}}\n")
    assert_user_error(vs_here("report", tmp_path / "q.yaml", "--runs-dir", tmp_path / "r"),
                      f"{tmp_path / 'q.yaml'}: the study has not run yet ({tmp_path / 'r' / 'q'} holds no "
                      f"plan); `visionstudy study run {tmp_path / 'q.yaml'} --runs-dir {tmp_path / 'r'}` "
                      "trains it")
    assert_user_error(vs_here("report", "recipe:quick", "--runs-dir", tmp_path / "r"),
                      "recipe:quick: the study has not run yet")
    # a folder with a space: the command to copy keeps it one word
    assert_user_error(vs_here("report", tmp_path / "q.yaml", "--runs-dir", tmp_path / "my runs"),
                      f"`visionstudy study run {tmp_path / 'q.yaml'} --runs-dir '{tmp_path / 'my runs'}'` "
                      "trains it")


def test_ctrl_c_says_how_to_go_on(monkeypatch, tmp_path):
    """Typer turns Ctrl-C into exit 130 without a word; `train` says how to resume."""
    import visionstudy.api

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(visionstudy.api, "train", interrupted)
    done = vs_here("train", ROOT / "examples" / "digits-quick.yaml", "--out", tmp_path / "run")
    assert done.returncode == 130
    err = " ".join(done.stderr.split())
    assert "interrupted: `visionstudy train" in err and "--resume` (with the same --out and --set)" in err


def test_a_schedulers_sigterm_stops_train_as_ctrl_c_does_and_resume_goes_on(tmp_path):
    """SIGTERM (a SLURM time limit or preemption, `kill`) ended `train` without a word, exit -15."""
    import signal
    import subprocess
    import sys
    import time

    from tests.helpers import patient

    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "visionstudy", "train", QUICK, "--out", out, "--set", "train.epochs=60",
           "--quiet"]
    proc = subprocess.Popen(list(map(str, cmd)), cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    deadline = time.monotonic() + patient(120)
    while not (out / "checkpoints" / "last.pt").is_file() and time.monotonic() < deadline:
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=patient(60))
    assert proc.returncode == 130, err
    err = " ".join(err.split())
    assert "stopped by SIGTERM: `visionstudy train" in err and "--resume` (with the same --out" in err
    assert "Traceback" not in err and not (out / "metrics.json").exists()
    kept = load_checkpoint(out / "checkpoints" / "last.pt")["epoch"]
    resumed = vs_here("train", QUICK, "--out", out, "--set", "train.epochs=60", "--resume", "--quiet")
    assert resumed.returncode == 0, resumed.stderr
    history = (out / "history.csv").read_text().splitlines()[1:]
    assert kept >= 1 and [int(r.split(",")[0]) for r in history] == list(range(1, len(history) + 1))


def test_ctrl_c_while_waiting_for_slurm_jobs_leaves_them_running_and_says_so(monkeypatch, tmp_path):
    import visionstudy.api
    from visionstudy.study import launch

    def wait_interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(visionstudy.api.Study, "launch", lambda self, *a, **k: "4242")
    monkeypatch.setattr(launch, "wait_slurm", wait_interrupted)
    done = vs_here("study", "run", "recipe:quick", "--runs-dir", tmp_path, "--launcher", "slurm", "--wait")
    err = " ".join(done.stderr.split())
    assert done.returncode == 130, done.stderr
    assert "stopped waiting; job array 4242 goes on" in err and "visionstudy study cancel" in err


def test_status_says_what_became_of_running_runs_whose_jobs_are_gone(monkeypatch, capsys, tmp_path):
    from visionstudy import cli
    from visionstudy.study import launch

    monkeypatch.setattr(launch, "recorded_jobs", lambda folder: ["11"])
    monkeypatch.setattr(launch, "slurm_jobs", lambda folder: [])
    cli.print_jobs(tmp_path / "s", 2)
    out, err = capsys.readouterr()
    assert "SLURM jobs 11: none queued or running" in out
    said = " ".join(err.split())
    assert "2 runs read as running with no job left to train them" in said
    assert f"visionstudy study run {tmp_path / 's'} --launcher slurm" in said
    cli.print_jobs(tmp_path / "s", 0)
    assert capsys.readouterr().err == ""


def test_tables_fold_their_cells_in_a_narrow_terminal_instead_of_cutting_them():
    """An 80-column terminal showed each run of a sweep as `opti…` and its parameters as `356,…`."""
    import io

    from rich.console import Console

    from visionstudy.cli import Table

    name = "optimizer=sgd-lr0.01-momentum0.9,conv_dropout=0.25/seed-0"
    table = Table("run", "model", "params", "optimizer", "lr", "schedule", "epochs", "batch", "augment",
                  "validates on")
    table.add_row(name, "cnn", "356,810", "rmsprop", "0.001", "none", "20", "64", "-", "10% held out")
    out = io.StringIO()
    Console(file=out, width=80).print(table)
    text = out.getvalue()
    assert "…" not in text
    cells = [line.split("│") for line in text.splitlines() if line.startswith("│")]
    assert "".join(c[1].strip() for c in cells) == name
    assert "".join(c[3].strip() for c in cells) == "356,810"
    assert " ".join(c[10].strip() for c in cells).split() == ["10%", "held", "out"]
