"""Latent space: 2-D PCA and UMAP of the codes beside the same views of the raw pixels."""
from aelab import ui

ui.within_app()  # first: a deep link on a fresh server hands over to app.py

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from aelab.compare import image_grid
from aelab.errors import AelabError
from aelab.evaluate import reconstruct_array
from aelab.explore import nearest_neighbours

st.title("Latent space")
run = ui.pick_run(ui.list_runs(), key="lat_run")
if run is None:
    st.stop()
run_dir, model, ds, caches = ui.open_run(run)

labels = caches.get("labels")
views = {"PCA of the codes": caches["pca_codes"], "UMAP of the codes": caches["umap_codes"],
         "PCA of the raw pixels (baseline)": caches["pca_pixels"],
         "UMAP of the raw pixels (baseline)": caches["umap_pixels"]}
if caches["codes"].shape[1] == 2:
    views = {"The 2-D codes as they are": caches["codes"], **views}


def scatter(points: np.ndarray, title: str) -> go.Figure:
    marker = dict(size=4, opacity=0.8)
    if labels is not None:
        marker.update(color=labels, colorscale="Turbo", showscale=True, colorbar=dict(title="label"))
    figure = go.Figure(go.Scattergl(x=points[:, 0], y=points[:, 1], mode="markers", marker=marker,
                                    text=None if labels is None else [f"label {v}" for v in labels]))
    figure.update_layout(title=title, height=380, margin=dict(l=10, r=10, t=40, b=10),
                         dragmode="lasso")
    return figure


def remember(key: str) -> None:
    """The chart selected in last (each chart keeps its own selection until cleared)."""
    st.session_state["lat_last_view"] = key


st.caption(f"{len(caches['index'])} test points. Select points with the box or lasso tool, or click one.")
picks: dict[str, list[int]] = {}
columns = st.columns(2)
for i, (title, points) in enumerate(views.items()):
    key = f"lat_view_{i}"
    with columns[i % 2]:
        event = ui.plot(scatter(points, title), key=key, selection_mode=("points", "box", "lasso"),
                        on_select=lambda key=key: remember(key))
        picked = list(event.selection.point_indices) if event and event.selection else []
        if picked:
            picks[key] = picked
# the newest selection wins; an older one in another chart only if that was cleared
selected = picks.get(st.session_state.get("lat_last_view"), next(iter(picks.values()), []))

if selected:
    shown = np.array(sorted(selected))[:16]
    x = ds.x_test[caches["index"][shown]]
    y = None if labels is None else labels[shown]
    st.subheader(f"{len(selected)} selected point(s)")
    scale = max(1, 64 // x.shape[-1])
    st.markdown("**Images**")
    ui.image(image_grid([x], scale=scale))
    st.markdown("**Reconstructions**")
    ui.image(image_grid([reconstruct_array(model, x, y)], scale=scale))
    near = nearest_neighbours(caches["codes"], int(shown[0]), k=8)
    st.markdown("**Nearest neighbours in code space of the first selected point**")
    ui.image(image_grid([ds.x_test[caches["index"][near]]], scale=scale))

st.subheader("Scores")
st.caption("5-NN and linear-probe accuracy (fitted on the train split, scored on these test "
           "points) and trustworthiness of each 2-D view (scikit-learn; 1 = neighbours kept).")
if st.toggle("Compute the score table", value=True, key="lat_scores"):
    try:
        st.dataframe(pd.DataFrame(ui.scores_for(run_dir)), hide_index=True, key="lat_scores_table")
    except AelabError as exc:
        ui.show_error(exc)
