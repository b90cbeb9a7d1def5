"""Studies: a study file expanded into runs (variants, sweeps, seeds, folds), worked off by
worker processes through the run database, plus Optuna searches and their final training."""

from __future__ import annotations

import dataclasses
import importlib
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from visionstudy.errors import StorageError, VisionStudyError

if TYPE_CHECKING:
    from visionstudy.study.execute import Driver, Outcome, Placement, check_data, run_study, selected
    from visionstudy.study.pool import Pool
    from visionstudy.study.schema import StudyConfig, list_recipes, recipe_path
    from visionstudy.study.spec import RunSpec, Study, load_study

__all__ = ["Driver", "Outcome", "Placement", "RunSpec", "Study", "StudyConfig", "check_data", "list_recipes",
           "load_study", "recipe_path", "run_all", "run_study", "selected", "with_final"]

# each name from its module on first use: `visionstudy.study.pool`, which a pull worker imports to
# fork its workers first, does not import the study machinery with this package (bench/startup.py)
HOMES = {"Driver": "execute", "Outcome": "execute", "Placement": "execute", "check_data": "execute",
         "run_study": "execute", "selected": "execute", "StudyConfig": "schema", "list_recipes": "schema",
         "recipe_path": "schema", "RunSpec": "spec", "Study": "spec", "load_study": "spec",
         "run_search": "search"}


def __getattr__(name: str) -> Any:
    if name not in HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{HOMES[name]}"), name)


def with_final(study: Study, params: dict[str, Any]) -> Study:
    """The study with the search's best values as the variant 'search-best' (in place of the one
    it had: the values found before more trials)."""
    from visionstudy.study.search import final_runs
    from visionstudy.study.spec import FINAL_VARIANT

    runs = final_runs(study, params)
    variants = [v for v in study.variants if v[0] != FINAL_VARIANT] + [(FINAL_VARIANT, {})]
    return dataclasses.replace(study, variants=variants,
                               runs=[*(r for r in study.runs if r.variant != FINAL_VARIANT), *runs])


def run_all(study: Study, place: Placement, *, workers: int = 1, device: str = "auto",
            data_dir: Path | None = None, progress: bool = True,
            echo: Callable[[str], None] | None = None,
            only: list[str] | None = None, fork: bool = False,
            linger: bool = False, pool: Pool | None = None) -> tuple[Study, Outcome]:
    """Variants first, then the search and the final training of its best values, all in one
    worker pool. SIGINT or SIGTERM stops every worker and queues the unfinished runs again.
    `only`: variant name patterns to train now (the search runs when one matches 'search').
    `fork`: start workers by forking this process (only safe where it ran no torch op yet).
    `linger`: a cluster's pull worker (see `Driver.lingers`). `pool`: its workers, started before
    (closed here)."""
    from visionstudy import study as this  # its names at call time: imported on first use
    from visionstudy.stops import sigterm_as_interrupt
    from visionstudy.study.execute import Driver, selected
    from visionstudy.study.search import search_failure, set_aside_stale_finals, settled_best, trained_best
    from visionstudy.study.spec import FINAL_VARIANT

    driver = Driver(workers, device, data_dir, progress, echo, fork, linger)
    driver.pool = pool
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
            best = this.run_search(driver, study, place)
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
