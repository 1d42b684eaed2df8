"""The app shell: app.py's navigation, the guard every page file calls first, presenter mode."""
from __future__ import annotations

import os
import runpy
import sys
import threading
import time
from pathlib import Path

import streamlit as st

from aelab.ui.urlstate import _adopt_url, _write_url

# --- navigation: app.py runs every page; a page run without it hands over to it ---
_navigation = threading.local()  # per script thread, i.e. per session: never a process global


TIMING = "AELAB_TIMING"  # set (to 1): each page's script time goes to stderr, for bench/


def run_app(pages: list, **kwargs) -> None:
    """``st.navigation(pages).run()`` with a flag set while the chosen page runs (app.py).

    With ``$AELAB_TIMING`` set, prints ``aelab-timing page=<url path> script_s=<seconds>
    end=<unix time>`` to stderr after every run of a page (the server's share of a page
    switch; the benchmarks read it from the server's log)."""
    page = st.navigation(pages, **kwargs)
    _navigation.inside = True
    start = time.perf_counter()
    try:
        page.run()
    finally:
        _navigation.inside = False
        if os.environ.get(TIMING):
            print(f"aelab-timing page={page.url_path or '/'} script_s={time.perf_counter() - start:.3f} "
                  f"end={time.time():.3f}", file=sys.stderr, flush=True)


def within_app() -> None:
    """The first call of every page file: make sure the page runs inside app.py's navigation.

    On a fresh server, Streamlit serves a deep link such as /traversal as the first request
    by running pages/traversal.py alone (its legacy multi-page mode for a pages/ folder: no
    app.py, a short sidebar). Then the flag of ``run_app`` is unset in this thread: run
    app.py here (its navigation picks this same page by its URL) and stop this run.
    """
    if getattr(_navigation, "inside", False):
        return
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    ctx = get_script_run_ctx()
    if ctx is None or Path(ctx.main_script_path).parent.name == "pages":
        return  # a page run as the main script itself (bare mode, a test): nothing to hand to
    # as the main script, so that app.py's own widgets get the ids of every later run
    with ctx.run_with_active_hash(ctx.pages_manager.main_script_hash):
        runpy.run_path(ctx.main_script_path, run_name="__main__")
    st.stop()


# Presenter mode: larger text for a projector, no toolbar (its menu and buttons), the sidebar
# collapsed (still openable at its arrow, where the toggle to leave the mode is).
PRESENTER_CSS = """<style>
html { font-size: 24px; }
[data-testid="stToolbarActions"], [data-testid="stMainMenu"], [data-testid="stAppDeployButton"],
[data-testid="stDecoration"] { display: none; }
[data-testid="stMainBlockContainer"] { padding-top: 2rem; max-width: 100%; }
/* whole words only: a label wraps between words, never inside one ("disentangleme/nt") */
[data-testid="stMain"] label, [data-testid="stMain"] p, [data-testid="stMain"] th,
[data-testid="stMetricLabel"], [data-testid="stWidgetLabel"] {
  word-break: normal; overflow-wrap: normal; hyphens: none; }
</style>"""


def presenter_mode() -> bool:
    """The sidebar's "Presenter mode" toggle, also set by a link with ``?present=1`` (kept
    in the URL of every page while on); when on: larger text, no toolbar, sidebar collapsed."""
    _adopt_url("present", "present", lambda raw: raw == "1", lambda value: True)
    on = st.sidebar.toggle("Presenter mode", key="present",
                           help="Larger text, no toolbar, sidebar collapsed; links carry it as ?present=1")
    _write_url("present", "present", "1" if on else None)
    if on:
        st.set_page_config(initial_sidebar_state="collapsed")
        st.html(PRESENTER_CSS)
    return on
