"""Evaluation: metrics, diagnostics, feature views and Grad-CAM from a run's predictions."""

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
from visionstudy.evaluate.gradcam import cam_layer, gradcam
from visionstudy.evaluate.metrics import classification_metrics, per_class_metrics

__all__ = [
    "Calibration", "RocCurves", "TopLosses", "calibration", "cam_layer", "classification_metrics",
    "confused_pairs", "gradcam", "per_class_metrics", "probabilities", "roc_curves", "subsample",
    "top_losses", "tsne_embedding",
]
