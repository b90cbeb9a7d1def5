"""What a metric is: its key (in metrics.json or a history row), its label, its range and which way
is better. One catalogue, read by training (early stopping, the plateau schedule), the search and
the pool (which trial is best), the study's results, the report (labels, intervals cut at the
range), the trackers and the API. A task names the metrics its reports show (`Task.metrics`)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

UNBOUNDED = (-math.inf, math.inf)
UNIT = (0.0, 1.0)
POSITIVE = (0.0, math.inf)


@dataclass(frozen=True)
class Metric:
    key: str
    label: str
    bounds: tuple[float, float] = UNBOUNDED  # confidence intervals are cut at these
    maximize: bool = False  # higher is better
    complement_of: str | None = None  # an error read as 1 − this accuracy
    result: bool = True  # a scalar of metrics.json (a study's results table has a column for it)
    curve: bool = False  # a column of history.csv (trackers log it per epoch, not as a final value)

    def read(self, metrics: dict[str, Any]) -> float | None:
        """This metric's value in a run's metrics.json, or None."""
        value = metrics.get(self.complement_of or self.key)
        if value is None:
            return None
        return 1 - float(value) if self.complement_of else float(value)


CATALOGUE: dict[str, Metric] = {m.key: m for m in [
    Metric("test_accuracy", "test accuracy", UNIT, maximize=True),
    Metric("top1_error", "top-1 error", UNIT, complement_of="test_accuracy", result=False),
    Metric("test_top5_accuracy", "top-5 accuracy", UNIT, maximize=True),
    Metric("top5_error", "top-5 error", UNIT, complement_of="test_top5_accuracy", result=False),
    Metric("test_loss", "test loss", POSITIVE),
    Metric("f1_macro", "macro F1", UNIT, maximize=True),
    Metric("f1_weighted", "weighted F1", UNIT, maximize=True),
    Metric("roc_auc_macro", "macro AUC", UNIT, maximize=True),
    Metric("precision_macro", "macro precision", UNIT, maximize=True),
    Metric("recall_macro", "macro recall", UNIT, maximize=True),
    Metric("test_mse", "test MSE", POSITIVE),
    Metric("test_rmse", "test RMSE", POSITIVE),
    Metric("val_accuracy", "validation accuracy", UNIT, maximize=True, curve=True),  # at the best epoch
    Metric("val_loss", "validation loss", POSITIVE, curve=True),
    Metric("val_mse", "validation MSE", POSITIVE),
    Metric("train_accuracy", "train accuracy", UNIT, maximize=True, result=False, curve=True),
    Metric("train_loss", "train loss", POSITIVE, result=False, curve=True),
    Metric("train_mse", "train MSE", POSITIVE),
    Metric("params", "parameters", POSITIVE),
    Metric("flops", "FLOPs", POSITIVE),
    Metric("train_seconds", "train seconds", POSITIVE),
    Metric("epochs_run", "epochs", POSITIVE),
    Metric("best_epoch", "best epoch", POSITIVE),
]}
RESULTS = tuple(k for k, m in CATALOGUE.items() if m.result)  # a finished run's scalars
TRACKED = tuple(k for k, m in CATALOGUE.items() if m.result and not m.curve)  # its final values


def metric(key: str) -> Metric:
    """The catalogue's entry for `key` (an unknown key: unbounded, lower is better, named by itself)."""
    return CATALOGUE.get(key) or Metric(key, key.replace("_", " "))
