"""Hyperparameter search with Optuna (TPE, random or grid; Hyperband or median pruning), in the
study's database, then the final training of the best values (seed 002's flow)."""

from __future__ import annotations

import json
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from visionstudy.config import RunConfig, few, merge_run
from visionstudy.errors import ConfigError
from visionstudy.stops import stop_deferred
from visionstudy.study.pool import Event, Job
from visionstudy.study.samplers import encoded, make_pruner, make_sampler, stored_grid

if TYPE_CHECKING:
    import optuna
    from optuna.distributions import BaseDistribution
    from optuna.samplers import BaseSampler
    from optuna.trial import FrozenTrial

    from visionstudy.study.execute import Driver, Placement

from visionstudy.study.schema import SearchConfig, SearchParam
from visionstudy.study.spec import (
    FINAL_VARIANT,
    SEARCH_DIR,
    RunSpec,
    Study,
    apply_keys,
    build_run,
    folds_of,
    run_key,
)
from visionstudy.tasks.metrics import metric

WAIT_SECONDS = 1.0  # between looks at the trials other workers train, before the final runs


def decode(p: SearchParam, value: Any) -> Any:
    if p.type == "categorical" and encoded(p) != (p.choices or []):
        return json.loads(value)
    return value


def suggest(trial: optuna.Trial, key: str, p: SearchParam) -> Any:
    """`p`'s value for `trial`, drawn from `distribution(p)` (the one mapping of a parameter to
    Optuna's terms, which `check_space` compares with the trials' own)."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    d = distribution(p)
    if isinstance(d, CategoricalDistribution):
        return decode(p, trial.suggest_categorical(key, list(d.choices)))
    if isinstance(d, IntDistribution):
        return trial.suggest_int(key, d.low, d.high, step=d.step, log=d.log)
    assert isinstance(d, FloatDistribution)
    return trial.suggest_float(key, d.low, d.high, step=d.step, log=d.log)


def distribution(p: SearchParam) -> BaseDistribution:
    """The Optuna distribution a search parameter is drawn from."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    if p.type == "categorical":
        return CategoricalDistribution(encoded(p))
    low, high = p.bounds()
    if p.type == "int":
        return IntDistribution(int(low), int(high), log=p.log, step=int(p.step or 1))
    return FloatDistribution(low, high, log=p.log, step=p.step)


def errored(t: FrozenTrial) -> bool:
    """A trial that failed with an error (it counts towards `search.trials`); one stopped by an
    interrupt fails without one and is queued again."""
    from optuna.trial import TrialState

    return t.state == TrialState.FAIL and "error" in t.user_attrs


def search_study(study: Study, url: str) -> optuna.Study:
    """The search's Optuna study, created or loaded. Loading keeps the direction it was created
    with: one whose trials were judged on another objective is refused (`check_judging`), and
    one with none judged yet (every trial failed, say) is created again in the objective's direction."""
    import optuna

    from visionstudy.store.db import storage_for

    s = study.config.search
    assert s is not None
    epochs = trial_epochs(study)
    warnings.filterwarnings("ignore", message=".*Heartbeat of storage.*")  # we heartbeat ourselves
    storage = storage_for(url)

    def create() -> optuna.Study:
        return optuna.create_study(study_name=f"{study.name}:search", storage=storage,
                                   sampler=make_sampler(s), pruner=make_pruner(s, epochs),
                                   load_if_exists=True, direction=direction(s))

    ostudy = create()
    trials = ostudy.get_trials(deepcopy=False)
    check_judging(ostudy, trials, s, epochs)
    if ostudy.direction.name.lower() != direction(s):  # nothing judged the other way: start it anew
        optuna.delete_study(study_name=ostudy.study_name, storage=storage)
        ostudy = create()
    ostudy.set_user_attr(OBJECTIVE, s.objective)
    ostudy.set_user_attr(BUDGET, epochs)
    return ostudy


def direction(s: SearchConfig) -> Literal["maximize", "minimize"]:
    return "maximize" if metric(s.objective).maximize else "minimize"


def check_judging(ostudy: optuna.Study, trials: list[FrozenTrial], s: SearchConfig,
                  epochs: int | None = None) -> None:
    """Once trials were judged (complete or pruned), a search keeps what judged them: its objective
    (asked for val_loss after val_accuracy, Optuna kept the old direction and took the worst loss for
    the best accuracy) and the epochs each trains (`search.trial_epochs`, `search.base`, `--set
    train.epochs`: values of two budgets ranked together). `epochs`: None where not known."""
    from optuna.trial import TrialState

    judged = sum(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in trials)
    if not judged:
        return
    objective, budget = ostudy.user_attrs.get(OBJECTIVE), ostudy.user_attrs.get(BUDGET)
    kept = "give the changed search another study (--set name=... or --runs-dir)"
    if objective not in (None, s.objective) or ostudy.direction.name.lower() != direction(s):
        was = objective or f"a metric to {ostudy.direction.name.lower()}"
        raise ConfigError(f"search.objective: the search's {judged} trials were judged on {was}; the study "
                          f"now asks for {s.objective} ({direction(s)}); a search keeps its objective: undo "
                          f"the change, or {kept}")
    if epochs is not None and budget not in (None, epochs):
        raise ConfigError(f"search.trial_epochs: the search's {judged} trials trained {budget} "
                          f"epoch{'s' * (budget != 1)} each; the study now trains them {epochs} "
                          "(search.trial_epochs, search.base or --set train.epochs); values of two budgets "
                          f"are not comparable: undo the change, or {kept}")


def decoded(s: SearchConfig, params: dict[str, Any]) -> dict[str, Any]:
    """A trial's values as the study file writes them (a whole section, not Optuna's JSON of it)."""
    return {k: decode(s.space[k], v) if k in s.space else v for k, v in params.items()}


def trial_override(study: Study, params: dict[str, Any]) -> dict[str, Any]:
    s = study.config.search
    assert s is not None
    values = decoded(s, params)
    return merge_run(s.base, apply_keys(search_base(study), {key: values[key] for key in s.space}))


def search_base(study: Study) -> dict[str, Any]:
    """The config the search varies: the study's base with `search.base` on top."""
    assert study.config.search is not None
    return merge_run(study.base, study.config.search.base)


DUPLICATE_TRIES = 20  # samples drawn before a sampler counts as stuck on known values
ASKED = "trials_asked"  # the search study's user attribute: the most `search.trials` (or --trials) asked
SPACE = "space_size"  # ... and how many configurations its space holds (None: continuous)
OBJECTIVE = "objective"  # ... and the metric its trials were judged on
BUDGET = "trial_epochs"  # ... and the epochs each trial trains


def trial_config(study: Study, values: dict[str, Any]) -> RunConfig:
    s = study.config.search
    assert s is not None
    override = merge_run(s.base, apply_keys(search_base(study), values))
    if s.trial_epochs:
        override = merge_run(override, {"train": {"epochs": s.trial_epochs}})
    return build_run(study.base, override, study.overrides, study.name, "search",
                     study.config.repeat_seed(0), None, study.source)


def trial_epochs(study: Study) -> int:
    """The epochs a trial trains (`search.trial_epochs`, else the search's base, then `--set`): the
    pruner's largest resource."""
    try:
        return trial_config(study, {}).train.epochs
    except ConfigError:  # a base that only the space's values complete: the number as written
        s = study.config.search
        assert s is not None
        return s.trial_epochs or int(search_base(study).get("train", {}).get("epochs", 10))


def params_key(values: dict[str, Any]) -> str:
    """One configuration's identity: floats to 12 digits, so 0.1 + 0.2 and 0.3 are one point."""
    return json.dumps({k: float(f"{v:.12g}") if isinstance(v, float) else v for k, v in values.items()},
                      sort_keys=True, default=str)


def to_ask(ostudy: optuna.Study, trials: int, exhausted: bool) -> bool:
    """Whether a trial is to be asked: one is queued (a resume, or a copy of a trial whose worker
    died), or fewer than `trials` count and the space (`exhausted`: it holds no new one) has more."""
    from optuna.trial import TrialState

    now = ostudy.get_trials(deepcopy=False)  # one query
    return any(t.state == TrialState.WAITING for t in now) or (not exhausted and counted(now) < trials)


def open_elsewhere(ostudy: optuna.Study) -> int:
    """Trials other drivers train or have queued, after reclaiming those whose driver is gone
    (its heartbeat stale, or its process on this machine ended): they go back to the queue."""
    import optuna
    from optuna.trial import TrialState

    optuna.storages.fail_stale_trials(ostudy)
    recover_stopped(ostudy)
    return len(ostudy.get_trials(deepcopy=False, states=(TrialState.RUNNING, TrialState.WAITING)))


def counted(trials: list[FrozenTrial]) -> int:
    """Of `trials`, those that count towards `search.trials`: complete, pruned, running, queued,
    and failed with an error (a trial stopped by an interrupt is queued again instead)."""
    from optuna.trial import TrialState

    n = 0
    for t in trials:
        if t.state in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING, TrialState.WAITING):
            n += 1
        elif errored(t):
            n += 1
    return n


def tried(ostudy: optuna.Study) -> set[str]:
    """The configurations the search has run, runs, or failed on with an error."""
    from optuna.trial import TrialState

    done = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING, TrialState.WAITING)
    return {params_key(t.params or t.system_attrs.get("fixed_params", {}))
            for t in ostudy.get_trials(deepcopy=False)
            if t.state in done or errored(t)}


def check_space(trials: list[FrozenTrial], s: SearchConfig) -> None:
    """The space as its trials ran: a parameter whose kind changed since (its log scale, step,
    type or choices; a range may move) made Optuna raise a ValueError, with a traceback, mid-search."""
    from optuna.distributions import check_distribution_compatibility

    for t in trials:
        for key, old in t.distributions.items():
            if key not in s.space:
                continue
            new = distribution(s.space[key])
            try:
                check_distribution_compatibility(old, new)
            except ValueError as exc:
                raise ConfigError(
                    f"search.space.{key}: the search's trials drew it from {old}, the study now gives "
                    f"{new} ({str(exc).rstrip('.')}); a search keeps each parameter's scale, step and "
                    "choices: undo the change, or give the changed search another study (--set name=... "
                    "or --runs-dir)") from None


def ask_distinct(ostudy: optuna.Study, s: SearchConfig, proposer: BaseSampler,
                 worker: dict[str, Any] | None = None) -> tuple[optuna.Trial, dict[str, Any]] | None:
    """The next trial, with values no earlier trial had; None when the space holds no new
    configuration. A trial queued for a resume comes first (its values and folder kept); else the
    sampler `proposer` (built like the study's, kept for the whole search: a sampler's search-space
    cache serves one study, so it is never the study's own) proposes on an in-memory copy of the
    search's history, where its repeats are dropped, and the proposal is queued (`enqueue_trial`)
    and taken (`ask`): the database holds only distinct trials, never a failed "duplicate".
    `worker` (who trains it) is written on the queued trial before `ask` makes it RUNNING: a
    driver killed right after asking has named itself, and `recover_stopped` queues the trial
    again (named after `ask`, it stayed RUNNING for ever)."""
    from optuna.trial import TrialState

    waiting = ostudy.get_trials(deepcopy=False, states=(TrialState.WAITING,))
    if not waiting:
        params = propose(ostudy, s, proposer)
        if params is None:
            return None
        ostudy.enqueue_trial(params, user_attrs={"worker": worker} if worker else None, skip_if_exists=False)
    elif worker:  # a trial queued for a resume: the first waiting one is what `ask` takes
        first = min(waiting, key=lambda t: t.number)
        ostudy._storage.set_trial_user_attr(first._trial_id, "worker", worker)
    trial = ostudy.ask()
    return trial, {key: suggest(trial, key, p) for key, p in s.space.items()}


def propose(ostudy: optuna.Study, s: SearchConfig, proposer: BaseSampler) -> dict[str, Any] | None:
    """Untried values (as Optuna stores them) from the study's sampler; once it only repeats
    itself, an untried point of a finite space chosen at random; None when all were tried."""
    import random

    import optuna
    from optuna.trial import TrialState

    seen = tried(ostudy)
    size = space_size(s)
    if size is not None and len(seen) >= size:
        return None
    mirror = optuna.create_study(sampler=proposer, directions=ostudy.directions)
    finished = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
    mirror.add_trials(ostudy.get_trials(deepcopy=False, states=finished))
    for _ in range(DUPLICATE_TRIES):
        trial = mirror.ask()
        for key, p in s.space.items():
            suggest(trial, key, p)
        if params_key(trial.params) not in seen:
            return dict(trial.params)
        mirror.tell(trial, state=TrialState.FAIL)
    untried = []
    if size is not None:
        import itertools

        axes = stored_grid(s)
        points = (dict(zip(axes, values, strict=True)) for values in itertools.product(*axes.values()))
        untried = [point for point in points if params_key(point) not in seen]
    return random.Random(len(seen)).choice(untried) if untried else None


def space_size(s: SearchConfig) -> int | None:
    """How many distinct configurations the space holds; None when a range is continuous."""
    import math

    sizes = [p.size() for p in s.space.values()]
    return None if None in sizes else math.prod(sizes)  # type: ignore[arg-type]


def recover_stopped(ostudy: optuna.Study) -> None:
    """Trials left RUNNING by a driver that is gone (killed, or its machine rebooted) are failed
    and queued again with the same values and folder: they resume from their last.pt."""
    import socket

    from optuna.trial import TrialState

    from visionstudy.store.db import pid_alive

    for t in ostudy.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        owner = t.user_attrs.get("worker") or {}
        if owner.get("host") == socket.gethostname() and not pid_alive(int(owner.get("driver", -1))):
            requeue_trial(ostudy, t)


def requeue_trial(ostudy: optuna.Study, trial: FrozenTrial | optuna.Trial) -> None:
    import optuna
    from optuna.trial import TrialState

    try:
        ostudy._storage.set_trial_state_values(trial._trial_id, state=TrialState.FAIL)
    except optuna.exceptions.UpdateFinishedTrialError:
        return
    folder = trial.user_attrs.get("folder") or f"trial-{trial.number:03d}"
    ostudy.enqueue_trial(dict(trial.params), user_attrs={"folder": folder}, skip_if_exists=False)


def objective_value(run: Path, objective: str) -> float | None:
    """The best per-epoch objective of a finished trial, from its history.csv."""
    from visionstudy.store.reader import read_history
    from visionstudy.store.rundir import RunDir

    maximize = metric(objective).maximize
    try:
        values = [r[objective] for r in read_history(RunDir(run).history) if objective in r]
    except (OSError, ValueError):
        return None
    values = [v for v in values if v == v]
    return (max(values) if maximize else min(values)) if values else None


def run_search(driver: Driver, study: Study, place: Placement) -> dict[str, Any] | None:
    """Run the search to its number of trials in the driver's pool (resuming a stopped one);
    the best params. The driver asks every trial from one sampler, so workers never repeat one."""
    import os
    import socket

    s = study.config.search
    assert s is not None
    url, study_dir = place.url(study), place.study_dir(study)
    ostudy = search_study(study, url)
    ostudy.set_user_attr(ASKED, max(s.trials, ostudy.user_attrs.get(ASKED, 0)))  # `--trials 8` then 6: 8
    ostudy.set_user_attr(SPACE, space_size(s))
    check_space(ostudy.get_trials(deepcopy=False), s)
    recover_stopped(ostudy)
    epochs = trial_epochs(study)
    held: dict[int, optuna.Trial] = {}
    beat = ostudy._storage.record_heartbeat  # type: ignore[attr-defined]  # storage_for's: RDBStorage
    exhausted = waited = False
    proposer = make_sampler(s)  # the proposing copy of the study's sampler (see ask_distinct)
    try:
        while True:
            if to_ask(ostudy, s.trials, exhausted):
                pool = driver.get_pool()
                for i in pool.idle():
                    if not to_ask(ostudy, s.trials, exhausted):
                        break
                    with stop_deferred():
                        worker = {"host": socket.gethostname(), "pid": pool.pid(i), "driver": os.getpid()}
                        asked = ask_distinct(ostudy, s, proposer, worker)
                        if asked is None:
                            exhausted = True
                            break
                        trial, values = asked
                        folder = trial.user_attrs.get("folder") or f"trial-{trial.number:03d}"
                        trial.set_user_attr("folder", folder)
                        trial.set_user_attr("worker", worker)  # another driver may have named itself
                        beat(trial._trial_id)  # from now on a trial whose driver dies goes stale
                        cfg = trial_config(study, values)
                        pool.submit(i, job_for(trial, folder, cfg, study_dir, url, ostudy.study_name, s,
                                               epochs))
                        held[i] = trial
            if held:
                for ev in driver.get_pool().events(1.0):
                    with stop_deferred():
                        record_trial(driver, ostudy, held[ev.worker], ev, study_dir, s.objective)
                        del held[ev.worker]
                driver.heartbeat(beat, [t._trial_id for t in held.values()])
                continue
            elsewhere = open_elsewhere(ostudy)
            if not elsewhere:
                break
            # the best is chosen from every trial: wait for the trials other workers train (one
            # whose worker dies goes back to the queue when its heartbeat stops, and is taken here)
            if not waited:
                then = " before the final runs" if s.final else ""  # none without search.final
                driver.echo(f"search: waiting for {elsewhere} trial{'s' * (elsewhere > 1)} training "
                            f"elsewhere{then}")
                waited = True
            time.sleep(WAIT_SECONDS)
    except BaseException:
        driver.stop()
        for trial in held.values():
            requeue_trial(ostudy, trial)
        raise
    if exhausted and counted(ostudy.get_trials(deepcopy=False)) < s.trials:
        driver.echo(f"search: the space holds {space_size(s)} configurations, fewer than the {s.trials} "
                    f"trials asked; every one of them was tried")
    try:
        return dict(ostudy.best_trial.params)
    except ValueError:  # no completed trial
        return None


def search_failure(url: str, study: str) -> tuple[str, str] | None:
    """The search's failure when none of its trials completed and some failed (nothing to choose
    the best values from): a diverged trial among completed ones is the search working, not a failure."""
    from optuna.trial import TrialState

    found = search_trials(url, study)
    if found is None:
        return None
    trials = found[1]
    failed = [t for t in trials if errored(t)]
    if not failed or any(t.state == TrialState.COMPLETE for t in trials):
        return None
    last = failed[-1]
    return (SEARCH_DIR, f"none of its {counted(trials)} trials completed ({len(failed)} failed; "
                        f"{last.user_attrs.get('folder', last.number)}: {last.user_attrs['error']})")


TRIAL_COLUMNS = ["trial", "state", "objective", "epochs"]  # then each searched key


def search_trials(url: str, study: str) -> tuple[optuna.Study, list[FrozenTrial]] | None:
    """The study's search and its trials (the queue's duplicates left out), read only; None before
    the search started."""
    import optuna

    from visionstudy.store.db import holds_studies, storage_for

    if not holds_studies(url):  # never ran: create nothing
        return None
    try:
        ostudy = optuna.load_study(study_name=f"{study}:search", storage=storage_for(url, write=False))
    except KeyError:
        return None
    return ostudy, [t for t in ostudy.get_trials(deepcopy=False) if not t.user_attrs.get("duplicate")]


def trials_left(url: str, study_dir: Path, s: SearchConfig, epochs: int | None = None) -> int:
    """How many trials `study run` would still train (read only): the queued ones, then new ones up
    to `s.trials`, as far as the space holds configurations not tried yet. A study never planned
    has no search yet: its database is not opened (Optuna would create its tables there)."""
    from optuna.trial import TrialState

    from visionstudy.study.manifest import has_manifest

    space = space_size(s)
    found = search_trials(url, study_dir.name) if has_manifest(study_dir) else None
    if found is None:
        return s.trials if space is None else min(s.trials, space)
    ostudy, trials = found
    check_space(trials, s)
    check_judging(ostudy, trials, s, epochs)
    new = max(0, s.trials - counted(trials))
    if space is not None:
        new = min(new, max(0, space - len(tried(ostudy))))
    return new + sum(t.state == TrialState.WAITING for t in trials)


def settled_best(study: Study, place: Placement) -> dict[str, Any] | None:
    """The search's best values once the search is over (no trial left to train or training
    anywhere), for a call that leaves the search out (`--only`): it plans the final runs too, so
    that the manifest, `study status` and the report keep them. None while the search may still
    change them, or when its section changed (the call that runs it says how)."""
    s = study.config.search
    if s is None or s.final is None:
        return None
    url, study_dir = place.url(study), place.study_dir(study)
    found = search_trials(url, study.name)
    if found is None:
        return None
    try:
        if trials_left(url, study_dir, s, trial_epochs(study)) or open_elsewhere(found[0]):
            return None
        return dict(found[0].best_trial.params)
    except (ConfigError, ValueError):  # a changed search section; no completed trial
        return None


def trained_best(study: Study, place: Placement) -> dict[str, Any] | None:
    """The best values found so far when every final run is finished with them: a call that runs
    the search again plans the final runs too, so that the manifest, `study status` and the report
    keep them while more trials train (they were gone until the search ended; other best values
    move them aside after it). None otherwise."""
    s = study.config.search
    found = search_trials(place.url(study), study.name) if s is not None and s.final else None
    if found is None:
        return None
    try:
        best = dict(found[0].best_trial.params)
    except ValueError:  # no completed trial
        return None
    finals = {r.key: r.config_hash for r in final_runs(study, best)}
    return best if trained_with(study, place, list(finals)) == finals else None


def trained_with(study: Study, place: Placement, keys: list[str]) -> dict[str, str | None]:
    """What each of `keys` with results on disk trained with: its config hash, from the run
    database's last record of it."""
    from visionstudy.store.db import RunStore
    from visionstudy.study.execute import results_on_disk

    on_disk = results_on_disk(place.study_dir(study), keys)
    if not on_disk:
        return {}
    records = RunStore(place.url(study), study.name).run_records()
    return {k: max(records[k], key=lambda t: t.number).config_hash for k in on_disk if records.get(k)}


def final_slots(study: Study) -> list[tuple[int, tuple[int, int] | None]]:
    """(seed index, fold) of each of the search's final runs: `final.seeds` seeds, each on every
    fold where `cv.variants` names search-best."""
    s = study.config.search
    return [(k, fold) for k in range(s.final.seeds if s and s.final else 0)
            for fold in folds_of(study.config, FINAL_VARIANT)]


def final_keys(study: Study) -> list[str]:
    return [run_key(FINAL_VARIANT, k, fold) for k, fold in final_slots(study)]


def finals_left(study: Study, study_dir: Path) -> int:
    """The search's final runs without results on disk."""
    from visionstudy.study.execute import results_on_disk

    keys = final_keys(study)
    return len(keys) - len(results_on_disk(study_dir, keys))


def trial_rows(trials: list[FrozenTrial], s: SearchConfig) -> list[list[Any]]:
    """One row per trial, as TRIAL_COLUMNS name them, then its value of each searched key as the
    study file writes it (a whole section as a dict, not Optuna's JSON of it)."""
    rows = []
    for t in trials:
        values = decoded(s, t.params)
        rows.append([t.number, t.state.name.lower(), t.value, len(t.intermediate_values),
                     *(values.get(k) for k in s.space)])
    return rows


def search_progress(url: str, study: str) -> tuple[str | None, dict[str, str]]:
    """`study status`'s line for a search (trials by state, of how many were asked) and the errors
    of its failed trials by folder (`search/trial-003`), as its failed runs are listed."""
    from optuna.trial import TrialState

    found = search_trials(url, study)
    if found is None:
        return None, {}
    ostudy, trials = found
    errors = {f"{SEARCH_DIR}/{t.user_attrs.get('folder', t.number)}": str(t.user_attrs["error"])
              for t in trials if errored(t)}
    states = [t.state for t in trials]
    failed = len(errors)
    asked = ostudy.user_attrs.get(ASKED)
    parts = [f"{states.count(TrialState.COMPLETE)} complete", f"{states.count(TrialState.PRUNED)} pruned",
             f"{states.count(TrialState.RUNNING)} running", f"{failed} failed"]
    space = ostudy.user_attrs.get(SPACE)
    smaller = (f"; the space holds only {space} configurations"
               if space is not None and asked and space < asked else "")
    return (f"search: {counted(trials)} of {asked if asked is not None else '?'} trials ({', '.join(parts)})"
            + smaller), errors


def job_for(trial: optuna.Trial, folder: str, cfg: RunConfig, study_dir: Path, url: str, name: str,
            s: SearchConfig, epochs: int) -> Job:
    return Job(f"{SEARCH_DIR}/{folder}", str(study_dir / SEARCH_DIR / folder), cfg,
               trial={"url": url, "study": name, "trial_id": trial._trial_id, "search": s, "epochs": epochs})


def record_trial(driver: Driver, ostudy: optuna.Study, trial: optuna.Trial, ev: Event, study_dir: Path,
                 objective: str) -> None:
    from optuna.trial import TrialState

    folder = study_dir / SEARCH_DIR / trial.user_attrs["folder"]
    key = f"{SEARCH_DIR}/{trial.user_attrs['folder']}"
    if ev.kind == "done":
        value = objective_value(folder, objective)
        if value is None:  # said, as any failed trial is (it failed silently: "0/0 runs finished", exit 0)
            message = f"its history.csv holds no {objective} value"
            trial.set_user_attr("error", message)
            ostudy.tell(trial, state=TrialState.FAIL)
            driver.echo(f"failed {key} (trial {trial.number}): {message}")
            return
        ostudy.tell(trial, value)
        driver.echo(f"done {key} (trial {trial.number}): best {objective} {value:.4f}")
    elif ev.kind == "pruned":
        ostudy.tell(trial, state=TrialState.PRUNED)
        driver.echo(f"pruned {key} (trial {trial.number}): {ev.message}")
    elif ev.kind == "died":
        driver.echo(f"{key}: {ev.message}; the trial is queued again and resumes")
        requeue_trial(ostudy, trial)
    else:
        message = ev.message + (f" (traceback in {ev.log})" if ev.log else "")
        trial.set_user_attr("error", message[:2000])
        ostudy.tell(trial, state=TrialState.FAIL)
        driver.echo(f"failed {key} (trial {trial.number}): {message}")


def set_aside_stale_finals(full: Study, place: Placement, echo: Callable[[str], None]) -> list[str]:
    """More trials found other best values: the final runs trained with the old ones are moved to
    `search/previous-best/<time>/` (their results kept) so that `search-best` trains again with the
    new values; a study refuses any other finished run whose definition changed. So are final runs
    the study file no longer plans (`cv.variants` took search-best in or out: `seed-0` became
    `seed-0/fold-0`, ..., which would have nested in the old run's folder). Returns the moved
    runs' keys."""
    from visionstudy.store.rundir import free_stamp, nesting, set_aside
    from visionstudy.study.manifest import held_line

    study_dir = place.study_dir(full)
    finals = {r.key: r.config_hash for r in full.runs if r.variant == FINAL_VARIANT}
    trained = trained_with(full, place, list(finals))
    stale = [k for k, h in trained.items() if h not in (None, finals[k])]
    nests = nesting(finals)
    gone = [k for k in final_folders(study_dir) if nests(k)]  # folded now, or no more: one inside the other
    if not stale and not gone:
        return []
    kept = study_dir / SEARCH_DIR / "previous-best"
    aside = kept / free_stamp([kept])
    moved, held = set_aside(study_dir, stale + gone, lambda k: aside / Path(k).relative_to(FINAL_VARIANT))
    if held:
        echo(held_line(held))
    if any(k in stale for k in moved):
        echo(f"the search's best values changed: {few([k for k in moved if k in stale], 3)}, trained with "
             f"the old ones, moved to {aside}; {FINAL_VARIANT} trains again with the new")
    if any(k in gone for k in moved):
        echo(f"{FINAL_VARIANT}'s runs are planned otherwise now (the study file's cv): "
             f"{few([k for k in moved if k in gone], 3)}, trained before, moved to {aside}")
    return moved


def final_folders(study_dir: Path) -> list[str]:
    """The keys of the final runs on disk (`search-best/seed-0`, `search-best/seed-0/fold-1`)."""
    from visionstudy.store.rundir import RunDir

    root = study_dir / FINAL_VARIANT
    found = [*root.glob("seed-*"), *root.glob("seed-*/fold-*")]
    return sorted(p.relative_to(study_dir).as_posix() for p in found if RunDir(p).is_run())


def final_runs(study: Study, params: dict[str, Any]) -> list[RunSpec]:
    """The best values retrained with `final.seeds` seeds (each on every fold where `cv.variants`
    names it), as variant 'search-best'."""
    s = study.config.search
    assert s is not None and s.final is not None
    override = trial_override(study, params)
    return [RunSpec(run_key(FINAL_VARIANT, k, fold), FINAL_VARIANT, k, fold[1] if fold else None,
                    build_run(study.base, override, study.overrides, study.name, FINAL_VARIANT,
                              study.config.repeat_seed(k), fold, study.source))
            for k, fold in final_slots(study)]
