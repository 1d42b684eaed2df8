"""Widgets and figures: config forms, errors as one sentence, plots, crisp images, progress boxes."""
from __future__ import annotations

import hashlib

import numpy as np
import streamlit as st

from aelab.errors import AelabError


def device_text() -> str:
    """The device training would use here: the GPU's name, or CPU."""
    from aelab.training.setup import device_label, resolve_device

    return device_label(resolve_device("auto"))


def device_choices() -> list[str]:
    """``auto``, ``cpu`` and whichever accelerators this machine has."""
    import torch

    choices = ["auto", "cpu"]
    choices += [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    mps = getattr(torch.backends, "mps", None)
    if mps and mps.is_available():
        choices.append("mps")
    return choices


# Labels a student reads; the field's own name (the CLI's) is given in the help text.
FIELD_LABELS = {
    "latent_dim": "Code size (latent dimensions)", "arch": "Architecture", "hidden": "Hidden layer sizes",
    "likelihood": "Reconstruction likelihood", "epochs": "Epochs", "batch_size": "Batch size",
    "lr": "Learning rate", "seed": "Random seed", "beta": "β (KL weight)",
    "capacity_max": "Target KL capacity C (nats)", "capacity_steps": "Steps for C to rise",
    "gamma": "γ (weight of |KL − C|)", "noise": "Corruption", "noise_level": "Corruption level",
    "rho": "Target activation ρ", "sparsity_weight": "Sparsity weight β", "k": "Units kept (k)",
    "k_start": "Units kept at the start", "k_test_multiplier": "Units kept at test time (× k)",
    "contractive_weight": "Contractive weight λ", "alpha": "α", "disc_hidden": "Discriminator layers",
    "disc_lr": "Discriminator learning rate", "device": "Device",
    "beta_final": "β at the end of the schedule", "beta_hold": "Steps at the first β",
    "beta_steps": "Steps for β to reach its end value",
    "beta_hold_active": "Hold β until this many latents have opened",
    "prune_kl_below": "At the end, prune latents with KL below (nats)",
    "max_minutes": "Time limit (minutes)", "live_mig_seconds": "Live MIG every (seconds)",
}


def field_label(name: str) -> str:
    """A readable label for a config field (``capacity_steps`` -> "Steps for C to rise")."""
    return FIELD_LABELS.get(name) or name.replace("_", " ").capitalize()


def settings_widgets(config_cls, key: str, only: list[str] | None = None,
                     skip: tuple[str, ...] = (), locked: dict | None = None) -> dict:
    """One widget per field of ``config_cls`` (type and default from its metadata), with a
    readable label and help. Numbers are not clamped by the widget: an invalid value (say,
    epochs = 0) reaches the config's validation and is refused with its sentence. ``locked``:
    fields shown with a fixed value, disabled (what comes back is still checked by the caller:
    a crafted request can send anything)."""
    values, locked = {}, locked or {}
    for p in config_cls.parameters():
        name = p["name"]
        if name in skip or (only is not None and name not in only):
            continue
        wkey = f"{key}.{name}"
        rule = _range_text(p)
        help_text = f"{p.get('help', '')}{rule} (`{name}` on the command line)"
        label = field_label(name)
        default, disabled = locked.get(name, p["default"]), name in locked
        if disabled:
            help_text = f"locked by the challenge; {help_text}"
        if p.get("choices"):
            options = list(p["choices"])
            values[name] = st.selectbox(label, options, index=options.index(default),
                                        key=wkey, help=help_text, disabled=disabled)
        elif p["type"] == "bool":
            values[name] = st.checkbox(label, value=default, key=wkey, help=help_text, disabled=disabled)
        elif p["type"] in ("int", "float"):
            cast = int if p["type"] == "int" else float
            values[name] = st.number_input(label, value=cast(default), key=wkey, help=help_text,
                                           step=1 if cast is int else None,
                                           format=None if cast is int else "%g", disabled=disabled)
        elif p["type"] == "ints":
            values[name] = st.text_input(label, value=",".join(map(str, default)), key=wkey,
                                         help=help_text, disabled=disabled)
        else:
            values[name] = st.text_input(label, value=str(default), key=wkey, help=help_text,
                                         disabled=disabled)
    return values


def _range_text(p: dict) -> str:
    low = [f"{'>' if 'gt' in p else '≥'} {p.get('gt', p.get('ge'))}"] if "gt" in p or "ge" in p else []
    high = [f"{'<' if 'lt' in p else '≤'} {p.get('lt', p.get('le'))}"] if "lt" in p or "le" in p else []
    return f"; {' and '.join(low + high)}" if low or high else ""


def show_error(exc: Exception) -> None:
    """A failure as one sentence on the page (never a traceback)."""
    st.error(str(exc) if isinstance(exc, AelabError) else f"{type(exc).__name__}: {exc}")


def plot(figure, key: str, name: str | None = None, **kwargs) -> None:
    """``st.plotly_chart`` whose toolbar's camera saves a PNG (``name``.png, twice the size),
    with no Plotly logo: every figure of the app can be downloaded for slides."""
    config = {"displaylogo": False, "modeBarButtonsToRemove": ["lasso2d", "select2d"]
              if kwargs.get("on_select") in (None, "ignore") else [],
              "toImageButtonOptions": {"format": "png", "filename": name or key, "scale": 2}}
    return st.plotly_chart(figure, key=key, config=config, **kwargs)


def labelled_images(rows, scale: int, width: tuple[int, int] = (1, 6)) -> None:
    """One line per ``(label, images)``: the label (markdown) left, the images in a row
    right, so a grid's rows say what they show."""
    from aelab.explore.reconstructions import image_grid

    for label, images in rows:
        left, right = st.columns(list(width), vertical_alignment="center")
        left.markdown(label)
        with right:
            image(image_grid([images], scale=scale))


def image(picture: np.ndarray, caption: str | None = None, width: int | None = None) -> None:
    """Show a uint8 picture crisp: lossless PNG (st.image sends arrays as JPEG by default,
    which smears small digits), at its own size. The PNG of a picture is encoded once for
    every session (keyed by a digest of its pixels): a rerun or another student's visit
    sends the same bytes without encoding them again."""
    if picture.dtype == np.uint8:
        pixels = np.ascontiguousarray(picture)
        digest = f"{hashlib.blake2b(pixels.data, digest_size=16).hexdigest()}{pixels.shape}"
        picture = _png(digest, pixels)
    st.image(picture, caption=caption, width=width or "content", clamp=True, output_format="PNG")


@st.cache_resource(max_entries=512, show_spinner=False)
def _png(digest: str, _pixels: np.ndarray) -> bytes:
    from aelab.explore.latent import png_bytes

    return png_bytes(_pixels)


def _with_status(label: str, work):
    """Run ``work(progress)`` showing a status box whose label follows its progress."""
    with st.status(label, expanded=False) as box:
        result = work(lambda message: box.update(label=f"{label}: {message}"))
        box.update(label=f"{label}: done", state="complete")
    return result
