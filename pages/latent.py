"""Latent space: 2-D PCA and UMAP (and t-SNE) of the codes beside the same views of the raw pixels."""
from aelab import ui

ui.within_app()  # first: a deep link on a fresh server hands over to app.py

import numpy as np
import streamlit as st

from aelab.data.datasets import class_name
from aelab.errors import AelabError
from aelab.explore import score_intervals
from aelab.explore.latent import label_groups, label_scatters, nearest_neighbours, selected_indices
from aelab.explore.reconstructions import image_grid
from aelab.metrics.evaluate import reconstruct_array
from aelab.metrics.names import NOT_APPLICABLE
from aelab.ui.export import export_button

st.title("Latent space")
run = ui.pick_run(ui.list_runs(), key="lat_run")
if run is None:
    st.stop()
with st.spinner(f"Loading {run['id']}, its test set and its codes..."):
    run_dir, model, ds, caches = ui.open_run(run)

labels = caches.get("labels")
named = lambda label: class_name(run["dataset"], label)  # noqa: E731  "square", not "0", on sprites
run_key = ui.run_key(run_dir)
views = {"PCA of the codes": caches["pca_codes"], "UMAP of the codes": caches["umap_codes"],
         "PCA of the raw pixels (baseline)": caches["pca_pixels"],
         "UMAP of the raw pixels (baseline)": caches["umap_pixels"]}
if caches["codes"].shape[1] == 2:
    views = {"The 2-D codes as they are": caches["codes"], **views}
if tsne := ui.tsne_view(run_dir):  # made in the background, kept in the run folder
    views[tsne[0]] = tsne[1]


SELECTION = f"lat_selected.{run['id']}"  # another run starts with nothing selected


def remember() -> None:
    """A selection made in any view becomes the page's selection, shown in every view.
    (Kept here, not in the chart: a chart whose highlighted points change is a new chart.)"""
    event = st.session_state.get("lat_views")
    points = event.selection.points if event and event.selection else []
    groups = ui.shared((run_key, "label groups"), lambda: label_groups(labels, n_points, named))
    st.session_state[SELECTION] = selected_indices(points, groups)


n_points = len(caches["index"])
selected = [i for i in st.session_state.get(SELECTION, []) if i < n_points]
c1, c2 = st.columns([4, 1], vertical_alignment="center")
c1.caption(f"{n_points} test points. Select points with the box or lasso tool, or click one; "
           "the selection is highlighted in every view.")
c1.markdown(f"**{len(selected)} of {n_points} selected**")
c2.button("Clear selection", key="lat_clear", disabled=not selected,
          on_click=lambda: st.session_state.update({SELECTION: []}))
# one figure of every view, built once per run and selection for every session (a rerun reuses it)
figure = ui.shared((run_key, tuple(views), tuple(selected)),
                   lambda: label_scatters(views, labels, selected, name=named),
                   what=f"Drawing {n_points:,} test points in {len(views)} views...")
ui.plot(figure, key="lat_views", name=f"latent-{run['id']}", selection_mode=("points", "box", "lasso"),
        on_select=remember)
export_button(run_dir, key="lat_export")

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

ui.own_input_section(run, run_dir, model, ds, caches)  # draw or upload, see where it lands

ui.timelapse_section(run_dir, key="lat_timelapse")  # the probe codes through training

st.subheader("Scores")
st.caption("5-NN and linear-probe accuracy (fitted on the train split, scored on these test "
           "points) and trustworthiness of each 2-D view (scikit-learn; 1 = neighbours kept). "
           + score_intervals.MEANING)
if st.toggle("Show the score table", value=True, key="lat_scores"):
    try:
        scores = ui.scores_for(run_dir)  # None while a background process computes them
    except AelabError as exc:
        ui.show_error(exc)
    else:
        if scores is not None:
            ui.metric_table(scores, key="lat_scores_table", why=NOT_APPLICABLE, hide_index=True, digits=3)
            if lines := score_intervals.latent_differences(scores):
                st.markdown("Against the codes, on the same test points (values: the baseline's, then the "
                            "codes'):\n" + "\n".join(f"- {line}" for line in lines))
