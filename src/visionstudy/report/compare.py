"""Several runs side by side: the comparison table of the seeds, overlaid curves, then each run."""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

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


def compare_report(arts: list[RunArtifacts], out: Path, opts: ReportOptions) -> Report:
    figs = out / "figures"
    builders = [RunReportBuilder(art, out, f"run{i + 1}", opts) for i, art in enumerate(arts)]
    rows = [comparison_row(b.art, b.ev) for b in builders]
    overview = Section("Comparison", "comparison", tables=[Table("Runs side by side", COLUMNS, rows,
                                                                  "comparison.csv")])
    with_history = [(a.label, a.history) for a in arts if a.history]
    if with_history:
        overview.figures.append(FigureRef(
            "figures/" + save_figure(partial(F.overlaid_curves, with_history), figs, "curves_overlaid",
                                       **opts.vector),
            "Loss and accuracy per epoch of every run (solid: validation, dashed: train)."))
    scored = [(r[0], r[2]) for r in rows if r[2] is not None]
    if scored:
        overview.figures.append(FigureRef(
            "figures/" + save_figure(partial(F.bar_comparison, [s[0] for s in scored], [s[1] for s in scored],
                                                        None, "test accuracy", "Test accuracy per run"),
                                       figs, "accuracy_bars", **opts.vector),
            "Test accuracy of each run."))
    banners: list[str] = []
    per_run = Section("Runs", "runs")
    for i, b in enumerate(builders):
        banners += b.banners()
        per_run.children.append(Section(b.art.label, f"run{i + 1}", children=b.sections()))
    return Report(f"Comparison of {len(arts)} runs", ", ".join(a.label for a in arts), banners,
                  [], [overview, per_run])
