"""Your own input in a real browser: a stroke drawn with the mouse on the Latent space page's
canvas is starred on the code map where the library puts it, with its reconstruction; the
Traversal page opens from its code; Clear empties the section again.

The app serves a throwaway runs folder holding a copy of the shipped demo-vae (with its caches).
Every step waits on a condition, never on a fixed sleep.
"""
from __future__ import annotations

import re

import numpy as np

from aelab.explore import own_input as own
from aelab.metrics.results import fit_projection, get_caches
from aelab.runs.refs import RunRef

from .appserver import require, wait_idle
from .test_browser import _expect, no_failures

PLACED = re.compile(r"on the PCA view at \((-?\d+\.\d+), (-?\d+\.\d+)\)")


SERVED_RUNS = ("demo-vae",)  # conftest's app_server: a fresh server over a copy of these


def test_a_drawn_stroke_is_starred_where_its_code_lands(browser, app_server, page):
    require(browser)
    expect = _expect()
    page.goto(f"{app_server.url}/latent?run=demo-vae&input=draw")  # the link other pages give
    canvas = page.locator('canvas[aria-label="drawing canvas"]')
    expect(canvas).to_be_visible(timeout=90_000)
    wait_idle(page, 90_000)
    expect(page.get_by_text("Draw with the mouse, a pen or a finger")).to_be_visible()
    canvas.scroll_into_view_if_needed()
    box = canvas.bounding_box()
    page.mouse.move(box["x"] + box["width"] * 0.55, box["y"] + box["height"] * 0.15)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.45, box["y"] + box["height"] * 0.85, steps=15)
    page.mouse.up()

    placed = page.get_by_text(PLACED)
    expect(placed).to_be_visible(timeout=60_000)
    expect(page.get_by_text("as the model sees it · its reconstruction · PCA's (8 components)")).to_be_visible()
    chart = page.get_by_test_id("stPlotlyChart").filter(has=page.locator(".legendtext", has_text="your input"))
    expect(chart).to_have_count(1)  # the marker's map
    expect(chart.locator("path.point")).not_to_have_count(0)
    wait_idle(page)
    no_failures(page)

    # what the browser drew, through the library: the same place on the same PCA view
    drawn = canvas.evaluate("c => c.toDataURL('image/png')")
    ref = RunRef(app_server.runs_dir, "demo-vae")
    model = ref.load_model()
    x = own.prepare(own.read_image(own.decode_data_url(drawn)), "mnist5k", model.config.input_shape)
    view = fit_projection(get_caches(ref)["codes"], "pca", ref.config["train_config"].seed)
    where = view.place(own.encode_input(model, x)[None])[0]
    shown = [float(v) for v in PLACED.search(placed.inner_text()).groups()]
    np.testing.assert_allclose(shown, where, atol=2e-3)

    # its code opens the Traversal page with the code as the base
    page.get_by_role("button", name="Open the Traversal page from this code").click()
    expect(page.get_by_role("heading", name="Traversal", exact=True)).to_be_visible()
    expect(page.get_by_role("radio", name="your input")).to_be_checked()
    assert "code_run=demo-vae" in page.url
    no_failures(page)


def test_clear_empties_the_section(browser, app_server, page):
    require(browser)
    expect = _expect()
    page.goto(f"{app_server.url}/latent?run=demo-vae&input=draw")
    canvas = page.locator('canvas[aria-label="drawing canvas"]')
    expect(canvas).to_be_visible(timeout=90_000)
    wait_idle(page, 90_000)
    canvas.scroll_into_view_if_needed()
    box = canvas.bounding_box()
    page.mouse.move(box["x"] + 60, box["y"] + 60)
    page.mouse.down()
    page.mouse.move(box["x"] + 200, box["y"] + 220, steps=10)
    page.mouse.up()
    expect(page.get_by_text(PLACED)).to_be_visible(timeout=60_000)
    wait_idle(page)
    page.get_by_role("button", name="Clear", exact=True).click()
    expect(page.get_by_text("Draw with the mouse, a pen or a finger")).to_be_visible()
    expect(page.get_by_text(PLACED)).to_have_count(0)
