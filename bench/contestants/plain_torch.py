"""Peer (a): a plain PyTorch script in the seeds' style — torchvision's FashionMNIST dataset with
per-sample transforms in a DataLoader, Adam at 1e-3, batch 64, test accuracy after every epoch.

    .venv/bin/python bench/contestants/plain_torch.py --model '{"channels": [[32], [64]]}' \
        --epochs 15 [--lightning]

With `--lightning` the same model and data run under `lightning.Trainer` with its defaults
(peer b). One JSON line per epoch: {"epoch", "test_accuracy", "train_seconds", "t"}.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch
from common import stages, torchvision_root
from torch import nn
from torch.utils.data import DataLoader, Subset
from torchvision import datasets, transforms

MEAN, STD = 0.2860, 0.3530


def build_model(spec: dict) -> nn.Sequential:
    """The config's CNN, as users write it: conv → BN → ReLU per layer, max-pool per stage."""
    layers: list[nn.Module] = []
    width, size = 1, 28
    bn, k = spec["batch_norm"], spec["kernel_size"]
    for convs in stages(spec):
        for c in convs:
            layers += [nn.Conv2d(width, c, k, padding=k // 2)]
            layers += [nn.BatchNorm2d(c)] if bn else []
            layers += [nn.ReLU()]
            width = c
        layers.append(nn.MaxPool2d(2))
        size //= 2
        if spec["conv_dropout"]:
            layers.append(nn.Dropout(spec["conv_dropout"]))
    layers.append(nn.Flatten())
    flat = width * size * size
    for h in spec["hidden"]:
        layers += [nn.Linear(flat, h)] + ([nn.BatchNorm1d(h)] if bn else []) + [nn.ReLU()]
        layers += [nn.Dropout(spec["dropout"])] if spec["dropout"] else []
        flat = h
    if not spec["hidden"] and spec["dropout"]:
        layers.append(nn.Dropout(spec["dropout"]))
    layers.append(nn.Linear(flat, 10))
    return nn.Sequential(*layers)


def loaders(root: Path, batch: int, workers: int, limit: int | None) -> tuple[DataLoader, DataLoader]:
    train_tf = transforms.Compose([
        transforms.RandomCrop(28, padding=2), transforms.RandomHorizontalFlip(),
        transforms.ToTensor(), transforms.Normalize((MEAN,), (STD,)),
    ])
    test_tf = transforms.Compose([transforms.ToTensor(), transforms.Normalize((MEAN,), (STD,))])
    train = datasets.FashionMNIST(root, train=True, transform=train_tf)
    test = datasets.FashionMNIST(root, train=False, transform=test_tf)
    if limit:  # smoke tests of this script
        train, test = Subset(train, range(limit)), Subset(test, range(limit))
    return (DataLoader(train, batch_size=batch, shuffle=True, num_workers=workers,
                       persistent_workers=workers > 0),
            DataLoader(test, batch_size=1000, num_workers=workers, persistent_workers=workers > 0))


def emit(epoch: int, accuracy: float, seconds: float) -> None:
    print(json.dumps({"epoch": epoch, "test_accuracy": round(accuracy, 4),
                      "train_seconds": round(seconds, 2), "t": time.time()}), flush=True)


def test_accuracy(model: nn.Module, test: DataLoader) -> float:
    model.eval()
    correct = 0
    with torch.no_grad():
        for x, y in test:
            correct += (model(x).argmax(1) == y).sum().item()
    return correct / len(test.dataset)


def plain(model: nn.Module, train: DataLoader, test: DataLoader, epochs: int) -> None:
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = nn.CrossEntropyLoss()
    for epoch in range(1, epochs + 1):
        start = time.perf_counter()
        model.train()
        for x, y in train:
            opt.zero_grad()
            loss = loss_fn(model(x), y)
            loss.backward()
            opt.step()
        seconds = time.perf_counter() - start
        emit(epoch, test_accuracy(model, test), seconds)


def with_lightning(model: nn.Module, train: DataLoader, test: DataLoader, epochs: int) -> None:
    import lightning as L

    class Module(L.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def training_step(self, batch, _):
            x, y = batch
            loss = nn.functional.cross_entropy(self.model(x), y)
            self.log("train_loss", loss)
            return loss

        def configure_optimizers(self):
            return torch.optim.Adam(self.parameters(), lr=1e-3)

    class Report(L.Callback):
        def on_train_epoch_start(self, trainer, module):
            self.start = time.perf_counter()

        def on_train_epoch_end(self, trainer, module):
            emit(trainer.current_epoch + 1, test_accuracy(module.model, test),
                 time.perf_counter() - self.start)

    # defaults but for the logger (no TensorBoard here; leaving it off can only make this peer faster)
    trainer = L.Trainer(max_epochs=epochs, callbacks=[Report()], logger=False, accelerator="cpu",
                        default_root_dir=tempfile.mkdtemp())
    trainer.fit(Module(), train)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True, help="the config's model block as JSON")
    ap.add_argument("--epochs", type=int, default=15)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--lightning", action="store_true")
    ap.add_argument("--limit", type=int, help="train and test on this many images (smoke test)")
    args = ap.parse_args()
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        train, test = loaders(torchvision_root(Path(tmp)), args.batch, args.workers, args.limit)
        model = build_model(json.loads(args.model))
        (with_lightning if args.lightning else plain)(model, train, test, args.epochs)


if __name__ == "__main__":
    main()
