"""Quality with bf16: each variant's default run on a dataset trained in fp32 and in bf16
(same seed, same step budget), and the held-out loss of each, scored in float32 on the test
split: the negative ELBO per image for the VAE family, the summed Bernoulli reconstruction
loss per image otherwise. Prints the two and their relative gap (the issue asks within 1%).
With ``--seeds 0,1,2`` each precision is trained once per seed and the table gives the means,
the gap of the means and the seed spread of fp32 (the standard deviation over seeds, relative
to the mean): a gap smaller than that spread is within seed noise.

    python bench/precision_quality.py                              # mnist5k, every variant
    python bench/precision_quality.py --variants ae,sparse --seeds 0,1,2
    python bench/precision_quality.py --dataset digits --variants ae,vae --json out.json

Variants that need known generative factors are skipped on datasets without them.
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from aelab.errors import AelabError  # noqa: E402
from aelab.metrics.evaluate import evaluate_run  # noqa: E402
from aelab.models import list_variants  # noqa: E402
from aelab.runs.refs import RunRef  # noqa: E402
from aelab.runs.train import train_run  # noqa: E402
from aelab.training.setup import prepare_run, validate_run  # noqa: E402


def held_out_loss(scores: dict) -> float:
    """The test loss a run's evaluation reports: -ELBO when it has one, else the BCE sum."""
    return -scores["elbo"] if scores.get("elbo") is not None else scores["recon_bce"]


def measure(variant: str, dataset: str, precision: str, runs_dir: Path, seed: int | None = None) -> float | str:
    """The held-out loss of a default run in ``precision`` (and ``seed``, else the default
    one), or why it could not train."""
    params = {"caches": False, "precision": precision, **({} if seed is None else {"seed": seed})}
    try:
        validate_run(variant, dataset, train_params=params)
    except AelabError as exc:
        return f"skipped: {exc}"
    run_dir = prepare_run(variant, dataset, train_params=params, runs_dir=runs_dir)
    status = train_run(run_dir)
    if status["state"] != "done":
        return f"training ended {status['state']}"
    return held_out_loss(evaluate_run(RunRef.unchecked(run_dir)))


def mean_sd(values: list[float]) -> str:
    """The mean of ``values``, with their standard deviation when there are several."""
    return f"{np.mean(values):.2f}" + (f" +- {np.std(values, ddof=1):.2f}" if len(values) > 1 else "")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", default="mnist5k")
    parser.add_argument("--variants", default="", help="comma-separated (default: every variant)")
    parser.add_argument("--json", default="")
    parser.add_argument("--seeds", default="", help="comma-separated seeds (default: the default seed once)")
    args = parser.parse_args(argv)
    variants = args.variants.split(",") if args.variants else list_variants()
    seeds = [int(s) for s in args.seeds.split(",")] if args.seeds else [None]
    rows = []
    print("| variant | fp32 loss | bf16 loss | gap | fp32 seed spread |\n|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as runs_dir:
        for variant in variants:
            fp32 = [measure(variant, args.dataset, "fp32", Path(runs_dir), seed) for seed in seeds[:1]]
            if isinstance(fp32[0], str):
                print(f"| {variant} | {fp32[0]} | | | |", flush=True)
                continue
            fp32 += [measure(variant, args.dataset, "fp32", Path(runs_dir), seed) for seed in seeds[1:]]
            bf16 = [measure(variant, args.dataset, "bf16", Path(runs_dir), seed) for seed in seeds]
            a, b = np.mean(fp32), np.mean(bf16)
            gap = (b - a) / abs(a)
            spread = float(np.std(fp32, ddof=1) / abs(a)) if len(seeds) > 1 else None
            rows.append({"variant": variant, "dataset": args.dataset, "seeds": seeds, "fp32": fp32,
                         "bf16": bf16, "gap": gap, "fp32_seed_spread": spread})
            print(f"| {variant} | {mean_sd(fp32)} | {mean_sd(bf16)} | {100 * gap:+.2f}% | "
                  f"{'' if spread is None else f'{100 * spread:.2f}%'} |", flush=True)
    print(f"\n{args.dataset}; {platform.processor() or platform.machine()}")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except AelabError as exc:
        sys.exit(f"error: {exc}")
