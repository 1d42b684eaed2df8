"""Cached loaders shared by every session of the server: models keyed by run id and weights
hash, datasets, PCA fits, a run's codes and projections, traversals, decoders for the browser."""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import streamlit as st

from aelab.data.datasets import load_dataset
from aelab.runs.refs import RunRef
from aelab.ui.folder import run_ref
from aelab.ui.widgets import _with_status


@st.cache_resource(max_entries=32, show_spinner=False)
def _model(root: str, run_id: str, sha256: str):
    return RunRef(Path(root), run_id).load_model()


def model_for(run) -> object:
    """The run's model in eval mode, cached by run and weights hash."""
    ref = run_ref(run)
    return _model(str(ref.root), ref.run_id, ref.weights_sha256())


def web_decoder_for(run) -> tuple[str | None, str | None]:
    """(the JSON text of the run's decoder for the browser, None), or (None, why it cannot be
    exported): made once per run and weights hash for every session."""
    ref = run_ref(run)
    return _web_decoder(str(ref.root), ref.run_id, ref.weights_sha256())


@st.cache_resource(max_entries=32, show_spinner=False)
def _web_decoder(root: str, run_id: str, sha256: str) -> tuple[str | None, str | None]:
    from aelab.explore.webdecoder import WebDecoderError, export_decoder

    try:
        return json.dumps(export_decoder(_model(root, run_id, sha256))), None
    except WebDecoderError as exc:
        return None, str(exc)


@st.cache_resource(max_entries=8, show_spinner="Loading the dataset...")
def dataset(name: str, stamp: float = 0.0):
    """A dataset, loaded once per server (``stamp``: the file's mtime for npz data)."""
    return load_dataset(name)


def dataset_for(name: str):
    """``dataset(name)``, refreshed when an npz file changes on disk."""
    stamp = os.path.getmtime(name[4:]) if name.startswith("npz:") and os.path.exists(name[4:]) else 0.0
    return dataset(name, stamp)


@st.cache_resource(max_entries=32, show_spinner=False)
def pca(name: str, k: int):
    """PCA with ``k`` components fitted on the train split of dataset ``name``, with one
    BLAS thread: the server serves many sessions at once, and on a busy machine several BLAS
    threads per fit are much slower than one (docs/performance.md)."""
    from threadpoolctl import threadpool_limits

    from aelab.metrics.evaluate import fit_pca

    with threadpool_limits(limits=1):
        return fit_pca(dataset_for(name).x_train, k)


def caches_for(run) -> dict:
    """The run's codes and projections; computed with a progress box when missing or stale.

    Read once per server for each state of the cache file (its inode, mtime and size) and
    weights: a rerun or another session gets the same arrays without reading the file."""
    from aelab.metrics.results import CACHE, get_caches

    ref = run_ref(run)
    digest = ref.weights_sha256()
    stamp = file_stamp(ref / CACHE)
    if stamp is not None:
        try:
            return _cached_arrays(str(ref.root), ref.run_id, digest, stamp)
        except _Stale:
            pass
    return _with_status("Computing codes and projections", lambda say: get_caches(ref, say))


class _Stale(Exception):
    """The cache file was not made from these weights (an exception: never cached)."""


def file_stamp(path: "str | os.PathLike") -> tuple[int, int, int] | None:
    """(inode, mtime in ns, size) of a file, or None when it is missing: a key that changes
    whenever the file is replaced (run files are written by temp file + rename)."""
    try:
        stat = os.stat(path)
    except OSError:
        return None
    return stat.st_ino, stat.st_mtime_ns, stat.st_size


@st.cache_resource(max_entries=32, show_spinner=False)
def _cached_arrays(root: str, run_id: str, sha256: str, stamp: tuple) -> dict:
    from aelab.metrics.results import _projections_fresh, get_caches

    ref = RunRef(Path(root), run_id)
    if not _projections_fresh(ref, sha256):
        raise _Stale(run_id)
    return get_caches(ref)


def run_key(run) -> str:
    """``<run folder>@<weights hash>``: names a run's trained state in cache keys (new
    weights, new key)."""
    ref = run_ref(run)
    return f"{ref.path}@{ref.weights_sha256()}"


@st.cache_resource(max_entries=256, show_spinner=False)
def _shared(key: tuple, _build):
    return _build()


def shared(key: tuple, build, what: str | None = None):
    """``build()`` once per ``key`` for every session of the server: a figure or a page's
    rows of pictures is made once per data, not on every rerun and for every student.
    ``key`` must name all the result depends on (``run_key`` of each run, the view, the
    options); the result is shared, so nobody may change it after it is built. ``what``:
    what is being computed, shown in a spinner if it takes over half a second (a cold
    server), never for a result already built."""
    if what is None:
        return _shared(key, build)
    with st.spinner(what):
        return _shared(key, build)


@st.cache_data(max_entries=64, show_spinner=False)
def _traversals(root: str, run_id: str, sha256: str, factors: tuple, dims: tuple) -> np.ndarray:
    from aelab.explore.disentangle_lesson import traversals

    return traversals(_model(root, run_id, sha256), list(factors), list(dims))


def traversals_for(run, factors: list[int], dims: list[int]) -> np.ndarray:
    """``aelab.explore.disentangle_lesson.traversals`` of the run's model, cached by weights
    and inputs."""
    ref = run_ref(run)
    return _traversals(str(ref.root), ref.run_id, ref.weights_sha256(), tuple(factors), tuple(dims))
