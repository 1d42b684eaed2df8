"""Every page on every shipped demo run it offers, under ``AppTest``, on ``checkpoints/`` itself.

The matrix is discovered, never listed: every file in ``pages/``; each page's default view;
for a page with a run picker (a selectbox that puts ``?run=`` in the URL), ``?run=<id>``
for every demo run that picker offers, as a student's link opens it; every Lesson screen
(``?step=<key>``). A view fails on any exception or ``st.error`` box, and a link must be
honoured (the picker shows the linked run). So a new demo run or a new page is covered
without a new test.

Nothing is started or written: supervisors and the background scorer are replaced by
recorders that must stay empty (the shipped runs carry their caches and scores), UMAP by
PCA (only a run without caches would project), and the shipped folder's files must be
the same before and after.
"""
from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

import aelab.metrics.background
import aelab.metrics.results
import aelab.runs.local
from aelab.explore.lesson import STEPS
from aelab.models import with_capabilities
from aelab.runs.labels import order_runs, run_labels
from aelab.runs.local import RunManager

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
APP = ROOT / "app.py"
CHECKPOINTS = ROOT / "checkpoints"
PAGES = sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "pages").glob("*.py"))
TIMEOUT = 120


def shipped_rows() -> list[dict]:
    return order_runs(RunManager(CHECKPOINTS).list())


def folder_state() -> dict[str, tuple[int, int]]:
    """Every file under checkpoints/ with its size and mtime: what must not change."""
    return {p.relative_to(CHECKPOINTS).as_posix(): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in CHECKPOINTS.rglob("*") if p.is_file()}


@pytest.fixture(scope="module")
def shipped():
    """``$AELAB_RUNS`` = checkpoints/, nothing started in the background, UMAP replaced by
    PCA; afterwards: nothing started, no file of the shipped runs written."""
    before = folder_state()
    started: list = []
    project = aelab.metrics.results.project_2d
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AELAB_RUNS", str(CHECKPOINTS))
        mp.delenv("AELAB_TEACHER_TOKEN", raising=False)
        mp.setattr(aelab.runs.local, "ensure_supervisor",
                   lambda runs_dir, max_parallel=None: started.append(("supervisor", runs_dir)))
        mp.setattr(aelab.metrics.background, "start_scoring",
                   lambda run_dir, kind="disentangle": started.append((kind, run_dir)) or True)
        mp.setattr(aelab.metrics.results, "project_2d",
                   lambda x, method, seed=0: project(x, "pca", seed))
        yield started
    assert not started, f"a page started background work on the shipped runs: {started}"
    assert folder_state() == before, "a page wrote into checkpoints/"


def open_view(page: str, **query) -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
    at.switch_page(page)
    at.query_params.update(query)
    at.run()
    return at


def assert_clean(at: AppTest, view: str) -> None:
    assert not at.exception, f"{view}: " + "\n".join(e.message for e in at.exception)
    assert not at.error, f"{view}: " + "\n".join(e.value for e in at.error)
    problems = shown_problems(at)
    assert not problems, f"{view}: " + "; ".join(problems)


EMPTY = {"None", "nan", "NaN", "<NA>", "NaT"}


def shown_cells(frame):
    """What a table's cells read on the page: the ``Styler``'s display text where the page
    formats it, else the values as Streamlit draws them (a missing value reads "None")."""
    import pandas as pd
    from streamlit import dataframe_util

    data = frame.value
    styler = frame.proto.arrow_data.styler
    if styler.display_values:
        shown = dataframe_util.convert_arrow_bytes_to_pandas_df(styler.display_values)
        return shown.astype(str).where(~data.isna() | shown.notna(), "None")
    return pd.DataFrame(data).astype(object).where(pd.DataFrame(data).notna(), "None").astype(str)


def shown_problems(at: AppTest) -> list[str]:
    """What a person should never read on a page: a "None" (or nan) cell or sentence, a raw
    metric key as a table's column label or as a metric's name in a cell."""
    import json
    import re

    from aelab.metrics.names import METRICS, metric_name

    raw = {k for k in METRICS if metric_name(k) != k}
    found = []
    for frame in at.dataframe:
        cells = shown_cells(frame)
        bad = sorted({str(v) for v in cells.to_numpy().ravel() if str(v).strip() in EMPTY or str(v) in raw})
        if bad:
            found.append(f"table {frame.proto.id[-12:]} shows {bad}")
        config = json.loads(frame.proto.columns or "{}")
        labels = [config.get(str(c), {}).get("label", str(c)) for c in frame.value.columns]
        if shown_raw := sorted(set(labels) & raw):
            found.append(f"a table's columns are labelled with raw keys {shown_raw}")
    for element in list(at.markdown) + list(at.caption) + list(at.info) + list(at.warning):
        if re.search(r"\bNone\b", element.value):
            found.append(f"text shows None: {element.value[:80]!r}")
    return found


def run_picker(at: AppTest):
    """The page's ``?run=`` picker: the first selectbox whose options are run labels."""
    labels = set(run_labels(shipped_rows()).values())
    for box in at.selectbox:
        if box.options and set(box.options) <= labels:
            return box
    return None


def offered_runs(at: AppTest) -> list[str]:
    """The ids of the demo runs the page's picker offers."""
    box = run_picker(at)
    if box is None:
        return []
    by_label = {label: run_id for run_id, label in run_labels(shipped_rows()).items()}
    return [by_label[o] for o in box.options]


def test_the_matrix_is_not_empty():
    assert len(PAGES) >= 11 and "pages/disentangle.py" in PAGES
    assert len([r for r in shipped_rows() if r["state"] == "done"]) >= 14


@pytest.mark.parametrize("page", PAGES)
def test_every_page_on_every_shipped_run_it_offers(shipped, page):
    """The default view, then ``?run=<id>`` for each run its picker offers: clean, and the
    picker shows the linked run."""
    at = open_view(page)
    assert_clean(at, f"{page} (default view)")
    for run_id in offered_runs(at):
        linked = open_view(page, run=run_id)
        view = f"{page}?run={run_id}"
        assert_clean(linked, view)
        assert linked.query_params.get("run") == run_id, f"{view}: the link was not honoured"
        assert not [w.value for w in linked.warning if "instead" in w.value], view


def test_the_run_pickers_offer_runs():
    """Pages with a run picker offer the runs they exist for (a guard on the matrix itself:
    a picker the matrix cannot find would leave a page tested only on its default view)."""
    expected = {"pages/traversal.py": 14, "pages/latent.py": 14, "pages/inside.py": 14,
                "pages/runs.py": 14, "pages/disentangle.py": 4}
    for page, count in expected.items():
        assert len(offered_runs(open_view(page))) == count, page
    prior = {r["id"] for r in with_capabilities(shipped_rows(), ("samples_prior",))}
    assert "demo-factorvae" in prior and "demo-ae-z2" not in prior
    assert set(offered_runs(open_view("pages/generate.py"))) == prior


@pytest.mark.parametrize("step", [s.key for s in STEPS])
def test_every_lesson_screen(shipped, step):
    at = open_view("pages/lesson.py", step=step)
    assert_clean(at, f"lesson?step={step}")
    assert at.selectbox(key="lesson_step").value == step


def test_lesson_next_walks_every_screen_and_back_to_the_first(shipped):
    at = open_view("pages/lesson.py")
    seen = [at.selectbox(key="lesson_step").value]
    for _ in STEPS:
        at.button(key="lesson_next").click().run()
        assert_clean(at, f"lesson after Next from {seen[-1]}")
        seen.append(at.selectbox(key="lesson_step").value)
        assert at.query_params["step"] == seen[-1]
    assert seen == [s.key for s in STEPS] + [STEPS[0].key]


def raw_option(box, index: int):
    """The value behind a selectbox's shown option (AppTest sees only the shown text): a
    run id for a run label, else the text itself where the page shows options as they
    are; None when neither reads back as that option."""
    shown = box.options[index]
    by_label = {label: run_id for run_id, label in run_labels(shipped_rows()).items()}
    for raw in (by_label.get(shown), shown):
        try:
            if raw is not None and str(box.format_func(raw)) == shown:
                return raw
        except (KeyError, TypeError, ValueError):
            continue
    return None


def move_widgets(at: AppTest) -> list[str]:
    """Move each page's first selectbox (to its last option), slider (to its top) and
    number input (one up): the interactions a student tries first. No button is pressed
    (a button may start or delete a run)."""
    moved = []
    if boxes := [b for b in at.selectbox if len(b.options) > 1 and raw_option(b, -1) is not None]:
        boxes[0].select(raw_option(boxes[0], -1))
        moved.append(f"selectbox {boxes[0].label!r}")
    if sliders := [s for s in at.slider if s.min != s.max]:
        sliders[0].set_value(sliders[0].max)
        moved.append(f"slider {sliders[0].label!r}")
    if numbers := [n for n in at.number_input if n.max is None or n.value < n.max]:
        numbers[0].increment()
        moved.append(f"number {numbers[0].label!r}")
    return moved


@pytest.mark.parametrize("page", PAGES)
def test_every_pages_first_widgets_move_cleanly(shipped, page):
    at = open_view(page)
    moved = move_widgets(at)
    if moved:
        at.run()
        assert_clean(at, f"{page} after moving {', '.join(moved)}")


@pytest.mark.parametrize("page, query, key", [
    ("pages/disentangle.py", {"run": "demo-adagvae-shapes"}, "dis_right"),
    ("pages/generate.py", {"run": "demo-factorvae"}, "gen_n"),
    ("pages/traversal.py", {"run": "demo-vae"}, "trav_steps"),
])
def test_key_interactions_on_a_shipped_run(shipped, page, query, key):
    """The interaction each explore page is for, on a shipped run."""
    at = open_view(page, **query)
    assert_clean(at, page)
    widget = next((w for w in list(at.selectbox) + list(at.slider) if w.key == key), None)
    assert widget is not None, f"{page}: no widget {key}"
    if hasattr(widget, "select_index"):
        widget.select(raw_option(widget, 0))
    else:
        widget.set_value(widget.max)
    at.run()
    assert_clean(at, f"{page} after moving {key}")


# --- links: honoured, or refused in one sentence ---
def test_runs_page_honours_a_run_link_and_names_an_unknown_one(shipped):
    at = open_view("pages/runs.py", run="demo-vae")
    assert_clean(at, "runs?run=demo-vae")
    assert at.selectbox(key="action_run").value == "demo-vae" and at.query_params["run"] == "demo-vae"
    assert at.multiselect(key="curve_runs").value == ["demo-vae"]  # its curves are shown
    at = open_view("pages/runs.py", run="nonsense")
    first = at.selectbox(key="action_run")
    assert [w.value for w in at.warning if "nonsense" in w.value] == [
        f"There is no run 'nonsense' in this runs folder, so it shows "
        f"{first.format_func(first.value)} instead."]


def test_an_unknown_lesson_step_is_named_and_screen_1_shown(shipped):
    at = open_view("pages/lesson.py", step="nonsense")
    assert_clean(at, "lesson?step=nonsense")
    assert [w.value for w in at.warning] == [
        "There is no Lesson screen 'nonsense'; the screens are: "
        + ", ".join(s.key for s in STEPS) + ". This is screen 1."]
    assert at.selectbox(key="lesson_step").value == STEPS[0].key
    at.button(key="lesson_next").click().run()
    assert not at.warning and at.selectbox(key="lesson_step").value == STEPS[1].key


def test_generate_shows_every_prior_and_refuses_a_plain_autoencoder_in_a_sentence(shipped):
    at = open_view("pages/generate.py", run="demo-factorvae")
    assert_clean(at, "generate?run=demo-factorvae")
    assert at.selectbox(key="gen_run").value == "demo-factorvae" and not at.warning
    assert any("z ~ N(0, I)" in image.captions for image in at.image)
    at = open_view("pages/generate.py", run="demo-ae-z2")
    box = at.selectbox(key="gen_run")
    assert [w.value for w in at.warning] == [
        "Generate needs a model that samples from a prior (decoding z ~ N(0, I) gives new "
        "images); demo-ae-z2 is an ae run (Vanilla autoencoder), so it shows "
        f"{box.format_func(box.value)} instead."]


# --- each page opens on the run that teaches it; sprite classes by name ---
def test_pages_open_on_the_run_the_lesson_uses_for_them(shipped):
    opened = {}
    for page in ("pages/latent.py", "pages/inside.py", "pages/generate.py", "pages/traversal.py",
                 "pages/disentangle.py", "pages/reconstructions.py"):
        at = open_view(page)
        assert_clean(at, page)
        opened.update({box.key: box.value for box in at.selectbox if box.key})
        if page == "pages/reconstructions.py":
            opened["rec_runs"] = at.multiselect(key=f"rec_runs.{opened['rec_dataset']}").value
    assert {k: opened[k] for k in ("lat_run", "in_run", "gen_run", "int_run", "trav_run", "dis_run")} == {
        "lat_run": "demo-vae", "in_run": "demo-sparse", "gen_run": "demo-cvae", "int_run": "demo-vae",
        "trav_run": "demo-vae", "dis_run": "demo-betatcvae-shapes"}
    assert opened["rec_dataset"] == "mnist5k" and opened["rec_runs"] == ["demo-ae-z16", "demo-denoising"]


def test_sprite_classes_are_named_in_the_latent_legend(shipped):
    import json

    at = open_view("pages/latent.py", run="demo-betavae-shapes")
    assert_clean(at, "latent?run=demo-betavae-shapes")
    figure = json.loads(at.get("plotly_chart")[0].proto.spec)
    named = [t["name"] for t in figure["data"] if t.get("showlegend")]
    assert named == ["square", "ellipse", "heart"]
    assert figure["layout"]["legend"]["title"]["text"] == "class"
    assert {t["hovertemplate"] for t in figure["data"]} == {f"class {s}<extra></extra>" for s in named}
