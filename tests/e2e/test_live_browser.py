"""The Study page stays live in a real browser: trials written running, then done by hand
while the tab stays open; the page shows the new counts and then the finished figure by
itself, without a reload (its fragment polls while trials run, then reruns the app)."""
from __future__ import annotations

from .appserver import require


def test_study_page_updates_by_itself_until_its_trials_end(page, browser, app_server, hand_study):
    require(browser)
    from playwright.sync_api import expect

    study = hand_study(app_server.runs_dir)
    study.run()
    page.goto(f"{app_server.url}/study?study={study.ID}")
    expect(page.get_by_text("Trials: 0/2 done, 2 running (50% of all steps)")).to_be_visible(timeout=90_000)
    expect(page.get_by_text("No trial has finished yet")).to_be_visible()
    study.run(progress=0.75)
    expect(page.get_by_text("Trials: 0/2 done, 2 running (75% of all steps)")).to_be_visible(timeout=15_000)
    study.finish()
    expect(page.get_by_role("heading", name="A final metric against a grid value")).to_be_visible(timeout=15_000)
    expect(page.get_by_text("Trials: 2/2 done (100% of all steps)")).to_be_visible()
    expect(page.get_by_text("No trial has finished yet")).to_have_count(0)
    expect(page.get_by_text("0/2 done")).to_have_count(0)  # no label keeps the first count
    expect(page.get_by_test_id("stPlotlyChart")).to_have_count(1)
    expect(page.get_by_test_id("stException")).to_have_count(0)
