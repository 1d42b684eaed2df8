"""The Lesson: the survey's sections, one screen each, on the shipped demo runs.

Pure data (no streamlit): ``pages/lesson.py`` shows one ``Step`` per screen, its short
explanation and a live widget of the kind ``step.show`` on ``step.runs``. The section
numbers are those of ``seed/autoencoders-survey.txt``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Step:
    key: str                 # URL value: /lesson?step=<key>
    title: str
    section: str             # the survey's section
    text: str                # what to say, in markdown
    show: str                # the kind of live widget
    runs: tuple[str, ...]    # demo runs it uses
    page: str                # where to explore further
    ask: str = ""            # a question for the class


STEPS = (
    Step("ae-pca", "Undercomplete autoencoder vs PCA", "2 Vanilla Autoencoder",
         "An encoder squeezes each 28x28 digit into a **16-number code**, a decoder rebuilds it; "
         "training minimises the reconstruction error. With a linear encoder and decoder the best "
         "code spans the same subspace as **PCA** with 16 components; the non-linear network can "
         "do better. Compare the rows and their error.",
         "reconstruct", ("demo-ae-z16",), "pages/reconstructions.py",
         "Which digits does PCA blur most? Why?"),
    Step("denoising", "Denoising autoencoder", "3.1 Denoising Autoencoder",
         "Corrupt the input with $M_D(\\hat x|x)$, ask for the **clean** image back. This demo was "
         "trained with masking noise (30% of pixels set to zero). Raise the level, to twice that "
         "and more: the denoising model still brings the digit back, PCA keeps the noise.",
         "denoise", ("demo-denoising", "demo-ae-z16"), "pages/reconstructions.py",
         "What happens with a corruption it was not trained on?"),
    Step("sparse", "Sparse and k-sparse codes", "3.2 Sparse / 3.3 k-Sparse Autoencoder",
         "A **sparse** AE adds $\\beta\\sum_j KL(\\rho\\|\\hat\\rho_j)$, where $\\hat\\rho_j$ is unit "
         "j's mean activation over the data: each of its 32 sigmoid units is pulled to a mean of "
         "$\\rho = 0.05$, so it stays near 0 for most images. A **k-sparse** AE keeps just the "
         "k = 8 largest units of each code and zeroes the rest; some of its units are never among "
         "them. The bars show how each unit is used over test images.",
         "sparsity", ("demo-sparse", "demo-ksparse"), "pages/inside.py",
         "How many units does one digit use in each model?"),
    Step("contractive", "Contractive autoencoder", "3.4 Contractive Autoencoder",
         "Penalising $\\|J_f(x)\\|_F^2$, the encoder's sensitivity to its input, makes the code "
         "**contract**: a small change of the input moves it less. The curves are the singular "
         "values of the Jacobian (how far the code moves along each input direction) for this run "
         "and a plain autoencoder of the same size: the contractive code's are smaller in almost "
         "every direction, and its $\\|J_f(x)\\|_F$ (in the legend) is several times smaller.",
         "jacobian", ("demo-contractive", "demo-ae-z16"), "pages/inside.py",
         "Why would insensitivity help a classifier using the code?"),
    Step("vae", "Variational autoencoder", "4.1 VAE",
         "The encoder outputs a **distribution** $q(z|x)=N(\\mu,\\sigma^2)$; the loss (ELBO) adds "
         "$KL(q(z|x)\\|N(0,I))$ to the reconstruction. So the code space is smooth: move a slider "
         "and the digit morphs, and any $z \\sim N(0, I)$ decodes to a plausible digit.",
         "vae", ("demo-vae",), "pages/traversal.py",
         "Which slider changes the digit's identity, which its slant?"),
    Step("cvae", "Conditional VAE", "4.2 CVAE",
         "Encoder and decoder also receive the **label** y. The code no longer needs to store the "
         "digit's class, only its style: fix z, change y, and the same handwriting writes every "
         "digit (each row one z, each column one class).",
         "cvae", ("demo-cvae",), "pages/generate.py",
         "What does z still encode once the class is given?"),
    Step("betavae", "beta-VAE and disentanglement", "4.3 beta-VAE",
         "Weighting the KL term by $\\beta > 1$ can push each latent towards one **generative "
         "factor**, though not always. On sprites with known factors (shape, scale, rotation, x, "
         "y) each row sweeps one latent; it is named after a factor only when it holds clearly "
         "more about that factor than any other latent (MIG gap >= 0.2), *unused* when it holds "
         "nothing (a collapsed latent, pinned to the prior when training ended), else *mixed*. "
         "Left: a beta-VAE that stayed entangled; right: a beta-TCVAE (it weights only the KL's "
         "total-correlation part) whose positions have a latent each.",
         "betavae", ("demo-betavae-shapes", "demo-betatcvae-shapes"), "pages/disentangle.py",
         "What do we pay for disentanglement?"),
)

BY_KEY = {s.key: s for s in STEPS}

# What each screen's live widget needs of its runs (``aelab.models.CAPABILITIES``), one tuple
# per run of ``step.runs``: a demo run made again as another variant is named in a sentence.
NEEDS = {
    "reconstruct": (("plain",),),
    "denoise": (("corrupts_input",), ("plain",)),
    "sparsity": (("target_rate",), ("kept_k",)),
    "jacobian": (("contractive_jacobian",), ("plain",)),
    "vae": (("samples_prior", "kl_per_dim"),),
    "cvae": (("samples_prior", "conditional"),),
    "betavae": ((), ()),
}


def unknown_step(asked: str) -> str:
    """The sentence for a ``?step=`` that names no screen."""
    return (f"There is no Lesson screen '{asked}'; the screens are: "
            f"{', '.join(s.key for s in STEPS)}. This is screen 1.")


UNIT_IMAGES = 1000      # test images the sparse screen's bars average over
JACOBIAN_IMAGES = 48    # test images the contractive screen differentiates the encoders at


def unit_use(model, x: np.ndarray) -> tuple[np.ndarray, float, str]:
    """What the sparse screen draws for one run over the first ``UNIT_IMAGES`` of ``x``: (a
    value per unit, the reference line, its name). A sparse AE: each unit's mean activation
    rho_hat_j against its target rho; a k-sparse AE: how often each unit is among the kept k
    against k / latent_dim, the share every unit would get if all were used alike."""
    from aelab.explore.latent import kept_frequency, mean_activations

    x = x[:UNIT_IMAGES]
    if model.target_rate:
        return mean_activations(model, x), float(model.config.rho), "target rho"
    k = model.current_k()  # eval mode: the alpha * k units kept at encode time
    return kept_frequency(model, x), k / model.config.latent_dim, "uniform use"


def jacobian_summary(model, x: np.ndarray) -> tuple[np.ndarray, float]:
    """What the contractive screen shows for one run at the first ``JACOBIAN_IMAGES`` of ``x``:
    the mean singular values of the encoder Jacobian (largest first) and the mean of its
    Frobenius norm ||J_f(x)||_F over those images."""
    from aelab.explore.latent import jacobian_norms, jacobian_singular_values

    values = jacobian_singular_values(model, x, n=JACOBIAN_IMAGES)
    return values.mean(0), float(jacobian_norms(values).mean())
