"""A direct implementation of disentanglement_lib's beta-VAE and FactorVAE metrics
(google-research/disentanglement_lib, evaluation/metrics/beta_vae.py and factor_vae.py,
with the sizes of its gin configs), written independently of ``aelab.metrics.disentanglement`` to check
it: every observation is drawn afresh, one point or vote at a time, as there.

A representation function maps factor index rows (N, 5) to codes (N, K), as in aelab.
"""
import numpy as np
from sklearn.linear_model import LogisticRegression

SIZES = (3, 6, 40, 32, 32)  # dSprites: shape, scale, orientation, pos_x, pos_y


def sample_factors(n: int, rs: np.random.RandomState) -> np.ndarray:
    """``n`` rows drawn uniformly from the factor grid."""
    return np.stack([rs.randint(size, size=n) for size in SIZES], axis=1)


def beta_vae(represent, rs: np.random.RandomState, batch_size: int = 64,
             num_train: int = 10_000, num_eval: int = 5_000) -> float:
    """``compute_beta_vae_sklearn``: eval accuracy of a logistic regression predicting the
    fixed factor from the mean absolute code difference over ``batch_size`` pairs."""
    def points(n):
        features, labels = [], []
        for _ in range(n):
            index = rs.randint(len(SIZES))
            factors1, factors2 = sample_factors(batch_size, rs), sample_factors(batch_size, rs)
            factors2[:, index] = factors1[:, index]
            features.append(np.mean(np.abs(represent(factors1) - represent(factors2)), axis=0))
            labels.append(index)
        return np.array(features), np.array(labels)

    model = LogisticRegression(random_state=rs)
    model.fit(*points(num_train))
    return float(model.score(*points(num_eval)))


def factor_vae(represent, rs: np.random.RandomState, batch_size: int = 64,
               num_train: int = 10_000, num_eval: int = 5_000,
               num_variance_estimate: int = 10_000, threshold: float = 0.05) -> float:
    """``compute_factor_vae``: eval accuracy of the majority-vote classifier from the
    dimension of least normalised variance to the fixed factor (``prune_dims.threshold``
    0.05 as in its configs)."""
    global_variances = np.var(represent(sample_factors(num_variance_estimate, rs)), axis=0, ddof=1)
    active = np.sqrt(global_variances) >= threshold

    def votes(n):
        out = np.zeros((len(SIZES), len(global_variances)), dtype=np.int64)
        for _ in range(n):
            index = rs.randint(len(SIZES))
            factors = sample_factors(batch_size, rs)
            factors[:, index] = factors[0, index]
            local = np.var(represent(factors), axis=0, ddof=1)
            out[index, np.argmin(local[active] / global_variances[active])] += 1
        return out

    train = votes(num_train)
    classifier = np.argmax(train, axis=0)
    columns = np.arange(train.shape[1])
    evaluation = votes(num_eval)
    return float(evaluation[classifier, columns].sum() / evaluation.sum())
