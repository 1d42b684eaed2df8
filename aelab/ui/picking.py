"""Picking a run on a page (kept in the URL) and opening it: handle, model, dataset, caches."""
from __future__ import annotations

import streamlit as st

from aelab.errors import AelabError
from aelab.models import needs_text, refusal, with_capabilities
from aelab.runs.labels import order_runs, run_labels
from aelab.ui.folder import finished_runs, run_ref
from aelab.ui.loaders import caches_for, dataset_for, model_for
from aelab.ui.urlstate import url_selectbox
from aelab.ui.widgets import show_error

# The demo runs each picker opens on (its widget key -> run ids, the first one present wins):
# the run the Lesson shows for that page (``aelab.explore.lesson.STEPS``: a step's ``page``
# and ``runs``; tests/test_picking.py holds the two together), so a page opened from the
# menu starts on the run that teaches it, not on the alphabetically first. Latent space has
# no Lesson screen: it opens on the VAE of the Lesson's VAE screen (a smooth code space of
# digits). A ``?run=`` link wins over this.
PREFERRED = {
    "lat_run": ("demo-vae", "demo-ae-z16"),
    "in_run": ("demo-sparse", "demo-ksparse", "demo-contractive"),
    "rec_runs": ("demo-ae-z16", "demo-denoising"),
    "gen_run": ("demo-cvae", "demo-vae"),
    "int_run": ("demo-vae", "demo-cvae"),
    "trav_run": ("demo-vae",),
    "dis_run": ("demo-betatcvae-shapes", "demo-betavae-shapes"),
}


def preferred(rows: list[dict], key: str) -> list[dict]:
    """The rows of ``rows`` that picker ``key`` prefers (``PREFERRED``), in its order."""
    by_id = {r["id"]: r for r in rows}
    return [by_id[i] for i in PREFERRED.get(key, ()) if i in by_id]


def pick_run(rows: list[dict], key: str, needs: tuple[str, ...] = (), label: str = "Run",
             param: str = "run", page: str = "This page") -> dict | None:
    """A selectbox over finished runs (optionally only those whose variant has every
    capability in ``needs``, ``aelab.models.CAPABILITIES``), demo runs first, kept in the URL
    as ``?run=<id>``; it opens on the first of ``PREFERRED[key]`` it offers, else the first
    run; None with a note if there is none. A link to a run the picker cannot show gets one
    sentence saying why (``page`` names the page in it)."""
    finished = finished_runs(rows)
    done = order_runs(with_capabilities(finished, needs))
    wanted = st.query_params.get(param)
    if not done:
        kinds = f" of {needs_text(needs)}" if needs else ""
        st.info(f"No finished runs{kinds} yet. Train one, or run `python -m aelab demo-runs`.")
        if wanted is not None and (why := _why_not(wanted, rows, needs, page)):
            st.warning(f"{why}.")
        return None
    labels = run_labels(done)
    first = (preferred(done, key) or done)[0]["id"]
    if wanted is not None and wanted not in labels:  # a link names a run this page cannot show
        st.warning(f"{_why_not(wanted, rows, needs, page)}, so it shows {labels[first]} instead.")
    chosen = url_selectbox(label, list(labels), key=key, param=param, format_func=labels.get,
                           index=list(labels).index(first), always=True)
    return next(r for r in done if r["id"] == chosen)


def _why_not(wanted: str, rows: list[dict], needs: tuple[str, ...], page: str) -> str | None:
    """Why the run ``wanted`` is not among a picker's runs, as a clause (None if it is)."""
    row = next((r for r in rows if r["id"] == wanted), None)
    if row is None:
        return f"There is no run '{wanted}' in this runs folder"
    if row.get("state") != "done":
        return f"The run '{wanted}' has not finished (it is {row.get('state')})"
    return refusal(page, needs, wanted, row["variant"]).rstrip(".")


def open_run(run: dict, with_caches: bool = True):
    """(run handle, model, dataset, caches or None) of a picked run; a failure is shown as
    one sentence and stops the page."""
    try:
        ref = run_ref(run)
        return (ref, model_for(ref), dataset_for(ref.config["dataset"]),
                caches_for(ref) if with_caches else None)
    except AelabError as exc:
        show_error(exc)
        st.stop()
