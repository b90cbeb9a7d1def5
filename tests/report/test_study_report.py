"""The study report: per-variant statistics, paired tests, trajectory, curves, sweeps, search."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import yaml

from visionstudy.errors import ReportError
from visionstudy.report import ReportOptions
from visionstudy.report.stats import paired_test, summarize
from visionstudy.report.study_report import build_study_report
from visionstudy.study import Placement, load_study, run_all

TINY = {"data": {"dataset": "digits"}, "model": {"name": "cnn", "channels": [4, 8], "hidden": [16]},
        "train": {"epochs": 4, "batch_size": 64, "optimizer": {"name": "adam", "lr": 1e-2}}}


def rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def finished_study(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("study")
    path = root / "s.yaml"
    path.write_text(yaml.safe_dump({
        "name": "ladder", **TINY, "seeds": 3,
        "variants": {"baseline": {}, "bn": {"model": {"batch_norm": True}}},
        "sweep": {"mode": "one-at-a-time", "train.optimizer.lr": [1e-3]},
    }, sort_keys=False))
    place = Placement(root / "runs")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("XDG_CACHE_HOME", str(root / "cache"))
        run_all(load_study(path), place, progress=False)
    return place.study_dir("ladder")


def test_study_report_statistics_match_the_runs(finished_study, tmp_path):
    html = build_study_report(finished_study, tmp_path / "rep", ReportOptions(images=False, tsne_points=50))
    out = html.parent
    acc = {v: [json.loads((finished_study / v / f"seed-{k}" / "metrics.json").read_text())["test_accuracy"]
               for k in range(3)] for v in ("baseline", "bn", "lr=0.001")}
    table = {r["variant"]: r for r in rows(out / "tables" / "variants.csv")}
    assert list(table) == ["baseline", "bn", "lr=0.001"]
    for v, values in acc.items():
        s = summarize(values)
        assert float(table[v]["test accuracy mean"]) == pytest.approx(s.mean)
        assert float(table[v]["test accuracy std"]) == pytest.approx(s.std)
        assert float(table[v]["test accuracy 95% CI low"]) == pytest.approx(s.ci_low)
        assert float(table[v]["test accuracy 95% CI high"]) == pytest.approx(s.ci_high)
        assert table[v]["runs"] == "3"
    tests = {r["variant"]: r for r in rows(out / "tables" / "paired_tests.csv")}
    expected = paired_test(acc["bn"], acc["baseline"])
    assert float(tests["bn"]["mean difference"]) == pytest.approx(expected.diff)
    if expected.t_p is not None:
        assert float(tests["bn"]["paired t-test p"]) == pytest.approx(expected.t_p)
    trajectory = rows(out / "tables" / "trajectory.csv")
    assert [r["variant"] for r in trajectory] == ["baseline", "bn", "lr=0.001"]
    for stem in ("trajectory", "curves_val_accuracy", "curves_val_loss", "sweep_train_optimizer_lr"):
        assert (out / "figures" / f"{stem}.png").stat().st_size > 1000
        assert (out / "figures" / f"{stem}.svg").is_file()
    text = html.read_text()
    assert "Against the baseline" in text and "Improvement trajectory" in text


def test_study_report_of_a_partly_finished_study(finished_study, tmp_path):
    import shutil

    partial = tmp_path / "runs" / "ladder"
    shutil.copytree(finished_study, partial)
    (partial / "bn" / "seed-2" / "metrics.json").unlink()
    html = build_study_report(partial, tmp_path / "rep", ReportOptions(images=False, tsne_points=50))
    assert "1 of 9 runs have not finished" in html.read_text()
    table = {r["variant"]: r for r in rows(html.parent / "tables" / "variants.csv")}
    assert table["bn"]["runs"] == "2"


def test_not_a_study_folder(tmp_path):
    with pytest.raises(ReportError, match="not a study folder"):
        build_study_report(tmp_path, tmp_path / "rep")
