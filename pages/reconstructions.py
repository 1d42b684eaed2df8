"""Reconstructions: runs against PCA at the same size, and a denoising demo."""
from aelab import ui

ui.within_app()  # first: a deep link on a fresh server hands over to app.py

import streamlit as st

from aelab.errors import AelabError
from aelab.explore.reconstructions import SELECTIONS, denoising_rows, image_grid, pick_examples, reconstruction_rows
from aelab.metrics.names import NOT_APPLICABLE
from aelab.models.denoising import NOISES

st.title("Reconstructions")
runs = ui.finished_runs(ui.list_runs())
if not runs:
    st.info("No finished runs yet. Train one, or use the demo runs in checkpoints/.")
    st.stop()

prefer = ui.preferred(runs, "rec_runs")  # the Lesson's runs for this page first
start = (prefer or runs)[0]["dataset"]
datasets = sorted({r["dataset"] for r in runs}, key=lambda d: (d != start, d))
name = ui.url_selectbox("Dataset", datasets, key="rec_dataset", param="dataset",
                        format_func=ui.dataset_label)
candidates = [r for r in runs if r["dataset"] == name]
labels = ui.run_labels(candidates)
# one selection per dataset, kept for the session: switching dataset and back keeps it
chosen = ui.url_multiselect("Runs", list(labels), key=f"rec_runs.{name}", param="runs",
                            default=[r["id"] for r in ui.preferred(candidates, "rec_runs")] or list(labels)[:2],
                            format_func=labels.get, persist_state="session")
if not chosen:
    st.info("Choose at least one run.")
    st.stop()

try:
    with st.spinner(f"Loading {ui.dataset_label(name)} and {len(chosen)} run(s)..."):
        ds = ui.dataset_for(name)
        models = {labels[run]: ui.model_for(run) for run in chosen}
except AelabError as exc:
    ui.show_error(exc)
    st.stop()

c1, c2, c3, c4 = st.columns(4)
how = c1.radio("Examples", SELECTIONS, horizontal=True, key="rec_how")
worst_of = c2.selectbox("Worst for", chosen, format_func=labels.get, key="rec_worst",
                        disabled=how != "worst")
n = c3.slider("How many", 4, 16, 10, key="rec_n")
seed = c4.number_input("Seed", 0, 10_000, 0, key="rec_seed")
# examples and rows are made once per runs, examples and options for every session: a
# rerun or another student's visit shows them without running a model again
runs_key = (name, tuple(ui.run_key(run) for run in chosen), tuple(labels[run] for run in chosen))
worst = ui.run_key(worst_of) if how == "worst" else None  # "worst" runs a model on the test set
index = ui.shared(("rec_examples", name, how, n, seed, worst), lambda: pick_examples(
    ds.x_test, ds.y_test, how, n, seed, model=models[labels[worst_of]] if worst else None))
x = ds.x_test[index]
y = None if ds.y_test is None else ds.y_test[index]
pca_for = lambda k: ui.pca(name, k)  # noqa: E731


def show_rows(rows, key):
    scale = max(1, 96 // rows[0].images.shape[-1])
    for row in rows:
        left, right = st.columns([1, 5])
        left.markdown(f"**{row.label}**" + (f"  \nMSE {row.mse:.4f}" if row.mse is not None else ""))
        with right:
            ui.image(image_grid([row.images], scale=scale))
    table = [{"row": r.label, "MSE per pixel": r.mse,
              "BCE per image (nats)": float("nan") if r.bce is None else r.bce}
             for r in rows if r.mse is not None]
    ui.metric_table(table, key=f"{key}_table", why=NOT_APPLICABLE, hide_index=True)


show_rows(ui.shared(("rec_rows", runs_key, tuple(index)),
                    lambda: reconstruction_rows(models, x, y, ds.x_train, pca_for),
                    what=f"Reconstructing {n} test images with {len(models)} run(s) and fitting PCA..."), "rec")

st.subheader("Denoising demo")
d1, d2 = st.columns(2)
# start on the corruption the first chosen denoising run was trained with
trained = next((m.config for m in models.values() if hasattr(m.config, "noise")), None)
noise = d1.selectbox("Corruption", NOISES, key="noise",
                     index=NOISES.index(trained.noise) if trained else 0)
level = d2.slider("Level", 0.0, 1.0, float(trained.noise_level) if trained else 0.3, 0.05,
                  key="noise_level")
show_rows(ui.shared(("den_rows", runs_key, tuple(index), noise, level, seed),
                    lambda: denoising_rows(models, x, y, ds.x_train, noise, level, seed, pca_for),
                    what=f"Denoising {n} corrupted test images..."), "den")
