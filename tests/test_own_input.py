"""Your own input (aelab.explore.own_input and the Latent space page's section): a drawing
made to look like the run's data, encoded as the library encodes it, starred where the page's
PCA view puts its code, with the posterior's ellipses, its neighbours, a corrupted copy for the
denoiser, a link to the Traversal page, and one sentence for each kind of bad input.

The page is run by ``AppTest`` over copies of shipped demo runs; the canvas's state (what the
browser component sends: a PNG data URL) is put into the session as the browser would
(tests/e2e/test_own_input_browser.py draws a real stroke).
"""
from __future__ import annotations

import base64
import io
import json
import shutil

import numpy as np
import pytest
import torch
from conftest import APP, assert_ok
from PIL import Image, ImageDraw
from streamlit.testing.v1 import AppTest

from aelab.data.datasets import load_dataset
from aelab.explore import own_input as own
from aelab.explore.reconstructions import image_grid
from aelab.metrics.evaluate import fit_pca, pca_reconstruct
from aelab.metrics.results import fit_projection, get_caches
from aelab.models.denoising import add_noise
from aelab.runs.refs import RunRef

DEMO_RUNS = APP.parent / "checkpoints"
RUNS = ("demo-vae", "demo-ae-z2", "demo-ae-z16", "demo-denoising", "demo-cvae")


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("own") / "runs"
    root.mkdir()
    for run in RUNS:
        shutil.copytree(DEMO_RUNS / run, root / run)
    return root


def stroke_png(size: int = 280, line=((140, 40), (140, 240)), width: int = 20, ink="white",
               paper="black", fmt: str = "PNG") -> bytes:
    image = Image.new("RGB", (size, size), paper)
    ImageDraw.Draw(image).line(list(line), fill=ink, width=width)
    buffer = io.BytesIO()
    image.save(buffer, fmt)
    return buffer.getvalue()


def data_url(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode()


def page(runs, run: str, drawing: str | None, monkeypatch, **state) -> AppTest:
    """The Latent space page on ``run`` with the section open and ``drawing`` on the canvas."""
    monkeypatch.setenv("AELAB_RUNS", str(runs))
    at = AppTest.from_file(str(APP), default_timeout=120)
    at.switch_page("pages/latent.py")
    at.query_params.update(run=run, input="draw")
    if drawing is not None:
        at.session_state["own_canvas"] = {"image": drawing}
    for key, value in state.items():
        at.session_state[key] = value
    at.run()
    assert_ok(at)
    return at


def input_figure(at: AppTest) -> dict:
    """The section's figure (the one with a "your input" trace)."""
    figures = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    (figure,) = [f for f in figures if any(t.get("name") == "your input" for t in f["data"])]
    return figure


def values(trace: dict, axis: str) -> np.ndarray:
    """A Plotly trace's x or y (Plotly 6 writes arrays as base64 ``bdata``)."""
    v = trace[axis]
    if isinstance(v, dict):
        return np.frombuffer(base64.b64decode(v["bdata"]), dtype=np.dtype(v["dtype"]))
    return np.asarray(v, dtype=float)


# --- reading and bad input ---
@pytest.mark.parametrize("data, sentence", [
    (b"", "The file is empty; upload a PNG or JPEG image."),
    (b"not an image at all", "The file is not a PNG or JPEG image"),
    (b"\x80\x04\x95\x10\x00\x00\x00\x00\x00\x00\x00}\x94.", "The file is not a PNG or JPEG image"),  # a pickle
    (stroke_png(fmt="GIF"), "The file is not a PNG or JPEG image"),
    (stroke_png()[:300], "The image file is damaged"),
    (b"\x89PNG" + bytes(21 * 2**20), "The image takes 21.0 MB, more than the 20 MB limit"),
])
def test_bad_files_are_one_sentence(data, sentence):
    with pytest.raises(own.InputError) as caught:
        own.read_image(data)
    message = str(caught.value)
    assert message.startswith(sentence) and message.count(". ") == 0 and message.endswith("."), message


def test_an_image_that_unpacks_too_large_is_refused_before_decoding():
    buffer = io.BytesIO()
    Image.new("1", (8000, 6000)).save(buffer, "PNG")  # 48 million pixels in a small file
    assert len(buffer.getvalue()) < 2**20
    with pytest.raises(own.InputError, match=r"8000x6000 pixels, more than 40 million"):
        own.read_image(buffer.getvalue())


def test_empty_canvas_and_bad_data_urls_are_one_sentence():
    with pytest.raises(own.InputError, match=r"^The picture is empty; draw something"):
        own.prepare(own.read_image(stroke_png(width=0, ink="black")), "mnist5k", (1, 28, 28))
    for url in ("", "data:text/plain;base64,aGk=", "data:image/png;base64,@@@"):
        with pytest.raises(own.InputError, match=r"^The drawing "):
            own.decode_data_url(url)


# --- made to look like the run's data ---
def upscaled(x: np.ndarray, size: int = 280) -> np.ndarray:
    """A dataset image (1, H, W) blown up to a (size, size, 3) picture, as if drawn large."""
    big = np.asarray(Image.fromarray((x[0] * 255).astype(np.uint8)).resize((size, size), Image.Resampling.NEAREST))
    return np.repeat(big[..., None] / 255.0, 3, -1).astype(np.float32)


@pytest.mark.parametrize("name", ["digits", "mnist5k"])
def test_a_dataset_image_drawn_large_comes_back_like_itself(name):
    """Blow test images up to canvas size and prepare them: each comes back close to itself (the
    recipe is the one the dataset was made with), far closer than to the next image, and so does
    its inverted (dark on light) copy."""
    ds = load_dataset(name)
    x = ds.x_test[:40]
    for sign in (1, -1):
        back = np.stack([own.prepare(upscaled(i) if sign > 0 else 1.0 - upscaled(i), name, ds.input_shape)
                         for i in x])
        assert back.shape == x.shape and back.dtype == np.float32 and back.min() >= 0 and back.max() <= 1
        if name == "digits":  # 17 grey levels, as the data's 0-16 counts
            np.testing.assert_allclose(back * 16, np.round(back * 16), atol=1e-5)
        else:  # the strokes' cores at full intensity
            np.testing.assert_allclose(back.max((1, 2, 3)), 1.0)
        corr = [np.corrcoef(b.ravel(), t.ravel())[0, 1] for b, t in zip(back, x)]
        other = [np.corrcoef(b.ravel(), t.ravel())[0, 1] for b, t in zip(back, np.roll(x, 1, 0))]
        assert np.mean(corr) > 0.75 and np.mean(corr) > np.mean(other) + 0.3, (np.mean(corr), np.mean(other))


def test_mnist_recipe_fits_20_pixels_and_centres_the_mass():
    x = own.prepare(own.read_image(stroke_png(line=((30, 20), (90, 90)), width=16)), "mnist5k", (1, 28, 28))[0]
    rows, cols = np.flatnonzero(x.max(1) > own.BLANK), np.flatnonzero(x.max(0) > own.BLANK)
    assert max(rows[-1] - rows[0], cols[-1] - cols[0]) + 1 in (20, 21)
    ys, xs = np.indices(x.shape)
    assert abs((ys * x).sum() / x.sum() - 13.5) <= 0.6 and abs((xs * x).sum() / x.sum() - 13.5) <= 0.6


@pytest.mark.parametrize("side", [32, 64])
def test_sprites_stay_where_drawn_and_are_binary(side):
    image = Image.new("RGB", (280, 280))
    ImageDraw.Draw(image).rectangle([20, 20, 100, 100], fill="white")  # top left
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    x = own.prepare(own.read_image(buffer.getvalue()), f"shapes{side}", (1, side, side))[0]
    assert set(np.unique(x)) == {0.0, 1.0}
    ys, xs = np.nonzero(x)
    assert ys.max() < side / 2 and xs.max() < side / 2  # still top left
    assert abs(x.mean() - (81 / 280) ** 2) < 0.02  # the same share of the frame


# --- encoding and the code maps ---
def test_encoding_a_drawing_is_the_librarys_encoding(runs):
    ref = RunRef.unchecked(runs / "demo-vae")
    model = ref.load_model()
    x = own.prepare(own.read_image(stroke_png()), "mnist5k", model.config.input_shape)
    with torch.no_grad():
        direct = model.encode(torch.as_tensor(x[None]))[0].numpy()
        mu, logvar = model.posterior(torch.as_tensor(x[None]))
    np.testing.assert_allclose(own.encode_input(model, x), direct, rtol=0, atol=1e-6)
    np.testing.assert_allclose(direct, mu[0].numpy(), atol=1e-6)  # the posterior mean
    np.testing.assert_allclose(own.posterior_sigma(model, x), (0.5 * logvar[0]).exp().numpy(), rtol=1e-6)


def test_projected_ellipses_hold_the_projected_posterior():
    """Samples of N(mu, diag(sigma^2)) pushed through a fitted PCA view: 39.3% of them fall
    inside the projected 1-sigma ellipse and 86.5% inside the 2-sigma one (a 2-D Gaussian)."""
    rng = np.random.default_rng(0)
    codes = rng.standard_normal((500, 6)) * np.arange(1, 7)
    view = fit_projection(codes.astype(np.float32), "pca")
    mu, sigma = rng.standard_normal(6), rng.uniform(0.2, 2.0, 6)
    one, two = own.projected_ellipses(view.linear(), mu, sigma)
    samples = view.place((mu + sigma * rng.standard_normal((20_000, 6))).astype(np.float32))
    from matplotlib.path import Path as Curve

    assert abs(Curve(one).contains_points(samples).mean() - (1 - np.exp(-0.5))) < 0.015
    assert abs(Curve(two).contains_points(samples).mean() - (1 - np.exp(-2.0))) < 0.015
    np.testing.assert_allclose(one.mean(0), view.place(mu[None].astype(np.float32))[0], atol=0.05)


def test_page_stars_the_drawing_where_the_pca_view_puts_its_code(runs, monkeypatch):
    png = stroke_png()
    at = page(runs, "demo-vae", data_url(png), monkeypatch)
    ref = RunRef.unchecked(runs / "demo-vae")
    model, codes = ref.load_model(), get_caches(ref)["codes"]
    x = own.prepare(own.read_image(png), "mnist5k", model.config.input_shape)
    with torch.no_grad():
        code = model.encode(torch.as_tensor(x[None]))[0].numpy()
    view = fit_projection(codes, "pca", ref.config["train_config"].seed)
    np.testing.assert_array_equal(view.points, get_caches(ref)["pca_codes"])  # the page's PCA view
    figure = input_figure(at)
    assert [a["text"] for a in figure["layout"]["annotations"]] == ["PCA of the codes"]
    (star,) = [t for t in figure["data"] if t.get("name") == "your input"]
    np.testing.assert_allclose([values(star, "x")[0], values(star, "y")[0]], view.place(code[None])[0], atol=1e-5)
    sigmas = [t for t in figure["data"] if t.get("name") in ("1-sigma", "2-sigma")]
    assert [t["name"] for t in sigmas] == ["1-sigma", "2-sigma"]
    assert any("1-sigma (solid) and 2-sigma (dashed)" in c.value and "UMAP is not linear" in c.value
               for c in at.caption)
    assert [m.value for m in at.markdown if "nearest" in m.value] == [
        "**8 nearest training images in code space**", "**8 nearest in pixel space**"]
    assert at.button(key="own_traverse").label == "Open the Traversal page from this code"


def test_a_2d_code_is_drawn_as_it_is_with_no_ellipse_for_a_plain_autoencoder(runs, monkeypatch):
    at = page(runs, "demo-ae-z2", data_url(stroke_png()), monkeypatch)
    figure = input_figure(at)
    titles = [a["text"] for a in figure["layout"]["annotations"]]
    assert titles == ["The 2-D codes as they are", "PCA of the codes"]
    stars = [t for t in figure["data"] if t.get("name") == "your input"]
    code = [float(v) for v in next(c.value for c in at.caption if c.value.startswith("Its code: "))[10:].split(",")]
    np.testing.assert_allclose([values(stars[0], "x")[0], values(stars[0], "y")[0]], code, atol=0.006)
    assert not any(t.get("name") in ("1-sigma", "2-sigma") for t in figure["data"])


@pytest.mark.slow
def test_umap_marker_is_the_fitted_umaps_transform(runs, monkeypatch):
    png = stroke_png()
    at = page(runs, "demo-ae-z2", data_url(png), monkeypatch, own_umap=True)
    ref = RunRef.unchecked(runs / "demo-ae-z2")
    model, codes = ref.load_model(), get_caches(ref)["codes"]
    code = own.encode_input(model, own.prepare(own.read_image(png), "mnist5k", model.config.input_shape))
    umap_view = fit_projection(codes, "umap", ref.config["train_config"].seed)
    figure = input_figure(at)
    assert [a["text"] for a in figure["layout"]["annotations"]][-1] == "UMAP of the codes (its transform of your code)"
    star = [t for t in figure["data"] if t.get("name") == "your input"][-1]
    np.testing.assert_allclose([values(star, "x")[0], values(star, "y")[0]], umap_view.place(code[None])[0],
                               atol=1e-4)


def shown(at: AppTest, media, caption: str) -> np.ndarray:
    """The pixels of the page's picture with ``caption``."""
    (element,) = [e for e in at.get("image") if e.proto.imgs[0].caption == caption]
    data, mimetype = media[element.proto.imgs[0].url.rsplit("/", 1)[1].split(".")[0]]
    return np.asarray(Image.open(io.BytesIO(data)))


def test_denoiser_shows_what_it_makes_of_a_corrupted_drawing(runs, monkeypatch, media):
    at = page(runs, "demo-denoising", data_url(stroke_png()), monkeypatch, own_corrupt=True)
    ref = RunRef.unchecked(runs / "demo-denoising")
    model = ref.load_model()
    x = own.prepare(own.read_image(stroke_png()), "mnist5k", model.config.input_shape)
    noisy = add_noise(torch.as_tensor(x[None]), model.config.noise, model.config.noise_level,
                      torch.Generator().manual_seed(0))[0].numpy()  # the run's noise, seed 0
    assert not np.array_equal(noisy, x)
    with torch.no_grad():
        denoised = torch.sigmoid(model.decode(model.encode(torch.as_tensor(noisy[None]))))[0].numpy()
        recon = torch.sigmoid(model.decode(model.encode(torch.as_tensor(x[None]))))[0].numpy()
    got = shown(at, media, "corrupted · what the denoiser makes of it")
    np.testing.assert_array_equal(got, image_grid([np.stack([noisy, denoised])], scale=4))
    pca = fit_pca(load_dataset("mnist5k").x_train, model.config.latent_dim)
    k = model.config.latent_dim
    first = shown(at, media, f"as the model sees it · its reconstruction · PCA's ({k} components)")
    expected = image_grid([np.stack([x, recon, pca_reconstruct(pca, x[None])[0].clip(0, 1)])], scale=4)
    assert np.abs(first.astype(int) - expected.astype(int)).max() <= 1  # float rounding at 255 levels
    assert "own_corrupt" not in [t.key for t in page(runs, "demo-vae", data_url(stroke_png()), monkeypatch).toggle]


def test_conditional_run_asks_for_the_class(runs, monkeypatch):
    at = page(runs, "demo-cvae", data_url(stroke_png()), monkeypatch, own_class=7)
    assert at.selectbox(key="own_class").value == 7
    input_figure(at)


@pytest.mark.parametrize("drawing, sentence", [
    (data_url(stroke_png(width=0, ink="black")), "The picture is empty; draw something"),
    ("data:image/jpeg;base64,AAAA", "The drawing did not arrive as a PNG picture"),
])
def test_bad_drawings_get_one_sentence_on_the_page(runs, monkeypatch, drawing, sentence):
    at = page(runs, "demo-vae", drawing, monkeypatch)
    assert [w.value for w in at.warning if w.value.startswith(sentence)], [w.value for w in at.warning]
    assert not [c for c in at.get("plotly_chart") if "your input" in c.proto.spec]


def test_the_section_is_closed_until_asked(runs, monkeypatch):
    monkeypatch.setenv("AELAB_RUNS", str(runs))
    at = AppTest.from_file(str(APP), default_timeout=120)
    at.switch_page("pages/latent.py")
    at.query_params.update(run="demo-vae")
    at.run()
    assert not at.toggle(key="own_on").value and not at.radio  # a plain visit: closed


# --- links: to the section and from it to the Traversal page ---
def test_code_links_round_trip_and_bad_codes_are_one_sentence():
    code = np.array([0.123456, -2.5, 1e-7, 3.0], dtype=np.float32)
    np.testing.assert_allclose(own.parse_code(own.code_text(code), 4), code, rtol=1e-4)
    for raw, start in [("1,2,x,4", "The link's code is not a list of numbers"),
                       ("1,2,3", "The link's code has 3 numbers but this run has 4"),
                       ("1,2,nan,4", "The link's code holds a value that is not finite"),
                       ("1,2,1e9,4", "The link's code holds a value that is not finite or larger")]:
        with pytest.raises(own.InputError, match=f"^{start}"):
            own.parse_code(raw, 4)


def test_traversal_page_opens_on_the_linked_code(runs, monkeypatch):
    monkeypatch.setenv("AELAB_RUNS", str(runs))
    code = own.code_text(np.linspace(-1, 1, 8))

    def traversal(**query):
        at = AppTest.from_file(str(APP), default_timeout=120)
        at.switch_page("pages/traversal.py")
        at.query_params.update(run="demo-vae", **query)
        at.run()
        assert not at.exception
        return at

    at = traversal(code=code, code_run="demo-vae")
    assert at.radio(key="trav_source").value == "your input"
    assert at.radio(key="trav_source").options[0] == "your input"
    at = traversal(code=code, code_run="demo-ae-z2")  # another run's code is not this run's
    assert "your input" not in at.radio(key="trav_source").options
    at = traversal(code="1,2", code_run="demo-vae")
    assert [w.value for w in at.warning] == ["The link's code has 2 numbers but this run has 8 latent dimensions."]
    assert [p.proto.page for p in at.get("page_link") if "latent" in p.proto.page]


def test_lesson_ae_and_vae_screens_link_to_the_section(runs, monkeypatch):
    from aelab.ui.own_input import link_params

    assert link_params("demo-vae") == {"run": "demo-vae", "input": "draw"}
    monkeypatch.setenv("AELAB_RUNS", str(runs))
    for step in ("ae-pca", "vae"):
        at = AppTest.from_file(str(APP), default_timeout=120)
        at.switch_page("pages/lesson.py")
        at.query_params.update(step=step)
        at.run()
        links = [p.proto for p in at.get("page_link") if p.proto.label.startswith("Draw your own input")]
        assert len(links) == 1 and "latent" in links[0].page, links
