"""Studies: the sweep CLI on the local supervisor and on a real Ray cluster."""
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import pytest

from aelab.cli import main
from aelab.errors import RunError
from aelab.runs.folder import read_json, read_metrics, read_status
from aelab.runs.local import pid_alive
from aelab.runs.study import StudySpec, parse_grid, study_trials

SWEEP = ["sweep", "--variant", "ae", "--dataset", "digits", "--epochs", "1",
         "--param", "hidden=32", "--param", "caches=false", "--param", "log_every=5"]


def sweep_json(capsys, argv) -> tuple[int, dict]:
    code = main(argv)
    return code, json.loads(capsys.readouterr().out)


BAD_GRIDS = [
    (["--grid", "beta=1,2"], "unknown grid parameter 'beta' for variant 'ae'"),
    (["--grid", "latent_dim=2,zero"], "grid value latent_dim=zero is invalid: latent_dim must be an integer"),
    (["--grid", "latent_dim=2,0"], "grid value latent_dim=0 is invalid: latent_dim must be in [1, 4096]"),
    (["--grid", "arch=conv", "--grid", "hidden=8,8,8,8;16,16,16,16"],
     "grid point arch=conv, hidden=8,8,8,8 is invalid: conv arch with 4 layers"),
    (["--grid", "lr=0.1,0.1"], "--grid lr lists the value 0.1 twice"),
    (["--grid", "seed=1,2"], "seed cannot be a grid parameter; use --seeds"),
    (["--grid", "latent_dim"], "--grid expects NAME=v1,v2,..., got 'latent_dim'"),
    (["--grid", "lr=0.1,"], "--grid lr has an empty value"),
    (["--grid", "lr=1", "--grid", "lr=2"], "--grid lr is given twice"),
    ([], "a study needs at least one --grid"),
    (["--grid", "lr=1", "--seeds", "0"], "--seeds must be between 1 and 1000"),
    (["--grid", "lr=1", "--ray", "--ray-address", "h:1"], "use --ray (start a local Ray cluster) or"),
    (["--grid", "lr=1", "--ray-address", "nohost"], "--ray-address expects HOST:PORT"),
    (["--grid", "lr=1", "--ray-address", "127.0.0.1:1"],
     "could not connect to the Ray cluster at 127.0.0.1:1: Connection refused; start one with"),
]


@pytest.mark.parametrize("extra,message", BAD_GRIDS)
def test_bad_grids_are_refused_before_anything_is_written(extra, message, runs_dir, capsys):
    argv = ["sweep", "--variant", "ae", "--dataset", "digits", "--runs-dir", str(runs_dir), *extra]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1, err
    assert list(runs_dir.iterdir()) == []


def test_grid_values_split_on_semicolons_when_a_value_holds_commas():
    assert parse_grid(["hidden=64,32;128", "lr=0.1,0.01"]) == {
        "hidden": ["64,32", "128"], "lr": ["0.1", "0.01"]}
    spec = StudySpec("ae", "digits", parse_grid(["latent_dim=2,3", "lr=0.1"]), seeds=2)
    assert len(spec.trials()) == 4
    assert spec.split({"latent_dim": "2", "lr": "0.1"}, 1) == ({"latent_dim": "2"}, {"lr": "0.1", "seed": 1})
    assert spec.id == StudySpec("ae", "digits", parse_grid(["latent_dim=2,3", "lr=0.1"]), 2).id
    assert spec.id != StudySpec("ae", "digits", parse_grid(["latent_dim=2,3", "lr=0.2"]), 2).id


def kill_a_worker_mid_trial(runs_dir, sweep: subprocess.Popen, after_step: int = 20):
    """kill -9 the process training a trial (the pid its status.json reports) once it has
    passed ``after_step``; (run folder, pid, step), or None if the sweep ended first."""
    deadline = time.monotonic() + 150
    while time.monotonic() < deadline and sweep.poll() is None:
        for run_dir in runs_dir.iterdir():
            try:
                status = read_status(run_dir)
            except RunError:  # not written yet
                continue
            if status["state"] == "running" and status.get("step", 0) > after_step \
                    and pid_alive(status.get("pid")):
                os.kill(status["pid"], signal.SIGKILL)
                return run_dir, status["pid"], status["step"]
        time.sleep(0.1)
    return None


def assert_finished_once(run_dir, killed_pid):
    """The killed trial was retried to the end, its logged steps each exactly once."""
    status = read_status(run_dir)
    assert status["state"] == "done" and status["pid"] != killed_pid
    steps = [row["step"] for row in read_metrics(run_dir)]
    assert steps == sorted(set(steps)) and steps[-1] == status["total_steps"] == status["step"]


@pytest.mark.slow
def test_local_sweep_on_digits_survives_a_killed_worker_and_the_same_command_picks_it_up(
        runs_dir, capsys, monkeypatch):
    monkeypatch.setenv("AELAB_MAX_RUNS", "2")
    argv = [*SWEEP, "--grid", "latent_dim=2,3", "--seeds", "1", "--runs-dir", str(runs_dir), "--json"]
    slow = ["--epochs", "60", "--param", "checkpoint_seconds=0.2"]
    sweep = subprocess.Popen([sys.executable, "-m", "aelab", *argv, *slow],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        killed = kill_a_worker_mid_trial(runs_dir, sweep)
        stdout, stderr = sweep.communicate(timeout=240)
    finally:
        if sweep.poll() is None:
            sweep.kill()
    assert killed, "no trial was seen running"
    assert sweep.returncode == 0, stderr
    out = json.loads(stdout)
    assert [t["state"] for t in out["trials"]] == ["done", "done"]
    assert [t["point"] for t in out["trials"]] == [{"latent_dim": "2"}, {"latent_dim": "3"}]
    assert_finished_once(killed[0], killed[1])
    for trial in out["trials"]:
        config = read_json(runs_dir / trial["id"] / "config.json", "config")
        assert config["study"]["id"] == out["study"]
        assert config["model"]["latent_dim"] == int(trial["point"]["latent_dim"])
    again_code, again = sweep_json(capsys, [*argv, *slow])  # nothing new is trained or created
    assert again_code == 0 and again == out
    assert sorted(p.name for p in runs_dir.iterdir() if not p.name.startswith(".")) == \
        sorted(t["id"] for t in out["trials"])
    assert list(study_trials(runs_dir)) == [out["study"]]


# --- a real Ray cluster ---
def cluster_pids(temp_dir: str) -> list[int]:
    """Live processes of the Ray cluster whose session lives in ``temp_dir``, and their children."""
    rows = subprocess.run(["ps", "-ww", "-eo", "pid=,ppid=,stat=,args="], capture_output=True,
                          text=True).stdout.splitlines()
    table = [(int(pid), int(ppid), stat, args) for pid, ppid, stat, args in
             (r.split(None, 3) for r in rows if len(r.split(None, 3)) == 4)]
    pids = {pid for pid, _, _, args in table if temp_dir in args and pid != os.getpid()}
    while True:  # add children (workers and agents are started by the raylet)
        more = {pid for pid, ppid, _, _ in table if ppid in pids} - pids
        if not more:
            return sorted(pid for pid, _, stat, _ in table if pid in pids and not stat.startswith("Z"))
        pids |= more


@pytest.fixture(scope="module")
def ray_head():
    """A Ray head with 2 CPUs on a free port and its own temporary folder; afterwards every
    process of that cluster (and only of it) is ended by pid and checked gone.

    Token authentication on, with a token made for this cluster and given to its drivers.
    """
    import secrets
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    temp_dir = tempfile.mkdtemp(prefix="aelab-ray-", dir="/tmp")  # short: socket paths
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "token",
           "RAY_AUTH_TOKEN": secrets.token_hex(32)}
    start = [sys.executable, "-m", "ray.scripts.scripts", "start", "--head", "--port", str(port),
             "--num-cpus", "2", "--include-dashboard=false", "--node-ip-address", "127.0.0.1",
             "--temp-dir", temp_dir]
    try:
        subprocess.run(start, check=True, capture_output=True, env=env, timeout=120)
        yield f"127.0.0.1:{port}", env
    finally:
        for sig, grace in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
            for pid in cluster_pids(temp_dir):
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    pass
            deadline = time.monotonic() + grace
            while cluster_pids(temp_dir) and time.monotonic() < deadline:
                time.sleep(0.2)
        left = cluster_pids(temp_dir)
        shutil.rmtree(temp_dir, ignore_errors=True)
        assert not left, f"Ray processes left running: {left}"


def start_sweep(runs_dir, ray_head, *extra) -> subprocess.Popen:
    address, env = ray_head
    return subprocess.Popen([sys.executable, "-m", "aelab", *SWEEP, "--runs-dir", str(runs_dir),
                             "--ray-address", address, "--json", *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


@pytest.mark.ray
@pytest.mark.slow
def test_a_sweep_on_a_ray_cluster_survives_a_worker_killed_mid_trial(ray_head, runs_dir):
    """A small sweep through a real Ray head; one worker is killed with kill -9 while it
    trains: Ray retries the trial, every trial ends done, each exactly once."""
    sweep = start_sweep(runs_dir, ray_head, "--grid", "latent_dim=2,3", "--epochs", "150",
                        "--param", "log_every=2", "--param", "checkpoint_seconds=0.2")
    try:
        killed = kill_a_worker_mid_trial(runs_dir, sweep)
        out, err = sweep.communicate(timeout=240)
    finally:
        if sweep.poll() is None:
            sweep.kill()
    assert killed, "no trial was seen running"
    assert sweep.returncode == 0, err
    trials = json.loads(out)["trials"]
    assert [t["state"] for t in trials] == ["done", "done"]
    assert len([p for p in runs_dir.iterdir() if p.is_dir()]) == 2  # nothing counted twice
    for trial in trials:  # ordinary run folders, written here by the driver
        assert {"config.json", "status.json", "metrics.jsonl", "model.safetensors"} <= \
            {p.name for p in (runs_dir / trial["id"]).iterdir()}
        assert read_status(runs_dir / trial["id"])["pid"] != sweep.pid  # trained by Ray workers
    assert "2/2 done" in err  # progress went to stderr, stdout is the JSON alone
    assert_finished_once(killed[0], killed[1])


class RecordingBackend:
    """A backend that records what the study asks of it and runs nothing."""

    name = "recording"

    def __init__(self):
        self.calls = []

    def submit(self, run_dir, resume=False):
        self.calls.append((run_dir.name, "resume" if resume else "submit"))

    def state(self, run_dir):
        return read_status(run_dir)

    def cancel(self, run_dir):
        raise AssertionError("not called")


def test_starting_a_study_again_resumes_what_was_cut_short_and_keeps_the_rest(runs_dir):
    from aelab.runs.folder import write_status
    from aelab.runs.study import Study

    spec = StudySpec("ae", "digits", parse_grid(["latent_dim=2,3,4,5"]), seeds=1,
                     params={"hidden": "32"})
    first = RecordingBackend()
    run_dirs = Study(spec, runs_dir, first).start()
    assert [c[1] for c in first.calls] == ["submit"] * 4
    for run_dir, state in zip(run_dirs, ("done", "interrupted", "cancelled", "running")):
        write_status(run_dir, state=state)
    again = RecordingBackend()
    assert Study(spec, runs_dir, again).start() == run_dirs  # the same folders, none new
    assert again.calls == [(run_dirs[1].name, "resume"), (run_dirs[2].name, "resume")]
    assert len(list(runs_dir.iterdir())) == 4


def test_a_trial_whose_worker_dies_while_watched_is_resumed_a_few_times(runs_dir):
    from aelab.runs.folder import write_status
    from aelab.runs.study import RETRIES, Study

    class DyingBackend(RecordingBackend):
        """Every resumed trial is interrupted again, except the first trial, which finishes."""

        def submit(self, run_dir, resume=False):
            super().submit(run_dir, resume)
            last = resume and self.calls.count((run_dir.name, "resume")) and run_dir == dirs[0]
            write_status(run_dir, state="done" if last else "interrupted")

    backend = DyingBackend()
    spec = StudySpec("ae", "digits", parse_grid(["latent_dim=2,3"]), params={"hidden": "32"})
    study = Study(spec, runs_dir, backend)
    dirs = study.start()
    rows = study.wait(poll=0.01, timeout=10)
    assert [r["state"] for r in rows] == ["done", "interrupted"]
    assert backend.calls.count((dirs[0].name, "resume")) == 1
    assert backend.calls.count((dirs[1].name, "resume")) == RETRIES
