"""Optuna samplers and pruners by name: one registry each, an entry per file line to add one."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from visionstudy.registry import Registry

PRIMITIVE = (str, int, float, bool, type(None))

# name → (search config, epochs of a trial) → the Optuna object
SAMPLERS: Registry[Callable[[Any], Any]] = Registry("sampler")
PRUNERS: Registry[Callable[[Any, int], Any]] = Registry("pruner")


def encoded(p: Any) -> list[Any]:
    """Optuna's categorical choices must be primitives: others (an optimizer section) go as JSON."""
    choices = p.choices or []
    return choices if all(isinstance(c, PRIMITIVE) for c in choices) else [json.dumps(c) for c in choices]


@SAMPLERS.register("tpe")
def _tpe(s: Any) -> Any:
    import optuna

    return optuna.samplers.TPESampler(seed=s.seed)


@SAMPLERS.register("random")
def _random(s: Any) -> Any:
    import optuna

    return optuna.samplers.RandomSampler(seed=s.seed)


@SAMPLERS.register("grid")
def _grid(s: Any) -> Any:
    import optuna

    return optuna.samplers.GridSampler(
        {k: encoded(p) if p.type == "categorical" else p.grid() for k, p in s.space.items()}, seed=s.seed)


@PRUNERS.register("hyperband")
def _hyperband(s: Any, epochs: int) -> Any:
    import optuna

    return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=epochs, reduction_factor=3)


@PRUNERS.register("median")
def _median(s: Any, epochs: int) -> Any:
    import optuna

    return optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=1)


@PRUNERS.register("none")
def _none(s: Any, epochs: int) -> Any:
    import optuna

    return optuna.pruners.NopPruner()


def make_sampler(s: Any) -> Any:
    return SAMPLERS.get(s.sampler, "search.sampler")(s)


def make_pruner(s: Any, epochs: int) -> Any:
    return PRUNERS.get(s.pruner, "search.pruner")(s, epochs)
