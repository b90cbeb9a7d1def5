"""Atomic writes under faults: a crash after k bytes, a full disk, a folder that cannot be written."""

from __future__ import annotations

import errno
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tests.helpers import run_cli, vs_here
from visionstudy import fsutil
from visionstudy.errors import StorageError
from visionstudy.training.checkpoint import load_checkpoint, save_checkpoint


class Crash(BaseException):
    """Stands for the process dying mid-write (not an OSError: nothing may catch it)."""


def crash_after(k: int):
    def write(f, data):
        f.write(data[:k])
        f.flush()
        raise Crash

    return write


@pytest.mark.parametrize("k", [0, 1, 17, 512, 4096, 30_000])
def test_a_crash_while_writing_a_checkpoint_keeps_the_previous_one(tmp_path, monkeypatch, k):
    path = tmp_path / "checkpoints" / "last.pt"
    save_checkpoint({"model": {"w": torch.zeros(5000)}, "epoch": 1}, path)
    monkeypatch.setattr(fsutil, "write_all", crash_after(k))
    with pytest.raises(Crash):
        save_checkpoint({"model": {"w": torch.ones(5000)}, "epoch": 2}, path)
    monkeypatch.undo()
    state = load_checkpoint(path)  # always loads, and it is the previous epoch's
    assert state["epoch"] == 1 and torch.equal(state["model"]["w"], torch.zeros(5000))
    assert [p.name for p in path.parent.iterdir()] == ["last.pt"]  # the partial file is gone


def test_a_partial_file_left_by_a_killed_writer_is_never_read(tmp_path):
    path = tmp_path / "last.pt"
    save_checkpoint({"epoch": 1}, path)
    (tmp_path / ".last.pt.abc123.part").write_bytes(path.read_bytes()[:50])  # what SIGKILL leaves
    assert load_checkpoint(path)["epoch"] == 1
    assert fsutil.remove_partials(tmp_path) == 1 and [p.name for p in tmp_path.iterdir()] == ["last.pt"]


def test_a_full_disk_is_a_clear_error_and_the_old_file_stays(tmp_path, monkeypatch):
    path = tmp_path / "metrics.json"
    fsutil.atomic_write_text(path, "old")

    def full(f, data):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(fsutil, "write_all", full)
    with pytest.raises(StorageError, match=r"cannot write .*metrics.json: No space left on device — the "
                                           r"disk is full; free space or write elsewhere"):
        fsutil.atomic_write_text(path, "new")
    assert path.read_text() == "old" and len(list(tmp_path.iterdir())) == 1


def test_a_run_on_a_full_disk_is_not_marked_finished(tmp_path):
    """A real 1 MB tmpfs: training fills it with checkpoints; the run fails with a clear error, exit 2,
    and never gets a metrics.json."""
    mnt = tmp_path / "small"
    mnt.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mnt)],
                             capture_output=True, check=False)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({mounted.stderr.decode().strip()})")
    try:
        cfg = tmp_path / "c.yaml"
        cfg.write_text(json.dumps({"name": "big", "data": {"dataset": "digits"},
                                   "model": {"name": "mlp", "hidden": [512, 512]}, "train": {"epochs": 2}}))
        result = run_cli([sys.executable, "-m", "visionstudy", "train", str(cfg), "--out", str(mnt / "run"),
                          "--quiet"])
        assert result.returncode == 2, result.stderr
        assert "No space left on device" in result.stderr and "Traceback" not in result.stderr
        assert not (mnt / "run" / "metrics.json").exists()
        assert not list((mnt / "run").rglob("*.part"))
    finally:
        subprocess.run(["umount", str(mnt)], check=False)


def test_a_folder_that_cannot_be_written_is_a_clear_error(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(json.dumps({"name": "x", "data": {"dataset": "digits"}, "model": {"name": "mlp"},
                               "train": {"epochs": 1}}))
    target = "/sys/visionstudy-run" if Path("/sys").is_dir() else "/proc/visionstudy-run"
    result = subprocess.run([sys.executable, "-m", "visionstudy", "train", str(cfg), "--out", target,
                             "--quiet"], capture_output=True, text=True, timeout=300,
                            stdin=subprocess.DEVNULL)
    assert result.returncode == 2, result.stderr
    assert f"cannot write {target}" in result.stderr and "Traceback" not in result.stderr
    # a file of the user's where the run folder, or a folder above it, would go: named as such (it
    # said "File exists — check the folder and the disk"), and the file is kept
    (tmp_path / "notes.txt").write_text("mine")
    for out, says in ((tmp_path / "notes.txt", "a file, not a folder, is in the way"),
                      (tmp_path / "notes.txt" / "run", "a part of the path is a file, not a folder")):
        result = vs_here("train", cfg, "--out", out, "--quiet")
        assert result.returncode == 2 and f"cannot write {out}" in result.stderr, result.stderr
        assert says in result.stderr and "choose another folder (--out" in result.stderr
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_a_destination_is_taken_only_when_it_is_new_empty_our_own_or_forced(tmp_path):
    """`claim_output`, the one rule behind every --out, --gradcam and --log-dir."""
    from visionstudy.errors import ConfigError

    never = lambda p: False  # noqa: E731
    notes = tmp_path / "notes.txt"
    notes.write_text("mine")
    with pytest.raises(ConfigError, match=r"--out .*notes.txt: the file exists and is not this command's "
                                          r"output; it is kept.*--force"):
        fsutil.claim_output(notes, "--out", own=never)
    assert fsutil.claim_output(notes, "--out", own=lambda p: True) == notes  # our own earlier output
    assert fsutil.claim_output(notes, "--out", own=never, force=True) == notes
    assert notes.read_text() == "mine"  # checking never writes the file itself
    with pytest.raises(ConfigError, match="is a folder; give the file to write"):
        fsutil.claim_output(tmp_path, "--out", own=never)
    with pytest.raises(ConfigError, match="exists and is not a folder"):
        fsutil.claim_output(notes, "--gradcam", own=never, folder=True)
    with pytest.raises(ConfigError, match="the folder exists and is not this command's output"):
        fsutil.claim_output(tmp_path, "--gradcam", own=never, folder=True)
    (tmp_path / "empty").mkdir()
    fsutil.claim_output(tmp_path / "empty", "--out", own=never, folder=True)
    fsutil.claim_output(tmp_path / "new" / "deeper", "--out", own=never, folder=True)
    assert (tmp_path / "new" / "deeper").is_dir() and not any((tmp_path / "new" / "deeper").iterdir())
    with pytest.raises(StorageError, match="cannot write"):  # under a file: impossible
        fsutil.claim_output(notes / "sub" / "grid.png", "--out", own=never)


def test_a_read_only_destination_fails_before_any_work(tmp_path):
    from tests.conftest import read_only_copy

    folder = tmp_path / "ro"
    folder.mkdir()
    with read_only_copy(folder):
        with pytest.raises(StorageError, match="read-only"):
            fsutil.claim_output(folder / "grid.png", "--out", own=lambda p: False)
        with pytest.raises(StorageError, match="read-only"):
            fsutil.claim_output(folder, "--log-dir", own=lambda p: True, folder=True)
