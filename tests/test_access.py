"""A class on one server: students change only their own runs, within per-session limits;
the teacher (token or local user) changes any. Library rules and the pages under AppTest."""
from __future__ import annotations

import io
import shutil
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

import aelab.runs.local
from aelab.errors import AelabError
from aelab.runs import ownership as access
from aelab.runs.folder import read_status
from aelab.runs.ownership import AccessError, Limits

APP = Path(__file__).resolve().parents[1] / "app.py"
DEMO = APP.parent / "checkpoints" / "demo-ae-z2"


# --- the rules ---
def test_limits_from_the_environment_and_bad_values():
    assert Limits.from_env({}) == Limits()
    assert Limits.from_env({"AELAB_STUDENT_ACTIVE_RUNS": "1", "AELAB_STUDENT_UPLOAD_MB": "2.5"}) == \
        Limits(active_runs=1, upload_mb=2.5)
    with pytest.raises(AelabError, match="AELAB_STUDENT_RUNS must be a number, got 'many'"):
        Limits.from_env({"AELAB_STUDENT_RUNS": "many"})
    with pytest.raises(AelabError, match="AELAB_STUDENT_UPLOADS must be 0 or more, got '-1'"):
        Limits.from_env({"AELAB_STUDENT_UPLOADS": "-1"})


def test_who_may_change_a_run():
    assert access.may_change("demo-vae", None, "me", teacher=False).startswith("Demo runs belong")
    assert access.may_change("r1", "someone", "me", teacher=False).startswith("This run was started by someone else")
    assert access.may_change("r1", None, "me", teacher=False) is not None  # started outside the app
    assert access.may_change("r1", "me", "me", teacher=False) is None
    assert access.may_change("demo-vae", None, "me", teacher=True) is None
    assert access.may_change("r1", "someone", "me", teacher=True) is None


def test_token_matches_only_the_configured_token():
    env = {"AELAB_TEACHER_TOKEN": "s3cret"}
    assert access.token_matches("s3cret", env)
    assert not access.token_matches("s3cret ", env) and not access.token_matches("", env)
    assert not access.token_matches("s3cret", {})  # no token configured: nobody by token


def test_submission_and_upload_limits():
    rows = [{"owner": "me", "state": "running"}, {"owner": "me", "state": "done"},
            {"owner": "you", "state": "queued"}]
    access.check_submit(rows, "me", 1, Limits(active_runs=2), teacher=False)
    with pytest.raises(AccessError, match="You already have 1 run\\(s\\) queued or running \\(the limit is 1\\)"):
        access.check_submit(rows, "me", 1, Limits(active_runs=1), teacher=False)
    with pytest.raises(AccessError, match="has started 10 runs"):
        access.check_submit(rows, "me", 10, Limits(), teacher=False)
    access.check_submit(rows, "me", 99, Limits(active_runs=0, runs=0), teacher=True)
    with pytest.raises(AccessError, match="uploaded 3 files"):
        access.check_upload(3, 0, 10, Limits(), teacher=False)
    with pytest.raises(AccessError, match="to 60.0 MB, over the limit of 50 MB"):
        access.check_upload(1, 40_000_000, 20_000_000, Limits(), teacher=False)
    access.check_upload(9, 0, 10**9, Limits(), teacher=True)


# --- the pages ---
@pytest.fixture
def runs(tmp_path, monkeypatch):
    """A runs folder with a demo run; no supervisor is started."""
    root = tmp_path / "runs"
    root.mkdir()
    shutil.copytree(DEMO, root / DEMO.name)
    monkeypatch.setenv("AELAB_RUNS", str(root))
    monkeypatch.delenv("AELAB_TEACHER_TOKEN", raising=False)
    monkeypatch.setattr(aelab.runs.local, "ensure_supervisor", lambda runs_dir, max_parallel=None: None)
    return root


def page(name: str, **query) -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=120)
    at.switch_page(f"pages/{name}.py")
    at.query_params.update(query)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def start_run(at: AppTest) -> AppTest:
    at.switch_page("pages/train.py").run()
    at.selectbox(key="variant").select("ae").run()
    at.number_input(key="train.epochs").set_value(1)
    at.button(key="start").click().run()
    assert not at.exception
    return at


def test_a_student_cannot_change_demo_runs_or_others_but_can_cancel_their_own(runs):
    at = page("runs")  # AppTest has no browser connection: a student, not the local user
    at.selectbox(key="action_run").select("demo-ae-z2").run()
    assert at.button(key="delete").disabled and at.checkbox(key="confirm_delete").disabled
    assert any("Demo runs belong to the class" in c.value for c in at.caption)

    start_run(at)
    (mine,) = [p.name for p in runs.iterdir() if p.name != DEMO.name and not p.name.startswith(".")]
    at.switch_page("pages/runs.py").run()
    at.selectbox(key="action_run").select(mine).run()
    assert not at.button(key="cancel").disabled
    at.button(key="cancel").click().run()
    assert read_status(runs / mine)["state"] == "cancelled"

    other = page("runs")  # another browser session
    other.selectbox(key="action_run").select(mine).run()
    assert other.button(key="delete").disabled and other.button(key="resume").disabled
    assert any("started by someone else" in c.value for c in other.caption)


def test_a_student_is_held_to_the_active_run_limit(runs, monkeypatch):
    monkeypatch.setenv("AELAB_STUDENT_ACTIVE_RUNS", "1")
    at = start_run(page("home"))
    assert not at.error
    start_run(at)
    assert [e.value for e in at.error] == [
        "You already have 1 run(s) queued or running (the limit is 1); wait for one to finish or cancel one."]
    assert len([p for p in runs.iterdir() if p.is_dir() and not p.name.startswith(".")]) == 2


def test_the_teacher_token_from_a_link_unlocks_and_leaves_the_url(runs, monkeypatch):
    monkeypatch.setenv("AELAB_TEACHER_TOKEN", "s3cret")
    wrong = page("runs", token="nope")
    assert any("not the teacher's token" in e.value for e in wrong.error)
    at = page("runs", token="s3cret")
    assert "token" not in at.query_params  # never shared on with a link
    at.selectbox(key="action_run").select("demo-ae-z2").run()
    assert not at.checkbox(key="confirm_delete").disabled
    at.checkbox(key="confirm_delete").check().run()
    at.button(key="delete").click().run()
    assert not (runs / "demo-ae-z2").exists()


def test_the_token_typed_in_the_sidebar(runs, monkeypatch):
    monkeypatch.setenv("AELAB_TEACHER_TOKEN", "s3cret")
    at = page("runs")
    at.text_input(key="teacher_token").input("s3cret").run()
    assert any("Teacher" in c.value for c in at.sidebar.caption)


def test_uploads_are_limited_per_session_and_counted_once_per_file(runs, monkeypatch):
    monkeypatch.setenv("AELAB_STUDENT_UPLOADS", "1")
    buffer = io.BytesIO()
    np.savez(buffer, x=np.random.default_rng(0).integers(0, 256, (40, 8, 8), dtype=np.uint8))
    at = page("train")
    at.file_uploader(key="upload").set_value(("one.npz", buffer.getvalue(), "application/octet-stream")).run()
    at.run()  # the same file on a rerun is not a second upload
    assert not at.error and [s.value for s in at.success] == ["Stored one (uploaded); it is now in the dataset list."]
    at.file_uploader(key="upload").set_value(("two.npz", buffer.getvalue(), "application/octet-stream")).run()
    assert [e.value for e in at.error] == ["This session has uploaded 1 files, the limit for a student."]
