"""A run you can take home: one HTML file that plays with the model with no server and no
network, plus the files TensorFlow's Embedding Projector loads.

``export_files`` builds, in memory, from a run's model, dataset and cached test points
(``aelab.metrics.results``):

- ``<run>.html``: the decoder in JavaScript (``webdecoder.js``, its weights embedded as base64
  float32) with one slider per latent (the Traversal page's ranges), and the 2-D code map of
  the cached points (``export.js``: PCA and UMAP of the codes and of the pixels, coloured by
  label, with a legend); the image under the pointer is drawn from the embedded sprite, and a
  click sets the sliders to that point's code. A content security policy forbids every request.
- ``vectors.tsv`` (one code a row, tab-separated, no header), ``metadata.tsv`` (header
  ``label, split, index``), ``sprite.png`` (the test images as thumbnails in a row-major grid of
  ``ceil(sqrt(N))`` columns, at most ``SPRITE_MAX`` pixels a side), ``projector_config.pbtxt``
  (TensorBoard's projector plugin) and ``projector_config.json`` (the standalone projector).

``write_export`` checks the output folder first and never deletes anything; ``zip_bytes``
packs the same files for the pages' download button.
"""
from __future__ import annotations

import base64
import html
import io
import json
import math
import os
import zipfile
from pathlib import Path

import numpy as np

from aelab.errors import AelabError
from aelab.explore.webdecoder import CAPTION, WebDecoderError, _json_script, export_decoder, slider_spec
from aelab.explore.webdecoder import JS as DECODER_JS
from aelab.explore.webdecoder import STYLE as DECODER_STYLE

MAP_JS = Path(__file__).with_name("export.js")
VECTORS, METADATA, SPRITE = "vectors.tsv", "metadata.tsv", "sprite.png"
PBTXT, CONFIG_JSON = "projector_config.pbtxt", "projector_config.json"
SPRITE_MAX = 8192  # the Embedding Projector's largest sprite, pixels a side
MAP_SIZE = 480  # the code map's canvas, pixels a side
EXPORTABLE = ("a run can be exported when the browser can run its decoder: aelab's shared "
              "Decoder (any variant, mlp, conv or burgess arch) of 1- or 3-channel images, "
              "with no condition or the CVAE's one-hot label")


class ExportError(AelabError):
    """A run or an output folder the export cannot use."""


def file_names(run_id: str) -> list[str]:
    """The files an export of run ``run_id`` writes, in order."""
    return [f"{run_id}.html", VECTORS, METADATA, SPRITE, PBTXT, CONFIG_JSON]


def decoder_spec(run_id: str, model) -> dict:
    """``export_decoder(model)``, or an ExportError naming which runs can be exported."""
    try:
        return export_decoder(model)
    except WebDecoderError as exc:
        raise ExportError(f"run {run_id} cannot be exported, since {exc}; {EXPORTABLE}") from None


def _b64(array: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(array, dtype="<f4").tobytes()).decode("ascii")


def thumbnails(x: np.ndarray, limit: int = SPRITE_MAX) -> np.ndarray:
    """Images (N, C, H, W) in [0, 1] as uint8 thumbnails (N, h, w, C), shrunk (box filter)
    only when ``ceil(sqrt(N))`` of them would not fit in ``limit`` pixels."""
    from PIL import Image

    n, c, h, w = x.shape
    images = (np.clip(x, 0, 1) * 255).round().astype(np.uint8).transpose(0, 2, 3, 1)
    cols = math.ceil(math.sqrt(n))
    side = limit // cols
    if max(h, w) <= side:
        return images
    th, tw = max(1, h * side // max(h, w)), max(1, w * side // max(h, w))
    mode = "L" if c == 1 else "RGB"
    small = [np.asarray(Image.fromarray(im[..., 0] if c == 1 else im, mode).resize((tw, th), Image.BOX))
             for im in images]
    return np.stack(small).reshape(n, th, tw, c)


def sprite_png(thumbs: np.ndarray) -> bytes:
    """Thumbnails (N, h, w, C) as one PNG: ``ceil(sqrt(N))`` a row, row-major from the top
    left, the last row filled as far as the points go (black after)."""
    from PIL import Image

    n, h, w, c = thumbs.shape
    cols = math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    sheet = np.zeros((rows * h, cols * w, c), np.uint8)
    for i in range(n):
        r, k = divmod(i, cols)
        sheet[r * h:(r + 1) * h, k * w:(k + 1) * w] = thumbs[i]
    buffer = io.BytesIO()
    Image.fromarray(sheet[..., 0] if c == 1 else sheet).save(buffer, format="PNG")
    return buffer.getvalue()


def vectors_tsv(codes: np.ndarray) -> bytes:
    """One code a row, tab-separated, no header; 9 significant digits give float32 back exactly."""
    return "".join("\t".join(f"{v:.9g}" for v in row) + "\n" for row in codes.astype(np.float32)).encode()


def metadata_tsv(index: np.ndarray, labels: np.ndarray | None) -> bytes:
    """A header row (the projector wants one when there are several columns), then per point
    its label (empty without labels), split and index in that split."""
    lines = ["label\tsplit\tindex"]
    for i, at in enumerate(index):
        lines.append(f"{'' if labels is None else int(labels[i])}\ttest\t{int(at)}")
    return ("\n".join(lines) + "\n").encode()


def projector_configs(run_id: str, n: int, dims: int, w: int, h: int) -> tuple[bytes, bytes]:
    """(``projector_config.pbtxt`` for TensorBoard, ``projector_config.json`` for the
    standalone projector), naming the TSV files and the sprite with its single image size."""
    name = f"{run_id} codes"
    pbtxt = (f"embeddings {{\n  tensor_name: {json.dumps(name)}\n  tensor_path: \"{VECTORS}\"\n"
             f"  metadata_path: \"{METADATA}\"\n  sprite {{\n    image_path: \"{SPRITE}\"\n"
             f"    single_image_dim: {w}\n    single_image_dim: {h}\n  }}\n}}\n")
    config = {"embeddings": [{"tensorName": name, "tensorShape": [n, dims], "tensorPath": VECTORS,
                              "metadataPath": METADATA,
                              "sprite": {"imagePath": SPRITE, "singleImageDim": [w, h]}}]}
    return pbtxt.encode(), (json.dumps(config, indent=1) + "\n").encode()


def map_views(caches: dict) -> dict[str, np.ndarray]:
    """The Latent space page's 2-D views of the cached points (title -> (N, 2))."""
    views = {"PCA of the codes": caches["pca_codes"], "UMAP of the codes": caches["umap_codes"],
             "PCA of the raw pixels": caches["pca_pixels"], "UMAP of the raw pixels": caches["umap_pixels"]}
    if caches["codes"].shape[1] == 2:
        views = {"The 2-D codes as they are": caches["codes"], **views}
    return views


def _classes(labels: np.ndarray | None, n: int) -> tuple[list[dict], list[int]]:
    """([{name, colour}] per label class, the class of each point): ``label_groups``' palette."""
    from aelab.explore.latent import label_groups

    groups = label_groups(labels, n)
    member = np.zeros(n, dtype=int)
    for g, (_, _, points) in enumerate(groups):
        member[points] = g
    classes = [{"name": name, "colour": colour or "#1f77b4"} for name, colour, _ in groups]
    return classes, member.tolist()


def export_files(run_id: str, model, ds, caches: dict) -> dict[str, bytes]:
    """Every file of the export of run ``run_id`` (file name -> bytes), from its model in eval
    mode, its dataset and its cached test points; an ExportError, before anything is built,
    for a decoder the browser cannot run."""
    from aelab.explore.latent import KL_INACTIVE, dimension_order, traversal_range

    spec = decoder_spec(run_id, model)
    index, codes = caches["index"], caches["codes"].astype(np.float32)
    labels = caches.get("labels")
    x = ds.x_test[index]
    n, w = len(index), x.shape[-1]
    thumbs = thumbnails(x)
    sprite = sprite_png(thumbs)
    th, tw = thumbs.shape[1:3]
    pbtxt, config = projector_configs(run_id, n, codes.shape[1], tw, th)
    # the sliders as the Traversal page sets them up, based at the first point's code
    low, high = traversal_range(model, x, labels, codes)
    kl = caches.get("kl_per_dim")
    active, inactive = dimension_order(kl, model.config.latent_dim)
    conditional = spec["condition"] is not None
    label = (int(labels[0]) if labels is not None else 0) if conditional else None
    sliders = slider_spec(codes[0], low, high, active, inactive, kl, label, KL_INACTIVE)
    scale = max(1, 320 // w)
    classes, member = _classes(labels, n)
    view = dict(sliders, scale=scale, caption=CAPTION)
    points = {"views": {title: _b64(p) for title, p in map_views(caches).items()},
              "codes": _b64(codes), "latent_dim": int(codes.shape[1]), "index": index.tolist(),
              "labels": None if labels is None else [int(v) for v in labels],
              "classes": classes, "member": member, "conditional": conditional,
              "n_classes": spec["condition"]["classes"] if conditional else 0, "size": MAP_SIZE,
              "sprite": {"src": "data:image/png;base64," + base64.b64encode(sprite).decode("ascii"),
                         "cols": math.ceil(math.sqrt(n)), "w": int(tw), "h": int(th)},
              "preview": max(1, 160 // max(th, tw))}
    page = _page(run_id, model, ds, n, view, spec, points)
    return {f"{run_id}.html": page.encode(), VECTORS: vectors_tsv(codes),
            METADATA: metadata_tsv(index, labels), SPRITE: sprite, PBTXT: pbtxt, CONFIG_JSON: config}


def _page(run_id: str, model, ds, n: int, view: dict, spec: dict, points: dict) -> str:
    """The whole self-contained HTML file."""
    from aelab import __version__
    from aelab.runs.labels import dataset_label

    c, h, w = model.config.input_shape
    about = (f"{model.variant} on {dataset_label(ds.name)}, {model.config.latent_dim} latent dimension(s), "
             f"{n} test images ({w}x{h}); exported by aelab {__version__}")
    title = html.escape(f"{run_id}: aelab run")
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        # no request of any kind: the file works from disk, offline, and says so to the browser
        "<meta http-equiv='Content-Security-Policy' content=\"default-src 'none'; "
        "script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:\">"
        f"<title>{title}</title><style>{DECODER_STYLE}{STYLE}</style></head><body>"
        f"<h1>{html.escape(run_id)}</h1><p class='about'>{html.escape(about)}</p>"
        "<h2>The code map</h2><p class='hint'>Each dot is a test image; point at one to see it, "
        "click it to set the sliders below to its code.</p>"
        "<div class='map'><div><select id='view' aria-label='2-D view'></select>"
        f"<canvas id='map' width='{MAP_SIZE}' height='{MAP_SIZE}' aria-label='code map'></canvas></div>"
        "<div class='side'><ul id='legend'></ul><figure><canvas id='preview'></canvas>"
        "<figcaption id='preview-caption'>point at a dot</figcaption></figure></div></div>"
        "<h2>Traversal</h2><p class='hint'>One slider per latent dimension; the picture is "
        "decoded in this page as you move them.</p>"
        + ("<label class='class'>Class <select id='class'></select></label>" if points["conditional"] else "")
        + "<div id='app'></div>"
        + _json_script("aelab-view", json.dumps(view))
        + _json_script("aelab-decoder", json.dumps(spec))
        + _json_script("aelab-map", json.dumps(points))
        + f"<script>{DECODER_JS.read_text()}</script><script>{MAP_JS.read_text()}</script>"
        "</body></html>")


STYLE = """
body { margin: 1.5rem auto; max-width: 1000px; padding: 0 1rem; background: white; }
h1 { font-size: 1.6rem; margin: 0 0 0.2rem; } h2 { font-size: 1.25rem; margin: 1.6rem 0 0.3rem; }
.about, .hint { color: rgba(49, 51, 63, 0.7); margin: 0.2rem 0 0.8rem; }
.map { display: flex; gap: 1.5rem; align-items: flex-start; flex-wrap: wrap; }
#map { border: 1px solid rgba(49, 51, 63, 0.2); cursor: crosshair; max-width: 100%; touch-action: none; }
select { font: inherit; margin-bottom: 0.4rem; display: block; }
label.class { display: flex; gap: 0.5rem; align-items: baseline; }
#legend { list-style: none; padding: 0; margin: 0 0 1rem; columns: 2; }
#legend li { display: flex; align-items: center; gap: 0.4rem; }
#legend span.swatch { width: 0.8rem; height: 0.8rem; border-radius: 50%; display: inline-block; }
#preview { border: 1px solid rgba(49, 51, 63, 0.2); background: black; }
@media (prefers-color-scheme: dark) { body { background: rgb(14, 17, 23); }
  .about, .hint { color: rgba(250, 250, 250, 0.7); } }
"""


def zip_bytes(files: dict[str, bytes], folder: str) -> bytes:
    """``files`` in one zip, inside ``folder`` (what the pages' download button hands out)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            archive.writestr(f"{folder}/{name}", data)
    return buffer.getvalue()


def check_out(out: "str | os.PathLike", names: list[str], force: bool = False) -> Path:
    """The output folder, if the export may write ``names`` there: a folder that is missing
    (it is made), or holds none of them (other files stay), or, with ``force``, holds some
    as plain files (they are replaced). An ExportError in one sentence otherwise."""
    out = Path(out).expanduser()
    if out.exists() and not out.is_dir():
        raise ExportError(f"--out {out} is a file, not a folder; name a folder (it is made if missing)")
    if not out.exists():
        return out
    taken = [name for name in names if (out / name).exists() or (out / name).is_symlink()]
    odd = [name for name in taken if (out / name).is_symlink() or not (out / name).is_file()]
    if odd:
        raise ExportError(f"{out / odd[0]} is not a plain file, so the export will not replace it; "
                          f"choose another --out")
    if taken and not force:
        more = f" and {len(taken) - 2} more" if len(taken) > 2 else ""
        raise ExportError(f"{out} already holds {', '.join(taken[:2])}{more} of an export; add "
                          f"--force to overwrite {'it' if len(taken) == 1 else 'them'}, or choose "
                          f"another --out")
    return out


def write_export(files: dict[str, bytes], out: "str | os.PathLike", force: bool = False) -> list[Path]:
    """Write ``files`` into folder ``out`` (made if missing) after ``check_out``; nothing else
    in it is touched. Each file is written to a temporary file and renamed into place."""
    from aelab.runs.folder import atomic_write_bytes

    out = check_out(out, list(files), force)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, data in files.items():
        path = out / name
        atomic_write_bytes(path, data, durable=False)
        os.chmod(path, 0o644)  # a file to keep and share, not a private temporary file
        written.append(path)
    return written


def export_run(run, progress=None) -> dict[str, bytes]:
    """``export_files`` of a run handle (``RunRef``): its model, dataset and cached points
    (computed first when missing or stale, telling ``progress(message)`` each step)."""
    from aelab.data.datasets import load_dataset
    from aelab.metrics.results import get_caches

    model = run.load_model()
    decoder_spec(run.run_id, model)  # refused before any cache is computed
    caches = get_caches(run, progress)
    return export_files(run.run_id, model, load_dataset(run.config["dataset"]), caches)
