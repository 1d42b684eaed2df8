"""Encoder and decoder networks shared by every variant (MLP, conv and Burgess).

``burgess`` is the conv net of Burgess et al. 2018 ("Understanding disentangling in
beta-VAE", appendix A.1): stride-2 4x4 convs, then two fully connected layers of 256
units, mirrored in the decoder.

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


FC = (256, 256)  # the Burgess net's fully connected layers


def _mlp(sizes: list[int], linear: type[nn.Linear] = nn.Linear) -> list[nn.Module]:
    layers: list[nn.Module] = []
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
        layers += [linear(fan_in, fan_out), nn.ReLU()]
    return layers


class _WideLinear(torch.autograd.Function):
    """y = x W^T + b with the backward's two matmuls written the other way round.

    For a layer much wider than its input (a code of 10 to 16,384 conv features), torch's
    backward computes dW = g^T x and dx = g W with the long (B, out) gradient transposed,
    which MKL runs at 7% of its matmul rate on CPU; dW = (x^T g)^T and dx = (W^T g^T)^T
    are the same products (the same FLOPs) in the fast orientation: 3 ms against 0.9 ms
    and 1.6 ms against 0.7 ms for out 16,384, in 10, batch 64, 1 thread, cold caches.
    """

    @staticmethod
    def forward(ctx, x, weight, bias):
        ctx.save_for_backward(x, weight)
        ctx.has_bias = bias is not None
        return F.linear(x, weight, bias)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad):
        x, weight = ctx.saved_tensors
        grad_x = (weight.t() @ grad.t()).t() if ctx.needs_input_grad[0] else None
        grad_w = (x.t() @ grad).t().contiguous() if ctx.needs_input_grad[1] else None
        grad_b = grad.sum(0) if ctx.has_bias and ctx.needs_input_grad[2] else None
        return grad_x, grad_w, grad_b


class DecoderLinear(nn.Linear):
    """``nn.Linear`` (same parameters, same state dict); a layer at least 64 times wider than
    its input trains through ``_WideLinear`` on CPU. Decoders only: ``_WideLinear`` has no
    double backward, which the contractive penalty takes through the encoder."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.device.type == "cpu" and x.dim() == 2 and self.out_features >= 64 * self.in_features:
            return _WideLinear.apply(x, self.weight, self.bias)
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
    the few output channels of an image, takes ``_FoldConvTranspose``: from a batch of 64
    NHWC maps of 32x32x32 to one channel, oneDNN's transposed convolution took 12.7 ms (6%
    of a 1024x1024 matmul's FLOP rate, 1 thread), the fold 2.3 ms."""

    def forward(self, x: torch.Tensor, output_size=None) -> torch.Tensor:
        if (x.device.type != "cpu" or self.out_channels > 4 or output_size is not None
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
            # the last ReLU after Flatten (they commute): with NHWC convs (train.fast_layout)
            # its backward then sees one memory layout, not an NCHW gradient for an NHWC
            # output (9x slower: 5.7 ms against 0.6 ms for 2M floats); the state dict keeps
            # its keys (no parameters move)
            self.body = nn.Sequential(*layers[:-1], nn.Flatten(), layers[-1], *fc)
            features = FC[-1] if fc else features
        self.head = nn.Linear(features + cond_dim, out_dim)

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
                *_mlp(sizes, DecoderLinear), DecoderLinear(sizes[-1], math.prod(input_shape)),
                nn.Unflatten(1, self.input_shape))
        else:
            shrink = 2 ** len(hidden)
            start = (hidden[-1], height // shrink, width // shrink)
            fc = [*FC[::-1]] if arch == "burgess" else []
            layers: list[nn.Module] = [
                *_mlp([latent_dim + cond_dim, *fc, math.prod(start)], DecoderLinear),
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
