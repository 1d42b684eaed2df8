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
- ``timelapse``: the latent space as it learns (a run's probe codes through training)
"""
from aelab.runs.labels import (
                       dataset_label,
                       eta_text,
                       is_demo,
                       mine_first,
                       order_runs,
                       phase_of,
                       run_label,
                       run_labels,
                       run_warnings,
)
from aelab.ui.folder import finished_runs, list_runs, manager, run_ref, runs_dir
from aelab.ui.identity import student_sign_in
from aelab.ui.loaders import (
                       caches_for,
                       dataset,
                       dataset_for,
                       file_stamp,
                       model_for,
                       pca,
                       run_key,
                       shared,
                       traversals_for,
                       web_decoder_for,
)
from aelab.ui.own_input import OWN_SOURCE
from aelab.ui.own_input import code_from_url as own_input_code
from aelab.ui.own_input import link as own_input_link
from aelab.ui.own_input import section as own_input_section
from aelab.ui.picking import open_run, pick_run, preferred
from aelab.ui.scores import background_scores, disentanglement_for, scores_for, tsne_view
from aelab.ui.sessions import (
                       UPLOADS,
                       check_allowed,
                       dataset_choices,
                       is_teacher,
                       may_change,
                       session_owner,
                       shows_warnings,
                       start_study,
                       store_upload,
                       store_upload_once,
                       submit_run,
                       teacher_sign_in,
                       upload_note,
                       uploads_dir,
                       with_owners,
)
from aelab.ui.shell import PRESENTER_CSS, presenter_mode, run_app, within_app
from aelab.ui.tables import explain, explain_terms, metric_table, metrics_by_run
from aelab.ui.timelapse import timelapse, timelapse_section
from aelab.ui.urlstate import url_multiselect, url_number, url_selectbox
from aelab.ui.widgets import (
                       FIELD_LABELS,
                       device_choices,
                       device_text,
                       field_label,
                       image,
                       labelled_images,
                       plot,
                       settings_widgets,
                       show_error,
)

__all__ = [
    "FIELD_LABELS", "PRESENTER_CSS", "UPLOADS", "background_scores", "caches_for", "check_allowed",
    "dataset", "dataset_choices", "dataset_for", "file_stamp", "dataset_label", "device_choices", "device_text",
    "explain", "explain_terms", "metric_table", "metrics_by_run",
    "disentanglement_for", "eta_text", "field_label", "finished_runs", "image", "is_demo",
    "is_teacher", "labelled_images", "list_runs", "manager", "may_change", "mine_first", "model_for", "open_run",
    "order_runs",
    "OWN_SOURCE", "own_input_code", "own_input_link", "own_input_section", "pca", "phase_of", "pick_run", "plot",
    "preferred", "presenter_mode", "run_app", "run_label",
    "run_key", "run_labels", "run_ref", "run_warnings", "runs_dir", "scores_for", "session_owner",
    "settings_widgets", "shared", "show_error", "shows_warnings", "start_study", "student_sign_in",
    "store_upload", "store_upload_once", "submit_run", "teacher_sign_in", "timelapse", "timelapse_section",
    "traversals_for", "tsne_view", "upload_note", "uploads_dir", "url_multiselect",
    "url_number", "url_selectbox", "web_decoder_for", "with_owners", "within_app",
]
