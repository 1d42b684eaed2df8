"""What the explore pages compute: latent scores, traversals, generation,
interpolation and looks inside a model. No streamlit here.
"""
from __future__ import annotations

import io

import numpy as np
import torch

from aelab.metrics.evaluate import encode_array, probe_scores

KL_INACTIVE = 0.01  # nats: a dimension carrying less KL than this is marked inactive
TRUST_POINTS = 2000  # trustworthiness is O(n^2): scored on a seeded subset
# Latent views of at most this many points per view are drawn as SVG, larger ones in WebGL:
# without a GPU (software WebGL) SVG draws such views several times faster (docs/performance.md).
SVG_POINTS = 5000


def is_vae(model) -> bool:
    """True for models with a Gaussian posterior (the ``kl_per_dim`` capability; they
    define ``posterior``)."""
    return bool(getattr(model, "kl_per_dim", False)) and hasattr(model, "posterior")


# --- latent space scores ---
def trustworthiness_2d(high: np.ndarray, low: np.ndarray, n_neighbors: int = 5,
                       seed: int = 0) -> float:
    """scikit-learn's trustworthiness of a 2-D view ``low`` of points ``high`` (1 = perfect)."""
    from sklearn.manifold import trustworthiness

    if len(high) > TRUST_POINTS:
        pick = np.random.default_rng(seed).choice(len(high), TRUST_POINTS, replace=False)
        high, low = high[pick], low[pick]
    k = min(n_neighbors, (len(high) - 1) // 2)
    return float(trustworthiness(high.reshape(len(high), -1), low, n_neighbors=k))


def latent_scores(model, dataset, caches: dict) -> list[dict]:
    """5-NN and linear-probe accuracy (train split -> cached test points) and the
    trustworthiness of each 2-D view, for the codes, PCA codes of the same size and raw pixels."""
    from aelab.metrics.evaluate import fit_pca

    x_test = dataset.x_test[caches["index"]]
    y_test = caches.get("labels")
    flat_train = dataset.x_train.reshape(len(dataset.x_train), -1)
    flat_test = x_test.reshape(len(x_test), -1)
    pca = fit_pca(dataset.x_train, model.config.latent_dim)
    spaces = {
        "codes": (lambda: encode_array(model, dataset.x_train, dataset.y_train), caches["codes"]),
        f"PCA codes ({pca.n_components_})": (lambda: pca.transform(flat_train), pca.transform(flat_test)),
        "raw pixels": (lambda: flat_train, flat_test),
    }
    rows = []
    for name, (train_fn, test) in spaces.items():
        row = {"space": name, "dims": int(test.shape[1])}
        if y_test is not None and dataset.y_train is not None:
            row.update(probe_scores(train_fn(), dataset.y_train, test, y_test))
        rows.append(row)
    views = {"codes": ("pca_codes", "umap_codes"), "raw pixels": ("pca_pixels", "umap_pixels")}
    for row in rows:
        high = caches["codes"] if row["space"] == "codes" else flat_test
        for key in views.get(row["space"], ()):
            row[f"trust {key.split('_')[0].upper()} 2-D"] = trustworthiness_2d(high, caches[key])
    return rows


def label_groups(labels: np.ndarray | None, n: int, name=str) -> list[tuple[str, str | None, np.ndarray]]:
    """(name, colour, indices of its points) of each label class of ``n`` points, in sorted
    order with a categorical palette, each class named by ``name(label)`` (a dataset's
    ``aelab.data.datasets.class_name``); one unnamed, uncoloured group of all points without
    labels."""
    from plotly.colors import qualitative

    if labels is None:
        return [("", None, np.arange(n))]
    classes, codes = np.unique(labels, return_inverse=True)  # codes: class index per point
    palette = qualitative.Plotly if len(classes) <= 10 else qualitative.Alphabet
    return [(name(c), palette[i % len(palette)], np.flatnonzero(codes == i))
            for i, c in enumerate(classes)]


def label_scatters(views: dict[str, np.ndarray], labels: np.ndarray | None,
                   selected: list[int] | None = None, columns: int = 2, name=str):
    """One Plotly figure of every 2-D view in ``views`` (title -> points (N, 2), the same N
    points in each), one subplot per view, ``columns`` a row; in each subplot one trace per
    label class (``label_groups``: one colour per class, named in one legend), SVG up to
    ``SVG_POINTS`` points, else WebGL; trace ``v * len(groups) + g`` holds view v's points
    of group g, so ``selected_indices`` maps a selection event back to point indices.
    ``selected`` points are highlighted in every view, the others faded. One figure, not one
    per view: a selection anywhere is one event. ``name``: a label's name (``label_groups``).

    The form keeps the browser's work small: a constant colour per trace, not a colour scale
    per point, and fixed margins (``autoexpand`` off: the legend would widen the margin and
    Plotly draw every point twice; docs/performance.md).
    """
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    n = len(next(iter(views.values())))
    groups = label_groups(labels, n, name)
    chosen = None if not selected else np.asarray(selected)
    scatter = go.Scatter if n <= SVG_POINTS else go.Scattergl
    rows = -(-len(views) // columns)
    figure = make_subplots(rows=rows, cols=columns, subplot_titles=list(views),
                           horizontal_spacing=0.07, vertical_spacing=70 / (360 * rows))  # ~70 px
    for v, points in enumerate(views.values()):
        for group, colour, member in groups:
            figure.add_trace(scatter(
                x=points[member, 0], y=points[member, 1], mode="markers", name=group,
                marker=dict(size=4, opacity=0.8, color=colour), legendgroup=group,
                showlegend=v == 0 and labels is not None,
                hovertemplate=f"class {group}<extra></extra>" if labels is not None else None,
                # an empty list fades every point of the trace; None: no selection at all
                selectedpoints=None if chosen is None else np.flatnonzero(np.isin(member, chosen)).tolist(),
                unselected=dict(marker=dict(opacity=0.12))), row=v // columns + 1, col=v % columns + 1)
    figure.update_layout(height=360 * rows + 40, dragmode="lasso",
                         margin=dict(l=45, r=90, t=40, b=30, autoexpand=False),
                         legend=dict(title_text="class", itemclick=False, itemdoubleclick=False,
                                     itemsizing="constant"))
    return figure


def selected_indices(points: list[dict], groups: list[tuple]) -> list[int]:
    """The point indices of a selection event's ``points`` on a ``label_scatters`` figure
    drawn with ``groups`` (``label_groups``: trace c holds group c % len(groups)'s points, in
    any view, so an index names the same point in every view): sorted, each once."""
    return sorted({int(groups[int(p.get("curve_number", 0)) % len(groups)][2][int(p["point_index"])])
                   for p in points})


def nearest_neighbours(codes: np.ndarray, index: int, k: int = 8) -> np.ndarray:
    """Indices of the ``k`` nearest other points to ``codes[index]`` (Euclidean, code space),
    nearest first; never ``index`` itself (fewer than ``k`` when there are fewer other points)."""
    distance = np.linalg.norm(codes - codes[index], axis=1)
    distance[index] = np.inf
    return np.argsort(distance, kind="stable")[:min(k, len(codes) - 1)]


# --- traversal ---
def dimension_order(kl_per_dim: np.ndarray | None, latent_dim: int,
                    threshold: float = KL_INACTIVE) -> tuple[list[int], list[int]]:
    """(active, inactive) dimensions: by KL descending for VAE-family runs, else in order."""
    if kl_per_dim is None:
        return list(range(latent_dim)), []
    kl_per_dim = np.asarray(kl_per_dim)
    order = [int(d) for d in np.argsort(-kl_per_dim, kind="stable")]  # ties keep index order
    return [d for d in order if kl_per_dim[d] >= threshold], [d for d in order if kl_per_dim[d] < threshold]


@torch.no_grad()
def traversal_range(model, x: np.ndarray, y: np.ndarray | None, codes: np.ndarray,
                    width: float = 3.0) -> tuple[np.ndarray, np.ndarray]:
    """Per-dimension (low, high) slider range.

    VAE family: -+ ``width`` standard deviations of the aggregate posterior
    q(z) = mean_x q(z|x), centred at 0 (the prior's mean); its variance per dimension is
    Var_x[mu_d] + E_x[sigma_d^2] over the points ``x`` (the mixture's exact variance, so
    the population variance of mu, not the n-1 estimate).
    Plain autoencoders: the observed code range [min, max] of ``codes``.
    """
    if is_vae(model):
        device = next(model.parameters()).device
        y_t = None if y is None else torch.as_tensor(y, device=device)
        mu, logvar = model.posterior(torch.as_tensor(x, device=device), y_t)
        spread = (mu.var(0, correction=0) + logvar.exp().mean(0)).sqrt().cpu().numpy()
        return -width * spread, width * spread
    return codes.min(0), codes.max(0)


@torch.no_grad()
def decode_codes(model, z: np.ndarray, y=None) -> np.ndarray:
    """Images in [0, 1] decoded from codes ``z`` (N, latent_dim): (N, C, H, W)."""
    device = next(model.parameters()).device
    z_t = torch.as_tensor(np.asarray(z, dtype=np.float32), device=device)
    y_t = None if y is None else torch.as_tensor(np.broadcast_to(y, (len(z_t),)).copy(), device=device)
    return torch.sigmoid(model.decode(z_t, y_t)).cpu().numpy()


def traversal_grid(model, base: np.ndarray, dims: list[int], low: np.ndarray, high: np.ndarray,
                   steps: int = 9, y=None) -> np.ndarray:
    """Decoded images for each dimension in ``dims`` swept over ``steps`` values from
    low to high, the other dimensions held at ``base``: (len(dims), steps, C, H, W)."""
    codes = np.repeat(base[None, None, :], len(dims), 0).repeat(steps, 1).astype(np.float32)
    for row, d in enumerate(dims):
        codes[row, :, d] = np.linspace(low[d], high[d], steps)
    images = decode_codes(model, codes.reshape(-1, len(base)), y)
    return images.reshape(len(dims), steps, *images.shape[1:])


def png_bytes(picture: np.ndarray) -> bytes:
    """A uint8 picture (H, W) or (H, W, 3) as PNG bytes."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(picture).save(buffer, format="PNG")
    return buffer.getvalue()


def gif_bytes(frames: list[np.ndarray], duration_ms: int = 120) -> bytes:
    """uint8 pictures as an animated GIF that plays forwards then backwards, looping."""
    from PIL import Image

    sequence = [Image.fromarray(f) for f in frames + frames[-2:0:-1]]
    buffer = io.BytesIO()
    sequence[0].save(buffer, format="GIF", save_all=True, append_images=sequence[1:],
                     duration=duration_ms, loop=0)
    return buffer.getvalue()


# --- generation and interpolation ---
def prior_samples(model, n: int, seed: int = 0, y=None) -> np.ndarray:
    """``n`` images decoded from z ~ N(0, I) (seeded): (n, C, H, W)."""
    z = np.random.default_rng(seed).standard_normal((n, model.config.latent_dim)).astype(np.float32)
    return decode_codes(model, z, y)


def class_swap_grid(model, n: int, seed: int = 0) -> np.ndarray:
    """For a CVAE: ``n`` prior codes (rows) decoded with every label (columns):
    (n, num_classes, C, H, W)."""
    classes = model.config.num_classes
    z = np.random.default_rng(seed).standard_normal((n, model.config.latent_dim)).astype(np.float32)
    z_all = np.repeat(z, classes, axis=0)  # (n * classes, latent_dim)
    labels = np.tile(np.arange(classes), n)
    images = decode_codes(model, z_all, labels)
    return images.reshape(n, classes, *images.shape[1:])


def slerp(a: np.ndarray, b: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Spherical interpolation between vectors a and b at fractions t: (len(t), D)."""
    cos = np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-12)
    omega = np.arccos(np.clip(cos, -1.0, 1.0))
    if omega < 1e-6:
        return np.outer(1 - t, a) + np.outer(t, b)
    return (np.outer(np.sin((1 - t) * omega), a) + np.outer(np.sin(t * omega), b)) / np.sin(omega)


def interpolation_codes(model, x_a: np.ndarray, x_b: np.ndarray, y_a=None, y_b=None,
                        steps: int = 8) -> dict[str, np.ndarray]:
    """The code paths of ``interpolation_rows`` from image a's code to image b's:
    linear, and spherical for the VAE family; each (steps, latent_dim)."""
    t = np.linspace(0.0, 1.0, steps)
    za = encode_array(model, x_a[None], None if y_a is None else np.array([y_a]))[0]
    zb = encode_array(model, x_b[None], None if y_b is None else np.array([y_b]))[0]
    paths = {"linear in code space": np.outer(1 - t, za) + np.outer(t, zb)}
    if is_vae(model):
        paths["spherical in code space"] = slerp(za, zb, t)
    return paths


def interpolation_rows(model, x_a: np.ndarray, x_b: np.ndarray, y_a=None, y_b=None,
                       steps: int = 8) -> dict[str, np.ndarray]:
    """Rows from image a to image b: linear (and spherical, VAE family) in code space,
    and plain pixel blending. Each row is (steps, C, H, W); code rows start and end at
    the decodings of the two images' own codes (with their own labels for a CVAE, which
    switches label half way)."""
    t = np.linspace(0.0, 1.0, steps)
    label = None if y_a is None else np.where(t < 0.5, y_a, y_b)
    rows = {name: decode_codes(model, path, label)
            for name, path in interpolation_codes(model, x_a, x_b, y_a, y_b, steps).items()}
    rows["pixel blending"] = (1 - t)[:, None, None, None] * x_a + t[:, None, None, None] * x_b
    return rows


# --- inside a model ---
def first_and_last_linear(model):
    """The encoder's first Linear layer and the decoder's last (MLP runs only), else None."""
    if model.config.arch != "mlp":
        return None
    encoder = [m for m in model.encoder.modules() if isinstance(m, torch.nn.Linear)]
    decoder = [m for m in model.decoder.modules() if isinstance(m, torch.nn.Linear)]
    return encoder[0], decoder[-1]


def filters_and_atoms(model, n: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """Encoder filters (rows of the first weight matrix) and decoder atoms (columns of the
    last), each scaled by its own contrast: a filter symmetric around 0 (0 mid grey, its
    largest |weight| black or white, so a sign pattern shows), an atom to its own [min, max]:
    two arrays (n, C, H, W) in [0, 1]."""
    layers = first_and_last_linear(model)
    if layers is None:
        raise ValueError("filters and atoms are shown for MLP runs only")
    first, last = layers
    shape = model.config.input_shape
    d = int(np.prod(shape))
    filters = first.weight.detach().cpu().numpy()[:n, :d]       # (n, D): one per hidden unit
    atoms = last.weight.detach().cpu().numpy().T[:n]             # (n, D): one per last hidden unit

    def rescale(w):
        low, high = w.min(1, keepdims=True), w.max(1, keepdims=True)
        return ((w - low) / np.maximum(high - low, 1e-12)).reshape(len(w), *shape)

    def symmetric(w):
        return (0.5 + 0.5 * w / np.maximum(np.abs(w).max(1, keepdims=True), 1e-12)).reshape(len(w), *shape)

    return symmetric(filters), rescale(atoms)


def mean_activations(model, x: np.ndarray, y=None) -> np.ndarray:
    """Mean activation of each code unit over images ``x`` (sparse AE: rho_hat_j)."""
    return encode_array(model, x, y).mean(0)


def kept_frequency(model, x: np.ndarray, y=None) -> np.ndarray:
    """How often each code unit is non-zero (kept among the top k) over images ``x``."""
    return (encode_array(model, x, y) != 0).mean(0)


def jacobian_singular_values(model, x: np.ndarray, y=None, n: int = 64) -> np.ndarray:
    """Singular values of the encoder Jacobian dz/dx at the first ``n`` images:
    (n, min(latent_dim, D)), each row sorted descending.

    One backward pass per code unit k over the whole batch: the gradient of sum_i z_k(x_i)
    with respect to x_i is row k of image i's Jacobian, as each image's code depends on its
    own pixels only (an eval-mode encoder); latent_dim passes, not n * latent_dim."""
    device = next(model.parameters()).device
    xt = torch.as_tensor(x[:n], device=device).clone().requires_grad_()
    yt = None if y is None else torch.as_tensor(y[:n], device=device)
    with torch.enable_grad():
        z = model.encode(xt, yt)  # (n, K)
        rows = [torch.autograd.grad(z[:, k].sum(), xt, retain_graph=k < z.shape[1] - 1)[0]
                for k in range(z.shape[1])]
    jac = torch.stack([r.reshape(len(xt), -1) for r in rows], 1)  # (n, K, D)
    return torch.linalg.svdvals(jac).detach().cpu().numpy()


def jacobian_norms(singular_values: np.ndarray) -> np.ndarray:
    """The Frobenius norm ||J_f(x)||_F of each image's encoder Jacobian from its singular values
    (rows of ``jacobian_singular_values``): ||J||_F^2 = sum_ij J_ij^2 = sum_k s_k^2, the very
    quantity the contractive penalty sums; it says how far the code moves for a small step of
    the input, whatever its direction."""
    return np.sqrt((np.asarray(singular_values, dtype=np.float64) ** 2).sum(-1))
