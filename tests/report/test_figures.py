"""Report figures read at 10, 47 and 100 classes: names where they fit, a key where they don't."""

from __future__ import annotations

import numpy as np
import pytest

from tests.helpers import assert_texts_fit
from visionstudy.report import figures as F
from visionstudy.report.drawing import is_mosaic

CIFAR100_LIKE = [f"fine_name_{i}" for i in range(100)]  # 12 characters: they fit a tick
EMNIST_BALANCED = [*"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ", *"abdefghnqrt"]


def tick_texts(labels) -> list[str]:
    return [t.get_text() for t in labels]


@pytest.mark.parametrize("names", [EMNIST_BALANCED, CIFAR100_LIKE], ids=["47", "100"])
def test_confusion_matrices_name_every_class_in_a_readable_size(names):
    k = len(names)
    cm = np.eye(k, dtype=int) * 30 + 1
    fig = F.confusion_matrix(cm, names, normalised=True)
    ax = fig.axes[0]
    assert tick_texts(ax.get_xticklabels()) == names and tick_texts(ax.get_yticklabels()) == names
    assert min(t.get_fontsize() for t in ax.get_xticklabels()) >= 7
    width, height = fig.get_size_inches()
    assert height / k >= 0.2  # the old 13-inch cap gave 100 classes 0.13 in each: 6-pixel labels
    F.plt.close(fig)


def test_confusion_cells_show_their_values_and_beyond_ten_classes_leave_empty_ones_blank():
    """Up to 10 classes every cell is written; from 11 to 20 a cell that holds no image is left
    blank (a rare error's 0.00 when normalised is written): 400 numbers, most of them zeros, took a
    second to draw per matrix and hid the errors."""
    for k, written in ((4, 16), (20, 20 + 19)):
        cm = np.eye(k, dtype=int) * 30
        cm[1, 0] = 2  # one error
        cm[2, 0], cm[2, 2] = 1, 999  # and one of a thousand: 0.00 when normalised, yet not empty
        for normalised in (False, True):
            fig = F.confusion_matrix(cm, [f"c{i}" for i in range(k)], normalised=normalised)
            texts = [t.get_text() for t in fig.axes[0].texts]
            assert len(texts) == (written if k <= 10 else k + 2), (k, normalised, len(texts))
            assert ("2" if not normalised else "0.06") in texts and ("1.00" if normalised else "30") in texts
            assert all(not t.get_in_layout() for t in fig.axes[0].texts)  # inside the axes: no layout pass
            F.plt.close(fig)


def test_names_too_long_for_a_tick_get_numbers_and_a_key():
    names = [f"a rather long class name {i}" for i in range(30)]
    assert F.needs_key(names) and not F.needs_key(CIFAR100_LIKE)
    fig = F.confusion_matrix(np.eye(30, dtype=int), names, normalised=False)
    assert tick_texts(fig.axes[0].get_xticklabels()) == [str(i) for i in range(30)]
    F.plt.close(fig)


def test_tsne_has_a_legend_up_to_20_classes_and_labelled_clusters_beyond():
    rng = np.random.default_rng(0)
    for k in (10, 47):
        labels = np.arange(400) % k
        points = rng.normal(size=(400, 2)) + labels[:, None] * 3.0
        names = EMNIST_BALANCED[:k]
        fig = F.tsne_scatter(points, labels, names)
        ax = fig.axes[0]
        if k <= 20:
            assert tick_texts(ax.get_legend().get_texts()) == names
        else:
            assert ax.get_legend() is None
            assert sorted(t.get_text() for t in ax.texts) == sorted(names)
            medians = {t.get_text(): t.get_position() for t in ax.texts}
            assert medians["B"] == pytest.approx(tuple(np.median(points[labels == 11], axis=0)))
        F.plt.close(fig)


def test_per_class_bars_at_100_classes_are_sorted_and_named():
    values = np.linspace(0.2, 0.9, 100)[::-1]
    fig = F.per_class_bars(list(values), CIFAR100_LIKE, "accuracy")
    ax = fig.axes[0]
    labels = tick_texts(ax.get_yticklabels())
    assert labels[0] == CIFAR100_LIKE[-1] and labels[-1] == CIFAR100_LIKE[0]  # worst at the bottom
    assert min(t.get_fontsize() for t in ax.get_yticklabels()) >= 7
    F.plt.close(fig)


def test_an_image_grid_is_one_mosaic_with_every_title():
    images = np.random.default_rng(0).random((20, 8, 8, 1)).astype(np.float32)
    heat = [np.ones((8, 8)) if i == 3 else None for i in range(20)]
    fig = F.image_grid(images, [f"t{i}" for i in range(20)], "grid", overlay=heat, cols=8)
    ax = fig.axes[0]
    assert len(fig.axes) == 1 and len(ax.images) == 1 and is_mosaic(fig)
    assert [t.get_text() for t in ax.texts] == [f"t{i}" for i in range(20)]
    mosaic = ax.images[0].get_array()
    assert mosaic.shape[0] > 3 * 8 and mosaic.shape[1] > 8 * 8  # 3 rows of 8 columns
    F.plt.close(fig)


def test_dollar_signs_in_class_names_are_drawn_as_plain_text():
    """Class folders named `$$` or `a$b^$c` crashed the report (matplotlib's mathtext)."""
    import io

    import matplotlib.pyplot as plt

    import visionstudy.report.figures  # noqa: F401  (sets the report's style)

    fig, ax = plt.subplots()
    ax.set_xticks([0, 1], ["$$", "a$b^$c"])
    ax.set_title("$x_1$ of a$b")
    fig.savefig(io.BytesIO(), format="png")
    assert [t.get_text() for t in ax.get_xticklabels()] == ["$$", "a$b^$c"]
    F.plt.close(fig)


@pytest.mark.parametrize("count", [4, 50])
def test_variant_bars_name_every_variant_whole_and_inside_the_figure(count):
    """Seed 000's Fig 12 for 4 variants (upright bars) and 50 (one row each): every name whole and
    distinct (sweep points share long prefixes), every label inside the canvas, none on another."""
    names = [f"baseline+channels={16 * (i + 1)}-{32 * (i + 1)}" for i in range(count)]
    values = list(np.linspace(0.5, 0.9, count))
    fig = F.bar_comparison(names, values, [0.01] * count, "test accuracy", "Test accuracy per variant")
    drawn = assert_texts_fit(fig)
    assert all(n in drawn for n in names)
    upright = F.bar_comparison(["baseline", "bn", "dropout"], [0.9, 0.92, 0.91], [0.01, None, 0.02],
                               "test accuracy", "Test accuracy per variant")
    assert {"baseline", "bn", "dropout", "0.9200"} <= set(assert_texts_fit(upright))
    assert F.shorts(["baseline+channels=16-32", "baseline+channels=32-64"], 18) == \
        ["baseline+channels=16-32", "baseline+channels=32-64"]  # cut, the two would read the same
    assert F.shorts(["a-very-long-variant-name", "other"], 10) == ["a-very-lo…", "other"]


def test_per_batch_curves_mark_epochs_where_they_start_and_overlay_validation_at_their_end():
    """10 batches an epoch, logged every 3: the dotted lines sit at batches 10 and 20 (not at the
    first logged batch of the next epoch, 12 and 21), and each epoch's validation loss at 10, 20, 30."""
    steps = [{"step": e * 10 + b, "epoch": e + 1, "batch": b, "loss": 1.0 / (e * 10 + b), "accuracy": 0.5}
             for e in range(3) for b in (3, 6, 9)]
    history = [{"epoch": e, "val_loss": 0.5 / e, "val_accuracy": 0.6} for e in (1, 2, 3)]
    fig = F.step_curves(steps, history)
    loss = fig.axes[0]
    dotted = sorted(float(line.get_xdata()[0]) for line in loss.lines if line.get_linestyle() == ":")
    assert dotted == [10.0, 20.0]
    overlay = next(line for line in loss.lines if line.get_label().startswith("validation"))
    assert list(overlay.get_xdata()) == [10, 20, 30] and list(overlay.get_ydata()) == [0.5, 0.25, 0.5 / 3]
    assert_texts_fit(fig)


def test_an_interaction_chart_keeps_its_names_and_legend_inside_the_figure():
    names = ["sgd, lr 0.01", "sgd, lr 0.01, momentum 0.9", "rmsprop, lr 0.001", "adagrad, lr 0.01",
             "adam, lr 0.001"]
    series = [(f"model.conv_dropout = {d}", list(np.linspace(0.5, 0.8, 5) + d), [0.01] * 5)
              for d in (0, 0.25)]
    fig = F.interaction_lines(names, series, "train.optimizer", "test accuracy",
                              "Test accuracy: optimizer × dropout")
    drawn = {text.replace("\n", " ") for text in assert_texts_fit(fig)}
    assert set(names) | {s[0] for s in series} <= drawn


@pytest.mark.parametrize("spread", ["apart", "close", "stacked"])
def test_the_cost_scatter_names_every_variant_without_overlapping_texts(spread):
    """Names sit beside their points where they fit, each at the first free place around it; where
    two variants cost and score nearly alike (the quick study's batchnorm and batchnorm+dropout)
    one name cannot fit and the names go to a key instead of over each other."""
    names = ["baseline", "batchnorm", "batchnorm+dropout", "deeper", "resnet"]
    acc = {"apart": [0.90, 0.93, 0.95, 0.96, 0.97], "close": [0.93, 0.9301, 0.9302, 0.96, 0.97],
           "stacked": [0.95] * 5}[spread]
    params = {"apart": [1e4, 3e4, 1e5, 4e5, 1e6], "close": [3e4, 3.01e4, 3.02e4, 4e5, 1e6],
              "stacked": [5e4] * 5}[spread]
    points = [(n, a, p, p * 40, 1.0 + k) for k, (n, a, p) in enumerate(zip(names, acc, params, strict=True))]
    fig = F.cost_scatter(points, "test accuracy")
    fig.set_dpi(100)
    drawn = assert_texts_fit(fig)
    assert set(names) <= set(drawn)  # every name is written: beside its point or in the key
    keyed = fig.axes[0].get_legend() is not None
    assert keyed == (spread == "close") or spread == "stacked"  # stacked: around the one point, or a key
    if not keyed:  # three panels, each naming every variant once
        assert sorted(drawn.count(n) for n in names) == [3] * 5
    assert not [t for t in drawn if "$" in t or "mathdefault" in t]  # log ticks as plain text
    if spread != "stacked":
        assert {"100k", "1M"} <= set(drawn)
    F.plt.close(fig)


def test_log_axes_label_their_ticks_in_plain_text():
    """The report parses no mathtext (class names such as "$$" stay as written), and matplotlib's log
    tick labels are mathtext: the learning-rate panel read `$\\mathdefault{10^{-3}}$`."""
    history = [{"epoch": e, "lr": 1e-2 * 0.3 ** e, "train_loss": 1 / e, "val_loss": 1.2 / e,
                "train_accuracy": 0.5 + e / 40, "val_accuracy": 0.5 + e / 50} for e in range(1, 9)]
    fig = F.training_curves(history)
    fig.set_dpi(100)
    drawn = assert_texts_fit(fig)
    assert not [t for t in drawn if "$" in t or "mathdefault" in t]
    assert {"1e\u221205", "1e\u221204", "1e\u221203"} & set(drawn)  # 1e−04 with a minus sign
    F.plt.close(fig)


def test_count_ticks_over_a_narrow_range_read_apart():
    """The quick study's variants have 13,710 to 13,960 parameters: the axis ticked 13.8k three times."""
    names = ["baseline", "dropout", "batchnorm", "batchnorm+dropout"]
    points = [(n, 0.96 + k / 100, p, 183_000, 0.5 + k / 10)
              for k, (n, p) in enumerate(zip(names, [13_710, 13_712, 13_960, 13_962], strict=True))]
    fig = F.cost_scatter(points, "test accuracy")
    fig.canvas.draw()
    ticks = [t.get_text() for t in fig.axes[0].get_xticklabels() if t.get_text()]
    assert len(ticks) >= 3 and len(set(ticks)) == len(ticks), ticks
    assert all(t.endswith("k") for t in ticks)
    assert F.human(13_930) == "13.9k" and F.human(512) == "512" and F.human(123.456) == "123.456"
    F.plt.close(fig)


def test_an_ablations_cost_panels_keep_their_texts_apart_at_the_pngs_resolution():
    """An ablation's variants differ by a few parameters (batch norm adds 224 to 13,706): the
    parameters axis crowded its ticks ('13.82k' over '13.84k'), and the names were placed as the
    figure measured them at 100 dpi, not as the PNG draws them at 150. Checked as written."""
    names = ["baseline", "batchnorm", "dropout", "batchnorm+dropout", "both+augment"]
    for seed in range(12):
        rng = np.random.default_rng(seed)
        points = [(n, float(rng.uniform(0.9, 0.93)), 13706 + int(rng.integers(0, 300)), 65000,
                   float(rng.uniform(2, 2.6))) for n in names]
        fig = F.cost_scatter(points, "test accuracy")
        fig.set_dpi(F.DPI)  # as report.drawing writes it
        drawn = assert_texts_fit(fig)
        assert set(names) <= set(drawn)  # beside their points, or in a key
        F.plt.close(fig)


def test_unordered_choices_are_points_and_ordered_steps_a_line():
    """A sweep over optimizers or activations has no order: a line through its points read as a
    trend between them."""
    choices = F.metric_line(["sgd", "adam", "adamw"], [0.8, 0.9, 0.85], [0.01, None, 0.02], "train.optimizer",
                            "accuracy", "t", categorical=True, joined=False)
    steps = F.metric_line(["baseline", "+bn"], [0.8, 0.9], [None, None], "step", "accuracy", "t",
                          categorical=True)
    assert choices.axes[0].containers[0].lines[0].get_linestyle() == "None"  # the points' line
    assert steps.axes[0].containers[0].lines[0].get_linestyle() == "-"
    assert [t.get_text() for t in choices.axes[0].get_xticklabels()] == ["sgd", "adam", "adamw"]
    assert choices.axes[0].get_xlim() == (-0.5, 2.5)  # the first and last off the axes' edges
