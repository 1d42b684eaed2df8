"""The math of each variant against an independent computation."""
import math

import pytest
import torch
import torch.nn.functional as F
from conftest import small_config

from aelab.models import build_model
from aelab.models.denoising import add_noise
from aelab.models.ksparse import keep_top_k
from aelab.models.losses import BernoulliNLL, bernoulli_kl, gaussian_kl, jacobian_frobenius_sq


@pytest.mark.parametrize("binary", [True, False])
def test_bernoulli_nll_is_torchs_bce_with_identical_gradients(binary):
    torch.manual_seed(0)
    logits = torch.cat([torch.randn(8, 1, 28, 28) * 8, torch.full((1, 1, 28, 28), 100.0),
                        torch.full((1, 1, 28, 28), -100.0)])  # confident pixels both ways
    target = (torch.rand_like(logits) > 0.5).float() if binary else torch.rand_like(logits)
    ours_l, ours_x = logits.clone().requires_grad_(), target.clone().requires_grad_()
    torch_l, torch_x = logits.clone().requires_grad_(), target.clone().requires_grad_()
    ours = BernoulliNLL.apply(ours_l, ours_x)
    theirs = F.binary_cross_entropy_with_logits(torch_l, torch_x, reduction="none")
    # the same function up to float32 rounding of terms as large as |logit|
    assert ((ours - theirs).abs() <= 1e-6 * (logits.abs() + 1)).all()
    grad = torch.randn_like(ours)
    ours.backward(grad)
    theirs.backward(grad)
    assert torch.equal(ours_l.grad, torch_l.grad) and torch.equal(ours_x.grad, torch_x.grad)


def test_closed_form_kl_matches_monte_carlo():
    torch.manual_seed(0)
    mu, logvar = torch.randn(4, 3), torch.randn(4, 3) * 0.5
    closed = gaussian_kl(mu, logvar).sum(1)
    q = torch.distributions.Normal(mu, (0.5 * logvar).exp())
    p = torch.distributions.Normal(torch.zeros_like(mu), torch.ones_like(mu))
    z = q.sample((200_000,))
    monte_carlo = (q.log_prob(z) - p.log_prob(z)).sum(-1).mean(0)
    assert torch.allclose(closed, monte_carlo, rtol=0.02, atol=0.01)


@pytest.mark.parametrize("arch,hidden", [("mlp", "16,12"), ("conv", "4,8")])
def test_contractive_penalty_equals_brute_force_jacobian(arch, hidden, batch):
    x = batch[0][:5].double()
    torch.manual_seed(0)
    model = build_model(small_config("contractive", arch=arch, hidden=hidden)).double()
    exact = jacobian_frobenius_sq(model.encode, x)
    for i in range(len(x)):
        jac = torch.autograd.functional.jacobian(lambda v: model.encode(v[None])[0], x[i])
        assert torch.allclose(exact[i], jac.pow(2).sum(), rtol=1e-9)
    _, terms = model.loss(x, model(x))
    assert torch.allclose(terms["contractive"], exact.mean())


def test_contractive_penalty_is_differentiable(batch):
    model = build_model(small_config("contractive"))
    penalty = jacobian_frobenius_sq(model.encode, batch[0]).mean()
    penalty.backward()
    assert model.encoder.body[1].weight.grad.abs().sum() > 0


def test_ksparse_keeps_exactly_k_and_no_gradient_reaches_the_others(batch):
    x = batch[0]
    torch.manual_seed(0)  # the same model whichever tests ran before in this process
    model = build_model(small_config("ksparse", latent_dim=8, k=3)).train()
    dense = model.encoder(x)  # (B, 8) linear code before sparsification
    dense.retain_grad()
    z = keep_top_k(dense, 3)
    assert ((z != 0).sum(1) == 3).all()
    kept = z != 0
    assert torch.equal(z[kept], dense[kept])  # kept units pass through unchanged
    top = dense.topk(3, 1)  # the kept units are the 3 largest (a kept unit may be negative)
    assert torch.equal(z.gather(1, top.indices), top.values)
    z.pow(2).sum().backward()
    assert (dense.grad[~kept] == 0).all() and (dense.grad[kept] != 0).all()
    assert ((model.encode(x) != 0).sum(1) == 3).all()


def test_ksparse_schedule_and_test_time_multiplier():
    model = build_model(small_config("ksparse", latent_dim=8, k=2, k_start=8,
                                     k_test_multiplier=2.0))
    model.train()
    model.start_step(0, 100)
    assert model.current_k() == 8
    model.start_step(25, 100)
    assert model.current_k() == 5
    model.start_step(50, 100)
    assert model.current_k() == 2
    model.start_step(99, 100)
    assert model.current_k() == 2
    model.eval()
    assert model.current_k() == 4
    assert ((model.encode(torch.rand(5, 1, 8, 8)) != 0).sum(1) == 4).all()


def test_sparse_penalty_matches_the_survey_formula(batch):
    x = batch[0]
    model = build_model(small_config("sparse", rho=0.1, sparsity_weight=2.0))
    out = model(x)
    _, terms = model.loss(x, out)
    rho_hat = torch.sigmoid(model.encoder(x)).mean(0)
    expected = sum(0.1 * math.log(0.1 / r) + 0.9 * math.log(0.9 / (1 - r)) for r in rho_hat.tolist())
    assert terms["sparsity"].item() == pytest.approx(expected, rel=1e-5)
    total, terms = model.loss(x, out)
    assert total.item() == pytest.approx(terms["recon"].item() + 2.0 * expected, rel=1e-5)
    assert bernoulli_kl(0.3, torch.tensor(0.3)).abs() < 1e-7


def test_betavae_with_beta_one_equals_vae(batch):
    x, _ = batch
    torch.manual_seed(3)
    vae = build_model(small_config("vae"))
    torch.manual_seed(3)
    beta = build_model(small_config("betavae", beta=1.0))
    for model in (vae, beta):
        model.train()
    torch.manual_seed(5)
    loss_vae, terms_vae = vae.loss(x, vae(x))
    torch.manual_seed(5)
    loss_beta, terms_beta = beta.loss(x, beta(x))
    assert torch.equal(loss_vae, loss_beta)
    assert torch.equal(terms_vae["kl"], terms_beta["kl"])


def test_betavae_weights_kl_and_controlled_capacity(batch):
    x, _ = batch
    model = build_model(small_config("betavae", beta=4.0)).eval()
    out = model(x)
    total, terms = model.loss(x, out)
    assert total.item() == pytest.approx((terms["recon"] + 4 * terms["kl"]).item(), rel=1e-6)
    capped = build_model(small_config("betavae", capacity_max=20.0, capacity_steps=100, gamma=10.0))
    capped.load_state_dict(model.state_dict())
    capped.eval()
    capped.start_step(50, 1000)  # C = 10 nats halfway through the schedule
    total, terms = capped.loss(x, capped(x))
    expected = terms["recon"] + 10.0 * (terms["kl"] - 10.0).abs()
    assert total.item() == pytest.approx(expected.item(), rel=1e-6)
    capped.start_step(500, 1000)
    assert capped.capacity() == 20.0


def test_changing_the_label_changes_a_cvae_decoding():
    model = build_model(small_config("cvae")).eval()
    z = torch.randn(4, 6)
    a = model.decode(z, torch.zeros(4, dtype=torch.long))
    b = model.decode(z, torch.full((4,), 7))
    assert (a - b).abs().max() > 1e-4
    with pytest.raises(ValueError, match="labels"):
        model.decode(z)


def test_vae_uses_the_posterior_mean_in_eval_and_samples_in_training(batch):
    x, _ = batch
    model = build_model(small_config("vae"))
    model.eval()
    out = model(x)
    assert torch.equal(out.code, out.extras["mu"])
    model.train()
    out = model(x)
    assert not torch.equal(out.code, out.extras["mu"])


@pytest.mark.parametrize("noise", ["gaussian", "masking", "salt_pepper"])
def test_denoising_corrupts_only_in_training(noise, batch):
    x = batch[0]
    model = build_model(small_config("denoising", noise=noise, noise_level=0.5))
    model.train()
    assert not torch.equal(model.corrupt(x), x)
    model.eval()
    torch.manual_seed(0)
    eval_out = model(x).recon
    torch.manual_seed(1)
    assert torch.equal(model(x).recon, eval_out)
    noisy = add_noise(x, noise, 0.5)
    assert noisy.min() >= 0 and noisy.max() <= 1


def test_noise_levels_do_what_they_say():
    x = torch.full((1, 1, 100, 100), 0.5)
    masked = add_noise(x, "masking", 0.3)
    assert (masked == 0).float().mean().item() == pytest.approx(0.3, abs=0.03)
    salted = add_noise(x, "salt_pepper", 0.2)
    assert (salted != 0.5).float().mean().item() == pytest.approx(0.2, abs=0.03)
    gauss = add_noise(x, "gaussian", 0.1)
    assert (gauss - x).std().item() == pytest.approx(0.1, abs=0.01)
    assert torch.equal(add_noise(x, "masking", 0.0), x)
