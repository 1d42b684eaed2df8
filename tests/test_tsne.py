"""t-SNE beside PCA and UMAP: cached per perplexity in the run folder, made in the background,
offered on the Latent space page.

One tiny digits run (270 cached test points); UMAP is replaced by PCA for its codes cache
(conftest ``umap_as_pca``: numba's compile time), t-SNE is scikit-learn's own.
"""
from __future__ import annotations

import json
import time

import numpy as np
import pytest
from conftest import open_page, tiny_run, umap_as_pca

from aelab.cli import main
from aelab.errors import RunError
from aelab.metrics.background import scoring_state, start_scoring
from aelab.metrics.results import cached_tsne, get_caches, get_tsne, project_2d
from aelab.runs.folder import atomic_write_tensors, read_tensors, tsne_files
from aelab.runs.refs import RunRef


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("tsne")
    run_dir = tiny_run(root)
    with umap_as_pca():
        get_caches(RunRef.unchecked(run_dir))
    return run_dir


def fresh(run_dir, perplexity: int) -> np.ndarray:
    """t-SNE of the cached codes computed now, with the run's seed."""
    ref = RunRef.unchecked(run_dir)
    return project_2d(get_caches(ref)["codes"], "tsne", ref.config["train_config"].seed, perplexity)


@pytest.mark.slow
def test_cli_caches_tsne_equal_to_a_fresh_computation(run, capsys):
    assert cached_tsne(run, 15) is None  # never computed: nothing to show
    assert main(["tsne", str(run), "--perplexity", "15"]) == 0
    assert "t-SNE of 270 codes (perplexity 15)" in capsys.readouterr().out
    cached = cached_tsne(run, 15)
    assert cached.shape == (270, 2) and np.isfinite(cached).all()
    np.testing.assert_array_equal(cached, fresh(run, 15))
    assert not np.allclose(cached, fresh(run, 50))  # the perplexity matters, and keys the cache
    assert cached_tsne(run, 50) is None
    np.testing.assert_array_equal(get_tsne(run, 15), cached)  # read back, not recomputed


@pytest.mark.slow
def test_background_process_writes_the_same_view(run):
    """The page's way: a background ``python -m aelab tsne`` process, polled until ready."""
    assert start_scoring(run, "tsne-5")
    assert not start_scoring(run, "tsne-5")  # one process per run and perplexity
    deadline = time.monotonic() + 120
    while (state := scoring_state(run, "tsne-5"))["state"] == "running" and time.monotonic() < deadline:
        time.sleep(0.5)
    assert state["state"] == "ready", state
    np.testing.assert_array_equal(state["scores"], fresh(run, 5))


def test_a_view_of_other_weights_is_not_trusted(run):
    name = tsne_files(30)[0]
    get_tsne(run, 30)
    tensors, meta = read_tensors(run / name)
    atomic_write_tensors(run / name, tensors, {**meta, "weights_sha256": "0" * 64})
    assert cached_tsne(run, 30) is None
    atomic_write_tensors(run / name, {"tsne_codes": tensors["tsne_codes"][:10]}, meta)  # too few points
    assert cached_tsne(run, 30) is None


def test_a_perplexity_not_offered_is_one_sentence(run, capsys):
    with pytest.raises(RunError, match=r"perplexity 7 is not offered; choose one of 5, 15, 30, 50"):
        get_tsne(run, 7)
    with pytest.raises(SystemExit):
        main(["tsne", str(run), "--perplexity", "7"])
    assert "invalid choice" in capsys.readouterr().err


@pytest.mark.slow
def test_latent_page_offers_tsne_and_shows_the_cached_view(run, monkeypatch):
    monkeypatch.setenv("AELAB_RUNS", str(run.parent))
    at = open_page("latent")
    toggle = at.toggle(key="lat_tsne")
    assert toggle.label == "Add t-SNE of the codes" and not toggle.value
    get_tsne(run, 50)  # as the background process would have made it
    at = toggle.set_value(True).run()
    at.select_slider(key="lat_tsne_p").set_value(50).run()
    assert not at.exception
    (figure,) = [c for c in at.get("plotly_chart") if c.key == "lat_views"]  # not the time-lapse
    spec = json.loads(figure.proto.spec)
    titles = [a["text"] for a in spec["layout"]["annotations"]]
    assert titles[-1] == "t-SNE of the codes (perplexity 50)", titles
    monkeypatch.setattr("aelab.metrics.background.start_scoring", lambda run_dir, kind: True)
    (run / tsne_files(30)[0]).unlink(missing_ok=True)
    at.select_slider(key="lat_tsne_p").set_value(30).run()
    assert any("t-SNE view" in i.value and "in the background" in i.value for i in at.info)
