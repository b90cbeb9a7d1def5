"""Writing report figures: the one owner of turning a matplotlib Figure into files.

Drawing a figure into a PNG (`savefig`) was half of a run report's time after the imports
(bench/report_speed.py). On a machine with a second core, a report hands each figure, pickled
(a small part of drawing it), to a process forked from
itself at the start and goes on building the next; the files are all written before the HTML
(which embeds them) is rendered.

    with drawing_in_background():      # build_report, build_study_report
        ...save_figure(fig, folder, "curves")...
    # every figure file exists here, or the first drawing error was raised

Without a usable second core, or where forking is not safe (a process with other Python threads:
a notebook's kernel, a test runner), figures are written in place, as before.
"""

from __future__ import annotations

import gc
import multiprocessing as mp
import os
import pickle
import sys
import threading
import weakref
from collections.abc import Iterator
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
from matplotlib.transforms import TransformNode  # noqa: E402

DPI = 150  # PNG resolution; the vector copies (PDF for LaTeX, SVG on request) carry print quality
MAX_WORKERS = 4  # drawing processes at most (a 50-variant study report keeps 4 busy)
Jobs = list[tuple[Path, dict[str, Any]]]  # (file, savefig options) per copy of one figure


def is_mosaic(fig: Figure) -> bool:
    """A figure that is one image on one axes (an image grid): vector copies would only wrap it."""
    return len(fig.axes) == 1 and len(fig.axes[0].images) == 1 and not fig.axes[0].lines


def write_files(fig: Figure, jobs: Jobs) -> None:
    """Every figure lays itself out (tight_layout) so that its texts stay on the canvas (the
    figure tests check each text's box): no `bbox_inches="tight"`, which draws each figure a
    second time to measure it (a tenth of a report's drawing)."""
    for path, options in jobs:
        fig.savefig(path, **options)


def figure_transforms(fig: Figure) -> list[TransformNode]:
    """Every transform reachable from `fig` through matplotlib objects and plain containers (not
    through classes or modules: those lead to the whole process)."""
    seen, stack, nodes = {id(fig)}, [fig], []
    while stack:
        obj = stack.pop()
        if isinstance(obj, TransformNode):
            nodes.append(obj)
        for ref in gc.get_referents(obj):
            if id(ref) in seen or isinstance(ref, type):
                continue
            if isinstance(ref, dict | list | tuple | set) or type(ref).__module__.startswith("matplotlib"):
                seen.add(id(ref))
                stack.append(ref)
    return nodes  # type: ignore[return-value]


def link(child: TransformNode, parent: TransformNode) -> None:
    """`parent` told of every change of `child` (matplotlib's own `set_children`, one link)."""
    key = id(parent)
    links: dict[int, Any] = child._parents  # type: ignore[attr-defined]  # matplotlib's private links

    def unlink(_: object) -> None:
        links.pop(key, None)

    links[key] = weakref.ref(parent, unlink)


def relink_transforms(fig: Figure) -> None:
    """Mend an unpickled figure's transform tree. matplotlib keys each transform's parents by
    `id()` and unpickles the old process's ids as keys: a transform made later at one of those
    addresses overwrites a link (and a dying one's callback deletes another's), so a parent misses
    a change, such as savefig's dpi, and draws from a stale matrix (a legend's handle drawn off its
    label: one hash seed in 25 on the training curves, matplotlib 3.11). Rebuilt here from the
    objects: each transform's live parents under their real ids, and every transform a parent
    holds as an attribute (matplotlib's parents hold their children so)."""
    nodes = figure_transforms(fig)
    for node in nodes:
        parents = [ref() for ref in node._parents.values()]  # type: ignore[attr-defined]
        node._parents = {}  # type: ignore[attr-defined]
        for parent in parents:
            if parent is not None:
                link(node, parent)
    for parent in nodes:
        for child in getattr(parent, "__dict__", {}).values():
            if isinstance(child, TransformNode):
                link(child, parent)


def write_pickled(blob: bytes, jobs: Jobs) -> int:
    """In a drawing process: the figure back from its pickle, its transforms relinked, written,
    closed; returns the pid (a test checks where the drawing happened)."""
    fig = pickle.loads(blob)
    relink_transforms(fig)
    try:
        write_files(fig, jobs)
    finally:
        plt.close(fig)
    return os.getpid()


@dataclass
class BackgroundWriter:
    """A pool of drawing processes forked from this one; `submit` returns False when a figure
    cannot be pickled (the caller then writes it in place)."""

    workers: int
    pool: ProcessPoolExecutor = field(init=False)
    pending: list[tuple[Future[int], bytes, Jobs]] = field(default_factory=list)
    pids: set[int] = field(default_factory=set)  # where figures were drawn

    def __post_init__(self) -> None:
        self.pool = ProcessPoolExecutor(self.workers, mp_context=mp.get_context("fork"))
        self.pool.submit(int).result()  # fork now, before this process starts any thread (t-SNE)

    def submit(self, fig: Figure, jobs: Jobs) -> bool:
        try:
            blob = pickle.dumps(fig)
        except (pickle.PicklingError, TypeError, AttributeError):
            return False
        try:
            self.pending.append((self.pool.submit(write_pickled, blob, jobs), blob, jobs))
        except BrokenProcessPool:
            return False
        return True

    def wait(self) -> None:
        """Every submitted figure written; a drawing error is raised here as it would have been in
        place. A drawing process that died (killed, out of memory) costs nothing: its figures are
        drawn here from their pickles."""
        pending, self.pending = self.pending, []
        for future, blob, jobs in pending:
            try:
                self.pids.add(future.result())
            except BrokenProcessPool:
                self.pids.add(write_pickled(blob, jobs))

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)


ACTIVE: ContextVar[BackgroundWriter | None] = ContextVar("visionstudy_figure_writer", default=None)


def drawing_workers() -> int:
    """Drawing processes this report may use: 0 (draw in place) without a second usable core,
    off Linux (no fork), or with other Python threads running (forking them is unsafe)."""
    from visionstudy.validate import usable_cores

    if not sys.platform.startswith("linux") or threading.active_count() > 1:
        return 0
    return min(usable_cores() - 1, MAX_WORKERS)


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


def save_figure(fig: Figure, folder: Path, stem: str, pdf: bool = False, svg: bool = False) -> str:
    """Write `stem`.png (150 dpi) into `folder`, and when asked `stem`.pdf (vector, for LaTeX) and
    `stem`.svg (not for image grids: one raster mosaic); returns the PNG's file name. Inside
    `drawing_in_background` the files exist once it is left."""
    folder.mkdir(parents=True, exist_ok=True)
    jobs: Jobs = [(folder / f"{stem}.png", {"dpi": DPI})]
    if svg and not is_mosaic(fig):
        jobs.append((folder / f"{stem}.svg", {}))
    if pdf:
        jobs.append((folder / f"{stem}.pdf", {}))
    writer = ACTIVE.get()
    if writer is None or not writer.submit(fig, jobs):
        write_files(fig, jobs)
    plt.close(fig)
    return f"{stem}.png"
