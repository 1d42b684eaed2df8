"""A student is somebody: a name typed once, kept in a server-signed cookie; a reload keeps
their runs theirs, a forged cookie or a taken name gets nobody else's."""
from __future__ import annotations

import re

import pytest
from conftest import open_page
from streamlit.testing.v1 import AppTest

from aelab.runs import students
from aelab.runs.folder import read_status, write_status
from aelab.runs.students import StudentNameError
from aelab.ui import identity


# --- the rules ---
def test_tokens_are_signed_and_names_held_by_one_student(tmp_path):
    ada = students.claim(tmp_path, students.new_student(), "  Ada   Lovelace ")
    assert ada.name == "Ada Lovelace"
    token = students.token_for(tmp_path, ada)
    assert students.from_token(tmp_path, token) == ada
    sid, name, signature = token.split(".")
    bob = students._b64("Bob")
    assert students.from_token(tmp_path, f"{sid}.{bob}.{signature}") is None  # name edited
    assert students.from_token(tmp_path, f"{'0' * 16}.{name}.{signature}") is None  # id edited
    assert students.from_token(tmp_path, f"{sid}.{name}.{'0' * 32}") is None  # signature made up
    assert students.from_token(tmp_path / "other", token) is None  # another server's secret
    assert students.from_token(tmp_path, "Ada") is None and students.from_token(tmp_path, None) is None
    with pytest.raises(StudentNameError, match="The name ADA LOVELACE is already taken in this class"):
        students.claim(tmp_path, students.new_student(), "ADA LOVELACE")
    assert students.claim(tmp_path, ada, "ada lovelace").id == ada.id  # her own name again
    with pytest.raises(StudentNameError, match="A name is 1 to 30 letters"):
        students.clean_name("<script>")
    # the teacher's link for a taken name is its holder's token; a free name gets a new student
    assert students.from_token(tmp_path, students.token_of_name(tmp_path, "Ada Lovelace")) == ada
    cy = students.from_token(tmp_path, students.token_of_name(tmp_path, "Cy"))
    assert cy.name == "Cy" and cy.id != ada.id


# --- the pages ---
@pytest.fixture
def runs(runs_dir, monkeypatch, supervisor_calls):
    """An empty runs folder, no token, no supervisor."""
    monkeypatch.delenv("AELAB_TEACHER_TOKEN", raising=False)
    return runs_dir


@pytest.fixture
def cookies(monkeypatch):
    """The cookies every AppTest session's browser sends (AppTest has no browser to keep them)."""
    jar: dict[str, str] = {}
    monkeypatch.setattr(identity, "browser_cookies", lambda: dict(jar))
    return jar


def browser(page: str = "runs", **query) -> AppTest:
    """A new session of the browser whose cookies are ``cookies``: ``page`` with ``query``."""
    return open_page(page, errors=True, **query)


def written_cookie(at: AppTest) -> str:
    """The token the page's script writes into the browser's cookie."""
    bodies = [h.proto.body for h in at.get("html") + at.sidebar.get("html")]
    (token,) = {m for b in bodies for m in re.findall(rf"{identity.COOKIE}=([\w.\-]+);", b)}
    return token


def start_run(at: AppTest) -> str:
    at.switch_page("pages/train.py").run()
    at.selectbox(key="variant").select("ae").run()
    at.number_input(key="train.epochs").set_value(1)
    at.button(key="start").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    (run_id,) = re.findall(r"Started run (\S+) in the background", at.success[0].value)
    return run_id


def test_the_teacher_is_never_asked_for_a_students_name(runs, cookies, monkeypatch):
    monkeypatch.setenv("AELAB_TEACHER_TOKEN", "class-token-for-this-test")
    student = browser("home")
    assert [t.key for t in student.sidebar.text_input] == ["teacher_token", "student_name"]
    teacher = browser("home", token="class-token-for-this-test")
    assert "student_name" not in [t.key for t in teacher.sidebar.text_input]


def test_a_reload_keeps_a_students_runs_and_a_forged_cookie_gets_none(runs, cookies):
    ada = browser("home")
    ada.text_input(key="student_name").input("Ada").run()
    assert any("You are **Ada**" in c.value for c in ada.sidebar.caption)
    mine = start_run(ada)
    config = (runs / mine / "config.json").read_text()
    assert '"owner": "Ada"' in config
    token = written_cookie(ada)

    cookies[identity.COOKIE] = token  # the reload: a new session, the same browser
    again = browser("runs")
    assert any("You are **Ada**" in c.value for c in again.sidebar.caption)
    assert again.selectbox(key="action_run").value == mine  # her newest run is the default
    assert " · Ada · " in again.selectbox(key="action_run").format_func(mine)
    assert not again.button(key="cancel").disabled
    again.button(key="cancel").click().run()
    assert read_status(runs / mine)["state"] == "cancelled"

    sid, _, signature = token.split(".")
    for forged in (f"{sid}.{students._b64('Ada')}.{'f' * 32}", f"{'1' * 16}.{students._b64('Ada')}.{signature}"):
        cookies[identity.COOKIE] = forged
        other = browser("runs")
        assert not any("You are" in c.value for c in other.sidebar.caption)
        other.selectbox(key="action_run").select(mine).run()
        assert other.button(key="resume").disabled and other.checkbox(key="confirm_delete").disabled
        assert any("started by someone else" in c.value for c in other.caption)

    cookies.clear()  # another browser types her name
    other = browser("runs")
    other.text_input(key="student_name").input("ada").run()
    assert [e.value for e in other.sidebar.error] == [
        "The name ada is already taken in this class; add an initial or a number (e.g. ada B.), or ask the teacher."]
    other.selectbox(key="action_run").select(mine).run()
    assert other.button(key="resume").disabled


def test_a_teachers_link_carries_a_name_once(runs, cookies):
    at = browser("home", student="Grace")
    assert "student" not in at.query_params  # read once, then gone from the address
    assert any("You are **Grace**" in c.value for c in at.sidebar.caption)
    token = written_cookie(at)
    assert students.from_token(runs, token).name == "Grace"
    cookies[identity.COOKIE] = token
    assert not browser("home").sidebar.get("html")  # the browser sent it: nothing to write
    cookies.clear()
    taken = browser("home", student="Grace")  # the same link in another browser
    assert any("already taken" in e.value for e in taken.sidebar.error)
    signed = browser("home", student=students.token_of_name(runs, "Grace"))  # the teacher's link for her
    assert any("You are **Grace**" in c.value for c in signed.sidebar.caption)


def test_warnings_are_shown_to_the_runs_owner_only(runs, cookies):
    ada = browser("home")
    ada.text_input(key="student_name").input("Ada").run()
    mine = start_run(ada)
    # the record of a diverged loss, in the trainer's words (aelab.training.trainer)
    write_status(runs / mine, **{**read_status(runs / mine), "state": "failed",
                                 "error": "training diverged: loss term 'loss' became non-finite at step 3"})
    cookies[identity.COOKIE] = written_cookie(ada)
    assert any("NaN or infinite" in w.value for w in browser("runs").warning)
    cookies.clear()
    assert not any("NaN or infinite" in w.value for w in browser("runs").warning)
