"""The model contract every variant follows: a config dataclass, an output
record, and a base class whose hooks the variants override.

A variant overrides only the hook it changes:
- ``corrupt(x)``       the input seen in training (denoising)
- ``encode(x, y)``     the code (sparse: sigmoid units; k-sparse: top-k)
- ``code(x, y)``       the code fed to the decoder in ``forward`` (VAE: a sample)
- ``penalties(x, out)`` extra loss terms (sparsity, contractive, KL)
- ``condition(y)``     the vector both networks are conditioned on (CVAE)
- ``trainable_parameters()`` / ``after_step(x, out)`` a variant with a second network
                       trained by its own objective (FactorVAE's discriminator) keeps it
                       out of the trainer's optimizer and updates it after each step
- ``train_state()`` / ``load_train_state(tensors)`` that second network's optimizer state,
                       kept in the run's checkpoint so a resumed run is exact
- ``finish_training()`` a last change once training ends (VAE: pruning collapsed latents)
- ``factor_use``       what a variant that learns from the data's known generative factors
                       does with them ("" = nothing); it trains only on datasets that have them
- ``trains_on_pairs``  True: each training batch of B images is followed by B partners that
                       share all but some of their known factors (Ada-GVAE)
- ``start_training(x, factors)`` told once before the first step: the training images and
                       their factors (semi-supervised: keeps a few labelled ones)
- ``fp32_only``        a reason the variant cannot train in bfloat16 ("" = it can)

A variant also declares what it can do, as class-level flags named in ``CAPABILITIES``
(each variant sets only the flags that differ from its parent). Pages choose runs by these
(``aelab.models.with_capabilities``), never by a variant's name.
"""
from __future__ import annotations

import copy
import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from torch import nn

from aelab.config import Settings, param
from aelab.errors import ConfigError
from aelab.models.losses import LIKELIHOODS, reconstruction
from aelab.models.nn import Decoder, Encoder

ARCHS = ("mlp", "conv", "burgess")

# capability flag -> what a model that has it can do (a page's "needs ..." sentence uses it)
CAPABILITIES = {
    "plain": "is a plain autoencoder (no regulariser, a deterministic code)",
    "corrupts_input": "is trained on corrupted inputs (a noise and its level)",
    "samples_prior": "samples from a prior (decoding z ~ N(0, I) gives new images)",
    "conditional": "is conditioned on a class label",
    "kl_per_dim": "has a Gaussian posterior with a KL per code dimension",
    "target_rate": "has sparse code units with a target rate rho",
    "kept_k": "keeps only the k largest code units",
    "contractive_jacobian": "penalises its encoder's Jacobian",
}
DEFAULT_HIDDEN = {"mlp": (512, 256), "conv": (32, 64), "burgess": (32, 32, 64, 64)}


@dataclass
class AEConfig(Settings):
    """Settings common to every variant. Subclasses add their own fields."""

    hidden_from_parameters: ClassVar[tuple[str, ...]] = ("input_shape", "num_classes")
    latent_dim: int = param(16, "size of the code", ge=1, le=4096)
    arch: str = param("mlp", "encoder/decoder architecture", choices=ARCHS)
    hidden: tuple[int, ...] = param((), "MLP layer sizes or conv channels; empty = 512,256 "
                                         "for mlp, 32,64 for conv, 32,32,64,64 for burgess "
                                         "(convs + two FC 256 layers)")
    likelihood: str = param("bernoulli", "reconstruction likelihood: bernoulli = BCE, "
                                         "gaussian = squared error", choices=LIKELIHOODS)
    input_shape: tuple[int, ...] = param((1, 28, 28), "image shape (C, H, W), set from the dataset")
    num_classes: int = param(0, "number of labels in the dataset (0 = unlabelled)", ge=0)

    def check_data(self, train_images: int) -> None:
        """Rules that need the number of training images; raise ConfigError (none here)."""

    def validate(self) -> None:
        """Resolve defaults, check every field's rules, then the cross-field rules."""
        if not self.hidden:
            self.hidden = DEFAULT_HIDDEN.get(self.arch, ())
        self.hidden = tuple(int(h) for h in self.hidden)
        self.input_shape = tuple(int(s) for s in self.input_shape)
        super().validate()
        if any(h < 1 for h in self.hidden):
            raise ConfigError(f"hidden sizes must be positive integers, got {self.hidden}")
        if len(self.input_shape) != 3 or min(self.input_shape) < 1:
            raise ConfigError(f"input_shape must be (C, H, W), got {self.input_shape}")
        if self.arch != "mlp":
            channels, height, width = self.input_shape
            shrink = 2 ** len(self.hidden)
            if height % shrink or width % shrink:
                raise ConfigError(
                    f"conv arch with {len(self.hidden)} layers needs height and width divisible "
                    f"by {shrink}, but the images are {height}x{width}; use fewer conv layers "
                    f"(hidden) or arch mlp")

    # --- description ---
    @property
    def input_dim(self) -> int:
        return math.prod(self.input_shape)

    @property
    def overcomplete(self) -> bool:
        """A code larger than the input (survey 2): allowed, and reported."""
        return self.latent_dim > self.input_dim

    @classmethod
    def own_parameters(cls) -> list[dict[str, Any]]:
        """The parameters this variant adds to the common ones."""
        common = {f.name for f in dataclasses.fields(AEConfig)}
        return [p for p in cls.parameters() if p["name"] not in common]


@dataclass
class AEOutput:
    """What ``forward`` returns: decoder logits, the code and variant extras."""

    recon: torch.Tensor                    # (B, C, H, W) logits; sigmoid gives the image
    code: torch.Tensor                     # (B, latent_dim) the code fed to the decoder
    extras: dict[str, torch.Tensor] = field(default_factory=dict)  # mu, logvar, y, ...


class Autoencoder(nn.Module):
    """Vanilla autoencoder x -> z = g(x) -> f(z) (survey 2); the base of every variant."""

    Config = AEConfig
    variant = ""
    about = ""       # two or three sentences for the Train page
    loss_latex = ""  # the loss as in the survey, for st.latex

    def __init__(self, config: AEConfig):
        super().__init__()
        self.config = config
        self.encoder = Encoder(config.arch, config.input_shape, config.hidden,
                               self.encoder_out_dim(), self.cond_dim)
        self.decoder = Decoder(config.arch, config.input_shape, config.hidden,
                               config.latent_dim, self.cond_dim)
        self.step, self.total_steps = 0, 1
        self.train_size = 0  # examples in the training set, told by the trainer (0 = unknown)

    # --- what it can do (CAPABILITIES; a variant sets the flags that differ) ---
    plain = False
    corrupts_input = False
    samples_prior = False
    conditional = False
    kl_per_dim = False
    target_rate = False
    kept_k = False
    contractive_jacobian = False

    @classmethod
    def capabilities(cls) -> frozenset[str]:
        """The names of the capabilities this variant declares."""
        return frozenset(name for name in CAPABILITIES if getattr(cls, name))

    # why the variant cannot train under bfloat16 autocast ("" = it can: every shipped one does,
    # tests/test_precision.py); precision auto keeps such a variant in float32 and bf16 is
    # refused with this reason (aelab.training.precision)
    fp32_only = ""

    # --- hooks the variants override ---
    cond_dim = 0
    factor_use = ""
    trains_on_pairs = False

    def encoder_out_dim(self) -> int:
        return self.config.latent_dim

    def condition(self, y: torch.Tensor | None) -> torch.Tensor | None:
        return None

    def corrupt(self, x: torch.Tensor) -> torch.Tensor:
        return x

    def penalties(self, x: torch.Tensor, out: AEOutput) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        """Extra loss terms: name -> (value to log, contribution to the total)."""
        return {}

    def trainable_parameters(self):
        """The parameters the trainer's optimizer updates with ``loss``."""
        return self.parameters()

    def after_step(self, x: torch.Tensor, out: AEOutput) -> dict[str, torch.Tensor]:
        """Called by the trainer after each optimizer step; extra terms to log."""
        return {}

    def train_state(self) -> dict[str, torch.Tensor]:
        """Tensors a resumed run needs beyond the weights and the trainer's optimizer (a second
        network's optimizer state), saved in the run's checkpoint."""
        return {}

    def load_train_state(self, tensors: dict[str, torch.Tensor]) -> None:
        """Restore what ``train_state`` saved (told ``{}`` by an older checkpoint)."""

    def finish_training(self) -> None:
        """Called by the trainer once training ends well, before the final weights are saved."""

    def pruned_latents(self) -> list[int]:
        """Indices of the code dimensions pinned to the prior (none unless a VAE prunes)."""
        return []

    def stopped_copy(self) -> "Autoencoder":
        """A copy, in eval mode, of the model a run stopped now would save (``finish_training``
        applied); this model is untouched (live scores and benches use it)."""
        stopped = copy.deepcopy(self)
        stopped.finish_training()
        return stopped.eval()

    # --- the contract ---
    def encode(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """The deterministic code of ``x``: (B, latent_dim)."""
        return self.encoder(x, self.condition(y))

    def decode(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """Decoder logits for codes ``z``: (B, C, H, W); ``torch.sigmoid`` gives images."""
        return self.decoder(z, self.condition(y))

    def code(self, x: torch.Tensor, y: torch.Tensor | None = None):
        """The code the decoder sees in ``forward`` and any extras: (z, extras)."""
        return self.encode(x, y), {}

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> AEOutput:
        x_in = self.corrupt(x) if self.training else x
        z, extras = self.code(x_in, y)
        if y is not None:
            extras["y"] = y
        return AEOutput(recon=self.decode(z, y), code=z, extras=extras)

    def loss(self, x: torch.Tensor, out: AEOutput) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Total loss (mean over the batch) and each term's value, for logging."""
        terms = {"recon": reconstruction(out.recon, x, self.config.likelihood).mean()}
        total = terms["recon"]
        for name, (value, contribution) in self.penalties(x, out).items():
            terms[name] = value
            total = total + contribution
        return total, terms

    # --- helpers shared by trainer, evaluation and app ---
    def start_training(self, x: torch.Tensor, factors) -> None:
        """Told by the trainer once, before the first step (and again on resuming): the
        training images (N, C, H, W) on the device, bool or float, and their generative
        factor indices (N, factors) as a numpy array, or None where the data has none."""

    def start_step(self, step: int, total_steps: int) -> None:
        """Told by the trainer before each step (drives schedules such as k or capacity)."""
        self.step, self.total_steps = step, max(total_steps, 1)

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """Images in [0, 1] decoded from the deterministic code of ``x``."""
        return torch.sigmoid(self.decode(self.encode(x, y), y))

    @classmethod
    def summary(cls) -> str:
        """The first line of the variant's docstring."""
        return (cls.__doc__ or "").strip().splitlines()[0]
