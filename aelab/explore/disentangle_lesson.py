"""What the Disentanglement page teaches, computed without Streamlit: each score with its
definition, chance level, the reference encoders' values and the published range; which
factor (if any) each latent dimension carries; traversals from a sprite drawn from chosen
factors, so two runs can be shown on the same picture; the beta study's results.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from aelab.data import shapes
from aelab.metrics.disentanglement import FACTORS, SCORES, SIZES

# one sentence per score (what a student should read next to the number)
DEFINITIONS = {
    "beta_vae": "How often a linear classifier names the factor held fixed in 64 pairs of "
                "sprites from the mean absolute difference of their codes (Higgins et al. 2017).",
    "factor_vae": "How often the code dimension that varies least while one factor is held "
                  "fixed names that factor by majority vote (Kim & Mnih 2018).",
    "mig": "For each factor, the gap in mutual information between its best and second-best "
           "code dimension, as a share of the factor's entropy, averaged (Chen et al. 2018).",
    "dci_disentanglement": "How much each code dimension's importance for predicting the "
                           "factors is concentrated on a single factor (Eastwood & Williams 2018).",
    "dci_completeness": "How much each factor's prediction relies on a single code dimension "
                        "(Eastwood & Williams 2018).",
    "dci_informativeness": "How accurately the factors can be predicted from the code at all, "
                           "disentangled or not (Eastwood & Williams 2018).",
}

# What beta-VAE-family models reach on the original dSprites in the literature (approximate
# ranges of the reported means; Higgins et al. 2017, Kim & Mnih 2018, Chen et al. 2018,
# Locatello et al. 2019 fig. 7 and 13); our sprites are a re-rendering, so compare loosely.
PUBLISHED = {
    "beta_vae": "about 0.7-0.9",
    "factor_vae": "about 0.6-0.8",
    "mig": "about 0.1-0.3",
    "dci_disentanglement": "about 0.1-0.5",
    "dci_completeness": "rarely reported",
    "dci_informativeness": "rarely reported",
}

# ``python -m aelab disentangle --encoder NAME --json`` (seed 0); tests/test_disentangle.py
# checks these against a fresh computation
REFERENCE = {
    "ground-truth": {"beta_vae": 1.0, "factor_vae": 1.0, "mig": 0.889, "dci_disentanglement": 1.0,
                     "dci_completeness": 1.0, "dci_informativeness": 1.0},
    "mixed": {"beta_vae": 0.771, "factor_vae": 0.587, "mig": 0.036, "dci_disentanglement": 0.06,
              "dci_completeness": 0.062, "dci_informativeness": 1.0},
    "noise": {"beta_vae": 0.206, "factor_vae": 0.193, "mig": 0.001, "dci_disentanglement": 0.001,
              "dci_completeness": 0.001, "dci_informativeness": 0.124},
}

LABEL_GAP = 0.2  # a latent is labelled with a factor only if that factor's MIG gap >= this
MIXED = "mixed"
UNUSED = "unused"
UNUSED_NATS = 0.01  # a dimension with less information than this about every factor is unused


def metric_rows(scores: dict) -> list[dict]:
    """One row per score: its value for the run, definition, chance, reference encoders and
    the published range."""
    return [{"metric": name, "this run": scores[name], "what it measures": DEFINITIONS[name],
             "chance": scores["chance"][name],
             **{f"{encoder} (reference)": values[name] for encoder, values in REFERENCE.items()},
             "published (dSprites)": PUBLISHED[name]} for name in SCORES]


def factor_entropy() -> np.ndarray:
    """H(v_k) in nats of each factor under the uniform grid (log of its number of values)."""
    return np.log(SIZES)


def mig_gaps(mi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each factor k: the code dimension with the most information about it and its gap
    ``(I(z_best; v_k) - I(z_second; v_k)) / H(v_k)`` (the term MIG averages, Chen et al.
    2018 eq. 9): (best dimension per factor (F,), gap per factor (F,))."""
    mi = np.asarray(mi, dtype=np.float64)  # (K, F)
    top = -np.sort(-mi, axis=0)
    second = top[1] if len(top) > 1 else np.zeros(mi.shape[1])
    return mi.argmax(0), (top[0] - second) / factor_entropy()


def dimension_labels(mi: np.ndarray, threshold: float = LABEL_GAP) -> list[str]:
    """A label per code dimension: the factor it carries when it is that factor's best
    dimension by a MIG gap of at least ``threshold`` (the largest such gap if several),
    else ``unused`` when it says (almost) nothing about any factor (a collapsed or pruned
    latent), else ``mixed`` (no factor clearly its own)."""
    mi = np.asarray(mi)
    best, gaps = mig_gaps(mi)
    labels = []
    for j in range(mi.shape[0]):
        mine = [(gaps[k], FACTORS[k]) for k in range(len(FACTORS)) if best[k] == j and gaps[k] >= threshold]
        labels.append(max(mine)[1] if mine else UNUSED if mi[j].max() < UNUSED_NATS else MIXED)
    return labels


def recon_per_pixel(evaluation: dict, config: dict) -> dict:
    """The run's image size and its test reconstruction BCE per pixel: ``recon_bce`` is
    summed over an image's pixels, so runs on sprites of different sizes compare only
    once divided by C*H*W."""
    shape = [int(s) for s in config["input_shape"]]  # (C, H, W)
    return {"image": "x".join(map(str, shape[1:])),
            "BCE per pixel": evaluation["recon_bce"] / float(np.prod(shape))}


def informative_order(mi: np.ndarray, limit: int = 10) -> list[int]:
    """Code dimensions by their largest mutual information with any factor, descending."""
    order = np.argsort(-np.asarray(mi).max(1), kind="stable")
    return [int(j) for j in order[:limit]]


def side(model) -> int:
    """The side length of the sprites the model was trained on."""
    return int(model.config.input_shape[-1])


def sprite(model, factors: list[int]) -> np.ndarray:
    """The sprite of one factor row at the model's resolution: (1, C, H, W)."""
    return shapes.render(np.array([factors]), side=side(model))


def traversals(model, factors: list[int], dims: list[int], steps: int = 9,
               sample: int = 256) -> np.ndarray:
    """Decoded sweeps of each latent in ``dims`` from the code of the sprite of ``factors``,
    over the slider range of a fixed sample of ``sample`` sprites: (len(dims), steps, C, H, W)."""
    from aelab.explore.latent import traversal_grid, traversal_range
    from aelab.metrics.evaluate import encode_array

    rows = shapes.sample_factors(sample, np.random.default_rng(0))
    x = shapes.render(rows, side=side(model))
    conditional = bool(getattr(model, "cond_dim", 0))  # the shape is the dataset's label
    labels = rows[:, 0] if conditional else None
    low, high = traversal_range(model, x, labels, encode_array(model, x, labels))
    shape = np.array([factors[0]]) if conditional else None
    base = encode_array(model, sprite(model, factors), shape)[0]
    y = None if shape is None else np.repeat(shape, len(dims) * steps)
    return traversal_grid(model, base, dims, low, high, steps, y)


BETA_STUDY = Path(__file__).resolve().parents[2] / "docs" / "beta_study.json"


def beta_study(path: Path = BETA_STUDY) -> list[dict] | None:
    """The shipped beta study (``bench/beta_study.py ... --docs``): one row per beta
    with the mean and spread over seeds of each column, or None if it is not there."""
    try:
        return json.loads(Path(path).read_text())["summary"]
    except (OSError, ValueError, KeyError):
        return None


TRADEOFF = ("recon_bce", "mig", "factor_vae")  # the beta trade-off's panels, left to right


def beta_tradeoff_figure(study: list[dict]):
    """The beta trade-off (one panel per ``TRADEOFF`` metric, mean and spread over seeds
    against beta): beta on a log axis ticked at the betas tried only, so no tick of Plotly's
    own (a lone "9" between 8 and 10) reads as a beta nobody trained."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    from aelab.metrics.names import metric_name

    betas = [p["beta"] for p in study]
    figure = make_subplots(rows=1, cols=len(TRADEOFF), subplot_titles=[metric_name(m) for m in TRADEOFF])
    for col, metric in enumerate(TRADEOFF, start=1):
        figure.add_trace(go.Scatter(x=betas, y=[p[f"{metric}_mean"] for p in study],
                                    error_y=dict(array=[p[f"{metric}_std"] for p in study]),
                                    mode="lines+markers", showlegend=False, name=metric_name(metric)),
                         row=1, col=col)
        figure.update_xaxes(title_text="beta", type="log", tickvals=betas, ticktext=[f"{b:g}" for b in betas],
                            minor=dict(showgrid=False, ticks=""), row=1, col=col)
    figure.update_layout(height=340, margin=dict(l=10, r=10, t=50, b=10))
    figure.update_annotations(font_size=13)  # the panel titles: human names, longer than keys
    return figure


def beta_study_setting(path: Path = BETA_STUDY) -> str:
    """How the shipped beta study was run (its settings, time and machine), or ''."""
    try:
        return str(json.loads(Path(path).read_text()).get("setting", ""))
    except (OSError, ValueError, AttributeError):
        return ""
