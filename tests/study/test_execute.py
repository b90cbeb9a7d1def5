"""Running studies for real: workers, the database, re-runs, interruptions, folds, search."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import yaml

from tests.helpers import ROOT, check_killed_worker_study, kill_one_worker_mid_run
from visionstudy.errors import StorageError
from visionstudy.store import RunStore
from visionstudy.study import Placement, load_study, run_all
from visionstudy.study.execute import run_study

TINY = {"data": {"dataset": "digits"}, "model": {"name": "cnn", "channels": [4, 8], "hidden": [16]},
        "train": {"epochs": 5, "batch_size": 64, "optimizer": {"name": "adam", "lr": 1e-2}}}


def write(tmp_path: Path, name: str, **fields) -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump({"name": name, **TINY, **fields}, sort_keys=False))
    return path


def completed_per_key(place: Placement, name: str) -> dict[str, int]:
    from optuna.trial import TrialState

    store = RunStore(place.url(name), name)
    out: dict[str, int] = {}
    for t in store.trials((TrialState.COMPLETE,)):
        out[t.user_attrs["run"]] = out.get(t.user_attrs["run"], 0) + 1
    return out


def mtimes(folder: Path) -> dict[str, int]:
    return {str(p): p.stat().st_mtime_ns for p in folder.rglob("metrics.json")}


VARIANTS = {"baseline": {}, "bn": {"model": {"batch_norm": True}}, "wide": {"model": {"channels": [8, 8]}}}


def test_three_variants_two_seeds_two_workers_then_nothing_to_do(tmp_path):
    study = load_study(write(tmp_path, "abl", seeds=2, variants=VARIANTS))
    place = Placement(tmp_path / "runs")
    _, outcome = run_all(study, place, workers=2, progress=False)
    assert (outcome.total, outcome.done, outcome.failed, outcome.trained) == (6, 6, [], 6)
    assert completed_per_key(place, "abl") == {r.key: 1 for r in study.runs}
    study_dir = place.study_dir(study)
    for r in study.runs:
        m = json.loads((study_dir / r.key / "metrics.json").read_text())
        assert m["test_accuracy"] > 0.2  # chance is 0.1
        # the worker's thread share is not part of the run: a resume with other --workers works
        cfg = yaml.safe_load((study_dir / r.key / "config.yaml").read_text())
        assert cfg["train"]["threads"] is None
    before = mtimes(study_dir)
    _, again = run_all(study, place, workers=2, progress=False)
    assert again.trained == 0 and again.done == 6 and mtimes(study_dir) == before
    # adding a variant runs only the new runs
    more_variants = {**VARIANTS, "drop": {"model": {"dropout": 0.2}}}
    grown = load_study(write(tmp_path, "abl", seeds=2, variants=more_variants))
    _, more = run_all(grown, place, workers=1, progress=False)
    assert more.trained == 2 and more.done == 8 and mtimes(study_dir).items() >= before.items()
    # one seed fewer: its finished runs leave the study (said by status, then by the run) and stay
    from visionstudy.study.status import study_status

    fewer = write(tmp_path, "abl", seeds=1, variants=more_variants)
    left = ("4 finished runs (baseline/seed-1, bn/seed-1, wide/seed-1, ...) are not in the study file any "
            "more: ")
    assert study_status(str(fewer), [], tmp_path / "runs", None).differs == (
        left + "`visionstudy study run` leaves them out of the study's results and report (their folders "
        "stay); put them back in the file to count them again")
    said: list[str] = []
    _, less = run_all(load_study(fewer), place, progress=False, echo=said.append)
    assert less.trained == 0 and less.done == 4 and (study_dir / "drop" / "seed-1" / "metrics.json").is_file()
    assert left + "their folders stay on disk, out of the study's results and report" in said[0]
    said.clear()
    run_all(load_study(fewer), place, progress=False, echo=said.append)  # said once, when it changed
    assert not any("not in the study file" in line for line in said), said


def test_same_name_different_definition_is_refused(tmp_path):
    place = Placement(tmp_path / "runs")
    run_all(load_study(write(tmp_path, "clash")), place, progress=False)
    before = (tmp_path / "runs" / "clash" / "manifest.json").read_text()
    changed = load_study(write(tmp_path, "clash", train={**TINY["train"], "epochs": 3}))
    # a finished run keeps its definition: the folder's manifest names the runs and what changed
    with pytest.raises(StorageError, match=re.escape(
            "clash holds finished runs of another definition: 1 run (baseline/seed-0; baseline/seed-0 "
            "differs in train.epochs: 5 → 3); a finished run keeps its definition")):
        run_all(changed, place, progress=False)
    assert (tmp_path / "runs" / "clash" / "manifest.json").read_text() == before
    # `study status` of the changed file shows the recorded plan, and says how the file differs
    from visionstudy.study.status import study_status

    view = study_status(str(tmp_path / "clash.yaml"), [], tmp_path / "runs", None)
    assert view.status == {"baseline/seed-0": "done"}
    assert view.differs and "differs in train.epochs: 5 → 3); 1 of them finished, so `study run` " \
        "refuses the change" in view.differs
    grown = write(tmp_path, "clash", variants={"baseline": {}, "bn": {"model": {"batch_norm": True}}})
    view = study_status(str(grown), [], tmp_path / "runs", None)
    assert view.differs == ("The study file adds 1 run not planned yet (bn/seed-0): `visionstudy study "
                            "run` plans and trains them")
    assert study_status(str(grown), [], tmp_path / "other", None).differs is None
    # a run training in another process keeps its definition too: the database refuses it by name
    store = RunStore(place.url("clash"), "clash")
    (tmp_path / "runs" / "clash" / "baseline" / "seed-0" / "metrics.json").unlink()  # results gone
    store.sync({"baseline/seed-0": load_study(write(tmp_path, "clash")).runs[0].config_hash}, {})
    assert store.claim({"baseline/seed-0"}, os.getpid()) is not None  # queued again, and claimed
    with pytest.raises(StorageError, match="already holds runs baseline/seed-0 with a different config, "
                                           "finished or training"):
        run_all(changed, Placement(tmp_path / "elsewhere", db=place.url("clash")), progress=False)


def test_a_run_that_did_not_finish_takes_the_changed_definition(tmp_path):
    """A study whose runs failed for a setting (a learning rate that diverges, too many folds) could
    not be fixed in place: any change of a run's config was refused, finished or not. An unfinished
    run now takes the new definition: its old progress is cleared and it trains anew."""
    exploding = {**TINY["train"], "optimizer": {"name": "sgd", "lr": 1.0e6}}
    place = Placement(tmp_path / "runs")
    outcome = run_study(load_study(write(tmp_path, "fix", seeds=2, train=exploding)), place, progress=False)
    assert outcome.done == 0 and len(outcome.failed) == 2
    run_dir = tmp_path / "runs" / "fix" / "baseline" / "seed-0"
    assert yaml.safe_load((run_dir / "config.yaml").read_text())["train"]["optimizer"]["lr"] == 1.0e6
    # progress of another config, as a run stopped mid-way leaves it: resuming it would be refused
    run_all(load_study(write(tmp_path, "other", train={**TINY["train"], "epochs": 1})), place, progress=False)
    (run_dir / "checkpoints").mkdir()
    shutil.copy(tmp_path / "runs" / "other" / "baseline" / "seed-0" / "checkpoints" / "last.pt",
                run_dir / "checkpoints" / "last.pt")
    from visionstudy.study.status import study_status

    fixed = write(tmp_path, "fix", seeds=2)
    assert study_status(str(fixed), [], tmp_path / "runs", None).differs.endswith(
        "differs in train.optimizer.lr: 1000000.0 → 0.01, train.optimizer.name: 'sgd' → 'adam'); none "
        "finished: `study run` trains them anew")
    from visionstudy.study.execute import Driver

    lines: list[str] = []

    driver = Driver(1, "cpu", None, progress=False, echo=lines.append)
    try:
        outcome = run_study(load_study(fixed), place, driver=driver)
    finally:
        driver.close()
    assert outcome.done == 2 and not outcome.failed
    assert lines[0] == ("2 unfinished runs redefined by the study file (baseline/seed-0, baseline/seed-1): "
                        "they train anew")
    assert yaml.safe_load((run_dir / "config.yaml").read_text())["train"]["optimizer"]["lr"] == 0.01
    view = study_status(str(fixed), [], tmp_path / "runs", None)
    assert view.status == {"baseline/seed-0": "done", "baseline/seed-1": "done"} and not view.errors
    assert view.differs is None


def test_no_more_workers_start_than_there_are_runs_to_train(tmp_path):
    """`--workers 8` for a study with 2 runs left started 8 processes, 6 of which imported torch and
    waited for nothing (a study with a search starts them all: its trials come after)."""
    from visionstudy.study.execute import Driver

    driver = Driver(8, "cpu", None, progress=False)
    try:
        outcome = run_study(load_study(write(tmp_path, "few", seeds=2)), Placement(tmp_path / "runs"),
                            driver=driver)
        assert outcome.done == 2 and driver.pool is not None and driver.pool.size == 2
    finally:
        driver.close()


def test_kfold_runs_use_disjoint_validation_folds(tmp_path):
    study = load_study(write(tmp_path, "cv", cv={"folds": 3}))
    place = Placement(tmp_path / "runs")
    _, outcome = run_all(study, place, progress=False)
    assert outcome.done == 3
    from collections import Counter

    from visionstudy.data import prepare

    def fingerprints(split) -> Counter:
        return Counter(x.tobytes() + bytes([int(y)]) for x, y in zip(split.images, split.labels, strict=True))

    folds = [prepare(r.config.data) for r in study.runs]
    whole = fingerprints(folds[0].train) + fingerprints(folds[0].val)
    union = Counter()
    for r, data in zip(study.runs, folds, strict=True):
        union += fingerprints(data.val)
        assert not set(fingerprints(data.val)) & set(fingerprints(data.train))  # no leak inside a run
        cfg = yaml.safe_load((place.study_dir(study) / r.key / "config.yaml").read_text())
        assert cfg["data"]["fold"] == r.fold and cfg["data"]["folds"] == 3
    assert union == whole  # the validation folds partition the training split exactly
    assert max(len(d.val) for d in folds) - min(len(d.val) for d in folds) <= 3


def test_more_folds_than_a_class_has_images_is_one_error_before_any_run_trains(tmp_path):
    """It was one failure per run, 300 of them, each the same error."""
    from visionstudy.errors import DataError

    study = load_study(write(tmp_path, "cv300", cv={"folds": 300}))
    with pytest.raises(DataError, match=re.escape("data.folds=300 (a study's cv.folds): classes [0, 1, 2, 3, "
                                                  "4, 5, 6, 7, 8, 9] have fewer than 300 training samples")):
        run_study(study, Placement(tmp_path / "runs"), progress=False)
    assert not list((tmp_path / "runs" / "cv300").glob("baseline/*"))


def test_interrupted_study_finishes_only_what_was_missing(tmp_path):
    path = write(tmp_path, "killme", seeds=2, variants=VARIANTS,  # runs of about a second each
                 data={"dataset": "digits", "max_train_samples": 300}, train={**TINY["train"], "epochs": 20})
    runs = tmp_path / "runs"
    cmd = [sys.executable, "-m", "visionstudy", "study", "run", str(path), "--runs-dir", str(runs),
           "--quiet", "--no-report"]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True)
    deadline = time.time() + 240
    while time.time() < deadline and len(list(runs.rglob("metrics.json"))) < 2:
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)  # the study process and its worker, mid-run
    proc.wait()
    finished = mtimes(runs)
    assert 2 <= len(finished) < 6
    result = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "6/6 runs finished" in result.stdout
    assert mtimes(runs).items() >= finished.items()  # finished runs untouched
    study = load_study(path)
    assert completed_per_key(Placement(runs), "killme") == {r.key: 1 for r in study.runs}


def test_search_with_hyperband_prunes_and_retrains_the_best(tmp_path):
    study = load_study(path := write(
        tmp_path, "tune", train={**TINY["train"], "epochs": 9},
        search={"sampler": "random", "pruner": "hyperband", "trials": 8, "seed": 1,
                "space": {"train.optimizer.lr": {"type": "float", "low": 1e-5, "high": 3e-2, "log": True},
                          "model.hidden": [[8], [32]],
                          # a choice that also set lr is refused now (test_spec: which lr is meant?)
                          "train.optimizer": [{"name": "adam", "weight_decay": 1e-4},
                                              {"name": "sgd", "momentum": 0.9}]},
                "final": {"seeds": 2}}))
    place = Placement(tmp_path / "runs")
    start = time.perf_counter()
    full, outcome = run_all(study, place, progress=False)
    # `N/3 runs finished (T s)` counts the search's time (it said the final runs' 2 s of a 40-s call)
    assert outcome.seconds > 0.9 * (time.perf_counter() - start)
    import optuna

    from visionstudy.store.db import storage_for

    search = optuna.load_study(study_name="tune:search", storage=storage_for(place.url(study)))
    states = [t.state.name for t in search.trials]
    assert len(states) == 8 and "PRUNED" in states and "COMPLETE" in states
    best = search.best_trial.params
    final = [r for r in full.runs if r.variant == "search-best"]
    assert len(final) == 2 and outcome.done == 3  # baseline + 2 final seeds
    cfg = yaml.safe_load((place.study_dir(study) / "search-best" / "seed-1" / "config.yaml").read_text())
    assert cfg["model"]["hidden"] == json.loads(best["model.hidden"])  # non-primitive choices go as JSON
    from visionstudy.report.run_report import ReportOptions
    from visionstudy.report.study_report import build_study_report

    md = build_study_report(place.study_dir(study), tmp_path / "rep",
                            ReportOptions(images=False, tsne_points=0)).parent / "report.md"
    lr = best["train.optimizer.lr"]  # the best trial's values as precise as one copies them (not 0.0024)
    assert f"| train.optimizer.lr | {lr:.6g} |" in md.read_text() and len(f"{lr:.6g}") > 6
    # sections and lists as the study file writes them, not Optuna's JSON of them
    best_optimizer = yaml.safe_dump(json.loads(best["train.optimizer"]), default_flow_style=True,
                                    sort_keys=False).strip()  # {name: adam, lr: 0.003}: copied into a file
    assert f"| train.optimizer | {best_optimizer} |" in md.read_text() and '{"name"' not in md.read_text()
    trials_csv = (tmp_path / "rep" / "tables" / "search_trials.csv").read_text()
    assert '"name"' not in trials_csv and ("sgd" in trials_csv or "adam" in trials_csv)
    from visionstudy.api import Study

    frame = Study.load(path, runs_dir=tmp_path / "runs").trials()  # the API's view of the same trials
    assert list(frame.columns) == ["trial", "state", "objective", "epochs", "train.optimizer.lr",
                                   "model.hidden", "train.optimizer"]
    assert frame["state"].tolist() == [s.lower() for s in states]
    assert frame.loc[frame["objective"].idxmax(), "train.optimizer.lr"] == lr
    assert frame.loc[frame["objective"].idxmax(), "train.optimizer"] == json.loads(best["train.optimizer"])
    assert frame.loc[frame["objective"].idxmax(), "model.hidden"] == json.loads(best["model.hidden"])
    assert Study.load(path, runs_dir=tmp_path / "elsewhere").trials().empty  # not started: no rows
    assert not (tmp_path / "elsewhere").exists()  # and nothing created
    # a second call does not search again
    _, again = run_all(study, place, progress=False)
    assert again.trained == 0 and len(optuna.load_study(
        study_name="tune:search", storage=storage_for(place.url(study))).trials) == 8
    # what a dry run or a launch says is left: nothing (a launch once started jobs for 8 trials and 2
    # final runs, and the dry run said "would train 0 runs, then its 8-trial search"), or with more
    # trials asked those trials, and the final runs again
    from tests.helpers import vs_here

    finished = Study.load(path, runs_dir=tmp_path / "runs")
    assert finished.to_train() == 0
    finished.set_trials(11)
    assert finished.to_train() == 3 + 2
    runs = ["--runs-dir", tmp_path / "runs", "--no-report"]
    dry = vs_here("study", "run", path, *runs, "--dry-run")
    assert "dry run: nothing to train: every run is finished" in dry.stdout, dry.stdout + dry.stderr
    dry = vs_here("study", "run", path, *runs, "--dry-run", "--trials", "11")
    assert ("would train 3 more trials of its 11-trial search and its final runs again if the best values "
            "change here") in " ".join(dry.stdout.split()), dry.stdout + dry.stderr
    again = vs_here("study", "run", path, *runs)  # it said "3/3 runs finished"
    assert "nothing to do: all 3 runs and its 8-trial search are finished" in again.stdout, again.stdout
    assert "then an 8-trial search and 2 final runs" in again.stdout  # not "a 8-trial"


def test_a_search_keeps_its_objective_unless_nothing_was_judged_on_it(tmp_path):
    """`--set search.objective=val_loss` after trials judged on val_accuracy: Optuna kept the study's
    maximize direction and chose the best among accuracies and losses alike (the worst loss, 2.31, as
    the best), and search-best trained that configuration (10% test accuracy). It is one error, in
    the dry run too; a search none of whose trials was judged (every one failed) starts anew in the
    new objective's direction."""
    import optuna

    from tests.helpers import assert_user_error, vs_here
    from visionstudy.store.db import storage_for

    lr = {"type": "float", "low": 1e-3, "high": 1e-1, "log": True}
    path = write(tmp_path, "obj", model={"name": "mlp", "hidden": [8]}, train={**TINY["train"], "epochs": 1},
                 search={"sampler": "random", "trials": 2, "space": {"train.optimizer.lr": lr},
                         "final": {"seeds": 1}})
    runs = ["--runs-dir", tmp_path / "runs", "--only", "search", "--no-report", "--quiet"]
    assert vs_here("study", "run", path, *runs).returncode == 0
    loss = ["--set", "search.objective=val_loss", "--trials", "3"]
    for dry in ([], ["--dry-run"]):
        assert_user_error(vs_here("study", "run", path, *runs, *loss, *dry),
                          "search.objective: the search's 2 trials were judged on val_accuracy; the study "
                          "now asks for val_loss (minimize); a search keeps its objective")
    # its trials' budget too: trials of 1 epoch and of 3 would be ranked together
    for dry in ([], ["--dry-run"]):
        assert_user_error(vs_here("study", "run", path, *runs, "--set", "search.trial_epochs=3", "--trials",
                                  "3", *dry),
                          "search.trial_epochs: the search's 2 trials trained 1 epoch each; the study now "
                          "trains them 3", "values of two budgets are not comparable")
    storage = storage_for(f"sqlite:///{tmp_path / 'runs' / 'obj' / 'study.db'}")
    assert len(optuna.load_study(study_name="obj:search", storage=storage).trials) == 2  # nothing asked
    # every trial failed (a learning rate that diverges): nothing was judged, the search starts anew
    bad = write(tmp_path, "nan", model={"name": "mlp", "hidden": [8]},
                train={**TINY["train"], "epochs": 1, "optimizer": {"name": "sgd", "lr": 0.1}},
                search={"sampler": "random", "trials": 1, "final": {"seeds": 1},
                        "space": {"train.optimizer.lr": {"type": "float", "low": 1e8, "high": 1e9}}})
    assert vs_here("study", "run", bad, *runs).returncode == 1
    fixed = ["--set", "search.objective=val_loss", "--set",
             "search.space.train.optimizer.lr={type: float, low: 0.01, high: 0.1}"]
    again = vs_here("study", "run", bad, *runs, *fixed)
    assert again.returncode == 0, again.stdout + again.stderr
    storage = storage_for(f"sqlite:///{tmp_path / 'runs' / 'nan' / 'study.db'}")
    search = optuna.load_study(study_name="nan:search", storage=storage)
    assert search.direction.name == "MINIMIZE" and search.user_attrs["objective"] == "val_loss"


def test_a_redefined_run_whose_results_were_deleted_trains_anew(tmp_path):
    """A finished run's folder deleted, then its definition changed: the new definition's queued
    trial was discarded as a duplicate of the old completed one, and `study run` said "nothing to do:
    its 1 run is finished" while `status` said 0/1 done."""
    from tests.helpers import vs_here

    fields = {"model": {"name": "mlp", "hidden": [8]}, "variants": {"a": {}}}
    path = write(tmp_path, "redef", **fields, train={**TINY["train"], "epochs": 1})
    runs = ["--runs-dir", tmp_path / "runs", "--no-report", "--quiet"]
    assert vs_here("study", "run", path, *runs).returncode == 0
    shutil.rmtree(tmp_path / "runs" / "redef" / "a")
    path = write(tmp_path, "redef", **fields, train={**TINY["train"], "epochs": 2})
    assert vs_here("study", "run", path, *runs).returncode == 0
    history = (tmp_path / "runs" / "redef" / "a" / "seed-0" / "history.csv").read_text().splitlines()
    assert len(history) == 1 + 2  # trained anew, with the new definition's 2 epochs
    assert "redef: 1/1 runs done" in vs_here("study", "status", path, "--runs-dir", tmp_path / "runs").stdout


def test_more_trials_that_find_better_values_train_the_final_runs_again(tmp_path):
    """`--trials 2` after a 1-trial search whose second trial was better stopped with "already holds
    runs search-best/seed-0 with a different config", though the dry run said the final runs train
    again if the best values change. The old final run is moved to search/previous-best/ (kept) and
    search-best trains with the new values; a later call with the file's own trials changes nothing."""
    from tests.helpers import vs_here

    path = write(tmp_path, "better", model={"name": "mlp", "hidden": [16]},
                 train={**TINY["train"], "epochs": 2},
                 search={"sampler": "random", "seed": 2, "trials": 1, "final": {"seeds": 1},
                         "space": {"train.optimizer.lr": {"choices": [1e-6, 0.05]}}})
    runs = ["--runs-dir", tmp_path / "runs", "--only", "search", "--no-report", "--quiet"]
    study_dir = tmp_path / "runs" / "better"
    lr = lambda run: yaml.safe_load((run / "config.yaml").read_text())["train"]["optimizer"]["lr"]  # noqa: E731
    assert vs_here("study", "run", path, *runs).returncode == 0
    assert lr(study_dir / "search" / "trial-000") == lr(study_dir / "search-best" / "seed-0") == 1e-6
    before = json.loads((study_dir / "search-best" / "seed-0" / "metrics.json").read_text())
    more = vs_here("study", "run", path, *runs[:-1], "--trials", "2")
    assert more.returncode == 0, more.stdout + more.stderr
    assert "the search's best values changed: search-best/seed-0, trained with the old ones, moved to " \
        in " ".join(more.stdout.split()), more.stdout
    assert lr(study_dir / "search-best" / "seed-0") == 0.05  # trained again, with the better values
    (kept,) = (study_dir / "search" / "previous-best").glob("*/seed-0")
    assert lr(kept) == 1e-6 and json.loads((kept / "metrics.json").read_text()) == before
    status = vs_here("study", "status", path, "--runs-dir", tmp_path / "runs")
    assert "better: 1/2 runs done" in status.stdout  # search-best; the baseline waits (--only search)
    assert "search: 2 of 2 trials" in status.stdout
    again = vs_here("study", "run", path, *runs)  # the file's 1 trial: nothing to train, nothing moved
    assert again.returncode == 0 and len(list((study_dir / "search" / "previous-best").iterdir())) == 1


def test_the_final_runs_stay_in_the_study_while_its_search_runs_again(tmp_path, monkeypatch):
    """`--trials N` on a finished search rewrote the manifest without search-best until the new
    trials had trained: `study status` and a report written meanwhile (or after an interrupt) lost
    the final runs. Those trained with the best values found so far stay planned."""
    import visionstudy.study as study_module
    from visionstudy.study.manifest import read_manifest
    from visionstudy.study.search import trained_best

    study = load_study(write(tmp_path, "keep", train={**TINY["train"], "epochs": 1},
                             search={"sampler": "random", "seed": 1, "trials": 1, "final": {"seeds": 1},
                                     "space": {"model.hidden": [[8], [16]]}}))
    place = Placement(tmp_path / "runs")
    run_all(study, place, progress=False, only=["search"])
    best = trained_best(study, place)
    assert best is not None and set(best) == {"model.hidden"}
    seen = []
    real = study_module.run_search

    def noting(driver, s, p):  # the manifest as the new trials start
        seen.append(read_manifest(p.study_dir(s)).variants)
        return real(driver, s, p)

    monkeypatch.setattr(study_module, "run_search", noting)
    more = load_study(write(tmp_path, "keep", train={**TINY["train"], "epochs": 1},
                            search={"sampler": "random", "seed": 1, "trials": 2, "final": {"seeds": 1},
                                    "space": {"model.hidden": [[8], [16]]}}))
    full, _ = run_all(more, place, progress=False, only=["search"])
    assert seen == [["baseline", "search-best"]]
    assert [r.key for r in full.runs if r.variant == "search-best"] == ["search-best/seed-0"]  # once
    (place.study_dir(study) / "search-best" / "seed-0" / "metrics.json").unlink()
    assert trained_best(more, place) is None  # a final run without results: not kept planned


@pytest.mark.parametrize("search, overrides", [
    ({"trial_epochs": 1}, []),
    ({"base": {"train": {"epochs": 6}}}, ["train.epochs=1"]),  # --set shortens the trials the pruner sizes
])
def test_a_trial_that_trained_every_epoch_is_complete_not_pruned(tmp_path, search, overrides):
    """Hyperband judges a one-epoch trial at its last epoch; pruning it then threw away a full-budget
    value (2 of 4 trials `pruned after epoch 1`, the search's best chosen from the rest)."""
    space = {"train.optimizer.lr": {"type": "float", "low": 1e-4, "high": 1e-1, "log": True}}
    study = load_study(write(tmp_path, "whole", search={
        "sampler": "random", "pruner": "hyperband", "trials": 4, "seed": 0, "final": {"seeds": 1},
        "space": space, **search}), overrides)
    from visionstudy.study.search import trial_epochs

    assert trial_epochs(study) == 1  # the pruner's largest resource: what a trial trains
    place = Placement(tmp_path / "runs")
    run_all(study, place, progress=False)
    import optuna

    from visionstudy.store.db import storage_for

    trials = optuna.load_study(study_name="whole:search", storage=storage_for(place.url(study))).trials
    assert [t.state.name for t in trials] == ["COMPLETE"] * 4
    assert all(list(t.intermediate_values) == [1] for t in trials)


def test_a_search_whose_every_trial_failed_fails_and_a_changed_parameter_kind_is_one_error(tmp_path):
    """A search whose trials all failed (each diverged here) exited 0 after "0/0 runs finished": it
    exits 1 naming the last error and how to go on. Its space then given a parameter of another kind
    (log scale dropped) ended in Optuna's ValueError traceback; a moved range is a search going on."""
    from tests.helpers import assert_user_error, vs_here

    lr = {"type": "float", "low": 1e8, "high": 1e9, "log": True}
    path = write(tmp_path, "nan", model={"name": "mlp", "hidden": [8]},
                 train={**TINY["train"], "epochs": 1, "optimizer": {"name": "sgd", "lr": 0.1}},
                 search={"sampler": "random", "trials": 2, "space": {"train.optimizer.lr": lr},
                         "final": {"seeds": 1}})
    runs = ["--runs-dir", tmp_path / "runs", "--only", "search", "--no-report", "--quiet"]
    failed = vs_here("study", "run", path, *runs)
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert ("the search failed: none of its 2 trials completed (2 failed; trial-001: the training loss "
            "became NaN") in " ".join(failed.stderr.split())
    assert "ask for more trials (`--trials N`)" in failed.stderr and "runs failed" not in failed.stderr
    status = vs_here("study", "status", path, "--runs-dir", tmp_path / "runs")  # each trial's error too
    said = " ".join(status.stderr.split())
    assert "search/trial-000, search/trial-001: the training loss became NaN" in said
    work = vs_here("study", "work", tmp_path / "runs" / "nan")  # a cluster job's pull worker says it too
    assert work.returncode == 1 and "the search failed:" in work.stderr and "runs failed" not in work.stderr
    changed = ["--set", "search.space.train.optimizer.lr={type: float, low: 0.01, high: 0.1}"]
    for dry in ([], ["--dry-run"]):
        refused = vs_here("study", "run", path, *runs, "--trials", "3", *changed, *dry)
        assert_user_error(refused, "search.space.train.optimizer.lr: the search's trials drew it from "
                          "FloatDistribution(high=1000000000.0, log=True", "undo the change")
        assert "to train" not in refused.stdout  # the one error, not a dry run's plan table before it
    moved = ["--set", "search.space.train.optimizer.lr={type: float, low: 0.01, high: 0.1, log: true}"]
    again = vs_here("study", "run", path, *runs, "--trials", "3", *moved)
    assert again.returncode == 0, again.stdout + again.stderr
    assert (tmp_path / "runs" / "nan" / "search-best" / "seed-0" / "metrics.json").is_file()


def test_only_search_trains_the_trials_and_the_final_runs_and_nothing_else(tmp_path):
    """`--only search` used to train every other variant after the search (seed 002's recipe trained
    `augmented` for 50 epochs): the final training must keep `only`."""
    study = load_study(write(
        tmp_path, "onlysearch", train={**TINY["train"], "epochs": 2},
        variants={"a": {}, "b": {"model": {"dropout": 0.1}}},
        search={"sampler": "random", "pruner": "none", "trials": 2, "seed": 1,
                "space": {"model.hidden": [[8], [16]]}, "final": {"seeds": 1}}))
    place = Placement(tmp_path / "runs")
    full, outcome = run_all(study, place, progress=False, only=["search"])
    assert [key for key, _ in outcome.finished] == ["search-best/seed-0"]
    study_dir = place.study_dir(study)
    assert not (study_dir / "a").exists() and not (study_dir / "b").exists()
    assert (study_dir / "search-best" / "seed-0" / "metrics.json").is_file()
    assert set(completed_per_key(place, "onlysearch")) == {"search-best/seed-0"}
    # a later call that leaves the finished search out keeps its final runs planned: the manifest
    # lost them, and with it `study status`, the API's results and the report (4 of 6 variants)
    from visionstudy.study.manifest import read_manifest

    later, outcome = run_all(study, place, progress=False, only=["a"])
    assert [key for key, _ in outcome.finished] == ["a/seed-0"]  # the finals are not trained again
    assert [r.key for r in later.runs if r.variant == "search-best"] == ["search-best/seed-0"]
    manifest = read_manifest(study_dir)
    assert "search-best" in manifest.variants and "search-best/seed-0" in [r.key for r in manifest.runs]
    from visionstudy.api import Study as ApiStudy

    status = ApiStudy.load(study_dir).status().set_index("key")["status"]
    assert status["search-best/seed-0"] == "done" and status["a/seed-0"] == "done"


def test_run_study_counts_a_failed_run(tmp_path, monkeypatch):
    exploding = {**TINY["train"], "optimizer": {"name": "sgd", "lr": 1.0e6}}
    study = load_study(write(tmp_path, "nan", train=exploding))
    monkeypatch.chdir(tmp_path)  # a --db elsewhere, relative to this directory
    outcome = run_study(study, Placement(tmp_path / "runs", "sqlite:///elsewhere.db"), progress=False)
    assert outcome.done == 0 and len(outcome.failed) == 1 and "baseline/seed-0" in outcome.failed[0][0]
    assert not (tmp_path / "runs" / "nan" / "study.db").exists()
    monkeypatch.chdir(tmp_path / "runs")  # the folder remembers its database: no --db from here on
    # the error is kept where users look later: `study status`, the API's status, the study report
    from visionstudy.api import Study
    from visionstudy.report.run_report import ReportOptions
    from visionstudy.report.study_report import build_study_report
    from visionstudy.study.status import failure_lines, study_status

    view = study_status(str(tmp_path / "runs" / "nan"), [], tmp_path / "runs", None)
    assert view.status == {"baseline/seed-0": "failed"}
    assert list(view.errors) == ["baseline/seed-0"] and "NaN or infinite" in view.errors["baseline/seed-0"]
    assert failure_lines({"a/seed-0": "x", "a/seed-1": "x", "b/seed-0": "y"}) == [
        "a/seed-0, a/seed-1: x", "b/seed-0: y"]
    frame = Study.load(write(tmp_path, "nan", train=exploding), runs_dir=tmp_path / "runs").status()
    assert frame.loc[0, "error"] == view.errors["baseline/seed-0"]
    html = build_study_report(tmp_path / "runs" / "nan", tmp_path / "rep", ReportOptions(images=False))
    assert "1 run failed: baseline/seed-0: the training loss became NaN or infinite" in (
        html.parent / "report.md").read_text()


def test_the_final_runs_wait_for_the_trials_other_workers_train(tmp_path):
    """A driver whose own trials are done chooses the best only once every trial is: a SLURM job
    that finished its trials first planned `search-best` from them while the other job still
    trained the best one, and that job then failed ("already holds runs search-best/seed-0 with a
    different config"). Here the trial 'another worker' trains is told its value (the best) only
    after this driver's two trials ended."""
    import socket
    import threading

    from optuna.trial import TrialState

    from visionstudy.study.search import search_study, suggest

    study = load_study(write(tmp_path, "wait", train={**TINY["train"], "epochs": 2}, search={
        "sampler": "random", "trials": 3, "space": {"model.hidden": [[8], [16], [32]]},
        "final": {"seeds": 1}}))
    place = Placement(tmp_path / "runs")
    place.study_dir(study).mkdir(parents=True)
    ostudy = search_study(study, place.url(study))
    worker = {"host": socket.gethostname(), "pid": os.getpid(), "driver": os.getpid()}  # alive
    ostudy.enqueue_trial({"model.hidden": "[32]"}, user_attrs={"folder": "trial-000", "worker": worker})
    elsewhere = ostudy.ask()
    suggest(elsewhere, "model.hidden", study.config.search.space["model.hidden"])

    def finish_elsewhere() -> None:
        deadline = time.monotonic() + 300
        try:
            ended = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
            while len(ostudy.get_trials(deepcopy=False, states=ended)) < 2 and time.monotonic() < deadline:
                time.sleep(0.2)
            time.sleep(1.5)  # the driver looks again in the meantime: it must still wait
        finally:  # whatever happened: the driver must not wait for ever
            ostudy.tell(elsewhere, 1.0)

    teller = threading.Thread(target=finish_elsewhere)
    teller.start()
    lines: list[str] = []
    full, outcome = run_all(study, place, progress=False, echo=lines.append)
    teller.join()
    assert "search: waiting for 1 trial training elsewhere before the final runs" in lines
    assert outcome.failed == [] and outcome.done == 2  # baseline, search-best/seed-0
    final = yaml.safe_load((place.study_dir(study) / "search-best" / "seed-0" / "config.yaml").read_text())
    assert final["model"]["hidden"] == [32]  # the best trial's, trained elsewhere


def test_cv_taken_in_and_out_within_one_second_keeps_each_set_aside_apart(tmp_path, monkeypatch):
    """The set-aside folders were named by the second: `cv` taken out within the second it was taken
    in (runs of a fraction of a second) moved the fold runs into the first set-aside's folder,
    inside the run kept there, which then could not go back whole."""
    monkeypatch.setattr(time, "strftime", lambda fmt, *when: "20261207-120000")  # one second
    place = Placement(tmp_path / "runs")
    fields = {"train": {**TINY["train"], "epochs": 1}, "seeds": 1, "variants": {"a": {}}}
    run_all(load_study(write(tmp_path, "tick", **fields)), place, progress=False)
    home = place.study_dir("tick")
    before = (home / "a" / "seed-0" / "metrics.json").read_bytes()
    run_all(load_study(write(tmp_path, "tick", **fields, cv={"folds": 2, "variants": ["a"]})), place,
            progress=False)
    _, outcome = run_all(load_study(write(tmp_path, "tick", **fields)), place, progress=False)
    assert outcome.failed == [] and outcome.trained == 0 and outcome.done == 1, outcome
    assert (home / "a" / "seed-0" / "metrics.json").read_bytes() == before  # the very run, back
    assert sorted(p.name for p in (home / "a" / "seed-0").iterdir() if p.name.startswith("fold")) == []
    kept = home / "a" / "previous"
    assert [p.name for p in kept.iterdir()] == ["20261207-120000-2"]  # the first, emptied, is gone
    assert len(list((kept / "20261207-120000-2" / "seed-0").glob("fold-*/metrics.json"))) == 2


def test_the_newest_set_aside_copy_comes_back_tenth_after_ninth(tmp_path):
    """Set-aside folders of one second are `<stamp>`, `-2`, ... `-9`, `-10`: sorted by name, `-9` came
    after `-10`, and an older copy of a run was moved back instead of the newest."""
    import shutil

    place = Placement(tmp_path / "runs")
    fields = {"train": {**TINY["train"], "epochs": 1}, "seeds": 1, "variants": {"a": {}}}
    path = write(tmp_path, "tenth", **fields)
    run_all(load_study(path), place, progress=False)
    home = place.study_dir("tenth")
    kept = home / "a" / "previous"
    for n in (9, 10):
        shutil.copytree(home / "a" / "seed-0", kept / f"20261207-120000-{n}" / "seed-0")
    shutil.rmtree(home / "a" / "seed-0")
    _, outcome = run_all(load_study(path), place, progress=False)
    assert outcome.failed == [] and outcome.trained == 0 and outcome.done == 1, outcome
    assert (home / "a" / "seed-0" / "metrics.json").is_file()
    assert [p.name for p in kept.iterdir()] == ["20261207-120000-9"]  # the tenth came back, emptied


def test_four_workers_ten_runs_one_worker_killed_sqlite(tmp_path):
    # b's runs last seconds, not a third of one: the poller, slow on a busy machine, must see one
    # training before the study ends (it once did not, in a full suite on a fresh clone)
    slow = {"model": {"batch_norm": True}, "train": {"epochs": 12}}
    path = write(tmp_path, "four", seeds=5, variants={"a": {}, "b": slow})
    runs = tmp_path / "runs"
    cmd = [sys.executable, "-m", "visionstudy", "study", "run", str(path), "--runs-dir", str(runs),
           "--workers", "4", "--quiet", "--no-report"]
    url = Placement(runs).url("four")
    proc, victim, key = kill_one_worker_mid_run(cmd, url, "four", runs / "four")
    check_killed_worker_study(proc, url, "four", runs, victim, key, 10)


def test_status_names_the_running_runs_whose_worker_is_gone(tmp_path):
    """A run whose worker was killed outright (SIGKILL, a lost node) read as running for ever in
    `study status` without SLURM to ask. A worker whose process here ended, or that sent no
    heartbeat for the grace period, is told apart from a live one (CLI and API)."""
    from optuna.trial import TrialState

    from tests.helpers import vs
    from visionstudy.study.execute import plan

    place = Placement(tmp_path / "runs")
    study = load_study(str(write(tmp_path, "gone", seeds=1, variants={"a": {}, "b": {}, "c": {}})))
    plan(study, place)
    ended = int(subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                               capture_output=True, text=True).stdout)
    store = RunStore(place.url("gone"), "gone", heartbeat=1, grace=2)
    live = store.claim({"b/seed-0"})  # this process: alive, and beating below
    far = store.claim({"c/seed-0"})  # a worker on another node, whose heartbeat stops
    store.storage.set_trial_user_attr(far.trial_id, "worker", {"host": "node-7", "pid": 1})
    store.claim({"a/seed-0"}, worker_pid=ended)  # its process here has ended (claimed last: a claim
    #                                              first returns the runs of ended processes)
    assert store.silent() == ["a/seed-0"]
    time.sleep(3.2)  # past the grace period, at SQLite's one-second clock
    store.heartbeat(live.trial_id)
    assert store.silent() == ["a/seed-0", "c/seed-0"]
    beating = threading.Event()

    def beat() -> None:  # b's worker stays alive while the status process starts (seconds when busy)
        while not beating.wait(0.3):
            store.heartbeat(live.trial_id)

    beater = threading.Thread(target=beat, daemon=True)
    beater.start()
    try:
        told = vs("study", "status", place.study_dir("gone"), env={"VISIONSTUDY_GRACE_SECONDS": "2"})
    finally:
        beating.set()
        beater.join()
    err = " ".join(told.stderr.split())
    assert told.returncode == 0, told.stderr
    assert "2 of the running runs (a/seed-0, c/seed-0) have no live worker" in err, err
    import visionstudy

    frame = visionstudy.Study.load(str(place.study_dir("gone")), runs_dir=place.runs_dir).status()
    frame = frame.set_index("key")
    assert (frame["status"] == "running").all()
    assert frame.loc["a/seed-0", "error"].startswith("no live worker")
    assert not isinstance(frame.loc["b/seed-0", "error"], str)  # a live worker: no note
    assert {t.state for t in store.trials()} == {TrialState.RUNNING}  # status only looked


def test_planning_the_same_study_again_leaves_its_manifest_as_it_was(tmp_path):
    """A re-run with nothing to do does not rewrite the manifest (31 MB at 10,001 runs); a changed
    plan (here: one more seed) does."""
    from visionstudy.study import load_study
    from visionstudy.study.execute import plan

    place = Placement(tmp_path / "runs")
    plan(load_study(str(write(tmp_path, "same", seeds=1))), place)
    manifest = tmp_path / "runs" / "same" / "manifest.json"
    before = manifest.stat().st_mtime_ns
    os.utime(manifest, ns=(before - 10**9, before - 10**9))
    plan(load_study(str(write(tmp_path, "same", seeds=1))), place)
    assert manifest.stat().st_mtime_ns == before - 10**9
    plan(load_study(str(write(tmp_path, "same", seeds=2))), place)
    assert manifest.stat().st_mtime_ns != before - 10**9
    assert json.loads(manifest.read_text())["runs"][-1]["key"].endswith("seed-1")


def test_status_of_a_study_with_hundreds_of_variants_prints_every_row_as_plain_text(tmp_path):
    from tests.helpers import vs_here

    rates = [round(1e-4 * (i + 1), 6) for i in range(240)]
    study = write(tmp_path, "wide", seeds=1, variants={"base": {}},
                  sweep={"from": "base", "train.optimizer.lr": rates})
    done = vs_here("study", "status", study, "--runs-dir", tmp_path / "runs")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].split() == ["variant", "runs", "done", "running", "waiting", "failed", "missing", "not",
                                "queued"]
    rows = [line.split() for line in lines[1:] if line.startswith("base")]
    assert len(rows) == 241 and all(r[1:] == ["1", "0", "0", "0", "0", "0", "1"] for r in rows)
    assert "wide: 0/241 runs done" in done.stdout


def test_a_rerun_takes_the_recorded_plan_and_validates_only_the_runs_it_trains(tmp_path):
    """The same study file planned again is not expanded again (a 10,001-run sweep's re-run spent
    most of its time there): its runs come from the manifest, equal to the expanded ones, and only
    a run that trains is validated. A changed file is expanded whole."""
    from visionstudy.api import Study

    path = write(tmp_path, "again", seeds=3, train={**TINY["train"], "epochs": 1})
    runs = tmp_path / "runs"
    first = Study.load(path, runs_dir=runs)
    assert first.run(report=False, quiet=True).trained == 3
    again = Study.load(path, runs_dir=runs)
    assert [r.checked for r in again.spec.runs] == [None] * 3  # from the manifest
    assert [(r.key, r.config_hash) for r in again.spec.runs] == \
        [(r.key, r.config_hash) for r in first.spec.runs]
    assert again.spec.runs[0].config == first.spec.runs[0].config  # validated on first use, equal
    (runs / "again" / "baseline" / "seed-2" / "metrics.json").unlink()
    again = Study.load(path, runs_dir=runs)
    outcome = again.run(report=False, quiet=True)
    assert [k for k, _ in outcome.finished] == ["baseline/seed-2"]
    assert [r.key for r in again.spec.runs if "config" in r.__dict__] == ["baseline/seed-2"]
    changed = write(tmp_path, "again", seeds=3, train={**TINY["train"], "epochs": 2})
    with pytest.raises(StorageError, match="holds finished runs of another definition: 3 runs"):
        Study.load(changed, runs_dir=runs).run(report=False, quiet=True)
    assert all(r.checked is not None for r in Study.load(changed, runs_dir=runs).spec.runs)
    assert all(r.checked is not None for r in Study.load(path, runs_dir=tmp_path / "elsewhere").spec.runs)


def test_a_pull_worker_takes_the_planned_runs_from_the_manifest_without_expanding_or_torch(tmp_path):
    """`study work` reads the study.yaml a launcher wrote: its runs come from the manifest (each
    validated when it is about to train), as planned, and reading them imports no torch."""
    from visionstudy.api import Study
    from visionstudy.study.execute import write_definition

    path = write(tmp_path, "pulled", seeds=2, variants={"a": {}, "b": {"model": {"dropout": 0.1}}})
    planned = Study.load(path, runs_dir=tmp_path / "runs")
    write_definition(planned.spec, planned.dir)
    code = ("import sys\nfrom pathlib import Path\nfrom visionstudy.study.execute import load_study_dir\n"
            f"s = load_study_dir(Path({str(planned.dir)!r}))\n"
            "print([(r.key, r.config_hash, r.checked is None) for r in s.runs], 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    runs = [(r.key, r.config_hash, True) for r in planned.spec.runs]
    assert out.stdout.strip() == f"{runs} False"


WATCH_TORCH = """
import importlib.abc, os, sys
class Watch(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name == "torch":
            with open(os.environ["TORCH_PIDS"], "a") as f:
                f.write(f"{os.getpid()}\\n")
        return None
sys.meta_path.insert(0, Watch())
with open(os.environ["TORCH_PIDS"], "a") as f:
    f.write(f"driver {os.getpid()}\\n")
from visionstudy.cli import main
sys.argv = ["visionstudy", *sys.argv[1:]]
main()
"""


def test_a_pull_worker_plans_while_its_workers_import_torch_and_they_check_each_models_shape(tmp_path):
    """`study work`'s own process never imports torch (its workers fork first and import it while
    it opens the database and plans); a model the images cannot go through (planned as a
    launcher plans, before the shapes are checked) fails in the worker with the one clear error,
    and the other runs train."""
    from visionstudy.api import Study
    from visionstudy.study.execute import write_definition
    from visionstudy.validate import shapes_later

    path = write(tmp_path, "shrink", variants={"ok": {}, "deep": {"model": {
        "channels": [4, 4, 4, 4], "padding": "valid"}}})
    with shapes_later():
        planned = Study.load(path, runs_dir=tmp_path / "runs")
    write_definition(planned.spec, planned.dir)
    pids = tmp_path / "pids"
    out = subprocess.run([sys.executable, "-c", WATCH_TORCH, "study", "work", str(planned.dir)],
                         capture_output=True, text=True, timeout=300,
                         env={**os.environ, "TORCH_PIDS": str(pids)})
    assert out.returncode == 1 and "Traceback" not in out.stderr, out.stderr
    assert "run deep/seed-0: invalid config" in out.stdout and "shrinks the 8x8 input" in out.stdout
    err = " ".join(out.stderr.split())
    assert "1 of 2 runs failed:" in err and "deep/seed-0: run deep/seed-0: invalid config" in err
    assert "done ok/seed-0" in out.stdout
    assert (planned.dir / "ok" / "seed-0" / "metrics.json").is_file()
    lines = pids.read_text().split()
    driver = lines[lines.index("driver") + 1]
    importers = [p for p in lines if p.isdigit() and p != driver]
    assert driver not in lines[lines.index("driver") + 2:] and importers, lines  # only its workers


def test_every_recipe_planned_again_gives_the_runs_it_expands_to(tmp_path):
    """The manifest's resolved configs validate back to the configs and hashes the study file
    expands to, for every recipe without a search (a search's final runs join the plan later)."""
    from visionstudy.study import list_recipes
    from visionstudy.study.execute import load_planned, write_definition
    from visionstudy.study.schema import read_study

    place = Placement(tmp_path / "runs")
    checked = 0
    for name in list_recipes():
        raw, source = read_study(f"recipe:{name}")
        expanded = load_planned(raw, source, [], place)
        write_definition(expanded, place.study_dir(expanded))
        planned = load_planned(raw, source, [], place)
        if expanded.config.search is not None:
            assert all(r.checked is not None for r in planned.runs)
            continue
        assert [r.key for r in planned.runs] == [r.key for r in expanded.runs]
        for a, b in zip(planned.runs, expanded.runs, strict=True):
            assert a.checked is None and a.config == b.config and a.config_hash == b.config_hash
        checked += 1
    assert checked >= 5


def test_a_search_driver_killed_right_after_asking_has_named_itself_and_its_trial_is_queued_again(tmp_path):
    """Optuna's `ask` makes a trial RUNNING at once: the driver's name is written on the queued
    trial before it, so a driver killed right after asking (before anything else) leaves a trial
    that the next driver on this machine queues again, with the same values."""
    import socket

    from optuna.trial import TrialState

    from visionstudy.study.samplers import make_sampler
    from visionstudy.study.search import ask_distinct, recover_stopped, search_study

    study = load_study(write(tmp_path, "asked", search={"sampler": "random", "trials": 2, "space": {
        "train.optimizer.lr": {"type": "float", "low": 1e-4, "high": 1e-2, "log": True}}}))
    ostudy = search_study(study, Placement(tmp_path / "runs").url(study))
    gone = int(subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                              capture_output=True, text=True).stdout)  # a process that has ended
    s = study.config.search
    trial, values = ask_distinct(ostudy, s, make_sampler(s), {"host": socket.gethostname(), "pid": gone,
                                                             "driver": gone})
    # the driver is killed here, before it writes anything else
    recover_stopped(ostudy)
    trials = ostudy.get_trials(deepcopy=False)
    assert [t.state for t in trials] == [TrialState.FAIL, TrialState.WAITING]
    assert trials[1].system_attrs["fixed_params"] == trials[0].params == {
        "train.optimizer.lr": values["train.optimizer.lr"]}


def test_a_study_is_refused_a_folder_that_is_a_training_run_or_holds_other_files(tmp_path):
    """`visionstudy train x.yaml` and a study named x share runs/x: the study must not plan, queue
    and train into the run's folder (it did, and its report then refused the folder)."""
    from visionstudy.errors import ConfigError
    from visionstudy.experiment import run_experiment
    from visionstudy.validate import load_config

    place = Placement(tmp_path / "runs")
    run_experiment(load_config(write(tmp_path, "x", train={**TINY["train"], "epochs": 1})),
                   place.study_dir("x"), quiet=True)
    before = sorted(p.name for p in place.study_dir("x").iterdir())
    with pytest.raises(ConfigError, match=r"runs/x is the folder of a training run .* nothing was written"):
        run_all(load_study(write(tmp_path, "x")), place, progress=False)
    from visionstudy.api import Study

    with pytest.raises(ConfigError, match=r"runs/x is the folder of a training run"):
        Study.load(write(tmp_path, "x"), runs_dir=place.runs_dir).launch("slurm")  # before sbatch
    assert sorted(p.name for p in place.study_dir("x").iterdir()) == before
    notes = place.study_dir("y")
    notes.mkdir()
    (notes / "notes.txt").write_text("mine")
    says = r"runs/y is not empty and is not a study folder \(it holds notes.txt\)"
    with pytest.raises(ConfigError, match=says):
        run_all(load_study(write(tmp_path, "y")), place, progress=False)
    assert [p.name for p in notes.iterdir()] == ["notes.txt"]
    # a study's own folder, planned before (its database is all it may hold yet), runs again
    run_all(load_study(write(tmp_path, "z")), place, progress=False)
    (place.study_dir("z") / "manifest.json").unlink()
    (place.study_dir("z") / "study.yaml").unlink()
    _, again = run_all(load_study(write(tmp_path, "z")), place, progress=False)
    assert again.done == 1 and again.trained == 0


def test_a_pull_worker_waits_out_a_requeue_in_flight_before_it_leaves(tmp_path, monkeypatch):
    """A stopped job re-queues its run in two steps (its trial fails, then a copy is queued). A pull
    worker that looked in between saw the run failed, left, and the copy waited with no worker
    (a cluster test under load, 2026-12-05). It now looks again for SETTLE_SECONDS first."""
    import threading

    from optuna.trial import TrialState

    from visionstudy.store.db import retry_callback
    from visionstudy.study.execute import Driver

    study = load_study(write(tmp_path, "settle", train={**TINY["train"], "epochs": 1},
                            variants={"a": {}, "b": {}}))
    place = Placement(tmp_path / "runs")
    run_all(study, place, only=["a"], progress=False)  # a done; b queued
    store = RunStore(place.url(study), study.name)
    claim = store.claim({"b/seed-0"}, os.getpid())  # b held by another job (alive) that is stopping
    assert claim is not None
    queue_copy = threading.Timer(1.0, lambda: retry_callback(None)(store.study,
                                                                   store.storage.get_trial(claim.trial_id)))
    lingers = Driver.lingers

    def fail_first(driver: Driver, *args: object) -> bool:  # the other job's first step, as this worker looks
        if not queue_copy.is_alive() and not queue_copy.finished.is_set():
            store.storage.set_trial_state_values(claim.trial_id, state=TrialState.FAIL)
            queue_copy.start()  # its second step, a second later
        return lingers(driver, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(Driver, "lingers", fail_first)
    try:
        _, outcome = run_all(study, place, progress=False, linger=True)
    finally:
        queue_copy.join()
    assert (outcome.done, outcome.failed, outcome.trained) == (2, [], 1)
    assert (place.study_dir(study) / "b/seed-0/metrics.json").is_file()


def test_a_pull_worker_queues_a_run_whose_requeuer_died_between_its_two_steps(tmp_path, monkeypatch):
    """The other job is killed after failing its trial and before queueing the copy: the run would
    read as failed (with no error) for ever. The worker queues the copy itself after SETTLE_SECONDS
    and trains it; a run that failed with an error is left failed."""
    from optuna.trial import TrialState

    from visionstudy.study.execute import Driver

    study = load_study(write(tmp_path, "orphan", train={**TINY["train"], "epochs": 1},
                            variants={"a": {}, "b": {}, "c": {}}))
    place = Placement(tmp_path / "runs")
    run_all(study, place, only=["a"], progress=False)  # a done; b and c queued
    store = RunStore(place.url(study), study.name)
    broken, claim = store.claim({"c/seed-0"}, os.getpid()), store.claim({"b/seed-0"}, os.getpid())
    assert broken is not None and claim is not None  # both held by other jobs
    lingers = Driver.lingers

    def fail_only(driver: Driver, *args: object) -> bool:  # as this worker looks: one job's run
        if store.status(["b/seed-0"]) == {"b/seed-0": "running"}:  # breaks, the other job dies
            store.fail(broken, "CUDA out of memory")  # half-way through re-queueing its run
            store.storage.set_trial_state_values(claim.trial_id, state=TrialState.FAIL)
        return lingers(driver, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(Driver, "lingers", fail_only)
    _, outcome = run_all(study, place, progress=False, linger=True)
    assert (outcome.done, outcome.trained) == (2, 1) and [k for k, _ in outcome.failed] == ["c/seed-0"]
    assert store.status(["b/seed-0", "c/seed-0"]) == {"b/seed-0": "done", "c/seed-0": "failed"}


def test_a_run_finished_by_another_job_while_this_one_plans_is_not_queued_again(tmp_path, monkeypatch):
    """A job that plans while another finishes a run: the other writes the run's results, then
    records it done. Planning read the disk first (no results yet), then the records (done), took the
    run for one whose results were deleted, and queued it again: it trained twice (the two-job SLURM
    test, 1 run in 6, on a loaded machine). The disk is read after the records now."""
    from visionstudy.study.execute import plan

    study = load_study(write(tmp_path, "twice", train={**TINY["train"], "epochs": 1},
                            variants={"a": {}, "b": {}}))
    place = Placement(tmp_path / "runs")
    store, _ = plan(study, place)
    claim = store.claim({"b/seed-0"}, os.getpid())  # b is trained by the other job
    assert claim is not None
    results = place.study_dir(study) / "b" / "seed-0" / "metrics.json"
    results.parent.mkdir(parents=True)  # b's folder while it trains: no results yet
    records = RunStore.run_records

    def finished_meanwhile(self, *args, **kwargs):  # the other job ends b as this one reads
        if not results.exists():
            results.write_text(json.dumps({"test_accuracy": 0.5}))
            RunStore(place.url(study), study.name).complete(claim, 0.5, {})
        return records(self, *args, **kwargs)

    monkeypatch.setattr(RunStore, "run_records", finished_meanwhile)
    plan(study, place)
    monkeypatch.undo()
    assert store.status(["a/seed-0", "b/seed-0"]) == {"a/seed-0": "waiting", "b/seed-0": "done"}
    trials = [t for t in store.study.get_trials(deepcopy=False) if t.user_attrs.get("run") == "b/seed-0"]
    assert len(trials) == 1, [t.state for t in trials]  # not queued a second time


def test_a_finished_study_run_again_shows_no_progress_bar_at_nought(tmp_path):
    """`study run` of a finished study drew `runs 0/4 -:--:--` above "nothing to do: all 4 runs
    are finished"; a resumed one started its bar at 0 of the runs already finished."""
    from tests.helpers import vs_here

    study = write(tmp_path, "again", seeds=2, train={"epochs": 1})
    first = vs_here("study", "run", study, "--runs-dir", tmp_path / "runs", "--no-report")
    assert first.returncode == 0 and "2/2" in first.stdout, first.stderr
    again = vs_here("study", "run", study, "--runs-dir", tmp_path / "runs", "--no-report")
    assert again.returncode == 0 and "nothing to do: all 2 runs are finished" in again.stdout, again.stderr
    assert "0/2" not in again.stdout and "runs ━" not in again.stdout


def test_a_searchs_best_values_are_cross_validated_where_cv_names_search_best(tmp_path):
    """Seed 003 wished for automated tuning with its 5-fold CV: `cv.variants: [base, search-best]`
    was "search-best not variants"; the final runs now train every fold of every final seed, are
    counted before they train, and pair with the baseline's folds."""
    from visionstudy.errors import ConfigError
    from visionstudy.report.run_report import ReportOptions
    from visionstudy.report.study_report import build_study_report

    search = {"sampler": "random", "pruner": "none", "trials": 2, "seed": 0, "final": {"seeds": 1},
              "space": {"train.optimizer.lr": {"low": 1e-3, "high": 3e-2, "log": True}}}
    fields = {"train": {**TINY["train"], "epochs": 2}, "variants": {"base": {}}, "search": search,
              "cv": {"folds": 2, "variants": ["base", "search-best"]}}
    place = Placement(tmp_path / "runs")
    # first without: its final run trains unfolded, and is set aside (not nested) once cv takes it in
    run_all(load_study(write(tmp_path, "tcv", **{**fields, "cv": {"folds": 2, "variants": ["base"]}})),
            place, progress=False)
    assert (place.study_dir("tcv") / "search-best" / "seed-0" / "metrics.json").is_file()
    study = load_study(write(tmp_path, "tcv", **fields))
    from tests.helpers import vs_here
    from visionstudy.study.search import final_keys

    dry = vs_here("study", "run", tmp_path / "tcv.yaml", "--runs-dir", tmp_path / "runs", "--dry-run")
    assert "would train its search's 2 final runs here" in dry.stdout, dry.stdout
    assert "search-best" not in dry.stdout.split("┃ variant")[1].split("dry run")[0]  # its old run, "done"

    assert final_keys(study) == ["search-best/seed-0/fold-0", "search-best/seed-0/fold-1"]
    assert study.describe() == ("2 runs (1 variant × 1 seed × 2 folds), then a 2-trial search and 2 final "
                                "runs (1 seed × 2 folds)")  # it said "and 1 final run"
    lines: list[str] = []
    full, outcome = run_all(study, place, progress=False, echo=lines.append)
    finals = [(r.key, r.config.data.folds, r.config.data.fold) for r in full.runs
              if r.variant == "search-best"]
    assert finals == [("search-best/seed-0/fold-0", 2, 0), ("search-best/seed-0/fold-1", 2, 1)]
    assert outcome.done == outcome.total == 4 and not outcome.failed
    assert outcome.seconds == round(outcome.seconds, 2)  # with the search's time added, to the hundredth
    moved = [line for line in lines if "planned otherwise now" in line]
    assert len(moved) == 1 and "search-best/seed-0, trained before, moved to " in moved[0], lines
    aside = next((place.study_dir("tcv") / "search" / "previous-best").iterdir())
    assert (aside / "seed-0" / "metrics.json").is_file()
    assert not (place.study_dir("tcv") / "search-best" / "seed-0" / "metrics.json").exists()
    out = build_study_report(place.study_dir(study), tmp_path / "rep",
                             ReportOptions(images=False, tsne_points=0)).parent
    folds = (out / "tables" / "cv_folds.csv").read_text().splitlines()
    assert sum(line.startswith("search-best,0,") for line in folds) == 2
    assert (out / "tables" / "paired_tests.csv").read_text().splitlines()[1].startswith("search-best,2,")
    # without a search's final runs, or a name that is neither, one error naming the fix
    with pytest.raises(ConfigError, match=r"cv.variants: search-best is the search's final runs, and this "
                                          r"study has none; give its search `final: \{seeds: 1\}`"):
        load_study(write(tmp_path, "nofinal", **{**fields, "search": {**search, "final": None}}))
    with pytest.raises(ConfigError, match=r"cv.variants: bse not variants; did you mean base\? choose "
                                          r"from base or search-best$"):
        load_study(write(tmp_path, "typo", **{**fields, "cv": {"folds": 2, "variants": ["bse"]}}))


def test_cv_taken_in_or_out_of_a_trained_variant_sets_its_old_runs_aside(tmp_path):
    """Adding `cv` to a variant that had trained nested its fold runs in the old run's folder
    (`a/seed-0/fold-0` under the finished `a/seed-0`: `report runs/s/a` counted 1 run); taking it
    out failed the run (`a/seed-0 is not empty and is not a run folder`). The old runs are moved
    into their variant's previous/<time>/ folder, results kept, said by the run, the dry run and
    `study status`."""
    from tests.helpers import vs_here

    place = Placement(tmp_path / "runs")
    fields = {"train": {**TINY["train"], "epochs": 1}, "seeds": 1, "variants": {"a": {}, "b": {}}}
    run_all(load_study(write(tmp_path, "nest", **fields)), place, progress=False)
    home = place.study_dir("nest")
    before = (home / "a" / "seed-0" / "metrics.json").read_bytes()
    write(tmp_path, "nest", **fields, cv={"folds": 2, "variants": ["a"]})
    line = ("1 run (a/seed-0) is planned otherwise now (the study file's cv: the new runs' folders and the "
            "old would nest): ")
    runs = tmp_path / "runs"
    for done in (vs_here("study", "run", tmp_path / "nest.yaml", "--runs-dir", runs, "--dry-run"),
                 vs_here("study", "status", tmp_path / "nest.yaml", "--runs-dir", runs)):
        told = " ".join((done.stdout + done.stderr).split())  # rich wraps at the terminal's width
        assert line + "`visionstudy study run` moves it to its variant's previous/<time>/" in told, told
    lines: list[str] = []
    _, outcome = run_all(load_study(tmp_path / "nest.yaml"), place, progress=False, echo=lines.append)
    assert outcome.failed == [] and outcome.trained == 2
    aside = list((home / "a" / "previous").glob("*/seed-0"))
    assert len(aside) == 1 and (aside[0] / "metrics.json").read_bytes() == before  # kept whole
    assert (aside[0] / "checkpoints" / "best.pt").is_file()
    said = line + f"moved to its variant's previous/{aside[0].parent.name}/"
    assert any(s.startswith(said) for s in lines), lines
    assert sorted(p.name for p in (home / "a" / "seed-0").iterdir()) == ["fold-0", "fold-1"]  # none of before
    # and out again: the fold runs go aside, and a/seed-0 of before, planned again as it was, comes
    # back (it trained again: hours on a GPU for a toggle)
    write(tmp_path, "nest", **fields)
    status = vs_here("study", "status", tmp_path / "nest.yaml", "--runs-dir", runs)
    assert "1 run (a/seed-0) set aside before matches the plan again: `visionstudy study run` moves it " \
           "back" in " ".join((status.stdout + status.stderr).split())
    dry = vs_here("study", "run", tmp_path / "nest.yaml", "--runs-dir", runs, "--dry-run")
    assert "nothing to train" in dry.stdout, dry.stdout  # it comes back: it said "would train 1 run"
    lines.clear()
    _, outcome = run_all(load_study(tmp_path / "nest.yaml"), place, progress=False, echo=lines.append)
    assert outcome.failed == [] and outcome.trained == 0 and outcome.done == 2, outcome
    assert (home / "a" / "seed-0" / "metrics.json").read_bytes() == before  # the very run
    assert any(s.startswith("1 run (a/seed-0) back from ") and s.endswith("not trained again")
               for s in lines), lines
    assert not aside[0].parent.exists()  # its set-aside folder, emptied, is gone
    assert not (home / "a" / "seed-0" / "fold-0").exists()
    assert len(list((home / "a" / "previous").glob("*/seed-0/fold-*/metrics.json"))) == 2
    assert any("2 runs (a/seed-0/fold-0, a/seed-0/fold-1) are planned otherwise" in s for s in lines), lines
    assert not any("not in the study file any more" in s for s in lines)  # moved, not left in place
