"""A decoder the browser runs: the Traversal page's sliders decode without the server.

``export_decoder`` turns a model's decoder (every arch of ``aelab/models/nn.py``: Linear, ReLU,
Unflatten, ConvTranspose2d; the CVAE's one-hot condition in front) into a JSON layer spec
plus its float32 weights as one base64 string; ``webdecoder.js`` evaluates it and applies
the sigmoid, as ``aelab.explore.latent.decode_codes`` does. ``slider_page`` is the HTML of
the page's component: the sliders, the reset button and the picture, all client-side.

Anything else (a variant whose ``decode`` is not its ``Decoder``, a layer the JS does not
know) is refused with one sentence (``WebDecoderError``); the page then decodes on the server.
"""
from __future__ import annotations

import base64
import html
import json
from pathlib import Path

import numpy as np
import torch
from torch import nn

from aelab.errors import AelabError
from aelab.models.nn import Decoder

JS = Path(__file__).with_name("webdecoder.js")
CAPTION = "decoded from the sliders"


class WebDecoderError(AelabError):
    """A decoder the browser cannot evaluate."""


def _condition(model) -> dict | None:
    """The condition the decoder sees: none, or the CVAE's one-hot label."""
    from aelab.models.base import Autoencoder
    from aelab.models.cvae import CVAE

    hook = type(model).condition
    if hook is Autoencoder.condition and not model.cond_dim:
        return None
    if hook is CVAE.condition and model.cond_dim == model.config.num_classes:
        return {"kind": "one_hot", "classes": int(model.config.num_classes)}
    raise WebDecoderError(f"the browser cannot decode {model.variant}: its decoder's condition "
                          "is not a one-hot label")


def _layer(module: nn.Module, add) -> dict:
    """One layer's spec; ``add(tensor)`` stores its weights and returns their offset."""
    if isinstance(module, nn.ReLU):
        return {"op": "relu"}
    if isinstance(module, nn.Unflatten):
        return {"op": "unflatten", "shape": [int(s) for s in module.unflattened_size]}
    if isinstance(module, nn.Linear) and module.bias is not None:
        return {"op": "linear", "in": module.in_features, "out": module.out_features,
                "w": add(module.weight), "b": add(module.bias)}  # weight (out, in)
    if (isinstance(module, nn.ConvTranspose2d) and module.bias is not None and module.groups == 1
            and module.dilation == (1, 1) and module.output_padding == (0, 0)
            and module.padding_mode == "zeros" and len(set(module.kernel_size)) == 1
            and len(set(module.stride)) == 1 and len(set(module.padding)) == 1):
        return {"op": "convT", "in": module.in_channels, "out": module.out_channels,
                "k": module.kernel_size[0], "stride": module.stride[0], "pad": module.padding[0],
                "w": add(module.weight), "b": add(module.bias)}  # weight (in, out, k, k)
    raise WebDecoderError(f"the browser cannot decode a {type(module).__name__} layer")


def export_decoder(model) -> dict:
    """The model's decoder as ``{"latent_dim", "shape", "condition", "layers", "weights"}``:
    the layers of ``model.decoder.net`` in order, their float32 weights concatenated as one
    little-endian base64 string (``w``/``b``: offsets in floats). The image is the sigmoid of
    the last layer's output. Raises ``WebDecoderError`` for what the browser cannot run."""
    from aelab.models.base import Autoencoder

    if type(model).decode is not Autoencoder.decode or type(model.decoder) is not Decoder:
        raise WebDecoderError(f"the browser cannot decode {model.variant}: its decode is not "
                              "the shared Decoder")
    shape = [int(s) for s in model.config.input_shape]
    if shape[0] not in (1, 3):
        raise WebDecoderError(f"the browser draws 1 or 3 channels, not {shape[0]}")
    condition = _condition(model)
    chunks: list[np.ndarray] = []
    size = 0

    def add(tensor: torch.Tensor) -> int:
        nonlocal size
        chunks.append(tensor.detach().cpu().to(torch.float32).numpy().ravel())
        size += chunks[-1].size
        return size - chunks[-1].size

    layers = [_layer(m, add) for m in model.decoder.net]
    weights = np.concatenate(chunks).astype("<f4")
    return {"latent_dim": int(model.config.latent_dim), "shape": shape, "condition": condition,
            "layers": layers, "weights": base64.b64encode(weights.tobytes()).decode("ascii")}


def spec_weights(spec: dict) -> np.ndarray:
    """The float32 weights of an exported spec, as the browser reads them."""
    return np.frombuffer(base64.b64decode(spec["weights"]), dtype="<f4")


def slider_spec(base: np.ndarray, low: np.ndarray, high: np.ndarray, active: list[int],
                inactive: list[int], kl: np.ndarray | None, label, inactive_below: float) -> dict:
    """What the page's sliders show: per dimension (in display order) its range, step and
    label, the base code the reset button returns to, and the CVAE's label."""
    dims = []
    for d in active + inactive:
        lo, hi = float(min(low[d], base[d])), float(max(high[d], base[d]))
        if hi - lo < 1e-6:  # a unit that never varies (say, never among k-sparse's kept k)
            lo, hi = lo - 1.0, hi + 1.0
        note = f" (KL {kl[d]:.2f})" if kl is not None else ""
        dims.append({"d": int(d), "label": f"z{d}{note}", "low": lo, "high": hi,
                     "step": (hi - lo) / 100 or 0.01, "inactive": d in inactive})
    return {"base": [float(v) for v in base], "dims": dims,
            "label": None if label is None else int(label),
            "inactive_title": (f"{len(inactive)} inactive dimension(s) (KL < {inactive_below} nats)"
                               if inactive else "")}


def _json_script(element_id: str, payload: str) -> str:
    safe = payload.replace("</", "<\\/")  # "</" cannot end the script early; JSON allows "\\/"
    return f'<script type="application/json" id="{element_id}">{safe}</script>'


def slider_page(decoder_json: str, sliders: dict, scale: int, large: bool = False) -> str:
    """The component's whole HTML: styles, the sliders' data, the decoder (``decoder_json``,
    the JSON text of ``export_decoder``, cached per run and weights) and ``webdecoder.js``;
    ``large``: presenter mode's larger text."""
    view = dict(sliders, scale=int(scale), caption=CAPTION)
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(CAPTION)}</title>"
            f"<style>{STYLE}</style></head><body class='{'large' if large else ''}'><div id='app'></div>"
            + _json_script("aelab-view", json.dumps(view))
            + _json_script("aelab-decoder", decoder_json)
            + f"<script>{JS.read_text()}</script></body></html>")


def page_height(sliders: dict, shape: list[int], scale: int, large: bool = False) -> int:
    """Pixels the component needs: the picture, its caption and button, or the sliders' box."""
    box = 440 if len(sliders["dims"]) > 5 else (80 if large else 64) * len(sliders["dims"])
    return max(shape[1] * scale + (150 if large else 110), box + 20)


STYLE = """
body { margin: 0; font-family: "Source Sans Pro", "Source Sans 3", sans-serif; font-size: 15px;
       color: rgb(49, 51, 63); background: transparent; }
#app { display: flex; gap: 2.5rem; align-items: flex-start; }
.sliders { flex: 1; max-height: 440px; overflow-y: auto; padding-right: 0.5rem; }
.slider { margin: 0.2rem 0 0.7rem; }
.slider label { display: flex; justify-content: space-between; font-size: 14px; }
.slider input { width: 100%; accent-color: rgb(255, 75, 75); }
.value { font-variant-numeric: tabular-nums; color: rgb(255, 75, 75); }
details summary { cursor: pointer; padding: 0.4rem 0; }
.picture { flex: 1; }
canvas { display: block; image-rendering: pixelated; }
figure { margin: 0; }
figcaption { font-size: 14px; color: rgba(49, 51, 63, 0.6); margin: 0.3rem 0 0.8rem; }
button { font: inherit; padding: 0.35rem 0.75rem; border-radius: 0.5rem; cursor: pointer;
         border: 1px solid rgba(49, 51, 63, 0.2); background: white; }
button:hover { border-color: rgb(255, 75, 75); color: rgb(255, 75, 75); }
body.large, body.large .slider label, body.large figcaption { font-size: 22px; }
@media (prefers-color-scheme: dark) {  /* Streamlit's default theme follows the system's */
  body { color: rgb(250, 250, 250); }
  figcaption { color: rgba(250, 250, 250, 0.6); }
  button { background: rgb(14, 17, 23); color: inherit; border-color: rgba(250, 250, 250, 0.2); }
}
"""
