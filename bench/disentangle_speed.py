"""How fast the classroom preset disentangles: MIG and DCI disentanglement against
training minutes for ``--preset class-disentangle`` (docs/disentanglement.md, "The classroom preset").

For each seed, the preset is trained exactly as ``python -m aelab train --preset
class-disentangle --seed S --device cpu`` would (same settings, same trainer), and at
every ``--every`` seconds of training time the model is scored on one fixed uniform sample
of ``--sample`` sprites: MIG (Chen et al. 2018) and DCI disentanglement (Eastwood &
Williams 2018) with ``aelab.metrics.disentanglement``'s estimators. What is scored is the model a run
stopped at that moment would save (``stopped_copy``: the recipe prunes collapsed latents
when training ends), so the row at minute m is what ``--param max_minutes=m`` would give,
e.g. on a slower machine. Scoring time is not training time (the trainer's clock stops
while its progress callback runs). The machine's speed is put beside the results: a 1024x1024
float32 matmul's GFLOP/s measured in the same run, and the load average, since a shared machine trains slower.

    python bench/disentangle_speed.py                       # seeds 1-3, 5 minutes each
    python bench/disentangle_speed.py --seeds 1 --minutes 2 --json out.json
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repo's aelab, not installed
from aelab.data import shapes
from aelab.metrics import disentanglement as disentangle  # noqa: E402
from aelab.runs.train import trainer_for  # noqa: E402
from aelab.training.presets import apply_preset  # noqa: E402
from aelab.training.setup import prepare_run  # noqa: E402


def matmul_gflops(repeats: int = 20) -> float:
    """GFLOP/s of a 1024x1024 float32 matmul on this machine right now (median of repeats)."""
    a, b = torch.randn(1024, 1024), torch.randn(1024, 1024)
    a @ b
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - start)
    return 2 * 1024 ** 3 / float(np.median(times)) / 1e9


def scorer(sample: int):
    """A function scoring a model's (MIG, DCI-D) on one fixed uniform sample of sprites."""
    factors = shapes.sample_factors(sample, np.random.default_rng(12345))

    def score(model) -> tuple[float, float]:
        codes = disentangle.model_encoder(model.stopped_copy())(factors)
        mig = disentangle.mig(codes, factors)[0]
        dci = disentangle.dci(codes, factors, np.random.default_rng(0))["dci_disentanglement"]
        return mig, dci
    return score


def run_seed(seed: int, minutes: float, every: float, score, folder: Path) -> list[dict]:
    """Train the preset with ``seed`` for ``minutes``; (minute, MIG, DCI-D) every ``every`` s."""
    variant, dataset, model, train = apply_preset("class-disentangle", None, None, {},
                                                  {"seed": seed, "device": "cpu",
                                                   "max_minutes": minutes})
    run_dir = prepare_run(variant, dataset, model, train, out=folder / f"seed{seed}")
    rows, next_at = [], every

    def on_progress(status):
        nonlocal next_at
        seconds = status.get("train_seconds") or 0.0
        final = status.get("state") == "done"
        if (seconds >= next_at or final) and not (rows and rows[-1]["step"] == status["step"]):
            mig, dci = score(trainer.model)
            rows.append({"seed": seed, "minutes": round(seconds / 60, 2), "step": status["step"],
                         "mig": mig, "dci_d": dci})
            print(f"seed {seed}  {seconds / 60:5.2f} min  step {status['step']:6d}  "
                  f"MIG {mig:.3f}  DCI-D {dci:.3f}", flush=True)
            while next_at <= seconds:
                next_at += every

    trainer = trainer_for(run_dir, progress=on_progress)  # with the preset's live MIG
    started = time.monotonic()
    status = trainer.run()
    rows[-1]["wall_seconds"] = time.monotonic() - started
    assert status["state"] == "done", status
    return rows


def table(rows: list[dict]) -> str:
    """A markdown table: one line per scoring minute, MIG and DCI-D per seed and their mean."""
    seeds = sorted({r["seed"] for r in rows})
    by_seed = {s: [r for r in rows if r["seed"] == s] for s in seeds}
    length = min(len(v) for v in by_seed.values())
    head = ("| minutes | " + " | ".join(f"MIG s{s}" for s in seeds) + " | MIG mean | "
            + " | ".join(f"DCI-D s{s}" for s in seeds) + " | DCI-D mean |")
    lines = [head, "|" + "---|" * (2 * len(seeds) + 3)]
    for i in range(length):
        at = [by_seed[s][i] for s in seeds]
        migs, dcis = [r["mig"] for r in at], [r["dci_d"] for r in at]
        lines.append(f"| {np.mean([r['minutes'] for r in at]):.1f} | "
                     + " | ".join(f"{v:.3f}" for v in migs) + f" | **{np.mean(migs):.3f}** | "
                     + " | ".join(f"{v:.3f}" for v in dcis) + f" | **{np.mean(dcis):.3f}** |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--minutes", type=float, default=5.0, help="training minutes per seed")
    parser.add_argument("--every", type=float, default=60.0, help="seconds between scores")
    parser.add_argument("--sample", type=int, default=5000, help="sprites scored")
    parser.add_argument("--json", help="also write the rows and machine figures here")
    args = parser.parse_args(argv)
    threads = torch.get_num_threads()
    if os.environ.get("AELAB_THREADS"):
        threads = int(os.environ["AELAB_THREADS"])
        torch.set_num_threads(threads)
    gflops, load = matmul_gflops(), os.getloadavg()[0]
    print(f"matmul 1024x1024 float32: {gflops:.1f} GFLOP/s on {threads} thread(s); "
          f"load average {load:.1f} on {os.cpu_count()} cores", flush=True)
    score = scorer(args.sample)
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for seed in args.seeds:
            rows += run_seed(seed, args.minutes, args.every, score, Path(folder))
    gflops_after, load_after = matmul_gflops(), os.getloadavg()[0]
    print(f"\nmatmul after: {gflops_after:.1f} GFLOP/s; load average {load_after:.1f}\n")
    print(table(rows))
    if args.json:
        Path(args.json).write_text(json.dumps(
            {"rows": rows, "threads": threads, "matmul_gflops": [gflops, gflops_after],
             "load_average": [load, load_after]}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
