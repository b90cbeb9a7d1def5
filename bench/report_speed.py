"""Report benchmarks (not run in CI): the wall time of `visionstudy report` as a user runs it.

    .venv/bin/python bench/report_speed.py digits     # one digits run (examples/digits-quick.yaml)
    .venv/bin/python bench/report_speed.py study      # a 4 x 2 digits study: its report / its training
    .venv/bin/python bench/report_speed.py emnist     # the emnist-balanced recipe, 1 epoch per run
    .venv/bin/python bench/report_speed.py figures    # the study's report in place: each figure's seconds

Each report is timed through the CLI (a new process, imports included) --repeat times (default 5):
`cold`, the report of runs without their cache (t-SNE computed and cached in each run's analysis/
folder), and `warm`, the report written again; the median and the range are reported. Prints one
JSON line per result and writes bench/results/report_speed_<which>.md.

`emnist` writes an EMNIST Balanced mirror in the official gzip IDX format (47 classes; --train and
--test images, 4,700 each by default against the real 112,800 and 18,800, so that the recipe's 62
one-epoch runs, 17 of them ResNets, train in minutes on 2 cores: each run trains on
--max-train-samples of them) and trains the recipe with --workers 2 first (about 40 minutes at the
default sizes). The figures and the t-SNE (at most 2,000 test points) do not depend on the test set's
size; reading each run's predictions and its metrics (per class, ROC, calibration) grows with it.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
VS = [sys.executable, "-m", "visionstudy"]
REPORT_VS = list(VS)  # --python: time another checkout's report on the same runs


def timed(cmd: list[str], cwd: Path) -> float:
    start = time.perf_counter()
    done = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    return time.perf_counter() - start


def idx(array: np.ndarray) -> bytes:
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(d.to_bytes(4, "big") for d in array.shape)
    return gzip.compress(header + array.astype(np.uint8).tobytes(), compresslevel=1)


def emnist_mirror(folder: Path, n_train: int, n_test: int = 18_800, classes: int = 47) -> Path:
    """Glyph-like images whose class is learnable (a bright bar per class), EMNIST's file names,
    stored transposed as EMNIST is."""
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    for split, n in (("train", n_train), ("test", n_test)):
        labels = np.arange(n) % classes
        images = rng.integers(0, 60, (n, 28, 28), dtype=np.uint8)
        for c in range(classes):
            sel = labels == c
            r, col = 2 + (c % 8) * 3, 2 + (c // 8) * 4
            images[sel, r:r + 3, col:col + 4] = 250
        (folder / f"emnist-balanced-{split}-images-idx3-ubyte.gz").write_bytes(idx(images.transpose(0, 2, 1)))
        (folder / f"emnist-balanced-{split}-labels-idx1-ubyte.gz").write_bytes(idx(labels))
    return folder


def row(name: str, seconds: list[float], **extra: object) -> dict:
    """One result: the median of the repeats, and their range."""
    out = {"benchmark": name, "seconds": round(float(np.median(seconds)), 1),
           "min": round(min(seconds), 1), "max": round(max(seconds), 1), "repeats": len(seconds), **extra}
    print(json.dumps(out), flush=True)
    return out


def cold_and_warm(run_dirs: list[Path], cmd: list[str], out: Path, repeat: int) -> dict[str, list[float]]:
    """`repeat` times: the report of runs without a cached analysis (cold), then written again (warm)."""
    times: dict[str, list[float]] = {"cold": [], "warm": []}
    for _ in range(repeat):
        for run in run_dirs:
            shutil.rmtree(run / "analysis", ignore_errors=True)
        for kind in ("cold", "warm"):
            times[kind].append(timed([*cmd, "--out", str(out / f"report-{kind}")], out))
    return times


def digits(tmp: Path, repeat: int) -> list[dict]:
    run = tmp / "digits"
    if not (run / "metrics.json").is_file():
        subprocess.run([*VS, "train", str(ROOT / "examples" / "digits-quick.yaml"), "--out", str(run),
                        "--quiet"], check=True, capture_output=True)
    times = cold_and_warm([run], [*REPORT_VS, "report", str(run)], tmp, repeat)
    return [row(f"digits run report ({kind})", t, target_seconds=10) for kind, t in times.items()]


def study(tmp: Path, repeat: int) -> list[dict]:
    """The report against the training it reports on: a 4-variant x 2-seed digits study of 4
    epochs (recipe:quick's first four variants) trained with `study run --workers 2 --no-report`,
    then its report written (cold: the t-SNEs computed), `repeat` times in fresh folders; the
    ratio of the two wall times is taken within each repeat (this VM's speed drifts)."""
    import yaml

    quick = yaml.safe_load((ROOT / "src" / "visionstudy" / "recipes" / "quick.yaml").read_text())
    variants = dict(list(quick["variants"].items())[:4])
    spec = {"name": "ratio", "data": quick["data"], "model": quick["model"],
            "train": {**quick["train"], "epochs": 4}, "seeds": 2, "variants": variants}
    path = tmp / "ratio.yaml"
    path.write_text(yaml.safe_dump(spec))
    train, report, ratio = [], [], []
    for i in range(repeat):
        runs = tmp / f"ratio-runs-{i}"
        train.append(timed([*VS, "study", "run", str(path), "--runs-dir", str(runs), "--workers", "2",
                            "--quiet", "--no-report"], tmp))
        report.append(timed([*REPORT_VS, "report", str(runs / "ratio")], tmp))
        ratio.append(report[-1] / train[-1])
    out = [row("digits study training (4 variants x 2 seeds, 4 epochs, 2 workers)", train),
           row("its study report (cold)", report)]
    out.append({"benchmark": "report / training", "seconds": round(float(np.median(ratio)), 2),
                "min": round(min(ratio), 2), "max": round(max(ratio), 2), "repeats": repeat,
                "target_seconds": 1.0})
    print(json.dumps(out[-1]), flush=True)
    return out


def emnist(tmp: Path, n_train: int, n_test: int, max_train: int, repeat: int) -> list[dict]:
    mirror = tmp / "mirror" / "emnist"
    runs = tmp / "runs"
    out = []
    sizes = tmp / "sizes.json"
    if not (runs / "emnist-balanced" / "manifest.json").is_file():  # a --keep DIR of before: reuse it
        emnist_mirror(mirror, n_train, n_test)
        sizes.write_text(json.dumps({"test": n_test, "max_train": max_train}))
        start = time.perf_counter()
        subprocess.run([*VS, "study", "run", "recipe:emnist-balanced", "--set", "train.epochs=1", "--set",
                        "data.verify=false", "--set", f"data.max_train_samples={max_train}",
                        "--data-dir", str(mirror.parent), "--runs-dir", str(runs),
                        "--workers", "2", "--quiet", "--no-report"],
                       check=True, capture_output=True, cwd=tmp)
        out.append(row("emnist-balanced training (62 runs, 1 epoch, 2 workers)",
                       [time.perf_counter() - start], train_images=max_train, test_images=n_test))
    if sizes.is_file():  # the sizes the kept runs were trained with
        n_test = json.loads(sizes.read_text())["test"]
    variants = len(json.loads((runs / "emnist-balanced" / "manifest.json").read_text())["variants"])
    run_dirs = [f.parent for f in runs.glob("emnist-balanced/**/metrics.json")]
    times = cold_and_warm(run_dirs, [*REPORT_VS, "report", str(runs / "emnist-balanced"), "--data-dir",
                                     str(mirror.parent)], tmp, repeat)
    out += [row(f"emnist-balanced study report ({kind})", t, variants=variants, test_images=n_test,
                classes=47, target_seconds=60) for kind, t in times.items()]
    return out


def figures(tmp: Path) -> list[dict]:
    """Where the study report's time goes: the `study` benchmark's study reported in this process
    with every figure drawn in place (no drawing processes; a dataset's figures, which the real
    report draws once and copies, are drawn per variant here), each figure's drawing and writing
    timed and summed over the variants that draw it."""
    import contextlib
    from collections import defaultdict

    import visionstudy.report.drawing as drawing
    import visionstudy.report.study_report as study_report

    runs = tmp / "ratio-runs-0" / "ratio"
    if not (runs / "manifest.json").is_file():
        study(tmp, 1)
    for analysis in runs.glob("*/seed-*/analysis"):
        shutil.rmtree(analysis)  # cold: the t-SNEs computed
    seconds: dict[str, list[float]] = defaultdict(list)
    draw = drawing.draw

    def timed_draw(sketch, where):  # type: ignore[no-untyped-def]
        start = time.perf_counter()
        try:
            return draw(sketch, where)
        finally:
            seconds[where[1]].append(time.perf_counter() - start)

    drawing.draw = timed_draw
    study_report.drawing_in_background = lambda *a, **k: contextlib.nullcontext()
    from visionstudy.report.run_report import ReportOptions
    from visionstudy.report.study_report import build_study_report

    start = time.perf_counter()
    build_study_report(runs, tmp / "report-in-place", ReportOptions(progress=False))
    total = time.perf_counter() - start
    out = [row("study report, every figure drawn in place", [total]),
           row("its figures' drawing and writing", [sum(map(sum, seconds.values()))])]
    for stem, each in sorted(seconds.items(), key=lambda kv: -sum(kv[1])):
        out.append({"benchmark": f"figure {stem}", "seconds": round(sum(each), 2), "min": round(min(each), 2),
                    "max": round(max(each), 2), "repeats": len(each)})
        print(json.dumps(out[-1]), flush=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("which", choices=["digits", "study", "emnist", "figures", "all"])
    parser.add_argument("--train", type=int, default=4_700, help="EMNIST training images (the real: 112,800)")
    parser.add_argument("--test", type=int, default=4_700, help="EMNIST test images (the real: 18,800)")
    parser.add_argument("--max-train-samples", type=int, default=940, help="training images per run")
    parser.add_argument("--keep", type=Path, help="keep the mirror and runs here (and reuse them next time)")
    parser.add_argument("--repeat", type=int, default=5, help="times each report is written (median, range)")
    parser.add_argument("--python", help="the interpreter whose visionstudy writes the reports (a checkout)")
    args = parser.parse_args()
    if args.python:
        REPORT_VS[0] = args.python
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        where = args.keep or Path(tmp)
        where.mkdir(parents=True, exist_ok=True)
        if args.which in ("digits", "all"):
            rows += digits(where, args.repeat)
        if args.which in ("study", "all"):
            rows += study(where, args.repeat)
        if args.which in ("emnist", "all"):
            rows += emnist(where, args.train, args.test, args.max_train_samples, args.repeat)
        if args.which == "figures":
            rows += figures(where)
    results = ROOT / "bench" / "results"
    results.mkdir(exist_ok=True)
    lines = ["| benchmark | median s | range s | repeats | target s |", "|---|---:|---:|---:|---:|"]
    lines += [f"| {r['benchmark']} | {r['seconds']} | {r['min']}–{r['max']} | {r['repeats']} | "
              f"{r.get('target_seconds', '–')} |" for r in rows]
    stamp = f"Measured {time.strftime('%Y-%m-%d %H:%M')} with {' '.join(REPORT_VS)} ({os.cpu_count()} cores)."
    (results / f"report_speed_{args.which}.md").write_text(stamp + "\n\n" + "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
