"""bench/gpu.py --smoke: the GPU benchmark runs end to end on this machine's CPU at tiny sizes, so it
is ready the day a GPU is lent; every part writes numbers or says why it was skipped."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
gpu = pytest.importorskip("gpu")


def test_the_gpu_benchmark_smoke_run_writes_every_part(tmp_path):
    assert gpu.main(["--smoke", "--out", str(tmp_path)]) == 0
    doc = json.loads((tmp_path / "gpu-smoke.json").read_text())
    rows = doc["rows"]
    assert doc["smoke"] is True and "CPU cores" in doc["machine"]
    measured = [r for r in rows if r["part"] == "throughput" and "skipped" not in r]
    assert {(r["model"], r["precision"]) for r in measured} == {
        (m, p) for m in gpu.FAMILIES for p in ("fp32", "bf16")}
    assert all(r["images_per_second"] > 0 for r in measured)
    fashion = next(r for r in rows if r["part"] == "fashion-mnist")
    assert 0.0 <= fashion["test_accuracy"] <= 1.0 and fashion["epochs"] == 1
    for part in ("cifar10", "two-workers"):  # no GPU and no CIFAR-10 here: said, not left out
        assert all(r.get("skipped") for r in rows if r["part"] == part)
    assert any(r["part"] == "cifar10" and r["model"] == "airbench" for r in rows)
    table = (tmp_path / "gpu-smoke.md").read_text()
    for part in ("throughput", "fashion-mnist", "cifar10", "two-workers"):
        assert f"## {part}" in table
