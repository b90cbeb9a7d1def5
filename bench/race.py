"""Time to accuracy on Fashion-MNIST, ours vs peers, in one run (not run in CI).

    .venv/bin/python bench/race.py                      # all four, then efficiency and the table
    .venv/bin/python bench/race.py --only ours,plain-pytorch --max-minutes 5

Each contestant is a separate process started here; its time to X% is the wall time from its
start (imports, data loading, everything) to the end of the first epoch whose test accuracy is
≥ X%. The contestants train the same network (`model:` of the config) on the Debian mirror
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
import os
import platform
import subprocess
import sys
import tempfile
import time
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
    for field, value in PEER_FIXED.items():
        if params[field] != value:
            raise SystemExit(f"model.{field}: {params[field]!r}; the peer scripts build "
                             f"{field} {value!r} only")
    for field in ("kernel_size", "conv_dropout", "dropout"):
        if isinstance(params[field], list):
            raise SystemExit(f"model.{field}: {params[field]!r}; the peer scripts take one value, not a list")
    return {field: params[field] for field in PEER_FIELDS}


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


def race(name: str, cmd: list[str], thresholds: list[float], max_seconds: float,
         train_images: int) -> dict:
    """Run one contestant; wall seconds from its start to each threshold. The time limit is checked
    at each epoch's end. Its log (stderr: progress bars, framework warnings) goes to a file, so that a
    chatty contestant never blocks on a full pipe."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(CONTESTANTS), str(ROOT / "src")])}
    reached: dict[float, dict] = {}
    epochs: list[dict] = []
    with tempfile.TemporaryFile("w+") as log:
        start = time.time()
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=log, text=True, env=env, cwd=ROOT)
        assert proc.stdout is not None
        for line in proc.stdout:
            at = line.find('{"epoch"')  # a progress bar may share the line
            if at < 0:
                continue
            row = json.loads(line[at:])
            epochs.append(row)
            for th in thresholds:
                if th not in reached and row["test_accuracy"] >= th:
                    reached[th] = {"seconds": round(row["t"] - start, 1), "epoch": row["epoch"]}
            if len(reached) == len(thresholds) or time.time() - start > max_seconds:
                proc.kill()
                break
        proc.wait()
        log.seek(0)
        error = log.read()[-2000:] if not epochs else ""
    train_seconds = sum(r["train_seconds"] for r in epochs)
    return {
        "contestant": name,
        **{f"seconds_to_{th:.0%}": reached.get(th, {}).get("seconds") for th in thresholds},
        **{f"epoch_at_{th:.0%}": reached.get(th, {}).get("epoch") for th in thresholds},
        "epochs": len(epochs), "best_test_accuracy": max((r["test_accuracy"] for r in epochs), default=None),
        "train_images_per_second": round(train_images * len(epochs) / train_seconds) if epochs else None,
        "wall_seconds": round(time.time() - start, 1), **({"error": error} if error else {}),
    }


def outside(share: float) -> str:
    """The time outside forward/backward/step; the two loops are timed apart, so a share below zero
    (the product's loop timed faster than the bare steps) is the machine's drift between them."""
    if share <= 0:
        return "no measurable time outside forward/backward/step (the two loops within the timing noise)."
    return f"{share:.1%} of a real step's time outside forward/backward/step."


def markdown(rows: list[dict], thresholds: list[float], effs: list[dict], machine: str) -> str:
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
    out = [f"Fashion-MNIST time to accuracy, {machine}", "", *lines]
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
    ap.add_argument("--max-minutes", type=float, default=15.0)
    ap.add_argument("--peer-epochs", type=int, default=30)
    ap.add_argument("--out", type=Path, default=BENCH / "results" / "race.md")
    args = ap.parse_args()
    os.environ.setdefault("VISIONSTUDY_DATA_DIR", "/usr/share/datasets")
    thresholds = [float(t) for t in args.thresholds.split(",")]
    from visionstudy.validate import load_config

    cfg = load_config(args.config, args.set)
    ours_images = round(60000 * (1 - cfg.data.val_fraction))
    rows = []
    for name, cmd in commands(args.config, args.set, peer_model(cfg.model), args.peer_epochs).items():
        if name not in args.only.split(","):
            continue
        if name == "keras" and not KERAS_PYTHON.exists():
            print(json.dumps({"contestant": name, "skipped": f"{KERAS_PYTHON} is missing; "
                              "python3 -m venv bench/.venv-keras && bench/.venv-keras/bin/pip "
                              "install tensorflow-cpu"}), flush=True)
            continue
        row = race(name, cmd, thresholds, args.max_minutes * 60,
                   ours_images if name == "ours" else 60000)
        print(json.dumps(row), flush=True)
        rows.append(row)
    sys.path.insert(0, str(BENCH))
    from train_speed import efficiency

    effs = [efficiency(args.config, precision, sets=tuple(args.set)) for precision in ("32", "bf16")]
    for eff in effs:
        print(json.dumps(eff), flush=True)
    machine = f"{os.cpu_count()} cores ({platform.processor() or platform.machine()}), torch threads " \
        f"{effs[0]['threads']}"
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(markdown(rows, thresholds, effs, machine))
    print(f"wrote {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
