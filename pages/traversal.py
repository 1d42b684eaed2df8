"""Traversal: one slider per latent dimension; a traversal grid as PNG and GIF."""
from aelab import ui

ui.within_app()  # first: a deep link on a fresh server hands over to app.py

import zlib

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from aelab.data.datasets import class_name
from aelab.explore.latent import (
    KL_INACTIVE,
    decode_codes,
    dimension_order,
    gif_bytes,
    is_vae,
    png_bytes,
    traversal_grid,
    traversal_range,
)
from aelab.explore.reconstructions import image_grid
from aelab.explore.webdecoder import CAPTION as DECODED
from aelab.explore.webdecoder import page_height, slider_page, slider_spec
from aelab.ui.export import export_button

st.title("Traversal")
run = ui.pick_run(ui.list_runs(), key="trav_run")
if run is None:
    st.stop()
with st.spinner(f"Loading {run['id']}, its test set and its codes..."):
    run_dir, model, ds, caches = ui.open_run(run)


@st.cache_data(max_entries=32, show_spinner="Measuring the spread of the codes...")
def code_range(run_key: str, _model, _ds, _caches) -> tuple[np.ndarray, np.ndarray]:
    """``traversal_range`` over the cached test points, once per run and weights
    (``run_key``): for a VAE it encodes every point, too slow to repeat on each slider move."""
    x = _ds.x_test[_caches["index"]]
    return traversal_range(_model, x, _caches.get("labels"), _caches["codes"])


def grid_scale(width: int) -> int:
    return max(1, 84 // width)  # 28-pixel digits drawn 3x, 8-pixel ones 10x


@st.cache_data(max_entries=64, show_spinner=False)
def grid_files(run_key: str, base: np.ndarray, dims: tuple[int, ...], steps: int, label,
               _model, _low, _high) -> tuple[bytes, bytes, np.ndarray]:
    """The traversal grid's PNG, its GIF (one frame per step) and its rows of images; kept,
    as they do not change when a slider moves."""
    grid = traversal_grid(_model, base, list(dims), _low, _high, steps, label)
    scale = grid_scale(grid.shape[-1])
    picture = image_grid(list(grid), scale=scale)
    frames = [image_grid([grid[:, t]], scale=scale) for t in range(steps)]
    return png_bytes(picture), gif_bytes(frames), grid


vae = is_vae(model)
n_points, width = len(caches["index"]), ds.x_test.shape[-1]
labels = caches.get("labels")
run_key = f"{run_dir}@{run_dir.weights_sha256()}"  # the weights' hash: new weights, new ranges
low, high = code_range(run_key, model, ds, caches)
kl = caches.get("kl_per_dim")
active, inactive = dimension_order(kl, model.config.latent_dim)

ui.own_input_link(run["id"])
own_code = ui.own_input_code(run["id"], model.config.latent_dim, "trav_source")  # from the Latent page

top = st.columns([1, 1, 1])
sources = ["test image", "prior mean"] if model.samples_prior else ["test image"]
sources = sources if own_code is None else [ui.OWN_SOURCE, *sources]
if st.session_state.get("trav_source") not in sources:
    st.session_state.pop("trav_source", None)
source = top[0].radio("Base", sources, horizontal=True, key="trav_source")
if source == ui.OWN_SOURCE:
    index, base = f"own{zlib.crc32(own_code.tobytes())}", own_code.copy()  # its own sliders
    label = 0 if model.config.num_classes and model.conditional else None
elif source == "test image":
    index = top[1].number_input("Test image", 0, n_points - 1, 0, key="trav_index")
    base = caches["codes"][index].astype(np.float32)
    label = None if labels is None else labels[index]
else:
    index, base = "prior", np.zeros(model.config.latent_dim, dtype=np.float32)
    label = 0 if model.config.num_classes and model.conditional else None
prefix = f"trav.{run['id']}.{index}"  # a new base starts new widgets at its own values
if model.conditional:
    label = top[2].selectbox("Class", list(range(model.config.num_classes)), index=int(label or 0),
                             key=f"{prefix}.class", format_func=lambda c: class_name(run["dataset"], c))


sliders = slider_spec(base, low, high, active, inactive, kl, label, KL_INACTIVE)
scale = max(1, 320 // width)
st.caption("Dimensions ordered by KL" if kl is not None else "Dimensions in order")
decoder_json, refused = ui.web_decoder_for(run_dir)


def reset_sliders() -> None:
    for key in [k for k in st.session_state if k.startswith(f"{prefix}.z")]:
        del st.session_state[key]  # recreated at the base code's values


@st.fragment
def server_sliders_and_picture() -> None:
    """Only for a run the browser cannot decode: a slider move reruns this on the server."""
    z = base.copy()

    def slider(s: dict) -> None:
        z[s["d"]] = st.slider(s["label"], s["low"], s["high"], float(base[s["d"]]), step=s["step"],
                              key=f"{prefix}.z{s['d']}")

    left, right = st.columns([1, 1], gap="large")
    with left:
        # the sliders scroll in their own box, so the picture beside them stays in view
        with st.container(height=440 if len(sliders["dims"]) > 5 else "content", border=False):
            for s in sliders["dims"]:
                if not s["inactive"]:
                    slider(s)
            if inactive:
                with st.expander(sliders["inactive_title"]):
                    for s in sliders["dims"]:
                        if s["inactive"]:
                            slider(s)
    with right:
        decoded = decode_codes(model, z[None], None if label is None else np.array([label]))
        ui.image(image_grid([decoded], scale=scale), caption=DECODED)
        st.button("Reset sliders to the base", icon=":material/restart_alt:", on_click=reset_sliders,
                  key="trav_reset", help="Every slider back to the base code: the test image's code "
                  "or the prior mean")


if decoder_json is not None:  # the browser decodes: a slider move touches no server
    large = bool(st.session_state.get("present"))  # presenter mode: larger text
    st.iframe(slider_page(decoder_json, sliders, scale, large), alt=DECODED,
              height=page_height(sliders, list(ds.x_test.shape[1:]), scale, large))
else:
    st.caption(f"The server decodes this run's pictures, since {refused}.")
    server_sliders_and_picture()
export_button(run_dir, key="trav_export")

@st.fragment
def traversal_grid_section() -> None:
    """The grid, its sliders and downloads: moving its sliders reruns only this part
    (st.fragment), not the page."""
    st.subheader("Traversal grid")
    g1, g2 = st.columns(2)
    steps = g1.slider("Steps", 5, 15, 9, key="trav_steps")
    n_dims = len(active) + len(inactive)
    rows_max = (g2.slider("Dimensions shown", 1, n_dims, min(10, max(1, len(active))), key="trav_rows")
                if n_dims > 1 else 1)  # a slider needs min < max
    dims = (active + inactive)[:rows_max]
    png, gif, rows = grid_files(run_key, base, tuple(dims), steps, label, model, low, high)
    st.caption("Each row sweeps one dimension, the others held at the base; columns: "
               + ("-3 to +3 aggregate posterior std" if vae else "the observed code range"))
    ui.labelled_images([(f"**z{d}**" + (f"  \nKL {kl[d]:.2f}" if kl is not None else ""), row)
                        for d, row in zip(dims, rows)], scale=grid_scale(width), width=(1, 8))
    d1, d2 = st.columns(2)
    d1.download_button("Download PNG", png, f"{run['id']}-traversal.png", "image/png", key="trav_png")
    d2.download_button("Download GIF", gif, f"{run['id']}-traversal.gif", "image/gif", key="trav_gif")


traversal_grid_section()

if kl is not None:
    st.subheader("KL per dimension")
    bar = go.Figure(go.Bar(x=[f"z{d}" for d in range(len(kl))], y=kl))
    bar.add_hline(y=KL_INACTIVE, line_dash="dot", annotation_text="inactive below")
    bar.update_layout(yaxis_title="KL (nats)", height=300, margin=dict(l=10, r=10, t=10, b=10))
    ui.plot(bar, key="trav_kl")
