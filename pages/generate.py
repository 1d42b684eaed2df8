"""Generate: samples from the prior, class grids for the CVAE, and interpolation."""
from aelab import ui

ui.within_app()  # first: a deep link on a fresh server hands over to app.py

import numpy as np
import streamlit as st

from aelab.data.datasets import class_name
from aelab.errors import AelabError
from aelab.explore.latent import class_swap_grid, interpolation_rows, prior_samples
from aelab.explore.reconstructions import image_grid

st.title("Generate")
rows = ui.list_runs()

st.subheader("Samples from the prior")
run = ui.pick_run(rows, key="gen_run", needs=("samples_prior",), page="Generate")
if run is not None:
    try:
        model = ui.model_for(run)
    except AelabError as exc:
        ui.show_error(exc)
        model = None
if run is not None and model is not None:
    c1, c2, c3 = st.columns(3)
    seed = c1.number_input("Seed", 0, 10_000, 0, key="gen_seed")
    n = c2.slider("Samples", 8, 64, 32, 8, key="gen_n")
    tile = c3.slider("Tile size (pixels)", 32, 160, 64, 16, key="gen_tile", help="How large each sample is drawn")
    scale = max(1, tile // model.config.input_shape[-1])
    if model.conditional:
        named = lambda c: class_name(run["dataset"], c)  # noqa: E731
        label = st.selectbox("Class", list(range(model.config.num_classes)), key="gen_class", format_func=named)
        images = prior_samples(model, n, seed, y=np.array([label]))
        ui.image(image_grid([images[i:i + 8] for i in range(0, n, 8)], scale=scale),
                 caption=f"class {named(label)}")
        st.markdown("**Class swap**: each row one z, each column one class ("
                    + ", ".join(named(c) for c in range(model.config.num_classes)) + ")")
        swap = class_swap_grid(model, 6, seed)
        ui.image(image_grid(list(swap), scale=scale))
    else:
        images = prior_samples(model, n, seed)
        ui.image(image_grid([images[i:i + 8] for i in range(0, n, 8)], scale=scale),
                 caption="z ~ N(0, I)")

st.subheader("Interpolation")
run = ui.pick_run(rows, key="int_run", label="Run to interpolate with", param="interpolate",
                  page="Interpolation")
if run is not None:
    with st.spinner(f"Loading {run['id']} and its test set..."):
        _, model, ds, _ = ui.open_run(run, with_caches=False)
    c1, c2, c3 = st.columns(3)
    a = c1.number_input("First test image", 0, len(ds.x_test) - 1, 0, key="int_a")
    b = c2.number_input("Second test image", 0, len(ds.x_test) - 1, 1, key="int_b")
    steps = c3.slider("Steps", 4, 12, 8, key="int_steps")
    y = ds.y_test
    paths = interpolation_rows(model, ds.x_test[a], ds.x_test[b],
                               None if y is None else int(y[a]), None if y is None else int(y[b]),
                               steps)
    scale = max(1, st.session_state.get("gen_tile", 64) // ds.x_test.shape[-1])
    for name, images in paths.items():
        st.markdown(f"**{name}**")
        ui.image(image_grid([images], scale=scale))
