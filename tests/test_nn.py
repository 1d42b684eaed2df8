"""aelab.models.nn's CPU paths compute what torch's layers compute: the fold path of
ImageConvTranspose2d, oneDNN's Linear (values, gradients, FLOP counts, double backward)."""
import pytest
import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from aelab.models.nn import Decoder, Encoder, ImageConvTranspose2d, Linear


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


@pytest.mark.parametrize("batch,fan_in,fan_out", [(6, 10, 1024), (5, 784, 400), (7, 400, 40),
                                                   (3, 20, 400)])
def test_linear_has_torchs_values_gradients_and_flop_count(batch, fan_in, fan_out):
    # wide (a code into a decoder), an image into an encoder, a head, a decoder's first layer
    torch.manual_seed(0)
    layer = Linear(fan_in, fan_out)
    plain = torch.nn.Linear(fan_in, fan_out)
    plain.load_state_dict(layer.state_dict())
    grad = torch.randn(batch, fan_out)
    counts, results = [], []
    for module in (layer, plain):
        x = torch.randn(batch, fan_in, generator=torch.Generator().manual_seed(1),
                        requires_grad=True)
        with FlopCounterMode(display=False) as counter:
            out = module(x)
            out.backward(grad)
        counts.append(counter.get_total_flops())
        results.append((out, x.grad, module.weight.grad, module.bias.grad))
    assert counts[0] == counts[1] == 2 * 2 * batch * fan_in * fan_out + 2 * batch * fan_in * fan_out
    for ours, torchs in zip(*results):
        torch.testing.assert_close(ours, torchs, rtol=1e-5, atol=1e-5)
    assert results[0][2].is_contiguous()  # the fused Adam walks gradients as flat arrays
    assert layer(x).grad_fn.name() == "_OneDNNLinearBackward"  # it took oneDNN's kernels


def test_every_linear_layer_of_the_networks_takes_onednns_kernels_on_cpu():
    for arch, hidden in (("mlp", (400,)), ("burgess", (32, 32)), ("conv", (32, 64))):
        encoder = Encoder(arch, (1, 32, 32), hidden, out_dim=20)
        decoder = Decoder(arch, (1, 32, 32), hidden, latent_dim=10)
        linears = [m for net in (encoder, decoder) for m in net.modules()
                   if isinstance(m, torch.nn.Linear)]
        assert linears and all(type(m) is Linear for m in linears), arch
        out = decoder(encoder(torch.rand(2, 1, 32, 32))[:, :10])
        assert out.shape == (2, 1, 32, 32)
        assert "_OneDNNLinearBackward" in _graph_names(out)


def test_linear_keeps_torchs_path_off_the_fast_case():
    layer = Linear(8, 4).double()  # float64: oneDNN's kernel is float32 only
    out = layer(torch.randn(3, 8, dtype=torch.float64, requires_grad=True))
    assert out.grad_fn.name() == "AddmmBackward0"
    assert Linear(8, 4)(torch.randn(2, 3, 8)).shape == (2, 3, 4)  # batches of matrices too
    empty = torch.randn(0, 8, requires_grad=True)  # oneDNN refuses an empty reduction
    Linear(8, 4)(empty).sum().backward()
    assert empty.grad.shape == (0, 8)
    layer = Linear(5, 3)
    strided = torch.randn(4, 10)[:, ::2]  # a view, as slicing a code gives
    torch.testing.assert_close(layer(strided), F.linear(strided, layer.weight, layer.bias))
    assert layer(torch.randn(1, 5)).grad_fn.name() == "_OneDNNLinearBackward"


def _graph_names(out: torch.Tensor) -> set[str]:
    names = set()
    stack = [out.grad_fn]
    while stack:
        node = stack.pop()
        if node is not None:
            names.add(node.name())
            stack += [n for n, _ in node.next_functions]
    return names


def _grad(param: torch.Tensor) -> torch.Tensor:
    """A parameter's gradient, zeros where the loss does not reach it (the head's bias)."""
    return torch.zeros_like(param) if param.grad is None else param.grad


@pytest.mark.parametrize("hidden", ["4096", "32,16"])
def test_the_contractive_penalty_is_differentiable_through_onednn_layers(hidden):
    # its Jacobian is a backward with create_graph, itself differentiated: Linear's backward
    # takes torch's differentiable matmuls then; same penalty and gradient as torch's Linear
    from conftest import small_config

    from aelab.models import build_model
    from aelab.models.losses import jacobian_frobenius_sq
    torch.manual_seed(0)
    model = build_model(small_config("contractive", hidden=hidden))  # 64 inputs -> hidden
    x = torch.rand(4, 1, 8, 8)
    penalty = jacobian_frobenius_sq(model.encode, x).mean()
    penalty.backward()
    grads = [_grad(p).clone() for p in model.encoder.parameters()]
    assert "_OneDNNLinearBackward" in _graph_names(model.encode(x))
    for module in model.encoder.modules():  # the same weights through torch's layer
        if type(module) is Linear:
            module.forward = torch.nn.Linear.forward.__get__(module)
    model.zero_grad()
    reference = jacobian_frobenius_sq(model.encode, x).mean()
    reference.backward()
    torch.testing.assert_close(penalty, reference)
    for ours, torchs in zip(grads, (_grad(p) for p in model.encoder.parameters())):
        torch.testing.assert_close(ours, torchs, rtol=1e-4, atol=1e-6)
    assert sum(g.abs().sum() for g in grads) > 0
