"""The `visionstudy` command: a thin layer mapping arguments onto config objects and stage calls.

    visionstudy datasets list
    visionstudy datasets info fashion_mnist --data-dir ~/mirrors/fashion-mnist
    visionstudy datasets preview digits --out grid.png --augment crop,flip
    visionstudy train examples/digits-quick.yaml --set train.epochs=5 --out runs/digits
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import re
import shlex
import socket
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Annotated, Any

import typer
from rich import table as rich_table
from rich.console import Console
from rich.text import Text

from visionstudy.errors import VisionStudyError

app = typer.Typer(
    add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
)  # its help: `cli_options`'s docstring


def show_version(asked: bool) -> None:
    if asked:
        import visionstudy

        print(f"visionstudy {visionstudy.__version__}")
        raise typer.Exit()


@app.callback()
def cli_options(version: Annotated[bool, typer.Option(
        "--version", callback=show_version, is_eager=True, help="print the version and exit")] = False,
) -> None:
    """Image-classification studies as files and one command."""


datasets_app = typer.Typer(no_args_is_help=True, help="List, inspect, fetch and preview datasets.")
app.add_typer(datasets_app, name="datasets")
study_app = typer.Typer(no_args_is_help=True, help="Run a study (variants, sweeps, seeds, folds, "
                        "search) and see where it stands.")
app.add_typer(study_app, name="study")
recipes_app = typer.Typer(no_args_is_help=True, help="Built-in studies that reproduce published reports.")
app.add_typer(recipes_app, name="recipes")
def unwrapped_console(stderr: bool = False) -> Console:
    """A console that never hard-wraps: in a terminal its width, in a log (SLURM, `> file`, where
    rich would assume 80 columns) wide enough that tables keep whole names. It prints text as
    written: no markup (a class folder `[red]` or a path with brackets), no emoji (`recipe:zzz:` is
    no 💤), no highlighting of numbers and paths; a style is asked for by `style=`."""
    plain = partial(Console, stderr=stderr, soft_wrap=True, emoji=False, markup=False, highlight=False)
    probe = plain()
    return probe if probe.is_terminal else plain(width=1000)


class Table(rich_table.Table):
    """rich's table whose cells fold onto more lines where a terminal is too narrow, instead of
    losing their ends to '…' (an 80-column terminal showed every run of a sweep as `opti…` and
    its parameter count as `356,…`)."""

    def add_column(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("overflow", "fold")
        super().add_column(*args, **kwargs)


console = unwrapped_console()
err_console = unwrapped_console(stderr=True)

DataDir = Annotated[
    Path | None,
    typer.Option("--data-dir", help="offline mirror: the dataset's folder or a root of folders"),
]
NoVerify = Annotated[
    bool, typer.Option("--no-verify", help="accept files whose checksum differs (re-packed copy)")
]
LogOpt = Annotated[list[str] | None, typer.Option(
    "--log", help="log finished runs to a tracker: tensorboard, mlflow or wandb (repeatable)")]
LogDir = Annotated[Path | None, typer.Option(
    "--log-dir", help="where trackers log (default runs/tensorboard, mlruns, runs/wandb)")]


def data_config(name: str, **fields: Any) -> Any:
    """The options given (None: not given) as the run config's `data` section."""
    from visionstudy.data.base import data_config as validated

    return validated(name, **{k: v for k, v in fields.items() if v is not None})


@contextlib.contextmanager
def as_options(**fields: str) -> Any:
    """The datasets commands' errors name their options (`--path`) before the config fields the
    options fill (`data.path: imagefolder needs the folder ...` named a field of no file given here)."""
    try:
        yield
    except VisionStudyError as exc:
        text = str(exc)
        for field, option in fields.items():
            named = re.match(rf"data\.{field}(\[\d+\])?(\.\w+)*[: ]", text)  # `data.path x.npz: ...` too
            if named:  # `--path (data.path): ...`: the option, and the field a config file gives it as
                raise type(exc)(f"{option} ({named.group(0)[:-1]}){text[named.end() - 1:]}") from None
        raise


# ------------------------------------------------------------------------------------- datasets


@datasets_app.command("list")
def datasets_list() -> None:
    """The registered datasets."""
    from visionstudy.data import DATASETS

    table = Table("name", "description")
    for name in DATASETS:
        table.add_row(name, DATASETS.get(name).description)
    console.print(table)


@datasets_app.command("info")
def datasets_info(
    name: str,
    data_dir: DataDir = None,
    split: Annotated[str | None, typer.Option(help="dataset variant, e.g. EMNIST 'letters'")] = None,
    path: Annotated[Path | None, typer.Option(help="imagefolder: the folder; sets: your .npz")] = None,
    no_verify: NoVerify = False,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """Split sizes, classes, image shape, mean/std and where the files are (sets: their sizes)."""
    from visionstudy.data import get_source, load_raw
    from visionstudy.data.prepare import channel_stats
    from visionstudy.tasks import task_of_dataset

    with as_options(path="--path", split="--split"):
        cfg = data_config(name, split=split, path=path, verify=not no_verify)
        get_source(name)
        if task_of_dataset(name).model_kind != "image":
            show_set_info(cfg, data_dir, as_json)
            return
        raw = load_raw(cfg, data_dir)
    mean, std = channel_stats(raw.train.images)
    c, h, w = raw.image_shape
    info: dict[str, Any] = {
        "dataset": raw.name, "train": len(raw.train), "test": len(raw.test),
        "val": len(raw.val) if raw.val is not None else None,
        "image_shape": [c, h, w], "classes": len(raw.class_names), "class_names": raw.class_names,
        "mean": [round(m, 4) for m in mean], "std": [round(s, 4) for s in std],
        "files": [str(p) for p in raw.files], "checksum": raw.checksum, "checksum_algorithm": "md5",
        "skipped": len(raw.skipped), "not_classes": raw.ignored,
    }
    if as_json:
        print(json.dumps(info))
        return
    table = Table(show_header=False)
    table.add_row("dataset", raw.name)
    table.add_row("train / test", f"{len(raw.train):,} / {len(raw.test):,}"
                  + (f" (val {len(raw.val):,})" if raw.val is not None else ""))
    table.add_row("image shape", f"{c} x {h} x {w} (channels x height x width)")
    table.add_row("classes", f"{len(raw.class_names)}: " + ", ".join(raw.class_names))
    table.add_row("mean / std", f"{info['mean']} / {info['std']}")
    table.add_row("files", "\n".join(info["files"]) or "(embedded in scikit-learn)")
    table.add_row("checksum (md5 of the decoded arrays)", raw.checksum)
    if raw.skipped:
        n = len(raw.skipped)
        table.add_row("skipped", f"{n} unreadable file{'s' * (n != 1)} (see the warnings)")
    if raw.ignored:
        table.add_row("not classes", "\n".join(raw.ignored) + "\n(folders without image files)")
    console.print(table)


def show_set_info(cfg: Any, data_dir: Path | None, as_json: bool) -> None:
    """`datasets info` of sets (generated, or a user's .npz): what a set run records of its data
    (`dataset_doc`), and whether there is one target per set or per element (which
    `model.invariant` must match)."""
    from visionstudy.data.sets import load_sets
    from visionstudy.tasks import task_of_dataset

    data = load_sets(cfg, data_dir)
    per_set = data.per_set
    info = {**task_of_dataset(cfg.dataset).dataset_doc(data),
            "targets": "one per set" if per_set else "one per element"}
    if as_json:
        print(json.dumps(info))
        return
    table = Table(show_header=False)
    table.add_row("dataset", info["name"])
    table.add_row("train / val / test", f"{info['train']:,} / {info['val']:,} / {info['test']:,} sets")
    table.add_row("set shape", f"{info['set_size']} elements x {info['dim']} features")
    table.add_row("targets", f"{info['targets']} (model.invariant: {str(per_set).lower()})")
    table.add_row("files", "\n".join(info["files"]) or "(generated from data.sets)")
    table.add_row("checksum (md5 of the sets)", info["checksum"])
    console.print(table)


@datasets_app.command("fetch")
def datasets_fetch(
    name: str,
    data_dir: DataDir = None,
    split: Annotated[str | None, typer.Option(help="dataset variant, e.g. EMNIST 'letters'")] = None,
    no_verify: NoVerify = False,
) -> None:
    """Download the official files (or find them in a mirror) and verify them."""
    from visionstudy.data import fetch, get_source

    with as_options(split="--split"):
        get_source(name)
        paths = fetch(data_config(name, split=split, verify=not no_verify), data_dir)
    for p in paths:
        console.print(f"ok {p}")
    if not paths:
        console.print(f"{name}: nothing to fetch (embedded or local)")


@datasets_app.command("preview")
def datasets_preview(
    name: str,
    out: Annotated[Path, typer.Option("--out", help="PNG file to write")] = Path("grid.png"),
    force: Annotated[bool, typer.Option(help="replace an existing --out that is not a preview")] = False,
    augment: Annotated[str, typer.Option(help="comma-separated augmentations")] = "",
    count: Annotated[int, typer.Option(help="number of images", min=1, max=256)] = 32,
    from_: Annotated[str, typer.Option("--from", help="train, val or test images (augmentations apply to "
                                       "train only)")] = "train",
    seed: Annotated[int, typer.Option(help="seed of the random choice (0 to 2^32 - 1)")] = 0,
    data_dir: DataDir = None,
    split: Annotated[str | None, typer.Option(help="dataset variant")] = None,
    path: Annotated[Path | None, typer.Option(help="imagefolder: the folder")] = None,
    no_verify: NoVerify = False,
) -> None:
    """Write a labelled grid of random images of a split (train: plain or augmented; val; test)."""
    from visionstudy.config import SEED_MAX, check_count
    from visionstudy.data import build_pipeline, prepare
    from visionstudy.data.preview import PREVIEW_TAG, SPLITS, is_preview, sample_grid
    from visionstudy.errors import ConfigError
    from visionstudy.report.figures import image_grid
    from visionstudy.store.rundir import claim_destination

    seed = check_count(seed, "--seed", least=0, most=SEED_MAX)
    if from_ not in SPLITS:
        raise ConfigError(f"--from {from_}: choose from {', '.join(SPLITS)}")
    if augment and from_ != "train":
        raise ConfigError(f"--augment applies to training images; drop it or use --from train (not {from_})")
    if out.suffix.lower() != ".png":
        raise ConfigError(f"--out {out}: the grid is a PNG image; give a file ending in .png "
                          f"(--out {out.with_suffix('.png')})")
    claim_destination(out, "--out", "previews", own=is_preview, force=force)
    with as_options(path="--path", split="--split", augment="--augment"):
        cfg = data_config(name, split=split, path=path, verify=not no_verify, augment=augment or None)
        data = prepare(cfg, data_dir)
        pipeline = build_pipeline(cfg.augment)
    images, titles = sample_grid(data, pipeline, count, seed, from_)
    title = f"{data.name}" + (f" — augmented: {augment}" if augment else "") + \
        (f" — {from_} images" if from_ != "train" else "")
    image_grid(images, titles, title).savefig(out, dpi=110, bbox_inches="tight",
                                              metadata={"Software": PREVIEW_TAG})
    shown = len(images)
    console.print(f"wrote {out}" + (f": {shown} images, all the {from_} split has (--count {count})"
                                    if shown < count else ""))


# ---------------------------------------------------------------------------------------- train


@app.command()
def train(
    config: Annotated[Path, typer.Argument(help="run config (YAML)")],
    set_: Annotated[list[str] | None, typer.Option(
        "--set", metavar="KEY=VALUE", help="override a field: --set train.epochs=5 (repeatable)")] = None,
    out: Annotated[Path | None, typer.Option(help="run directory (default runs/<name>)")] = None,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda")] = "auto",
    resume: Annotated[bool, typer.Option(help="continue an interrupted run from last.pt")] = False,
    force: Annotated[bool, typer.Option(help="overwrite an existing run directory")] = False,
    quiet: Annotated[bool, typer.Option(
        help="no progress bar and no warnings: the result line and errors")] = False,
    data_dir: DataDir = None,
    no_verify: NoVerify = False,
    log: LogOpt = None,
    log_dir: LogDir = None,
) -> None:
    """Train and evaluate one model; writes the run directory."""
    from visionstudy.api import train as train_run
    from visionstudy.config import check_device
    from visionstudy.stops import end_with_parent, sigterm_as_interrupt

    end_with_parent()  # a study worker's data-parallel run: not a moment longer than its worker
    check_device(device)  # by its flag (the API names it device=)
    try:
        with sigterm_as_interrupt():  # a scheduler's stop (SIGTERM) ended the process without a word
            run = train_run(config, list(set_ or []), out, device=device, resume=resume, force=force,
                            quiet=quiet, data_dir=data_dir, verify=not no_verify, log=log, log_dir=log_dir)
    except KeyboardInterrupt as stop:  # Ctrl-C, SIGTERM/SIGUSR2 (Stopped): typer would exit without a word
        how = f"stopped by {stop}" if str(stop) else "interrupted"
        err_console.print(f"{how}: `visionstudy train {shlex.quote(str(config))} --resume` (with the same "
                          "--out and --set) goes on from the last finished epoch (checkpoints/last.pt)")
        raise typer.Exit(130) from None
    if run is None:  # another process of a data-parallel run: rank 0 reports
        return
    metrics, out = run.metrics, run.path
    if metrics:
        from visionstudy.tasks import task_of_metrics

        line = task_of_metrics(metrics).result_line(metrics)
        console.print(f"{line}  → {out}")


# ---------------------------------------------------------------------------------------- study

RunsDir = Annotated[Path, typer.Option("--runs-dir", help="folder of studies (runs/<study>/...)")]
Db = Annotated[str | None, typer.Option(
    "--db", help="database URL (default: sqlite file in the study's folder; "
    "postgresql://user:pass@host/db to share one study between machines)")]
SetOpt = Annotated[list[str] | None, typer.Option(
    "--set", metavar="KEY=VALUE",
    help="override a field of every run (--set train.epochs=2) or of the study (--set seeds=1); repeatable")]


@study_app.command("run")
def study_run(
    study: Annotated[str, typer.Argument(help="study file (YAML), recipe:NAME, or a planned study folder")],
    set_: SetOpt = None,
    workers: Annotated[int, typer.Option(help="runs at once on this machine", min=1)] = 1,
    db: Db = None,
    runs_dir: RunsDir = Path("runs"),
    device: Annotated[str, typer.Option(help="auto, cpu or cuda")] = "auto",
    data_dir: DataDir = None,
    report: Annotated[bool, typer.Option(help="write the study report when done (a SLURM launch without "
                                         "--wait: by a job that follows the array)")] = True,
    quiet: Annotated[bool, typer.Option(
        help="no progress display and no warnings: each run's done line, the summary, the report's path "
        "and errors")] = False,
    trials: Annotated[int | None, typer.Option(help="override search.trials (e.g. a short try)",
                                               min=1)] = None,
    only: Annotated[str | None, typer.Option(
        help="train only these variants now: comma-separated names or patterns (resnet*, search); a "
             "grid variant's name keeps its commas")] = None,
    no_verify: NoVerify = False,
    log: LogOpt = None,
    log_dir: LogDir = None,
    launcher: Annotated[str, typer.Option(
        help="where the runs train: local (this machine), slurm (a job array) or ray")] = "local",
    jobs: Annotated[int, typer.Option(help="slurm/ray: cluster jobs, each a pull worker", min=1)] = 1,
    workers_per_job: Annotated[int, typer.Option(
        help="slurm/ray: runs at once in each job (round robin over its GPUs)", min=1)] = 1,
    gpus_per_job: Annotated[int, typer.Option(help="slurm/ray: GPUs of each job", min=0)] = 0,
    cpus_per_job: Annotated[int | None, typer.Option(
        help="slurm/ray: CPU cores of each job (default: one per worker)", min=1)] = None,
    partition: Annotated[str | None, typer.Option(help="slurm: the partition")] = None,
    time_limit: Annotated[str | None, typer.Option(
        "--time", help="slurm: each job's time limit, HH:MM:SS (it requeues itself at the limit)")] = None,
    slurm: Annotated[list[str] | None, typer.Option(
        help="slurm: another sbatch option, KEY=VALUE or KEY (repeatable): --slurm account=proj42")] = None,
    address: Annotated[str | None, typer.Option(
        help="ray: the cluster, auto or HOST:PORT (default: a local Ray on this machine)")] = None,
    wait: Annotated[bool, typer.Option(
        help="slurm: wait for the jobs to end, then write the report")] = False,
    dry_run: Annotated[bool, typer.Option(
        help="check the study and show what would train, and a launch's job script; trains, queues "
             "and writes nothing")] = False,
) -> None:
    """Train every run of a study that is not finished yet, then write its report."""
    from visionstudy.api import Study
    from visionstudy.config import check_device
    from visionstudy.validate import shapes_later

    launcher = launcher.lower()  # SLURM as slurm
    check_launcher_options(launcher, {
        "--workers": workers != 1, "--only": only is not None, "--log": bool(log),
        "--log-dir": log_dir is not None, "--jobs": jobs != 1, "--workers-per-job": workers_per_job != 1,
        "--gpus-per-job": gpus_per_job != 0, "--cpus-per-job": cpus_per_job is not None,
        "--partition": partition is not None, "--time": time_limit is not None, "--slurm": bool(slurm),
        "--address": address is not None, "--wait": wait})
    later = launcher != "local" and not dry_run  # a launch checks the shapes as its jobs start
    with shapes_later() if later else contextlib.nullcontext():
        the_study = Study.load(study, list(set_ or []) + (["data.verify=false"] if no_verify else []),
                               runs_dir=runs_dir, db=db)
    the_study.set_trials(trials)  # before anything is said about the study: "a 4-trial search"
    spec = the_study.spec
    from visionstudy.study.execute import chosen, selected
    from visionstudy.study.launch import Jobs

    cluster_jobs = Jobs(jobs, gpus_per_job, cpus_per_job, workers_per_job, partition, time_limit,
                        list(slurm or []), address)
    patterns = chosen(spec, only)  # before anything is said: --only that matches nothing is an error
    check_device(device)  # by its flag (the API names it device=)
    if dry_run:
        show_dry_run(the_study, launcher, cluster_jobs, workers, device, data_dir, patterns,
                     report_job=report and not wait)
        return
    if launcher != "local":
        launch(the_study, launcher, cluster_jobs, device, data_dir, trials, wait, report, quiet)
        return
    console.print(f"study {spec.name}: {spec.describe()} in {the_study.dir}")
    echo = console.print
    searched = bool(search_to_run(the_study, the_study.place.url(spec), patterns))  # before this run
    try:
        outcome = the_study.run(workers, device=device, data_dir=data_dir, only=patterns, report=False,
                                quiet=quiet, trials=trials, echo=echo, log=log, log_dir=log_dir,
                                _fork=True)  # no torch op ran here yet
    except KeyboardInterrupt as stop:  # Ctrl-C, SIGTERM/SIGUSR2 (Stopped): typer would exit silently
        how = f"stopped by {stop}" if str(stop) else "interrupted"
        err_console.print(f"{how}: the runs in progress went back to the queue, each keeping its last "
                          f"finished epoch; `visionstudy study run {shlex.quote(str(study))}` (with the same "
                          "options) goes on from there")
        raise typer.Exit(130) from None
    if outcome.trained == 0 and not outcome.failed and not outcome.elsewhere and not searched:
        search = spec.config.search if selected("search", patterns) else None
        what = f"all {outcome.total} runs" if outcome.total != 1 else "its 1 run"
        what += f" and its {search.trials}-trial search" if search else ""
        verb = "are" if outcome.total != 1 or search else "is"
        console.print(f"nothing to do: {what} {verb} finished")
    else:
        console.print(f"{outcome.done}/{outcome.total} runs finished ({outcome.seconds:.0f} s)")
    if outcome.elsewhere:
        console.print(f"{outcome.elsewhere} runs are being trained by another process; "
                      "`visionstudy study status` follows them")
    if outcome.done:
        print_results(the_study.dir)
    if report and outcome.done:
        html = the_study.report(data_dir=data_dir, progress=not quiet)
        console.print(f"report: {html}")
    if outcome.failed:
        err_console.print(failed_summary(outcome))
        raise typer.Exit(1)


LOCAL_OPTIONS = {  # study run's options for training here, and what a cluster launch offers instead
    "--workers": "each cluster job trains --workers-per-job runs at once",
    "--only": "a cluster launch queues every unfinished run; train a subset here, without --launcher",
    "--log": "a cluster's jobs log to no tracker; log here: `visionstudy study run` with --log",
    "--log-dir": "a cluster's jobs log to no tracker",
}
SIZING = ("--jobs", "--workers-per-job")  # how many runs train at once: --workers N does that here
CLUSTER_OPTIONS = (*SIZING, "--gpus-per-job", "--cpus-per-job", "--partition", "--time", "--slurm",
                   "--address", "--wait")  # each engine's own: launch.check_jobs


def check_launcher_options(launcher: str, given: dict[str, bool]) -> None:
    """An option that does nothing where the runs train is refused, not ignored (`--jobs 8` without
    a launcher would train one run at a time here)."""
    from visionstudy.errors import ConfigError

    used = [option for option, on in given.items() if on]
    if launcher == "local":
        for option in used:
            if option in CLUSTER_OPTIONS:
                here = ", or train N runs at once here with --workers N" if option in SIZING else ""
                raise ConfigError(f"{option}: a cluster launch's option, and this study run trains here; add "
                                  f"--launcher slurm or ray{here}")
        return
    for option in used:
        if option in LOCAL_OPTIONS:
            raise ConfigError(f"{option}: not with --launcher {launcher}; {LOCAL_OPTIONS[option]}")
    if launcher == "ray" and "--wait" in used:
        raise ConfigError("--wait: a SLURM option, and this is --launcher ray, which always waits for its "
                          "tasks; leave it out")


def runs_to_plan(the_study: Any) -> Any:
    """The runs `study run` would plan, with their states: the study file's (also where it changed
    since its folder was planned: a run it adds or redefines is new; a finished one redefined is
    refused, as the run refuses it) and the search's final runs already planned."""
    import pandas as pd

    from visionstudy.study.execute import refuse_redefined
    from visionstudy.study.search import final_keys
    from visionstudy.study.spec import FINAL_VARIANT

    spec = the_study.spec
    redefined = {r.key for r in refuse_redefined(spec, the_study.dir)}
    status = the_study.status()
    known = dict(zip(status["key"], status["status"], strict=True))
    rows = [{"key": r.key, "variant": r.variant,
             "status": "new" if r.key in redefined else known.get(r.key, "new")} for r in spec.runs]
    finals = status.loc[status["variant"] == FINAL_VARIANT, ["key", "variant", "status"]]
    finals = finals[finals["key"].isin(final_keys(spec))]  # not those a change of the file's cv replaced
    return pd.concat([pd.DataFrame(rows, columns=["key", "variant", "status"]), finals], ignore_index=True)


def show_dry_run(the_study: Any, launcher: str, jobs: Any, workers: int, device: str, data_dir: Path | None,
                 only: list[str] | None, report_job: bool = False) -> None:
    """`study run --dry-run`: the study checked whole (every run's config and shape), the runs it
    would train per variant, and for a launch the jobs and the job script it would submit."""
    from visionstudy.store.db import TO_TRAIN, redact
    from visionstudy.study import launch as cluster
    from visionstudy.study.execute import check_study_folder, selected
    from visionstudy.study.manifest import replan_lines, set_aside_matches

    spec = the_study.spec
    url = the_study.place.url(spec)
    check_study_folder(the_study.dir)  # a training run's folder, or one of the user's files
    if launcher != "local":  # what the launch would refuse, first
        cluster.check_launch(launcher, jobs, url)
    then = search_to_run(the_study, url, only)  # a search space its trials cannot go on with: refused first
    console.print(f"study {spec.name}: {spec.describe()} in {the_study.dir}")
    status = runs_to_plan(the_study)
    chosen = status["variant"].map(lambda v: selected(v, only))
    back = set_aside_matches(spec, the_study.dir)  # moved back by the run, not trained
    status["train"] = status["status"].isin(TO_TRAIN) & chosen & ~status["key"].isin(list(back))
    table = Table("variant")
    for column in ("runs", "done", "running", "to train"):
        table.add_column(column, justify="right")
    for variant, rows in status.groupby("variant", sort=False):
        table.add_row(str(variant), str(len(rows)), str(int((rows["status"] == "done").sum())),
                      str(int((rows["status"] == "running").sum())), str(int(rows["train"].sum())))
    console.print(table)
    for line in replan_lines(spec, the_study.dir, back):  # fewer seeds, a variant taken out, cv changed
        console.print(f"dry run: {line}")
    count = int(status["train"].sum())
    to_train = set(status.loc[status["train"], "key"])
    ahead = [r.config for r in spec.runs if r.key in to_train or then]
    for line in data_not_on_disk([c.data for c in ahead], data_dir) + weights_not_on_disk(ahead):
        err_console.print(f"dry run: {line}")
    nothing = "nothing was trained, queued or written"
    if launcher == "local" and not count and not then:
        console.print(f"dry run: nothing to train: every run{' --only names' if only else ''} is finished; "
                      f"{nothing}")
        return
    if launcher == "local":
        what = f"{count} run{'s' * (count != 1)}{then}" if count else then.removeprefix(", then ")
        console.print(f"dry run: `study run` would train {what} here, {workers} at once; {nothing}")
        return
    units = the_study.to_train()
    if not units:
        console.print(f"dry run: every run of {spec.name} is finished: no job would start; {nothing}")
        return
    fitted = cluster.fit_jobs(jobs, units)
    command = cluster.work_command(the_study.dir, fitted.workers, device, data_dir)
    if launcher == "slurm":
        script = cluster.sbatch_script(spec.name, the_study.dir, fitted, command, redact(url))
        estimate = cluster.check_startable(script, fitted)  # a job no node can take: refused first
        console.print(f"dry run: would submit a job array of {fitted.count} job{'s' * (fitted.count != 1)} "
                      f"for {units} run{'s' * (units != 1)}{then}, {fitted.workers} at once in each, with "
                      f"this script (sbatch; the database password as ***); {nothing}:")
        console.print(script, end="")
        if estimate:
            console.print(f"dry run: sbatch --test-only: {estimate}")
        if report_job:  # as Study.launch submits it, the array's id for ARRAY
            command = cluster.report_command(the_study.dir, data_dir)
            console.print("dry run: and then the report's job, once the array has ended (--no-report leaves "
                          "it out):")
            console.print(cluster.report_script(spec.name, the_study.dir, fitted, ["ARRAY"], command,
                                                redact(url)), end="")
    else:
        nodes = None if fitted.address else cluster.local_ray_nodes()
        if nodes:  # a job no node can take: refused first (a cluster's nodes are Ray's to say when it starts)
            cluster.check_fits(nodes, fitted)
        console.print(f"dry run: would start {fitted.count} Ray task{'s' * (fitted.count != 1)} for {units} "
                      f"run{'s' * (units != 1)}{then} (at {fitted.address or 'a local Ray'}), each running "
                      f"`{shlex.join(command)}`; {nothing}")


def data_not_on_disk(configs: list[Any], data_dir: Path | None) -> list[str]:
    """What the runs would do for their datasets' files not on disk (download them, or stop), once
    per dataset: a dry run says it before a run, or a cluster's job without internet, meets it."""
    from visionstudy.data.base import as_loaded, not_on_disk

    return said_once({as_loaded(c).model_dump_json(): c for c in configs},  # a folder listed once
                     lambda cfg: not_on_disk(cfg, data_dir))


def weights_not_on_disk(configs: list[Any]) -> list[str]:
    """The same for pretrained weights (download them, or stop), once per weights."""
    from visionstudy.models import validate_params

    def missing(model: Any) -> str | None:
        from visionstudy.models.pretrained import weights_not_on_disk as looked  # torch: only here

        return looked(validate_params(model.name, model.params()))  # type: ignore[arg-type]

    return said_once({c.model.model_dump_json(): c.model for c in configs if c.model.name == "torchvision"},
                     missing)


def said_once(items: dict[str, Any], say: Callable[[Any], str | None]) -> list[str]:
    """Each distinct line `say` gives for the values of `items` (its user error's message where it
    raises one), in order, once."""
    lines: dict[str, None] = {}
    for item in items.values():
        try:
            line = say(item)
        except VisionStudyError as exc:
            line = str(exc)
        if line:
            lines[line] = None
    return list(lines)


def search_to_run(the_study: Any, url: str, only: list[str] | None) -> str:
    """The dry run's words for the search a run would go on with: ', then its 3-trial search and 1
    final run', ', then 2 more trials of its 5-trial search', or '' when it is done."""
    from visionstudy.study.execute import selected
    from visionstudy.study.search import finals_left, trial_epochs, trials_left

    search = the_study.spec.config.search
    if search is None or not selected("search", only):
        return ""
    left = trials_left(url, the_study.dir, search, trial_epochs(the_study.spec))
    finals = finals_left(the_study.spec, the_study.dir)
    runs = f"{finals} final run{'s' * (finals != 1)}"
    if left == 0:
        return f", then its search's {runs}" if finals else ""
    then = (f", then its {search.trials}-trial search" if left == search.trials else
            f", then {left} more trial{'s' * (left != 1)} of its {search.trials}-trial search")
    if finals:
        return f"{then} and {runs}"
    return then + (" and its final runs again if the best values change" if search.final else "")


def failed_runs(outcome: Any) -> tuple[list[str], list[str]]:
    """The failed runs' keys, and the search's failure (a list of none or one), told apart."""
    from visionstudy.study.spec import SEARCH_DIR

    return ([key for key, _ in outcome.failed if key != SEARCH_DIR],
            [error for key, error in outcome.failed if key == SEARCH_DIR])


def failed_summary(outcome: Any) -> str:
    """The closing line of a study with failed runs: their names (each error was printed once, live)."""
    keys, search = failed_runs(outcome)
    shown = ", ".join(keys[:8]) + (f" and {len(keys) - 8} more" if len(keys) > 8 else "")
    parts = [f"{len(keys)} of {outcome.total} runs failed ({shown}; each error is above); fix the cause "
             "and run `visionstudy study run` again: it trains only what is not finished"] if keys else []
    parts += [f"the search failed: {error}; each failed trial counts towards search.trials: fix the cause, "
              "then ask for more trials (`--trials N`)" for error in search]
    return "\n".join(parts)


def launch(the_study: Any, launcher: str, jobs: Any, device: str, data_dir: Path | None,
           trials: int | None, wait: bool, report: bool, quiet: bool) -> None:
    """`study run --launcher slurm|ray`: plan here, train in the cluster's jobs."""
    from visionstudy.study.launch import fit_jobs, job_errors, log_sizes
    from visionstudy.study.status import study_status as status_of

    spec = the_study.spec
    console.print(f"study {spec.name}: {spec.describe()} in {the_study.dir}")
    the_study.set_trials(trials)
    units = the_study.to_train()  # before the jobs start to finish them
    asked, jobs = jobs.count, fit_jobs(jobs, units)  # what the launch starts (it fits them too, for the API)
    logs = log_sizes(the_study.dir)  # what this launch's jobs log comes after
    where = shlex.quote(str(the_study.dir))  # in commands to copy: a folder with a space stays one word
    from visionstudy.stops import sigterm_as_interrupt

    ray = launcher == "ray"  # Ray's tasks are this process's: a stop ends them, said below
    try:
        with sigterm_as_interrupt() if ray else contextlib.nullcontext():
            result = the_study.launch(launcher, jobs, device=device, data_dir=data_dir, trials=trials,
                                      report=report and not wait)  # with --wait, written here
    except KeyboardInterrupt as stop:
        if not ray:
            raise
        how = f"stopped by {stop}" if str(stop) else "interrupted"
        err_console.print(f"{how}: the Ray jobs ended, and the runs they trained go back to the queue, each "
                          f"keeping its last finished epoch; `visionstudy study run {where} --launcher ray` "
                          "(with the same job options) goes on from there")
        raise typer.Exit(130) from None
    if not units:
        console.print(f"every run of {spec.name} is finished: no job started")
        if launcher == "ray" or wait:
            finish_launched(the_study, report, quiet, 0, {r.key: "done" for r in spec.runs}, {})
        else:
            console.print(f"its report: visionstudy report {where}")
        return
    if jobs.count < asked:
        console.print(f"{asked} jobs asked for {units} run(s) to train, {jobs.workers} at once in "
                      f"each: starting {jobs.count}")
    if launcher == "slurm":
        from visionstudy.study.execute import results_on_disk
        from visionstudy.study.launch import recorded_jobs, wait_slurm

        keys = [r.key for r in spec.runs]

        def all_on_disk() -> bool:  # a search asks for trials beyond the plan: then the jobs' end tells
            return spec.config.search is None and len(results_on_disk(the_study.dir, keys)) == len(keys)

        try:  # with --wait, a SIGTERM (`timeout`, a job's end) ended it without a word: from this line on
            with sigterm_as_interrupt() if wait else contextlib.nullcontext():
                console.print(f"submitted job array {result} ({jobs.count} job{'s' * (jobs.count != 1)}); "
                              f"logs in {the_study.dir}/slurm/logs/\n"
                              f"follow: visionstudy study status {where}    cancel: visionstudy study cancel "
                              f"{where}")
                ids = recorded_jobs(the_study.dir)
                if not wait and ids[-1] != result:  # its report's job, submitted after it
                    console.print(f"the report: job {ids[-1]}, once the array has ended "
                                  f"({the_study.dir}/report/report.html)")
                if not wait:
                    return
                wait_slurm(the_study.dir, all_on_disk)
        except KeyboardInterrupt as stop:  # the jobs are the cluster's now: they go on
            by = f" (by {stop})" if str(stop) else ""
            err_console.print(f"stopped waiting{by}; job array {result} goes on: follow with "
                              f"`visionstudy study status {where}`, stop it with `visionstudy study cancel "
                              f"{where}`, and write the report with `visionstudy report {where}`")
            raise typer.Exit(130) from None
        failed_jobs = 0
        if all_on_disk():  # nothing to look up in the database
            finish_launched(the_study, report, quiet, 0, {k: "done" for k in keys}, {})
            return
    else:
        failed_jobs = sum(code != 0 for code in result)
        jobs_ended = f"{len(result)} Ray job{'s' * (len(result) != 1)} ended"
        console.print(f"{jobs_ended} ({failed_jobs} with an error); logs in {the_study.dir}/ray/")
    view = status_of(str(the_study.dir), [], the_study.place.runs_dir, the_study.db)
    finish_launched(the_study, report, quiet, failed_jobs, view.status, view.errors,
                    job_errors(the_study.dir, logs))


def finish_launched(the_study: Any, report: bool, quiet: bool, failed_jobs: int,
                    status: dict[str, str], errors: dict[str, str], said: list[str] | None = None) -> None:
    """After the cluster's jobs ended: the results, the report, and exit 1 (with the failed runs'
    errors) if a run is not done; a job that ended with an error is a warning where every run is."""
    from visionstudy.study.status import failure_lines

    done = sum(v == "done" for v in status.values())
    console.print(f"{done}/{len(status)} runs finished")
    if done:
        print_results(the_study.dir)
        if report:
            console.print(f"report: {the_study.report(progress=not quiet)}")
    if done == len(status) and failed_jobs:  # others finished the runs of a job that failed: complete
        err_console.print(f"warning: every run finished, but {failed_jobs} job{'s' * (failed_jobs != 1)} "
                          "ended with an error" + ("; the jobs' logs end with:" if said else ""))
        for line in said or []:
            err_console.print(f"  {line}", markup=False)
    elif done < len(status):
        left = {s: list(status.values()).count(s) for s in ("failed", "running", "waiting", "missing")}
        short = len(status) - done
        err_console.print(f"{short} run{'s are' if short != 1 else ' is'} not finished "
                          f"({', '.join(f'{v} {k}' for k, v in left.items() if v)}); see the jobs' logs "
                          f"and `visionstudy study status {shlex.quote(str(the_study.dir))}`")
        for line in failure_lines(errors):
            err_console.print(f"  {line}")
        if said:  # a job that stopped before it trained: what its log ended with
            err_console.print("the jobs' logs end with:")
            for line in said:
                err_console.print(f"  {line}", markup=False)
        raise typer.Exit(1)


@study_app.command("work")
def study_work(
    study: Annotated[Path, typer.Argument(help="the study's folder (planned by `study run`)")],
    db: Annotated[str | None, typer.Option(
        "--db", envvar="VISIONSTUDY_DB", show_envvar=False,
        help="database URL (default: the one the study was launched with, else its SQLite file)")] = None,
    workers: Annotated[int, typer.Option(help="runs at once in this worker", min=1)] = 1,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda")] = "auto",
    data_dir: DataDir = None,
) -> None:
    """A pull worker: claim the study's runs and search trials from its database and train them.

    Each run trains in its own folder; the worker exits 0 when none are left. Cluster jobs run
    this; so can you, on any machine."""
    from visionstudy.config import check_device
    from visionstudy.stops import end_with_parent
    from visionstudy.study.pool import Pool

    end_with_parent()  # a Ray task's worker: not a moment longer than the task's process
    started = time.time()  # a SLURM job's start: did its runs finish an epoch before its time limit
    # its workers fork first, before this process imports the study's machinery: each imports torch
    # while this one reads the plan and opens the database (bench/startup.py)
    pool = Pool(workers, check_device(device), data_dir, fork=True)
    try:
        from visionstudy.stops import Stopped
        from visionstudy.study import Placement, run_all
        from visionstudy.study.execute import load_study_dir
        from visionstudy.study.launch import await_requeue, requeue_this_job
        from visionstudy.validate import shapes_later

        folder = study.resolve()
        spec = load_study_dir(folder, db)
        place = Placement(folder.parent, db)
        stamp = lambda line: console.print(f"{time.strftime('%F %T')} {line}")  # noqa: E731
        stamp(f"worker on {socket.gethostname()} for {spec.name}: {spec.describe()}")
    except BaseException:  # run_all closes it from here on
        pool.stop()
        raise
    try:
        with shapes_later():  # checked by the workers, which import torch while this process plans
            _, outcome = run_all(spec, place, workers=workers, device=device, data_dir=data_dir,
                                 progress=False, echo=stamp, fork=True, linger=True, pool=pool)
    except Stopped as stop:
        stamp(f"stopped by {stop}: the runs in progress went back to the queue")
        requeued = requeue_this_job(folder, stop.signum, started)
        if requeued is not None:
            stamp(requeued[1])
        if requeued and requeued[0]:
            await_requeue()  # SLURM ends this instance itself; exiting first races with the requeue
        raise typer.Exit(0 if requeued and requeued[0] else 128 + stop.signum) from None
    stamp(f"no runs left to claim: {outcome.done}/{outcome.total} done, trained {outcome.trained} here")
    if outcome.failed:  # some failed in other workers: their errors are in those logs, not above
        from visionstudy.study.status import failure_lines

        runs, search = failed_runs(outcome)
        said = [f"{len(runs)} of {outcome.total} runs failed"] if runs else []
        err_console.print(", ".join(said + ["the search failed"] * len(search)) + ":")
        for line in failure_lines(dict(outcome.failed)):
            err_console.print(f"  {line}")
        raise typer.Exit(1)


@study_app.command("cancel")
def study_cancel(study: Annotated[Path, typer.Argument(help="the study's folder")]) -> None:
    """Cancel the study's SLURM jobs; their runs in progress go back to the queue."""
    from visionstudy.study.execute import planned_study_file
    from visionstudy.study.launch import cancel_slurm

    planned_study_file(study)  # a typo or the study file: not "no jobs were submitted" and exit 0
    ids, cancelled = cancel_slurm(study)
    if not ids:
        console.print(f"{study}: no SLURM jobs were submitted for this study")
    elif not cancelled:
        console.print(f"SLURM job{'s' * (len(ids) > 1)} {', '.join(ids)}: none queued or running; nothing to "
                      "cancel")
    else:
        console.print(f"cancelled SLURM job{'s' * (len(cancelled) > 1)} {', '.join(cancelled)}; `visionstudy "
                      f"study run {study} --launcher slurm ...` goes on where they stopped")


def print_results(study_dir: Path) -> None:
    """The results table at the end of `study run`: each variant's headline metric over its runs."""
    from visionstudy.study.manifest import has_manifest, read_manifest
    from visionstudy.study.results import headline, run_rows, variant_results

    if not has_manifest(study_dir):
        return
    manifest = read_manifest(study_dir)
    key, label, higher = headline(manifest)
    results = [r for r in variant_results(run_rows(study_dir, manifest), key, manifest.variants) if r.runs]
    if not results:
        return
    worst = -math.inf if higher else math.inf
    best = (max if higher else min)(results, key=lambda r: worst if r.mean is None else r.mean)
    table = Table(title=f"{manifest.name}: {label} per variant (mean ± std over runs)", title_justify="left")
    for column in ("variant", "runs", label):
        table.add_column(column, justify="left" if column == "variant" else "right")
    for r in results:
        mark = " (best)" if r is best and len(results) > 1 else ""
        table.add_row(r.variant, str(r.runs), r.text(percent=higher) + mark)
    console.print(table)


PLAIN_ROWS = 200  # `study status` prints more variants than this as plain text


@study_app.command("status")
def study_status(
    study: Annotated[str, typer.Argument(help="study file, recipe:NAME, or the study's folder")],
    set_: SetOpt = None,
    db: Db = None,
    runs_dir: RunsDir = Path("runs"),
) -> None:
    """Runs done / running / waiting / failed per variant."""
    from visionstudy.study.status import study_status as status_of

    view = status_of(study, list(set_ or []), runs_dir, db)
    columns = ("variant", "runs", "done", "running", "waiting", "failed", "missing", "not queued")
    per_variant: dict[str, list[str]] = {name: [] for name in view.variants}
    for r in view.runs:
        per_variant.setdefault(r.variant, []).append(view.status[r.key])
    rows = [[name, str(len(states)), *(str(states.count(s)) for s in
                                       ("done", "running", "waiting", "failed", "missing", "new"))]
            for name, states in per_variant.items()]
    if len(rows) <= PLAIN_ROWS:
        table = Table()
        for column in columns:  # counts right-aligned, as in the plain layout and the results table
            table.add_column(column, justify="left" if column == "variant" else "right")
        for row in rows:
            table.add_row(*row)
        console.print(table)
    else:  # rich lays out every cell: seconds per thousand rows
        widths = [max(len(c), *(len(row[i]) for row in rows)) for i, c in enumerate(columns)]
        for row in [list(columns), *rows]:
            print("  ".join(cell.ljust(w) if i == 0 else cell.rjust(w)
                            for i, (cell, w) in enumerate(zip(row, widths, strict=True))).rstrip())
    done = sum(v == "done" for v in view.status.values())
    where = view.study_dir if view.started else f"{view.study_dir} (not started)"
    console.print(f"{view.name}: {done}/{len(view.status)} runs done — {where}")
    if view.search:
        console.print(view.search)
    if view.errors:
        from visionstudy.study.status import failure_lines

        err_console.print(f"{len(view.errors)} failed:")
        for line in failure_lines(view.errors):
            err_console.print(f"  {line}")
    if view.differs:
        err_console.print(view.differs, style="yellow")
    if view.silent:
        from visionstudy.config import few

        where = shlex.quote(str(view.study_dir))
        err_console.print(
            f"{len(view.silent)} of the running runs ({few(view.silent, 3)}) have no live worker: "
            "its process here ended, or it sent no heartbeat for the grace period (killed outright, a lost "
            f"node); the next `visionstudy study run {where}` or `study work {where}` queues them again "
            "from their last finished epoch")
    print_jobs(view.study_dir, sum(v == "running" for v in view.status.values()))


def print_jobs(study_dir: Path, running: int) -> None:
    """The study's SLURM jobs still queued or running (`squeue`); with none, what became of the
    runs that still read as running."""
    from visionstudy.study.launch import LaunchError, Unanswered, recorded_jobs, slurm_jobs, stuck_note

    ids = ", ".join(recorded_jobs(study_dir))
    if not ids:
        return
    try:
        jobs = slurm_jobs(study_dir)
    except LaunchError as exc:  # the runs' states above stand; only the jobs' are unknown here
        where = "" if isinstance(exc, Unanswered) else "; ask on a machine of the cluster (a login node)"
        err_console.print(f"SLURM jobs {ids}: their states are unknown here ({exc}){where}")
        return
    if not jobs:
        console.print(f"SLURM jobs {ids}: none queued or running")
        if running:
            where = shlex.quote(str(study_dir))
            err_console.print(
                f"{running} run{'s read' if running > 1 else ' reads'} as running with no job left to train "
                f"{'them' if running > 1 else 'it'} (unless a process here does): the job died or lost the "
                f"database; `visionstudy study run {where} --launcher slurm ...` (or `study work {where}`) "
                "queues and trains them again from their last finished epoch")
        return
    table = Table("job", "state", "reason", "time", "node", title="SLURM jobs", title_justify="left")
    for j in jobs:
        table.add_row(j.id, j.state, j.reason, j.elapsed, j.node)
    console.print(table)
    note = stuck_note(jobs, study_dir)
    if note:
        err_console.print(f"warning: {note}", style="yellow")


# -------------------------------------------------------------------------------------- db

db_app = typer.Typer(no_args_is_help=True, help="A PostgreSQL server for studies whose jobs run on "
                     "several machines (from the installed PostgreSQL binaries).")
app.add_typer(db_app, name="db")
DbDir = Annotated[Path, typer.Option("--dir", help="the server's folder (its data, URL and log)")]


@db_app.command("start")
def db_start(
    folder: DbDir,
    port: Annotated[int | None, typer.Option(help="port (default: the one it had, else a free one)", min=1,
                                             max=65535)] = None,
    host: Annotated[str | None, typer.Option(
        help="host name the jobs reach it by (default: this machine's)")] = None,
) -> None:
    """Start the server (created the first time) and print the --db URL to give `study run`."""
    from visionstudy.store.server import start

    server = start(folder, port, host)
    err_console.print(f"PostgreSQL runs in {server.folder}; stop it with "
                      f"`visionstudy db stop --dir {folder}`")
    console.print(server.url())


@db_app.command("stop")
def db_stop(folder: DbDir) -> None:
    """Stop the server started in this folder (its databases stay for the next start)."""
    from visionstudy.store.server import stop

    stopped = stop(folder)
    console.print("stopped" if stopped else "it was not running")


# -------------------------------------------------------------------------------------- recipes


@recipes_app.command("list")
def recipes_list() -> None:
    """The built-in recipes: what each reproduces and how many runs it trains."""
    from visionstudy.study import list_recipes, load_study
    from visionstudy.validate import shapes_later

    table = Table("recipe", "runs", "reproduces")
    for name in list_recipes():
        with shapes_later():  # a list, not a launch: no model built for its images (torch: 5 s)
            spec = load_study(f"recipe:{name}")
        table.add_row(name, spec.describe(), spec.config.reproduces or spec.config.description)
    console.print(table)


def validates_on(data: Any) -> str:
    """`recipes show --runs`' words for what a run validates on: its fold, its held-out share, the
    test set or nothing."""
    if data.folds is not None:
        return f"fold {data.fold} of {data.folds}"
    words = {"split": f"{data.val_fraction:.0%} held out", "test": "test set", "none": "nothing"}
    return words[data.validates_on]


@recipes_app.command("show")
def recipes_show(
    name: Annotated[str, typer.Argument(help="recipe name, e.g. cifar100-first20, or a study file")],
    runs: Annotated[bool, typer.Option("--runs", help="list every run it expands to")] = False,
    set_: SetOpt = None,
) -> None:
    """Print a recipe's study file (copy it to change it), or with --runs the runs it or yours holds."""
    from visionstudy.study import load_study, recipe_path

    own = Path(name).is_file() or name.endswith((".yaml", ".yml"))  # a study file: its runs before they train
    path = Path(name) if own else recipe_path(name.removeprefix("recipe:"))
    from visionstudy.validate import shapes_later

    with shapes_later() if not runs else contextlib.nullcontext():  # the file alone: no model built
        spec = load_study(name if own else f"recipe:{name.removeprefix('recipe:')}", list(set_ or []))
    if not runs:
        sys.stdout.write(path.read_text())
        return
    from visionstudy.validate import parameter_count

    table = Table("run", "model", "params", "optimizer", "lr", "schedule", "epochs", "batch", "augment",
                  "validates on")
    for r in spec.runs:
        c = r.config
        params = parameter_count(c)
        table.add_row(r.key, c.model.name, "-" if params is None else f"{params:,}",
                      c.train.optimizer.name, f"{c.train.optimizer.lr:g}",
                      c.train.scheduler.name, str(c.train.epochs), str(c.train.batch_size),
                      ",".join(a.name for a in c.data.augment) or "-",
                      validates_on(c.data))
    console.print(table)
    from visionstudy.study.spec import FINAL_VARIANT

    names = [n for n, _ in spec.variants] + ([FINAL_VARIANT] if spec.config.search else [])
    notes = [(n, spec.note(n)) for n in names if spec.note(n)]
    if notes:
        reproduces = Table("variant", "reproduces")
        for name, text in notes:
            reproduces.add_row(name, text)
        console.print(reproduces)
    console.print(f"{spec.name}: {spec.describe()}")


# --------------------------------------------------------------------------------------- report


@app.command()
def report(
    paths: Annotated[list[str], typer.Argument(
        help="a run directory, several to compare, or a study (its folder, file or recipe:NAME)")],
    out: Annotated[Path | None, typer.Option(
        help="report folder (default: <study folder>/report, or reports/<run>: a study's run by its place, "
        "quick-baseline-seed-0; several: reports/<a>-vs-<b>)")] = None,
    data_dir: DataDir = None,
    tsne_points: Annotated[int, typer.Option(help="test images in the t-SNE (seeded subsample)",
                                             min=0)] = 2000,
    images: Annotated[bool, typer.Option(help="figures that reload the dataset and checkpoint "
                                         "(samples, misclassified, Grad-CAM)")] = True,
    seed: Annotated[int, typer.Option(help="seed for t-SNE and image choices (0 to 2^32 - 1)")] = 0,
    runs_dir: RunsDir = Path("runs"),
    db: Db = None,
    format_: Annotated[list[str] | None, typer.Option(
        "--format", help="also write report.pdf (pdf: printed by headless Chromium) or report-latex.tex "
        "(latex: booktabs tables, PDF figures), or SVG copies of the figures (svg); repeatable, or "
        "comma-separated: --format pdf,latex")] = None,
    force: Annotated[bool, typer.Option(
        help="write into an existing --out folder that holds no report")] = False,
    quiet: Annotated[bool, typer.Option(
        help="no progress lines and no warnings: the report's path and errors")] = False,
) -> None:
    """Write report.html, report.md, figures and CSV tables from run directories (no training)."""
    from visionstudy.config import SEED_MAX, check_count
    from visionstudy.errors import ConfigError
    from visionstudy.report import ReportOptions, build_report, default_out
    from visionstudy.report.render import report_formats
    from visionstudy.study.status import is_study_dir

    formats = report_formats(["html", *(format_ or [])], "--format")
    seed = check_count(seed, "--seed", least=0, most=SEED_MAX)
    opts = ReportOptions(tsne_points=tsne_points, seed=seed, data_dir=data_dir, images=images,
                         formats=formats, progress=not quiet, force=force)
    first = Path(paths[0])
    if len(paths) == 1 and (is_study_dir(first) or paths[0].startswith("recipe:")
                            or (first.is_file() and first.suffix in (".yaml", ".yml"))):
        from visionstudy.report.study_report import build_study_report

        study_dir = first
        if not is_study_dir(first):
            from visionstudy.study import load_study
            from visionstudy.validate import shapes_later

            with shapes_later():  # its name and folder: no model built
                study_dir = runs_dir / load_study(paths[0]).name
            if not is_study_dir(study_dir):
                where = f" --runs-dir {shlex.quote(str(runs_dir))}" if runs_dir != Path("runs") else ""
                command = f"visionstudy study run {shlex.quote(paths[0])}{where}"
                raise ConfigError(f"{paths[0]}: the study has not run yet ({study_dir} holds no plan); "
                                  f"`{command}` trains it and writes its report")
        html = build_study_report(study_dir, out or study_dir / "report", opts, db)
    else:
        runs = [Path(p) for p in paths]
        studies = [str(r) for r in runs if is_study_dir(r)]
        if studies:  # several paths: run folders compared, which a study folder is not
            raise ConfigError(f"{studies[0]} is a study folder: report it alone (`visionstudy report "
                              f"{shlex.quote(studies[0])}`), or compare run folders (e.g. "
                              f"{studies[0]}/VARIANT/seed-0)")
        html = build_report(runs, out or default_out(runs), opts)
    console.print(f"report: {html}")


# -------------------------------------------------------------------------------------- predict


@app.command()
def predict(
    checkpoint: Annotated[Path, typer.Argument(
        help="a run directory, a checkpoint .pt inside one, or an exported model beside its .json")],
    images: Annotated[list[Path], typer.Argument(
        help="image files (PNG, JPEG, BMP, TIFF, ...) or folders of them (subfolders too)")],
    top_k: Annotated[int, typer.Option("--top-k", help="classes to show per image", min=1)] = 5,
    gradcam: Annotated[Path | None, typer.Option(
        "--gradcam", help="folder for Grad-CAM overlays of the top class")] = None,
    force: Annotated[bool, typer.Option(help="write into a --gradcam folder that holds other files")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda")] = "cpu",
) -> None:
    """Classify image files with a trained run: top-k classes with probabilities.

    Files that cannot be read are named after the others' results, and the command then exits 2."""
    from visionstudy.errors import ConfigError, DataError
    from visionstudy.evaluate.predict import by_folder, load_predictor, unfinished
    from visionstudy.evaluate.predict import predict as run_predict
    from visionstudy.experiment import resolve_accelerator
    from visionstudy.models import Classifier

    if gradcam is not None:
        from visionstudy.store.rundir import claim_destination

        claim_destination(gradcam, "--gradcam", "Grad-CAM overlays", own=is_gradcam_folder, force=force,
                          folder=True)
    from visionstudy.serve.export import exported

    found = exported(checkpoint, resolve_accelerator(device))
    predictor = found[0] if found else load_predictor(checkpoint, resolve_accelerator(device))
    if gradcam is not None and not isinstance(predictor.model, Classifier):
        raise ConfigError(f"--gradcam: {checkpoint} is an exported model, whose layers Grad-CAM cannot "
                          "reach; give the run folder it was exported from (or its safetensors export)")
    note = unfinished(checkpoint, predictor)
    if note:
        err_console.print(f"warning: {note} (`visionstudy train CONFIG --resume --out "
                          f"{checkpoint}` finishes it)")
    done = run_predict(predictor, images, top_k)
    if done.results:
        show_predictions(done.results, as_json)
        scored = None if as_json else by_folder(done.results, predictor.class_names)
        if scored:  # a labelled folder: how the run does on it
            first, within, n = scored
            k = len(done.results[0].top)
            console.print(f"by their folders' class names: {first} of {n} right ({first / n:.1%})"
                          + (f"; within the top {k}: {within} of {n} ({within / n:.1%})" if k > 1 else ""))
        if gradcam is not None:
            for path in write_gradcam(predictor, done.pixels, done.results, gradcam):
                err_console.print(f"Grad-CAM: {path}")
    if done.failed:
        raise DataError(f"{len(done.failed)} of {len(done.results) + len(done.failed)} images could not "
                        "be read:\n  " + "\n  ".join(done.failed))


def show_predictions(results: Any, as_json: bool) -> None:
    if as_json:
        print(json.dumps([{"image": r.path, "top": [{"class": c, "probability": p} for c, p in r.top]}
                          for r in results]))
    else:
        table = Table("image", *(f"#{i + 1}" for i in range(len(results[0].top))))
        for name, r in zip(shown_names([str(r.path) for r in results]), results, strict=True):
            table.add_row(name, *(f"{c} ({p:.1%})" for c, p in r.top))
        console.print(table)


def shown_names(paths: list[str]) -> list[str]:
    """The images' file names where they tell them apart; else their paths below the folder they
    share (a/x.png and b/x.png were both shown as x.png)."""
    import os

    names = [Path(p).name for p in paths]
    if len(set(names)) == len(names):
        return names
    try:
        shared = os.path.commonpath([os.path.dirname(p) for p in paths])
    except ValueError:  # absolute and relative paths mixed: shown whole
        return paths
    return [os.path.relpath(p, shared) if shared else p for p in paths]


@app.command()
def demo(
    run: Annotated[Path, typer.Argument(help="a finished run directory")],
    port: Annotated[int, typer.Option(help="port to listen on", min=1, max=65535)] = 8000,
    host: Annotated[str, typer.Option(help="address to listen on (0.0.0.0: every interface)")] = "127.0.0.1",
    data_dir: DataDir = None,
) -> None:
    """Serve a page where a person uploads or drops an image and sees the top classes and Grad-CAM."""
    import importlib.util

    from visionstudy.errors import VisionStudyError

    found = importlib.util.find_spec  # python-multipart's module: python_multipart (multipart before 0.0.13)
    if not (found("starlette") and found("uvicorn") and (found("python_multipart") or found("multipart"))):
        raise VisionStudyError("the demo needs its extra: pip install 'visionstudy[demo]' (starlette, "
                               "uvicorn, python-multipart)")
    from visionstudy.serve.demo import create_app, listen

    app = create_app(run, data_dir)  # a run that cannot be served fails here, before the port opens
    sock = listen(host, port)  # a busy port fails here, before the address is printed
    import uvicorn

    console.print(f"demo of {run}: http://{host}:{port}  (Ctrl-C stops it)")
    uvicorn.Server(uvicorn.Config(app, log_level="warning")).run(sockets=[sock])


@app.command()
def export(
    run: Annotated[Path, typer.Argument(help="a finished run directory")],
    format_: Annotated[str, typer.Option("--format", help="onnx, torchscript or safetensors")] = "onnx",
    out: Annotated[Path | None, typer.Option(help="the file to write (default exports/<run>.<ext>)")] = None,
    data_dir: DataDir = None,
    force: Annotated[bool, typer.Option(
        help="replace an existing file that is not this run's export")] = False,
) -> None:
    """Export the run's model with its class names and normalisation, checked against the run."""
    from visionstudy.serve.export import export_run

    done = export_run(run, format_.lower(), out, data_dir, force)  # ONNX as onnx
    if not done.finished:
        err_console.print(f"warning: {run} has not finished (no metrics.json): exported its last checkpoint; "
                          "its test accuracy is unknown (resume it with `visionstudy train CONFIG --resume "
                          f"--out {run}`)")
    on = f"{done.images} " + ("test images" if done.test_images else "random images (no dataset here)")
    console.print(f"{done.format}: {done.path} (classes and normalisation: {done.sidecar})")
    console.print(f"parity: max |Δlogit| {done.max_abs_diff:.2e} against the run's model on {on}")


def is_gradcam_folder(folder: Path) -> bool:
    """A folder of earlier Grad-CAM overlays only (`predict --gradcam`'s own output)."""
    return all(p.name.endswith(("_gradcam.png", "_gradcam.pdf", "_gradcam.svg")) for p in folder.iterdir())


def write_gradcam(predictor: Any, pixels: Any, results: Any, folder: Path) -> list[Path]:
    from functools import partial

    import torch

    from visionstudy.evaluate.cam import gradcam as cam
    from visionstudy.evaluate.predict import preprocess
    from visionstudy.report.drawing import save_figure
    from visionstudy.report.figures import image_grid

    top = torch.tensor([predictor.class_names.index(r.top[0][0]) for r in results])
    heat = cam(predictor.model, preprocess(predictor, pixels), top)
    written = []
    for i, r in enumerate(results):
        unit = pixels[i : i + 1].astype("float32") / 255
        title = f"{r.top[0][0]} ({r.top[0][1]:.0%})"
        sketch = partial(image_grid, unit.repeat(2, 0), ["input", f"Grad-CAM: {title}"],
                         overlay=[None, heat[i]], cols=2)
        written.append(folder / save_figure(sketch, folder, f"{i + 1:02d}_{Path(r.path).stem}_gradcam"))
    return written


# ------------------------------------------------------------------------------------- entry


def setup_logging(quiet: bool = False) -> None:
    logging.basicConfig(
        level=logging.ERROR if quiet else logging.WARNING,
        format="%(levelname)s: %(message)s", stream=sys.stderr, force=True,
    )


def without_flag_types(command: Any) -> None:
    """Flags (`--quiet`, `--report/--no-report`) take no value: typer's help wrote `<bool>` in their
    type column, as if they took one (`--quiet true`). A flag that is off unless given has no
    `--no-` twin (`--quiet --no-quiet ... [default: no-quiet]` was noise); `--report/--no-report`,
    on unless refused, keeps both."""
    for param in command.params:
        if not getattr(param, "is_flag", False):
            continue
        if param.metavar is None:
            param.metavar = ""
        if param.default is False and param.secondary_opts:
            param.secondary_opts, param.show_default = [], False
    make_help = command.get_help_option  # --help: made per call

    def help_option(ctx: Any) -> Any:
        option = make_help(ctx)
        if option is not None:
            option.metavar = ""
        return option

    command.get_help_option = help_option
    for sub in getattr(command, "commands", {}).values():
        without_flag_types(sub)


def main() -> None:
    """Run the CLI; user errors print one clear message and exit 2, never a traceback."""
    setup_logging("--quiet" in sys.argv)
    try:
        without_flag_types(cli := typer.main.get_command(app))
        cli()  # standalone: usage errors exit 2 with click's message
    except VisionStudyError as exc:
        err_console.print(Text.assemble(("error:", "bold red"), f" {exc}"))
        sys.exit(2)


if __name__ == "__main__":
    main()
