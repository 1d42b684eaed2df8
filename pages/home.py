"""Home: what the app is for, the device, the datasets and the runs present."""
from aelab import ui

ui.within_app()  # first: a deep link on a fresh server hands over to app.py

import pandas as pd
import streamlit as st

from aelab.data.datasets import list_datasets
from aelab.models import CAPABILITIES, capabilities_of, get_variant, list_variants

st.title("aelab - an autoencoder lab")
st.markdown(
    f"Train every autoencoder of the survey - the {len(list_variants())} variants "
    f"{', '.join(list_variants())} - in the background, then compare what they learned with PCA "
    "at the same code size. Demo runs ship with the app, so every page works before you train "
    "anything.")
cols = st.columns(4)
for col, (page, label, icon) in zip(cols, [
        ("pages/lesson.py", "Follow the lesson", ":material/school:"),
        ("pages/train.py", "Train a model", ":material/model_training:"),
        ("pages/runs.py", "Watch runs", ":material/monitoring:"),
        ("pages/reconstructions.py", "Compare reconstructions", ":material/compare:")]):
    col.page_link(page, label=label, icon=icon)

st.subheader("The variants and what they can do")
st.caption("Each page offers the runs whose model can do what the page needs (Generate: a "
           "prior to sample from; Traversal: a prior mean to start from, a class to choose; "
           "Inside: the regulariser's effect), so a new variant appears wherever it fits.")
st.dataframe(pd.DataFrame([{"variant": v, "what it is": get_variant(v).summary(),
                            "what it can do": "; ".join(CAPABILITIES[c] for c in CAPABILITIES
                                                        if c in capabilities_of(v))}
                           for v in list_variants()]), hide_index=True, key="home_variants")

st.subheader("Datasets available now")
rows = [{"dataset": r["name"], "offline": "yes" if r["offline"] else "needs a download",
         "train": r.get("train"), "test": r.get("test"),
         "shape": "x".join(map(str, r["shape"])) if "shape" in r else ""} for r in list_datasets()]
rows += [{"dataset": ui.dataset_label(n), "offline": "yes (uploaded)"}
         for n in ui.dataset_choices() if n.startswith("npz:")]
st.dataframe(pd.DataFrame(rows), hide_index=True)

st.subheader("Runs")
runs = ui.list_runs()
if not runs:
    st.info(f"No runs yet in {ui.runs_dir()}. Start one on the Train page.")
else:
    labels = ui.run_labels(runs)
    table = [{"run": labels[r["id"]], "state": r["state"],
              "progress": r.get("progress") or 0.0, "note": r.get("damaged") or r.get("error") or ""}
             for r in runs]
    st.dataframe(pd.DataFrame(table), hide_index=True, column_config={
        "progress": st.column_config.ProgressColumn("progress", min_value=0.0, max_value=1.0)})

# last: asking for the GPU imports torch (seconds on a fresh server); the rest shows first
st.subheader("Device")
st.write(f"Training uses **{ui.device_text()}**.")
