"""The exported run (``python -m aelab export``) in Chromium, opened from disk (file://) with
every network request aborted: it makes no request but the file itself, a slider move redraws
the decoded picture (torch's, to the grey level), the image under the pointer is the test
image of that point, and a click sets the sliders (and the CVAE's class) to the point's code.
"""
from __future__ import annotations

import shutil

import numpy as np
import pytest

from aelab.data.datasets import load_dataset
from aelab.explore.export import export_run, write_export
from aelab.explore.latent import decode_codes
from aelab.metrics.results import get_caches
from aelab.runs.refs import RunRef

from .appserver import DEMO_RUNS, require

RUN = "demo-cvae"  # conditional: the click sets the class too


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    root = tmp_path_factory.mktemp("export")
    shutil.copytree(DEMO_RUNS / RUN, root / "runs" / RUN)
    ref = RunRef.unchecked(root / "runs" / RUN)
    write_export(export_run(ref), root / "out")
    return root / "out" / f"{RUN}.html", ref


def pixels(tab, selector: str, shape, scale: int) -> np.ndarray:
    """A canvas at the centre of each picture pixel drawn ``scale`` times: (H, W) grey levels."""
    _, h, w = shape
    values = tab.evaluate(
        """([sel, h, w, scale]) => {
             const ctx = document.querySelector(sel).getContext('2d'), out = [];
             for (let y = 0; y < h; y++) for (let x = 0; x < w; x++)
               out.push(ctx.getImageData(x * scale + scale / 2, y * scale + scale / 2, 1, 1).data[0]);
             return out;
           }""", [selector, h, w, scale])
    return np.array(values, dtype=int).reshape(h, w)


def grey(image: np.ndarray) -> np.ndarray:
    return (np.clip(image[0], 0, 1) * 255).round().astype(int)


def test_the_file_works_offline_sliders_redraw_and_hovering_shows_the_image(browser, exported):
    require(browser)
    path, ref = exported
    model, caches = ref.load_model(), get_caches(ref)
    x = load_dataset(ref.config["dataset"]).x_test[caches["index"]]
    shape, url = model.config.input_shape, path.as_uri()
    context = browser.new_context(viewport={"width": 1100, "height": 1300})
    try:
        tab = context.new_page()
        requests, routed, errors = [], [], []
        tab.on("request", lambda r: requests.append(r.url))
        tab.on("pageerror", lambda e: errors.append(str(e)))
        tab.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)  # CSP, loads

        def block(route):  # everything but the file itself is aborted
            routed.append(route.request.url)
            route.continue_() if route.request.url == url else route.abort()

        tab.route("**/*", block)
        tab.goto(url)
        tab.wait_for_function("() => window.aelab && window.aelab.draws >= 1 && window.aelabMap.spriteReady")
        assert errors == [] and requests == [url] and set(routed) <= {url}

        # the decoded picture is the base code's; a slider's End key moves it and redraws
        scale = tab.evaluate("() => JSON.parse(document.getElementById('aelab-view').textContent).scale")
        label = int(caches["labels"][0])
        first = pixels(tab, "#app canvas", shape, scale)
        assert np.abs(first - grey(decode_codes(model, caches["codes"][:1], np.array([label]))[0])).max() <= 1
        tab.locator("#app input[type=range]").first.focus()
        tab.keyboard.press("End")
        z = np.array(tab.evaluate("() => Array.from(window.aelab.z)"), dtype=np.float32)
        moved = pixels(tab, "#app canvas", shape, scale)
        assert np.abs(moved - first).max() > 20  # the picture changed ...
        assert np.abs(moved - grey(decode_codes(model, z[None], np.array([label]))[0])).max() <= 1  # ... to z's

        # hovering the most isolated point on the map shows its test image
        xy = np.array(tab.evaluate(f"() => Array.from({{length: {len(x)}}}, (_, i) => window.aelabMap.position(i))"))
        gaps = np.linalg.norm(xy[:, None] - xy[None], axis=2) + np.eye(len(xy)) * 1e9
        i = int(gaps.min(1).argmax())
        assert gaps[i].min() > 8  # nothing else within the pointer's reach
        tab.mouse.move(*xy[i])
        tab.wait_for_function(f"() => window.aelabMap.shown === {i} && window.aelabMap.hovered === {i}")
        zoom = tab.evaluate("() => JSON.parse(document.getElementById('aelab-map').textContent).preview")
        assert np.abs(pixels(tab, "#preview", shape, zoom) - grey(x[i])).max() <= 1
        assert tab.locator("#preview-caption").text_content() == (
            f"test image {caches['index'][i]}, label {caches['labels'][i]}")

        # a click sets every slider to the point's code, and the class to its label
        tab.mouse.click(*xy[i])
        z = np.array(tab.evaluate("() => Array.from(window.aelab.z)"), dtype=np.float32)
        assert np.allclose(z, caches["codes"][i], atol=1e-6)
        assert tab.locator("#class").input_value() == str(caches["labels"][i])
        clicked = grey(decode_codes(model, caches["codes"][i:i + 1], caches["labels"][i:i + 1])[0])
        assert np.abs(pixels(tab, "#app canvas", shape, scale) - clicked).max() <= 1
        assert errors == [] and requests == [url]
    finally:
        context.close()
