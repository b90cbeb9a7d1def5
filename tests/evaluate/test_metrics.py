"""Metrics and diagnostics: hand-checked small cases and agreement with scikit-learn."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as skm

from visionstudy.evaluate import (
    calibration,
    classification_metrics,
    confused_pairs,
    per_class_metrics,
    probabilities,
    roc_curves,
    top_losses,
)


def logits_for(probs: list[list[float]]) -> np.ndarray:
    return np.log(np.array(probs, dtype=np.float64))


def test_hand_checked_three_class_case():
    # true 0,0,1,2 ; predicted 0,1,1,2 → accuracy 3/4
    probs = [[0.7, 0.2, 0.1], [0.3, 0.6, 0.1], [0.1, 0.8, 0.1], [0.2, 0.2, 0.6]]
    m = classification_metrics(logits_for(probs), np.array([0, 0, 1, 2]), 3)
    assert m["accuracy"] == pytest.approx(0.75)
    assert m["confusion_matrix"] == [[1, 1, 0], [0, 1, 0], [0, 0, 1]]
    assert m["per_class_accuracy"] == pytest.approx([0.5, 1.0, 1.0])
    # precision: class 0 1/1, class 1 1/2, class 2 1/1 → macro 5/6
    assert m["precision_macro"] == pytest.approx(5 / 6)
    assert m["recall_macro"] == pytest.approx((0.5 + 1 + 1) / 3)
    assert m["loss"] == pytest.approx(-np.mean(np.log([0.7, 0.3, 0.8, 0.6])))
    assert m["top5_accuracy"] == 1.0


def test_metrics_agree_with_scikit_learn_on_random_data():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(500, 12))
    labels = rng.integers(0, 12, 500)
    m = classification_metrics(logits, labels, 12)
    probs = probabilities(logits)
    pred = probs.argmax(1)
    assert m["accuracy"] == pytest.approx(skm.accuracy_score(labels, pred))
    assert m["f1_weighted"] == pytest.approx(skm.f1_score(labels, pred, average="weighted"))
    assert m["roc_auc_macro"] == pytest.approx(skm.roc_auc_score(labels, probs, multi_class="ovr"))
    assert m["top5_accuracy"] == pytest.approx(skm.top_k_accuracy_score(labels, probs, k=5))
    pc = per_class_metrics(logits, labels, 12)
    assert pc["f1"] == pytest.approx(skm.f1_score(labels, pred, average=None))
    assert pc["support"].sum() == 500
    roc = roc_curves(probs, labels)
    assert roc.macro_auc == pytest.approx(m["roc_auc_macro"])
    assert roc.auc[3] == pytest.approx(skm.roc_auc_score(labels == 3, probs[:, 3]))
    assert roc.macro_tpr[0] >= 0 and roc.macro_tpr[-1] == pytest.approx(1.0)


@pytest.mark.parametrize("seed", range(4))
def test_roc_and_reliability_curves_are_scikit_learns(seed):
    """The NumPy curves (the report no longer imports sklearn.metrics) against scikit-learn's own,
    with ties (rounded scores) and a confidence on a bin edge."""
    from sklearn.calibration import calibration_curve

    from visionstudy.evaluate.diagnostics import roc_curve

    rng = np.random.default_rng(seed)
    probs = np.round(probabilities(rng.normal(size=(300, 4)) * 2), 2)
    probs[:5] = [0.4, 0.2, 0.2, 0.2]  # confidence 0.4: on an inner edge of 5 and of 10 bins
    labels = rng.integers(0, 4, 300)
    for c in range(4):
        fpr, tpr = roc_curve(labels == c, probs[:, c])
        want_fpr, want_tpr, _ = skm.roc_curve(labels == c, probs[:, c], drop_intermediate=False)
        assert fpr == pytest.approx(want_fpr, abs=1e-12) and tpr == pytest.approx(want_tpr, abs=1e-12)
        assert roc_curves(probs, labels).auc[c] == pytest.approx(skm.roc_auc_score(labels == c, probs[:, c]))
    for bins in (5, 10, 15):
        cal = calibration(probs, labels, bins)
        correct = probs.argmax(1) == labels
        acc, conf = calibration_curve(correct, probs.max(1), n_bins=bins, strategy="uniform")
        assert cal.bin_accuracy == pytest.approx(acc, abs=1e-12)
        assert cal.bin_confidence == pytest.approx(conf, abs=1e-12)


def test_a_perfect_model_has_one_reliability_point_per_filled_bin():
    """All right (sklearn's calibration_curve refuses one outcome; the curve is still defined)."""
    probs = np.array([[0.95, 0.05], [0.15, 0.85], [0.1, 0.9]])  # 0.9 on an edge: the bin below
    cal = calibration(probs, np.array([0, 1, 1]), bins=10)
    assert cal.bin_accuracy.tolist() == [1.0, 1.0] and cal.bin_confidence == pytest.approx([0.875, 0.95])
    assert cal.ece == pytest.approx((0.15 + 0.15) / 3)  # ECE's bins are [lo, hi): 0.9 goes up


def test_roc_skips_a_class_absent_from_the_labels():
    rng = np.random.default_rng(1)
    probs = probabilities(rng.normal(size=(60, 4)))
    labels = np.array([0, 1, 2] * 20)
    roc = roc_curves(probs, labels)
    assert roc.auc[3] is None and len(roc.fpr[3]) == 0
    assert roc.macro_auc == pytest.approx(np.mean(roc.auc[:3]))


def test_calibration_error_of_an_overconfident_model():
    # every prediction at confidence 0.9, half of them right: ECE = |0.9 - 0.5| = 0.4
    probs = np.tile([0.9, 0.1], (100, 1))
    labels = np.array([0, 1] * 50)
    cal = calibration(probs, labels, bins=10)
    assert cal.ece == pytest.approx(0.4, abs=1e-6)
    assert cal.bin_counts.sum() == 100 and (cal.bin_counts > 0).sum() == len(cal.bin_accuracy) == 1
    assert cal.bin_accuracy[0] == pytest.approx(0.5) and cal.bin_confidence[0] == pytest.approx(0.9)


def test_calibration_bins_line_up_with_counts_on_random_data():
    rng = np.random.default_rng(2)
    probs = probabilities(rng.normal(size=(400, 5)) * 3)
    cal = calibration(probs, rng.integers(0, 5, 400), bins=15)
    assert (cal.bin_counts > 0).sum() == len(cal.bin_accuracy) == len(cal.bin_confidence)
    centres = (cal.bin_edges[:-1] + cal.bin_edges[1:]) / 2
    # each bin's mean confidence lies inside its own bin
    for conf, c in zip(cal.bin_confidence, centres[cal.bin_counts > 0], strict=True):
        assert abs(conf - c) <= (cal.bin_edges[1] - cal.bin_edges[0]) / 2 + 1e-9


def test_confused_pairs_are_the_largest_off_diagonal_cells():
    cm = np.array([[50, 3, 9], [0, 40, 1], [7, 0, 30]])
    assert confused_pairs(cm, 2) == [(0, 2, 9), (2, 0, 7)]
    assert confused_pairs(np.eye(3, dtype=int) * 5, 5) == []


def test_top_losses_are_the_most_confidently_wrong():
    probs = [[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.99, 0.01]]
    top = top_losses(logits_for(probs), np.array([0, 0, 1, 1]), 5)
    assert top.index.tolist() == [3, 1, 2]  # 0.01, 0.2, 0.4 given to the true class
    assert top.predicted.tolist() == [0, 1, 0]
    assert top.confidence == pytest.approx([0.99, 0.8, 0.6])
    assert top.loss == pytest.approx(-np.log([0.01, 0.2, 0.4]), rel=1e-5)


def ece_by_bins(probs: np.ndarray, labels: np.ndarray, bins: int) -> float:
    """Top-label ECE written out bin by bin: [lo, hi) bins, the last one closed (torchmetrics' rule)."""
    confidence, correct = probs.max(1), probs.argmax(1) == labels
    edges = np.linspace(0.0, 1.0, bins + 1)
    total = 0.0
    for b in range(bins):
        inside = (confidence >= edges[b]) & ((confidence < edges[b + 1]) if b < bins - 1 else True)
        if inside.any():
            total += inside.mean() * abs(correct[inside].mean() - confidence[inside].mean())
    return total


def test_calibration_error_by_hand():
    # top-label confidences 0.9 (right), 0.7 (wrong), 0.65 (right), 0.4 (right); 2 bins:
    # [0, .5): 1/4 * |1 - 0.4| = 0.15;  [.5, 1]: 3/4 * |2/3 - 0.75| = 0.0625
    probs = np.array([[0.9, 0.1, 0.0], [0.7, 0.3, 0.0], [0.35, 0.65, 0.0], [0.3, 0.3, 0.4]])
    labels = np.array([0, 1, 1, 2])
    assert calibration(probs, labels, 2).ece == pytest.approx(0.2125, abs=1e-12)


@pytest.mark.parametrize("bins", [5, 15])
def test_calibration_error_equals_the_bin_by_bin_definition(bins):
    """ECE is summed with bincount here (torchmetrics' import cost 1.7 s per report); it must equal
    the definition written out bin by bin, including confidences exactly on a bin edge."""
    rng = np.random.default_rng(3)
    probs = rng.dirichlet(np.ones(4) * 0.5, 500)
    probs[:20] = [0.6, 0.2, 0.1, 0.1]  # on an edge for both bin counts
    probs[20:25] = [1.0, 0.0, 0.0, 0.0]  # the last bin's closed edge
    labels = rng.integers(0, 4, 500)
    assert calibration(probs, labels, bins).ece == pytest.approx(ece_by_bins(probs, labels, bins), abs=1e-12)


@pytest.mark.parametrize("k", [3, 5, 47])
def test_class_auc_equals_scikit_learn_with_ties_and_an_absent_class(k):
    from visionstudy.evaluate.metrics import class_auc

    rng = np.random.default_rng(k)
    labels = rng.integers(0, k, 600)
    labels[labels == k - 1] = 0  # the last class never occurs
    probs = np.round(rng.dirichlet(np.ones(k), 600) + 0.3 * np.eye(k)[labels], 2)  # many ties
    got = class_auc(probs, labels)
    assert got[-1] is None
    for c in range(k - 1):
        assert got[c] == pytest.approx(skm.roc_auc_score(labels == c, probs[:, c]), abs=1e-12)
    m = classification_metrics(np.log(probs + 1e-9), labels[:], k)
    assert m["roc_auc_macro"] is None and m["per_class_auc"][-1] is None  # undefined, as before
    present = labels.copy()
    present[:k] = np.arange(k)  # every class once at least: the macro AUC is scikit-learn's
    m = classification_metrics(np.log(probs + 1e-9), present, k)
    scores = probabilities(np.log(probs + 1e-9))
    expected = skm.roc_auc_score(present, scores, multi_class="ovr", average="macro")
    assert m["roc_auc_macro"] == pytest.approx(expected, abs=1e-12)


def test_binary_auc_is_the_positive_class_score_auc():
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 2, 300)
    logits = np.round(rng.normal(size=(300, 2)) + labels[:, None] * [0, 1.5], 1)  # ties
    m = classification_metrics(logits, labels, 2)
    expected = skm.roc_auc_score(labels, probabilities(logits)[:, 1])
    assert m["roc_auc_macro"] == pytest.approx(expected, abs=1e-12)
    assert m["per_class_auc"][1] == pytest.approx(expected, abs=1e-12)
    assert m["per_class_auc"][0] == pytest.approx(skm.roc_auc_score(labels == 0, probabilities(logits)[:, 0]),
                                                  abs=1e-12)
