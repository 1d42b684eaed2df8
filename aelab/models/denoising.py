"""Denoising autoencoder (survey 3.1; Vincent et al. 2008): reconstruct the clean
x from a corrupted copy x~ ~ M_D(x~|x), drawn in training only."""
from dataclasses import dataclass

import torch

from aelab.models.base import AEConfig, Autoencoder, param
from aelab.models.registry import register

NOISES = ("gaussian", "masking", "salt_pepper")


def add_noise(x: torch.Tensor, noise: str, level: float,
              generator: torch.Generator | None = None) -> torch.Tensor:
    """A corrupted copy of images ``x`` in [0, 1], the survey's M_D(x~|x).

    gaussian: x + level * N(0, 1), clipped to [0, 1]; masking: each pixel set to
    0 with probability ``level``; salt_pepper: each pixel set to 0 or 1 (equally
    likely) with probability ``level``.
    """
    def uniform():
        return torch.rand(x.shape, generator=generator, device=x.device, dtype=x.dtype)

    if noise == "gaussian":
        gauss = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
        return (x + level * gauss).clamp(0, 1)
    if noise == "masking":
        return x * (uniform() >= level)
    if noise == "salt_pepper":
        hit = uniform() < level
        salt = (uniform() < 0.5).to(x.dtype)
        return torch.where(hit, salt, x)
    raise ValueError(f"noise must be one of {', '.join(NOISES)}, got {noise!r}")


@dataclass
class Config(AEConfig):
    noise: str = param("gaussian", "corruption M_D applied in training", choices=NOISES)
    noise_level: float = param(0.3, "gaussian std, or the fraction of pixels masked / "
                                    "salted", ge=0.0, le=1.0)


@register("denoising")
class DenoisingAE(Autoencoder):
    """Denoising autoencoder: reconstructs clean inputs from corrupted ones (survey 3.1)."""
    corrupts_input = True

    Config = Config
    about = ("The input is corrupted (Gaussian noise, masking or salt-and-pepper) during training "
             "only, and the network must reconstruct the clean image. To undo the noise it has "
             "to learn the structure of the data rather than copy pixels.")
    loss_latex = r"\tilde{x}^{(i)} \sim M_D(\tilde{x}^{(i)} \mid x^{(i)}),\quad L_{DAE} = \frac{1}{n}\sum_{i=1}^{n} \ell\big(x^{(i)}, f_\theta(g_\phi(\tilde{x}^{(i)}))\big)"

    def corrupt(self, x):
        return add_noise(x, self.config.noise, self.config.noise_level)
