"""aelab.metrics.pca (numpy) against scikit-learn's exact PCA, and that the app's PCA needs no sklearn."""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from aelab.data.datasets import load_dataset
from aelab.metrics import pca

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def digits_flat():
    ds = load_dataset("digits")
    return ds.x_train.reshape(len(ds.x_train), -1), ds.x_test.reshape(len(ds.x_test), -1)


@pytest.mark.parametrize("k", [1, 2, 16])
def test_pca_is_scikit_learns_exact_pca(digits_flat, k, monkeypatch):
    from sklearn.decomposition import PCA

    train, test = digits_flat
    monkeypatch.setattr(pca, "CHUNK", 100)  # the covariance summed over many blocks
    ours = pca.fit(train, k)
    theirs = PCA(n_components=k, svd_solver="covariance_eigh").fit(train.astype(np.float64))
    assert ours.n_components_ == k and ours.components_.dtype == train.dtype
    np.testing.assert_allclose(ours.mean_, theirs.mean_, atol=1e-6)
    np.testing.assert_allclose(ours.explained_variance_, theirs.explained_variance_, rtol=1e-6)
    np.testing.assert_allclose(ours.components_, theirs.components_, atol=1e-5)  # signs too
    np.testing.assert_allclose(ours.transform(test), theirs.transform(test), atol=1e-4)
    codes = ours.transform(test)
    np.testing.assert_allclose(ours.inverse_transform(codes), theirs.inverse_transform(codes), atol=1e-5)
    np.testing.assert_allclose(ours.components_ @ ours.components_.T, np.eye(k), atol=1e-5)


def test_a_few_components_of_many_pixels_are_the_full_eigendecompositions(monkeypatch):
    """Lanczos (used from LANCZOS_MIN_DIM pixels on, for a few components) finds the same
    components as numpy's full eigh, signs included."""
    rng = np.random.default_rng(1)
    x = (rng.standard_normal((300, 40)) @ rng.standard_normal((40, 256))).astype(np.float32)
    monkeypatch.setattr(pca, "LANCZOS_MIN_DIM", 10**9)
    full = pca.fit(x, 6)
    import scipy.sparse.linalg

    calls = []
    eigsh = scipy.sparse.linalg.eigsh
    monkeypatch.setattr(scipy.sparse.linalg, "eigsh", lambda *a, **kw: calls.append(kw) or eigsh(*a, **kw))
    monkeypatch.setattr(pca, "LANCZOS_MIN_DIM", 64)
    lanczos = pca.fit(x, 6)
    assert [c["k"] for c in calls] == [6]  # the Lanczos path was taken
    np.testing.assert_allclose(lanczos.explained_variance_, full.explained_variance_, rtol=1e-9)
    np.testing.assert_allclose(lanczos.components_, full.components_, atol=1e-5)


def test_pca_keeps_at_most_as_many_components_as_the_data_allows():
    x = np.random.default_rng(0).random((5, 3)).astype(np.float32)
    model = pca.fit(x, 10)
    assert model.n_components_ == 3
    # all the components: the reconstruction is exact
    np.testing.assert_allclose(model.inverse_transform(model.transform(x)), x, atol=1e-5)


@pytest.mark.slow
def test_fitting_the_apps_pca_does_not_import_scikit_learn():
    """A page's first visit on a fresh server pays for every import; scipy.stats and
    sklearn took about 1 s, more than the fit."""
    code = ("import sys, numpy as np; from aelab.metrics.evaluate import fit_pca, pca_reconstruct; "
            "x = np.random.default_rng(0).random((50, 1, 4, 4)).astype(np.float32); "
            "pca_reconstruct(fit_pca(x, 3), x); print('sklearn' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                         check=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert out.stdout.strip() == "False"
