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


def tsne_view(run, key: str = "lat_tsne") -> tuple[str, object] | None:
    """A toggle and a perplexity control for the t-SNE view of the run's codes; (its title,
    its points (N, 2)) once the background process has made it, else None (off, or being made:
    the page says so and fills in when it is ready)."""
    from aelab.runs.folder import TSNE_PERPLEXITIES

    left, right = st.columns([1, 2], vertical_alignment="center")
    if not left.toggle("Add t-SNE of the codes", key=key, help="scikit-learn's t-SNE, computed once per "
                       "perplexity in the background and kept in the run folder"):
        return None
    perplexity = right.select_slider("t-SNE perplexity", TSNE_PERPLEXITIES, value=30, key=f"{key}_p",
                                     help="about how many neighbours each point keeps close")
    view = background_scores(run_ref(run).path, f"tsne-{perplexity}", f"the t-SNE view (perplexity "
                             f"{perplexity})", "under a minute", stop=False, verb="Computing")
    return None if view is None else (f"t-SNE of the codes (perplexity {perplexity})", view)


def background_scores(run_dir, kind: str, what: str, how_long: str, stop: bool, verb: str = "Scoring"):
    """Fresh scores of ``kind`` (``aelab.metrics.background.KINDS``), or start (or wait for) their
    background process: a sentence on the page, a poll every 3 s that reruns the page once
    they are ready, then ``st.stop()`` if ``stop`` else None."""
    from aelab.metrics.background import scoring_state, start_scoring

    state = scoring_state(run_dir, kind)
    if state["state"] == "ready":
        return state["scores"]
    if state["state"] == "failed":
        st.error(f"{verb} {what} failed: {state['error']}")
        if st.button(f"{verb.replace('ing', 'e')} again", key=f"score_again_{kind}"):
            start_scoring(run_dir, kind)
            st.rerun()
    else:
        start_scoring(run_dir, kind)
        st.info(f"{verb} {what} in the background ({how_long}); the page fills in when the "
                "scores are ready and stays usable meanwhile.", icon=":material/hourglass_top:")

        @st.fragment(run_every=3)
        def wait() -> None:
            if scoring_state(run_dir, kind)["state"] in ("ready", "failed"):
                st.rerun()

        wait()
    if stop:
        st.stop()
    return None
