"""The model contract, checked for every registered variant."""
import pytest
import torch
from conftest import VARIANTS, small_config

from aelab.models import build_model
from aelab.runs.folder import atomic_write_tensors, load_state_checked, read_tensors


def make(variant, seed=0, **overrides):
    torch.manual_seed(seed)
    return build_model(small_config(variant, **overrides))


@pytest.mark.parametrize("variant", VARIANTS)
def test_shapes_and_finite_loss(variant, batch):
    x, y = batch
    model = make(variant).train()
    out = model(x, y)
    assert out.recon.shape == x.shape
    assert out.code.shape == (len(x), 6)
    assert model.encode(x, y).shape == (len(x), 6)
    assert model.decode(out.code, y).shape == x.shape
    total, terms = model.loss(x, out)
    assert total.ndim == 0 and torch.isfinite(total)
    assert "recon" in terms and all(torch.isfinite(v) for v in terms.values())


@pytest.mark.parametrize("variant", VARIANTS)
def test_gradients_reach_every_parameter(variant, batch):
    x, y = batch
    model = make(variant).train()
    total, _ = model.loss(x, model(x, y))
    total.backward()
    for name, p in model.named_parameters():
        assert p.grad is not None, f"{name} got no gradient"
        assert p.grad.abs().sum() > 0, f"{name} got a zero gradient"


@pytest.mark.parametrize("variant", VARIANTS)
def test_save_load_round_trip(variant, batch, tmp_path):
    x, y = batch
    model = make(variant, seed=1).eval()
    atomic_write_tensors(tmp_path / "w.safetensors", model.state_dict())
    loaded = make(variant, seed=2).eval()
    assert not torch.equal(loaded.encode(x, y), model.encode(x, y))
    tensors, _ = read_tensors(tmp_path / "w.safetensors")
    load_state_checked(loaded, tensors, "weights")
    assert torch.equal(loaded.encode(x, y), model.encode(x, y))
    assert torch.equal(loaded.reconstruct(x, y), model.reconstruct(x, y))


@pytest.mark.parametrize("variant", VARIANTS)
def test_overfitting_64_samples_lowers_the_loss(variant, batch):
    x, y = batch
    model = make(variant).train()
    optimizer = torch.optim.Adam(model.trainable_parameters(), lr=3e-3)
    torch.manual_seed(0)
    losses, recons = [], []
    for step in range(150):  # as the trainer does it
        model.start_step(step, 150)
        out = model(x, y)
        total, terms = model.loss(x, out)
        optimizer.zero_grad()
        total.backward()
        optimizer.step()
        model.after_step(x, out)
        losses.append(total.item())
        recons.append(terms["recon"].item())
    # the reconstruction error falls by a fifth; the whole loss falls too (beta-TCVAE's
    # minibatch estimate of the total correlation is nearly constant on 64 images)
    assert sum(recons[-10:]) / 10 < 0.8 * sum(recons[:10]) / 10
    assert sum(losses[-10:]) / 10 < 0.95 * sum(losses[:10]) / 10


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("shape,hidden", [((1, 28, 28), "8,16"), ((3, 28, 28), "8,16"),
                                          ((1, 64, 64), "8,8,16,16"), ((3, 64, 64), "8,16")])
def test_conv_arch_for_28_and_64_pixel_images(variant, shape, hidden):
    model = build_model(small_config(variant, arch="conv", hidden=hidden, input_shape=shape))
    x = torch.rand(4, *shape)  # an even batch: Ada-GVAE trains on pairs
    y = torch.tensor([0, 1, 2, 0])
    out = model(x, y)
    assert out.recon.shape == x.shape
    assert torch.isfinite(model.loss(x, out)[0])


def test_mlp_default_and_conv_default_hidden_sizes():
    assert small_config("ae", hidden="").hidden == (512, 256)
    assert small_config("ae", hidden="", arch="conv").hidden == (32, 64)


def test_overcomplete_code_is_allowed_and_reported():
    config = small_config("ae", latent_dim=100)  # 100 > 8*8 = 64 inputs
    assert config.overcomplete
    assert not small_config("ae").overcomplete
    model = build_model(config)
    assert model.encode(torch.rand(2, 1, 8, 8)).shape == (2, 100)


@pytest.mark.parametrize("hidden", ["", "40", "48,24,12"])  # the default 512,256; one layer; three
def test_the_contractive_closed_form_is_the_autograd_jacobian_of_the_mlp_encoder(hidden):
    from aelab.models.losses import jacobian_frobenius_sq, relu_mlp_jacobian_frobenius_sq
    model = make("contractive", hidden=hidden, latent_dim=16)
    layers = model.encoder.relu_mlp_layers()
    assert len(layers) == len(model.config.hidden) + 1
    x = torch.randn(32, 1, 8, 8)  # random inputs: any pattern of active relu units
    fast = relu_mlp_jacobian_frobenius_sq(layers, x.flatten(1))
    exact = jacobian_frobenius_sq(model.encode, x)
    torch.testing.assert_close(fast, exact.detach(), rtol=1e-4, atol=0)
    # and so is its gradient (the penalty's own backward; autograd's is a double backward)
    params = list(model.encoder.parameters())
    grads = [[torch.zeros_like(p) if g is None else g  # the biases: no part of J
              for p, g in zip(params, torch.autograd.grad(f.mean(), params, allow_unused=True))]
             for f in (fast, exact)]
    assert sum(g.abs().sum() for g in grads[0]) > 0
    for ours, autograds in zip(*grads):
        torch.testing.assert_close(ours, autograds, rtol=1e-4, atol=1e-6)
    _, terms = model.loss(x, model(x))  # the model's loss takes the closed form
    torch.testing.assert_close(terms["contractive"], exact.mean().detach(), rtol=1e-4, atol=0)


@pytest.mark.parametrize("variant,overrides", [("contractive", {"arch": "conv", "hidden": "4,8"}),
                                               ("cvae", {})])
def test_encoders_without_the_closed_form_say_so(variant, overrides):
    # a conv net, or an encoder whose head also sees the label: the generic autograd Jacobian
    assert make(variant, **overrides).encoder.relu_mlp_layers() is None
