"""Explore caches: written after training, keyed by the weights, rebuilt when stale."""
import json

import numpy as np
import pytest
import torch

from aelab.metrics.results import (
    CACHE,
    EVAL,
    get_caches,
    get_eval,
    project_2d,
    refresh_caches,
    subset_indices,
    weights_hash,
)
from aelab.runs.folder import WEIGHTS, atomic_write_tensors, read_tensors
from aelab.runs.train import train_run
from aelab.training.setup import prepare_run


@pytest.fixture(scope="module")
def vae_run(tmp_path_factory):
    run = prepare_run("vae", "digits", {"latent_dim": 3, "hidden": "32"},
                      {"epochs": 2, "caches": False}, runs_dir=tmp_path_factory.mktemp("runs"))
    train_run(run)
    return run


def test_caches_hold_codes_projections_kl_and_metrics(vae_run):
    assert refresh_caches(vae_run) is True
    arrays = get_caches(vae_run)
    n = 270  # the digits test split
    assert arrays["codes"].shape == (n, 3) and arrays["index"].shape == (n,)
    assert arrays["labels"].shape == (n,)
    for key in ("pca_codes", "umap_codes", "pca_pixels", "umap_pixels"):
        assert arrays[key].shape == (n, 2) and np.isfinite(arrays[key]).all()
    assert arrays["kl_per_dim"].shape == (3,)
    scores = get_eval(vae_run)
    assert scores["kl_per_dim"] == pytest.approx(arrays["kl_per_dim"].tolist(), rel=1e-5)
    assert {"recon_mse", "pca_recon_mse", "elbo", "knn_acc"} <= set(scores)
    assert json.loads((vae_run / EVAL).read_text())["weights_sha256"] == weights_hash(vae_run)
    assert refresh_caches(vae_run) is False  # fresh: not rebuilt


def test_stale_or_damaged_caches_are_rebuilt_not_trusted(vae_run):
    refresh_caches(vae_run)
    tensors, meta = read_tensors(vae_run / WEIGHTS)
    tensors = {k: v + 0.01 for k, v in tensors.items()}  # the weights change (say, a resume)
    atomic_write_tensors(vae_run / WEIGHTS, tensors, meta)
    before = read_tensors(vae_run / CACHE)[0]["codes"]
    assert refresh_caches(vae_run) is True
    after = read_tensors(vae_run / CACHE)[0]["codes"]
    assert not torch.equal(before, after)
    (vae_run / CACHE).write_bytes(b"garbage")
    assert refresh_caches(vae_run) is True
    assert read_tensors(vae_run / CACHE)[1]["weights_sha256"] == weights_hash(vae_run)


def test_subset_is_seeded_and_capped():
    a, b = subset_indices(50_000, seed=1), subset_indices(50_000, seed=1)
    assert len(a) == 10_000 and np.array_equal(a, b) and (np.diff(a) > 0).all()
    assert not np.array_equal(a, subset_indices(50_000, seed=2))
    assert np.array_equal(subset_indices(20), np.arange(20))


def test_projections_are_seeded():
    x = np.random.default_rng(0).random((60, 5))
    assert np.array_equal(project_2d(x, "pca"), project_2d(x, "pca"))
    assert project_2d(x[:, :1], "pca").shape == (60, 2)  # a 1-D code is padded
    with pytest.raises(ValueError):
        project_2d(x, "isomap")
