"""Conditional VAE (survey 4.2; Sohn et al. 2015): q(z|x, c) and p(x|z, c), the
class label c entering both networks as a one-hot vector."""
from dataclasses import dataclass

import torch.nn.functional as F

from aelab.errors import ConfigError
from aelab.models.registry import register
from aelab.models.vae import VAE
from aelab.models.vae import Config as VAEConfig


@dataclass
class Config(VAEConfig):
    """The classes come from the dataset (``num_classes``)."""

    def check(self):
        if self.num_classes < 2:
            raise ConfigError("cvae needs a dataset with class labels (at least 2 classes)")


@register("cvae")
class CVAE(VAE):
    """Conditional VAE: encoder and decoder both see the class label (survey 4.2)."""
    conditional = True

    Config = Config
    about = ("A VAE whose encoder and decoder both see the class label c, so the code only has "
             "to carry what the label does not (style), and one can ask the decoder for a "
             "chosen class.")
    loss_latex = r"L_{CVAE} = -\mathbb{E}_{z \sim q_\phi(z|x,c)} \log p_\theta(x|z,c) + D_{KL}\big(q_\phi(z|x,c) \,\|\, p_\theta(z|c)\big)"

    @property
    def cond_dim(self):
        return self.config.num_classes

    def condition(self, y):
        if y is None:
            raise ConfigError("cvae needs class labels y for encode and decode")
        return F.one_hot(y.long(), self.config.num_classes).float()  # (B, num_classes)
