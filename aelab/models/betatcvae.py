"""beta-TCVAE (Chen et al. 2018, "Isolating Sources of Disentanglement in VAEs",
arXiv:1802.04942; the total-correlation view of survey 4.3's beta-VAE).

The VAE's averaged KL splits into index-code mutual information, total correlation
(TC) and dimension-wise KL (Chen et al., eq. 2); beta-TCVAE weights them separately:

loss = -E_q[log p(x|z)] + alpha * I_q(z; x) + beta * TC(z) + gamma * sum_j KL(q(z_j) || p(z_j))

with alpha = gamma = 1 in the paper, so only the TC term, which rewards statistically
independent code dimensions, is penalised harder. The aggregate posterior q(z) is
estimated on each minibatch by minibatch-weighted sampling (``losses.tc_decomposition``).
"""
from dataclasses import dataclass

from ..losses import tc_decomposition
from ..variants import register
from .base import param
from .vae import VAE, Config as VAEConfig


@dataclass
class Config(VAEConfig):
    alpha: float = param(1.0, "weight of the index-code mutual information I(z; x)", ge=0.0)
    beta: float = param(6.0, "weight of the total correlation (beta = 1 is the VAE)", ge=0.0)
    gamma: float = param(1.0, "weight of the dimension-wise KL", ge=0.0)


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

    def penalties(self, x, out):
        c = self.config
        mi, tc, dim_kl = (t.mean() for t in tc_decomposition(
            out.code, out.extras["mu"], out.extras["logvar"], self.train_size))
        return {"mi": (mi, c.alpha * mi), "tc": (tc, c.beta * tc), "dim_kl": (dim_kl, c.gamma * dim_kl)}
