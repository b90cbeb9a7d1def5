"""Diagnostics beyond the headline metrics: ROC curves, calibration, confusions, top losses.

The ROC and reliability curves are scikit-learn's (`roc_curve`, `calibration_curve`), written out in
NumPy as `evaluate.metrics` writes its ROC-AUC, so that a report does not import `sklearn.metrics`
before its first figure (the tests check both against scikit-learn's; the cost is in the README).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import log_softmax

from visionstudy.evaluate.metrics import softmax


def probabilities(logits: np.ndarray) -> np.ndarray:
    return softmax(logits)


@dataclass(frozen=True)
class RocCurves:
    fpr: list[np.ndarray]  # per class, one-vs-rest; empty arrays for a class absent from labels
    tpr: list[np.ndarray]
    auc: list[float | None]
    macro_fpr: np.ndarray  # the macro average on a common grid
    macro_tpr: np.ndarray
    macro_auc: float | None


def roc_curve(positive: np.ndarray, score: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(false positive rates, true positive rates) at each distinct score, highest first, from
    (0, 0): scikit-learn's `roc_curve(drop_intermediate=False)`. Needs both outcomes present."""
    order = np.argsort(-score, kind="mergesort")
    hit = positive[order].astype(np.float64)
    ends = np.r_[np.flatnonzero(np.diff(score[order])), len(hit) - 1]  # the last of each tied score
    tps = np.cumsum(hit)[ends]
    fps = ends + 1 - tps
    return np.r_[0.0, fps] / fps[-1], np.r_[0.0, tps] / tps[-1]


def roc_curves(probs: np.ndarray, labels: np.ndarray) -> RocCurves:
    """One-vs-rest ROC curve per class and their macro average."""
    k = probs.shape[1]
    grid = np.linspace(0.0, 1.0, 201)
    fprs: list[np.ndarray] = []
    tprs: list[np.ndarray] = []
    aucs: list[float | None] = []
    interp: list[np.ndarray] = []
    for c in range(k):
        positive = labels == c
        if positive.all() or not positive.any():
            fprs.append(np.array([]))
            tprs.append(np.array([]))
            aucs.append(None)
            continue
        fpr, tpr = roc_curve(positive, probs[:, c])
        fprs.append(fpr)
        tprs.append(tpr)
        aucs.append(float(np.trapezoid(tpr, fpr)))
        interp.append(np.interp(grid, fpr, tpr))
    macro = np.mean(interp, axis=0) if interp else np.zeros_like(grid)
    valid = [a for a in aucs if a is not None]
    return RocCurves(fprs, tprs, aucs, grid, macro, float(np.mean(valid)) if valid else None)


@dataclass(frozen=True)
class Calibration:
    ece: float  # expected calibration error (top-label, L1), binned as torchmetrics bins
    bin_confidence: np.ndarray  # mean confidence of each non-empty bin
    bin_accuracy: np.ndarray  # accuracy of each non-empty bin
    bin_edges: np.ndarray
    bin_counts: np.ndarray  # samples per bin (all bins; the non-empty ones match the arrays above)


def calibration(probs: np.ndarray, labels: np.ndarray, bins: int = 15) -> Calibration:
    """Top-label calibration: ECE (L1, torchmetrics' binning: [lo, hi) bins, the last closed) and the
    reliability curve, binned as scikit-learn's `calibration_curve(strategy="uniform")` bins
    (a confidence on an inner edge goes to the bin below it)."""
    confidence = probs.max(1)
    correct = (probs.argmax(1) == labels).astype(np.float64)
    edges = np.linspace(0.0, 1.0, bins + 1)
    idx = np.searchsorted(edges[1:-1], confidence)
    counts = np.bincount(idx, minlength=bins)
    filled = counts > 0
    acc_bins = np.bincount(idx, weights=correct, minlength=bins)[filled] / counts[filled]
    conf_bins = np.bincount(idx, weights=confidence, minlength=bins)[filled] / counts[filled]
    return Calibration(expected_calibration_error(confidence, correct, edges), conf_bins, acc_bins, edges,
                       counts)


def expected_calibration_error(confidence: np.ndarray, correct: np.ndarray, edges: np.ndarray) -> float:
    """sum over bins of (images in bin / images) * |accuracy - mean confidence|."""
    bins = len(edges) - 1
    idx = np.clip(np.searchsorted(edges, confidence, side="right") - 1, 0, bins - 1)
    acc = np.bincount(idx, weights=correct, minlength=bins)
    conf = np.bincount(idx, weights=confidence, minlength=bins)
    return float(np.abs(acc - conf).sum() / max(len(confidence), 1))


def confused_pairs(confusion: np.ndarray, k: int = 10) -> list[tuple[int, int, int]]:
    """The `k` largest off-diagonal cells as (true class, predicted class, count), largest first."""
    cm = np.asarray(confusion).copy()
    np.fill_diagonal(cm, 0)
    flat = np.argsort(cm, axis=None, kind="stable")[::-1][:k]
    pairs = [(int(i), int(j), int(cm[i, j])) for i, j in zip(*np.unravel_index(flat, cm.shape),
                                                                  strict=True)]
    return [p for p in pairs if p[2] > 0]


@dataclass(frozen=True)
class TopLosses:
    index: np.ndarray  # positions in the test set, highest loss first
    loss: np.ndarray  # per-sample cross-entropy
    predicted: np.ndarray
    confidence: np.ndarray  # probability given to the predicted class


def top_losses(logits: np.ndarray, labels: np.ndarray, k: int = 16) -> TopLosses:
    """The `k` misclassified test images with the highest loss (most confidently wrong)."""
    loss = -log_softmax(logits.astype(np.float64), axis=1)[np.arange(len(labels)), labels]  # cross-entropy
    probs = probabilities(logits)
    pred = probs.argmax(1)
    wrong = np.flatnonzero(pred != labels)
    order = wrong[np.argsort(-loss[wrong], kind="stable")][:k]
    return TopLosses(order, loss[order], pred[order], probs[order, pred[order]])
