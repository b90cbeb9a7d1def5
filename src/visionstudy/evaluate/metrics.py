"""Test metrics from logits and labels, in NumPy: every training run computes them at its end,
and importing scikit-learn and scipy.stats for them cost a run process more than a digits run
trains (bench/startup.py, the README's Start-up section). Each is scikit-learn's definition,
checked against scikit-learn in tests/evaluate/test_metrics.py: the confusion matrix,
precision/recall/F1 with zero_division=0, top-k with scikit-learn's tie order, the log loss with
its clipping, and the one-vs-rest ROC-AUC as a rank statistic."""

from __future__ import annotations

from typing import Any

import numpy as np


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax in float64."""
    z = logits.astype(np.float64)
    z = np.exp(z - z.max(axis=1, keepdims=True))
    return z / z.sum(axis=1, keepdims=True)


def confusion(labels: np.ndarray, preds: np.ndarray, num_classes: int) -> np.ndarray:
    """Rows: true class, columns: predicted class (scikit-learn's confusion_matrix)."""
    return np.bincount(labels * num_classes + preds, minlength=num_classes * num_classes).reshape(
        num_classes, num_classes)


def precision_recall_f1(cm: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per class from a confusion matrix, 0 where undefined (zero_division=0): precision, recall,
    F1, support."""
    hits = np.diag(cm).astype(np.float64)
    support, predicted = cm.sum(1), cm.sum(0)
    precision = np.divide(hits, predicted, out=np.zeros_like(hits), where=predicted > 0)
    recall = np.divide(hits, support, out=np.zeros_like(hits), where=support > 0)
    both = precision + recall
    f1 = np.divide(2 * precision * recall, both, out=np.zeros_like(hits), where=both > 0)
    return precision, recall, f1, support


def top_k_accuracy(probs: np.ndarray, labels: np.ndarray, k: int) -> float:
    """Share of samples whose label is among the k highest scores; ties ordered as scikit-learn's
    top_k_accuracy_score (stable sort, reversed: the higher class index first)."""
    ranked = np.argsort(probs, axis=1, kind="mergesort")[:, ::-1][:, :k]
    return float((ranked == labels[:, None]).any(axis=1).mean())


def classification_metrics(logits: np.ndarray, labels: np.ndarray, num_classes: int) -> dict[str, Any]:
    """Accuracy, top-5, precision/recall/F1 (macro, weighted), ROC-AUC one-vs-rest (macro and per
    class), per-class accuracy and the confusion matrix."""
    labels = np.asarray(labels, dtype=np.int64)
    probs = softmax(logits)
    preds = probs.argmax(1)
    eps = np.finfo(np.float64).eps
    out: dict[str, Any] = {
        "accuracy": float((preds == labels).mean()),
        # with 5 classes or fewer every label is in the top 5
        "top5_accuracy": top_k_accuracy(probs, labels, 5) if num_classes > 5 else 1.0,
        "loss": float(-np.log(np.clip(probs[np.arange(len(labels)), labels], eps, 1 - eps)).mean()),
    }
    cm = confusion(labels, preds, num_classes)
    p, r, f, support = precision_recall_f1(cm)
    weights = support / max(int(support.sum()), 1)
    for avg, mean in (("macro", np.mean), ("weighted", lambda v: float((v * weights).sum()))):
        out |= {f"precision_{avg}": float(mean(p)), f"recall_{avg}": float(mean(r)),
                f"f1_{avg}": float(mean(f))}
    aucs = class_auc(probs, labels)  # undefined (None) for a class absent from the test labels
    if None in aucs:
        out["roc_auc_macro"] = None
    else:  # two classes: the positive class's AUC, as scikit-learn (0's column ties differ in floats)
        out["roc_auc_macro"] = aucs[1] if num_classes == 2 else float(np.mean(aucs))  # type: ignore[arg-type]
    out["per_class_auc"] = aucs
    out["per_class_accuracy"] = [
        float(cm[i, i] / support[i]) if support[i] else None for i in range(num_classes)
    ]
    out["confusion_matrix"] = cm.tolist()
    return out


def average_ranks(values: np.ndarray) -> np.ndarray:
    """Ranks from 1 of each column, ties at their average rank (scipy.stats.rankdata, axis=0)."""
    order = np.argsort(values, axis=0, kind="mergesort")
    ranks = np.empty(values.shape, dtype=np.float64)
    for c in range(values.shape[1]):
        column = values[order[:, c], c]
        starts = np.flatnonzero(np.r_[True, column[1:] != column[:-1]])
        ends = np.r_[starts[1:], len(column)]
        ranks[order[:, c], c] = np.repeat((starts + ends + 1) / 2, ends - starts)
    return ranks


def class_auc(probs: np.ndarray, labels: np.ndarray) -> list[float | None]:
    """The one-vs-rest ROC-AUC of each class (column of `probs`): the Mann–Whitney statistic from
    one ranking of all columns (ties at their average rank), which is the
    area under the ROC curve with ties counted half — scikit-learn's `roc_auc_score` to 1e-12
    (tests/evaluate/test_metrics.py). Written here because a study report needs it for every
    variant: one ranking serves every class, where roc_auc_score and a per-class table ranked each
    class again (several times faster at 47 classes: the README's Performance section).
    None for a class that is absent from `labels`, or the only one in it."""
    ranks = average_ranks(probs)
    members = labels[:, None] == np.arange(probs.shape[1])[None, :]
    positives = members.sum(0)
    negatives = len(labels) - positives
    rank_sums = (ranks * members).sum(0)
    return [float((rank_sums[c] - p * (p + 1) / 2) / (p * n)) if p and n else None
            for c, (p, n) in enumerate(zip(positives.tolist(), negatives.tolist(), strict=True))]


def per_class_metrics(logits: np.ndarray, labels: np.ndarray, num_classes: int) -> dict[str, np.ndarray]:
    """Support, precision, recall (= per-class accuracy) and F1 of every class."""
    p, r, f, support = precision_recall_f1(confusion(np.asarray(labels, dtype=np.int64), logits.argmax(1),
                                                     num_classes))
    return {"support": support, "precision": p, "recall": r, "f1": f}
