"""Can the beta-VAE and FactorVAE scores be trusted? aelab's metrics (drawn from one encoded
pool, ``aelab.metrics.disentanglement``) over several seeds against a direct implementation of
disentanglement_lib's definitions at its full sizes (``tests/dlib_reference.py``: every
observation drawn afresh, 10,000 + 5,000 points of 64 pairs; 10,000 + 5,000 votes of 64), on
the reference encoders and on shapes runs, and the wall time of scoring each run.

For a run the reference needs about three million encoded sprites, so it looks codes up in a
table of the whole grid (737,280 sprites rendered and encoded once, a few minutes); codes are
a deterministic function of the factors, so that is the same representation.

    python bench/metric_agreement.py                          # reference encoders + shipped shapes runs
    python bench/metric_agreement.py --runs checkpoints/demo-betavae-shapes --seeds 5

Prints one Markdown table: per encoder or run and metric, aelab's mean and range over the
seeds, disentanglement_lib's score and the difference; then the time of ``score_run``.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]
import dlib_reference as ref  # noqa: E402

from aelab.data import shapes  # noqa: E402
from aelab.metrics import disentanglement as D  # noqa: E402
from aelab.runs.folder import load_model, read_config  # noqa: E402


def grid_table(represent, chunk: int = 20_000) -> np.ndarray:
    """Codes of every factor row of the grid, in ``shapes.index_of`` order."""
    return np.concatenate([represent(shapes.factors_of(np.arange(s, min(s + chunk, shapes.N_COMBINATIONS))))
                           for s in range(0, shapes.N_COMBINATIONS, chunk)])


def ours(represent, seed: int) -> tuple[float, float]:
    """aelab's two scores exactly as ``score`` computes them for ``seed``."""
    rngs = np.random.default_rng(seed).spawn(5)
    pool = shapes.sample_factors(D.POOL, rngs[4])
    codes = represent(pool)
    return D.beta_vae_metric(pool, codes, rngs[2]), D.factor_vae_metric(pool, codes, rngs[3])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", nargs="*", default=None,
                        help="shapes run folders (default: every shapes run in checkpoints/)")
    parser.add_argument("--seeds", type=int, default=5)
    args = parser.parse_args()
    runs = args.runs if args.runs is not None else [
        str(p) for p in sorted((ROOT / "checkpoints").iterdir())
        if (p / "config.json").is_file() and D.scorable(read_config(p))]
    encoders = {name: D.reference_encoder(name) for name in D.REFERENCE_ENCODERS}
    timings = {}
    for run in runs:
        t = time.perf_counter()
        D.score_run(run)
        timings[Path(run).name] = time.perf_counter() - t
        represent = D.model_encoder(load_model(run))
        t = time.perf_counter()
        table = grid_table(represent)
        print(f"{Path(run).name}: grid of {len(table)} codes in {time.perf_counter() - t:.0f} s",
              flush=True)
        encoders[Path(run).name] = lambda f, table=table: table[shapes.index_of(f)]
    print("\n| encoder | metric | aelab mean | aelab range | disentanglement_lib | difference |")
    print("|---|---|---|---|---|---|")
    for name, represent in encoders.items():
        scores = np.array([ours(represent, seed) for seed in range(args.seeds)])
        rs = np.random.RandomState(0)
        theirs = (ref.beta_vae(represent, rs), ref.factor_vae(represent, rs))
        for j, metric in enumerate(("beta_vae", "factor_vae")):
            print(f"| {name} | {metric} | {scores[:, j].mean():.3f} | {np.ptp(scores[:, j]):.3f} "
                  f"| {theirs[j]:.3f} | {scores[:, j].mean() - theirs[j]:+.3f} |", flush=True)
    for name, seconds in timings.items():
        print(f"\nscore_run({name}): {seconds:.1f} s (all six metrics, rendering included)")


if __name__ == "__main__":
    main()
