"""Render a `Report` to report.html (Jinja2, figures embedded so the file travels alone),
report.md and tables/*.csv in one folder; on request report.pdf (headless Chromium printing the
HTML) and report-latex.tex (booktabs tables, vector PDF figures)."""

from __future__ import annotations

import base64
import csv
import io
import math
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from visionstudy.errors import ReportError
from visionstudy.fsutil import atomic_write_text
from visionstudy.report.document import Report, Section, Table, column_groups, fmt, numeric
from visionstudy.report.latex import latex


def all_sections(sections: list[Section]) -> Iterator[Section]:
    for s in sections:
        yield s
        yield from all_sections(s.children)


# A4 less 12 mm margins at the print style's 9 px table font: about 150 characters a line; the
# budget keeps a margin for wide glyphs. Cell padding (5 px a side) is about 2 characters.
PRINT_BUDGET, PRINT_PADDING = 125, 3


def data_uri(path: Path) -> str:
    kind = {".png": "image/png", ".svg": "image/svg+xml", ".jpg": "image/jpeg"}[path.suffix]
    return f"data:{kind};base64," + base64.b64encode(path.read_bytes()).decode()


def html(report: Report, out: Path | None = None, printing: bool = False) -> str:
    """The page; with `out`, every figure is embedded from its file there (the HTML travels alone).
    `printing` opens every folded section (the PDF)."""
    import jinja2

    import visionstudy

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("visionstudy.report", "templates"),
        autoescape=jinja2.select_autoescape(["html", "j2"]), trim_blocks=True, lstrip_blocks=True,
    )
    env.filters["numeric"] = numeric
    env.filters["fmt"] = fmt
    env.filters["printed"] = lambda t: column_groups(t, PRINT_BUDGET, PRINT_PADDING)
    env.filters["src"] = (lambda rel: data_uri(out / rel)) if out is not None else (lambda rel: rel)
    env.tests["written"] = lambda rel: out is None or (out / rel).is_file()
    return env.get_template("report.html.j2").render(report=report, version=visionstudy.__version__,
                                                     printing=printing)


def md_cell(value: Any) -> str:
    return fmt(value).replace("|", "\\|").replace("\n", " ")


def md_table(t: Table) -> str:
    lines = [f"| {' | '.join(md_cell(c) for c in t.columns)} |",
             "|" + "|".join("---:" if i else "---" for i in range(len(t.columns))) + "|"]
    lines += [f"| {' | '.join(md_cell(v) for v in row)} |" for row in t.rows]
    return "\n".join(lines)


def md_section(s: Section, level: int) -> list[str]:
    out = [f"{'#' * level} {s.title}", ""]
    out += [f"_{n}_\n" for n in s.notes]
    for t in s.tables:
        if not t.inline:
            out += [f"{t.title}: see `tables/{t.csv}`.", ""]
            continue
        out += [f"**{t.title}**" + (f" (`tables/{t.csv}`)" if t.csv else ""), "", md_table(t), ""]
        if t.note:
            out += [f"_{t.note}_", ""]
    for f in s.figures:
        out += [f"![{f.caption}]({f.png})", "", f"_{f.caption}_", ""]
    if s.code:
        out += ["```yaml", s.code.rstrip(), "```", ""]
    for child in s.children:
        out += md_section(child, level + 1)
    return out


def markdown(report: Report) -> str:
    out = [f"# {report.title}", "", report.subtitle, ""]
    out += [f"> **Warning:** {b}\n" for b in report.banners]
    if report.cards:
        out += ["| " + " | ".join(k for k, _ in report.cards) + " |",
                "|" + "---:|" * len(report.cards),
                "| " + " | ".join(v for _, v in report.cards) + " |", ""]
    for s in report.sections:
        out += md_section(s, 2)
    return "\n".join(out) + "\n"


def csv_value(value: Any, digits: int = 4) -> Any:
    """A CSV cell at the precision the report shows (0.02444444444444449 → 0.0244), no separators."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, float) and not isinstance(value, bool):
        if value.is_integer() and abs(value) >= 10:
            return int(value)
        if value != 0 and abs(value) < 10 ** -(digits - 1):
            return float(f"{value:.3g}")
        return round(value, digits)
    return value


def csv_text(t: Table) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(t.columns)
    writer.writerows([[csv_value(v) for v in row] for row in t.rows])
    return buf.getvalue()


FORMATS = ("html", "pdf", "latex", "svg")  # svg: SVG copies of the figures


def report_formats(given: list[str] | tuple[str, ...], what: str) -> tuple[str, ...]:
    """The formats asked for (`--format pdf --format latex`, `--format pdf,latex`, the API's
    `formats="html,pdf"`), in any case, once each; one not known is a ConfigError naming `what`
    (the option or argument) and the choices. Every report writes its HTML whatever is asked."""
    from visionstudy.errors import ConfigError

    asked = [f.strip().lower() for value in given for f in value.split(",") if f.strip()]
    bad = next((f for f in asked if f not in FORMATS), None)
    if bad is not None:  # an option as the CLI writes them (--format doc), an argument as Python would
        head = f"{what} {bad}:" if what.startswith("--") else f"{what}: {bad!r} is"
        raise ConfigError(f"{head} not a report format; choose from {', '.join(FORMATS)}")
    return tuple(dict.fromkeys(asked))


def chromium() -> str:
    """A Chromium to print with: $VISIONSTUDY_CHROMIUM, else chromium/google-chrome on PATH."""
    for name in (os.environ.get("VISIONSTUDY_CHROMIUM"), "chromium", "chromium-browser", "google-chrome",
                 "google-chrome-stable"):
        if name and shutil.which(name):
            return str(shutil.which(name))
    raise ReportError("--format pdf prints the HTML with headless Chromium, and none was found: install "
                      "it (Debian: apt-get install chromium) or set VISIONSTUDY_CHROMIUM to its path")


def print_pdf(report: Report, out: Path) -> Path:
    """report.pdf: headless Chromium prints the page with every section open (A4, print styles)."""
    browser = chromium()
    page = out.resolve() / ".print.html"
    pdf = out / "report.pdf"
    atomic_write_text(page, html(report, out, printing=True))
    partial = out.resolve() / ".report.pdf.partial"
    try:
        done = subprocess.run(
            [browser, "--headless", "--no-sandbox", "--disable-gpu", "--no-pdf-header-footer",
             "--run-all-compositor-stages-before-draw", f"--print-to-pdf={partial}", page.as_uri()],
            capture_output=True, text=True, timeout=600)
        if done.returncode != 0 or not partial.is_file() or partial.stat().st_size == 0:
            tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
            raise ReportError(f"{browser} could not print the report to PDF: {' / '.join(tail)}")
        os.replace(partial, pdf)
    except subprocess.TimeoutExpired:
        raise ReportError(f"{browser} took over 10 minutes to print the report; try --no-images") from None
    finally:
        page.unlink(missing_ok=True)
        partial.unlink(missing_ok=True)
    return pdf


def write_report(report: Report, out: Path, formats: tuple[str, ...] = ("html",)) -> Path:
    """report.html, report.md and one CSV per table, then report.pdf / report-latex.tex when asked;
    returns the HTML's path."""
    tables = out / "tables"
    tables.mkdir(parents=True, exist_ok=True)
    for s in all_sections(report.sections):
        for t in s.tables:
            if t.csv:
                atomic_write_text(tables / t.csv, csv_text(t))
    atomic_write_text(out / "report.md", markdown(report))
    atomic_write_text(out / "report.html", html(report, out))
    if "latex" in formats:
        atomic_write_text(out / "report-latex.tex", latex(report))
    if "pdf" in formats:
        print_pdf(report, out)
    return out / "report.html"
