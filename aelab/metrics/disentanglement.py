"""Disentanglement metrics of a representation of the shapes sprites (``aelab.data.shapes``).

Everything is built around a *representation function*
``represent(factors) -> codes``: factor index rows ``(N, 5)`` int in, codes
``(N, K)`` float out. For a trained run it renders the sprites and encodes them
(posterior means for VAEs); the reference encoders are functions of the factor
indices themselves, so the metrics can be checked against known answers:

    ground-truth  the 5 factor indices, each standardised to zero mean and unit
                  variance under the uniform distribution over its values
    mixed         that 5-d code times a fixed random rotation (seed ``ROTATION_SEED``)
    noise         Gaussian noise independent of the factors (5 dims)

Metrics (each seeded by a ``numpy.random.Generator``):

    beta_vae              Higgins et al. 2017, sec. 3 and fig. 2
    factor_vae            Kim & Mnih 2018, sec. 4
    mig                   Chen et al. 2018, eq. 9
    dci_disentanglement,  Eastwood & Williams 2018 (random-forest importances)
    dci_completeness,
    dci_informativeness

Sample sizes are the module constants below. The beta-VAE and FactorVAE metrics use
disentanglement_lib's sizes (64 pairs per point and 10,000 + 5,000 points; 64 samples per
vote and 10,000 + 5,000 votes), which would mean rendering about three million sprites if
every observation were drawn afresh. Instead both draw their observations from one encoded
pool of ``POOL`` uniform rows: the rows of a pair or a vote are pool rows with the required
factor value, so each point has exactly the distribution of the definition and points only
share rows. A trained model is thus scored from 25,000 rendered sprites (its time:
docs/disentanglement.md); models render and encode ``CHUNK`` images at a time, so memory
stays small. Over seeds these scores spread by less than 0.03 and they agree with a direct
implementation of disentanglement_lib's definitions to within 0.05
(``tests/test_metric_agreement.py``).

Where this differs from the papers, and why:
- beta-VAE and FactorVAE metrics: the pool above; the logistic regression sees standardised
  z_diff, so the score does not depend on the scale of the codes; a dimension counts as
  collapsed relative to the largest std (disentanglement_lib: an absolute std of 0.05),
  which works for codes of any scale (plain autoencoders too).
- MIG: the plug-in estimate from posterior means binned into 20 equal-width
  bins on a 5,000-row sample (as in Locatello et al. 2019), not Chen et al.'s
  estimator over the whole dataset with the stochastic encoder q(z|x).
- DCI: factor indices are classified (as in Locatello et al. 2019) rather than
  regressed, with depth-limited random forests; informativeness is held-out
  accuracy of the better of the forest and a linear classifier (see ``dci``).
"""
from __future__ import annotations

import hashlib
from typing import Callable

import numpy as np

from aelab.data import shapes
from aelab.data.datasets import is_shapes
from aelab.errors import ConfigError, RunError
from aelab.metrics.bootstrap import (
    LEVEL,
    MEAN_RESAMPLES,
    interval_key,
    percentile_interval,
    replicates,
    resampled_means,
    shift,
)

FACTORS = shapes.FACTORS
SIZES = np.array(shapes.SIZES)
Represent = Callable[[np.ndarray], np.ndarray]

# --- sample sizes (rendered images for a trained model in brackets) ---
N_SAMPLE = 5_000           # one uniform sample for MIG, DCI, the MI matrix and FactorVAE's
                           # normalisation (5,000)
DCI_TRAIN_FRACTION = 0.8   # of N_SAMPLE to fit the DCI classifiers; the rest scores them
MIG_BINS = 20              # equal-width histogram bins per code dimension (Chen et al.)
POOL = 20_000              # uniform sample from which the beta-VAE and FactorVAE metrics draw
                           # every observation (20,000)
BETA_VAE_PAIRS = 64        # L: pairs averaged into one z_diff point     } disentanglement_lib's
BETA_VAE_TRAIN = 10_000    # points to fit the linear classifier          } beta_vae_sklearn
BETA_VAE_EVAL = 5_000      # points to score it                           } sizes
FACTOR_VAE_BATCH = 64      # L: samples sharing the fixed factor in one vote   } its factor_vae_score
FACTOR_VAE_TRAIN = 10_000  # votes to fit the majority-vote classifier         } sizes
FACTOR_VAE_EVAL = 5_000    # votes to score it                                 }
COLLAPSED_STD = 0.05       # FactorVAE: a dimension whose std is below this fraction of the
                           # largest dimension's std has collapsed and is left out
DCI_TREES = 20             # random-forest size per factor
DCI_DEPTH = 8              # tree depth: up to 256 leaves for at most 40 classes, ~16 training
                           # points a leaf, so the importances come from splits that generalise
                           # (fully grown trees spread importance over every code by fitting noise)
DCI_LINEAR_C = 1e4         # weak regularisation: the true factors are linearly separable
CHUNK = 500                # images rendered and encoded at once

ROTATION_SEED = 0          # the "mixed" reference encoder's rotation: the first one drawn from
MIXING_ENTRY = 0.7         # this seed whose entries are all below this in magnitude, so that no
                           # factor keeps half its variance on one code (many random rotations
                           # of 5 dims leave one factor almost on one axis)
NOISE_SEED = 0             # the "noise" reference encoder's noise
REFERENCE_ENCODERS = ("ground-truth", "mixed", "noise")
VERSION = 3                # of the scores' definitions: cached scores of another version are stale
                           # (2: beta-VAE and FactorVAE metrics at disentanglement_lib's sizes;
                           # 3: each score with its bootstrap interval, the scores themselves as in 2)

# --- bootstrap intervals (aelab.metrics.bootstrap): resamples B per score, what each resamples
# is in its function's docstring and docs/disentanglement.md ("Intervals") ---
RESAMPLES = {
    "beta_vae": MEAN_RESAMPLES,             # the evaluation points, classifier kept: a mean
    "factor_vae": MEAN_RESAMPLES,           # training and evaluation votes, majority vote refitted
    "mig": 200,                             # the sample's rows, MIG recomputed (~2 ms each)
    "dci_disentanglement": 10,              # } the training rows, the forests refitted: a refit
    "dci_completeness": 10,                 # } costs as much as DCI itself, so B is small (the
                                            # } normal interval from the refits' spread)
    "dci_informativeness": MEAN_RESAMPLES,  # the held-out rows, the fitted classifiers kept
}


# --- representation functions ---
def standardised_factors(factors: np.ndarray) -> np.ndarray:
    """Factor indices (N, 5) -> (N, 5) codes with zero mean and unit variance per factor under
    the uniform distribution over each factor's indices (mean (n-1)/2, variance (n^2-1)/12).
    Indices rather than values: every factor's value is increasing and linear in its index,
    so standardised values would give the same codes, and the shape id has no other value."""
    f = np.asarray(factors, dtype=np.float64)
    return (f - (SIZES - 1) / 2) / np.sqrt((SIZES ** 2 - 1) / 12)


def rotation_matrix(dim: int = len(FACTORS), seed: int = ROTATION_SEED,
                    max_entry: float = MIXING_ENTRY) -> np.ndarray:
    """A fixed random rotation (orthogonal, determinant +1) of ``dim`` dimensions: the first
    rotation drawn (uniformly, Haar measure) from ``seed`` whose entries all have magnitude
    below ``max_entry``, i.e. one that mixes every factor into several codes."""
    from scipy.stats import special_ortho_group

    rng = np.random.default_rng(seed)
    while True:
        rotation = special_ortho_group.rvs(dim, random_state=rng)
        if np.abs(rotation).max() < max_entry:
            return rotation


def reference_encoder(name: str) -> Represent:
    """The representation function of a reference encoder (see module docstring)."""
    if name == "ground-truth":
        return standardised_factors
    if name == "mixed":
        rotation = rotation_matrix()
        return lambda factors: standardised_factors(factors) @ rotation
    if name == "noise":
        def noise(factors: np.ndarray) -> np.ndarray:
            # a pure function of the batch (reproducible), independent of the factor values:
            # the batch's bytes only seed the generator, each row gets fresh noise
            f = np.ascontiguousarray(factors, dtype=np.int64)
            digest = int.from_bytes(hashlib.sha256(f.tobytes()).digest()[:8], "little")
            return np.random.default_rng([NOISE_SEED, digest]).standard_normal((len(f), len(FACTORS)))
        return noise
    raise ConfigError(f"unknown reference encoder {name!r}; choose one of: "
                      f"{', '.join(REFERENCE_ENCODERS)}")


def model_encoder(model, chunk: int = CHUNK) -> Represent:
    """The representation function of a trained model: render the sprites, encode them
    (posterior means for VAEs), ``chunk`` images at a time, at the model's own resolution
    (64x64 for ``shapes`` and ``shapes64``, 32x32 for ``shapes32``). A conditional model is
    given the shape, which is the shapes dataset's label."""
    from aelab.metrics.evaluate import encode_array

    side = int(model.config.input_shape[-1])

    def represent(factors: np.ndarray) -> np.ndarray:
        out = []
        for start in range(0, len(factors), chunk):
            rows = factors[start:start + chunk]
            labels = rows[:, 0].astype(np.int64) if getattr(model, "cond_dim", 0) else None
            out.append(encode_array(model, shapes.render(rows, chunk=256, side=side), labels))
        return np.concatenate(out).astype(np.float64) if out else np.zeros((0, 0))
    return represent


# --- the metrics ---
def _group(pool_factors: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The pool rows sorted by factor ``k`` (stable), and where each of its values starts and
    how many rows hold it: rows with value v are ``order[starts[v]:starts[v] + counts[v]]``."""
    order = np.argsort(pool_factors[:, k], kind="stable")
    counts = np.bincount(pool_factors[:, k], minlength=SIZES[k])
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    if counts.min() < 2 * FACTOR_VAE_BATCH:
        raise ValueError(f"the pool is too small: {FACTORS[k]} index {counts.argmin()} occurs "
                         f"{counts.min()} times")
    return order, starts, counts


def _draw_pairs(group, values: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Two distinct pool rows ``(a, b)`` for each entry of ``values``, both holding that value
    of the ``group``'s factor, drawn uniformly among the rows that do."""
    order, starts, counts = group
    first = rng.integers(0, counts[values])
    second = rng.integers(0, counts[values] - 1)
    second += second >= first  # skip the first row's position: the two are distinct
    return order[starts[values] + first], order[starts[values] + second]


def _batches(group, values: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    """(len(values), size) distinct pool rows per value, all holding that value of the
    ``group``'s factor, drawn uniformly without replacement among the rows that do."""
    order, starts, counts = group
    rows = [order[starts[v] + rng.choice(counts[v], size, replace=False)] for v in values]
    return np.stack(rows) if rows else np.zeros((0, size), dtype=np.int64)


def beta_vae_metric(pool_factors: np.ndarray, pool_codes: np.ndarray, rng: np.random.Generator,
                    n_train: int = BETA_VAE_TRAIN, n_eval: int = BETA_VAE_EVAL,
                    pairs: int = BETA_VAE_PAIRS) -> float:
    """The beta-VAE metric (Higgins et al. 2017, sec. 3 "Assessing disentanglement
    quantitatively" and fig. 2), sized as disentanglement_lib's ``beta_vae_sklearn``.

    Each point: choose a factor k uniformly; draw L pairs of factor rows (v1_l, v2_l), each
    pair sharing factor k's value (drawn uniformly per pair), everything else uniform and
    independent; then ``z_diff = 1/L sum_l |z(v1_l) - z(v2_l)|``. A linear classifier
    (logistic regression on standardised z_diff) predicts k from z_diff; the score is its
    accuracy on separate evaluation points. Chance is 1 / (number of factors).

    The rows come from the pool (``score``: uniform rows and their codes): a pair is two
    distinct pool rows drawn uniformly among those with the pair's value of k. The pool's rows
    are independent uniform draws from the grid, so each pair has exactly the distribution
    above; points only share rows, which adds to the seed-to-seed spread (measured in
    ``tests/test_metric_agreement.py``).
    """
    return _beta_vae(pool_factors, pool_codes, rng, n_train, n_eval, pairs)[0]


def _beta_vae(pool_factors, pool_codes, rng, n_train=BETA_VAE_TRAIN, n_eval=BETA_VAE_EVAL,
              pairs=BETA_VAE_PAIRS, boot: np.random.Generator | None = None,
              count: int = MEAN_RESAMPLES) -> tuple[float, np.ndarray | None]:
    """``beta_vae_metric`` and, given the generator ``boot``, its bootstrap replicates: the fitted
    classifier is kept and its ``n_eval`` evaluation points are resampled (a refit costs
    ~0.1 s, too dear for hundreds of resamples), so the interval covers the finite evaluation
    set, not a classifier fitted to other training points."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    n = n_train + n_eval
    ks = rng.integers(0, len(FACTORS), n)
    z_diff = np.zeros((n, pool_codes.shape[1]))
    for k in range(len(FACTORS)):
        points = np.flatnonzero(ks == k)
        a, b = _draw_pairs(_group(pool_factors, k), rng.integers(0, SIZES[k], (len(points), pairs)), rng)
        z_diff[points] = np.abs(pool_codes[a] - pool_codes[b]).mean(1)  # (points, K)
    clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    clf.fit(z_diff[:n_train], ks[:n_train])
    correct = clf.predict(z_diff[n_train:]) == ks[n_train:]  # (n_eval,)
    reps = None if boot is None else resampled_means(correct[None], boot, count)[:, 0]
    return float(correct.mean()), reps


def factor_vae_metric(pool_factors: np.ndarray, pool_codes: np.ndarray, rng: np.random.Generator,
                      n_train: int = FACTOR_VAE_TRAIN, n_eval: int = FACTOR_VAE_EVAL,
                      batch: int = FACTOR_VAE_BATCH) -> float:
    """The FactorVAE metric (Kim & Mnih 2018, sec. 4), sized as disentanglement_lib's
    ``factor_vae_score``.

    Each code dimension is divided by its standard deviation over the pool; dimensions with a
    std below ``COLLAPSED_STD`` times the largest have collapsed and are left out. Each vote:
    choose a factor k uniformly and a value of it uniformly, draw L rows with that value
    (everything else uniform), take ``d = argmin_j Var_l(z_j / s_j)`` over the kept
    dimensions, giving the pair (d, k). The classifier maps each dimension to its most
    frequent factor among the training votes (majority vote); the score is its accuracy on
    the evaluation votes. Chance is about 1 / (number of factors).

    The L rows of a vote are distinct pool rows with the vote's value (see ``beta_vae_metric``
    for why that is the same distribution).
    """
    return _factor_vae(pool_factors, pool_codes, rng, n_train, n_eval, batch)[0]


def _majority_accuracy(dims: np.ndarray, ks: np.ndarray, latent_dim: int, n_train: int) -> float:
    """The majority-vote classifier fitted on the first ``n_train`` votes (dimension d,
    factor k), scored on the rest."""
    votes = np.bincount(dims[:n_train] * len(FACTORS) + ks[:n_train],
                        minlength=latent_dim * len(FACTORS)).reshape(latent_dim, len(FACTORS))
    classifier = votes.argmax(1)  # dim -> factor (a dimension never voted for says factor 0)
    return float((classifier[dims[n_train:]] == ks[n_train:]).mean())


def _factor_vae(pool_factors, pool_codes, rng, n_train=FACTOR_VAE_TRAIN, n_eval=FACTOR_VAE_EVAL,
                batch=FACTOR_VAE_BATCH, boot: np.random.Generator | None = None,
                count: int = MEAN_RESAMPLES) -> tuple[float, np.ndarray | None]:
    """``factor_vae_metric`` and, given the generator ``boot``, its bootstrap replicates: the training
    votes and the evaluation votes are each resampled and the majority vote fitted again (a
    refit is one count of votes), so the interval covers both finite sets of votes."""
    std = pool_codes.std(0, ddof=1)
    kept = np.flatnonzero(std >= COLLAPSED_STD * std.max()) if std.max() > 0 else np.arange(len(std))
    scaled = pool_codes[:, kept] / np.where(std[kept] > 0, std[kept], 1.0)
    n = n_train + n_eval
    ks = rng.integers(0, len(FACTORS), n)
    dims = np.zeros(n, dtype=np.int64)
    for k in range(len(FACTORS)):
        votes = np.flatnonzero(ks == k)
        rows = _batches(_group(pool_factors, k), rng.integers(0, SIZES[k], len(votes)), batch, rng)
        dims[votes] = kept[np.argmin(scaled[rows].var(1, ddof=1), axis=1)]  # (votes,)
    latent_dim = pool_codes.shape[1]
    value = _majority_accuracy(dims, ks, latent_dim, n_train)
    if boot is None:
        return value, None
    reps = []
    for _ in range(count):
        index = np.concatenate([boot.integers(0, n_train, n_train),
                                n_train + boot.integers(0, n_eval, n_eval)])
        reps.append(_majority_accuracy(dims[index], ks[index], latent_dim, n_train))
    return value, np.array(reps)


def discretise(codes: np.ndarray, bins: int = MIG_BINS) -> np.ndarray:
    """Each column of ``codes`` (N, K) cut into ``bins`` equal-width bins over its range."""
    out = np.zeros(codes.shape, dtype=np.int64)
    for j in range(codes.shape[1]):
        edges = np.histogram_bin_edges(codes[:, j], bins)
        out[:, j] = np.digitize(codes[:, j], edges[1:-1])
    return out


def mutual_information(codes: np.ndarray, factors: np.ndarray, bins: int = MIG_BINS) -> np.ndarray:
    """``I(z_j; v_k)`` in nats (K, F): discretised codes against factor indices."""
    from sklearn.metrics import mutual_info_score

    binned = discretise(codes, bins)
    return np.array([[mutual_info_score(factors[:, k], binned[:, j])
                      for k in range(factors.shape[1])] for j in range(codes.shape[1])])


def mig(codes: np.ndarray, factors: np.ndarray, bins: int = MIG_BINS) -> tuple[float, np.ndarray]:
    """Mutual information gap (Chen et al. 2018, eq. 9) and the MI matrix (K, F) in nats.

    ``MIG = 1/F sum_k (I(z_j(k); v_k) - max_{j != j(k)} I(z_j; v_k)) / H(v_k)`` with
    ``j(k) = argmax_j I(z_j; v_k)``: codes discretised into ``bins`` equal-width bins, the
    entropies and mutual informations those of the sample (plug-in estimates). With one
    code dimension the gap is the largest MI itself.
    """
    from sklearn.metrics import mutual_info_score

    factors = np.asarray(factors)
    mi = mutual_information(codes, factors, bins)  # (K, F)
    top = -np.sort(-mi, axis=0)  # (K, F) descending per factor
    second = top[1] if len(top) > 1 else np.zeros(factors.shape[1])
    entropy = np.array([mutual_info_score(factors[:, k], factors[:, k])
                        for k in range(factors.shape[1])])
    gaps = np.where(entropy > 0, (top[0] - second) / np.where(entropy > 0, entropy, 1), 0.0)
    return float(gaps.mean()), mi


def _plugin_mig(binned: np.ndarray, factors: np.ndarray) -> float:
    """MIG (``mig``) of codes already discretised, ``binned`` (N, K), and factor indices (N, F):
    the same plug-in estimates from the joint counts, vectorised for the bootstrap."""
    n = len(binned)
    bins = int(binned.max()) + 1
    gaps = []
    for k in range(factors.shape[1]):
        values = int(factors[:, k].max()) + 1
        pv = np.bincount(factors[:, k], minlength=values) / n  # (V,)
        h = -np.sum(pv[pv > 0] * np.log(pv[pv > 0]))
        if h <= 0:
            gaps.append(0.0)
            continue
        cells = (binned * values + factors[:, k, None]).T  # (K, N): joint cell of each row
        offset = np.arange(binned.shape[1])[:, None] * bins * values
        joint = np.bincount((cells + offset).ravel(), minlength=binned.shape[1] * bins * values)
        joint = joint.reshape(binned.shape[1], bins, values) / n  # (K, bins, V)
        pz = joint.sum(2, keepdims=True)
        with np.errstate(divide="ignore", invalid="ignore"):
            terms = np.where(joint > 0, joint * np.log(joint / (pz * pv[None, None, :])), 0.0)
        mi = np.sort(terms.sum((1, 2)))[::-1]  # (K,) descending
        gaps.append((mi[0] - (mi[1] if len(mi) > 1 else 0.0)) / h)
    return float(np.mean(gaps))


def mig_replicates(codes: np.ndarray, factors: np.ndarray, rng: np.random.Generator,
                   count: int = RESAMPLES["mig"], bins: int = MIG_BINS) -> np.ndarray:
    """The bootstrap replicates of ``mig``: the sample's rows (code and factors together)
    resampled, the codes binned again on each resample and MIG recomputed from it."""
    factors = np.asarray(factors, dtype=np.int64)
    return replicates(lambda index: _plugin_mig(discretise(codes[index], bins), factors[index]),
                      len(codes), count, rng)


def mig_interval(codes: np.ndarray, factors: np.ndarray, seed: int = 0,
                 count: int = RESAMPLES["mig"], bins: int = MIG_BINS) -> list[float]:
    """``mig``'s 95% interval (``aelab.metrics.bootstrap.percentile_interval`` of
    ``mig_replicates``, seeded by ``seed``)."""
    reps = mig_replicates(codes, factors, np.random.default_rng(seed), count, bins)
    return percentile_interval(reps, mig(codes, factors, bins)[0])


def _entropy(p: np.ndarray, base: int, axis: int) -> np.ndarray:
    """Entropy of the distributions along ``axis`` in log base ``base`` (0 log 0 = 0)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, p * np.log(np.where(p > 0, p, 1)), 0.0)
    return -terms.sum(axis) / np.log(base)


def dci_from_importance(importance: np.ndarray) -> tuple[float, float]:
    """DCI disentanglement and completeness (Eastwood & Williams 2018) of an
    importance matrix R (K codes x F factors), R_jk >= 0.

    ``D = sum_j rho_j (1 - H_F(P_j.))`` with ``P_jk = R_jk / sum_k R_jk`` and
    ``rho_j = sum_k R_jk / sum_jk R_jk``; ``C = 1/F sum_k (1 - H_K(P~_.k))`` with
    ``P~_jk = R_jk / sum_j R_jk`` (entropies in log base F and K). A code with no importance
    has weight 0; a factor with no importance at all has completeness 0 (uniform).
    """
    r = np.asarray(importance, dtype=np.float64)
    codes, factors = r.shape
    total = r.sum()
    if total <= 0:
        return 0.0, 0.0
    row, col = r.sum(1), r.sum(0)
    p = r / np.where(row > 0, row, 1)[:, None]
    rho = row / total
    d = float((rho * (1 - _entropy(p, factors, 1))).sum()) if factors > 1 else 1.0
    q = np.where(col > 0, r / np.where(col > 0, col, 1), 1.0 / codes)
    c = float((1 - _entropy(q, codes, 0)).mean()) if codes > 1 else 1.0
    return d, c


def _forest(codes: np.ndarray, target: np.ndarray, rng: np.random.Generator):
    """DCI's random forest for one factor, fitted (seeded from ``rng``)."""
    from sklearn.ensemble import RandomForestClassifier

    forest = RandomForestClassifier(n_estimators=DCI_TREES, max_features=None, max_depth=DCI_DEPTH,
                                    random_state=int(rng.integers(2 ** 31)), n_jobs=1)
    return forest.fit(codes, target)


def dci(codes: np.ndarray, factors: np.ndarray, rng: np.random.Generator,
        train_fraction: float = DCI_TRAIN_FRACTION, boot: np.random.Generator | None = None,
        resamples: dict | None = None) -> dict:
    """DCI (Eastwood & Williams 2018): one random forest per factor predicts the
    factor's index from the codes, and R_jk is the forest's impurity-based importance of
    code j for factor k; disentanglement and completeness come from R
    (``dci_from_importance``). Informativeness is the mean over factors of the held-out
    accuracy of the better of that forest and a linear classifier (multinomial logistic
    regression on standardised codes): axis-aligned trees fit from a few thousand points
    cannot draw the oblique boundaries a rotated code needs (a rotation of the true factors
    drops the forests to about half the accuracy), while a linear classifier misses codes
    that are nonlinear in the factors; E&W measure informativeness with both a Lasso and a
    random forest. Chance is about the majority-class rate of each factor.

    Given the generator ``boot``, also the bootstrap replicates (``replicates``: score ->
    (B,) values; B from ``resamples``, default ``RESAMPLES``): R depends on the training rows
    alone, so for disentanglement and completeness the training rows are resampled and the
    forests fitted again; for informativeness the fitted forests and linear classifiers are
    kept and the held-out rows resampled, the better of the two taken per factor on each
    resample."""
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    n_train = int(round(train_fraction * len(codes)))
    order = rng.permutation(len(codes))
    train, test = order[:n_train], order[n_train:]
    importance = np.zeros((codes.shape[1], factors.shape[1]))
    forest_hits, linear_hits = [], []  # per factor: (n_test,) bool, right or wrong
    for k in range(factors.shape[1]):
        forest = _forest(codes[train], factors[train, k], rng)
        importance[:, k] = forest.feature_importances_
        forest_hits.append(forest.predict(codes[test]) == factors[test, k])
        linear = make_pipeline(StandardScaler(), LogisticRegression(
            C=DCI_LINEAR_C, solver="newton-cholesky", max_iter=100))
        with warnings.catch_warnings():  # separable factors: the fit stops at max_iter
            warnings.simplefilter("ignore", ConvergenceWarning)
            linear.fit(codes[train], factors[train, k])
        linear_hits.append(linear.predict(codes[test]) == factors[test, k])
    forest_acc = [float(h.mean()) for h in forest_hits]
    linear_acc = [float(h.mean()) for h in linear_hits]
    d, c = dci_from_importance(importance)
    best = np.maximum(forest_acc, linear_acc)
    out = {"dci_disentanglement": d, "dci_completeness": c,
           "dci_informativeness": float(best.mean()), "importance": importance,
           "forest_accuracy": forest_acc, "linear_accuracy": linear_acc}
    if boot is not None:
        counts = {**RESAMPLES, **(resamples or {})}
        f = factors.shape[1]
        means = resampled_means(np.array(forest_hits + linear_hits), boot,
                                counts["dci_informativeness"])  # (B, 2F)
        refits = []
        for _ in range(max(counts["dci_disentanglement"], counts["dci_completeness"])):
            rows = train[boot.integers(0, n_train, n_train)]
            r = np.stack([_forest(codes[rows], factors[rows, k], boot).feature_importances_
                          for k in range(f)], axis=1)  # (K, F)
            refits.append(dci_from_importance(r))
        refits = np.array(refits)  # (B, 2): disentanglement, completeness
        out["replicates"] = {"dci_disentanglement": refits[:counts["dci_disentanglement"], 0],
                             "dci_completeness": refits[:counts["dci_completeness"], 1],
                             "dci_informativeness": np.maximum(means[:, :f], means[:, f:]).mean(1)}
    return out


def majority_rates(factors: np.ndarray) -> np.ndarray:
    """The share of each factor's most common value in a sample (an informativeness chance)."""
    return np.array([np.bincount(factors[:, k]).max() / len(factors)
                     for k in range(factors.shape[1])])


def _checked(codes, factors: np.ndarray) -> np.ndarray:
    """``codes`` as a float64 (N, K) array, refused when malformed or not finite."""
    codes = np.asarray(codes, dtype=np.float64)
    if codes.ndim != 2 or len(codes) != len(factors):
        raise ValueError(f"represent must return (N, K) codes for (N, 5) factors, got {codes.shape}")
    if not np.isfinite(codes).all():
        raise RunError("the codes contain NaN or infinite values; the model cannot be scored")
    return codes


def score(represent: Represent, seed: int = 0, intervals: bool = True,
          resamples: dict | None = None) -> dict:
    """Every metric of the representation function ``represent`` (see module docstring), each
    with its 95% bootstrap interval (``<score>_ci``; ``intervals`` off: the scores alone) from
    ``resamples`` resamples (default ``RESAMPLES``).

    One uniform sample of ``N_SAMPLE`` factor rows feeds MIG, the MI matrix and DCI; the
    beta-VAE and FactorVAE metrics draw from a second uniform sample, the pool of ``POOL``
    rows. Each metric has its own generator spawned from ``seed``, and so does each interval,
    so the result is a function of ``represent`` and ``seed`` alone and the scores do not
    depend on whether the intervals are computed.
    """
    rngs = np.random.default_rng(seed).spawn(6)
    counts = {**RESAMPLES, **(resamples or {})}
    boot = rngs[5].spawn(4) if intervals else [None] * 4
    factors = shapes.sample_factors(N_SAMPLE, rngs[0])
    codes = _checked(represent(factors), factors)
    pool_factors = shapes.sample_factors(POOL, rngs[4])
    pool_codes = _checked(represent(pool_factors), pool_factors)
    mig_score, mi = mig(codes, factors)
    dci_scores = dci(codes, factors, rngs[1], boot=boot[0], resamples=counts)
    majority = majority_rates(factors)
    beta, beta_reps = _beta_vae(pool_factors, pool_codes, rngs[2], boot=boot[1], count=counts["beta_vae"])
    factor, factor_reps = _factor_vae(pool_factors, pool_codes, rngs[3], boot=boot[2],
                                      count=counts["factor_vae"])
    out = {
        "version": VERSION,
        "beta_vae": beta,
        "factor_vae": factor,
        "mig": mig_score,
        "dci_disentanglement": dci_scores["dci_disentanglement"],
        "dci_completeness": dci_scores["dci_completeness"],
        "dci_informativeness": dci_scores["dci_informativeness"],
        "mi_matrix": mi.tolist(),
        "dci_importance": dci_scores["importance"].tolist(),
        "dci_accuracy": {"forest": dci_scores["forest_accuracy"],
                         "linear": dci_scores["linear_accuracy"]},
        "latent_dim": int(codes.shape[1]),
        "factors": list(FACTORS),
        "chance": {"beta_vae": 1 / len(FACTORS), "factor_vae": 1 / len(FACTORS), "mig": 0.0,
                   "dci_disentanglement": 0.0, "dci_completeness": 0.0,
                   "dci_informativeness": float(majority.mean())},
        "samples": {"sample": N_SAMPLE, "pool": POOL,
                    "beta_vae": {"points": BETA_VAE_TRAIN + BETA_VAE_EVAL, "pairs": BETA_VAE_PAIRS},
                    "factor_vae": {"votes": FACTOR_VAE_TRAIN + FACTOR_VAE_EVAL,
                                   "batch": FACTOR_VAE_BATCH}},
    }
    if intervals:
        reps = {"beta_vae": beta_reps, "factor_vae": factor_reps,
                "mig": mig_replicates(codes, factors, boot[3], counts["mig"]), **dci_scores["replicates"]}
        out.update({interval_key(name): percentile_interval(reps[name], out[name]) for name in SCORES})
        out["intervals"] = {"level": LEVEL, "resamples": {name: len(reps[name]) for name in SCORES},
                            "shift": {name: shift(reps[name], out[name]) for name in SCORES}}
    return out


def score_encoder(name: str, seed: int = 0, intervals: bool = True) -> dict:
    """``score`` of the reference encoder ``name`` (ground-truth, mixed or noise)."""
    return {"encoder": name, **score(reference_encoder(name), seed=seed, intervals=intervals)}


def scorable(config: dict) -> bool:
    """True if the run of ``config`` (its ``config.json``) can be scored: trained on shapes."""
    return is_shapes(config["dataset"])


def scorable_run(run, runs_dir=None):
    """The handle of the run ``run`` (a RunRef, a run folder, or a run id confined to
    ``runs_dir``), refused unless it can be scored."""
    from aelab.runs.refs import RunRef

    run = RunRef.checked_if_text(run, runs_dir)
    if not scorable(run.config):
        raise RunError(f"disentanglement metrics need a run trained on the shapes dataset; run "
                       f"{run.run_id} was trained on {run.config['dataset']}")
    return run


def score_run(run, runs_dir=None, seed: int = 0, device: str = "cpu",
              unpruned: bool = False) -> dict:
    """``score`` of a trained run (see ``scorable_run``), which must have been trained on
    shapes; ``unpruned``: with every pruned latent given back its encoder output (to see
    what pruning changed; ``aelab.models.vae``)."""
    run = scorable_run(run, runs_dir)
    config = run.config
    model = run.load_model(device)
    if unpruned:
        model.unprune()
    return {"run": run.run_id, "variant": config["variant"], "dataset": config["dataset"],
            "pruned_latents": model.pruned_latents(),
            **score(model_encoder(model), seed=seed)}


class LiveMIG:
    """MIG of a model being trained, every ``every`` seconds of training, on a fixed sample of
    ``LIVE_MIG_SAMPLE`` sprites of a shapes dataset: the trainer (in the worker process) calls
    it as its ``live_mig`` callback and writes the score to metrics.jsonl, so a page only
    plots it. Off (``every`` = 0) for datasets without known factors."""

    def __init__(self, dataset: str, every: float):
        self.every = every if is_shapes(dataset) else 0.0
        self.last = -1.0
        self.factors = shapes.sample_factors(LIVE_MIG_SAMPLE, np.random.default_rng(0))

    def due(self, training_seconds: float) -> bool:
        """Whether ``every`` seconds of training have passed since the last score."""
        return self.every > 0 and training_seconds - max(self.last, 0.0) >= self.every

    def score(self, model, training_seconds: float) -> float | None:
        """MIG of the model a run stopped now would save (``model.stopped_copy()``), or None
        when off or already scored at this time."""
        if not self.every or training_seconds == self.last:
            return None
        self.last = training_seconds
        return mig(model_encoder(model.stopped_copy())(self.factors), self.factors)[0]

    def __call__(self, model, training_seconds: float, final: bool = False) -> float | None:
        """The trainer's callback: the score when due (always when ``final``, the model a run
        ends with), else None."""
        return self.score(model, training_seconds) if final or self.due(training_seconds) else None


LIVE_MIG_SAMPLE = 2000  # sprites scored for the live MIG: small, as it runs inside training


SCORES = ("beta_vae", "factor_vae", "mig", "dci_disentanglement", "dci_completeness",
          "dci_informativeness")


def format_scores(scores: dict) -> str:
    """The plain-text report of ``score_run`` / ``score_encoder``: scores beside their chance
    levels and intervals, then the MI matrix with the factors as columns."""
    who = (f"run {scores['run']} ({scores['variant']})" if "run" in scores
           else f"reference encoder {scores['encoder']}")
    who += f", {scores['latent_dim']} code dimensions"
    if pruned := scores.get("pruned_latents"):
        who += f"; {len(pruned)} pruned (pinned to the prior): " + ", ".join(f"z{j}" for j in pruned)
    lines = [who, "",
             f"{'metric':<22}{'score':>7}{'chance':>8}   95% interval"]
    for name in SCORES:
        ci = scores.get(interval_key(name))
        shown = f"[{ci[0]:.3f}, {ci[1]:.3f}]" if ci is not None else "not computed"
        lines.append(f"{name:<22}{scores[name]:>7.3f}{scores['chance'][name]:>8.3f}   {shown}")
    if "intervals" in scores:
        counts = scores["intervals"]["resamples"]
        lines += ["", "intervals: bootstrap over the evaluation samples, "
                  + ", ".join(f"{n} resamples for {name}" for name, n in counts.items())]
    factors = scores["factors"]
    widths = [max(len(f), 5) + 2 for f in factors]
    lines += ["", "mutual information I(z_j; v_k), nats",
              f"{'code':<6}" + "".join(f"{f:>{w}}" for f, w in zip(factors, widths))]
    lines += [f"{'z' + str(j):<6}" + "".join(f"{v:>{w}.3f}" for v, w in zip(row, widths))
              for j, row in enumerate(scores["mi_matrix"])]
    return "\n".join(lines)
