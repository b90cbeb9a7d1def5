"""The Python API: what the CLI does, as functions and objects for notebooks and scripts. The CLI
commands `train` and `study run` are thin layers over `train` and `Study` here: one path.

    import visionstudy as vs

    run = vs.train("examples/digits-quick.yaml", set={"train.epochs": 5}, out="runs/x")
    run.metrics["test_accuracy"], run.history.tail(), run.predict(["a.png"]), run.report()

    study = vs.Study.load("recipe:quick", set={"train.epochs": 3})
    study.run(workers=2)
    study.status(), study.results(), study.report()

Errors are the CLI's: `vs.ConfigError`, `vs.DataError`, ... (all `vs.VisionStudyError`), with the
same messages. In Jupyter a run and a study display as a compact summary (headline metrics, curves).
"""

from __future__ import annotations

import base64
import html
import io
import json
import os
import typing
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

from visionstudy.errors import ConfigError, ReportError, VisionStudyError

if TYPE_CHECKING:
    import pandas as pd
    from torch import nn

    from visionstudy.config import RunConfig
    from visionstudy.data.prepare import PreparedData
    from visionstudy.report import ReportOptions
    from visionstudy.study import Outcome
    from visionstudy.study import Study as Spec
    from visionstudy.study.launch import Jobs

Overrides = Mapping[str, Any] | Sequence[str] | None


def override_list(values: Overrides) -> list[str]:
    """{'train.epochs': 5, 'model.hidden': [64]} → ['train.epochs=5', 'model.hidden=[64]'] (the
    CLI's --set; values are written as JSON, which the YAML parser reads back exactly)."""
    from visionstudy.config import short_repr

    if values is None:
        return []
    if isinstance(values, str):
        return [values]
    if isinstance(values, Mapping):
        out = []
        for k, v in values.items():
            try:
                out.append(f"{k}={json.dumps(v, allow_nan=False)}")
            except (TypeError, ValueError):
                raise ConfigError(f"set {k}={short_repr(v)}: a {type(v).__name__} cannot be a config value; "
                                  "use numbers, text, booleans, lists and mappings") from None
        return out
    if isinstance(values, Sequence):
        return [str(v) for v in values]
    raise ConfigError(f"set={short_repr(values)}: expected a mapping such as {{'train.epochs': 5}} or a list "
                      "such as ['train.epochs=5']")


CONFIG_ARGUMENT = "the path of a YAML file or a mapping of its sections (name, data, model, train)"


STUDY_ARGUMENT = "a study file, 'recipe:NAME' or a mapping of a study file's contents"


def as_path(value: Any, what: str = "config", expected: str = CONFIG_ARGUMENT) -> Path:
    """A path argument as the API takes it (str or os.PathLike), else one clear error."""
    from visionstudy.config import short_repr

    if isinstance(value, str | os.PathLike):
        return Path(value)
    raise ConfigError(f"{what}={short_repr(value)}: expected {expected}")


def optional_path(value: Any, what: str) -> Path | None:
    """A folder or file argument (str or os.PathLike; None: the default), else one clear error
    naming the argument (it was Python's "expected str, bytes or os.PathLike object, not int")."""
    return None if value is None or value == "" else as_path(value, what, "a path (a str or a pathlib.Path)")


def run_config(config: str | Path | Mapping[str, Any], overrides: list[str]) -> RunConfig:
    """A validated RunConfig from a YAML file or a mapping, with overrides applied."""
    from visionstudy.validate import load_config, run_from

    if isinstance(config, Mapping):
        return run_from(dict(config), overrides, "config")
    return load_config(as_path(config), overrides)


# --------------------------------------------------------------------------------------------- runs


class Run:
    """A run folder: what `train` wrote, read back through the store."""

    def __init__(self, path: str | Path) -> None:
        from visionstudy.store.reader import holds_runs
        from visionstudy.store.rundir import RunDir

        self.path = as_path(path, "Run", "a run folder's path")
        self.dir = RunDir(self.path)
        if not self.dir.is_run():
            raise VisionStudyError(holds_runs(self.path, several=False) or (
                f"{self.path}: not a run folder (no checkpoints, no results, no config.yaml written by a "
                "run); train one with vs.train(...) or `visionstudy train`"))

    def __repr__(self) -> str:
        return f"Run({str(self.path)!r})"

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def finished(self) -> bool:
        return self.dir.is_finished()

    @property
    def config(self) -> dict[str, Any]:
        """The run's config (config.yaml without the `resolved` record the run added): what trains
        it again, `vs.train(run.config, out=...)`; a relative data.path is joined to the folder the
        run started in where this notebook runs in another."""
        from visionstudy.store.reader import asked_here, read_config

        return asked_here(read_config(self.path))

    @property
    def metrics(self) -> dict[str, Any]:
        """metrics.json as a dict (a run that has not finished has none: an error says so)."""
        if not self.finished:
            raise VisionStudyError(f"{self.path}: the run has not finished (no metrics.json); resume it "
                                   "with vs.train(config, out=..., resume=True)")
        from visionstudy.store.reader import read_metrics

        return read_metrics(self.path)

    @property
    def history(self) -> pd.DataFrame:
        """history.csv: one row per epoch (epoch, train/val loss and accuracy, lr, seconds), without
        the columns its task leaves empty (a regression's accuracy)."""
        import pandas as pd

        from visionstudy.store.reader import filled_columns, read_history

        columns = ["epoch", "train_loss", "train_accuracy", "val_loss", "val_accuracy", "lr", "seconds"]
        rows = read_history(self.dir.history) if self.dir.history.is_file() else []
        return pd.DataFrame(rows)[filled_columns(rows)] if rows else pd.DataFrame(columns=columns)

    def predict(self, images: Any, top_k: int = 5) -> list[dict[str, Any]]:
        """Top-k classes per image, as `visionstudy predict --json` prints them: an image file, a
        folder (each image file in it), a PIL image, an array (H, W) or (H, W, C) with C 1, 3 or 4,
        a batch (N, H, W, C) or (N, H, W), or a list of any of these; the run's own checkpoint,
        preprocessing and test-time augmentation, and the one image reader's rules. An image in
        memory is named by its position ('[0]'). An image that cannot be read raises one DataError
        naming every such image."""
        from visionstudy.errors import DataError
        from visionstudy.evaluate.predict import as_inputs, load_predictor, predict, unfinished

        predictor = load_predictor(self.path)
        note = unfinished(self.path, predictor)
        if note:  # as the CLI says it
            import warnings

            warnings.warn(note, stacklevel=2)
        done = predict(predictor, as_inputs(images), top_k)
        if done.failed:
            raise DataError("; ".join(done.failed))
        return [{"image": r.path, "top": [{"class": c, "probability": p} for c, p in r.top]}
                for r in done.results]

    def report(self, out: str | Path | None = None, **options: Any) -> Path:
        """Write the run's report (options: those of `ReportOptions`, e.g. tsne_points=500,
        images=False, formats=("html", "pdf")); returns the path of report.html."""
        from visionstudy.report import build_report, default_out

        return build_report([self.path], optional_path(out, "out") or default_out([self.path]),
                            report_options(options))

    def _repr_html_(self) -> str:
        from visionstudy.tasks.metrics import metric

        rows = []
        if self.finished:
            m = self.metrics
            shown = [("test_accuracy", "{:.2%}"), ("test_mse", "{:.4f}"), ("f1_macro", "{:.4f}"),
                     ("test_loss", "{:.4f}"), ("params", "{:,}"), ("epochs_run", "{}"),
                     ("train_seconds", "{:.1f}")]
            rows = [(metric(k).label, f.format(m[k])) for k, f in shown if m.get(k) is not None]
        else:
            rows = [("state", "not finished")]
        return summary_html(f"Run {self.name}", str(self.path), rows, curves_png(self.history))


def compare(runs: Sequence[Run | str | Path], out: str | Path | None = None, **options: Any) -> Path:
    """Several runs side by side, as `visionstudy report A B ...`: one row each, the settings that
    differ, overlaid curves and each run's sections (options: those of `ReportOptions`); returns
    the path of report.html (default folder: reports/<a>-vs-<b>)."""
    from visionstudy.config import short_repr
    from visionstudy.report import build_report, default_out

    if isinstance(runs, str | os.PathLike | Run) or not isinstance(runs, Sequence) or len(runs) < 2:
        raise ConfigError(f"runs={short_repr(runs)}: give a list of two or more runs (vs.Run objects or run "
                          "folders); one run's report is run.report()")
    paths = [r.path if isinstance(r, Run) else as_path(r, "runs", "vs.Run objects or run folders")
             for r in runs]
    opts = report_options(options, "compare")
    return build_report(paths, optional_path(out, "out") or default_out(paths), opts)


def train(config: str | Path | Mapping[str, Any], set: Overrides = None, out: str | Path | None = None, *,  # noqa: A002
          device: str = "auto", resume: bool = False, force: bool = False, quiet: bool = False,
          data_dir: str | Path | None = None, verify: bool = True, log: Sequence[str] | None = None,
          log_dir: str | Path | None = None) -> Run:
    """Train and evaluate one run, as `visionstudy train` does. `config`: a YAML file or a mapping;
    `set`: overrides ({'train.epochs': 5} or ['train.epochs=5']); `out`: the run folder (default
    runs/<name>); `log`: trackers ('tensorboard', 'mlflow', 'wandb'), logged into `log_dir` with the run's
    report (reports/<name>). Returns the finished `Run` (None in the other processes of a
    data-parallel run, `train.devices > 1`: their rank 0 writes the run and returns it)."""
    from visionstudy.config import check_device
    from visionstudy.track import log_run, trackers

    check_device(device, "device")
    out, data_dir, log_dir = (optional_path(v, k) for k, v in (("out", out), ("data_dir", data_dir),
                                                                ("log_dir", log_dir)))
    targets = trackers(log, log_dir)  # a bad --log fails before training
    cfg = run_config(config, override_list(set) + ([] if verify else ["data.verify=false"]))
    from visionstudy.store.rundir import run_place, study_around

    path = out or Path("runs") / cfg.name
    study_dir = study_around(path)
    if study_dir is not None:  # even with --force: the study's database and report would not know
        shown = os.path.relpath(study_dir)
        shown = str(study_dir) if shown.startswith("..") else shown
        raise ConfigError(f"--out {path}: inside the study folder {shown}, whose runs `visionstudy study "
                          "run` trains (its database and report follow them); choose an --out outside it")
    from visionstudy.experiment import run_experiment  # torch: once the config is known to be good
    done = run_experiment(cfg, path, device=device, resume=resume, force=force, quiet=quiet,
                          data_dir=data_dir)
    if not done:  # rank > 0: rank 0 may still be writing metrics.json
        return None  # type: ignore[return-value]
    run = Run(path)
    if targets:  # the report each tracker keeps a copy of: written aside, not into the user's reports/
        import tempfile

        with tempfile.TemporaryDirectory(prefix="visionstudy-report-") as aside:
            log_run(path, "/".join(run_place(path)), "runs", targets,
                    run.report(Path(aside) / "report", data_dir=data_dir))
    return run


def report_options(options: dict[str, Any], call: str = "report") -> ReportOptions:
    """`ReportOptions` from keyword arguments, each checked by type (pydantic, strictly: 'many' is
    no number of t-SNE points) and named in the error, as the CLI's options are."""
    import dataclasses

    from pydantic import ConfigDict, Field, ValidationError, create_model

    from visionstudy.config import SEED_MAX, format_validation_error
    from visionstudy.report import ReportOptions
    from visionstudy.report.render import report_formats

    known = [f.name for f in dataclasses.fields(ReportOptions)]
    unknown = [k for k in options if k not in known]
    if unknown:
        raise ConfigError(f"{call}({unknown[0]}=...): not a report option; choose from {', '.join(known)}")
    hints = typing.get_type_hints(ReportOptions)
    counts = {"tsne_points", "seed", "gradcam", "misclassified"}  # 0: none (no t-SNE, no grid)
    fields: dict[str, Any] = {k: (Annotated[hints[k], Field(ge=0, le=SEED_MAX if k == "seed" else None)]
                                  if k in counts else hints[k], ...) for k in known if k in options}
    checked = create_model("report", __config__=ConfigDict(strict=True), **fields)
    values: dict[str, Any] = {k: Path(v) if k == "data_dir" and isinstance(v, str) else v
                              for k, v in options.items()}
    formats = values.get("formats")
    if isinstance(formats, str | list):  # formats="pdf" or "html,pdf", as --format is given; a list
        values["formats"] = (formats,) if isinstance(formats, str) else tuple(formats)
    try:
        checked.model_validate(values)
    except ValidationError as exc:
        raise ConfigError("report options:\n" + format_validation_error(exc)) from None
    if "formats" in values:
        values["formats"] = report_formats(values["formats"], "formats")
    return ReportOptions(**values)


# ------------------------------------------------------------------------------------------ studies


class Study:
    """A study: its expanded plan, where its runs go, and what they gave."""

    def __init__(self, spec: Spec, runs_dir: str | Path = "runs", db: str | None = None) -> None:
        from visionstudy.config import short_repr
        from visionstudy.study import Placement
        from visionstudy.study import Study as Spec

        if not isinstance(spec, Spec):  # vs.Study("s.yaml") or vs.Study({...}) as a first try
            raise ConfigError(f"Study({short_repr(spec)}): load a study with vs.Study.load(...), which takes "
                              f"{STUDY_ARGUMENT}")
        self.spec, self.db = spec, db
        self.place = Placement(optional_path(runs_dir, "runs_dir") or Path("runs"), db)
        self.trackers: list[Any] = []  # set by run(log=...): the report is logged to them too

    @classmethod
    def load(cls, target: str | Path | Mapping[str, Any], set: Overrides = None, *,  # noqa: A002
             runs_dir: str | Path = "runs", db: str | None = None) -> Study:
        """A study file, `recipe:NAME` or a mapping (a study file's contents), with `set` overrides
        applied to every run, validated and expanded before anything trains."""
        from visionstudy.study import Placement
        from visionstudy.study.execute import load_planned, load_study_dir
        from visionstudy.study.schema import read_study

        overrides = override_list(set)
        if isinstance(target, Mapping):
            raw, source = dict(target), "study"
        elif (folder := Path(as_path(target, "target", STUDY_ARGUMENT))).is_dir():
            # a folder `study run` planned, as planned (its study.yaml holds the file and its --set):
            # what `study cancel` and a stopped job leave to go on with
            if overrides:
                raise ConfigError(f"{folder}: a planned study folder trains as it was planned; to change "
                                  "it, give its study file with --set")
            return cls(load_study_dir(folder, db), folder.parent, db)
        else:
            raw, source = read_study(str(folder))
        places = Placement(optional_path(runs_dir, "runs_dir") or Path("runs"), db)
        return cls(load_planned(raw, source, overrides, places), runs_dir, db)

    def __repr__(self) -> str:
        return f"Study({self.name!r}: {self.spec.describe()} in {self.dir})"

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def dir(self) -> Path:
        return self.place.study_dir(self.spec)

    def run(self, workers: int = 1, *, device: str = "auto", data_dir: str | Path | None = None,
            only: str | Sequence[str] | None = None, report: bool = True, quiet: bool = False,
            trials: int | None = None, echo: Any = print, log: Sequence[str] | None = None,
            log_dir: str | Path | None = None, _fork: bool = False) -> Outcome:
        """Train every run that is not finished (`only`: variant names or patterns, a list or
        comma-separated as `--only`), then write the report; returns the outcome (total, done,
        failed, trained, seconds). Workers start from a forkserver (safe in a notebook that has run
        torch); failed runs are in `outcome.failed`.
        `log`: trackers ('tensorboard', 'mlflow', 'wandb'): each run this call finished, then the report."""
        from visionstudy.config import check_count, check_device
        from visionstudy.store.rundir import RunDir
        from visionstudy.study import run_all
        from visionstudy.study.execute import chosen
        from visionstudy.track import log_run, trackers

        workers = check_count(workers, "workers")
        check_device(device, "device")
        self.trackers = trackers(log, optional_path(log_dir, "log_dir"))

        self.set_trials(trials)
        patterns = chosen(self.spec, only)
        path = optional_path(data_dir, "data_dir")
        full, outcome = run_all(self.spec, self.place, workers=workers, device=device, data_dir=path,
                                progress=not quiet, echo=echo, only=patterns, fork=_fork)
        self.spec = full
        for key, _ in outcome.finished:
            if self.trackers and RunDir(self.dir / key).is_finished():
                log_run(self.dir / key, key, self.name, self.trackers)
        if report and outcome.done:
            self.report(data_dir=path, progress=not quiet)
        return outcome

    def launch(self, launcher: str, jobs: Jobs | None = None, *, device: str = "auto",
               data_dir: str | Path | None = None, trials: int | None = None,
               report: bool = True) -> str | list[int]:
        """Plan the study, queue its runs and hand them to a cluster: `launcher` 'slurm' submits a job
        array and returns its job id at once (with `report`, also a job that writes the study
        report once the array has ended); 'ray' runs the workers as Ray tasks and returns their
        exit codes when all have ended. `jobs`: a `visionstudy.study.launch.Jobs` (count, gpus,
        cpus, workers, partition, time, slurm, address); no more jobs are started than there are
        runs to train (`to_train`), none when every run is finished (then '' or []). Each job runs
        `visionstudy study work`."""
        from visionstudy.config import check_device
        from visionstudy.store.db import open_store
        from visionstudy.study import launch as cluster
        from visionstudy.study.execute import check_study_folder, plan, write_definition

        jobs = jobs or cluster.Jobs()
        check_device(device, "device")
        check_study_folder(self.dir)  # before the database's refusal: the folder is the first mistake
        self.set_trials(trials)
        url = self.place.url(self.spec)
        launcher = cluster.check_launch(launcher, jobs, url)
        path = optional_path(data_dir, "data_dir")
        write_definition(self.spec, self.dir)  # what the workers read
        command = cluster.work_command(self.dir, jobs.workers, device, path)
        units = self.to_train()
        if not units:  # every run finished: no job would find work
            return [] if launcher == "ray" else ""
        jobs = cluster.fit_jobs(jobs, units)
        if launcher == "ray":
            self._preflight(path)
            plan(self.spec, self.place)
            return cluster.run_ray(self.dir, jobs, command, url)
        job_id = cluster.submit_slurm(self.name, self.dir, jobs, command, url)
        cluster.yield_to_local_jobs(jobs)
        try:  # while the jobs start (each plans too, one planner at a time: RunStore.planning)
            open_store(url, self.name)  # first: a database that cannot be opened stops pending jobs
            self._preflight(path)
            plan(self.spec, self.place)
        except VisionStudyError as exc:
            cluster.scancel(self.dir, [job_id])
            raise type(exc)(f"{exc}\n(job array {job_id} was cancelled)") from None
        if report:  # planned: the report job would otherwise report a study its failure cancelled
            cluster.submit_report(self.name, self.dir, jobs, job_id, path, url)
        return job_id

    def to_train(self) -> int:
        """What a launch hands to its jobs: the planned runs without results on disk, and a
        search's trials still to train and its final runs (every one while trials are left: the
        best values may change)."""
        from visionstudy.study.execute import results_on_disk
        from visionstudy.study.search import final_keys, finals_left, trial_epochs, trials_left

        keys = [r.key for r in self.spec.runs]
        search, extra = self.spec.config.search, 0
        if search is not None:
            left = trials_left(self.place.url(self.spec), self.dir, search, trial_epochs(self.spec))
            extra = left + (len(final_keys(self.spec)) if left else finals_left(self.spec, self.dir))
        return len(keys) - len(results_on_disk(self.dir, keys)) + extra

    def _preflight(self, data_dir: Path | None) -> None:
        """What a study checks before its runs train, beyond their configs: each model fits its
        data's images (`shapes_later` may have deferred it), and each dataset loads."""
        from visionstudy.study import check_data
        from visionstudy.study.execute import results_on_disk
        from visionstudy.validate import check_shapes

        on_disk = results_on_disk(self.dir, [r.key for r in self.spec.runs])
        waiting = [r for r in self.spec.runs if r.key not in on_disk]
        check_shapes((f"run {r.key}", r.config) for r in waiting)
        check_data(waiting, data_dir)

    def cancel(self) -> list[str]:
        """Cancel the study's SLURM jobs still queued or running, as `study cancel` does (their runs
        in progress go back to the queue; a later `launch` goes on); returns the job ids cancelled."""
        from visionstudy.study import launch as cluster

        return cluster.cancel_slurm(self.dir)[1]

    def set_trials(self, trials: int | None) -> None:
        if trials is None:
            return
        if self.spec.config.search is None:
            raise ConfigError(f"--trials {trials}: the study {self.name} has no search section")
        self.spec.config.search.trials = trials

    def status(self) -> pd.DataFrame:
        """One row per planned run: key, variant, status (done, running, waiting, failed, missing,
        new) and a failed run's error (or, for a running run whose worker is gone, that it is)."""
        import pandas as pd

        from visionstudy.study.manifest import has_manifest
        from visionstudy.study.status import study_status

        if not has_manifest(self.dir):  # never ran: nothing to look up, and nothing is created
            return pd.DataFrame([{"key": r.key, "variant": r.variant, "status": "new", "error": None}
                                 for r in self.spec.runs])
        view = study_status(str(self.dir), [], self.place.runs_dir, self.db)
        gone = ("no live worker (its process ended, or no heartbeat for the grace period): the next run "
                "queues it")
        return pd.DataFrame([{"key": r.key, "variant": r.variant, "status": view.status[r.key],
                              "error": gone if r.key in view.silent else view.errors.get(r.key)}
                             for r in view.runs])

    def results(self) -> pd.DataFrame:
        """One row per planned run: key, variant, seed, fold, finished, and its test metrics."""
        import pandas as pd

        from visionstudy.study.manifest import from_study, has_manifest, read_manifest
        from visionstudy.study.results import run_rows
        from visionstudy.tasks import get_task

        manifest = read_manifest(self.dir) if has_manifest(self.dir) else from_study(self.spec)
        rows = run_rows(self.dir, manifest)
        columns = get_task(manifest.task).result_columns  # a classification has no MSE column
        return pd.DataFrame(rows, columns=["key", "variant", "seed", "fold", "finished", *columns])

    def trials(self) -> pd.DataFrame:
        """The search's trials, one row each: trial, state (complete, pruned, running, fail,
        waiting), objective, epochs trained and each searched key's value as the study file writes
        it (a whole section as a dict); no rows before the search started. A study without a
        `search` section is a ConfigError."""
        import pandas as pd

        from visionstudy.study.search import TRIAL_COLUMNS, search_trials, trial_rows

        search = self.spec.config.search
        if search is None:
            raise ConfigError(f"study {self.name} has no search section: it has no trials (see results())")
        found = search_trials(self.place.url(self.spec), self.name)
        return pd.DataFrame(trial_rows(found[1], search) if found else [],
                            columns=[*TRIAL_COLUMNS, *search.space])

    def report(self, out: str | Path | None = None, **options: Any) -> Path:
        """Write the study report (options: those of `ReportOptions`); returns report.html's path."""
        from visionstudy.report.study_report import build_study_report
        from visionstudy.study.manifest import has_manifest
        from visionstudy.track import log_study_report

        if not has_manifest(self.dir):
            raise ReportError(f"study {self.name} has not run yet ({self.dir} holds no plan of it): nothing "
                              "to report; run it first (study.run())")
        target = optional_path(out, "out") or self.dir / "report"
        html = build_study_report(self.dir, target, report_options(options), self.db)
        if self.trackers:
            log_study_report(html, self.name, self.trackers)
        return html

    def _repr_html_(self) -> str:
        from visionstudy.study.manifest import from_study
        from visionstudy.study.results import headline, variant_results

        results = self.results()
        key, label, higher = headline(from_study(self.spec))
        rows = [("runs finished", f"{int(results['finished'].sum())}/{len(results)}")]
        records = results.to_dict("records")
        for r in variant_results(records, key, [n for n, _ in self.spec.variants]):
            rows.append((r.variant, r.text(percent=higher) if r.runs else "not run"))
        return summary_html(f"Study {self.name}",
                            f"{self.spec.describe()} — {label} per variant, in {self.dir}", rows)


# ------------------------------------------------------------------------------------ the stages


def load_dataset(name: str, data_dir: str | Path | None = None, **fields: Any) -> PreparedData:
    """A prepared dataset (train / val / test splits, class names, mean and std) as `train` sees it:
    `vs.load_dataset("digits")`, `vs.load_dataset("cifar10", data_dir="~/mirrors", val_fraction=0.1)`;
    `fields` are the run config's `data` keys."""
    from visionstudy.data import prepare
    from visionstudy.data.base import data_config

    folder = optional_path(data_dir, "data_dir")
    return prepare(data_config(name, **fields), folder.expanduser() if folder else None)


def create_model(name: str, in_channels: int = 3, num_classes: int = 10, input_size: int = 32,
                 **params: Any) -> nn.Module:
    """A registered model (an nn.Module): `vs.create_model("resnet20", num_classes=100)`; `params`
    are the run config's `model` keys."""
    from visionstudy.config import check_count
    from visionstudy.models import create_model as build

    return build(name, check_count(in_channels, "in_channels"), check_count(num_classes, "num_classes"),
                 check_count(input_size, "input_size"), **params)


def recipes() -> pd.DataFrame:
    """The built-in recipes: name, runs, what each reproduces."""
    import pandas as pd

    from visionstudy.study import list_recipes, load_study

    rows = []
    for name in list_recipes():
        spec = load_study(f"recipe:{name}")
        rows.append({"recipe": name, "runs": len(spec.runs), "variants": len(spec.variants),
                     "reproduces": spec.config.reproduces or spec.config.description})
    return pd.DataFrame(rows)


# ---------------------------------------------------------------------------------------- display


def curves_png(history: pd.DataFrame) -> str | None:
    """Loss and accuracy per epoch as a small embedded PNG, or None without history."""
    if history.empty:
        return None
    from visionstudy.report.figures import plt

    def has(column: str) -> bool:
        return column in history and bool(history[column].notna().any())

    keys = [k for k in ("loss", "accuracy") if has(f"train_{k}") or has(f"val_{k}")] or ["loss"]
    fig, axes = plt.subplots(1, len(keys), figsize=(3.5 * len(keys), 2.4), squeeze=False)
    for ax, key in zip(axes[0], keys, strict=True):  # no accuracy panel for a set (regression) run
        for split in ("train", "val"):
            if has(f"{split}_{key}"):
                ax.plot(history["epoch"], history[f"{split}_{key}"], "-o", ms=3, label=split)
        ax.set(xlabel="epoch", title=key)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=80)
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode()


def summary_html(title: str, subtitle: str, rows: list[tuple[str, str]], png: str | None = None) -> str:
    cells = "".join(f"<tr><td>{html.escape(k)}</td><td style='text-align:right'>{html.escape(v)}</td></tr>"
                    for k, v in rows)
    image = f"<img src='data:image/png;base64,{png}' alt='training curves'>" if png else ""
    return (f"<div class='visionstudy'><b>{html.escape(title)}</b> <small>{html.escape(subtitle)}</small>"
            "<div style='display:flex;gap:16px;align-items:flex-start'>"
            f"<table>{cells}</table>{image}</div></div>")
