"""A run folder a user names works as they mean it: ``train --out somewhere/else`` makes a run
that ``evaluate``, ``runs show``, ``runs resume`` and ``runs delete`` accept by that path,
through ``python -m aelab`` itself; deleting removes only the files a run writes
(``folder.RUN_FILES``)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from aelab.cli import main
from aelab.errors import RunError
from aelab.runs.folder import RUN_FILES, delete_run_files, is_run_folder, read_status, write_status
from aelab.runs.refs import RunRef

ROOT = Path(__file__).resolve().parents[1]
TINY = ["--variant", "ae", "--dataset", "digits", "--epochs", "1", "--latent-dim", "2",
        "--hidden", "8", "--param", "caches=false"]


def aelab(*args, cwd):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "AELAB_RUNS": str(cwd / "checkpoints")}
    return subprocess.run([sys.executable, "-m", "aelab", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


@pytest.fixture
def project(tmp_path):
    """A project folder with an empty ./checkpoints (its runs folder) and a user's file."""
    project = tmp_path / "project"
    (project / "checkpoints").mkdir(parents=True)
    (project / "keep.txt").write_text("the user's\n")
    return project


@pytest.mark.slow
def test_a_run_made_with_train_out_is_accepted_by_every_command(project):
    done = aelab("train", *TINY, "--out", "runs/class1", cwd=project)
    assert done.returncode == 0, done.stderr
    run = project / "runs" / "class1"
    assert done.stdout.strip() == "runs/class1" and is_run_folder(run)

    done = aelab("evaluate", "runs/class1", "--json", cwd=project)
    assert done.returncode == 0, done.stderr
    scores = json.loads(done.stdout)
    assert scores["run"] == "class1" and 0 < scores["recon_mse"] < 1

    done = aelab("runs", "show", "runs/class1", "--json", cwd=project)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["state"] == "done"
    # an interrupted run resumes by its path: a supervisor of runs/ finishes it
    write_status(run, **{**read_status(run), "state": "interrupted"})
    done = aelab("runs", "resume", str(run), cwd=project)
    assert done.returncode == 0 and "queued to resume" in done.stdout, done.stderr
    deadline = time.monotonic() + 180
    while read_status(run)["state"] not in ("done", "failed") and time.monotonic() < deadline:
        time.sleep(0.5)
    assert read_status(run)["state"] == "done", (run / "worker.log").read_text()
    while read_status(run).get("caches") == "building" and time.monotonic() < deadline:
        time.sleep(0.5)  # the worker builds the caches after training

    (run / "notes.txt").write_text("my notes on class1\n")
    assert set(os.listdir(run)) - {"notes.txt"} <= set(RUN_FILES)  # every file is a run file
    done = aelab("runs", "delete", "runs/class1", cwd=project)
    assert done.returncode == 0, done.stderr
    assert "stays, holding files aelab did not write: notes.txt" in done.stdout
    assert sorted(os.listdir(run)) == ["notes.txt"]
    assert (run / "notes.txt").read_text() == "my notes on class1\n"
    assert (project / "keep.txt").exists() and (project / "checkpoints").is_dir()
    # what is left is no run: commands now refuse it in one sentence
    done = aelab("evaluate", "runs/class1", cwd=project)
    assert done.returncode == 2 and "is not a run" in done.stderr, done.stderr
    assert done.stderr.count("\n") == 1


def test_what_is_left_is_no_run_and_an_empty_folder_goes(project, monkeypatch, capsys):
    monkeypatch.chdir(project)
    assert main(["train", *TINY, "--out", "runs/class1"]) == 0
    run = project / "runs" / "class1"
    (run / "notes.txt").write_text("mine\n")
    assert main(["runs", "delete", "runs/class1"]) == 0 and os.listdir(run) == ["notes.txt"]
    capsys.readouterr()
    for command in (["evaluate"], ["runs", "show"], ["runs", "resume"], ["runs", "delete"],
                    ["latent-scores"], ["disentangle"]):
        assert main([*command, "runs/class1"]) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: ") and "is not a run" in err and err.count("\n") == 1, err
    (run / "notes.txt").unlink()
    assert main(["train", *TINY, "--out", "runs/class1"]) == 0
    assert main(["runs", "delete", "runs/class1"]) == 0
    assert not run.exists() and (project / "runs").is_dir()  # an empty run folder goes


def test_delete_keeps_every_file_a_run_did_not_write(project, monkeypatch):
    monkeypatch.chdir(project)
    assert main(["train", *TINY, "--out", "elsewhere/r"]) == 0
    run = project / "elsewhere" / "r"
    (run / "notes.txt").write_text("mine\n")
    (run / "plots").mkdir()
    (run / "plots" / "a.png").write_bytes(b"png")
    (run / ".config.json.x1.tmp").write_text("a killed write")  # aelab's, left by a kill
    (run / ".notes.txt.x1.tmp").write_text("not aelab's")
    assert main(["runs", "delete", "elsewhere/r"]) == 0
    assert sorted(os.listdir(run)) == [".notes.txt.x1.tmp", "notes.txt", "plots"]
    assert (run / "plots" / "a.png").read_bytes() == b"png"


def test_a_run_folder_is_refused_from_inside_and_through_links(project, monkeypatch, capsys):
    monkeypatch.chdir(project)
    assert main(["train", *TINY, "--out", "runs/r"]) == 0
    (project / "runs" / "alias").symlink_to(project / "runs" / "r", target_is_directory=True)
    capsys.readouterr()
    for ref in ("runs/alias", "runs/alias/.", "runs/alias/../r/../alias"):
        assert main(["runs", "delete", ref]) == 2
        err = capsys.readouterr().err
        assert "is a symbolic link to" in err and "refused" in err, err
    monkeypatch.chdir(project / "runs" / "r")
    for ref in (".", "./", str(project / "runs" / "r")):
        assert main(["runs", "delete", ref]) == 2
        err = capsys.readouterr().err
        assert "is not a run id" in err or "is the folder you are in" in err, err
    assert is_run_folder(project / "runs" / "r")
    monkeypatch.chdir(project)
    assert main(["runs", "show", "runs/r"]) == 0


def test_run_folder_needs_what_aelab_writes(tmp_path):
    """``is_run_folder``: config.json (variant, settings, aelab's version) and a valid status."""
    run = tmp_path / "r"
    run.mkdir()
    config = {"variant": "ae", "model": {}, "train": {}, "versions": {"aelab": "0"}}
    (run / "config.json").write_text(json.dumps(config))
    assert not is_run_folder(run)  # no status.json
    write_status(run, state="done")
    assert is_run_folder(run)
    (run / "config.json").write_text(json.dumps({**config, "versions": {}}))
    assert not is_run_folder(run)
    (tmp_path / "runs").mkdir()
    with pytest.raises(RunError, match="is not a run: it is neither a folder directly inside"):
        RunRef.checked(str(run), tmp_path / "runs", anywhere=True)
    with pytest.raises(RunError, match="is not a run of the runs folder"):
        RunRef.checked(str(run), tmp_path / "runs")  # the app's rule: confined


def test_run_files_name_every_file_of_the_shipped_runs(tmp_path):
    """``RUN_FILES`` is complete: each file in each shipped demo run is one of them."""
    names = {p.name for p in (ROOT / "checkpoints").glob("*/*")}
    assert names and names <= set(RUN_FILES), names - set(RUN_FILES)
    empty = tmp_path / "e"
    empty.mkdir()
    assert delete_run_files(empty) == [] and not empty.exists()
