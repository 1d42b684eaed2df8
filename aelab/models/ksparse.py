"""k-sparse autoencoder (survey 3.3; Makhzani & Frey 2013, arXiv:1312.5663).

Linear code units; only the k largest activations are kept, the rest set to 0,
so back-propagation reaches only the kept units. Optionally k starts at
``k_start`` and falls linearly to ``k`` over the first half of training; after
training, ``k_test_multiplier * k`` units are kept at encode time (the paper's alpha).
"""
from dataclasses import dataclass

import torch

from aelab.errors import ConfigError
from aelab.models.base import AEConfig, Autoencoder, param
from aelab.models.registry import register


def keep_top_k(z: torch.Tensor, k: int) -> torch.Tensor:
    """``z`` with all but the k largest entries of each row set to 0: (B, K)."""
    if k >= z.shape[1]:
        return z
    top = z.topk(k, dim=1).indices
    mask = torch.zeros_like(z).scatter_(1, top, 1.0)  # constant: no gradient to dropped units
    return z * mask


@dataclass
class Config(AEConfig):
    k: int = param(5, "code units kept per example", ge=1)
    k_start: int = param(0, "k at the start of training, falling linearly to k over the "
                            "first half (0 = no schedule)", ge=0)
    k_test_multiplier: float = param(1.0, "alpha: alpha*k units kept at encode time after "
                                          "training", ge=1.0)

    def check(self):
        if self.k > self.latent_dim:
            raise ConfigError(f"k ({self.k}) must not exceed latent_dim ({self.latent_dim})")
        if self.k_start and not self.k <= self.k_start <= self.latent_dim:
            raise ConfigError(f"k_start ({self.k_start}) must be 0 or between k ({self.k}) "
                              f"and latent_dim ({self.latent_dim})")


@register("ksparse")
class KSparseAE(Autoencoder):
    """k-sparse autoencoder: keeps the k largest linear code units (survey 3.3)."""
    kept_k = True

    Config = Config
    about = ("Only the k largest code activations are kept and the rest set to zero, so "
             "back-propagation reaches only those k units. k can start larger and fall to its "
             "final value during training; after training alpha*k units may be kept.")
    loss_latex = r"z = \mathrm{top}_k\big(g_\phi(x)\big),\quad L = \lVert x - f_\theta(z) \rVert^2"

    def current_k(self) -> int:
        """k for this step: the schedule in training, alpha*k at encode time afterwards."""
        c = self.config
        if not self.training:
            return min(c.latent_dim, round(c.k_test_multiplier * c.k))
        if not c.k_start:
            return c.k
        fraction = min(1.0, self.step / (0.5 * self.total_steps))
        return round(c.k_start + (c.k - c.k_start) * fraction)

    def encode(self, x, y=None):
        return keep_top_k(super().encode(x, y), self.current_k())
