"""What recording the probe set (``probes.safetensors``) costs a training run.

Trains the same run (default: a default ``vae`` on ``digits``, the default step budget, on
CPU) with and without the trainer's ``ProbeRecorder``, alternating, and reports each run's
wall time, the time spent inside the recorder (encoding the probes and writing the file),
the number of frames and the file's size. The ratio of the medians is the overhead; the
recorder's own time over the run's time is the same figure without the noise of a shared
machine.

    python bench/probe_overhead.py                    # 1 run each
    python bench/probe_overhead.py --repeats 3 --variant ae --epochs 40 --json
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repo's aelab, not an installed one

import aelab.runs.probes as probes
import aelab.training.trainer as trainer
from aelab.runs.train import train_run
from aelab.training.setup import prepare_run


def one_run(root: Path, with_probes: bool, args) -> dict:
    spent = [0.0]
    record = probes.ProbeRecorder.record

    def timed(self, *a, **k):
        start = time.perf_counter()
        record(self, *a, **k)
        spent[0] += time.perf_counter() - start

    original = trainer.ProbeRecorder
    trainer.ProbeRecorder = original if with_probes else (lambda *a, **k: None)
    probes.ProbeRecorder.record = timed
    try:
        run = prepare_run(args.variant, args.dataset, {},
                          {"epochs": args.epochs, "device": args.device, "caches": False},
                          runs_dir=root)
        start = time.perf_counter()
        status = train_run(run)
        wall = time.perf_counter() - start
    finally:
        trainer.ProbeRecorder, probes.ProbeRecorder.record = original, record
    file = run / probes.PROBES
    frames = len(probes.read_probes(run)["steps"]) if file.exists() else 0
    return {"probes": with_probes, "wall_s": round(wall, 2), "train_s": round(status["train_seconds"], 2),
            "recorder_s": round(spent[0], 3), "frames": frames,
            "file_bytes": file.stat().st_size if file.exists() else 0, "steps": status["step"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variant", default="vae")
    parser.add_argument("--dataset", default="digits")
    parser.add_argument("--epochs", type=int, default=0, help="0: the default step budget")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as root:
        for _ in range(args.repeats):
            for with_probes in (False, True):
                rows.append(one_run(Path(root), with_probes, args))
                if not args.json:
                    print(rows[-1], flush=True)
    median = {flag: statistics.median(r["wall_s"] for r in rows if r["probes"] == flag)
              for flag in (False, True)}
    recorded = [r for r in rows if r["probes"]]
    summary = {"runs": rows, "wall_ratio": round(median[True] / median[False], 4),
               "recorder_share": round(statistics.median(r["recorder_s"] / r["wall_s"] for r in recorded), 4)}
    print(json.dumps(summary, indent=1) if args.json else
          f"with/without probes (median wall time): {summary['wall_ratio']:.3f}; time in the recorder: "
          f"{100 * summary['recorder_share']:.2f}% of the run")


if __name__ == "__main__":
    main()
