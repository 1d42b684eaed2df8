"""Disentanglement (survey 4.3) on runs trained on the shapes sprites, whose five factors are
known: each score with what it means, which factor each latent carries, an entangled and a
disentangled run side by side on the same sprite, and the beta trade-off."""
from aelab import ui

ui.within_app()  # first: a deep link on a fresh server hands over to app.py

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from aelab.data.datasets import is_shapes
from aelab.data.shapes import FACTORS, SIZES
from aelab.errors import AelabError
from aelab.explore import disentangle_lesson
from aelab.metrics.names import metric_name
from aelab.metrics.results import cached_disentanglement, get_eval

st.title("Disentanglement")
st.caption("A code is disentangled when each latent dimension follows one generative factor "
           "and ignores the others (survey 4.3). The shapes sprites have five known factors, "
           "so it can be measured.")
rows = [r for r in ui.finished_runs(ui.list_runs()) if is_shapes(r["dataset"])]
if not rows:
    st.info("No finished runs on the shapes datasets yet. Train one with the class-disentangle "
            "preset, or run `python -m aelab demo-runs`.")
    st.stop()
run = ui.pick_run(rows, key="dis_run")
try:
    run_dir = ui.run_ref(run)
    scores = ui.disentanglement_for(run_dir)
except AelabError as exc:
    ui.show_error(exc)
    st.stop()

st.subheader("Scores, and what they mean")
score_rows = disentangle_lesson.metric_rows(scores)  # what each measures: in full below, not in a cut-off cell
ui.metric_table(score_rows, key="dis_metrics", names=("metric",), hide_index=True,
                column_order=[c for c in score_rows[0] if c != "what it measures"])
st.markdown("\n".join(f"- **{metric_name(r['metric'])}**: {r['what it measures']}" for r in score_rows))
st.caption("Reference encoders: ground truth is the five factors themselves; mixed is a "
           "rotation of them (all the information, entangled); noise ignores the sprite.")

st.subheader("Mutual information between latents and factors (nats)")
mi = np.asarray(scores["mi_matrix"])  # (latent_dim, factors)
labels = disentangle_lesson.dimension_labels(mi)
heat = go.Figure(go.Heatmap(z=mi, x=list(FACTORS), y=[f"z{j} ({lab})" for j, lab in enumerate(labels)],
                            colorscale="Viridis", colorbar=dict(title="nats")))
heat.update_layout(height=60 + 28 * len(mi), margin=dict(l=10, r=10, t=10, b=10))
ui.plot(heat, key="dis_heat")

st.subheader("Traversals from one sprite")
st.caption(f"A latent is named after a factor only when it is that factor's best dimension by "
           f"a MIG gap of at least {disentangle_lesson.LABEL_GAP} (its information minus the runner-up's, as a "
           f"share of the factor's entropy); {disentangle_lesson.UNUSED} when it holds almost nothing about any "
           f"factor (a collapsed latent; a pruned one is pinned to the prior); otherwise it is "
           f"{disentangle_lesson.MIXED}.")
if pruned := scores.get("pruned_latents"):
    st.caption(f"{len(pruned)} of {len(mi)} latents were pruned when training ended (their KL "
               f"stayed under the run's threshold): " + ", ".join(f"z{j}" for j in pruned) + ".")
factors = []
for column, name, size in zip(st.columns(len(FACTORS)), FACTORS, SIZES):
    with column:
        factors.append(ui.url_number(name, 0, size - 1, size // 2, key=f"dis_{name}", param=name))
dims = disentangle_lesson.informative_order(mi)
grid = ui.traversals_for(run_dir, factors, dims)
_, gaps = disentangle_lesson.mig_gaps(mi)
ui.labelled_images([(f"**z{d}** → {labels[d]}" + (f"  \nMIG gap {gaps[FACTORS.index(labels[d])]:.2f}"
                     if labels[d] in FACTORS else ""), row) for d, row in zip(dims, grid)], scale=2)

st.subheader("Entangled and disentangled, side by side")
scored = {r["id"]: s for r in rows if (s := cached_disentanglement(ui.run_ref(r)))}
if len(scored) < 2:
    st.info("Two scored shapes runs are needed (the demo runs are); open another run above to "
            "score it.")
else:
    by_mig = sorted(scored, key=lambda i: scored[i]["mig"])
    names = ui.run_labels([r for r in rows if r["id"] in scored])
    left, right = st.columns(2)
    pair = [left.selectbox("Entangled", by_mig, index=0, format_func=names.get, key="dis_left"),
            right.selectbox("Disentangled", by_mig, index=len(by_mig) - 1, format_func=names.get,
                            key="dis_right")]
    sides = []
    for column, run_id in zip((left, right), pair):
        pair_mi = np.asarray(scored[run_id]["mi_matrix"])
        pair_dims = disentangle_lesson.informative_order(pair_mi)
        column.caption(f"MIG {scored[run_id]['mig']:.2f}, FactorVAE {scored[run_id]['factor_vae']:.2f}")
        sides.append((disentangle_lesson.dimension_labels(pair_mi), pair_dims,
                      ui.traversals_for(run_id, factors, pair_dims)))
    for i in range(max(len(side[1]) for side in sides)):
        for column, (pair_labels, pair_dims, pair_grid) in zip(st.columns(2), sides):
            if i < len(pair_dims):
                with column:
                    ui.labelled_images([(f"**z{pair_dims[i]}** → {pair_labels[pair_dims[i]]}",
                                         pair_grid[i])], scale=1, width=(1, 3))

st.subheader("The beta trade-off")
study = disentangle_lesson.beta_study()
if study is None:
    st.caption("The beta study has not been run here: `python bench/beta_study.py --preset "
               "class-disentangle --epochs 2 --betas 1,4,12 --capacity 0 --docs`.")
else:
    steps = "; ".join(f"beta {p['beta']:g}: {min(p['steps'])}" + (
        f"-{max(p['steps'])}" if max(p["steps"]) != min(p["steps"]) else "")
        for p in study if p.get("steps"))
    st.caption("Survey 4.3 expects a larger beta to buy disentanglement with reconstruction. "
               "Here every trial trained for the same number of steps; mean and spread over "
               f"seeds (`bench/beta_study.py`): {disentangle_lesson.beta_study_setting()}. Steps per trial: {steps}.")
    ui.plot(disentangle_lesson.beta_tradeoff_figure(study), key="dis_beta", name="beta_tradeoff")

table, unscored = [], []
run_names = ui.run_labels(rows)
for other in rows:
    try:
        s = cached_disentanglement(ui.run_ref(other))
        if s is None:
            unscored.append(run_names[other["id"]])
            continue
        e = get_eval(ui.run_ref(other))
    except AelabError:
        continue
    table.append({"run": run_names[other["id"]], "dataset": other["dataset"],
                  **disentangle_lesson.recon_per_pixel(e, ui.run_ref(other).config),
                  **{m: s[m] for m in disentangle_lesson.SCORES}})
st.caption("Runs on sprites of different sizes side by side: the reconstruction column is the "
           "test BCE per pixel (the BCE of an image divided by its number of pixels), so a "
           "64x64 run and a 32x32 run compare like with like.")
if unscored:
    st.caption("Not scored yet (open them above to score): " + ", ".join(unscored))
ui.metric_table(table, key="dis_table", hide_index=True)
