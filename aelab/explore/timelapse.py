"""The latent space as it learns: the probe set's frames (``aelab.runs.probes``) as 2-D maps
aligned from frame to frame, the number of active latents over training and the steps where
latents collapsed, and the animated figure the Runs and Latent space pages show. No streamlit.
"""
from __future__ import annotations

import base64

import numpy as np

from aelab.data.datasets import class_name
from aelab.explore.latent import KL_INACTIVE, label_groups, png_bytes
from aelab.explore.reconstructions import image_grid

FRAME_MS = 350  # how long the play control shows each frame


def pca_2d(codes: np.ndarray) -> np.ndarray:
    """The points ``codes`` (N, D) on their first two principal axes: (N, 2), centred (a
    zero column where D < 2 or the points span less than two directions)."""
    centred = codes.astype(np.float64) - codes.mean(0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    points = centred @ vt[:2].T
    return np.pad(points, ((0, 0), (0, 2 - points.shape[1])))


def aligned_maps(codes: np.ndarray) -> np.ndarray:
    """Each frame's 2-D PCA map of ``codes`` (F, N, D), turned to match the frame after it:
    the last frame is its PCA map as it is; going back, frame t's map is rotated (or
    reflected) by the orthogonal Procrustes solution R = argmin ||M_t R - A_{t+1}|| onto the
    aligned map A_{t+1}. PCA of a rotated copy of a frame's codes gives that frame's map up
    to an orthogonal 2x2 transform, which R undoes, so such a frame is drawn unchanged and
    the animation moves only where the geometry changed. No scaling: the map's growth as
    training spreads the codes is shown as it is. (F, N, 2)."""
    from scipy.linalg import orthogonal_procrustes

    codes = np.nan_to_num(np.asarray(codes, dtype=np.float64))
    maps = np.stack([pca_2d(frame) for frame in codes])
    for t in range(len(maps) - 2, -1, -1):
        rotation, _ = orthogonal_procrustes(maps[t], maps[t + 1])
        maps[t] = maps[t] @ rotation
    return maps


def active_counts(kl: np.ndarray, threshold: float = KL_INACTIVE) -> np.ndarray:
    """Active latents per frame: those whose KL (mean over the probes, nats) is at least
    ``threshold`` (the traversal's definition, ``explore.latent.dimension_order``). (F,)."""
    return (np.asarray(kl) >= threshold).sum(1)


def collapses(steps: np.ndarray, kl: np.ndarray, threshold: float = KL_INACTIVE) -> dict[int, list[int]]:
    """Step -> the latents that collapsed there: a latent collapses at the first frame after
    the last one where it was active, if it was active once and is inactive at the end."""
    active = np.asarray(kl) >= threshold
    found: dict[int, list[int]] = {}
    for d in range(active.shape[1]):
        if active[:, d].any() and not active[-1, d]:
            last = int(np.flatnonzero(active[:, d])[-1])
            found.setdefault(int(steps[last + 1]), []).append(d)
    return dict(sorted(found.items()))


def strip_picture(images: np.ndarray, recon: np.ndarray) -> np.ndarray:
    """The shown probe images (R, C, H, W) uint8 over their reconstructions at one frame:
    one uint8 picture, scaled so 8-pixel digits are not specks."""
    scale = max(1, 32 // images.shape[-1])
    return image_grid([images / 255.0, recon / 255.0], scale=scale)


def _data_uri(picture: np.ndarray) -> str:
    return "data:image/png;base64," + base64.b64encode(png_bytes(picture)).decode()


def _rounded(points: np.ndarray) -> np.ndarray:
    """Coordinates with about five significant digits of the map's extent (a smaller figure)."""
    extent = float(np.abs(points).max()) or 1.0
    return np.round(points, max(0, 5 - int(np.ceil(np.log10(extent)))))


def step_label(step: int, per_epoch: int) -> str:
    return f"step {step} (epoch {step / max(per_epoch, 1):.4g})"


def timelapse_figure(probes: dict, height: int = 620):
    """One Plotly figure of ``read_probes``' frames: the aligned 2-D map of the probe codes
    (one colour per class, named as the dataset names them), the shown images over their
    reconstructions and, for the VAE family, active latents over the steps with each collapse marked; a slider over the
    frames' steps and a play control (Plotly animation frames: it plays in the browser)."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    steps, per_epoch = probes["steps"], probes["meta"]["per_epoch"]
    maps = aligned_maps(probes["codes"])
    labels = probes.get("labels")
    dataset = probes["meta"].get("dataset", "")
    groups = label_groups(labels, maps.shape[1], lambda label: class_name(dataset, label))
    has_kl = "kl" in probes
    titles = ["Probe codes: PCA, aligned frame to frame", "Probe images over their reconstructions"]
    if has_kl:
        specs = [[{"rowspan": 2}, {}], [None, {}]]
        titles.append(f"Active latents (KL at least {KL_INACTIVE} nats)")
    else:
        specs = [[{}, {}]]
    figure = make_subplots(rows=len(specs), cols=2, specs=specs, subplot_titles=titles,
                           column_widths=[0.56, 0.44], horizontal_spacing=0.08,
                           vertical_spacing=0.16)

    def frame_traces(t: int) -> list:
        traces = [go.Scatter(x=_rounded(maps[t, member, 0]), y=_rounded(maps[t, member, 1]),
                             mode="markers", name=name, legendgroup=name,
                             marker=dict(size=6, opacity=0.85, color=colour),
                             showlegend=labels is not None,
                             hovertemplate=f"class {name}<extra></extra>" if labels is not None else None)
                  for name, colour, member in groups]
        traces.append(go.Image(source=_data_uri(strip_picture(probes["images"], probes["recon"][t])),
                               hoverinfo="skip"))
        if has_kl:
            count = int(counts[t])
            traces.append(go.Scatter(x=[steps[t], steps[t]], y=[0, count], mode="lines+markers",
                                     line=dict(color="black", width=1), marker=dict(size=[0, 9]),
                                     showlegend=False, hoverinfo="skip"))
        return traces

    counts = active_counts(probes["kl"]) if has_kl else None
    last = len(steps) - 1
    traces = frame_traces(last)
    where = [(1, 1)] * len(groups) + [(1, 2)] + ([(2, 2)] if has_kl else [])
    for trace, (row, col) in zip(traces, where):
        figure.add_trace(trace, row=row, col=col)
    if has_kl:
        latent_dim = probes["kl"].shape[1]
        figure.add_trace(go.Scatter(x=steps, y=counts, mode="lines", line=dict(color="#1f77b4"),
                                    name="active latents", showlegend=False,
                                    hovertemplate="step %{x}: %{y} active<extra></extra>"), row=2, col=2)
        for step, dims in collapses(steps, probes["kl"]).items():
            figure.add_vline(x=step, line=dict(color="#d62728", dash="dot", width=1), row=2, col=2)
            figure.add_trace(go.Scatter(
                x=[step], y=[int(counts[list(steps).index(step)])], mode="markers",
                marker=dict(symbol="x", size=9, color="#d62728"), showlegend=False,
                hovertemplate=(f"step {step}: latent{'s' if len(dims) > 1 else ''} "
                               f"{', '.join(f'z{d}' for d in dims)} collapsed<extra></extra>")),
                row=2, col=2)
        figure.update_xaxes(range=[0, max(probes["meta"]["total_steps"], int(steps[-1]), 1)],
                            title_text="step", row=2, col=2)
        figure.update_yaxes(range=[0, latent_dim + 0.5], row=2, col=2)
    moving = list(range(len(groups))) + [len(groups)] + ([len(groups) + 1] if has_kl else [])
    figure.frames = [go.Frame(name=str(int(s)), data=frame_traces(t), traces=moving)
                     for t, s in enumerate(steps)]
    extent = float(np.abs(maps).max()) * 1.08 or 1.0
    figure.update_xaxes(range=[-extent, extent], row=1, col=1, zeroline=False)
    figure.update_yaxes(range=[-extent, extent], row=1, col=1, zeroline=False,
                        scaleanchor="x", scaleratio=1)
    figure.update_xaxes(visible=False, row=1, col=2)
    figure.update_yaxes(visible=False, row=1, col=2)
    play = {"frame": {"duration": FRAME_MS, "redraw": True}, "fromcurrent": False,
            "transition": {"duration": 0}, "mode": "immediate"}
    figure.update_layout(
        height=height, margin=dict(l=40, r=20, t=40, b=170),
        legend=dict(title_text="class", orientation="h", y=-0.36, yanchor="top", itemclick=False,
                    itemdoubleclick=False, itemsizing="constant"),
        updatemenus=[dict(type="buttons", direction="left", x=0.0, y=-0.2, xanchor="left",
                          yanchor="top", showactive=False, pad=dict(t=0, r=10), buttons=[
                              dict(label="Play", method="animate", args=[None, play]),
                              dict(label="Pause", method="animate",
                                   args=[[None], {"frame": {"duration": 0, "redraw": False},
                                                  "mode": "immediate"}])])],
        sliders=[dict(active=last, x=0.14, len=0.86, y=-0.13, yanchor="top", pad=dict(t=0),
                      currentvalue=dict(prefix="", font=dict(size=14, color="#31333f")),
                      font=dict(color="rgba(0,0,0,0)"),  # one tick per frame: no tick labels
                      steps=[dict(label=step_label(int(s), per_epoch), method="animate",
                                  args=[[str(int(s))], {"frame": {"duration": 0, "redraw": True},
                                                        "mode": "immediate"}])
                             for s in steps])])
    return figure


def timelapse_summary(probes: dict) -> str:
    """One sentence under the figure: how many frames, up to which step, and the collapses."""
    steps = probes["steps"]
    text = (f"{len(probes['index'])} test images, encoded at {len(steps)} steps from "
            f"{int(steps[0])} to {int(steps[-1])} of {probes['meta']['total_steps']}")
    if "kl" in probes:
        counts = active_counts(probes["kl"])
        found = collapses(steps, probes["kl"])
        text += f"; {int(counts[-1])} of {probes['kl'].shape[1]} latents active at the last step"
        if found:  # the red x marks on the active-latents chart
            text += "; collapsed (red x): " + ", ".join(
                f"{' and '.join(f'z{d}' for d in dims)} at step {step}" for step, dims in found.items())
        else:
            text += ", none collapsed"
    return text + "."
