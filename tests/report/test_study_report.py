"""The study report: per-variant statistics, paired tests, trajectory, curves, sweeps, search."""

from __future__ import annotations

import csv
import json
from html import unescape
from pathlib import Path

import pytest
import yaml

from tests.helpers import assert_user_error, vs_here
from visionstudy.errors import ReportError
from visionstudy.report import ReportOptions
from visionstudy.report.stats import against_baseline, summarize
from visionstudy.report.study_report import build_study_report
from visionstudy.study import Placement, load_study, run_all

TINY = {"data": {"dataset": "digits"}, "model": {"name": "cnn", "channels": [4, 8], "hidden": [16]},
        "train": {"epochs": 4, "batch_size": 64, "optimizer": {"name": "adam", "lr": 1e-2}}}


def rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def reported(tmp_path: Path, spec: dict, overrides: tuple[str, ...] = (), runs: str = "runs") -> Path:
    """The report folder of study `spec`, trained in `tmp_path / runs` (no image figures, no t-SNE)."""
    path = tmp_path / f"{spec['name']}.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    place = Placement(tmp_path / runs)
    run_all(load_study(path, list(overrides)), place, progress=False)
    return build_study_report(place.study_dir(spec["name"]), tmp_path / runs / "rep",
                              ReportOptions(images=False, tsne_points=0)).parent


@pytest.fixture(scope="module")
def finished_study(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("study")
    path = root / "s.yaml"
    path.write_text(yaml.safe_dump({
        "name": "ladder", **TINY, "seeds": 3,
        "variants": {"baseline": {}, "bn": {"model": {"batch_norm": True}}},
        "ladder": ["baseline", "bn"],
        "sweep": {"mode": "one-at-a-time", "train.optimizer.lr": [3e-2, 1e-3]},  # not in numeric order
        "reference": {"source": "a made-up table", "data": {"dataset": "digits"},
                      "variants": {"baseline": {"test_accuracy": 0.97}}},
    }, sort_keys=False))
    place = Placement(root / "runs")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("XDG_CACHE_HOME", str(root / "cache"))
        run_all(load_study(path, ["train.epochs=2"]), place, progress=False)  # an override that matters
    return place.study_dir("ladder")


SHOWN = 5e-5  # the CSVs hold the 4 decimals the report shows
VARIANTS = ["baseline", "bn", "lr=0.03", "lr=0.001"]


def test_study_report_statistics_match_the_runs(finished_study, tmp_path):
    html = build_study_report(finished_study, tmp_path / "rep", ReportOptions(images=False, tsne_points=0))
    out = html.parent
    acc = {v: [json.loads((finished_study / v / f"seed-{k}" / "metrics.json").read_text())["test_accuracy"]
               for k in range(3)] for v in VARIANTS}
    table = {r["variant"]: r for r in rows(out / "tables" / "variants.csv")}
    assert list(table) == VARIANTS
    # each variant's tables and figures are named by the variant, not by its position
    assert {"baseline_metrics.csv", "bn_metrics.csv", "lr-0.03_metrics.csv", "lr-0.001_metrics.csv"} <= {
        p.name for p in (out / "tables").glob("*_metrics.csv")}
    for v, values in acc.items():
        s = summarize(values, (0.0, 1.0))
        assert float(table[v]["test accuracy mean"]) == pytest.approx(s.mean, abs=SHOWN)
        assert float(table[v]["test accuracy std"]) == pytest.approx(s.std, abs=SHOWN)
        assert float(table[v]["test accuracy 95% CI low"]) == pytest.approx(s.ci_low, abs=SHOWN)
        assert float(table[v]["test accuracy 95% CI high"]) == pytest.approx(s.ci_high, abs=SHOWN)
        low, high = float(table[v]["test accuracy 95% CI low"]), float(table[v]["test accuracy 95% CI high"])
        assert 0 <= low <= high <= 1
        assert float(table[v]["top-1 error mean"]) == pytest.approx(1 - s.mean, abs=SHOWN)
        assert table[v]["runs"] == "3"
    tests = {r["variant"]: r for r in rows(out / "tables" / "paired_tests.csv")}
    others = VARIANTS[1:]
    expected = dict(zip(others, against_baseline([(acc[v], acc["baseline"]) for v in others]), strict=True))
    for v in others:
        assert float(tests[v]["mean difference"]) == pytest.approx(expected[v].diff, abs=SHOWN)
        if expected[v].t_p is not None:
            assert float(tests[v]["paired t-test p"]) == pytest.approx(expected[v].t_p, abs=SHOWN)
            assert float(tests[v]["t-test p (Holm)"]) == pytest.approx(expected[v].t_p_holm, abs=SHOWN)
            assert tests[v]["at 5% (Holm, t-test)"] == expected[v].verdict
    trajectory = rows(out / "tables" / "trajectory.csv")
    assert [r["variant"] for r in trajectory] == ["baseline", "bn"]  # the declared ladder only
    for stem in ("trajectory", "ladder_confusions", "curves_val_accuracy", "curves_val_loss",
                 "curves_train_accuracy", "curves_train_loss", "costs", "sweep_train_optimizer_lr",
                 "variant_bars"):
        assert (out / "figures" / f"{stem}.png").stat().st_size > 1000
    settings = rows(out / "tables" / "settings.csv")
    means = [float(r["test accuracy mean"]) for r in settings]
    assert means == sorted(means, reverse=True) and len(settings) == 4
    assert {r["optimizer.lr"] for r in settings} == {"0.01", "0.03", "0.001"}
    assert {r["batch_norm"] for r in settings} == {"yes", "no"}
    text = html.read_text()
    assert "Against the baseline" in text and "Improvement trajectory" in text
    assert "With 3 pairs the exact Wilcoxon test cannot go below p = 0.25" in text
    assert "Holm-adjusted p-values (statsmodels) correct for the" in text
    reference = rows(out / "tables" / "reference.csv")
    assert reference[0]["comparable"] == "no: --set train.epochs=2"
    assert "ran with --set train.epochs=2: its numbers are not comparable" in text


def test_a_numeric_sweep_is_drawn_in_numeric_order(finished_study, tmp_path, monkeypatch):
    import sys

    seen = {}
    figures = sys.modules["visionstudy.report.figures"]
    original = figures.metric_line

    def spy(x, *args, **kwargs):
        seen.setdefault("x", []).append((list(x), kwargs.get("categorical", False),
                                         kwargs.get("joined", True)))
        return original(x, *args, **kwargs)

    monkeypatch.setattr(figures, "metric_line", spy)
    build_study_report(finished_study, tmp_path / "rep", ReportOptions(images=False, tsne_points=0))
    # the file gave 0.03, 0.001 around the base 0.01; a line joins numbers and the ladder's steps
    assert ([0.001, 0.01, 0.03], False, True) in seen["x"]
    assert (["baseline", "bn"], True, True) in seen["x"]  # the ladder: its own order


def test_study_report_of_a_partly_finished_study(finished_study, tmp_path):
    import shutil

    partial = tmp_path / "runs" / "ladder"
    shutil.copytree(finished_study, partial)
    (partial / "bn" / "seed-2" / "metrics.json").unlink()
    # through the command, --quiet as train and study run take it: no step lines, the result line
    written = vs_here("report", partial, "--out", tmp_path / "rep", "--no-images", "--tsne-points", "0",
                      "--quiet")
    assert written.returncode == 0 and written.stderr == "", written.stderr
    html = tmp_path / "rep" / "report.html"
    assert written.stdout.split() == ["report:", str(html)]
    assert "1 of 12 runs have not finished" in html.read_text()
    table = {r["variant"]: r for r in rows(html.parent / "tables" / "variants.csv")}
    assert table["bn"]["runs"] == "2"


def test_a_study_without_a_finished_run_has_no_report_to_write(finished_study, tmp_path):
    """It wrote a report of empty tables and exited 0 (a study whose launch failed, or whose jobs
    have not finished a run yet)."""
    import shutil

    nothing = tmp_path / "runs" / "ladder"
    shutil.copytree(finished_study, nothing)
    for metrics in nothing.rglob("metrics.json"):
        metrics.unlink()
    assert_user_error(vs_here("report", nothing),
                      f"{nothing}: no run of study ladder has finished yet (12 planned): nothing to report; "
                      f"`visionstudy study run {nothing}` trains them")
    assert not (nothing / "report").exists()


def test_a_report_without_a_terminal_prints_a_line_per_step(capsys):
    """(a log: SLURM, `> file`); on a terminal a bar; with --quiet or in the API's default nothing."""
    from visionstudy.report.progress import ReportProgress

    for enabled in (True, False):
        with ReportProgress(2, enabled) as progress:
            progress.step("summary")
            progress.step("variant a")
    assert capsys.readouterr().err == "report 1/2: summary (0 s)\nreport 2/2: variant a (0 s)\n"


def test_not_a_study_folder(tmp_path):
    with pytest.raises(ReportError, match="not a study folder"):
        build_study_report(tmp_path, tmp_path / "rep")


def test_cross_validation_and_one_seed_variants(tmp_path):
    """A per-fold table with the CV mean ± std; a variant with one run shows its value, never '± 0'."""
    path = tmp_path / "cv.yaml"
    path.write_text(yaml.safe_dump({
        "name": "cv", **TINY, "train": {**TINY["train"], "epochs": 2},
        "variants": {"folded": {}, "single": {"model": {"batch_norm": True}}},
        "cv": {"folds": 3, "variants": ["folded"]},
    }, sort_keys=False))
    place = Placement(tmp_path / "runs")
    run_all(load_study(path), place, progress=False)
    html = build_study_report(place.study_dir("cv"), tmp_path / "rep",
                              ReportOptions(images=False, tsne_points=0))
    out = html.parent
    folds = rows(out / "tables" / "cv_folds.csv")
    assert [(r["variant"], r["fold"]) for r in folds] == [("folded", str(f)) for f in range(3)]
    metrics = [json.loads((place.study_dir("cv") / "folded" / "seed-0" / f"fold-{f}" / "metrics.json")
                          .read_text()) for f in range(3)]
    val = summarize([m["val_accuracy"] for m in metrics])
    summary = {r["variant"]: r for r in rows(out / "tables" / "cv_summary.csv")}
    assert summary["folded"]["validation accuracy"] == val.pm()
    assert summary["folded"]["folds × seeds"] == "3"
    variants = {r["variant"]: r for r in rows(out / "tables" / "variants.csv")}
    assert variants["single"]["runs"] == "1"
    single = variants["single"]
    assert single["test accuracy std"] == "" and single["test accuracy 95% CI low"] == ""
    text = html.read_text()
    assert "± 0.0000" not in text and "± 0.00%" not in text
    # against the cross-validated baseline: paired by seed, its folds' mean (no pair before: "n/a" for
    # a variant of as many seeds as the baseline, since seed-0 never met seed-0/fold-k)
    (test,) = rows(out / "tables" / "paired_tests.csv")
    folded = sum(m["test_accuracy"] for m in metrics) / 3
    mine = json.loads((place.study_dir("cv") / "single" / "seed-0" / "metrics.json").read_text())
    assert test["variant"] == "single" and test["pairs"] == "1"
    assert float(test["mean difference"]) == pytest.approx(mine["test_accuracy"] - folded, abs=1e-4)
    assert "single is cross-validated unlike" in text


def test_variants_folded_unlike_the_baseline_pair_by_seed_means():
    from types import SimpleNamespace as Row

    from visionstudy.report.study_report import fold_design, seed_means

    cv = {"seed-0/fold-0": 0.5, "seed-0/fold-1": 0.7, "seed-1/fold-0": 0.6, "seed-1/fold-1": 0.8}
    planned = [Row(variant=v, fold=f) for v in ("a", "b") for f in (0, 1, 2)] + [Row(variant="c", fold=None)]
    # b's fold-2 failed: the plan, not the finished runs, says a and b fold alike (they pair by fold)
    assert fold_design(planned, "a", {}) == fold_design(planned, "b", cv) == {"fold-0", "fold-1", "fold-2"}
    assert fold_design(planned, "c", {"seed-0": 1.0}) == {""}
    assert fold_design(planned, "search-best", {"seed-0": 1.0, "seed-1": 0.9}) == {""}  # not planned yet
    assert fold_design([], "x", cv) == {"fold-0", "fold-1"}
    assert seed_means(cv) == pytest.approx({"seed-0": 0.6, "seed-1": 0.7})
    assert seed_means({"seed-0": 0.4, "seed-3": 0.9}) == {"seed-0": 0.4, "seed-3": 0.9}


def test_the_search_history_draws_the_best_of_complete_trials_only():
    """Optuna gives a pruned trial its last report as its value: it was drawn as a complete trial and
    set the "best so far" line below the search's best (a complete trial's) when its report was lower;
    the x axis ticked trial 0.5 and the y axis said "objective"."""
    import matplotlib.pyplot as plt
    from optuna.distributions import FloatDistribution
    from optuna.trial import TrialState, create_trial

    from visionstudy.report.study_report import search_history

    lr = {"params": {"lr": 0.1}, "distributions": {"lr": FloatDistribution(0.01, 1.0)}}
    trials = [create_trial(value=0.9, intermediate_values={1: 1.2, 2: 0.9}, **lr),
              create_trial(state=TrialState.PRUNED, value=0.4, intermediate_values={1: 0.4}, **lr),
              create_trial(state=TrialState.FAIL, **lr),
              create_trial(value=0.7, intermediate_values={1: 0.8, 2: 0.7}, **lr)]
    for number, t in enumerate(trials):
        t.number = number
    fig = search_history(trials, maximize=False, label="validation loss")
    ax = fig.axes[0]
    complete, pruned = ax.collections
    assert complete.get_offsets().tolist() == [[0, 0.9], [3, 0.7]]
    assert pruned.get_offsets().tolist() == [[1, 0.4]]
    (best,) = ax.lines
    assert best.get_ydata().tolist() == [0.9, 0.7]
    assert ax.get_ylabel() == "validation loss (lower is better)"
    fig.canvas.draw()
    assert all(float(t).is_integer() for t in ax.get_xticks())
    plt.close(fig)


def test_variant_file_prefixes_are_safe_and_unique():
    from visionstudy.report.study_report import file_prefixes

    assert file_prefixes(["baseline", "resnet+lr=0.1", "a+b", "a=b", "../x", "+"]) == {
        "baseline": "baseline", "resnet+lr=0.1": "resnet-lr-0.1", "a+b": "a-b", "a=b": "a-b-2",
        "../x": "x", "+": "variant"}


def test_the_reports_words_fit_what_ran(tmp_path):
    """Issue 27's words: "Every variant validate" (and the same verb for one variant), the header
    of a one-variant test-validated study, "best epoch 0" for a run that chose no epoch, and the
    "every row below" note of a Published numbers section without rows."""
    path = tmp_path / "w.yaml"
    path.write_text(yaml.safe_dump({
        "name": "words", **TINY, "train": {**TINY["train"], "epochs": 1},
        "variants": {"on-test": {"data": {"validation": "test"}}, "none": {"data": {"val_fraction": 0}}},
    }, sort_keys=False))
    place = Placement(tmp_path / "runs")
    run_all(load_study(path, ["data.max_train_samples=300"]), place, progress=False)
    html = build_study_report(place.study_dir("words"), tmp_path / "rep", ReportOptions(images=False,
                                                                                          tsne_points=30))
    text = " ".join(html.read_text().split())
    assert "Variant on-test validates on the test set" in text and "validate on the test" not in text
    assert "every row below" not in text  # --set changed the data, and no table has rows to mark
    none = json.loads((place.study_dir("words") / "none" / "seed-0" / "metrics.json").read_text())
    assert none["best_epoch"] is None and none["validation"] == "none"
    on_test = json.loads((place.study_dir("words") / "on-test" / "seed-0" / "metrics.json").read_text())
    assert on_test["best_epoch"] == 1
    # one run per variant: the statistics table (34 columns, every std and interval '–') is its CSV
    assert "Each variant has one run: no standard deviation or interval to show" in text
    assert "95% CI low" not in text and '2 rows × 34 columns, in <a href="tables/variants.csv">' in text
    assert [r["variant"] for r in rows(html.parent / "tables" / "variants.csv")] == ["on-test", "none"]
    # a variant without validation is missing from the validation curves: said, not left to guess
    assert ("Validation accuracy, per variant. Not drawn: none (it validates on nothing: "
            "data.val_fraction 0).") in text
    assert "Training accuracy, per variant. Not" not in text


def test_a_curves_chart_whose_pattern_matches_no_variant_is_refused(tmp_path):
    from visionstudy.errors import ConfigError

    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"name": "bad", **TINY, "variants": {"a": {}, "b": {}},
                                   "report": {"curves": {"c": ["a", "zz*"]}}}))
    with pytest.raises(ConfigError, match=r"report.curves.c: zz\* match no variant"):
        load_study(bad)
    with pytest.raises(ConfigError, match=r"zz\* match no variant; .* \(the variants: a, b\)"):
        load_study(bad)
    # an empty chart said "no variants match no variant"
    bad.write_text(yaml.safe_dump({"name": "bad", **TINY, "variants": {"a": {}, "b": {}},
                                   "report": {"curves": {"c": []}}}))
    with pytest.raises(ConfigError, match=r"report.curves.c: names no variant; list the variants this chart"):
        load_study(bad)


def best_variant(html: Path) -> str:
    table = rows(html.parent / "tables" / "variants.csv")
    return max(table, key=lambda r: float(r["test accuracy mean"]))["variant"]


def test_a_two_key_grid_gets_its_interaction_chart_and_short_value_names(tmp_path, monkeypatch):
    """Seed 004's optimizer × dropout grid: one chart with a line per dropout, each point one
    combination over its seeds; the optimizer chart says it pools the dropouts; ticks are names;
    the optimizers, unordered choices, are points with no line through them (the dropouts' a line)."""
    import sys

    from visionstudy.report.study_report import value_names

    joined = {}
    figures = sys.modules["visionstudy.report.figures"]
    original = figures.metric_line

    def spy(x, means, stds, xlabel, *args, **kwargs):
        joined[xlabel] = kwargs.get("joined", True)
        return original(x, means, stds, xlabel, *args, **kwargs)

    monkeypatch.setattr(figures, "metric_line", spy)

    path = tmp_path / "grid.yaml"
    path.write_text(yaml.safe_dump({
        "name": "grid", **TINY, "train": {**TINY["train"], "epochs": 1}, "seeds": 2,
        "sweep": {"mode": "grid", "model.dropout": [0.0, 0.25],
                  "train.optimizer": [{"name": "sgd", "lr": 0.01}, {"name": "adam", "lr": 1e-3}]}},
        sort_keys=False))
    place = Placement(tmp_path / "runs")
    run_all(load_study(path), place, progress=False)
    html = build_study_report(place.study_dir("grid"), tmp_path / "rep",
                              ReportOptions(images=False, tsne_points=0))
    figures = {p.name for p in (html.parent / "figures").glob("*.png")}
    assert "interaction_model_dropout_train_optimizer.png" in figures, figures
    assert joined == {"model.dropout": True, "train.optimizer": False}
    text = html.read_text()
    assert "other swept keys" in text and "not over the other key" in text
    optimizers = [{"name": "sgd", "lr": 0.01, "momentum": 0.0}, {"name": "sgd", "lr": 0.01, "momentum": 0.9},
                  {"name": "adam", "lr": 0.001}]
    assert value_names(optimizers) == ["sgd, lr 0.01, momentum 0", "sgd, lr 0.01, momentum 0.9",
                                       "adam, lr 0.001"]
    assert value_names([[32, 64], 0.25, True]) == ["[32, 64]", "0.25", "yes"]


def test_an_interaction_chart_draws_numbers_in_order_and_joins_only_ordered_values(tmp_path, monkeypatch):
    """The interaction chart kept the file's order along its axis (dropouts 0.25, 0, 0.1 drawn so,
    a line zig-zagging through them) and in its legend, and joined unordered choices with lines,
    where the key's own sweep chart drew them in numeric order and as points alone."""
    import sys

    drawn = []
    figures = sys.modules["visionstudy.report.figures"]
    original = figures.interaction_lines

    def spy(x, series, xlabel, *args, **kwargs):
        drawn.append((xlabel, list(x), [label for label, _, _ in series], kwargs.get("joined", True)))
        return original(x, series, xlabel, *args, **kwargs)

    monkeypatch.setattr(figures, "interaction_lines", spy)
    path = tmp_path / "order.yaml"
    path.write_text(yaml.safe_dump({
        "name": "order", **TINY, "train": {**TINY["train"], "epochs": 1}, "seeds": 1,
        "sweep": {"mode": "grid", "train.optimizer.lr": [0.01, 0.003], "model.dropout": [0.25, 0.0, 0.1]}},
        sort_keys=False))
    place = Placement(tmp_path / "runs")
    run_all(load_study(path), place, progress=False)
    build_study_report(place.study_dir("order"), tmp_path / "rep", ReportOptions(images=False, tsne_points=0))
    lines = ["train.optimizer.lr = 0.003", "train.optimizer.lr = 0.01"]  # the legend in numeric order too
    assert drawn == [("model.dropout", ["0", "0.1", "0.25"], lines, True)]
    # unordered choices along the axis (seed 004's optimizers): in the file's order, points alone
    from visionstudy.report.study_report import axis_order

    assert axis_order({'"sgd"': "sgd", '"adam"': "adam"}) == (['"sgd"', '"adam"'], False)
    assert axis_order({"3": 3, "1": 1, "2.5": 2.5}) == (["1", "2.5", "3"], True)
    fig = figures.interaction_lines(["sgd", "adam"], [("x = 1", [0.5, 0.6], [None, None])], "opt", "acc", "t",
                                    joined=False)
    assert {line.get_linestyle() for line in fig.axes[0].lines} == {"None"}


def test_two_grids_over_the_same_two_keys_keep_an_interaction_chart_each(tmp_path):
    """Seed 004's second grid (the dropout rate for the two best optimizers) varies the same two
    keys as its first: each grid keeps its own interaction chart, the later one numbered (the
    second overwrote the first's file, and the report showed it twice)."""
    path = tmp_path / "grids.yaml"
    optimizers = [{"name": "sgd", "lr": 0.01}, {"name": "adam", "lr": 1e-3}]
    path.write_text(yaml.safe_dump({
        "name": "grids", **TINY, "train": {**TINY["train"], "epochs": 1},
        "sweep": [{"mode": "grid", "train.optimizer": optimizers, "model.dropout": [0.0, 0.25]},
                  {"mode": "grid", "train.optimizer": optimizers, "model.dropout": [0.1, 0.4]}]},
        sort_keys=False))
    place = Placement(tmp_path / "runs")
    run_all(load_study(path), place, progress=False)
    html = build_study_report(place.study_dir("grids"), tmp_path / "rep",
                              ReportOptions(images=False, tsne_points=0))
    charts = sorted(p.name for p in (html.parent / "figures").glob("interaction_*.png"))
    assert charts == ["interaction_train_optimizer_model_dropout.png",
                      "interaction_train_optimizer_model_dropout_sweep_2.png"], charts
    text = html.read_text()
    assert "train.optimizer and model.dropout (one line" in text
    assert "train.optimizer and model.dropout in sweep 2 (one line" in text


def test_a_search_trials_curve_is_labelled_by_its_values():
    """Seed 002's per-combination curves: each trial's line named by what it tried."""
    from visionstudy.report.study_report import trial_labels

    values = {"train.optimizer.lr": 0.001, "model.dropout": 0.25, "model.hidden": [64, 32]}
    assert trial_labels([(3, values)]) == ["#3: lr 0.001, dropout 0.25, hidden [64, 32]"]
    # a whole section chosen: its name and what differs, not the JSON Optuna stores it as
    from types import SimpleNamespace

    from visionstudy.report.study_report import trial_curves
    from visionstudy.study.schema import SearchConfig

    search = SearchConfig.model_validate({"space": {
        "train.optimizer": [{"name": "adam", "lr": 0.003}, {"name": "sgd", "lr": 0.05, "momentum": 0.9}],
        "model.dropout": [0.0, 0.25]}})
    trials = [SimpleNamespace(number=n, intermediate_values={1: 0.2, 2: 0.3},
                              params={"train.optimizer": json.dumps(o), "model.dropout": d})
              for n, o, d in ((0, {"name": "adam", "lr": 0.003}, 0.25),
                              (1, {"name": "sgd", "lr": 0.05, "momentum": 0.9}, 0.0))]
    assert [c[0] for c in trial_curves(trials, search)] == [
        "#0: optimizer adam, lr 0.003, dropout 0.25", "#1: optimizer sgd, lr 0.05, momentum 0.9, dropout 0"]
    # the trials table (and its CSV) the same way; the best trial's values as one copies them into a file
    from visionstudy.report.study_report import as_written, readable
    from visionstudy.study.search import trial_rows

    for t, value in zip(trials, (0.9, 0.8), strict=True):
        t.state, t.value = SimpleNamespace(name="COMPLETE"), value
    assert readable(trial_rows(trials, search)) == [
        [0, "complete", 0.9, 2, "adam, lr 0.003", 0.25],
        [1, "complete", 0.8, 2, "sgd, lr 0.05, momentum 0.9", 0.0]]
    assert as_written({"name": "sgd", "lr": 0.05, "momentum": 0.9}) == "{name: sgd, lr: 0.05, momentum: 0.9}"
    assert as_written(0.0023712345) == "0.00237123" and as_written([64, 32]) == "[64, 32]"


@pytest.mark.slow
def test_a_fifty_variant_grid_draws_what_its_study_names_with_every_text_apart_and_on_the_canvas(tmp_path):
    """Issue 27: 50 variants with long names (a 5 × 10 grid). `report.full` draws a variant in full
    beside the best (beyond 8 variants only the best and the ladder were), `report.curves` draws
    the named comparisons instead of one chart of all, and no text of any figure (a 50-entry
    legend, the bars, the cost scatter, the sweep and interaction charts, the full sections)
    leaves the figure or overlaps another, by matplotlib's own text boxes."""
    from tests.helpers import every_figure_checked

    path = tmp_path / "fifty.yaml"
    path.write_text(yaml.safe_dump({
        "name": "fifty", **TINY, "data": {"dataset": "digits", "max_train_samples": 200},
        "train": {**TINY["train"], "epochs": 1},
        "sweep": {"mode": "grid", "train.optimizer.lr": [1e-3, 3e-3, 1e-2, 3e-2, 0.1],
                  "model.hidden": [[n] for n in (8, 12, 16, 20, 24, 28, 32, 40, 48, 64)]},
        "report": {"full": ["lr=0.1,hidden=8"],  # names in the sweep's key order
                   "curves": {"every combination": ["*"], "two": ["lr=0.001,hidden=8", "lr=0.001,hidden=64"],
                              "lr 0.01": ["lr=0.01,*"]}}},
        sort_keys=False))
    place = Placement(tmp_path / "runs")
    run_all(load_study(path), place, workers=2, progress=False)
    with every_figure_checked() as checked:
        html = build_study_report(place.study_dir("fifty"), tmp_path / "rep",  # image figures: the notebook's
                                  ReportOptions(images=False, tsne_points=100))
    assert len(rows(html.parent / "tables" / "variants.csv")) == 50
    figures = {p.relative_to(html.parent / "figures").as_posix()
               for p in (html.parent / "figures").rglob("*.png")}
    assert set(checked) == figures
    assert {"curves_every-combination_val_accuracy.png", "curves_two_val_loss.png", "variant_bars.png",
            "costs.png", "curves_lr-0.01_train_accuracy.png",
            "interaction_model_hidden_train_optimizer_lr.png"} <= figures, figures
    assert "curves_val_accuracy.png" not in figures  # the named charts replace the one of all
    legend = [t for t in checked["curves_every-combination_val_accuracy.png"] if "hidden=" in t]
    assert len(legend) == 50, legend
    full = {f.split("/")[0] for f in figures if "/" in f}
    assert full == {"lr-0.1-hidden-8", best_variant(html).replace("=", "-").replace(",", "-")}, full
    text = html.read_text()
    assert "two (lr=0.001,hidden=8, lr=0.001,hidden=64)" in text
    hidden = (8, 12, 16, 20, 24, 28, 32, 40, 48, 64)
    assert "lr 0.01 (" + ", ".join(f"lr=0.01,hidden={n}" for n in hidden) in text


def test_the_study_report_reads_its_runs_from_the_manifest(tmp_path):
    """The report's runs are the plan's (search-best included, in seed order); a folder the plan
    does not name, left from an earlier plan, is not reported."""
    import shutil

    from visionstudy.report.study_report import collect
    from visionstudy.study.manifest import read_manifest

    path = tmp_path / "m.yaml"
    path.write_text(yaml.safe_dump({
        "name": "m", **TINY, "train": {**TINY["train"], "epochs": 1}, "seeds": 1,
        "variants": {"a": {}},
        "search": {"sampler": "random", "pruner": "none", "trials": 2, "seed": 1,
                   "space": {"model.hidden": [[8], [16]]}, "final": {"seeds": 1}}}))
    place = Placement(tmp_path / "runs")
    run_all(load_study(path), place, progress=False)
    study_dir = place.study_dir("m")
    shutil.copytree(study_dir / "a", study_dir / "dropped")  # a variant an earlier plan had
    runs = collect(study_dir, read_manifest(study_dir))
    assert {v: [k for k, _ in r] for v, r in runs.items()} == {"a": ["seed-0"], "search-best": ["seed-0"]}
    assert all(art.finished and art.label == f"{v}/{k}" for v, r in runs.items() for k, art in r)


def test_a_study_reports_progress_names_only_steps_it_has(finished_study, tmp_path, capsys):
    """A study without folds or a search (and any study) did not read `report 9/13: folds`, nor
    `search`: the study-wide sections are one step, then each variant."""
    build_study_report(finished_study, tmp_path / "rep", ReportOptions(images=False, tsne_points=30,
                                                                        progress=True))
    lines = [line.rsplit(" (", 1)[0] for line in capsys.readouterr().err.splitlines()]
    last = lines.pop().split(": ")[:2]  # and how many figures are still drawing, when some are
    assert lines == ["report 1/6: the study's tables and charts"] + [
        f"report {i}/6: variant {v}" for i, v in enumerate(VARIANTS, start=2)]
    assert last == ["report 6/6", "writing the figures"]  # the wait for the drawing processes, said


def test_a_variant_that_trains_on_a_subset_is_not_comparable_with_published_numbers(tmp_path):
    """The benchmark table called a variant trained on 100 of Fashion-MNIST's images "comparable"
    (only --set overrides counted); a variant validating on the test set is comparable but optimistic."""
    from tests.conftest import write_mnist_like

    mirror = write_mnist_like(tmp_path / "fashion")
    spec = {
        "name": "fm", "data": {"dataset": "fashion_mnist", "data_dir": str(mirror), "verify": False},
        "model": {"name": "mlp", "hidden": [16]}, "train": {"epochs": 1, "batch_size": 64},
        "variants": {"full": {}, "subset": {"data": {"max_train_samples": 100}},
                     "on-test": {"data": {"validation": "test"}}},
        "reference": {"source": "a made-up table", "data": {"dataset": "fashion_mnist"},
                      "variants": {"full": {"test_accuracy": 0.9}, "subset": {"test_accuracy": 0.9}}},
    }
    out = reported(tmp_path, spec)
    ours = {r["model"]: r["comparable"] for r in rows(out / "tables" / "benchmark.csv")
            if r["source"] != "published"}
    assert ours == {"full (this study)": "comparable",
                    "subset (this study)": "not comparable: data.max_train_samples=100",
                    "on-test (this study)": "comparable (optimistic: validates on the test set)"}
    assert [r["comparable"] for r in rows(out / "tables" / "reference.csv")] == [
        "yes", "no: data.max_train_samples=100"]
    # one seed: no paired test; the note said "One comparison: Holm's adjustment leaves p unchanged."
    text = unescape(" ".join((out / "report.html").read_text().split()))
    assert "No variant has two or more runs paired with the baseline's, so nothing is tested" in text
    assert "One comparison" not in text
    # a --set that subsets every run is said once, as the override it is
    out = reported(tmp_path, spec, ("data.max_train_samples=120",), runs="runs2")
    assert [r["comparable"] for r in rows(out / "tables" / "reference.csv")] == [
        "no: --set data.max_train_samples=120"] * 2
    ours = {r["comparable"] for r in rows(out / "tables" / "benchmark.csv") if r["source"] != "published"}
    assert ours == {"not comparable: data.max_train_samples=120"}  # the benchmark's words, as before


def test_a_class_subset_the_published_numbers_share_keeps_them_comparable(tmp_path):
    """Seed 000's Table 4 is on CIFAR-100's first 20 classes, as its recipe trains: the subset the
    reference names is no reason to call the study's numbers not comparable (a further subset is)."""
    out = reported(tmp_path, {
        "name": "sub", **TINY, "data": {"dataset": "digits", "classes": "first:3"},
        "train": {**TINY["train"], "epochs": 1},
        "variants": {"full": {}, "fewer": {"data": {"max_train_samples": 60}}},
        "reference": {"source": "a made-up table", "data": {"dataset": "digits", "classes": "first:3"},
                      "variants": {"full": {"test_accuracy": 0.9}, "fewer": {"test_accuracy": 0.9}}},
    })
    assert [r["comparable"] for r in rows(out / "tables" / "reference.csv")] == [
        "yes", "no: data.max_train_samples=60"]
