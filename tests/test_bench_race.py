"""bench/race.py's bookkeeping (the race itself is too long for CI): times from process start,
the first epoch at or above each threshold, a stop once all are reached, ratios in the table."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
race = pytest.importorskip("race")

FAKE = """
import json, sys, time
time.sleep(0.3)                      # "imports"
for epoch, acc in enumerate([0.85, 0.912, 0.905, 0.931, 0.94, 0.95], 1):
    time.sleep(0.1)
    print("a log line that is not JSON")
    print(json.dumps({"epoch": epoch, "test_accuracy": acc, "train_seconds": 0.1,
                      "t": time.time()}), flush=True)
    if epoch == 5:
        sys.exit("should have been stopped after epoch 4")
"""


def test_race_times_each_threshold_from_process_start_and_stops_when_all_are_reached(tmp_path):
    script = tmp_path / "fake.py"
    script.write_text(FAKE)
    row = race.race_all([race.Contestant("fake", [sys.executable, str(script)], 1000)], [0.91, 0.93], 60)[0]
    assert row["epoch_at_91%"] == 2 and row["epoch_at_93%"] == 4
    assert 0.5 <= row["seconds_to_91%"] < row["seconds_to_93%"] < 10
    assert row["epochs"] == 4 and row["best_test_accuracy"] == 0.931
    assert row["train_images_per_second"] == 10000  # 1000 images in 0.1 s per epoch
    assert "error" not in row


BUSY = """
import json, time
def spin(seconds):
    end = time.process_time() + seconds
    while time.process_time() < end:
        pass
for epoch, acc in enumerate([0.5, 0.92, 0.94], 1):
    spin(0.4)
    print(json.dumps({"epoch": epoch, "test_accuracy": acc, "train_seconds": 0.4, "t": time.time(),
                      "cpu": time.process_time()}), flush=True)
"""


def test_contestants_take_turns_and_each_is_timed_by_its_own_running_time(tmp_path):
    """Two CPU-bound contestants in turns of 0.25 s: one runs at a time, a stopped one does not
    progress (its CPU time stays within its running time), and its times are its running time,
    about half the race's wall time."""
    import time

    script = tmp_path / "busy.py"
    script.write_text(BUSY)
    pair = [race.Contestant(name, [sys.executable, str(script)], 1000, 0.25) for name in ("a", "b")]
    start = time.time()
    rows = race.race_all(pair, [0.91, 0.93], 60)
    wall = time.time() - start
    spans = sorted((begin, end) for c in pair for begin, end in c.turns)
    assert all(end <= after + 0.05 for (_, end), (after, _) in zip(spans, spans[1:], strict=False))
    assert all(len(c.turns) >= 3 for c in pair), [c.turns for c in pair]
    for c, row in zip(pair, rows, strict=True):
        assert row["epoch_at_91%"] == 2 and row["epoch_at_93%"] == 3 and row["epochs"] == 3
        last = c.epochs[-1]
        assert last["cpu"] <= row["seconds_to_93%"] + 0.15, (last, row)
        assert 1.1 <= row["seconds_to_93%"] < 0.75 * (last["t"] - c.turns[0][0]), (row, c.turns)
    assert sum(r["wall_seconds"] for r in rows) <= wall + 0.1


def test_an_interrupted_race_leaves_no_contestant_stopped_behind(tmp_path, monkeypatch):
    """Contestants run in their own sessions, so Ctrl-C does not reach them: one stopped between
    its turns would wait forever. The race kills them on its way out."""
    script = tmp_path / "busy.py"
    script.write_text(BUSY)
    pair = [race.Contestant(name, [sys.executable, str(script)], 1000, 0.25) for name in ("a", "b")]

    def interrupt(self, row, thresholds):
        raise KeyboardInterrupt

    monkeypatch.setattr(race.Contestant, "epoch", interrupt)
    with pytest.raises(KeyboardInterrupt):
        race.race_all(pair, [0.91], 60)
    assert all(c.proc is not None for c in pair)  # both had started: one of them was stopped
    assert [c.proc.wait(timeout=10) for c in pair] == [-9, -9]


def test_turns_are_given_per_contestant_with_a_default_for_the_rest():
    names = ["ours", "plain-pytorch", "keras"]
    assert race.turns("ours=1,5", names) == {"ours": 1.0, "plain-pytorch": 5.0, "keras": 5.0}
    assert race.turns("0", names) == dict.fromkeys(names, 0.0)
    with pytest.raises(SystemExit, match="no contestant 'lightning'"):
        race.turns("lightning=2", names)
    with pytest.raises(SystemExit, match="'x' is not a number"):
        race.turns("ours=x", names)
    table = race.markdown([], [0.91], [], "m", {"ours": 1.0, "keras": 5.0})
    assert "took turns (ours 1 s, keras 5 s; the others stopped)" in table
    assert "one contestant after the other" in race.markdown([], [0.91], [], "m", {"ours": 0.0})


def test_a_threshold_never_reached_is_reported_as_such(tmp_path):
    script = tmp_path / "slow.py"
    script.write_text("import json, time\nprint(json.dumps({'epoch': 1, 'test_accuracy': 0.5, "
                      "'train_seconds': 1.0, 't': time.time()}))\n")
    row = race.race_all([race.Contestant("slow", [sys.executable, str(script)], 100)], [0.91], 60)[0]
    assert row["seconds_to_91%"] is None and row["epochs"] == 1
    ours = {"contestant": "ours", "seconds_to_91%": 20.0, "epoch_at_91%": 3, "epochs": 3,
            "best_test_accuracy": 0.92, "train_images_per_second": 500, "wall_seconds": 25.0}
    peer = {**ours, "contestant": "peer", "seconds_to_91%": 110.0, "epoch_at_91%": 6}
    eff = {"precision": "bf16", "train_gflops": 500.0, "share_of_peak": 0.25, "matmul_peak_gflops": 2000.0,
           "share_outside_model": 0.012}
    table = race.markdown([ours, row | {"contestant": "slow"}, peer], [0.91], [eff], "test machine")
    assert "| peer | 110.0 (epoch 6) | 5.5× |" in table
    assert "| slow | not reached | > " in table
    assert "bf16: 500.0 GFLOP/s training = 25% of the measured bf16 matmul peak" in table


def test_peers_get_the_configs_network_with_overrides_and_refuse_what_they_cannot_build():
    from visionstudy.validate import load_config

    root = Path(__file__).resolve().parents[1]
    config = root / "examples" / "fashion-mnist-fast.yaml"
    cfg = load_config(config, ["model.hidden=[128]"])
    model = race.peer_model(cfg.model)
    assert model == {"channels": [[32, 32], [64, 64]], "kernel_size": 3, "batch_norm": True,
                     "conv_dropout": 0.0, "hidden": [128], "dropout": 0.3}
    cmds = race.commands(config, ["model.hidden=[128]"], model, epochs=5)
    assert cmds["ours"][-2:] == ["--set", "model.hidden=[128]"]
    assert '"hidden": [128]' in cmds["plain-pytorch"][cmds["plain-pytorch"].index("--model") + 1]
    refused = ((["model.pool=avg"], "model.pool"), (["model.kernel_size=[3, 5]"], "model.kernel_size"),
               (["model.global_pool=true"], "model.global_pool"))
    for sets, field in refused:
        with pytest.raises(SystemExit, match=field):
            race.peer_model(load_config(config, sets).model)
    with pytest.raises(SystemExit, match="CNNs only"):
        race.peer_model(load_config(root / "examples" / "fashion-mnist-resnet.yaml").model)


def test_our_contestant_applies_set_overrides(monkeypatch):
    """`ours.py CONFIG --set k=v` (as race.py passes them) reaches the run's config."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench" / "contestants"))
    ours = pytest.importorskip("ours")
    seen = {}
    monkeypatch.setattr("visionstudy.experiment.run_experiment",
                        lambda cfg, out, **kw: seen.update(cfg=cfg))
    root = Path(__file__).resolve().parents[1]
    monkeypatch.setattr(sys, "argv", ["ours.py", str(root / "examples" / "fashion-mnist-fast.yaml"),
                                      "--set", "train.epochs=2", "--set", "model.dropout=0.1"])
    ours.main()
    assert seen["cfg"].train.epochs == 2 and seen["cfg"].model.params()["dropout"] == 0.1
