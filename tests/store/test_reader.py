"""The one reader of a run folder: every other module reads runs through `store.reader`."""

from __future__ import annotations

import re

from tests.helpers import ROOT

# a run folder's files read, or their names written as paths, anywhere but in store/
READS = re.compile(r"\.(metrics|config|history|steps|predictions)\.read_(text|bytes)\(|pd\.read_csv\("
                   r"|[\"'](metrics\.json|config\.yaml|history\.csv|steps\.csv|predictions\.npz)[\"']"
                   r"|read_yaml\(.*\.config\b"  # a run's config.yaml through the YAML helper
                   r"|(get|pop)\([\"']resolved[\"']|!= [\"']resolved[\"']")  # its `resolved` section, by hand


def test_no_module_outside_store_reads_a_run_folder_itself():
    found = []
    for path in sorted((ROOT / "src" / "visionstudy").rglob("*.py")):
        if path.parent.name == "store":
            continue
        for n, line in enumerate(path.read_text().splitlines(), 1):
            if READS.search(line):
                found.append(f"{path.relative_to(ROOT)}:{n}: {line.strip()}")
    assert not found, "read the run through visionstudy.store.reader instead:\n" + "\n".join(found)


def test_the_reader_gives_a_finished_runs_metrics_config_and_history(tmp_path):
    import json

    import pytest

    from visionstudy.errors import ReportError
    from visionstudy.store.reader import as_asked, read_config, read_history, read_metrics, resolved

    run = tmp_path / "run"
    run.mkdir()
    assert read_config(run) == {}
    with pytest.raises(OSError):
        read_metrics(run)
    (run / "metrics.json").write_text(json.dumps({"test_accuracy": 0.5}))
    (run / "config.yaml").write_text("name: r\nresolved: {dataset: {class_names: [a, b]}}\n")
    (run / "history.csv").write_text("epoch,train_loss,val_accuracy\n1,0.7,\n2,0.5,0.8\n")
    assert read_metrics(run) == {"test_accuracy": 0.5}
    assert read_config(run)["resolved"]["dataset"]["class_names"] == ["a", "b"]
    assert as_asked(read_config(run)) == {"name": "r"}
    assert resolved(read_config(run)) == {"dataset": {"class_names": ["a", "b"]}} and resolved({}) == {}
    rows = read_history(run / "history.csv")
    assert [r["epoch"] for r in rows] == [1, 2] and rows[1]["val_accuracy"] == 0.8
    assert rows[0]["val_accuracy"] != rows[0]["val_accuracy"]  # empty: NaN
    (run / "metrics.json").write_text("[1, 2]")
    with pytest.raises(ValueError, match="not a mapping"):
        read_metrics(run)
    (run / "config.yaml").write_text("- a list\n")
    with pytest.raises(ReportError, match="not a run config"):
        read_config(run)


def test_runs_side_by_side_are_named_by_their_shortest_distinct_names(tmp_path):
    """A comparison of two studies' runs called them `seed-0` and `fold-0`: a study's run is
    named from its variant on (its key), more of the path only where names still collide."""
    from visionstudy.store.reader import unique_labels

    a, b = tmp_path / "byhand" / "a" / "seed-0", tmp_path / "fm" / "base" / "seed-0" / "fold-0"
    assert unique_labels([a, b]) == ["a/seed-0", "base/seed-0/fold-0"]
    assert unique_labels([a, tmp_path / "byhand" / "b" / "seed-0"]) == ["a/seed-0", "b/seed-0"]
    assert unique_labels([a, tmp_path / "other" / "a" / "seed-0"]) == ["byhand/a/seed-0", "other/a/seed-0"]
    assert unique_labels([tmp_path / "runs" / "x", tmp_path / "runs" / "y"]) == ["x", "y"]  # plain runs
    assert unique_labels([tmp_path / "seed-0", tmp_path / "x" / "seed-0"]) == [f"{tmp_path.name}/seed-0",
                                                                               "x/seed-0"]
