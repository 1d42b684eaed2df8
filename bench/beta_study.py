"""The beta trade-off of survey section 4.3, measured on the ``shapes`` sprites.

Trains ``vae``, ``betavae`` (beta 4) and ``betavae`` with controlled capacity
(Burgess et al.: gamma |KL - C|, C raised to ``--capacity`` nats) for several
seeds each, scores every run with ``aelab.disentangle.score_run`` and the
reconstruction error of ``aelab.evaluate``, and writes a table (mean and spread
over seeds) and a plot of reconstruction error against each metric.

    python bench/beta_study.py                         # the documented CPU setting
    python bench/beta_study.py --epochs 30 --device cuda --out bench/out/beta_study_gpu

Outputs: <out>/table.md, <out>/results.json, <out>/tradeoff.png; the runs stay in
<out>/runs so any of them can be opened in the app (AELAB_RUNS=<out>/runs).
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from aelab.disentangle import score_run  # noqa: E402
from aelab.evaluate import evaluate_run  # noqa: E402
from aelab.train import prepare_run, train_run  # noqa: E402

METRICS = ("beta_vae", "factor_vae", "mig", "dci_disentanglement", "dci_completeness",
           "dci_informativeness")


def configs(args) -> dict[str, tuple[str, dict]]:
    common = {"latent_dim": args.latent_dim, "hidden": args.hidden, "arch": args.arch}
    return {
        "vae": ("vae", common),
        "betavae beta=4": ("betavae", {**common, "beta": 4.0}),
        f"betavae C<={args.capacity:g}": ("betavae", {**common, "capacity_max": args.capacity,
                                                       "capacity_steps": args.capacity_steps,
                                                       "gamma": args.gamma}),
    }


def run_one(name, variant, params, seed, args, runs: Path) -> dict:
    started = time.monotonic()
    run_dir = prepare_run(variant, "shapes", params,
                          {"epochs": args.epochs, "batch_size": args.batch_size, "lr": args.lr,
                           "seed": seed, "device": args.device, "caches": False}, runs_dir=runs)
    status = train_run(run_dir)
    if status["state"] != "done":
        raise RuntimeError(f"{name} seed {seed} ended {status['state']}: {status.get('error')}")
    trained = time.monotonic() - started
    scores = score_run(run_dir)
    quality = evaluate_run(run_dir)
    return {"config": name, "seed": seed, "run": run_dir.name, "train_seconds": trained,
            "total_seconds": time.monotonic() - started, "recon_bce": quality["recon_bce"],
            "recon_mse": quality["recon_mse"], "kl": quality.get("kl"),
            **{m: scores[m] for m in METRICS}}


def summarise(rows: list[dict]) -> list[dict]:
    table = []
    for name in dict.fromkeys(r["config"] for r in rows):
        group = [r for r in rows if r["config"] == name]
        entry = {"config": name, "seeds": len(group)}
        for key in ("recon_bce", "kl", *METRICS):
            values = [r[key] for r in group]
            entry[key] = (statistics.mean(values), statistics.pstdev(values))
        table.append(entry)
    return table


def markdown(table: list[dict]) -> str:
    keys = ("recon_bce", "kl", *METRICS)
    lines = ["| config | " + " | ".join(keys) + " |", "|---" * (len(keys) + 1) + "|"]
    for entry in table:
        cells = [f"{entry[k][0]:.3g} ± {entry[k][1]:.2g}" for k in keys]
        lines.append(f"| {entry['config']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 4, figsize=(16, 3.6))
    for ax, metric in zip(axes, ("mig", "factor_vae", "beta_vae", "dci_disentanglement")):
        for name in dict.fromkeys(r["config"] for r in rows):
            group = [r for r in rows if r["config"] == name]
            ax.scatter([r["recon_bce"] for r in group], [r[metric] for r in group], label=name)
        ax.set_xlabel("reconstruction BCE (nats / image)")
        ax.set_ylabel(metric)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=90)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--latent-dim", type=int, default=8)
    parser.add_argument("--hidden", default="512,128")
    parser.add_argument("--arch", default="mlp")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--capacity", type=float, default=20.0)
    parser.add_argument("--capacity-steps", type=int, default=1500)
    parser.add_argument("--gamma", type=float, default=100.0)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--out", default="bench/out/beta_study")
    args = parser.parse_args()
    out = Path(args.out)
    (out / "runs").mkdir(parents=True, exist_ok=True)
    rows, started = [], time.monotonic()
    for name, (variant, params) in configs(args).items():
        for seed in range(args.seeds):
            rows.append(run_one(name, variant, params, seed, args, out / "runs"))
            r = rows[-1]
            print(f"{name:<22} seed {seed}: BCE {r['recon_bce']:.1f}  MIG {r['mig']:.3f}  "
                  f"FactorVAE {r['factor_vae']:.3f}  ({r['total_seconds']:.0f} s)", flush=True)
    table = summarise(rows)
    setting = (f"{args.epochs} epochs of the 20,000-image shapes train split, {args.arch} "
               f"{args.hidden}, latent {args.latent_dim}, batch {args.batch_size}, lr {args.lr}, "
               f"{args.seeds} seeds, device {args.device}; {time.monotonic() - started:.0f} s in all")
    text = markdown(table) + f"\n\nSetting: {setting}.\n"
    (out / "table.md").write_text(text)
    (out / "results.json").write_text(json.dumps({"setting": vars(args), "rows": rows}, indent=1))
    plot(rows, out / "tradeoff.png")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
