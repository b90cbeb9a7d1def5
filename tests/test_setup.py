"""scripts/setup.sh, the first command a user runs."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_setup_refuses_to_start_torchs_install_on_a_disk_too_full_for_it(tmp_path):
    """A CUDA build of torch fills about 7 GiB: pip would stop half-way with 'No space left on
    device' (as a CI run did); setup says so before installing anything."""
    (tmp_path / "scripts").mkdir()
    shutil.copy(ROOT / "scripts" / "setup.sh", tmp_path / "scripts" / "setup.sh")
    calls = tmp_path / "calls.txt"
    python = tmp_path / ".venv" / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.write_text(f'#!/bin/sh\necho "$*" >> {calls}\nexit 1\n')  # a venv without torch
    python.chmod(python.stat().st_mode | stat.S_IEXEC)
    env = {**os.environ, "VISIONSTUDY_SETUP_MIN_FREE_GIB": str(10**9)}
    done = subprocess.run(["bash", "scripts/setup.sh"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 1
    assert "torch needs about 1000000000 GiB free for .venv" in done.stderr
    assert "Free space on that disk" in done.stderr
    assert "-m pip" not in calls.read_text()  # nothing was installed
