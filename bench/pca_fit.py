"""The evaluation's PCA fit on a dataset's training images: numpy's full eigendecomposition of
the covariance (the baseline) against ``aelab.metrics.pca.fit`` (Lanczos for a few components
of many pixels), in the same process, with the largest difference of the components.

    python bench/pca_fit.py                          # shapes (64x64 sprites), 6 components
    python bench/pca_fit.py --dataset mnist5k --components 16

Prints the seconds of each (best of ``--repeats``) and their ratio.
"""
from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from aelab.data.datasets import load_dataset  # noqa: E402
from aelab.metrics import pca  # noqa: E402


def best_time(fit, repeats: int):
    """The fitted PCA and the fastest of ``repeats`` calls of ``fit``, in seconds."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        model = fit()
        times.append(time.perf_counter() - start)
    return model, min(times)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", default="shapes")
    parser.add_argument("--components", type=int, default=6)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args(argv)
    x = load_dataset(args.dataset).x_train
    flat = x.reshape(len(x), -1)
    lanczos_min = pca.LANCZOS_MIN_DIM
    pca.LANCZOS_MIN_DIM = 10**9  # the baseline: always the full eigh
    full, full_s = best_time(lambda: pca.fit(flat, args.components), args.repeats)
    pca.LANCZOS_MIN_DIM = lanczos_min
    ours, ours_s = best_time(lambda: pca.fit(flat, args.components), args.repeats)
    gap = float(np.abs(ours.components_ - full.components_).max())
    print(f"{args.dataset}: {flat.shape[0]} images of {flat.shape[1]} pixels, {args.components} components")
    print(f"full eigh {full_s:.1f} s, aelab {ours_s:.1f} s: {full_s / ours_s:.1f}x; "
          f"largest component difference {gap:.1e}")
    print(platform.processor() or platform.machine())
    return 0


if __name__ == "__main__":
    sys.exit(main())
