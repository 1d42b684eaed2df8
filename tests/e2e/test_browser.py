"""The app in a real browser, as a user: Home, train a run, watch it finish, compare it.

Streamlit renders asynchronously: every step waits on a locator (Playwright's
``expect`` retries until its timeout), never on a fixed sleep. Full-page screenshots of
each page go to ``$AELAB_SCREENSHOTS`` (default test-output/screenshots/).
"""
from __future__ import annotations

import json
import re

from aelab.metrics.names import term_name

from .appserver import full_page_screenshot, require, wait_idle


def _expect():
    """Playwright's ``expect``, imported late: without playwright the test fails or skips
    with a sentence (see conftest.require) instead of an import error at collection."""
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect


def no_failures(page) -> None:
    """No traceback and no error box on the page."""
    expect_ = _expect()
    expect_(page.get_by_test_id("stException")).to_have_count(0)
    expect_(page.get_by_test_id("stAlertContentError")).to_have_count(0)


def open_page(page, name: str, heading: str | None = None) -> None:
    """Click ``name`` in the sidebar navigation and wait for the page's title."""
    page.get_by_test_id("stSidebarNav").get_by_role("link", name=name, exact=True).click()
    _expect()(page.get_by_role("heading", name=heading or name, exact=True)).to_be_visible()


def choose(page, label: str, option: str) -> None:
    """Pick ``option`` in the selectbox labelled ``label``."""
    box = page.get_by_role("combobox", name=label, exact=True)
    box.click()
    page.get_by_role("option", name=option, exact=True).click()
    _expect()(box).to_have_value(option)
    wait_idle(page)


def set_number(page, label: str, value) -> None:
    """Type ``value`` into the number input labelled ``label`` and commit it (Enter)."""
    field = page.get_by_role("spinbutton", name=label, exact=True)
    field.fill(str(value))
    field.press("Enter")
    wait_idle(page)
    _expect()(field).to_have_value(str(value))


def run_diagnostics(runs_dir, run_id: str) -> str:
    """The run's status and worker log, for a failure message."""
    folder = runs_dir / run_id
    parts = []
    for name in ("status.json", "worker.log"):
        try:
            parts.append(f"{name}: {(folder / name).read_text(errors='replace')[-2000:]}")
        except OSError:
            parts.append(f"{name}: (missing)")
    try:
        parts.append(f".supervisor.log: {(runs_dir / '.supervisor.log').read_text()[-2000:]}")
    except OSError:
        pass
    return "\n".join(parts)


def plotted_traces(page) -> list[dict]:
    """The traces of the first Plotly chart: name, type, mode and number of points."""
    return page.evaluate(
        "name => { const gd = document.querySelector('.js-plotly-plot');"
        " return gd && gd.data ? gd.data.map(t => ({name: t.name, type: t.type,"
        " mode: t.mode || '', points: (t.y || []).length})) : []; }")


def test_train_watch_and_compare(browser, app_server, page, screenshots):
    require(browser)
    expect = _expect()
    from aelab.training.setup import device_label, resolve_device

    # Home: title, the device training uses, no runs yet.
    page.goto(app_server.url)
    expect(page.get_by_role("heading", name="aelab - an autoencoder lab")).to_be_visible(timeout=90_000)
    expect(page.get_by_text("Training uses")).to_contain_text(device_label(resolve_device("auto")))
    expect(page.get_by_text("No runs yet in")).to_be_visible()
    no_failures(page)
    full_page_screenshot(page, screenshots / "home.png")

    # Train: digits, ae, 1 epoch, start it in the background.
    open_page(page, "Train")
    choose(page, "Dataset", "digits")
    choose(page, "Variant", "ae")
    set_number(page, "Epochs", 1)
    page.get_by_role("button", name="Start training").click()
    started = page.get_by_text(re.compile(r"Started run \S+ in the background"))
    expect(started).to_be_visible()
    run_id = re.search(r"Started run (\S+) in the background", started.inner_text()).group(1)
    assert "-ae-digits-" in run_id
    no_failures(page)
    full_page_screenshot(page, screenshots / "train.png")

    # Runs: the run reaches `done` in the live table and its loss curve is plotted.
    open_page(page, "Runs")
    # st.dataframe paints a canvas; its cells are mirrored in an accessibility table
    # (td role=gridcell) that is in the DOM but not "visible", so wait on its text.
    table = page.get_by_test_id("stDataFrame").first
    expect(table).to_be_visible()
    from aelab.runs.labels import run_labels
    from aelab.runs.local import RunManager

    rows = RunManager(app_server.runs_dir, start_supervisor=False).list()
    row = table.locator("tr", has_text=run_labels(rows)[run_id])  # the table shows readable labels
    try:
        expect(row.locator("td", has_text=re.compile(r"^done$"))).to_have_count(1, timeout=90_000)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{run_diagnostics(app_server.runs_dir, run_id)}") from None
    status = json.loads((app_server.runs_dir / run_id / "status.json").read_text())
    assert status["state"] == "done" and status["device"], status
    chart = page.locator(".js-plotly-plot").first
    expect(chart).to_be_visible()
    expect(chart.locator("svg.main-svg").first).to_be_attached()
    page.wait_for_function(
        "name => { const gd = document.querySelector('.js-plotly-plot');"
        " return gd && gd.data && gd.data.some(t => t.name === name && (t.y || []).length > 0); }",
        arg=term_name("loss"))
    loss = next(t for t in plotted_traces(page) if t["name"] == term_name("loss"))
    assert loss["points"] >= 1, loss
    if loss["points"] >= 2 or "markers" in loss["mode"]:
        # something is drawn for the trace: an SVG line or markers, or Scattergl's canvas (a
        # 1-epoch run logs one point, which a lines-only trace does not draw at all)
        expect(chart.locator(".scatterlayer .trace path.js-line, .scatterlayer .trace .points path,"
                             " canvas.gl-canvas-context").first).to_be_attached()
    no_failures(page)
    full_page_screenshot(page, screenshots / "runs.png")

    # Reconstructions: the finished run against PCA, as images.
    open_page(page, "Reconstructions")
    images = page.get_by_test_id("stImage").locator("img")
    expect(images.first).to_be_visible(timeout=60_000)
    expect(page.get_by_text("original", exact=True)).to_be_visible()
    expect(page.get_by_role("heading", name="Denoising demo")).to_be_visible()
    wait_idle(page)  # includes: every image loaded
    # originals, the run, PCA; then clean, noisy, the run, PCA: one picture row each
    assert images.count() >= 7, images.count()
    no_failures(page)
    full_page_screenshot(page, screenshots / "reconstructions.png")
