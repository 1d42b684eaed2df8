"""Classroom features in a real browser: the Lesson in presenter mode opened by a link as the
first request of a fresh server, and links that carry the selected run (?run=<id>)."""
from __future__ import annotations

import re

from aelab.explore.lesson import STEPS

from .appserver import full_page_screenshot, require, wait_idle
from .test_browser import _expect, no_failures

SERVED_RUNS = tuple(sorted({run for step in STEPS for run in step.runs}))  # the Lesson's demo runs


def font_px(page, selector: str) -> float:
    return float(page.evaluate(f"parseFloat(getComputedStyle(document.querySelector('{selector}')).fontSize)"))


def test_lesson_link_in_presenter_mode(browser, app_server, page, screenshots):
    require(browser)
    expect = _expect()
    page.goto(f"{app_server.url}/lesson?present=1&step=vae")  # the server's first request
    expect(page.get_by_role("heading", name="Variational autoencoder")).to_be_visible(timeout=90_000)
    wait_idle(page, 90_000)
    expect(page.get_by_test_id("stImage").first).to_be_visible()
    # presenter mode: larger text, no toolbar actions or Deploy, the sidebar collapsed
    assert font_px(page, '[data-testid="stMarkdownContainer"] p') >= 20
    expect(page.get_by_text("Deploy", exact=True)).to_have_count(0)
    expect(page.get_by_test_id("stMainMenu")).to_have_count(0)
    expect(page.get_by_test_id("stSidebar")).to_have_attribute("data-collapsed", "true")
    no_failures(page)
    # Next moves on; the link keeps presenter mode and names the step
    page.get_by_role("button", name="Next").click()
    expect(page.get_by_role("heading", name="Conditional VAE")).to_be_visible()
    expect(page).to_have_url(re.compile(r"/lesson\?(?=.*present=1)(?=.*step=cvae)"))
    wait_idle(page)
    no_failures(page)
    full_page_screenshot(page, screenshots / "lesson-presenter.png")


def test_link_with_a_run_reopens_that_run_and_a_choice_updates_the_link(browser, app_server, page):
    require(browser)
    expect = _expect()
    page.goto(f"{app_server.url}/traversal?run=demo-vae")
    expect(page.get_by_role("heading", name="Traversal", exact=True)).to_be_visible(timeout=90_000)
    expect(page.get_by_text("Dimensions ordered by KL")).to_be_visible()  # the VAE, not the default
    wait_idle(page, 90_000)
    assert "demo-vae" in page.get_by_role("combobox", name="Run", exact=True).input_value()
    box = page.get_by_role("combobox", name="Run", exact=True)
    box.click()
    page.get_by_role("option", name=re.compile("demo-cvae")).click()
    expect(page).to_have_url(re.compile(r"run=demo-cvae"))
    wait_idle(page)
    page.reload()  # the link as a student would open it
    expect(page.get_by_role("combobox", name="Run", exact=True)).to_have_value(re.compile("demo-cvae"),
                                                                               timeout=90_000)
    wait_idle(page, 90_000)
    no_failures(page)
