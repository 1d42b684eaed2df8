"""Your own input: a drawn or uploaded image made to look like the run's data, its code, its
place on the run's 2-D code maps and what lies near it. No streamlit here.

The datasets' images (``aelab.data.datasets``) are light on dark in [0, 1]: the 8x8 digits fill
their frame (scikit-learn's digits are binary 32x32 bitmaps normalised to the box, then counted
in 4x4 blocks: 17 grey levels), the 28x28 MNIST-like digits fit a 20x20 box centred by centre of mass in 28x28 (as
MNIST was made), and the sprites are binary shapes whose position is one of their factors, so
a sprite drawing keeps where it was drawn.
"""
from __future__ import annotations

import base64
import io
import warnings

import numpy as np
import torch

from aelab.errors import AelabError
from aelab.metrics.evaluate import encode_array

MAX_BYTES = 20 * 2**20        # the largest image file read (20 MiB)
MAX_PIXELS = 40_000_000       # and the most pixels it may unpack to (a PNG bomb is small on disk)
FORMATS = ("PNG", "JPEG")
BLANK = 0.05                  # a picture whose brightest pixel is darker than this is empty
MNIST_LIKE = ("mnist5k", "mnist", "fashion-mnist")
K_NEAREST = 8
MAX_CODE = 1e4                # the largest |value| a code in a link may hold


class InputError(AelabError):
    """A drawing, upload or code that cannot be used, as one sentence."""


# --- reading ---
def decode_data_url(url: str) -> bytes:
    """The bytes of a ``data:image/png;base64,...`` URL (what the drawing canvas sends)."""
    head, _, body = (url or "").partition(",")
    if head != "data:image/png;base64" or not body:
        raise InputError("The drawing did not arrive as a PNG picture; clear the canvas and draw again.")
    try:
        return base64.b64decode(body, validate=True)
    except ValueError:
        raise InputError("The drawing arrived damaged; clear the canvas and draw again.") from None


def read_image(data: bytes) -> np.ndarray:
    """A PNG or JPEG file's picture as float32 (H, W, 3) in [0, 1], transparent parts on
    white; decoded by PIL (never unpickled), with its size and pixel count checked first."""
    from PIL import Image, UnidentifiedImageError

    if not data:
        raise InputError("The file is empty; upload a PNG or JPEG image.")
    if len(data) > MAX_BYTES:
        raise InputError(f"The image takes {len(data) / 2**20:.1f} MB, more than the "
                         f"{MAX_BYTES // 2**20} MB limit; upload a smaller PNG or JPEG.")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=FORMATS) as image:
                if image.width * image.height > MAX_PIXELS:
                    raise InputError(f"The image has {image.width}x{image.height} pixels, more than "
                                     f"{MAX_PIXELS // 1_000_000} million; upload a smaller PNG or JPEG.")
                image.load()
                rgba = image.convert("RGBA")
    except InputError:
        raise
    except (UnidentifiedImageError, Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise InputError("The file is not a PNG or JPEG image (or is too large to unpack); upload a "
                         "PNG or JPEG.") from None
    except (OSError, ValueError, SyntaxError):  # truncated or damaged image data
        raise InputError("The image file is damaged and cannot be read; upload a PNG or JPEG.") from None
    pixels = np.asarray(rgba, dtype=np.float32) / 255.0
    alpha = pixels[..., 3:]
    return pixels[..., :3] * alpha + (1.0 - alpha)  # transparent parts show as white paper


# --- made to look like the run's data ---
def _resize(grey: np.ndarray, height: int, width: int) -> np.ndarray:
    """Area-averaging resize of a float image (PIL's box filter on 32-bit float pixels)."""
    from PIL import Image

    picture = Image.fromarray(np.ascontiguousarray(grey, dtype=np.float32), mode="F")
    return np.asarray(picture.resize((width, height), Image.Resampling.BOX), dtype=np.float32)


def _ink(picture: np.ndarray) -> np.ndarray:
    """The picture as grey ink on black (H, W): its luminance, inverted when the paper is light
    (the border's median above one half), since every dataset draws light on dark."""
    grey = picture @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    border = np.concatenate([grey[0], grey[-1], grey[:, 0], grey[:, -1]])
    return 1.0 - grey if np.median(border) > 0.5 else grey


def _fit_box(ink: np.ndarray, box: int) -> np.ndarray:
    """The ink's bounding box scaled (aspect kept) so its longer side is ``box`` pixels."""
    rows, cols = np.flatnonzero(ink.max(1) > BLANK), np.flatnonzero(ink.max(0) > BLANK)
    crop = ink[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]
    side = max(crop.shape)
    h, w = (max(1, round(box * n / side)) for n in crop.shape)
    return _resize(crop, h, w)


def _paste(patch: np.ndarray, height: int, width: int, centre: tuple[float, float]) -> np.ndarray:
    """``patch`` on a black (height, width) image, moved by whole pixels so that its centre of
    mass lands on ``centre`` (row, column); what falls outside is cut."""
    out = np.zeros((height, width), dtype=np.float32)
    weight = patch.sum()
    ys, xs = np.indices(patch.shape)
    mass = (float((ys * patch).sum() / weight), float((xs * patch).sum() / weight))
    top, left = round(centre[0] - mass[0]), round(centre[1] - mass[1])
    y0, x0 = max(top, 0), max(left, 0)
    y1, x1 = min(top + patch.shape[0], height), min(left + patch.shape[1], width)
    out[y0:y1, x0:x1] = patch[y0 - top:y1 - top, x0 - left:x1 - left]
    return out


def is_blank(picture: np.ndarray) -> bool:
    """True when the picture holds no ink (an empty canvas, a blank page)."""
    return float(_ink(picture).max()) < BLANK


def prepare(picture: np.ndarray, dataset: str, shape: tuple[int, int, int]) -> np.ndarray:
    """A picture (H, W, 3) in [0, 1] as the run's model sees its data: (C, H', W') float32 in
    [0, 1] of the dataset's ``shape``, made the way that dataset's images were (module
    docstring); another dataset (a user's npz) gets the whole picture resized."""
    from aelab.data.datasets import is_shapes

    channels, height, width = shape
    if channels == 3 and not (dataset in MNIST_LIKE or dataset == "digits" or is_shapes(dataset)):
        return np.stack([_resize(picture[..., c], height, width) for c in range(3)]).clip(0, 1)
    if is_blank(picture):
        raise InputError("The picture is empty; draw something (light strokes on the dark canvas) "
                         "or upload an image with a visible shape.")
    ink = _ink(picture)
    if dataset == "digits":  # as the digits were made: a binary 32x32 bitmap, counted in 4x4 blocks
        box = (_fit_box(ink, 4 * min(height, width)) >= 0.5).astype(np.float32)
        bitmap = _paste(box, 4 * height, 4 * width, _middle_to_mass(box, 4 * height, 4 * width))
        x = bitmap.reshape(height, 4, width, 4).mean((1, 3))
    elif dataset in MNIST_LIKE:  # a 20x20 box in 28x28, its centre of mass at the centre
        box = _fit_box(ink, round(min(height, width) * 20 / 28))
        x = _paste(box, height, width, ((height - 1) / 2, (width - 1) / 2))
    elif is_shapes(dataset):  # the sprite stays where it was drawn; binary pixels
        x = (_resize(ink, height, width) >= 0.5).astype(np.float32)
        if not x.any():
            raise InputError("The drawn shape is too thin to survive at this run's size; draw a "
                             "filled shape with a wider brush.")
    else:
        x = _resize(ink, height, width)
    peak = float(x.max())
    if dataset in MNIST_LIKE and peak > 0:
        x = x / peak  # the strokes' cores at full intensity, as in the data
    return np.broadcast_to(x.clip(0, 1), (channels, height, width)).astype(np.float32)


def _middle_to_mass(box: np.ndarray, height: int, width: int) -> tuple[float, float]:
    """Where ``_paste`` must put the box's centre of mass so that the box's middle sits in the
    middle of the frame (the digits are centred by their bounding box)."""
    ys, xs = np.indices(box.shape)
    mass = ((ys * box).sum() / box.sum(), (xs * box).sum() / box.sum())
    return ((height - box.shape[0]) / 2 + mass[0], (width - box.shape[1]) / 2 + mass[1])


# --- the model's view of it ---
def encode_input(model, x: np.ndarray, y: int | None = None) -> np.ndarray:
    """The code of one image ``x`` (C, H, W) as the library encodes it (``encode_array``:
    the posterior mean for VAEs): (latent_dim,)."""
    return encode_array(model, x[None], None if y is None else np.array([y]))[0]


@torch.no_grad()
def posterior_sigma(model, x: np.ndarray, y: int | None = None) -> np.ndarray | None:
    """The posterior's standard deviations (latent_dim,) for a VAE-family model, else None."""
    from aelab.explore.latent import is_vae

    if not is_vae(model):
        return None
    device = next(model.parameters()).device
    y_t = None if y is None else torch.tensor([y], device=device)
    _, logvar = model.posterior(torch.as_tensor(x[None], device=device), y_t)
    return (0.5 * logvar[0]).exp().cpu().numpy()


def corrupt(model, x: np.ndarray, seed: int = 0) -> np.ndarray:
    """``x`` corrupted by the run's own training noise (a denoising run's ``noise`` and
    ``noise_level``), seeded."""
    from aelab.models.denoising import add_noise

    generator = torch.Generator().manual_seed(seed)
    noisy = add_noise(torch.as_tensor(x[None]), model.config.noise, model.config.noise_level, generator)
    return noisy[0].numpy()


def nearest(rows: np.ndarray, query: np.ndarray, k: int = K_NEAREST) -> np.ndarray:
    """Indices of the ``k`` rows (N, ...) nearest to ``query`` (Euclidean), nearest first."""
    flat = rows.reshape(len(rows), -1)
    distance = ((flat - query.reshape(1, -1)) ** 2).sum(1)
    return np.argsort(distance, kind="stable")[:min(k, len(flat))]


def ellipse(centre: np.ndarray, covariance: np.ndarray, radius: float, n: int = 73) -> np.ndarray:
    """The closed curve (n, 2) of the points at Mahalanobis distance ``radius`` from ``centre``
    under a 2x2 ``covariance``: centre + radius * L [cos t, sin t] with L L^T = covariance."""
    t = np.linspace(0.0, 2 * np.pi, n)
    values, vectors = np.linalg.eigh(covariance)  # L = V sqrt(Lambda) (any square root will do)
    root = vectors * np.sqrt(np.maximum(values, 0.0))
    return centre + radius * (root @ np.stack([np.cos(t), np.sin(t)])).T


def projected_ellipses(linear: tuple[np.ndarray, np.ndarray], mu: np.ndarray, sigma: np.ndarray,
                       radii=(1.0, 2.0)) -> list[np.ndarray]:
    """The 1- and 2-sigma ellipses of the posterior N(mu, diag(sigma^2)) in a linear 2-D view
    u = A (z - m): the image of the ellipsoid (z - mu)^T S^-1 (z - mu) = r^2 under A is exactly
    the ellipse of N(A (mu - m), A S A^T) with the same r, so the outline is the projection."""
    a, mean = linear
    centre = a @ (mu - mean)
    covariance = (a * sigma.astype(np.float64) ** 2) @ a.T  # A diag(sigma^2) A^T: (2, 2)
    return [ellipse(centre, covariance, r) for r in radii]


# --- a code in a link ---
def code_text(code: np.ndarray) -> str:
    """A code as the ``?code=`` text the Traversal page reads: comma-separated numbers."""
    return ",".join(f"{float(v):.5g}" for v in code)


def parse_code(raw: str, latent_dim: int) -> np.ndarray:
    """The code in a ``?code=`` link: exactly ``latent_dim`` finite numbers, each at most
    ``MAX_CODE`` in size; anything else is one sentence."""
    parts = [p.strip() for p in str(raw).split(",")]
    try:
        code = np.array([float(p) for p in parts], dtype=np.float32)
    except ValueError:
        raise InputError(f"The link's code is not a list of numbers; it needs {latent_dim} "
                         "comma-separated numbers, one per latent dimension.") from None
    if len(code) != latent_dim:
        raise InputError(f"The link's code has {len(code)} numbers but this run has {latent_dim} "
                         "latent dimensions.")
    if not np.isfinite(code).all() or np.abs(code).max() > MAX_CODE:
        raise InputError(f"The link's code holds a value that is not finite or larger than "
                         f"{MAX_CODE:g}; open the Traversal page from the Latent space page again.")
    return code


# --- the picture of it on the code maps ---
def input_map(views: dict[str, tuple], labels: np.ndarray | None, columns: int = 2):
    """The run's code maps (title -> (points (N, 2), marker (2,), ellipses or None)) with the
    input's place starred and, where given, its posterior's 1- and 2-sigma ellipses: the
    ``label_scatters`` figure with three traces a view added after its label traces."""
    import plotly.graph_objects as go

    from aelab.explore.latent import label_scatters

    figure = label_scatters({title: v[0] for title, v in views.items()}, labels, columns=columns)
    for i, (points, marker, ellipses) in enumerate(views.values()):
        where = dict(row=i // columns + 1, col=i % columns + 1)
        for r, curve in zip((1, 2), ellipses or []):
            figure.add_trace(go.Scatter(x=curve[:, 0], y=curve[:, 1], mode="lines", showlegend=False,
                                        line=dict(color="black", width=2 if r == 1 else 1,
                                                  dash="solid" if r == 1 else "dash"),
                                        name=f"{r}-sigma", hoverinfo="name"), **where)
        figure.add_trace(go.Scatter(x=[marker[0]], y=[marker[1]], mode="markers", name="your input",
                                    showlegend=i == 0, hovertemplate="your input<extra></extra>",
                                    marker=dict(symbol="star", size=18, color="black",
                                                line=dict(color="white", width=1.5))), **where)
    figure.update_layout(dragmode="pan")
    return figure
