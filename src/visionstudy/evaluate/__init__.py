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
from visionstudy.evaluate.metrics import classification_metrics, per_class_metrics


def __getattr__(name: str) -> object:
    """Grad-CAM (torch, captum) on first use: a report imports torch only for its image figures."""
    if name in ("cam_layer", "gradcam"):
        from visionstudy.evaluate import cam

        return getattr(cam, name)
    raise AttributeError(f"module 'visionstudy.evaluate' has no attribute {name!r}")


__all__ = [
    "Calibration", "RocCurves", "TopLosses", "calibration", "cam_layer", "classification_metrics",
    "confused_pairs", "gradcam", "per_class_metrics", "probabilities", "roc_curves", "subsample",
    "top_losses", "tsne_embedding",
]
