"""Writing report figures: the one owner of turning a figure into files.

A report names each figure as a *sketch*: its figure function with the arrays it draws bound
(`functools.partial(F.training_curves, history)`), not a drawn Figure. Building and rasterising a
figure was most of a report's time after the imports (bench/report_speed.py); on a machine with
a second core, a report hands each sketch, pickled (arrays and names only), to a process forked
from itself at the start, which draws it, writes its files and closes it, while the report goes
on computing the next. The files are all written before the HTML (which embeds them) is rendered.

    with drawing_in_background():      # build_report, build_study_report
        ...save_figure(partial(F.training_curves, history), folder, "curves")...
    # every figure file exists here, or the first drawing error was raised

Without a usable second core, or where forking is not safe (a process with other Python threads:
a notebook's kernel, a test runner), or for a sketch that cannot be pickled, figures are drawn in
place, by the same function.
"""

from __future__ import annotations

import hashlib
import multiprocessing as mp
import os
import pickle
import shutil
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

MAX_WORKERS = 4  # drawing processes at most (a 50-variant study report keeps 4 busy)
Jobs = list[tuple[Path, dict[str, Any]]]  # (file, savefig options) per copy of one figure
Sketch = Callable[[], Figure]  # a figure function with its data bound: drawn where it is written
Where = tuple[Path, str, bool, bool]  # folder, stem, pdf, svg


def is_mosaic(fig: Figure) -> bool:
    """A figure that is one image on one axes (an image grid): vector copies would only wrap it."""
    return len(fig.axes) == 1 and len(fig.axes[0].images) == 1 and not fig.axes[0].lines


def write_files(fig: Figure, jobs: Jobs) -> None:
    """Every figure lays itself out (tight_layout) so that its texts stay on the canvas (the
    figure tests check each text's box) and is drawn once per file: no `bbox_inches="tight"`,
    and no layout engine, whose presence (even the placeholder `tight_layout` leaves) makes
    savefig lay the figure out again in a draw of its own before the real one."""
    fig.set_layout_engine(None)  # None, not "none" (which keeps a placeholder)
    for path, options in jobs:
        fig.savefig(path, **options)


def figure_jobs(fig: Figure, folder: Path, stem: str, pdf: bool, svg: bool) -> Jobs:
    """`stem`.png (150 dpi), and when asked `stem`.pdf (vector, for LaTeX) and `stem`.svg (not
    for image grids: one raster mosaic)."""
    from visionstudy.report.figures import DPI  # the vector copies (PDF for LaTeX, SVG) carry print quality

    jobs: Jobs = [(folder / f"{stem}.png", {"dpi": DPI})]
    if svg and not is_mosaic(fig):
        jobs.append((folder / f"{stem}.svg", {}))
    if pdf:
        jobs.append((folder / f"{stem}.pdf", {}))
    return jobs


def draw(sketch: Sketch, where: Where) -> int:
    """Draw one figure, write its files, close it; returns the pid (a test checks where the
    drawing happened)."""
    fig = sketch()
    try:
        write_files(fig, figure_jobs(fig, *where))
    finally:
        plt.close(fig)
    return os.getpid()


def draw_pickled(blob: bytes, where: Where) -> int:
    return draw(pickle.loads(blob), where)


def copy_files(source: Where, where: Where) -> None:
    """The files of a figure drawn at `source`, copied to `where` (the same sketch: same pixels)."""
    for suffix in (".png", ".svg", ".pdf"):
        drawn = source[0] / f"{source[1]}{suffix}"
        if drawn.is_file():
            shutil.copyfile(drawn, where[0] / f"{where[1]}{suffix}")


PR_SET_PDEATHSIG = 1  # linux/prctl.h


def die_with_parent(parent: int) -> None:
    """A drawing process's start: it ends when the report that forked it does (killed, or out of
    time under a scheduler). It would otherwise wait on its queue forever, its inherited copy of
    the queue's pipe keeping it open, and hold the terminal's output open with it."""
    import ctypes

    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # the report died before the line above
        os._exit(0)


@dataclass
class BackgroundWriter:
    """A pool of drawing processes forked from this one; `submit` returns False when a sketch
    cannot be pickled (the caller then draws it in place). A sketch submitted again (a study's
    variants share their data's figures: its class distribution, its sample images) is drawn
    once; its files are copied."""

    workers: int
    pool: ProcessPoolExecutor = field(init=False)
    pending: list[tuple[Future[int], bytes, Where]] = field(default_factory=list)
    pids: set[int] = field(default_factory=set)  # where figures were drawn
    first: dict[tuple[bytes, bool, bool], Where] = field(default_factory=dict)  # sketch → where drawn
    copies: list[tuple[Where, Where]] = field(default_factory=list)  # (drawn at, copy to)

    def __post_init__(self) -> None:
        self.pool = ProcessPoolExecutor(self.workers, mp_context=mp.get_context("fork"),
                                        initializer=die_with_parent, initargs=(os.getpid(),))
        self.pool.submit(int).result()  # fork now, before this process starts any thread (t-SNE)

    def submit(self, sketch: Sketch, where: Where) -> bool:
        try:
            blob = pickle.dumps(sketch)
        except (pickle.PicklingError, TypeError, AttributeError):
            return False
        same = (hashlib.sha256(blob).digest(), where[2], where[3])
        if same in self.first:
            if self.first[same] != where:
                self.copies.append((self.first[same], where))
            return True
        try:
            self.pending.append((self.pool.submit(draw_pickled, blob, where), blob, where))
        except BrokenProcessPool:
            return False
        self.first[same] = where
        return True

    def wait(self) -> None:
        """Every submitted figure written; a drawing error is raised here as it would have been in
        place. A drawing process that died (killed, out of memory) costs nothing: its figures are
        drawn here from their sketches."""
        pending, self.pending = self.pending, []
        for future, blob, where in pending:
            try:
                self.pids.add(future.result())
            except BrokenProcessPool:
                self.pids.add(draw_pickled(blob, where))
        copies, self.copies = self.copies, []
        for source, where in copies:
            copy_files(source, where)

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)


ACTIVE: ContextVar[BackgroundWriter | None] = ContextVar("visionstudy_figure_writer", default=None)


def drawing_workers() -> int:
    """Drawing processes this report may use: one per usable core (the report's own work beside
    them is small: bench/report_speed.py), none (draw in place) with one core,
    off Linux (no fork), or with other Python threads running (forking them is unsafe)."""
    from visionstudy.validate import usable_cores

    cores = usable_cores()
    if cores < 2 or not sys.platform.startswith("linux") or threading.active_count() > 1:
        return 0
    return min(cores, MAX_WORKERS)


@contextmanager
def drawing_in_background(workers: int | None = None) -> Iterator[BackgroundWriter | None]:
    """Figures saved inside are drawn by forked processes; on leaving, all are written."""
    outer = ACTIVE.get()
    if outer is not None:  # inside another report's block: its writer, and its files on leaving
        yield outer
        outer.wait()
        return
    count = drawing_workers() if workers is None else workers
    if count <= 0:
        yield None
        return
    try:
        writer = BackgroundWriter(count)
    except (OSError, BrokenProcessPool):  # no fork here (out of memory, a process limit): in place
        yield None
        return
    token = ACTIVE.set(writer)
    try:
        yield writer
        writer.wait()
    finally:
        ACTIVE.reset(token)
        writer.close()


def save_figure(sketch: Sketch, folder: Path, stem: str, pdf: bool = False, svg: bool = False) -> str:
    """Draw `sketch` into `stem`.png (150 dpi) in `folder`, and when asked `stem`.pdf and
    `stem`.svg; returns the PNG's file name. Inside `drawing_in_background` the files exist once
    it is left."""
    folder.mkdir(parents=True, exist_ok=True)
    where: Where = (folder, stem, pdf, svg)
    writer = ACTIVE.get()
    if writer is None or not writer.submit(sketch, where):
        draw(sketch, where)
    return f"{stem}.png"
