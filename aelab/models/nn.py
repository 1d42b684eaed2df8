"""Encoder and decoder networks shared by every variant (MLP, conv and Burgess).

``burgess`` is the conv net of Burgess et al. 2018 ("Understanding disentangling in
beta-VAE", appendix A.1): stride-2 4x4 convs, then two fully connected layers of 256
units, mirrored in the decoder.

Every linear layer is ``Linear``, which on CPU trains through oneDNN's matmul kernel: faster
than torch's MKL sgemm where MKL does not use the CPU's widest vector units
(docs/performance.md, Training efficiency).

An encoder maps images ``(B, C, H, W)`` to ``out_dim`` numbers (a code, or
``mu`` and ``logvar`` side by side); a decoder maps a code back to image
logits of the input shape. An optional condition vector (the one-hot label of
the conditional VAE) enters the encoder's last layer and the decoder's first.
"""
from __future__ import annotations

import math

import torch
from torch import nn
from torch.autograd.function import once_differentiable
from torch.nn import functional as F
from torch.utils.flop_counter import flop_registry, register_flop_formula

FC = (256, 256)  # the Burgess net's fully connected layers


def _mlp(sizes: list[int]) -> list[nn.Module]:
    layers: list[nn.Module] = []
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
        layers += [Linear(fan_in, fan_out), nn.ReLU()]
    return layers


# oneDNN's fully connected kernel on dense CPU tensors: y = x W^T + b (what inductor lowers
# linear layers to on CPU)
_ONEDNN_LINEAR = getattr(torch.ops.mkldnn, "_linear_pointwise", None)


def onednn_mm(a: torch.Tensor, b_t: torch.Tensor) -> torch.Tensor:
    """a @ b_t^T for float32 CPU matrices through oneDNN's kernel (either operand may be a
    transposed view); bench/flop_rate.py times it as the second matmul baseline."""
    return _ONEDNN_LINEAR(a, b_t, None, "none", [], "")


if _ONEDNN_LINEAR is not None and _ONEDNN_LINEAR not in flop_registry:
    @register_flop_formula(_ONEDNN_LINEAR)
    def _onednn_linear_flops(x_shape, w_shape, *args, **kwargs) -> int:
        """2 * rows * in * out, as FlopCounterMode counts ``addmm``."""
        return 2 * math.prod(x_shape[:-1]) * w_shape[0] * w_shape[1]


class _OneDNNLinear(torch.autograd.Function):
    """y = x W^T + b with all three matmuls (forward, dx, dW) in oneDNN's kernels.

    torch's CPU matmul is MKL's sgemm, which on AMD CPUs runs its AVX2 code only; oneDNN uses
    the CPU's widest vector units (docs/performance.md, Training efficiency;
    ``bench/train_speed.py efficiency`` prints both rates). dW = g^T x is taken as is, except
    for a narrow input (in < 64, a code entering a decoder), where (x^T g)^T is faster (the
    long gradient stays untransposed). The same multiply-adds as ``F.linear``, so FLOP
    counts are unchanged (tests/test_nn.py).

    With grad mode on in backward (``create_graph``: the contractive penalty's Jacobian) the
    backward uses torch's differentiable matmuls, so it can itself be differentiated.
    """

    @staticmethod
    def forward(ctx, x, weight, bias):
        ctx.save_for_backward(x, weight)
        ctx.has_bias = bias is not None
        return _ONEDNN_LINEAR(x, weight, bias, "none", [], "")

    @staticmethod
    def backward(ctx, grad):
        x, weight = ctx.saved_tensors
        wanted = ctx.needs_input_grad
        grad_x = grad_w = None
        if torch.is_grad_enabled():  # a double backward will follow: differentiable ops
            grad_x = grad @ weight if wanted[0] else None
            grad_w = grad.t() @ x if wanted[1] else None
        else:
            grad_x = onednn_mm(grad, weight.t()) if wanted[0] else None  # (B, out) @ (out, in)
            if wanted[1] and x.shape[1] < 64:
                grad_w = onednn_mm(x.t(), grad.t()).t().contiguous()  # (x^T g)^T
            elif wanted[1]:
                grad_w = onednn_mm(grad.t(), x.t())  # g^T x: (out, B) @ (B, in)
        grad_b = grad.sum(0) if ctx.has_bias and wanted[2] else None
        return grad_x, grad_w, grad_b


class Linear(nn.Linear):
    """``nn.Linear`` (same parameters, same state dict) that trains through
    ``_OneDNNLinear`` on CPU for non-empty float32 batches of vectors; elsewhere (GPU, other
    dtypes, bfloat16 autocast, an empty batch, which oneDNN refuses, a torch without oneDNN)
    it is ``nn.Linear``."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if (_ONEDNN_LINEAR is not None and x.device.type == "cpu" and x.dim() == 2
                and x.shape[0] > 0 and x.dtype == torch.float32
                and self.weight.dtype == torch.float32 and not torch.is_autocast_enabled("cpu")):
            return _OneDNNLinear.apply(x, self.weight, self.bias)
        return super().forward(x)


class _FoldConvTranspose(torch.autograd.Function):
    """conv_transpose2d (groups 1, dilation 1, no output padding) as one matmul and a fold.

    A transposed convolution scatters each input pixel's ``C_in`` values, times the weight
    ``(C_in, C_out, k, k)``, onto a k x k patch of the output, adding where patches overlap
    (Dumoulin & Visin 2016, sec. 4). The matmul (C_out*k*k, C_in) @ (B, C_in, H*W) makes
    every pixel's patch and ``F.fold`` (col2im) adds them up: the same multiply-adds as the
    convolution, so FLOP counts are unchanged (tests/test_nn.py). Backward is torch's own
    ``convolution_backward``, which is fast for these shapes.
    """

    @staticmethod
    def forward(ctx, x, weight, bias, stride, padding):
        ctx.save_for_backward(x, weight)
        ctx.conf = (stride, padding, bias is not None)
        c_in, height, width = x.shape[1:]
        c_out, k = weight.shape[1], weight.shape[2]
        out_size = tuple((n - 1) * s - 2 * p + k
                         for n, s, p in zip((height, width), stride, padding))
        # (C_out k k, C_in) @ (B, C_in, HW): every pixel's patch, laid out as fold wants it
        patches = torch.matmul(weight.reshape(c_in, -1).t(), x.flatten(2))  # (B, C_out k k, HW)
        out = F.fold(patches, out_size, k, stride=stride, padding=padding)  # (B, C_out, H', W')
        return out if bias is None else out.add_(bias.view(1, c_out, 1, 1))

    @staticmethod
    @once_differentiable
    def backward(ctx, grad):
        x, weight = ctx.saved_tensors
        stride, padding, has_bias = ctx.conf
        wanted = ctx.needs_input_grad
        mask = [wanted[0], wanted[1], has_bias and wanted[2]]
        grad_x, grad_w, grad_b = torch.ops.aten.convolution_backward(
            grad, x, weight, [weight.shape[1]] if has_bias else None, list(stride), list(padding),
            [1, 1], True, [0, 0], 1, mask)
        return grad_x, grad_w, grad_b, None, None


class ImageConvTranspose2d(nn.ConvTranspose2d):
    """``nn.ConvTranspose2d`` (same parameters, same state dict) whose forward on CPU, for
    the few output channels of an image, takes ``_FoldConvTranspose``: oneDNN's transposed
    convolution to so few channels runs far below the matmul's rate, the fold does not
    (docs/performance.md). Under bfloat16 autocast it is torch's, which autocast casts."""

    def forward(self, x: torch.Tensor, output_size=None) -> torch.Tensor:
        if (x.device.type != "cpu" or torch.is_autocast_enabled("cpu") or self.out_channels > 4
                or output_size is not None
                or self.groups != 1 or self.dilation != (1, 1) or self.output_padding != (0, 0)
                or x.dim() != 4):
            return super().forward(x, output_size)
        return _FoldConvTranspose.apply(x, self.weight, self.bias, self.stride, self.padding)


class Encoder(nn.Module):
    """Image ``(B, C, H, W)`` [+ condition ``(B, cond_dim)``] -> ``(B, out_dim)``."""

    def __init__(self, arch: str, input_shape: tuple[int, ...], hidden: tuple[int, ...],
                 out_dim: int, cond_dim: int = 0):
        super().__init__()
        channels, height, width = input_shape
        if arch == "mlp":
            sizes = [channels * height * width, *hidden]
            self.body = nn.Sequential(nn.Flatten(), *_mlp(sizes))
            features = sizes[-1]
        else:
            layers: list[nn.Module] = []
            prev = channels
            for ch in hidden:  # each layer halves the height and width
                layers += [nn.Conv2d(prev, ch, kernel_size=4, stride=2, padding=1), nn.ReLU()]
                prev = ch
            shrink = 2 ** len(hidden)
            features = prev * (height // shrink) * (width // shrink)
            fc = _mlp([features, *FC]) if arch == "burgess" else []
            # the last ReLU after Flatten (they commute): with NHWC convs
            # (aelab.training.trainer.fast_layout) its backward then sees one memory layout,
            # not an NCHW gradient for an NHWC output (much slower); the state dict keeps its
            # keys (no parameters move)
            self.body = nn.Sequential(*layers[:-1], nn.Flatten(), layers[-1], *fc)
            features = FC[-1] if fc else features
        self._features = features  # the body's output; the head adds cond_dim to it
        self.head = Linear(features + cond_dim, out_dim)

    def relu_mlp_layers(self) -> list[nn.Linear] | None:
        """The linear layers, in order, when this encoder is relu(linear) layers then the
        linear head (an MLP without condition), so its Jacobian has a closed form
        (``aelab.models.losses.relu_mlp_jacobian_frobenius_sq``); None for any other net."""
        body = list(self.body)
        if not body or not isinstance(body[0], nn.Flatten) or self.head.in_features != self._features:
            return None
        pairs = body[1:]
        if len(pairs) % 2 or not all(isinstance(m, nn.Linear) and type(r) is nn.ReLU
                                     for m, r in zip(pairs[::2], pairs[1::2])):
            return None
        return [*pairs[::2], self.head]

    def forward(self, x: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        h = self.body(x)  # (B, features)
        if cond is not None:
            h = torch.cat([h, cond], dim=1)  # (B, features + cond_dim)
        return self.head(h)  # (B, out_dim)


class Decoder(nn.Module):
    """Code ``(B, latent_dim)`` [+ condition] -> image logits ``(B, C, H, W)``."""

    def __init__(self, arch: str, input_shape: tuple[int, ...], hidden: tuple[int, ...],
                 latent_dim: int, cond_dim: int = 0):
        super().__init__()
        self.input_shape = tuple(input_shape)
        channels, height, width = input_shape
        if arch == "mlp":
            sizes = [latent_dim + cond_dim, *reversed(hidden)]
            self.net = nn.Sequential(
                *_mlp(sizes), Linear(sizes[-1], math.prod(input_shape)),
                nn.Unflatten(1, self.input_shape))
        else:
            shrink = 2 ** len(hidden)
            start = (hidden[-1], height // shrink, width // shrink)
            fc = [*FC[::-1]] if arch == "burgess" else []
            layers: list[nn.Module] = [
                *_mlp([latent_dim + cond_dim, *fc, math.prod(start)]),
                nn.Unflatten(1, start)]
            outs = [*reversed(hidden[:-1]), channels]
            prev = hidden[-1]
            for i, ch in enumerate(outs):  # each layer doubles the height and width
                layers.append(ImageConvTranspose2d(prev, ch, kernel_size=4, stride=2, padding=1))
                if i < len(outs) - 1:
                    layers.append(nn.ReLU())
                prev = ch
            self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        if cond is not None:
            z = torch.cat([z, cond], dim=1)  # (B, latent_dim + cond_dim)
        return self.net(z)  # (B, C, H, W) logits
