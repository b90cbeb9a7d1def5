"""Experiment trackers, opt-in: `--log tensorboard`, `--log mlflow` and `--log wandb` for `train`
and `study run`.

    visionstudy train cfg.yaml --log tensorboard               # → runs/tensorboard/runs/<run folder>/
    visionstudy study run recipe:quick --log mlflow            # → mlruns/ (MLflow's file store)
    visionstudy study run recipe:quick --log wandb             # → W&B (offline without an API key)
    tensorboard --logdir runs/tensorboard;  mlflow ui --backend-store-uri sqlite:///mlruns/mlflow.db

Each run is logged from its folder once it has finished (the run folder is the record; a resumed
or retried run is logged once, a failed one not at all): its config as parameters (dotted keys),
every epoch's history row as metrics at that epoch, the final test metrics, and its report as an
artifact when one was written. A study also logs its study report. TensorBoard gets scalars and
the config as text (and a copy of the report in the run's log folder); MLflow gets a run per run in
an experiment named after the study, with params, metric histories, metrics and artifacts; W&B a
run per run in a project named after the study (config, history by epoch, summary, the report as a
file), online where it has an API key, else offline under the log folder for `wandb sync`.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import shutil
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from visionstudy.config import flatten
from visionstudy.errors import ConfigError
from visionstudy.tasks.metrics import TRACKED

log = logging.getLogger(__name__)

KINDS = ("tensorboard", "mlflow", "wandb")
DEFAULT_DIRS = {"tensorboard": Path("runs") / "tensorboard", "mlflow": Path("mlruns"), "wandb": Path("runs")}


@dataclass(frozen=True)
class Tracker:
    kind: str  # tensorboard | mlflow | wandb
    where: Path  # the log folder (TensorBoard), the file store (MLflow), W&B's `dir` (its wandb/ inside)


def trackers(kinds: Iterable[str] | None, log_dir: Path | None = None) -> list[Tracker]:
    """--log values → trackers, each with its folder; unknown names and missing libraries are errors."""
    import importlib.util

    from visionstudy.store.rundir import claim_destination

    out = []
    kinds = [k.lower() if isinstance(k, str) else k for k in kinds or []]  # TensorBoard as tensorboard
    for kind in dict.fromkeys(kinds):
        if kind not in KINDS:
            raise ConfigError(f"--log {kind}: not a tracker; choose from {', '.join(KINDS)}")
        if importlib.util.find_spec(kind) is None:
            raise ConfigError(f"--log {kind} needs {kind}: pip install 'visionstudy[trackers]'")
        several = len(set(kinds or [])) > 1
        base = Path(log_dir) / kind if log_dir and several else (log_dir or DEFAULT_DIRS[kind])
        out.append(Tracker(kind, claim_destination(Path(base), "--log-dir", "trackers", own=lambda p: True,
                                                   folder=True)))
        if kind == "wandb" and wandb_mode() == "offline":
            log.warning("--log wandb: no W&B API key here (WANDB_API_KEY or `wandb login`) and no "
                        "WANDB_MODE: runs are logged offline; `wandb sync %s/offline-run-*` uploads "
                        "them", out[-1].where / "wandb")
    return out


def wandb_mode() -> str:
    """W&B's WANDB_MODE where it is set; else online with an API key (WANDB_API_KEY, or the
    ~/.netrc entry `wandb login` writes), else offline: never a login prompt or a network wait
    after a run has trained."""
    import netrc
    from urllib.parse import urlparse

    if os.environ.get("WANDB_MODE"):
        return os.environ["WANDB_MODE"]
    if os.environ.get("WANDB_API_KEY"):
        return "online"
    host = urlparse(os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai")).hostname or ""
    try:
        return "online" if netrc.netrc().authenticators(host) else "offline"
    except (OSError, netrc.NetrcParseError):
        return "offline"


def flat_params(doc: dict[str, Any]) -> dict[str, str]:
    """The config's dotted keys as tracker parameters (strings; lists, booleans and None as JSON)."""
    return {k: json.dumps(v) if isinstance(v, list | dict | bool) or v is None else str(v)
            for k, v in flatten(doc).items()}


def finite_metrics(metrics: dict[str, Any]) -> dict[str, float]:
    return {k: float(metrics[k]) for k in TRACKED
            if isinstance(metrics.get(k), int | float) and not isinstance(metrics.get(k), bool)
            and math.isfinite(metrics[k])}


def log_run(run: Path, name: str, group: str, targets: list[Tracker], report: Path | None = None) -> None:
    """Log one finished run folder to every tracker. `group`: the study (MLflow experiment, the
    TensorBoard subfolder); `name`: the run's name within it. Each writer takes the run folder it
    logs (`source`: TensorBoard keeps one folder per run folder)."""
    from visionstudy.store.reader import as_asked, read_config, read_history, read_metrics
    from visionstudy.store.rundir import RunDir

    folder = RunDir(run)
    config = as_asked(read_config(run))
    history = read_history(folder.history) if folder.history.is_file() else []
    metrics = finite_metrics(read_metrics(run))
    writers = {"tensorboard": log_tensorboard, "mlflow": log_mlflow, "wandb": log_wandb}
    for t in targets:
        with tracker_failure(t, name, run):
            writers[t.kind](t.where, group, name, run, config, history, metrics, report)


LOGGED_FROM = "logged_from.txt"  # in a TensorBoard run folder: the run folder it was logged from


def tensorboard_folder(root: Path, name: str, source: Path) -> Path:
    """The TensorBoard folder of run folder `source`: root/name, or root/name-2, -3, ... when another
    run folder of that name logged there first. The same run logged again gets its own folder back
    (rewritten whole: one record per run); another run's log is never removed."""
    logged_from = str(source.resolve())
    for k in range(1, 1000):
        folder = root / (name if k == 1 else f"{name}-{k}")
        marker = folder / LOGGED_FROM
        if not folder.exists() or (marker.is_file() and marker.read_text().strip() == logged_from):
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir(parents=True)
            marker.write_text(logged_from + "\n")
            return folder
    raise OSError(f"{root}: 999 TensorBoard folders named {name}-k; choose another --log-dir")


@contextlib.contextmanager
def tracker_failure(t: Tracker, name: str, kept: Path) -> Iterator[None]:
    """A tracker that fails (W&B's server unreachable, a full disk) costs its record only: one
    warning, and the next run and tracker go on; what was logged is in `kept` already."""
    try:
        yield
    except Exception as exc:  # noqa: BLE001  (each library's own errors)
        first = (str(exc).strip().splitlines() or [""])[0][:300]
        log.warning("--log %s: %s was not logged (%s: %s); it is kept in %s", t.kind, name,
                    type(exc).__name__, first, kept)


def log_tensorboard(where: Path, group: str, name: str, source: Path, config: dict[str, Any],
                    history: list[dict[str, float]], metrics: dict[str, float], report: Path | None) -> None:
    from torch.utils.tensorboard import SummaryWriter

    folder = tensorboard_folder(where / group, name, source)
    with SummaryWriter(log_dir=str(folder)) as w:
        w.add_text("config", "```yaml\n" + yaml.safe_dump(config, sort_keys=False) + "```", 0)
        for row in history:
            step = int(row.get("epoch", 0))
            for key, value in row.items():
                if key != "epoch" and math.isfinite(value):
                    w.add_scalar(epoch_tag(key), value, step)
        for key, value in metrics.items():
            w.add_scalar(f"test/{key.removeprefix('test_')}", value, 0)
        hparams = {k: v for k, v in flat_params(config).items() if len(v) <= 100}
        w.add_hparams(hparams, {f"hparam/{k}": v for k, v in metrics.items()}, run_name=".")
        if report is not None and report.is_file():
            shutil.copy(report, folder / report.name)
            w.add_text("report", f"{report.resolve()}, copied as {report.name} into this log folder", 0)


def epoch_tag(key: str) -> str:
    """'val_accuracy' → 'accuracy/val', 'train_loss' → 'loss/train': train and validation on one chart."""
    for split in ("train", "val"):
        if key.startswith(split + "_"):
            return f"{key.removeprefix(split + '_')}/{split}"
    return key


def log_mlflow(where: Path, group: str, name: str, source: Path, config: dict[str, Any],
               history: list[dict[str, float]], metrics: dict[str, float], report: Path | None) -> None:

    client, experiment_id = mlflow_experiment(where, group)
    for old in client.search_runs([experiment_id], filter_string=f"tags.`mlflow.runName` = '{name}'"):
        client.delete_run(old.info.run_id)  # logged again: one record per run
    run = client.create_run(experiment_id, run_name=name, tags={"visionstudy.group": group})
    rid = run.info.run_id
    params = flat_params(config)
    for key, text in params.items():
        client.log_param(rid, key, text[:6000])
    for row in history:
        step = int(row.get("epoch", 0))
        for key, value in row.items():
            if key != "epoch" and math.isfinite(value):
                client.log_metric(rid, key, value, step=step)
    for key, value in metrics.items():
        client.log_metric(rid, key, value)
    if report is not None and report.is_file():
        client.log_artifact(rid, str(report))
    client.set_terminated(rid)


def log_wandb(where: Path, group: str, name: str, source: Path, config: dict[str, Any],
              history: list[dict[str, float]], metrics: dict[str, float], report: Path | None) -> None:
    run = wandb_run(where, group, name, config)
    for row in history:
        values = {k: v for k, v in row.items() if k != "epoch" and math.isfinite(v)}
        run.log({**values, "epoch": int(row.get("epoch", 0))}, step=int(row.get("epoch", 0)))
    run.summary.update(metrics)
    if report is not None and report.is_file():
        wandb_file(run, report)
    run.finish()


def wandb_run(where: Path, group: str, name: str, config: dict[str, Any] | None = None) -> Any:
    import wandb

    where.mkdir(parents=True, exist_ok=True)
    return wandb.init(project=group, group=group, name=name, dir=str(where), config=config or {},
                      mode=wandb_mode(), reinit="create_new",  # type: ignore[arg-type]
                      settings=wandb.Settings(silent=True, console="off"))


def wandb_file(run: Any, path: Path) -> None:
    """A copy of `path` among the run's files (a file saved from elsewhere is symlinked, with a
    warning that it must be saved again when it changes)."""
    copy = Path(run.dir) / path.name
    shutil.copy(path, copy)
    run.save(str(copy), base_path=run.dir, policy="now")


def mlflow_uri(where: Path) -> str:
    """MLflow's store in `where`: a SQLite file (MLflow 3 retired the plain-folder store) beside
    an artifacts folder; `mlflow ui --backend-store-uri` takes this URI."""
    return f"sqlite:///{(where / 'mlflow.db').resolve()}"


def mlflow_experiment(where: Path, group: str) -> tuple[Any, str]:
    import logging

    from mlflow.tracking import MlflowClient

    where.mkdir(parents=True, exist_ok=True)
    for name in ("alembic", "mlflow.store.db.utils", "mlflow.store.sql_alchemy_store"):  # migration chatter
        logging.getLogger(name).setLevel(logging.WARNING)
    client = MlflowClient(tracking_uri=mlflow_uri(where))
    experiment = client.get_experiment_by_name(group)
    if experiment is not None:
        return client, experiment.experiment_id
    return client, client.create_experiment(group, artifact_location=(where / "artifacts").resolve().as_uri())


def log_study_report(report: Path, group: str, targets: list[Tracker]) -> None:
    """The study report as an artifact of a run named 'study report' in the study's group."""
    for t in targets:
        with tracker_failure(t, "the study report", report):
            log_report(t, report, group)


def log_report(t: Tracker, report: Path, group: str) -> None:
    if t.kind == "tensorboard":
        folder = t.where / group / "study-report"
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copy(report, folder / report.name)
    elif t.kind == "wandb":
        run = wandb_run(t.where, group, "study report")
        wandb_file(run, report)
        run.finish()
    else:
        client, experiment_id = mlflow_experiment(t.where, group)
        run = client.create_run(experiment_id, run_name="study report")
        client.log_artifact(run.info.run_id, str(report))
        client.set_terminated(run.info.run_id)
