"""Every variant registers itself on import; add one line here for a new file."""
from . import ae, denoising, sparse, ksparse, contractive, vae, cvae, betavae, betatcvae, factorvae, adagvae, semivae  # noqa: F401
from .base import AEConfig, AEOutput, Autoencoder  # noqa: F401
