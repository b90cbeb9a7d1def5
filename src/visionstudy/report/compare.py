"""Several runs side by side: the comparison table of the seeds, overlaid curves, then each run."""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

from visionstudy.errors import ReportError
from visionstudy.report import figures as F
from visionstudy.report.document import FigureRef, Report, Section, Table
from visionstudy.report.drawing import save_figure
from visionstudy.report.run_report import Evaluated, ReportOptions, RunReportBuilder
from visionstudy.store.reader import RunArtifacts

COLUMNS = ["run", "model", "test accuracy", "top-1 error", "test loss", "top-5 error", "macro F1",
           "weighted F1",
           "macro AUC", "parameters", "FLOPs", "train seconds", "epochs"]


def comparison_row(art: RunArtifacts, ev: Evaluated | None) -> list[Any]:
    m = art.metrics or {}
    e = ev.metrics if ev else {}
    top5 = e.get("top5_accuracy")
    return [
        art.label, art.config.get("model", {}).get("name"), e.get("accuracy"),
        None if e.get("accuracy") is None else 1 - e["accuracy"], e.get("loss"),
        None if top5 is None else 1 - top5, e.get("f1_macro"), e.get("f1_weighted"),
        e.get("roc_auc_macro"), m.get("params", art.resolved.get("model", {}).get("params")),
        m.get("flops", art.resolved.get("model", {}).get("flops")), m.get("train_seconds"),
        m.get("epochs_run", len(art.history)),
    ]


def metric_row(art: RunArtifacts, keys: tuple[str, ...]) -> list[Any]:
    """Another task's row: its own metrics from metrics.json (classification's come from the
    predictions, with top-5 error and weighted F1)."""
    m = art.metrics or {}
    return [art.label, art.config.get("model", {}).get("name"), *(m.get(k) for k in keys),
            m.get("params"), m.get("flops"), m.get("train_seconds"), m.get("epochs_run", len(art.history))]


def one_task(arts: list[RunArtifacts]) -> Any:
    """The task the runs share (classification where none has finished); runs of several tasks have
    no common columns, so comparing them is an error naming each run's task."""
    from visionstudy.tasks import task_of_metrics

    tasks = {a.label: task_of_metrics(a.metrics) for a in arts if a.metrics}
    if len({t.name for t in tasks.values()}) > 1:
        shown = ", ".join(f"{label} ({t.name})" for label, t in tasks.items())
        raise ReportError(f"runs of different tasks cannot share one comparison: {shown}; report each "
                          "task's runs apart")
    return next(iter(tasks.values()), task_of_metrics({}))


def data_note(arts: list[RunArtifacts]) -> list[str]:
    """A warning where the runs were tested on different data: their numbers share no test set."""
    seen: dict[str, list[str]] = {}
    for a in arts:
        data = a.config.get("data") or {}
        key = ", ".join(f"{k} {data[k]}" for k in ("dataset", "split", "path", "classes") if data.get(k))
        seen.setdefault(key or "unknown data", []).append(a.label)
    if len(seen) < 2:
        return []
    where = "; ".join(f"{key}: {', '.join(labels)}" for key, labels in seen.items())
    return [f"The runs were tested on different data ({where}): their numbers share no test set."]


def settings_table(arts: list[RunArtifacts]) -> list[Table]:
    """The runs by the config keys whose values differ between them (a study's 'Results by
    setting'): what was changed between runs trained by hand, read off one table."""
    from visionstudy.config import flatten
    from visionstudy.report.study_report import differing, setting, setting_columns, setting_label
    from visionstudy.validate import run_defaults, shapes_later

    # what the runs were told differently (their seeds and folds too: two runs of one config that
    # differ by their seed alone say so; not their names or folders), and that still differs with
    # the defaults the others took (one run asked for the default val_fraction 0.2)
    ignored = ("name", "out")
    asked = differing([flatten(a.asked) for a in arts], ignored)
    with shapes_later():  # cells with those defaults (width 100, not '–')
        configs = [flatten(run_defaults(a.asked) or a.asked) for a in arts]
    filled = set(differing(configs, ignored))
    keys, note = setting_columns([k for k in asked if k in filled], "runs")
    if not keys:
        return []
    return [Table("Runs by the settings that differ", ["run", *map(setting_label, keys)],
                  [[a.label, *(setting(c.get(k)) for k in keys)] for a, c in zip(arts, configs, strict=True)],
                  "settings.csv", note=f"{note}.")]


def compare_report(arts: list[RunArtifacts], task: Any, out: Path, opts: ReportOptions) -> Report:
    """The runs of one `task` (`one_task`) side by side."""
    from visionstudy.tasks.metrics import metric

    figs = out / "figures"
    builders = [RunReportBuilder(art, out, f"run{i + 1}", opts) for i, art in enumerate(arts)]
    classifier = "logits" in task.prediction_keys  # its columns are measured from the predictions
    if classifier:
        columns, rows = COLUMNS, [comparison_row(b.art, b.ev) for b in builders]
    else:
        columns = ["run", "model", *(metric(k).label for k in task.glance), *COLUMNS[-4:]]
        rows = [metric_row(b.art, task.glance) for b in builders]
    overview = Section("Comparison", "comparison", tables=[Table("Runs side by side", columns, rows,
                                                                  "comparison.csv"), *settings_table(arts)])
    with_history = [(a.label, a.history) for a in arts if a.history]
    if with_history:
        overview.figures.append(FigureRef(
            "figures/" + save_figure(partial(F.overlaid_curves, with_history), figs, "curves_overlaid",
                                       **opts.vector),
            ("Loss and accuracy" if classifier else "Loss") +
            " per epoch of every run (solid: validation, dashed: train)."))
    scored = [(r[0], r[2]) for r in rows if r[2] is not None]
    if scored:
        label = task.headline_label
        overview.figures.append(FigureRef(
            "figures/" + save_figure(partial(F.bar_comparison, [s[0] for s in scored], [s[1] for s in scored],
                                             None, label, f"{label[0].upper()}{label[1:]} per run"),
                                     figs, "accuracy_bars", **opts.vector),
            f"{label[0].upper()}{label[1:]} of each run."))
    banners: list[str] = data_note(arts)
    per_run = Section("Runs", "runs")
    for i, b in enumerate(builders):
        banners += b.banners()
        per_run.children.append(Section(b.art.label, f"run{i + 1}", children=b.sections()))
    return Report(f"Comparison of {len(arts)} runs", ", ".join(a.label for a in arts), banners,
                  [], [overview, per_run])
