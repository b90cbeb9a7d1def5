"""Image classification: cross-entropy, accuracy, top-5, F1, ROC-AUC, confusion matrices."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from visionstudy.config import RunConfig
from visionstudy.tasks.base import Task, eval_batch, register_task, trained_for

if TYPE_CHECKING:
    import torch

    from visionstudy.data.prepare import PreparedData


@register_task
class Classification(Task["PreparedData"]):
    name = "classification"
    description = "images → one of K classes (cross-entropy)"
    metrics = ("test_accuracy", "top1_error", "test_loss", "top5_error", "f1_macro", "roc_auc_macro",
               "params", "train_seconds")
    glance = ("test_accuracy", "top1_error", "f1_macro", "top5_error", "test_loss")
    results = ("test_accuracy", "test_top5_accuracy", "test_loss", "f1_macro", "f1_weighted", "roc_auc_macro",
               "precision_macro", "recall_macro", "val_accuracy")
    default_monitor = "val_accuracy"
    validation_metrics = ("val_accuracy", "val_loss")
    model_kind = "image"
    sections = ("curves", "confusion", "per_class", "roc", "tsne", "images", "gradcam")
    prediction_keys = ("logits", "labels", "class_names")

    def prepare(self, cfg: RunConfig, data_dir: Path | None) -> PreparedData:
        from visionstudy.data import prepare

        return prepare(cfg.data, data_dir)

    def input_shape(self, data: PreparedData) -> tuple[int, ...]:
        return tuple(data.image_shape)

    def build_model(self, cfg: RunConfig, data: PreparedData, skeleton: bool = False) -> torch.nn.Module:
        from visionstudy.models import create_model

        c, h, w = data.image_shape
        return create_model(cfg.model.name, c, data.num_classes, (h, w), skeleton=skeleton,
                            **cfg.model.params())

    def adapt(self, data: PreparedData, net: torch.nn.Module) -> PreparedData:
        """Pretrained weights expect their own normalisation."""
        stats = getattr(net, "input_stats", None)
        if stats is None:
            return data
        return dataclasses.replace(data, mean=tuple(stats[0]), std=tuple(stats[1]))

    def loaders(self, data: PreparedData, cfg: RunConfig, device: torch.device, channels_last: bool,
                rank: int, world: int) -> tuple[Any, Any, Any]:
        from visionstudy.data import build_pipeline
        from visionstudy.data.loader import BatchLoader

        t = cfg.train
        common: dict[str, Any] = dict(mean=data.mean, std=data.std, num_classes=data.num_classes,
                                      device=device, channels_last=channels_last)
        per_process = len(data.train) // world
        train = BatchLoader(
            data.train.images, data.train.labels, t.batch_size, augment=build_pipeline(cfg.data.augment),
            shuffle=True, drop_last=per_process % t.batch_size == 1,  # a batch of 1 breaks batch norm
            seed=cfg.seed, rank=rank, world=world, **common,
        )
        size = eval_batch(cfg, device)
        val = BatchLoader(data.val.images, data.val.labels, size, **common)
        test = BatchLoader(data.test.images, data.test.labels, size, **common)
        return train, val, test

    def checkpoint_meta(self, data: PreparedData) -> dict[str, Any]:
        return {"task": self.name, "class_names": list(data.class_names), "mean": list(data.mean),
                "std": list(data.std), "image_shape": list(data.image_shape)}

    def dataset_doc(self, data: PreparedData) -> dict[str, Any]:
        listed = 500  # unreadable files listed by name in config.yaml (all are counted)
        return {
            "name": data.name, "checksum": data.checksum, "checksum_algorithm": "md5",
            "files": [str(p) for p in data.files], "class_names": data.class_names,
            "image_shape": list(data.image_shape), "train": len(data.train),
            "val": len(data.val), "test": len(data.test), "mean": list(data.mean),
            "std": list(data.std), "skipped_files": len(data.skipped),
            "skipped": [{"file": str(f), "reason": str(r)} for f, r in data.skipped[:listed]],
            **({"not_classes": list(data.ignored)} if data.ignored else {}),
        }

    def loss(self, outputs: torch.Tensor, target: torch.Tensor, label_smoothing: float) -> torch.Tensor:
        import torch.nn.functional as F

        return F.cross_entropy(outputs, target, label_smoothing=label_smoothing)

    def correct(self, outputs: torch.Tensor, target: torch.Tensor) -> torch.Tensor | None:
        hard = target.argmax(1) if target.ndim == 2 else target
        return (outputs.argmax(1) == hard).sum()

    def evaluate(self, model: torch.nn.Module, loader: Any, *, tta: bool = False,
                 keep_outputs: bool = False, autocast: Any = None) -> Any:
        from visionstudy.training.loop import evaluate

        return evaluate(model, loader, tta=tta, keep_outputs=keep_outputs, autocast=autocast)

    def test_metrics(self, ev: Any, data: PreparedData) -> dict[str, Any]:
        from visionstudy.evaluate import classification_metrics

        m = classification_metrics(ev.logits, ev.labels, data.num_classes)
        return {"task": self.name, "test_loss": m.pop("loss"), "test_accuracy": m.pop("accuracy"),
                "test_top5_accuracy": m.pop("top5_accuracy"), **m, "class_names": data.class_names,
                "test_samples": len(ev.labels)}

    def prediction_arrays(self, ev: Any, data: PreparedData) -> dict[str, np.ndarray]:
        return {"logits": ev.logits, "labels": ev.labels, "features": ev.features,
                "class_names": np.array(data.class_names)}

    def result_line(self, metrics: dict[str, Any]) -> str:
        """The line `train` ends with; top-5 only where it can miss (more than 5 classes)."""
        m = metrics
        top5 = f"top-5 {m['test_top5_accuracy']:.4f}  " if len(m.get("class_names") or range(6)) > 5 else ""
        return (f"test accuracy {m['test_accuracy']:.4f}  {top5}loss "
                f"{m['test_loss']:.4f}  macro F1 {m['f1_macro']:.4f}  " + trained_for(m))
