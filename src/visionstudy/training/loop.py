"""The lean loop: `train_one_epoch` and `evaluate`, pure functions over a model and a loader.

No host synchronisation per step: losses and counts accumulate on the device and are read once per
epoch (and every few steps only when a progress bar is shown).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import torch
import torch.nn.functional as F

if TYPE_CHECKING:
    from visionstudy.models.base import Classifier
    from visionstudy.tasks.base import Task
from torch import nn

from visionstudy.data.loader import BatchLoader
from visionstudy.errors import TrainingError
from visionstudy.training.optim import Schedule, penalised_weights, weight_penalty

StepHook = Callable[[int, float, float], None]  # (step, loss, accuracy) for progress displays


@dataclass
class EpochStats:
    loss: float
    accuracy: float
    seconds: float
    lr: float
    steps: list[dict[str, float]] = field(default_factory=list)  # per-batch records (log_every)


@dataclass
class Evaluation:
    loss: float
    accuracy: float
    top5_accuracy: float
    logits: np.ndarray  # (N, K) float32
    labels: np.ndarray  # (N,) int64
    features: np.ndarray | None = None  # (N, D) penultimate features


def hard_labels(target: torch.Tensor) -> torch.Tensor:
    return target.argmax(1) if target.ndim == 2 else target


def train_one_epoch(
    model: nn.Module,
    loader: BatchLoader,
    optimizer: torch.optim.Optimizer,
    schedule: Schedule,
    *,
    backward: Callable[[torch.Tensor], None],
    clip: Callable[[], None] | None = None,
    label_smoothing: float = 0.0,
    l1: float = 0.0,
    l2: float = 0.0,
    all_reduce: Callable[[torch.Tensor], torch.Tensor] = lambda t: t,
    on_step: StepHook | None = None,
    report_every: int = 20,
    task: Task[Any] | None = None,
    log_every: int | None = None,
    after_step: Callable[[], None] | None = None,
) -> EpochStats:
    """One pass over the loader; `backward` and `clip` come from the device layer (Fabric).
    `task` (a `visionstudy.tasks.Task`) gives the loss and the correct count; default: classification.
    A task without accuracy (regression) reports NaN as the accuracy. `log_every`: record the
    loss, accuracy and lr of every N-th batch (`EpochStats.steps`, batch numbers from 1).
    `after_step` runs after every optimizer step (the weight average of `train.ema`)."""
    start = time.perf_counter()
    model.train()
    weights = penalised_weights(model) if l1 or l2 else []
    # running sums stay on the device; the sample count is known on the host
    loss_sum = torch.zeros((), device=loader.device, dtype=torch.float64)
    correct = torch.zeros((), device=loader.device, dtype=torch.int64)
    count = 0
    has_accuracy = True
    steps: list[dict[str, float]] = []
    for step, (x, target) in enumerate(loader, 1):
        logged = bool(log_every) and step % log_every == 0  # type: ignore[operator]
        lr = schedule.lr() if logged else 0.0  # the rate this batch trains with
        logits = model(x).float()
        loss = (task.loss(logits, target, label_smoothing) if task is not None
                else F.cross_entropy(logits, target, label_smoothing=label_smoothing))
        objective = loss + weight_penalty(weights, l1, l2) if weights else loss
        optimizer.zero_grad(set_to_none=True)
        backward(objective)
        if clip is not None:
            clip()
        optimizer.step()
        schedule.step_batch()
        if after_step is not None:
            after_step()
        with torch.no_grad():
            loss_sum += loss.detach() * len(x)
            hits = (task.correct(logits, target) if task is not None
                    else (logits.argmax(1) == hard_labels(target)).sum())
            if hits is None:
                has_accuracy = False
            else:
                correct += hits
            count += len(x)
            if logged:
                steps.append({"batch": step, "loss": loss.item(),
                              "accuracy": hits.item() / len(x) if hits is not None else math.nan, "lr": lr})
        if on_step is not None and (step % report_every == 0 or step == len(loader)):
            seen_loss = loss_sum.item()
            if not math.isfinite(seen_loss):
                break
            on_step(step, seen_loss / count, correct.item() / count if has_accuracy else math.nan)
    totals = all_reduce(torch.stack([loss_sum, correct.double(),
                                     torch.tensor(float(count), device=loss_sum.device,
                                                  dtype=torch.float64)]))
    loss_total, correct_total, count_total = totals.tolist()
    if not math.isfinite(loss_total):
        raise TrainingError(
            "the training loss became NaN or infinite; lower the learning rate "
            "(train.optimizer.lr), add gradient clipping (train.grad_clip) or check the data. "
            "The last good epoch is kept in checkpoints/last.pt"
        )
    accuracy = correct_total / max(count_total, 1) if has_accuracy else math.nan
    return EpochStats(loss_total / max(count_total, 1), accuracy,
                      time.perf_counter() - start, schedule.lr(), steps)


@torch.inference_mode()
def evaluate(
    model: nn.Module,
    loader: BatchLoader,
    *,
    tta: bool = False,
    keep_outputs: bool = False,
    autocast: AbstractContextManager[object] | None = None,
) -> Evaluation:
    """Loss, accuracy and top-5 accuracy on a loader of integer labels; logits and penultimate
    features too when `keep_outputs`. `tta` averages the logits with those of the mirrored image."""
    model.eval()
    net = cast("Classifier", model).for_inference()  # the image models: features, then the head
    logits_all, labels_all, feats_all = [], [], []
    with autocast or nullcontext():
        for x, y in loader:
            feats = net.forward_features(x)
            logits = net.forward_head(feats).float()
            if tta:
                logits = (logits + net(x.flip(3)).float()) / 2
            logits_all.append(logits)
            labels_all.append(y)
            if keep_outputs:
                feats_all.append(feats.float())
    logits = torch.cat(logits_all)
    labels = torch.cat(labels_all)
    loss = F.cross_entropy(logits, labels).item()
    k = min(5, logits.shape[1])
    topk = logits.topk(k, dim=1).indices
    top1 = (topk[:, 0] == labels).double().mean().item()
    top5 = (topk == labels[:, None]).any(1).double().mean().item()
    return Evaluation(
        loss, top1, top5,
        logits.cpu().numpy() if keep_outputs else np.empty((0, 0), np.float32),
        labels.cpu().numpy() if keep_outputs else np.empty(0, np.int64),
        torch.cat(feats_all).cpu().numpy() if keep_outputs else None,
    )
