"""Deep links as the very first request of a freshly started server.

With a top-level pages/ folder, Streamlit serves the first request for /traversal by running
pages/traversal.py alone (its legacy multi-page mode: no app.py, a sidebar of file names).
``ui.within_app()`` at the top of every page hands that run over to app.py. This module starts
its own server and opens /traversal before anything else has run on it.
"""
from __future__ import annotations

import re
from urllib.parse import urlparse

from .appserver import ROOT, require, wait_idle
from .test_browser import _expect, no_failures

# The titles app.py gives its pages, in order; the legacy sidebar would show "app", "traversal", ...
NAVIGATION = re.findall(r'st\.Page\("[^"]+", title="([^"]+)"', (ROOT / "app.py").read_text())
assert len(NAVIGATION) >= 10, NAVIGATION  # the pattern still matches app.py


SERVED_RUNS = ("demo-vae",)  # conftest's app_server: a fresh server over a copy of these


def sidebar_links(page) -> list[str]:
    nav = page.get_by_test_id("stSidebarNav")
    _expect()(nav).to_be_visible()
    # each link reads "<icon ligature>\n\n<title>": the title is its last line
    return [t.strip().splitlines()[-1] for t in nav.get_by_role("link").all_inner_texts()]


def test_deep_link_first_request_renders_inside_the_navigation(browser, app_server, page):
    require(browser)
    expect = _expect()
    page.goto(f"{app_server.url}/traversal")  # the first script run this server does
    expect(page.get_by_role("heading", name="Traversal", exact=True)).to_be_visible(timeout=90_000)
    wait_idle(page, 90_000)
    expect(page.get_by_test_id("stImage").first).to_be_visible()  # the page itself ran
    assert sidebar_links(page) == NAVIGATION
    assert urlparse(page.url).path == "/traversal"
    expect(page.get_by_role("heading", name="Traversal", exact=True)).to_have_count(1)  # once
    no_failures(page)
    # and the navigation works on from there
    page.get_by_test_id("stSidebarNav").get_by_role("link", name="Runs", exact=True).click()
    expect(page.get_by_role("heading", name="Runs", exact=True)).to_be_visible()
    no_failures(page)
