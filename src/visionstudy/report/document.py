"""The report as data: sections of figures, tables and notes, rendered to HTML and Markdown."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

NUMBER = re.compile(r"^[-+]?[\d,]*\.?\d+(e[-+]?\d+)?%?( s)?$|^[\d.]+[kMG]$")


@dataclass
class FigureRef:
    png: str  # path relative to the report folder
    caption: str
    wide: bool = False  # spans the whole row (image grids)

    @property
    def svg(self) -> str:
        return self.png[: -len(".png")] + ".svg"


@dataclass
class Table:
    title: str
    columns: list[str]
    rows: list[list[Any]]
    csv: str | None = None  # file name under tables/, written beside the report
    note: str = ""
    inline: bool = True  # False: written to CSV only (a 100 x 100 confusion matrix)


@dataclass
class Section:
    title: str
    anchor: str
    figures: list[FigureRef] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    code: str | None = None  # preformatted text (the resolved config)
    children: list[Section] = field(default_factory=list)  # folded sub-sections (one per run)
    wide: bool = False  # figures one per row instead of two


@dataclass
class Report:
    title: str
    subtitle: str
    banners: list[str] = field(default_factory=list)  # warnings shown on top (incomplete runs)
    cards: list[tuple[str, str]] = field(default_factory=list)  # headline numbers
    sections: list[Section] = field(default_factory=list)
    seconds: float = 0.0  # time taken to build the report


WRAP = 40  # a printed text column wraps at this many characters


def column_widths(t: Table, wrap_headers: bool) -> list[int]:
    """Each column's printed width in characters: its widest cell or header (a header that wraps
    counts its longest word), text beyond WRAP characters wrapping."""
    out = []
    for i, c in enumerate(t.columns):
        head = max((len(w) for w in str(c).split()), default=1) if wrap_headers else len(str(c))
        cells = max((len(fmt(r[i])) for r in t.rows), default=0)
        out.append(min(max(head, cells), WRAP))
    return out


def column_groups(t: Table, budget: int, padding: int, wrap_headers: bool = True) -> list[Table]:
    """The table split, for print, into column groups that each fit `budget` characters (cell
    padding included); each group repeats the first column, which names the row. A table that
    fits comes back whole."""
    widths = [w + padding for w in column_widths(t, wrap_headers)]
    if sum(widths) <= budget or len(t.columns) <= 2:
        return [t]
    groups: list[list[int]] = [[]]
    used = widths[0]
    for i in range(1, len(t.columns)):
        if groups[-1] and used + widths[i] > budget:
            groups.append([])
            used = widths[0]
        groups[-1].append(i)
        used += widths[i]
    return [Table(f"{t.title} (part {k + 1} of {len(groups)}: {t.columns[g[0]]} … {t.columns[g[-1]]})",
                  [t.columns[0], *(t.columns[i] for i in g)], [[r[0], *(r[i] for i in g)] for r in t.rows],
                  t.csv, t.note if k == len(groups) - 1 else "", t.inline)
            for k, g in enumerate(groups)]


def numeric(value: Any) -> bool:
    """A cell right-aligned as a number (numbers, and texts such as '1,234', '91.2%', '1.2M')."""
    return isinstance(value, int | float) and not isinstance(value, bool) or bool(NUMBER.match(str(value)))


def fmt(value: Any, digits: int = 4) -> str:
    """A table cell: floats to `digits` places, big integers with separators, None as a dash."""
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if value != value:  # NaN
            return "–"
        if value.is_integer() and abs(value) >= 10:  # a count (49 sets, 1,234 parameters), not 49.0000
            return f"{int(value):,}"
        if value != 0 and abs(value) < 10 ** -(digits - 1):
            return f"{value:.3g}"
        return f"{value:.{digits}f}"
    return str(value)


def human(n: float | None) -> str:
    """1234567 → 1.23M."""
    if n is None:
        return "–"
    for unit, size in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(n) >= size:
            return f"{n / size:.2f}{unit}"
    return f"{n:.0f}"
