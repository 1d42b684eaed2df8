"""What a person reads for each metric and loss term: a human name and a one-line explanation.

One table for every page (no streamlit here; ``aelab.ui.tables`` shows tables with it): the raw
keys (``knn_acc``, ``pca_recon_mse``, ``dci_disentanglement``...) stay in the files, the
downloads and ``--json``; a page shows ``metric_name(key)`` with ``metric_help(key)`` as its
tooltip. A term that can come out negative says why in its line.
"""
from __future__ import annotations

# key -> (human name, one line: what it measures, and which way is better)
METRICS: dict[str, tuple[str, str]] = {
    # evaluate (eval.json): the test split
    "n_images": ("Test images", "How many test images these scores average over."),
    "latent_dim": ("Code size", "How many numbers the encoder squeezes each image into (latent dimensions)."),
    "recon_mse": ("Reconstruction error (MSE per pixel)",
                  "Mean squared difference between a test image and its reconstruction, per pixel; lower is better."),
    "recon_bce": ("Reconstruction error (BCE per image, nats)",
                  "Binary cross-entropy of the reconstruction summed over an image's pixels; lower is better."),
    "pca_components": ("PCA components", "How many principal components the PCA baseline keeps: the code size."),
    "pca_recon_mse": ("PCA reconstruction error (MSE per pixel)",
                      "The same error for PCA with as many components as the code: the baseline to beat."),
    "elbo": ("ELBO (nats per image)",
             "Evidence lower bound, -(reconstruction BCE + KL) per test image: higher is better."),
    "kl": ("KL to the prior (nats)",
           "How far the encoder's q(z|x) is from N(0, I), summed over latents, per image; never negative."),
    "active_units": ("Active latents",
                     "Latents whose mean code varies across test images (variance above 0.01); the rest are unused."),
    "knn_acc": ("5-NN accuracy (codes)",
                "How often the 5 nearest training codes vote for a test image's true class; higher is better."),
    "linear_acc": ("Linear-probe accuracy (codes)",
                   "Accuracy of a logistic regression fitted on the training codes, on the test codes."),
    "pca_knn_acc": ("5-NN accuracy (PCA codes)", "The 5-NN accuracy of PCA codes of the same size: the baseline."),
    "pca_linear_acc": ("Linear-probe accuracy (PCA codes)",
                       "The linear-probe accuracy of PCA codes of the same size: the baseline."),
    # the Latent space score table (scores.json)
    "space": ("Space scored", "The run's codes, PCA codes of the same size, or the raw pixels."),
    "dims": ("Dimensions", "How many numbers describe each image in that space."),
    "trust PCA 2-D": ("Trustworthiness, PCA picture",
                      "How well the 2-D PCA picture keeps each point's 5 nearest neighbours (1 = all kept)."),
    "trust UMAP 2-D": ("Trustworthiness, UMAP picture",
                       "How well the 2-D UMAP picture keeps each point's 5 nearest neighbours (1 = all kept)."),
    # disentanglement (disentangle.json): 0 = entangled, 1 = one latent per factor
    "beta_vae": ("β-VAE metric", "How often a linear classifier tells which factor was held fixed from code "
                                 "differences (Higgins et al. 2017); higher is better."),
    "factor_vae": ("FactorVAE metric", "How often the least-varying latent names the factor held fixed, by "
                                       "majority vote (Kim & Mnih 2018); higher is better."),
    "mig": ("MIG (mutual information gap)", "Per factor, the best latent's information minus the runner-up's, "
                                            "as a share of the factor's entropy (Chen et al. 2018); higher is better."),
    "dci_disentanglement": ("DCI disentanglement", "How much each latent's importance is concentrated on one "
                                                   "factor (Eastwood & Williams 2018); higher is better."),
    "dci_completeness": ("DCI completeness", "How much each factor is captured by a single latent "
                                             "(Eastwood & Williams 2018); higher is better."),
    "dci_informativeness": ("DCI informativeness", "How accurately the factors can be predicted from the code "
                                                   "at all, disentangled or not; higher is better."),
    "BCE per pixel": ("Reconstruction BCE per pixel", "The test BCE of an image divided by its number of "
                                                      "pixels, so 32x32 and 64x64 runs compare; lower is better."),
    "image": ("Image size", "Height x width of the run's images in pixels."),
    # the Reconstructions table
    "MSE per pixel": ("MSE per pixel", "Mean squared difference between the images and this row, per pixel; "
                                       "lower is better."),
    "BCE per image (nats)": ("BCE per image (nats)", "Binary cross-entropy of the row's images summed over "
                                                     "an image's pixels; lower is better."),
}

# logged loss terms (metrics.jsonl) -> (human name, one line); what the Runs page's curves show
LOSS_TERMS: dict[str, tuple[str, str]] = {
    "loss": ("Total loss", "What the optimiser minimises: the reconstruction plus each penalty times its weight, "
                           "per image."),
    "recon": ("Reconstruction", "How badly the decoder rebuilds its input (BCE or squared error summed over an "
                                "image's pixels); never negative."),
    "kl": ("KL to the prior", "KL(q(z|x) || N(0, I)) summed over latents: what a code costs for saying much "
                              "about its image; never negative."),
    "mi": ("Index-code mutual information", "beta-TCVAE's part of the KL that ties a code to its own image "
                                            "(Chen et al. 2018), estimated on each minibatch."),
    "tc": ("Total correlation", "How far the latents are from independent, the part beta-TCVAE and FactorVAE "
                                "weight; an estimate (from the minibatch, or FactorVAE's discriminator), so it "
                                "can read above or below its true value, and a FactorVAE's can dip below 0."),
    "dim_kl": ("Dimension-wise KL", "beta-TCVAE's KL of each latent to N(0, 1) (Chen et al. 2018), estimated "
                                    "from one minibatch of a large dataset: that estimate undercounts each "
                                    "latent's density, so this term can go far below 0 (and the total "
                                    "correlation as far above) although the true KL cannot; mi + tc + dim_kl "
                                    "is still the VAE's KL."),
    "contractive": ("Contractive penalty", "||J_f(x)||_F^2, how much the code moves when the input moves; "
                                           "never negative."),
    "sparsity": ("Sparsity penalty", "sum_j KL(rho || rho_hat_j): how far each unit's mean activation is from the "
                                     "target rho; never negative."),
    "disc": ("Discriminator loss", "FactorVAE's discriminator telling real codes from shuffled ones (cross-entropy); "
                                   "about 0.69 (log 2) when it cannot tell them apart."),
    "labels": ("Label loss", "semivae's cross-entropy between the labelled latents and the few labelled "
                             "sprites' factors; never negative."),
    "mig": ("Live MIG", "MIG scored by the training process on 2,000 fixed sprites (0 = entangled, 1 = one "
                        "latent per factor)."),
}


# why a metric is empty for some runs: "n/a - <reason>" in its cell
NOT_APPLICABLE = {
    "elbo": "only a model with a prior (a VAE) has one",
    "kl": "only a model with a prior (a VAE) has one",
    "active_units": "only a model with a prior (a VAE) has one",
    "knn_acc": "the dataset has no labels", "linear_acc": "the dataset has no labels",
    "pca_knn_acc": "the dataset has no labels", "pca_linear_acc": "the dataset has no labels",
    "trust PCA 2-D": "no 2-D picture is drawn of these codes",
    "trust UMAP 2-D": "no 2-D picture is drawn of these codes",
    "BCE per image (nats)": "PCA gives no probabilities to score",
}


def metric_name(key: str) -> str:
    """The human name of a metric or loss term (the key itself when it has none)."""
    return (METRICS.get(key) or LOSS_TERMS.get(key) or (key, ""))[0]


def metric_help(key: str) -> str:
    """The one-line explanation of a metric or loss term ("" when it has none)."""
    return (METRICS.get(key) or LOSS_TERMS.get(key) or (key, ""))[1]


def term_name(key: str) -> str:
    """The human name of a logged loss term (its key when it has none)."""
    return LOSS_TERMS.get(key, (key, ""))[0]


def term_help(key: str) -> str:
    """The one-line explanation of a logged loss term ("" when it has none)."""
    return LOSS_TERMS.get(key, (key, ""))[1]
