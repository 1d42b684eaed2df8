"""Sparse autoencoder (survey 3.2; Ng's notes): sigmoid code units whose mean
activation rho_hat_j over the batch is pulled towards a small rho by a KL penalty."""
from dataclasses import dataclass

import torch

from aelab.models.base import AEConfig, Autoencoder, param
from aelab.models.losses import bernoulli_kl
from aelab.models.registry import register


@dataclass
class Config(AEConfig):
    rho: float = param(0.05, "target mean activation of each code unit", gt=0.0, lt=1.0)
    sparsity_weight: float = param(1.0, "weight of the sparsity penalty (the survey's beta)", ge=0.0)


@register("sparse")
class SparseAE(Autoencoder):
    """Sparse autoencoder: sigmoid code with a KL(rho || rho_hat) penalty (survey 3.2)."""
    target_rate = True

    Config = Config
    about = ("Code units are sigmoids whose average activation over the data is pulled towards a "
             "small target rho by a KL penalty, so each unit is active for few inputs and units "
             "specialise.")
    loss_latex = r"L_{SAE} = L(\theta) + \beta \sum_{j=1}^{s} \rho \log\frac{\rho}{\hat\rho_j} + (1-\rho)\log\frac{1-\rho}{1-\hat\rho_j},\quad \hat\rho_j = \frac{1}{n}\sum_i a_j(x^{(i)})"

    def encode(self, x, y=None):
        return torch.sigmoid(super().encode(x, y))  # (B, K) activations in (0, 1)

    def penalties(self, x, out):
        # L_SAE = L + beta * sum_j KL(rho || rho_hat_j), rho_hat_j = mean_i a_j(x_i)
        rho_hat = out.code.mean(0)  # (K,)
        sparsity = bernoulli_kl(self.config.rho, rho_hat).sum()
        return {"sparsity": (sparsity, self.config.sparsity_weight * sparsity)}
