"""Side-by-side comparisons of runs with PCA at the same code size, and the
figures the pages show (no streamlit here: pages only lay these out).

- ``pick_examples``: which test images to show (seeded random, per class, worst for a run)
- ``reconstruction_rows``: originals, each run's reconstruction and PCA's, with errors
- ``denoising_rows``: a corrupted input, each run's output and PCA's, MSE to the clean image
- ``image_grid``: aligned rows of images as one uint8 picture
- ``loss_figure``: Plotly curves, one line per loss term (and per run)
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch

from aelab.metrics.evaluate import fit_pca, pca_reconstruct, reconstruct_array, reconstruction_errors
from aelab.metrics.names import term_help, term_name
from aelab.models.denoising import add_noise
from aelab.runs.folder import ROW_BOOKKEEPING, loss_rows

SELECTIONS = ("random", "per class", "worst")


@dataclass
class Row:
    """One labelled row of images (N, C, H, W) in [0, 1] with its error per image."""

    label: str
    images: np.ndarray
    mse: float | None = None
    bce: float | None = None
    per_image_mse: np.ndarray | None = field(default=None, repr=False)


def pick_examples(x: np.ndarray, y: np.ndarray | None, how: str = "random", n: int = 10,
                  seed: int = 0, model=None) -> np.ndarray:
    """Indices of ``n`` test images: seeded random, one per class in turn, or the worst
    reconstructed by ``model`` (highest per-image MSE)."""
    if how not in SELECTIONS:
        raise ValueError(f"selection must be one of {', '.join(SELECTIONS)}, got {how!r}")
    n = min(n, len(x))
    rng = np.random.default_rng(seed)
    if how == "random" or (how == "per class" and y is None):
        return np.sort(rng.choice(len(x), size=n, replace=False))
    if how == "per class":
        classes = np.unique(y)
        picks = [rng.permutation(np.flatnonzero(y == c)) for c in classes]
        order = [p[i] for i in range(max(map(len, picks))) for p in picks if i < len(p)]
        return np.array(order[:n])
    if model is None:
        raise ValueError("the worst-reconstructed selection needs a run")
    errors, _ = reconstruction_errors(reconstruct_array(model, x, y), x)
    return np.argsort(-errors)[:n]


def _output_rows(models: dict, inputs: np.ndarray, y: np.ndarray | None, clean: np.ndarray,
                 pca_for: Callable[[int], object]) -> list[Row]:
    """Each model's output for ``inputs`` and PCA's with as many components as each distinct
    latent_dim, with MSE and BCE against ``clean``."""
    rows, sizes = [], []
    for label, model in models.items():
        out = reconstruct_array(model, inputs, y)
        per_image, bce = reconstruction_errors(out, clean)
        rows.append(Row(label, out, float(per_image.mean()), bce, per_image))
        if model.config.latent_dim not in sizes:
            sizes.append(model.config.latent_dim)
    for k in sizes:
        pca = pca_for(k)
        out = np.clip(pca_reconstruct(pca, inputs), 0, 1)
        per_image, bce = reconstruction_errors(out, clean)
        rows.append(Row(f"PCA ({pca.n_components_} components)", out, float(per_image.mean()),
                        bce, per_image))
    return rows


def reconstruction_rows(models: dict, x: np.ndarray, y: np.ndarray | None, x_train: np.ndarray,
                        pca_for: Callable[[int], object] | None = None) -> list[Row]:
    """Originals, then each model's reconstruction, then PCA's with as many components as
    the model's latent_dim (one PCA row per distinct size), each with MSE and BCE.

    ``pca_for(k)`` returns a PCA fitted on ``x_train`` (default: fit it now).
    """
    pca_for = pca_for or (lambda k: fit_pca(x_train, k))
    return [Row("original", x), *_output_rows(models, x, y, x, pca_for)]


def denoising_rows(models: dict, x: np.ndarray, y: np.ndarray | None, x_train: np.ndarray,
                   noise: str, level: float, seed: int = 0,
                   pca_for: Callable[[int], object] | None = None) -> list[Row]:
    """Clean images, a seeded corruption of them, each model's output on the corrupted
    images and PCA's, with the MSE of each to the clean images."""
    pca_for = pca_for or (lambda k: fit_pca(x_train, k))
    generator = torch.Generator().manual_seed(seed)
    noisy = add_noise(torch.from_numpy(x), noise, level, generator=generator).numpy()
    per_image, _ = reconstruction_errors(noisy, x)
    rows = [Row("clean", x), Row(f"{noise} {level:.2f}", noisy, float(per_image.mean()))]
    return rows + _output_rows(models, noisy, y, x, pca_for)


def image_grid(rows: list[np.ndarray], pad: int = 2, scale: int = 1) -> np.ndarray:
    """Rows of images (each (N, C, H, W) in [0, 1]) as one uint8 picture, (H', W') or (H', W', 3)."""
    if not rows:
        raise ValueError("image_grid needs at least one row")
    c, h, w = rows[0].shape[1:]
    n = max(len(r) for r in rows)
    grid = np.ones((c, len(rows) * (h + pad) + pad, n * (w + pad) + pad), dtype=np.float32)
    for i, row in enumerate(rows):
        for j, image in enumerate(row):
            top, left = pad + i * (h + pad), pad + j * (w + pad)
            grid[:, top:top + h, left:left + w] = image
    picture = (np.clip(grid, 0, 1) * 255).round().astype(np.uint8)
    if scale > 1:
        picture = picture.repeat(scale, axis=1).repeat(scale, axis=2)
    return picture[0] if c == 1 else picture.transpose(1, 2, 0)


def loss_figure(curves: dict[str, list[dict]], terms: list[str] | None = None):
    """Plotly figure of logged loss terms against epoch: one line per (run, term).

    Several runs: one colour per run, one dash per term, and the legend grouped under each
    run's label (below the plot, so many runs never squeeze it)."""
    import plotly.graph_objects as go
    from plotly.colors import qualitative

    figure = go.Figure()
    dashes = ("solid", "dash", "dot", "dashdot", "longdash", "longdashdot")
    several = len(curves) > 1
    for i, (run, rows) in enumerate(curves.items()):
        rows = loss_rows(rows)  # live MIG rows have their own figure
        names = terms or [k for k in (rows[0] if rows else {}) if k not in ROW_BOOKKEEPING]
        for j, name in enumerate(names):
            points = [(r["epoch"], r[name]) for r in rows if name in r]
            if not points:
                continue
            xs, ys = zip(*points)
            style = dict(color=qualitative.Plotly[i % 10], dash=dashes[j % len(dashes)]) if several else {}
            # the term's human name in the legend, its one-line explanation on hover
            hover = f"{term_name(name)}: %{{y:.4g}} at epoch %{{x}}<br>{_wrap(term_help(name))}<extra>{run}</extra>"
            figure.add_trace(go.Scatter(x=xs, y=ys, mode="lines+markers", name=term_name(name),
                                        hovertemplate=hover,
                                        legendgroup=run if several else None,
                                        legendgrouptitle_text=run if several else None,
                                        line=style, marker=dict(size=4)))
    figure.update_layout(xaxis_title="epoch", yaxis_title="loss (per image)", height=360,
                         margin=dict(l=40, r=10, t=30, b=40), legend_title_text="term")
    if several:
        figure.update_layout(height=360 + 24 * len(curves), legend=dict(
            orientation="h", yanchor="top", y=-0.2, xanchor="left", x=0, title_text=""))
    return figure


def logged_terms(curves: dict[str, list[dict]]) -> list[str]:
    """The loss terms ``loss_figure`` draws for ``curves``, each once, in order."""
    return list(dict.fromkeys(k for rows in curves.values() for r in loss_rows(rows)[:1] for k in r
                              if k not in ROW_BOOKKEEPING))


def _wrap(text: str, width: int = 70) -> str:
    """``text`` broken into lines of about ``width`` characters for a Plotly hover box."""
    import textwrap

    return "<br>".join(textwrap.wrap(text, width))


def mig_figure(curves: dict[str, list[dict]]):
    """Plotly figure of the live MIG (rows with ``mig``, scored by the trainer) against
    training minutes, one line per run; None when no run has scored one."""
    import plotly.graph_objects as go

    figure = go.Figure()
    for run, rows in curves.items():
        points = [(r["train_seconds"] / 60, r["mig"]) for r in rows if "mig" in r]
        if points:
            xs, ys = zip(*points)
            figure.add_trace(go.Scatter(x=xs, y=ys, mode="lines+markers", name=run,
                                        marker=dict(size=5)))
    if not figure.data:
        return None
    figure.update_layout(xaxis_title="training minutes", yaxis_title="MIG (0 = entangled, 1 = "
                         "one dimension per factor)", yaxis_range=[0, 1], height=300,
                         margin=dict(l=40, r=10, t=30, b=40), legend_title_text="run")
    return figure
