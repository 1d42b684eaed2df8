"""Variational autoencoder (survey 4.1; Kingma & Welling 2014, arXiv:1312.6114).

Gaussian encoder q(z|x) = N(mu, diag(exp(logvar))), a sample by
reparameterisation z = mu + sigma * eps (4.1.2), and the loss
-E_q[log p(x|z)] + KL(q(z|x) || N(0, I)) with the KL in closed form (4.1.1).

Optional pruning of collapsed latents (``prune_kl_below`` > 0): when training ends, a latent
whose KL, averaged over the last batches, is below the threshold carries (almost) no
information about x (Burda et al. 2016 call it inactive), so it is pinned to the prior: its
mean and log-variance become exactly 0. Pruning only at the end leaves a latent that opens
late (a model still leaving its first, collapsed phase) its chance. The decision uses no
labels. Without it, Adam keeps such a latent's encoder weights jittering around zero, and the
jitter is a tiny random projection of the live latents' features that a histogram-based score
such as MIG counts in full.
"""
from dataclasses import dataclass
from typing import ClassVar

import torch

from aelab.models.base import AEConfig, Autoencoder, param
from aelab.models.losses import gaussian_kl
from aelab.models.registry import register

KL_AVERAGE_DECAY = 0.99  # the KL per latent is an exponential average over ~100 batches


@dataclass
class Config(AEConfig):
    """``likelihood`` (common field) picks Bernoulli (default) or Gaussian p(x|z)."""

    prune_kl_below: float = param(0.0, "when training ends, pin each latent whose KL, averaged "
                                       "over the last batches, is below this many nats to the "
                                       "prior (0: never)", ge=0.0)
    free_bits: float = param(0.5, "nats of KL per latent that cost nothing (free bits, Kingma "
                                  "et al. 2016): a latent carrying less is not pushed to close, "
                                  "so the code does not collapse (0: off)", ge=0.0)

    saved_without = {"free_bits": 0.0}  # runs saved before free bits trained without them
    # settings whose larger value pushes latents to close (a collapse warning names them)
    closing_weights: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def collapse_levers(cls, saved: dict) -> list[str]:
        """What a user can change against a collapsed code, for a run saved with ``saved``."""
        levers = [f"lower {name} (now {saved[name]:g})" for name in cls.closing_weights
                  if name in saved]
        free_bits = saved.get("free_bits", cls.saved_without["free_bits"])
        return levers + [f"raise free_bits (now {free_bits:g})", "train longer (epochs)"]


@register("vae")
class VAE(Autoencoder):
    """Variational autoencoder: Gaussian posterior, reparameterisation, closed-form KL (survey 4.1)."""
    samples_prior = True
    kl_per_dim = True

    Config = Config
    about = ("The encoder outputs a Gaussian distribution over codes instead of a point; a code "
             "is sampled with the reparameterisation trick and decoded. The KL term keeps the "
             "posteriors close to the N(0, I) prior, so one can sample new images from the prior.")
    loss_latex = r"L_{VAE} = -\mathbb{E}_{z \sim q_\phi(z|x)} \log p_\theta(x|z) + D_{KL}\big(q_\phi(z|x) \,\|\, p_\theta(z)\big),\quad z = \mu + \sigma \odot \epsilon"

    def __init__(self, config):
        super().__init__(config)
        self.recent_kl = None  # (latent_dim,) average KL per latent while training
        if config.prune_kl_below > 0:  # saved with the weights: 1 = live, 0 = pinned to the prior
            self.register_buffer("latent_mask", torch.ones(config.latent_dim))

    def encoder_out_dim(self):
        return 2 * self.config.latent_dim  # mu and logvar side by side

    @property
    def pruning(self) -> bool:
        return self.config.prune_kl_below > 0

    def tracks_kl(self) -> bool:
        """Whether training keeps ``recent_kl``, the average KL per latent (pruning needs it)."""
        return self.pruning

    def active_latents(self, nats: float) -> int:
        """How many latents carry more than ``nats`` of KL on recent batches (0 before any)."""
        return 0 if self.recent_kl is None else int((self.recent_kl > nats).sum())

    def posterior(self, x, y=None):
        """Mean and log-variance of q(z|x): two (B, latent_dim) tensors (a pruned latent's
        are 0: exactly the prior)."""
        mu, logvar = self.encoder(x, self.condition(y)).chunk(2, dim=1)
        if self.pruning:
            mu, logvar = mu * self.latent_mask, logvar * self.latent_mask
        return mu, logvar

    def pruned_latents(self) -> list[int]:
        if not self.pruning:
            return []
        return (self.latent_mask == 0).nonzero().flatten().tolist()

    def unprune(self) -> None:
        """Give every pruned latent its encoder output back (to see what pruning changed)."""
        if self.pruning:
            self.latent_mask.fill_(1.0)

    def prune(self) -> list[int]:
        """Pin every latent whose recent average KL is below ``prune_kl_below`` to the prior;
        return the indices pruned now."""
        if not self.pruning or self.recent_kl is None:
            return []
        newly = (self.recent_kl < self.config.prune_kl_below) & (self.latent_mask > 0)
        self.latent_mask[newly] = 0.0
        return newly.nonzero().flatten().tolist()

    def finish_training(self):
        self.prune()

    @staticmethod
    def reparameterize(mu, logvar):
        """z = mu + sigma * eps with eps ~ N(0, I) (survey 4.1.2)."""
        return mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)

    def encode(self, x, y=None):
        return self.posterior(x, y)[0]  # the posterior mean is the deterministic code

    def code(self, x, y=None):
        mu, logvar = self.posterior(x, y)
        if self.training and self.tracks_kl():
            with torch.no_grad():
                kl = gaussian_kl(mu, logvar).mean(0)
                self.recent_kl = kl if self.recent_kl is None else torch.lerp(
                    kl, self.recent_kl, KL_AVERAGE_DECAY)
        if self.training:
            mu, logvar = self.training_posterior(mu, logvar)
        z = self.reparameterize(mu, logvar) if self.training else mu
        return z, {"mu": mu, "logvar": logvar}

    def training_posterior(self, mu, logvar):
        """The posterior that training samples from and penalises (Ada-GVAE: shared between
        the two images of a pair); q(z|x) itself here."""
        return mu, logvar

    def kl_term(self, kl):
        """(value to log, contribution to the loss) of the batch-mean KL."""
        return kl, kl

    def free_bits_gap(self, mu, logvar):
        """sum_j max(free_bits - KL_j, 0), KL_j the batch-mean KL of latent j: added to the
        KL it makes the penalised KL sum_j max(KL_j, free_bits) (free bits), whose gradient
        below free_bits nats is zero; 0 when free bits are off."""
        if not self.config.free_bits:
            return 0.0
        return (self.config.free_bits - gaussian_kl(mu, logvar).mean(0)).clamp_min(0).sum()

    def penalties(self, x, out):
        mu, logvar = out.extras["mu"], out.extras["logvar"]
        kl = gaussian_kl(mu, logvar).sum(1).mean()
        return {"kl": (kl, self.kl_term(kl + self.free_bits_gap(mu, logvar))[1])}  # logs the KL itself

    @torch.no_grad()
    def sample(self, n: int, y=None, generator=None):
        """``n`` images decoded from the prior N(0, I)."""
        device = next(self.parameters()).device
        z = torch.randn(n, self.config.latent_dim, generator=generator, device=device)
        return torch.sigmoid(self.decode(z, y))
