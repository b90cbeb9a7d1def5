"""The report of one run: headline numbers, curves, confusions, per-class results, ROC,
calibration, t-SNE, data and error figures, Grad-CAM, config and versions."""

from __future__ import annotations

import functools
import logging
import math
import threading
from concurrent.futures import Future
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from visionstudy.errors import VisionStudyError
from visionstudy.evaluate import (
    calibration,
    classification_metrics,
    confused_pairs,
    per_class_metrics,
    probabilities,
    roc_curves,
    subsample,
    tsne_embedding,
)
from visionstudy.report import figures as F
from visionstudy.report.document import FigureRef, Report, Section, Table, fmt, human
from visionstudy.report.drawing import Sketch, save_figure
from visionstudy.store.reader import RunArtifacts, filled_columns

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ReportOptions:
    tsne_points: int = 2000  # test images embedded by t-SNE (a seeded subsample)
    seed: int = 0  # for every random choice in the report (t-SNE, sample images)
    data_dir: Path | None = None  # offline mirror for the image figures
    images: bool = True  # figures that need the dataset and the checkpoint
    gradcam: int = 16  # images in the Grad-CAM grid
    misclassified: int = 24  # images in the misclassified grid
    progress: bool = False  # show what is being written (the CLI: yes; tests: no)
    formats: tuple[str, ...] = ("html",)  # and "pdf" (printed by Chromium), "latex" (report-latex.tex),
    # "svg" (SVG copies of the figures)
    force: bool = False  # write into an existing folder that holds no report

    @property
    def vector(self) -> dict[str, bool]:
        """The vector copies `save_figure` writes beside each PNG."""
        return {"pdf": "latex" in self.formats, "svg": "svg" in self.formats}


@dataclass
class Evaluated:
    """Everything computed from predictions.npz once, shared by the sections."""

    metrics: dict[str, Any]
    probs: np.ndarray
    labels: np.ndarray
    names: list[str]
    calibration: Any  # Calibration

    @property
    def auc(self) -> list[float | None]:  # one-vs-rest ROC-AUC per class
        return self.metrics["per_class_auc"]

    @functools.cached_property
    def roc(self) -> Any:  # RocCurves: only the full form draws them (a brief variant needs `auc`)
        return roc_curves(self.probs, self.labels)


def evaluated(art: RunArtifacts) -> Evaluated | None:
    """A classifier's test predictions measured (None for other tasks, or predictions it lacks)."""
    if art.predictions is None or not {"logits", "labels", "class_names"} <= set(art.predictions):
        return None
    p = art.predictions
    names = [str(c) for c in p["class_names"]]
    metrics = classification_metrics(p["logits"], p["labels"], len(names))
    probs = probabilities(p["logits"])
    return Evaluated(metrics, probs, p["labels"], names, calibration(probs, p["labels"]))


def shows_images(art: RunArtifacts) -> bool:
    """Whether the run's task draws image figures (dataset grids, predictions, Grad-CAM): its
    sections say so; a run without results yet says it by the image shape in its config.yaml."""
    if art.metrics:
        from visionstudy.tasks import task_of_metrics

        return "images" in task_of_metrics(art.metrics).sections
    return "image_shape" in (art.resolved.get("dataset") or {})


def task_of_example(metrics: dict[str, Any]) -> str:
    """What one input of the run's task is (image, set), for labels such as FLOPs per image."""
    from visionstudy.tasks import task_of_metrics

    return task_of_metrics(metrics).model_kind if metrics else "image"


def task_metric_rows(metrics: dict[str, Any]) -> list[tuple[str, Any]]:
    """The summary rows the run's task reads from its metrics.json (none before it has results)."""
    from visionstudy.tasks import task_of_metrics

    return task_of_metrics(metrics).metric_rows(metrics) if metrics else []


def task_metric_cards(metrics: dict[str, Any]) -> list[tuple[str, str]]:
    from visionstudy.tasks import task_of_metrics

    return task_of_metrics(metrics).metric_cards(metrics) if metrics else []


def summary_rows(art: RunArtifacts, ev: Evaluated | None) -> list[tuple[str, Any]]:
    m = art.metrics or {}
    res = art.resolved.get("model", {})
    rows: list[tuple[str, Any]] = []
    rows += task_metric_rows(m)
    if ev is not None:
        e = ev.metrics
        rows += [
            ("test accuracy", e["accuracy"]), ("top-1 error", 1 - e["accuracy"]),
            ("top-5 accuracy", e["top5_accuracy"]), ("top-5 error", 1 - e["top5_accuracy"]),
            ("test loss", e["loss"]), ("precision (macro)", e["precision_macro"]),
            ("recall (macro)", e["recall_macro"]), ("F1 (macro)", e["f1_macro"]),
            ("precision (weighted)", e["precision_weighted"]),
            ("recall (weighted)", e["recall_weighted"]), ("F1 (weighted)", e["f1_weighted"]),
            ("ROC-AUC (macro, one-vs-rest)", e["roc_auc_macro"]),
            ("expected calibration error", ev.calibration.ece),
            ("test images", len(ev.labels)),
        ]
    rows += [
        ("parameters", m.get("params", res.get("params"))),
        (f"FLOPs per {task_of_example(m)}", m.get("flops", res.get("flops"))),
        ("train seconds", m.get("train_seconds", sum(r.get("seconds", 0) for r in art.history))),
        ("epochs run", m.get("epochs_run", len(art.history))), ("best epoch", m.get("best_epoch")),
        ("stopped early", m.get("stopped_early")),
    ]
    return rows


def cards(art: RunArtifacts, ev: Evaluated | None) -> list[tuple[str, str]]:
    m = art.metrics or {}
    out = []
    if ev is not None:
        e = ev.metrics
        out += [("test accuracy", f"{e['accuracy']:.2%}"), ("top-5 error", f"{1 - e['top5_accuracy']:.2%}"),
                ("macro F1", f"{e['f1_macro']:.4f}"), ("macro AUC", fmt(e["roc_auc_macro"])),
                ("test loss", f"{e['loss']:.4f}")]
    elif task_cards := task_metric_cards(m):
        out += task_cards
    elif art.history and not any(math.isnan(r["val_accuracy"]) for r in art.history):
        best = max(r["val_accuracy"] for r in art.history)
        out.append(("best val accuracy", f"{best:.2%}"))
    params = m.get("params", art.resolved.get("model", {}).get("params"))
    seconds = m.get("train_seconds", sum(r.get("seconds", 0) for r in art.history))
    count = m.get("cpu_threads")
    threads = f" on {count} CPU thread{'s' * (count != 1)}" if count else ""
    out += [("parameters", human(params)), ("epochs", str(m.get("epochs_run", len(art.history)))),
            ("train time", f"{seconds:.1f} s{threads}")]
    return out


MIN_TSNE_POINTS = 10


class RunReportBuilder:
    """Writes one run's figures under `out/figures/<prefix>` and returns its sections."""

    def __init__(self, art: RunArtifacts, out: Path, prefix: str, opts: ReportOptions) -> None:
        self.art, self.out, self.prefix, self.opts = art, out, prefix, opts
        self.ev = evaluated(art)
        self.names = self.ev.names if self.ev else art.class_names

    def figure(self, sketch: Sketch, stem: str, caption: str, wide: bool = False) -> FigureRef:
        folder = self.out / "figures" / self.prefix if self.prefix else self.out / "figures"
        name = save_figure(sketch, folder, stem, **self.opts.vector)
        rel = Path("figures") / self.prefix / name if self.prefix else Path("figures") / name
        return FigureRef(rel.as_posix(), caption, wide)

    def csv(self, stem: str) -> str:
        return f"{self.prefix.replace('/', '_')}_{stem}.csv" if self.prefix else f"{stem}.csv"

    def banners(self) -> list[str]:
        missing = list(self.art.missing)
        if self.art.metrics and self.art.predictions is not None:
            from visionstudy.tasks import task_of_metrics

            lacking = [k for k in task_of_metrics(self.art.metrics).prediction_keys
                       if k not in self.art.predictions]
            if lacking:
                missing.append(f"predictions.npz lacks {', '.join(map(repr, lacking))}")
        if not missing:
            return []
        return [f"{self.art.label}: incomplete run — missing {'; '.join(missing)}. Showing what exists."]

    # ------------------------------------------------------------------------------ sections

    def sections(self, brief: bool = False) -> list[Section]:
        """Every section; `brief` (a variant of a large study, whose study-level figures already
        show its curves and costs): the tables only — results, history, most confused pairs, per
        class, config. A 47-class confusion figure and a curves figure per variant were most of
        a 50-variant report's time (bench/report_speed.py)."""
        if brief:
            return self.brief_sections()
        pending = self.start_tsne()
        out = [self.summary(), self.curves()]
        if self.ev is not None:
            out += [self.confusion(), self.per_class(), self.roc_calibration()]
        # the image figures (dataset, checkpoint, Grad-CAM) are built while the t-SNE still runs
        images = []
        if self.opts.images and shows_images(self.art):
            images.append(self.image_sections())
        if self.ev is not None:
            out.append(self.tsne(pending))
        out += [*images, self.config_section()]
        return [s for s in out if s.figures or s.tables or s.notes or s.code]

    def brief_sections(self) -> list[Section]:
        out = [self.summary(), self.curves(brief=True)]
        if self.ev is not None:
            out += [self.confusion(brief=True), self.per_class(brief=True)]
        s = self.config_section()
        s.notes.insert(0, "The brief form of a variant of a large study (its tables; the study's "
                       "curves, costs and settings above show it among the others); `visionstudy "
                       f"report {self.art.path}` writes this run's full report (curves, confusion "
                       "matrices, t-SNE, ROC, calibration, Grad-CAM, images).")
        return [s2 for s2 in [*out, s] if s2.figures or s2.tables or s2.notes or s2.code]

    def summary(self) -> Section:
        rows = [[k, v] for k, v in summary_rows(self.art, self.ev)]
        s = Section("Results", self.anchor("results"),
                    tables=[Table("Test metrics", ["metric", "value"], rows, self.csv("metrics"))])
        data = self.art.resolved.get("dataset", {})
        if data.get("not_classes"):
            folders = data["not_classes"]
            s.notes.append(f"Not classes: {', '.join(folders)} (class folder{'s' * (len(folders) > 1)} "
                           "without image files, e.g. only .heic; left out of the dataset).")
        count = int(data.get("skipped_files") or 0)
        if count:
            listed = data.get("skipped") or []
            s.notes.append(f"{count} unreadable file{'s' * (count > 1)} skipped while loading the dataset "
                           "(empty, truncated, not an image, or declaring too many pixels); training used "
                           "the rest.")
            s.tables.append(Table(f"Skipped files ({count}" + (f", first {len(listed)} listed)" if
                                                                len(listed) < count else ")"),
                                  ["file", "reason"], [[d["file"], d["reason"]] for d in listed],
                                  self.csv("skipped")))
        return s

    def curves(self, brief: bool = False) -> Section:
        s = Section("Training curves", self.anchor("curves"), wide=True)
        if not self.art.history:
            s.notes.append("No epoch finished: there is no history to plot.")
            return s
        if brief:
            s.title = "History"
            s.tables.append(self.history_table())
            return s
        best = (self.art.metrics or {}).get("best_epoch")
        on = (self.art.config.get("data") or {}).get("validation", "split")
        val = "test" if on == "test" else "validation"
        s.figures.append(self.figure(partial(F.training_curves, self.art.history, best, val), "curves",
                                     f"Loss and accuracy per epoch (train vs {val}, gap shaded) "
                                     "and the learning rate."))
        if on == "test":
            s.notes.append("This run validates on the test set (data.validation: test): the curves "
                           "are test curves, and the best epoch and early stopping were chosen on "
                           "the test set, so its test numbers are optimistic.")
        if self.art.steps:
            steps = partial(F.step_curves, self.art.steps, self.art.history, val)
            s.figures.append(self.figure(steps, "steps",
                                         f"Training loss and accuracy per batch (train.log_every_n_steps) "
                                         f"and the {val} value at each epoch's end; dotted lines start "
                                         "epochs."))
        last = self.art.history[-1]
        gap = last["train_accuracy"] - last["val_accuracy"]
        if not math.isnan(gap):
            s.notes.append(f"Final train–{val} accuracy gap: {gap:+.4f} "
                           f"(train {last['train_accuracy']:.4f}, {val} {last['val_accuracy']:.4f}).")
        s.tables.append(self.history_table())
        return s

    def history_table(self) -> Table:
        """history.csv as a table, without the columns no epoch filled (a regression's accuracy:
        history.csv keeps one schema for every task)."""
        cols = [c for c in filled_columns(self.art.history) if c != "epoch"]
        rows = [[int(r["epoch"]), *(r[c] for c in cols)] for r in self.art.history]
        return Table("History", ["epoch", *cols], rows, self.csv("history"))

    def confusion(self, brief: bool = False) -> Section:
        assert self.ev is not None
        cm = np.array(self.ev.metrics["confusion_matrix"])
        s = Section("Confusion matrix" if not brief else "Most confused pairs", self.anchor("confusion"))
        if not brief:
            blank = " Empty cells hold none." if F.BLANK_ZEROS < len(self.names) <= F.ANNOTATE else ""
            s.figures.append(self.figure(partial(F.confusion_matrix, cm, self.names, False),
                                         "confusion_counts", f"Confusion matrix (counts).{blank}"))
            normalised = f"Confusion matrix normalised by true class (rows sum to 1).{blank}"
            s.figures.append(self.figure(partial(F.confusion_matrix, cm, self.names, True),
                                         "confusion_normalised", normalised))
        pairs = confused_pairs(cm, 10)
        support = cm.sum(1)
        rows = [[self.names[i], self.names[j], n, float(n / support[i])] for i, j, n in pairs]
        s.tables.append(Table("Most confused pairs", ["true class", "predicted as", "images",
                                                      "share of true class"], rows, self.csv("confused")))
        if F.needs_key(self.names):
            s.notes.append("Class names are too long for the axes: ticks show class numbers; the key "
                           "below names them.")
            key = [[i, n] for i, n in enumerate(self.names)]
            s.tables.append(Table("Class key", ["number", "class"], key, self.csv("class_key")))
        full = [[self.names[i], *map(int, cm[i])] for i in range(len(self.names))]
        s.tables.append(Table("Confusion matrix", ["true \\ predicted", *self.names], full,
                              self.csv("confusion"), inline=False))
        return s

    def per_class(self, brief: bool = False) -> Section:
        assert self.ev is not None
        p = self.art.predictions
        assert p is not None
        pc = per_class_metrics(p["logits"], p["labels"], len(self.names))
        rows = [[self.names[c], int(pc["support"][c]), float(pc["recall"][c]),
                 float(pc["precision"][c]), float(pc["f1"][c]), self.ev.auc[c]]
                for c in range(len(self.names))]
        s = Section("Per-class results", self.anchor("per-class"))
        acc = [float(v) for v in pc["recall"]]
        if not brief:
            bars = partial(F.per_class_bars, acc, self.names, "accuracy", float(np.mean(acc)))
            s.figures.append(self.figure(bars,
                                         "per_class_accuracy", "Test accuracy (recall) per class."))
        s.tables.append(Table("Per class", ["class", "images", "accuracy (recall)", "precision", "F1",
                                            "ROC-AUC"], rows, self.csv("per_class")))
        return s

    def roc_calibration(self) -> Section:
        assert self.ev is not None
        s = Section("ROC and calibration", self.anchor("roc"))
        s.figures.append(self.figure(partial(F.roc_curves, self.ev.roc, self.names), "roc",
                                     "One-vs-rest ROC curves and their macro average (AUC in brackets)."))
        s.figures.append(self.figure(partial(F.reliability_diagram, self.ev.calibration), "reliability",
                                     "Reliability diagram: accuracy vs confidence per bin; the "
                                     "further the bars from the diagonal, the worse the calibration."))
        return s

    @functools.cached_property
    def tsne_skipped(self) -> str | None:
        """Why this run gets no t-SNE, or None (checked once: the features are scanned)."""
        p = self.art.predictions
        features = None if p is None else p.get("features")
        if features is None or features.ndim != 2 or not len(features):
            return "This run saved no penultimate features; t-SNE is left out."
        if self.opts.tsne_points <= 0:
            return "t-SNE left out (--tsne-points 0)."
        if len(features) < MIN_TSNE_POINTS:
            return f"Only {len(features)} test images: t-SNE needs at least {MIN_TSNE_POINTS}; left out."
        assert p is not None  # it holds the features
        shown = features[subsample(p["labels"], self.opts.tsne_points, self.opts.seed)]
        if not np.isfinite(shown).all():
            return "The penultimate features hold NaN or infinite values: t-SNE is left out."
        if not np.ptp(shown, axis=0).any():  # one point: scikit-learn's t-SNE crashes the process
            return ("Every test image has the same penultimate features (the network's units died, "
                    "as after a diverging learning rate): t-SNE is left out.")
        return None

    def start_tsne(self) -> Future[dict[str, np.ndarray]] | None:
        """The embedding, computed (or read from the run's cache) in a thread while the other
        figures are drawn: sklearn's t-SNE gradient runs without the GIL, on one OpenMP thread (the
        report and its drawing process have the other cores). A daemon thread: Ctrl-C ends the
        report at once, not after the t-SNE (the cache is written whole or not at all)."""
        if self.ev is None or self.tsne_skipped:
            return None
        from visionstudy.store.rundir import RunDir

        p = self.art.predictions
        assert p is not None
        features, labels = p["features"], p["labels"]
        n, seed = self.opts.tsne_points, self.opts.seed
        future: Future[dict[str, np.ndarray]] = Future()

        def embed() -> dict[str, np.ndarray]:
            points, index = tsne_embedding(features, labels, n, seed, threads=1)
            return {"points": points, "index": index}

        def compute() -> None:
            future.set_running_or_notify_cancel()
            try:
                future.set_result(RunDir(self.art.path).cached(
                    "tsne", f"points={n},seed={seed},features={features.shape}", embed))
            except BaseException as e:  # noqa: BLE001  (raised where the figure is drawn)
                future.set_exception(e)

        threading.Thread(target=compute, name="tsne", daemon=True).start()
        return future

    def tsne(self, pending: Future[dict[str, np.ndarray]] | None = None) -> Section:
        s = Section("Learned features (t-SNE)", self.anchor("tsne"))
        reason = self.tsne_skipped
        if reason:
            s.notes.append(reason)
            return s
        p = self.art.predictions
        assert p is not None
        got = (pending or self.start_tsne()).result()  # type: ignore[union-attr]
        points, idx = got["points"], got["index"]
        s.figures.append(self.figure(partial(F.tsne_scatter, points, p["labels"][idx], self.names), "tsne",
                                     f"t-SNE of the penultimate-layer features of {len(idx):,} test "
                                     f"images (seed {self.opts.seed}), coloured by true class."))
        return s

    def image_sections(self) -> Section:
        """Needs the dataset and the checkpoint: torch is imported here, the first time, while the
        drawing process and the t-SNE keep the other cores busy."""
        from visionstudy.report import images

        s = Section("Data, errors and Grad-CAM", self.anchor("images"))
        data, reason = images.load_data(self.art, self.opts.data_dir)
        if data is None:
            s.notes.append(reason)
            return s
        counts = {name: np.bincount(split.labels, minlength=data.num_classes).tolist()
                  for name, split in (("train", data.train), ("validation", data.val), ("test", data.test))
                  if len(split) or name != "validation"}
        s.figures.append(self.figure(partial(F.class_distribution, counts, data.class_names),
                                     "class_distribution",
                                     "Images per class in each split."))
        s.tables.append(Table("Class distribution", ["class", *counts],
                              [[n, *(counts[k][i] for k in counts)] for i, n in enumerate(data.class_names)],
                              self.csv("class_distribution"), inline=False))
        s.figures.append(self.figure(images.one_per_class_figure(data, self.opts.seed), "one_per_class",
                                     "One training image of every class.", wide=True))
        s.figures.append(self.figure(images.samples_figure(data, self.opts.seed), "samples",
                                     "Random training images with their labels.", wide=True))
        aug = images.augmentation_figure(data, self.art, self.opts.seed)
        if aug is not None:
            s.figures.append(self.figure(aug, "augmentation", "Training images as the model sees them "
                                         "after the run's augmentation.", wide=True))
        if self.ev is None:
            return s
        grid = images.predictions_figure(data, self.art, self.opts.misclassified, self.opts.seed)
        if grid is not None:
            s.figures.append(self.figure(grid, "predictions", "A seeded sample of test images, right (green) "
                                         "and wrong (red), with the predicted class and its probability.",
                                         wide=True))
        wrong = images.misclassified_figure(data, self.art, self.opts.misclassified)
        if wrong is not None:
            s.figures.append(self.figure(wrong, "misclassified", "The misclassified test images with "
                                         "the highest loss (most confidently wrong).", wide=True))
        try:
            net = images.load_model(self.art, data)
            fig = images.gradcam_figure(data, net, self.art, self.opts.gradcam, self.opts.seed)
            caption = ("Grad-CAM (captum) of the predicted class over one test image per class: warm "
                       "colours drove the decision.")
            s.figures.append(self.figure(fig, "gradcam", caption, wide=True))
        except VisionStudyError as exc:
            s.notes.append(f"Grad-CAM left out: {exc}")
        return s

    def config_section(self) -> Section:
        cfg = self.art.asked
        s = Section("Configuration and environment", self.anchor("config"),
                    code=yaml.safe_dump(cfg, sort_keys=False))
        res = self.art.resolved
        versions = res.get("versions", {})
        if versions:
            s.tables.append(Table("Versions", ["package", "version"], [[k, v] for k, v in versions.items()]))
        ds = res.get("dataset", {})
        if ds:
            s.tables.append(Table("Dataset", ["field", "value"], [
                ["name", ds.get("name")],
                [f"checksum ({ds.get('checksum_algorithm', 'md5')} of the decoded arrays)",
                 ds.get("checksum")],
                ["image shape", " × ".join(map(str, ds.get("image_shape", [])))],
                ["train / val / test", " / ".join(f"{ds.get(k, 0):,}" for k in ("train", "val", "test"))],
                ["validates on", {"test": "the test set (data.validation: test)"}.get(
                    (cfg.get("data") or {}).get("validation", "split"),
                    "nothing (data.val_fraction: 0)" if (cfg.get("data") or {}).get("val_fraction") == 0
                    else "data held out of the training split")],
                ["classes", len(ds.get("class_names", []))], ["run directory", str(self.art.path)],
            ]))
        return s

    def anchor(self, name: str) -> str:
        return f"{self.prefix.replace('/', '-')}-{name}" if self.prefix else name


def run_report(art: RunArtifacts, out: Path, opts: ReportOptions) -> Report:
    b = RunReportBuilder(art, out, "", opts)
    model = art.config.get("model", {}).get("name", "?")
    dataset = art.resolved.get("dataset", {}).get("name") or art.config.get("data", {}).get("dataset")
    subtitle = f"{model} on {dataset} — {art.path}"
    return Report(f"Run report: {art.label}", subtitle, b.banners(), cards(art, b.ev), b.sections())
