"""Hyperparameter search with Optuna (TPE, random or grid; Hyperband or median pruning), in the
study's database, then the final training of the best values (seed 002's flow)."""

from __future__ import annotations

import json
import multiprocessing as mp
import os
from pathlib import Path
from typing import Any

from visionstudy.config import merge_run
from visionstudy.study.spec import RunSpec, SearchConfig, SearchParam, Study, apply_keys, build_run

PRIMITIVE = (str, int, float, bool, type(None))


def encoded(p: SearchParam) -> list[Any]:
    """Optuna's categorical choices must be primitives: others (an optimizer section) go as JSON."""
    choices = p.choices or []
    return choices if all(isinstance(c, PRIMITIVE) for c in choices) else [json.dumps(c) for c in choices]


def decode(p: SearchParam, value: Any) -> Any:
    if p.type == "categorical" and encoded(p) != (p.choices or []):
        return json.loads(value)
    return value


def suggest(trial: Any, key: str, p: SearchParam) -> Any:
    if p.type == "categorical":
        return decode(p, trial.suggest_categorical(key, encoded(p)))
    if p.type == "int":
        return trial.suggest_int(key, int(p.low), int(p.high), step=int(p.step or 1), log=p.log)  # type: ignore[arg-type]
    return trial.suggest_float(key, p.low, p.high, step=p.step, log=p.log)  # type: ignore[arg-type]


def make_sampler(s: SearchConfig) -> Any:
    import optuna

    if s.sampler == "grid":
        return optuna.samplers.GridSampler(
            {k: encoded(p) if p.type == "categorical" else p.grid() for k, p in s.space.items()}, seed=s.seed)
    if s.sampler == "random":
        return optuna.samplers.RandomSampler(seed=s.seed)
    return optuna.samplers.TPESampler(seed=s.seed)


def make_pruner(s: SearchConfig, epochs: int) -> Any:
    import optuna

    if s.pruner == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=epochs, reduction_factor=3)
    if s.pruner == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=1)
    return optuna.pruners.NopPruner()


def search_study(study: Study, url: str) -> Any:
    import optuna

    from visionstudy.store.db import storage_for

    s = study.config.search
    assert s is not None
    epochs = s.trial_epochs or int(search_base(study).get("train", {}).get("epochs", 10))
    return optuna.create_study(
        study_name=f"{study.name}:search", storage=storage_for(url), sampler=make_sampler(s),
        pruner=make_pruner(s, epochs), load_if_exists=True,
        direction="maximize" if s.objective == "val_accuracy" else "minimize",
    )


def trial_override(study: Study, params: dict[str, Any]) -> dict[str, Any]:
    s = study.config.search
    assert s is not None
    base = search_base(study)
    return merge_run(s.base, apply_keys(base, {key: decode(p, params[key]) for key, p in s.space.items()}))


def search_base(study: Study) -> dict[str, Any]:
    """The config the search varies: the study's base with `search.base` on top."""
    assert study.config.search is not None
    return merge_run(study.base, study.config.search.base)


def objective_for(study: Study, study_dir: Path, device: str, data_dir: Path | None, threads: int) -> Any:
    import optuna

    from visionstudy.experiment import run_experiment

    s = study.config.search
    assert s is not None

    def objective(trial: optuna.Trial) -> float:
        values = {key: suggest(trial, key, p) for key, p in s.space.items()}
        override = merge_run(s.base, apply_keys(search_base(study), values))
        if s.trial_epochs:
            override = merge_run(override, {"train": {"epochs": s.trial_epochs}})
        cfg = build_run(study.base, override, study.overrides, study.name, "search", study.config.seed,
                        None, study.source)
        rows: list[dict[str, float]] = []

        def report(row: dict[str, float]) -> None:
            rows.append(row)
            trial.report(row[s.objective], int(row["epoch"]))
            if trial.should_prune():
                raise optuna.TrialPruned(f"pruned after epoch {int(row['epoch'])}")

        out = study_dir / "search" / f"trial-{trial.number:03d}"
        run_experiment(cfg, out, device=device, quiet=True, force=True, data_dir=data_dir,
                       on_epoch_end=report, threads=threads)
        best = max if s.objective == "val_accuracy" else min
        return float(best(r[s.objective] for r in rows))

    return objective


def search_worker(study: Study, url: str, study_dir: str, device: str, data_dir: str | None,
                  threads: int) -> None:
    import optuna
    import torch
    from optuna.trial import TrialState

    torch.set_num_threads(threads)
    s = study.config.search
    assert s is not None
    ostudy = search_study(study, url)
    objective = objective_for(study, Path(study_dir), device, Path(data_dir) if data_dir else None, threads)
    done = optuna.study.MaxTrialsCallback(s.trials, states=(TrialState.COMPLETE, TrialState.PRUNED))
    if finished_trials(ostudy) < s.trials:
        ostudy.optimize(objective, callbacks=[done], catch=(), gc_after_trial=True)


def finished_trials(ostudy: Any) -> int:
    from optuna.trial import TrialState

    return len(ostudy.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED)))


def run_search(study: Study, url: str, study_dir: Path, *, workers: int, device: str,
               data_dir: Path | None) -> dict[str, Any] | None:
    """Run the search to its number of trials (resuming a stopped one); the best params."""
    s = study.config.search
    assert s is not None
    ostudy = search_study(study, url)
    if finished_trials(ostudy) < s.trials:
        threads = max(1, (os.cpu_count() or 1) // max(workers, 1))
        ctx = mp.get_context("spawn")
        procs = [ctx.Process(target=search_worker, args=(study, url, str(study_dir), device,
                                                           str(data_dir) if data_dir else None, threads))
                 for _ in range(max(workers, 1))]
        for p in procs:
            p.start()
        for p in procs:
            p.join()
    try:
        return dict(ostudy.best_trial.params)
    except ValueError:  # no completed trial
        return None


def final_runs(study: Study, params: dict[str, Any]) -> list[RunSpec]:
    """The best values retrained with `final.seeds` seeds, as variant 'search-best'."""
    s = study.config.search
    assert s is not None and s.final is not None
    override = trial_override(study, params)
    return [RunSpec(f"search-best/seed-{k}", "search-best", k, None,
                    build_run(study.base, override, study.overrides, study.name, "search-best",
                              study.config.seed + k, None, study.source))
            for k in range(s.final.seeds)]
