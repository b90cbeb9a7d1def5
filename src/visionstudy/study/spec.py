"""The study file: a base run config plus variants, sweeps, seeds, folds and a search space,
expanded into the list of runs it stands for and validated whole before anything trains.

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

import collections
import copy
import dataclasses
import fnmatch
import functools
import hashlib
import itertools
import json
import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError, field_validator, model_validator

from visionstudy.config import (
    SEED_MAX,
    Pluggable,
    RunConfig,
    Seed,
    Strict,
    apply_overrides,
    check_name,
    dump_config,
    format_validation_error,
    identity,
    merge_run,
    plain_copy,
    read_yaml,
)
from visionstudy.errors import ConfigError
from visionstudy.validate import validate_run_config

RESERVED = {"report": "report", "search": "search trials'"}  # folders beside the variants


class SearchParam(Strict):
    type: Literal["int", "float", "categorical"] = Field(description="kind of parameter")
    low: float | None = Field(None, description="int/float: lowest value")
    high: float | None = Field(None, description="int/float: highest value (inclusive)")
    step: float | None = Field(None, gt=0, description="int/float: spacing of the values")
    log: bool = Field(False, description="int/float: sample on a log scale")
    choices: list[Any] | None = Field(None, description="categorical: the values")

    @model_validator(mode="after")
    def _ranges(self) -> SearchParam:
        if self.type == "categorical":
            if not self.choices:
                raise ValueError("categorical: give a non-empty `choices` list")
        elif self.low is None or self.high is None:
            raise ValueError(f"{self.type}: give `low` and `high`")
        elif not self.low < self.high:
            raise ValueError(f"empty range: low {self.low} must be below high {self.high}")
        elif self.log and self.low <= 0:
            raise ValueError("log scale needs low > 0")
        elif self.log and self.step is not None:
            raise ValueError("`log` and `step` cannot be combined")
        return self

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


class SearchConfig(Strict):
    sampler: SamplerConfig = Field(default_factory=lambda: SamplerConfig(name="tpe"),
                                   description="tpe | random | grid, or {name: ..., **params}")
    pruner: PrunerConfig = Field(default_factory=lambda: PrunerConfig(name="hyperband"),
                                 description="hyperband | median | none, or {name: ..., **params}")
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

    @model_validator(mode="after")
    def _registered(self) -> SearchConfig:
        from visionstudy.study.samplers import PRUNERS, SAMPLERS, entry_params

        entry_params(SAMPLERS, self.sampler, "search.sampler")
        entry_params(PRUNERS, self.pruner, "search.pruner")
        return self

    @field_validator("space", mode="before")
    @classmethod
    def _lists_are_categorical(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return {k: {"type": "categorical", "choices": v} if isinstance(v, list) else v
                    for k, v in value.items()}
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
    seed: Seed = Field(0, description="seed of the first repeat; repeat k uses seed + k")
    data: dict[str, Any] = Field(default_factory=dict, description="base data section")
    model: dict[str, Any] = Field(default_factory=dict, description="base model section")
    train: dict[str, Any] = Field(default_factory=dict, description="base train section")
    seeds: int = Field(1, ge=1, description="repeats of every variant")
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

    @model_validator(mode="after")
    def _seeds_in_range(self) -> StudyConfig:
        repeats = max(self.seeds, self.search.final.seeds if self.search and self.search.final else 1)
        if self.seed + repeats - 1 > SEED_MAX:
            raise ValueError(f"seed {self.seed} + {repeats - 1} repeats passes {SEED_MAX} (2^32 - 1), "
                             "the largest seed torch and numpy take; choose a smaller seed")
        return self


@dataclass(frozen=True)
class RunSpec:
    """One planned run: validated when the study is expanded (`checked`), or taken from the
    manifest of a study planned before (`planned`, with its hash) and validated on first use."""

    key: str  # <variant>/seed-<k>[/fold-<f>]: the run's folder under the study's folder
    variant: str
    seed_index: int
    fold: int | None
    checked: RunConfig | None = None
    planned: dict[str, Any] | None = field(default=None, repr=False, compare=False)
    planned_hash: str | None = None

    @functools.cached_property
    def config(self) -> RunConfig:
        if self.checked is not None:
            return self.checked
        return validate_run_config(plain_copy(self.planned or {}), f"run {self.key} as planned")

    @functools.cached_property
    def config_hash(self) -> str:
        return self.planned_hash or config_hash(dump_config(self.config))


@dataclass(frozen=True)
class Study:
    config: StudyConfig
    base: dict[str, Any]  # the base run config (raw), --set overrides applied
    overrides: list[str]
    variants: list[tuple[str, dict[str, Any]]]  # (name, override); planned before: (name, {})
    runs: list[RunSpec]
    source: str
    input_digest: str = ""  # of what it was read from (`input_digest`): the key to its recorded plan

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def baseline(self) -> str:
        return self.config.baseline or self.variants[0][0]

    def note(self, variant: str) -> str:
        """What the study file says a variant reproduces: its exact name first, else the first
        pattern that matches it."""
        notes = self.config.notes
        if variant in notes:
            return notes[variant]
        return next((text for key, text in notes.items() if fnmatch.fnmatchcase(variant, key)), "")

    def describe(self) -> str:
        """'14 runs (12 variants × 1 seed, 2 of them × 5 folds), then a search'."""
        folded = {r.variant for r in self.runs if r.fold is not None}
        seeds = self.config.seeds
        text = f"{len(self.runs)} runs ({len(self.variants)} variants × {seeds} seed{'s' * (seeds > 1)}"
        if folded:
            text += (f" × {self.config.cv.folds} folds" if len(folded) == len(self.variants)  # type: ignore[union-attr]
                     else f", {len(folded)} of them × {self.config.cv.folds} folds")  # type: ignore[union-attr]
        text += ")"
        if self.config.search:
            s = self.config.search
            text += f", then a {s.trials}-trial search"
            text += f" and {s.final.seeds} final run{'s' * (s.final.seeds > 1)}" if s.final else ""
        return text

    def sweep_members(self) -> list[tuple[str, int, str, set[str]]]:
        """(label, block index, swept key, the variants that show its values) per swept key of
        every sweep block. One-at-a-time: its own points and its origin (the base config's
        'baseline' or its `from` variant); grid: every point. Labels are the key, prefixed with the
        `from` variant when a block has one, and suffixed with the block's number when two blocks
        vary the same key (each keeps its own chart)."""
        out: list[tuple[str, int, str, set[str]]] = []
        explicit = {n: o or {} for n, o in (self.config.variants or {}).items()}
        for index, block in enumerate(sweep_blocks(self.config.sweep)):
            origin = block.get("from")
            keys = [k for k in block if k not in SWEEP_OPTIONS]
            one_at_a_time = block.get("mode") == "one-at-a-time"
            start = {origin or "baseline"} if one_at_a_time else set()
            members = {k: set(start) for k in keys}
            for name, override in sweep_variants(block, self.base, explicit, self.source):
                for key in keys:
                    if name != "baseline" and touches(override, key, explicit.get(origin or "", {})):
                        members[key].add(name)
            for key in keys:
                out.append((f"{origin}: {key}" if origin else key, index, key, members[key]))
        labels = collections.Counter(label for label, *_ in out)
        return [(f"{label} (sweep {index + 1})" if labels[label] > 1 else label, index, key, members)
                for label, index, key, members in out]


def config_hash(dump: dict[str, Any]) -> str:
    """What a run computes (`identity`): a study resumed with --no-verify keeps its runs."""
    return hashlib.sha256(json.dumps(identity(dump, minimal=True), sort_keys=True).encode()).hexdigest()[:16]


def dotted(key: str, value: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    node = out
    parts = key.split(".")
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = value
    return out


def lookup(raw: dict[str, Any], key: str) -> Any:
    node: Any = raw
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def value_label(value: Any) -> str:
    """A short, folder-safe label: [32, 64] → '32-64'; {name: sgd, lr: 0.1} → 'sgd-lr0.1';
    a list of such mappings joins with '+'."""
    if isinstance(value, list):
        sep = "+" if any(isinstance(v, dict) for v in value) else "-"
        return sep.join(value_label(v) for v in value)
    if isinstance(value, dict):
        head = [value_label(value["name"])] if "name" in value else []
        return "-".join(head + [f"{k}{value_label(v)}" for k, v in value.items() if k != "name"])
    text = f"{value:g}" if isinstance(value, float) else str(value)
    return re.sub(r"[^A-Za-z0-9_.+-]", "_", text)


def resolved_with_defaults(cfg: RunConfig) -> dict[str, Any]:
    """The config with every default filled in, the model's own parameters included."""
    from visionstudy.models import validate_params

    out = dump_config(cfg)
    params = validate_params(cfg.model.name, cfg.model.params()).model_dump(mode="json")
    out["model"] = {"name": cfg.model.name, **params}
    return out


SWEEP_OPTIONS = ("mode", "from")


def sweep_blocks(sweep: dict[str, Any] | list[dict[str, Any]] | None) -> list[dict[str, Any]]:
    if not sweep:
        return []
    return [dict(b) for b in sweep] if isinstance(sweep, list) else [dict(sweep)]


def touches(override: dict[str, Any], key: str, start: dict[str, Any]) -> bool:
    """Whether a sweep point's `override` changes `key` (for an indexed key like
    model.channels.0: its list) from the sweep origin's own override `start`."""
    parts = key.split(".")
    while parts and parts[-1].isdigit():
        parts.pop()
    head = ".".join(parts)
    return lookup(override, head) is not None and lookup(override, head) != lookup(start, head)


def key_override(raw: dict[str, Any], key: str, value: Any) -> dict[str, Any]:
    """The override that sets dotted `key` to `value` on config `raw`. A numeric part indexes a
    list: 'model.channels.0' = 48 on channels [32, 64] gives {'model': {'channels': [48, 64]}}."""
    parts = key.split(".")
    for i, part in enumerate(parts):
        if not part.isdigit():
            continue
        head = ".".join(parts[:i])
        current = lookup(raw, head)
        if current is None:
            try:
                current = lookup(resolved_with_defaults(validate_run_config(raw)), head)
            except ConfigError:
                current = None
        if not isinstance(current, list) or int(part) >= len(current):
            raise ConfigError(f"{key}: {head} must be a list with an element {part} (got {current!r}); "
                              "write the whole list in the base config")
        new = copy.deepcopy(current)
        rest = ".".join(parts[i + 1:])
        if rest:
            new[int(part)] = merge_run(new[int(part)], key_override(new[int(part)], rest, value))
        else:
            new[int(part)] = value
        return dotted(head, new)
    return dotted(key, value)


def apply_keys(raw: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
    """One override setting every dotted key of `values`, in order, on top of `raw`."""
    override: dict[str, Any] = {}
    for key, value in values.items():
        override = merge_run(override, key_override(merge_run(raw, override), key, value))
    return override


def key_label(key: str) -> str:
    """'train.optimizer.lr' → 'lr'; 'model.channels.0' → 'channels.0'."""
    parts = key.split(".")
    return ".".join(parts[-2:]) if parts[-1].isdigit() else parts[-1]


def sweep_variants(block: dict[str, Any], base: dict[str, Any], explicit: dict[str, Any],
                   source: str) -> list[tuple[str, dict[str, Any]]]:
    """The variants of one sweep block. With `from: V` the block sweeps around variant V
    (names 'V+key=value'); without, around the base config (its origin is 'baseline')."""
    block = dict(block)
    mode = block.pop("mode", "grid")
    origin = block.pop("from", None)
    if mode not in ("grid", "one-at-a-time"):
        raise ConfigError(f"{source}: sweep.mode {mode!r}: use grid or one-at-a-time")
    if origin is not None and origin not in explicit:
        raise ConfigError(f"{source}: sweep.from {origin!r} is not a variant; choose one of "
                          f"{', '.join(explicit) or '(no variants defined)'}")
    for key, values in block.items():
        if not isinstance(values, list) or not values:
            raise ConfigError(f"{source}: sweep.{key}: give a non-empty list of values")
    start = (explicit[origin] or {}) if origin else {}
    prefix = f"{origin}+" if origin else ""
    here = merge_run(base, start)
    if mode == "grid":
        out = []
        for combo in itertools.product(*block.values()):
            point = apply_keys(here, dict(zip(block, combo, strict=True)))
            name = ",".join(f"{key_label(k)}={value_label(v)}" for k, v in zip(block, combo, strict=True))
            out.append((prefix + name, merge_run(start, point)))
        return out
    out = [] if origin else [("baseline", {})]
    resolved = resolved_with_defaults(validate_run_config(here, f"{source}: the sweep's origin config"))
    for key, values in block.items():
        for value in values:
            if value == indexed(resolved, key):
                continue  # the origin already has this value
            out.append((f"{prefix}{key_label(key)}={value_label(value)}",
                        merge_run(start, key_override(here, key, value))))
    return out


def indexed(raw: dict[str, Any], key: str) -> Any:
    """`lookup` that also follows numeric parts into lists."""
    node: Any = raw
    for part in key.split("."):
        if isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        elif isinstance(node, dict) and part in node:
            node = node[part]
        else:
            return None
    return node


def variant_list(cfg: StudyConfig, base: dict[str, Any], source: str) -> list[tuple[str, dict[str, Any]]]:
    explicit = {k: v or {} for k, v in (cfg.variants or {}).items()}
    out: list[tuple[str, dict[str, Any]]] = list(explicit.items())
    for block in sweep_blocks(cfg.sweep):
        swept = sweep_variants(block, base, explicit, source)
        if out:  # explicit variants first; the sweep's own baseline is the base config
            swept = [(n, o) for n, o in swept if n != "baseline" or "baseline" not in dict(out)]
        out += swept
    if not out:
        out = [("baseline", {})]
    names = [n for n, _ in out]
    for name in names:
        if name in RESERVED:
            raise ConfigError(f"{source}: variant name {name!r} is reserved for the study's "
                              f"{RESERVED[name]} folder; rename the variant")
        try:
            check_name(name, f"variant name {name!r}")
        except ValueError as exc:
            raise ConfigError(f"{source}: {exc}") from None
    dupes = sorted(n for n, count in collections.Counter(names).items() if count > 1)
    if dupes:
        raise ConfigError(f"{source}: variant names used twice: {', '.join(dupes)}; rename one")
    return out


def build_run(base: dict[str, Any], override: dict[str, Any], overrides: list[str], study: str,
              variant: str, seed: int, fold: tuple[int, int] | None, source: str) -> RunConfig:
    raw = apply_overrides(merge_run(base, override), overrides)  # --set: the last word, over every variant
    raw["name"] = f"{study}.{variant}"
    raw["seed"] = seed
    if fold is not None:
        raw = merge_run(raw, {"data": {"folds": fold[0], "fold": fold[1]}})
    return validate_run_config(raw, f"{source}: variant '{variant}'")


def base_config(cfg: StudyConfig, overrides: list[str]) -> dict[str, Any]:
    """The base run config (raw) with the --set overrides applied."""
    return apply_overrides({"name": cfg.name, "seed": cfg.seed, "data": cfg.data, "model": cfg.model,
                            "train": cfg.train}, overrides)


def expand(cfg: StudyConfig, overrides: list[str], source: str) -> Study:
    base = base_config(cfg, overrides)
    variants = variant_list(cfg, base, source)
    if cfg.baseline and cfg.baseline not in dict(variants):
        raise ConfigError(f"{source}: baseline {cfg.baseline!r} is not a variant; choose one of "
                          f"{', '.join(n for n, _ in variants)}")
    if cfg.ladder is not None:
        known = dict(variants)
        stray = [n for n in cfg.ladder if n not in known]
        if stray or len(set(cfg.ladder)) != len(cfg.ladder) or len(cfg.ladder) < 2:
            why = (f"{', '.join(map(repr, stray))} {'is' if len(stray) == 1 else 'are'} not variants; "
                   f"choose from {', '.join(known)}" if stray else
                   "names a variant twice" if len(set(cfg.ladder)) != len(cfg.ladder) else
                   "needs at least two variants")
            raise ConfigError(f"{source}: ladder: {why}")
    names = [n for n, _ in variants] + (["search", "search-best"] if cfg.search else [])
    for where, patterns in [("notes", list(cfg.notes)), ("report.full", cfg.report.full),
                            *((f"report.curves.{k}", v) for k, v in cfg.report.curves.items())]:
        unmatched = [k for k in patterns if not any(fnmatch.fnmatchcase(n, k) for n in names)]
        if unmatched or (not patterns and where.startswith("report.curves")):
            raise ConfigError(f"{source}: {where}: {', '.join(unmatched) or 'no variants'} match no "
                              "variant; use variant names or patterns such as resnet+*")
    folded = set(cfg.cv.variants or dict(variants)) if cfg.cv else set()
    unknown = sorted(folded - set(dict(variants)))
    if unknown:
        raise ConfigError(f"{source}: cv.variants: {', '.join(unknown)} not variants; choose from "
                          f"{', '.join(n for n, _ in variants)}")
    runs = []
    for name, override in variants:
        folds = [(cfg.cv.folds, f) for f in range(cfg.cv.folds)] if cfg.cv and name in folded else [None]
        for k in range(cfg.seeds):
            for fold in folds:
                config = build_run(base, override, overrides, cfg.name, name, cfg.seed + k, fold, source)
                key = f"{name}/seed-{k}" + (f"/fold-{fold[1]}" if fold else "")
                runs.append(RunSpec(key, name, k, fold[1] if fold else None, config))
    if cfg.search:
        check_search(cfg.search, base, overrides, cfg.name, source)
    return Study(cfg, base, list(overrides), variants, runs, source)


def check_search(search: SearchConfig, base: dict[str, Any], overrides: list[str], study: str,
                 source: str) -> None:
    """Every search key must exist: build the configs at the ends of every range."""
    if search.sampler.name == "grid":
        for key, p in search.space.items():
            try:
                p.grid()
            except ValueError as exc:
                raise ConfigError(f"{source}: search.space.{key}: {exc}") from None
    here = merge_run(base, search.base)
    for key, p in search.space.items():
        for value in p.values_to_check():
            try:
                cfg = build_run(base, merge_run(search.base, key_override(here, key, value)), overrides,
                                study, "search", 0, None, source)
            except ConfigError as exc:
                raise ConfigError(f"search.space.{key} = {value!r}: {exc}") from None
            if cfg.data.validates_on == "none":
                raise ConfigError(f"{source}: search.objective {search.objective} is measured on a "
                                  "validation set, and data.val_fraction: 0 leaves none; give "
                                  "data.val_fraction (in search.base) or data.validation: test")


def list_recipes() -> list[str]:
    folder = Path(str(resources.files("visionstudy") / "recipes"))
    return sorted(p.stem for p in folder.glob("*.yaml"))


def recipe_path(name: str) -> Path:
    folder = resources.files("visionstudy") / "recipes"
    path = Path(str(folder / f"{name}.yaml"))
    if not path.is_file():
        known = sorted(p.stem for p in Path(str(folder)).glob("*.yaml"))
        raise ConfigError(f"recipe:{name}: no such recipe; known: {', '.join(known) or 'none'} "
                          "(see `visionstudy recipes list`)")
    return path


def read_study(target: str | Path) -> tuple[dict[str, Any], str]:
    """A study file's or `recipe:NAME`'s contents and the path that names it in errors."""
    text = str(target)
    path = recipe_path(text.removeprefix("recipe:")) if text.startswith("recipe:") else Path(text)
    return read_yaml(path), str(path)


def load_study(target: str | Path, overrides: list[str] = ()) -> Study:  # type: ignore[assignment]
    """Read, validate and expand a study file or `recipe:NAME`."""
    return study_from(*read_study(target), overrides)


def study_config(raw: Any, source: str) -> StudyConfig:
    try:
        return StudyConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(f"{source}: invalid study file\n{format_validation_error(exc)}") from None


def input_digest(raw: Any, overrides: list[str], source: str) -> str:
    """What a study was read from (its contents, --set overrides and source) and the version
    reading it: the same digest expands to the same runs."""
    import visionstudy

    text = json.dumps([visionstudy.__version__, raw, list(overrides), source], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def study_from(raw: Any, source: str, overrides: list[str] = ()) -> Study:  # type: ignore[assignment]
    """Validate and expand a study file's contents (a mapping); `source` names it in errors."""
    study = expand(study_config(raw, source), list(overrides), source)
    return dataclasses.replace(study, input_digest=input_digest(raw, list(overrides), source))
