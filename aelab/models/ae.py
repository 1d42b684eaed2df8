"""Vanilla autoencoder (survey 2): under- or overcomplete, trained to reconstruct."""
from dataclasses import dataclass

from aelab.models.base import AEConfig, Autoencoder
from aelab.models.registry import register


@dataclass
class Config(AEConfig):
    """No settings beyond the common ones."""


@register("ae")
class VanillaAE(Autoencoder):
    """Vanilla autoencoder: code z = g(x), reconstruction f(z) (survey 2)."""
    plain = True

    Config = Config
    about = ("An encoder squeezes each image into a short code and a decoder rebuilds the image "
             "from it; both are trained together to make the reconstruction match the input. "
             "With a code smaller than the input it is undercomplete and must keep only the most "
             "salient structure; a larger code (overcomplete) can learn the identity and needs "
             "regularisation.")
    loss_latex = r"L_{AE}(\theta,\phi) = \frac{1}{n}\sum_{i=1}^{n} \ell\big(x^{(i)}, f_\theta(g_\phi(x^{(i)}))\big)"
