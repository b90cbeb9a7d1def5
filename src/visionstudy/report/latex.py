"""A `Report` as LaTeX: booktabs tables and the figures as vector PDFs, for a paper's appendix.

    visionstudy report runs/quick --format latex   # then: cd runs/quick/report && pdflatex report-latex.tex

Compiles with a plain TeX Live (pdflatex; booktabs, longtable, graphicx, geometry). Tables wider
than a page stay in their CSV, and the text says where.
"""

from __future__ import annotations

import re
from typing import Any

from visionstudy.report.document import Report, Section, Table, fmt, numeric

MAX_COLUMNS = 12  # wider tables are left to their CSV
HEADINGS = ["section", "subsection", "subsubsection", "paragraph", "subparagraph"]
SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
           "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
           "<": r"\textless{}", ">": r"\textgreater{}"}
SYMBOLS = {"±": r"$\pm$", "→": r"$\rightarrow$", "≥": r"$\geq$", "≤": r"$\leq$", "−": "-", "×": r"$\times$",
           "…": r"\ldots{}", "–": "--", "—": "---", "⚠": "", "’": "'", "‘": "`", "“": "``", "”": "''",
           "²": r"$^2$", "³": r"$^3$", "√": r"$\surd$", "≈": r"$\approx$", "·": r"$\cdot$"}
CHAR = re.compile("|".join(re.escape(c) for c in [*SPECIAL, *SYMBOLS]))


def tex(text: Any) -> str:
    """Plain text → LaTeX: specials escaped, common symbols mapped, the rest of Latin-1 kept."""
    out = CHAR.sub(lambda m: SPECIAL.get(m.group(), SYMBOLS.get(m.group(), "")), str(text))
    return "".join(c if ord(c) < 256 else "?" for c in out)


def cell(value: Any) -> str:
    return tex(fmt(value))


def table(t: Table) -> list[str]:
    if not t.inline or len(t.columns) > MAX_COLUMNS:
        where = f"tables/{t.csv}" if t.csv else "the HTML report"
        return [rf"\noindent\textit{{{tex(t.title)}}}: {len(t.rows)} rows $\times$ {len(t.columns)} "
                rf"columns, in \texttt{{{tex(where)}}}.", ""]
    align = "".join("r" if t.rows and all(numeric(r[i]) for r in t.rows if r[i] is not None)
                    and any(r[i] is not None for r in t.rows) else "l" for i in range(len(t.columns)))
    size = r"\small" if len(t.columns) <= 6 else r"\scriptsize"
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


def latex(report: Report) -> str:
    out = [r"\documentclass[10pt]{article}", r"\usepackage[a4paper,margin=2cm]{geometry}",
           r"\usepackage[utf8]{inputenc}",
           r"\usepackage{booktabs}", r"\usepackage{longtable}", r"\usepackage{graphicx}",
           r"\setlength{\LTcapwidth}{\linewidth}", r"\setcounter{topnumber}{4}",
           r"\renewcommand{\topfraction}{0.95}", r"\renewcommand{\textfraction}{0.05}",
           rf"\title{{{tex(report.title)}}}", rf"\author{{{tex(report.subtitle)}}}", r"\date{}",
           r"\begin{document}", r"\maketitle", ""]
    out += [rf"\noindent\textbf{{Warning:}} {tex(b)}" + "\n" for b in report.banners]
    if report.cards:
        out += table(Table("Headline numbers", [k for k, _ in report.cards], [[v for _, v in report.cards]]))
    for s in report.sections:
        out += section(s, 0)
    out += [r"\end{document}", ""]
    return "\n".join(out)
