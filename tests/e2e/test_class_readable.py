"""A room's view of the app in a real browser: a cold server says what it is computing before
the content appears, and presenter mode at 1280x720 and 1920x1080 draws tiles of at least 64 px and never
breaks a label's word.

The server is fresh (nothing cached in its process) over copies of the shipped demo runs the
pages open on (conftest's ``app_server``), stopped by its pid.
"""
from __future__ import annotations

import pytest

from .appserver import require, wait_idle

SERVED_RUNS = ("demo-ae-z16", "demo-cvae", "demo-vae", "demo-sparse", "demo-betavae-shapes")  # conftest's app_server
TILE = 64  # px: the least a tile may be drawn on a projector

# While the script runs: every text a spinner or a status box shows, and the longest stretch in
# which the main area neither changed nor showed one (a page that sits still, not saying why).
# Polled on every frame, so a spinner that lasts a fraction of a second is seen too.
WATCH_JS = """() => { const w = window.__watch = {seen: [], still: 0, ran: false};
  let last = null, changed = false;
  const inMain = (node) => { const e = node.nodeType === 1 ? node : node.parentElement;
    return !!(e && e.closest('[data-testid="stMain"]')); };
  new MutationObserver((records) => { if (records.some(r => inMain(r.target))) changed = true; })
    .observe(document, {subtree: true, childList: true, characterData: true, attributes: true});
  const look = () => {
    const app = document.querySelector('[data-testid="stApp"]');
    const now = performance.now();
    if (app && app.dataset.testScriptState === 'running') {
      w.ran = true;
      const spinners = [...document.querySelectorAll(
          '[data-testid="stSpinner"], [data-testid="stExpanderIconSpinner"]')];
      for (const s of spinners) {
        const t = (s.closest('summary') || s).innerText.trim();
        if (t && !w.seen.includes(t)) w.seen.push(t); }
      if (last === null || changed || spinners.length) last = now;
      w.still = Math.max(w.still, now - last);
    } else { last = null; }
    changed = false;
    requestAnimationFrame(look); };
  look(); }"""
STILL_S = 1.5  # s: Streamlit draws a spinner after 0.5 s; the rest is slack for a loaded 2-core box

# labels whose text is wider than their box (a word broken or cut), with their text
BROKEN_LABELS_JS = """() => [...document.querySelectorAll(
    '[data-testid="stWidgetLabel"] p, [data-testid="stMarkdownContainer"] strong, th')]
  .filter(e => e.offsetParent !== null && e.scrollWidth > e.clientWidth + 1).map(e => e.innerText)"""


# each view the pages open on, first visited on this fresh server, with the run it shows
COLD_VIEWS = ["/lesson?step=ae-pca", "/reconstructions?run=demo-ae-z16", "/latent?run=demo-vae",
              "/traversal?run=demo-vae", "/generate?run=demo-cvae", "/inside?run=demo-sparse",
              "/disentangle?run=demo-betavae-shapes", "/runs?run=demo-vae", "/", "/train", "/study",
              "/challenge"]


@pytest.mark.parametrize("path", COLD_VIEWS)
def test_a_cold_page_never_sits_still_without_saying_what_it_computes(browser, app_server, path):
    require(browser)
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.add_init_script(f"window.addEventListener('DOMContentLoaded', {WATCH_JS})")
    page.goto(app_server.url + path, timeout=60_000)
    page.wait_for_function("() => window.__watch && window.__watch.ran", timeout=60_000)
    wait_idle(page, 120_000)
    watch = page.evaluate("() => window.__watch")
    # a script that works on for more than half a second shows what it computes (Streamlit
    # shows a spinner only after half a second, so a faster step needs none)
    assert watch["still"] / 1000 < STILL_S, watch
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
