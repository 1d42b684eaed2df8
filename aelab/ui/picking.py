"""Picking a run on a page (kept in the URL) and opening it: handle, model, dataset, caches."""
from __future__ import annotations

import streamlit as st

from aelab.runs.labels import order_runs, run_labels
from aelab.errors import AelabError
from aelab.ui.folder import finished_runs, run_ref
from aelab.ui.loaders import caches_for, dataset_for, model_for
from aelab.ui.urlstate import url_selectbox
from aelab.ui.widgets import show_error


def pick_run(rows: list[dict], key: str, variants: tuple[str, ...] | None = None,
             label: str = "Run", param: str = "run") -> dict | None:
    """A selectbox over finished runs (optionally of some variants), demo runs first, kept in
    the URL as ``?run=<id>``; None with a note if there is none."""
    done = order_runs([r for r in finished_runs(rows) if variants is None or r["variant"] in variants])
    if not done:
        kinds = f" of {', '.join(variants)}" if variants else ""
        st.info(f"No finished runs{kinds} yet. Train one, or run `python -m aelab demo-runs`.")
        return None
    labels = run_labels(done)
    wanted = st.query_params.get(param)  # a link names a run this page cannot show: say so
    if wanted is not None and wanted not in labels:
        st.warning(f"This page has no finished run '{wanted}' to show, so it shows "
                   f"{labels[done[0]['id']]} instead.")
    chosen = url_selectbox(label, list(labels), key=key, param=param, format_func=labels.get,
                           always=True)
    return next(r for r in done if r["id"] == chosen)


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
