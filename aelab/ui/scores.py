"""Scores computed by a background process (aelab.metrics.background): shown when ready, never blocking a page."""
from __future__ import annotations

import streamlit as st

from aelab.ui.folder import run_ref


def scores_for(run) -> list[dict] | None:
    """The Latent space score table, or None while a background process computes it (the
    page says so and fills in when it is ready; it never waits for it)."""
    return background_scores(run_ref(run).path, "latent", "the score table", "a minute or two",
                             stop=False)


def disentanglement_for(run_dir) -> dict:
    """The run's disentanglement scores; if they are not ready, start (or wait for) the
    background scorer (``aelab.metrics.background``), say so, poll until it finishes and stop the page."""
    return background_scores(run_dir, "disentangle", "this run's disentanglement",
                             "about a minute on 2 CPU cores", stop=True)


def background_scores(run_dir, kind: str, what: str, how_long: str, stop: bool):
    """Fresh scores of ``kind`` (``aelab.metrics.background.KINDS``), or start (or wait for) their
    background process: a sentence on the page, a poll every 3 s that reruns the page once
    they are ready, then ``st.stop()`` if ``stop`` else None."""
    from aelab.metrics.background import scoring_state, start_scoring

    state = scoring_state(run_dir, kind)
    if state["state"] == "ready":
        return state["scores"]
    if state["state"] == "failed":
        st.error(f"Scoring {what} failed: {state['error']}")
        if st.button("Score again", key=f"score_again_{kind}"):
            start_scoring(run_dir, kind)
            st.rerun()
    else:
        start_scoring(run_dir, kind)
        st.info(f"Scoring {what} in the background ({how_long}); the page fills in when the "
                "scores are ready and stays usable meanwhile.", icon=":material/hourglass_top:")

        @st.fragment(run_every=3)
        def wait() -> None:
            if scoring_state(run_dir, kind)["state"] in ("ready", "failed"):
                st.rerun()

        wait()
    if stop:
        st.stop()
    return None
