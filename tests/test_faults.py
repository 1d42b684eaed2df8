"""Fault injection: hostile run references, damaged run files, non-finite weights, bad npz
files, a full disk and odd arguments. Each fault must give one sentence (exit status 2 on
the CLI), lose nothing and touch nothing outside the runs folder.

``FAULTS`` counts the kinds tried; ``python -m pytest -q tests/test_faults.py`` prints the
README table's figures at the end (see ``test_zz_summary``).
"""
from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from aelab.cli import main
from aelab.errors import RunError
from aelab.manager import RunManager
from aelab.runref import RunRef
from aelab.runs import write_status
from aelab.train import prepare_run

TINY = {"latent_dim": 2, "hidden": "8"}
FAULTS: dict[str, list] = {}  # kind -> [tried, refused with one sentence, lost nothing]


def record(kind: str, sentence_ok: bool, nothing_lost: bool) -> None:
    row = FAULTS.setdefault(kind, [0, 0, 0])
    row[0] += 1
    row[1] += bool(sentence_ok)
    row[2] += bool(nothing_lost)


def snapshot(folder: Path, skip: Path | None = None) -> dict[str, str]:
    """Every file and folder under ``folder`` (not following links) with a hash of its bytes."""
    seen = {}
    for root, dirs, files in os.walk(folder):
        if skip is not None and Path(root).resolve() == skip.resolve():
            dirs[:] = []
            continue
        for name in dirs + files:
            path = Path(root) / name
            rel = str(path.relative_to(folder))
            if path.is_symlink() or path.is_dir():
                seen[rel] = "link" if path.is_symlink() else "dir"
            else:
                seen[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
    return seen


def one_sentence(err: str) -> bool:
    err = err.strip()
    return err.startswith("error: ") and "\n" not in err and "Traceback" not in err


# --- 1. run references confined to the runs folder ---
@pytest.fixture
def project(tmp_path, monkeypatch):
    """A project folder (cwd) with sentinels, ./checkpoints holding one run, and outside it
    a folder that looks exactly like an interrupted run."""
    project = tmp_path / "project"
    (project / ".git").mkdir(parents=True)
    (project / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    (project / "notes.txt").write_text("keep me\n")
    runs = project / "checkpoints"
    runs.mkdir()
    monkeypatch.chdir(project)
    monkeypatch.delenv("AELAB_RUNS", raising=False)
    inside = prepare_run("ae", "digits", TINY, {"epochs": 1}, runs_dir=runs)
    outside = prepare_run("ae", "digits", TINY, {"epochs": 1}, out=tmp_path / "outside")
    write_status(outside, state="interrupted", error="sentinel")
    (runs / "link").symlink_to(outside, target_is_directory=True)
    (runs / "notarun").mkdir()
    (runs / "notarun" / "keep.txt").write_text("not a run\n")
    return {"root": tmp_path, "project": project, "runs": runs, "inside": inside,
            "outside": outside}


def hostile_refs(p) -> list[str]:
    return ["..", "../outside", ".", "", str(p["outside"]), str(p["project"]), "/",
            "checkpoints/../../outside", "link", str(p["runs"] / "link"), ".git", "~",
            "../project/notes.txt", "nope/../..", "checkpoints"]


RUN_COMMANDS = [["runs", "show"], ["runs", "cancel"], ["runs", "resume"], ["runs", "delete"],
                ["evaluate"], ["disentangle"], ["worker"]]


@pytest.mark.parametrize("command", RUN_COMMANDS, ids=" ".join)
def test_run_commands_refuse_every_reference_outside_the_runs_folder(project, command, capsys):
    before = snapshot(project["root"], skip=project["runs"])
    inside_before = snapshot(project["runs"])
    for ref in hostile_refs(project):
        code = main([*command, ref])
        err = capsys.readouterr().err
        ok = code == 2 and one_sentence(err)
        lost = snapshot(project["root"], skip=project["runs"]) != before
        record("hostile run reference", ok, not lost)
        assert ok, (ref, code, err)
        assert not lost, ref
    assert snapshot(project["runs"]) == inside_before  # the link and notarun are untouched


def test_runs_delete_dot_in_the_project_folder_deletes_nothing(project):
    """The reported disaster: ``python -m aelab runs delete .`` typed in the project folder."""
    before = snapshot(project["root"])
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    for ref in (".", "..", str(project["outside"])):
        done = subprocess.run([sys.executable, "-m", "aelab", "runs", "delete", ref],
                              cwd=project["project"], env=env, capture_output=True, text=True)
        assert done.returncode == 2 and one_sentence(done.stderr), done.stderr
    assert snapshot(project["root"]) == before


def test_delete_needs_a_config_and_works_on_a_real_run(project, capsys):
    assert main(["runs", "delete", "notarun"]) == 2
    assert "holds no config.json, so it is not a run" in capsys.readouterr().err
    assert (project["runs"] / "notarun" / "keep.txt").exists()
    assert main(["runs", "show", project["inside"].name]) == 0
    assert main(["runs", "delete", str(project["inside"])]) == 0  # a path inside is accepted
    assert not project["inside"].exists() and project["outside"].is_dir()


def test_manager_and_app_refuse_references_outside(project, monkeypatch):
    manager = RunManager(project["runs"], start_supervisor=False)
    before = snapshot(project["root"], skip=project["runs"])
    calls = [manager.show, manager.status, manager.cancel, manager.resume, manager.delete,
             lambda r: manager.wait(r, timeout=0)]
    for ref in hostile_refs(project):
        for call in calls:
            with pytest.raises(RunError):
                call(ref)
    assert snapshot(project["root"], skip=project["runs"]) == before
    rows = {row["id"]: row for row in manager.list()}
    assert rows["link"]["state"] == "damaged" and "outside the runs folder" in rows["link"]["damaged"]
    monkeypatch.setenv("AELAB_RUNS", str(project["runs"]))
    from aelab import ui

    for ref in hostile_refs(project):
        with pytest.raises(RunError):
            ui.run_ref(ref)
        with pytest.raises(RunError):
            ui.run_ref({"id": ref})
    assert ui.run_ref({"id": project["inside"].name}).path == project["inside"]


def test_refusals_are_one_plain_sentence(project):
    runs = project["runs"]
    with pytest.raises(RunError, match=r"^'\.\.' is not a run id"):
        RunRef.resolve("..", runs)
    with pytest.raises(RunError, match=r"is a symbolic link to .* outside the runs folder"):
        RunRef.resolve("link", runs)
    with pytest.raises(RunError, match=r"is not a run of the runs folder"):
        RunRef.resolve(str(project["outside"]), runs)
    with pytest.raises(RunError, match=r"run ids never start with a dot"):
        RunRef.resolve(".git", runs)
    ref = RunRef.resolve(project["inside"].name, runs)
    assert ref.path == project["inside"] and ref.config["variant"] == "ae"
    assert os.fspath(ref) == str(project["inside"]) and (ref / "config.json").is_file()
