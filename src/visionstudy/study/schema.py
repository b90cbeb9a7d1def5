"""The study file: what it may hold (its schema, each field with its description) and where it is
read from (a path or `recipe:NAME`). `spec` expands it into runs.

    name: digits-ablation
    data: {dataset: digits}
    model: {name: cnn, channels: [16, 32]}
    train: {epochs: 10}
    seeds: 3
    variants:
      baseline: {}
      batchnorm: {model: {batch_norm: true}}
    sweep: {mode: one-at-a-time, train.optimizer.lr: [1.0e-3, 1.0e-2]}
    cv: {folds: 5}
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError, field_validator, model_validator

from visionstudy.config import (
    NAME,
    SEED_MAX,
    Pluggable,
    RunConfig,
    Seed,
    Strict,
    check_name,
    flatten,
    format_validation_error,
    keys_below,
    read_yaml,
)
from visionstudy.errors import ConfigError

RESERVED = {"report": "report", "search": "search trials'", "slurm": "SLURM job script and logs'",
            "ray": "Ray tasks' logs"}  # folders beside the variants (in any case: macOS's disks ignore it)


class SearchParam(Strict):
    type: Literal["int", "float", "categorical"] = Field(
        description="kind of parameter; left out: categorical with `choices`, else int when low, high "
                    "(and step) are whole numbers as written, else float")
    low: float | None = Field(None, description="int/float: lowest value")
    high: float | None = Field(None, description="int/float: highest value (inclusive)")
    step: float | None = Field(None, gt=0, description="int/float: spacing of the values")
    log: bool = Field(False, description="int/float: sample on a log scale")
    choices: list[Any] | None = Field(None, description="categorical: the values")

    @model_validator(mode="before")
    @classmethod
    def _kind(cls, data: Any) -> Any:
        """`{choices: [...]}` is categorical and `{low: 1, high: 8}` an int range as written: the
        type only needs saying where the values do not tell (`type: float` for `{low: 1, high: 8}`)."""
        if not isinstance(data, dict) or "type" in data:
            return data
        if "choices" in data:
            return {"type": "categorical", **data}
        if "low" in data or "high" in data:
            written = [data.get(k) for k in ("low", "high", "step") if data.get(k) is not None]
            whole = all(isinstance(v, int) and not isinstance(v, bool) for v in written)
            return {"type": "int" if whole else "float", **data}
        return data

    @model_validator(mode="after")
    def _ranges(self) -> SearchParam:
        if self.type == "categorical":
            if not self.choices:
                raise ValueError("categorical: give a non-empty `choices` list")
        elif self.low is None or self.high is None:
            raise ValueError(f"{self.type}: give `low` and `high`")
        elif self.type == "int" and not all(float(v).is_integer() for v in self.numbers().values()):
            values = ", ".join(f"{k} {v:g}" for k, v in self.numbers().items())
            raise ValueError(f"int: low, high and step must be whole numbers ({values}); use type: float "
                             "for fractional values")
        elif not self.low < self.high:
            raise ValueError(f"empty range: low {self.low} must be below high {self.high}")
        elif self.log and self.low <= 0:
            raise ValueError("log scale needs low > 0")
        elif self.log and self.step is not None:
            raise ValueError("`log` and `step` cannot be combined")
        return self

    def numbers(self) -> dict[str, float]:
        """low, high and step, those given."""
        given = {"low": self.low, "high": self.high, "step": self.step}
        return {k: v for k, v in given.items() if v is not None}

    def bounds(self) -> tuple[float, float]:
        """(low, high) of an int or float range (validation made sure both are there)."""
        if self.low is None or self.high is None:
            raise ValueError(f"a {self.type} parameter without low and high")
        return self.low, self.high

    def size(self) -> int | None:
        """How many values it can take: choices, or the points of a stepped range (an int range
        steps by 1; Optuna stops a step short of `high` when the step does not divide the range);
        None for a continuous range."""
        if self.type == "categorical":
            return len(self.choices or [])
        step = self.step or (1.0 if self.type == "int" else None)
        low, high = self.bounds()
        return None if step is None else int((high - low) / step + 1e-9) + 1

    def grid(self) -> list[Any]:
        """Every value, for the grid sampler and a search that has run out of new proposals."""
        if self.type == "categorical":
            return list(self.choices or [])
        count = self.size()
        if count is None:
            raise ValueError("the grid sampler needs a `step` for float parameters")
        values = [self.bounds()[0] + i * (self.step or 1) for i in range(count)]
        return [int(v) for v in values] if self.type == "int" else values

    def values_to_check(self, most: int = 64) -> list[Any]:
        """The values a search can produce that validation builds a config for: every choice, every
        grid point of a stepped range (up to `most`, else evenly spread ones), and both ends of
        every range, so that no trial fails on a value validation did not see."""
        if self.type == "categorical":
            return list(self.choices or [])
        lo, hi = self.bounds()
        step = self.step or (1.0 if self.type == "int" else None)
        if step is None:  # a continuous range: its ends
            return [lo, hi]
        count = self.size() or 1  # the points, never listed when there are many
        picks = range(count) if count <= most else (round(i * (count - 1) / (most - 1)) for i in range(most))
        values = [lo + k * step for k in picks] + [hi]
        return list(dict.fromkeys(int(v) if self.type == "int" else v for v in values))


class SamplerConfig(Pluggable):
    name: str = Field("tpe", description="sampler, see `visionstudy.study.samplers.SAMPLERS`")


class PrunerConfig(Pluggable):
    name: str = Field("hyperband", description="pruner, see `visionstudy.study.samplers.PRUNERS`")


class FinalConfig(Strict):
    seeds: int = Field(1, ge=1, description="seeds of the final training with the best values")


def is_param(value: dict[str, Any]) -> bool:
    """A search space's mapping that is a parameter (it has one of SearchParam's fields), not a
    level of keys."""
    return bool(set(value) & set(SearchParam.model_fields))


class SearchConfig(Strict):
    sampler: SamplerConfig = Field(default_factory=lambda: SamplerConfig(name="tpe"),
                                   description="tpe | random | grid, or {name: ..., **params}")
    pruner: PrunerConfig = Field(default_factory=lambda: PrunerConfig(name="hyperband"),
                                 description="hyperband | median | none, or {name: ..., **params}; "
                                             "a grid's default is none")
    trials: int = Field(20, ge=1, description="number of trials (across all workers)")
    objective: Literal["val_accuracy", "val_loss"] = Field("val_accuracy", description="per epoch")
    seed: Seed = Field(0, description="sampler seed")
    space: dict[str, SearchParam] = Field(description="dotted key → parameter")
    final: FinalConfig | None = Field(None, description="retrain the best values with N seeds")
    base: dict[str, Any] = Field(
        default_factory=dict, description="run-config override for the trials and the final runs"
    )
    trial_epochs: int | None = Field(None, ge=1, description="epochs of each trial (default: train.epochs)")

    @field_validator("sampler", "pruner", mode="before")
    @classmethod
    def _named(cls, value: Any) -> Any:
        return {"name": value} if isinstance(value, str) else value

    @model_validator(mode="before")
    @classmethod
    def _grid_trains_every_point(cls, value: Any) -> Any:
        """A grid search trains every point in full, as scikit-learn's and KerasTuner's do: its
        pruner is none unless one is named (Hyperband stopped 4 of 6 points after one epoch)."""
        if isinstance(value, dict) and "pruner" not in value:
            sampler = value.get("sampler")
            if (sampler.get("name") if isinstance(sampler, dict) else sampler) == "grid":
                return {**value, "pruner": "none"}
        return value

    @model_validator(mode="after")
    def _registered(self) -> SearchConfig:
        from visionstudy.config import entry_params
        from visionstudy.study.samplers import PRUNERS, SAMPLERS

        entry_params(SAMPLERS, self.sampler, "search.sampler")
        entry_params(PRUNERS, self.pruner, "search.pruner")
        return self

    @field_validator("space", mode="before")
    @classmethod
    def _lists_are_categorical(cls, value: Any) -> Any:
        """Lists are categorical; keys dotted or nested (`train: {optimizer: {lr: {type: float,
        ...}}}`, as `--set search.space.train.optimizer.lr=...` writes them)."""
        if isinstance(value, dict):
            return {k: {"type": "categorical", "choices": v} if isinstance(v, list) else v
                    for k, v in flatten(value, leaf=is_param).items()}
        return value

    @field_validator("space")
    @classmethod
    def _not_empty(cls, value: dict[str, SearchParam]) -> dict[str, SearchParam]:
        if not value:
            raise ValueError("give at least one parameter")
        return value


class CVConfig(Strict):
    folds: int = Field(ge=2, description="stratified folds of the training split")
    variants: list[str] | None = Field(
        None, description="only these variants are cross-validated (default: all)"
    )


class ReferenceConfig(Strict):
    source: str = Field(description="where the numbers come from (report, table)")
    data: dict[str, Any] = Field(
        default_factory=dict, description="data settings the numbers are for, e.g. {dataset: cifar10}"
    )
    variants: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="variant → {metric: value, note: text}"
    )


class ReportPlan(Strict):
    """What the study report draws beyond its defaults (the seed's figures, named in the study)."""

    full: list[str] = Field(
        default_factory=list, description="variants (or patterns such as resnet*) drawn in full "
        "(curves, confusion matrix, per-class figures, predictions) beside the best and the ladder, "
        "however many variants the study has")
    curves: dict[str, list[str]] = Field(
        default_factory=dict, description="chart name → the variants (or patterns) its learning "
        "curves compare; without it one chart compares every variant")


class StudyConfig(Strict):
    name: str = Field(description="study name: runs go to <runs-dir>/<name>/")
    description: str = Field("", description="what the study measures (shown in the report)")
    seed: Seed = Field(0, description="seed of the first repeat; repeat k uses seed + k (with a list "
                       "of seeds: its first)")
    data: dict[str, Any] = Field(default_factory=dict, description="base data section")
    model: dict[str, Any] = Field(default_factory=dict, description="base model section")
    train: dict[str, Any] = Field(default_factory=dict, description="base train section")
    seeds: int | list[Seed] = Field(
        1, description="repeats of every variant (repeat k uses seed + k), or their seeds: [0, 42, 1234]")
    variants: dict[str, dict[str, Any] | None] | None = Field(None, description="name → override")
    sweep: dict[str, Any] | list[dict[str, Any]] | None = Field(
        None, description="dotted key → values; mode: grid|one-at-a-time; from: a variant; or a list"
    )
    cv: CVConfig | None = Field(None, description="k-fold cross-validation")
    search: SearchConfig | None = Field(None, description="Optuna hyperparameter search")
    baseline: str | None = Field(None, description="variant the others are tested against")
    ladder: list[str] | None = Field(
        None, description="variants that build on each other, in order: the report's improvement "
        "trajectory and side-by-side confusion matrices follow them (none by default)")
    reproduces: str = Field("", description="recipes: the report it reproduces and what it measured")
    reference: ReferenceConfig | None = Field(None, description="published numbers to compare with")
    notes: dict[str, str] = Field(
        default_factory=dict, description="variant name or pattern (resnet+*) → what it reproduces "
        "(the seed's table or figure) and where it differs; shown by `recipes show` and the report")
    report: ReportPlan = Field(default_factory=ReportPlan, description="what the report draws "
                               "in full, and which variants each curves chart compares")

    @field_validator("name")
    @classmethod
    def _safe_name(cls, value: str) -> str:
        return check_name(value, "a study name")

    @field_validator("seeds", mode="before")
    @classmethod
    def _seed_list(cls, value: Any) -> Any:
        """A list's problems in one line each (not one per member of the int | list union)."""
        if not isinstance(value, list):
            return value
        if not value:
            raise ValueError("an empty list; give the seeds of the repeats ([0, 42]) or their number")
        for seed in value:
            if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= SEED_MAX:
                raise ValueError(f"{seed!r} is not a seed; seeds are whole numbers from 0 to {SEED_MAX} "
                                 "(2^32 - 1)")
        twice = sorted({s for s in value if value.count(s) > 1})
        if twice:
            raise ValueError(f"seed {twice[0]} is listed twice; each repeat needs its own seed")
        return value

    @field_validator("seeds")
    @classmethod
    def _some_repeats(cls, value: int | list[int]) -> int | list[int]:
        if isinstance(value, int) and value < 1:
            raise ValueError(f"{value} repeats; give 1 or more, or the seeds themselves: [0, 42]")
        return value

    @model_validator(mode="after")
    def _seeds_in_range(self) -> StudyConfig:
        final = self.search.final.seeds if self.search and self.search.final else 1
        if isinstance(self.seeds, list):
            if "seed" in self.model_fields_set and self.seed != self.seeds[0]:
                raise ValueError(f"seed: {self.seed} is not the first of seeds {self.seeds} (seed is "
                                 f"the first repeat's); drop seed or make it {self.seeds[0]}")
            if final > len(self.seeds):
                raise ValueError(f"search.final.seeds: {final} final runs, but seeds lists "
                                 f"{len(self.seeds)}; list {final} seeds or fewer final runs")
            return self
        repeats = max(self.seeds, final)
        if self.seed + repeats - 1 > SEED_MAX:
            raise ValueError(f"seed {self.seed} + {repeats - 1} repeats passes {SEED_MAX} (2^32 - 1), "
                             "the largest seed torch and numpy take; choose a smaller seed")
        return self

    @property
    def repeats(self) -> int:
        """How many times every variant is trained."""
        return len(self.seeds) if isinstance(self.seeds, list) else self.seeds

    def repeat_seed(self, k: int) -> int:
        """Repeat k's seed: the k-th listed seed, or seed + k."""
        return self.seeds[k] if isinstance(self.seeds, list) else self.seed + k


def list_recipes() -> list[str]:
    folder = Path(str(resources.files("visionstudy") / "recipes"))
    return sorted(p.stem for p in folder.glob("*.yaml"))


def recipe_path(name: str) -> Path:
    folder = resources.files("visionstudy") / "recipes"
    path = Path(str(folder / f"{name}.yaml"))
    if not path.is_file():
        from visionstudy.registry import near_name

        known = sorted(p.stem for p in Path(str(folder)).glob("*.yaml"))
        near = near_name(name, known)
        hint = f"; did you mean recipe:{near}?" if near else ""
        raise ConfigError(f"recipe:{name}: no such recipe; known: {', '.join(known) or 'none'} "
                          f"(see `visionstudy recipes list`){hint}")
    return path


def read_study(target: str | Path) -> tuple[dict[str, Any], str]:
    """A study file's or `recipe:NAME`'s contents and the path that names it in errors."""
    text = str(target)
    path = recipe_path(text.removeprefix("recipe:")) if text.startswith("recipe:") else Path(text)
    if not path.is_file():  # not "no such config file": the commands that read studies take these
        raise ConfigError(f"{path}: no such study file; give a study file (YAML) or recipe:NAME "
                          "(`study status` and `report` also take the folder `study run` wrote)")
    return read_yaml(path), str(path)


MISPLACED = {  # the unknown keys a known mistake writes → what to write instead
    "base": "a study's base run config is written at its top level (data, model, train), not under "
            "base (search.base is a search's own); move base's keys up one level",
}


def misplaced() -> dict[str, str]:
    """MISPLACED, and each key of a run config's sections written at the study's top (`epochs:`)."""
    below = {key: f"did you mean {' or '.join(paths[:2])}?" for key, paths in keys_below(RunConfig).items()
             if key not in StudyConfig.model_fields}
    return below | MISPLACED


def study_config(raw: Any, source: str) -> StudyConfig:
    try:
        return StudyConfig.model_validate(raw)
    except ValidationError as exc:
        detail = format_validation_error(exc, schema=StudyConfig, hints=misplaced())
        stem = Path(source).stem if NAME.match(Path(source).stem) else "my-study"
        detail = detail.replace("name: Field required", "name: Field required; a study is named by the "
                                f"folder its runs go to (runs/<name>): add `name: {stem}` at the file's top")
        raise ConfigError(f"{source}: invalid study file\n{detail}") from None
