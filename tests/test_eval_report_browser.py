"""The HTML eval report renders in a real Chromium: tables, embedded charts, a non-blank page."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from evalkit import graded_report

from storetune.eval.report import write_report

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")


@pytest.fixture
def browser():
    # a missing browser fails the test rather than skipping it; `make test` installs it
    if not (CHROMIUM and CHROMEDRIVER):
        pytest.fail("chromium/chromedriver not installed (run 'make browser')")
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    opts = Options()
    opts.binary_location = CHROMIUM or "/usr/bin/chromium"
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--window-size=1280,2400",
    ):
        opts.add_argument(arg)
    driver = webdriver.Chrome(
        service=Service(CHROMEDRIVER or "/usr/bin/chromedriver"), options=opts
    )
    yield driver
    driver.quit()


def test_report_renders_in_chromium(tmp_path, browser):
    from PIL import Image
    from selenium.webdriver.common.by import By

    _, html = write_report(graded_report(), tmp_path, "eval-support-v2")
    browser.get(Path(html).as_uri())

    rows = browser.find_elements(By.CSS_SELECTOR, "#headline tbody tr")
    assert [r.find_element(By.TAG_NAME, "td").text for r in rows] == ["base", "support-v2"]
    assert rows[1].is_displayed() and rows[1].size["height"] > 0

    images = browser.find_elements(By.CSS_SELECTOR, "figure img")
    assert len(images) >= 4
    widths = browser.execute_script(
        "return Array.from(document.images).map(i => i.complete ? i.naturalWidth : 0)"
    )
    assert all(w > 0 for w in widths), widths

    shot = tmp_path / "report.png"
    assert browser.save_screenshot(str(shot))
    pixels = Image.open(shot).convert("L")
    lo, hi = pixels.getextrema()
    assert hi - lo > 100  # dark text on a light page, not a blank screen
    assert len(pixels.resize((64, 64)).getcolors(maxcolors=4096)) > 20
