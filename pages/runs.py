"""Runs: the table of runs with actions, live loss curves and final metrics."""
from aelab import ui

ui.within_app()  # first: a deep link on a fresh server hands over to app.py

import pandas as pd
import streamlit as st

from aelab.errors import AelabError
from aelab.explore.reconstructions import logged_terms, loss_figure, mig_figure
from aelab.metrics.names import NOT_APPLICABLE
from aelab.metrics.results import get_eval
from aelab.runs.folder import read_metrics

st.title("Runs")
manager = ui.manager()


def table(rows):
    labels = ui.run_labels(rows)
    data = []
    for r in rows:
        state, progress = ui.phase_of(r)
        data.append({"run": labels[r["id"]], "state": state, "progress": progress,
                     "ETA": ui.eta_text(r),
                     "samples/s": round(r["samples_per_second"]) if r.get("samples_per_second") else None,
                     "device": r.get("device") or "",
                     "note": r.get("damaged") or r.get("error") or r.get("phase_note") or ""})
    shown = pd.DataFrame(data).style.format(precision=0, na_rep="n/a - no speed logged yet",
                                            subset=["samples/s"])
    st.dataframe(shown, hide_index=True, key="runs_table", column_config={
        "progress": st.column_config.ProgressColumn("progress", min_value=0.0, max_value=1.0)})
    for r in ui.with_owners(rows):  # a run's warnings: to its owner and the teacher
        shown = r["state"] != "damaged" and ui.shows_warnings(r)
        for warning in ui.run_warnings(manager.runs_dir / r["id"], r) if shown else ():
            st.warning(f"{labels[r['id']]}: {warning}", icon=":material/warning:")


def ordered():
    """This student's runs first, newest first (the action picker's default), then the rest."""
    return ui.mine_first(ui.with_owners(manager.list()), ui.session_owner())


rows = ordered()
running = any(r["state"] in ("running", "queued") or r.get("caches") == "building" for r in rows)


@st.fragment(run_every=1.0 if running else None)
def live_table():
    current = ordered()
    table(current)
    if running and not any(r["state"] in ("running", "queued") or r.get("caches") == "building"
                           for r in current):
        st.rerun(scope="app")  # the last run finished: refresh buttons, metrics, stop polling


if not rows:
    st.info("No runs yet. Start one on the Train page.")
    st.page_link("pages/train.py", label="Train a model", icon=":material/model_training:")
    st.stop()
live_table()

st.subheader("Act on a run")
labels = ui.run_labels(rows)
linked = st.query_params.get("run")  # ?run=<id>: act on it and show its curves
if linked is not None and linked not in labels:
    st.warning(f"There is no run '{linked}' in this runs folder, so it shows "
               f"{labels[rows[0]['id']]} instead.")
    linked = None
chosen = ui.url_selectbox("Run", list(labels), format_func=labels.get, key="action_run", param="run",
                          always=True)
row = next(r for r in rows if r["id"] == chosen)
refusal = ui.may_change(row)  # a student: only their own runs, never the demo runs
if refusal:
    st.caption(f":material/lock: {refusal}")
c1, c2, c3, c4 = st.columns([1, 1, 1, 2])
try:
    if c1.button("Cancel", disabled=bool(refusal) or row["state"] not in ("running", "queued"), key="cancel"):
        ui.check_allowed(row)
        manager.cancel(chosen)
        st.rerun()
    if c2.button("Resume", disabled=bool(refusal) or row["state"] not in ("interrupted", "cancelled"),
                 key="resume"):
        ui.check_allowed(row)
        manager.resume(chosen)
        st.rerun()
    confirm = c4.checkbox("Yes, delete this run and its files", key="confirm_delete", disabled=bool(refusal))
    if c3.button("Delete", disabled=bool(refusal) or not confirm, key="delete"):
        ui.check_allowed(row)
        manager.delete(chosen)
        st.session_state.pop("confirm_delete", None)
        st.rerun()
except AelabError as exc:
    ui.show_error(exc)

st.subheader("Loss curves")
usable = [r for r in rows if r["state"] != "damaged"]
# default: what is running, else this student's newest run, else the first demo run
newest = next((r for r in usable if r.get("owner") == ui.session_owner()),
              next((r for r in usable if ui.is_demo(r["id"])), usable[0] if usable else None))
default = ([linked] if linked in [r["id"] for r in usable] else
           [r["id"] for r in usable if r["state"] in ("running", "queued")] or ([newest["id"]] if newest else []))
picked = st.multiselect("Runs to overlay", [r["id"] for r in usable], default=default,
                        format_func=labels.get, key="curve_runs")
live = any(r["state"] in ("running", "queued") for r in usable if r["id"] in picked)


@st.fragment(run_every=1.0 if live else None)
def curves():
    data = {labels[run]: read_metrics(manager.runs_dir / run) for run in picked}
    if not any(data.values()):
        st.caption("No steps logged yet.")
        return
    ui.plot(loss_figure(data), key="loss_chart")
    ui.explain_terms(logged_terms(data))
    mig = mig_figure(data)
    if mig is not None:
        st.caption("Live MIG, scored by the training process on 2,000 fixed sprites every "
                   "minute (runs on shapes with live_mig_seconds set, e.g. the "
                   "class-disentangle preset).")
        ui.plot(mig, key="mig_chart")


if picked:
    curves()

st.subheader("The latent space as it learns")
st.caption(f"Of {labels[chosen]}, the run picked under Act on a run.")
ui.show_timelapse(manager.runs_dir / chosen, key="runs_timelapse", state=row["state"])

st.subheader("Final metrics")
done = [run for run in picked if next(r for r in usable if r["id"] == run)["state"] == "done"]
if done:
    metrics = {}
    with st.spinner("Reading metrics..."):
        for run in done:
            try:
                scores = get_eval(manager.runs_dir / run)
                metrics[labels[run]] = {k: v for k, v in scores.items()  # intervals: shown with their scores
                                        if not isinstance(v, list) or k.endswith("_ci")}
            except AelabError as exc:
                ui.show_error(exc)
    if metrics:  # one row per metric, one column per run: long run labels never cut it off
        ui.metrics_by_run(metrics, key="metrics_table", why=NOT_APPLICABLE, width="stretch",
                          height=35 * (len({k for m in metrics.values() for k in m if not k.endswith("_ci")}) + 1) + 3)
else:
    st.caption("Select finished runs to compare their evaluate metrics.")
