"""One training run end to end: data → model → fit → test evaluation → run directory.

    visionstudy train examples/digits-quick.yaml --out runs/digits-quick

writes config.yaml (resolved, with versions and the dataset checksum), history.csv, metrics.json,
predictions.npz and checkpoints/{last,best}.pt. Devices, mixed precision and data-parallel
processes come from Lightning Fabric; the loop itself is ours (`visionstudy.train`).
"""

from __future__ import annotations

import dataclasses
import io
import json
import os
import platform
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml

from visionstudy.config import RunConfig, dump_config
from visionstudy.data import BatchLoader, PreparedData, build_pipeline, prepare
from visionstudy.errors import CheckpointError, ConfigError, TrainingError
from visionstudy.evaluate import classification_metrics
from visionstudy.fsutil import atomic_write_bytes, atomic_write_text, ensure_dir, remove_partials
from visionstudy.models import Classifier, count_flops, count_params, create_model
from visionstudy.train.checkpoint import load_checkpoint
from visionstudy.train.fit import FitResult, fit
from visionstudy.train.loop import evaluate
from visionstudy.train.rundir import RunDir


def versions() -> dict[str, str]:
    import lightning
    import sklearn
    import torchvision

    import visionstudy

    return {
        "visionstudy": visionstudy.__version__, "python": platform.python_version(),
        "torch": str(torch.__version__), "torchvision": str(torchvision.__version__),
        "lightning": str(lightning.__version__), "numpy": str(np.__version__),
        "scikit-learn": str(sklearn.__version__),
    }


def resolve_accelerator(device: str) -> str:
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device cuda: no CUDA device is available here; use --device cpu or auto")
    if device not in ("cpu", "cuda"):
        raise ConfigError(f"--device {device!r}: choose auto, cpu or cuda")
    return device


def check_run_dir(run: RunDir, resume: bool, force: bool, cfg_dump: dict[str, Any]) -> None:
    """Never overwrite a finished run without --force; resume only the same config."""
    ensure_dir(run.path)
    for folder in (run.path, run.path / "checkpoints"):
        remove_partials(folder)  # temporary files of a writer killed mid-write
    if force:
        for name in ("config.yaml", "history.csv", "metrics.json", "predictions.npz"):
            (run.path / name).unlink(missing_ok=True)
        shutil.rmtree(run.path / "checkpoints", ignore_errors=True)
        return
    if run.is_finished():
        raise TrainingError(
            f"{run.path} holds a finished run; pass --force to overwrite it or --out another folder"
        )
    if run.has_progress() and not resume:
        raise TrainingError(
            f"{run.path} holds an unfinished run; pass --resume to continue it or --force to "
            "start over"
        )
    if resume and run.has_progress():
        saved = load_checkpoint(run.last).get("config")
        if saved is not None and saved != cfg_dump:
            diff = sorted(differences(saved, cfg_dump))
            raise CheckpointError(
                f"{run.last}: the run was started with a different config (differs in: "
                f"{', '.join(diff)}); resume with the same config, or pass --force to start over"
            )


def differences(a: Any, b: Any, prefix: str = "") -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for k in sorted(set(a) | set(b)):
            out += differences(a.get(k), b.get(k), f"{prefix}.{k}" if prefix else str(k))
        return out
    return [] if a == b else [prefix]


def make_loaders(
    data: PreparedData, cfg: RunConfig, device: torch.device, channels_last: bool, rank: int,
    world: int,
) -> tuple[BatchLoader, BatchLoader, BatchLoader]:
    t = cfg.train
    common = dict(mean=data.mean, std=data.std, num_classes=data.num_classes, device=device,
                  channels_last=channels_last)
    per_process = len(data.train) // world
    train = BatchLoader(
        data.train.images, data.train.labels, t.batch_size, augment=build_pipeline(cfg.data.augment),
        shuffle=True, drop_last=per_process % t.batch_size == 1,  # a batch of 1 breaks batch norm
        seed=cfg.seed, rank=rank, world=world, **common,
    )
    val = BatchLoader(data.val.images, data.val.labels, t.eval_batch_size, **common)
    test = BatchLoader(data.test.images, data.test.labels, t.eval_batch_size, **common)
    return train, val, test


def build_model(cfg: RunConfig, data: PreparedData) -> Classifier:
    c, h, w = data.image_shape
    return create_model(cfg.model.name, c, data.num_classes, (h, w), **cfg.model.params())


def run_experiment(
    cfg: RunConfig,
    out: Path,
    *,
    device: str = "auto",
    resume: bool = False,
    force: bool = False,
    quiet: bool = False,
    data_dir: Path | None = None,
    on_epoch_end: Callable[[dict[str, float]], None] | None = None,
    threads: int | None = None,
    on_test_epoch: Callable[[dict[str, float]], None] | None = None,
) -> dict[str, Any]:
    """Train and evaluate one run into `out`; returns the test metrics. `on_epoch_end` sees each
    epoch's history row (a search reports it to its pruner, which may stop the run). `threads` is
    the CPU thread count when the config leaves it open (a study divides the cores between its
    workers without changing the runs' configs, so a resume works with any worker count).
    `on_test_epoch` is for benchmarks (time to test accuracy): after every epoch the test set is
    evaluated (with the run's TTA) and the row, with `test_accuracy` added, is passed to it. Nothing
    is chosen on it; the run and its files are the same as without it."""
    from lightning.fabric import Fabric

    accelerator = resolve_accelerator(device)
    t = cfg.train
    if cfg.data.dataset == "sets":  # regression on sets: its own lean loop (no images, no Fabric)
        from visionstudy.set_experiment import run_set_experiment

        if accelerator == "cpu":
            torch.set_num_threads(t.threads or threads or max(1, os.cpu_count() or 1))
        return run_set_experiment(cfg, out, device=torch.device(accelerator), resume=resume, force=force,
                                  on_epoch_end=on_epoch_end)
    bf16 = t.precision == "bf16" or (t.precision == "auto" and accelerator == "cuda")
    fabric = Fabric(
        accelerator=accelerator, devices=t.devices, strategy="ddp" if t.devices > 1 else "auto",
        precision="bf16-mixed" if bf16 else "32-true",
    )
    fabric.launch()
    if accelerator == "cpu":
        torch.set_num_threads(t.threads or threads or max(1, (os.cpu_count() or 1) // fabric.world_size))
    else:
        torch.backends.cudnn.benchmark = True
    run = RunDir(out)
    cfg_dump = dump_config(cfg)
    if fabric.is_global_zero:
        check_run_dir(run, resume, force, cfg_dump)
    fabric.barrier()

    fabric.seed_everything(cfg.seed, verbose=False)
    data = prepare(cfg.data, data_dir)
    net = build_model(cfg, data)
    if net.input_stats is not None:  # pretrained weights expect their own normalisation
        data = dataclasses.replace(data, mean=tuple(net.input_stats[0]), std=tuple(net.input_stats[1]))
    params, flops = count_params(net), count_flops(net, data.image_shape)
    channels_last = t.channels_last == "on" or (t.channels_last == "auto" and net.convolutional)
    if channels_last:
        net = net.to(memory_format=torch.channels_last)
    if t.compile:
        net.compile()
    train_loader, val_loader, test_loader = make_loaders(
        data, cfg, fabric.device, channels_last, fabric.global_rank, fabric.world_size
    )
    if fabric.is_global_zero:
        write_config(run, cfg_dump, data, params, flops)
    if on_test_epoch is not None:
        on_epoch_end = with_test_probe(on_epoch_end, on_test_epoch, net, test_loader, t.tta, fabric)
    result = fit(fabric, net, train_loader, val_loader, t, run, resume=resume, quiet=quiet,
                 config_dump=cfg_dump, meta=checkpoint_meta(data), on_epoch_end=on_epoch_end)
    if not fabric.is_global_zero:
        return {}
    if t.restore_best and run.best.is_file():
        net.load_state_dict(load_checkpoint(run.best)["model"])
    ev = evaluate(net, test_loader, tta=t.tta, keep_outputs=True, autocast=fabric.autocast())
    metrics = test_metrics(ev, data, result, params, flops)
    buf = io.BytesIO()
    np.savez_compressed(buf, logits=ev.logits, labels=ev.labels, features=ev.features,
                        class_names=np.array(data.class_names))
    atomic_write_bytes(run.predictions, buf.getvalue())
    atomic_write_text(run.metrics, json.dumps(metrics, indent=2))  # last: marks the run finished
    return metrics


def with_test_probe(
    on_epoch_end: Callable[[dict[str, float]], None] | None,
    on_test_epoch: Callable[[dict[str, float]], None],
    net: Classifier, test_loader: BatchLoader, tta: bool, fabric: Any,
) -> Callable[[dict[str, float]], None]:
    """An epoch-end hook that also evaluates the test set and hands the row on (benchmarks)."""

    def hook(row: dict[str, float]) -> None:
        if on_epoch_end is not None:
            on_epoch_end(row)
        ev = evaluate(net, test_loader, tta=tta, autocast=fabric.autocast())
        on_test_epoch({**row, "test_accuracy": ev.accuracy})

    return hook


def test_metrics(ev: Any, data: PreparedData, result: FitResult, params: int,
                 flops: int) -> dict[str, Any]:
    m = classification_metrics(ev.logits, ev.labels, data.num_classes)
    best = next((r for r in result.history if int(r["epoch"]) == result.best_epoch), {})
    return {
        "test_loss": m.pop("loss"), "test_accuracy": m.pop("accuracy"),
        "test_top5_accuracy": m.pop("top5_accuracy"), **m,
        "params": params, "flops": flops, "train_seconds": result.train_seconds,
        "epochs_run": len(result.history), "best_epoch": result.best_epoch,
        "val_accuracy": best.get("val_accuracy"), "val_loss": best.get("val_loss"),
        "stopped_early": result.stopped_early, "class_names": data.class_names,
        "test_samples": len(ev.labels),
    }


def checkpoint_meta(data: PreparedData) -> dict[str, Any]:
    """What `visionstudy predict` needs beside the weights: classes and preprocessing."""
    return {"class_names": list(data.class_names), "mean": list(data.mean), "std": list(data.std),
            "image_shape": list(data.image_shape)}


SKIPPED_LISTED = 500  # unreadable files listed by name in config.yaml (all are counted)


def write_config(run: RunDir, cfg_dump: dict[str, Any], data: PreparedData, params: int,
                 flops: int) -> None:
    doc = {
        **cfg_dump,
        "resolved": {
            "versions": versions(),
            "dataset": {
                "name": data.name, "checksum": data.checksum,
                "files": [str(p) for p in data.files], "class_names": data.class_names,
                "image_shape": list(data.image_shape), "train": len(data.train),
                "val": len(data.val), "test": len(data.test), "mean": list(data.mean),
                "std": list(data.std), "skipped_files": len(data.skipped),
                "skipped": [{"file": str(f), "reason": str(r)} for f, r in data.skipped[:SKIPPED_LISTED]],
            },
            "model": {"params": params, "flops": flops},
        },
    }
    atomic_write_text(run.config, yaml.safe_dump(doc, sort_keys=False))


def load_run_config(run_dir: Path) -> RunConfig:
    """The RunConfig of a run directory (config.yaml without its `resolved` section)."""
    from visionstudy.config import read_yaml, validate_run_config

    raw = read_yaml(RunDir(run_dir).config)
    raw.pop("resolved", None)
    return validate_run_config(raw, str(RunDir(run_dir).config))
