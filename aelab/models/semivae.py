"""Semi-supervised beta-VAE with a few labels (Locatello et al. 2020, "Disentangling Factors
of Variation Using Few Labels", ICLR 2020, arXiv:1905.01258): a beta-VAE (survey 4.3)
told the generative factors of a small labelled subset of its training images.

Latent j < 5 is given to factor j of the shapes grid (shape, scale, orientation, pos_x, pos_y),
and latent 5 to orientation's second coordinate on the circle (``orientation_circle``, on by
default); the latents after those to none. Each step adds to the beta-VAE loss of the batch a
supervised term on ``label_batch`` sprites drawn from the first ``labels`` training images,
whose factors are known (the paper's semi-supervised objective with its cross-entropy
regulariser R_s):

    L = L_beta-VAE(batch) + omega * mean_labelled sum_j w_j BCE(sigmoid(mu_j(x)), y_j)

where mu_j(x) is the posterior mean of latent j and y_j is factor j as the image shows it,
scaled to [0, 1] (``scaled_factors``); w_j is ``shape_weight`` for shape, ``scale_weight`` for
scale, ``orientation_weight`` for orientation's one or two labels and 1 for the positions (the
paper weighs them equally),
and omega falls geometrically from ``label_weight`` to ``label_weight_final`` over the run
(the paper keeps it fixed): a large omega opens the shape latent early, a smaller one later
lets reconstruction sharpen the codes (docs/disentanglement.md, "Labels").
Unsupervised disentanglement cannot be guaranteed without inductive biases or supervision
(Locatello et al. 2019); the paper finds labels on 0.01-0.5% of the data set enough to
select disentangled models and, used in training like this, to learn them. Outside training
(no labelled set) the loss is the beta-VAE's.

Two choices of ours make the labels learnable on this grid (``bench/label_targets.py``
measures both; docs/disentanglement.md, "Labels"):

* shape is categorical, so its place on [0, 1] is a choice: square 0, heart 0.5, ellipse 1.
  With the grid's order (ellipse in the middle) one squashed latent learns shape poorly;
  with the ellipse (the elongated one) at an end, about as well as a 3-way softmax.
* orientation is only partly in the image: a square turned by 90 degrees, or an ellipse by
  180, is the same picture, so index / 39 asks for different answers to one image. The label
  is therefore (1 - cos(k theta)) / 2 with k the shape's rotational symmetry (4, 2, 1): the
  same for every angle that gives the same picture, and smooth across 0 = 2 pi. The cosine
  alone gives theta and -theta one label, so with ``orientation_circle`` a second latent is
  told (1 - sin(k theta)) / 2: the point k theta on the circle, one label per picture.
"""
from dataclasses import dataclass

import numpy as np
import torch
from torch.nn import functional as F

from aelab.data.shapes import FACTORS, ORIENTATIONS, SIZES
from aelab.errors import ConfigError
from aelab.models.base import param
from aelab.models.betavae import BetaVAE
from aelab.models.betavae import Config as BetaVAEConfig
from aelab.models.registry import register


@dataclass
class Config(BetaVAEConfig):
    beta: float = param(1.0, "weight of the KL term (beta = 1 is the VAE)", ge=0.0)
    labels: int = param(10_000, "training images whose factors the model is told (the first "
                                "ones of the training set, a random sample of the grid)", ge=1)
    label_weight: float = param(100.0, "omega at the first step: weight of the supervised term",
                                ge=0.0)
    label_weight_final: float = param(10.0, "omega at the last step: omega falls geometrically "
                                            "from label_weight to this over the run (set it "
                                            "to label_weight to keep omega fixed)", ge=0.0)
    label_batch: int = param(64, "labelled images in each step's supervised term", ge=1)
    shape_weight: float = param(5.0, "w_shape: weight of shape's cross-entropy within the "
                                     "supervised term (pos_x's and pos_y's are 1)", ge=0.0)
    orientation_weight: float = param(5.0, "w_orientation: weight of orientation's cross-"
                                           "entropy within the supervised term", ge=0.0)
    scale_weight: float = param(5.0, "w_scale: weight of scale's cross-entropy within the "
                                     "supervised term", ge=0.0)
    orientation_circle: bool = param(True, "label orientation as a point on a circle: "
                                            "(1 - cos k theta) / 2 on latent 2 and "
                                            "(1 - sin k theta) / 2 on latent 5 (needs "
                                            "latent_dim >= 6); off: the cosine alone")

    # runs saved before these settings existed: weights 1, the cosine alone, a fixed omega
    saved_without = {**BetaVAEConfig.saved_without, "shape_weight": 1.0, "orientation_weight": 1.0, "scale_weight": 1.0,
                     "orientation_circle": False,
                     "label_weight_final": lambda saved: saved.get("label_weight", 10.0)}

    def check(self):
        super().check()
        if self.latent_dim < self.labelled_latents():
            circle = " and a second one to orientation" if self.orientation_circle else ""
            or_fewer = (f" (or set orientation_circle false for {len(FACTORS)})"
                        if self.orientation_circle and self.latent_dim == len(FACTORS) else "")
            raise ConfigError(f"semivae gives one latent to each of the {len(FACTORS)} factors "
                              f"({', '.join(FACTORS)}){circle}, so latent_dim must be at least "
                              f"{self.labelled_latents()}, got {self.latent_dim}{or_fewer}")
        if (self.label_weight > 0) != (self.label_weight_final > 0):
            raise ConfigError("label_weight and label_weight_final must both be positive (omega "
                              "falls geometrically from one to the other) or both 0, got "
                              f"{self.label_weight} and {self.label_weight_final}")

    def labelled_latents(self) -> int:
        """How many latents the labels supervise: one per factor, and a second for
        orientation on the circle."""
        return len(FACTORS) + self.orientation_circle

    def check_data(self, train_images):
        if self.labels > train_images:
            raise ConfigError(f"labels ({self.labels}) must not exceed the {train_images} "
                              f"training images")


SHAPE_TARGET = np.array([0.0, 1.0, 0.5])  # square, ellipse, heart: the ellipse at an end
SYMMETRY = np.array([4, 2, 1])  # turns that map each shape onto itself: square, ellipse, heart


def scaled_factors(factors: np.ndarray, circle: bool = False) -> np.ndarray:
    """The labels y (N, 5) in [0, 1] of factor indices (N, 5), each factor as the image shows
    it: shape as ``SHAPE_TARGET``, orientation theta as (1 - cos(k theta)) / 2 with k the
    shape's ``SYMMETRY``, and scale, pos_x and pos_y as index / (size - 1). With ``circle``,
    a sixth column (1 - sin(k theta)) / 2: with the cosine, the point k theta on the circle."""
    factors = np.asarray(factors)
    y = factors / (np.array(SIZES) - 1)
    y[:, 0] = SHAPE_TARGET[factors[:, 0]]
    turn = SYMMETRY[factors[:, 0]] * ORIENTATIONS[factors[:, 2]]  # k theta
    y[:, 2] = (1 - np.cos(turn)) / 2
    if circle:
        y = np.concatenate([y, (1 - np.sin(turn))[:, None] / 2], axis=1)
    return y.astype(np.float32)


@register("semivae")
class SemiVAE(BetaVAE):
    """Semi-supervised beta-VAE: a few sprites labelled with their factors (Locatello et al. 2020)."""

    Config = Config
    factor_use = "a few images labelled with their known generative factors"
    about = ("A beta-VAE told the factors of some of its training sprites (10,000 of them by "
             "default, 1.4% of the grid): latent 0 is trained to follow shape, 1 scale, "
             "2 orientation (with 5: its cosine and sine), 3 pos_x and 4 pos_y on those, by a "
             "cross-entropy between the squashed latent and the factor as the image shows it, "
             "scaled to [0, 1] "
             "(Locatello et al. 2020). Semi-supervised: it needs a dataset with known factors "
             "(shapes).")
    loss_latex = (r"L = -\mathbb{E}_{q}\log p_\theta(x|z) + \beta\, D_{KL}\big(q_\phi(z|x)\,\|\,"
                  r"p(z)\big) + \omega\,\mathbb{E}_{(x', y) \in \text{labelled}} \sum_{j} "
                  r"w_j\,\mathrm{BCE}\big(\sigma(\mu_j(x')), y_j\big)")

    def __init__(self, config):
        super().__init__(config)
        self.labelled, self.targets = None, None  # the labelled images and scaled factors
        weights = [1.0] * len(FACTORS)  # w_j
        weights[FACTORS.index("shape")] = config.shape_weight
        weights[FACTORS.index("scale")] = config.scale_weight
        weights[FACTORS.index("orientation")] = config.orientation_weight
        if config.orientation_circle:  # the sine: orientation's second latent
            weights.append(config.orientation_weight)
        self.register_buffer("factor_weights", torch.tensor(weights), persistent=False)

    def label_weight(self) -> float:
        """omega at this step: label_weight * (label_weight_final / label_weight) ** (t / T)."""
        start, end = self.config.label_weight, self.config.label_weight_final
        if start == end:  # fixed omega (Config.check: both 0, or both positive)
            return start
        return start * (end / start) ** (self.step / self.total_steps)

    def start_training(self, x, factors):
        if factors is None:
            raise ConfigError("semivae needs the factors of its training images (shapes data)")
        self.config.check_data(len(x))
        n = self.config.labels
        self.labelled = x[:n]  # a view: as the pool stores them (bool: 1 byte a pixel)
        self.targets = torch.from_numpy(
            scaled_factors(factors[:n], self.config.orientation_circle)).to(x.device)

    def penalties(self, x, out):
        terms = super().penalties(x, out)
        if self.training and self.labelled is not None:
            pick = torch.randint(len(self.labelled), (self.config.label_batch,),
                                 device=self.labelled.device)
            images = self.labelled.index_select(0, pick).float()  # float only for the batch
            mu = self.posterior(images)[0][:, :self.config.labelled_latents()]
            supervised = (F.binary_cross_entropy_with_logits(
                mu, self.targets.index_select(0, pick), reduction="none")
                * self.factor_weights).sum(1).mean()
            terms["labels"] = (supervised, self.label_weight() * supervised)
        return terms
