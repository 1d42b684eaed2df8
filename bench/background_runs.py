"""Background runs: start-up latency, process overhead, and a queue stress test.

    python bench/background_runs.py                 # all three, default sizes
    python bench/background_runs.py --stress 40 --parallel 2 --json

1. latency: ``RunManager.submit`` to the first logged step (metrics.jsonl's first row),
   for a 1-epoch ``mnist5k`` ``ae`` run, and ``submit`` to ``done``;
2. overhead: the same run trained in-process with ``train_run`` (the baseline) against
   the background path; the difference is what the separate process costs (target < 3 s);
3. stress: N tiny ``digits`` runs submitted from two processes at once with a parallel
   limit; every run must end ``done`` exactly once (one worker, no repeated steps) and
   no supervisor or worker may be left behind.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from aelab.runs.folder import read_metrics  # noqa: E402
from aelab.runs.local import RunManager, supervisor_running  # noqa: E402
from aelab.runs.train import train_run  # noqa: E402
from aelab.training.setup import prepare_run  # noqa: E402

# log_every=1 so that the first step is visible in metrics.jsonl as soon as it is taken
RUN = ("ae", "mnist5k", {"latent_dim": 16}, {"epochs": 1, "caches": False, "seed": 0, "log_every": 1})


def latency_and_overhead(root: Path) -> dict:
    variant, dataset, model, train = RUN
    started = time.monotonic()
    run_dir = prepare_run(variant, dataset, model, train, runs_dir=root / "inprocess")
    train_run(run_dir)
    inprocess = time.monotonic() - started

    manager = RunManager(root / "background", max_parallel=1)
    started = time.monotonic()
    run_id = manager.submit(variant, dataset, model, train)
    submitted = time.monotonic() - started
    metrics = manager.runs_dir / run_id / "metrics.jsonl"
    while not metrics.exists():
        time.sleep(0.01)
    first_step = time.monotonic() - started
    status = manager.wait(run_id, timeout=600, poll=0.02)
    background = time.monotonic() - started
    assert status["state"] == "done", status
    return {"submit_returns_s": submitted, "submit_to_first_step_s": first_step,
            "inprocess_total_s": inprocess, "background_total_s": background,
            "process_overhead_s": background - inprocess}


SUBMITTER = """
import sys
from aelab.runs.local import RunManager
m = RunManager(sys.argv[1], max_parallel=int(sys.argv[3]))
for i in range(int(sys.argv[2])):
    m.submit("ae", "digits", {"latent_dim": 2, "hidden": "16"},
             {"epochs": 1, "caches": False, "seed": i, "log_every": 2})
"""


def stress(root: Path, n: int, parallel: int) -> dict:
    runs = root / "stress"
    started = time.monotonic()
    procs = [subprocess.Popen([sys.executable, "-c", SUBMITTER, str(runs), str(n // 2), str(parallel)],
                              cwd=Path(__file__).resolve().parents[1]) for _ in range(2)]
    for p in procs:
        assert p.wait() == 0
    manager = RunManager(runs, start_supervisor=False)
    ids = [r["id"] for r in manager.list()]
    states = {run: manager.wait(run, timeout=900)["state"] for run in ids}
    elapsed = time.monotonic() - started
    repeated = [run for run in ids
                if len({m["step"] for m in read_metrics(runs / run)}) != len(read_metrics(runs / run))]
    workers = [run for run in ids if (runs / run / "worker.log").exists()]
    deadline = time.monotonic() + 30
    pattern = f"aelab (supervise|worker).*{runs}"
    while time.monotonic() < deadline:  # the idle supervisor exits a few seconds after the last run
        leftovers = subprocess.run(["pgrep", "-f", pattern], capture_output=True, text=True).stdout.split()
        if not leftovers and not supervisor_running(runs):
            break
        time.sleep(0.2)
    return {"submitted": n // 2 * 2, "found": len(ids), "done": sum(s == "done" for s in states.values()),
            "not_done": {k: v for k, v in states.items() if v != "done"}, "repeated_steps": repeated,
            "with_worker_log": len(workers), "parallel": parallel, "seconds": elapsed,
            "supervisor_exited": not supervisor_running(runs), "leftover_processes": leftovers}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stress", type=int, default=20, help="runs in the stress test")
    parser.add_argument("--parallel", type=int, default=1)
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads in both paths (AELAB_THREADS); 1 is steadiest on a "
                             "shared 2-core machine")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    os.environ["AELAB_THREADS"] = str(args.threads)  # read by the trainer in-process and in workers
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        result = {"latency": latency_and_overhead(root), "stress": stress(root, args.stress, args.parallel)}
    if args.json:
        print(json.dumps(result, indent=1))
        return 0
    lat, st = result["latency"], result["stress"]
    print(f"submit returns in          {lat['submit_returns_s']:.2f} s")
    print(f"submit -> first logged step {lat['submit_to_first_step_s']:.2f} s")
    print(f"1-epoch mnist5k in-process  {lat['inprocess_total_s']:.2f} s (baseline)")
    print(f"same run in the background  {lat['background_total_s']:.2f} s")
    print(f"process overhead            {lat['process_overhead_s']:.2f} s  (target < 3 s: "
          f"{lat['process_overhead_s'] / 3:.2f}x of the limit)")
    print(f"stress: {st['submitted']} runs from 2 processes, {st['parallel']} at a time: "
          f"{st['done']} done, {len(st['not_done'])} not done, {len(st['repeated_steps'])} with "
          f"repeated steps, {st['found']} folders, supervisor exited: {st['supervisor_exited']}, "
          f"leftover processes: {len(st['leftover_processes'])}, {st['seconds']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
