"""The sampler and pruner registries: every entry builds from its defaults and drives a search
(issue #14, item 5)."""

from __future__ import annotations

import pytest

from visionstudy.errors import ConfigError
from visionstudy.study.samplers import PRUNERS, SAMPLERS, make_pruner, make_sampler
from visionstudy.study.schema import SearchConfig

SPACE = {"x": {"type": "float", "low": 0.0, "high": 1.0, "step": 0.25}, "c": ["a", "b"]}


@pytest.mark.parametrize("sampler", SAMPLERS.names())
@pytest.mark.parametrize("pruner", PRUNERS.names())
def test_every_sampler_and_pruner_runs_a_small_search(sampler, pruner):
    import optuna

    s = SearchConfig(sampler=sampler, pruner=pruner, space=SPACE, seed=1)
    study = optuna.create_study(sampler=make_sampler(s), pruner=make_pruner(s, 4), direction="maximize")

    def objective(trial):
        x = trial.suggest_float("x", 0.0, 1.0, step=0.25)
        trial.suggest_categorical("c", ["a", "b"])
        for step in range(1, 5):
            trial.report(x * step, step)
            if trial.should_prune():
                raise optuna.TrialPruned()
        return x

    study.optimize(objective, n_trials=5)
    assert len(study.trials) == 5 and study.best_value >= 0


def test_sampler_and_pruner_params_are_checked_by_their_own_class():
    s = SearchConfig(sampler={"name": "tpe", "n_startup_trials": 3}, pruner={"name": "median",
                     "n_warmup_steps": 2}, space=SPACE)
    assert make_sampler(s)._n_startup_trials == 3
    with pytest.raises(ConfigError, match=r"search\.sampler\.n_startup_trials: unknown key"):
        SearchConfig(sampler={"name": "random", "n_startup_trials": 3}, space=SPACE)
    with pytest.raises(ConfigError, match="unknown pruner 'asha'"):
        SearchConfig(pruner="asha", space=SPACE)


def test_a_grid_search_trains_every_point_unless_a_pruner_is_named():
    assert SearchConfig(sampler="grid", space=SPACE).pruner.name == "none"
    assert SearchConfig(sampler={"name": "grid"}, space=SPACE).pruner.name == "none"
    assert SearchConfig(sampler="grid", pruner="median", space=SPACE).pruner.name == "median"
    assert SearchConfig(space=SPACE).pruner.name == "hyperband"  # tpe: Hyperband, as before
