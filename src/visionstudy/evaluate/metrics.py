"""Test metrics from logits and labels, computed by scikit-learn (no hand-written metric maths)."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from scipy.special import softmax
from sklearn import metrics as skm
from sklearn.exceptions import UndefinedMetricWarning


def classification_metrics(logits: np.ndarray, labels: np.ndarray, num_classes: int) -> dict[str, Any]:
    """Accuracy, top-5, precision/recall/F1 (macro, weighted), ROC-AUC one-vs-rest (macro),
    per-class accuracy and the confusion matrix."""
    classes = np.arange(num_classes)
    probs = softmax(logits.astype(np.float64), axis=1)
    preds = probs.argmax(1)
    out: dict[str, Any] = {
        "accuracy": float(skm.accuracy_score(labels, preds)),
        # with 5 classes or fewer every label is in the top 5
        "top5_accuracy": float(skm.top_k_accuracy_score(labels, probs, k=5, labels=classes))
        if num_classes > 5 else 1.0,
        "loss": float(skm.log_loss(labels, probs, labels=classes)),
    }
    for avg in ("macro", "weighted"):
        p, r, f, _ = skm.precision_recall_fscore_support(
            labels, preds, labels=classes, average=avg, zero_division=0
        )
        out |= {f"precision_{avg}": float(p), f"recall_{avg}": float(r), f"f1_{avg}": float(f)}
    try:
        scores = probs[:, 1] if num_classes == 2 else probs
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UndefinedMetricWarning)
            auc = float(skm.roc_auc_score(labels, scores, multi_class="ovr", average="macro",
                                          labels=classes))
        out["roc_auc_macro"] = auc if np.isfinite(auc) else None
    except ValueError:  # a class absent from the test labels: AUC undefined
        out["roc_auc_macro"] = None
    cm = skm.confusion_matrix(labels, preds, labels=classes)
    support = cm.sum(1)
    out["per_class_accuracy"] = [
        float(cm[i, i] / support[i]) if support[i] else None for i in range(num_classes)
    ]
    out["confusion_matrix"] = cm.tolist()
    return out


def per_class_metrics(logits: np.ndarray, labels: np.ndarray, num_classes: int) -> dict[str, np.ndarray]:
    """Support, precision, recall (= per-class accuracy) and F1 of every class (scikit-learn)."""
    preds = logits.argmax(1)
    p, r, f, support = skm.precision_recall_fscore_support(
        labels, preds, labels=np.arange(num_classes), average=None, zero_division=0
    )
    return {"support": support, "precision": p, "recall": r, "f1": f}
