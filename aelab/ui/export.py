"""The Traversal and Latent pages' button that hands out a run to take home
(``aelab.explore.export`` as a zip), built only when clicked and then kept per weights."""
from __future__ import annotations

from pathlib import Path

import streamlit as st

from aelab.runs.refs import RunRef
from aelab.ui.folder import run_ref
from aelab.ui.loaders import _model, dataset_for, web_decoder_for

HELP = ("One HTML file that opens from disk with no server and no network (the decoder with "
        "its sliders, the code map with the image under the pointer), plus vectors.tsv, "
        "metadata.tsv and sprite.png for TensorFlow's Embedding Projector. The same as "
        "`python -m aelab export RUN --out DIR`.")


@st.cache_resource(max_entries=8, show_spinner=False)
def _export_zip(root: str, run_id: str, sha256: str) -> bytes:
    from aelab.explore.export import export_files, zip_bytes
    from aelab.metrics.results import get_caches

    ref = RunRef(Path(root), run_id)
    files = export_files(run_id, _model(root, run_id, sha256), dataset_for(ref.config["dataset"]),
                         get_caches(ref))
    return zip_bytes(files, f"{run_id}-export")


def export_zip(ref: RunRef) -> bytes:
    """The zip of the run's export, made once per run and weights for every session (the
    weights as they are when called: the click's)."""
    return _export_zip(str(ref.root), ref.run_id, ref.weights_sha256())


def export_button(run, key: str) -> None:
    """A download button of the run's export (the zip is made on the click, in Streamlit's
    download thread, so the page itself does no extra work), or one line saying why this
    run cannot be exported."""
    ref = run_ref(run)  # here, in the page's thread: the click runs ``export_zip`` in another
    _, refused = web_decoder_for(ref)
    if refused is not None:
        st.caption(f"This run cannot be taken home as a file, since {refused}.")
        return
    st.download_button("Take this run home (HTML + Embedding Projector files)",
                       data=lambda: export_zip(ref), file_name=f"{ref.run_id}-export.zip",
                       mime="application/zip", key=key, on_click="ignore",
                       icon=":material/download:", help=HELP)
