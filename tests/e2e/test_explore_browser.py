"""The explore pages in a real browser, as a user: drag a traversal slider, lasso codes.

The app serves a throwaway runs folder holding copies of two shipped demo runs (finished,
with their caches), so the pages open without training or long computations. Every step
waits on a condition (a locator, the decoded image's URL, the app being idle), never on a
fixed sleep. Full-page screenshots go beside the other browser tests' (traversal.png,
latent.png).

Each test opens Home first and goes on through the sidebar, as a person does.
"""
from __future__ import annotations

import io
import re

import numpy as np
import pytest

from aelab.explore.latent import decode_codes
from aelab.runs.refs import RunRef

from .appserver import DECODED, decoder_frame, full_page_screenshot, require, wait_idle
from .test_browser import _expect, choose, no_failures, open_page

SERVED_RUNS = ("demo-vae", "demo-ae-z2")  # conftest's app_server: latent 8 and latent 2
SELECTED = re.compile(r"^(\d+) selected point\(s\)$")
COUNTED = re.compile(r"^(\d+) of (\d+) selected$")


def run_option(runs_dir, run_id: str) -> str:
    """The label the Run selectbox shows for ``run_id``."""
    from aelab.runs.local import RunManager
    from aelab.ui import run_label

    return run_label(next(r for r in RunManager(runs_dir).list() if r["id"] == run_id))


def open_home_then(page, app_server, name: str) -> None:
    """Home at the root URL, then ``name`` through the sidebar navigation."""
    page.goto(app_server.url)
    _expect()(page.get_by_role("heading", name="aelab - an autoencoder lab")).to_be_visible(timeout=90_000)
    open_page(page, name)
    wait_idle(page, 90_000)


def pixel_difference(png_a: bytes, png_b: bytes) -> float:
    """Mean absolute difference of two screenshots, per pixel and channel (0-255)."""
    from PIL import Image, ImageChops, ImageStat

    a, b = (Image.open(io.BytesIO(png)).convert("RGB") for png in (png_a, png_b))
    assert a.size == b.size, (a.size, b.size)
    return sum(ImageStat.Stat(ImageChops.difference(a, b)).mean) / 3


def test_traversal_slider_drag(browser, app_server, page, screenshots):
    """Dragging the first traversal slider with the mouse decodes a different picture, in
    the browser (the component's canvas), as torch decodes it; an arrow key moves it too.

    Opened through Home and the sidebar, as a user does (deep links: test_deep_links.py).
    """
    require(browser)
    expect = _expect()
    open_home_then(page, app_server, "Traversal")
    choose(page, "Run", run_option(app_server.runs_dir, "demo-vae"))
    expect(page.get_by_text("Dimensions ordered by KL")).to_be_visible()  # the VAE is shown
    wait_idle(page)
    frame = decoder_frame(page)
    expect(frame.get_by_text(DECODED, exact=True)).to_be_visible()
    canvas = frame.locator("canvas")
    before = canvas.screenshot(animations="disabled")
    draws = frame.evaluate("() => window.aelab.draws")

    # The first slider (the dimension with the most KL): drag its thumb across the track.
    value = frame.get_by_role("slider").first  # a native input type=range
    expect(value).to_have_attribute("aria-label", re.compile(r"^z\d+ \(KL \d+\.\d+\)$"))
    before_value = float(value.input_value())
    low, high = float(value.get_attribute("min")), float(value.get_attribute("max"))
    value.scroll_into_view_if_needed()
    track = value.bounding_box()
    middle_y = track["y"] + track["height"] / 2
    start = track["x"] + track["width"] * (before_value - low) / (high - low)
    target = track["x"] + track["width"] * (0.1 if before_value > (low + high) / 2 else 0.9)
    page.mouse.move(start, middle_y)
    page.mouse.down()
    page.mouse.move(target, middle_y, steps=12)
    page.mouse.up()
    after_value = float(value.input_value())
    assert abs(after_value - before_value) > 0.2 * (high - low), (before_value, after_value)

    # Drawn in the browser: no script run on the server, the picture is torch's decoding.
    assert frame.evaluate("() => window.aelab.draws") > draws
    assert page.evaluate("() => document.querySelector('[data-testid=\"stApp\"]').dataset.testScriptState") \
        != "running"
    after = canvas.screenshot(animations="disabled")
    difference = pixel_difference(before, after)
    assert difference > 2.0, f"the decoded image barely changed: mean |diff| {difference:.2f}"
    z = np.array(frame.evaluate("() => Array.from(window.aelab.z)"), dtype=np.float32)
    shown = np.array(frame.evaluate("() => Array.from(window.aelab.pixels)"))
    model = RunRef(app_server.runs_dir, "demo-vae").load_model()
    assert np.abs(shown - decode_codes(model, z[None])[0].ravel()).max() < 1e-3
    # an arrow key on the focused slider: one step (a hundredth of its range), drawn at once
    draws = frame.evaluate("() => window.aelab.draws")
    value.focus()
    page.keyboard.press("ArrowLeft")
    assert float(value.input_value()) == pytest.approx(max(low, after_value - (high - low) / 100), rel=1e-6)
    assert frame.evaluate("() => window.aelab.draws") == draws + 1
    # a rerun of the page below (the grid's steps) keeps the sliders where they are
    moved = frame.evaluate("() => Array.from(window.aelab.z)")
    steps = page.get_by_test_id("stSlider").filter(has_text="Steps").get_by_role("slider")
    row = page.get_by_test_id("stImage").first.locator("img")  # the grid's first row
    row_src = row.get_attribute("src")
    steps.focus()
    page.keyboard.press("ArrowLeft")
    expect(steps).to_have_value("8")
    expect(row).not_to_have_attribute("src", row_src)  # the page reran: a new grid
    wait_idle(page)
    assert decoder_frame(page).evaluate("() => Array.from(window.aelab.z)") == moved
    no_failures(page)
    full_page_screenshot(page, screenshots / "traversal.png")


def test_latent_lasso_selection(browser, app_server, page, screenshots):
    """A lasso drawn over the 2-D codes (one subplot of the page's one figure) selects
    points; the page counts them and highlights the same points in every view; their
    images are shown below."""
    require(browser)
    expect = _expect()
    open_home_then(page, app_server, "Latent space")
    choose(page, "Run", run_option(app_server.runs_dir, "demo-ae-z2"))
    expect(page.get_by_test_id("stPlotlyChart")).to_have_count(1)  # every view in one figure
    chart = page.get_by_test_id("stPlotlyChart")
    titles = chart.locator(".annotation-text")
    expect(titles.first).to_have_text("The 2-D codes as they are")  # latent dim 2
    expect(titles).to_have_count(5)
    expect(page.get_by_role("heading", name=SELECTED)).to_have_count(0)
    expect(page.get_by_text(COUNTED)).to_have_text(re.compile(r"^0 of \d+ selected$"))
    wait_idle(page)  # the figure drawn
    assert chart.evaluate("e => e.querySelector('.js-plotly-plot').layout.dragmode") == "lasso"

    # Draw a closed lasso over the middle of the first subplot (the page sets dragmode=lasso).
    area = chart.locator(".nsewdrag").first
    area.scroll_into_view_if_needed()
    box = area.bounding_box()
    loop = [(0.3, 0.5), (0.5, 0.4), (0.7, 0.5), (0.7, 0.8), (0.5, 0.9), (0.3, 0.8), (0.3, 0.5)]
    points = [(box["x"] + fx * box["width"], box["y"] + fy * box["height"]) for fx, fy in loop]
    page.mouse.move(*points[0])
    page.mouse.down()
    for point in points[1:]:
        page.mouse.move(*point, steps=6)
    page.mouse.up()

    heading = page.get_by_role("heading", name=SELECTED)
    expect(heading).to_be_visible(timeout=60_000)
    wait_idle(page)
    count = int(SELECTED.match(heading.inner_text().strip()).group(1))
    assert COUNTED.match(page.get_by_text(COUNTED).inner_text().strip()).group(1) == str(count)
    # linked: the same number of points highlighted in each of the five views
    lassoed = chart.evaluate(  # the traces of each view (one per label class), summed
        """e => { const d = e.querySelector('.js-plotly-plot').data, per = d.length / 5;
                  return [0, 1, 2, 3, 4].map(v => d.slice(v * per, (v + 1) * per)
                    .reduce((n, t) => n + (t.selectedpoints || []).length, 0)); }""")
    assert count >= 1 and lassoed == [count] * 5, (count, lassoed)
    # images, reconstructions and code-space neighbours: one picture each after the heading
    shown = page.evaluate(
        """(pattern) => {
             const h = [...document.querySelectorAll('h1, h2, h3')]
               .find(e => new RegExp(pattern).test(e.innerText.trim()));
             return [...document.querySelectorAll('[data-testid="stImage"] img')]
               .filter(i => h.compareDocumentPosition(i) & Node.DOCUMENT_POSITION_FOLLOWING)
               .filter(i => i.complete && i.naturalWidth > 0).length;
           }""", SELECTED.pattern)
    assert shown >= 3, shown
    for caption in ("Images", "Reconstructions", "Nearest neighbours in code space of the first selected point"):
        expect(page.get_by_test_id("stMain").get_by_text(caption, exact=True)).to_be_visible()
    no_failures(page)
    page.mouse.move(1, 1)  # off the chart: no hover label or modebar over the title in the shot
    full_page_screenshot(page, screenshots / "latent.png")
