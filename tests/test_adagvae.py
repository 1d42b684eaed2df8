"""Ada-GVAE (Locatello et al. 2020): its loss against the paper's formula, the pairs the
trainer builds, and the datasets it accepts."""
import numpy as np
import pytest
import torch
from conftest import small_config
from test_levers import bce, numpy_of, small_pool  # noqa: F401  (small_pool: a fixture)

from aelab.data import shapes
from aelab.errors import ConfigError
from aelab.models import build_model
from aelab.models.adagvae import AdaGVAE, shared_latents
from aelab.training.setup import prepare_run, validate_run
from aelab.training.trainer import Trainer


def numpy_kl(m1, v1, m2, v2):
    """KL(N(m1, v1) || N(m2, v2)) elementwise."""
    return 0.5 * (np.log(v2 / v1) + (v1 + (m1 - m2) ** 2) / v2 - 1)


def test_adagvae_loss_is_locatello_et_al_adaptive_averaging(batch):
    x, _ = batch  # 64 digits: rows i and i + 32 form the pairs
    torch.manual_seed(0)
    model = build_model(small_config("adagvae", beta=3.0)).train()
    mu, logvar = numpy_of(*model.posterior(x))
    out = model(x)
    total, terms = model.loss(x, out)
    n = len(x) // 2
    var = np.exp(logvar)
    m1, m2, v1, v2 = mu[:n], mu[n:], var[:n], var[n:]
    delta = numpy_kl(m1, v1, m2, v2)  # Locatello et al. 2020, sec. 4.1
    tau = 0.5 * (delta.max(1, keepdims=True) + delta.min(1, keepdims=True))  # eq. 6
    shared = delta < tau
    assert shared.any(1).all() and (~shared).any(1).all()  # each pair keeps some, shares some
    avg_m, avg_v = 0.5 * (m1 + m2), 0.5 * (v1 + v2)
    want_mu = np.concatenate([np.where(shared, avg_m, m1), np.where(shared, avg_m, m2)])
    want_var = np.concatenate([np.where(shared, avg_v, v1), np.where(shared, avg_v, v2)])
    got_mu, got_logvar, logits = numpy_of(out.extras["mu"], out.extras["logvar"], out.recon)
    np.testing.assert_allclose(got_mu, want_mu, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.exp(got_logvar), want_var, rtol=1e-5, atol=1e-6)
    # eq. 5: the beta-VAE loss of both images under the shared posteriors (mean over images)
    kl = numpy_kl(want_mu, want_var, 0.0, 1.0).sum(1)
    recon = bce(logits, x.double().numpy())
    assert terms["kl"].item() == pytest.approx(kl.mean(), rel=1e-4)
    assert total.item() == pytest.approx(recon.mean() + 3.0 * kl.mean(), rel=1e-4)
    # the decoder saw a sample of those posteriors, not of each image's own
    eps = (numpy_of(out.code)[0] - want_mu) / np.sqrt(want_var)
    assert abs(eps.mean()) < 0.2 and 0.8 < eps.std() < 1.2


def test_shared_latents_are_the_ones_whose_posteriors_barely_differ():
    mu1 = torch.tensor([[0.0, 0.0, 0.0, 0.0]])
    mu2 = torch.tensor([[0.0, 0.1, 2.0, 3.0]])  # KLs 0, 0.005, 2, 4.5: threshold 2.25
    zeros = torch.zeros_like(mu1)
    assert shared_latents(mu1, zeros, mu2, zeros).tolist() == [[True, True, True, False]]


def test_eval_mode_is_a_plain_vae_and_an_odd_training_batch_is_refused(batch):
    x, _ = batch
    model = build_model(small_config("adagvae")).eval()
    mu, logvar = model.posterior(x[:3])
    out = model(x[:3])
    assert torch.equal(out.extras["mu"], mu) and torch.equal(out.code, mu)
    with pytest.raises(ConfigError, match="even number of images, got 3"):
        model.train()(x[:3])


@pytest.mark.parametrize("differing", [1, 2, 4])
def test_pair_factors_moves_exactly_that_many_factors_to_other_values(differing):
    factors = shapes.sample_factors(5000, np.random.default_rng(0))
    partners = shapes.pair_factors(factors, np.random.default_rng(1), differing)
    moved = partners != factors
    assert (moved.sum(1) == differing).all()
    assert (partners >= 0).all() and (partners < np.array(shapes.SIZES)).all()
    # each factor is the one that moves equally often
    np.testing.assert_allclose(moved.mean(0), differing / 5, atol=0.03)


def test_pair_factors_with_zero_draws_one_to_four_moved_factors():
    factors = shapes.sample_factors(4000, np.random.default_rng(0))
    counts = (shapes.pair_factors(factors, np.random.default_rng(1), 0) != factors).sum(1)
    assert np.bincount(counts, minlength=5)[0] == 0
    np.testing.assert_allclose(np.bincount(counts, minlength=5)[1:] / 4000, 0.25, atol=0.03)
    with pytest.raises(ValueError, match="differing must be 0"):
        shapes.pair_factors(factors, np.random.default_rng(1), 5)


def test_adagvae_needs_a_dataset_with_known_factors():
    with pytest.raises(ConfigError, match="adagvae trains on pairs .* digits has none; "
                                          "choose one of: shapes, shapes32, shapes64"):
        validate_run("adagvae", "digits", {"latent_dim": 4})


@pytest.mark.slow
def test_trainer_feeds_pairs_that_differ_in_the_configured_factors(runs_dir, small_pool,
                                                                   monkeypatch):
    drawn, batches = [], []
    pair_factors = shapes.pair_factors

    def record_pairs(factors, rng, differing):
        drawn.append((factors, pair_factors(factors, rng, differing)))
        return drawn[-1][1]

    def train_once():
        run_dir = prepare_run("adagvae", "shapes32", {"arch": "burgess", "hidden": "4,4,4,4",
                                                      "latent_dim": 4, "differing": 2},
                              {"epochs": 1, "batch_size": 16, "log_every": 25, "seed": 3},
                              runs_dir=runs_dir)
        return Trainer(run_dir).run()

    monkeypatch.setattr(shapes, "pair_factors", record_pairs)
    forward = AdaGVAE.forward
    monkeypatch.setattr(AdaGVAE, "forward", lambda self, x, y=None: (
        batches.append((x, y)) if self.training else None) or forward(self, x, y))
    status = train_once()
    steps = 2000 // 16
    assert status["state"] == "done" and status["step"] == steps == len(drawn) == len(batches)
    for (originals, partners), (xb, yb) in zip(drawn, batches):
        assert ((originals != partners).sum(1) == 2).all()  # two factors moved, three shared
        assert xb.shape == (32, 1, 32, 32)  # the 16 drawn images, then their 16 partners
        both = np.concatenate([originals, partners])
        np.testing.assert_array_equal(xb.numpy(), shapes.render(both, side=32))
        np.testing.assert_array_equal(yb.numpy(), both[:, 0])
    # the same seed draws the same pairs again (so does a resumed run: (seed, step) decide)
    train_once()
    assert all(np.array_equal(a[1], b[1]) for a, b in zip(drawn[:steps], drawn[steps:]))


def test_kl_between_gaussians_is_the_prior_kl_when_the_second_is_the_prior():
    from aelab.models.losses import gaussian_kl, gaussian_kl_between

    torch.manual_seed(0)
    mu, logvar = torch.randn(8, 5), torch.randn(8, 5)
    zeros = torch.zeros_like(mu)
    torch.testing.assert_close(gaussian_kl_between(mu, logvar, zeros, zeros), gaussian_kl(mu, logvar))
    assert gaussian_kl_between(mu, logvar, mu, logvar).abs().max() < 1e-6
