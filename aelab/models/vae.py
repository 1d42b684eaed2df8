"""Variational autoencoder (survey 4.1; Kingma & Welling 2014, arXiv:1312.6114).

Gaussian encoder q(z|x) = N(mu, diag(exp(logvar))), a sample by
reparameterisation z = mu + sigma * eps (4.1.2), and the loss
-E_q[log p(x|z)] + KL(q(z|x) || N(0, I)) with the KL in closed form (4.1.1).
"""
from dataclasses import dataclass

import torch

from ..losses import gaussian_kl
from ..variants import register
from .base import AEConfig, Autoencoder


@dataclass
class Config(AEConfig):
    """``likelihood`` (common field) picks Bernoulli (default) or Gaussian p(x|z)."""


@register("vae")
class VAE(Autoencoder):
    """Variational autoencoder: Gaussian posterior, reparameterisation, closed-form KL (survey 4.1)."""

    Config = Config
    about = ("The encoder outputs a Gaussian distribution over codes instead of a point; a code "
             "is sampled with the reparameterisation trick and decoded. The KL term keeps the "
             "posteriors close to the N(0, I) prior, so one can sample new images from the prior.")
    loss_latex = r"L_{VAE} = -\mathbb{E}_{z \sim q_\phi(z|x)} \log p_\theta(x|z) + D_{KL}\big(q_\phi(z|x) \,\|\, p_\theta(z)\big),\quad z = \mu + \sigma \odot \epsilon"

    def encoder_out_dim(self):
        return 2 * self.config.latent_dim  # mu and logvar side by side

    def posterior(self, x, y=None):
        """Mean and log-variance of q(z|x): two (B, latent_dim) tensors."""
        mu, logvar = self.encoder(x, self.condition(y)).chunk(2, dim=1)
        return mu, logvar

    @staticmethod
    def reparameterize(mu, logvar):
        """z = mu + sigma * eps with eps ~ N(0, I) (survey 4.1.2)."""
        return mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)

    def encode(self, x, y=None):
        return self.posterior(x, y)[0]  # the posterior mean is the deterministic code

    def code(self, x, y=None):
        mu, logvar = self.posterior(x, y)
        z = self.reparameterize(mu, logvar) if self.training else mu
        return z, {"mu": mu, "logvar": logvar}

    def kl_term(self, kl):
        """(value to log, contribution to the loss) of the batch-mean KL."""
        return kl, kl

    def penalties(self, x, out):
        kl = gaussian_kl(out.extras["mu"], out.extras["logvar"]).sum(1).mean()
        return {"kl": self.kl_term(kl)}

    @torch.no_grad()
    def sample(self, n: int, y=None, generator=None):
        """``n`` images decoded from the prior N(0, I)."""
        device = next(self.parameters()).device
        z = torch.randn(n, self.config.latent_dim, generator=generator, device=device)
        return torch.sigmoid(self.decode(z, y))
