"""Evaluation: metrics, diagnostics, feature views and Grad-CAM from a run's predictions.

Each name is imported from its module on first use: a training run computes its test metrics
(NumPy) without importing scipy (the diagnostics), torch's captum (Grad-CAM) or scikit-learn (the
t-SNE), which the report needs."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # for the type checker: at run time __getattr__ loads each name
    # ruff: noqa: F401
    from visionstudy.evaluate.cam import cam_layer, gradcam
    from visionstudy.evaluate.diagnostics import (
        Calibration,
        RocCurves,
        TopLosses,
        calibration,
        confused_pairs,
        probabilities,
        roc_curves,
        top_losses,
    )
    from visionstudy.evaluate.features import subsample, tsne_embedding
    from visionstudy.evaluate.metrics import classification_metrics, per_class_metrics

WHERE = {
    "cam_layer": "cam", "gradcam": "cam",
    **dict.fromkeys(["Calibration", "RocCurves", "TopLosses", "calibration", "confused_pairs",
                     "probabilities", "roc_curves", "top_losses"], "diagnostics"),
    "subsample": "features", "tsne_embedding": "features",
    "classification_metrics": "metrics", "per_class_metrics": "metrics",
}


def __getattr__(name: str) -> Any:
    if name not in WHERE:
        raise AttributeError(f"module 'visionstudy.evaluate' has no attribute {name!r}")
    return getattr(importlib.import_module(f"visionstudy.evaluate.{WHERE[name]}"), name)


__all__ = sorted(WHERE)
