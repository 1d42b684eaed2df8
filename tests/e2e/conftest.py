"""Browser-test fixtures: the app served by ``streamlit run app.py`` and the system Chromium.

The browser is Debian's ``/usr/bin/chromium`` driven by Playwright; nothing is ever
downloaded. Without it (or without the playwright package) the browser tests are
skipped on a developer's machine, but fail when ``CI=true``: CI must run them.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from .appserver import ROOT, Missing, full_page_screenshot, launch_chromium, missing_browser, serve_app

TIMEOUT_MS = 30_000  # default wait of locators and expect: Streamlit renders asynchronously
IN_CI = os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


@pytest.fixture(scope="module")
def browser():
    """Headless system Chromium (flags of DESIGN.md), or ``Missing`` under CI."""
    reason = missing_browser()
    if reason:
        if not IN_CI:
            pytest.skip(reason)
        yield Missing(reason)  # the test fails on it, not this fixture: a failure, not an error
        return
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = launch_chromium(playwright)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def app_server(browser, tmp_path_factory, request):
    """``streamlit run app.py`` on a free port, one per test module, over a fresh runs folder
    holding copies of the shipped demo runs the module names in ``SERVED_RUNS`` (none: empty)."""
    yield from serve_app(browser, tmp_path_factory, demo_runs=getattr(request.module, "SERVED_RUNS", ()))


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    report = yield
    setattr(item, f"report_{report.when}", report)  # lets the page fixture see a failure
    return report


@pytest.fixture
def page(browser, app_server, screenshots, request):
    """A fresh browser tab (1280 px wide); closed after the test. None when the browser is
    missing under CI: the test calls ``require(browser)`` first and fails."""
    if isinstance(browser, Missing):
        yield None
        return
    from playwright.sync_api import expect

    expect.set_options(timeout=TIMEOUT_MS)  # its default is 5 s: short for a busy 2-core CI box
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    tab = context.new_page()
    tab.set_default_timeout(TIMEOUT_MS)
    yield tab
    report = getattr(request.node, "report_call", None)
    if report is not None and report.failed:  # what the page showed when the test failed
        name = f"failed-{request.node.name}"
        try:
            (screenshots / f"{name}.html").write_text(tab.content())
            try:
                full_page_screenshot(tab, screenshots / f"{name}.png", idle_timeout=5_000)
            except Exception:  # never settled: the visible part as it is
                tab.screenshot(path=str(screenshots / f"{name}.png"))
        except Exception as exc:  # the browser may be gone; the failure itself is reported
            print(f"could not save the failure screenshot: {exc}")
    context.close()


@pytest.fixture(scope="session")
def screenshots() -> Path:
    """Where full-page screenshots go: ``$AELAB_SCREENSHOTS`` or test-output/screenshots/."""
    folder = Path(os.environ.get("AELAB_SCREENSHOTS") or ROOT / "test-output" / "screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder
