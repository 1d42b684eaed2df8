"""A room's view of the app in a real browser: a cold server says what it is computing before
the content appears, and presenter mode at 1280x720 and 1920x1080 draws tiles of at least 64 px and never
breaks a label's word.

The server is fresh (nothing cached in its process) over copies of the shipped demo runs the
pages open on; it is stopped by its pid (``serve_app``).
"""
from __future__ import annotations

import time

import pytest

from .appserver import require, serve_app, wait_idle

RUNS = ("demo-ae-z16", "demo-cvae", "demo-vae", "demo-sparse")
TILE = 64  # px: the least a tile may be drawn on a projector

# every text a spinner or a status box shows, as the page draws it (polled, so it sees one
# that lasts a fraction of a second)
WATCH_SPINNERS_JS = """() => { window.__seen = []; const seen = window.__seen;
  const look = () => { for (const s of document.querySelectorAll(
      '[data-testid="stSpinner"], [data-testid="stExpander"] summary, [data-testid="stStatusWidget"]')) {
      const t = s.innerText.trim(); if (t && !seen.includes(t)) seen.push(t); }
    requestAnimationFrame(look); };
  look(); }"""

# labels whose text is wider than their box (a word broken or cut), with their text
BROKEN_LABELS_JS = """() => [...document.querySelectorAll(
    '[data-testid="stWidgetLabel"] p, [data-testid="stMarkdownContainer"] strong, th')]
  .filter(e => e.offsetParent !== null && e.scrollWidth > e.clientWidth + 1).map(e => e.innerText)"""


@pytest.fixture(scope="module")
def app_server(browser, tmp_path_factory):
    yield from serve_app(browser, tmp_path_factory, demo_runs=RUNS)


@pytest.mark.xfail(strict=False, reason="open: in a full run the cold Lesson took 3.8 s with no spinner or "
                   "status text seen by the watcher (alone it passes); whether the wait is before the "
                   "page script's first spinner (imports) is not settled")
def test_a_cold_lesson_says_what_it_computes_before_its_pictures(browser, app_server):
    require(browser)
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.add_init_script(f"window.addEventListener('DOMContentLoaded', {WATCH_SPINNERS_JS})")
    started = time.monotonic()
    page.goto(f"{app_server.url}/lesson?step=ae-pca", timeout=60_000)
    page.wait_for_selector('[data-testid="stImage"] img', timeout=120_000)
    waited = time.monotonic() - started
    seen = page.evaluate("() => window.__seen")
    # a view that takes more than half a second says what it computes (Streamlit shows a
    # spinner only after a short delay, so a faster page needs none)
    assert waited < 0.5 or any("demo-ae-z16" in text for text in seen), (waited, seen)
    context.close()


@pytest.mark.parametrize("width, height", [(1280, 720), (1920, 1080)])
@pytest.mark.parametrize("path", ["/generate?run=demo-cvae&present=1", "/inside?run=demo-sparse&present=1"])
def test_presenter_mode_tiles_and_whole_words(browser, app_server, path, width, height):
    require(browser)
    context = browser.new_context(viewport={"width": width, "height": height})
    page = context.new_page()
    page.goto(app_server.url + path, timeout=60_000)
    page.wait_for_selector('[data-testid="stImage"] img', timeout=120_000)
    wait_idle(page, 120_000)
    # the first picture: a grid of 8 tiles a row (Generate's samples, Inside's filters)
    box = page.locator('[data-testid="stImage"] img').first.bounding_box()
    assert box["width"] / 8 >= TILE, box
    assert page.evaluate(BROKEN_LABELS_JS) == []
    context.close()
