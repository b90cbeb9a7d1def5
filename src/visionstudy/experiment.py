"""One training run end to end: data → model → fit → test evaluation → run directory.

    visionstudy train examples/digits-quick.yaml --out runs/digits-quick

writes config.yaml (resolved, with versions and the dataset checksum), history.csv, metrics.json,
predictions.npz and checkpoints/{last,best}.pt. Data-parallel processes come from Lightning
Fabric, one-process runs from `visionstudy.training.devices`; the loop itself is ours
(`visionstudy.training`).
"""

from __future__ import annotations

import functools
import io
import json
import logging
import math
import platform
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import yaml
from torch import nn

from visionstudy.config import RunConfig, check_device, dump_config
from visionstudy.data.loader import BatchLoader
from visionstudy.errors import ConfigError
from visionstudy.fsutil import atomic_write_bytes, atomic_write_text
from visionstudy.models import count_flops, count_params
from visionstudy.store.rundir import RunDir, clear, open_run
from visionstudy.training.checkpoint import load_checkpoint
from visionstudy.training.devices import BF16_ON_SLOW_CPU, cpu_runs_bf16, keep_freed_memory, open_devices
from visionstudy.training.fit import fit
from visionstudy.validate import thread_budget

if TYPE_CHECKING:
    from visionstudy.tasks.base import Task

log = logging.getLogger(__name__)
Devices = Any  # training.devices.open_devices: a OneDevice, or Lightning Fabric for data-parallel runs


def versions() -> dict[str, str]:
    """The versions a run was made with (from the installed distributions: importing Lightning,
    torchvision and scikit-learn for their `__version__` cost seconds)."""
    from importlib.metadata import PackageNotFoundError, version

    import visionstudy

    def installed(name: str) -> str:
        try:
            return version(name)
        except PackageNotFoundError:
            return "not installed"

    return {
        "visionstudy": visionstudy.__version__, "python": platform.python_version(),
        "torch": str(torch.__version__), "torchvision": installed("torchvision"),
        "lightning-fabric": installed("lightning-fabric"), "numpy": str(np.__version__),
        "scikit-learn": installed("scikit-learn"),
    }


def resolve_accelerator(device: str) -> str:
    device = check_device(device)
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device cuda: no CUDA device is available here; use --device cpu or auto")
    return device


def saved_config(run: RunDir) -> Any:
    """The config a run's last.pt was written with."""
    return load_checkpoint(run.last).get("config")


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
    from visionstudy.tasks import task_of

    accelerator = resolve_accelerator(device)
    t = cfg.train
    task = task_of(cfg)
    bf16 = t.precision == "bf16" or (t.precision == "auto" and accelerator == "cuda")
    if bf16 and accelerator == "cpu" and not cpu_runs_bf16():
        warn_emulated_bf16()
    fabric = open_devices(accelerator, t.devices, bf16, compiled=t.compile)
    fabric.launch()
    if accelerator == "cpu":
        torch.set_num_threads(t.threads or threads or thread_budget(fabric.world_size))
        keep_freed_memory()  # no page faults for each step's activations
    else:
        torch.backends.cudnn.benchmark = True
    run = RunDir(out)
    cfg_dump = dump_config(cfg)
    lock = None
    try:
        if fabric.is_global_zero:  # the writer: holds the folder's lock until the run is written
            lock = open_run(run.path, resume=resume, force=force, config=cfg_dump, saved_config=saved_config)
        fabric.barrier()
        return train_and_test(cfg, run, task, fabric, cfg_dump, resume=resume, replace=force, quiet=quiet,
                              data_dir=data_dir, on_epoch_end=on_epoch_end, on_test_epoch=on_test_epoch)
    finally:
        if lock is not None:
            lock.release()


@functools.cache
def warn_emulated_bf16() -> None:
    """Once per process: a study's worker trains many runs, and each worker says it once."""
    log.warning(BF16_ON_SLOW_CPU)


def train_and_test(cfg: RunConfig, run: RunDir, task: Task[Any], fabric: Devices, cfg_dump: dict[str, Any], *,
                   resume: bool, replace: bool, quiet: bool, data_dir: Path | None,
                   on_epoch_end: Callable[[dict[str, float]], None] | None,
                   on_test_epoch: Callable[[dict[str, float]], None] | None) -> dict[str, Any]:
    """data → model → fit → test → the run folder's files (rank 0 writes them). `replace`
    (--force): the folder's old run is cleared once the data and the model are ready, not before."""
    t = cfg.train
    fabric.seed_everything(cfg.seed, verbose=False)
    data = task.prepare(cfg, data_dir)
    check_memory(cfg, task, data, fabric)  # weights, gradients, optimizer state: before building
    net = task.build_model(cfg, data)
    check_memory(cfg, task, data, fabric, net)  # and the activations, from the built model
    data = task.adapt(data, net)
    params, flops = count_params(net), count_flops(net, task.input_shape(data))
    conv = getattr(net, "convolutional", False)
    channels_last = t.channels_last == "on" or (t.channels_last == "auto" and conv)
    if channels_last:
        net = net.to(memory_format=torch.channels_last)
    if t.compile:
        if fabric.device.type == "cpu":  # inductor's C++ build logs "No CUDA runtime is found, using
            # CUDA_HOME=..." where CUDA_HOME is set: nothing a CPU run lacks (torch's own logger)
            logging.getLogger("torch.utils.cpp_extension").setLevel(logging.ERROR)
        net.compile()
    train_loader, val_loader, test_loader = task.loaders(
        data, cfg, fabric.device, channels_last, fabric.global_rank, fabric.world_size)
    if fabric.is_global_zero:
        if replace:
            clear(run)
        write_config(run, cfg_dump, task.dataset_doc(data), params, flops)
        warn_one_step_epochs(train_loader.num_samples, t.batch_size)
        warn_warmup_only(t.scheduler.warmup_epochs, t.epochs, t.scheduler.name)
    if on_test_epoch is not None:
        on_epoch_end = with_test_probe(on_epoch_end, on_test_epoch, net, test_loader, t.tta, fabric, task)
    result = fit(fabric, net, train_loader, val_loader, t, run, resume=resume and not replace, quiet=quiet,
                 config_dump=cfg_dump, meta=task.checkpoint_meta(data), on_epoch_end=on_epoch_end,
                 task=task)
    if not fabric.is_global_zero:
        return {}
    tested = "best" if t.restore_best is not False and run.best.is_file() else "last"
    if tested == "best":
        net.load_state_dict(load_checkpoint(run.best)["model"])
    ev = task.evaluate(net, test_loader, tta=t.tta, keep_outputs=True, autocast=fabric.autocast())
    best = next((r for r in result.history if int(r["epoch"]) == result.best_epoch), {})
    metrics = {
        **task.test_metrics(ev, data),
        "params": params, "flops": flops, "train_seconds": result.train_seconds,
        "epochs_run": len(result.history), "best_epoch": result.best_epoch or None,  # None: nothing chose
        **{key: finite_or_none(best.get(key)) for key in ("val_accuracy",) if key in task.results},
        "val_loss": finite_or_none(best.get("val_loss")), "validation": cfg.data.validates_on,
        "stopped_early": result.stopped_early, "tested_checkpoint": tested,
        "cpu_threads": torch.get_num_threads() if fabric.device.type == "cpu" else None,
        "processes": fabric.world_size,  # data-parallel processes (train.devices)
    }
    metrics.update(task.extra_metrics(net, data, cfg, fabric.device))
    buf = io.BytesIO()
    arrays: dict[str, Any] = {k: v for k, v in task.prediction_arrays(ev, data).items() if v is not None}
    np.savez_compressed(buf, **arrays)
    atomic_write_bytes(run.predictions, buf.getvalue())
    atomic_write_text(run.metrics, json.dumps(metrics, indent=2))  # last: marks the run finished
    return metrics


@functools.cache
def warn_one_step_epochs(samples: int, batch_size: int) -> None:
    """A batch larger than the training set trains one step per epoch: legal (Keras and PyTorch
    say nothing), but rarely what a user meant after `max_train_samples` or a class subset. Once
    per process and sizes (a study's worker trains many such runs)."""
    if samples < batch_size:
        log.warning("train.batch_size %d is more than the %d training samples a process sees: each "
                    "epoch is one step of %d; lower train.batch_size for more steps per epoch",
                    batch_size, samples, samples)


@functools.cache
def warn_warmup_only(warmup: int, epochs: int, schedule: str) -> None:
    """A warm-up as long as the run (`--set train.epochs=2` on a recipe that warms up for 5) never
    reaches the optimizer's learning rate: legal, said once per process and sizes."""
    if warmup and warmup >= epochs:
        log.warning("train.scheduler.warmup_epochs %d is not below train.epochs %d: every epoch warms up, "
                    "the learning rate never reaches train.optimizer.lr and the %s schedule never starts; "
                    "lower warmup_epochs or train longer", warmup, epochs, schedule)


def check_memory(cfg: RunConfig, task: Task[Any], data: Any, fabric: Devices,
                 net: nn.Module | None = None) -> None:
    """Refuse a run whose training step cannot fit in the device's memory: without `net`, from a
    model on the meta device without activations (before building it), else with them."""
    from visionstudy.training.memory import check_fits, estimate
    from visionstudy.training.optim import optimizer_factory

    if net is None:
        with torch.device("meta"):
            probe = task.build_model(cfg, data, skeleton=True)
    shared = fabric.world_size if fabric.device.type == "cpu" else 1  # CPU processes share the RAM
    est = estimate(net if net is not None else probe, task.input_shape(data), cfg.train.batch_size,
                   optimizer_factory(cfg.train.optimizer), processes=shared, activations=net is not None)
    reason = check_fits(est, fabric.device)
    if reason is not None:
        raise ConfigError(f"{cfg.name}: {reason}")


def finite_or_none(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else value


def with_test_probe(
    on_epoch_end: Callable[[dict[str, float]], None] | None,
    on_test_epoch: Callable[[dict[str, float]], None],
    net: nn.Module, test_loader: BatchLoader, tta: bool, fabric: Devices, task: Task[Any],
) -> Callable[[dict[str, float]], None]:
    """An epoch-end hook that also evaluates the test set and hands the row on (benchmarks)."""

    def hook(row: dict[str, float]) -> None:
        if on_epoch_end is not None:
            on_epoch_end(row)
        ev = task.evaluate(net, test_loader, tta=tta, autocast=fabric.autocast())
        on_test_epoch({**row, "test_accuracy": ev.accuracy})

    return hook


def write_config(run: RunDir, cfg_dump: dict[str, Any], dataset: dict[str, Any], params: int,
                 flops: int) -> None:
    doc = {**cfg_dump, "resolved": {"versions": versions(), "dataset": dataset,
                                    "model": {"params": params, "flops": flops},
                                    "workdir": str(Path.cwd())}}  # a relative data.path's folder
    atomic_write_text(run.config, yaml.safe_dump(doc, sort_keys=False))

