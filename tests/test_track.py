"""Trackers, read back with the libraries' own readers; a search opens in optuna-dashboard."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

import visionstudy as vs
from tests.helpers import TINY
from visionstudy.track import mlflow_uri


def history(run) -> list[dict[str, str]]:
    with (run.path / "history.csv").open(newline="") as f:
        return list(csv.DictReader(f))


def test_runs_of_one_config_keep_a_tensorboard_log_each(tmp_path):
    """Two `train`s of one config (another --out, another lr) were both logged as the config's
    name, and the second deleted the first's log. Each run folder now has its own, named after it
    (name-2 for another folder of the same name); logging a run again rewrites only its own."""
    from visionstudy.track import log_run, trackers

    logs = tmp_path / "logs"
    (tmp_path / "b").mkdir()
    adam = vs.train(TINY, set={"train.epochs": 1}, out=tmp_path / "adam", quiet=True, log=["tensorboard"],
                    log_dir=logs)
    sgd = vs.train(TINY, set={"train.epochs": 1, "train.optimizer": {"name": "sgd"}}, out=tmp_path / "sgd",
                   quiet=True, log=["tensorboard"], log_dir=logs)
    again = vs.train(TINY, set={"train.epochs": 1}, out=tmp_path / "b" / "adam", quiet=True,
                     log=["tensorboard"], log_dir=logs)
    root = logs / "runs"  # --log-dir with one tracker: its own folder
    assert sorted(p.name for p in root.iterdir()) == ["adam", "adam-2", "sgd"]
    for folder, run in (("adam", adam), ("sgd", sgd), ("adam-2", again)):
        assert (root / folder / "logged_from.txt").read_text().strip() == str(run.path.resolve())
        assert len(list((root / folder).glob("events.out.tfevents.*"))) >= 1
    log_run(adam.path, "adam", "runs", trackers(["tensorboard"], logs))  # the same run again
    assert sorted(p.name for p in root.iterdir()) == ["adam", "adam-2", "sgd"]
    assert (root / "sgd" / "logged_from.txt").read_text().strip() == str(sgd.path.resolve())


def test_a_run_logged_to_tensorboard_and_mlflow_reads_back(tmp_path, monkeypatch):
    from mlflow.tracking import MlflowClient
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    # the report each tracker keeps is written aside: `reports/run` in the working folder, a user's
    # folder here, made the finished run's train fail (as two tests writing it at once once did)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "reports" / "run").mkdir(parents=True)
    (tmp_path / "reports" / "run" / "notes.txt").write_text("mine")
    logs = tmp_path / "logs"
    run = vs.train(TINY, set={"train.epochs": 2}, out=tmp_path / "run", quiet=True,
                   log=["tensorboard", "mlflow"], log_dir=logs)
    metrics, rows = run.metrics, history(run)

    tb = EventAccumulator(str(logs / "tensorboard" / "runs" / "run")).Reload()  # --out's name
    val = tb.Scalars("accuracy/val")
    assert [e.step for e in val] == [1, 2]
    assert [e.value for e in val] == pytest.approx([float(r["val_accuracy"]) for r in rows], rel=1e-6)
    assert tb.Scalars("test/accuracy")[0].value == pytest.approx(metrics["test_accuracy"], rel=1e-6)
    assert "config/text_summary" in tb.Tags()["tensors"]
    assert (logs / "tensorboard" / "runs" / "run" / "report.html").is_file()
    assert [p.name for p in (tmp_path / "reports").rglob("*")] == ["run", "notes.txt"]

    client = MlflowClient(tracking_uri=mlflow_uri(logs / "mlflow"))
    experiment = client.get_experiment_by_name("runs")
    [logged] = client.search_runs([experiment.experiment_id])
    assert logged.info.run_name == "run" and logged.info.status == "FINISHED"
    assert logged.data.params["train.epochs"] == "2" and logged.data.params["model.name"] == "cnn"
    assert logged.data.metrics["test_accuracy"] == pytest.approx(metrics["test_accuracy"])
    curve = client.get_metric_history(logged.info.run_id, "val_loss")
    assert [m.step for m in curve] == [1, 2]
    assert [m.value for m in curve] == pytest.approx([float(r["val_loss"]) for r in rows])
    assert [a.path for a in client.list_artifacts(logged.info.run_id)] == ["report.html"]


def test_a_study_logs_each_run_once_and_its_report(tmp_path):
    from mlflow.tracking import MlflowClient

    spec = {"name": "tracked", **{k: TINY[k] for k in ("data", "model", "train")}, "seeds": 2}
    study = vs.Study.load(spec, set={"train.epochs": 1}, runs_dir=tmp_path / "runs")
    study.run(quiet=True, log=["mlflow"], log_dir=tmp_path / "ml", echo=lambda line: None,
              report=True)
    study.run(quiet=True, log=["mlflow"], log_dir=tmp_path / "ml", echo=lambda line: None)  # nothing new
    client = MlflowClient(tracking_uri=mlflow_uri(tmp_path / "ml"))
    runs = client.search_runs([client.get_experiment_by_name("tracked").experiment_id])
    names = sorted(r.info.run_name for r in runs)
    assert names == ["baseline/seed-0", "baseline/seed-1", "study report", "study report"]
    report = next(r for r in runs if r.info.run_name == "study report")
    assert [a.path for a in client.list_artifacts(report.info.run_id)] == ["report.html"]


def test_an_unknown_tracker_is_refused_before_training(tmp_path):
    with pytest.raises(vs.ConfigError, match="--log neptune: not a tracker; choose from tensorboard, "
                                             "mlflow, wandb"):
        vs.train(TINY, out=tmp_path / "run", log=["neptune"])
    assert not (tmp_path / "run").exists()
    from visionstudy.track import trackers  # a known one's case does not matter

    assert [t.kind for t in trackers(["TensorBoard", "tensorboard"], tmp_path / "tb")] == ["tensorboard"]


def wandb_records(folder: Path) -> list[Any]:
    """The records of each offline W&B run under `folder`, read back from its transaction log
    (run-*.wandb: a LevelDB-style log of 32 KiB blocks, each record a wandb_internal_pb2.Record;
    `wandb sync` uploads exactly these), run by run in the order they were logged."""
    from wandb.proto import wandb_internal_pb2 as pb

    runs = []
    for path in sorted(folder.glob("wandb/offline-run-*/run-*.wandb")):
        data, block, pos, pending, records = path.read_bytes(), 32768, 7, b"", []
        assert data[:4] == b":W&B"
        while pos + 7 <= len(data):
            if block - pos % block < 7:  # a block's tail too short for a header is padding
                pos += block - pos % block
                continue
            length, kind = int.from_bytes(data[pos + 4:pos + 6], "little"), data[pos + 6]
            chunk, pos = data[pos + 7:pos + 7 + length], pos + 7 + length
            if kind == 0:
                continue
            pending = chunk if kind in (1, 2) else pending + chunk  # full, first | middle, last
            if kind in (1, 4):
                record = pb.Record()
                record.ParseFromString(pending)
                records.append(record)
        runs.append(records)
    return runs


def wandb_run(records: list[Any]) -> dict[str, Any]:
    """An offline W&B run as its name, project, group, config, history rows, summary and files."""
    out: dict[str, Any] = {"history": [], "summary": {}, "files": []}
    for r in records:
        kind = r.WhichOneof("record_type")
        if kind == "run":
            out.update(name=r.run.display_name, project=r.run.project, group=r.run.run_group,
                       config={i.key: json.loads(i.value_json) for i in r.run.config.update})
        elif kind == "history":
            row = {i.key or "/".join(i.nested_key): json.loads(i.value_json) for i in r.history.item}
            out["history"].append({k: v for k, v in row.items() if not k.startswith("_")})
        elif kind == "summary":
            out["summary"].update({i.key or "/".join(i.nested_key): json.loads(i.value_json)
                                   for i in r.summary.update})
        elif kind == "files":
            out["files"] += [f.path for f in r.files.files]
    return out


def test_a_run_and_a_study_logged_to_wandb_offline_read_back(tmp_path, monkeypatch, caplog):
    """Without an API key (none in the environment, no ~/.netrc) W&B logs offline, for `wandb
    sync`: no login prompt and no network wait after the runs have trained."""
    for name in ("WANDB_API_KEY", "WANDB_MODE", "WANDB_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.netrc of this machine's user
    logs = tmp_path / "wb"
    run = vs.train(TINY, set={"train.epochs": 2}, out=tmp_path / "run", quiet=True, log=["wandb"],
                   log_dir=logs)
    assert "runs are logged offline; `wandb sync" in caplog.text
    import wandb

    wandb.teardown()  # W&B's service process writes the run's log on its own; a process's exit waits
    [logged] = [wandb_run(records) for records in wandb_records(logs)]
    assert (logged["name"], logged["project"], logged["group"]) == ("run", "runs", "runs")
    assert logged["config"]["train"]["epochs"] == 2 and logged["config"]["model"]["name"] == "cnn"
    rows = history(run)
    assert [h["epoch"] for h in logged["history"]] == [1, 2]
    assert [h["val_accuracy"] for h in logged["history"]] == pytest.approx(
        [float(r["val_accuracy"]) for r in rows])
    assert logged["summary"]["test_accuracy"] == pytest.approx(run.metrics["test_accuracy"])
    assert "report.html" in logged["files"]  # beside W&B's own requirements.txt

    spec = {"name": "wbstudy", **{k: TINY[k] for k in ("data", "model", "train")}, "seeds": 2}
    study = vs.Study.load(spec, set={"train.epochs": 1}, runs_dir=tmp_path / "runs")
    study.run(quiet=True, log=["wandb"], log_dir=tmp_path / "wbs", echo=lambda line: None)
    wandb.teardown()
    runs = [wandb_run(records) for records in wandb_records(tmp_path / "wbs")]
    assert sorted(r["name"] for r in runs) == ["baseline/seed-0", "baseline/seed-1", "study report"]
    assert {r["project"] for r in runs} == {"wbstudy"}
    assert "report.html" in next(r for r in runs if r["name"] == "study report")["files"]


def test_a_search_opens_in_optuna_dashboard(tmp_path):
    """optuna-dashboard serves the study database: its API lists the search and every trial."""
    from optuna_dashboard import wsgi

    spec = {"name": "dash", "data": {"dataset": "digits"}, "model": {"name": "mlp", "hidden": [16]},
            "train": {"epochs": 1, "batch_size": 128},
            "search": {"trials": 3, "space": {"train.optimizer.lr": {"type": "float", "low": 1e-3,
                                                                     "high": 1e-1, "log": True}}}}
    study = vs.Study.load(spec, runs_dir=tmp_path / "runs")
    study.run(quiet=True, report=False, echo=lambda line: None)
    app = wsgi(f"sqlite:///{study.dir / 'study.db'}")

    def get(path: str) -> dict:
        status: list[str] = []
        from wsgiref.util import setup_testing_defaults

        environ = {"PATH_INFO": path, "wsgi.input": io.BytesIO(), "wsgi.errors": io.StringIO()}
        setup_testing_defaults(environ)
        body = app(environ, lambda s, h, exc_info=None: status.append(s))
        assert status[0].startswith("200"), status
        return json.loads(b"".join(body))

    studies = {s["study_name"]: s for s in get("/api/studies")["study_summaries"]}
    assert "dash:search" in studies
    detail = get(f"/api/studies/{studies['dash:search']['study_id']}")
    import optuna

    ours = optuna.load_study(study_name="dash:search", storage=f"sqlite:///{study.dir / 'study.db'}")
    assert [(t["number"], t["state"]) for t in detail["trials"]] == \
        [(t.number, t.state.name.capitalize()) for t in ours.trials] and len(ours.trials) == 3


def test_the_trackers_module_leaves_the_report_unimported_until_a_run_is_logged():
    """`visionstudy train` imports it for `--log`: the report's modules (scikit-learn, matplotlib:
    1.7 s) made every train, even one refused for a bad config, that much slower to start."""
    import subprocess
    import sys

    code = ("import sys, visionstudy.cli, visionstudy.track; "
            "print(sorted(m for m in ('sklearn', 'matplotlib', 'visionstudy.report') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_a_log_dir_that_cannot_be_written_is_refused_before_training(tmp_path):
    """It once trained the whole run and then printed a traceback (exit 1)."""
    from tests.helpers import assert_user_error, vs_here

    cfg = tmp_path / "tiny.yaml"
    cfg.write_text(yaml.safe_dump(TINY))
    (tmp_path / "file").write_text("x")
    result = vs_here("train", cfg, "--out", tmp_path / "run", "--log", "tensorboard",
                     "--log-dir", tmp_path / "file" / "logs")
    assert_user_error(result, "cannot write", "file/logs")
    assert not (tmp_path / "run").exists()
    with pytest.raises(vs.ConfigError, match="--log-dir .*: exists and is not a folder"):
        vs.train(TINY, out=tmp_path / "run", log=["mlflow"], log_dir=tmp_path / "file")
    assert not (tmp_path / "run").exists()


def test_wandb_is_online_only_where_it_has_an_api_key(tmp_path, monkeypatch):
    from visionstudy.track import wandb_mode

    for name in ("WANDB_API_KEY", "WANDB_MODE", "WANDB_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert wandb_mode() == "offline"
    (tmp_path / ".netrc").write_text("machine api.wandb.ai\n  login user\n  password k3y\n")
    (tmp_path / ".netrc").chmod(0o600)
    assert wandb_mode() == "online"  # `wandb login`'s entry
    monkeypatch.setenv("WANDB_BASE_URL", "https://wandb.example.org")
    assert wandb_mode() == "offline"  # a key for another server
    monkeypatch.setenv("WANDB_API_KEY", "k3y")
    assert wandb_mode() == "online"
    monkeypatch.setenv("WANDB_MODE", "disabled")
    assert wandb_mode() == "disabled"  # W&B's own switch wins


def test_a_tracker_that_fails_costs_its_record_only(tmp_path, monkeypatch, caplog):
    """W&B's server out of reach raised its CommError after the run had trained: a traceback, and a
    study stopped at its first finished run. Now one warning; the other trackers still log."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    import visionstudy.track as track

    def unreachable(*args, **kwargs):
        raise ConnectionError("the tracking server is out of reach\nsecond line")

    monkeypatch.setattr(track, "log_mlflow", unreachable)
    logs = tmp_path / "logs"
    run = vs.train(TINY, set={"train.epochs": 1}, out=tmp_path / "run", quiet=True,
                   log=["mlflow", "tensorboard"], log_dir=logs)
    assert run.metrics["epochs_run"] == 1
    assert ("--log mlflow: run was not logged (ConnectionError: the tracking server is out of "
            f"reach); it is kept in {tmp_path / 'run'}") in caplog.text
    tb = EventAccumulator(str(logs / "tensorboard" / "runs" / "run")).Reload()
    assert [e.step for e in tb.Scalars("accuracy/val")] == [1]
