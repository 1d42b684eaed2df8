"""The beta trade-off of survey section 4.3, measured on the ``shapes`` sprites: a sweep plus a plot.

Two studies of ``betavae`` (``aelab.runs.study``; every trial an ordinary run folder, each
trained for the same number of steps, ``--epochs``):
beta over ``--betas`` (beta = 1 is the VAE), and, unless ``--capacity 0``, the
controlled-capacity form (Burgess et al.: gamma |KL - C|, C raised to
``--capacity`` nats). Every finished trial is scored with the disentanglement
metrics and the ``evaluate`` reconstruction error (both cached in its folder),
then a table (mean ± spread over seeds) and two plots are written.

    python bench/beta_study.py                                  # the documented CPU setting
    python bench/beta_study.py --epochs 30 --device cuda --out bench/out/beta_study_gpu
    python bench/beta_study.py --ray-address HOST:PORT         # the trials on a Ray cluster

Running it again picks the studies up (finished trials are kept, scores are cached).
Outputs: <out>/table.md, <out>/results.json, <out>/tradeoff.png (reconstruction
against each metric), <out>/beta.png (each metric against beta); the runs stay
in <out>/runs (open them in the app with AELAB_RUNS=<out>/runs).
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from aelab.metrics.results import get_disentanglement, get_eval  # noqa: E402
from aelab.runs.execution import get_backend  # noqa: E402
from aelab.runs.folder import read_status  # noqa: E402
from aelab.runs.study import Study, StudySpec, summarise  # noqa: E402
from aelab.runs.study_results import summarise_metric, trial_rows  # noqa: E402
from aelab.training.presets import get_preset  # noqa: E402

METRICS = ("beta_vae", "factor_vae", "mig", "dci_disentanglement", "dci_completeness",
           "dci_informativeness")
COLUMNS = ("recon_bce", "kl", *METRICS)
DOCS = Path(__file__).resolve().parents[1] / "docs"


def specs(args) -> list[StudySpec]:
    """The beta study and, with ``--capacity`` > 0, the controlled-capacity study; with
    ``--preset``, the beta study of that preset's settings (``--max-minutes`` per trial)."""
    if args.preset:
        preset = get_preset(args.preset)
        # beta is the grid; a preset's beta schedule would end every trial at the same beta
        params = {k: str(v) for k, v in {**preset.model, **preset.train}.items()
                  if k != "beta" and not k.startswith("beta_")}
        params.update({"device": args.device, "caches": "false"})
        # equal steps for every trial (a time budget gives fewer steps on a busy machine),
        # unless --max-minutes asks for a time budget
        params.update({"epochs": str(args.epochs), "max_minutes": str(args.max_minutes)})
        return [StudySpec(preset.variant, preset.dataset, {"beta": args.betas.split(",")},
                          args.seeds, params)]
    common = {"latent_dim": str(args.latent_dim), "hidden": args.hidden, "arch": args.arch,
              "epochs": str(args.epochs), "batch_size": str(args.batch_size), "lr": str(args.lr),
              "device": args.device, "caches": "false"}
    out = [StudySpec("betavae", args.dataset, {"beta": args.betas.split(",")}, args.seeds, common)]
    if args.capacity > 0:
        out.append(StudySpec("betavae", args.dataset, {"capacity_max": [f"{args.capacity:g}"]},
                             args.seeds, {**common, "capacity_steps": str(args.capacity_steps),
                                          "gamma": str(args.gamma)}))
    return out


def scored_rows(runs: Path, spec: StudySpec) -> list[dict]:
    """The study's trials with reconstruction and disentanglement scores in their metrics."""
    rows = trial_rows(runs, spec.id)
    for row in rows:
        if row["state"] == "done":
            run_dir = runs / row["id"]
            row["metrics"].update({k: v for k, v in {**get_eval(run_dir),
                                                     **get_disentanglement(run_dir)}.items()
                                   if isinstance(v, (int, float))})
            print(f"{config_name(row):<12} seed {row['seed']}: BCE {row['metrics']['recon_bce']:.1f}"
                  f"  MIG {row['metrics']['mig']:.3f}  FactorVAE {row['metrics']['factor_vae']:.3f}",
                  flush=True)
    return rows


def config_name(row: dict) -> str:
    (name, value), = row["point"].items()
    return f"beta={value:g}" if name == "beta" else f"C<={value:g}"


def markdown(rows: list[dict]) -> str:
    lines = ["| config | seeds | " + " | ".join(COLUMNS) + " |", "|---" * (len(COLUMNS) + 2) + "|"]
    for name in dict.fromkeys(config_name(r) for r in rows if r["state"] == "done"):
        group = [r["metrics"] for r in rows if r["state"] == "done" and config_name(r) == name]
        cells = [f"{statistics.mean(g[k] for g in group):.3g} ± "
                 f"{statistics.pstdev([g[k] for g in group]):.2g}" for k in COLUMNS]
        lines.append(f"| {name} | {len(group)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot(rows: list[dict], beta_rows: list[dict], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = ("mig", "factor_vae", "beta_vae", "dci_disentanglement")
    fig, axes = plt.subplots(1, 4, figsize=(16, 3.6))
    done = [r for r in rows if r["state"] == "done"]
    for ax, metric in zip(axes, shown):
        for name in dict.fromkeys(config_name(r) for r in done):
            group = [r["metrics"] for r in done if config_name(r) == name]
            ax.scatter([g["recon_bce"] for g in group], [g[metric] for g in group], label=name)
        ax.set_xlabel("reconstruction BCE (nats / image)")
        ax.set_ylabel(metric)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "tradeoff.png", dpi=90)
    fig, axes = plt.subplots(1, 5, figsize=(20, 3.6))
    for ax, metric in zip(axes, ("recon_bce", *shown)):
        summary = summarise_metric(beta_rows, metric, "beta")  # mean and spread over seeds
        xs = [s["x"] for s in summary]
        ax.errorbar(xs, [s["mean"] for s in summary], yerr=[s["std"] for s in summary],
                    marker="o", capsize=3)
        ax.scatter([x for s in summary for x in [s["x"]] * s["n"]],
                   [v for s in summary for v in s["values"]], s=10, alpha=0.5)
        ax.set_xscale("log", base=2)
        ax.set_xlabel("beta")
        ax.set_ylabel(metric)
    fig.tight_layout()
    fig.savefig(out / "beta.png", dpi=90)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--betas", default="1,4", help="beta values of the sweep (1 = the VAE)")
    parser.add_argument("--epochs", type=int, default=6,
                        help="epochs of the training split (of the pool for shapes32) per trial")
    parser.add_argument("--dataset", default="shapes", help="shapes or shapes32")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--latent-dim", type=int, default=8)
    parser.add_argument("--hidden", default="512,128")
    parser.add_argument("--arch", default="mlp")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--capacity", type=float, default=20.0, help="0 skips the capacity study")
    parser.add_argument("--capacity-steps", type=int, default=1500)
    parser.add_argument("--gamma", type=float, default=100.0)
    parser.add_argument("--preset", help="the beta study of a preset's recipe (e.g. "
                        "class-disentangle); the model flags above are then ignored")
    parser.add_argument("--max-minutes", type=float, default=0.0,
                        help="with --preset: training minutes per trial instead of --epochs")
    parser.add_argument("--docs", action="store_true",
                        help="also write docs/beta_study.json and docs/beta_study.png")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--ray", action="store_true", help="trials on a local Ray cluster")
    parser.add_argument("--ray-address", help="trials on the Ray cluster at HOST:PORT")
    parser.add_argument("--out", default="bench/out/beta_study")
    args = parser.parse_args()
    out = Path(args.out)
    runs = out / "runs"
    started = time.monotonic()
    backend = get_backend(runs, ray=args.ray, ray_address=args.ray_address)
    studies = [Study(spec, runs, backend) for spec in specs(args)]
    try:
        for study in studies:
            study.start()
        for study in studies:
            study.wait(on_change=lambda rows, s=study: print(f"study {s.spec.id}: {summarise(rows)}",
                                                             flush=True))
    finally:
        getattr(backend, "close", lambda: None)()
    per_study = [scored_rows(runs, study.spec) for study in studies]
    rows = [r for group in per_study for r in group]
    setting = (f"preset {args.preset} ({specs(args)[0].variant} on {specs(args)[0].dataset}), "
               f"beta in {args.betas}, " + (f"{args.max_minutes} minutes" if args.max_minutes
                                         else f"{args.epochs} epochs") + " per trial, "
               f"{args.seeds} seeds, device {args.device}; {time.monotonic() - started:.0f} s in all"
               if args.preset else f"betavae, {args.epochs} epochs of {args.dataset}, {args.arch} "
               f"{args.hidden or '(default widths)'}, latent {args.latent_dim}, batch {args.batch_size}, lr {args.lr}, "
               f"{args.seeds} seeds, device {args.device}; {time.monotonic() - started:.0f} s in all")
    text = markdown(rows) + f"\n\nSetting: {setting}.\n"
    (out / "table.md").write_text(text)
    (out / "results.json").write_text(json.dumps(
        {"setting": vars(args), "studies": [s.spec.id for s in studies], "rows": rows}, indent=1))
    plot(rows, per_study[0], out)
    if args.docs:  # what the Disentanglement page and docs/disentanglement.md show
        per = {metric: summarise_metric(per_study[0], metric, "beta") for metric in COLUMNS}
        steps = {}  # training steps each trial got (a time budget gives fewer on a busy machine)
        for row in per_study[0]:
            if row["state"] == "done":
                steps.setdefault(float(row["point"]["beta"]), []).append(
                    read_status(runs / row["id"])["step"])
        summary = [{"beta": float(point["x"]), "seeds": point["n"],
                    "steps": sorted(steps[float(point["x"])]),
                    **{f"{m}_{stat}": per[m][i][stat] for m in COLUMNS for stat in ("mean", "std")}}
                   for i, point in enumerate(per["mig"])]  # each list is sorted by beta
        (DOCS / "beta_study.json").write_text(json.dumps({"setting": setting, "summary": summary},
                                                         indent=1))
        (DOCS / "beta_study.png").write_bytes((out / "beta.png").read_bytes())
    print(text)
    return 0 if all(r["state"] == "done" for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
