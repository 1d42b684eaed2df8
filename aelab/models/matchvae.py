"""Match-pairing VAE: Ada-GVAE's pairs (``adagvae.py``) with the changed factor told, as in
the "match pairing" of Shu et al. 2020 ("Weakly Supervised Disentanglement with Guarantees",
arXiv:1910.09772, sec. 3): each training pair comes with the set S of factors it shares.

Latent j < 5 is given to factor j of the shapes grid (shape, scale, orientation, pos_x,
pos_y) and latents from 5 on to none. In a pair whose images differ in the factors D, every
latent except those of D is shared: both posteriors are replaced by their average
N((mu1 + mu2) / 2, (s1^2 + s2^2) / 2) (the GVAE average, Hosoya 2019), and the loss is the
beta-VAE loss of both images under these posteriors (Locatello et al. 2020, eq. 5):

    L = sum_{i=1,2} -E_q~[log p(x_i|z)] + beta * KL(q~(z|x_i) || p(z))

So the only latent through which the decoder can tell the two images of a pair apart is the
changed factor's: whatever of factor j the decoder needs must flow through latent j, and the
KL term makes a second copy elsewhere cost nats that buy nothing. Shu et al. show that match
pairing makes each factor's latent consistent with it (their Theorem 1); this is the
supervision a teacher gives by saying "in these two frames only the position moved".

Ada-GVAE guesses D from the posteriors and, on this CPU budget, leaves shape on the scale
latent and orientation out (README "Weak supervision"); being told D is what separates them.
"""
from dataclasses import dataclass

import torch

from ..errors import ConfigError
from ..shapes import FACTORS
from ..variants import register
from .adagvae import AdaGVAE, Config as AdaGVAEConfig
from .base import param


@dataclass
class Config(AdaGVAEConfig):
    latent_dim: int = param(10, "size of the code: latent j < 5 for factor j (shape, scale, "
                                "orientation, pos_x, pos_y), the rest for none", ge=1, le=4096)

    def check(self):
        super().check()
        if self.latent_dim < len(FACTORS):
            raise ConfigError(f"matchvae gives one latent to each of the {len(FACTORS)} factors "
                              f"({', '.join(FACTORS)}), so latent_dim must be at least "
                              f"{len(FACTORS)}, got {self.latent_dim}")


@register("matchvae")
class MatchVAE(AdaGVAE):
    """Match-pairing VAE: a beta-VAE on pairs of sprites told which factor differs (Shu et al. 2020)."""

    Config = Config
    about = ("A beta-VAE trained on pairs of sprites that differ in one factor, told which one "
             "(match pairing, Shu et al. 2020): latent 0 is shape's, 1 scale's, 2 orientation's, "
             "3 pos_x's and 4 pos_y's, and every other latent is averaged across the pair, so "
             "only the changed factor's latent may differ. Stronger supervision than Ada-GVAE, "
             "which must guess. Needs a dataset with known factors (shapes).")
    loss_latex = (r"L = \sum_{i=1,2} -\mathbb{E}_{\tilde q(z|x_i)} \log p_\theta(x_i|z) + \beta\, "
                  r"D_{KL}\big(\tilde q(z|x_i)\,\|\,p(z)\big),\quad \tilde q(z_j|x_i) = "
                  r"\mathcal{N}\big(\tfrac{\mu_{1j} + \mu_{2j}}{2}, \tfrac{\sigma_{1j}^2 + "
                  r"\sigma_{2j}^2}{2}\big) \text{ unless factor } j \text{ differs in the pair}")

    def __init__(self, config):
        super().__init__(config)
        self.moved = None  # (B/2, 5) bool: the factors that differ in each pair of this step

    def start_pairs(self, moved: torch.Tensor) -> None:
        self.moved = moved

    def shared_latents(self, mu1, logvar1, mu2, logvar2) -> torch.Tensor:
        if self.moved is None or self.moved.shape != (len(mu1), len(FACTORS)):
            raise ConfigError("matchvae trains on pairs told which factors differ; the trainer "
                              "tells it with start_pairs before each step")
        shared = torch.ones_like(mu1, dtype=torch.bool)
        shared[:, :len(FACTORS)] = ~self.moved
        return shared
