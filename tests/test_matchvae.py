"""Match pairing (Shu et al. 2020) on the Ada-GVAE loss: told which factor moved, only that
factor's latent may differ across a pair. The loss against the formula, the trainer telling
it, and the settings it refuses."""
import numpy as np
import pytest
import torch

from aelab import shapes
from aelab.errors import ConfigError
from aelab.models.matchvae import MatchVAE
from aelab.registry import build_model
from aelab.train import Trainer, prepare_run, validate_run

from conftest import small_config
from test_adagvae import numpy_kl
from test_levers import bce, numpy_of, small_pool  # noqa: F401  (small_pool: a fixture)


def test_matchvae_shares_every_latent_but_the_moved_factors(batch):
    x, _ = batch  # rows i and i + 32 form the pairs
    n = len(x) // 2
    torch.manual_seed(0)
    model = build_model(small_config("matchvae", latent_dim=7, beta=2.0)).train()
    moved = np.zeros((n, 5), dtype=bool)
    moved[np.arange(n), np.arange(n) % 5] = True  # pair i differs in factor i mod 5
    moved[0, 4] = True  # and pair 0 in two factors
    model.start_pairs(torch.from_numpy(moved))
    mu, logvar = numpy_of(*model.posterior(x))
    out = model(x)
    total, terms = model.loss(x, out)
    # latent j < 5 belongs to factor j and is kept apart only where it moved; 5 and 6 are shared
    shared = np.concatenate([~moved, np.ones((n, 2), dtype=bool)], axis=1)
    var = np.exp(logvar)
    m1, m2, v1, v2 = mu[:n], mu[n:], var[:n], var[n:]
    avg_m, avg_v = 0.5 * (m1 + m2), 0.5 * (v1 + v2)
    want_mu = np.concatenate([np.where(shared, avg_m, m1), np.where(shared, avg_m, m2)])
    want_var = np.concatenate([np.where(shared, avg_v, v1), np.where(shared, avg_v, v2)])
    got_mu, got_logvar, logits = numpy_of(out.extras["mu"], out.extras["logvar"], out.recon)
    np.testing.assert_allclose(got_mu, want_mu, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.exp(got_logvar), want_var, rtol=1e-5, atol=1e-6)
    assert not np.allclose(got_mu[:n, :5], got_mu[n:, :5])  # the moved latents stay apart
    kl = numpy_kl(want_mu, want_var, 0.0, 1.0).sum(1)  # Locatello et al. 2020, eq. 5
    recon = bce(logits, x.double().numpy())
    assert terms["kl"].item() == pytest.approx(kl.mean(), rel=1e-4)
    assert total.item() == pytest.approx(recon.mean() + 2.0 * kl.mean(), rel=1e-4)


def test_matchvae_must_be_told_and_needs_a_latent_per_factor(batch):
    x, _ = batch
    model = build_model(small_config("matchvae")).train()
    with pytest.raises(ConfigError, match="told which factors differ"):
        model(x)
    with pytest.raises(ConfigError, match="latent_dim must be at least 5, got 4"):
        small_config("matchvae", latent_dim=4)
    with pytest.raises(ConfigError, match="matchvae trains on pairs .* digits has none"):
        validate_run("matchvae", "digits", {"latent_dim": 6})
    eval_out = model.eval()(x[:3])  # outside training: a plain beta-VAE on single images
    assert torch.equal(eval_out.code, model.posterior(x[:3])[0])


def test_trainer_tells_matchvae_which_factors_each_pair_moved(runs_dir, small_pool, monkeypatch):
    drawn, told = [], []
    pair_factors = shapes.pair_factors

    def record_pairs(factors, rng, differing):
        drawn.append((factors, pair_factors(factors, rng, differing)))
        return drawn[-1][1]

    monkeypatch.setattr(shapes, "pair_factors", record_pairs)
    start_pairs = MatchVAE.start_pairs
    monkeypatch.setattr(MatchVAE, "start_pairs",
                        lambda self, moved: told.append(moved.clone()) or start_pairs(self, moved))
    run_dir = prepare_run("matchvae", "shapes32", {"arch": "burgess", "hidden": "4,4,4,4",
                                                   "latent_dim": 6},
                          {"epochs": 1, "batch_size": 16, "log_every": 25, "seed": 3},
                          runs_dir=runs_dir)
    assert Trainer(run_dir).run()["state"] == "done"
    assert len(told) == len(drawn) == 2000 // 16
    for (originals, partners), moved in zip(drawn, told):
        assert moved.shape == (16, 5) and (moved.sum(1) == 1).all()  # differing = 1
        np.testing.assert_array_equal(moved.numpy(), originals != partners)
