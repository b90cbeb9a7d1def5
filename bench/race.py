"""Time to accuracy on Fashion-MNIST, ours vs peers, in one run (not run in CI).

    .venv/bin/python bench/race.py                      # all four, then efficiency and the table
    .venv/bin/python bench/race.py --only ours,plain-pytorch --max-minutes 5

Each contestant is a separate process started here; its time to X% is its running time from its
start (imports, data loading, everything) to the end of the first epoch whose test accuracy is
≥ X%. The contestants take turns, round robin, the others stopped (SIGSTOP of their process
group), so that all see the machine at the same hours: a shared machine's speed drifts by 15-25%
within the hour, and one after the other (--turn 0) the ratios moved with it. --turn ours=1,5
(the default) gives ours turns of 1 s and each peer 5 s, in proportion to how long each takes, so
that they stay side by side to the end.
The contestants train the same network (`model:` of the config) on the Debian mirror
(VISIONSTUDY_DATA_DIR, default /usr/share/datasets):

- ours: `visionstudy` on the config (bench/contestants/ours.py);
- plain-pytorch (peer a): torchvision dataset, per-sample transforms, DataLoader, Adam, batch 64;
- lightning (peer b): the same model and DataLoader under `lightning.Trainer` defaults;
- keras (peer c): Keras 3 on TensorFlow, seed 002's style (needs bench/.venv-keras, see
  bench/contestants/keras_fit.py; left out with a note when missing).

A contestant stops when it has reached every threshold, or at --max-minutes. Then the config's
training FLOP/s is measured against this machine's matmul peak, in fp32 and in bf16
(bench/train_speed.py efficiency).
One JSON line per result on stdout; the Markdown table goes to bench/results/race.md.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import queue
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
CONTESTANTS = BENCH / "contestants"
KERAS_PYTHON = BENCH / ".venv-keras" / "bin" / "python"
PEER_FIELDS = ("channels", "kernel_size", "batch_norm", "conv_dropout", "hidden", "dropout")
PEER_FIXED = {"padding": "same", "pool": "max", "pool_size": 2, "activation": "relu", "global_pool": False}


def peer_model(model: Any) -> dict:
    """The config's `model:` (a RunConfig's, `--set` applied) as the peers build it: a CNN with one
    kernel size, max pooling per stage, ReLU, one dropout rate per place. Anything else is refused
    here, before any contestant starts, rather than raced against a different network."""
    from visionstudy.models.base import validate_params

    if model.name != "cnn":
        raise SystemExit(f"model.name: {model.name!r}; the peer scripts build CNNs only (model.name: cnn)")
    params = validate_params(model.name, model.params()).model_dump()
    for key, value in PEER_FIXED.items():
        if params[key] != value:
            raise SystemExit(f"model.{key}: {params[key]!r}; the peer scripts build "
                             f"{key} {value!r} only")
    for key in ("kernel_size", "conv_dropout", "dropout"):
        if isinstance(params[key], list):
            raise SystemExit(f"model.{key}: {params[key]!r}; the peer scripts take one value, not a list")
    return {key: params[key] for key in PEER_FIELDS}


def commands(config: Path, sets: list[str], model: dict, epochs: int) -> dict[str, list[str]]:
    peer = ["--model", json.dumps(model), "--epochs", str(epochs)]
    ours = [sys.executable, str(CONTESTANTS / "ours.py"), str(config)]
    ours += [arg for s in sets for arg in ("--set", s)]
    return {
        "ours": ours,
        "plain-pytorch": [sys.executable, str(CONTESTANTS / "plain_torch.py"), *peer],
        "lightning": [sys.executable, str(CONTESTANTS / "plain_torch.py"), *peer, "--lightning"],
        "keras": [str(KERAS_PYTHON), str(CONTESTANTS / "keras_fit.py"), *peer],
    }


@dataclass
class Contestant:
    """One contestant's process and what it said; `turns` are the wall-clock spans it ran."""

    name: str
    cmd: list[str]
    train_images: int
    turn_seconds: float = 0.0  # how long each of its turns is; 0: it runs to its end in one turn
    proc: subprocess.Popen | None = None
    lines: queue.Queue = field(default_factory=queue.Queue)
    log: Any = None
    turns: list[list[float]] = field(default_factory=list)
    epochs: list[dict] = field(default_factory=list)
    reached: dict[float, dict] = field(default_factory=dict)
    done: bool = False

    def ran(self, t: float) -> float:
        """Seconds it ran up to wall-clock time `t`: its turns summed (one turn: the wall time)."""
        return sum(max(0.0, min(end, t) - begin) for begin, end in self.turns)

    def start(self) -> None:
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(CONTESTANTS), str(ROOT / "src")])}
        self.log = tempfile.TemporaryFile("w+")
        # its own process group: a stop or a kill reaches its data-loader workers too
        self.proc = subprocess.Popen(self.cmd, stdout=subprocess.PIPE, stderr=self.log, text=True, env=env,
                                     cwd=ROOT, start_new_session=True)

        def read(out: Any, into: queue.Queue) -> None:
            for line in out:
                into.put(line)
            into.put(None)

        threading.Thread(target=read, args=(self.proc.stdout, self.lines), daemon=True).start()

    def signal(self, signum: int) -> None:
        assert self.proc is not None
        try:
            os.killpg(self.proc.pid, signum)
        except ProcessLookupError:
            pass

    def turn(self, thresholds: list[float], max_seconds: float) -> None:
        """Let it run for its turn (or until it is done: every threshold reached, its time used up,
        or its process ended), reading its epoch lines; then stop it (SIGSTOP) until its next turn."""
        now = time.time()
        self.turns.append([now, now])
        if self.proc is None:
            self.start()
        else:
            self.signal(signal.SIGCONT)
        deadline = now + (self.turn_seconds or math.inf)
        while not self.done:
            left = None if deadline == math.inf else max(0.0, deadline - time.time())
            try:
                line = self.lines.get(timeout=left)
            except queue.Empty:
                break
            self.turns[-1][1] = time.time()
            if line is None:  # the process ended
                self.done = True
            elif (at := line.find('{"epoch"')) >= 0:  # a progress bar may share the line
                self.epoch(json.loads(line[at:]), thresholds)
                self.done = len(self.reached) == len(thresholds) or self.ran(time.time()) > max_seconds
        if self.done:
            self.signal(signal.SIGKILL)
            self.signal(signal.SIGCONT)
            assert self.proc is not None
            self.proc.wait()
        else:
            self.signal(signal.SIGSTOP)
        self.turns[-1][1] = time.time()

    def epoch(self, row: dict, thresholds: list[float]) -> None:
        self.epochs.append(row)
        for th in thresholds:
            if th not in self.reached and row["test_accuracy"] >= th:
                self.reached[th] = {"seconds": round(self.ran(row["t"]), 1), "epoch": row["epoch"]}

    def result(self, thresholds: list[float]) -> dict:
        """Its row. Images/s: each epoch's training seconds (timed by the contestant, stops included)
        times the share of that epoch's wall time it ran."""
        assert self.log is not None
        self.log.seek(0)
        error = self.log.read()[-2000:] if not self.epochs else ""
        self.log.close()
        train_seconds, before = 0.0, self.turns[0][0]
        for row in self.epochs:
            span = row["t"] - before
            share = (self.ran(row["t"]) - self.ran(before)) / span if span > 0 else 1.0
            train_seconds += row["train_seconds"] * share
            before = row["t"]
        return {
            "contestant": self.name,
            **{f"seconds_to_{th:.0%}": self.reached.get(th, {}).get("seconds") for th in thresholds},
            **{f"epoch_at_{th:.0%}": self.reached.get(th, {}).get("epoch") for th in thresholds},
            "epochs": len(self.epochs),
            "best_test_accuracy": max((r["test_accuracy"] for r in self.epochs), default=None),
            "train_images_per_second": (round(self.train_images * len(self.epochs) / train_seconds)
                                        if self.epochs else None),
            "wall_seconds": round(self.ran(time.time()), 1), **({"error": error} if error else {}),
        }


def race_all(contestants: list[Contestant], thresholds: list[float], max_seconds: float) -> list[dict]:
    """Run the contestants in turns, round robin, the others stopped, until each is done; each
    one's times are its own running time from its start (its turns summed), so that all see the
    machine at the same hours. Turns in proportion to how long each needs keep them side by side to
    the end (ours 1 s to a peer's 5 s: a peer takes about 5 times as long); turns of 0 s: one after
    the other, each to its end. The time limit is checked at each epoch's end. A contestant's log
    (stderr: progress bars, framework warnings) goes to a file, so that a chatty one never blocks on
    a full pipe."""
    try:
        while waiting := [c for c in contestants if not c.done]:
            for c in waiting:
                c.turn(thresholds, max_seconds)
    finally:  # Ctrl-C or an error: no contestant is left stopped (its own session: Ctrl-C missed it)
        for c in contestants:
            if c.proc is not None and c.proc.poll() is None:
                c.signal(signal.SIGKILL)
                c.signal(signal.SIGCONT)
    return [c.result(thresholds) for c in contestants]


def turns(text: str, names: list[str]) -> dict[str, float]:
    """--turn: 'ours=1,5' → ours 1 s, every other contestant 5 s; '0': one after the other."""
    out: dict[str, float] = {}
    default = 0.0
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, _, value = part.rpartition("=")
        if name and name not in names:
            raise SystemExit(f"--turn {text}: no contestant {name!r}; choose from {', '.join(names)}")
        try:
            seconds = float(value)
        except ValueError:
            raise SystemExit(f"--turn {text}: {value!r} is not a number of seconds") from None
        if name:
            out[name] = seconds
        else:
            default = seconds
    return {n: out.get(n, default) for n in names}


def cpu_has_bf16() -> bool:
    from visionstudy.training.devices import cpu_runs_bf16

    return cpu_runs_bf16()


def outside(share: float) -> str:
    """The time outside forward/backward/step; the two loops are timed apart, so a share below zero
    (the product's loop timed faster than the bare steps) is the machine's drift between them."""
    if share <= 0:
        return "no measurable time outside forward/backward/step (the two loops within the timing noise)."
    return f"{share:.1%} of a real step's time outside forward/backward/step."


def markdown(rows: list[dict], thresholds: list[float], effs: list[dict], machine: str,
             turn: dict[str, float] | None = None, note: str = "") -> str:
    ours = next((r for r in rows if r["contestant"] == "ours"), None)
    head = ["contestant"] + [f"to {th:.0%} (s)" for th in thresholds] + \
        [f"ours faster, {th:.0%}" for th in thresholds] + ["epochs", "best test acc", "train img/s"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        times = [r[f"seconds_to_{th:.0%}"] for th in thresholds]
        cells = [r["contestant"]]
        cells += [f"{t} (epoch {r[f'epoch_at_{th:.0%}']})" if t is not None else "not reached"
                  for t, th in zip(times, thresholds, strict=True)]
        for th in thresholds:
            mine, theirs = (ours or {}).get(f"seconds_to_{th:.0%}"), r[f"seconds_to_{th:.0%}"]
            if r is ours:
                cells.append("—")
            elif mine and theirs:
                cells.append(f"{theirs / mine:.1f}×")
            elif mine:
                cells.append(f"> {r['wall_seconds'] / mine:.1f}× (not reached in {r['wall_seconds']:.0f} s)")
            else:
                cells.append("n/a")
        cells += [str(r["epochs"]), f"{r['best_test_accuracy']:.2%}" if r["best_test_accuracy"] else "—",
                  str(r["train_images_per_second"])]
        lines.append("| " + " | ".join(cells) + " |")
    turn = turn or {}
    how = ("the contestants took turns (" + ", ".join(f"{n} {s:g} s" for n, s in turn.items())
           + "; the others stopped), each one's times its own running time from its start"
           if any(turn.values()) else "one contestant after the other, wall time from its start")
    out = [f"Fashion-MNIST time to accuracy, {machine}; {how}.{note}", "", *lines]
    for eff in effs:
        precision = "fp32" if eff["precision"] == "32" else eff["precision"]
        out += ["", f"Efficiency of the config's model in the same run, {precision}: "
                f"{eff['train_gflops']} GFLOP/s training = {eff['share_of_peak']:.0%} of the measured "
                f"{precision} matmul peak ({eff['matmul_peak_gflops']} GFLOP/s); "
                + outside(eff["share_outside_model"])]
    return "\n".join(out) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--config", type=Path, default=ROOT / "examples" / "fashion-mnist-fast.yaml")
    ap.add_argument("--set", action="append", default=[], help="override in our config")
    ap.add_argument("--only", default="ours,plain-pytorch,lightning,keras")
    ap.add_argument("--thresholds", default="0.91,0.93")
    ap.add_argument("--max-minutes", type=float, default=15.0, help="each contestant's running time")
    ap.add_argument("--turn", default="ours=1,5",
                    help="seconds each contestant runs before the next one's turn: NAME=S for one, S for "
                         "the rest (0: one after the other)")
    ap.add_argument("--peer-epochs", type=int, default=30)
    ap.add_argument("--out", type=Path, default=BENCH / "results" / "race.md")
    args = ap.parse_args()
    os.environ.setdefault("VISIONSTUDY_DATA_DIR", "/usr/share/datasets")
    thresholds = [float(t) for t in args.thresholds.split(",")]
    from visionstudy.validate import load_config

    cfg = load_config(args.config, args.set)
    note = ""
    if cfg.train.precision == "bf16" and not cpu_has_bf16():
        # emulated bf16 is several times slower than fp32 (the run warns): ours trains in fp32 here,
        # as the warning tells a user to
        args.set.append("train.precision=32")
        note = " Ours in fp32: the config's bf16 is emulated on this CPU (no AVX512-BF16 or AMX)."
        print(json.dumps({"contestant": "ours", "precision": "32", "why": note.strip()}), flush=True)
    ours_images = round(60000 * (1 - cfg.data.val_fraction))
    contestants = []
    for name, cmd in commands(args.config, args.set, peer_model(cfg.model), args.peer_epochs).items():
        if name not in args.only.split(","):
            continue
        if name == "keras" and not KERAS_PYTHON.exists():
            print(json.dumps({"contestant": name, "skipped": f"{KERAS_PYTHON} is missing; "
                              "python3 -m venv bench/.venv-keras && bench/.venv-keras/bin/pip "
                              "install tensorflow-cpu"}), flush=True)
            continue
        contestants.append(Contestant(name, cmd, ours_images if name == "ours" else 60000))
    turn = turns(args.turn, [c.name for c in contestants])
    for c in contestants:
        c.turn_seconds = turn[c.name]
    rows = race_all(contestants, thresholds, args.max_minutes * 60)
    for row in rows:
        print(json.dumps(row), flush=True)
    sys.path.insert(0, str(BENCH))
    from train_speed import efficiency

    effs = [efficiency(args.config, precision, sets=tuple(args.set)) for precision in ("32", "bf16")]
    for eff in effs:
        print(json.dumps(eff), flush=True)
    machine = f"{os.cpu_count()} cores ({platform.processor() or platform.machine()}), torch threads " \
        f"{effs[0]['threads']}"
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(markdown(rows, thresholds, effs, machine, turn, note))
    print(f"wrote {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
