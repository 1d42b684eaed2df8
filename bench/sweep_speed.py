"""Trials per minute of one sweep on the local supervisor and on a local Ray cluster.

Runs the same ``python -m aelab sweep`` command twice, in fresh runs folders,
as a user would: once with the local backend (``$AELAB_MAX_RUNS`` trials at a
time, each a worker process) and once with ``--ray`` (a local Ray cluster
with as many CPUs, one per trial). Wall time includes everything the user
waits for: starting the supervisor or the Ray cluster, the workers' imports,
training and writing the run folders. One thread per trial (``AELAB_THREADS=1``). It also
prints the seconds each trial spent in the trainer's loop (``train_seconds``), the
rest being start-up and bookkeeping.

    python bench/sweep_speed.py                      # 8 trials: ae on digits, 4 sizes x 2 seeds
    python bench/sweep_speed.py --parallel 2 --epochs 10
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def sweep(backend: str, runs: Path, args) -> tuple[float, dict]:
    """Run the sweep with ``backend`` (local or ray); wall seconds and its --json result."""
    command = [sys.executable, "-m", "aelab", "sweep", "--variant", "ae", "--dataset", "digits",
               "--epochs", str(args.epochs), "--grid", f"latent_dim={args.sizes}",
               "--seeds", str(args.seeds), "--param", "hidden=64", "--param", "caches=false",
               "--runs-dir", str(runs), "--json", *(["--ray"] if backend == "ray" else [])]
    env = {**os.environ, "AELAB_THREADS": "1", "AELAB_MAX_RUNS": str(args.parallel),
           "RAY_USAGE_STATS_ENABLED": "0"}
    started = time.monotonic()
    done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=ROOT)
    seconds = time.monotonic() - started
    if done.returncode != 0:
        raise SystemExit(f"the {backend} sweep failed: {done.stderr.strip().splitlines()[-1:]}")
    return seconds, json.loads(done.stdout)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="2,4,8,16", help="latent sizes of the grid")
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--parallel", type=int, default=2, help="trials at a time (both backends)")
    args = parser.parse_args()
    load = os.getloadavg()[0]
    results = {}
    with tempfile.TemporaryDirectory(prefix="aelab-sweep-speed-") as tmp:
        for backend in ("local", "ray"):
            runs = Path(tmp) / backend
            seconds, result = sweep(backend, runs, args)
            trials = len(result["trials"])
            assert all(t["state"] == "done" for t in result["trials"])
            training = sum(json.loads((runs / t["id"] / "status.json").read_text())["train_seconds"]
                           for t in result["trials"])
            results[backend] = {"trials": trials, "seconds": seconds,
                                "trials_per_minute": 60 * trials / seconds}
            print(f"{backend:<6} {trials} trials in {seconds:6.1f} s: "
                  f"{results[backend]['trials_per_minute']:.2f} trials/minute; inside the trainer's "
                  f"loop {training / trials:.1f} s per trial", flush=True)
            shutil.rmtree(runs, ignore_errors=True)
    ratio = results["ray"]["trials_per_minute"] / results["local"]["trials_per_minute"]
    print(f"ray / local: {ratio:.2f}  ({args.parallel} trials at a time, {args.epochs} epochs each; "
          f"1-minute load average {load:.1f} -> {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
