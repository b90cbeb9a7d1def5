"""Optuna samplers and pruners: one registry each, every entry with its own parameter class,
written `sampler: tpe` or `sampler: {name: tpe, n_startup_trials: 5}`."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import Field

from visionstudy.config import Params, entry_params
from visionstudy.registry import Registry

PRIMITIVE = (str, int, float, bool, type(None))

@dataclass(frozen=True)
class Entry:
    builder: Callable[..., Any]
    params: type[Params]


SAMPLERS: Registry[Entry] = Registry("sampler")
PRUNERS: Registry[Entry] = Registry("pruner")


def register_sampler(name: str, params: type[Params]) -> Callable[[Callable[..., Any]], Any]:
    """`@register_sampler('tpe', TPEParams)` over `build(search, p) -> optuna sampler`."""

    def decorator(builder: Callable[..., Any]) -> Callable[..., Any]:
        SAMPLERS.add(name, Entry(builder, params))
        return builder

    return decorator


def register_pruner(name: str, params: type[Params]) -> Callable[[Callable[..., Any]], Any]:
    """`@register_pruner('median', MedianParams)` over `build(p, epochs) -> optuna pruner`."""

    def decorator(builder: Callable[..., Any]) -> Callable[..., Any]:
        PRUNERS.add(name, Entry(builder, params))
        return builder

    return decorator


def encoded(p: Any) -> list[Any]:
    """Optuna's categorical choices must be primitives: others (an optimizer section) go as JSON."""
    choices = p.choices or []
    return choices if all(isinstance(c, PRIMITIVE) for c in choices) else [json.dumps(c) for c in choices]


class NoParams(Params):
    pass


class TPEParams(Params):
    n_startup_trials: int = Field(10, ge=0, description="random trials before TPE models the space")
    multivariate: bool = Field(False, description="model the parameters jointly")


class HyperbandParams(Params):
    min_resource: int = Field(1, ge=1, description="epochs of the smallest bracket")
    reduction_factor: int = Field(3, ge=2, description="keep 1 of this many trials per rung")


class MedianParams(Params):
    n_startup_trials: int = Field(2, ge=0, description="trials before pruning starts")
    n_warmup_steps: int = Field(1, ge=0, description="epochs of each trial before it can be pruned")


@register_sampler("tpe", TPEParams)
def _tpe(s: Any, p: TPEParams) -> Any:
    import optuna

    return optuna.samplers.TPESampler(seed=s.seed, n_startup_trials=p.n_startup_trials,
                                      multivariate=p.multivariate)


@register_sampler("random", NoParams)
def _random(s: Any, p: NoParams) -> Any:
    import optuna

    return optuna.samplers.RandomSampler(seed=s.seed)


@register_sampler("grid", NoParams)
def _grid(s: Any, p: NoParams) -> Any:
    import optuna

    return optuna.samplers.GridSampler(stored_grid(s), seed=s.seed)


def stored_grid(s: Any) -> dict[str, list[Any]]:
    """Every value of each parameter as Optuna stores it (categoricals encoded)."""
    return {k: encoded(v) if v.type == "categorical" else v.grid() for k, v in s.space.items()}


@register_pruner("hyperband", HyperbandParams)
def _hyperband(p: HyperbandParams, epochs: int) -> Any:
    import optuna

    return optuna.pruners.HyperbandPruner(min_resource=p.min_resource,
                                          max_resource=max(epochs, p.min_resource),
                                          reduction_factor=p.reduction_factor)


@register_pruner("median", MedianParams)
def _median(p: MedianParams, epochs: int) -> Any:
    import optuna

    return optuna.pruners.MedianPruner(n_startup_trials=p.n_startup_trials, n_warmup_steps=p.n_warmup_steps)


@register_pruner("none", NoParams)
def _none(p: NoParams, epochs: int) -> Any:
    import optuna

    return optuna.pruners.NopPruner()


def make_sampler(s: Any) -> Any:
    return SAMPLERS.get(s.sampler.name, "search.sampler").builder(
        s, entry_params(SAMPLERS, s.sampler, "search.sampler"))


def make_pruner(s: Any, epochs: int) -> Any:
    return PRUNERS.get(s.pruner.name, "search.pruner").builder(
        entry_params(PRUNERS, s.pruner, "search.pruner"), epochs)
