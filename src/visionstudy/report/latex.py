"""A `Report` as LaTeX: booktabs tables and the figures as vector PDFs, for a paper's appendix.

    visionstudy report runs/quick --format latex   # then: cd runs/quick/report && pdflatex report-latex.tex

Compiles with a plain TeX Live: pdflatex (booktabs, longtable, graphicx, geometry) sets Latin-1
text and Greek letters (class names such as "Ω", as math symbols) and writes any other character
as its code point; lualatex and xelatex set every character (DejaVu fonts, where installed).
Tables wider than the page are set as column groups that each fit it, the first column repeated;
long text wraps; paths break at their slashes.
"""

from __future__ import annotations

import re
from typing import Any

from visionstudy.report.document import (
    WRAP,
    Report,
    Section,
    Table,
    column_groups,
    column_widths,
    fmt,
    numeric,
)

# \scriptsize (7 pt) on a 17 cm text width: about 137 characters; each column adds 2 × 6 pt of
# \tabcolsep (about 4 characters)
BUDGET, PADDING = 115, 4  # bold headers are wider than the average character: a margin
SMALL_BUDGET = 85  # what still fits at \small (9 pt)
HEADINGS = ["section", "subsection", "subsubsection", "paragraph", "subparagraph"]
SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
           "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
           "<": r"\textless{}", ">": r"\textgreater{}"}
SYMBOLS = {"±": r"$\pm$", "→": r"$\rightarrow$", "≥": r"$\geq$", "≤": r"$\leq$", "−": "-", "×": r"$\times$",
           "…": r"\ldots{}", "–": "--", "—": "---", "⚠": "", "’": "'", "‘": "`", "“": "``", "”": "''",
           "²": r"$^2$", "³": r"$^3$", "√": r"$\surd$", "≈": r"$\approx$", "·": r"$\cdot$",
           "≠": r"$\neq$", "∞": r"$\infty$"}
CHAR = re.compile("|".join(re.escape(c) for c in [*SPECIAL, *SYMBOLS]))


def tex(text: Any) -> str:
    """Plain text → LaTeX: specials escaped, common symbols mapped, every other character kept
    (pdflatex sets Latin-1, lualatex and xelatex all of Unicode; see `PREAMBLE`); a line may
    break after a slash."""
    out = CHAR.sub(lambda m: SPECIAL.get(m.group(), SYMBOLS.get(m.group(), "")), str(text))
    return out.replace("/", r"/\allowbreak{}")


PREAMBLE = [
    r"\documentclass[10pt]{article}", r"\usepackage[a4paper,margin=2cm]{geometry}", r"\usepackage{iftex}",
    r"\ifPDFTeX", r"  \usepackage[utf8]{inputenc}",
    r"  \input{glyphtounicode}\pdfgentounicode=1",  # the PDF's text copies and searches as written
    "__UNICODE__",  # \DeclareUnicodeCharacter for each character beyond Latin-1 the text holds
    r"\else",  # LuaLaTeX / XeLaTeX: fonts with Greek, Cyrillic and more
    r"  \usepackage{fontspec}", r"  \IfFontExistsTF{DejaVu Serif}{\setmainfont{DejaVu Serif}"
    r"\setsansfont{DejaVu Sans}\setmonofont{DejaVu Sans Mono}}{}",
    r"\fi",
    r"\usepackage{booktabs}", r"\usepackage{longtable}", r"\usepackage{array}", r"\usepackage{graphicx}",
    r"\setlength{\LTcapwidth}{\linewidth}", r"\setcounter{topnumber}{4}",
    r"\renewcommand{\topfraction}{0.95}", r"\renewcommand{\textfraction}{0.05}", r"\sloppy",
]


def cell(value: Any) -> str:
    return tex(fmt(value))


def table(t: Table) -> list[str]:
    if not t.inline:
        where = f"tables/{t.csv}" if t.csv else "the HTML report"
        return [rf"\noindent\textit{{{tex(t.title)}}}: {len(t.rows)} rows $\times$ {len(t.columns)} "
                rf"columns, in \texttt{{{tex(where)}}}.", ""]
    parts = column_groups(t, BUDGET, PADDING, wrap_headers=False)
    return [line for part in parts for line in longtable(part)]


def alignment(t: Table) -> str:
    """r for numbers, l for short text, a wrapping p-column for text wider than WRAP characters."""
    out = ""
    for i in range(len(t.columns)):
        values = [r[i] for r in t.rows if r[i] is not None]
        if values and all(numeric(v) for v in values):
            out += "r"
        elif max((len(fmt(v)) for v in values), default=0) > WRAP:
            out += rf"p{{{WRAP * 0.5:g}em}}"
        else:
            out += "l"
    return out


def longtable(t: Table) -> list[str]:
    align = alignment(t)
    natural = sum(w + PADDING for w in column_widths(t, wrap_headers=False))
    size = r"\small" if natural <= SMALL_BUDGET else r"\scriptsize"
    lines = [r"\begingroup" + size, rf"\begin{{longtable}}{{{align}}}",
             rf"\caption{{{tex(t.title)}}}\\", r"\toprule",
             " & ".join(rf"\textbf{{{tex(c)}}}" for c in t.columns) + r" \\", r"\midrule", r"\endhead"]
    lines += [" & ".join(cell(v) for v in row) + r" \\" for row in t.rows]
    lines += [r"\bottomrule", r"\end{longtable}", r"\endgroup"]
    if t.note:
        lines += [rf"\noindent{{\footnotesize {tex(t.note)}}}", ""]
    return [*lines, ""]


def section(s: Section, level: int) -> list[str]:
    out = [rf"\{HEADINGS[min(level, len(HEADINGS) - 1)]}{{{tex(s.title)}}}", ""]
    out += [tex(n) + "\n" for n in s.notes]
    for t in s.tables:
        out += table(t)
    for f in s.figures:
        pdf = f.png[: -len(".png")] + ".pdf"
        out += [r"\begin{figure}[htbp]", r"\centering",
                rf"\includegraphics[width=\linewidth,height=0.8\textheight,keepaspectratio]{{{pdf}}}",
                rf"\caption{{{tex(f.caption)}}}", r"\end{figure}", ""]
    if s.code:
        out += [r"\noindent The resolved configuration is in the HTML report and the run's config.yaml.", ""]
    for child in s.children:
        out += section(child, level + 1)
    return out


LOOKALIKE = {"ALPHA": "A", "BETA": "B", "EPSILON": "E", "ZETA": "Z", "ETA": "H", "IOTA": "I", "KAPPA": "K",
             "MU": "M", "NU": "N", "OMICRON": "O", "RHO": "P", "TAU": "T", "CHI": "X"}


def pdftex_glyph(c: str) -> str:
    """How pdflatex sets a character beyond Latin-1: a Greek letter as its math symbol, anything
    else as its code point (lualatex and xelatex set the character itself)."""
    import unicodedata

    name = unicodedata.name(c, "").replace("FINAL SIGMA", "VARSIGMA")
    for case, prefix in (("lower", "GREEK SMALL LETTER "), ("upper", "GREEK CAPITAL LETTER ")):
        if name.startswith(prefix) and " " not in (letter := name.removeprefix(prefix)):
            if case == "upper" and letter in LOOKALIKE:
                return LOOKALIKE[letter]
            command = letter.lower() if case == "lower" else letter.capitalize()
            return "o" if command == "omicron" else rf"\ensuremath{{\{command}}}"
    return rf"\texttt{{<U+{ord(c):04X}>}}"


def unicode_lines(body: list[str]) -> list[str]:
    return [rf"  \DeclareUnicodeCharacter{{{ord(c):04X}}}{{{pdftex_glyph(c)}}}"
            for c in sorted({c for line in body for c in line if ord(c) > 255})]


def latex(report: Report) -> str:
    body = document_body(report)
    preamble = [line for p in PREAMBLE for line in (unicode_lines(body) if p == "__UNICODE__" else [p])]
    return "\n".join([*preamble, *body]) + "\n"


def document_body(report: Report) -> list[str]:
    out = [rf"\title{{{tex(report.title)}}}", r"\author{}", r"\date{}", r"\begin{document}", r"\maketitle",
           rf"\noindent {tex(report.subtitle)}", ""]  # a paragraph: \author would never break a line
    out += [rf"\noindent\textbf{{Warning:}} {tex(b)}" + "\n" for b in report.banners]
    if report.cards:
        out += table(Table("Headline numbers", [k for k, _ in report.cards], [[v for _, v in report.cards]]))
    for s in report.sections:
        out += section(s, 0)
    return [*out, r"\end{document}"]
