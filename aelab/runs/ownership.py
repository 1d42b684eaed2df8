"""Who may do what when a class shares one server (no streamlit here;
``aelab.ui.sessions`` asks).

- A run started from the app records its owner (a random id of the browser session) in
  ``<run>/owner.json``. A student may cancel, resume or delete only their own runs; the demo
  runs and everyone else's are read-only to them.
- The teacher may do everything: the local user (a browser on the server's own machine),
  or anyone who enters the token of ``$AELAB_TEACHER_TOKEN``.
- Per-session limits keep one student from filling the queue or the disk (``Limits``,
  from environment variables so a teacher sets them when starting the server).
"""
from __future__ import annotations

import hmac
import os
from dataclasses import dataclass
from pathlib import Path

from aelab.errors import AelabError
from aelab.runs.folder import OWNER, atomic_write_json, read_json
from aelab.runs.labels import is_demo

OWNER_FILE = OWNER
TOKEN_ENV = "AELAB_TEACHER_TOKEN"
LOCAL_TEACHER_ENV = "AELAB_LOCAL_TEACHER"  # "0": the local user is a student too


class AccessError(AelabError):
    """An action this session may not take, as one sentence."""


@dataclass(frozen=True)
class Limits:
    """Per browser session (the teacher has none)."""
    active_runs: int = 2       # queued or running at once
    runs: int = 10             # started in all
    uploads: int = 3           # npz files stored
    upload_mb: float = 50.0    # their total size

    @classmethod
    def from_env(cls, env=os.environ) -> "Limits":
        """``AELAB_STUDENT_ACTIVE_RUNS``, ``AELAB_STUDENT_RUNS``, ``AELAB_STUDENT_UPLOADS``,
        ``AELAB_STUDENT_UPLOAD_MB``; a bad value is refused with a sentence."""
        values = {}
        for field, name, cast in (("active_runs", "AELAB_STUDENT_ACTIVE_RUNS", int),
                                  ("runs", "AELAB_STUDENT_RUNS", int), ("uploads", "AELAB_STUDENT_UPLOADS", int),
                                  ("upload_mb", "AELAB_STUDENT_UPLOAD_MB", float)):
            raw = env.get(name)
            if raw is None or raw == "":
                continue
            try:
                values[field] = cast(raw)
            except ValueError:
                raise AelabError(f"{name} must be a number, got {raw!r}") from None
            if values[field] < 0:
                raise AelabError(f"{name} must be 0 or more, got {raw!r}")
        return cls(**values)


def teacher_token(env=os.environ) -> str | None:
    """The teacher's token, or None when the server was started without one."""
    return env.get(TOKEN_ENV) or None


def token_matches(entered: str | None, env=os.environ) -> bool:
    """Whether ``entered`` is the teacher's token (constant-time comparison)."""
    token = teacher_token(env)
    return bool(token and entered) and hmac.compare_digest(token.encode(), str(entered).encode())


def local_is_teacher(env=os.environ) -> bool:
    return env.get(LOCAL_TEACHER_ENV, "1") != "0"


def write_owner(run_dir, owner: str) -> None:
    """Record the session that started the run."""
    atomic_write_json(Path(run_dir) / OWNER_FILE, {"owner": owner})


def read_owner(run_dir) -> str | None:
    """The owner recorded for the run, or None (a demo run, or one started outside the app)."""
    path = Path(run_dir) / OWNER_FILE
    if not path.is_file():
        return None
    try:
        return read_json(path, f"owner of run {Path(run_dir).name}").get("owner")
    except AelabError:
        return None


def may_change(run_id: str, owner: str | None, me: str, teacher: bool) -> str | None:
    """Why this session may not cancel, resume or delete the run, or None when it may."""
    if teacher:
        return None
    if is_demo(run_id):
        return "Demo runs belong to the class: only the teacher can cancel or delete them."
    if owner != me:
        return "This run was started by someone else: only they or the teacher can change it."
    return None


def check_submit(rows: list[dict], me: str, started: int, limits: Limits, teacher: bool) -> None:
    """Raise AccessError when this session may not start another run. ``rows``: the runs
    with their ``owner``; ``started``: how many this session has started."""
    if teacher:
        return
    active = sum(1 for r in rows if r.get("owner") == me and r.get("state") in ("queued", "running"))
    if active >= limits.active_runs:
        raise AccessError(f"You already have {active} run(s) queued or running (the limit is "
                          f"{limits.active_runs}); wait for one to finish or cancel one.")
    if started >= limits.runs:
        raise AccessError(f"This session has started {started} runs, the limit for a student; "
                          "ask the teacher to start more.")


def check_upload(count: int, total_bytes: int, size: int, limits: Limits, teacher: bool) -> None:
    """Raise AccessError when this session may not store another upload of ``size`` bytes."""
    if teacher:
        return
    if count >= limits.uploads:
        raise AccessError(f"This session has uploaded {count} files, the limit for a student.")
    if (total_bytes + size) / 1e6 > limits.upload_mb:
        raise AccessError(f"This upload would bring your uploads to {(total_bytes + size) / 1e6:.1f} MB, "
                          f"over the limit of {limits.upload_mb:g} MB per student.")
