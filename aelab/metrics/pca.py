"""PCA in numpy: the linear baseline of every page (survey section 2: an undercomplete
autoencoder with a linear encoder and decoder learns the span of the top principal
components). No scikit-learn: importing it (with scipy.stats) costs a page's first visit on a fresh
server more than the fit itself (docs/performance.md).
"""
from __future__ import annotations

import numpy as np

CHUNK = 4096  # rows per block of the covariance sum: bounded memory on large datasets
LANCZOS_MIN_DIM = 2048  # from this many pixels on, a few top components come from Lanczos


class PCA:
    """Exact PCA with ``n_components_`` components: the top eigenvectors of the data's
    covariance (as scikit-learn's ``PCA(svd_solver="covariance_eigh")``, with its signs: the
    largest-magnitude entry of each component positive). Same attributes and methods as
    scikit-learn's where the app uses them."""

    def __init__(self, components: np.ndarray, mean: np.ndarray, explained_variance: np.ndarray):
        self.components_ = components                  # (k, D), rows orthonormal
        self.mean_ = mean                              # (D,)
        self.explained_variance_ = explained_variance  # (k,), descending
        self.n_components_ = len(components)

    def transform(self, flat: np.ndarray) -> np.ndarray:
        """Codes of rows ``flat`` (N, D): (N, k), the projection onto the components."""
        return ((flat - self.mean_) @ self.components_.T).astype(flat.dtype, copy=False)

    def inverse_transform(self, codes: np.ndarray) -> np.ndarray:
        """Rows (N, D) rebuilt from codes (N, k): the best rank-k linear reconstruction."""
        return (codes @ self.components_ + self.mean_).astype(codes.dtype, copy=False)


def fit(flat: np.ndarray, n_components: int) -> PCA:
    """PCA of the rows of ``flat`` (N, D) with ``n_components`` components (at most N and D).

    The covariance (1 / (N - 1)) sum_i (x_i - mean)(x_i - mean)^T is summed in float64 in
    blocks of ``CHUNK`` rows; its top k eigenvectors are the components."""
    n, d = flat.shape
    k = max(1, min(n_components, n, d))
    mean = flat.mean(0, dtype=np.float64)
    covariance = np.zeros((d, d))
    for start in range(0, n, CHUNK):
        block = flat[start:start + CHUNK] - mean
        covariance += block.T @ block
    covariance /= max(n - 1, 1)
    values, vectors = top_eigenpairs(covariance, k)
    components = vectors.T
    values = np.maximum(values, 0.0)
    # sign convention of scikit-learn's svd_flip: each component's largest |entry| positive
    largest = components[np.arange(k), np.abs(components).argmax(1)]
    components = components * np.where(largest < 0, -1.0, 1.0)[:, None]
    dtype = flat.dtype if flat.dtype in (np.float32, np.float64) else np.float64
    return PCA(components.astype(dtype), mean.astype(dtype), values)


def top_eigenpairs(symmetric: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` largest eigenvalues (descending) of a symmetric matrix and their eigenvectors
    as columns. A full ``eigh`` is cubic in the size; for a few components of a large matrix
    (64x64 sprites: 4096 pixels) ARPACK's Lanczos iteration to machine precision finds the
    same pairs from matrix-vector products alone (scipy, imported only then: its import costs
    a page's first visit more than a small fit)."""
    d = len(symmetric)
    if d < LANCZOS_MIN_DIM or k > d // 8:
        values, vectors = np.linalg.eigh(symmetric)  # ascending
        return values[::-1][:k], vectors[:, ::-1][:, :k]
    from scipy.sparse.linalg import eigsh

    start = np.random.default_rng(0).standard_normal(d)  # a fixed start: the same fit every time
    values, vectors = eigsh(symmetric, k=k, which="LA", tol=0, v0=start)  # ascending
    return values[::-1], vectors[:, ::-1]
