"""The decoder the browser runs (aelab/explore/webdecoder.py): the exported spec, evaluated by a
NumPy re-implementation of webdecoder.js's semantics, matches torch's sigmoid(decode(z)).

This checks the export (layer order, weight layout, offsets, the CVAE's one-hot); the real
JavaScript is checked against torch in a browser by tests/e2e/test_webdecoder_browser.py.
"""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch import nn

from aelab.errors import AelabError
from aelab.explore.latent import decode_codes
from aelab.explore.webdecoder import WebDecoderError, export_decoder, slider_page, slider_spec, spec_weights
from aelab.models import build_model


def js_decode(spec: dict, z: np.ndarray, label=None) -> np.ndarray:
    """What webdecoder.js computes, written out loop by loop in NumPy (float64 sums)."""
    w = spec_weights(spec).astype(np.float64)
    x = list(z.astype(np.float64))
    if spec["condition"]:
        x += [1.0 if c == label else 0.0 for c in range(spec["condition"]["classes"])]
    x, shape = np.array(x), [len(x)]
    for layer in spec["layers"]:
        if layer["op"] == "linear":
            weight = w[layer["w"]:layer["w"] + layer["out"] * layer["in"]].reshape(layer["out"], layer["in"])
            x, shape = weight @ x + w[layer["b"]:layer["b"] + layer["out"]], [layer["out"]]
        elif layer["op"] == "relu":
            x = np.maximum(x, 0)
        elif layer["op"] == "unflatten":
            shape = layer["shape"]
        elif layer["op"] == "convT":  # scatter each input pixel through the kernel
            (cin, h, wd), k, s, p, cout = shape, layer["k"], layer["stride"], layer["pad"], layer["out"]
            kernel = w[layer["w"]:layer["w"] + cin * cout * k * k].reshape(cin, cout, k, k)
            ho, wo = (h - 1) * s - 2 * p + k, (wd - 1) * s - 2 * p + k
            full = np.zeros((cout, (h - 1) * s + k, (wd - 1) * s + k))
            image = x.reshape(cin, h, wd)
            for iy in range(h):
                for ix in range(wd):
                    full[:, iy * s:iy * s + k, ix * s:ix * s + k] += np.einsum(
                        "i,iokl->okl", image[:, iy, ix], kernel)
            out = full[:, p:p + ho, p:p + wo] + w[layer["b"]:layer["b"] + cout][:, None, None]
            x, shape = out.ravel(), [cout, ho, wo]
        else:
            raise AssertionError(layer["op"])
    return (1 / (1 + np.exp(-x))).reshape(spec["shape"])


def model(variant: str, arch: str, shape=(1, 16, 16), **settings):
    torch.manual_seed(0)
    config = {"arch": arch, "latent_dim": 3, "input_shape": list(shape), "num_classes": 4,
              "hidden": (8, 4) if arch != "mlp" else (16, 8), **settings}
    return build_model(variant, **config).eval()


@pytest.mark.parametrize("variant,arch,shape", [
    ("ae", "mlp", (1, 16, 16)), ("vae", "conv", (1, 16, 16)), ("cvae", "mlp", (1, 8, 8)),
    ("cvae", "conv", (3, 16, 16)), ("betavae", "burgess", (1, 16, 16))])
def test_exported_spec_decodes_as_torch(variant, arch, shape):
    m = model(variant, arch, shape)
    spec = json.loads(json.dumps(export_decoder(m)))  # what the page sends
    z = np.random.default_rng(1).standard_normal((4, 3)).astype(np.float32) * 2
    labels = np.array([0, 1, 2, 3]) if variant == "cvae" else None
    expected = decode_codes(m, z, labels)
    for i in range(4):
        got = js_decode(spec, z[i], None if labels is None else labels[i])
        np.testing.assert_allclose(got, expected[i], atol=1e-5)
    # a wrong label decodes something else: the condition really is used
    if variant == "cvae":
        assert np.abs(js_decode(spec, z[0], 1) - expected[0]).max() > 1e-4


def test_refuses_what_the_browser_cannot_run():
    m = model("ae", "mlp")
    m.decoder.net.append(nn.Sigmoid())
    with pytest.raises(WebDecoderError, match="cannot decode a Sigmoid layer"):
        export_decoder(m)
    odd = model("ae", "mlp")
    type_odd = type("Odd", (type(odd),), {"decode": lambda self, z, y=None: z})
    odd.__class__ = type_odd
    with pytest.raises(WebDecoderError, match="its decode is not the shared Decoder"):
        export_decoder(odd)
    assert issubclass(WebDecoderError, AelabError)  # one sentence on the page


def test_slider_spec_and_page():
    base, low, high = np.array([0.5, 2.0, 0.0]), np.array([-1.0, -1.0, 0.0]), np.array([1.0, 1.0, 0.0])
    kl = np.array([0.3, 0.5, 0.001])
    spec = slider_spec(base, low, high, [1, 0], [2], kl, 7, 0.01)
    assert [s["label"] for s in spec["dims"]] == ["z1 (KL 0.50)", "z0 (KL 0.30)", "z2 (KL 0.00)"]
    assert spec["dims"][0]["high"] == 2.0  # the base lies outside the range: the range grows
    assert (spec["dims"][2]["low"], spec["dims"][2]["high"]) == (-1.0, 1.0)  # never varies
    assert spec["inactive_title"] == "1 inactive dimension(s) (KL < 0.01 nats)" and spec["label"] == 7
    page = slider_page('{"weights": "</script>"}', spec, 10)
    assert page.count("</script>") == 3  # the data cannot close its script tag
