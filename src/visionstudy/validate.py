"""Load and validate a run config whole: its schema (`visionstudy.config`), then every part a
registry owns: the dataset name, the model's own parameters, the augmentations, and what the
dataset's task accepts. The one place a run config is checked; everything that loads one calls it."""

from __future__ import annotations

import contextlib
import functools
import json
import os
import shlex
from collections.abc import Iterable, Iterator, Sequence
from contextvars import ContextVar
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from visionstudy.config import RunConfig, apply_overrides, dump_config, format_validation_error, read_yaml
from visionstudy.errors import ConfigError

STUDY_KEYS = ("variants", "sweep", "search", "seeds", "cv", "ladder")  # a study file's, never a run's


def validate_run_config(raw: dict[str, Any], source: str = "config", typed: str | None = None) -> RunConfig:
    """Validate a raw mapping whole: the common fields, then the registered parts. `typed`: the
    file and its overrides as a command takes them (`c.yaml --set seeds=2`), for the study run that
    a study's keys call for; default `source`."""
    try:
        cfg = RunConfig.model_validate(raw)
    except ValidationError as exc:
        study = [key for key in STUDY_KEYS if isinstance(raw, dict) and key in raw]
        if study:  # not six "unknown key" lines
            raise ConfigError(
                f"{source}: a study file (it has {', '.join(study)}), not the config of one run; run it with "
                f"`visionstudy study run {typed or source}` (API: vs.Study.load); `train` takes a run config "
                "(name, seed, data, model, train)") from None
        lines = [format_validation_error(exc, schema=RunConfig), *unknown_names(raw)]
        raise ConfigError(f"{source}: invalid config\n" + "\n".join(lines)) from None
    try:
        check_registered(cfg)
    except ConfigError as exc:
        raise ConfigError(f"{source}: invalid config\n{exc}") from None
    return cfg


NAMED = (("data", "dataset"), ("model", "name"), ("train", "optimizer", "name"),
         ("train", "scheduler", "name"))


def unknown_names(raw: Any) -> list[str]:
    """Unknown registered names in a config whose schema failed too, so one message lists all."""
    from visionstudy.data import DATASETS
    from visionstudy.models import MODELS
    from visionstudy.training.optim import OPTIMIZERS, SCHEDULES

    registries: dict[tuple[str, ...], Any] = dict(zip(NAMED, (DATASETS, MODELS, OPTIMIZERS, SCHEDULES),
                                                      strict=True))
    out = []
    for path, registry in registries.items():
        node: Any = raw
        for part in path:
            node = node.get(part) if isinstance(node, dict) else None
        if isinstance(node, str) and node not in registry:
            try:
                registry.get(node, ".".join(path))
            except ConfigError as exc:
                out.append(str(exc))
    return out


def check_registered(cfg: RunConfig) -> None:
    from visionstudy.data import DATASETS
    from visionstudy.data.augment import build_pipeline
    from visionstudy.data.base import unused_options
    from visionstudy.models import model_kind
    from visionstudy.tasks import get_task

    source = DATASETS.get(cfg.data.dataset, "data.dataset")
    task = get_task(source.task)
    model_json = json.dumps(cfg.model.params(), sort_keys=True)
    check_model_params(cfg.model.name, model_json)
    if model_kind(cfg.model.name) != task.model_kind:
        raise ConfigError(
            f"model.name {cfg.model.name!r} does not fit data.dataset {cfg.data.dataset!r}: a "
            f"{task.name} run needs a {task.model_kind} model (see `visionstudy.models.list_models`)")
    if cfg.data.augment and task.model_kind == "image":
        build_pipeline(cfg.data.augment)
    shape = source.shape_of(cfg.data)
    if shape is not None and not isinstance(cfg.data.normalize, bool):
        cfg.data.normalize.for_channels(shape[0], cfg.data.dataset)
    if SHAPES_NOW.get():
        check_model_fits(cfg)
    from visionstudy.training.optim import optimizer_params, schedule_params

    optimizer_params(cfg.train.optimizer)
    schedule_params(cfg.train.scheduler)
    refused = unused_options(cfg.data) + task.refuse(cfg) + validation_refusals(cfg)
    cores = usable_cores()
    if cfg.train.threads is not None and cfg.train.threads > cores:
        refused.append(f"train.threads: {cfg.train.threads} threads but this machine lets this process "
                       f"use {cores} cores; give at most {cores}, or leave it out to use them all")
    if refused:
        raise ConfigError("\n".join(refused))


SHAPES_NOW: ContextVar[bool] = ContextVar("shapes_now", default=True)


@contextlib.contextmanager
def shapes_later() -> Iterator[None]:
    """Validate without building the models for the data's shape (which imports torch): a cluster
    launcher submits its jobs first and calls `check_shapes` while they start."""
    token = SHAPES_NOW.set(False)
    try:
        yield
    finally:
        SHAPES_NOW.reset(token)


def check_shapes(configs: Iterable[tuple[str, RunConfig]]) -> None:
    """The check `shapes_later` deferred, for (source, config) pairs."""
    for source, cfg in configs:
        try:
            check_model_fits(cfg)
        except ConfigError as exc:
            raise ConfigError(f"{source}: invalid config\n{exc}") from None


def check_model_fits(cfg: RunConfig) -> None:
    """The model can take its data's images (built on the meta device)."""
    from visionstudy.data import DATASETS
    from visionstudy.tasks import get_task

    source = DATASETS.get(cfg.data.dataset, "data.dataset")
    shape = source.shape_of(cfg.data)
    if shape is not None and get_task(source.task).model_kind == "image":
        check_shape(cfg.model.name, json.dumps(cfg.model.params(), sort_keys=True), shape)


@functools.lru_cache(maxsize=1024)
def check_model_params(model: str, params: str) -> None:
    """The model's own parameter checks (`params` as JSON). Cached: the runs of a study share a few
    models (a ConfigError is not cached and is raised again)."""
    from visionstudy.models import validate_params

    validate_params(model, json.loads(params))


@functools.lru_cache(maxsize=1024)
def check_shape(model: str, params: str, shape: tuple[int, int, int]) -> None:
    """Build the model (`params` as JSON) for the data's image shape on the meta device (no
    memory, no weights fetched): a layout the input cannot go through is refused with the
    model's own message. Cached: a study validates the same model for many runs (a ConfigError is
    not cached and is raised again)."""
    try:
        count_parameters(model, params, shape[0], 10, (shape[1], shape[2]))
    except ConfigError:
        raise
    except Exception:  # noqa: BLE001 - not a config error (an op without a meta kernel, a bug in a
        return  # registered model): the run itself meets it, where the pool reports it per run


def parameter_count(cfg: RunConfig) -> int | None:
    """The model's parameters for the run's data, counted on the meta device (no memory, no
    weights fetched); None when the input shape or the outputs need the dataset's files."""
    from visionstudy.data import DATASETS

    io = DATASETS.get(cfg.data.dataset, "data.dataset").model_io(cfg.data)
    if io is None:
        return None
    return count_parameters(cfg.model.name, json.dumps(cfg.model.params(), sort_keys=True), *io)


@functools.lru_cache(maxsize=1024)
def count_parameters(model: str, params: str, channels: int, outputs: int, shape: tuple[int, int]) -> int:
    """Build the model (`params` as JSON) as `create_model` does, for `channels` (image channels,
    or features per set element), `outputs` and the input `shape` ((H, W), or (set size,
    features)), on the meta device, and count its parameters."""
    import torch

    from visionstudy.models import count_params, create_model

    with torch.device("meta"):
        net = create_model(model, channels, outputs, shape, skeleton=True, **json.loads(params))
        return count_params(net)


def validation_refusals(cfg: RunConfig) -> list[str]:
    """What needs a validation set when there is none (`data.val_fraction: 0`), a fold without its
    folds, and what contradicts validating on the test set."""
    d, t, out = cfg.data, cfg.train, []
    if d.validates_on == "none":
        why = "needs a validation set, and data.val_fraction: 0 trains on the whole training split"
        if t.early_stopping is not None:
            out.append(f"train.early_stopping {why}; remove early_stopping or give data.val_fraction "
                       "(e.g. 0.1), or validate on the test set (data.validation: test)")
        if t.restore_best:
            out.append(f"train.restore_best: true {why}; remove it (the last epoch's weights are tested)")
        if t.monitor is not None:
            out.append(f"train.monitor {why}; remove it")
        if t.scheduler.name == "plateau":
            out.append("train.scheduler: plateau watches a validation metric, and data.val_fraction: 0 "
                       "leaves none; use another schedule or give data.val_fraction")
    if problem := d.fold_problem():
        out.append(problem)
    if d.validation == "test" and d.folds is not None:
        out.append("data.validation: test and data.folds disagree: cross-validation validates on "
                   "each fold; remove one of them")
    return out


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity, e.g. a container's or taskset's share)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def thread_budget(processes: int = 1) -> int:
    """CPU threads for each of `processes` (a run's data-parallel processes, a study's workers)
    when `train.threads` is not given, at least 1: their share of `OMP_NUM_THREADS` where that is a
    positive whole number (a cluster job script's `$SLURM_CPUS_PER_TASK`, a test runner sharing the
    cores between its workers), at most the usable cores; else of the usable cores. Two processes
    each on every core slow both several-fold (bench/results/throughput.md)."""
    cores = usable_cores()
    text = os.environ.get("OMP_NUM_THREADS", "").strip()
    budget = min(int(text), cores) if text.isdigit() and int(text) > 0 else cores
    return max(1, budget // max(processes, 1))


def load_config(path: Path, overrides: list[str] = ()) -> RunConfig:  # type: ignore[assignment]
    """A run config file with `--set KEY=VALUE` overrides applied, validated whole. A run's own
    config.yaml trains that config again: its `resolved:` record is set aside (it was refused as
    an unknown key); a run's folder is told the file it holds."""
    from visionstudy.store.reader import as_asked
    from visionstudy.store.rundir import RunDir

    run = RunDir(path)
    if path.is_dir() and run.is_run():
        raise ConfigError(
            f"{path}: a run folder, not a config file; to train its config again give its file "
            f"(`visionstudy train {shlex.quote(str(run.config))} --out NEW_FOLDER`), and to continue it if "
            f"it did not finish, `visionstudy train {shlex.quote(str(run.config))} --resume --out "
            f"{shlex.quote(str(path))}`")
    return run_from(as_asked(read_yaml(path)), overrides, str(path))  # a run's record is no setting


def run_from(raw: dict[str, Any], overrides: Sequence[str], source: str) -> RunConfig:
    """A run config mapping with `--set KEY=VALUE` overrides applied (`model.channels.1=64`
    sets one element of a list, the model's default list too), validated whole; errors name the
    overrides beside the file, as a study's do."""
    label = f"{source} with --set {' --set '.join(overrides)}" if overrides else source
    typed = shlex.join([source, *(word for o in overrides for word in ("--set", o))])
    return validate_run_config(apply_overrides(raw, overrides, run_defaults), label, typed)


def resolved_with_defaults(cfg: RunConfig) -> dict[str, Any]:
    """The config with every default filled in, the model's own parameters included."""
    from visionstudy.models import validate_params

    out = dump_config(cfg)
    params = validate_params(cfg.model.name, cfg.model.params()).model_dump(mode="json")
    out["model"] = {"name": cfg.model.name, **params}
    return out


def run_defaults(raw: dict[str, Any]) -> dict[str, Any] | None:
    """A run config mapping with every default filled in; None when it is not valid."""
    try:
        return resolved_with_defaults(validate_run_config(raw))
    except ConfigError:
        return None
