"""Ada-GVAE (Locatello et al. 2020, "Weakly-Supervised Disentanglement Without Compromises",
arXiv:2002.02886): a beta-VAE (survey 4.3) trained on pairs of images that share all but a
few generative factors, without being told which ones differ.

Unsupervised disentanglement cannot be guaranteed without inductive biases or some
supervision (Locatello et al. 2019); pairs are the weakest supervision that makes it
identifiable: think of two frames of a video in which one thing moved. For a pair (x1, x2):

    delta_j = KL(q(z_j|x1) || q(z_j|x2))            per latent j          (sec. 4.1)
    tau     = (max_j delta_j + min_j delta_j) / 2   the adaptive threshold (eq. 6)

every latent with delta_j < tau is taken to be shared and both posteriors are replaced by
their average, N((mu1 + mu2) / 2, (s1^2 + s2^2) / 2) (the GVAE average, Hosoya 2019); the
others keep their own. The loss is the beta-VAE loss of both images under these posteriors:

    L = sum_{i=1,2} -E_q~[log p(x_i|z)] + beta * KL(q~(z|x_i) || p(z))     (eq. 5)

So a latent can only change across a pair if something in the pair changed: each latent is
pushed towards following whatever factors differ together, one at a time.

The trainer hands this model batches of pairs: rows i and i + B/2 of a batch of B images
share all but ``differing`` factors (``aelab.data.shapes.pair_factors``), so it trains only on
datasets with known factors (``shapes``, ``shapes32``). Outside training (eval mode) the
model is an ordinary beta-VAE on single images.
"""
import math
from dataclasses import dataclass

import torch

from aelab.errors import ConfigError
from aelab.models.base import param
from aelab.models.betavae import BetaVAE
from aelab.models.betavae import Config as BetaVAEConfig
from aelab.models.losses import gaussian_kl_between
from aelab.models.registry import register


@dataclass
class Config(BetaVAEConfig):
    beta: float = param(1.0, "weight of the KL term (beta = 1 is the VAE)", ge=0.0)
    differing: int = param(1, "factors that differ between the two images of a training pair "
                              "(0: from 1 to 4 at random per pair)", ge=0, le=4)


def shared_latents(mu1, logvar1, mu2, logvar2) -> torch.Tensor:
    """Which latents each pair shares (B, K) bool: those whose KL between the two posteriors
    is below the midpoint of the pair's largest and smallest (Locatello et al. 2020, eq. 6)."""
    delta = gaussian_kl_between(mu1, logvar1, mu2, logvar2)  # (B, K)
    tau = 0.5 * (delta.amax(1, keepdim=True) + delta.amin(1, keepdim=True))
    return delta < tau


@register("adagvae")
class AdaGVAE(BetaVAE):
    """Ada-GVAE: a beta-VAE on pairs of images that share all but a few factors (Locatello et al. 2020)."""

    Config = Config
    factor_use = "pairs of images that differ in known generative factors"
    trains_on_pairs = True
    about = ("A beta-VAE trained on pairs of sprites that differ in one factor (weak "
             "supervision, Locatello et al. 2020), like two frames of a video in which one "
             "thing moved; the model is not told which. Latents whose posteriors hardly differ "
             "across the pair are taken as shared and averaged, so a latent may change only "
             "when something in the pair did. Needs a dataset with known factors (shapes).")
    loss_latex = (r"L = \sum_{i=1,2} -\mathbb{E}_{\tilde q(z|x_i)} \log p_\theta(x_i|z) + \beta\, "
                  r"D_{KL}\big(\tilde q(z|x_i)\,\|\,p(z)\big),\quad \tilde q(z_j|x_i) = "
                  r"\mathcal{N}\big(\tfrac{\mu_{1j} + \mu_{2j}}{2}, \tfrac{\sigma_{1j}^2 + "
                  r"\sigma_{2j}^2}{2}\big) \text{ if } \delta_j < \tfrac{\max_k \delta_k + "
                  r"\min_k \delta_k}{2}")

    def training_posterior(self, mu, logvar):
        if len(mu) % 2:
            raise ConfigError(f"adagvae trains on pairs (rows i and i + B/2 of a batch), so a "
                              f"training batch needs an even number of images, got {len(mu)}")
        mu1, mu2 = mu.chunk(2)
        logvar1, logvar2 = logvar.chunk(2)
        shared = shared_latents(mu1, logvar1, mu2, logvar2).detach()
        mean_mu = 0.5 * (mu1 + mu2)
        mean_logvar = torch.logaddexp(logvar1, logvar2) - math.log(2.0)  # log((s1^2 + s2^2) / 2)
        mu = torch.cat([torch.where(shared, mean_mu, mu1), torch.where(shared, mean_mu, mu2)])
        logvar = torch.cat([torch.where(shared, mean_logvar, logvar1),
                            torch.where(shared, mean_logvar, logvar2)])
        return mu, logvar
