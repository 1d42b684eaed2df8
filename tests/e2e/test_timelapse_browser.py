"""The latent space as it learns, in a real browser: on the Runs page a freshly trained run's
time-lapse plays (Play walks the slider from the first recorded step to the last) and a shipped
demo run, trained before probe codes were recorded, says so in one sentence.

The app serves a throwaway runs folder holding a copy of the shipped demo-vae and a tiny run
trained here. Every step waits on a condition, never on a fixed sleep.
"""
from __future__ import annotations

from aelab.explore.timelapse import step_label
from aelab.runs.probes import read_probes
from aelab.runs.train import train_run
from aelab.training.setup import prepare_run
from aelab.ui.timelapse import NO_PROBES

from .appserver import require, wait_idle
from .test_browser import _expect, no_failures

SERVED_RUNS = ("demo-vae",)  # conftest's app_server: a fresh server over a copy of these


def test_runs_page_plays_a_runs_timelapse_and_names_a_run_without_one(browser, app_server, page):
    require(browser)
    expect = _expect()
    run = prepare_run("vae", "digits", {"latent_dim": 4, "hidden": "32"},
                      {"epochs": 3, "device": "cpu", "caches": False, "seed": 3}, runs_dir=app_server.runs_dir)
    assert train_run(run)["state"] == "done"
    probes = read_probes(run)
    assert len(probes["steps"]) > 2
    last = step_label(int(probes["steps"][-1]), probes["meta"]["per_epoch"])

    page.goto(f"{app_server.url}/runs?run={run.name}")
    chart = page.get_by_test_id("stPlotlyChart").filter(has_text="Probe codes")
    expect(chart).to_be_visible(timeout=90_000)
    wait_idle(page, 90_000)
    current = chart.locator("g.slider-group > text.slider-label")  # the slider's current value: the frame shown
    expect(current).to_have_text(last)
    chart.scroll_into_view_if_needed()
    chart.get_by_text("Play", exact=True).click()
    expect(current).not_to_have_text(last, timeout=10_000)  # it starts again from the first frame ...
    expect(current).to_have_text(last, timeout=60_000)  # ... and stops on the last
    no_failures(page)

    page.goto(f"{app_server.url}/runs?run=demo-vae")
    expect(page.get_by_text(NO_PROBES)).to_be_visible(timeout=90_000)
    expect(page.get_by_test_id("stPlotlyChart").filter(has_text="Probe codes")).to_have_count(0)
    no_failures(page)
