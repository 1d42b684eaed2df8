"""The fold path of ImageConvTranspose2d computes torch's transposed convolution."""
import pytest
import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from aelab.nn import Decoder, ImageConvTranspose2d


@pytest.mark.parametrize("c_in,c_out,side,channels_last", [(32, 1, 16, True), (8, 3, 5, False),
                                                            (4, 2, 7, True)])
def test_fold_path_equals_torchs_transposed_convolution(c_in, c_out, side, channels_last):
    torch.manual_seed(0)
    layer = ImageConvTranspose2d(c_in, c_out, kernel_size=4, stride=2, padding=1)
    x = torch.randn(3, c_in, side, side)
    if channels_last:
        layer, x = layer.to(memory_format=torch.channels_last), x.contiguous(memory_format=torch.channels_last)
    x.requires_grad_(True)
    ours = layer(x)
    theirs = F.conv_transpose2d(x, layer.weight, layer.bias, stride=2, padding=1)
    assert ours.shape == theirs.shape == (3, c_out, 2 * side, 2 * side)
    torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-5)
    grad = torch.randn_like(ours)
    mine = torch.autograd.grad(ours, (x, layer.weight, layer.bias), grad)
    torch_ = torch.autograd.grad(theirs, (x, layer.weight, layer.bias), grad)
    for a, b in zip(mine, torch_):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)


def test_fold_path_counts_the_same_flops_and_keeps_the_state_dict():
    layer = ImageConvTranspose2d(32, 1, kernel_size=4, stride=2, padding=1)
    plain = torch.nn.ConvTranspose2d(32, 1, kernel_size=4, stride=2, padding=1)
    assert layer.state_dict().keys() == plain.state_dict().keys()
    plain.load_state_dict(layer.state_dict())
    x = torch.randn(2, 32, 8, 8, requires_grad=True)
    counts = []
    for module in (layer, plain):
        with FlopCounterMode(display=False) as counter:
            module(x).sum().backward()
        counts.append(counter.get_total_flops())
    assert counts[0] == counts[1] > 0


def test_the_decoder_uses_it_only_for_the_image_layer():
    decoder = Decoder("conv", (1, 32, 32), (32, 64), latent_dim=4)
    transposed = [m for m in decoder.modules() if isinstance(m, torch.nn.ConvTranspose2d)]
    assert [type(m) is ImageConvTranspose2d for m in transposed] == [True, True]
    assert [m.out_channels for m in transposed] == [32, 1]  # 32 channels take torch's path


def test_a_wide_linear_layer_has_torchs_values_gradients_and_flop_count():
    from aelab.nn import DecoderLinear
    torch.manual_seed(0)
    layer = DecoderLinear(10, 1024)
    plain = torch.nn.Linear(10, 1024)
    plain.load_state_dict(layer.state_dict())
    grad = torch.randn(6, 1024)
    counts, results = [], []
    for module in (layer, plain):
        x = torch.randn(6, 10, generator=torch.Generator().manual_seed(1), requires_grad=True)
        with FlopCounterMode(display=False) as counter:
            out = module(x)
            out.backward(grad)
        counts.append(counter.get_total_flops())
        results.append((out, x.grad, module.weight.grad, module.bias.grad))
    assert counts[0] == counts[1] > 0
    for ours, torchs in zip(*results):
        torch.testing.assert_close(ours, torchs, rtol=1e-5, atol=1e-5)
    assert results[0][2].is_contiguous()  # the fused Adam walks gradients as flat arrays
    assert layer(x).grad_fn.name() != plain(x).grad_fn.name()  # it took the wide path


def test_a_conv_decoder_takes_the_wide_path_from_its_code():
    decoder = Decoder("conv", (1, 64, 64), (32, 64), latent_dim=10)
    out = decoder(torch.randn(2, 10))
    assert out.shape == (2, 1, 64, 64)
    names = set()
    stack = [out.grad_fn]
    while stack:
        node = stack.pop()
        if node is not None:
            names.add(node.name())
            stack += [n for n, _ in node.next_functions]
    assert any("WideLinear" in name for name in names)


def test_a_wide_encoder_layer_keeps_the_contractive_penalty_differentiable():
    # the wide path has no double backward, so encoders keep torch's Linear
    from aelab.losses import jacobian_frobenius_sq
    from aelab.registry import build_model
    from conftest import small_config
    model = build_model(small_config("contractive", hidden="4096"))  # 64 inputs -> 4096
    jacobian_frobenius_sq(model.encode, torch.rand(4, 1, 8, 8)).mean().backward()
    assert model.encoder.body[1].weight.grad.abs().sum() > 0
