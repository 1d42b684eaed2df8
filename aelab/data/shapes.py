"""Procedural sprites over the dSprites factor grid (Matthey et al. 2017), 64x64 by
default and at any other side length (``render(..., side=32)``: the same picture, scaled).

Five generative factors, 737,280 combinations, each image drawn on demand and
deterministically from its factor indices (nothing downloaded or stored):

    shape        3   square, ellipse, heart
    scale        6   0.5 to 1
    orientation 40   0 to 2 pi
    pos_x       32   0 to 1 (left to right)
    pos_y       32   0 to 1 (top to bottom)

``render`` draws images from factor indices; ``sample_factors`` draws factor
indices uniformly (optionally with one factor held at a value), which is what
the disentanglement metrics need.
"""
from __future__ import annotations

import numpy as np

FACTORS = ("shape", "scale", "orientation", "pos_x", "pos_y")
SIZES = (3, 6, 40, 32, 32)
SHAPES = ("square", "ellipse", "heart")
SIDE = 64
RADIUS = 9.0   # pixels at scale 1: the sprite fits in a circle of this radius
MARGIN = 10.0  # pixels kept clear at each border at pos 0 and 1
N_COMBINATIONS = int(np.prod(SIZES))  # 737,280

SCALES = np.linspace(0.5, 1.0, SIZES[1])
ORIENTATIONS = np.linspace(0.0, 2 * np.pi, SIZES[2])
POSITIONS = np.linspace(0.0, 1.0, SIZES[3])


def factor_values(factors: np.ndarray) -> np.ndarray:
    """Factor indices (N, 5) -> their values (N, 5): shape id, scale, angle, x, y in [0, 1]."""
    f = np.asarray(factors)
    return np.stack([f[:, 0], SCALES[f[:, 1]], ORIENTATIONS[f[:, 2]], POSITIONS[f[:, 3]],
                     POSITIONS[f[:, 4]]], axis=1).astype(np.float64)


def _inside(shape: int, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Membership of sprite-local coordinates (u right, v down, unit = RADIUS) in one shape."""
    if shape == 0:  # square
        return np.maximum(np.abs(u), np.abs(v)) <= 0.7
    if shape == 1:  # ellipse, twice as wide as tall
        return u ** 2 + (v / 0.5) ** 2 <= 1.0
    p, q = 1.15 * u, -1.15 * v + 0.25  # heart curve (p^2 + q^2 - 1)^3 - p^2 q^3 <= 0, q up
    return (p ** 2 + q ** 2 - 1) ** 3 - p ** 2 * q ** 3 <= 0


def render(factors: np.ndarray, chunk: int = 2048, side: int = SIDE) -> np.ndarray:
    """Images (N, 1, side, side) float32 in {0, 1} for factor indices (N, 5); sizes and
    margins scale with ``side`` (64 is the reference), so every side shows the same grid."""
    factors = np.asarray(factors, dtype=np.int64)
    if factors.ndim != 2 or factors.shape[1] != len(FACTORS):
        raise ValueError(f"factors must have shape (N, {len(FACTORS)}), got {factors.shape}")
    if (factors < 0).any() or (factors >= np.array(SIZES)).any():
        raise ValueError(f"factor indices must be within {SIZES}")
    if side < 8:
        raise ValueError(f"side must be at least 8 pixels, got {side}")
    unit = side / SIDE  # pixels of this rendering per pixel of the 64x64 reference
    centres = (np.arange(side, dtype=np.float32) + 0.5) / unit  # pixel centres, reference units
    out = np.empty((len(factors), 1, side, side), dtype=np.float32)
    for start in range(0, len(factors), chunk):
        values = factor_values(factors[start:start + chunk]).astype(np.float32)
        shape, scale, angle = values[:, 0].astype(int), values[:, 1], values[:, 2]
        cx = MARGIN + values[:, 3] * (SIDE - 2 * MARGIN)
        cy = MARGIN + values[:, 4] * (SIDE - 2 * MARGIN)
        dx = (centres[None, None, :] - cx[:, None, None])  # (n, 1, W)
        dy = (centres[None, :, None] - cy[:, None, None])  # (n, H, 1)
        cos, sin = np.cos(angle)[:, None, None], np.sin(angle)[:, None, None]
        r = (RADIUS * scale)[:, None, None]
        u = (cos * dx + sin * dy) / r  # rotate the image frame by -angle into the sprite frame
        v = (-sin * dx + cos * dy) / r  # (n, H, W)
        block = out[start:start + chunk, 0]
        for shape_id in range(len(SHAPES)):
            rows = shape == shape_id
            if rows.any():
                block[rows] = _inside(shape_id, u[rows], v[rows])
    return out


def sample_factors(n: int, rng: np.random.Generator, fixed: dict[int, int] | None = None) -> np.ndarray:
    """``n`` factor index rows drawn uniformly from the grid; ``fixed`` holds
    {factor position: index} constant (the metrics' fixed-factor batches)."""
    factors = np.stack([rng.integers(0, size, n) for size in SIZES], axis=1)
    for position, value in (fixed or {}).items():
        if not 0 <= value < SIZES[position]:
            raise ValueError(f"{FACTORS[position]} index must be in [0, {SIZES[position]}), got {value}")
        factors[:, position] = value
    return factors


def pair_factors(factors: np.ndarray, rng: np.random.Generator, differing: int = 1) -> np.ndarray:
    """Partners for weakly supervised pairs (Locatello et al. 2020, sec. 5): each row of
    ``factors`` with ``differing`` of its factors, chosen at random, moved to another of their
    values (uniformly); ``differing`` = 0 draws that count per row from 1 to 4. The other
    factors are shared, and which ones differ is not told to the model."""
    factors = np.asarray(factors, dtype=np.int64)
    if not 0 <= differing < len(FACTORS):
        raise ValueError(f"differing must be 0 (random) or 1 to {len(FACTORS) - 1}, got {differing}")
    n, sizes = len(factors), np.array(SIZES)
    counts = (rng.integers(1, len(FACTORS), n) if differing == 0 else np.full(n, differing))
    # a random order of the factors per row; the first ``count`` of it are the ones that move
    order = np.argsort(rng.random((n, len(FACTORS))), axis=1)
    moves = np.zeros((n, len(FACTORS)), dtype=bool)
    np.put_along_axis(moves, order, np.arange(len(FACTORS))[None, :] < counts[:, None], axis=1)
    shift = rng.integers(1, sizes, (n, len(FACTORS)))  # 1 .. size-1: never the same value
    return np.where(moves, (factors + shift) % sizes, factors)


def index_of(factors: np.ndarray) -> np.ndarray:
    """The flat index in [0, 737280) of each factor row (row-major over SIZES)."""
    return np.ravel_multi_index(np.asarray(factors).T, SIZES)


def factors_of(index: np.ndarray) -> np.ndarray:
    """Factor index rows (N, 5) of flat indices."""
    return np.stack(np.unravel_index(np.asarray(index), SIZES), axis=1)
