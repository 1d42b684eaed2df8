"""95% percentile-bootstrap intervals of the scores, so that two runs whose intervals overlap
are not read as different.

The percentile bootstrap (Efron & Tibshirani 1993, ch. 13): resample the evaluation points
with replacement ``B`` times, recompute the score on each resample and take the 2.5th and
97.5th percentiles of the ``B`` values. What "the evaluation points" are, and whether a fitted
classifier is kept or fitted again, is said by each score (``aelab.metrics.disentanglement``,
``aelab.metrics.evaluate.probe_scores``, ``trustworthiness_terms`` below; the table is in
docs/disentanglement.md, "Intervals"). Every interval is seeded, so a cached interval is a
function of the codes and the seed alone.

A score is stored beside its interval as ``<key>_ci: [lo, hi]`` (the ``--json`` output of
``evaluate`` and ``disentangle`` and the caches in the run folder).
"""
from __future__ import annotations

from statistics import NormalDist
from typing import Callable

import numpy as np

LEVEL = 0.95      # of every interval
SEED = 20260      # of the resampling where a score has no seed of its own (the latent table)
MEAN_RESAMPLES = 1000  # B for a score that is a mean over points (an accuracy, trustworthiness):
                       # a resample costs one mean, so B is large enough for stable percentiles
PERCENTILE_MIN = 100  # replicates below which an interval is the normal one (``percentile_interval``)
CHUNK = 100       # resamples drawn at once by ``resampled_means`` (memory: CHUNK x N indices)


def interval_key(key: str) -> str:
    """The name an interval is stored under beside its score ``key``."""
    return f"{key}_ci"


def percentile_interval(replicates, value: float | None = None, level: float = LEVEL,
                        bounds: tuple[float, float] = (0.0, 1.0)) -> list[float]:
    """[lo, hi] from the bootstrap ``replicates`` of a score: their (1 - level)/2 and
    (1 + level)/2 quantiles; given the score ``value`` itself, moved by ``value - median`` so
    that the interval is centred (by its median) on the score, and clipped to the score's
    ``bounds``. With fewer than ``PERCENTILE_MIN`` replicates the tails are too thin for
    quantiles and the interval is the normal one, ``value +- z * sd`` (Efron & Tibshirani
    1993, sec. 13.2; a standard deviation needs only tens of replicates).

    Why move it: a resample repeats about a third of the points, and a plug-in estimate (the
    mutual information in MIG, the forests' importances in DCI) of a sample with repeats is
    biased like that of a smaller sample, so its replicates sit to one side of the score, by
    more than their spread for a near-perfect code. The interval is meant for the spread of
    the score over samples of evaluation points (what tells two runs apart), so the
    resampling's shift is taken out (``shift`` reports it); it does not correct the score's
    own bias, which runs scored at the same sizes share. For a mean (an accuracy) the median
    of the replicates is the score itself up to resampling noise, and nothing moves."""
    replicates = np.asarray(replicates, dtype=np.float64)
    if value is not None and len(replicates) < PERCENTILE_MIN:
        half = NormalDist().inv_cdf((1 + level) / 2) * float(replicates.std(ddof=1))
        lo, hi = value - half, value + half
    else:
        lo, hi = np.percentile(replicates, [50 * (1 - level), 50 * (1 + level)])
        if value is not None:
            move = value - float(np.median(replicates))
            lo, hi = lo + move, hi + move
    return [float(max(lo, bounds[0])), float(min(hi, bounds[1]))]


def shift(replicates, value: float) -> float:
    """How far the replicates' median lies from the score (what ``percentile_interval`` takes out)."""
    return float(np.median(np.asarray(replicates, dtype=np.float64)) - value)


def resamples(n: int, count: int, rng: np.random.Generator):
    """``count`` index arrays, each ``n`` draws with replacement from ``range(n)``."""
    for _ in range(count):
        yield rng.integers(0, n, n)


def replicates(statistic: Callable[[np.ndarray], float], n: int, count: int,
               rng: np.random.Generator) -> np.ndarray:
    """``statistic(index)`` on ``count`` resamples of ``n`` points (``index``: the resampled rows)."""
    return np.array([statistic(index) for index in resamples(n, count, rng)], dtype=np.float64)


def resampled_means(values, rng: np.random.Generator, count: int = MEAN_RESAMPLES) -> np.ndarray:
    """(count, R): the mean of each row of per-point ``values`` (R, N) on ``count`` resamples
    of the N points (columns), all rows resampled together (``CHUNK`` resamples at a time)."""
    values = np.asarray(values, dtype=np.float64)
    n = values.shape[1]
    means = []
    for start in range(0, count, CHUNK):
        index = rng.integers(0, n, (min(CHUNK, count - start), n))  # (c, N)
        means.append(values[:, index].mean(-1).T)  # (R, c, N) -> (c, R)
    return np.concatenate(means)


def mean_interval(values, rng: np.random.Generator, count: int = MEAN_RESAMPLES,
                  level: float = LEVEL) -> list[float]:
    """The percentile interval of the mean of per-point ``values`` (N,), centred on the mean."""
    values = np.asarray(values, dtype=np.float64)
    return percentile_interval(resampled_means(values[None], rng, count)[:, 0], float(values.mean()), level)


def accuracy_interval(correct, seed: int = SEED, count: int = MEAN_RESAMPLES) -> list[float]:
    """The interval of an accuracy from its per-point hits ``correct`` (N,) bool: the
    classifier is kept, its test points are resampled."""
    return mean_interval(np.asarray(correct, dtype=np.float64), np.random.default_rng(seed), count)


def trustworthiness_terms(high: np.ndarray, low: np.ndarray, n_neighbors: int) -> np.ndarray:
    """Each point's share t_i of scikit-learn's trustworthiness of the 2-D view ``low`` of
    ``high`` (Venna & Kaski 2001), whose mean over the points is the trustworthiness:

        t_i = 1 - 2 / (k (2n - 3k - 1)) * sum_{j in U_k(i)} (r(i, j) - k)

    with U_k(i) the k nearest neighbours of i in the view that are not among its k nearest in
    ``high``, and r(i, j) the rank of j among i's neighbours in ``high``. Computed as
    ``sklearn.manifold.trustworthiness`` does (the same ranks and ties), per point."""
    from sklearn.metrics import pairwise_distances
    from sklearn.neighbors import NearestNeighbors

    high = high.reshape(len(high), -1)
    n, k = len(high), n_neighbors
    distance = pairwise_distances(high)
    np.fill_diagonal(distance, np.inf)
    order = np.argsort(distance, axis=1)  # (n, n): i's neighbours in ``high``, nearest first
    view = NearestNeighbors(n_neighbors=k).fit(low).kneighbors(return_distance=False)  # (n, k)
    rank = np.zeros((n, n), dtype=np.int64)
    rank[np.arange(n)[:, None], order] = np.arange(1, n + 1)  # rank[i, j] = r(i, j)
    excess = rank[np.arange(n)[:, None], view] - k  # (n, k): > 0 for j outside i's k nearest
    penalty = np.where(excess > 0, excess, 0).sum(1)
    return 1.0 - penalty * (2.0 / (k * (2.0 * n - 3.0 * k - 1.0)))


def format_interval(value, interval=None, digits: int = 2) -> str:
    """``0.45 [0.41, 0.49]``: a score and its interval as a page shows them; the score alone
    when it has no interval."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return ""
    text = f"{value:.{digits}f}"
    return text if interval is None else f"{text} [{interval[0]:.{digits}f}, {interval[1]:.{digits}f}]"


def missing_intervals(rows: list[dict], keys) -> bool:
    """True if any row has a score of ``keys`` without its interval (scored by older code)."""
    return any(key in row and interval_key(key) not in row for row in rows for key in keys)
