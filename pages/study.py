"""Study: a grid of settings times seeds - start one, follow its trials, plot a metric."""
from aelab import ui

ui.within_app()  # first: a deep link on a fresh server hands over to app.py

import pandas as pd
import streamlit as st

from aelab.errors import AelabError
from aelab.metrics.results import get_eval
from aelab.models import list_variants
from aelab.runs.study import StudySpec, parse_grid, summarise
from aelab.runs.study_results import list_studies, metric_figure, metric_names, summarise_metric, trial_rows
from aelab.training.budget import DEFAULT_STEPS

st.title("Study")
st.caption("A grid of settings times seeds, each trial an ordinary run. The same study from the "
           "command line: `python -m aelab sweep --variant V --dataset D --grid NAME=v1,v2 "
           "--seeds K` (add `--ray` or `--ray-address HOST:PORT` to run it on Ray).")
root = ui.runs_dir()

with st.expander("Start a study", expanded=not list_studies(root)):
    with st.form("new_study"):
        c1, c2, c3, c4 = st.columns(4)
        variant = c1.selectbox("Variant", list_variants(), key="st_variant")
        dataset = c2.selectbox("Dataset", ui.dataset_choices(), format_func=ui.dataset_label,
                               key="st_dataset")
        epochs = c3.number_input("Epochs", 0, 1000, 0, key="st_epochs",
                                 help=f"Passes over the training split; 0 = the default budget, as "
                                      f"many as about {DEFAULT_STEPS} steps take on the dataset")
        seeds = c4.number_input("Seeds", 1, 20, 3, key="st_seeds")
        grid_text = st.text_area("Grid: one NAME=v1,v2,... per line (';' between values that "
                                 "hold commas)", "latent_dim=2,4,8", key="st_grid")
        fixed_text = st.text_input("Fixed settings (NAME=VALUE, space separated)", "",
                                   key="st_fixed")
        ray_address = st.text_input("Ray cluster (HOST:PORT; blank: this machine)", "",
                                    key="st_ray", help="The teacher's: the trials run as Ray "
                                    "tasks, driven by a `sweep` started in the background").strip()
        submitted = st.form_submit_button("Start the study", icon=":material/play_arrow:",
                                          key="st_start")
    if submitted:
        try:
            fixed = dict(item.split("=", 1) for item in fixed_text.split() if "=" in item)
            bad = [item for item in fixed_text.split() if "=" not in item]
            if bad:
                raise AelabError(f"fixed settings must be NAME=VALUE, got {bad[0]!r}")
            spec = StudySpec(variant, dataset, parse_grid(grid_text.split()), int(seeds),
                             {**fixed, "epochs": str(epochs)})
            with st.spinner("Starting the study's sweep on Ray" if ray_address else "Starting"):
                trials = ui.start_study(spec, ray_address or None)
            st.session_state["st_study"] = st.query_params["study"] = spec.id  # show it below
            where = f" on the Ray cluster at {ray_address}" if ray_address else ""
            st.success(f"Study {spec.id} started{where}: {trials} trials.")
        except AelabError as exc:
            ui.show_error(exc)

studies = list_studies(root)
if not studies:
    st.info("No studies yet in this runs folder. Start one above or with `python -m aelab sweep`.")
    st.stop()
by_id = {s["id"]: s for s in studies}
study_id = ui.url_selectbox(
    "Study", list(by_id), key="st_study", param="study",
    format_func=lambda i: f"{i}  ({by_id[i]['variant']} on {by_id[i]['dataset']}, "
                          f"{by_id[i]['trials']} trials)")  # counts change: shown live below
study = by_id[study_id]
st.caption("Grid: " + "; ".join(f"{k} = {', '.join(v)}" for k, v in study["grid"].items())
           + f" - seeds 0..{(study['seeds'] or 1) - 1} - runs on "
           + {"local": "this machine's supervisor", "ray": "Ray (watched by its `sweep` command)"}
           .get(study["backend"], study["backend"]))


@st.fragment(run_every=1.0 if study["active"] else None)
def progress():
    rows = trial_rows(root, study_id)
    st.caption(f"Trials: {summarise(rows)}")
    table = [{"run": r["id"], **{k: str(v) for k, v in r["point"].items()}, "seed": r["seed"],
              "state": r["state"], "progress": r.get("progress", 0.0), "note": r.get("error") or ""}
             for r in rows]
    st.dataframe(pd.DataFrame(table), hide_index=True, key="st_trials", column_config={
        "progress": st.column_config.ProgressColumn("progress", min_value=0.0, max_value=1.0)})
    if study["active"] and not any(r["state"] in ("queued", "running") for r in rows):
        st.rerun(scope="app")  # the last trial finished: plot with every result


progress()
rows = trial_rows(root, study_id)
unfinished = [r for r in ui.with_owners(rows) if r["state"] in ("queued", "running")]
if unfinished and st.button(f"Cancel the {len(unfinished)} unfinished trial(s)", key="st_cancel",
                            help="Local trials stop at their next step; Ray trials are "
                                 "cancelled on the cluster by the sweep that watches them"):
    try:
        for row in unfinished:
            ui.check_allowed(row)  # a student: only their own trials
        for row in unfinished:
            ui.manager().cancel(row["id"], wait=0)
        st.rerun()
    except AelabError as exc:
        ui.show_error(exc)
done = [r for r in rows if r["state"] == "done"]
if not done:
    st.info("No trial has finished yet; the plot appears with the first result.")
    st.stop()
missing = [r for r in done if "recon_mse" not in r["metrics"]]
if missing and st.button(f"Evaluate {len(missing)} finished trial(s) on held-out data "
                         f"(adds recon_mse, probe accuracy and their PCA baselines)",
                         key="st_evaluate"):
    try:
        with st.status("Evaluating trials", expanded=False) as box:
            for i, r in enumerate(missing):
                box.update(label=f"Evaluating trial {i + 1} of {len(missing)}")
                get_eval(root / r["id"])
        st.rerun()
    except AelabError as exc:
        ui.show_error(exc)

st.subheader("A final metric against a grid value")
names = metric_names(rows)
c1, c2 = st.columns(2)
default_metric = "recon_mse" if "recon_mse" in names else names[0]
metric = c1.selectbox("Metric", names, index=names.index(default_metric), key="st_metric")
param = c2.selectbox("Grid value", list(study["grid"]), key="st_param")
summary = summarise_metric(rows, metric, param)
ui.plot(metric_figure(summary, metric, param), key="st_plot")
st.dataframe(pd.DataFrame([{"series": s["series"], param: str(s["x"]), "mean": s["mean"],
                            "std": s["std"], "seeds": s["n"], "PCA baseline": s["baseline"]}
                           for s in summary]), hide_index=True, key="st_summary")
