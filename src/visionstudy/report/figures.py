"""Report figures (matplotlib): each function takes plain arrays and returns a Figure.

Layouts adapt to the number of classes: annotated cells and named ticks for a few classes,
sorted horizontal bars and index ticks for 100.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Sequence
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.ticker import Formatter, FuncFormatter, LogFormatter, MaxNLocator  # noqa: E402

from visionstudy.evaluate import Calibration, RocCurves  # noqa: E402

TICK_CHARS = 14  # class names up to this long label ticks; longer ones get indices and a key
ANNOTATE = 20  # up to this many classes, confusion-matrix cells show their values
BLANK_ZEROS = 10  # beyond this many classes, cells that hold no image are left blank
CELL = 0.2  # inches per class on class axes: a 7-pt name fits, 100 classes make a 22-inch figure
DPI = 150  # the PNGs' resolution (report.drawing writes them at it; label_points measures at it)
plt.rcParams.update({"figure.dpi": 100, "axes.grid": False, "font.size": 10,
                     "axes.spines.top": False, "axes.spines.right": False, "svg.fonttype": "none",
                     "text.parse_math": False})  # class names such as "$$" or "a$b^$c" are plain text


def class_colors(k: int) -> Any:
    cmap = plt.get_cmap("tab10" if k <= 10 else "tab20" if k <= 20 else "turbo")
    return [cmap(i if k <= 20 else i / max(k - 1, 1)) for i in range(k)]


def human(n: float, digits: int = 3) -> str:
    """13930 → 13.9k (axis labels of counts), to `digits` significant digits."""
    for unit, size in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(n) >= size:
            return f"{n / size:.{digits}g}{unit}"
    return f"{n:.{max(digits, 6)}g}"


class CountFormatter(Formatter):
    """Counts as 13.9k, with as many significant digits as the ticks need to read apart: a narrow
    range of parameters (13,710 to 13,960) ticked 13.8k three times."""

    digits = 3

    def set_locs(self, locs: list[float]) -> None:
        super().set_locs(locs)
        apart = (d for d in range(3, 10) if len({human(v, d) for v in locs}) == len(set(locs)))
        self.digits = next(apart, 10)

    def __call__(self, x: float, pos: int | None = None) -> str:
        return human(x, self.digits)


def plain_tick(v: float, _: int) -> str:
    return f"{v:g}"


class PlainLogFormatter(LogFormatter):
    """matplotlib's choice of which log ticks to label, written as plain text: its own labels are
    mathtext, which this module does not parse (`text.parse_math`), so they read
    `$\\mathdefault{10^{4}}$`. Counts read 10k, 1M."""

    def __init__(self, counts: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.counts = counts

    def __call__(self, x: float, pos: int | None = None) -> str:
        label = super().__call__(x, pos)
        return human(x) if label and self.counts else label


def log_scale(ax: Any, which: str, counts: bool = False) -> None:
    """Put the `which` ("x" or "y") axis on a log scale with plain-text tick labels."""
    axis = ax.xaxis if which == "x" else ax.yaxis
    (ax.set_xscale if which == "x" else ax.set_yscale)("log")
    axis.set_major_formatter(PlainLogFormatter(counts))
    axis.set_minor_formatter(PlainLogFormatter(counts, labelOnlyBase=False, minor_thresholds=(1, 0.4)))


def short(name: str, width: int = 14) -> str:
    return name if len(name) <= width else name[: width - 1] + "…"


def shorts(names: Sequence[str], width: int) -> list[str]:
    """Names cut to `width` where that keeps them apart, else whole: two variants must never
    read the same ('baseline+channels…' for two different sweeps)."""
    cut = [short(n, width) for n in names]
    return cut if len(set(cut)) == len(set(names)) else list(names)


# ----------------------------------------------------------------------------------- curves


def epoch_ticks(ax: Any) -> None:
    """Whole epochs on the x axis, one tick even for a 1-epoch run (not 0.945…1.050)."""
    ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))


def training_curves(history: Sequence[dict[str, float]], best_epoch: int | None = None,
                    val_label: str = "validation") -> Figure:
    """Loss and accuracy (train vs val, the gap shaded) and the learning rate, per epoch. Without
    accuracy (a regression run) the panels are loss and learning rate."""
    epochs = [r["epoch"] for r in history]
    keys = ["loss"]
    if any(np.isfinite(float(r["train_accuracy"])) for r in history):
        keys.append("accuracy")
    fig, axes = plt.subplots(1, len(keys) + 1, figsize=(14 if len(keys) == 2 else 10, 3.8))
    for ax, key in zip(axes[:-1], keys, strict=True):
        train = np.array([r[f"train_{key}"] for r in history], dtype=float)
        val = np.array([r[f"val_{key}"] for r in history], dtype=float)
        ax.plot(epochs, train, "-o", ms=3, label="train", color="#1f77b4")
        if np.isfinite(val).any():
            ax.plot(epochs, val, "-o", ms=3, label=val_label, color="#d62728")
            ax.fill_between(epochs, train, val, color="#999999", alpha=0.15, label=f"train–{val_label} gap")
        if best_epoch:
            ax.axvline(best_epoch, color="#555555", ls=":", lw=1, label=f"best epoch {best_epoch}")
        ax.set(xlabel="epoch", ylabel=key, title=key.capitalize())
        epoch_ticks(ax)
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    lr_ax = axes[-1]
    lr_ax.plot(epochs, [r["lr"] for r in history], "-o", ms=3, color="#2ca02c")
    lr_ax.set(xlabel="epoch", ylabel="learning rate", title="Learning rate (epoch start)")
    if min(r["lr"] for r in history) > 0:
        log_scale(lr_ax, "y")
    lr_ax.grid(alpha=0.3)
    epoch_ticks(lr_ax)
    fig.tight_layout()
    return fig


def step_curves(steps: Sequence[dict[str, float]], history: Sequence[dict[str, float]] = (),
                val_label: str = "validation") -> Figure:
    """Per-batch training loss (and accuracy when the task has one) against the batch number, with
    the epoch boundaries dotted (train.log_every_n_steps) and each epoch's validation value at the
    end of its epoch, where it was measured."""
    x = [r["step"] for r in steps]
    keys = ["loss"] + (["accuracy"] if any(np.isfinite(float(r["accuracy"])) for r in steps) else [])
    fig, axes = plt.subplots(1, len(keys), figsize=(7 * len(keys), 3.6), squeeze=False)
    starts = {int(r["epoch"]): r["step"] - r["batch"] for r in steps}  # batches done before each epoch
    size = next((starts[e + 1] - starts[e] for e in sorted(starts) if e + 1 in starts),
                max(x, default=0) - starts.get(min(starts, default=1), 0))  # one epoch: its last batch
    for ax, key in zip(axes[0], keys, strict=True):
        ax.plot(x, [r[key] for r in steps], lw=0.8, color="#1f77b4", label="train (per batch)")
        for epoch, start in starts.items():
            if epoch > 1:
                ax.axvline(start, color="#999999", ls=":", lw=0.8)
        ends = [(starts.get(int(r["epoch"]), (int(r["epoch"]) - 1) * size) + size,
                 float(r.get(f"val_{key}", math.nan))) for r in history]
        ends = [(e, v) for e, v in ends if np.isfinite(v)]
        if ends:
            ax.plot(*zip(*ends, strict=True), "o-", ms=4, color="#d62728", label=f"{val_label} (epoch end)")
            ax.legend(fontsize=8)
        ax.set(xlabel="batch", ylabel=key, title=f"Training {key} per batch")
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def overlaid_curves(runs: Sequence[tuple[str, Sequence[dict[str, float]]]]) -> Figure:
    """Validation (solid) and training (dashed) loss and accuracy of several runs on shared axes:
    accuracy only where a run has one (not a regression's), a marker where a run has one epoch."""
    keys = [k for k in ("loss", "accuracy") if any(math.isfinite(r.get(f"val_{k}", math.nan))
                                                   or math.isfinite(r.get(f"train_{k}", math.nan))
                                                   for _, history in runs for r in history)] or ["loss"]
    fig, axes = plt.subplots(1, len(keys), figsize=(6.5 * len(keys), 4.2), squeeze=False)
    colors = class_colors(max(len(runs), 1))
    for (label, history), color in zip(runs, colors, strict=False):
        epochs = [r["epoch"] for r in history]
        style = {"marker": "o", "ms": 6} if len(epochs) == 1 else {}  # a lone point has no line
        for ax, key in zip(axes[0], keys, strict=True):
            ax.plot(epochs, [r.get(f"val_{key}", math.nan) for r in history], "-", color=color, label=label,
                    **style)
            ax.plot(epochs, [r.get(f"train_{key}", math.nan) for r in history], "--", color=color,
                    alpha=0.6, **style)
    for ax, key in zip(axes[0], keys, strict=True):
        ax.set(xlabel="epoch", ylabel=key, title=f"{key.capitalize()} (solid: validation, dashed: train)")
        epoch_ticks(ax)
        ax.grid(alpha=0.3)
    axes[0][-1].legend(fontsize=8, loc="best")
    fig.tight_layout()
    return fig


def mean_std_curves(groups: Sequence[tuple[str, np.ndarray, np.ndarray, np.ndarray | None]],
                    ylabel: str, title: str) -> Figure:
    """Curves as mean with a shaded ±1 std band (none for one run): (label, epochs, mean, std) per
    group. Markers keep a 1-epoch curve visible."""
    fig, ax = plt.subplots(figsize=(9, 4.8))
    for (label, epochs, mean, std), color in zip(groups, class_colors(max(len(groups), 1)), strict=False):
        ax.plot(epochs, mean, "-o", ms=3.5 if len(epochs) > 1 else 6, color=color, label=label)
        if std is not None:
            ax.fill_between(epochs, mean - std, mean + std, color=color, alpha=0.18)
    ax.set(xlabel="epoch", ylabel=ylabel)
    # over the figure, not the axes: a two-column legend leaves the axes too narrow for a long title
    fig.suptitle("\n".join(textwrap.wrap(title, 100)), fontsize=11)
    epoch_ticks(ax)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7 if len(groups) > 12 else 8, loc="center left", bbox_to_anchor=(1.0, 0.5),
              ncol=1 if len(groups) <= 24 else 2)
    fig.tight_layout()
    return fig


def metric_line(x: Sequence[Any], means: Sequence[float], stds: Sequence[float | None], xlabel: str,
                ylabel: str, title: str, categorical: bool = False, joined: bool = True) -> Figure:
    """A metric (mean ± std) along a numeric axis in numeric order (log-scaled when the values span
    over a decade), or along named steps (a ladder, non-numeric sweep values) in the given order.
    `joined`: a line through the points, for an axis whose order means something (numbers, a
    ladder's steps); unordered choices (optimizers, activations) are points alone."""
    fig, ax = plt.subplots(figsize=(max(6.0, 0.75 * len(x) + 2.5), 4.2))
    xs = np.arange(len(x), dtype=float) if categorical else np.asarray(x, dtype=float)
    err = None if all(s is None for s in stds) else [0.0 if s is None else s for s in stds]
    ax.errorbar(xs, means, yerr=err, fmt="-o" if joined else "o", capsize=4, ms=5, color="#4c72b0",
                ecolor="#7f9cc7")
    for xi, m in zip(xs, means, strict=True):
        ax.annotate(f"{m:.4f}", (xi, m), textcoords="offset points", xytext=(0, 8), ha="center", fontsize=7)
    if categorical:
        turn = len(x) > 3 or max(len(str(v)) for v in x) > 10
        ax.set_xticks(xs, [str(v) for v in x], rotation=30 if turn else 0, ha="right" if turn else "center",
                      fontsize=8)
        ax.set_xlim(-0.5, len(x) - 0.5)  # half a step beside the first and last: off the axes' edges
    else:
        if xs.min() > 0 and xs.max() / xs.min() >= 10:
            ax.set_xscale("log")
        ax.set_xticks(xs, [f"{v:g}" for v in xs], fontsize=8)
        ax.minorticks_off()
    ax.set(xlabel=xlabel, ylabel=ylabel, title=title)
    ax.margins(y=0.15)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def interaction_lines(x: Sequence[str], series: Sequence[tuple[str, Sequence[float], Sequence[float | None]]],
                      xlabel: str, ylabel: str, title: str, joined: bool = True) -> Figure:
    """A metric along one key's values (categorical), one line per value of a second key, each
    point mean ± std over its runs (a two-way grid's interaction). `joined`: lines through the
    points, along values whose order means something (numbers); unordered choices (optimizers)
    are points alone, as in `metric_line`."""
    import textwrap

    fig, ax = plt.subplots(figsize=(max(6.0, 1.5 * len(x) + 3.5), 4.6))
    xs = np.arange(len(x), dtype=float)
    width = 0.08 * (len(series) - 1)
    for i, ((label, means, stds), color) in enumerate(zip(series, class_colors(max(len(series), 1)),
                                                         strict=False)):
        shift = xs + (i / max(len(series) - 1, 1) - 0.5) * width  # bars of one x side by side
        err = None if all(s is None for s in stds) else [0.0 if s is None else s for s in stds]
        ax.errorbar(shift, means, yerr=err, fmt="-o" if joined else "o", capsize=3, ms=4, color=color,
                    label=label)
    ax.set_xticks(xs, [textwrap.fill(v, 14) for v in x], fontsize=8)  # level, on lines of their own
    ax.set(xlabel=xlabel, ylabel=ylabel, title=title)
    ax.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.0, 0.5))
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def cost_scatter(points: Sequence[tuple[str, float, float | None, float | None, float | None]],
                 ylabel: str, example: str = "image") -> Figure:
    """The metric against parameters, FLOPs and train time: (label, metric, params, flops, seconds)
    per variant, one panel each (log axes for counts); labels written for up to 15 variants.
    `example`: what one input is (image, set) in the FLOPs axis label."""
    panels = [(2, "parameters", True), (3, f"FLOPs per {example}", True), (4, "train seconds", False)]
    panels = [p for p in panels if any(pt[p[0]] for pt in points)]
    fig, axes = plt.subplots(1, max(len(panels), 1), figsize=(5.2 * max(len(panels), 1), 4.2), squeeze=False)
    colors = class_colors(max(len(points), 1))
    names = shorts([pt[0] for pt in points], 18)
    for ax, (i, xlabel, log) in zip(axes[0], panels, strict=False):
        for pt, color in zip(points, colors, strict=False):
            if pt[i]:
                ax.scatter(pt[i], pt[1], s=28, color=color, zorder=3)
        xs = [float(pt[i] or 0) for pt in points if pt[i]]
        if log and max(xs) / min(xs) >= 10:  # counts spanning decades; a narrow range stays linear
            log_scale(ax, "x", counts=True)
        else:
            ax.ticklabel_format(axis="x", style="plain", useOffset=False)
            ax.xaxis.set_major_formatter(CountFormatter() if log else FuncFormatter(plain_tick))
            ax.xaxis.set_major_locator(MaxNLocator(5))  # close counts (13.82k, 13.84k, ...) crowded
        ax.set(xlabel=xlabel, ylabel=ylabel, title=f"{ylabel.capitalize()} vs {xlabel}")
        ax.grid(alpha=0.3)
    fig.tight_layout()
    if len(points) <= 15:
        spots = [[(float(pt[i] or 0), pt[1]) if pt[i] else None for pt in points] for i, _, _ in panels]
        if not all(label_points(ax, xy, names) for ax, xy in zip(axes[0], spots, strict=False)):
            for ax in axes[0]:  # close points: the names in a key instead, the colours say which
                for text in list(ax.texts):
                    text.remove()
            handles = [plt.Line2D([], [], marker="o", linestyle="", color=c) for c in colors]
            axes[0][0].legend(handles, names, fontsize=7, loc="best", framealpha=0.8)
    return fig


# a name's places around its point, nearest first: offset in points, alignment
LABEL_SPOTS = [((dx * r, dy * r), ha, va) for r in (1, 2.5)
               for dx, dy, ha, va in ((4, 4, "left", "bottom"), (4, -4, "left", "top"),
                                      (-4, 4, "right", "bottom"), (-4, -4, "right", "top"),
                                      (6, 0, "left", "center"), (-6, 0, "right", "center"),
                                      (0, 6, "center", "bottom"), (0, -6, "center", "top"))]


def label_points(ax: Any, points: Sequence[tuple[float, float] | None], names: Sequence[str]) -> bool:
    """Write each name beside its point (None: no point) at the first of `LABEL_SPOTS` where it stays
    inside the axes and covers no other name and no other point; False where some name finds no
    such place (the names placed before it stay: the caller removes them). Call after the
    figure's layout: it measures the drawn texts."""
    fig, shown = ax.figure, ax.figure.dpi
    fig.set_dpi(DPI)  # measured as the PNG is drawn: text widths do not scale exactly with the dpi
    try:
        return place_labels(ax, points, names)
    finally:
        fig.set_dpi(shown)


def place_labels(ax: Any, points: Sequence[tuple[float, float] | None], names: Sequence[str]) -> bool:
    from matplotlib.transforms import Bbox

    renderer = ax.figure.canvas.get_renderer()
    inside = ax.get_window_extent(renderer)
    r = 3 * ax.figure.dpi / 72  # a 28-pt² marker's half width
    centres = {k: ax.transData.transform(xy) for k, xy in enumerate(points) if xy is not None}
    marks = {k: Bbox.from_extents(x - r, y - r, x + r, y + r) for k, (x, y) in centres.items()}
    taken: list[Any] = []
    for k, (xy, name) in enumerate(zip(points, names, strict=False)):
        if xy is None:
            continue
        others = taken + [box for j, box in marks.items() if j != k]
        for offset, ha, va in LABEL_SPOTS:
            text = ax.annotate(name, xy, textcoords="offset points", xytext=offset, fontsize=7, ha=ha, va=va)
            box = text.get_window_extent(renderer).padded(ax.figure.dpi / 72)  # a point apart at any dpi
            if inside.containsx(box.x0) and inside.containsx(box.x1) and inside.containsy(box.y0) \
                    and inside.containsy(box.y1) and not any(box.overlaps(o) for o in others):
                taken.append(box)
                break
            text.remove()
        else:
            return False
    return True


def confusion_grid(panels: Sequence[tuple[str, np.ndarray]], names: Sequence[str]) -> Figure:
    """Normalised confusion matrices side by side (a ladder's steps), one colour scale."""
    n = len(panels)
    cols = min(n, 4)
    rows = -(-n // cols)
    k = len(names)
    # tall enough that each square panel is limited by its width: a height-limited one kept its
    # x label below the canvas (tight_layout meets fixed-aspect axes)
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 4.8 * rows + 0.4), squeeze=False)
    for ax in axes.flat[n:]:
        ax.axis("off")
    for ax, (title, cm) in zip(axes.flat, panels, strict=False):
        values = cm.astype(float) / np.maximum(cm.sum(1, keepdims=True), 1)
        ax.imshow(values, cmap="Blues", vmin=0, vmax=1, interpolation="nearest")
        if k <= 12:
            ax.set_xticks(range(k), [short(c, 8) for c in names], rotation=90, fontsize=7)
            ax.set_yticks(range(k), [short(c, 8) for c in names], fontsize=7)
        else:
            ax.set(xticks=[], yticks=[])
        ax.set_title(title, fontsize=9)
        ax.set(xlabel="predicted", ylabel="true")
    fig.suptitle("Confusion matrices along the ladder (rows normalised by true class)", fontsize=11)
    fig.tight_layout()
    return fig


# ------------------------------------------------------------------------------- per class


def needs_key(names: Sequence[str]) -> bool:
    """Whether ticks show indices (some name is too long to label a tick), so a key must go beside."""
    return any(len(n) > TICK_CHARS for n in names)


def class_ticks(ax: Any, names: Sequence[str], axis: str) -> None:
    """One tick per class, named when the names fit (see `needs_key`), else numbered."""
    k = len(names)
    ticks = np.arange(k)
    labels = [str(i) for i in ticks] if needs_key(names) else list(names)
    size = 9 if k <= 12 else 7
    if axis == "x":
        ax.set_xticks(ticks, labels, rotation=90 if k > 6 or max(map(len, labels)) > 6 else 0,
                      fontsize=size)
    else:
        ax.set_yticks(ticks, labels, fontsize=size)


def confusion_matrix(cm: np.ndarray, names: Sequence[str], normalised: bool) -> Figure:
    """Counts, or rows normalised to recall; cell values written for up to 20 classes."""
    k = len(names)
    values = cm.astype(float)
    if normalised:
        values = values / np.maximum(values.sum(1, keepdims=True), 1)
    side = max(5.0, CELL * k + 2.5)
    fig, ax = plt.subplots(figsize=(side + 1, side))
    im = ax.imshow(values, cmap="Blues", interpolation="nearest")
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    if k <= ANNOTATE:
        threshold = values.max() / 2
        for i in range(k):
            for j in range(k):
                text = f"{values[i, j]:.2f}" if normalised else f"{int(cm[i, j])}"
                if k > BLANK_ZEROS and cm[i, j] == 0:
                    continue  # an empty cell, left blank: its errors stand out (and 400 texts take a second)
                ax.text(j, i, text, ha="center", va="center", fontsize=8 if k <= 10 else 6,
                        color="white" if values[i, j] > threshold else "black", in_layout=False)
    class_ticks(ax, names, "x")
    class_ticks(ax, names, "y")
    ax.set(xlabel="predicted class", ylabel="true class",
           title="Confusion matrix, " + ("normalised by true class" if normalised else "counts"))
    fig.tight_layout()
    return fig


def per_class_bars(values: Sequence[float | None], names: Sequence[str], label: str,
                   mean: float | None = None) -> Figure:
    """Per-class values as bars: upright for up to 30 classes, sorted horizontal bars beyond."""
    k = len(names)
    vals = np.array([np.nan if v is None else v for v in values], dtype=float)
    if k <= 30:
        fig, ax = plt.subplots(figsize=(max(6, 0.42 * k + 2), 4))
        ax.bar(range(k), vals, color="#4c72b0")
        class_ticks(ax, names, "x")
        ax.set(ylabel=label, ylim=(0, 1.05), title=f"{label.capitalize()} per class")
        if mean is not None:
            ax.axhline(mean, color="#d62728", ls="--", lw=1, label=f"mean {mean:.3f}")
            ax.legend(fontsize=8, loc="lower right")
        ax.grid(axis="y", alpha=0.3)
    else:
        order = np.argsort(np.nan_to_num(vals, nan=-1))
        fig, ax = plt.subplots(figsize=(7, CELL * k + 1.2))
        ax.barh(range(k), vals[order], color="#4c72b0", height=0.8)
        ax.set_yticks(range(k), [short(names[i], 24) for i in order], fontsize=7)
        ax.set(xlabel=label, xlim=(0, 1.05), ylim=(-0.7, k - 0.3),
               title=f"{label.capitalize()} per class (sorted)")
        if mean is not None:
            ax.axvline(mean, color="#d62728", ls="--", lw=1, label=f"mean {mean:.3f}")
            ax.legend(fontsize=8, loc="lower right")
        ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    return fig


def class_distribution(counts: dict[str, Sequence[int]], names: Sequence[str]) -> Figure:
    """Images per class in each split (grouped bars; lines for many classes)."""
    k = len(names)
    fig, ax = plt.subplots(figsize=(max(6, min(0.42 * k + 2, 14) if k <= 30 else CELL * k + 2), 4))
    splits = [s for s in counts if sum(counts[s])]
    width = 0.8 / max(len(splits), 1)
    for i, split in enumerate(splits):
        if k <= 30:
            ax.bar(np.arange(k) + (i - (len(splits) - 1) / 2) * width, counts[split], width, label=split)
        else:
            ax.step(np.arange(k), counts[split], where="mid", label=split)
    class_ticks(ax, names, "x")
    ax.set(ylabel="images", title="Class distribution per split")
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return fig


def roc_curves(roc: RocCurves, names: Sequence[str]) -> Figure:
    """One-vs-rest ROC curves: every class (legend for up to 10) and the macro average."""
    k = len(names)
    fig, ax = plt.subplots(figsize=(6.5, 5.5))
    colors = class_colors(k)
    for c in range(k):
        if roc.auc[c] is None:
            continue
        if k <= 10:
            ax.plot(roc.fpr[c], roc.tpr[c], color=colors[c], lw=1.2,
                    label=f"{short(names[c])} ({roc.auc[c]:.3f})")
        else:
            ax.plot(roc.fpr[c], roc.tpr[c], color="#9bb7d4", lw=0.6, alpha=0.6)
    if roc.macro_auc is not None:
        ax.plot(roc.macro_fpr, roc.macro_tpr, color="black", lw=2.2,
                label=f"macro average ({roc.macro_auc:.3f})")
    ax.plot([0, 1], [0, 1], ls="--", color="#888888", lw=1)
    ax.set(xlabel="false positive rate", ylabel="true positive rate",
           title="ROC, one-vs-rest" + ("" if k <= 10 else f" ({k} classes in light blue)"))
    ax.legend(fontsize=7 if k <= 10 else 9, loc="lower right")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def reliability_diagram(cal: Calibration) -> Figure:
    """Accuracy against confidence per bin, with the number of images per bin below."""
    fig, (ax, hist) = plt.subplots(2, 1, figsize=(6, 6), height_ratios=[3, 1], sharex=True)
    width = cal.bin_edges[1] - cal.bin_edges[0]
    centres = (cal.bin_edges[:-1] + width / 2)[cal.bin_counts > 0]
    ax.bar(centres, cal.bin_accuracy, width=width * 0.95, color="#4c72b0", alpha=0.85,
           edgecolor="black", label="accuracy")
    ax.bar(centres, cal.bin_confidence - cal.bin_accuracy, bottom=cal.bin_accuracy, width=width * 0.95,
           color="#d62728", alpha=0.25, edgecolor="#d62728", hatch="//", label="gap to confidence")
    ax.plot([0, 1], [0, 1], ls="--", color="#d62728", label="perfect calibration")
    ax.set(ylabel="accuracy", xlim=(0, 1), ylim=(0, 1),
           title=f"Reliability diagram (ECE {cal.ece:.4f})")
    ax.legend(fontsize=8, loc="upper left")
    ax.grid(alpha=0.3)
    hist.bar(cal.bin_edges[:-1] + width / 2, cal.bin_counts, width=width * 0.9, color="#888888")
    hist.set(xlabel="confidence (top-class probability)", ylabel="images")
    if cal.bin_counts.max() > 50 * max(np.median(cal.bin_counts[cal.bin_counts > 0]), 1):
        log_scale(hist, "y", counts=True)
    fig.tight_layout()
    return fig


def tsne_scatter(points: np.ndarray, labels: np.ndarray, names: Sequence[str]) -> Figure:
    """t-SNE points coloured by true class: a legend with names for up to 20 classes, beyond that
    each class's name written at the median of its points (labelled clusters)."""
    import matplotlib.patheffects as pe

    k = len(names)
    fig, ax = plt.subplots(figsize=(7.5, 6) if k <= 20 else (10, 9))
    colors = class_colors(k)
    for c in range(k):
        sel = labels == c
        if sel.any():
            ax.scatter(points[sel, 0], points[sel, 1], s=6, color=colors[c], alpha=0.75,
                       label=short(names[c]) if k <= 20 else None, linewidths=0)
    for spine in ax.spines.values():
        spine.set_visible(False)
    ax.set(xticks=[], yticks=[], title=f"t-SNE of penultimate features ({len(labels):,} test images)")
    if k <= 20:
        ax.legend(fontsize=7, markerscale=2.5, loc="center left", bbox_to_anchor=(1.0, 0.5))
    else:
        outline = [pe.withStroke(linewidth=2.2, foreground="white")]
        for c in range(k):
            sel = labels == c
            if sel.any():
                x, y = np.median(points[sel], axis=0)
                ax.text(x, y, short(names[c], 12), fontsize=7, ha="center", va="center",
                        color=colors[c], weight="bold", path_effects=outline)
    fig.tight_layout()
    return fig


# ----------------------------------------------------------------------------------- images


def image_grid(
    images: np.ndarray,
    titles: Sequence[str],
    title: str = "",
    colors: Sequence[str] | None = None,
    overlay: Sequence[np.ndarray | None] | np.ndarray | None = None,
    cols: int = 8,
) -> Figure:
    """A grid of images (N, H, W, C) in 0..1 with a title each; `overlay[i]` (H, W) in 0..1, when
    given, is blended over image i as a heat-map (Grad-CAM). Drawn as one mosaic on one axes: one
    image per figure instead of N axes keeps a 100-image grid fast to draw and to save."""
    n = len(images)
    cols = max(1, min(cols, n))
    rows = -(-n // cols)
    h, w = images.shape[1:3]
    lines = max((t.count("\n") + 1 for t in titles), default=1)
    band = int(np.ceil(h * 0.2 * lines)) + 1  # room for the titles, in image pixels
    pad = max(1, w // 12)
    cell_h, cell_w = band + h + pad, w + pad
    mosaic = np.ones((rows * cell_h + pad, cols * cell_w + pad, 3), dtype=np.float32)
    jet = plt.get_cmap("jet")
    fig, ax = plt.subplots(figsize=(1.6 * cols, 1.9 * rows + 0.5))
    for i, img in enumerate(images):
        r, c = divmod(i, cols)
        rgb = np.repeat(img, 3, axis=-1) if img.shape[-1] == 1 else img[..., :3]
        if overlay is not None and overlay[i] is not None:
            heat = np.clip(np.asarray(overlay[i], dtype=np.float32), 0, 1)[..., None]
            rgb = (1 - 0.6 * heat) * rgb + 0.6 * heat * jet(heat[..., 0])[..., :3]  # no evidence, no tint
        top, left = r * cell_h + band + pad, c * cell_w + pad
        mosaic[top:top + h, left:left + w] = np.clip(rgb, 0, 1)
        ax.text(left + w / 2, top - 0.5, titles[i], ha="center", va="bottom", fontsize=9,
                color=colors[i] if colors else "black", linespacing=1.0)
    ax.imshow(mosaic, interpolation="nearest")
    ax.axis("off")
    if title:
        ax.set_title(title, fontsize=11)
    fig.tight_layout()
    return fig


def bar_comparison(labels: Sequence[str], values: Sequence[float], errors: Sequence[float] | None,
                   ylabel: str, title: str) -> Figure:
    """One bar per run or variant, with error bars when given: upright for a few short names,
    else lying, one row each, so that every name stays whole, level and apart."""
    err = None if errors is None else [e if e is not None and np.isfinite(e) else 0.0 for e in errors]
    if len(labels) <= 12 and max(map(len, labels), default=0) <= 12:
        fig, ax = plt.subplots(figsize=(max(5, 0.9 * len(labels) + 2), 4))
        bars = ax.bar(range(len(labels)), values, yerr=err, capsize=4 if err else 0, color="#4c72b0")
        ax.set_xticks(range(len(labels)), list(labels), fontsize=8)
        ax.set(ylabel=ylabel, title=title)
        ax.grid(axis="y", alpha=0.3)
        ax.margins(y=0.12)  # room for the value labels
    else:
        fig, ax = plt.subplots(figsize=(7, 0.25 * len(labels) + 1.4))
        bars = ax.barh(range(len(labels)), values, xerr=err, capsize=3 if err else 0, color="#4c72b0")
        ax.set_yticks(range(len(labels)), shorts(labels, 40), fontsize=7)
        ax.invert_yaxis()  # the first on top, as in the tables
        ax.set(xlabel=ylabel, title=title)
        ax.grid(axis="x", alpha=0.3)
        ax.margins(x=0.15)
    ax.bar_label(bars, fmt="%.4f", fontsize=7, padding=2)
    fig.tight_layout()
    return fig
