"""Traversal: one slider per latent dimension; a traversal grid as PNG and GIF."""
import numpy as np
import plotly.graph_objects as go
import streamlit as st

from aelab import ui
from aelab.compare import image_grid
from aelab.errors import AelabError
from aelab.explore import (KL_INACTIVE, decode_codes, dimension_order, gif_bytes, is_vae,
                           png_bytes, traversal_grid, traversal_range)

st.title("Traversal")
run = ui.pick_run(ui.manager().list(), key="trav_run")
if run is None:
    st.stop()
run_dir = ui.runs_dir() / run["id"]
try:
    model = ui.model_for(run_dir)
    ds = ui.dataset_for(run["dataset"])
    caches = ui.caches_for(run_dir)
except AelabError as exc:
    ui.show_error(exc)
    st.stop()

vae = is_vae(model)
x_points = ds.x_test[caches["index"]]
labels = caches.get("labels")
low, high = traversal_range(model, x_points, labels, caches["codes"])
kl = caches.get("kl_per_dim")
active, inactive = dimension_order(kl, model.config.latent_dim)

left, right = st.columns([1, 2])
with left:
    sources = ["test image", "prior mean"] if vae else ["test image"]
    source = st.radio("Base", sources, horizontal=True, key="trav_source")
    if source == "test image":
        index = st.number_input("Test image", 0, len(x_points) - 1, 0, key="trav_index")
        base = caches["codes"][index].astype(np.float32)
        label = None if labels is None else labels[index]
    else:
        index, base = "prior", np.zeros(model.config.latent_dim, dtype=np.float32)
        label = 0 if model.config.num_classes and run["variant"] == "cvae" else None
    if run["variant"] == "cvae":
        label = st.selectbox("Class", list(range(model.config.num_classes)),
                             index=int(label or 0), key="trav_class")

    z = base.copy()
    prefix = f"trav.{run['id']}.{index}"

    def slider(d: int):
        lo, hi = float(min(low[d], base[d])), float(max(high[d], base[d]))
        note = f" (KL {kl[d]:.2f})" if kl is not None else ""
        z[d] = st.slider(f"z{d}{note}", lo, hi, float(base[d]), step=(hi - lo) / 100 or 0.01,
                         key=f"{prefix}.z{d}")

    st.caption("Dimensions ordered by KL" if kl is not None else "Dimensions in order")
    for d in active:
        slider(d)
    if inactive:
        with st.expander(f"{len(inactive)} inactive dimension(s) (KL < {KL_INACTIVE} nats)"):
            for d in inactive:
                slider(d)
with right:
    scale = max(1, 256 // x_points.shape[-1])
    decoded = decode_codes(model, z[None], None if label is None else np.array([label]))
    ui.image(image_grid([decoded], scale=scale), caption="decoded from the sliders")

st.subheader("Traversal grid")
g1, g2 = st.columns(2)
steps = g1.slider("Steps", 5, 15, 9, key="trav_steps")
rows_max = g2.slider("Dimensions shown", 1, max(1, len(active) + len(inactive)),
                     min(10, max(1, len(active))), key="trav_rows")
dims = (active + inactive)[:rows_max]
grid = traversal_grid(model, base, dims, low, high, steps, label)
picture = image_grid(list(grid), scale=max(1, 48 // x_points.shape[-1]))
ui.image(picture, caption=f"rows: z{', z'.join(map(str, dims))}; columns: "
         + ("-3 to +3 aggregate posterior std" if vae else "observed code range"))
frames = [image_grid([grid[:, t]], scale=max(1, 48 // x_points.shape[-1])) for t in range(steps)]
d1, d2 = st.columns(2)
d1.download_button("Download PNG", png_bytes(picture), f"{run['id']}-traversal.png", "image/png",
                   key="trav_png")
d2.download_button("Download GIF", gif_bytes(frames), f"{run['id']}-traversal.gif", "image/gif",
                   key="trav_gif")

if kl is not None:
    st.subheader("KL per dimension")
    bar = go.Figure(go.Bar(x=[f"z{d}" for d in range(len(kl))], y=kl))
    bar.add_hline(y=KL_INACTIVE, line_dash="dot", annotation_text="inactive below")
    bar.update_layout(yaxis_title="KL (nats)", height=300, margin=dict(l=10, r=10, t=10, b=10))
    st.plotly_chart(bar, key="trav_kl")
