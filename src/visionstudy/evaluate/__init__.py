"""Evaluation: metrics from a run's predictions."""

from visionstudy.evaluate.metrics import classification_metrics

__all__ = ["classification_metrics"]
