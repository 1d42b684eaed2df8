"""Background runs: queue, worker processes, kill -9, cancel, resume, damage."""
import json
import os
import random
import signal
import subprocess
import sys
import time

import pytest
import torch
from conftest import TINY

from aelab.cli import main
from aelab.errors import AelabError, RunError
from aelab.runs.folder import load_model, read_metrics, read_status, read_tensors
from aelab.runs.local import RunManager, pid_alive, supervise, supervisor_running
from aelab.runs.train import train_run
from aelab.training.setup import prepare_run

TWO_LAYERS = {**TINY, "hidden": "64,32"}  # the tiny model with a second hidden layer


def train_params(**extra):
    return {"log_every": 4, "caches": False, **extra}


@pytest.fixture
def manager(runs_dir):
    yield RunManager(runs_dir, max_parallel=1)
    for row in RunManager(runs_dir, start_supervisor=False).list():  # leave no process behind
        pid = row.get("pid")
        if row.get("state") == "running" and pid_alive(pid):
            os.kill(pid, signal.SIGKILL)


def wait_for(predicate, timeout=60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("timed out")


def test_two_runs_with_a_limit_of_one_run_one_after_the_other(manager):
    first = manager.submit("ae", "digits", TWO_LAYERS, train_params(epochs=30))
    second = manager.submit("vae", "digits", TWO_LAYERS, train_params(epochs=3))
    wait_for(lambda: manager.status(first)["state"] == "running")
    assert manager.status(second)["state"] == "queued"
    assert [r["id"] for r in manager.list()] == sorted([first, second])
    a = manager.wait(first, timeout=120)
    b = manager.wait(second, timeout=120)
    assert a["state"] == b["state"] == "done"
    assert read_metrics(manager.runs_dir / first)[-1]["time"] < read_metrics(manager.runs_dir / second)[0]["time"]
    assert a["pid"] != b["pid"] and a["device"] == "CPU"


def test_kill_9_marks_interrupted_and_resume_matches_an_uninterrupted_run(manager, runs_dir):
    run = manager.submit("denoising", "digits", TWO_LAYERS,
                         train_params(epochs=60, seed=3, checkpoint_seconds=0.05))
    run_dir = runs_dir / run
    wait_for(lambda: (run_dir / "train_state.safetensors").exists()
             and read_status(run_dir)["step"] >= 24)
    pid = manager.status(run)["pid"]
    os.kill(pid, signal.SIGKILL)
    status = wait_for(lambda: (s := manager.status(run))["state"] == "interrupted" and s)
    assert "killed by signal 9" in status["error"] or "ended without a final state" in status["error"]
    killed_at = read_tensors(run_dir / "train_state.safetensors")[1]
    manager.resume(run)
    assert manager.wait(run, timeout=180)["state"] == "done"

    reference = prepare_run("denoising", "digits", TWO_LAYERS,
                            train_params(epochs=60, seed=3, checkpoint_seconds=0.05),
                            runs_dir=runs_dir.parent / "reference")
    train_run(reference)
    resumed = read_tensors(run_dir / "model.safetensors")[0]
    uninterrupted = read_tensors(reference / "model.safetensors")[0]
    assert killed_at  # the resume really started from a checkpoint
    assert all(torch.equal(resumed[k], uninterrupted[k]) for k in uninterrupted)


def test_cancel_stops_within_two_seconds_and_resume_finishes(manager):
    run = manager.submit("ae", "digits", TWO_LAYERS, train_params(epochs=2000))
    wait_for(lambda: manager.status(run)["state"] == "running"
             and manager.status(run).get("step", 0) > 0)
    started = time.monotonic()
    status = manager.cancel(run)
    assert status["state"] == "cancelled"
    assert time.monotonic() - started < 2.0
    assert not pid_alive(status["pid"]) or wait_for(lambda: not pid_alive(status["pid"]), 5)
    assert load_model(manager.runs_dir / run) is not None  # its last checkpoint is kept
    with pytest.raises(AelabError, match="already cancelled; nothing to cancel"):
        manager.cancel(run)


def test_a_failing_run_ends_failed_with_its_message_and_the_other_is_unaffected(manager, tmp_path):
    import numpy as np

    data = tmp_path / "mine.npz"
    np.savez(data, x=np.random.default_rng(0).integers(0, 255, (60, 8, 8), dtype=np.uint8))
    bad = manager.submit("ae", f"npz:{data}", TWO_LAYERS, train_params(epochs=2))
    good = manager.submit("ae", "digits", TWO_LAYERS, train_params(epochs=2))
    np.savez(data, x=np.zeros((60, 6, 6), dtype=np.uint8))  # the fault: the file changed shape
    failed = manager.wait(bad, timeout=120)
    assert failed["state"] == "failed"
    assert "has images of shape (1, 6, 6) but the run was configured for (1, 8, 8)" in failed["error"]
    assert manager.wait(good, timeout=120)["state"] == "done"


def test_cancelling_a_queued_run_never_starts_it(runs_dir):
    manager = RunManager(runs_dir, start_supervisor=False)
    run = manager.submit("ae", "digits", TWO_LAYERS, train_params(epochs=1))
    assert manager.cancel(run)["state"] == "cancelled"
    assert manager.resume(run)["state"] == "queued"


def test_kills_at_random_instants_never_leave_an_unreadable_checkpoint(runs_dir):
    """Checkpoints are written every few milliseconds; kill -9 lands at random points."""
    rng = random.Random(0)
    for i in range(8):
        run_dir = prepare_run("ae", "digits", {"latent_dim": 8, "hidden": "256,128"},
                              train_params(epochs=500, log_every=1, checkpoint_seconds=0.001),
                              runs_dir=runs_dir)
        worker = subprocess.Popen([sys.executable, "-m", "aelab", "worker", str(run_dir)],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if i > 0:  # the first is killed at once, before its first checkpoint
            wait_for(lambda: (run_dir / "model.safetensors").exists())
            time.sleep(rng.uniform(0.0, 0.5))
        worker.send_signal(signal.SIGKILL)
        worker.wait()
        assert read_status(run_dir)["state"] in ("queued", "running")  # no final state written
        read_metrics(run_dir)
        if i == 0:
            with pytest.raises(RunError, match="no checkpoint yet"):
                load_model(run_dir)
            continue
        model = load_model(run_dir)
        assert all(torch.isfinite(p).all() for p in model.parameters())
        tensors, meta = read_tensors(run_dir / "train_state.safetensors")
        assert int(json.loads(meta["state"])["step"]) > 0


def test_damaged_status_and_config_are_listed_as_damaged(runs_dir, capsys):
    manager = RunManager(runs_dir, start_supervisor=False)
    ok = manager.submit("ae", "digits", TWO_LAYERS, train_params(epochs=1))
    broken_status = manager.submit("ae", "digits", TWO_LAYERS, train_params(epochs=1))
    broken_config = manager.submit("ae", "digits", TWO_LAYERS, train_params(epochs=1))
    edited = manager.submit("ae", "digits", TWO_LAYERS, train_params(epochs=1))
    (runs_dir / broken_status / "status.json").write_text("{\"state\": ")
    (runs_dir / broken_config / "config.json").write_text("[]")
    config = json.loads((runs_dir / edited / "config.json").read_text())
    config["model"]["latent_dim"] = -3
    (runs_dir / edited / "config.json").write_text(json.dumps(config))
    rows = {r["id"]: r for r in manager.list()}
    assert rows[ok]["state"] == "queued"
    assert rows[broken_status]["state"] == "damaged" and "status of run" in rows[broken_status]["damaged"]
    assert "config of run" in rows[broken_config]["damaged"]
    assert "latent_dim must be in [1, 4096], got -3" in rows[edited]["damaged"]
    assert main(["runs", "list", "--runs-dir", str(runs_dir)]) == 0
    assert "damaged" in capsys.readouterr().out
    manager.delete(broken_status)
    assert not (runs_dir / broken_status).exists()


def test_one_supervisor_per_runs_folder(runs_dir):
    manager = RunManager(runs_dir, max_parallel=1)
    manager.submit("ae", "digits", TWO_LAYERS, train_params(epochs=20))
    manager.backend.ensure_served()
    manager.backend.ensure_served()
    wait_for(lambda: supervisor_running(runs_dir))
    started = time.monotonic()
    supervise(runs_dir)  # a second supervisor returns at once instead of competing
    assert time.monotonic() - started < 1.0
    out = subprocess.run(["pgrep", "-f", f"aelab supervise --runs-dir {runs_dir.resolve()}"],
                         capture_output=True, text=True).stdout.split()
    assert len(out) == 1
    for row in manager.list():
        manager.wait(row["id"], timeout=120)


CLI_ERRORS = [
    (["runs", "show", "nope"], "no run 'nope'"),
    (["runs", "cancel", "nope"], "no run 'nope'"),
    (["runs", "resume", "nope"], "no run 'nope'"),
    (["runs", "delete", "nope"], "no run 'nope'"),
]


@pytest.mark.parametrize("argv,message", CLI_ERRORS)
def test_cli_unknown_run_ids(argv, message, runs_dir, capsys):
    assert main([*argv, "--runs-dir", str(runs_dir)]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_cli_background_show_and_refusals(runs_dir, capsys):
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "aelab", "train", "--variant", "ae", "--dataset",
                           "digits", "--epochs", "2", "--latent-dim", "3", "--background",
                           "--runs-dir", str(runs_dir)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert time.monotonic() - started < 15  # README records the measured figure (under 5 s idle)
    run_id, folder = done.stdout.split()
    assert folder == str((runs_dir / run_id).resolve())
    manager = RunManager(runs_dir)
    assert manager.wait(run_id, timeout=120)["state"] == "done"
    # the worker marks the caches "building" a moment after "done", then "ready" (or "failed")
    wait_for(lambda: read_status(runs_dir / run_id).get("caches") not in (None, "building"),
             timeout=180)
    assert read_status(runs_dir / run_id)["caches"] == "ready"
    before = (runs_dir / run_id / "status.json").read_text()  # final: the caches are built too
    assert main(["runs", "resume", run_id, "--runs-dir", str(runs_dir)]) == 2
    assert "is done; only interrupted or cancelled runs can be resumed" in capsys.readouterr().err
    assert main(["runs", "cancel", run_id, "--runs-dir", str(runs_dir)]) == 2
    assert "already done; nothing to cancel" in capsys.readouterr().err
    assert (runs_dir / run_id / "status.json").read_text() == before
    assert main(["runs", "show", run_id, "--json", "--runs-dir", str(runs_dir)]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["state"] == "done" and shown["latest_metrics"]["step"] == shown["step"]
    assert main(["runs", "list", "--json", "--runs-dir", str(runs_dir)]) == 0
    assert json.loads(capsys.readouterr().out)[0]["id"] == run_id
    assert main(["runs", "delete", run_id, "--runs-dir", str(runs_dir)]) == 0
    assert not (runs_dir / run_id).exists()
