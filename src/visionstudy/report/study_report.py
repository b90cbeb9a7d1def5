"""The study report: per-variant statistics over seeds and folds, paired tests against the
baseline, the improvement trajectory, mean ± std curves, sweep plots, the search, and each
variant's own run report — from the study's run folders and database alone."""

from __future__ import annotations

import json
import math
import re
import shlex
import time
from collections import defaultdict
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from visionstudy.config import few, flatten
from visionstudy.errors import ReportError
from visionstudy.fsutil import writing
from visionstudy.report import figures as F
from visionstudy.report.document import FigureRef, Report, Section, Table
from visionstudy.report.drawing import ACTIVE, Sketch, drawing_in_background, save_figure
from visionstudy.report.progress import ReportProgress
from visionstudy.report.render import write_report
from visionstudy.report.run_report import ReportOptions, RunReportBuilder
from visionstudy.report.stats import ALPHA, against_baseline, band_std, small_n_note, summarize
from visionstudy.store.reader import RunArtifacts, load_run
from visionstudy.store.rundir import RunDir
from visionstudy.study.manifest import Manifest, read_manifest
from visionstudy.tasks.metrics import UNIT, metric

if TYPE_CHECKING:
    from visionstudy.study.schema import SearchConfig

# the columns of the settings table after the headline (those of the task's metrics): seed 004
# P3's one table of L, width, test / validation / train MSE, parameters, time and epochs
SETTING_METRICS = ("val_mse", "train_mse", "params", "train_seconds", "epochs_run")

# --set keys that do not change what a published number measured (where and how fast it ran)
NEUTRAL_OVERRIDES = ("data.data_dir", "data.download", "data.verify", "data.num_workers", "train.threads",
                     "train.device", "train.log_every_n_steps", "train.compile", "train.checkpoint_every",
                     "name", "out", "seed", "seeds", "description", "baseline", "ladder", "notes", "report")


SUBSETS = ("classes", "max_train_samples")  # data keys whose runs learn less than a published result


def changes_results(override: str) -> bool:
    key = override.split("=", 1)[0].strip()
    return not any(key == n or key.startswith(n + ".") for n in NEUTRAL_OVERRIDES)


def subset_of(data: dict[str, Any], said: list[str], published: dict[str, Any] | None = None) -> list[str]:
    """The data settings (`data.max_train_samples=3000`) by which a run's numbers measure less than
    a published result on the whole dataset, but for keys the `said` overrides already name and
    those the published numbers share (`classes: first:20` of seed 000's Table 4)."""
    named = {o.split("=", 1)[0].strip() for o in said}
    published = published or {}
    return [f"data.{k}={data[k]}" for k in SUBSETS if data.get(k) is not None and f"data.{k}" not in named
            and published.get(k) != data[k]]


def collect(study_dir: Path, study: Manifest) -> dict[str, list[tuple[str, RunArtifacts]]]:
    """The manifest's planned runs that have started (finished or not), per variant in the
    study's order (search-best last), each keyed by seed[/fold]. Folders the plan does not name
    (left from an earlier plan of the study) are not this study's results."""
    found: dict[str, list[tuple[str, RunArtifacts]]] = defaultdict(list)
    for planned in study.runs:
        run = RunDir(study_dir / planned.key)
        if run.config.is_file():
            found[planned.variant].append((planned.key.split("/", 1)[1], load_run(run.path, planned.key)))
    return {v: found[v] for v in dict.fromkeys([*study.variants, *found]) if v in found}


def file_prefixes(variants: list[str]) -> dict[str, str]:
    """Each variant's name for its figure folder, table files and anchors: the name itself with
    anything but letters, digits, '.', '_' and '-' as '-' (`resnet+lr=0.1` → `resnet-lr-0.1`), made
    unique with a number where two names meet."""
    out: dict[str, str] = {}
    for name in variants:
        base = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-.") or "variant"
        slug, n = base, 1
        while slug in out.values():
            n += 1
            slug = f"{base}-{n}"
        out[name] = slug
    return out


def fold_design(planned: list[Any], variant: str, values: dict[str, float]) -> set[str]:
    """A variant's folds ('fold-2'; '' for a run without) as planned, so that a failed or missing
    fold keeps the design and its other folds still pair with the baseline's; else as its runs are
    keyed (the search's final runs join the plan later)."""
    design = {"" if r.fold is None else f"fold-{r.fold}" for r in planned if r.variant == variant}
    return design or {k.partition("/")[2] for k in values}


def seed_means(values: dict[str, float]) -> dict[str, float]:
    """Each seed's mean over its folds: the pairing unit where two variants fold differently."""
    grouped: dict[str, list[float]] = defaultdict(list)
    for k, v in values.items():
        grouped[k.partition("/")[0]].append(v)
    return {seed: sum(vs) / len(vs) for seed, vs in grouped.items()}


class StudyReportBuilder:
    def __init__(self, study: Manifest, study_dir: Path, out: Path, opts: ReportOptions, db: str | None):
        self.study, self.dir, self.out, self.opts, self.db = study, study_dir, out, opts, db
        self.runs = collect(study_dir, study)
        self.finished = {v: [(k, a) for k, a in runs if a.metrics] for v, runs in self.runs.items()}
        self.baseline = study.baseline if study.baseline in self.finished else next(iter(self.finished), None)
        from visionstudy.tasks import get_task

        task = get_task(study.task)
        self.maximize = task.maximize
        self.example = task.model_kind  # what one input is: an image, a set
        self.metrics = [metric(k) for k in task.metrics]
        self.primary, self.primary_label = task.headline, task.headline_label
        self.glance = task.glance

    def best_of(self, means: dict[str, float]) -> str | None:
        pick = max if self.maximize else min
        return pick(means, key=means.__getitem__, default=None)

    def fig(self, sketch: Sketch, stem: str, caption: str, wide: bool = False) -> FigureRef:
        return FigureRef("figures/" + save_figure(sketch, self.out / "figures", stem, **self.opts.vector),
                         caption, wide)

    def values(self, variant: str, key: str) -> dict[str, float]:
        """Metric per run, keyed by seed[/fold] so variants pair up."""
        out = {}
        for k, a in self.finished.get(variant, []):
            v = metric(key).read(a.metrics or {})
            if v is not None:
                out[k] = v
        return out

    def stat(self, variant: str, key: str) -> Any:
        """Mean, std and the range-respecting interval of one metric over a variant's runs."""
        return summarize(list(self.values(variant, key).values()), metric(key).bounds)

    def comparable(self) -> list[str]:
        """The --set overrides that change what published numbers measured (empty: comparable)."""
        return [o for o in self.study.overrides if changes_results(o)]

    # ---------------------------------------------------------------------------------- sections

    def summary(self) -> Section:
        cols = ["variant", "runs"]
        for m in self.metrics:
            cols += [f"{m.label} mean", f"{m.label} std", f"{m.label} 95% CI low", f"{m.label} 95% CI high"]
        rows = []
        for variant in self.finished:
            row: list[Any] = [variant, len(self.finished[variant])]
            for m in self.metrics:
                s = self.stat(variant, m.key)
                row += [s.mean, s.std, s.ci_low, s.ci_high]
            rows.append(row)
        repeated = any(len(runs) > 1 for runs in self.finished.values())  # else every std cell is '–'
        s = Section("Variants", "variants", tables=[Table(
            "Per variant: mean and standard deviation over seeds and folds", cols, rows, "variants.csv",
            note="std is the sample standard deviation (n − 1) over the variant's runs (n in 'runs'); "
                 "95% confidence intervals are Student-t intervals of the mean, cut at the metric's "
                 "range (accuracy, F1 and AUC within 0–1; losses, errors and times at 0). One run "
                 "has neither: its cells are '–'.", inline=repeated)])
        if not repeated:
            s.notes.append("Each variant has one run: no standard deviation or interval to show, and each "
                           "value is in 'At a glance' (more seeds, `seeds: 3` in the study file, give "
                           "them).")
        glance = ["variant", "runs", *(metric(k).label for k in self.glance), "parameters"]
        s.tables.insert(0, Table("At a glance", glance, [
            [v, len(self.finished[v]),
             *(self.stat(v, k).pm() for k in self.glance), self.stat(v, "params").mean]
            for v in self.finished]))
        stats = {v: self.stat(v, self.primary) for v in self.finished}
        shown = {v: st for v, st in stats.items() if math.isfinite(st.mean)}
        if len(shown) >= 2:  # seed 000's Fig 12: the headline metric of every model side by side
            s.figures.append(self.fig(
                partial(F.bar_comparison, list(shown), [st.mean for st in shown.values()],
                                 [st.std for st in shown.values()], self.primary_label,
                                 f"{cap(self.primary_label)} per variant"),
                "variant_bars", f"{cap(self.primary_label)} per variant: the mean over its runs, error "
                "bars ±1 standard deviation over seeds and folds (none for a variant with one run)."))
        described = [v for v in self.finished if self.study.notes.get(v)
                     or self.study.validates_on(v) != "split"]
        if described:
            on = {"split": "held-out split", "test": "the test set (optimistic)", "none": "nothing"}
            s.tables.insert(1, Table("What each variant reproduces, and what it validates on",
                                     ["variant", "reproduces", "validates on"],
                                     [[v, self.study.notes.get(v, ""), on[self.study.validates_on(v)]]
                                      for v in described], "variant_notes.csv"))
        return s

    def tests(self) -> Section:
        s = Section("Against the baseline", "tests")
        if self.baseline is None:
            return s
        base = self.values(self.baseline, self.primary)
        others = [v for v in self.finished if v != self.baseline]
        pairs, by_seed = [], []
        for variant in others:
            mine, theirs = self.values(variant, self.primary), base
            runs = self.study.runs
            if fold_design(runs, variant, mine) != fold_design(runs, self.baseline, theirs):  # CV unlike it
                mine, theirs = seed_means(mine), seed_means(theirs)
                by_seed.append(variant)
            keys = sorted(set(theirs) & set(mine))
            pairs.append(([mine[k] for k in keys], [theirs[k] for k in keys]))
        tests = against_baseline(pairs)
        rows = [[v, p.n, p.diff, p.t_p, p.t_p_holm, p.wilcoxon_p, p.wilcoxon_p_holm, p.effect, p.verdict]
                for v, p in zip(others, tests, strict=True)]
        if not rows:
            return s
        m = sum(p.t_p is not None for p in tests)
        s.tables.append(Table(
            f"{cap(self.primary_label)} difference to '{self.baseline}', paired by seed and fold",
            ["variant", "pairs", "mean difference", "paired t-test p", "t-test p (Holm)", "Wilcoxon p",
             "Wilcoxon p (Holm)", "effect size (d_z)", f"at {ALPHA:.0%} (Holm, t-test)"], rows,
            "paired_tests.csv",
            note=f"{'Positive' if self.maximize else 'Negative'} differences are better than the "
                 "baseline. Tests: the paired t-test (scipy.stats.ttest_rel) gives the verdict; the "
                 "Wilcoxon signed-rank test (scipy.stats.wilcoxon) is beside it. "
                 + (f"Holm-adjusted p-values (statsmodels) correct for the {m} variants compared with "
                    f"the one baseline; the verdict reads the adjusted t-test p." if m > 1 else
                    "One comparison: Holm's adjustment leaves p unchanged." if m else
                    "No variant has two or more runs paired with the baseline's, so nothing is "
                    "tested: more seeds (`seeds: 3` in the study file) give each a test.")))
        if by_seed:
            s.notes.append(f"{', '.join(by_seed)} {'is' if len(by_seed) == 1 else 'are'} cross-validated "
                           f"unlike '{self.baseline}' (other folds, or none): paired by seed, each seed's "
                           "value the mean over its folds.")
        note = small_n_note([p.n for p in tests], m)
        if note:
            s.notes.append(note)
        return s

    def trajectory(self) -> Section:
        """The study's declared ladder (`ladder:` in the study file), step by step; none without one."""
        s = Section("Improvement trajectory", "trajectory")
        ladder = [v for v in self.study.ladder if v in self.finished]
        if len(ladder) < 2:
            return s
        label = self.primary_label
        means = [self.stat(v, self.primary) for v in ladder]
        trajectory = partial(F.metric_line, ladder, [m.mean for m in means], [m.std for m in means],
                             "step of the ladder", label, f"{cap(label)} along the ladder (mean ± std)",
                             categorical=True)
        s.figures.append(self.fig(trajectory,
                                  "trajectory", f"Each step of the study's ladder: {label}, mean ± std over "
                                  "its runs."))
        rows = [[v, m.n, m.mean, m.std, m.mean - means[i - 1].mean if i else None,
                 m.mean - means[0].mean if i else None]
                for i, (v, m) in enumerate(zip(ladder, means, strict=True))]
        s.tables.append(Table("Step by step", ["variant", "runs", f"{label} (mean)", "std",
                                               "change from the previous", f"change from {ladder[0]}"],
                              rows, "trajectory.csv"))
        panels = []
        for v in ladder:
            m = (self.finished[v][0][1].metrics or {})
            if m.get("confusion_matrix"):
                acc = m.get("test_accuracy")
                panels.append((f"{v}" + (f" ({acc:.2%})" if acc is not None else ""),
                               np.array(m["confusion_matrix"])))
        if len(panels) >= 2:
            names = (self.finished[ladder[0]][0][1].metrics or {}).get("class_names") or []
            s.figures.append(self.fig(partial(F.confusion_grid, panels, [str(n) for n in names]),
                                      "ladder_confusions",
                                      "The ladder's confusion matrices side by side (each variant's first "
                                      "run, rows normalised by true class).", wide=True))
        return s

    def curves(self) -> Section:
        """Train and validation loss and accuracy per epoch (mean, ±1 std band): of every variant,
        or of each chart the study file names (`report.curves`: the seed's comparisons)."""
        s = Section("Learning curves", "curves", wide=True)
        charts = {name: self.study.matching(patterns)
                  for name, patterns in (self.study.report.get("curves") or {}).items()}
        stems = file_prefixes(list(charts))
        for chart, variants in (charts or {"": list(self.runs)}).items():
            s.figures += self.curve_figures(chart, stems.get(chart, ""), variants)
        return s

    def curve_figures(self, chart: str, stem: str, variants: list[str]) -> list[FigureRef]:
        keys = [("val_accuracy", "validation accuracy"), ("train_accuracy", "training accuracy"),
                ("val_loss", "validation loss"), ("train_loss", "training loss")]
        out = []
        for key, label in keys:
            groups, absent = [], []
            for variant in variants:
                hist = [a.history for _, a in self.runs.get(variant, []) if a.history]
                if not hist:
                    continue
                n = min(len(h) for h in hist)
                arr = np.array([[r.get(key, math.nan) for r in h[:n]] for h in hist], dtype=float)
                if np.isnan(arr).all():  # e.g. accuracy of a regression run, or no validation
                    absent.append(variant)
                    continue
                groups.append((variant, np.arange(1, n + 1), arr.mean(0), band_std(arr)))
            if not groups:
                continue
            title = f"{cap(label)} per epoch" + (f": {chart}" if chart else "")
            what = f"{chart} ({', '.join(variants)})" if chart else "per variant"
            figure = partial(F.mean_std_curves, groups, label, f"{title} (mean, ±1 std over seeds/folds)")
            out.append(self.fig(figure, f"curves_{stem}_{key}" if chart else f"curves_{key}",
                                f"{cap(label)}, {what}.{self.not_drawn(absent, key)}"))
        return out

    def not_drawn(self, absent: list[str], key: str) -> str:
        """What a curves chart's caption says of the variants that recorded none of its values (the
        best variant missing from a chart, unsaid, read as a mistake)."""
        if not absent:
            return ""
        silent = key.startswith("val_") and all(self.study.validates_on(v) == "none" for v in absent)
        why = ("it validates on nothing: data.val_fraction 0" if len(absent) == 1 else
               "they validate on nothing: data.val_fraction 0") if silent else "none recorded"
        return f" Not drawn: {few(absent, 6)} ({why})."

    def costs(self) -> Section:
        """The headline metric against what it cost: parameters, FLOPs and train time."""
        s = Section(f"{cap(self.primary_label)} against cost", "costs")
        points = []
        for v in self.finished:
            m = self.stat(v, self.primary)
            flops = [f for _, a in self.finished[v] if (f := (a.metrics or {}).get("flops"))]
            points.append((v, m.mean, self.stat(v, "params").mean or None,
                           float(np.mean(flops)) if flops else None,
                           self.stat(v, "train_seconds").mean or None))
        if len(points) >= 2:
            caption = (f"{cap(self.primary_label)} (mean over runs) against parameters, FLOPs per "
                       f"{self.example} and training time, one point per variant.")
            figure = partial(F.cost_scatter, points, self.primary_label, self.example)
            s.figures.append(self.fig(figure, "costs", caption, wide=True))
        return s

    def settings(self) -> Section:
        """One row per variant with the config keys that differ between variants as columns, sorted by
        the headline metric: the table a sweep or a DeepSets-style grid is read from."""
        s = Section("Results by setting", "settings")
        configs = {v: flatten(c) for v, c in self.study.settings.items()}
        for r in self.study.runs:  # a manifest written before settings were recorded
            configs.setdefault(r.variant, flatten(r.config))
        shown = [v for v in self.finished if v in configs]
        keys, note = setting_columns(differing([configs[v] for v in shown]), "variants")
        if len(shown) < 2 or not keys:
            return s
        more = [m for m in self.metrics if m.key in SETTING_METRICS]  # means
        rows = []
        for v in shown:
            m = self.stat(v, self.primary)
            rows.append([v, *(setting(configs[v].get(k)) for k in keys), m.mean, m.std, m.n,
                         *(self.stat(v, m.key).mean for m in more)])
        at = 1 + len(keys)  # the headline's mean
        rows.sort(key=lambda r: (math.isnan(r[at]), -r[at] if self.maximize else r[at]))
        s.tables.append(Table(f"Variants by the settings that differ, sorted by {self.primary_label}",
                              ["variant", *map(setting_label, keys), f"{self.primary_label} mean",
                               "std", "runs", *(m.label for m in more)], rows, "settings.csv",
                              note=f"{note}; the columns after 'runs' are means over the runs."))
        return s

    def folds(self) -> Section:
        """Per fold, then the cross-validated mean ± std of validation and test metrics per variant."""
        s = Section("Cross-validation", "folds")
        per_fold, summary = [], []
        for v, runs in self.finished.items():
            folded = [(k, a) for k, a in runs if "/fold-" in k]
            if not folded:
                continue
            for k, a in folded:
                seed, fold = k.split("/")
                m = a.metrics or {}
                per_fold.append([v, seed.removeprefix("seed-"), fold.removeprefix("fold-"),
                                 *(m.get(k) for k in FOLD_METRICS)])
            row: list[Any] = [v, len(folded)]
            for key in ("val_accuracy", "test_accuracy", "test_loss"):
                st = summarize([(a.metrics or {}).get(key) for _, a in folded], metric(key).bounds)
                row.append(st.pm())
            summary.append(row)
        if not per_fold:
            return s
        s.tables.append(Table("Cross-validated mean ± std per variant", [
            "variant", "folds × seeds", "validation accuracy", "test accuracy", "test loss"], summary,
            "cv_summary.csv", note="Mean ± sample std over every fold of every seed. Validation is the "
            "held-out fold at the epoch kept; test is the fixed test set."))
        s.tables.append(Table("Per fold", ["variant", "seed", "fold", "validation accuracy",
                                           "validation loss",
                                           "test accuracy", "test loss"], per_fold, "cv_folds.csv"))
        return s

    def sweeps(self) -> Section:
        """One chart per swept key: numeric values as a line in numeric order, others in file order
        with short names; and for a grid over two keys, their interaction (a line per level)."""
        s = Section("Sweeps", "sweeps")
        blocks: dict[int, list[Any]] = defaultdict(list)
        for chart in self.study.sweeps:  # recorded in the manifest: never re-expanded here
            blocks[chart.block].append(chart)
            s.figures += self.sweep_figure(chart, len({c.key for c in self.study.sweeps
                                                       if c.block == chart.block}) > 1)
        seen: set[frozenset[str]] = set()  # a later block over the same keys: its own chart, numbered
        for block, charts in blocks.items():
            grid = [c for c in charts if set(c.points) == set(charts[0].points)]
            if len(grid) >= 2:  # the key with more values along the axis, a line per value of the other
                across, lines = sorted(grid[:2], key=lambda c: -len({json.dumps(v) for v in
                                                                     c.points.values()}))
                keys = frozenset((across.key, lines.key))
                s.figures += self.interaction(across, lines, block + 1 if keys in seen else None)
                seen.add(keys)
        return s

    def sweep_figure(self, chart: Any, others: bool) -> list[FigureRef]:
        label = chart.label
        points: dict[str, list[float]] = defaultdict(list)
        raw: dict[str, Any] = {}
        for variant, value in chart.points.items():
            raw[json.dumps(value)] = value
            for _, a in self.finished.get(variant, []):
                points[json.dumps(value)].append(float(metric(self.primary).read(a.metrics or {}) or np.nan))
        if len(points) < 2:
            return []
        order, numeric_axis = axis_order({k: raw[k] for k in points})
        summ = [summarize(points[k], metric(self.primary).bounds) for k in order]
        xs = [raw[k] for k in order] if numeric_axis else value_names([raw[k] for k in order])
        over = ("over every run with that value, whatever the block's other swept keys" if others
                else "over its runs (seeds, folds)")
        figure = partial(F.metric_line, xs, [m.mean for m in summ], [m.std for m in summ], chart.key,
                               self.primary_label, f"{cap(self.primary_label)} vs {label}",
                               categorical=not numeric_axis, joined=numeric_axis)
        return [self.fig(figure, "sweep_" + re.sub(r"[^A-Za-z0-9]+", "_", label),
                         f"{cap(self.primary_label)} for each value of {chart.key}: mean ± std {over}"
                         + (", in numeric order." if numeric_axis else "."))]

    def interaction(self, across: Any, lines: Any, block: int | None = None) -> list[FigureRef]:
        """Two keys of one grid: the first along the axis, a line per value of the second; each
        point is one combination (one variant), mean ± std over its seeds and folds."""
        xs, numeric = axis_order({json.dumps(v): v for v in across.points.values()})
        levels, _ = axis_order({json.dumps(v): v for v in lines.points.values()})  # the legend's order
        series = []
        for level in levels:
            stats = []
            for x in xs:
                variant = next((v for v in across.points if json.dumps(across.points[v]) == x
                                and json.dumps(lines.points.get(v)) == level), None)
                stats.append(self.stat(variant, self.primary) if variant else summarize([]))
            series.append((f"{lines.key} = {value_names([json.loads(level)])[0]}",
                           [st.mean for st in stats], [st.std for st in stats]))
        which = f" (sweep {block})" if block else ""
        title = f"{cap(self.primary_label)}: {across.key} × {lines.key}{which}"
        figure = partial(F.interaction_lines, value_names([json.loads(x) for x in xs]), series, across.key,
                         self.primary_label, title, joined=numeric)
        stem = "interaction_" + re.sub(r"[^A-Za-z0-9]+", "_", f"{across.key}_{lines.key}{which}").rstrip("_")
        return [self.fig(figure, stem,
                         f"{cap(self.primary_label)} of every combination of {across.key} and "
                         f"{lines.key}{f' in sweep {block}' if block else ''} "
                         "(one line per value of the second): mean ± std over each combination's "
                         "seeds and folds, not over the other key.")]

    def search(self) -> Section:
        s = Section("Hyperparameter search", "search")
        search = self.study.search_config()
        if search is None:
            return s
        import optuna

        from visionstudy.study.execute import Placement
        from visionstudy.study.search import TRIAL_COLUMNS, decoded, search_trials, trial_rows

        found = search_trials(Placement(self.dir.parent, self.db).url(self.study.name), self.study.name)
        if found is None:
            s.notes.append("The search has not started yet.")
            return s
        ostudy, trials = found
        keys = list(search.space)
        s.tables.append(Table("Trials", [*TRIAL_COLUMNS, *keys], readable(trial_rows(trials, search)),
                              "search_trials.csv"))
        done = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
        pruned = sum(t.state == optuna.trial.TrialState.PRUNED for t in trials)
        failed = sum(t.state == optuna.trial.TrialState.FAIL for t in trials)
        s.notes.append(f"{len(trials)} trials: {len(done)} complete, {pruned} pruned"
                       + (f", {failed} failed (their errors: `visionstudy study status`)" if failed else "")
                       + f" (objective: best {search.objective} of a trial).")
        if done:
            best = ostudy.best_trial
            s.tables.insert(0, Table("Best trial", ["parameter", "value"],
                                     [["trial", best.number], ["objective", best.value],
                                      *([k, as_written(v)]
                                        for k, v in decoded(search, best.params).items())]))
            history = partial(search_history, trials, ostudy.direction.name == "MAXIMIZE",
                              metric(search.objective).label)
            s.figures.append(self.fig(history, "search_history", "Objective of every complete trial, "
                                      "the last report of each pruned one, and the best so far of the "
                                      "complete ones."))
        curves = trial_curves([t for t in trials if t.intermediate_values], search)
        if curves:
            label = metric(search.objective).label
            title = f"{cap(label)} per epoch, one line per trial"
            s.figures.append(self.fig(
                partial(F.mean_std_curves, curves, label, title), "search_trial_curves",
                f"{cap(label)} of each trial per epoch (a pruned trial's line ends where it was "
                "stopped), labelled by its values."))
        if len(done) >= 2:
            try:
                imp = optuna.importance.get_param_importances(ostudy)
                s.tables.append(Table("Parameter importances (fANOVA)", ["parameter", "importance"],
                                      [[k, v] for k, v in imp.items()], "search_importances.csv"))
            except (RuntimeError, ValueError) as exc:
                s.notes.append(f"Parameter importances unavailable: {exc}")
        return s

    def published(self) -> Section:
        """The study's results beside the numbers it reproduces (when the data match) and the
        published results for its dataset; rows run with overrides that change what was measured
        are marked not comparable and name them."""
        s = Section("Published numbers", "published")
        ref = self.study.reference_config()
        data = self.study.data
        changed = self.comparable()
        notes_at = len(s.notes)
        if ref is not None:
            differs = {k: v for k, v in ref.data.items() if data.get(k) != v}
            if differs:
                ran = ", ".join(f"{k}={data.get(k)!r}" for k in differs)
                s.notes.append(f"The reference numbers ({ref.source}) are for "
                               f"{', '.join(f'{k}={v!r}' for k, v in ref.data.items())}; this study ran "
                               f"with {ran}, so they are not compared.")
            else:
                s.tables.append(self.reference_table(ref, changed))
        bench = benchmarks().get(str(data.get("dataset")))
        if bench and not data.get("classes"):
            rows = [[r["model"], "published", float(r["test_accuracy"]), "–"] for r in bench["rows"]]
            for v in self.finished:
                if self.study.data_of(v).get("dataset", data.get("dataset")) != data.get("dataset"):
                    continue  # a variant on another dataset has no row among this one's results
                m = self.stat(v, "test_accuracy")
                rows.append([f"{v} (this study)", f"ours, {m.n} run{'s' * (m.n > 1)}", m.mean,
                             self.verdict(v, changed, "comparable", "not comparable: ")])
            rows.sort(key=lambda r: -r[2])
            s.tables.append(Table(f"Published results on {data.get('dataset')}, with this study's variants",
                                  ["model", "source", "test accuracy", "comparable"], rows, "benchmark.csv",
                                  note=bench["source"]))
        if changed and s.tables:  # said only above rows that exist
            s.notes.insert(notes_at, "This study ran with --set " + ", ".join(changed) + ": its numbers are "
                           "not comparable with the published ones, and every row below says so.")
        return s

    def verdict(self, variant: str, changed: list[str], yes: str, no: str,
                published: dict[str, Any] | None = None, flag: str = "") -> str:
        """Whether a variant's numbers compare with a published result (on `published` data
        settings): not where --set changed what was measured (said after `flag`) or the variant
        trained on a subset (its own data settings); comparable but optimistic where it validated on
        the test set."""
        said = [flag + ", ".join(changed)] if changed else []
        reasons = said + subset_of(self.study.data_of(variant), changed, published)
        if reasons:
            return no + "; ".join(reasons)
        return yes + (" (optimistic: validates on the test set)"
                      if self.study.validates_on(variant) == "test" else "")

    def reference_table(self, ref: Any, changed: list[str]) -> Table:
        rows = []
        for variant, numbers in ref.variants.items():
            verdict = self.verdict(variant, changed, "yes", "no: ", ref.data, flag="--set ")
            for key, published in numbers.items():
                if key == "note":
                    continue
                m = self.stat(variant, key)
                ours = m.pm() if key != "params" or m.n == 0 else f"{m.mean:,.0f}"
                diff = m.mean - float(published) if m.n else None
                rows.append([variant, key, ours, published, diff, verdict if m.n else "–",
                             numbers.get("note", "")])
        return Table(f"Against {ref.source}", ["variant", "metric", "this study (mean ± std)",
                                               "published", "difference", "comparable", "note"], rows,
                     "reference.csv",
                     note="Differences are this study's mean minus the published number; '–' where "
                          "the variant has no finished run yet. ± is the sample std over seeds; one run "
                          "shows its value alone.")

    def per_variant(self, progress: ReportProgress) -> Section:
        """Each variant's first run: in full for up to BRIEF_ABOVE variants; beyond, the best and the
        ladder in full and the others brief (their tables: results, history, confused pairs, per
        class, config)."""
        s = Section("Each variant's first run", "runs")
        many = len(self.finished) > BRIEF_ABOVE
        best = self.best_of({v: self.stat(v, self.primary).mean for v in self.finished})
        named = self.study.matching((self.study.report or {}).get("full") or [])
        full = {best, *self.study.ladder, *named}
        if many:
            s.notes.append(f"{len(self.finished)} variants: the best ({best})"
                           + (" and the ladder's" if self.study.ladder else "")
                           + (" and those the study names (report.full)" if named else "")
                           + " in full, the others in brief (their tables); `visionstudy report RUN_DIR` "
                           "writes any run's full report.")
        prefixes = file_prefixes(list(self.finished))
        for variant, runs in self.finished.items():
            if not runs:
                continue
            progress.step(f"variant {variant}")
            _, art = runs[0]
            b = RunReportBuilder(art, self.out, prefixes[variant], self.opts)
            s.children.append(Section(f"{variant} ({art.label})", prefixes[variant],
                                      children=b.sections(brief=many and variant not in full)))
        return s

    def failures(self) -> dict[str, str]:
        """The errors of the planned runs that failed (none when the database cannot be read: the
        report is still written from the run folders)."""
        from visionstudy.errors import StorageError
        from visionstudy.study.status import study_failures

        finished = {f"{v}/{k}" for v, runs in self.finished.items() for k, _ in runs}
        try:
            return study_failures(self.dir, self.db, [r.key for r in self.study.runs
                                                      if r.key not in finished])
        except StorageError:
            return {}

    def build(self) -> Report:
        total = sum(len(r) for r in self.runs.values())
        done = sum(len(r) for r in self.finished.values())
        banners = []
        if done < total:
            banners.append(f"{total - done} of {total} runs have not finished; their variants are "
                           "summarised over the finished runs only.")
        failed = self.failures()
        if failed:
            from visionstudy.study.status import failure_lines

            banners.append(f"{len(failed)} run{'s' * (len(failed) > 1)} failed: "
                           + "; ".join(failure_lines(failed)))
        planned = len(self.study.runs)
        if total < planned:
            banners.append(f"{planned - total} planned runs have not started.")
        on_test = [v for v in self.study.variants if self.study.validates_on(v) == "test"]
        if on_test:
            shown = few(on_test, 6)
            which = ("Every variant validates" if len(on_test) == len(self.study.variants)
                     else f"{len(on_test)} of {len(self.study.variants)} variants ({shown}) validate"
                     if len(on_test) > 1 else f"Variant {shown} validates")
            banners.append(f"{which} on the test set (data.validation: test, as Keras' "
                           "validation_data): the epoch kept and early stopping were chosen on it, so "
                           "their test numbers are optimistic. Quote held-out or cross-validated numbers.")
        best = self.best_of({v: self.stat(v, self.primary).mean for v in self.finished})
        cards = [("runs finished", f"{done}/{max(total, planned)}"), ("variants", str(len(self.finished)))]
        if best:
            m = self.stat(best, self.primary)
            cards += [("best variant", best), (f"its {self.primary_label}",
                                               m.pm(percent=metric(self.primary).bounds == UNIT))]
        steps = [self.summary, self.published, self.tests, self.trajectory, self.settings, self.sweeps,
                 self.folds, self.costs, self.curves, self.search]
        total = 2 + sum(bool(r) for r in self.finished.values())
        with ReportProgress(total, self.opts.progress) as bar:
            bar.step("the study's tables and charts")  # each step quick: its figures draw elsewhere
            sections = [step() for step in steps]
            sections.append(self.per_variant(bar))
            writer = ACTIVE.get()  # the drawing processes' last figures: seconds, said, not a pause
            left = sum(not future.done() for future, _, _ in writer.pending) if writer else 0
            bar.step("writing the figures" + (f": {left} still drawing" if left else ""))
            if writer is not None:
                writer.wait()
        subtitle = (self.study.description or "") + f" — {self.dir}"
        if self.study.reproduces:
            subtitle = f"{subtitle}. Reproduces: {self.study.reproduces}"
        return Report(f"Study report: {self.study.name}", subtitle.strip(" —"), banners, cards,
                      [s for s in sections if s.figures or s.tables or s.notes or s.children])


def axis_order(values: dict[str, Any]) -> tuple[list[str], bool]:
    """A swept key's values (by their JSON) in the order a chart draws them, and whether they are
    numbers: numbers in numeric order, others (choices, lists, sections) in the file's order."""
    numeric = all(isinstance(v, int | float) and not isinstance(v, bool) for v in values.values())
    return (sorted(values, key=lambda k: values[k]) if numeric else list(values)), numeric


MAX_SETTING_COLUMNS = 8
BRIEF_ABOVE = 8  # more variants: brief per-variant sections, but for the best and the ladder
FOLD_METRICS = ("val_accuracy", "val_loss", "test_accuracy", "test_loss")
IGNORED_SETTINGS = ("name", "seed", "out", "data.split_seed", "data.fold", "data.folds")


def differing(configs: list[dict[str, Any]], ignored: tuple[str, ...] = IGNORED_SETTINGS) -> list[str]:
    """The keys whose values differ between configs, in first-seen order, but for `ignored`
    (a study's variants: their names and their repeats' seeds and folds)."""
    keys: list[str] = []
    for c in configs:
        keys += [k for k in c if k not in keys]
    keys = [k for k in keys if not any(k == i or k.startswith(i + ".") for i in ignored)]
    return [k for k in keys if len({json.dumps(c.get(k), sort_keys=True) for c in configs}) > 1]


def setting_label(key: str) -> str:
    """A settings table's column: the key without its section (`optimizer.lr`), a section's
    name by the section (`model`, `optimizer`: a column named `name` read as the run's)."""
    section, _, rest = key.partition(".")
    if rest == "name":
        return section
    return rest.removesuffix(".name") or key


def setting_columns(keys: list[str], between: str) -> tuple[list[str], str]:
    """The keys a settings table shows (the first MAX_SETTING_COLUMNS), and its note naming the
    others, which differ too (a comparison of runs trained by hand once lost its optimizer)."""
    from visionstudy.config import few

    shown, rest = keys[:MAX_SETTING_COLUMNS], keys[MAX_SETTING_COLUMNS:]
    note = (f"Columns: every config key whose value differs between the {between}, named without "
            "their section" + (f"; {len(rest)} more differ, not shown: {few(rest, 8)}" if rest else ""))
    return shown, note


def setting(value: Any) -> str:
    """A config value as a table cell, formatted by magnitude: 49, 0.001, 3e-05, [3, 3, 3], yes; a
    section by its name and fields (`sgd, lr 0.05`), a list of them one after another (`flip; crop,
    padding 4`), an empty list as none."""
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, dict):
        return ", ".join([str(value["name"])] * ("name" in value)
                         + [f"{k} {setting(v)}" for k, v in value.items() if k != "name"])
    if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        return "; ".join(setting(v) for v in value)
    if isinstance(value, list):
        return json.dumps(value) if value else "none"
    return str(value)


def value_names(values: list[Any]) -> list[str]:
    """Sweep values as short tick labels: a section by its name and what differs between the
    values (`adagrad, lr 0.01`; `sgd, momentum 0.9`), numbers and lists as `setting` writes them."""
    sections = [v for v in values if isinstance(v, dict)]
    keys = [k for k in dict.fromkeys(k for v in sections for k in v) if k != "name"
            and len({json.dumps(v.get(k)) for v in sections}) > 1]

    def name(v: Any) -> str:
        if not isinstance(v, dict):
            return setting(v)
        parts = [str(v["name"])] if "name" in v else []
        return ", ".join(parts + [f"{k} {setting(v[k])}" for k in keys if k in v])

    return [name(v) for v in values]


def readable(rows: list[list[Any]]) -> list[list[Any]]:
    """Table rows whose sections and lists are labelled as sweep values are (`value_names`: a
    section by its name and what differs between the rows'), numbers kept."""
    columns = [value_names(list(c)) if any(isinstance(v, dict | list) for v in c) else list(c)
               for c in zip(*rows, strict=True)]
    return [list(r) for r in zip(*columns, strict=True)]


def as_written(value: Any) -> Any:
    """A value to copy into a study file: a float to 6 digits (lr 0.00237, not 0.0024), a section or
    list in YAML's flow style (`{name: sgd, lr: 0.05}`)."""
    import yaml

    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, dict | list):
        return yaml.safe_dump(value, default_flow_style=True, sort_keys=False, width=1_000).strip()
    return value


def trial_curves(trials: list[Any], search: SearchConfig) -> list[tuple[str, np.ndarray, np.ndarray, None]]:
    """Each search trial's objective per epoch, labelled by its values, as `F.mean_std_curves`
    takes them; a whole section chosen (an optimizer) by its name and what differs between the
    trials' (`optimizer sgd, lr 0.05`), not its JSON."""
    from visionstudy.study.search import decoded

    labels = trial_labels([(t.number, decoded(search, t.params)) for t in trials])
    out = []
    for trial, label in zip(trials, labels, strict=True):
        epochs = sorted(trial.intermediate_values)
        values = [trial.intermediate_values[e] for e in epochs]
        out.append((label, np.array(epochs, dtype=float), np.array(values), None))
    return out


def trial_labels(trials: list[tuple[int, dict[str, Any]]]) -> list[str]:
    """`#3: lr 0.001, dropout 0.25`: search trials by their values, each key by its last part,
    sections by what differs between the trials (`value_names`)."""
    keys = list(dict.fromkeys(k for _, p in trials for k in p))
    names = {k: value_names([p.get(k) for _, p in trials]) for k in keys}
    return [f"#{n}: " + ", ".join(f"{k.rsplit('.', 1)[-1]} {names[k][i]}" for k in keys if k in p)
            for i, (n, p) in enumerate(trials)]


def cap(text: str) -> str:
    """First letter upper case, the rest kept ('test MSE' → 'Test MSE')."""
    return text[:1].upper() + text[1:]


def benchmarks() -> dict[str, Any]:
    """Published results per dataset, shipped with the package (report/benchmarks.yaml)."""
    import yaml

    return yaml.safe_load((Path(__file__).parent / "benchmarks.yaml").read_text()) or {}


def search_history(trials: list[Any], maximize: bool, label: str = "objective") -> F.Figure:
    """Each complete trial's objective, each pruned one's last report, and the best so far of the
    complete ones (Optuna gives a pruned trial its last report as its value: it was drawn as complete
    and could set the best line, which the search's best trial never is)."""
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    fig, ax = plt.subplots(figsize=(8, 4.2))
    complete = [t for t in trials if t.state.name == "COMPLETE" and t.value is not None]
    xs, ys = [t.number for t in complete], [t.value for t in complete]
    ax.scatter(xs, ys, s=18, color="#4c72b0", label="complete trial")
    pruned = [(t.number, list(t.intermediate_values.values())[-1]) for t in trials
              if t.state.name == "PRUNED" and t.intermediate_values]
    if pruned:
        px, py = zip(*pruned, strict=True)
        ax.scatter(px, py, s=18, marker="x", color="#999999",
                   label="pruned (last report)")
    if ys:
        best = np.maximum.accumulate(ys) if maximize else np.minimum.accumulate(ys)
        ax.step(xs, best, where="post", color="#d62728", label="best so far")
    ax.set(xlabel="trial", ylabel=f"{label} ({'higher' if maximize else 'lower'} is better)",
           title="Optimisation history")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # trial numbers, not 0.5
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def build_study_report(study_dir: Path, out: Path, opts: ReportOptions | None = None,
                       db: str | None = None) -> Path:
    from visionstudy.report import check_out

    manifest = read_manifest(study_dir)  # not a study folder: its error
    opts = opts or ReportOptions()
    start = time.perf_counter()
    builder = StudyReportBuilder(manifest, study_dir, out, opts, db)
    if not any(builder.finished.values()) and not builder.failures():  # empty tables, written, exit 0
        where = shlex.quote(str(study_dir))  # (a study whose every run failed is reported: their errors)
        raise ReportError(f"{study_dir}: no run of study {builder.study.name} has finished yet "
                          f"({len(builder.study.runs)} planned): nothing to report; `visionstudy study run "
                          f"{where}` trains them, and `visionstudy study status {where}` says where each "
                          "stands")
    check_out(out, opts.force)  # inside any run folder is refused; the study folder itself is fine
    with writing(out):
        out.mkdir(parents=True, exist_ok=True)
        with drawing_in_background():
            report = builder.build()
        report.seconds = time.perf_counter() - start
        return write_report(report, out, builder.opts.formats)

