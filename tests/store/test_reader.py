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
