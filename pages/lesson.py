"""Lesson: the survey's sections, one screen each, on the shipped demo runs (?step=<key>)."""
from aelab import ui

ui.within_app()  # first: a deep link on a fresh server hands over to app.py

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from aelab.errors import AelabError
from aelab.explore import disentangle_lesson
from aelab.explore.latent import class_swap_grid, decode_codes, dimension_order, prior_samples
from aelab.explore.lesson import BY_KEY, JACOBIAN_IMAGES, NEEDS, STEPS, jacobian_summary, unit_use, unknown_step
from aelab.explore.reconstructions import denoising_rows, image_grid, pick_examples, reconstruction_rows
from aelab.metrics.results import cached_disentanglement
from aelab.models import refusal
from aelab.models.denoising import NOISES
from aelab.runs.folder import read_config

KEYS = [s.key for s in STEPS]


def go_to(offset: int) -> None:
    st.session_state["lesson_step"] = KEYS[(KEYS.index(st.session_state["lesson_step"]) + offset) % len(KEYS)]


st.title("Lesson")
if (asked := st.query_params.get("step")) is not None and asked not in BY_KEY:
    st.warning(unknown_step(asked))
top = st.columns([1.5, 6, 1.5], vertical_alignment="bottom")
top[0].button("Previous", icon=":material/arrow_back:", on_click=go_to, args=(-1,), key="lesson_prev",
              width="stretch")
with top[1]:
    key = ui.url_selectbox("Screen", KEYS, key="lesson_step", param="step", always=True,
                           format_func=lambda k: f"{KEYS.index(k) + 1}. {BY_KEY[k].title}")
top[2].button("Next", icon=":material/arrow_forward:", on_click=go_to, args=(1,), key="lesson_next",
              width="stretch")
step = BY_KEY[key]


def no_demo_runs(exc: AelabError) -> None:
    ui.show_error(exc)
    st.info("The Lesson uses the shipped demo runs: `python -m aelab demo-runs` makes them again.")
    st.stop()


try:
    run_dirs = [ui.runs_dir() / run for run in step.runs]
    with st.spinner(f"Loading {', '.join(step.runs)}..."):
        models = [ui.model_for(run_dir) for run_dir in run_dirs]
    run_keys = tuple(ui.run_key(run_dir) for run_dir in run_dirs)  # the shared results' keys
    dataset_name = read_config(run_dirs[0])["dataset"]
except AelabError as exc:
    no_demo_runs(exc)
for run_dir, model, needs in zip(run_dirs, models, NEEDS[step.show]):
    if why := refusal("This screen", needs, run_dir.name, model.variant):
        no_demo_runs(AelabError(why))
scale = max(1, 56 // models[0].config.input_shape[-1])


def test_images():
    """The demo runs' dataset, loaded (once per server) only for the screens that show its
    images: the beta-VAE screen draws its own sprites, and loading shapes32 is slow."""
    try:
        return ui.dataset_for(dataset_name)
    except AelabError as exc:
        no_demo_runs(exc)

text, live = st.columns([2, 3], gap="large")
with text:
    st.header(step.title)
    st.caption(f"Survey, section {step.section}")
    st.markdown(step.text)
    if step.ask:
        st.info(step.ask, icon=":material/help:")
    link = ({"dataset": dataset_name, "runs": ",".join(step.runs)} if step.page.endswith("reconstructions.py")
            else {"run": step.runs[0]})  # the page opens on the same run(s)
    st.page_link(step.page, label="Explore it on its page", icon=":material/open_in_new:",
                 query_params=link)
    if step.key in ("ae-pca", "vae"):  # the screens of one autoencoder's code space
        ui.own_input_link(step.runs[0])


@st.cache_data(max_entries=16, show_spinner="Measuring the units...")
def units(run_key: str, _model) -> tuple[np.ndarray, float, str]:
    return unit_use(_model, test_images().x_test)


@st.cache_data(max_entries=8, show_spinner="Differentiating the encoders...")
def jacobian(run_key: str, _model) -> tuple[np.ndarray, float]:
    return jacobian_summary(_model, test_images().x_test)


with live:
    if step.show in ("reconstruct", "denoise"):
        c1, c2 = st.columns(2)
        seed = c1.number_input("Examples (seed)", 0, 10_000, 0, key="lesson_seed")
        if step.show == "denoise":
            trained = models[0].config
            noise = c2.selectbox("Corruption", NOISES, index=NOISES.index(trained.noise), key="lesson_noise")
            level = st.slider("Level", 0.0, 0.9, float(trained.noise_level), 0.05, key="lesson_level")
        else:
            noise, level = None, None

        def image_rows():
            ds = test_images()
            x = ds.x_test[pick_examples(ds.x_test, ds.y_test, "random", 8, seed)]
            named = {run_dir.name: m for run_dir, m in zip(run_dirs, models)}
            pca_for = lambda k: ui.pca(ds.name, k)  # noqa: E731
            if noise is None:
                return reconstruction_rows(named, x, None, ds.x_train, pca_for)
            return denoising_rows(named, x, None, ds.x_train, noise, level, seed, pca_for)

        # made once per runs and controls for every session (a rerun or another student reuses them)
        rows = ui.shared(("lesson", step.key, run_keys, seed, noise, level), image_rows,
                         what=f"Reconstructing 8 test images with {', '.join(step.runs)} and PCA...")
        ui.labelled_images([(f"**{r.label}**" + (f"  \nMSE {r.mse:.4f}" if r.mse is not None else ""),
                             r.images) for r in rows], scale, width=(1, 3))
    elif step.show == "sparsity":
        for run_dir, model in zip(run_dirs, models):
            use, line, name = units(ui.run_key(run_dir), model)
            order = np.argsort(-use, kind="stable")  # most used first, each bar named by its unit
            bar = go.Figure(go.Bar(x=[f"u{j}" for j in order], y=use[order]))
            bar.add_hline(y=line, line_dash="dot", annotation_text=f"{name} {line:.2f}")
            bar.update_layout(height=260, margin=dict(l=10, r=10, t=40, b=10),
                              title=f"{run_dir.name}: " + ("mean activation per unit" if model.target_rate
                                                           else "how often each unit is kept"))
            ui.plot(bar, key="lesson_mean" if model.target_rate else "lesson_kept", name=f"{run_dir.name}-units")
    elif step.show == "jacobian":
        line, norms = go.Figure(), []
        for run_dir, model in zip(run_dirs, models):
            spectrum, norm = jacobian(ui.run_key(run_dir), model)
            norms.append(f"{run_dir.name} {norm:.1f}")
            line.add_trace(go.Scatter(x=np.arange(1, len(spectrum) + 1), y=spectrum, mode="lines+markers",
                                      name=f"{run_dir.name}: ‖J‖F = {norm:.1f}"))
        line.update_layout(height=360, xaxis_title="direction (largest singular value first)",
                           yaxis_title="singular value (mean, log scale)", yaxis_type="log",
                           margin=dict(l=10, r=10, t=10, b=10), legend=dict(orientation="h", y=1.1))
        ui.plot(line, key="lesson_jacobian", name="jacobian-spectrum")
        st.caption(f"How far each code moves per unit step of the input along each direction: the "
                   f"singular values of the encoder Jacobian $J_f(x)$, averaged over {JACOBIAN_IMAGES} "
                   f"test digits. Its Frobenius norm $\\|J_f(x)\\|_F = \\sqrt{{\\sum_k s_k^2}}$ (mean): "
                   + ", ".join(norms) + ".")
    elif step.show == "vae":
        model, caches = models[0], ui.caches_for(run_dirs[0])
        active, _ = dimension_order(caches.get("kl_per_dim"), model.config.latent_dim)
        z = np.zeros(model.config.latent_dim, dtype=np.float32)  # the prior's mean
        sliders, picture = st.columns([1, 1])
        for d in active[:3]:
            z[d] = sliders.slider(f"z{d}", -3.0, 3.0, 0.0, 0.1, key=f"lesson_z{d}")
        with picture:
            ui.image(image_grid([decode_codes(model, z[None])], scale=2 * scale), caption="decoded z")
        seed = st.number_input("Samples z ~ N(0, I) (seed)", 0, 10_000, 0, key="lesson_sample_seed")
        samples = ui.shared(("lesson-samples", run_keys, seed), lambda: prior_samples(model, 16, seed),
                            what=f"Decoding 16 samples with {step.runs[0]}...")
        ui.image(image_grid([samples[:8], samples[8:]], scale=scale))
    elif step.show == "cvae":
        seed = st.number_input("Styles (seed)", 0, 10_000, 0, key="lesson_style_seed")
        swaps = ui.shared(("lesson-swaps", run_keys, seed), lambda: class_swap_grid(models[0], 6, seed))
        ui.image(image_grid(list(swaps), scale=scale),
                 caption="rows: one z each; columns: the classes 0-9")
    elif step.show == "betavae":
        factors = [0, 3, 0, 16, 16]  # one sprite, the same for both runs: a mid-size square, centred
        for column, run_dir in zip(st.columns(2), run_dirs):  # entangled left, disentangled right
            scores = cached_disentanglement(run_dir)
            with column:
                if scores is None:
                    st.caption(f"{run_dir.name}: not scored yet; the Disentanglement page scores it.")
                    continue
                mi = np.asarray(scores["mi_matrix"])
                dims, labels = disentangle_lesson.informative_order(mi, 5), disentangle_lesson.dimension_labels(mi)
                st.caption(f"{run_dir.name}: MIG {scores['mig']:.2f} "
                           "(0 = entangled, 1 = one latent per factor)")
                with st.spinner(f"Traversing {run_dir.name}'s latents..."):
                    grid = ui.traversals_for(run_dir.name, factors, dims)
                ui.labelled_images([(f"**z{d}** → {labels[d]}", row) for d, row in zip(dims, grid)],
                                   scale=1, width=(1, 3))
