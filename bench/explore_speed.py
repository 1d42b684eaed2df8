"""Explore pages: server time of a traversal slider move, and of a Latent space render
with 10,000 cached points.

    python bench/explore_speed.py                 # defaults: 30 slider moves, 10 renders
    python bench/explore_speed.py --moves 50 --renders 20 --json

Setup (not timed): an offline npz dataset in a temporary folder whose test split holds
10,000 images (the 5,000 ``mnist5k`` images twice, the second copy with seeded noise of
+-0.05, labels kept; train split = ``mnist5k``'s), a ``vae`` (latent_dim 8, default MLP)
trained on it for one epoch, then its caches (codes, PCA and UMAP of codes and pixels,
eval metrics) and the Latent page's score table, so every page opens from caches.

1. traversal: ``AppTest`` on ``pages/traversal.py`` with that run. The page's sliders
   decode in the browser (aelab/explore/webdecoder.py): a move there costs the server nothing. Timed
   here: N moves of one latent slider decoded on the server, the fallback for runs the
   browser cannot decode (the export is refused in this process to reach it;
   ``at.slider(key=...).set_value(v).run()``, each checked to change the decoded image;
   target: median under 100 ms), and reruns of the page with the browser's component (what a
   new base costs: the sliders and the decoder's weights sent again).
2. latent: renders of ``pages/latent.py`` with caches in place and loaded (warm): a new
   session opening the page (``AppTest`` + ``switch_page`` + ``run``, construction not
   timed) and a rerun of an open session (``at.run()``). Target: median under 1.5 s.

Times are the script run as ``AppTest`` measures it (the server side: script, figures,
protobuf), not the browser's drawing. Everything lives in a temporary folder, removed
at the end unless ``--keep``.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
APP = ROOT / "app.py"
TARGETS = {"traversal_move_s": 0.100, "latent_render_s": 1.5}


def make_dataset(folder: Path, points: int, seed: int = 0) -> Path:
    """An npz with ``points`` test images built from ``mnist5k`` (see module docstring)."""
    from aelab.data.datasets import load_dataset

    ds = load_dataset("mnist5k")
    images = np.concatenate([ds.x_train, ds.x_test])  # (5000, 1, 28, 28)
    labels = np.concatenate([ds.y_train, ds.y_test])
    rng = np.random.default_rng(seed)
    copies = -(-points // len(images))
    x_test = np.concatenate([images] + [np.clip(images + rng.uniform(-0.05, 0.05, images.shape), 0, 1)
                                        for _ in range(copies - 1)]).astype(np.float32)[:points]
    y_test = np.tile(labels, copies)[:points]
    path = folder / f"mnist{points // 1000}k.npz"
    np.savez(path, x_train=ds.x_train, y_train=ds.y_train, x_test=x_test, y_test=y_test)
    return path


def setup(folder: Path, points: int) -> Path:
    from aelab.metrics.results import get_latent_scores, rebuild_caches
    from aelab.runs.train import train_run
    from aelab.training.setup import prepare_run

    runs = folder / "runs"
    os.environ["AELAB_RUNS"] = str(runs)
    done = sorted(runs.glob("*/scores.json")) if runs.is_dir() else []
    if done:  # --folder with a finished setup
        return done[0].parent
    data = make_dataset(folder, points)
    run_dir = prepare_run("vae", f"npz:{data}", {"latent_dim": 8}, {"epochs": 1, "caches": False},
                          runs_dir=runs)
    started = time.monotonic()
    assert train_run(run_dir)["state"] == "done"
    print(f"setup: trained {run_dir.name} in {time.monotonic() - started:.1f} s", flush=True)
    started = time.monotonic()
    rebuild_caches(run_dir, progress=lambda message: print(f"setup: {message}", flush=True))
    get_latent_scores(run_dir)
    print(f"setup: caches and scores in {time.monotonic() - started:.1f} s", flush=True)
    return run_dir


def open_page(page: str):
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(APP), default_timeout=600)
    at.switch_page(f"pages/{page}.py")
    return at


def check(at) -> None:
    problems = [e.value for e in at.exception] + [e.value for e in at.error]
    if problems:
        raise SystemExit(f"the page failed: {problems}")


def time_traversal(run_dir: Path, moves: int) -> dict:
    """Slider moves decoded on the server: only runs the browser cannot decode do this (the
    export is refused here to time it); for the others a move never reaches the server."""
    import aelab.explore.webdecoder
    from aelab.ui.loaders import _web_decoder

    def refuse(model):
        raise aelab.explore.webdecoder.WebDecoderError("the bench times the server's decoding")

    real, aelab.explore.webdecoder.export_decoder = aelab.explore.webdecoder.export_decoder, refuse
    _web_decoder.clear()
    try:
        at = open_page("traversal")
        at.run()
        check(at)
        key = next(s.key for s in at.slider if s.key and s.key.startswith("trav."))
        slider = at.slider(key=key)
        values = np.linspace(slider.min, slider.max, 7)
        times, last_image = [], at.image[0].value
        for i in range(moves + 3):  # 3 warm-up moves
            started = time.perf_counter()
            at.slider(key=key).set_value(float(values[i % len(values)])).run()
            elapsed = time.perf_counter() - started
            check(at)
            image = at.image[0].value  # the media id is a hash of the PNG: a new image, a new id
            if image == last_image:
                raise SystemExit(f"slider move {i} did not change the decoded image")
            last_image = image
            if i >= 3:
                times.append(elapsed)
    finally:
        aelab.explore.webdecoder.export_decoder = real
        _web_decoder.clear()
    return {"slider": key, "moves": moves, "median_s": statistics.median(times), "min_s": min(times)}


def time_component(reruns: int) -> dict:
    """A rerun of the Traversal page that sends the browser its sliders and decoder (a new
    base or grid setting costs this; a slider move costs the server nothing)."""
    at = open_page("traversal")
    at.run()
    check(at)
    (frame,) = at.get("iframe")
    times = []
    for _ in range(reruns + 3):  # 3 warm-up reruns
        started = time.perf_counter()
        at.run()
        times.append(time.perf_counter() - started)
        check(at)
    times = times[3:]
    return {"reruns": reruns, "html_bytes": len(frame.proto.srcdoc.encode()),
            "median_s": statistics.median(times), "min_s": min(times)}


def time_latent(renders: int) -> dict:
    warm = open_page("latent")
    warm.run()  # loads model, dataset and caches into the server caches
    check(warm)
    charts = len(warm.get("plotly_chart"))
    fresh, rerun = [], []
    for _ in range(renders):
        at = open_page("latent")
        started = time.perf_counter()
        at.run()
        fresh.append(time.perf_counter() - started)
        check(at)
        started = time.perf_counter()
        at.run()
        rerun.append(time.perf_counter() - started)
    return {"renders": renders, "charts": charts, "median_s": statistics.median(fresh),
            "min_s": min(fresh), "rerun_median_s": statistics.median(rerun), "rerun_min_s": min(rerun)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--moves", type=int, default=30, help="timed slider moves")
    ap.add_argument("--renders", type=int, default=10, help="timed Latent page renders")
    ap.add_argument("--points", type=int, default=10_000, help="test images (all cached, at most 10,000)")
    ap.add_argument("--keep", action="store_true", help="keep the temporary folder")
    ap.add_argument("--folder", type=Path, help="work in this folder (kept; a finished setup "
                                                "there is reused)")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    args = ap.parse_args(argv)

    folder = args.folder or Path(tempfile.mkdtemp(prefix="aelab-explore-bench-"))
    folder.mkdir(parents=True, exist_ok=True)
    keep = args.keep or args.folder is not None
    try:
        run_dir = setup(folder, args.points)
        from aelab.metrics.results import get_caches

        cached = len(get_caches(run_dir)["index"])
        traversal = time_traversal(run_dir, args.moves)
        component = time_component(args.renders)
        latent = time_latent(args.renders)
    finally:
        if keep:
            print(f"kept {folder}")
        else:
            shutil.rmtree(folder, ignore_errors=True)

    result = {"run": run_dir.name, "cached_points": cached, "traversal": traversal,
              "traversal_component": component, "latent": latent,
              "targets_s": TARGETS}
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    rows = [("traversal slider move, server-decoded", traversal["median_s"], traversal["min_s"],
             TARGETS["traversal_move_s"]),
            ("traversal page rerun (sends the decoder)", component["median_s"], component["min_s"],
             TARGETS["latent_render_s"]),
            (f"Latent page, new session ({cached} points)", latent["median_s"], latent["min_s"],
             TARGETS["latent_render_s"]),
            (f"Latent page, rerun ({cached} points)", latent["rerun_median_s"], latent["rerun_min_s"],
             TARGETS["latent_render_s"])]
    print(f"\n{'':42} {'median':>9} {'min':>9} {'target':>9} {'median/target':>14}")
    for name, median, low, target in rows:
        print(f"{name:42} {median * 1000:7.1f}ms {low * 1000:7.1f}ms {target * 1000:7.0f}ms "
              f"{median / target:13.2f}x")
    print(f"({traversal['moves']} slider moves of {traversal['slider']}, decoded on the server as for a "
          f"run the browser cannot decode; in the browser a move costs the server nothing. "
          f"{component['reruns']} Traversal reruns, {component['html_bytes'] / 1e3:.0f} kB of component "
          f"HTML each; {latent['renders']} renders, {latent['charts']} charts each)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
