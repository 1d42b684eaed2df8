"""Vanilla autoencoder (survey 2): under- or overcomplete, trained to reconstruct."""
from dataclasses import dataclass

from ..registry import register
from .base import AEConfig, Autoencoder


@dataclass
class Config(AEConfig):
    """No settings beyond the common ones."""


@register("ae")
class VanillaAE(Autoencoder):
    """Vanilla autoencoder: code z = g(x), reconstruction f(z) (survey 2)."""

    Config = Config
