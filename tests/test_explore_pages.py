"""The explore pages (Latent space, Traversal, Generate, Inside) with ``AppTest``.

A module fixture trains seven tiny ``digits`` runs in this process (``ae`` z=2, ``vae``
z=3, ``cvae`` z=3, ``sparse``, ``ksparse``, ``contractive`` and a plain ``ae`` of the
contractive's latent_dim), builds their caches up front and points ``$AELAB_RUNS`` at
that folder. Tests that need another folder (a run without caches, edited caches, a
contractive run without its twin) make a private one.

UMAP is replaced by PCA for every projection made here: numba compiles UMAP for ~25 s
per process, and what these tests check does not depend on which 2-D view it is
(tests/test_caches.py covers the real UMAP).

How pictures are read: AppTest exposes an ``st.image`` only as a media URL. The media
store's ``load_and_get_id`` is wrapped to record the bytes it is handed by file id (the
URL's last part), so a test decodes the very PNG the browser would get. Plotly figures
are read from the element proto's JSON spec (``at.get("plotly_chart")``; Plotly 6+
writes arrays as base64 ``bdata``). A box/lasso/click selection is sent the way the
browser sends it: a widget state whose ``string_value`` is the selection JSON, run with
``AppTest._run`` (AppTest has no public setter for chart selections).
"""
from __future__ import annotations

import base64
import io
import json
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import APP, assert_ok, open_page, shown_cells, tiny_run, umap_as_pca
from PIL import Image
from streamlit.testing.v1 import AppTest

import aelab.explore.latent
import aelab.explore.webdecoder
import aelab.metrics.results
import aelab.runs.local
from aelab.data.datasets import load_dataset
from aelab.explore.latent import (
    KL_INACTIVE,
    class_swap_grid,
    dimension_order,
    filters_and_atoms,
    interpolation_rows,
    jacobian_singular_values,
    kept_frequency,
    mean_activations,
    nearest_neighbours,
    prior_samples,
)
from aelab.explore.reconstructions import image_grid
from aelab.explore.webdecoder import WebDecoderError, export_decoder
from aelab.metrics.evaluate import reconstruct_array
from aelab.metrics.results import CACHE, get_caches, get_latent_scores, rebuild_caches, weights_hash
from aelab.runs.folder import atomic_write_tensors, load_model, read_tensors

# name -> (variant, model settings); made in this order, so "ae2" is every page's first run
RUNS = {
    "ae2": ("ae", {"latent_dim": 2}),
    "vae": ("vae", {"latent_dim": 3}),
    "cvae": ("cvae", {"latent_dim": 3}),
    "sparse": ("sparse", {"latent_dim": 8, "rho": 0.1}),
    "ksparse": ("ksparse", {"latent_dim": 8, "k": 1}),
    "contractive": ("contractive", {"latent_dim": 4}),
    "twin": ("ae", {"latent_dim": 4}),
}


# --- fixtures ---
def make_run(root: Path, variant: str, settings: dict) -> Path:
    return tiny_run(root, variant, model=settings)


@pytest.fixture(scope="module", autouse=True)
def pca_for_umap():
    with umap_as_pca():
        yield


@dataclass
class Runs:
    root: Path
    dirs: dict  # name -> run folder

    def id(self, name: str) -> str:
        return self.dirs[name].name

    def model(self, name: str):
        return load_model(self.dirs[name])

    def caches(self, name: str) -> dict:
        return get_caches(self.dirs[name])


@pytest.fixture(scope="module")
def template(tmp_path_factory, pca_for_umap):
    root = tmp_path_factory.mktemp("explore-runs")
    dirs = {name: make_run(root, variant, settings) for name, (variant, settings) in RUNS.items()}
    for run_dir in dirs.values():
        rebuild_caches(run_dir)
        get_latent_scores(run_dir)  # as the background scorer would (test_scores_are_... below)
    return Runs(root, dirs)


@pytest.fixture
def runs(template, monkeypatch):
    monkeypatch.setenv("AELAB_RUNS", str(template.root))
    return template


@pytest.fixture(autouse=True)
def no_supervisor(supervisor_calls):
    """No page test starts a background process."""


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


# --- helpers ---
def media_bytes(url: str, media: dict) -> tuple[bytes, str]:
    return media[url.rsplit("/", 1)[1].split(".")[0]]


def picture(element, media) -> np.ndarray:
    """The pixels of a shown st.image (its one picture)."""
    (url,) = element.value
    data, mimetype = media_bytes(url, media)
    assert mimetype == "image/png", mimetype
    return np.asarray(Image.open(io.BytesIO(data)))


def download(at: AppTest, key: str, media) -> bytes:
    button = next(b for b in at.download_button if b.key == key)
    return media_bytes(button.proto.url, media)[0]


def same_picture(shown: np.ndarray, expected: np.ndarray) -> bool:
    """Equal up to one grey level (float rounding on either side of the uint8 cast)."""
    return shown.shape == expected.shape and int(np.abs(shown.astype(int) - expected).max()) <= 1


def charts(at: AppTest) -> dict[str, dict]:
    """Each Plotly chart's figure (JSON spec) by its key."""
    return {c.key: json.loads(c.proto.spec) for c in at.get("plotly_chart")}


def array(value) -> np.ndarray:
    """A Plotly data array, plain or base64-typed (Plotly 6+)."""
    if isinstance(value, dict) and "bdata" in value:
        flat = np.frombuffer(base64.b64decode(value["bdata"]), dtype=value["dtype"])
        shape = value.get("shape")
        return flat.reshape([int(s) for s in str(shape).split(",")]) if shape else flat
    return np.asarray(value)


def drawn_colour(marker: dict, value: float) -> str:
    """The colour Plotly draws for a point of ``value`` on the marker's colour scale (its
    cmin..cmax mapped onto the scale's 0..1 stops; a stop's colour holds until the next)."""
    t = (value - marker["cmin"]) / (marker["cmax"] - marker["cmin"])
    stops = marker["colorscale"]
    return next(colour for (low, colour), (high, _) in zip(stops, stops[1:] + [[2.0, None]])
                if low <= t < high)


def select_points(at: AppTest, key: str, points: list[dict]) -> AppTest:
    """Select ``points`` (each a ``curve_number`` and ``point_index``) in chart ``key`` as
    the browser reports a box/lasso/click selection."""
    states = at._tree.get_widget_states()
    chart = next(c for c in at.get("plotly_chart") if c.key == key)
    state = next((w for w in states.widgets if w.id == chart.proto.id), None) or states.widgets.add()
    state.id = chart.proto.id
    state.string_value = json.dumps({"selection": {
        "points": [{**p, "point_number": p["point_index"]} for p in points],
        "point_indices": [p["point_index"] for p in points], "box": [], "lasso": []}})
    at._run(states)
    assert_ok(at)
    return at


def decode(model, z, y=None) -> np.ndarray:
    with torch.no_grad():
        y_t = None if y is None else torch.tensor(np.asarray(y, dtype=np.int64))
        return torch.sigmoid(model.decode(torch.tensor(np.asarray(z, dtype=np.float32)), y_t)).numpy()


def private_copy(runs: Runs, names: list[str], root: Path, monkeypatch) -> Path:
    """A runs folder holding copies of some fixture runs, set as ``$AELAB_RUNS``."""
    root.mkdir()
    for name in names:
        shutil.copytree(runs.dirs[name], root / runs.id(name))
    monkeypatch.setenv("AELAB_RUNS", str(root))
    return root


# --- Latent space ---
def latent_views(at: AppTest) -> tuple[list[str], list[list[dict]]]:
    """The Latent page's one figure: its subplot titles and, per view (subplot), its traces
    (one per label class)."""
    figure = charts(at)["lat_views"]
    titles = [a["text"] for a in figure["layout"]["annotations"]]
    data = figure["data"]
    per_view = len(data) // len(titles)
    return titles, [data[v * per_view:(v + 1) * per_view] for v in range(len(titles))]


def highlighted(at: AppTest, labels: np.ndarray) -> list[list[int] | None]:
    """Per view, the point indices it highlights (None: no selection), mapped back through
    the points of each class (in index order) that each trace holds."""
    classes = sorted(set(labels.tolist()))
    out = []
    for traces in latent_views(at)[1]:
        if all(t.get("selectedpoints") is None for t in traces):
            out.append(None)
            continue
        out.append(sorted(int(np.flatnonzero(labels == c)[i]) for c, t in zip(classes, traces)
                          for i in t["selectedpoints"]))
    return out


@pytest.mark.parametrize("name, views", [
    ("ae2", ["The 2-D codes as they are", "PCA of the codes", "UMAP of the codes",
             "PCA of the raw pixels (baseline)", "UMAP of the raw pixels (baseline)"]),
    ("vae", ["PCA of the codes", "UMAP of the codes", "PCA of the raw pixels (baseline)",
             "UMAP of the raw pixels (baseline)"]),
])
@pytest.mark.slow
def test_latent_page_shows_views_coloured_by_label_and_the_score_table(runs, name, views):
    at = open_page("latent", select=("lat_run", runs.id(name)))
    caches = runs.caches(name)
    # one figure, a subplot per view; then the time-lapse of the run's probe codes
    assert list(charts(at)) == ["lat_views", "lat_timelapse"]
    titles, per_view = latent_views(at)
    assert titles == views
    sources = (["codes"] if name == "ae2" else []) + ["pca_codes", "umap_codes", "pca_pixels", "umap_pixels"]
    labels = caches["labels"]
    classes = sorted(set(labels.tolist()))
    first = per_view[0]
    # categorical colours: a trace per class, one colour each, named once in the legend
    assert [t["name"] for t in first] == [str(c) for c in classes]
    colour = {t["name"]: t["marker"]["color"] for t in first}
    assert len(set(colour.values())) == len(classes)
    axes = set()
    for v, (traces, source) in enumerate(zip(per_view, sources, strict=True)):
        assert [t["name"] for t in traces] == [str(c) for c in classes]
        for c, trace in zip(classes, traces):
            assert trace["type"] == "scatter"  # SVG: few points
            assert trace["showlegend"] == (v == 0) and trace["marker"]["color"] == colour[str(c)]
            axes.add((trace["xaxis"], trace["yaxis"]))
            member = np.flatnonzero(labels == c)  # the class's points, in index order
            np.testing.assert_allclose(array(trace["x"]), caches[source][member, 0], rtol=1e-6)
            np.testing.assert_allclose(array(trace["y"]), caches[source][member, 1], rtol=1e-6)
    assert len(axes) == len(views)  # each view on its own axes
    table = at.dataframe[0].value
    assert table["space"].tolist() == ["codes", f"PCA codes ({RUNS[name][1]['latent_dim']})", "raw pixels"]
    assert {"knn_acc", "linear_acc", "trust PCA 2-D", "trust UMAP 2-D"} <= set(table.columns)
    assert table["dims"].tolist() == [caches["codes"].shape[1]] * 2 + [64]
    assert table["knn_acc"].between(0, 1).all()
    assert table["trust PCA 2-D"].str.startswith("n/a - ").sum() == 1  # the browser draws an empty cell "None"
    # each score read with its interval: "0.893 [0.869, 0.913]", the interval column hidden
    knn = shown_cells(at.dataframe[0])["knn_acc"].str.extract(r"^(\d\.\d+) \[(\d\.\d+), (\d\.\d+)\]$")
    knn = knn.astype(float)
    assert knn.notna().all().all() and (knn[1] <= knn[0]).all() and (knn[0] <= knn[2]).all()
    np.testing.assert_allclose(knn[0], table["knn_acc"], atol=5e-4)
    assert "knn_acc_ci" not in at.dataframe[0].proto.column_order
    assert (runs.dirs[name] / "scores.json").is_file()
    at.toggle(key="lat_scores").set_value(False).run()
    assert_ok(at)
    assert len(at.dataframe) == 0


def test_sessions_share_the_latent_figure_and_the_cached_arrays(runs, tmp_path, monkeypatch, capsys):
    """The figure is built once, and the cache file read once, for a rerun and a second session."""
    private_copy(runs, ["vae"], tmp_path / "runs", monkeypatch)  # a new folder: new cache keys
    built, read = [], []
    scatters, load = aelab.explore.latent.label_scatters, aelab.metrics.results.get_caches
    monkeypatch.setattr(aelab.explore.latent, "label_scatters",
                        lambda views, *a, **k: built.append(list(views)) or scatters(views, *a, **k))
    monkeypatch.setattr(aelab.metrics.results, "get_caches", lambda *a, **k: read.append(a) or load(*a, **k))
    monkeypatch.setenv("AELAB_TIMING", "1")  # the server's script time, for bench/
    first = open_page("latent")
    assert len(built) == 1 and len(built[0]) == 4 and len(read) == 1
    first.run()
    second = open_page("latent")
    assert_ok(first)
    assert_ok(second)
    assert len(latent_views(second)[1]) == 4
    assert len(built) == 1 and len(read) == 1, (built, read)
    assert "aelab-timing page=latent script_s=" in capsys.readouterr().err


def select_in_view(at: AppTest, view: int, indices: list[int], labels: np.ndarray) -> AppTest:
    """Select the points ``indices`` in view ``view`` as the browser reports it: per point,
    the trace of its class in that view and its place in that trace."""
    classes = sorted(set(labels.tolist()))
    points = []
    for i in indices:
        c = classes.index(int(labels[i]))
        points.append({"curve_number": view * len(classes) + c,
                       "point_index": int(np.flatnonzero(labels == labels[i]).tolist().index(i))})
    return select_points(at, "lat_views", points)


def test_selected_points_show_their_images_reconstructions_and_neighbours(runs, media, digits):
    at = open_page("latent", select=("lat_run", runs.id("ae2")))
    assert len(at.image) == 0
    caches, model = runs.caches("ae2"), runs.model("ae2")
    labels = caches["labels"]
    n = len(caches["index"])
    assert f"**0 of {n} selected**" in [m.value for m in at.markdown]
    assert highlighted(at, labels) == [None] * 5
    select_in_view(at, 1, [40, 3], labels)  # a box or lasso in the PCA view
    assert "2 selected point(s)" in [s.value for s in at.subheader]
    assert f"**2 of {n} selected**" in [m.value for m in at.markdown]
    # linked: the same points are highlighted in every view
    assert highlighted(at, labels) == [[3, 40]] * 5
    shown = digits.x_test[caches["index"][[3, 40]]]
    images, recons, near = (picture(e, media) for e in at.image)
    assert same_picture(images, image_grid([shown], scale=8))
    assert same_picture(recons, image_grid([reconstruct_array(model, shown)], scale=8))
    neighbours = nearest_neighbours(caches["codes"], 3, k=8)
    assert same_picture(near, image_grid([digits.x_test[caches["index"][neighbours]]], scale=8))

    select_in_view(at, 3, [10, 11, 12], labels)  # then a selection in another view
    assert "3 selected point(s)" in [s.value for s in at.subheader]
    assert f"**3 of {n} selected**" in [m.value for m in at.markdown]
    assert highlighted(at, labels) == [[10, 11, 12]] * 5
    select_in_view(at, 1, [7], labels)  # a click back in the first view: the newest wins
    assert "1 selected point(s)" in [s.value for s in at.subheader]
    clicked = digits.x_test[caches["index"][[7]]]
    assert same_picture(picture(at.image[0], media), image_grid([clicked], scale=8))
    select_in_view(at, 4, [5, 6], labels)  # any view: its selection replaces the page's
    assert highlighted(at, labels) == [[5, 6]] * 5
    at.button(key="lat_clear").click().run()
    assert f"**0 of {n} selected**" in [m.value for m in at.markdown] and len(at.image) == 0
    assert highlighted(at, labels) == [None] * 5


@pytest.mark.slow
def test_a_run_without_caches_gets_them_computed_and_stored(tmp_path, monkeypatch):
    """Also a 1-D code: its views are padded to 2-D and Traversal has one slider."""
    root = tmp_path / "runs"
    run_dir = make_run(root, "ae", {"latent_dim": 1})
    monkeypatch.setenv("AELAB_RUNS", str(root))
    assert not (run_dir / CACHE).exists()
    at = open_page("latent")
    assert (run_dir / CACHE).is_file()
    assert read_tensors(run_dir / CACHE)[1]["weights_sha256"] == weights_hash(run_dir)
    labels = [s.label for s in at.status]
    assert "Computing codes and projections: done" in labels, labels
    assert len(latent_views(at)[1]) == 4
    again = open_page("latent")  # now it opens from the stored cache
    assert "Computing codes and projections: done" not in [s.label for s in again.status]
    at = open_page("traversal")
    assert [s.label for s in at.slider] == ["Steps"]  # no "Dimensions shown" for one dim
    assert [s["label"] for s in slider_view(at)[0]["dims"]] == ["z0"]


# --- Traversal ---
def slider_view(at: AppTest) -> tuple[dict, dict]:
    """The sliders and the decoder the page hands the browser (webdecoder.js runs them; it is
    checked against torch in tests/e2e/test_webdecoder_browser.py): the JSON in its HTML."""
    (frame,) = at.get("iframe")
    found = dict(re.findall(r'<script type="application/json" id="aelab-(\w+)">(.*?)</script>',
                            frame.proto.srcdoc, re.S))
    return tuple(json.loads(found[name].replace("<\\/", "</")) for name in ("view", "decoder"))


def test_the_browser_gets_the_sliders_at_the_base_code_and_the_decoder(runs, media):
    at = open_page("traversal", select=("trav_run", runs.id("ae2")))
    model, codes = runs.model("ae2"), runs.caches("ae2")["codes"]
    view, decoder = slider_view(at)
    assert view["base"] == pytest.approx(codes[0].tolist(), abs=1e-6)
    assert [s["label"] for s in view["dims"]] == ["z0", "z1"]
    for s in view["dims"]:  # the observed code range, the base inside it
        assert s["low"] == pytest.approx(min(codes[:, s["d"]].min(), codes[0, s["d"]]), abs=1e-6)
        assert s["high"] == pytest.approx(max(codes[:, s["d"]].max(), codes[0, s["d"]]), abs=1e-6)
        assert s["step"] == pytest.approx((s["high"] - s["low"]) / 100)
    assert decoder == json.loads(json.dumps(export_decoder(model)))  # this run's weights
    assert view["caption"] == "decoded from the sliders"
    assert "The server decodes" not in " ".join(at.caption.values)
    assert len(at.image) == 2  # the grid's two rows: the decoded picture is drawn in the browser


def test_a_run_the_browser_cannot_decode_is_decoded_on_the_server(runs, media, tmp_path, monkeypatch):
    def refuse(model):
        raise WebDecoderError("the browser cannot decode a Sigmoid layer")

    private_copy(runs, ["ae2"], tmp_path / "runs", monkeypatch)  # a new folder: not cached
    monkeypatch.setattr(aelab.explore.webdecoder, "export_decoder", refuse)
    at = open_page("traversal", select=("trav_run", runs.id("ae2")))
    assert "The server decodes this run's pictures, since the browser cannot decode a Sigmoid layer." \
        in at.caption.values
    assert not at.get("iframe")
    model, codes = runs.model("ae2"), runs.caches("ae2")["codes"]
    prefix = f"trav.{runs.id('ae2')}.0"
    z = codes[0].copy()
    assert [at.slider(key=f"{prefix}.z{d}").value for d in range(2)] == pytest.approx(z.tolist(), abs=1e-6)
    before = picture(at.image[0], media)
    assert same_picture(before, image_grid([decode(model, z[None])], scale=40))
    grid_before = [picture(row, media) for row in at.image[1:]]
    z[1] = float((codes[:, 1].min() + codes[:, 1].max()) / 2 + 0.3 * codes[:, 1].std())
    at.slider(key=f"{prefix}.z1").set_value(float(z[1])).run()
    assert_ok(at)
    after = picture(at.image[0], media)
    assert not np.array_equal(before, after)
    assert same_picture(after, image_grid([decode(model, z[None])], scale=40))
    # the grid is around the base: unchanged (a slider move reruns only its fragment)
    assert all(np.array_equal(picture(row, media), b) for row, b in zip(at.image[1:], grid_before))
    at.button(key="trav_reset").click().run()  # every slider back to the base code
    assert [at.slider(key=f"{prefix}.z{d}").value for d in range(2)] == pytest.approx(codes[0].tolist(), abs=1e-6)
    assert same_picture(picture(at.image[0], media), before)


def test_the_decoder_is_exported_once_for_every_session(runs, tmp_path, monkeypatch):
    calls = []

    def counted(model):
        calls.append(model)
        return export(model)

    export = aelab.explore.webdecoder.export_decoder
    private_copy(runs, ["ae2"], tmp_path / "runs", monkeypatch)  # a new folder: not cached yet
    monkeypatch.setattr(aelab.explore.webdecoder, "export_decoder", counted)
    first = open_page("traversal", select=("trav_run", runs.id("ae2")))
    first.number_input(key="trav_index").set_value(3).run()  # a new base: the same decoder
    second = open_page("traversal", select=("trav_run", runs.id("ae2")))  # another student
    assert len(calls) == 1
    assert slider_view(first)[1] == slider_view(second)[1]


def test_changing_the_base_image_starts_the_sliders_at_its_code(runs):
    at = open_page("traversal", select=("trav_run", runs.id("ae2")))
    codes = runs.caches("ae2")["codes"]
    at.number_input(key="trav_index").set_value(5).run()
    assert_ok(at)
    values = slider_view(at)[0]["base"]
    assert values == pytest.approx(codes[5].tolist(), abs=1e-6)
    assert values != pytest.approx(codes[0].tolist(), abs=1e-3)


def test_vae_sliders_follow_kl_prior_mean_base_and_kl_bar_chart(runs):
    at = open_page("traversal", select=("trav_run", runs.id("vae")))
    kl = runs.caches("vae")["kl_per_dim"]
    active, inactive = dimension_order(kl, 3)
    assert [s["label"] for s in slider_view(at)[0]["dims"]] == [f"z{d} (KL {kl[d]:.2f})" for d in active + inactive]
    (bar,) = charts(at)["trav_kl"]["data"]
    assert bar["type"] == "bar" and array(bar["y"]) == pytest.approx(kl)
    at.radio(key="trav_source").set_value("prior mean").run()
    assert_ok(at)
    assert slider_view(at)[0]["base"] == [0.0, 0.0, 0.0]
    assert at.caption.values.count("Dimensions ordered by KL") == 1

    plain = open_page("traversal", select=("trav_run", runs.id("ae2")))
    assert charts(plain) == {}  # no KL for a plain autoencoder
    assert plain.radio(key="trav_source").options == ["test image"]  # no prior to take a mean of


def test_inactive_dimensions_are_folded_away(runs, tmp_path, monkeypatch):
    root = private_copy(runs, ["vae"], tmp_path / "runs", monkeypatch)
    cache = root / runs.id("vae") / CACHE
    tensors, meta = read_tensors(cache)
    tensors["kl_per_dim"] = torch.tensor([0.5, KL_INACTIVE / 10, 0.2])
    atomic_write_tensors(cache, tensors, meta)  # same weights hash: trusted as is
    at = open_page("traversal")
    view = slider_view(at)[0]
    assert view["inactive_title"] == f"1 inactive dimension(s) (KL < {KL_INACTIVE} nats)"
    assert [(s["label"], s["inactive"]) for s in view["dims"]] == [
        ("z0 (KL 0.50)", False), ("z2 (KL 0.20)", False), ("z1 (KL 0.00)", True)]


def test_grid_steps_rows_and_downloads(runs, media):
    def size(steps, rows):  # image_grid: 8x8 tiles, 2 px padding, then 10x scale: (H, W)
        return ((rows * 10 + 2) * 10, (steps * 10 + 2) * 10)

    at = open_page("traversal", select=("trav_run", runs.id("vae")))
    rows = [picture(row, media) for row in at.image]  # one labelled row per dimension
    assert [r.shape for r in rows] == [size(9, 1)] * 3
    kl = runs.caches("vae")["kl_per_dim"]
    active, inactive = dimension_order(kl, 3)
    labels = [m.value for m in at.markdown if m.value.startswith("**z")]
    assert labels == [f"**z{d}**  \nKL {kl[d]:.2f}" for d in active + inactive]
    png = np.asarray(Image.open(io.BytesIO(download(at, "trav_png", media))))
    assert png.shape == size(9, 3)  # the whole grid in one picture
    assert np.array_equal(png[20:20 + 80, 20:], rows[0][20:20 + 80, 20:])  # its first row is the first shown
    gif = Image.open(io.BytesIO(download(at, "trav_gif", media)))
    # a frame is one step of every shown dimension side by side; 9 steps forth, 7 back
    assert gif.format == "GIF" and gif.n_frames == 16 and gif.size == size(3, 1)[::-1]
    at.slider(key="trav_steps").set_value(5).run()
    at.slider(key="trav_rows").set_value(2).run()
    assert_ok(at)
    assert [picture(row, media).shape for row in at.image] == [size(5, 1)] * 2


def test_cvae_class_follows_the_base_image_and_goes_to_the_decoder(runs):
    at = open_page("traversal", select=("trav_run", runs.id("cvae")))
    caches = runs.caches("cvae")
    prefix = f"trav.{runs.id('cvae')}"
    labels = caches["labels"]
    other = int(np.flatnonzero(labels != labels[0])[0])
    assert at.selectbox(key=f"{prefix}.0.class").value == labels[0]
    view, decoder = slider_view(at)
    assert view["label"] == labels[0] and decoder["condition"] == {"kind": "one_hot", "classes": 10}
    new_class = (int(labels[0]) + 1) % 10
    at.selectbox(key=f"{prefix}.0.class").select(new_class).run()
    assert_ok(at)
    assert slider_view(at)[0]["label"] == new_class
    at.number_input(key="trav_index").set_value(other).run()  # a new base: its own label again
    assert at.selectbox(key=f"{prefix}.{other}.class").value == labels[other]
    assert slider_view(at)[0]["label"] == labels[other]


def test_a_unit_that_never_varies_still_gets_a_slider(runs):
    codes = runs.caches("ksparse")["codes"]
    constant = np.flatnonzero(codes.min(0) == codes.max(0))
    assert len(constant), "the fixture's k=1 run should have a unit never among the kept k"
    at = open_page("traversal", select=("trav_run", runs.id("ksparse")))
    d = int(constant[0])
    (unit,) = [s for s in slider_view(at)[0]["dims"] if s["d"] == d]
    assert unit["low"] < codes[0, d] < unit["high"]


# --- Generate ---
def test_prior_samples_follow_the_seed_and_the_count(runs, media):
    at = open_page("generate", select=("gen_run", runs.id("vae")))
    assert len(at.selectbox(key="gen_run").options) == 2  # vae and cvae only
    model = runs.model("vae")
    expected = prior_samples(model, 32, 0)
    first = picture(at.image[0], media)
    assert same_picture(first, image_grid([expected[i:i + 8] for i in range(0, 32, 8)], scale=8))
    at.number_input(key="gen_seed").set_value(3).run()
    assert_ok(at)
    reseeded = picture(at.image[0], media)
    assert not np.array_equal(first, reseeded)
    expected = prior_samples(model, 32, 3)
    assert same_picture(reseeded, image_grid([expected[i:i + 8] for i in range(0, 32, 8)], scale=8))
    at.slider(key="gen_n").set_value(8).run()
    assert picture(at.image[0], media).shape == ((10 + 2) * 8, (80 + 2) * 8)  # one row of 8, 64-px tiles


def test_cvae_class_grid_and_class_swap_grid(runs, media):
    at = open_page("generate", select=("gen_run", runs.id("cvae")))
    model = runs.model("cvae")

    def class_grid(label, seed=0):
        images = prior_samples(model, 32, seed, y=np.array([label]))
        return image_grid([images[i:i + 8] for i in range(0, 32, 8)], scale=8)

    assert same_picture(picture(at.image[0], media), class_grid(0))
    swap = picture(at.image[1], media)
    assert same_picture(swap, image_grid(list(class_swap_grid(model, 6, 0)), scale=8))
    at.selectbox(key="gen_class").select(7).run()
    assert_ok(at)
    assert at.image[0].captions == ["class 7"]
    assert same_picture(picture(at.image[0], media), class_grid(7))
    assert not same_picture(picture(at.image[0], media), class_grid(0))
    assert np.array_equal(picture(at.image[1], media), swap)  # the swap grid shows every class
    at.number_input(key="gen_seed").set_value(1).run()
    assert not np.array_equal(picture(at.image[1], media), swap)


def test_interpolation_rows_follow_the_run_images_and_steps(runs, media, digits):
    at = open_page("generate")
    at.selectbox(key="int_run").select(runs.id("vae")).run()
    assert_ok(at)
    names = ["**linear in code space**", "**spherical in code space**", "**pixel blending**"]
    assert [m.value for m in at.markdown if m.value in names] == names
    model = runs.model("vae")
    images = at.image[-3:]
    before = [picture(e, media) for e in images]
    expected = interpolation_rows(model, digits.x_test[0], digits.x_test[1], int(digits.y_test[0]),
                                  int(digits.y_test[1]), 8)
    for shown, row in zip(before, expected.values()):
        assert same_picture(shown, image_grid([row], scale=8))
    at.number_input(key="int_b").set_value(9).run()
    assert_ok(at)
    after = [picture(e, media) for e in at.image[-3:]]
    assert all(not np.array_equal(a, b) for a, b in zip(before, after))
    blend = interpolation_rows(model, digits.x_test[0], digits.x_test[9], steps=8)["pixel blending"]
    assert same_picture(after[2], image_grid([blend], scale=8))
    at.number_input(key="int_a").set_value(4).run()
    blend = interpolation_rows(model, digits.x_test[4], digits.x_test[9], steps=8)["pixel blending"]
    assert same_picture(picture(at.image[-1], media), image_grid([blend], scale=8))
    at.slider(key="int_steps").set_value(4).run()
    assert picture(at.image[-1], media).shape[1] == (4 * 10 + 2) * 8  # 8x8 digits drawn 8x: 64-px tiles

    at.selectbox(key="int_run").select(runs.id("ae2")).run()  # a plain AE: no spherical row
    assert "**spherical in code space**" not in [m.value for m in at.markdown]
    assert "**linear in code space**" in [m.value for m in at.markdown]


# --- Inside ---
def test_sparse_run_shows_the_histogram_of_mean_activations(runs, digits):
    at = open_page("inside", select=("in_run", runs.id("sparse")))
    figure = charts(at)["in_sparse"]
    (histogram,) = figure["data"]
    assert histogram["type"] == "histogram"
    expected = mean_activations(runs.model("sparse"), digits.x_test[:500])
    np.testing.assert_allclose(array(histogram["x"]), expected, rtol=1e-6)
    (line,) = figure["layout"]["shapes"]
    assert line["x0"] == line["x1"] == pytest.approx(0.1)  # the target rho


def test_ksparse_run_shows_how_often_each_unit_is_kept(runs, digits):
    at = open_page("inside", select=("in_run", runs.id("ksparse")))
    figure = charts(at)["in_ksparse"]
    (bar,) = figure["data"]
    assert bar["type"] == "bar"
    expected = kept_frequency(runs.model("ksparse"), digits.x_test[:500])
    np.testing.assert_allclose(array(bar["y"]), expected)
    assert array(bar["y"]).sum() == pytest.approx(1.0)  # k = 1 unit per image
    (line,) = figure["layout"]["shapes"]
    assert line["y0"] == pytest.approx(1 / 8)


def test_contractive_run_is_compared_with_its_plain_twin(runs, digits, tmp_path, monkeypatch):
    at = open_page("inside", select=("in_run", runs.id("contractive")))
    traces = charts(at)["in_contractive"]["data"]
    assert [t["type"] for t in traces] == ["scatter", "scatter"]
    assert traces[0]["name"].startswith("contractive: ‖J‖F = ") and traces[1]["name"].startswith("plain ae")
    assert len(array(traces[0]["y"])) == len(array(traces[1]["y"])) == 4  # one per code unit
    # the legend's Frobenius norm is the root of the summed squared singular values, per image
    values = jacobian_singular_values(runs.model("contractive"), digits.x_test[:500], n=48)
    assert traces[0]["name"].endswith(f"{np.sqrt((values ** 2).sum(1)).mean():.1f}")

    private_copy(runs, ["contractive"], tmp_path / "alone", monkeypatch)
    alone = open_page("inside")
    assert [t["name"].split(":")[0] for t in charts(alone)["in_contractive"]["data"]] == ["contractive"]
    assert any("Train a plain `ae`" in c for c in alone.caption.values)


def test_filters_and_atoms_of_an_mlp_run_and_no_chart_without_a_regulariser(runs, media):
    at = open_page("inside", select=("in_run", runs.id("vae")))
    filters, atoms = filters_and_atoms(runs.model("vae"), 32)
    shown = [picture(e, media) for e in at.image]
    assert len(shown) == 2
    for got, tiles in zip(shown, (filters, atoms)):
        assert same_picture(got, image_grid([tiles[i:i + 8] for i in range(0, 32, 8)], scale=8))
    assert charts(at) == {}
    at.selectbox(key="in_run").select(runs.id("ae2")).run()
    assert not np.array_equal(picture(at.image[0], media), shown[0])  # another run, other filters



# --- the selected run lives in the URL ---
def test_run_in_the_url_opens_that_run_and_a_choice_goes_into_the_url(runs):
    def traversal(run_param: str) -> AppTest:
        at = AppTest.from_file(str(APP), default_timeout=60)
        at.switch_page("pages/traversal.py")
        at.query_params["run"] = run_param  # a link such as /traversal?run=<id>
        at.run()
        assert_ok(at)
        return at

    default = open_page("traversal").selectbox(key="trav_run").value
    wanted = next(run_dir.name for run_dir in runs.dirs.values() if run_dir.name != default)
    at = traversal(wanted)
    assert at.selectbox(key="trav_run").value == wanted
    assert at.query_params["run"] == wanted
    assert wanted not in at.selectbox(key="trav_run").options  # readable labels, not ids
    at.selectbox(key="trav_run").select(default).run()  # the user's choice wins over the link
    assert_ok(at)
    assert at.selectbox(key="trav_run").value == default and at.query_params["run"] == default

    at = traversal("no-such-run")  # a stale link: the default run, and one sentence saying so
    assert at.selectbox(key="trav_run").value == default
    label = at.selectbox(key="trav_run").format_func(default)
    assert [w.value for w in at.warning] == [f"There is no run 'no-such-run' in this runs folder, "
                                              f"so it shows {label} instead."]
    assert not open_page("traversal").warning  # no link, no sentence


def test_scores_not_ready_are_computed_in_the_background_never_in_the_page(runs, tmp_path, monkeypatch):
    import aelab.metrics.background

    root = private_copy(runs, ["ae2"], tmp_path / "runs", monkeypatch)
    (root / runs.id("ae2") / "scores.json").unlink()
    started = []
    monkeypatch.setattr(aelab.metrics.background, "start_scoring", lambda run_dir, kind: started.append(kind))
    at = open_page("latent")
    assert started == ["latent"]  # handed to a background process (python -m aelab latent-scores)
    assert any("Scoring the score table in the background" in i.value for i in at.info)
    assert len(at.dataframe) == 0 and len(latent_views(at)[1]) == 5  # the rest of the page is there
    assert not (root / runs.id("ae2") / "scores.json").exists()


def test_the_latent_scores_command_writes_what_the_page_reads(runs, tmp_path, monkeypatch, capsys):
    from aelab.cli import main
    from aelab.metrics.results import cached_latent_scores

    root = private_copy(runs, ["ae2"], tmp_path / "runs", monkeypatch)
    (root / runs.id("ae2") / "scores.json").unlink()
    assert main(["latent-scores", runs.id("ae2"), "--runs-dir", str(root), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == cached_latent_scores(root / runs.id("ae2"))
