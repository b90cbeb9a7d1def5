"""Studies: a study file expanded into runs (variants, sweeps, seeds, folds), worked off by
worker processes through the run database, plus Optuna searches and their final training."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from visionstudy.errors import StorageError, VisionStudyError
from visionstudy.stops import sigterm_as_interrupt
from visionstudy.study.execute import (
    Driver,
    Outcome,
    Placement,
    check_data,
    run_study,
    selected,
)
from visionstudy.study.schema import StudyConfig, list_recipes, recipe_path
from visionstudy.study.search import (
    final_runs,
    run_search,
    search_failure,
    set_aside_stale_finals,
    settled_best,
    trained_best,
)
from visionstudy.study.spec import FINAL_VARIANT, RunSpec, Study, load_study

__all__ = ["Driver", "Outcome", "Placement", "RunSpec", "Study", "StudyConfig", "check_data", "list_recipes",
           "load_study", "recipe_path", "run_all", "run_study", "selected", "with_final"]


def with_final(study: Study, params: dict[str, Any]) -> Study:
    """The study with the search's best values as the variant 'search-best' (in place of the one
    it had: the values found before more trials)."""
    runs = final_runs(study, params)
    variants = [v for v in study.variants if v[0] != FINAL_VARIANT] + [(FINAL_VARIANT, {})]
    return dataclasses.replace(study, variants=variants,
                               runs=[*(r for r in study.runs if r.variant != FINAL_VARIANT), *runs])


def run_all(study: Study, place: Placement, *, workers: int = 1, device: str = "auto",
            data_dir: Path | None = None, progress: bool = True,
            echo: Callable[[str], None] | None = None,
            only: list[str] | None = None, fork: bool = False,
            linger: bool = False) -> tuple[Study, Outcome]:
    """Variants first, then the search and the final training of its best values, all in one
    worker pool. SIGINT or SIGTERM stops every worker and queues the unfinished runs again.
    `only`: variant name patterns to train now (the search runs when one matches 'search').
    `fork`: start workers by forking this process (only safe where it ran no torch op yet).
    `linger`: a cluster's pull worker (see `Driver.lingers`)."""
    driver = Driver(workers, device, data_dir, progress, echo, fork, linger)
    try:
        with sigterm_as_interrupt():
            search = study.config.search
            if search is not None:  # its final runs stay planned (the manifest, status, the report):
                searching = selected("search", only)  # while it runs again, those trained with its best
                best = trained_best(study, place) if searching else settled_best(study, place)
                if best is not None:
                    study = with_final(study, best)
                    set_aside_stale_finals(study, place, driver.echo)
            outcome = driver.run_planned(study, place, only)
            if search is None or not selected("search", only):
                return study, outcome
            started = time.perf_counter()
            best = run_search(driver, study, place)
            if best is None or search.final is None:  # the search's time counts too
                searched = time.perf_counter() - started
                failure = search_failure(place.url(study), study.name)
                return study, dataclasses.replace(outcome, seconds=outcome.seconds + searched,
                                                  failed=outcome.failed + ([failure] if failure else []))
            full = with_final(study, best)
            set_aside_stale_finals(full, place, driver.echo)
            # with --only, the variants it left out stay queued: only the final runs train here
            final = driver.run_planned(full, place, None if only is None else [FINAL_VARIANT])
            return full, dataclasses.replace(final, trained=final.trained + outcome.trained,
                                             seconds=outcome.seconds + time.perf_counter() - started,
                                             finished=outcome.finished + final.finished)
    except Exception as exc:
        from visionstudy.store.db import connection_lost, redact

        why = connection_lost(exc)
        if why is None or isinstance(exc, VisionStudyError):
            raise
        raise StorageError(
            f"the study database {redact(place.url(study))} failed mid-study ({why}); this process "
            "stopped its runs, each keeping its last finished epoch: when the database is back, run "
            "the study again (`study run`, with its --launcher, or `study work`) and they resume") from None
    finally:
        driver.close()
