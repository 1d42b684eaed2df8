"""Train: pick data, variant and settings; start a background run."""
from aelab import ui

ui.within_app()  # first: a deep link on a fresh server hands over to app.py

import streamlit as st

from aelab.config import TrainConfig
from aelab.errors import AelabError
from aelab.models import get_variant, list_variants
from aelab.models.base import AEConfig
from aelab.training.presets import PRESETS
from aelab.training.setup import validate_run

st.title("Train")

with st.expander("Use your own data (.npz)"):
    st.caption("x_train and x_test (+ y_train, y_test), or a single x (+ y); uint8 0-255 or "
               "float 0-1; shape (N, H, W), (N, C, H, W) or channels-last (N, H, W, C) with "
               "1, 3 or 4 channels.")
    upload = st.file_uploader("npz file", type=["npz"], key="upload")
    if upload is not None:
        try:
            stored = ui.store_upload_once(upload)
            st.success(f"Stored {ui.dataset_label(stored)}; it is now in the dataset list.")
            if ui.upload_note(stored):
                st.info(ui.upload_note(stored))
        except AelabError as exc:
            ui.show_error(exc)

NO_PRESET = "none"


def apply_preset() -> None:
    """Fill the widgets below with the chosen preset's settings (the user can still change them)."""
    name = st.session_state["preset"]
    if name == NO_PRESET:
        return
    preset = PRESETS[name]
    common_names = {p["name"] for p in AEConfig.parameters()}
    st.session_state["dataset"], st.session_state["variant"] = preset.dataset, preset.variant
    for key, value in preset.model.items():
        st.session_state[f"common.{key}" if key in common_names else
                         f"own.{preset.variant}.{key}"] = value
    for key, value in preset.train.items():
        st.session_state[f"train.{key}"] = value


st.selectbox("Preset", [NO_PRESET, *PRESETS], key="preset", on_change=apply_preset,
             format_func=lambda n: n if n == NO_PRESET else f"{n}: {PRESETS[n].about}",
             help="ready-made settings for a purpose; they fill in the form below, which you "
                  "can still change (python -m aelab presets lists them)")

left, right = st.columns(2)
with left:
    dataset = st.selectbox("Dataset", ui.dataset_choices(), format_func=ui.dataset_label,
                           key="dataset")
    variant = st.selectbox("Variant", list_variants(), key="variant")
    model_class = get_variant(variant)
    st.markdown(model_class.about)
    st.latex(model_class.loss_latex)
with right:
    common = ui.settings_widgets(AEConfig, key="common", only=["latent_dim", "arch", "hidden", "likelihood"])
    own = ui.settings_widgets(model_class.Config, key=f"own.{variant}",
                              skip=tuple(common) + ("hidden",))
    train = ui.settings_widgets(TrainConfig, key="train", only=["epochs", "batch_size", "lr", "seed",
                                                                "max_minutes", "precision",
                                                                "live_mig_seconds"])
    train["device"] = st.selectbox("Device", ui.device_choices(), key="train.device",
                                   help="auto picks CUDA, then Apple MPS, then CPU")

model_params = {**common, **own}
if st.button("Start training", type="primary", key="start"):
    try:
        validate_run(variant, dataset, model_params, train)
        run_id = ui.submit_run(variant, dataset, model_params, train)
    except AelabError as exc:
        ui.show_error(exc)
    else:
        st.success(f"Started run {run_id} in the background; this page stays usable.")
        st.page_link("pages/runs.py", label="Watch it on the Runs page", icon=":material/monitoring:")
