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
from conftest import assert_ok, open_page

from aelab.cli import main
from aelab.errors import RunError
from aelab.runs.folder import TRAIN_STATE, read_json, read_metrics, read_status
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



def test_a_study_as_sweep_arguments_reads_back_as_the_same_study():
    """What the Study page hands to the `sweep` it starts on Ray: the same grid, seeds and id."""
    from aelab.cli import build_parser

    spec = StudySpec("ae", "digits", parse_grid(["hidden=64,32;128", "lr=0.1,0.01"]), seeds=3,
                     params={"epochs": "2", "caches": "false"})
    args = build_parser().parse_args(["sweep", *spec.sweep_argv()])
    again = StudySpec(args.variant, args.dataset, parse_grid(args.grid), args.seeds,
                      dict(p.split("=", 1) for p in args.param))
    assert (again.grid, again.seeds, again.params, again.id, args.study) == \
        (spec.grid, spec.seeds, spec.params, spec.id, spec.id)


def test_a_driver_behind_a_fast_trial_writes_only_its_newest_checkpoint_and_status(
        tmp_path, monkeypatch):
    """A trial that streams reports faster than the driver writes them (a small log_every)
    costs the driver one checkpoint and one status write per look, not one per report, so a
    Ctrl-C or a stop request is seen within a poll."""
    import ray

    from aelab.runs import ray_backend
    from aelab.runs.folder import write_status

    run_dir = tmp_path / "trial"
    run_dir.mkdir()
    write_status(run_dir, state="queued")
    reports = []
    for step in range(1, 2001):
        status = {"state": "running", "step": step}
        reports.append(("checkpoint", status, {TRAIN_STATE: b"%d" % step}, status) if step % 500 == 0
                       else ("status", status))
    stream = iter(reports)
    pending = [len(reports)]

    def wait(refs, timeout=None):
        return (refs, []) if pending[0] else ([], refs)

    def get(report):
        pending[0] -= 1
        return report

    writes = []
    monkeypatch.setattr(ray, "wait", wait)
    monkeypatch.setattr(ray, "get", get)
    monkeypatch.setattr(ray_backend, "write_status",
                        lambda *a, **k: writes.append(k.get("step")) or write_status(*a, **k))
    backend = object.__new__(ray_backend.RayBackend)  # the driver's bookkeeping, no cluster
    backend.mark, backend.trials = {"backend": "ray"}, {}
    trial = ray_backend._Trial(run_dir, stream, {"state": "queued"})
    backend.trials["trial"] = trial
    backend._take_in("trial", trial)
    assert writes == [2000]
    assert read_status(run_dir)["step"] == 2000
    assert (run_dir / TRAIN_STATE).read_bytes() == b"2000"
    assert trial.base["step"] == 2000  # a lost worker resumes from the newest checkpoint


def test_a_trial_given_a_gpu_it_cannot_use_is_refused_in_one_sentence():
    """On the worker, before training: a GPU from Ray with no CUDA in PyTorch (this CPU
    build), or with the CPU asked for, ends the trial failed instead of training on the CPU."""
    import torch

    from aelab.runs.ray_backend import gpu_refusal

    assert gpu_refusal(0, "auto", "10.0.0.5") is None
    assert gpu_refusal(0, "cuda:1", "10.0.0.5") == ("the trial asks for device cuda:1 but Ray gave "
                                                    "it no GPU; add --gpus-per-trial 1 (or set "
                                                    "device=auto)")
    assert gpu_refusal(1, "cpu", "10.0.0.5") == ("the trial was given 1 GPU(s) but its device "
                                                 "setting is cpu; leave --gpus-per-trial out or "
                                                 "set device=auto or cuda")
    if not torch.cuda.is_available():
        assert gpu_refusal(0.5, "auto", "10.0.0.5") == (
            "Ray gave the trial 0.5 GPU(s) on 10.0.0.5, but PyTorch there sees no CUDA device; "
            "install a CUDA build of torch on that node or leave --gpus-per-trial out")

def kill_a_worker_mid_trial(runs_dir, sweep: subprocess.Popen, after_step: int = 20,
                            pids=None):
    """kill -9 the process training a trial (the pid its status.json reports) once it has
    passed ``after_step`` and the driver holds a checkpoint of it (and, given ``pids``, the
    process is one of them); (run folder, pid, step, time), or None if the sweep ended first."""
    deadline = time.monotonic() + 150
    while time.monotonic() < deadline and sweep.poll() is None:
        for run_dir in runs_dir.iterdir():
            try:
                status = read_status(run_dir)
            except RunError:  # not written yet
                continue
            if status["state"] == "running" and status.get("step", 0) > after_step \
                    and (run_dir / TRAIN_STATE).exists() and pid_alive(status.get("pid")) \
                    and (pids is None or status["pid"] in pids()):
                when = time.time()
                os.kill(status["pid"], signal.SIGKILL)
                return run_dir, status["pid"], status["step"], when
        time.sleep(0.1)
    return None


def assert_finished_once(run_dir, killed_pid, killed_at=None):
    """The killed trial was retried to the end, its logged steps each exactly once; given
    ``killed_at``, it resumed from its checkpoint: rows logged before that time were kept."""
    status = read_status(run_dir)
    assert status["state"] == "done" and status["pid"] != killed_pid
    rows = [row for row in read_metrics(run_dir) if "loss" in row]
    steps = [row["step"] for row in rows]
    assert steps == sorted(set(steps)) and steps[-1] == status["total_steps"] == status["step"]
    if killed_at is not None:
        assert rows[0]["time"] < killed_at < rows[-1]["time"], "the retry started from step 0"


def test_a_trial_folder_whose_worker_is_gone_is_removed_and_nothing_else(tmp_path):
    """A worker killed mid-trial leaves its temporary folder; the next trial on that node
    removes it, but never a folder of a live worker, one without an owner, or another name."""
    from aelab.runs.ray_backend import TRIAL_FOLDER_PREFIX, TRIAL_OWNER, remove_abandoned_trial_folders

    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    folders = {}
    for name, owner in [("abandoned", gone.pid), ("live", os.getpid()), ("no-owner", None)]:
        folder = tmp_path / f"{TRIAL_FOLDER_PREFIX}{name}"
        (folder / "run").mkdir(parents=True)
        if owner is not None:
            (folder / TRIAL_OWNER).write_text(str(owner))
        folders[name] = folder
    other = tmp_path / "notes-of-a-user"
    other.mkdir()
    (other / TRIAL_OWNER).write_text(str(gone.pid))

    assert remove_abandoned_trial_folders(str(tmp_path)) == [folders["abandoned"]]
    assert not folders["abandoned"].exists()
    assert folders["live"].exists() and folders["no-owner"].exists() and other.exists()


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
def cluster_processes(temp_dir: str) -> dict[int, str]:
    """Live processes of the Ray node(s) whose session lives in ``temp_dir`` and their
    children, pid -> command line (workers are titled ``ray::IDLE``, ``ray::run_trial``)."""
    rows = subprocess.run(["ps", "-ww", "-eo", "pid=,ppid=,stat=,args="], capture_output=True,
                          text=True).stdout.splitlines()
    table = [(int(pid), int(ppid), stat, args) for pid, ppid, stat, args in
             (r.split(None, 3) for r in rows if len(r.split(None, 3)) == 4)]
    pids = {pid for pid, _, _, args in table if temp_dir in args and pid != os.getpid()}
    while True:  # add children (workers and agents are started by the raylet)
        more = {pid for pid, ppid, _, _ in table if ppid in pids} - pids
        if not more:
            return {pid: args for pid, _, stat, args in table
                    if pid in pids and not stat.startswith("Z")}
        pids |= more


def cluster_pids(temp_dir: str) -> list[int]:
    return sorted(cluster_processes(temp_dir))


def end_processes(temp_dir: str) -> list[int]:
    """SIGKILL every process of ``temp_dir``'s node(s) (a test cluster: nothing to save, and
    its GCS server may outlast a SIGTERM); the pids left."""
    for _ in range(3):  # a process may start a child while its siblings are killed
        for pid in cluster_pids(temp_dir):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + 5.0
        while cluster_pids(temp_dir) and time.monotonic() < deadline:
            time.sleep(0.1)
    return cluster_pids(temp_dir)


def ray_start(env, temp_dir, *args):
    command = [sys.executable, "-m", "ray.scripts.scripts", "start", "--num-cpus", "2",
               "--node-ip-address", "127.0.0.1", "--temp-dir", temp_dir, *args]
    subprocess.run(command, check=True, capture_output=True, env=env, timeout=120)


@pytest.fixture(scope="module")
def ray_head():
    """A Ray head with 2 CPUs on a free port and its own temporary folder: (address, env,
    temp folder); afterwards every process of that cluster (and only of it) is ended by pid
    and checked gone.

    Token authentication on, with a token made for this cluster and given to its drivers.
    A lost node is noticed after about 3 s (Ray's default health check takes about 30 s).
    """
    import secrets
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    temp_dir = tempfile.mkdtemp(prefix="aelab-ray-", dir="/tmp")  # short: socket paths
    env = {**os.environ, "TMPDIR": temp_dir,  # the trials' folders, removed with the cluster
           "RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "token",
           "RAY_AUTH_TOKEN": secrets.token_hex(32)}
    checks = json.dumps({"health_check_period_ms": 1000, "health_check_failure_threshold": 3,
                         "health_check_timeout_ms": 1000})
    try:
        ray_start(env, temp_dir, "--head", "--port", str(port), "--include-dashboard=false",
                  "--system-config", checks)
        yield f"127.0.0.1:{port}", env, temp_dir
    finally:
        left = end_processes(temp_dir)
        shutil.rmtree(temp_dir, ignore_errors=True)
        assert not left, f"Ray processes left running: {left}"


def interruptible() -> None:
    """In the child before exec: Ctrl-C's default action, as in a terminal. A test run started
    in the background (``pytest &``, some CI runners) has SIGINT ignored, and a child inherits
    that, so the sweep would never see the test's Ctrl-C."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def start_sweep(runs_dir, ray_head, *extra) -> subprocess.Popen:
    address, env, _ = ray_head
    return subprocess.Popen([sys.executable, "-m", "aelab", *SWEEP, "--runs-dir", str(runs_dir),
                             "--ray-address", address, "--json", *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            preexec_fn=interruptible)


def finish(sweep: subprocess.Popen, timeout: float = 240) -> tuple[str, str]:
    try:
        return sweep.communicate(timeout=timeout)
    finally:
        if sweep.poll() is None:
            sweep.kill()
            sweep.wait()


def trial_workers(temp_dir: str) -> list[int]:
    return [pid for pid, args in cluster_processes(temp_dir).items()
            if args.startswith("ray::run_trial")]


LONG = ["--epochs", "40", "--param", "log_every=2", "--param", "checkpoint_seconds=0.2"]
# Long enough that the second trial's worker starts while the first still trains, even on a
# loaded 2-core machine (40 epochs take about a second there; a Ray worker can take longer).
LONGER = ["--epochs", "200", "--param", "log_every=10", "--param", "checkpoint_seconds=0.2"]


def checkpoint_time(run_dir) -> float:
    state = run_dir / TRAIN_STATE
    return state.stat().st_mtime if state.exists() else 0.0


def wait_until_driven(runs_dir, sweep, trials: int, checkpoints_after: float | None = None) -> list:
    """Wait until ``trials`` trials run, watched by ``sweep`` (their status names it as their
    driver), and one (given ``checkpoints_after``: each) has a checkpoint held here (written
    after that time); their folders."""
    deadline = time.monotonic() + 150
    while time.monotonic() < deadline and sweep.poll() is None:
        dirs = sorted(d for d in runs_dir.iterdir() if (d / "status.json").exists())
        statuses = [read_status(d) for d in dirs]
        fresh = [checkpoint_time(d) > (checkpoints_after or 0) for d in dirs]
        if len(dirs) == trials and all(
                s["state"] == "running" and (s.get("driver") or {}).get("pid") == sweep.pid
                for s in statuses) and (all(fresh) if checkpoints_after else any(fresh)):
            return dirs
        time.sleep(0.1)
    raise AssertionError(f"the sweep never ran {trials} trials (exit code {sweep.poll()})")


def no_trial_left(temp_dir, seconds: float = 10) -> bool:
    deadline = time.monotonic() + seconds
    while trial_workers(temp_dir) and time.monotonic() < deadline:
        time.sleep(0.2)
    return not trial_workers(temp_dir)


@pytest.mark.ray
@pytest.mark.slow
def test_ctrl_c_or_kill_9_of_a_ray_sweep_leaves_its_trials_interrupted_and_the_same_command_resumes(
        ray_head, runs_dir):
    """SIGINT of the driver cancels its tasks and leaves the trials interrupted; the same
    command resumes them; kill -9 of that driver takes its tasks with it (Ray ends the tasks
    of a dead owner), the folder says interrupted at once, and the same command finishes."""
    from aelab.runs.local import RunManager

    temp_dir = ray_head[2]
    argv = ["--grid", "latent_dim=2,3", *LONGER]
    sweep = start_sweep(runs_dir, ray_head, *argv)
    try:
        dirs = wait_until_driven(runs_dir, sweep, 2)
        stopped_at = time.time()
        sweep.send_signal(signal.SIGINT)
    finally:
        out, err = finish(sweep, timeout=60)
    assert sweep.returncode == 130, err
    assert "2 unfinished trial(s) left interrupted; run the same command again" in err
    assert {read_status(d)["state"] for d in dirs} == {"interrupted"}
    assert no_trial_left(temp_dir), "a trial still trains on the cluster after Ctrl-C"
    checkpointed = [d for d in dirs if (d / TRAIN_STATE).exists()]

    again = start_sweep(runs_dir, ray_head, *argv)
    try:
        wait_until_driven(runs_dir, again, 2, checkpoints_after=time.time())  # resumed, further
        killed_at = time.time()
        again.kill()
    finally:
        finish(again)
    assert no_trial_left(temp_dir), "a trial of the killed driver still trains on the cluster"
    rows = RunManager(runs_dir, start_supervisor=False).list()  # what `runs list` says
    assert {r["state"] for r in rows} == {"interrupted"}
    assert all("sweep driving it ended; run the same sweep again" in r["error"] for r in rows)

    third = start_sweep(runs_dir, ray_head, *argv)
    out, err = finish(third)
    assert third.returncode == 0, err
    assert [t["state"] for t in json.loads(out)["trials"]] == ["done", "done"]
    assert sorted(d for d in runs_dir.iterdir() if d.is_dir()) == dirs
    for run_dir in dirs:
        assert_finished_once(run_dir, None, stopped_at if run_dir in checkpointed else killed_at)


@pytest.mark.ray
@pytest.mark.slow
def test_the_study_page_starts_a_study_on_ray_names_the_backend_and_cancels_it_on_the_cluster(
        ray_head, runs_dir, supervisor_calls, monkeypatch):
    """The teacher starts a study on the Ray cluster from the page (a `sweep` driver in the
    background); the page says it runs on Ray, and its cancel button, reaching the driver
    through the runs folder, ends the trials' tasks on the cluster and then the driver."""
    address, env, temp_dir = ray_head
    for name in ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_USAGE_STATS_ENABLED"):
        monkeypatch.setenv(name, env[name])  # the driver the page starts inherits them
    monkeypatch.setenv("AELAB_TEACHER_TOKEN", "class-token-for-this-test")
    at = open_page("study", token="class-token-for-this-test")
    at.selectbox(key="st_variant").set_value("ae")
    at.text_area(key="st_grid").set_value("latent_dim=2,3")
    at.number_input(key="st_seeds").set_value(1)
    at.number_input(key="st_epochs").set_value(60)
    at.text_input(key="st_fixed").set_value("hidden=32 caches=false log_every=2 checkpoint_seconds=0.2")
    at.text_input(key="st_ray").set_value(address)
    at.button(key="st_start").click().run()
    assert_ok(at)
    (study,) = study_trials(runs_dir)
    assert [s.value for s in at.success] == [f"Study {study} started on the Ray cluster at "
                                             f"{address}: 2 trials."]
    driver = read_status(study_trials(runs_dir)[study][0])["driver"]["pid"]
    try:
        dirs = wait_until_driven(runs_dir, FakePopen(driver), 2)
        at.run()
        assert any("runs on Ray" in c.value for c in at.caption), [c.value for c in at.caption]
        at.button(key="st_cancel").click().run()
        assert_ok(at)
        deadline = time.monotonic() + 60
        while pid_alive(driver) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not pid_alive(driver), "the driver did not end once its trials were cancelled"
    finally:
        if pid_alive(driver):
            os.kill(driver, signal.SIGKILL)
    assert {read_status(d)["state"] for d in dirs} == {"cancelled"}
    assert no_trial_left(temp_dir), "a cancelled trial still trains on the cluster"
    assert not supervisor_calls  # nothing was handed to the local supervisor
    log = (runs_dir / ".sweeps" / f"{study}.log").read_text()
    assert "0/2 done, 2 cancelled" in log


class FakePopen:
    """A process this test did not start, by pid, as much of Popen as wait_until_driven needs."""

    def __init__(self, pid):
        self.pid = pid

    def poll(self):
        return None if pid_alive(self.pid) else 0


@pytest.mark.ray
@pytest.mark.slow
def test_a_ray_sweep_survives_any_worker_killed_and_the_loss_of_a_node(ray_head, runs_dir):
    """A second node joins the head (its own ``ray start`` and temporary folder) and a 4-trial
    sweep runs on both. kill -9 of a worker training on the head (it is also the trial's only
    stream of progress: there is no actor), then of the head's idle workers, then, once a
    trial trains on the second node, of every process of that node at once: the killed
    trials resume from the driver's copies of their checkpoints, every trial ends done on
    the head, each exactly once."""
    address, env, head_dir = ray_head
    node_dir = tempfile.mkdtemp(prefix="aelab-ray2-", dir="/tmp")
    try:
        ray_start(env, node_dir, "--address", address)
        on_node = lambda: set(cluster_pids(node_dir))  # noqa: E731
        on_head = lambda: set(cluster_pids(head_dir)) - on_node()  # noqa: E731
        sweep = start_sweep(runs_dir, ray_head, "--grid", "latent_dim=2,3,4,5", *LONG)
        try:
            worker = kill_a_worker_mid_trial(runs_dir, sweep, pids=on_head)
            titles = {args.split()[0] for args in cluster_processes(head_dir).values()
                      if args.startswith("ray::")}
            for pid, args in cluster_processes(head_dir).items():
                if args.startswith("ray::IDLE") and pid in on_head():
                    os.kill(pid, signal.SIGKILL)
            node = kill_a_worker_mid_trial(runs_dir, sweep, pids=on_node)
            for pid in on_node():  # the rest of the node: raylet, agents, other workers
                os.kill(pid, signal.SIGKILL)
        finally:
            out, err = finish(sweep)
        assert worker, "no trial was seen running on the head"
        assert node, "no trial was seen running on the second node"
        agents = {"ray::DashboardAgent", "ray::RuntimeEnvAgent"}  # the node's own services
        assert titles - agents <= {"ray::IDLE", "ray::run_trial"}, titles  # no actor holds anything
        assert sweep.returncode == 0, err
        trials = json.loads(out)["trials"]
        assert [t["state"] for t in trials] == ["done"] * 4
        assert len([p for p in runs_dir.iterdir() if p.is_dir()]) == 4  # nothing counted twice
        for trial in trials:  # ordinary run folders, written here by the driver
            assert {"config.json", "status.json", "metrics.jsonl", "model.safetensors"} <= \
                {p.name for p in (runs_dir / trial["id"]).iterdir()}
            status = read_status(runs_dir / trial["id"])
            assert status["pid"] != sweep.pid and status["device"] == "CPU"  # trained by Ray workers
            assert status["backend"] == "ray" and "Ray node" in status["node"]
        assert "4/4 done" in err  # progress went to stderr, stdout is the JSON alone
        assert_finished_once(worker[0], worker[1], worker[3])
        assert_finished_once(node[0], node[1], node[3])
    finally:
        left = end_processes(node_dir)
        shutil.rmtree(node_dir, ignore_errors=True)
        assert not left, f"Ray processes left running: {left}"


@pytest.mark.ray
@pytest.mark.slow
def test_gpus_per_trial_are_refused_in_one_sentence_on_a_cluster_without_gpus(ray_head, runs_dir):
    sweep = start_sweep(runs_dir, ray_head, "--grid", "latent_dim=2", "--gpus-per-trial", "1")
    out, err = finish(sweep)
    assert sweep.returncode == 2 and out == ""
    assert err.splitlines()[-1] == (f"error: --gpus-per-trial 1 asks for more GPUs than the Ray "
                                    f"cluster at {ray_head[0]} has (0); leave it out to train on CPUs")
    assert list(runs_dir.iterdir()) == []


@pytest.mark.ray
@pytest.mark.slow
def test_a_sweep_with_ray_starts_its_own_cluster_and_leaves_nothing_running(runs_dir, tmp_path):
    temp_dir = tempfile.mkdtemp(prefix="aelab-ray3-", dir="/tmp")
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "RAY_TMPDIR": temp_dir, "TMPDIR": temp_dir}
    try:
        sweep = subprocess.run([sys.executable, "-m", "aelab", *SWEEP, "--runs-dir", str(runs_dir),
                                "--grid", "latent_dim=2,3", "--ray", "--json"],
                               capture_output=True, text=True, env=env, timeout=240)
        assert sweep.returncode == 0, sweep.stderr
        trials = json.loads(sweep.stdout)["trials"]
        assert [t["state"] for t in trials] == ["done", "done"]
        for trial in trials:
            status = read_status(runs_dir / trial["id"])
            assert status["backend"] == "ray" and status["pid"] != os.getpid()
        deadline = time.monotonic() + 10
        while cluster_pids(temp_dir) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not cluster_pids(temp_dir), "the sweep left its Ray cluster running"
    finally:
        end_processes(temp_dir)
        shutil.rmtree(temp_dir, ignore_errors=True)


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
