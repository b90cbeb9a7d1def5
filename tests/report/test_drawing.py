"""Figures drawn by forked processes from their sketches: the same pixels, every file there on
leaving, errors raised, a dead drawing process costing nothing, and no fork beside other threads."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from visionstudy.report import drawing

SCRIPT = textwrap.dedent(r"""
    import os, signal, sys, json
    from functools import partial
    from pathlib import Path
    import numpy as np
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter
    from visionstudy.report import figures as F
    from visionstudy.report.drawing import drawing_in_background, drawing_workers, save_figure

    out = Path(sys.argv[1])

    def figures():
        rng = np.random.default_rng(0)
        hist = [{"epoch": e, "train_loss": 1 / e, "val_loss": 1.2 / e, "train_accuracy": 1 - 1 / (e + 1),
                 "val_accuracy": 1 - 1.3 / (e + 2), "lr": 0.1 / e} for e in range(1, 6)]
        yield "curves", partial(F.training_curves, hist)
        names = [f"class {i}" for i in range(12)]
        yield "confusion", partial(F.confusion_matrix, rng.integers(0, 30, (12, 12)), names, False)
        yield "mosaic", partial(F.image_grid, rng.random((8, 8, 8, 3)), [f"t{i}" for i in range(8)], cols=4)

    def unpicklable():  # a local function: no pickle
        fig, ax = plt.subplots()
        ax.plot([1, 2, 3])
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"<{v:g}>"))
        return fig

    report = {"workers": drawing_workers()}
    for stem, sketch in figures():
        save_figure(sketch, out / "inline", stem)
    with drawing_in_background() as writer:
        for stem, sketch in figures():
            save_figure(sketch, out / "forked", stem, pdf=True)
        save_figure(unpicklable, out / "forked", "lambda")
        report["written_before_leaving"] = sorted(p.name for p in (out / "forked").glob("*.png"))
    report["pids"] = sorted(writer.pids)
    report["me"] = os.getpid()

    with drawing_in_background() as writer:  # a drawing process killed mid-report
        first = figures()
        stem, sketch = next(first)
        for proc in list(writer.pool._processes.values()):
            try:  # killing one, the executor may end the others first
                os.kill(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.join()
        save_figure(sketch, out / "killed", stem)
        for stem, sketch in first:
            save_figure(sketch, out / "killed", stem)

    with drawing_in_background() as writer:  # the same sketches for two variants: drawn once
        for folder in ("twice/a", "twice/b"):
            for stem, sketch in figures():
                save_figure(sketch, out / folder, stem, pdf=True)
        if writer is not None:
            report["twice"] = [len(writer.pending), len(writer.copies)]

    (out / "bad.png").mkdir()  # the PNG's path is a folder: savefig fails in the drawing process
    try:
        with drawing_in_background():
            save_figure(next(figures())[1], out, "bad")
    except Exception as e:
        report["error"] = type(e).__name__
    print(json.dumps(report))
""")


def pixels(path: Path):
    import matplotlib.image as mpimg

    return mpimg.imread(path)


@pytest.fixture(scope="module")
def drawn(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """The script in a process of its own: one thread, as `visionstudy report` is."""
    import json

    out = tmp_path_factory.mktemp("drawing")
    script = out / "draw.py"
    script.write_text(SCRIPT)
    done = subprocess.run([sys.executable, str(script), str(out)], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    return out, json.loads(done.stdout.strip().splitlines()[-1])


def test_figures_drawn_by_a_forked_process_equal_those_drawn_in_place(drawn) -> None:
    import numpy as np

    out, report = drawn
    if report["workers"] == 0:
        pytest.skip("one usable core: figures are drawn in place")
    assert report["pids"] and report["me"] not in report["pids"]  # drawn elsewhere
    for stem in ("curves", "confusion", "mosaic"):
        a, b = pixels(out / "inline" / f"{stem}.png"), pixels(out / "forked" / f"{stem}.png")
        assert a.shape == b.shape and np.array_equal(a, b), stem
        assert (out / "forked" / f"{stem}.pdf").read_bytes().startswith(b"%PDF")
    assert (out / "forked" / "lambda.png").stat().st_size > 1000  # not picklable: drawn in place


def test_every_file_exists_when_the_block_is_left_even_after_a_drawing_process_died(drawn) -> None:
    out, _ = drawn
    for stem in ("curves", "confusion", "mosaic"):
        assert pixels(out / "killed" / f"{stem}.png").shape == pixels(out / "inline" / f"{stem}.png").shape


def test_a_sketch_submitted_twice_is_drawn_once_and_its_files_copied(drawn) -> None:
    """A study's variants share their data's figures (class distribution, sample images): each
    distinct sketch is drawn once, and every variant's folder still gets its own files."""
    out, report = drawn
    if report["workers"] == 0:
        pytest.skip("one usable core: figures are drawn in place")
    assert report["twice"] == [3, 3]  # 3 drawings, 3 copies
    for stem in ("curves", "confusion", "mosaic"):
        for suffix in (".png", ".pdf"):
            a, b = out / "twice" / "a" / f"{stem}{suffix}", out / "twice" / "b" / f"{stem}{suffix}"
            assert a.stat().st_size > 1000 and a.read_bytes() == b.read_bytes(), (stem, suffix)


def test_a_drawing_error_is_raised_when_the_block_is_left(drawn) -> None:
    assert drawn[1]["error"] == "IsADirectoryError"


def test_no_fork_while_another_thread_runs() -> None:
    stop = threading.Event()
    other = threading.Thread(target=stop.wait)
    other.start()
    try:
        assert drawing.drawing_workers() == 0
        with drawing.drawing_in_background() as writer:
            assert writer is None and drawing.ACTIVE.get() is None
    finally:
        stop.set()
        other.join()


def test_a_fork_that_fails_means_drawing_in_place(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from functools import partial

    from visionstudy.report import figures as F

    def no_fork(workers: int) -> None:
        raise OSError(12, "Cannot allocate memory")

    monkeypatch.setattr(drawing, "BackgroundWriter", no_fork)
    with drawing.drawing_in_background(workers=1) as writer:
        assert writer is None
        drawing.save_figure(partial(F.metric_line, [1, 2], [0.5, 0.6], [None, None], "x", "y", "t"),
                            tmp_path, "line")
        assert (tmp_path / "line.png").stat().st_size > 1000  # written at once, in place


def test_the_report_modules_import_without_torch():
    """torch (1.5 s) is imported by the image figures only, while the drawing process and the t-SNE
    use the other cores: the imports before a report's first figure went from 3.6–4.3 s to 1.5–1.8 s."""
    code = ("import sys, visionstudy.cli, visionstudy.report, visionstudy.report.study_report, "
            "visionstudy.evaluate; print(sorted(m for m in ('torch', 'captum') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_drawing_processes_end_with_the_report_that_forked_them() -> None:
    """A report killed (SIGKILL, a scheduler's time limit) left its drawing processes waiting on
    their queue forever, holding the terminal's output open (a `| tail` never returned)."""
    import os
    import time

    code = ("import os, signal; from visionstudy.report.drawing import BackgroundWriter\n"
            "w = BackgroundWriter(2); w.pool.submit(int).result(); w.pool.submit(int).result()\n"
            "print(' '.join(map(str, w.pool._processes)), flush=True); os.kill(os.getpid(), signal.SIGKILL)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == -9, done.stderr
    pids = [int(p) for p in done.stdout.split()]
    assert pids

    def alive(pid: int) -> bool:
        try:
            return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] != "Z"
        except OSError:
            return False

    deadline = time.monotonic() + 30
    while any(alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    left = [p for p in pids if alive(p)]
    for p in left:
        os.kill(p, 9)
    assert not left
