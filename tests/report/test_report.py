"""Run and comparison reports: every figure and table, incomplete runs, and never touching runs."""

from __future__ import annotations

import csv
import hashlib
import json
import shutil
from pathlib import Path

import pytest

from visionstudy.errors import ConfigError, ReportError
from visionstudy.report import ReportOptions, build_report

FIGURES = ["curves", "confusion_counts", "confusion_normalised", "per_class_accuracy", "roc",
           "reliability", "tsne", "class_distribution", "one_per_class", "samples", "predictions",
           "misclassified", "gradcam"]
SHOWN = 5e-5  # CSVs hold the 4 decimals the report shows


def snapshot(folder: Path) -> dict[str, str]:
    """The run's results (analysis/, the report's recomputable cache, aside)."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*"))
            if p.is_file() and "analysis" not in p.relative_to(folder).parts}


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def assert_figures(folder: Path, stems: list[str], exts: tuple[str, ...] = ("png",)) -> None:
    for stem in stems:
        for ext in exts:
            f = folder / f"{stem}.{ext}"
            assert f.is_file() and f.stat().st_size > 1000, f


def test_ten_class_run_report_has_every_figure_and_table(digits_run, tmp_path):
    before = snapshot(digits_run)
    html = build_report([digits_run], tmp_path / "rep", ReportOptions(tsne_points=200))
    assert snapshot(digits_run) == before  # reports never modify run directories
    out = html.parent
    assert_figures(out / "figures", [*FIGURES, "augmentation"])
    metrics = json.loads((digits_run / "metrics.json").read_text())
    table = {r["metric"]: r["value"] for r in read_csv(out / "tables" / "metrics.csv")}
    assert float(table["test accuracy"]) == pytest.approx(metrics["test_accuracy"], abs=SHOWN)
    assert float(table["top-1 error"]) == pytest.approx(1 - metrics["test_accuracy"], abs=SHOWN)
    assert float(table["F1 (macro)"]) == pytest.approx(metrics["f1_macro"], abs=SHOWN)
    assert int(table["parameters"]) == metrics["params"]
    per_class = read_csv(out / "tables" / "per_class.csv")
    assert [r["class"] for r in per_class] == metrics["class_names"]
    assert [float(r["accuracy (recall)"]) for r in per_class] == pytest.approx(metrics["per_class_accuracy"],
                                                                               abs=SHOWN)
    history = read_csv(out / "tables" / "history.csv")
    assert len(history) == metrics["epochs_run"]
    assert all(len(v.split(".")[-1]) <= 4 for r in history for k, v in r.items() if "." in v)  # rounded
    text = html.read_text()
    assert 'src="figures/' not in text  # embedded: the HTML travels alone
    assert text.count('src="data:image/png;base64,') == len([*FIGURES, "augmentation"])
    assert "incomplete run" not in text
    md = (out / "report.md").read_text()
    assert "| test accuracy |" in md and "![" in md and "```yaml" in md
    threads = metrics["cpu_threads"]
    assert threads >= 1 and f"s on {threads} CPU thread{'s' * (threads > 1)} |" in md  # what the time means


def test_hundred_class_run_report(cifar100_run, tmp_path):
    run, data_dir = cifar100_run
    html = build_report([run], tmp_path / "rep", ReportOptions(tsne_points=100, data_dir=data_dir))
    assert_figures(html.parent / "figures", FIGURES)
    assert len(read_csv(html.parent / "tables" / "per_class.csv")) == 100
    confusion = read_csv(html.parent / "tables" / "confusion.csv")
    assert len(confusion) == 100 and len(confusion[0]) == 101
    assert "fine99" in html.read_text()  # class names in the per-class table


def test_image_figures_are_left_out_with_a_reason_when_the_data_is_missing(cifar100_run, tmp_path):
    run, _ = cifar100_run
    html = build_report([run], tmp_path / "rep", ReportOptions(tsne_points=100))
    text = html.read_text()
    assert "image figures are left out" in text
    assert not (html.parent / "figures" / "gradcam.png").exists()
    assert (html.parent / "figures" / "confusion_counts.png").is_file()


def test_incomplete_run_gets_a_banner_and_what_exists(digits_run, tmp_path):
    partial = tmp_path / "partial"
    shutil.copytree(digits_run, partial)
    (partial / "metrics.json").unlink()
    (partial / "predictions.npz").unlink()
    html = build_report([partial], tmp_path / "rep", ReportOptions(images=False))
    text = html.read_text()
    assert "incomplete run" in text and "metrics.json" in text
    assert (html.parent / "figures" / "curves.png").is_file()
    assert not (html.parent / "figures" / "confusion_counts.png").exists()


def test_damaged_predictions_are_reported_not_fatal(digits_run, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(digits_run, broken)
    (broken / "predictions.npz").write_bytes(b"garbage")
    html = build_report([broken], tmp_path / "rep", ReportOptions(images=False))
    assert "predictions.npz is unreadable" in html.read_text()


def test_not_a_run_and_out_inside_a_run_are_errors(digits_run, tmp_path):
    with pytest.raises(ReportError, match="the same run as .*gives each run once"):  # compared with itself
        build_report([digits_run, Path(f"{digits_run}/./")], tmp_path / "rep-twice")
    assert not (tmp_path / "rep-twice").exists()
    with pytest.raises(ReportError, match="not a run directory"):
        build_report([tmp_path], tmp_path / "rep")
    variant = tmp_path / "study" / "a"  # a study's variant folder: its runs are named
    shutil.copytree(digits_run, variant / "seed-0", ignore=shutil.ignore_patterns("analysis"))
    (variant / "seed-1").mkdir()  # not a run (yet): not named
    holds = r": not a run directory, but it holds 1 run \("
    with pytest.raises(ReportError, match=r"a" + holds + r".*a/seed-0\); pass it"):
        build_report([variant], tmp_path / "rep-variant")
    with pytest.raises(ReportError, match=r"study" + holds + r".*study/a/seed-0"):
        build_report([tmp_path / "study"], tmp_path / "rep-variant")
    (variant / "seed-1").rmdir()
    shutil.copytree(variant / "seed-0", variant / "seed-2")
    with pytest.raises(ReportError, match=r"holds 2 runs .*; pass one or more of them \(all: .*/a/\*\)"):
        build_report([variant], tmp_path / "rep-variant")  # the pattern only where it matches runs alone
    (variant / "notes.txt").write_text("mine")
    with pytest.raises(ReportError, match=r"; pass one or more of them$"):
        build_report([variant], tmp_path / "rep-variant")
    runs = tmp_path / "runs"  # a runs folder: its study folders are named beside its runs (it said "pass it")
    shutil.copytree(digits_run, runs / "one", ignore=shutil.ignore_patterns("analysis"))
    for study in ("quick", "big"):
        (runs / study).mkdir()
        (runs / study / "manifest.json").write_text("{}")
    with pytest.raises(ReportError, match=r"runs: not a run directory, but it holds 1 run \(.*runs/one\) and "
                                          r"the study folders big, quick; pass the run, or one study folder "
                                          r"\(.*runs/big\)$"):
        build_report([runs], tmp_path / "rep-runs")
    shutil.rmtree(runs / "one")
    with pytest.raises(ReportError, match=r"runs: not a run directory or a study folder; it holds the study "
                                          r"folders big, quick: give one of them \(.*runs/big\)$"):
        build_report([runs], tmp_path / "rep-runs")
    with pytest.raises(ReportError, match="no such directory"):
        build_report([tmp_path / "nope"], tmp_path / "rep")
    mine = tmp_path / "mine"  # a user's own config.yaml and notes: not a run, no "Run report" of it
    mine.mkdir()
    (mine / "config.yaml").write_text("name: mine\ndata: {dataset: digits}\n")
    (mine / "notes.txt").write_text("ideas")
    with pytest.raises(ReportError, match="not a run directory"):
        build_report([mine], tmp_path / "rep-mine")
    assert not (tmp_path / "rep-mine").exists()
    before = snapshot(digits_run)
    with pytest.raises(ConfigError, match="reports never write into runs"):  # an --out problem, as below
        build_report([digits_run], digits_run / "report")
    assert snapshot(digits_run) == before
    with pytest.raises(ConfigError, match="--out .*mine: the folder exists and is not this command's output"):
        build_report([digits_run], mine)  # a user's folder is not a report folder
    assert sorted(p.name for p in mine.iterdir()) == ["config.yaml", "notes.txt"]


def test_comparison_of_two_runs(digits_run, tmp_path):
    other = tmp_path / "runs" / "other"
    shutil.copytree(digits_run, other)
    html = build_report([digits_run, other], tmp_path / "rep", ReportOptions(images=False, tsne_points=100))
    rows = read_csv(html.parent / "tables" / "comparison.csv")
    metrics = json.loads((digits_run / "metrics.json").read_text())
    assert [r["run"] for r in rows] == ["digits", "other"]
    for r in rows:
        assert float(r["test accuracy"]) == pytest.approx(metrics["test_accuracy"], abs=SHOWN)
        assert float(r["top-1 error"]) == pytest.approx(1 - metrics["test_accuracy"], abs=SHOWN)
        assert float(r["top-5 error"]) == pytest.approx(1 - metrics["test_top5_accuracy"], abs=SHOWN)
        assert int(r["parameters"]) == metrics["params"] and int(r["FLOPs"]) == metrics["flops"]
    assert_figures(html.parent / "figures", ["curves_overlaid", "accuracy_bars"])
    assert_figures(html.parent / "figures" / "run1", ["curves", "confusion_counts", "tsne"])
    assert_figures(html.parent / "figures" / "run2", ["curves", "confusion_counts", "tsne"])
    assert "Runs side by side" in html.read_text()
    assert not (html.parent / "tables" / "settings.csv").exists()  # the same config: no differences to show


def test_a_comparison_shows_the_settings_that_differ_between_its_runs(tmp_path):
    """Runs trained by hand with --set: what changed between them, read off one table (a study's
    'Results by setting'), sections by their names, not JSON; measured sizes are not settings."""
    from visionstudy.config import merge_run
    from visionstudy.report.compare import settings_table
    from visionstudy.store.reader import RunArtifacts

    def art(label: str, changed: dict) -> RunArtifacts:
        config = {"name": label, "seed": 0, "data": {"dataset": "digits", "augment": []},
                  "model": {"name": "cnn", "channels": [8, 16]},
                  "train": {"optimizer": {"name": "sgd", "lr": 0.01}}, "resolved": {"model": {"params": 7}}}
        return RunArtifacts(tmp_path / label, label, merge_run(config, changed))

    arts = [art("a", {"resolved": {"model": {"params": 9}}}),  # measured sizes are not settings
            art("b", {"seed": 1, "data": {"augment": [{"name": "crop", "padding": 4}, {"name": "flip"}]}}),
            art("c", {"train": {"optimizer": {"name": "adam", "lr": 0.001}},
                      "model": {"channels": [16, 32]}})]
    (table,) = settings_table(arts)
    assert table.columns == ["run", "seed", "augment", "channels", "optimizer", "optimizer.lr"]
    assert table.rows == [["a", "0", "none", "[8, 16]", "sgd", "0.01"],
                          ["b", "1", "crop, padding 4; flip", "[8, 16]", "sgd", "0.01"],
                          ["c", "0", "none", "[16, 32]", "adam", "0.001"]]
    assert settings_table(arts[:1]) == []
    # two runs of one config that differ by their seed alone: it is the table (a study's settings
    # leave seeds out: its variants' repeats)
    assert settings_table([art("s0", {}), art("s1", {"seed": 1})])[0].rows == [["s0", "0"], ["s1", "1"]]
    assert table.note == ("Columns: every config key whose value differs between the runs, named without "
                          "their section.")
    # more keys differ than a table shows: the others are named, not dropped unsaid (three runs
    # trained by hand lost their optimizer, learning rate and epochs to the cap); a section's name
    # is its column's name (`model`, not `name`: the run's own name reads so)
    wider = [art("d", {}), art("e", {
        "data": {"dataset": "fashion_mnist", "val_fraction": 0.2, "max_train_samples": 900},
        "model": {"name": "mlp", "hidden": [32], "dropout": 0.3, "activation": "tanh"},
        "train": {"epochs": 3, "batch_size": 32, "optimizer": {"name": "adam", "lr": 0.002}}})]
    (table,) = settings_table(wider)
    # (e's val_fraction 0.2 is the default d took: no column)
    assert table.columns == ["run", "dataset", "model", "channels", "optimizer", "optimizer.lr",
                             "max_train_samples", "hidden", "dropout"]
    assert table.rows[1] == ["e", "fashion_mnist", "mlp", "–", "adam", "0.002", "900", "[32]", "0.3"]
    assert table.note.endswith("; 3 more differ, not shown: model.activation, train.epochs, "
                               "train.batch_size.")
    # a key one run left to its default shows the default the run took, not '–' (width 100 by default)
    sets = {"data": {"dataset": "sets"}, "model": {"name": "deepsets"}}
    wide, narrow = (RunArtifacts(tmp_path / n, n, merge_run(sets, c)) for n, c in
                    (("wide", {}), ("narrow", {"model": {"width": 8}})))
    assert settings_table([wide, narrow])[0].rows == [["wide", "100"], ["narrow", "8"]]


def test_reports_of_other_runs_never_share_a_default_folder(digits_run, tmp_path, monkeypatch):
    """`visionstudy report runs/quick/baseline/seed-0` and then `.../batchnorm/seed-0` both wrote
    reports/seed-0, the second silently replacing the first (a report rewrites its own folder), and
    every comparison was reports/comparison. The default is the run's place, as an export's."""
    import visionstudy as vs
    from visionstudy.report import default_out

    study = tmp_path / "runs" / "quick"
    for run in ("baseline/seed-0", "batchnorm/seed-0", "search/trial-003", "bn/seed-1/fold-2"):
        (study / run).mkdir(parents=True)
    (study / "manifest.json").write_text("{}")
    assert default_out([study / "baseline" / "seed-0"]) == Path("reports/quick-baseline-seed-0")
    assert default_out([study / "bn" / "seed-1" / "fold-2"]) == Path("reports/quick-bn-seed-1-fold-2")
    assert default_out([study / "search" / "trial-003"]) == Path("reports/quick-search-trial-003")
    assert default_out([tmp_path / "runs" / "digits-quick"]) == Path("reports/digits-quick")  # not a study's
    pair = [study / "baseline" / "seed-0", study / "batchnorm" / "seed-0"]
    assert default_out(pair) == Path("reports/quick-baseline-seed-0-vs-quick-batchnorm-seed-0")
    many = [study / v / "seed-0" for v in ("a", "b", "c", "d", "e")]
    named = default_out(many).name
    assert named.startswith("quick-a-seed-0-vs-4-more-") and len(named) < 60
    assert default_out([*many[:4], study / "f" / "seed-0"]) != default_out(many)
    assert default_out(list(reversed(many))).name.endswith(named[-8:])  # the same runs: the same folder
    shutil.copytree(digits_run, study / "seed-run", dirs_exist_ok=True)
    monkeypatch.chdir(tmp_path)
    html = vs.Run(study / "seed-run").report(images=False, tsne_points=0)
    assert html.resolve() == (tmp_path / "reports" / "quick-seed-run" / "report.html").resolve()


def test_per_batch_curves_and_test_set_validation_are_shown_and_said(tmp_path):
    from visionstudy.experiment import run_experiment
    from visionstudy.validate import validate_run_config

    cfg = validate_run_config({"name": "pb", "data": {"dataset": "digits", "validation": "test"},
                               "model": {"name": "mlp", "hidden": [16]},
                               "train": {"epochs": 2, "batch_size": 64, "log_every_n_steps": 2,
                                         "threads": 1}})
    run_experiment(cfg, tmp_path / "run", quiet=True)
    html = build_report([tmp_path / "run"], tmp_path / "rep", ReportOptions(images=False, tsne_points=0))
    assert_figures(html.parent / "figures", ["curves", "steps"])
    text = html.read_text()
    assert (html.parent / "figures" / "steps.png").is_file() and "per batch" in text
    assert "validates on the test set" in text and "optimistic" in text
    assert "checksum (md5 of the decoded arrays)" in text


def test_tsne_is_computed_once_and_cached_in_the_run_folder(digits_run, tmp_path, monkeypatch):
    import sys

    run_report = sys.modules["visionstudy.report.run_report"]  # the package's name is the function
    run = tmp_path / "run"
    shutil.copytree(digits_run, run, ignore=shutil.ignore_patterns("analysis"))
    opts = ReportOptions(images=False, tsne_points=80)
    build_report([run], tmp_path / "a", opts)
    cache = run / "analysis" / "tsne.npz"
    assert cache.is_file()
    first = (tmp_path / "a" / "figures" / "tsne.png").read_bytes()

    def no_tsne(*args, **kwargs):
        raise AssertionError("t-SNE recomputed although it is cached")

    monkeypatch.setattr(run_report, "tsne_embedding", no_tsne)
    build_report([run], tmp_path / "b", opts)
    assert (tmp_path / "b" / "figures" / "tsne.png").read_bytes() == first
    with pytest.raises(AssertionError, match="recomputed"):  # other points: a different key
        build_report([run], tmp_path / "c", ReportOptions(images=False, tsne_points=60))
    run.joinpath("predictions.npz").touch()  # new predictions: the cache is stale
    with pytest.raises(AssertionError, match="recomputed"):
        build_report([run], tmp_path / "d", opts)


INTERRUPTED = """
import sys, time
from pathlib import Path
from visionstudy.report import ReportOptions, build_report

run_report = sys.modules["visionstudy.report.run_report"]  # the package's name is the function

def slow_tsne(*args, threads=None, **kwargs):  # a t-SNE that would take a minute
    print(f"t-SNE started, threads={threads}", flush=True)
    time.sleep(60)

run_report.tsne_embedding = slow_tsne
build_report([Path(sys.argv[1])], Path(sys.argv[2]), ReportOptions(images=False, tsne_points=80))
"""


def test_reports_written_from_threads_at_once_on_a_cold_cache_all_succeed(digits_run, tmp_path):
    """Issue 26 item 15: two or more `Run.report()` calls in threads once failed (10 of 16) with
    matplotlib's ParseException: its mathtext parser is not thread-safe. Text is plain now."""
    import threading

    import visionstudy as vs

    run = tmp_path / "run"
    shutil.copytree(digits_run, run, ignore=shutil.ignore_patterns("analysis"))
    errors: list[BaseException] = []

    def report(i: int) -> None:
        try:
            vs.Run(run).report(tmp_path / f"r{i}", images=False, tsne_points=60)
        except BaseException as exc:  # noqa: BLE001 (collected and shown)
            errors.append(exc)

    threads = [threading.Thread(target=report, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert all((tmp_path / f"r{i}" / "figures" / "tsne.png").is_file() for i in range(3))


def test_ctrl_c_ends_a_report_at_once_while_its_t_sne_runs(digits_run, tmp_path):
    """Before: the t-SNE ran in a pool thread that the interpreter waits for at exit, so Ctrl-C
    waited for the t-SNE (38 s for a 1-s t-SNE whose OpenMP threads shared 2 cores with the drawing
    process); it now gets one thread, and a daemon thread."""
    import signal
    import subprocess
    import sys
    import time

    run = tmp_path / "run"
    shutil.copytree(digits_run, run, ignore=shutil.ignore_patterns("analysis"))
    script = tmp_path / "interrupted.py"
    script.write_text(INTERRUPTED)
    proc = subprocess.Popen([sys.executable, str(script), str(run), str(tmp_path / "rep")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "t-SNE started, threads=1"
    time.sleep(1.0)  # the report draws its other figures meanwhile
    proc.send_signal(signal.SIGINT)
    start = time.perf_counter()
    _, err = proc.communicate(timeout=50)
    assert time.perf_counter() - start < 15, "Ctrl-C waited for the t-SNE"
    assert proc.returncode != 0 and "KeyboardInterrupt" in err
    assert not (run / "analysis" / "tsne.npz").exists()


def test_a_read_only_run_is_reported_without_a_cache(digits_run, tmp_path):
    from tests.conftest import read_only_copy

    run = tmp_path / "ro"
    shutil.copytree(digits_run, run, ignore=shutil.ignore_patterns("analysis"))
    with read_only_copy(run):
        html = build_report([run], tmp_path / "rep", ReportOptions(images=False, tsne_points=60))
        assert (html.parent / "figures" / "tsne.png").is_file() and not (run / "analysis").exists()


def test_the_brief_form_of_a_run_keeps_what_a_large_study_needs(digits_run, tmp_path):
    from visionstudy.report.run_report import RunReportBuilder
    from visionstudy.store.reader import load_run

    b = RunReportBuilder(load_run(digits_run), tmp_path, "v1", ReportOptions(tsne_points=60))
    sections = b.sections(brief=True)
    assert [s.title for s in sections] == ["Results", "History", "Most confused pairs", "Per-class results",
                                           "Configuration and environment"]
    assert not (tmp_path / "figures").exists()  # tables only: the study's figures show the variant
    assert len(sections[1].tables[0].rows) == 6 and len(sections[3].tables[0].rows) == 10
    assert f"visionstudy report {digits_run}" in b.sections(brief=True)[-1].notes[0]


def test_numbers_are_written_by_magnitude_in_the_page_and_the_csv():
    from visionstudy.report.document import fmt
    from visionstudy.report.render import csv_value

    assert [fmt(v) for v in (49.0, 12345.0, 0.5, 1.0, 0.00012, 0.02444444444444449)] == \
        ["49", "12,345", "0.5000", "1.0000", "0.00012", "0.0244"]
    assert [csv_value(v) for v in (49.0, 0.02444444444444449, 3.3e-05, None, float("nan"), "x")] == \
        [49, 0.0244, 3.3e-05, "", "", "x"]


def test_set_runs_are_reported_and_compared_by_their_own_metrics(digits_run, tmp_path):
    """A set (regression) run's report warned 'incomplete run — predictions.npz is unreadable (no
    'logits' array)'; two of them compared in a table of classification columns, all '–', and an
    empty accuracy panel; a set run beside an image run was compared too."""
    from visionstudy.experiment import run_experiment
    from visionstudy.validate import validate_run_config

    sets = {"name": "s", "data": {"dataset": "sets", "sets": {"train": 100, "val": 20, "test": 20}},
            "model": {"name": "deepsets", "layers": 2, "width": 8},
            "train": {"epochs": 2, "batch_size": 32}}
    runs = []
    for width in (4, 8):
        cfg = validate_run_config({**sets, "model": {**sets["model"], "width": width}})
        run_experiment(cfg, tmp_path / f"w{width}", quiet=True)
        runs.append(tmp_path / f"w{width}")
    opts = ReportOptions(images=False, tsne_points=0)
    one = (build_report([runs[0]], tmp_path / "one", opts).parent / "report.md").read_text()
    assert "incomplete run" not in one and "test MSE" in one
    # its history table without the accuracy columns no epoch of a regression fills (all '–')
    history = (tmp_path / "one" / "tables" / "history.csv").read_text().splitlines()[0]
    assert history == "epoch,train_loss,val_loss,lr,seconds" and "| epoch | train_loss | val_loss |" in one
    import visionstudy as vs

    assert list(vs.Run(runs[0]).history.columns) == ["epoch", "train_loss", "val_loss", "lr", "seconds"]
    both = build_report(runs, tmp_path / "both", opts).parent
    table = read_csv(both / "tables" / "comparison.csv")
    assert list(table[0])[:5] == ["run", "model", "test MSE", "validation MSE", "train MSE"]
    for row, path in zip(table, runs, strict=True):
        mse = json.loads((path / "metrics.json").read_text())["test_mse"]
        assert float(row["test MSE"]) == pytest.approx(mse, abs=1e-4)  # the CSV's 4 decimals
    text = (both / "report.md").read_text()
    assert "incomplete run" not in text and "Loss per epoch of every run" in text
    assert "tested on different data" not in text
    with pytest.raises(ReportError, match=r"runs of different tasks cannot share one comparison: "
                                          r".*\(classification\), .*\(regression\); report each task's "
                                          r"runs apart"):
        build_report([digits_run, runs[0]], tmp_path / "mixed", opts)
    assert not (tmp_path / "mixed").exists()


def test_runs_on_different_data_are_compared_with_a_warning(digits_run, tmp_path):
    from visionstudy.experiment import run_experiment
    from visionstudy.validate import validate_run_config

    cfg = validate_run_config({"name": "two", "data": {"dataset": "digits", "classes": ["0", "1"]},
                               "model": {"name": "cnn", "channels": [4]}, "train": {"epochs": 1}})
    run_experiment(cfg, tmp_path / "two", quiet=True)
    html = build_report([digits_run, tmp_path / "two"], tmp_path / "rep",
                        ReportOptions(images=False, tsne_points=0))
    text = (html.parent / "report.md").read_text()
    assert "The runs were tested on different data (dataset digits: " in text
    assert "dataset digits, classes ['0', '1']: two): their numbers share no test set." in text


@pytest.mark.parametrize("features", ["dead", "inf"])
def test_a_run_with_degenerate_features_is_reported_without_its_tsne(digits_run, tmp_path, features):
    """A run that finished with every unit dead (a diverging learning rate) has one feature vector
    for all test images: scikit-learn's t-SNE of it crashed the whole report process (SIGSEGV)."""
    import numpy as np

    from tests.helpers import vs

    run = tmp_path / "run"
    shutil.copytree(digits_run, run)
    arrays = dict(np.load(run / "predictions.npz"))
    arrays["features"] = np.zeros_like(arrays["features"])
    if features == "inf":
        arrays["features"][3, 1] = np.inf
    np.savez_compressed(run / "predictions.npz", **arrays)
    done = vs("report", run, "--out", tmp_path / "rep", "--no-images", "--tsne-points", 100)
    assert done.returncode == 0, done.stderr[-2000:]
    text = (tmp_path / "rep" / "report.md").read_text()
    expected = ("Every test image has the same penultimate features" if features == "dead"
                else "The penultimate features hold NaN or infinite values")
    assert f"{expected}" in text and "t-SNE is left out" in text
    assert not (tmp_path / "rep" / "figures" / "tsne.png").exists()
    assert (tmp_path / "rep" / "figures" / "confusion_counts.png").is_file()


def test_a_run_on_a_relative_image_folder_is_reported_from_another_folder(tmp_path, monkeypatch):
    """`data.path: photos` was read from the folder the run started in; a report (and `vs.Run.config`)
    from elsewhere read `photos` there and left the image figures out. The run records that folder."""
    from PIL import Image

    import visionstudy as vs
    from tests.conftest import glyphs, train_tiny

    project, elsewhere = tmp_path / "project", tmp_path / "elsewhere"
    images, labels = glyphs(60, 3, size=16)
    for i, (image, label) in enumerate(zip(images, labels, strict=True)):
        (project / "photos" / f"c{label}").mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save(project / "photos" / f"c{label}" / f"{i}.png")
    elsewhere.mkdir()
    monkeypatch.chdir(project)
    run = train_tiny(project / "runs" / "r", {"dataset": "imagefolder", "path": "photos", "image_size": 16},
                     {"name": "mlp", "hidden": [16]}, epochs=1)
    assert vs.Run(run).config["data"]["path"] == "photos"  # as written, where it was written
    monkeypatch.chdir(elsewhere)
    html = build_report([run], tmp_path / "rep", ReportOptions(tsne_points=20))
    assert "image figures are left out" not in html.read_text()
    assert_figures(html.parent / "figures", ["samples", "one_per_class", "predictions"])
    assert vs.Run(run).config["data"]["path"] == str(project / "photos")
    shutil.rmtree(project / "photos")  # gone from that machine: said, as before
    assert "image figures are left out" in build_report([run], tmp_path / "rep2",
                                                         ReportOptions(tsne_points=20)).read_text()
