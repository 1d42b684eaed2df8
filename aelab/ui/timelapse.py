"""The latent space as it learns, on any page: the time-lapse of a run's probe codes
(``aelab.runs.probes``, drawn by ``aelab.explore.timelapse``)."""
from __future__ import annotations

from pathlib import Path

import streamlit as st

from aelab.errors import AelabError
from aelab.runs.folder import PROBES
from aelab.ui.loaders import file_stamp, shared
from aelab.ui.widgets import plot, show_error

NO_PROBES = ("This run has no time-lapse of its latent space: it was trained before aelab "
             "recorded probe codes during training (every run trained now records them).")
NO_FRAMES_YET = "No time-lapse yet: the first frame comes when the run starts training."
TITLE = "The latent space as it learns"
PLAY_IT = "Play it: the probe codes, reconstructions and active latents through training"
CAPTION = ("The same {n} test images at each recorded step: their codes on the first two "
           "principal axes, each frame turned (orthogonal Procrustes) to match the next so only "
           "real changes move; press Play or drag the slider.")


def _figure(path: Path, stamp: tuple) -> tuple:
    from aelab.explore.timelapse import timelapse_figure, timelapse_summary
    from aelab.runs.probes import read_probes

    probes = read_probes(path.parent)
    return timelapse_figure(probes), timelapse_summary(probes), len(probes["index"])


def show_timelapse(run_dir, key: str, state: str | None = None) -> None:
    """The run's time-lapse (a figure built once per probe file for every session), or one
    sentence saying why there is none; while the run trains (``state`` running or queued) it
    looks for new frames every few seconds."""
    path = Path(run_dir) / PROBES
    live = state in ("running", "queued")

    def show():
        stamp = file_stamp(path)
        if stamp is None:
            st.caption(NO_FRAMES_YET if live else NO_PROBES)
            return
        try:
            figure, summary, n = shared(("timelapse", str(path), stamp), lambda: _figure(path, stamp))
        except AelabError as exc:
            show_error(exc)
            return
        st.caption(CAPTION.format(n=n))
        plot(figure, key=key, name=f"timelapse-{Path(run_dir).name}")
        st.caption(summary)

    if live:
        st.fragment(run_every=5.0)(show)()
    else:
        show()


def timelapse_section(run_dir, key: str, state: str | None = None) -> None:
    """A page section: ``TITLE``, then the sentence saying the run has no probe codes (the
    shipped demo runs), or its time-lapse folded under "Play it" (the figure is large)."""
    st.subheader(TITLE)
    if not (Path(run_dir) / PROBES).is_file() and state not in ("running", "queued"):
        st.caption(NO_PROBES)
        return
    with st.expander(PLAY_IT, icon=":material/movie:"):
        show_timelapse(run_dir, key, state)
