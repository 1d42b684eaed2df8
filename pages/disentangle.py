"""Disentanglement: metrics, the mutual-information heatmap, labelled traversals and the
beta trade-off across runs, for runs trained on the ``shapes`` sprites."""
from aelab import ui

ui.within_app()  # first: a deep link on a fresh server hands over to app.py

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from aelab.caches import load_eval, peek_disentanglement
from aelab.compare import image_grid
from aelab.errors import AelabError
from aelab.explore import dimension_order, traversal_grid, traversal_range
from aelab.data import is_shapes
from aelab.shapes import FACTORS

METRICS = ("beta_vae", "factor_vae", "mig", "dci_disentanglement", "dci_completeness",
           "dci_informativeness")

st.title("Disentanglement")
st.caption("Runs trained on the shapes sprites, whose five generative factors are known. "
           "Survey 4.3: a larger beta should give a more disentangled code at some cost in "
           "reconstruction.")
rows = [r for r in ui.finished_runs(ui.list_runs()) if is_shapes(r["dataset"])]
if not rows:
    st.info("No finished runs on the shapes dataset yet. Train a betavae on shapes, or run "
            "`python -m aelab demo-runs`.")
    st.stop()
run = ui.pick_run(rows, key="dis_run")
try:
    run_dir = ui.run_ref(run)
    scores = ui.disentanglement_for(run_dir)
    model = ui.model_for(run_dir)
    caches = ui.caches_for(run_dir)
    ds = ui.dataset_for(run["dataset"])
except AelabError as exc:
    ui.show_error(exc)
    st.stop()

st.subheader("Metrics")
st.dataframe(pd.DataFrame([{m: scores[m] for m in METRICS}]), hide_index=True, key="dis_metrics")

st.subheader("Mutual information between latents and factors (nats)")
mi = np.asarray(scores["mi_matrix"])  # (latent_dim, factors)
heat = go.Figure(go.Heatmap(z=mi, x=list(FACTORS), y=[f"z{j}" for j in range(len(mi))],
                            colorscale="Viridis", colorbar=dict(title="nats")))
heat.update_layout(height=60 + 28 * len(mi), margin=dict(l=10, r=10, t=10, b=10))
ui.plot(heat, key="dis_heat")

st.subheader("Traversals, each latent labelled by its factor")
active, inactive = dimension_order(caches.get("kl_per_dim"), model.config.latent_dim)
dims = active[:10] or inactive[:10]
x = ds.x_test[caches["index"]]
low, high = traversal_range(model, x, caches.get("labels"), caches["codes"])
index = st.number_input("Base test image", 0, len(x) - 1, 0, key="dis_base")
grid = traversal_grid(model, caches["codes"][index], dims, low, high, 9)
for d, row in zip(dims, grid):
    factor = FACTORS[int(np.argmax(mi[d]))]
    left, right = st.columns([1, 6])
    left.markdown(f"**z{d}** → {factor}  \nMI {mi[d].max():.2f}")
    with right:
        ui.image(image_grid([row]))

st.subheader("The trade-off across runs")
table, unscored, labels = [], [], ui.run_labels(rows)
for other in rows:
    try:
        s = peek_disentanglement(ui.run_ref(other))
        if s is None:
            unscored.append(labels[other["id"]])
            continue
        e = load_eval(ui.run_ref(other))
    except AelabError:
        continue
    table.append({"run": labels[other["id"]], "recon_bce": e["recon_bce"], **{m: s[m] for m in METRICS}})
if unscored:
    st.caption("Not scored yet (select them above to score): " + ", ".join(unscored))
metric = st.selectbox("Metric", METRICS, index=2, key="dis_metric")
scatter = go.Figure(go.Scatter(x=[t["recon_bce"] for t in table], y=[t[metric] for t in table],
                               mode="markers+text", text=[t["run"] for t in table],
                               textposition="top center"))
scatter.update_layout(xaxis_title="reconstruction BCE (nats / image)", yaxis_title=metric,
                      height=380)
ui.plot(scatter, key="dis_tradeoff")
st.dataframe(pd.DataFrame(table), hide_index=True, key="dis_table")
