"""Run folders have one owner: a lock with the holder's PID, non-run folders never written, the
user's umask, best-else-last in one place (issue #14, item 2)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from tests.helpers import ROOT, assert_user_error, vs
from visionstudy.errors import ConfigError, TrainingError
from visionstudy.experiment import run_experiment
from visionstudy.store.rundir import RunDir, RunLock, RunLockedError, inside_run, open_run
from visionstudy.validate import validate_run_config

TINY = {"name": "tiny", "data": {"dataset": "digits", "max_train_samples": 300},
        "model": {"name": "mlp", "hidden": [16]}, "train": {"epochs": 1, "batch_size": 64}}

HOLD = """
import sys, time
from pathlib import Path
from visionstudy.store.rundir import RunDir, RunLock
Path(sys.argv[1]).mkdir(parents=True, exist_ok=True)
lock = RunLock(RunDir(Path(sys.argv[1]))).acquire()
print("held", flush=True)
time.sleep(120)
"""


def hold_lock(folder: Path) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(folder)], cwd=ROOT, stdout=subprocess.PIPE,
                            text=True)
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_a_second_writer_is_refused_with_the_holders_pid_and_a_dead_holders_lock_is_taken(tmp_path):
    out = tmp_path / "run"
    holder = hold_lock(out)
    try:
        cfg = validate_run_config(TINY)
        with pytest.raises(RunLockedError, match=f"PID {holder.pid}"):
            run_experiment(cfg, out, quiet=True)
        assert not RunDir(out).config.exists()  # the refused writer wrote nothing
        result = vs("train", ROOT / "examples" / "digits-quick.yaml", "--out", out, "--quiet")
        assert_user_error(result, f"PID {holder.pid}")
    finally:
        holder.kill()
        holder.wait()
    metrics = run_experiment(validate_run_config(TINY), out, quiet=True)  # the dead holder's lock
    assert metrics["test_accuracy"] > 0 and RunDir(out).is_finished()


def test_two_concurrent_trains_into_one_folder_never_mix(tmp_path):
    """Two `train` at once into one --out: exactly one trains, the other exits 2 (it used to mix
    seed 1's config.yaml and last.pt with seed 0's best.pt, both exiting 0)."""
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump({**TINY, "train": {"epochs": 4, "batch_size": 32}}))
    out = tmp_path / "shared"
    cmd = [sys.executable, "-m", "visionstudy", "train", str(cfg), "--out", str(out), "--quiet"]
    procs = [subprocess.Popen([*cmd, "--set", f"seed={k}"], cwd=ROOT, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for k in (0, 1)]
    results = [(p.wait(timeout=300), *p.communicate()) for p in procs]
    codes = sorted(code for code, _, _ in results)
    assert codes == [0, 2], results
    loser = next(err for code, _, err in results if code == 2)
    # refused while the winner writes, or (when the machine is busy and it starts late) because the
    # folder then holds the winner's finished run: either way nothing of it is written there
    assert ("is being written by another process (PID" in loser or "holds a finished run" in loser)
    assert "Traceback" not in loser
    winner_seed = [k for k, (code, _, _) in enumerate(results) if code == 0][0]
    saved = yaml.safe_load(RunDir(out).config.read_text())
    assert saved["seed"] == winner_seed
    from visionstudy.training.checkpoint import load_checkpoint

    assert load_checkpoint(RunDir(out).best)["config"]["seed"] == winner_seed
    assert load_checkpoint(RunDir(out).last)["config"]["seed"] == winner_seed


@pytest.mark.parametrize("where", ["config-folder", "dot"])
def test_out_that_is_a_users_folder_is_refused_and_left_untouched(tmp_path, where):
    folder = tmp_path / "mine"
    folder.mkdir()
    cfg = folder / "config.yaml"  # the user's own file, with the run's file name
    cfg.write_text(yaml.safe_dump(TINY))
    (folder / "notes.txt").write_text("my notes")
    before = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in folder.iterdir()}
    if where == "dot":
        result = subprocess.run([sys.executable, "-m", "visionstudy", "train", "config.yaml", "--out", ".",
                                 "--quiet"], cwd=folder, capture_output=True, text=True, timeout=300)
    else:
        result = vs("train", cfg, "--out", folder, "--quiet", "--force")
    assert_user_error(result, "is not empty and is not a run folder", "notes.txt")
    assert {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in folder.iterdir()} == before


def test_a_folder_holding_only_the_users_config_yaml_is_not_a_run(tmp_path):
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(TINY))
    with pytest.raises(TrainingError, match="config.yaml"):
        open_run(tmp_path, resume=False, force=True, config={})


@pytest.mark.parametrize("name", ["../../x", "/tmp/abs", "a/b", "..", ".", "a\nb", "tab\there", "a*", "why?",
                                  "two words", "-flag", ""])
def test_a_run_name_is_one_folder_by_the_rule_study_names_follow(name):
    """Run names once took newlines, tabs, `*` and `?` that study names refused: one rule now."""
    from visionstudy.study.schema import StudyConfig

    with pytest.raises(ConfigError, match="a run name names a folder: use ASCII letters, digits and _"):
        validate_run_config({**TINY, "name": name})
    with pytest.raises(ValueError, match="a study name names a folder: use ASCII letters, digits and _"):
        StudyConfig(name=name, base={})


UMASKS = {0o022: 0o644, 0o002: 0o664, 0o077: 0o600}


def test_run_files_follow_the_umask(tmp_path):
    """Every file we wrote was 0600 whatever the umask (mkstemp): colleagues sharing a runs folder
    could not read metrics.json or report.html."""
    code = ("import os, sys; from pathlib import Path; from visionstudy.experiment import run_experiment;"
            "from visionstudy.validate import validate_run_config\n"
            "for mask in (0o022, 0o002, 0o077):\n"
            "    os.umask(mask)\n"
            f"    run_experiment(validate_run_config({TINY!r}), Path(sys.argv[1]) / oct(mask), quiet=True)")
    subprocess.run([sys.executable, "-c", code, str(tmp_path)], check=True, cwd=ROOT, timeout=300)
    for umask, mode in UMASKS.items():
        run = RunDir(tmp_path / oct(umask))
        for path in (run.config, run.metrics, run.history, run.predictions, run.best, run.last):
            assert path.stat().st_mode & 0o777 == mode, (path, oct(umask))
        assert (run.path / "checkpoints").stat().st_mode & 0o777 == 0o777 & ~umask


def test_resuming_a_finished_run_says_there_is_nothing_to_resume(tmp_path):
    """`train --resume` of a finished run (as to train it longer) was told to overwrite it."""
    from visionstudy.store.rundir import check_state

    run = RunDir(tmp_path / "r")
    run.path.mkdir()
    run.metrics.write_text("{}")
    with pytest.raises(TrainingError, match=r"r holds a finished run: nothing to resume \(its results are in "
                                            r"metrics.json\); to train it again \(or longer, with more "
                                            r"train.epochs\) pass --force"):
        check_state(run, resume=True, force=False, config={}, saved_config=None)
    with pytest.raises(TrainingError, match=r"r holds a finished run; pass --force to overwrite it"):
        check_state(run, resume=False, force=False, config={}, saved_config=None)
    assert run.metrics.is_file()


def test_best_else_last_is_chosen_in_one_place(tmp_path):
    run = RunDir(tmp_path)
    assert run.checkpoint() is None
    run.last.parent.mkdir()
    run.last.write_bytes(b"x")
    assert run.checkpoint() == run.last
    run.best.write_bytes(b"y")
    assert run.checkpoint() == run.best


def test_inside_run_finds_the_enclosing_run(digits_run, tmp_path):
    assert inside_run(digits_run / "sub" / "report") == digits_run.resolve()
    assert inside_run(tmp_path / "elsewhere") is None


def test_the_lock_is_released_when_the_run_ends(tmp_path):
    run_experiment(validate_run_config(TINY), tmp_path / "r", quiet=True)
    lock = RunLock(RunDir(tmp_path / "r")).acquire()  # would raise if still held
    assert (tmp_path / "r" / ".lock").read_text().strip() == str(os.getpid())
    lock.release()
    time.sleep(0)


def test_the_checkpoint_that_stands_for_a_run_is_the_one_its_test_used(tmp_path):
    run = RunDir(tmp_path / "r")
    run.last.parent.mkdir(parents=True)
    run.last.write_bytes(b"last")
    assert run.checkpoint() == run.last  # no best.pt (no validation set)
    run.best.write_bytes(b"best")
    assert run.checkpoint() == run.best  # unfinished, or a run from before tested_checkpoint
    run.metrics.write_text('{"tested_checkpoint": "last"}')  # restore_best: false
    assert run.checkpoint() == run.last
    run.metrics.write_text('{"tested_checkpoint": "best"}')
    assert run.checkpoint() == run.best


def test_move_run_takes_a_runs_own_files_and_leaves_the_runs_nested_in_its_folder(tmp_path):
    """A final run set aside when the study file's cv folded it: the fold runs that trained inside
    its folder stay where the study reads them."""
    from visionstudy.store.rundir import RunDir, move_run

    old = tmp_path / "search-best" / "seed-0"
    (old / "checkpoints").mkdir(parents=True)
    (old / "fold-0" / "checkpoints").mkdir(parents=True)
    for f in ("config.yaml", "metrics.json", ".lock", "fold-0/metrics.json"):
        (old / f).write_text("{}")
    assert move_run(RunDir(old), tmp_path / "aside" / "seed-0")
    assert sorted(p.name for p in (tmp_path / "aside" / "seed-0").iterdir()) == [
        "checkpoints", "config.yaml", "metrics.json"]
    assert sorted(p.name for p in old.iterdir()) == ["fold-0"]  # its lock gone, the nested run whole
    assert (old / "fold-0" / "metrics.json").is_file()
    assert not move_run(RunDir(old), tmp_path / "aside" / "again")  # nothing of its own left
    assert not (tmp_path / "aside" / "again").exists()


def test_a_set_aside_stamp_names_a_folder_new_under_every_parent(tmp_path, monkeypatch):
    from visionstudy.store.rundir import free_stamp

    monkeypatch.setattr(time, "strftime", lambda fmt, *when: "20261207-120000")
    a, b = tmp_path / "a" / "previous", tmp_path / "b" / "previous"
    assert free_stamp([a, b]) == "20261207-120000"  # neither exists yet
    (b / "20261207-120000").mkdir(parents=True)
    assert free_stamp([a, b]) == "20261207-120000-2"  # taken under one of them
    (a / "20261207-120000-2").mkdir(parents=True)
    assert free_stamp([a, b]) == "20261207-120000-3"
    assert free_stamp([a]) == "20261207-120000"


def test_set_aside_stamps_order_as_they_were_made():
    from visionstudy.store.rundir import stamp_order

    made = ["20261207-120000", *(f"20261207-120000-{n}" for n in range(2, 12)), "20261207-120001"]
    assert sorted(reversed(made), key=stamp_order) == made


def test_set_aside_moves_the_runs_not_held_and_nesting_tells_folders_one_in_another(tmp_path):
    """Runs planned otherwise now are moved aside under their lock: one a process is still writing
    (an older `study run`) stays whole where it is."""
    from visionstudy.store.rundir import nesting, set_aside
    from visionstudy.study.manifest import held_line

    for key in ("a/seed-0", "a/seed-1"):
        (tmp_path / key).mkdir(parents=True)
        (tmp_path / key / "metrics.json").write_text("{}")
    with RunLock(RunDir(tmp_path / "a" / "seed-1")).acquire():  # another writer holds it
        moved, held = set_aside(tmp_path, ["a/seed-0", "a/seed-1"], lambda k: tmp_path / "aside" / k)
    assert (moved, held) == (["a/seed-0"], ["a/seed-1"])
    assert (tmp_path / "aside" / "a" / "seed-0" / "metrics.json").is_file()
    assert (tmp_path / "a" / "seed-1" / "metrics.json").is_file()  # whole, where it was
    assert not (tmp_path / "aside" / "a" / "seed-1").exists()
    assert held_line(held).startswith("not moved: a/seed-1, being written by another process")
    nests = nesting(["a/seed-0/fold-0", "b/seed-0", "c"])
    assert [k for k in ("a/seed-0", "a", "b/seed-0", "b/seed-0/fold-1", "b/seed-1", "c/seed-0", "a/seed-00")
            if nests(k)] == ["a/seed-0", "a", "b/seed-0/fold-1", "c/seed-0"]
