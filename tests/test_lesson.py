"""The Lesson page and presenter mode under AppTest, on copies of the shipped demo runs."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from aelab.explore.lesson import STEPS

APP = Path(__file__).resolve().parents[1] / "app.py"
DEMO_RUNS = APP.parent / "checkpoints"  # the shipped demo runs
NEEDED = sorted({run for step in STEPS for run in step.runs})


@pytest.fixture(scope="module")
def demo_runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("lesson-runs")  # copies: nothing in checkpoints/ is touched
    for run in NEEDED:
        shutil.copytree(DEMO_RUNS / run, root / run)
    return root


@pytest.fixture
def runs(demo_runs, monkeypatch):
    monkeypatch.setenv("AELAB_RUNS", str(demo_runs))
    return demo_runs


def lesson(**query) -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=180)
    at.switch_page("pages/lesson.py")
    at.query_params.update(query)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    return at


def test_every_step_uses_shipped_demo_runs():
    assert all((DEMO_RUNS / run / "status.json").is_file() for run in NEEDED)
    assert [s.key for s in STEPS] == ["ae-pca", "denoising", "sparse", "contractive", "vae", "cvae",
                                      "betavae"]  # the survey's order


@pytest.mark.parametrize("step", STEPS, ids=lambda s: s.key)
def test_each_screen_shows_its_explanation_and_a_live_widget(runs, step):
    at = lesson(step=step.key)
    assert at.selectbox(key="lesson_step").value == step.key
    assert at.header[0].value == step.title
    assert any(step.section in c.value for c in at.caption)
    live = len(at.image) + len(at.get("plotly_chart"))
    assert live > 0, "no picture or chart on the screen"



def test_the_beta_vae_screen_names_factors_only_where_a_latent_owns_one(runs):
    at = lesson(step="betavae")
    texts = " ".join(m.value for m in at.markdown)
    captions = [c.value for c in at.caption]
    assert any(c.startswith("demo-betavae-shapes: MIG 0.02") for c in captions), captions
    assert any(c.startswith("demo-betatcvae-shapes: MIG 0.45") for c in captions), captions
    # the entangled run's latents are all "mixed"; the disentangled one has a latent per position
    assert "→ pos_x" in texts and "→ pos_y" in texts and "→ mixed" in texts

def test_explore_links_open_the_same_runs():
    for step in STEPS:
        assert step.page.startswith("pages/") and (APP.parent / step.page).is_file()


@pytest.mark.parametrize("key, page, query", [
    ("denoising", "reconstructions", "dataset=mnist5k&runs=demo-denoising%2Cdemo-ae-z16"),
    ("vae", "traversal", "run=demo-vae")])
def test_the_link_carries_the_runs_to_the_page(runs, key, page, query):
    links = [(link.proto.page, link.proto.query_string) for link in lesson(step=key).get("page_link")]
    assert (page, query) in links and len(set(links)) == len(links)


def test_next_and_previous_walk_the_steps_and_the_url_follows(runs):
    at = lesson()
    assert at.selectbox(key="lesson_step").value == "ae-pca"
    assert at.query_params["step"] == "ae-pca"
    at.button(key="lesson_next").click().run()
    assert at.selectbox(key="lesson_step").value == "denoising" and at.query_params["step"] == "denoising"
    # the denoising demo starts on the corruption the run was trained with (masking)
    assert at.selectbox(key="lesson_noise").value == "masking"
    at.button(key="lesson_prev").click().run()
    at.button(key="lesson_prev").click().run()  # wraps around to the last screen
    assert at.selectbox(key="lesson_step").value == "betavae"


def test_vae_slider_changes_the_decoded_image(runs):
    at = lesson(step="vae")
    before = at.image[0].value
    at.slider[0].set_value(2.5).run()
    assert not at.exception
    assert at.image[0].value != before


def test_presenter_mode_from_the_url_and_the_toggle(runs):
    at = lesson(present="1")
    assert at.toggle(key="present").value is True
    assert any("font-size: 24px" in h.proto.body for h in at.get("html"))
    at.toggle(key="present").set_value(False).run()
    assert "present" not in at.query_params
    assert not any("font-size" in h.proto.body for h in at.get("html"))
    at.toggle(key="present").set_value(True).run()
    assert at.query_params["present"] == "1"


def _chart_traces(at: AppTest, key: str) -> list[dict]:
    import json

    (chart,) = [c for c in at.get("plotly_chart") if c.key == key]
    return json.loads(chart.proto.spec)["data"]


def test_the_sparse_and_contractive_screens_show_what_the_claims_tests_check(runs):
    """The bars and the legend are ``unit_use`` and ``jacobian_summary`` of the shipped runs, the
    functions tests/test_lesson_claims.py asserts the Lesson's sentences with."""
    import base64

    import numpy as np

    from aelab.data.datasets import load_dataset
    from aelab.explore.lesson import BY_KEY, jacobian_summary, unit_use
    from aelab.runs.folder import load_model

    def values(v):
        return np.frombuffer(base64.b64decode(v["bdata"]), v["dtype"]) if isinstance(v, dict) else np.asarray(v)

    x = load_dataset("mnist5k").x_test
    at = lesson(step="sparse")
    for key, run in zip(("lesson_mean", "lesson_kept"), BY_KEY["sparse"].runs):
        (bars,) = _chart_traces(at, key)
        use, _, _ = unit_use(load_model(runs / run), x)
        order = np.argsort(-use, kind="stable")
        np.testing.assert_allclose(values(bars["y"]), use[order], rtol=1e-6)
        assert bars["x"] == [f"u{j}" for j in order]  # each bar named by its own unit
    at = lesson(step="contractive")
    names = [t["name"] for t in _chart_traces(at, "lesson_jacobian")]
    norms = [jacobian_summary(load_model(runs / run), x)[1] for run in BY_KEY["contractive"].runs]
    assert names == [f"{run}: ‖J‖F = {n:.1f}" for run, n in zip(BY_KEY["contractive"].runs, norms)]
    assert any(f"{BY_KEY['contractive'].runs[0]} {norms[0]:.1f}" in c.value for c in at.caption)
