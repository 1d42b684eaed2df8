"""Do the defaults teach the right lesson? Each variant trained with nothing set but the
variant and the dataset (as ``python -m aelab train --variant V --dataset D`` and the Train
page start a run: ``epochs = 0``, the step budget of ``aelab.training.budget``), then scored on
the test split.

An autoencoder (ae, denoising, contractive) should reconstruct better than PCA at the same
code size: the table gives its test MSE, PCA's, and their ratio (below 1 wins). A VAE-family
variant (the registry's ``kl_per_dim`` ones) should keep its code: the table gives its active
latents (posterior means that vary over the test images) of its latent size; at least half
pass. A variant that cannot train on the dataset (one that needs known generative factors) is
listed as skipped, with the reason.

    python bench/defaults.py                                   # digits and mnist5k
    python bench/defaults.py --dataset mnist5k --json docs/defaults.json
    python bench/defaults.py --dataset digits --variants ae,contractive

docs/defaults.md has the figures. Exit status 1 when a default fails its lesson.
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from aelab.errors import AelabError  # noqa: E402
from aelab.metrics.evaluate import evaluate_run  # noqa: E402
from aelab.models import get_variant, list_variants  # noqa: E402
from aelab.runs.refs import RunRef  # noqa: E402
from aelab.runs.train import train_run  # noqa: E402
from aelab.training.setup import prepare_run, validate_run  # noqa: E402

AUTOENCODERS = ("ae", "denoising", "contractive")  # each must beat PCA at its code size
DATASETS = ("digits", "mnist5k")


def vae_family() -> list[str]:
    """The registry's variants with a Gaussian posterior per code dimension (they can collapse)."""
    return [v for v in list_variants() if get_variant(v).kl_per_dim]


def measure(variant: str, dataset: str, runs_dir: Path) -> dict:
    """Train a default run of ``variant`` on ``dataset`` in ``runs_dir`` and score it."""
    try:
        _, train_config = validate_run(variant, dataset, train_params={"caches": False})
    except AelabError as exc:  # e.g. a variant that needs known factors on a dataset without
        return {"variant": variant, "dataset": dataset, "skipped": str(exc)}
    run_dir = prepare_run(variant, dataset, train_params={"caches": False}, runs_dir=runs_dir)
    start = time.perf_counter()
    status = train_run(run_dir)
    seconds = time.perf_counter() - start
    if status["state"] != "done":
        return {"variant": variant, "dataset": dataset, "skipped": f"training ended {status['state']}"}
    scores = evaluate_run(RunRef.unchecked(run_dir))
    row = {"variant": variant, "dataset": dataset, "epochs": train_config.epochs,
           "steps": status.get("step"), "train_seconds": round(seconds, 1),
           "latent_dim": scores["latent_dim"], "recon_mse": scores["recon_mse"],
           "pca_recon_mse": scores["pca_recon_mse"],
           "ratio": scores["recon_mse"] / scores["pca_recon_mse"],
           "active_units": scores.get("active_units")}
    if variant in AUTOENCODERS:
        row["passes"] = row["ratio"] < 1.0
    elif row["active_units"] is not None:
        row["passes"] = row["active_units"] >= row["latent_dim"] / 2
    return row


def table(rows: list[dict]) -> str:
    """A Markdown table of ``rows`` (one per variant and dataset)."""
    lines = ["| dataset | variant | epochs (steps) | train s | test MSE | PCA MSE | ratio | active latents | lesson |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        if "skipped" in r:
            lines.append(f"| {r['dataset']} | {r['variant']} | skipped: {r['skipped']} |||||||")
            continue
        active = "" if r["active_units"] is None else f"{r['active_units']}/{r['latent_dim']}"
        verdict = {True: "holds", False: "FAILS", None: ""}[r.get("passes")]
        lines.append(f"| {r['dataset']} | {r['variant']} | {r['epochs']} ({r['steps']}) | "
                     f"{r['train_seconds']:.0f} | {r['recon_mse']:.4f} | {r['pca_recon_mse']:.4f} | "
                     f"{r['ratio']:.2f} | {active} | {verdict} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", default=",".join(DATASETS),
                        help="comma-separated named datasets (default: digits,mnist5k)")
    parser.add_argument("--variants", default="",
                        help="comma-separated variants (default: ae, denoising, contractive and "
                             "every VAE-family variant of the registry)")
    parser.add_argument("--json", default="", help="also write the rows to this JSON file")
    args = parser.parse_args(argv)
    variants = args.variants.split(",") if args.variants else [*AUTOENCODERS, *vae_family()]
    for variant in variants:
        get_variant(variant)  # an unknown name: one sentence before anything trains
    rows = []
    with tempfile.TemporaryDirectory() as runs_dir:
        for dataset in args.dataset.split(","):
            for variant in variants:
                rows.append(measure(variant, dataset, Path(runs_dir)))
                print(table(rows[-1:]).splitlines()[-1], flush=True)
    print()
    print(table(rows))
    print(f"\n{platform.processor() or platform.machine()}, python {platform.python_version()}")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1) + "\n")
    return 1 if any(r.get("passes") is False for r in rows) else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except AelabError as exc:
        sys.exit(f"error: {exc}")
