"""beta-VAE (survey 4.3; Higgins et al. 2017) and its controlled-capacity form
(Burgess et al. 2017, survey reference 14).

loss = -E_q[log p(x|z)] + beta * KL            (capacity_max = 0)
loss = -E_q[log p(x|z)] + gamma * |KL - C|     (capacity_max > 0), with C raised
linearly from 0 to capacity_max nats over capacity_steps training steps.
"""
from dataclasses import dataclass
from typing import ClassVar

from aelab.models.base import param
from aelab.models.registry import register
from aelab.models.vae import VAE
from aelab.models.vae import Config as VAEConfig


@dataclass
class Config(VAEConfig):
    beta: float = param(4.0, "weight of the KL term (beta = 1 is the VAE)", ge=0.0)
    capacity_max: float = param(0.0, "target KL C in nats at the end of the schedule "
                                     "(0 = plain beta-VAE)", ge=0.0)
    capacity_steps: int = param(10000, "steps over which C rises to capacity_max", ge=1)
    gamma: float = param(1000.0, "weight of |KL - C| when capacity_max > 0", ge=0.0)

    closing_weights: ClassVar[tuple[str, ...]] = ("beta",)

    @classmethod
    def collapse_levers(cls, saved):
        if saved.get("capacity_max", 0) > 0:  # the KL is steered to C, beta is unused
            return [f"raise capacity_max (now {saved['capacity_max']:g})",
                    *super().collapse_levers(saved)[1:]]
        return super().collapse_levers(saved)


@register("betavae")
class BetaVAE(VAE):
    """beta-VAE: a weighted KL term, optionally a controlled capacity C (survey 4.3)."""

    Config = Config
    about = ("A VAE whose KL term is weighted by beta > 1, a stronger bottleneck that "
             "encourages each latent dimension to capture one factor of variation (disentangling) "
             "at some cost in reconstruction. With capacity_max > 0 the KL is instead steered "
             "towards a target C that grows during training (Burgess et al.).")
    loss_latex = r"L_{BETA} = -\mathbb{E}_{z \sim q_\phi(z|x)} \log p_\theta(x|z) + \beta\, D_{KL}\big(q_\phi(z|x) \,\|\, p_\theta(z)\big)\quad\text{or}\quad \ldots + \gamma \big| D_{KL} - C \big|"

    def capacity(self) -> float:
        c = self.config
        return c.capacity_max * min(1.0, self.step / c.capacity_steps)

    def kl_term(self, kl):
        c = self.config
        if c.capacity_max > 0:
            return kl, c.gamma * (kl - self.capacity()).abs()
        return kl, c.beta * kl
