"""Typed configs: one per stage, composed into the `RunConfig` of one training run.

Every field has a default and a description; a bad value fails at load time with a message naming the
field, the value and what is allowed. This module holds schemas only and imports no stage: the checks
that need a registry (a model's own parameters, dataset and augmentation names, what a task accepts)
are in `visionstudy.validate`, which the loaders call.
"""

from __future__ import annotations

import copy
import functools
import numbers
import re
import types
import typing
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from visionstudy.errors import ConfigError
from visionstudy.registry import Registry

SEED_MAX = 2**32 - 1  # numpy's and torch's seeds are 32-bit: larger ones crash when training starts
Seed = Annotated[int, Field(ge=0, le=SEED_MAX)]


def scalar_kinds(annotation: Any) -> set[type]:
    """The scalar types a field's annotation admits: `int | None` → {int, NoneType}."""
    if typing.get_origin(annotation) is Annotated:
        return scalar_kinds(typing.get_args(annotation)[0])
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return set().union(*(scalar_kinds(a) for a in typing.get_args(annotation)))
    if typing.get_origin(annotation) is Literal:
        return {type(a) for a in typing.get_args(annotation)}
    return {annotation} if isinstance(annotation, type) else set()


def item_kinds(annotation: Any) -> set[type]:
    """The scalar types of a list or tuple field's items: `list[int] | None` → {int}."""
    if typing.get_origin(annotation) is Annotated:
        return item_kinds(typing.get_args(annotation)[0])
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return set().union(*(item_kinds(a) for a in typing.get_args(annotation)))
    if typing.get_origin(annotation) in (list, tuple):
        return set().union(*(scalar_kinds(a) for a in typing.get_args(annotation) if a is not Ellipsis))
    return set()


def unquoted_fits(text: str, numeric: bool) -> bool:
    """Whether `text` without its quotes is what the field takes ('1e-3' for a number, 'true'
    for a flag): only then is "write it without quotes" the fix."""
    if not numeric:
        return text.strip().lower() in ("true", "false", "yes", "no", "on", "off")
    try:
        float(text)
    except ValueError:
        return False
    return True


def exact_scalar(kinds: set[type], value: Any) -> Any:
    """Numbers and booleans are what was written: `true` is no seed, `"7"` no epoch count and 1
    no boolean (pydantic would coerce each silently). Raises ValueError with the fix."""
    numeric = bool(kinds & {int, float})
    if isinstance(value, bool) and bool not in kinds and numeric:
        raise ValueError(f"expected a number, not the boolean {str(value).lower()}")
    if isinstance(value, str) and str not in kinds and (numeric or bool in kinds) and Path not in kinds:
        what = "a number" if numeric else "true or false"
        raise ValueError(f"expected {what}, not the text {value[:40]!r}"
                         + ("; write it without quotes" if unquoted_fits(value, numeric) else ""))
    if bool in kinds and not numeric and isinstance(value, int | float) and not isinstance(value, bool):
        raise ValueError(f"expected true or false, not the number {value}")
    return value


@functools.cache
def field_kinds(model: type[BaseModel], name: str) -> tuple[set[type], set[type]] | None:
    """(scalar kinds, list item kinds) of a model's field, worked out once per field."""
    field = model.model_fields.get(name)
    return None if field is None else (scalar_kinds(field.annotation), item_kinds(field.annotation))


class Exact(BaseModel):
    """Base of every config section: numbers and booleans are not coerced from other types."""

    @field_validator("*", mode="before")
    @classmethod
    def _exact(cls, value: Any, info: ValidationInfo) -> Any:
        kinds = field_kinds(cls, info.field_name or "")
        if kinds is None:
            return value
        if isinstance(value, list | tuple):
            return [exact_scalar(kinds[1], v) for v in value] if kinds[1] else value
        return exact_scalar(kinds[0], value)


class Strict(Exact):
    """Unknown keys are errors: a typo must never be silently ignored."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class AugmentSpec(Strict):
    """One augmentation by name with its parameters, e.g. {name: crop, padding: 4}."""

    model_config = ConfigDict(extra="allow", allow_inf_nan=False)
    name: str = Field(description="augmentation name, see `visionstudy.data.list_augmentations()`")


class ChannelStats(Strict):
    """Fixed normalisation constants, one per channel, on the 0..1 pixel scale (seed 001's CIFAR-100
    mean 0.5071, 0.4865, 0.4409 / std 0.2673, 0.2564, 0.2762)."""

    mean: list[Annotated[float, Field(ge=0, le=1)]] = Field(min_length=1, description="per channel")
    std: list[Annotated[float, Field(gt=0)]] = Field(min_length=1, description="per channel, > 0")

    @model_validator(mode="after")
    def _same_length(self) -> ChannelStats:
        if len(self.mean) != len(self.std):
            raise ValueError(f"mean has {len(self.mean)} values and std {len(self.std)}: give one per "
                             "channel")
        return self

    def for_channels(self, channels: int, dataset: str) -> tuple[tuple[float, ...], tuple[float, ...]]:
        """(mean, std) for images with `channels` channels, or the error naming both counts."""
        if len(self.mean) != channels:
            raise ConfigError(f"data.normalize: {len(self.mean)} means and stds, but {dataset} images have "
                              f"{channels} channel{'s' if channels > 1 else ''}; give {channels} of each")
        return tuple(self.mean), tuple(self.std)


Normalize = Annotated[
    Annotated[bool, Tag("true or false")] | Annotated[ChannelStats, Tag("constants")],
    Discriminator(lambda v: "constants" if isinstance(v, dict | ChannelStats) else "true or false"),
]


class SetsConfig(Strict):
    """`dataset: sets`: the seeded synthetic set-regression task of `visionstudy.data.sets`."""

    size: int = Field(10, ge=2, description="elements per set")
    dim: int = Field(3, ge=1, description="dimensions of each element")
    train: int = Field(8000, ge=10, description="training sets")
    val: int = Field(1000, ge=10, description="validation sets")
    test: int = Field(1000, ge=10, description="test sets")
    noise: float = Field(0.3, ge=0, description="standard deviation of the target noise")
    target: Literal["element", "set"] = Field(
        "element", description="one target per element (equivariant) or per set (invariant)"
    )


class DataConfig(Strict):
    dataset: str = Field("digits", description="dataset name, see `visionstudy datasets list`")
    split: str | None = Field(None, description="dataset variant, e.g. EMNIST 'balanced'")
    label: Literal["fine", "coarse"] = Field("fine", description="CIFAR-100 label set")
    path: Path | None = Field(None, description="imagefolder: the folder of class subfolders")
    image_size: int | None = Field(None, ge=4, le=1024, description="imagefolder: resize to this")
    channels: Literal[1, 3] | None = Field(None, description="imagefolder: 1 grayscale, 3 RGB")
    classes: str | list[str] | None = Field(
        None, description="class subset: 'first:N' or a list of class names; labels re-indexed"
    )
    test_fraction: float = Field(
        0.2, gt=0.0, lt=1.0, description="imagefolder without a test/ folder: share held out"
    )
    val_fraction: float = Field(
        0.2, ge=0.0, lt=1.0, description="share of the training split held out for validation; 0: "
        "none, train on the whole training split (no early stopping or best checkpoint then)"
    )
    validation: Literal["split", "test"] = Field(
        "split", description="split: validate on data held out of the training split (or a fold, or "
        "the dataset's own validation split); test: on the test set each epoch, as Keras' "
        "validation_data (test numbers are then optimistic)"
    )
    split_seed: Seed = Field(0, description="seed of the stratified train/val split and the folds")
    folds: int | None = Field(None, ge=2, description="k-fold CV: number of folds")
    fold: int | None = Field(None, ge=0, description="k-fold CV: the fold used for validation")
    max_train_samples: int | None = Field(
        None, ge=1, description="stratified subsample of the training split (quick runs)"
    )
    normalize: Normalize = Field(
        True, description="true: per-channel mean/std of the training split; false: pixels scaled to "
        "0..1 only; {mean: [...], std: [...]}: these constants (0..1 scale, one per channel)")
    augment: list[AugmentSpec] = Field(
        default_factory=list, description="training augmentations, in order"
    )
    sets: SetsConfig = Field(default_factory=SetsConfig, description="dataset 'sets' only")
    data_dir: Path | None = Field(None, description="offline mirror or cache folder")
    verify: bool = Field(True, description="verify checksums of the dataset files")
    download: bool = Field(True, description="download from the official URL when missing")

    @property
    def validates_on(self) -> Literal["split", "test", "none"]:
        """What the run validates on: held-out training data, the test set, or nothing."""
        if self.validation == "test":
            return "test"
        return "none" if self.val_fraction == 0 and self.folds is None else "split"

    def fold_problem(self) -> str | None:
        """What is wrong with `fold`/`folds`: a k-fold run gives both, with 0 <= fold < folds."""
        if self.folds is None and self.fold is None:
            return None
        if self.folds is None or self.fold is None or self.fold >= self.folds:
            return (f"data.fold={self.fold}, data.folds={self.folds}: a k-fold run validates on one "
                    "fold of folds; give both, with 0 <= fold < folds (a study's `cv: {folds: K}` runs "
                    "every fold)")
        return None

    @field_validator("classes", mode="before")
    @classmethod
    def _digit_names(cls, value: Any) -> Any:
        """`classes: [0, 1, 7]` names digits' classes as YAML reads them, whole numbers: their
        names are the strings '0', '1', '7' (it was "Input should be a valid string")."""
        if isinstance(value, list):
            return [str(v) if isinstance(v, int) and not isinstance(v, bool) else v for v in value]
        return value

    @field_validator("augment", mode="before")
    @classmethod
    def _augment_forms(cls, value: Any) -> Any:
        """Accept `[crop, flip]`, `crop,flip`, `{crop: {padding: 4}}` and `[{name: crop}]`."""
        if value is None:
            return []
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        if isinstance(value, dict):
            value = [{"name": k, **(v or {})} for k, v in value.items()]
        if isinstance(value, list):
            return [{"name": v} if isinstance(v, str) else v for v in value]
        return value


class ModelConfig(Exact):
    """`name` picks the model; the other keys are that model's parameters (checked by its class)."""

    model_config = ConfigDict(extra="allow", allow_inf_nan=False)
    name: str = Field("cnn", description="model name, see `visionstudy.models.list_models()`")

    def params(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class Params(Exact):
    """Base of a registered entry's own parameter class: unknown keys and non-finite numbers
    are errors."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    def check(self) -> None:
        """Consistency checks between fields (raise ValueError with the reason)."""


class Pluggable(Exact):
    """A pluggable section, `{name: ..., **params}`: `name` picks a registered entry, which checks
    the other keys with its own `Params` class (`visionstudy.validate`)."""

    model_config = ConfigDict(extra="allow", allow_inf_nan=False)
    name: str

    @model_validator(mode="before")
    @classmethod
    def _not_a_name_alone(cls, value: Any) -> Any:
        if isinstance(value, str):  # not read as {name: ...}: a variant's {lr: 0.1} would replace it whole
            raise ValueError(f"write {{name: {value}}}: a section of a name and its keys, not the name alone")
        return value

    def params(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class HasParams(typing.Protocol):
    """A registered entry (optimizer, schedule, sampler, pruner): its own parameter class."""

    params: type[Params]


def entry_params(registry: Registry[Any], section: Pluggable, field: str) -> Params:
    """The section's own keys checked by its entry's `params` class and its `check`; errors
    name `field.key`, an unknown key with the nearest of the entry's and the section's keys."""
    entry: HasParams = registry.get(section.name, f"{field}.name")
    try:
        p = entry.params.model_validate(section.params())
        p.check()
    except ValidationError as exc:
        shared = list(type(section).model_fields)
        raise ConfigError(format_validation_error(exc, field, entry.params, shared)) from None
    except ValueError as exc:
        raise ConfigError(f"{field}: {exc}") from None
    return p


class OptimizerConfig(Pluggable):
    """`name` (see `visionstudy.training.optim.list_optimizers()`), `lr`, and that optimizer's own keys:
    sgd: momentum, nesterov, weight_decay; adam / adamw / nadam / radam / adamax: betas, eps,
    weight_decay; rmsprop: alpha, eps, momentum, weight_decay; adagrad: eps, weight_decay; adadelta:
    rho, eps, weight_decay."""

    name: str = Field("adam", description="optimizer, see `visionstudy.training.optim.list_optimizers()`")
    lr: float = Field(1e-3, gt=0, description="base learning rate")


class SchedulerConfig(Pluggable):
    """`name` (see `visionstudy.training.optim.list_schedules()`), `warmup_epochs`, and that schedule's own
    keys: step: step_size, gamma; multistep: milestones, gamma; exponential: gamma; cosine: min_lr;
    cosine_restarts: first, mult, min_lr; onecycle: max_lr, pct_start; plateau: factor, patience,
    monitor, min_lr; halve: every."""

    name: str = Field("none", description="learning-rate schedule, see "
                      "`visionstudy.training.optim.list_schedules()`")
    warmup_epochs: int = Field(0, ge=0, description="linear warm-up from lr/10 before the schedule")


class EarlyStoppingConfig(Strict):
    monitor: Literal["val_loss", "val_accuracy"] = Field("val_loss", description="metric watched")
    patience: int = Field(10, ge=1, description="epochs without improvement before stopping")
    min_delta: float = Field(0.0, ge=0, description="smallest change that counts as improvement")


class TrainConfig(Strict):
    epochs: int = Field(10, ge=1, description="maximum number of epochs")
    batch_size: int = Field(128, ge=1, description="training batch size (per process)")
    eval_batch_size: int = Field(1024, ge=1, description="evaluation batch size (on a CPU at most 256)")
    optimizer: OptimizerConfig = Field(default_factory=OptimizerConfig)
    scheduler: SchedulerConfig = Field(default_factory=SchedulerConfig)
    label_smoothing: float = Field(0.0, ge=0, lt=1, description="cross-entropy label smoothing")
    l1: float = Field(0.0, ge=0, description="explicit L1 penalty on weights (not biases/norms)")
    l2: float = Field(0.0, ge=0, description="explicit L2 penalty on weights (not biases/norms)")
    grad_clip: float | None = Field(None, gt=0, description="clip the gradient norm to this")
    ema: float | None = Field(
        None, gt=0, lt=1, description="evaluate an exponential moving average of the weights with this "
        "decay per step (e.g. 0.999; warm-up min(decay, (1+t)/(10+t))): validation, checkpoints and test")
    early_stopping: EarlyStoppingConfig | None = Field(None, description="stop on no improvement")
    monitor: Literal["val_loss", "val_accuracy"] | None = Field(
        None, description="validation metric that picks the best checkpoint (default: the task's: "
        "val_accuracy for classification, val_loss for regression)"
    )
    restore_best: bool | None = Field(
        None, description="evaluate the best-validation checkpoint on the test set (default: yes "
        "when there is a validation set; false: the last epoch's weights)")
    log_every_n_steps: int | None = Field(
        None, ge=1, description="also record the training loss, accuracy and lr every N batches "
        "(steps.csv: per-batch curves); costs one host sync per record")
    tta: bool = Field(False, description="test-time augmentation: average with the h-flipped image")
    precision: Literal["auto", "32", "bf16"] = Field(
        "auto", description="auto: bf16 autocast on CUDA, fp32 on CPU"
    )
    channels_last: Literal["auto", "on", "off"] = Field(
        "auto", description="memory layout; auto: on for convolutional models"
    )
    compile: bool = Field(False, description="torch.compile the model (CUDA)")
    devices: int = Field(1, ge=1, description="data-parallel processes (GPUs, or CPU processes)")
    threads: int | None = Field(None, ge=1, description="CPU threads (default: all cores)")

    @field_validator("precision", mode="before")
    @classmethod
    def _precision_str(cls, value: Any) -> Any:
        return str(value) if isinstance(value, int) else value

    @field_validator("channels_last", mode="before")
    @classmethod
    def _bool_layout(cls, value: Any) -> Any:
        return {True: "on", False: "off"}.get(value, value) if isinstance(value, bool) else value


NAME_BYTES = 200  # a name's longest: one folder name (255 bytes) with room for suffixes
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+=,-]*$")


DEVICES = ("auto", "cpu", "cuda")  # where runs train: --device (auto: a GPU where there is one)


def check_device(device: str, name: str = "--device") -> str:
    """--device as given to train, study run/work and the API (`name`: `device`, said `device='tpu'`),
    in any case (`CPU`); checked before anything is queued."""
    if not isinstance(device, str) or device.lower() not in DEVICES:
        given = f"{name} {device!r}" if name.startswith("--") else f"{name}={device!r}"
        raise ConfigError(f"{given}: choose {', '.join(DEVICES[:-1])} or {DEVICES[-1]}")
    return device.lower()


def check_count(value: Any, what: str, least: int = 1, most: int | None = None) -> int:
    """A whole-number argument of the API (workers, top_k, a job count) or a CLI option (a seed:
    `most=SEED_MAX`): anything else is one ConfigError naming it, not a TypeError from deep inside,
    a library's traceback or a call that quietly does nothing."""
    whole = not isinstance(value, bool) and isinstance(value, numbers.Integral)
    if not whole or not least <= int(value) <= (most if most is not None else int(value)):
        span = f"{least} or more" if most is None else f"from {least} to {most}"
        raise ConfigError(f"{what}={value!r}: give a whole number, {span}")
    return int(value)  # NumPy's integers too


def check_name(value: str, what: str = "a run name") -> str:
    """The one rule for every name that becomes a folder (runs, studies, variants): ASCII letters,
    digits and _ . + = , - (no spaces, '/', wildcards or control characters), starting with a
    letter or digit, at most NAME_BYTES bytes. Raises ValueError with the fix."""
    if not NAME.match(value):
        raise ValueError(f"{what} names a folder: use ASCII letters, digits and _ . + = , - (starting "
                         "with a letter or digit; no spaces, accents, '/', '*', '?' or control characters)")
    if len(value.encode()) > NAME_BYTES:
        raise ValueError(f"{what} names one folder of at most {NAME_BYTES} bytes (file systems allow 255, "
                         f"and reports and exports add to it); this one has {len(value.encode())}")
    return value


class RunConfig(Strict):
    """Everything one training run needs."""

    name: str = Field("run", description="run name: the default folder runs/<name> (one path component)")
    seed: Seed = Field(0, description="seed of weights, shuffling and augmentation (0 to 2^32 - 1)")
    data: DataConfig = Field(default_factory=DataConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)

    @field_validator("name")
    @classmethod
    def _one_component(cls, value: str) -> str:
        return check_name(value, "a run name")


# --------------------------------------------------------------------------------------- loading


def plain_copy(value: Any) -> Any:
    """A deep copy of config data: dicts and lists rebuilt, numbers, text and other immutable leaves
    shared (copy.deepcopy made expanding a 10,001-run sweep several times slower)."""
    if isinstance(value, dict):
        return {k: plain_copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain_copy(v) for v in value]
    if value is None or isinstance(value, str | int | float | bool | tuple):
        return value
    return copy.deepcopy(value)


def deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """A copy of `base` with `override` merged in; nested dicts merge, everything else replaces."""
    out: dict[str, Any] = plain_copy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = plain_copy(value)
    return out


# path → (the default entry, the keys every entry shares: they carry over when the entry changes)
PLUGGABLE = {("model",): ("cnn", ()), ("train", "optimizer"): ("adam", ("lr",)),
             ("train", "scheduler"): ("none", ("warmup_epochs",))}


def flatten(doc: dict[str, Any], prefix: str = "",
            leaf: Callable[[dict[str, Any]], bool] | None = None) -> dict[str, Any]:
    """The dotted keys of a nested config: {'train': {'optimizer': {'lr': 0.1}}} →
    {'train.optimizer.lr': 0.1} (lists kept whole): what `--set` and sweeps name. `leaf`: a
    mapping it accepts is a value, not a level of keys (a search parameter)."""
    out: dict[str, Any] = {}
    for k, v in doc.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and v and not (leaf and leaf(v)):
            out.update(flatten(v, key + ".", leaf))
        else:
            out[key] = v
    return out


def merge_run(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Deep-merge an override onto a run config. Naming another entry in a pluggable section
    (model, optimizer, schedule) replaces that section but for the keys every entry shares (the
    optimizer's `lr`, the schedule's `warmup_epochs`): a CNN's `channels` mean nothing to a
    ResNet, SGD's `momentum` nothing to Adam, so they are not carried over."""
    base = plain_copy(base)
    for path, (default, common) in PLUGGABLE.items():
        old: Any = base
        new: Any = override
        for part in path[:-1]:
            old = old.get(part) if isinstance(old, dict) else None
            new = new.get(part) if isinstance(new, dict) else None
        if not (isinstance(old, dict) and isinstance(new, dict)):
            continue
        before, after = old.get(path[-1]), new.get(path[-1])
        if (isinstance(before, dict) and isinstance(after, dict) and "name" in after
                and after["name"] != before.get("name", default)):
            old[path[-1]] = {k: v for k, v in before.items() if k in common}
    return deep_merge(base, override)


def dotted(key: str, value: Any) -> dict[str, Any]:
    """'train.optimizer.lr', 0.01 → {'train': {'optimizer': {'lr': 0.01}}}."""
    out: dict[str, Any] = {}
    node = out
    parts = key.split(".")
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = value
    return out


def lookup(raw: dict[str, Any], key: str) -> Any:
    """The value at dotted `key` of a nested config, or None."""
    node: Any = raw
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def is_index(part: str) -> bool:
    """A part of a dotted key that indexes a list: 0, 1, ... or from the end -1, -2, ..."""
    return part.removeprefix("-").isdigit()


def indexed(raw: dict[str, Any], key: str) -> Any:
    """`lookup` that also follows numeric parts into lists."""
    node: Any = raw
    for part in key.split("."):
        if isinstance(node, list) and is_index(part) and -len(node) <= int(part) < len(node):
            node = node[int(part)]
        elif isinstance(node, dict) and part in node:
            node = node[part]
        else:
            return None
    return node


def parse_override(text: str) -> dict[str, Any]:
    """'train.optimizer.lr=0.01' → {'train': {'optimizer': {'lr': 0.01}}} (value parsed as YAML)."""
    return dotted(*override_pair(text))


def override_pair(text: str) -> tuple[str, Any]:
    """'train.optimizer.lr=0.01' → ('train.optimizer.lr', 0.01) (value parsed as YAML)."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"--set {text!r}: expected KEY=VALUE, e.g. --set train.epochs=5")
    try:
        value = load_yaml_text(raw) if raw.strip() else ""
    except yaml.YAMLError as exc:
        raise ConfigError(f"--set {text!r}: the value is not valid YAML ({exc})") from None
    return key.strip(), value


Defaults = Callable[[dict[str, Any]], dict[str, Any] | None]  # a config → it with its defaults, or None


def key_override(raw: dict[str, Any], key: str, value: Any,
                 defaults: Defaults | None = None) -> dict[str, Any]:
    """The override that sets dotted `key` to `value` on config `raw`. A numeric part indexes a
    list: 'model.channels.0' = 48 on channels [32, 64] gives {'model': {'channels': [48, 64]}},
    and -1 its last element (a mapping's numeric key stays a key). `defaults(raw)`: the config
    with its defaults, where a list `raw` does not write is looked up."""
    parts = key.split(".")
    if not all(parts):
        raise ConfigError(f"{key}: a dotted key with an empty part; name each level, e.g. "
                          "train.optimizer.lr")
    for i, part in enumerate(parts):
        if not is_index(part) or i == 0:
            continue
        head = ".".join(parts[:i])
        current = lookup(raw, head)
        if current is None and defaults is not None:
            current = lookup(defaults(raw) or {}, head)
        if isinstance(current, dict):
            continue
        if not isinstance(current, list) or not -len(current) <= int(part) < len(current):
            raise ConfigError(f"{key}: {head} must be a list with an element {part} (got {current!r}); "
                              "give the whole list instead")
        new = copy.deepcopy(current)
        rest = ".".join(parts[i + 1:])
        inner = new[int(part)]
        if rest and not isinstance(inner, dict):
            raise ConfigError(f"{key}: {head}.{part} is {inner!r}, which has no keys; set "
                              f"{head}.{part} itself")
        new[int(part)] = merge_run(inner, key_override(inner, rest, value)) if rest else value
        return dotted(head, new)
    return dotted(key, value)


def overrides_under(overrides: Sequence[str], sections: Sequence[str]) -> tuple[list[str], list[str]]:
    """The `--set` overrides whose key is in one of `sections` (`train.epochs=2` is in train), and
    the others, each in order."""
    inside = [o for o in overrides if next(iter(parse_override(o))) in sections]
    return inside, [o for o in overrides if o not in inside]


def apply_overrides(raw: dict[str, Any], overrides: Sequence[str],
                    defaults: Defaults | None = None) -> dict[str, Any]:
    """`raw` with each `--set KEY=VALUE` merged in, in order (the last word wins); a numeric part
    of KEY indexes a list (`key_override`, with `defaults`)."""
    for text in overrides:
        key, value = override_pair(text)  # its own errors name the --set
        try:
            raw = merge_run(raw, key_override(raw, key, value, defaults))
        except ConfigError as exc:
            raise ConfigError(f"--set {text}: {exc}") from None
    return raw


MAX_YAML_BYTES = 4 * 2**20  # a study file is a few kB; a 10,001-point sweep is a few hundred
MAX_VALUES = 1_000_000  # values once aliases are expanded: aliases of aliases grow exponentially
YAML12_FLOAT = re.compile(r"""^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)[eE][-+]?[0-9]+$""")


class UniqueKeyLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """YAML's safe loader (libyaml's parser where PyYAML has it: much faster on a large
    sweep, and it refuses nesting deeper than 1,000 levels) with two changes: a key written twice
    in one mapping is an error (PyYAML keeps the last silently, so a second `train:` would replace
    the first); and `1e-3` is a number as in YAML 1.2 and JSON (PyYAML reads YAML 1.1, where it is
    text)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue  # `<<: *base` keys are meant to be overridden
            key = self.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            try:
                if key in seen:
                    raise DuplicateKeyError(key, seen[key], line)
                seen[key] = line
            except TypeError:
                continue  # an unhashable key: the base constructor reports it
        mapping: dict[Any, Any] = super().construct_mapping(node, deep=deep)
        return mapping


UniqueKeyLoader.add_implicit_resolver("tag:yaml.org,2002:float", YAML12_FLOAT, list("-+0123456789."))


class RefusedYaml(yaml.YAMLError):
    """Valid YAML we refuse (its message is the whole story): a duplicate key, too large."""


class DuplicateKeyError(RefusedYaml):
    def __init__(self, key: Any, first: int, second: int) -> None:
        where = f"lines {first} and {second}" if first != second else f"both on line {first}"
        super().__init__(f"key {key!r} is written twice ({where}); YAML would keep only the "
                         "second: merge them or remove one")


def load_yaml_text(text: str) -> Any:
    """Parse YAML text with duplicate keys refused (raises yaml.YAMLError)."""
    if len(text) > MAX_YAML_BYTES:
        raise RefusedYaml(f"{len(text) / 2**20:.1f} MB of YAML; a config is at most "
                             f"{MAX_YAML_BYTES // 2**20} MB")
    data = yaml.load(text, Loader=UniqueKeyLoader)  # noqa: S506 (a SafeLoader subclass)
    if expanded_size(data, {}) > MAX_VALUES:
        raise RefusedYaml(f"its aliases (*name) expand to more than {MAX_VALUES:,} values; a config "
                             "repeats a few blocks at most")
    return data


def expanded_size(node: Any, seen: dict[int, int]) -> int:
    """How many values `node` holds with every alias expanded, counted once per distinct object
    (aliases share objects), so a billion laughs costs its few hundred nodes, not 10⁹."""
    if not isinstance(node, dict | list):
        return 1
    if id(node) not in seen:
        seen[id(node)] = 0  # a recursive alias (&a [*a]) counts once
        values = node.values() if isinstance(node, dict) else node
        seen[id(node)] = 1 + sum(expanded_size(v, seen) for v in values)
    return seen[id(node)]


def read_yaml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise ConfigError(f"{path}: no such config file")
    try:
        data = load_yaml_text(path.read_text())
    except RefusedYaml as exc:
        raise ConfigError(f"{path}: {exc}") from None
    except yaml.YAMLError as exc:
        if "maximum nesting depth" in str(exc):  # libyaml's limit: the same error as Python's below
            raise too_deep(path) from None
        tab = "\n(a tab indents a line there: YAML indents with spaces)" if tab_at(path, exc) else ""
        raise ConfigError(f"{path}: not valid YAML: {exc}{tab}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read the file ({exc})") from None
    except RecursionError:
        raise too_deep(path) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of sections (data, model, train, ...)")
    return data


def tab_at(path: Path, exc: yaml.YAMLError) -> bool:
    """Whether the line YAML stopped at starts with a tab (an editor's indent: no token starts so)."""
    mark = getattr(exc, "problem_mark", None)
    if mark is None:
        return False
    try:
        lines = path.read_text().splitlines()
    except (OSError, UnicodeDecodeError):
        return False
    return mark.line < len(lines) and "\t" in lines[mark.line][:mark.column + 1]


def too_deep(path: Path) -> ConfigError:
    return ConfigError(f"{path}: nested too deeply to read (thousands of levels); a config is a few "
                       "levels of sections and values")


def few(items: Sequence[str], most: int = 5) -> str:
    """The first `most` of `items` as an error message lists them, then '...' if there are more."""
    return ", ".join(items[:most]) + (", ..." if len(items) > most else "")


def short_repr(value: Any) -> str:
    """A value as an error message quotes it: a few levels, items and characters, never the whole
    of a huge or self-multiplying (YAML aliases) input."""
    import reprlib

    r = reprlib.Repr()
    r.maxlevel, r.maxdict, r.maxlist, r.maxtuple, r.maxset = 2, 6, 6, 6, 6
    r.maxstring, r.maxother, r.maxlong = 120, 120, 60
    return r.repr(value)


UNION_MEMBER = re.compile(  # how pydantic names a union's member in an error's location
    r"(int|float|str|bool|none|constrained-\w+|(list|dict|tuple|set|function-\w+)\[.*\])")
PYTHON_TAG = {bool: "bool", int: "int", float: "float", str: "str", list: "list", dict: "dict"}


def union_member(part: Any) -> bool:
    return isinstance(part, str) and UNION_MEMBER.fullmatch(part) is not None


def one_member(errors: list[Any]) -> list[Any]:
    """A union's errors (pydantic gives one per member it tried: 'seeds.int: ...' and
    'seeds.list[constrained-int].0: ...') cut to the member the input meant: the one that got
    deepest into it, else the one of the input's type; the member's name leaves the location. Where
    no member fits, their messages are one line: 'a valid dictionary or a valid list'."""
    groups: dict[tuple[Any, ...], list[tuple[int, Any]]] = {}
    out: list[Any] = []
    for err in errors:
        at = next((i for i, part in enumerate(err["loc"]) if union_member(part)), None)
        if at is None:
            out.append(err)
        else:
            groups.setdefault(tuple(err["loc"][:at]), []).append((at, err))
    for place, members in groups.items():
        depth: dict[str, int] = {}  # each member's deepest error
        for at, e in members:
            depth[e["loc"][at]] = max(depth.get(e["loc"][at], 0), len(e["loc"]) - at)
        kind = PYTHON_TAG.get(type(members[0][1].get("input")), "?")
        tags = [t for t, d in depth.items() if d == max(depth.values())]
        tags = [t for t in tags if t in (kind, f"constrained-{kind}") or t.startswith(f"{kind}[")] or tags
        chosen = [(at, e) for at, e in members if e["loc"][at] in tags]
        trimmed = [{**e, "loc": (*e["loc"][:at], *e["loc"][at + 1:])} for at, e in chosen]
        if len(trimmed) > 1 and all(e["loc"] == place for e in trimmed):
            messages = [trimmed[0]["msg"]] + [e["msg"].removeprefix("Input should be ") for e in trimmed[1:]]
            trimmed = [{**trimmed[0], "msg": " or ".join(messages)}]
        out.extend(one_member(trimmed))
    return out


def nested_models(annotation: Any) -> list[type[BaseModel]]:
    """The pydantic models an annotation holds (`OptimizerConfig | None`, `list[AugmentSpec]`)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in typing.get_args(annotation) for m in nested_models(arg)]


def model_at(schema: type[BaseModel] | None, loc: Sequence[Any]) -> type[BaseModel] | None:
    """The model at `loc` (a location in `schema`'s input); None where unclear."""
    for part in loc:
        if schema is None:
            return None
        if isinstance(part, int):  # an element of a list: the same model
            continue
        field = schema.model_fields.get(str(part))
        models = nested_models(field.annotation) if field else []
        schema = models[0] if len(models) == 1 else None
    return schema


def keys_at(schema: type[BaseModel] | None, loc: Sequence[Any]) -> list[str]:
    """The keys the model at `loc` (a location in `schema`'s input) takes; [] where unclear."""
    model = model_at(schema, loc)
    return [] if model is None else [f.alias or name for name, f in model.model_fields.items()]


def section_model(annotation: Any) -> type[BaseModel] | None:
    """The model of a section (`TrainConfig`, `EarlyStoppingConfig | None`); None for a list's
    entries (an augmentation's `name` is no key of `data` written a level too high) or a union."""
    union = typing.get_origin(annotation) in (typing.Union, types.UnionType)
    args = [a for a in typing.get_args(annotation) if a is not type(None)] if union else [annotation]
    if len(args) == 1 and isinstance(args[0], type) and issubclass(args[0], BaseModel):
        return args[0]
    return None


def keys_below(schema: type[BaseModel] | None, depth: int = 3) -> dict[str, list[str]]:
    """Each key of the sections inside `schema`, down `depth` levels, with the dotted paths that
    hold it, shallowest first ('epochs' → ['train.epochs']): a key written a level too high."""
    found: dict[str, list[str]] = {}
    level = [("", schema)] if schema is not None else []
    for _ in range(depth):
        below = []
        for path, model in level:
            for name, f in model.model_fields.items():
                section = section_model(f.annotation)
                if section is not None:
                    inner = ".".join(p for p in (path, f.alias or name) if p)
                    below.append((inner, section))
                    for sub, g in section.model_fields.items():
                        found.setdefault(g.alias or sub, []).append(f"{inner}.{g.alias or sub}")
        level = below
    return found


def unknown_key(where: str, key: str, known: list[str], below: dict[str, list[str]] | None = None) -> str:
    """'model.hiddn: unknown key; did you mean hidden?', 'epochs: ... did you mean train.epochs?'
    (a key of a section below, `below` as `keys_below` gives it), or the keys there, when few."""
    import difflib

    if below and key in below:
        parent = where.rpartition(".")[0]
        paths = [".".join(p for p in (parent, path) if p) for path in below[key][:2]]
        return f"{where}: unknown key; did you mean {' or '.join(paths)}?"
    moved, synonym = other_section(where, key)
    if moved:
        return f"{where}: unknown key; did you mean {moved}?"
    close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
    if close:
        return f"{where}: unknown key; did you mean {close[0]}?"
    meant = f"did you mean {synonym}?" if synonym else ""
    if known and len(known) <= 24:  # a run section has 20
        return f"{where}: unknown key; the keys here: {', '.join(known)}" + (f"; {meant}" if meant else "")
    return f"{where}: unknown key; {meant or 'check the spelling'}"


# keys other tools (Keras, timm, Lightning) or habit put in a run config's section → where ours live
MEANT = {"data.name": "data.dataset", "train.weight_decay": "train.optimizer.weight_decay",
         "train.momentum": "train.optimizer.momentum", "train.betas": "train.optimizer.betas",
         "model.weight_decay": "train.optimizer.weight_decay"}


def other_section(where: str, key: str) -> tuple[str | None, str | None]:
    """Where a key written in the wrong section of a run config belongs, with `where`'s own leading
    path: the same key in another section ('data.batch_size' → train.batch_size, 'model.lr' →
    train.optimizer.lr, 'variants.w.data.epochs' → variants.w.train.epochs; `name`, in every
    section, is never moved), else another tool's word for one of ours (`MEANT`: 'data.name' →
    data.dataset) as the second item; None where the section is no run section."""
    *lead, section, _ = ["", *where.split(".")]
    paths = keys_below(RunConfig)
    if section not in {p.split(".")[0] for ps in paths.values() for p in ps}:
        return None, None
    elsewhere = [p for p in paths.get(key, []) if p.split(".")[0] != section and key != "name"]
    moved = elsewhere[0] if elsewhere else None
    meant = MEANT.get(f"{section}.{key}")

    def lead_to(path: str | None) -> str | None:
        return ".".join(p for p in [*lead, path] if p) if path else None

    return lead_to(moved), lead_to(meant)


def format_validation_error(exc: ValidationError, prefix: str = "", schema: type[BaseModel] | None = None,
                            shared: Sequence[str] = (), hints: dict[str, str] | None = None) -> str:
    """One line per problem: 'train.optimizer.lr: Input should be greater than 0 (got -1)';
    an unknown key of `schema` (the model validated) gets the key it was likely meant as: the same
    key in a section below it, or the nearest known key, among its own and, at its top, the `shared`
    keys of the section it is an entry of (a schedule's warmup_epochs); `hints` (dotted location →
    text) explain the unknown keys a known mistake writes."""
    lines = []
    for err in one_member(exc.errors()):
        loc = ".".join(str(p) for p in err["loc"])
        where = ".".join(p for p in (prefix, loc) if p)
        got = f" (got {short_repr(err['input'])})" if err["type"] != "missing" and "input" in err else ""
        message = err["msg"].removeprefix("Value error, ")
        if err["type"] == "model_type":  # not "a valid dictionary or instance of OptimizerConfig"
            message = "expected a mapping of keys and values"
            keys = keys_at(schema, err["loc"])
            if isinstance(err.get("input"), str) and "name" in keys:
                got += f"; write {{name: {err['input']}}}"  # `model: cnn`: the section's name alone
            elif keys:  # `early_stopping: 5`: the keys that section takes (patience, ...)
                got += f"; its keys: {', '.join(keys)}"
        if err["type"] == "extra_forbidden" and hints and loc in hints:
            lines.append(f"{where}: unknown key; {hints[loc]}")
        elif err["type"] == "extra_forbidden":
            known = keys_at(schema, err["loc"][:-1]) + (list(shared) if len(err["loc"]) == 1 else [])
            below = keys_below(model_at(schema, err["loc"][:-1]))
            lines.append(unknown_key(where, str(err["loc"][-1]), known, below))
        elif not loc:  # a check across fields: its message names them, the input is the whole mapping
            lines.append(f"{prefix}: {message}" if prefix else message)
        else:
            lines.append(f"{where}: {message}{got}")
    return "\n".join(lines)


FETCH_ONLY = ("verify", "download")  # data fields deciding how files are fetched, not results


def identity(dump: dict[str, Any], *, minimal: bool = False) -> dict[str, Any]:
    """What a run computes, as a comparable mapping: the dump read by today's schema (a field added
    since it was written takes its default, which keeps the old behaviour), without the fields that
    only decide how files are fetched (a study resumed with `--no-verify` keeps its runs).
    `minimal`: only the fields that differ from their defaults, so an identity hash stays the same
    when a later version adds a field."""
    try:
        out = RunConfig.model_validate(dump).model_dump(mode="json", exclude_defaults=minimal)
    except ValidationError:
        out = copy.deepcopy(dump)
    if isinstance(out.get("data"), dict):
        out["data"] = {k: v for k, v in out["data"].items() if k not in FETCH_ONLY}
    return out


def dump_config(cfg: RunConfig) -> dict[str, Any]:
    """A plain mapping that `validate_run_config` loads back to an equal config."""
    return cfg.model_dump(mode="json")
