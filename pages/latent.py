"""Latent space: 2-D PCA and UMAP of the codes beside the same views of the raw pixels."""
from aelab import ui

ui.within_app()  # first: a deep link on a fresh server hands over to app.py

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.colors import qualitative
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


classes = [] if labels is None else sorted(set(labels.tolist()))
palette = qualitative.Plotly if len(classes) <= 10 else qualitative.Alphabet
colour = {c: palette[i % len(palette)] for i, c in enumerate(classes)}  # labels are categories


def scatter(points: np.ndarray, title: str, selected: list[int]) -> go.Figure:
    """One WebGL trace of every point (so a selection's indices are the points'), coloured by
    label with a legend of the classes; the selection of any view is highlighted in all."""
    marker = dict(size=4, opacity=0.8)
    if labels is not None:
        marker.update(color=[colour[v] for v in labels.tolist()])
    figure = go.Figure(go.Scattergl(x=points[:, 0], y=points[:, 1], mode="markers", marker=marker,
                                    showlegend=False, selectedpoints=selected or None,
                                    unselected=dict(marker=dict(opacity=0.12)),
                                    text=None if labels is None else [f"label {v}" for v in labels]))
    for c in classes:  # legend entries only: no points, so they never take part in a selection
        figure.add_trace(go.Scattergl(x=[None], y=[None], mode="markers", name=str(c),
                                      marker=dict(color=colour[c], size=8)))
    figure.update_layout(title=title, height=380, margin=dict(l=10, r=10, t=40, b=10),
                         dragmode="lasso", legend=dict(title_text="label", itemclick=False,
                                                       itemdoubleclick=False))
    return figure


SELECTION = f"lat_selected.{run['id']}"  # another run starts with nothing selected


def remember(key: str) -> None:
    """A selection made in view ``key`` becomes the page's selection, shown in every view.
    (Kept here, not in the charts: a chart whose highlighted points change is a new chart.)"""
    event = st.session_state.get(key)
    st.session_state[SELECTION] = sorted(event.selection.point_indices) if event and event.selection else []


n_points = len(caches["index"])
selected = [i for i in st.session_state.get(SELECTION, []) if i < n_points]
c1, c2 = st.columns([4, 1], vertical_alignment="center")
c1.caption(f"{n_points} test points. Select points with the box or lasso tool, or click one; "
           "the selection is highlighted in every view.")
c1.markdown(f"**{len(selected)} of {n_points} selected**")
c2.button("Clear selection", key="lat_clear", disabled=not selected,
          on_click=lambda: st.session_state.update({SELECTION: []}))
columns = st.columns(2)
for i, (title, points) in enumerate(views.items()):
    key = f"lat_view_{i}"
    with columns[i % 2]:
        ui.plot(scatter(points, title, selected), key=key, selection_mode=("points", "box", "lasso"),
                on_select=lambda key=key: remember(key))

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
if st.toggle("Show the score table", value=True, key="lat_scores"):
    try:
        scores = ui.scores_for(run_dir)  # None while a background process computes them
    except AelabError as exc:
        ui.show_error(exc)
    else:
        if scores is not None:
            st.dataframe(pd.DataFrame(scores), hide_index=True, key="lat_scores_table")
