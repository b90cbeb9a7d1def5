"""A study's expansion: its base run config, variants, sweeps, seeds and folds become the list
of runs it stands for (`RunSpec`), each validated before anything trains. The file's schema and
reading: `schema`.
"""

from __future__ import annotations

import collections
import dataclasses
import fnmatch
import functools
import hashlib
import itertools
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from visionstudy.config import (
    DataConfig,
    RunConfig,
    apply_overrides,
    check_name,
    dump_config,
    few,
    flatten,
    identity,
    indexed,
    is_index,
    key_override,
    lookup,
    merge_run,
    override_pair,
    overrides_under,
    plain_copy,
)
from visionstudy.errors import ConfigError
from visionstudy.study.schema import RESERVED, SearchConfig, StudyConfig, read_study, study_config
from visionstudy.validate import resolved_with_defaults, run_defaults, validate_run_config


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
    study_overrides: list[str] = field(default_factory=list)  # --set of the study's own keys (seeds=1)

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
        seeds = self.config.repeats
        runs, variants = len(self.runs), len(self.variants)
        text = (f"{runs} run{'s' * (runs != 1)} ({variants} variant{'s' * (variants != 1)}"
                f" × {seeds} seed{'s' * (seeds > 1)}")
        if folded:
            text += (f" × {self.config.cv.folds} folds" if len(folded) == len(self.variants)  # type: ignore[union-attr]
                     else f", {len(folded)} of them × {self.config.cv.folds} folds")  # type: ignore[union-attr]
        text += ")"
        if self.config.search:
            s = self.config.search
            article = "an" if str(s.trials).startswith("8") or s.trials in (11, 18) else "a"  # an 8-trial
            text += f", then {article} {s.trials}-trial search"
            if s.final:
                k, folds = s.final.seeds, len(folds_of(self.config, FINAL_VARIANT))
                text += (f" and {k * folds} final run{'s' * (k * folds > 1)}"
                         + (f" ({k} seed{'s' * (k > 1)} × {folds} folds)" if folds > 1 else ""))
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


SEARCH_DIR = "search"  # trial folders: <study>/search/trial-NNN (no variant may take this name)
FINAL_VARIANT = "search-best"  # the variant that retrains a search's best values (`search.final`)
SWEEP_OPTIONS = ("mode", "from")


def sweep_blocks(sweep: dict[str, Any] | list[dict[str, Any]] | None) -> list[dict[str, Any]]:
    if not sweep:
        return []
    return [dict(b) for b in sweep] if isinstance(sweep, list) else [dict(sweep)]


def touches(override: dict[str, Any], key: str, start: dict[str, Any]) -> bool:
    """Whether a sweep point's `override` changes `key` (for an indexed key like
    model.channels.0: its list) from the sweep origin's own override `start`."""
    parts = key.split(".")
    while parts and is_index(parts[-1]):
        parts.pop()
    head = ".".join(parts)
    return lookup(override, head) is not None and lookup(override, head) != lookup(start, head)


def apply_keys(raw: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
    """One override setting every dotted key of `values`, in order, on top of `raw`."""
    override: dict[str, Any] = {}
    for key, value in values.items():
        override = merge_run(override, key_override(merge_run(raw, override), key, value, run_defaults))
    return override


def nested_conflict(values: dict[str, list[Any]]) -> str | None:
    """Keys varied together where one lies inside the other's value and a value of the outer one
    sets it too (`train.optimizer.lr` beside a `train.optimizer` choice that writes its own lr):
    which of the two a point means cannot be told, so the study file must say it once."""
    for outer, choices in values.items():
        for inner in (k for k in values if k.startswith(f"{outer}.")):
            rest = inner.removeprefix(f"{outer}.")
            for choice in choices:
                if isinstance(choice, dict | list) and indexed({"v": choice}, f"v.{rest}") is not None:
                    return (f"{inner} is varied, and the {outer} value {json.dumps(choice)} sets it too; "
                            f"take {rest} out of that value, or stop varying {inner}")
    return None


def key_label(key: str, parts: int = 1) -> str:
    """'train.optimizer.lr' → 'lr' (its last `parts` parts); an index keeps its list's name:
    'model.channels.0' → 'channels.0'."""
    split = key.split(".")
    return ".".join(split[-(parts + is_index(split[-1])):])


def key_labels(keys: list[str]) -> dict[str, str]:
    """Each of a sweep block's keys by its shortest label that no other key of the block shares:
    'lr', and for train.optimizer.name beside train.scheduler.name 'optimizer.name' and
    'scheduler.name' (not 'name=sgd,name=none')."""
    parts = dict.fromkeys(keys, 1)
    while True:
        labels = {k: key_label(k, n) for k, n in parts.items()}
        shared = collections.Counter(labels.values())
        clash = [k for k in keys if shared[labels[k]] > 1 and labels[k] != k]
        if not clash:
            return labels
        for k in clash:
            parts[k] += 1


def sweep_variants(block: dict[str, Any], base: dict[str, Any], explicit: dict[str, Any],
                   source: str) -> list[tuple[str, dict[str, Any]]]:
    """The variants of one sweep block. With `from: V` the block sweeps around variant V
    (names 'V+key=value'); without, around the base config (its origin is 'baseline'). Keys may
    be dotted or nested (`model: {activation: [relu, tanh]}`, as `--set sweep.model.activation=...`
    writes them)."""
    block = flatten(block)
    mode = block.pop("mode", "grid")
    origin = block.pop("from", None)
    if mode not in ("grid", "one-at-a-time"):
        raise ConfigError(f"{source}: sweep.mode {mode!r}: use grid or one-at-a-time")
    if origin is not None and origin not in explicit:
        raise ConfigError(f"{source}: sweep.from {origin!r} is not a variant; choose one of "
                          f"{', '.join(explicit) or '(no variants defined)'}")
    if not block:
        raise ConfigError(f"{source}: sweep: names no key to vary; give dotted keys with lists of values "
                          "(train.optimizer.lr: [1.0e-3, 1.0e-2])")
    for key, values in block.items():
        if not isinstance(values, list) or not values:
            raise ConfigError(f"{source}: sweep.{key}: give a non-empty list of values")
    if mode == "grid" and (conflict := nested_conflict(block)):
        raise ConfigError(f"{source}: sweep: {conflict}")
    start = (explicit[origin] or {}) if origin else {}
    prefix = f"{origin}+" if origin else ""
    here = merge_run(base, start)
    labels = key_labels(list(block))
    if mode == "grid":
        out = []
        for combo in itertools.product(*block.values()):
            point = swept(functools.partial(apply_keys, here, dict(zip(block, combo, strict=True))), source)
            name = ",".join(f"{labels[k]}={value_label(v)}" for k, v in zip(block, combo, strict=True))
            out.append((prefix + name, merge_run(start, point)))
        return out
    out = [] if origin else [("baseline", {})]
    resolved = resolved_with_defaults(validate_run_config(here, f"{source}: the sweep's origin config"))
    for key, values in block.items():
        for value in values:
            if value == indexed(resolved, key):
                continue  # the origin already has this value
            point = swept(functools.partial(key_override, here, key, value, run_defaults), source)
            out.append((f"{prefix}{labels[key]}={value_label(value)}", merge_run(start, point)))
    return out


def swept(point: Callable[[], dict[str, Any]], source: str) -> dict[str, Any]:
    """A sweep point's override, a key that cannot be set (an index past a list's end) named as the
    sweep's."""
    try:
        return point()
    except ConfigError as exc:
        raise ConfigError(f"{source}: sweep.{exc}") from None


def variant_override(written: dict[str, Any], base: dict[str, Any], source: str, name: str) -> dict[str, Any]:
    """A variant as written, nested (`{model: {hidden: [64]}}`) or with dotted keys as sweeps and
    `--set` take them (`{model.hidden: [64], model.channels.1: 64}`), as one nested override."""
    nested = {k: v for k, v in written.items() if "." not in str(k)}
    keys = {str(k): v for k, v in written.items() if "." in str(k)}
    if not keys:
        return nested
    try:
        return merge_run(nested, apply_keys(merge_run(base, nested), keys))
    except ConfigError as exc:
        raise ConfigError(f"{source}: variant '{name}': {exc}") from None


def variant_list(cfg: StudyConfig, base: dict[str, Any], source: str) -> list[tuple[str, dict[str, Any]]]:
    explicit = {k: variant_override(v or {}, base, source, k) for k, v in (cfg.variants or {}).items()}
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
        if name.casefold() in RESERVED:
            raise ConfigError(f"{source}: variant name {name!r} is reserved for the study's "
                              f"{RESERVED[name.casefold()]} folder; rename the variant")
        try:
            check_name(name, f"variant name {name!r}")
        except ValueError as exc:
            raise ConfigError(f"{source}: {exc}") from None
    dupes = sorted(n for n, count in collections.Counter(names).items() if count > 1)
    if dupes:
        raise ConfigError(f"{source}: variant names used twice: {', '.join(dupes)}; rename one")
    cases = collections.defaultdict(list)
    for name in names:
        cases[name.casefold()].append(name)
    same = next((found for found in cases.values() if len(found) > 1), None)
    if same:  # one folder on macOS's and Windows' disks: the second variant would read the first's runs
        raise ConfigError(f"{source}: variant names {' and '.join(same)} differ only in case, and share one "
                          "folder where the file system ignores case (macOS, Windows); rename one")
    return out


def folds_of(cfg: StudyConfig, variant: str) -> list[tuple[int, int] | None]:
    """(folds, fold) of each run of one seed of `variant`: every fold where `cv` folds it (all
    variants, or those `cv.variants` names: the search's final runs only when named), else [None]."""
    if cfg.cv is None or variant not in (cfg.cv.variants or [variant]) or (
            not cfg.cv.variants and variant == FINAL_VARIANT):
        return [None]
    return [(cfg.cv.folds, f) for f in range(cfg.cv.folds)]


def run_key(variant: str, seed_index: int, fold: tuple[int, int] | None) -> str:
    """A run's key and folder below the study's: `bn/seed-0`, `bn/seed-0/fold-2`."""
    return f"{variant}/seed-{seed_index}" + (f"/fold-{fold[1]}" if fold else "")


def build_run(base: dict[str, Any], override: dict[str, Any], overrides: list[str], study: str,
              variant: str, seed: int, fold: tuple[int, int] | None, source: str) -> RunConfig:
    raw = apply_overrides(merge_run(base, override), overrides, run_defaults)  # --set: the last word
    raw["name"] = f"{study}.{variant}"
    raw["seed"] = seed
    if fold is not None:
        raw = merge_run(raw, {"data": {"folds": fold[0], "fold": fold[1]}})
    try:
        return validate_run_config(raw, f"{source}: variant '{variant}'")
    except ConfigError as exc:
        if base_fails_alike(base, overrides, exc, f"{source}: variant '{variant}'"):
            raise ConfigError(str(exc).replace(f"variant '{variant}'", "the base config (data, model, "
                                               "train: every variant)", 1)) from None
        raise


def base_fails_alike(base: dict[str, Any], overrides: list[str], exc: ConfigError, source: str) -> bool:
    """Whether the base config fails as the variant did: the mistake is in the base, which every
    variant inherits, not in the variant the message would otherwise name."""
    try:
        validate_run_config(apply_overrides(base, overrides, run_defaults), source)
    except ConfigError as again:
        return str(again) == str(exc)
    return False


RUN_SECTIONS = ("data", "model", "train")  # --set keys under these change every run


def split_overrides(raw: Any, overrides: Sequence[str], source: str) -> tuple[Any, list[str], list[str], str]:
    """A study's `--set`: keys under data, model and train change every run (after each variant's
    own: the last word); any other key changes the study file's contents before they are read
    (`seeds=1`, `seed=5`, `cv.folds=3`, `search.trials=4`, `name=quick-try`; once silently
    dropped or refused as an unknown run key). Returns the contents, the runs' overrides, the
    study's and the name errors give the contents."""
    runs, study = overrides_under(overrides, RUN_SECTIONS)
    if study and isinstance(raw, dict):
        check_variant_keys(raw, study, source)
        raw = apply_overrides(nested_variants(raw, source), study, variant_defaults)
        source = f"{source} with --set {' --set '.join(study)}"
    return raw, runs, study, source


def variant_defaults(raw: dict[str, Any]) -> dict[str, Any]:
    """A study file's contents with each variant's run config in full, its defaults filled in:
    where `--set variants.bn.model.channels.1=64` finds the list the variant does not write."""
    base = {"name": "defaults", **{k: raw[k] for k in RUN_SECTIONS if isinstance(raw.get(k), dict)}}
    variants = raw.get("variants")
    full = {name: run_defaults(merge_run(base, v)) for name, v in (variants or {}).items()
            if isinstance(variants, dict) and isinstance(v, dict)}
    return {**raw, "variants": full}


def check_variant_keys(raw: dict[str, Any], overrides: list[str], source: str) -> None:
    """A `--set variants.NAME.KEY=V` changes variant NAME; one the file lacks is refused (a typo
    of `bn` as `bm` added a variant `bm` of the base with that one key, and `bn` trained as before).
    `--set variants.NAME={...}`, a whole mapping, adds one."""
    variants = raw.get("variants")
    if not isinstance(variants, dict):
        return
    for text in overrides:
        parts = override_pair(text)[0].split(".")
        if parts[0] == "variants" and len(parts) > 2 and parts[1] not in variants:
            names = list(map(str, variants))
            near = near_names([parts[1]], names)
            add = f"--set 'variants.{parts[1]}={{model: {{...}}}}'"
            raise ConfigError(f"--set {text}: {source} has no variant {parts[1]!r}"
                              + (f"; did you mean {near[0]}?" if near else "")
                              + f" (its variants: {', '.join(names)}); to add one, give it whole ({add}) "
                              "or write it in the file")


def nested_variants(raw: dict[str, Any], source: str) -> dict[str, Any]:
    """The study file's contents with each variant's dotted keys nested, so that a `--set
    variants.b.model.hidden=[4]` replaces the `model.hidden` variant b wrote rather than losing to it."""
    variants = raw.get("variants")
    if not isinstance(variants, dict):
        return raw
    base = {k: raw[k] for k in RUN_SECTIONS if isinstance(raw.get(k), dict)}
    return {**raw, "variants": {name: variant_override(v, base, source, name) if isinstance(v, dict) else v
                                for name, v in variants.items()}}


def base_config(cfg: StudyConfig, overrides: list[str]) -> dict[str, Any]:
    """The base run config (raw) with the --set overrides applied."""
    return apply_overrides({"name": cfg.name, "seed": cfg.repeat_seed(0), "data": cfg.data,
                            "model": cfg.model, "train": cfg.train}, overrides, run_defaults)


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
            verb = "is not a variant" if len(stray) == 1 else "are not variants"
            why = (f"{', '.join(map(repr, stray))} {verb}; "
                   f"choose from {', '.join(known)}" if stray else
                   "names a variant twice" if len(set(cfg.ladder)) != len(cfg.ladder) else
                   "needs at least two variants")
            raise ConfigError(f"{source}: ladder: {why}")
    names = [n for n, _ in variants] + ([SEARCH_DIR, FINAL_VARIANT] if cfg.search else [])
    for where, patterns in [("notes", list(cfg.notes)), ("report.full", cfg.report.full),
                            *((f"report.curves.{k}", v) for k, v in cfg.report.curves.items())]:
        unmatched = [k for k in patterns if not any(fnmatch.fnmatchcase(n, k) for n in names)]
        if not patterns and where.startswith("report.curves"):
            raise ConfigError(f"{source}: {where}: names no variant; list the variants this chart compares")
        if unmatched:
            raise ConfigError(f"{source}: {where}: {', '.join(unmatched)} match no variant; "
                              f"{name_hint(unmatched, names)} (the variants: {few(names, 12)})")
    folded = set(cfg.cv.variants or dict(variants)) if cfg.cv else set()
    if FINAL_VARIANT in folded and not (cfg.search and cfg.search.final):
        raise ConfigError(f"{source}: cv.variants: {FINAL_VARIANT} is the search's final runs, and "
                          "this study has none; give its search `final: {seeds: 1}` (its best values "
                          "trained again, then cross-validated), or leave it out of cv.variants")
    unknown = sorted(folded - set(dict(variants)) - {FINAL_VARIANT})
    if unknown:
        close = near_names(unknown, [n for n, _ in variants])
        raise ConfigError(f"{source}: cv.variants: {', '.join(unknown)} not variants; "
                          f"{f'did you mean {few(close, 3)}? ' if close else ''}choose from "
                          f"{', '.join(n for n, _ in variants)}"
                          + (f" or {FINAL_VARIANT}" if cfg.search and cfg.search.final else ""))
    runs = []
    for name, override in variants:
        for k in range(cfg.repeats):
            seed = cfg.repeat_seed(k)
            for fold in folds_of(cfg, name):
                config = build_run(base, override, overrides, cfg.name, name, seed, fold, source)
                runs.append(RunSpec(run_key(name, k, fold), name, k, fold[1] if fold else None, config))
    if cfg.search:
        cfg = cfg.model_copy(update={"search": check_search(cfg.search, base, overrides, cfg.name, source)})
    return Study(cfg, base, list(overrides), variants, runs, source)


def check_search(search: SearchConfig, base: dict[str, Any], overrides: list[str], study: str,
                 source: str) -> SearchConfig:
    """Every search key must exist: build the configs at the ends of every range. Returns the search
    with its task's objective where the file names none (a set regression records no accuracy: its
    trials all failed, each with "no validation history")."""
    if search.sampler.name == "grid":
        for key, p in search.space.items():
            try:
                p.grid()
            except ValueError as exc:
                raise ConfigError(f"{source}: search.space.{key}: {exc}") from None
    conflict = nested_conflict({k: p.choices or [] for k, p in search.space.items()})
    if conflict:
        raise ConfigError(f"{source}: search.space: {conflict}")
    from visionstudy.tasks import task_of_dataset

    here = merge_run(base, search.base)
    dataset = here.get("data", {}).get("dataset", DataConfig.model_fields["dataset"].default)
    task = task_of_dataset(str(dataset))  # its runs' task: the data's (a point need not be valid alone)
    if "objective" not in search.model_fields_set:
        search = search.model_copy(update={"objective": task.default_monitor})
    elif search.objective not in task.validation_metrics:
        raise ConfigError(f"{source}: search.objective: {search.objective} is not measured by {task.name} "
                          f"runs; use {' or '.join(task.validation_metrics)}")
    for key, p in search.space.items():
        for value in p.values_to_check():
            try:
                point = merge_run(search.base, key_override(here, key, value, run_defaults))
            except ConfigError as exc:  # a key that cannot be set
                raise ConfigError(f"{source}: search.space.{exc}") from None
            try:
                cfg = build_run(base, point, overrides, study, "search", 0, None, source)
            except ConfigError as exc:  # names the file
                raise ConfigError(f"search.space.{key} = {value!r}: {exc}") from None
            if cfg.data.validates_on == "none":
                raise ConfigError(f"{source}: search.objective {search.objective} is measured on a "
                                  "validation set, and data.val_fraction: 0 leaves none; give "
                                  "data.val_fraction (in search.base) or data.validation: test")
    return search


def load_study(target: str | Path, overrides: list[str] = ()) -> Study:  # type: ignore[assignment]
    """Read, validate and expand a study file or `recipe:NAME`."""
    return study_from(*read_study(target), overrides)


def input_digest(raw: Any, overrides: list[str], source: str) -> str:
    """What a study was read from (its contents, --set overrides and source) and the version
    reading it: the same digest expands to the same runs."""
    import visionstudy

    text = json.dumps([visionstudy.__version__, raw, list(overrides), source], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def study_from(raw: Any, source: str, overrides: list[str] = ()) -> Study:  # type: ignore[assignment]
    """Validate and expand a study file's contents (a mapping); `source` names it in errors."""
    contents, runs, own, named = split_overrides(raw, overrides, source)
    study = expand(study_config(contents, named), runs, source)
    return dataclasses.replace(study, input_digest=input_digest(raw, list(overrides), source),
                               study_overrides=own)


def name_hint(unmatched: list[str], names: list[str]) -> str:
    """For names or patterns that match no variant: the variant a misspelt one was meant as, else a
    pattern these variants have ('lr=*' for lr=0.001 and lr=0.01)."""
    close = near_names(unmatched, names)
    if close:
        return f"did you mean {', '.join(close)}?"
    example = next((n.split(sep)[0] + sep + "*" for n in names for sep in "=+" if sep in n), f"{names[0]}*")
    return f"use variant names or patterns such as {example}"


def near_names(wanted: list[str], names: list[str]) -> list[str]:
    """The variants misspelt names were likely meant as (the nearest of each, once)."""
    from visionstudy.registry import near_name

    return list(dict.fromkeys(m for w in wanted if (m := near_name(w, names))))
