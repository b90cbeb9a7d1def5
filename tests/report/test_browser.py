"""The HTML report in real headless Chromium: loads without console errors, every image loads.

A full-page screenshot is written to test-output/ (or $VISIONSTUDY_TEST_OUTPUT) to look at.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from visionstudy.report import ReportOptions, build_report

ROOT = Path(__file__).resolve().parents[2]


def chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed: scripts/setup.sh --dev installs Debian's chromium")
        pytest.skip("chromium is not installed (scripts/setup.sh --dev installs it)")
    return path


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
def test_report_loads_cleanly_in_chromium(digits_run, tmp_path, kind):
    paths = [digits_run] if kind == "run" else [digits_run, shutil.copytree(digits_run, tmp_path / "b")]
    html = build_report(paths, tmp_path / "rep", ReportOptions(tsne_points=60))
    out = Path(os.environ.get("VISIONSTUDY_TEST_OUTPUT", ROOT / "test-output"))
    shot = out / f"report-{kind}.png"
    errors, failed, images = open_in_chromium(html, shot)
    assert errors == [] and failed == []
    assert images >= (12 if kind == "run" else 20)
    assert shot.stat().st_size > 50_000
    print(f"screenshot: {shot}")
