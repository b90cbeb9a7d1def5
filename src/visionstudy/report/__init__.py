"""Reports from run directories alone (nothing is retrained): HTML, Markdown, figures, CSV.

    visionstudy report runs/digits-quick --out reports/digits-quick
    visionstudy report runs/a runs/b --out reports/a-vs-b
"""

from __future__ import annotations

import time
from pathlib import Path

from visionstudy.errors import ReportError
from visionstudy.fsutil import writing
from visionstudy.report.compare import compare_report, one_task
from visionstudy.report.drawing import drawing_in_background
from visionstudy.report.render import write_report
from visionstudy.report.run_report import ReportOptions, run_report
from visionstudy.store.reader import RunArtifacts, load_run, unique_labels

__all__ = ["ReportOptions", "RunArtifacts", "build_report", "load_run"]


def is_report_folder(folder: Path) -> bool:
    """A folder an earlier report wrote (its report.html says so)."""
    page = folder / "report.html"
    try:
        return page.is_file() and b"Written by visionstudy" in page.read_bytes()[-4096:]
    except OSError:
        return False


def check_out(out: Path, force: bool = False) -> None:
    """The report folder must not be inside a run folder (reports never modify runs, the runs
    reported included), nor an existing folder of the user's that holds no report."""
    from visionstudy.store.rundir import claim_destination

    claim_destination(out, "--out", "reports", own=is_report_folder, force=force, folder=True)


def build_report(paths: list[Path], out: Path, opts: ReportOptions | None = None) -> Path:
    """Write the report of one run, or the comparison of several, into `out`."""
    opts = opts or ReportOptions()
    if not paths:
        raise ReportError("give at least one run directory")
    seen: dict[Path, Path] = {}
    for path in map(Path, paths):
        if path.resolve() in seen:
            raise ReportError(f"{path}: the same run as {seen[path.resolve()]}; a comparison gives each run "
                              "once")
        seen[path.resolve()] = path
    start = time.perf_counter()
    labels = unique_labels(paths) if len(paths) > 1 else [None]
    arts = [load_run(p, label) for p, label in zip(paths, labels, strict=True)]
    task = one_task(arts) if len(arts) > 1 else None  # several tasks: refused before anything is written
    check_out(out, opts.force)
    with writing(out):
        out.mkdir(parents=True, exist_ok=True)
        with drawing_in_background():
            report = run_report(arts[0], out, opts) if task is None else compare_report(arts, task, out, opts)
        report.seconds = time.perf_counter() - start
        return write_report(report, out, opts.formats)
