"""Metrics of a trained run on held-out data, beside PCA at the same code size.

``evaluate_run`` is what ``python -m aelab evaluate`` prints: reconstruction
error (MSE per pixel, BCE in nats per image), PCA's reconstruction error with
``latent_dim`` components fitted on the train split, the ELBO, KL and active
units for VAE-family models, and 5-NN / linear-probe accuracy of the codes
against PCA codes of the same size when the data has labels, each accuracy with its 95%
bootstrap interval over the test points (``<key>_ci``, ``probe_scores``).
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from aelab.data.datasets import load_dataset
from aelab.errors import RunError
from aelab.models.losses import gaussian_kl
from aelab.runs.refs import RunRef

ACTIVE_UNIT_THRESHOLD = 0.01  # Burda et al. 2016: Var_x(E_q[z_d]) above this counts as active


def _batches(n: int, size: int):
    for start in range(0, n, size):
        yield slice(start, min(start + size, n))


def _tensor(a, device, dtype=None):
    return None if a is None else torch.as_tensor(a, device=device, dtype=dtype)


@torch.no_grad()
def encode_array(model, x: np.ndarray, y: np.ndarray | None = None, batch_size: int = 1024) -> np.ndarray:
    """Deterministic codes (posterior means for VAEs) of images ``x``: (N, latent_dim)."""
    device = next(model.parameters()).device
    out = [model.encode(_tensor(x[s], device), _tensor(None if y is None else y[s], device)).cpu()
           for s in _batches(len(x), batch_size)]
    return torch.cat(out).numpy()


@torch.no_grad()
def reconstruct_array(model, x: np.ndarray, y: np.ndarray | None = None,
                      batch_size: int = 1024) -> np.ndarray:
    """Images in [0, 1] decoded from the deterministic codes of ``x``: (N, C, H, W)."""
    device = next(model.parameters()).device
    out = [model.reconstruct(_tensor(x[s], device), _tensor(None if y is None else y[s], device)).cpu()
           for s in _batches(len(x), batch_size)]
    return torch.cat(out).numpy()


def reconstruction_errors(recon: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, float]:
    """Per-image MSE per pixel (N,) and the mean BCE in nats per image of images in [0, 1]."""
    per_image = ((recon - target) ** 2).reshape(len(target), -1).mean(1)
    clipped = np.clip(recon, 1e-7, 1 - 1e-7)  # PCA outputs and saturated sigmoids
    bce = -(target * np.log(clipped) + (1 - target) * np.log(1 - clipped))
    return per_image, float(bce.reshape(len(target), -1).sum(1).mean())


def fit_pca(x_train: np.ndarray, n_components: int):
    """Exact PCA (``aelab.metrics.pca``, numpy) on flattened images, with at most as many components
    as the data allows."""
    from aelab.metrics.pca import fit

    return fit(x_train.reshape(len(x_train), -1), n_components)


def pca_reconstruct(pca, x: np.ndarray) -> np.ndarray:
    """PCA reconstruction of images ``x``, same shape as ``x``."""
    flat = x.reshape(len(x), -1)
    return pca.inverse_transform(pca.transform(flat)).reshape(x.shape)


def probe_scores(train_codes, y_train, test_codes, y_test, seed: int | None = None) -> dict:
    """5-NN accuracy and linear-probe (logistic regression) accuracy of codes, each with its
    95% bootstrap interval (``knn_acc_ci``, ``linear_acc_ci``; ``aelab.metrics.bootstrap``).

    The interval keeps both fitted classifiers (fitted once on the whole train split: a
    refit of the linear probe on 784 or 4096 pixels is too dear to repeat) and resamples the
    test points, ``MEAN_RESAMPLES`` times: it says how precisely the finite test set pins
    down these classifiers' accuracy, not how much a classifier fitted to another train
    split would vary. ``seed``: the resampling's (default ``bootstrap.SEED``)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from aelab.metrics.bootstrap import SEED, accuracy_interval

    knn = KNeighborsClassifier(n_neighbors=min(5, len(train_codes))).fit(train_codes, y_train)
    linear = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500))
    linear.fit(train_codes, y_train)
    out = {}
    for name, classifier in (("knn_acc", knn), ("linear_acc", linear)):
        correct = classifier.predict(test_codes) == np.asarray(y_test)  # (N,)
        out[name] = float(correct.mean())
        out[f"{name}_ci"] = accuracy_interval(correct, SEED if seed is None else seed)
    return out


@torch.no_grad()
def vae_scores(model, x: np.ndarray, y: np.ndarray | None, seed: int = 0,
               batch_size: int = 1024) -> dict:
    """ELBO (z sampled), KL, KL per dimension and active units of a VAE-family model."""
    device = next(model.parameters()).device
    nll, kl_dims, means = [], [], []
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(seed)
        for s in _batches(len(x), batch_size):
            xb, yb = _tensor(x[s], device), _tensor(None if y is None else y[s], device)
            mu, logvar = model.posterior(xb, yb)
            logits = model.decode(model.reparameterize(mu, logvar), yb)
            bce = F.binary_cross_entropy_with_logits(logits, xb, reduction="none")
            nll.append(bce.flatten(1).sum(1).cpu())
            kl_dims.append(gaussian_kl(mu, logvar).cpu())
            means.append(mu.cpu())
    nll, kl_dims, means = torch.cat(nll), torch.cat(kl_dims), torch.cat(means)
    kl = kl_dims.sum(1)
    return {"elbo": float(-(nll + kl).mean()), "kl": float(kl.mean()),
            "kl_per_dim": kl_dims.mean(0).tolist(),
            "active_units": int((means.var(0) > ACTIVE_UNIT_THRESHOLD).sum())}


def evaluate_model(model, dataset, seed: int = 0) -> dict:
    """Every metric of ``model`` on ``dataset``'s evaluation split (see module docstring)."""
    x, y = dataset.evaluation_split()
    if tuple(x.shape[1:]) != tuple(model.config.input_shape):
        raise RunError(f"dataset {dataset.name} has images of shape {tuple(x.shape[1:])} but the "
                       f"run was trained on {tuple(model.config.input_shape)}")
    model.eval()
    recon = reconstruct_array(model, x, y)
    if not np.isfinite(recon).all():  # finite weights can still overflow on this data
        raise RunError(f"the model gives NaN or infinite reconstructions of {dataset.name}: its "
                       f"weights are too large (the training diverged); train it again")
    per_image_mse, recon_bce = reconstruction_errors(recon, x)
    latent_dim = model.config.latent_dim
    pca = fit_pca(dataset.x_train, latent_dim)
    scores = {"n_images": int(len(x)), "latent_dim": latent_dim,
              "recon_mse": float(per_image_mse.mean()),
              "recon_bce": recon_bce,
              "pca_components": int(pca.n_components_),
              "pca_recon_mse": float(((pca_reconstruct(pca, x) - x) ** 2).mean())}
    if hasattr(model, "posterior"):
        scores.update(vae_scores(model, x, y, seed))
    if y is not None and dataset.y_train is not None and len(np.unique(dataset.y_train)) > 1:
        codes = probe_scores(encode_array(model, dataset.x_train, dataset.y_train),
                             dataset.y_train, encode_array(model, x, y), y)
        flat_train = dataset.x_train.reshape(len(dataset.x_train), -1)
        baseline = probe_scores(pca.transform(flat_train), dataset.y_train,
                                pca.transform(x.reshape(len(x), -1)), y)
        scores.update(codes)
        scores.update({f"pca_{k}": v for k, v in baseline.items()})
    return scores


def evaluate_run(run, dataset: str | None = None, runs_dir=None, device: str = "cpu") -> dict:
    """``evaluate_model`` for a run (a RunRef, a run folder, or a run id confined to ``runs_dir``), on
    its own dataset unless one is named."""
    run = RunRef.checked_if_text(run, runs_dir)
    config = run.config
    model = run.load_model(device)
    name = dataset or config["dataset"]
    scores = evaluate_model(model, load_dataset(name), seed=config["train_config"].seed)
    return {"run": run.run_id, "variant": config["variant"], "dataset": name, **scores}
