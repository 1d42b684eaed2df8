"""Inside: filters and atoms of MLP runs, and what each regulariser does to the code."""
from aelab import ui

ui.within_app()  # first: a deep link on a fresh server hands over to app.py

import plotly.graph_objects as go
import streamlit as st

from aelab.explore.latent import (
    filters_and_atoms,
    jacobian_norms,
    jacobian_singular_values,
    kept_frequency,
    mean_activations,
)
from aelab.explore.reconstructions import image_grid
from aelab.models import CAPABILITIES, with_capabilities

st.title("Inside a model")
rows = ui.list_runs()
run = ui.pick_run(rows, key="in_run")
if run is None:
    st.stop()
with st.spinner(f"Loading {run['id']} and its test set..."):
    _, model, ds, _ = ui.open_run(run, with_caches=False)
x = ds.x_test[:500]
y = None if ds.y_test is None else ds.y_test[:500]
config = model.config

if config.arch == "mlp":
    filters, atoms = filters_and_atoms(model, 32)
    tile = st.slider("Tile size (pixels)", 32, 160, 64, 16, key="in_tile", help="How large each filter is drawn")
    scale = max(1, tile // config.input_shape[-1])
    c1, c2 = st.columns(2)
    st.caption("Each filter is scaled by its own contrast (0 is grey, its strongest weights black and white). "
               "A plain autoencoder's filters often look like static; those of a sparse or denoising model "
               "are the ones worth looking at: strokes and blobs.")
    c1.markdown("**Encoder filters** (first layer, one per hidden unit)")
    with c1:
        ui.image(image_grid([filters[i:i + 8] for i in range(0, len(filters), 8)], scale=scale))
    c2.markdown("**Decoder atoms** (last layer, one per hidden unit)")
    with c2:
        ui.image(image_grid([atoms[i:i + 8] for i in range(0, len(atoms), 8)], scale=scale))
else:
    st.caption("Filters and atoms are shown for MLP runs.")

if model.target_rate:
    st.subheader("Mean activation of each code unit")
    rho_hat = mean_activations(model, x, y)
    figure = go.Figure(go.Histogram(x=rho_hat, nbinsx=30, name="units"))
    figure.add_vline(x=config.rho, line_dash="dash", annotation_text=f"target rho = {config.rho}")
    figure.update_layout(xaxis_title="mean activation", yaxis_title="units", height=320)
    ui.plot(figure, key="in_sparse")
elif model.kept_k:
    st.subheader("How often each unit is among the kept k")
    freq = kept_frequency(model, x, y)
    figure = go.Figure(go.Bar(x=[f"z{i}" for i in range(len(freq))], y=freq))
    model_k = min(config.latent_dim, round(config.k_test_multiplier * config.k))
    figure.add_hline(y=model_k / config.latent_dim, line_dash="dash", annotation_text="uniform use")
    figure.update_layout(yaxis_title="fraction of images", height=320)
    ui.plot(figure, key="in_ksparse")
elif model.contractive_jacobian:
    st.subheader("Singular values of the encoder Jacobian")
    figure = go.Figure()

    def spectrum(m, name: str) -> None:
        values = jacobian_singular_values(m, x, y, n=48)
        figure.add_trace(go.Scatter(x=list(range(1, values.shape[1] + 1)), y=values.mean(0),
                                    mode="lines+markers",
                                    name=f"{name}: ‖J‖F = {jacobian_norms(values).mean():.1f}"))

    spectrum(model, "contractive")
    twins = [r for r in with_capabilities(ui.finished_runs(rows), ("plain",))
             if r["dataset"] == run["dataset"] and r.get("latent_dim") == config.latent_dim]
    if twins:
        spectrum(ui.model_for(twins[0]), f"plain ae ({ui.run_label(twins[0])})")
    else:
        st.caption("Train a plain `ae` with the same latent_dim on this dataset to compare.")
    figure.update_layout(xaxis_title="direction (largest singular value first)",
                         yaxis_title="singular value (mean, log scale)", yaxis_type="log", height=320)
    ui.plot(figure, key="in_contractive")
    st.caption("How far the code moves per unit step of the input along each direction, averaged over "
               "48 test images; in the legend the mean Frobenius norm $\\|J_f(x)\\|_F = \\sqrt{\\sum_k s_k^2}$, "
               "what the contractive penalty keeps small.")
else:
    st.caption("A model " + ", or ".join(CAPABILITIES[c] for c in ("target_rate", "kept_k", "contractive_jacobian"))
               + f" shows that regulariser's effect here; {run['id']} ({run['variant']}) does none of these.")
