"""The HTML report in real headless Chromium: loads without console errors, every image loads.

A full-page screenshot is written to test-output/ (or $VISIONSTUDY_TEST_OUTPUT) to look at.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.helpers import ROOT, chromium
from visionstudy.report import ReportOptions, build_report


def open_in_chromium(html: Path, screenshot: Path) -> tuple[list[str], list[str], int]:
    """(console errors, failed requests, number of images) after loading the page."""
    from playwright.sync_api import sync_playwright

    errors: list[str] = []
    failed: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium(), args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("requestfailed", lambda r: failed.append(r.url))
        page.goto(html.as_uri())
        page.wait_for_load_state("load")
        broken = page.evaluate(
            "Array.from(document.images).filter(i => !(i.complete && i.naturalWidth > 0))"
            ".map(i => i.getAttribute('src'))"
        )
        count = page.evaluate("document.images.length")
        screenshot.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(screenshot), full_page=True)
        browser.close()
    return errors, failed + broken, count


@pytest.mark.parametrize("kind", ["run", "comparison"])
def test_report_copied_alone_shows_every_figure_in_chromium(digits_run, tmp_path, kind):
    """report.html moved without its folder still shows every figure (they are embedded)."""
    paths = [digits_run] if kind == "run" else [digits_run, shutil.copytree(digits_run, tmp_path / "b")]
    html = build_report(paths, tmp_path / "rep", ReportOptions(tsne_points=60))
    figures = len(list((tmp_path / "rep" / "figures").rglob("*.png")))
    alone = tmp_path / "elsewhere" / "sent-by-mail.html"
    alone.parent.mkdir()
    shutil.copy(html, alone)
    shutil.rmtree(tmp_path / "rep")  # nothing of the report folder is left to load from
    out = Path(os.environ.get("VISIONSTUDY_TEST_OUTPUT", ROOT / "test-output"))
    shot = out / f"report-{kind}.png"
    errors, failed, images = open_in_chromium(alone, shot)
    assert errors == [] and failed == []
    assert images == figures and images >= (14 if kind == "run" else 30)
    assert shot.stat().st_size > 50_000
    print(f"screenshot: {shot}")


def test_a_figure_opens_full_size_on_click(digits_run, tmp_path):
    from playwright.sync_api import sync_playwright

    html = build_report([digits_run], tmp_path / "rep", ReportOptions(images=False, tsne_points=60))
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium(), args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1200, "height": 800})
        page.goto(html.as_uri())
        first = page.locator("figure img").first
        shown = first.bounding_box()["width"]
        first.click()
        big = page.locator("#lightbox.on img")
        big.wait_for()
        natural = page.evaluate("document.querySelector('#lightbox img').naturalWidth")
        assert big.bounding_box()["width"] == pytest.approx(natural, abs=2) and natural > shown
        page.keyboard.press("Escape")
        assert page.locator("#lightbox.on").count() == 0
        browser.close()


def test_pdf_holds_every_figure_and_the_latex_compiles(digits_run, tmp_path):
    """--format pdf prints every section open with every figure; --format latex compiles with a
    real TeX (pdflatex) into a document with the same figures as vector PDFs."""
    import subprocess

    import pypdf

    pdflatex = shutil.which("pdflatex")
    if pdflatex is None:
        if os.environ.get("CI"):
            pytest.fail("pdflatex is not installed: scripts/setup.sh --dev installs texlive-latex-base")
        pytest.skip("pdflatex is not installed (scripts/setup.sh --dev installs it)")
    two = [digits_run, shutil.copytree(digits_run, tmp_path / "b")]  # folded sections: one per run
    opts = ReportOptions(tsne_points=60, formats=("html", "pdf", "latex"))
    html = build_report(two, tmp_path / "rep", opts)
    out = html.parent
    figures = sorted(p.relative_to(out).as_posix() for p in (out / "figures").rglob("*.png"))
    printed = pypdf.PdfReader(out / "report.pdf")
    assert sum(len(page.images) for page in printed.pages) == len(figures)
    text = "".join(page.extract_text() for page in printed.pages)
    assert text.count("batch_size:") >= 2 and text.count("Per class") >= 2  # both folded runs printed open
    tex = (out / "report-latex.tex").read_text()
    assert r"\toprule" in tex and r"\usepackage{booktabs}" in tex
    for fig in figures:
        pdf = fig.replace(".png", ".pdf")
        assert (out / pdf).is_file() and f"{{{pdf}}}" in tex
    done = subprocess.run([pdflatex, "-interaction=nonstopmode", "-halt-on-error", "report-latex.tex"],
                          cwd=out, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:]
    paper = pypdf.PdfReader(out / "report-latex.pdf")
    assert len(paper.pages) >= 5
    assert "Runs side by side" in "".join(page.extract_text() for page in paper.pages[:3])


WIDE = """name: wide
seeds: 2
description: "Ω ≠ ω: nine variants, and a description line with a path that has no spaces at all:
  runs/wide/a/very/long/path/that/a/printed/page/must/break/somewhere/before/its/right/margin/ends/it"
data: {dataset: digits, max_train_samples: 200}
model: {name: cnn, channels: [4], hidden: [8]}
train: {epochs: 1, batch_size: 64, optimizer: {name: adam, lr: 0.01}}
variants:
  baseline: {}
  bn: {model: {batch_norm: true}}
  drop: {model: {dropout: 0.2}}
  wider: {model: {channels: [6]}}
  sgd: {train: {optimizer: {name: sgd, lr: 0.05}}}
  smooth: {train: {label_smoothing: 0.1}}
  decay: {train: {l2: 0.0001}}
  flip: {data: {augment: [flip]}}
  bs32: {train: {batch_size: 32}}
"""


@pytest.mark.slow
def test_printed_reports_keep_every_column_and_character_on_the_page(tmp_path):
    """Issue 26 items 25 and 26, on a nine-variant study (the quick study: the notebook's test):
    the PDF lost the per-variant table's columns after about the 18th, the LaTeX left 34-column
    tables to their CSV, its description ran past the margin, its 'against the baseline' table lost
    `effect size (d_z)`, and "Ω" became "?"."""
    from tests.helpers import assert_printed_whole, vs

    study = tmp_path / "wide.yaml"
    study.write_text(WIDE)
    runs = tmp_path / "runs"
    done = vs("study", "run", study, "--runs-dir", runs, "--workers", "2", "--quiet", "--no-report")
    assert done.returncode == 0, done.stderr
    texts = assert_printed_whole(runs / "wide", tmp_path / "report", ["variants.csv", "paired_tests.csv",
                                                                      "settings.csv"])
    assert all("Ω" in text and "?≠" not in text for text in texts.values())
