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


FC = (256, 256)  # the Burgess net's fully connected layers


def _mlp(sizes: list[int]) -> list[nn.Module]:
    layers: list[nn.Module] = []
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
        layers += [nn.Linear(fan_in, fan_out), nn.ReLU()]
    return layers


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
            self.body = nn.Sequential(*layers, nn.Flatten(), *fc)
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
                *_mlp(sizes), nn.Linear(sizes[-1], math.prod(input_shape)),
                nn.Unflatten(1, self.input_shape))
        else:
            shrink = 2 ** len(hidden)
            start = (hidden[-1], height // shrink, width // shrink)
            fc = [*FC[::-1]] if arch == "burgess" else []
            layers: list[nn.Module] = [*_mlp([latent_dim + cond_dim, *fc, math.prod(start)]),
                                       nn.Unflatten(1, start)]
            outs = [*reversed(hidden[:-1]), channels]
            prev = hidden[-1]
            for i, ch in enumerate(outs):  # each layer doubles the height and width
                layers.append(nn.ConvTranspose2d(prev, ch, kernel_size=4, stride=2, padding=1))
                if i < len(outs) - 1:
                    layers.append(nn.ReLU())
                prev = ch
            self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        if cond is not None:
            z = torch.cat([z, cond], dim=1)  # (B, latent_dim + cond_dim)
        return self.net(z)  # (B, C, H, W) logits
