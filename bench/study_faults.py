"""A Ray study under faults: the issue's 6-trial sweep with one ``ray::`` process killed.

Starts its own Ray head (``ray start --head``, token authentication, its own
temporary folder, 2 CPUs), then runs the same sweep several times, each in a
fresh runs folder:

- ``clean``: nothing goes wrong;
- ``kill``: ``--after`` seconds after the first trial starts training, one process of
  the cluster titled ``ray::`` (a trial's worker or an idle one, picked at random with
  ``--seed``) gets SIGKILL.

Each try reports its exit code, trials done, trials per minute (wall time of the
``sweep`` command, start-up included), the process killed and whether every trial
logged each step exactly once. Every process of the head is ended by pid at the end
(nothing else's Ray is touched).

    python bench/study_faults.py                    # 1 clean try, 5 kill tries
    python bench/study_faults.py --tries 3 --after 4 --checkpoint-seconds 1
"""
from __future__ import annotations

import argparse
import json
import os
import random
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from aelab.runs.folder import read_metrics, read_status  # noqa: E402


def processes(temp_dir: str) -> dict[int, str]:
    """Live processes of the head whose session lives in ``temp_dir``, and their children."""
    rows = [line.split(None, 3) for line in subprocess.run(
        ["ps", "-ww", "-eo", "pid=,ppid=,stat=,args="], capture_output=True, text=True).stdout.splitlines()]
    table = [(int(r[0]), int(r[1]), r[2], r[3] if len(r) > 3 else "") for r in rows]
    pids = {pid for pid, _, _, args in table if temp_dir in args}
    while True:
        more = {pid for pid, ppid, _, _ in table if ppid in pids} - pids
        if not more:
            return {pid: args for pid, _, stat, args in table if pid in pids and not stat.startswith("Z")}
        pids |= more


def once(run_dir: Path) -> bool:
    """Every logged step exactly once, up to the last one."""
    status = read_status(run_dir)
    steps = [row["step"] for row in read_metrics(run_dir) if "loss" in row]
    return steps == sorted(set(steps)) and bool(steps) and steps[-1] == status["total_steps"]


def _state(run_dir: Path) -> str | None:
    try:
        return read_status(run_dir)["state"]
    except Exception:  # not written yet
        return None


def sweep(args, address: str, env: dict, temp_dir: str, kill: bool, rng: random.Random) -> dict:
    runs = Path(tempfile.mkdtemp(prefix="aelab-faults-"))
    command = [sys.executable, "-m", "aelab", "sweep", "--variant", "ae", "--dataset", "digits",
               "--epochs", str(args.epochs), "--grid", "latent_dim=2,4,8", "--seeds", "2",
               "--runs-dir", str(runs), "--ray-address", address, "--json",
               *(["--param", f"checkpoint_seconds={args.checkpoint_seconds}"]
                 if args.checkpoint_seconds else [])]
    started = time.monotonic()
    driver = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              env=env, cwd=ROOT)
    victim, hit, killed_at, checkpointed = None, None, None, False
    if kill:
        while driver.poll() is None and not any(_state(d) == "running" for d in runs.iterdir()):
            time.sleep(0.1)
        time.sleep(args.after)
        workers = {pid: a.split()[0] for pid, a in processes(temp_dir).items()
                   if a.startswith("ray::") and a.split()[0] not in ("ray::DashboardAgent",
                                                                     "ray::RuntimeEnvAgent")}
        if workers:
            pid = rng.choice(sorted(workers))
            trained = {read_status(d).get("pid"): d for d in runs.iterdir() if _state(d)}
            killed_at = time.time()
            os.kill(pid, signal.SIGKILL)
            victim, hit = workers[pid], trained.get(pid)
            if hit:
                victim += f" (training a trial, at step {read_status(hit)['step']})"
                checkpointed = (hit / "train_state.safetensors").exists()
    out, err = driver.communicate(timeout=900)
    seconds = time.monotonic() - started
    trials = json.loads(out)["trials"] if out.strip() else []
    done = [t for t in trials if t["state"] == "done"]
    result = {"kill": victim or ("nothing found" if kill else "-"), "exit": driver.returncode,
              "done": f"{len(done)}/{len(trials) or 6}", "seconds": round(seconds, 1),
              "trials_per_minute": round(60 * len(done) / seconds, 2),
              "each_step_once": all(once(runs / t["id"]) for t in done)}
    if hit and hit.name in {t["id"] for t in done}:  # rows logged before the kill were kept
        rows = [r for r in read_metrics(hit) if "loss" in r]
        result["checkpoint_held_at_kill"] = checkpointed
        result["resumed_from_it"] = rows[0]["time"] < killed_at  # else from step 0
    if driver.returncode:
        result["stderr"] = err.strip().splitlines()[-1:]
    shutil.rmtree(runs, ignore_errors=True)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tries", type=int, default=5, help="tries with a process killed")
    parser.add_argument("--after", type=float, default=2.0,
                        help="seconds after the first trial runs to kill a process")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--checkpoint-seconds", type=float, default=None,
                        help="the trials' checkpoint_seconds (default: the run default)")
    args = parser.parse_args()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    temp_dir = tempfile.mkdtemp(prefix="aelab-rayf-", dir="/tmp")
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "token",
           "RAY_AUTH_TOKEN": secrets.token_hex(32), "AELAB_THREADS": "1"}
    rng = random.Random(args.seed)
    load = os.getloadavg()[0]
    try:
        subprocess.run([sys.executable, "-m", "ray.scripts.scripts", "start", "--head", "--port",
                        str(port), "--num-cpus", "2", "--node-ip-address", "127.0.0.1", "--temp-dir",
                        temp_dir, "--include-dashboard=false"], check=True, capture_output=True,
                       env=env, timeout=120)
        address = f"127.0.0.1:{port}"
        for kill in [False] + [True] * args.tries:
            print(json.dumps(sweep(args, address, env, temp_dir, kill, rng)), flush=True)
    finally:
        for _ in range(3):
            for pid in processes(temp_dir):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(1)
        left = processes(temp_dir)
        shutil.rmtree(temp_dir, ignore_errors=True)
    print(f"1-minute load average {load:.1f} -> {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; "
          f"Ray processes left: {sorted(left) or 'none'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
