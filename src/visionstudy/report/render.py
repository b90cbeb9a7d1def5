"""Render a `Report` to report.html (Jinja2), report.md and tables/*.csv in one folder."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from visionstudy.fsutil import atomic_write_text
from visionstudy.report.document import Report, Section, Table, fmt

NUMBER = re.compile(r"^[-+]?[\d,]*\.?\d+(e[-+]?\d+)?%?( s)?$|^[\d.]+[kMG]$")


def numeric(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) or bool(NUMBER.match(str(value)))


def all_sections(sections: list[Section]) -> Iterator[Section]:
    for s in sections:
        yield s
        yield from all_sections(s.children)


def html(report: Report) -> str:
    import jinja2

    import visionstudy

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("visionstudy.report", "templates"),
        autoescape=jinja2.select_autoescape(["html", "j2"]), trim_blocks=True, lstrip_blocks=True,
    )
    env.filters["numeric"] = numeric
    env.filters["fmt"] = fmt
    return env.get_template("report.html.j2").render(report=report, version=visionstudy.__version__)


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
        out += [f"![{f.caption}]({f.png})", "", f"_{f.caption}_ ([SVG]({f.svg}))", ""]
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


def csv_text(t: Table) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(t.columns)
    writer.writerows([["" if v is None else v for v in row] for row in t.rows])
    return buf.getvalue()


def write_report(report: Report, out: Path) -> Path:
    """report.html, report.md and one CSV per table; returns the HTML's path."""
    tables = out / "tables"
    tables.mkdir(parents=True, exist_ok=True)
    for s in all_sections(report.sections):
        for t in s.tables:
            if t.csv:
                atomic_write_text(tables / t.csv, csv_text(t))
    atomic_write_text(out / "report.md", markdown(report))
    atomic_write_text(out / "report.html", html(report))
    return out / "report.html"
