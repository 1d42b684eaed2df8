"""Streamlit helpers shared by the pages: the only library package that imports streamlit.

Pages use ``from aelab import ui`` and ``ui.<name>``; the helpers live in modules by concern:

- ``shell``: app.py's navigation, the guard each page file calls first, presenter mode
- ``sessions``: a class on one server (owners, the teacher, per-session limits, uploads)
- ``identity``: who this browser is (a student's name, kept in a signed cookie)
- ``urlstate``: widgets whose values live in the URL's query string
- ``folder``: the runs folder, its manager, run handles
- ``loaders``: caches shared by every session (models, datasets, PCA, codes, traversals,
  decoders for the browser)
- ``scores``: scores computed in the background, shown when ready
- ``own_input``: the Latent space page's "Your own input" section and links to it
- ``picking``: pick a run (kept in the URL) and open it
- ``widgets``: config forms, errors, plots, images
- ``tables``: metric tables with human names
- ``timelapse``: the latent space as it learns (a run's probe codes through training)

A name is imported from its module when first used (PEP 562), so ``from aelab import ui``
and the page guard ``ui.within_app()`` cost nothing: on a fresh server the heavy imports
(PyTorch, plotting) happen in ``load_all``, which app.py calls under a spinner that says so.
"""
from __future__ import annotations

import sys

from aelab.lazy import lazy_names

# module -> the names it gives the pages (a pair: the page's name, the module's)
lazy_names(__name__, globals(), {
    "aelab.runs.labels": ("dataset_label", "eta_text", "is_demo", "mine_first", "order_runs",
                          "phase_of", "run_label", "run_labels", "run_warnings"),
    "aelab.ui.folder": ("finished_runs", "list_runs", "manager", "run_ref", "runs_dir"),
    "aelab.ui.identity": ("student_sign_in",),
    "aelab.ui.loaders": ("caches_for", "dataset", "dataset_for", "file_stamp", "model_for", "pca",
                         "run_key", "shared", "traversals_for", "web_decoder_for"),
    "aelab.ui.own_input": ("OWN_SOURCE", ("own_input_code", "code_from_url"),
                           ("own_input_link", "link"), ("own_input_section", "section")),
    "aelab.ui.picking": ("open_run", "pick_run", "preferred"),
    "aelab.ui.scores": ("background_scores", "disentanglement_for", "scores_for", "tsne_view"),
    "aelab.ui.sessions": ("UPLOADS", "check_allowed", "dataset_choices", "is_teacher", "may_change",
                          "session_owner", "shows_warnings", "start_study", "store_upload",
                          "store_upload_once", "submit_run", "teacher_sign_in", "upload_note",
                          "uploads_dir", "with_owners"),
    "aelab.ui.shell": ("PRESENTER_CSS", "presenter_mode", "run_app", "within_app"),
    "aelab.ui.tables": ("explain", "explain_terms", "metric_table", "metrics_by_run"),
    "aelab.ui.timelapse": ("show_timelapse", "timelapse_section"),
    "aelab.ui.urlstate": ("url_multiselect", "url_number", "url_selectbox"),
    "aelab.ui.widgets": ("FIELD_LABELS", "device_choices", "device_text", "field_label", "image",
                         "labelled_images", "plot", "settings_widgets", "show_error"),
})


def all_loaded() -> bool:
    """Whether every helper is imported already (then app.py needs no spinner for it)."""
    return all(name in globals() for name in __all__)  # noqa: F821 (set by lazy_names)


def load_all() -> None:
    """Import every helper now: app.py calls it under a spinner, so a fresh server's first
    visit says what it waits for (PyTorch and the plotting libraries) instead of sitting blank."""
    for name in __all__:  # noqa: F821 (set by lazy_names)
        getattr(sys.modules[__name__], name)
