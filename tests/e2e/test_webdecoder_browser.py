"""The real webdecoder.js in Chromium against torch: for every shipped demo run (mlp and
burgess archs, the CVAE's one-hot label) and a conv model, the Traversal component's HTML
(exactly what the page embeds) decodes random codes as ``sigmoid(decode(z))`` within 1e-3,
draws them on its canvas, and a right-arrow key on a focused slider redraws at once.

The HTML is loaded with ``page.set_content``: no server is needed for the numbers; the
page itself is driven through a server in test_explore_browser.py.
"""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from aelab.explore.latent import decode_codes
from aelab.explore.webdecoder import export_decoder, slider_page, slider_spec
from aelab.models import build_model
from aelab.runs.refs import RunRef

from .appserver import DEMO_RUNS, require

DEMOS = sorted(p.name for p in DEMO_RUNS.glob("demo-*") if (p / "model.safetensors").is_file())
SCALE = 4


def conv_model():
    torch.manual_seed(0)
    return build_model("cvae", arch="conv", latent_dim=5, hidden=(8, 16), input_shape=(3, 16, 16),
                       num_classes=3).eval()


def component(model, base: np.ndarray, label) -> str:
    """The component's HTML for ``model``, its sliders spanning +-3 around ``base``."""
    n = len(base)
    sliders = slider_spec(base, base - 3, base + 3, list(range(n)), [], None, label, 0.01)
    return slider_page(json.dumps(export_decoder(model)), sliders, SCALE)


def canvas_pixels(tab, shape) -> np.ndarray:
    """The canvas at the centre of each picture pixel: (H, W, 3) uint8."""
    c, h, w = shape
    values = tab.evaluate(
        """([h, w, scale]) => {
             const ctx = document.querySelector('canvas').getContext('2d'), out = [];
             for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) {
               const d = ctx.getImageData(x * scale + scale / 2, y * scale + scale / 2, 1, 1).data;
               out.push(d[0], d[1], d[2]);
             }
             return out;
           }""", [h, w, SCALE])
    return np.array(values, dtype=np.uint8).reshape(h, w, 3)


def expected_pixels(image: np.ndarray) -> np.ndarray:
    """(C, H, W) in [0, 1] as the canvas draws it: (H, W, 3) uint8, grey repeated."""
    rgb = np.repeat(image, 3, 0) if image.shape[0] == 1 else image
    return (np.clip(rgb, 0, 1) * 255).round().astype(np.uint8).transpose(1, 2, 0)


@pytest.mark.parametrize("name", [*DEMOS, "conv"])
def test_javascript_decodes_as_torch(browser, name):
    require(browser)
    model = conv_model() if name == "conv" else RunRef(DEMO_RUNS, name).load_model()
    rng = np.random.default_rng(0)
    n, classes = model.config.latent_dim, model.config.num_classes
    conditional = model.variant == "cvae"
    base = rng.standard_normal(n).astype(np.float32)
    label = 1 if conditional else None
    context = browser.new_context()
    try:
        tab = context.new_page()
        tab.set_content(component(model, base, label))
        tab.wait_for_function("() => window.aelab && window.aelab.draws === 1 && window.aelab.paintedAt")
        # random codes (and labels) through the page's own decode: sigmoid(decode(z)) within 1e-3
        for _ in range(3):
            z = (rng.standard_normal(n) * 2).astype(np.float32)
            y = int(rng.integers(classes)) if conditional else None
            got = np.array(tab.evaluate("([z, y]) => Array.from(window.aelab.decode(z, y))", [z.tolist(), y]))
            expected = decode_codes(model, z[None], None if y is None else np.array([y]))[0]
            assert np.abs(got - expected.ravel()).max() < 1e-3, name
        # the canvas shows the base's picture, to the grey level
        shape = model.config.input_shape
        first = expected_pixels(decode_codes(model, base[None], None if label is None else np.array([label]))[0])
        assert np.abs(canvas_pixels(tab, shape).astype(int) - first).max() <= 1
        # a right arrow on the focused first slider: one step up, drawn at once
        tab.get_by_role("slider").first.focus()
        tab.keyboard.press("ArrowRight")
        assert tab.evaluate("() => window.aelab.draws") == 2
        moved = base.copy()
        moved[0] += 6 / 100  # the range is base +- 3: a step is a hundredth of it
        assert tab.evaluate("() => window.aelab.z[0]") == pytest.approx(moved[0], abs=1e-6)
        second = expected_pixels(decode_codes(model, moved[None], None if label is None else np.array([label]))[0])
        assert np.abs(canvas_pixels(tab, shape).astype(int) - second).max() <= 1
        # reset: back to the base code and its picture
        tab.get_by_role("button", name="Reset sliders to the base").click()
        assert tab.evaluate("() => window.aelab.z[0]") == pytest.approx(base[0], abs=1e-6)
        assert np.abs(canvas_pixels(tab, shape).astype(int) - first).max() <= 1
    finally:
        context.close()
