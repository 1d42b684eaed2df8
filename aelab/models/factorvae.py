"""FactorVAE (Kim & Mnih 2018, "Disentangling by Factorising", arXiv:1802.05983; a
relative of survey 4.3's beta-VAE that penalises only the total correlation).

VAE loss + gamma * TC(z), where TC(z) = KL(q(z) || prod_j q(z_j)) is estimated with the
density-ratio trick: a discriminator D tells codes of q(z) from codes whose dimensions were
shuffled independently across the batch (samples of prod_j q(z_j)), and
TC(z) ~ E_q(z)[log D(z) / (1 - D(z))] = E_q(z)[logit D(z)] (Kim & Mnih, eq. 3).

loss_VAE = -E_q[log p(x|z)] + KL(q(z|x) || p(z)) + gamma * E_q(z)[logit D(z)]
loss_D   = -E_q(z)[log D(z)] - E_prod q(z_j)[log(1 - D(z_perm))]

D is trained by its own Adam (lr 1e-4, betas 0.5, 0.9 as in the paper, appendix) after every
VAE step (``after_step``); it is not in the trainer's optimizer. Kim & Mnih's Algorithm 1
shuffles the codes of a second minibatch; here the step's own codes are shuffled (one fewer
encoder pass). D's Adam state goes into the run's checkpoint (``train_state``), so a resumed
run goes on to the weights of an uninterrupted one.
"""
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from aelab.models.base import param
from aelab.models.losses import gaussian_kl
from aelab.models.nn import Linear
from aelab.models.registry import register
from aelab.models.vae import VAE
from aelab.models.vae import Config as VAEConfig


@dataclass
class Config(VAEConfig):
    gamma: float = param(10.0, "weight of the total correlation estimated by the discriminator",
                         ge=0.0)
    disc_hidden: tuple[int, ...] = param((256, 256, 256), "discriminator layer sizes "
                                         "(the paper: six layers of 1000)")
    disc_lr: float = param(1e-4, "discriminator Adam learning rate", gt=0.0, le=1.0)


def permute_dims(z: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Each column of ``z`` (B, K) shuffled independently across the batch: samples of the
    product of the marginals prod_j q(z_j) (Kim & Mnih, Algorithm 1)."""
    batch, dims = z.shape
    order = torch.argsort(torch.rand(batch, dims, generator=generator, device=z.device), dim=0)
    return torch.gather(z, 0, order)


@register("factorvae")
class FactorVAE(VAE):
    """FactorVAE: the VAE plus a total-correlation penalty estimated by a discriminator (Kim & Mnih 2018)."""

    Config = Config
    about = ("A VAE with one extra term: the total correlation of the code, i.e. how far the "
             "code dimensions are from independent. A small discriminator network learns to "
             "tell real codes from codes whose dimensions were shuffled across the batch; its "
             "confidence measures the total correlation, which the VAE is trained to shrink "
             "with weight gamma.")
    loss_latex = (r"L = -\mathbb{E}_{q}\log p_\theta(x|z) + D_{KL}\big(q_\phi(z|x)\,\|\,p(z)\big) "
                  r"+ \gamma\, \mathbb{E}_{q(z)}\Big[\log \frac{D(z)}{1 - D(z)}\Big]")

    def __init__(self, config):
        super().__init__(config)
        sizes = [config.latent_dim, *config.disc_hidden]
        layers: list[nn.Module] = []
        for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
            layers += [Linear(fan_in, fan_out), nn.LeakyReLU(0.2)]
        self.discriminator = nn.Sequential(*layers, Linear(sizes[-1], 1))  # logit of D(z)
        self._disc_optimizer = None

    def trainable_parameters(self):
        return (p for name, p in self.named_parameters() if not name.startswith("discriminator."))

    def penalties(self, x, out):
        kl = gaussian_kl(out.extras["mu"], out.extras["logvar"]).sum(1).mean()
        tc = self.discriminator(out.code).mean()  # E_q(z)[logit D(z)] (Kim & Mnih, eq. 3)
        free = self.free_bits_gap(out.extras["mu"], out.extras["logvar"])
        return {"kl": (kl, kl + free), "tc": (tc, self.config.gamma * tc)}

    def discriminator_loss(self, z: torch.Tensor) -> torch.Tensor:
        """Cross-entropy of D on codes ``z`` (label 1) and their shuffled copy (label 0)."""
        z = z.detach()
        logits = self.discriminator(torch.cat([z, permute_dims(z)]))[:, 0]  # (2B,)
        labels = torch.cat([torch.ones(len(z)), torch.zeros(len(z))]).to(logits)
        return F.binary_cross_entropy_with_logits(logits, labels)

    def disc_optimizer(self) -> torch.optim.Adam:
        """D's own Adam, made at its first use."""
        if self._disc_optimizer is None:
            self._disc_optimizer = torch.optim.Adam(self.discriminator.parameters(),
                                                    lr=self.config.disc_lr, betas=(0.5, 0.9))
        return self._disc_optimizer

    def after_step(self, x, out):
        loss = self.discriminator_loss(out.code)
        optimizer = self.disc_optimizer()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return {"disc": loss.detach()}

    def train_state(self):
        if self._disc_optimizer is None:
            return {}
        return {f"disc_opt.{index}.{key}": torch.as_tensor(value)
                for index, slots in self._disc_optimizer.state_dict()["state"].items()
                for key, value in slots.items()}

    def load_train_state(self, tensors):
        slots: dict[int, dict] = {}
        for key, value in tensors.items():
            if key.startswith("disc_opt."):
                _, index, name = key.split(".", 2)
                slots.setdefault(int(index), {})[name] = value
        if slots:  # a checkpoint from before D's state was saved restarts D's Adam
            optimizer = self.disc_optimizer()
            optimizer.load_state_dict({"state": slots,
                                       "param_groups": optimizer.state_dict()["param_groups"]})
