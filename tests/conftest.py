"""What the tests share: small configs of every variant, the one tiny-run factory, the page
helper for ``AppTest``, and the stubs that keep a test from starting background processes.

Markers (registered in pyproject.toml): ``slow`` (a test or module over a few seconds),
``browser`` (drives Chromium: every test under tests/e2e), ``ray`` (starts a Ray cluster).
The fast subset is ``python -m pytest -m "not slow and not browser and not ray"``.
"""
from __future__ import annotations

import contextlib
import dataclasses
import os
from pathlib import Path

import pytest
import torch

# Tests run training in this process and in worker processes at once on a 2-core
# machine; one thread each avoids OpenMP oversubscription (behaviour is unchanged).
os.environ.setdefault("AELAB_THREADS", "1")
torch.set_num_threads(int(os.environ["AELAB_THREADS"]))

from aelab.models import get_variant, list_variants, make_config

ROOT = Path(__file__).resolve().parents[1]
APP = ROOT / "app.py"
VARIANTS = list_variants()
DIGITS_SHAPE = (1, 8, 8)
TINY = {"latent_dim": 4, "hidden": "32"}  # the model settings of a tiny run, unless a test says


def pytest_collection_modifyitems(config, items):
    """Every test under tests/e2e drives a browser (or the browser's protocol).

    For ``pytest -n`` (pytest-xdist, ``--dist loadgroup``): the tests of a module that shares a
    module-scoped fixture (a server, a cluster, trained runs) go to one worker, so it is built
    once; every other test goes wherever a worker is free. The Ray module, then the modules with
    slow tests, are handed out first (each module stays together), so no worker is left with a
    long one at the end."""
    for item in items:
        if "e2e" in Path(str(item.fspath)).parts:
            item.add_marker(pytest.mark.browser)
        fixtures = getattr(item, "_fixtureinfo", None)
        if fixtures and any(defs[-1].scope in ("module", "class")
                            for defs in fixtures.name2fixturedefs.values()):
            item.add_marker(pytest.mark.xdist_group(item.nodeid.split("::")[0]))
    ray = {item.module for item in items if item.get_closest_marker("ray")}  # the longest group
    slow = {item.module for item in items if item.get_closest_marker("slow")}
    items.sort(key=lambda item: (item.module not in ray, item.module not in slow))  # stable


# --- runs ---
def tiny_run(root, variant: str = "ae", dataset: str = "digits", model: dict | None = None,
             train: dict | None = None, out=None, trained: bool = True) -> Path:
    """A run folder of ``variant`` under ``root`` (2 epochs of a 32-unit MLP, no caches unless
    ``train`` says), trained in this process unless ``trained`` is False (then queued)."""
    from aelab.runs.train import train_run
    from aelab.training.setup import prepare_run

    run_dir = prepare_run(variant, dataset, {**TINY, **(model or {})},
                          {"epochs": 2, "device": "cpu", "caches": False, **(train or {})},
                          runs_dir=root, out=out)
    if trained:
        assert train_run(run_dir)["state"] == "done"
    return run_dir


@contextlib.contextmanager
def umap_as_pca():
    """Every 2-D projection made with PCA: numba compiles UMAP for tens of seconds per process,
    and what a page test checks does not depend on which view it is (test_caches covers UMAP)."""
    import aelab.metrics.results as results

    project = results.project_2d
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(results, "project_2d", lambda x, method, seed=0: project(x, "pca", seed))
        yield


@pytest.fixture
def supervisor_calls(monkeypatch):
    """Every call the app makes to start a supervisor, recorded instead of started."""
    import aelab.runs.local

    calls = []
    monkeypatch.setattr(aelab.runs.local, "ensure_supervisor",
                        lambda runs_dir, max_parallel=None: calls.append(Path(runs_dir)))
    return calls


# --- pages ---
def open_page(page: str | None = None, *, select: tuple[str, str] | None = None,
              errors: bool = False, timeout: int = 60, **query):
    """The app run once with URL ``query`` parameters, switched to ``page`` ("latent" or
    "pages/latent.py"; None = Home), then ``select``'s (selectbox key, value) chosen. Fails on
    any exception, and on an error box unless ``errors``."""
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(APP), default_timeout=timeout)
    if page:
        at.switch_page(page if page.startswith("pages/") else f"pages/{page}.py")
    at.query_params.update(query)
    at.run()
    assert_ok(at, errors)
    if select:
        key, value = select
        at.selectbox(key=key).select(value).run()
        assert_ok(at, errors)
    return at


def assert_ok(at, errors: bool = False) -> None:
    """No exception on the page (and no error box unless ``errors``)."""
    assert not at.exception, [e.value for e in at.exception]
    if not errors:
        assert not at.error, [e.value for e in at.error]


def shown_cells(frame):
    """What a table's cells read on the page: the ``Styler``'s display text where the page
    formats it, else the values as Streamlit draws them (a missing value reads "None")."""
    import pandas as pd
    from streamlit import dataframe_util

    data = frame.value
    styler = frame.proto.arrow_data.styler
    if styler.display_values:
        shown = dataframe_util.convert_arrow_bytes_to_pandas_df(styler.display_values)
        return shown.astype(str).where(~data.isna() | shown.notna(), "None")
    return pd.DataFrame(data).astype(object).where(pd.DataFrame(data).notna(), "None").astype(str)


def small_config(variant: str, **overrides):
    """A small config of ``variant`` for 8x8 digits with 10 classes; free bits off (the loss
    tests check each paper's formula; tests/test_defaults.py checks the floor)."""
    params = {"latent_dim": 6, "hidden": "32", "input_shape": DIGITS_SHAPE, "num_classes": 10}
    if "free_bits" in {f.name for f in dataclasses.fields(get_variant(variant).Config)}:
        params["free_bits"] = 0.0
    if variant == "ksparse":
        params["k"] = 3
    params.update(overrides)
    return make_config(variant, **params)


@pytest.fixture
def runs_dir(tmp_path, monkeypatch):
    """An empty runs folder, also set as ``$AELAB_RUNS``."""
    folder = tmp_path / "runs"
    folder.mkdir()
    monkeypatch.setenv("AELAB_RUNS", str(folder))
    return folder


@pytest.fixture
def batch():
    """64 digits images and labels."""
    from aelab.data.datasets import load_dataset

    ds = load_dataset("digits")
    return torch.from_numpy(ds.x_train[:64]), torch.from_numpy(ds.y_train[:64])


@pytest.fixture
def media(monkeypatch):
    """The bytes of every picture and download a page hands Streamlit's media store, by file id."""
    from streamlit.runtime.memory_media_file_storage import MemoryMediaFileStorage

    stored = {}
    original = MemoryMediaFileStorage.load_and_get_id

    def record(self, path_or_data, mimetype, kind, filename=None):
        file_id = original(self, path_or_data, mimetype, kind, filename)
        stored[file_id] = (path_or_data, mimetype)
        return file_id

    monkeypatch.setattr(MemoryMediaFileStorage, "load_and_get_id", record)
    return stored


class HandStudy:
    """A study of two trials (``latent_dim`` 2 and 4) whose status files the test writes by
    hand: ``run()`` marks them running (this process's pid, so alive), ``finish()`` done with
    one logged step each. No training: what live pages show as trials end."""

    ID = "live"

    def __init__(self, runs_dir):
        from aelab.training.setup import prepare_run

        self.runs_dir = runs_dir
        grid = {"latent_dim": ["2", "4"]}
        self.trials = [prepare_run("ae", "digits", {"latent_dim": d, "hidden": "8"},
                                   {"epochs": 1, "caches": False}, runs_dir=runs_dir,
                                   study={"id": self.ID, "point": {"latent_dim": str(d)},
                                          "seed": 0, "grid": grid, "seeds": 1})
                       for d in (2, 4)]

    def run(self, progress: float = 0.5) -> None:
        from aelab.runs.folder import write_status

        for trial in self.trials:
            write_status(trial, state="running", progress=progress, pid=os.getpid())

    def finish(self) -> None:
        import json

        from aelab.runs.folder import write_status

        for i, trial in enumerate(self.trials):
            row = {"step": 12, "epoch": 1, "loss": 0.2 / (i + 1), "recon": 0.2 / (i + 1)}
            (trial / "metrics.jsonl").write_text(json.dumps(row) + "\n")
            write_status(trial, state="done", progress=1.0, pid=os.getpid())


@pytest.fixture
def hand_study():
    """``hand_study(runs_dir)``: a ``HandStudy`` in that runs folder."""
    return HandStudy
