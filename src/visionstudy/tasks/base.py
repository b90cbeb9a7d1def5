"""The task contract: loss, metrics (their facts in the catalogue of `tasks.metrics`), the headline
metric, the report sections that apply, and how its data become loaders and its model is built.
One experiment path (`visionstudy.experiment`) runs every task; a task is found from the run's
dataset source.

The tasks import torch only where they compute: the report and the CLI read a task's facts
(headline, labels, sections, its rows and cards of metrics.json) without loading torch."""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar

if TYPE_CHECKING:
    import numpy as np
    import torch

from visionstudy.config import RunConfig
from visionstudy.registry import Registry
from visionstudy.tasks.metrics import RESULTS, metric

D = TypeVar("D")  # a task's prepared data (classification: PreparedData, regression on sets: SetData)
# evaluation batches on a CPU at most (train.eval_batch_size caps it): a larger batch's activations
# leave the caches, and evaluation slows (README "Performance")
CPU_EVAL_BATCH = 256


def eval_batch(cfg: RunConfig, device: torch.device) -> int:
    """The validation and test loaders' batch: train.eval_batch_size, on a CPU at most CPU_EVAL_BATCH."""
    size = cfg.train.eval_batch_size
    return min(size, CPU_EVAL_BATCH) if device.type == "cpu" else size


def seconds_figure(seconds: float) -> str:
    """A run's seconds as its result lines write them: one decimal, and two below a tenth of a
    second (a tiny run's time read as zero)."""
    return f"{seconds:.1f}" if seconds >= 0.095 or seconds == 0 else f"{seconds:.2f}"


def trained_for(metrics: dict[str, Any]) -> str:
    """How long a finished run trained (epochs and seconds), closing its result line."""
    n = metrics["epochs_run"]
    return f"({n} epoch{'s' * (n != 1)}, {seconds_figure(metrics['train_seconds'])}s)"


RUN_RESULTS = ("val_loss", "params", "flops", "train_seconds", "epochs_run", "best_epoch")  # every task's


class Task(ABC, Generic[D]):
    """Subclasses set the class attributes and implement the abstract methods."""

    name: ClassVar[str]
    description: ClassVar[str]
    metrics: ClassVar[tuple[str, ...]]  # the study report's metric columns, from the catalogue; the
    #                                     first is the headline
    glance: ClassVar[tuple[str, ...]]  # those of its "at a glance" table
    results: ClassVar[tuple[str, ...]]  # the scalars its runs write in metrics.json (a results table's
    #                                     columns), beside those of every run (`RUN_RESULTS`)
    default_monitor: ClassVar[str]  # validation metric for the best checkpoint when not configured
    #                                 (and a search's objective)
    validation_metrics: ClassVar[tuple[str, ...]]  # what its history records each epoch on validation
    model_kind: ClassVar[str]  # the kind of registered model it trains ("image" or "set")
    sections: ClassVar[tuple[str, ...]]  # report sections that apply to its runs
    prediction_keys: ClassVar[tuple[str, ...]]  # the arrays of its runs' predictions.npz

    @property
    def headline(self) -> str:
        """The metrics.json key a study ranks runs by."""
        return self.metrics[0]

    @property
    def result_columns(self) -> tuple[str, ...]:
        """Its runs' metrics.json scalars, in the catalogue's order (a study's results table)."""
        return tuple(k for k in RESULTS if k in self.results or k in RUN_RESULTS)

    @property
    def headline_label(self) -> str:
        return metric(self.headline).label

    @property
    def maximize(self) -> bool:
        """The headline's direction."""
        return metric(self.headline).maximize

    # ------------------------------------------------------------------ validation

    def refuse(self, cfg: RunConfig) -> list[str]:
        """Options of `cfg` that cannot work for this task, one line each naming the field."""
        return []

    # ------------------------------------------------------------------ data and model

    @abstractmethod
    def prepare(self, cfg: RunConfig, data_dir: Path | None) -> D:
        """The run's data (splits, what a checkpoint needs to know about them)."""

    @abstractmethod
    def input_shape(self, data: D) -> tuple[int, ...]:
        """One sample's shape, for FLOP counting."""

    @abstractmethod
    def build_model(self, cfg: RunConfig, data: D, skeleton: bool = False) -> torch.nn.Module:
        """The run's model; `skeleton`: its structure only (no pretrained weights fetched)."""

    def adapt(self, data: D, net: torch.nn.Module) -> D:
        """The data as the built model needs them (e.g. a pretrained model's normalisation)."""
        return data

    @abstractmethod
    def loaders(self, data: D, cfg: RunConfig, device: torch.device, channels_last: bool,
                rank: int, world: int) -> tuple[Any, Any, Any]:
        """(train, val, test) loaders with the `BatchLoader` interface."""

    @abstractmethod
    def checkpoint_meta(self, data: D) -> dict[str, Any]:
        """What `predict` and the report need beside the weights."""

    @abstractmethod
    def dataset_doc(self, data: D) -> dict[str, Any]:
        """The `resolved.dataset` section of config.yaml."""

    # ------------------------------------------------------------------ optimisation and metrics

    @abstractmethod
    def loss(self, outputs: torch.Tensor, target: torch.Tensor, label_smoothing: float) -> torch.Tensor: ...

    def correct(self, outputs: torch.Tensor, target: torch.Tensor) -> torch.Tensor | None:
        """Correct predictions in a batch, for the training accuracy (None: no accuracy)."""
        return None

    @abstractmethod
    def evaluate(self, model: torch.nn.Module, loader: Any, *, tta: bool = False,
                 keep_outputs: bool = False, autocast: Any = None) -> Any:
        """An `Evaluation` (loss, accuracy or NaN, outputs when `keep_outputs`)."""

    @abstractmethod
    def test_metrics(self, ev: Any, data: D) -> dict[str, Any]:
        """The task's test metrics for metrics.json (the run adds params, seconds, epochs)."""

    def extra_metrics(self, net: torch.nn.Module, data: D, cfg: RunConfig, device: Any) -> dict[str, Any]:
        """Metrics beyond the test set's that the task reports (default: none)."""
        return {}

    @abstractmethod
    def prediction_arrays(self, ev: Any, data: D) -> dict[str, np.ndarray]:
        """The arrays of predictions.npz."""

    # ------------------------------------------------------------------ what a finished run shows

    @abstractmethod
    def result_line(self, metrics: dict[str, Any]) -> str:
        """What `visionstudy train` prints for a finished run (its metrics.json)."""

    def metric_rows(self, metrics: dict[str, Any]) -> list[tuple[str, Any]]:
        """The run report's summary rows read from metrics.json (classification's come from its
        predictions instead)."""
        return []

    def metric_cards(self, metrics: dict[str, Any]) -> list[tuple[str, str]]:
        """The run report's headline cards read from metrics.json."""
        return []


TASKS: Registry[Task[Any]] = Registry("task")


T = TypeVar("T", bound=type[Task[Any]])


def register_task(cls: T) -> T:
    TASKS.add(cls.name, cls())
    return cls


def get_task(name: str) -> Task[Any]:
    return TASKS.get(name, "task")


def list_tasks() -> list[str]:
    return TASKS.names()


def task_of(cfg: RunConfig) -> Task[Any]:
    """The task of a run: declared by its dataset source."""
    return task_of_dataset(cfg.data.dataset)


def task_of_dataset(dataset: str) -> Task[Any]:
    from visionstudy.data import get_source

    return get_task(get_source(dataset).task)


def task_of_metrics(metrics: dict[str, Any]) -> Task[Any]:
    """The task of a finished run, from its metrics.json (older runs: classification)."""
    name = metrics.get("task", "classification")
    return get_task(name if name in TASKS.names() else "classification")
