"""The Latent space page's "Your own input" section: a drawing canvas (the app's own
``st.components.v2`` component, ``drawcanvas.js``) or an uploaded PNG/JPEG, shown as the model
sees it, reconstructed, placed on the code maps, beside its nearest training images; what it
computes is ``aelab.explore.own_input``."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import streamlit as st

from aelab.explore import own_input as own
from aelab.explore.reconstructions import image_grid
from aelab.metrics.evaluate import encode_array, pca_reconstruct, reconstruct_array
from aelab.ui.loaders import pca, run_key, shared
from aelab.ui.widgets import image, plot

ANCHOR = "your-own-input"  # the section's anchor; links open it with ?input=draw
CANVAS_SIDE = 280          # CSS pixels of the square canvas
_CANVAS = st.components.v2.component(
    "aelab.draw_canvas",
    html=f'<canvas width="{CANVAS_SIDE}" height="{CANVAS_SIDE}" aria-label="drawing canvas"></canvas>'
         '<div><button type="button">Clear</button></div>',
    css="canvas { touch-action: none; cursor: crosshair; border: 1px solid #888; border-radius: 4px; "
        f"width: {CANVAS_SIDE}px; height: {CANVAS_SIDE}px; display: block; }} "
        "button { margin-top: 6px; padding: 2px 12px; }",
    js=(Path(__file__).with_name("drawcanvas.js")).read_text(),
)
BRUSHES = {"digits": 40, "shapes": 34}  # canvas pixels; a thin stroke for 28x28 digits


def link_params(run_id: str) -> dict:
    """The query parameters of a link that opens this section on the Latent space page."""
    return {"run": run_id, "input": "draw"}


def link(run_id: str) -> None:
    """A link to this section from another page, on the same run."""
    st.page_link("pages/latent.py", label="Draw your own input and see where it lands",
                 icon=":material/draw:", query_params=link_params(run_id))


OWN_SOURCE = "your input"  # the Traversal page's base when it was opened from an input's code


def code_from_url(run_id: str, latent_dim: int, source_key: str) -> np.ndarray | None:
    """The code a link from this section brought to the Traversal page (``?code=`` for
    ``?code_run=`` this run), checked (a bad one is one warning); the first time a session sees
    it, the page's base (widget ``source_key``) becomes it."""
    raw = st.query_params.get("code")
    if raw is None or st.query_params.get("code_run") != run_id:
        return None
    try:
        code = own.parse_code(raw, latent_dim)
    except own.InputError as exc:
        st.warning(str(exc))
        return None
    if st.session_state.get("_url.own_code") != raw:
        st.session_state["_url.own_code"] = raw
        st.session_state[source_key] = OWN_SOURCE
    return code


def draw_canvas(key: str, brush: int, scroll: bool) -> str | None:
    """The canvas; the drawing as a PNG data URL, or None while it is empty."""
    held = (st.session_state.get(key) or {}).get("image")
    result = _CANVAS(key=key, data={"brush": brush, "image": held, "scroll": scroll},
                     default={"image": None}, on_image_change=lambda: None, height="content")
    return result.get("image") if hasattr(result, "get") else getattr(result, "image", None)


def _input_bytes(dataset: str, scroll: bool) -> bytes | None:
    """What the user gave: the drawing's PNG or the uploaded file's bytes (None: nothing yet)."""
    source = st.radio("Input", ["Draw", "Upload a PNG or JPEG"], horizontal=True, key="own_source",
                      label_visibility="collapsed")
    if source == "Draw":
        from aelab.data.datasets import is_shapes

        default = BRUSHES["shapes"] if is_shapes(dataset) else BRUSHES["digits"] if dataset == "digits" else 20
        brush = st.select_slider("Brush", [8, 14, 20, 28, 34, 40, 52], value=default, key="own_brush")
        url = draw_canvas("own_canvas", brush, scroll)
        if url is None:
            st.caption("Draw with the mouse, a pen or a finger; the page updates after each stroke.")
            return None
        return own.decode_data_url(url)
    upload = st.file_uploader("PNG or JPEG", type=["png", "jpg", "jpeg"], key="own_upload",
                              help=f"at most {own.MAX_BYTES // 2**20} MB; dark-on-light pictures are inverted")
    return None if upload is None else upload.getvalue()


def section(run: dict, run_dir, model, ds, caches: dict) -> None:
    """The whole section (module docstring), under its own subheader."""
    st.subheader("Your own input", anchor=ANCHOR)
    asked = st.query_params.get("input") == "draw"
    if not st.toggle("Draw or upload an image", value=asked, key="own_on",
                     help="See where your own picture lands in this run's code space"):
        return
    dataset = run_dir.config["dataset"]
    left, right = st.columns([1, 2], gap="large")
    with left:
        try:
            data = _input_bytes(dataset, asked)
            if data is None:
                return
            x = own.prepare(own.read_image(data), dataset, model.config.input_shape)
        except own.InputError as exc:
            st.warning(str(exc))
            return
    y = None
    if model.conditional:
        y = int(right.selectbox("Class the model is told", list(range(model.config.num_classes)),
                                key="own_class"))
    code = own.encode_input(model, x, y)
    sigma = own.posterior_sigma(model, x, y)
    labels = caches.get("labels")
    key = run_key(run_dir)
    scale = max(1, 112 // x.shape[-1])
    k = model.config.latent_dim
    with right:
        recon = reconstruct_array(model, x[None], None if y is None else np.array([y]))
        baseline = pca_reconstruct(pca(dataset, k), x[None]).clip(0, 1)
        image(image_grid([np.stack([x, recon[0], baseline[0]])], scale=scale),
              caption=f"as the model sees it · its reconstruction · PCA's ({k} components)")
        if getattr(model, "corrupts_input", False) and st.toggle(
                "Corrupt it", key="own_corrupt",
                help=f"the run's own training noise: {model.config.noise} at {model.config.noise_level:g}"):
            seed = st.number_input("Noise (seed)", 0, 10_000, 0, key="own_noise_seed")
            noisy = own.corrupt(model, x, int(seed))
            image(image_grid([np.stack([noisy, reconstruct_array(model, noisy[None])[0]])], scale=scale),
                  caption="corrupted · what the denoiser makes of it")
    _code_maps(run, run_dir, caches, code, sigma, labels, key)
    _neighbours(model, ds, x, code, key, scale)
    st.caption("Its code: " + ", ".join(f"{v:.2f}" for v in code)
               + ("" if sigma is None else " (the posterior mean)"))
    if st.button("Open the Traversal page from this code", icon=":material/tune:", key="own_traverse"):
        st.switch_page("pages/traversal.py", query_params={"run": run["id"], "code": own.code_text(code),
                                                           "code_run": run["id"]})


def _code_maps(run, run_dir, caches, code, sigma, labels, key) -> None:
    """The code maps with the input starred (``own.input_map``)."""
    from aelab.metrics.results import fit_projection

    seed = run_dir.config["train_config"].seed
    codes = caches["codes"]
    views = {}
    if codes.shape[1] == 2:
        exact = (np.eye(2), np.zeros(2))
        views["The 2-D codes as they are"] = (codes, code, None if sigma is None else
                                              own.projected_ellipses(exact, code, sigma))
    projection = shared((key, "own-input projection", "pca"), lambda: fit_projection(codes, "pca", seed))
    ellipses = None if sigma is None else own.projected_ellipses(projection.linear(), code, sigma)
    views["PCA of the codes"] = (projection.points, projection.place(code[None])[0], ellipses)
    if st.toggle("Place it on the UMAP view too", key="own_umap",
                 help="fits UMAP to the codes once per run (slow the first time) and maps your code with "
                      "its transform"):
        with st.spinner("Fitting UMAP to the codes..."):
            umap_view = shared((key, "own-input projection", "umap"), lambda: fit_projection(codes, "umap", seed))
        views["UMAP of the codes (its transform of your code)"] = (
            umap_view.points, umap_view.place(code[None])[0], None)
    where = views["PCA of the codes"][1]
    st.markdown(f"**On the code maps** (the star; on the PCA view at ({where[0]:.3f}, {where[1]:.3f}))")
    if sigma is not None:
        st.caption("The posterior N(mean, sigma²) of your input: its 1-sigma (solid) and 2-sigma (dashed) "
                   "ellipses, projected exactly into the linear views. UMAP is not linear: it places the "
                   "mean only, with no ellipse.")
    plot(own.input_map(views, labels), key="own_map", name=f"own-input-{run['id']}")


def _neighbours(model, ds, x, code, key, scale) -> None:
    """Its nearest training images in code space and in pixel space, side by side."""
    train_codes = shared((key, "train codes"), lambda: encode_array(model, ds.x_train, ds.y_train))
    by_code = own.nearest(train_codes, code)
    by_pixels = own.nearest(ds.x_train, x)
    left, right = st.columns(2)
    with left:
        st.markdown(f"**{len(by_code)} nearest training images in code space**")
        image(image_grid([ds.x_train[by_code]], scale=max(1, scale // 2)))
    with right:
        st.markdown(f"**{len(by_pixels)} nearest in pixel space**")
        image(image_grid([ds.x_train[by_pixels]], scale=max(1, scale // 2)))
