"""Who this browser is: a student's name, typed once or brought by a teacher's link, kept in
a cookie across reloads and new tabs (the rules and the signing: ``aelab.runs.students``).

The cookie holds the server-signed token, never a bare name; the page reads it from
``st.context.cookies`` (what the browser sent when it connected) and writes it with a line
of JavaScript (``st.html``), so a reload or a new tab of the same browser is the same student.
"""
from __future__ import annotations

from collections.abc import Mapping

import streamlit as st

from aelab.runs import students
from aelab.runs.students import Student
from aelab.ui.folder import runs_dir

COOKIE = "aelab_student"
PARAM = "student"           # ?student=Ada, or ?student=<token> from the teacher's links
KEY = "_aelab_identity"     # this session's Student (or None before it needs one)
MAX_AGE = 180 * 24 * 3600   # a term


def browser_cookies() -> Mapping[str, str]:
    """The cookies the browser sent (a seam: AppTest has no browser to send them)."""
    return st.context.cookies


def current() -> Student | None:
    """This browser's student, from the session or its cookie; None until it needs one."""
    if KEY not in st.session_state:
        st.session_state[KEY] = students.from_token(runs_dir(), browser_cookies().get(COOKIE))
    return st.session_state[KEY]


def me() -> Student:
    """This browser's student, made (nameless) the first time it starts something."""
    student = current()
    if student is None:
        student = st.session_state[KEY] = students.new_student()
    return student


def take_name(raw: str) -> Student:
    """Give this browser's student the name ``raw`` (StudentNameError if it cannot be theirs)."""
    student = me()
    name = students.clean_name(raw)
    if student.name and student.name.casefold() != name.casefold():
        raise students.StudentNameError(f"This browser is already {student.name}; a student "
                                        "chooses a name once (ask the teacher for a link to change it).")
    student = st.session_state[KEY] = students.claim(runs_dir(), student, name)
    return student


def _adopt_link(value: str) -> None:
    """``?student=``: a token from the teacher's links, else a name to take."""
    signed = students.from_token(runs_dir(), value)
    if signed is not None:
        st.session_state[KEY] = signed
        return
    take_name(value)


def student_sign_in() -> None:
    """Sidebar: the student's name (typed once, or from ``?student=``, removed from the
    address once read), and the cookie that keeps it."""
    link = st.query_params.get(PARAM)
    if link is not None:
        st.query_params.pop(PARAM, None)
    try:
        if link:
            _adopt_link(link)
        typed = st.session_state.get("student_name")
        if typed and not (current() and current().name):
            take_name(typed)
    except students.StudentNameError as exc:
        st.sidebar.error(str(exc))
    student = current()
    if student is not None and student.name:
        st.sidebar.caption(f":material/person: You are **{student.name}**: your runs stay yours "
                           "after a reload, in this browser.")
    else:
        st.sidebar.text_input("Your name", key="student_name", max_chars=students.MAX_NAME,
                              help="Typed once: your runs carry it, and stay yours after a reload")
    if student is not None:
        _keep(students.token_for(runs_dir(), student), st.sidebar)


def remember() -> None:
    """Write this student's cookie now (where a run was just started: the browser may be
    reloaded before the page runs again)."""
    _keep(students.token_for(runs_dir(), me()), st)


def _keep(token: str, where) -> None:
    """Write the cookie unless the browser already sent this token."""
    if browser_cookies().get(COOKIE) == token:
        return
    where.html(f"<script>document.cookie = '{COOKIE}={token}; path=/; max-age={MAX_AGE}; "
                    "SameSite=Strict';</script>", unsafe_allow_javascript=True)


def name_link(name: str) -> str:
    """For the teacher: the ``student=`` value of a link that makes its opener ``name``."""
    return students.token_of_name(runs_dir(), name)
