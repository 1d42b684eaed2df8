"""Visual regression of the pages in Chromium: each shot against a committed reference PNG.

What is shot (``SHOTS``), on one server over copies of every shipped demo run
(``checkpoints/``, finished, with their caches, so nothing is trained or scored, and
nothing is written into checkpoints/):

- the default view of every page of app.py's navigation (the Lesson's is its screen 1);
- every other screen of the Lesson (``/lesson?step=<key>``, the steps of aelab/explore/lesson.py);
- presenter mode (``?present=1``) at 1280x720 on the Lesson and Traversal: the viewport only,
  what a projector shows before anyone scrolls.

Each other shot is the whole page at 1280 px wide (device scale 1, UTC, en-US, light theme),
taken once Streamlit has finished (no script running, nothing stale, every chart, image,
font and the Traversal decoder drawn), with what changes between visits hidden (the status
widget, Plotly's modebar, the caret, animations and transitions). The server's environment
is pinned too: CPU only, UTC, offline, and a data folder with no downloaded dataset, so
Home's dataset table reads the same on every machine.

It is compared with ``tests/references/pages/<name>.png`` (tests/picture_check.py, ``REFS``):
a mean absolute difference under 0.1 levels and under 0.05% of the pixels off by more than 24
levels. Another CPU's float rounding changes a few pixels of a reconstruction and can flip
the last digit of a number the page computes, which that allows; a changed layout, word,
picture or plot moves far more pixels. A one-glyph change of the same width can pass: the
texts are asserted by the AppTest tests (tests/test_shipped_pages.py and others). On a
failure the actual shot and a difference image (expected | actual | differences in red) go
to ``test-output/visual/pages/`` and the message names them.

After an intended change of a page (or of a demo run), refresh the references with

    AELAB_UPDATE_REFERENCES=1 python -m pytest tests/e2e/test_page_screenshots.py

then look at the changed PNGs (``git diff --stat tests/references/pages``) before committing them.
"""
from __future__ import annotations

import hashlib
import io
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from aelab.data.datasets import data_dir
from aelab.explore.lesson import STEPS

from .appserver import DECODED, DEMO_RUNS, ROOT, full_page_screenshot, require, serve_app, wait_idle
from picture_check import References, Tolerance, updating

pytestmark = pytest.mark.browser

REFRESH = "AELAB_UPDATE_REFERENCES=1 python -m pytest tests/e2e/test_page_screenshots.py"
REFS = References(ROOT / "tests" / "references" / "pages", ROOT / "test-output" / "visual" / "pages",
                  REFRESH, Tolerance(mean=0.1, off_level=24, off_fraction=0.0005), zoom=1)

WIDE, PRESENTER = (1280, 900), (1280, 720)
# app.py's pages in order: (file stem, title); the default page (Home) is served at /
NAVIGATION = re.findall(r'st\.Page\("pages/([^"]+)\.py", title="([^"]+)"', (ROOT / "app.py").read_text())
assert len(NAVIGATION) >= 10, NAVIGATION  # the pattern still matches app.py
DEFAULT_PAGE = re.search(r'st\.Page\("pages/([^"]+)\.py"[^)]*default=True', (ROOT / "app.py").read_text()).group(1)


@dataclass(frozen=True)
class Shot:
    name: str          # the reference's file name, without .png
    path: str          # URL path and query
    viewport: tuple[int, int] = WIDE
    whole: bool = True  # the whole page (as tall as its content), or only the viewport


def page_path(stem: str) -> str:
    return "/" if stem == DEFAULT_PAGE else f"/{stem}"


SHOTS = (
    [Shot(f"page-{stem}", page_path(stem)) for stem, _ in NAVIGATION if stem != "lesson"]
    # the Lesson's default view is its first screen; the others by their links
    + [Shot(f"lesson-{i}-{s.key}", "/lesson" if i == 1 else f"/lesson?step={s.key}") for i, s in enumerate(STEPS, 1)]
    # presenter mode: what a projector shows before anyone scrolls
    + [Shot(f"present-{stem}", f"/{stem}?present=1", PRESENTER, whole=False) for stem in ("lesson", "traversal")]
)
DEMOS = tuple(sorted(p.name for p in DEMO_RUNS.iterdir() if (p / "status.json").is_file()))

# Hidden or frozen for the shot: what changes between two visits of one page.
FREEZE_CSS = """
[data-testid="stStatusWidget"], [data-testid="stDecoration"], .modebar-container { visibility: hidden !important; }
*, *::before, *::after { caret-color: transparent !important; transition: none !important;
  animation: none !important; scroll-behavior: auto !important; }
"""
# True once the page's web fonts are loaded and the Traversal decoder (if any) has drawn.
DRAWN_JS = f"""() => {{
  if (document.fonts.status !== 'loaded') return false;
  const frame = document.querySelector('iframe[title="{DECODED}"]');
  if (!frame) return true;
  const w = frame.contentWindow;
  return !!(w && w.aelab && w.aelab.paintedAt !== null && w.document.fonts.status === 'loaded');
}}"""


# The first traceback or error box of the page, as text ("" when there is none).
FAILURES_JS = """() => {
  const box = document.querySelector('[data-testid="stException"], [data-testid="stAlertContentError"]');
  return box ? box.innerText.slice(0, 300) : '';
}"""


def pinned_data_dir(folder: Path) -> Path:
    """A data folder holding links to the shipped datasets' caches (the top-level ``.npz``
    files of the user's data folder) and no downloaded dataset."""
    folder.mkdir(parents=True, exist_ok=True)
    source = data_dir()
    if source.is_dir():
        for cached in source.glob("*.npz"):
            (folder / cached.name).symlink_to(cached.resolve())
    return folder


def tree_digest(folder: Path) -> dict[str, str]:
    """{relative path: sha256} of every file under ``folder``."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def app_server(browser, tmp_path_factory):
    """Overrides conftest's: the app over copies of every shipped demo run, its environment
    pinned (CPU, UTC, offline, light theme, no downloaded dataset)."""
    env = {"CUDA_VISIBLE_DEVICES": "", "TZ": "UTC", "AELAB_OFFLINE": "1", "STREAMLIT_THEME_BASE": "light",
           "AELAB_DATA": str(pinned_data_dir(tmp_path_factory.mktemp("data")))}
    for server in serve_app(browser, tmp_path_factory, demo_runs=DEMOS, env=env):
        yield server


@pytest.fixture(scope="module")
def shooter(browser, app_server):
    """One browser context for every shot: fixed viewport, scale, locale, time zone, theme."""
    if app_server is None:
        yield None
        return
    context = browser.new_context(viewport={"width": WIDE[0], "height": WIDE[1]}, device_scale_factor=1,
                                  locale="en-US", timezone_id="UTC", color_scheme="light",
                                  reduced_motion="reduce")
    context.set_default_timeout(90_000)
    yield context
    context.close()


def shoot(context, url: str, shot: Shot, path: Path) -> tuple[np.ndarray, str | None]:
    """The settled page at ``url`` as an RGB array (the whole page, ``shot.viewport`` wide),
    and what is wrong on it (a traceback or an error box), or None."""
    from playwright.sync_api import expect

    page = context.new_page()
    try:
        page.set_viewport_size({"width": shot.viewport[0], "height": shot.viewport[1]})
        page.goto(url)
        # the page's own title (a page's h1, in the main area) once its script has drawn it
        expect(page.locator('[data-testid="stMain"] h1').first).to_be_visible(timeout=90_000)
        wait_idle(page, 90_000)
        page.add_style_tag(content=FREEZE_CSS)
        page.wait_for_function(DRAWN_JS, timeout=60_000, polling="raf")
        page.mouse.move(0, 0)
        if shot.whole:
            full_page_screenshot(page, path, idle_timeout=90_000)
        else:
            wait_idle(page, 90_000)
            page.screenshot(path=str(path), animations="disabled")
        wrong = page.evaluate(FAILURES_JS)
        return np.asarray(Image.open(io.BytesIO(path.read_bytes())).convert("RGB")), wrong or None
    finally:
        page.close()


@pytest.mark.parametrize("shot", SHOTS, ids=[s.name for s in SHOTS])
def test_page_matches_its_reference(browser, app_server, shooter, shot, tmp_path):
    require(browser)
    picture, wrong = shoot(shooter, app_server.url + shot.path, shot, tmp_path / "shot.png")
    assert wrong is None, f"{shot.path} shows {wrong}"  # never a reference of a broken page
    REFS.check_picture(shot.name, picture)


def test_nothing_was_trained_or_scored(browser, app_server, shooter):
    """After every shot the runs folder holds the shipped runs as they are: the pages read
    the runs' caches and started no training, no scoring, no supervisor."""
    require(browser)
    for run in DEMOS:
        assert tree_digest(app_server.runs_dir / run) == tree_digest(DEMO_RUNS / run), run
    assert app_server.run_processes() == []


def test_every_reference_has_a_shot():
    """No reference is left over from a page or Lesson screen that is gone (the refresh
    removes them)."""
    stale = sorted(set(p.stem for p in REFS.folder.glob("*.png")) - {s.name for s in SHOTS})
    if updating():
        for name in stale:
            (REFS.folder / f"{name}.png").unlink()
        return
    assert not stale, f"references with no shot in {REFS.folder.relative_to(ROOT)}: {stale}; remove them with {REFRESH}"
