"""The class challenge on a projector, in a real browser: presenter mode at 1280x720 shows the
leaderboard with the entry's thumbnail in tiles of at least 64 px and no header broken mid-word.

The server is fresh over a runs folder holding a challenge and one real entry (trained and
scored here, as its worker would, before the server starts); it is stopped by its pid.
"""
from __future__ import annotations

import pytest

from .appserver import AppServer, Missing, require, wait_idle
from .test_class_readable import BROKEN_LABELS_JS, TILE

DIGIT = 8  # px: a digits image's side


@pytest.fixture(scope="module")
def challenge_server(browser, tmp_path_factory):
    if isinstance(browser, Missing):
        yield None, None
        return
    from aelab.metrics.results import rebuild_eval
    from aelab.runs import challenges
    from aelab.runs.train import train_run
    from aelab.training.setup import prepare_run

    runs = tmp_path_factory.mktemp("challenge") / "runs"
    made = challenges.create(runs, "Smallest error at code size 4", ["digits"], ["ae"], 4, 1, 0.0, "test_mse")
    run_dir = prepare_run("ae", "digits", {"latent_dim": 4}, {**challenges.locked_train(made), "device": "cpu"},
                          runs_dir=runs, meta={"owner": "Ada", "challenge": made.id})
    assert train_run(run_dir)["state"] == "done"
    rebuild_eval(run_dir)
    server = AppServer(runs, log_path=runs.parent / "streamlit.log", threads="1").start()
    try:
        server.wait_healthy(timeout=90)
        yield server, made.id
    finally:
        server.stop()


def test_the_projector_shows_the_leaderboard_large_at_1280x720(browser, challenge_server):
    require(browser)
    server, challenge_id = challenge_server
    context = browser.new_context(viewport={"width": 1280, "height": 720})
    page = context.new_page()
    page.goto(f"{server.url}/challenge?id={challenge_id}&present=1", timeout=60_000)
    picture = page.locator("table.aelab-board img").first
    picture.wait_for(timeout=120_000)
    wait_idle(page, 120_000)
    assert page.locator("table.aelab-board td").nth(1).inner_text() == "Ada"
    box = picture.bounding_box()
    natural = picture.evaluate("i => i.naturalHeight")  # two rows of tiles (and the grid's padding)
    assert box["height"] * 6 * DIGIT / natural >= TILE, (box, natural)  # a tile is 6 x 8 px in the picture
    assert box["y"] + box["height"] <= 720  # the first entry fits the screen
    assert page.evaluate(BROKEN_LABELS_JS) == []
    assert page.get_by_role("button", name="Start my entry").count() == 0
    context.close()
