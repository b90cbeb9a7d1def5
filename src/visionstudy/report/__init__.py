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

__all__ = ["ReportOptions", "RunArtifacts", "build_report", "default_out", "load_run"]


def is_report_folder(folder: Path) -> bool:
    """A folder an earlier report wrote (its report.html says so)."""
    page = folder / "report.html"
    try:
        return page.is_file() and b"Written by visionstudy" in page.read_bytes()[-4096:]
    except OSError:
        return False


def default_out(paths: list[Path]) -> Path:
    """reports/<run>, a study's run named by its place (quick-baseline-seed-0, as its export), and
    reports/<a>-vs-<b> for a comparison: reports of other runs never share a default folder, which
    a report rewrites as its own (every seed-0 of a study was reports/seed-0, each replacing the last)."""
    import hashlib

    from visionstudy.store.rundir import run_place

    names = ["-".join(run_place(p)) for p in paths]
    joined = "-vs-".join(names)
    if len(names) > 3 or len(joined) > 100:  # the first, how many more, and which (the same runs: one folder)
        key = "\n".join(sorted(str(Path(p).resolve()) for p in paths)).encode()
        joined = f"{names[0]}-vs-{len(names) - 1}-more-{hashlib.sha256(key).hexdigest()[:8]}"
    return Path("reports") / joined


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
