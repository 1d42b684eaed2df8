"""beta-TCVAE (Chen et al. 2018, "Isolating Sources of Disentanglement in VAEs",
arXiv:1802.04942; the total-correlation view of survey 4.3's beta-VAE).

The VAE's averaged KL splits into index-code mutual information, total correlation
(TC) and dimension-wise KL (Chen et al., eq. 2); beta-TCVAE weights them separately:

loss = -E_q[log p(x|z)] + alpha * I_q(z; x) + beta * TC(z) + gamma * sum_j KL(q(z_j) || p(z_j))

with alpha = gamma = 1 in the paper, so only the TC term, which rewards statistically
independent code dimensions, is penalised harder. The aggregate posterior q(z) is
estimated on each minibatch by minibatch-weighted sampling (``losses.tc_decomposition``).

Optionally beta follows a schedule (``beta_steps`` > 0): held at ``beta`` for ``beta_hold``
steps, then moved linearly to ``beta_final`` over ``beta_steps`` steps. A strong TC weight
early splits the factors that matter most to the reconstruction (the positions) into their
own dimensions; a weaker one later lets further dimensions open for the rest (scale, shape)
- the ordering Burgess et al. 2018 (sec. 4) get from a growing capacity.

How long the first phase takes varies from seed to seed (a model may draw the mean sprite
for a few hundred or a few thousand steps before its code opens), so the hold can also end
on what the code does rather than on a step count, without labels: with
``beta_hold_active`` = n > 0, beta is held until n latents carry more than
``ACTIVE_NATS`` of KL each (and at least ``beta_hold`` steps). The step at which that
happened is saved with the weights, so a resumed run keeps its schedule.
"""
from dataclasses import dataclass
from typing import ClassVar

import torch

from aelab.models.base import param
from aelab.models.losses import gaussian_kl, tc_decomposition
from aelab.models.registry import register
from aelab.models.vae import VAE
from aelab.models.vae import Config as VAEConfig


@dataclass
class Config(VAEConfig):
    alpha: float = param(1.0, "weight of the index-code mutual information I(z; x)", ge=0.0)
    beta: float = param(6.0, "weight of the total correlation (beta = 1 is the VAE)", ge=0.0)
    gamma: float = param(1.0, "weight of the dimension-wise KL", ge=0.0)
    beta_final: float = param(1.0, "beta at the end of the schedule (when beta_steps > 0)",
                              ge=0.0)
    beta_hold: int = param(0, "steps at the starting beta before the schedule begins", ge=0)
    beta_steps: int = param(0, "steps over which beta moves to beta_final (0: constant beta)",
                            ge=0)
    beta_hold_active: int = param(0, "hold beta until this many latents carry more than 1 nat "
                                     "each (0: hold for beta_hold steps only)", ge=0)

    # beta weights the total correlation, which does not close latents; these do
    closing_weights: ClassVar[tuple[str, ...]] = ("alpha", "gamma")


ACTIVE_NATS = 1.0  # a latent with more KL than this on recent batches has opened


@register("betatcvae")
class BetaTCVAE(VAE):
    """beta-TCVAE: the VAE's KL split into MI, total correlation and dimension-wise KL (Chen et al. 2018)."""

    Config = Config
    about = ("A VAE whose KL term is split into three parts (Chen et al. 2018): how much the "
             "code says about the image, how dependent the code dimensions are on each other "
             "(total correlation), and how far each dimension is from the prior. Only the total "
             "correlation gets the large weight beta, so the dimensions become independent "
             "(disentangled) without squeezing the code as hard as a beta-VAE does.")
    loss_latex = (r"L = -\mathbb{E}_{q}\log p_\theta(x|z) + \alpha\, I_q(z;x) + \beta\, "
                  r"KL\big(q(z)\,\|\,\textstyle\prod_j q(z_j)\big) + \gamma \sum_j "
                  r"KL\big(q(z_j)\,\|\,p(z_j)\big)")

    def __init__(self, config):
        super().__init__(config)
        if config.beta_hold_active:  # the step the hold ended (-1: still holding), saved
            self.register_buffer("hold_ended", torch.tensor(-1))

    def tracks_kl(self) -> bool:
        return super().tracks_kl() or bool(self.config.beta_hold_active)

    def start_step(self, step, total_steps):
        super().start_step(step, total_steps)
        c = self.config
        if (c.beta_hold_active and self.hold_ended < 0 and step >= c.beta_hold
                and self.active_latents(ACTIVE_NATS) >= c.beta_hold_active):
            self.hold_ended.fill_(step)

    def hold_end(self) -> int | None:
        """The step at which beta starts to move (None: still held)."""
        if not self.config.beta_hold_active:
            return self.config.beta_hold
        return int(self.hold_ended) if self.hold_ended >= 0 else None

    def current_beta(self) -> float:
        """beta at this training step: ``beta``, or the schedule's value when ``beta_steps`` > 0."""
        c = self.config
        end = self.hold_end()
        if not c.beta_steps or end is None:
            return c.beta
        done = min(1.0, max(0, self.step - end) / c.beta_steps)
        return c.beta + (c.beta_final - c.beta) * done

    def penalties(self, x, out):
        c = self.config
        z, mu, logvar = out.code, out.extras["mu"], out.extras["logvar"]
        if c.free_bits:
            # free bits (Kingma et al. 2016) for the split KL: a latent whose batch-mean KL is
            # under free_bits nats feels no pull from any of the three terms (its code and
            # posterior enter them detached), as sum_j max(KL_j, free_bits) gives a VAE; a
            # floor on the dimension-wise term alone leaves beta * TC closing latents
            free = gaussian_kl(mu, logvar).mean(0) < c.free_bits
            z, mu, logvar = (torch.where(free, t.detach(), t) for t in (z, mu, logvar))
        mi, tc, dim_kl = (t.mean() for t in tc_decomposition(z, mu, logvar, self.train_size))
        return {"mi": (mi, c.alpha * mi), "tc": (tc, self.current_beta() * tc),
                "dim_kl": (dim_kl, c.gamma * dim_kl)}
