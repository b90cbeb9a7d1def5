"""The Python API (`import visionstudy as vs`): the CLI's path, as objects."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import visionstudy as vs
from tests.helpers import ROOT, TINY, assert_user_error
from tests.helpers import vs as cli
from visionstudy.study.launch import Jobs


@pytest.fixture(scope="module")
def api_run(tmp_path_factory) -> vs.Run:
    out = tmp_path_factory.mktemp("api") / "run"
    return vs.train(TINY, set={"train.epochs": 2, "model.hidden": [12]}, out=out, quiet=True)


def test_import_is_light_and_names_load_on_use():
    code = "import sys, visionstudy; assert 'torch' not in sys.modules; print(sorted(visionstudy.__all__))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "Study" in done.stdout and "train" in done.stdout
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        vs.nope  # noqa: B018


def test_train_returns_the_run_with_its_metrics_history_and_predictions(api_run, tmp_path):
    run = api_run
    on_disk = json.loads((run.path / "metrics.json").read_text())
    assert run.metrics == on_disk and run.metrics["epochs_run"] == 2  # set= overrode the config
    assert "hidden:\n  - 12" in (run.path / "config.yaml").read_text()
    history = run.history
    assert list(history["epoch"]) == [1, 2] and {"train_loss", "val_accuracy", "lr"} <= set(history.columns)
    from PIL import Image

    data = vs.load_dataset("digits")
    files = []
    for i in range(3):
        files.append(tmp_path / f"{i}.png")
        Image.fromarray(data.test.images[i][..., 0]).save(files[-1])
    got = run.predict(files, top_k=2)
    with np.load(run.path / "predictions.npz") as p:
        expected = [p["class_names"][int(np.argmax(p["logits"][i]))] for i in range(3)]
    assert [g["top"][0]["class"] for g in got] == [str(e) for e in expected]
    assert all(len(g["top"]) == 2 and 0 <= g["top"][0]["probability"] <= 1 for g in got)
    html = run.report(tmp_path / "rep", images=False, tsne_points=0)
    assert html.name == "report.html" and "Run report" in html.read_text()
    shown = run._repr_html_()
    assert "test accuracy" in shown and "data:image/png;base64," in shown


def test_predict_takes_images_in_memory_as_the_files_they_would_be(api_run, tmp_path):
    """A notebook's arrays and PIL images raised a raw TypeError ('PngImageFile' object is not
    iterable). Now the whole test split as one (N, H, W, C) array is classified as the run's test
    did, an array and a PIL image read as the file they would be saved to, and what is not an
    image is one error naming its position."""
    import torch
    from PIL import Image

    run = api_run
    test = vs.load_dataset("digits").test
    got = run.predict(test.images, top_k=1)  # (450, 8, 8, 1) uint8
    with np.load(run.path / "predictions.npz") as p:
        expected = [str(p["class_names"][i]) for i in np.argmax(p["logits"], axis=1)]
    assert [g["top"][0]["class"] for g in got] == expected and got[2]["image"] == "[2]"
    rgba = (np.random.default_rng(0).random((20, 12, 4)) * 255).astype(np.uint8)  # resized, alpha over white
    Image.fromarray(rgba).save(tmp_path / "x.png")
    from_file = run.predict(tmp_path / "x.png")[0]["top"]
    for same in (rgba, Image.fromarray(rgba), [rgba], torch.from_numpy(rgba),
                 rgba.astype(np.float32) / 255, rgba.astype(np.uint16) * 257):  # the file rules' 16 bits
        assert run.predict(same)[0]["top"] == pytest.approx(from_file), type(same)
    gray = test.images[:5, ..., 0]  # (N, H, W): a batch of grayscale images
    assert [g["top"][0]["class"] for g in run.predict(gray, top_k=1)] == expected[:5]
    with pytest.raises(vs.DataError, match=re.escape("images[0]: an array of shape (3, 8, 8): give one image "
                                                     "as (height, width) or (height, width, channels)")):
        run.predict(torch.zeros(1, 3, 8, 8))  # channels first, as torch has them
    with pytest.raises(vs.DataError, match=r"images\[1\]: an array of dtype complex128"):
        run.predict([rgba, np.zeros((8, 8), complex)])
    with pytest.raises(vs.ConfigError, match=r"images\[1\]=5: expected an image file.s path, a folder"):
        run.predict([rgba, 5])
    with pytest.raises(vs.ConfigError, match=r"images=5: expected an image file's path"):
        run.predict(5)


def test_a_variant_folder_given_as_a_run_names_its_runs(digits_run, tmp_path):
    """vs.Run and the report share the message: a study's variant folder lists the runs inside."""
    variant = tmp_path / "a"
    shutil.copytree(digits_run, variant / "seed-0", ignore=shutil.ignore_patterns("analysis"))
    with pytest.raises(vs.VisionStudyError, match=r"a: not a run directory, but it holds 1 run \(.*/seed-0"):
        vs.Run(variant)


def test_errors_are_the_clis_exceptions(tmp_path):
    with pytest.raises(vs.ConfigError, match=r"train\.epochs"):
        vs.train({**TINY, "train": {"epochs": 0}}, out=tmp_path / "x")
    with pytest.raises(vs.ConfigError, match="unknown model"):
        vs.train(TINY, set=["model.name=nope"], out=tmp_path / "y")
    with pytest.raises(vs.VisionStudyError, match="not a run folder"):
        vs.Run(tmp_path)
    (tmp_path / "config.yaml").write_text("name: mine\n")  # a user's own file of that name
    with pytest.raises(vs.VisionStudyError, match="not a run folder"):
        vs.Run(tmp_path)
    assert not (tmp_path / "x").exists()
    with pytest.raises(vs.ConfigError, match="baseline 'nope' is not a variant"):
        vs.Study.load({"name": "s", **{k: TINY[k] for k in ("data", "model", "train")}, "baseline": "nope",
                       "variants": {"a": {}}})


def test_a_study_loads_runs_reports_and_gives_its_results_as_a_dataframe(tmp_path):
    spec = {"name": "api-study", **{k: TINY[k] for k in ("data", "model", "train")}, "seeds": 2,
            "variants": {"plain": {}, "bn": {"model": {"batch_norm": True}}}}
    study = vs.Study.load(spec, set={"train.epochs": 1}, runs_dir=tmp_path / "runs")
    before = study.status()
    assert list(before["status"]) == ["new"] * 4 and not (tmp_path / "runs").exists()  # nothing created
    with pytest.raises(vs.ReportError, match=r"api-study has not run yet .* run it first \(study.run\(\)\)"):
        study.report()  # it said "run `visionstudy study run` first", a command, in a notebook
    lines: list[str] = []
    outcome = study.run(workers=2, quiet=True, report=False, echo=lines.append)  # forkserver workers
    assert outcome.done == outcome.total == 4 and not outcome.failed
    shown = repr(outcome)  # printed in a script: the counts, not every run's metrics
    assert shown.startswith("Outcome(total=4, done=4, failed=[]") and "test_accuracy" not in shown
    assert re.search(r"seconds=\d+\.\d{1,2}, ", shown), shown  # not 16 digits of a second
    assert sum(line.startswith("done ") for line in lines) == 4
    assert list(study.status()["status"]) == ["done"] * 4
    results = study.results()
    assert list(results["key"]) == ["plain/seed-0", "plain/seed-1", "bn/seed-0", "bn/seed-1"]
    for row in results.to_dict("records"):
        metrics = json.loads((study.dir / row["key"] / "metrics.json").read_text())
        assert row["finished"] and row["test_accuracy"] == metrics["test_accuracy"]
        assert row["epochs_run"] == 1
    assert "test_mse" not in results and "val_accuracy" in results  # its task's columns, not every task's
    assert results.drop(columns="fold").notna().all().all()  # each one written by every finished run
    html = study.report(images=False, tsne_points=0)
    assert html == study.dir / "report" / "report.html" and html.is_file()
    shown = study._repr_html_()
    assert "runs finished" in shown and "4/4" in shown and "bn" in shown and "±" in shown


def test_a_script_without_a_main_guard_runs_its_study_once(tmp_path):
    """A plain script (as the seeds write them) calling Study.run at top level: its forkserver
    workers ran the whole script again as `__mp_main__` (here: appending to a file, in the seeds'
    scripts training and writing reports) and then failed with multiprocessing's bootstrapping
    RuntimeError. Each top-level line runs once now."""
    spec = {"name": "guardless", **{k: TINY[k] for k in ("data", "model", "train")}, "seeds": 2}
    script = tmp_path / "study_script.py"
    script.write_text(
        "import os, torch\nimport visionstudy as vs\n"
        f"open({str(tmp_path / 'ran.txt')!r}, 'a').write(f'{{os.getpid()}}\\n')\n"
        f"study = vs.Study.load({spec!r}, set={{'train.epochs': 1}}, runs_dir={str(tmp_path / 'runs')!r})\n"
        "print('done', study.run(workers=2, quiet=True, report=False).done)\n")
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300,
                          cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "done 2" in done.stdout and "bootstrapping" not in done.stderr
    assert len((tmp_path / "ran.txt").read_text().splitlines()) == 1  # the script's own process only
    assert sorted(p.name for p in (tmp_path / "runs" / "guardless" / "baseline").glob("seed-*")) == [
        "seed-0", "seed-1"]


def test_train_refuses_an_out_inside_a_study_even_with_force(tmp_path):
    """`train --force --out runs/quick/baseline/seed-0` replaced a study's finished run with another
    config, and the study's database, status and report took it as the study's."""
    spec = {"name": "kept", **{k: TINY[k] for k in ("data", "model", "train")}}
    study = vs.Study.load(spec, set={"train.epochs": 1}, runs_dir=tmp_path / "runs")
    study.run(quiet=True, report=False, echo=lambda line: None)
    run_dir = study.dir / "baseline" / "seed-0"
    before = (run_dir / "metrics.json").read_bytes()
    for out in (run_dir, study.dir / "extra"):
        with pytest.raises(vs.ConfigError, match=r"inside the study folder .*kept, whose runs `visionstudy "
                                                 r"study run` trains"):
            vs.train(TINY, set={"train.epochs": 2}, out=out, force=True)
    assert (run_dir / "metrics.json").read_bytes() == before and not (study.dir / "extra").exists()
    assert_user_error(cli("train", ROOT / "examples" / "digits-quick.yaml", "--out", run_dir, "--force"),
                      "inside the study folder")


def test_recipes_datasets_and_models():
    recipes = vs.recipes()
    quick = recipes.set_index("recipe").loc["quick"]
    assert quick["runs"] == 10 and quick["variants"] == 5
    data = vs.load_dataset("digits", val_fraction=0.25)
    total = len(data.train) + len(data.val)
    assert data.num_classes == 10 and len(data.val) == pytest.approx(0.25 * total, abs=2)
    import torch

    net = vs.create_model("cnn", in_channels=1, num_classes=10, input_size=8, channels=[4], hidden=[8])
    assert net(torch.zeros(2, 1, 8, 8)).shape == (2, 10)
    with pytest.raises(vs.ConfigError):
        vs.load_dataset("digits", val_fraction=2)
    with pytest.raises(vs.ConfigError, match="data.path: dataset digits does not read it"):  # read silently
        vs.load_dataset("digits", path="photos")


def test_a_dataset_shows_its_sizes_and_classes_not_its_pixels():
    """`data` in a notebook cell printed every array of the dataclass (thousands of numbers)."""
    data = vs.load_dataset("digits", val_fraction=0.25)
    sizes = f"train {len(data.train):,}, val {len(data.val):,}, test {len(data.test):,}"
    assert repr(data) == (f"PreparedData('digits': {sizes} images of 1 x 8 x 8 (C x H x W); 10 classes: "
                          "0, 1, 2, 3, 4, ...)")
    shown = f"Split({len(data.test)} images of 8 x 8 x 1 (H x W x C), uint8, with their labels)"
    assert repr(data.test) == shown


def test_the_cli_and_the_api_write_the_same_run(api_run, tmp_path):
    """One path: `visionstudy train` is `vs.train`, so the same config gives the same weights."""
    import yaml

    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump(TINY))
    done = cli("train", cfg, "--set", "train.epochs=2", "--set", "model.hidden=[12]",
               "--out", tmp_path / "cli", "--quiet")
    assert done.returncode == 0, done.stderr
    ours = json.loads((Path(api_run.path) / "metrics.json").read_text())
    theirs = json.loads((tmp_path / "cli" / "metrics.json").read_text())
    assert theirs["test_accuracy"] == ours["test_accuracy"] and theirs["test_loss"] == ours["test_loss"]


def test_a_runs_config_is_what_trains_it_again(api_run, tmp_path):
    config = api_run.config
    assert "resolved" not in config and config["model"]["hidden"] == [12] and config["train"]["epochs"] == 2
    again = vs.train(config, out=tmp_path / "again")
    assert again.metrics["test_accuracy"] == api_run.metrics["test_accuracy"]
    assert again.config == config


def test_only_and_trials_that_cannot_apply_are_refused_before_anything_trains(tmp_path):
    """One check, in the API, for the CLI's --only and --trials too."""
    spec = {"name": "o", **{k: TINY[k] for k in ("data", "model", "train")}, "variants": {"a": {}, "b": {}}}
    study = vs.Study.load(spec, runs_dir=tmp_path / "runs")
    with pytest.raises(vs.ConfigError, match="--only zz\\*: matches no variant; choose from a, b"):
        study.run(only=["zz*"], quiet=True)
    with pytest.raises(vs.ConfigError, match="--trials 3: the study o has no search section"):
        study.run(trials=3, quiet=True)
    # `only` as one string is read as --only is (it was taken letter by letter: 'o,k')
    with pytest.raises(vs.ConfigError, match="--only zz,yy: matches no variant; choose from a, b"):
        study.run(only="zz,yy", quiet=True)
    # each pattern must match: `a,bb` trained a alone, the typo of b unsaid
    with pytest.raises(vs.ConfigError, match=r"--only bb: matches no variant; choose from a, b; did you "
                                             r"mean b\?"):
        study.run(only="a,bb", quiet=True)
    with pytest.raises(vs.ConfigError, match=r"only=5: give variant names or patterns"):
        study.run(only=5, quiet=True)  # type: ignore[arg-type]  # a raw "'int' object is not iterable"
    for workers in (0, -1, "2", 1.5, True):
        with pytest.raises(vs.ConfigError, match=f"workers={workers!r}: give a whole number"):
            study.run(workers, quiet=True)  # type: ignore[arg-type]
    assert not (tmp_path / "runs").exists()
    refused = cli("study", "run", "recipe:quick", "--only", "nope", "--runs-dir", tmp_path / "r")
    assert_user_error(refused, "--only nope: matches no variant", "baseline")
    assert refused.stdout == ""  # it printed the study's plan line first
    # the dry run said "nothing to train: every run --only names is finished"
    assert_user_error(cli("study", "run", "recipe:quick", "--only", "nope", "--runs-dir", tmp_path / "r",
                          "--dry-run"), "--only nope: matches no variant")


@pytest.mark.parametrize(("call", "says"), [
    (lambda: vs.train([1, 2]), "config=[1, 2]: expected the path of a YAML file or a mapping"),
    (lambda: vs.train(None), "config=None: expected the path of a YAML file"),
    (lambda: vs.train(TINY, set={"model.hidden": {32}}), "set model.hidden={32}: a set cannot be a config"),
    (lambda: vs.train(TINY, set=5), "set=5: expected a mapping such as"),
    (lambda: vs.Study.load(7), "target=7: expected a study file, 'recipe:NAME' or a mapping"),
    (lambda: vs.Run(5), "Run=5: expected a run folder's path"),
    # folder arguments: Python's "expected str, bytes or os.PathLike object, not int" before
    (lambda: vs.train(TINY, out=5), "out=5: expected a path (a str or a pathlib.Path)"),
    (lambda: vs.train(TINY, data_dir=["m"]), "data_dir=['m']: expected a path"),
    (lambda: vs.Study.load("recipe:quick", runs_dir=3), "runs_dir=3: expected a path"),
    (lambda: vs.load_dataset("digits", data_dir=7), "data_dir=7: expected a path"),
    # an AttributeError ('dict' object has no attribute 'name') the first time it was printed
    (lambda: vs.Study({"name": "x", "data": {"dataset": "digits"}}), "load a study with vs.Study.load(...)"),
    (lambda: vs.Study("study.yaml"), "Study('study.yaml'): load a study with vs.Study.load(...), which"),
    # whole numbers the CLI's typed options check: 0 or '3' built a zero-channel model, ran no job
    (lambda: vs.create_model("cnn", in_channels=0), "in_channels=0: give a whole number, 1 or more"),
    (lambda: vs.create_model("cnn", num_classes="10"), "num_classes='10': give a whole number, 1 or more"),
    (lambda: Jobs(count=0), "Jobs.count=0: give a whole number, 1 or more"),
    # the device by the API's name (it said "--device 'tpu'", a flag no script gave)
    (lambda: vs.train(TINY, device="tpu"), "device='tpu': choose auto, cpu or cuda"),
    (lambda: vs.Study.load("recipe:quick").run(device="gpu"), "device='gpu': choose auto, cpu or cuda"),
    (lambda: Jobs(gpus=-1), "Jobs.gpus=-1: give a whole number, 0 or more"),
    (lambda: Jobs(cpus=0), "Jobs.cpus=0: give a whole number, 1 or more"),
    (lambda: Jobs(count=None), "Jobs.count=None: give a whole number, 1 or more"),  # type: ignore[arg-type]
    # a time limit sbatch would refuse after the plan, or one inside the requeue warning's 120 s, where
    # every job requeued itself at its start, again and again, and nothing trained
    (lambda: Jobs(time="12h"), "--time 12h (Jobs.time): not a SLURM time limit; give minutes, HH:MM:SS"),
    (lambda: Jobs(time="0:30"), "--time 0:30 (Jobs.time) is 30 s: each job is told 120 s before its limit"),
    (lambda: Jobs(time="3"), "is 180 s: each job is told 120 s before its limit to save its runs and "
                             "requeue itself, which would leave it less than 120 s to train; give at "
                             "least 4"),
    # an sbatch option the launch sets itself: the later one wins, so the array, logs or requeue broke
    (lambda: Jobs(slurm=["array=0-99"]), "--slurm array=0-99 (Jobs.slurm): the launch sets it"),
    (lambda: Jobs(slurm=["signal=USR1@60"]), "the requeue 120 s before the time limit); leave it out"),
    (lambda: Jobs(slurm=["time=30"]), "--slurm time=30 (Jobs.slurm): give it as --time"),
    (lambda: Jobs(slurm=["cpus-per-task=4"]), "(Jobs.slurm): give it as --cpus-per-job"),
    (lambda: Jobs(gpus=1, slurm=["gres=gpu:a100:1"]),
     "--slurm gres=gpu:a100:1 (Jobs.slurm) and --gpus-per-job 1 both ask for GPUs: give one of them"),
    (lambda: Jobs(slurm=["--account=x"]), "give an sbatch option as KEY=VALUE (or KEY for a flag) without"),
])
def test_wrong_argument_types_are_our_error_not_a_raw_type_error(call, says):
    """Each once raised a raw TypeError from deep inside."""
    with pytest.raises(vs.ConfigError, match=re.escape(says)):
        call()


def test_report_options_are_checked_by_name_and_type(digits_run, tmp_path):
    run = vs.Run(digits_run)
    with pytest.raises(vs.ConfigError, match=r"report\(bogus=...\): not a report option; choose from"):
        run.report(tmp_path / "r", bogus=1)
    with pytest.raises(vs.ConfigError, match="tsne_points: Input should be a valid integer .got 'many'"):
        run.report(tmp_path / "r", tsne_points="many")
    with pytest.raises(vs.ConfigError, match="formats: 'doc' is not a report format"):
        run.report(tmp_path / "r", formats=["html", "doc"])
    with pytest.raises(vs.ConfigError, match="tsne_points: Input should be greater than or equal to 0"):
        run.report(tmp_path / "r", tsne_points=-3)  # was taken as 0 (no t-SNE) without a word
    with pytest.raises(vs.ConfigError, match="seed: Input should be less than or equal to 4294967295"):
        run.report(tmp_path / "r", seed=2**32)  # scikit-learn's t-SNE raised its own error
    assert not (tmp_path / "r").exists()
    from visionstudy.api import report_options  # formats="pdf" was "Input should be a valid tuple"

    assert report_options({"formats": "PDF, html"}).formats == ("pdf", "html")
    assert report_options({"formats": ["SVG"]}).formats == ("svg",)
    for top_k in (0, "3"):  # 0 answered no classes at all, '3' raised a raw TypeError
        with pytest.raises(vs.ConfigError, match=f"top_k={top_k!r}: give a whole number, 1 or more"):
            run.predict([tmp_path / "x.png"], top_k=top_k)  # type: ignore[arg-type]


def test_compare_puts_runs_side_by_side_as_the_report_command_does(digits_run, tmp_path):
    """The CLI's `report A B` had no API: a notebook comparing runs trained by hand had to shell out."""
    import csv
    import shutil

    other = tmp_path / "runs" / "wide"
    shutil.copytree(digits_run, other)
    html = vs.compare([vs.Run(digits_run), other], tmp_path / "cmp", images=False, tsne_points=0)
    assert html == tmp_path / "cmp" / "report.html" and "Runs side by side" in html.read_text()
    with (html.parent / "tables" / "comparison.csv").open(newline="") as f:
        assert [r["run"] for r in csv.DictReader(f)] == ["digits", "wide"]
    for runs in (digits_run, [digits_run], 7):  # one run, or not a list of runs: one clear error
        with pytest.raises(vs.ConfigError, match="give a list of two or more runs .*report is run.report"):
            vs.compare(runs)  # type: ignore[arg-type]
    with pytest.raises(vs.ConfigError, match="runs=5: expected vs.Run objects or run folders"):
        vs.compare([digits_run, 5])  # type: ignore[list-item]
    with pytest.raises(vs.ConfigError, match=r"compare\(bogus=...\): not a report option; choose from"):
        vs.compare([digits_run, other], bogus=1)


def test_numpy_integers_are_whole_numbers_too():
    """A notebook's loop over np.arange gives np.int64: taken as the int it is."""
    import torch

    jobs = Jobs(count=np.int64(2), cpus=np.int64(3))
    assert (jobs.count, jobs.cpus) == (2, 3) and type(jobs.count) is int
    net = vs.create_model("mlp", in_channels=np.int64(1), num_classes=np.int64(4), input_size=8, hidden=[6])
    assert net(torch.zeros(2, 1, 8, 8)).shape == (2, 4)


def test_a_launch_starts_no_more_jobs_than_it_has_runs_for(tmp_path):
    """`--jobs 5` for 2 runs started 5 jobs (3 of them only to find the queue empty, each after
    waiting for its allocation), and a launch of a finished study started jobs with nothing to do."""
    from visionstudy.study.launch import fit_jobs

    assert fit_jobs(Jobs(count=5), 2).count == 2
    assert fit_jobs(Jobs(count=8, workers=2), 5).count == 3  # 2 runs at once in each job
    assert fit_jobs(Jobs(count=2), 6).count == 2
    base = {"data": {"dataset": "digits"}, "model": {"name": "mlp", "hidden": [8]}, "train": {"epochs": 1},
            "seeds": 1}
    study = vs.Study.load({"name": "few", **base, "variants": {"a": {}, "b": {}}}, runs_dir=tmp_path)
    assert study.to_train() == 2
    study.run(workers=1, report=False, quiet=True)
    assert study.to_train() == 0
    assert study.launch("ray", Jobs(count=4)) == []  # no Ray started: nothing to train
    searched = vs.Study.load({"name": "s", **base, "search": {"trials": 3, "final": {"seeds": 2}, "space": {
        "train.optimizer.lr": [0.01, 0.1]}}}, runs_dir=tmp_path)
    # its baseline, its trials (the 2 its space holds, of the 3 asked) and its final runs
    assert searched.to_train() == 1 + 2 + 2


def test_a_planned_study_folder_runs_as_planned(tmp_path):
    """`study cancel` says `study run FOLDER --launcher slurm` goes on; the folder was refused as
    'no such study file'. It loads the study as planned (its file with its --set overrides)."""
    from visionstudy.study.execute import plan

    study = vs.Study.load({**TINY, "name": "p", "seeds": 2}, set={"train.epochs": 1}, runs_dir=tmp_path)
    plan(study.spec, study.place)  # what a launch writes before its jobs start
    again = vs.Study.load(tmp_path / "p")
    assert again.dir == tmp_path / "p" and [r.key for r in again.spec.runs] == ["baseline/seed-0",
                                                                               "baseline/seed-1"]
    assert all(r.config.train.epochs == 1 for r in again.spec.runs)  # its --set, as planned
    with pytest.raises(vs.ConfigError, match="trains as it was planned; to change it, give its study file"):
        vs.Study.load(tmp_path / "p", set={"train.epochs": 3})
    done = cli("study", "status", tmp_path / "p")
    assert done.returncode == 0 and "p: 0/2 runs done" in done.stdout
