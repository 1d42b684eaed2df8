"""A class on one server: who may change which run, and per-session limits on runs and uploads
(the rules live in aelab.runs.ownership; this module asks them with the session's identity)."""
from __future__ import annotations

import io
from pathlib import Path

import streamlit as st

from aelab.data.datasets import OFFLINE, TORCHVISION, _torchvision_cached, load_npz
from aelab.runs import ownership as access
from aelab.runs.folder import atomic_write_bytes
from aelab.runs.labels import is_demo
from aelab.ui import identity
from aelab.ui.folder import manager, runs_dir

UPLOADS = ".datasets"


def session_owner() -> str:
    """The id of this browser's student (``aelab.ui.identity``, kept in a signed cookie);
    runs it starts are recorded as its own."""
    return identity.me().id


def is_teacher() -> bool:
    """The local user (a browser on this machine, unless ``AELAB_LOCAL_TEACHER=0``), or a
    session that entered the token of ``$AELAB_TEACHER_TOKEN``."""
    if st.session_state.get("_aelab_teacher"):
        return True
    local = st.context.ip_address is None and bool(st.context.headers)  # AppTest: no headers
    return local and access.local_is_teacher()


def teacher_sign_in() -> None:
    """Sidebar: the teacher's token, typed once or brought by ``?token=`` (then removed from
    the URL so a shared link never carries it)."""
    if access.teacher_token() is None:
        return
    entered = st.query_params.get("token")
    if entered is not None:
        st.query_params.pop("token", None)
    entered = entered or st.session_state.get("teacher_token")
    if entered and access.token_matches(entered):
        st.session_state["_aelab_teacher"] = True
    if st.session_state.get("_aelab_teacher"):
        st.sidebar.caption(":material/school: Teacher: you can cancel and delete any run.")
    else:
        st.sidebar.text_input("Teacher token", type="password", key="teacher_token",
                              help="Set by AELAB_TEACHER_TOKEN when the server was started")
        if entered:
            st.sidebar.error("That is not the teacher's token.")


def with_owners(rows: list[dict]) -> list[dict]:
    """The rows with each run's recorded ``owner`` (None for demo runs and CLI runs)."""
    return [{**r, "owner": access.read_owner(runs_dir() / r["id"])} for r in rows]


def may_change(row: dict) -> str | None:
    """Why this session may not cancel, resume or delete the run, or None when it may."""
    return access.may_change(row["id"], row.get("owner"), session_owner(), is_teacher())


def check_allowed(row: dict) -> None:
    """Raise AccessError unless this session may change the run (a second check behind the
    disabled buttons)."""
    refusal = may_change(row)
    if refusal:
        raise access.AccessError(refusal)


def shows_warnings(row: dict) -> bool:
    """Whether this session sees the warnings about a run (``row`` with its ``owner``): its
    owner's and the class's demo runs; the teacher sees every run's."""
    return is_teacher() or is_demo(row["id"]) or row.get("owner") == session_owner()


def _started(rows: list[dict]) -> int:
    """Runs this student has started: the session's count, or their runs in the folder
    (a reload does not reset the limit)."""
    me = session_owner()
    return max(st.session_state.get("_aelab_started", 0), sum(1 for r in rows if r.get("owner") == me))


def submit_run(variant: str, dataset: str, model: dict, train: dict, challenge: str | None = None) -> str:
    """Start a run for this session within its limits, its owner's name (and ``challenge``)
    in its config.json; the run id."""
    rows = with_owners(manager().list())
    started = _started(rows)
    access.check_submit(rows, session_owner(), started, access.Limits.from_env(), is_teacher())
    run_id = manager().submit(variant, dataset, model, train,
                              meta={"owner": identity.me().name or None, "challenge": challenge})
    access.write_owner(runs_dir() / run_id, session_owner())
    identity.remember()
    st.session_state["_aelab_started"] = started + 1
    return run_id


def start_study(spec, ray_address: str | None = None) -> int:
    """Start (or pick up) a study for this session; each new trial counts as a run against a
    student's limits. With ``ray_address`` (the teacher's only) its trials run on that Ray
    cluster, driven by a ``sweep`` process started in the background. The number of trials."""
    from aelab.runs.study import Study, start_ray_sweep

    spec.validate()  # a wrong setting is the first thing to hear about
    trials = len(spec.trials())
    if ray_address:
        if not is_teacher():
            raise access.AccessError("Only the teacher may start a study on a Ray cluster; leave "
                                     "the Ray address blank to run it on this machine.")
        for run_dir in start_ray_sweep(spec, runs_dir(), ray_address):
            if access.read_owner(run_dir) is None:
                access.write_owner(run_dir, session_owner())
        return trials
    started = _started(with_owners(manager().list()))
    limits = access.Limits.from_env()
    if not is_teacher() and (trials > limits.active_runs or started + trials > limits.runs):
        raise access.AccessError(f"A study of {trials} runs is more than a student may start "
                                 f"({limits.active_runs} queued or running, {limits.runs} in all); "
                                 f"ask the teacher to start it.")
    access.check_submit(with_owners(manager().list()), session_owner(), started, limits,
                        is_teacher())
    for run_dir in Study(spec, runs_dir()).start():
        if access.read_owner(run_dir) is None:
            access.write_owner(run_dir, session_owner())
    identity.remember()
    st.session_state["_aelab_started"] = started + trials
    return trials


def uploads_dir() -> Path:
    return runs_dir() / UPLOADS


def dataset_choices() -> list[str]:
    """Datasets usable right now: shipped, cached downloads and uploaded npz files."""
    names = list(OFFLINE) + [n for n in TORCHVISION if _torchvision_cached(n)]
    if uploads_dir().is_dir():
        names += [f"npz:{p}" for p in sorted(uploads_dir().glob("*.npz"))]
    return names


def store_upload(filename: str, data: bytes) -> str:
    """Validate an uploaded npz in memory, then keep it beside the runs; its dataset name.

    The bytes are checked (``aelab.data.datasets.load_npz``: members, headers, unpacked size,
    labels, then the images) before anything is written, so nothing invalid is ever stored;
    a bad file raises the one-sentence DatasetError.
    """
    count, total = st.session_state.get("_aelab_uploads", (0, 0))
    access.check_upload(count, total, len(data), access.Limits.from_env(), is_teacher())
    stem = "".join(c if c.isalnum() or c in "-_" else "-" for c in Path(filename).stem)[:40] or "data"
    ds = load_npz(io.BytesIO(data), name=Path(filename).name or f"{stem}.npz")
    folder = uploads_dir()
    folder.mkdir(parents=True, exist_ok=True)
    final = folder / f"{stem}.npz"
    atomic_write_bytes(final, data)
    st.session_state["_aelab_uploads"] = (count + 1, total + len(data))
    name = f"npz:{final}"
    if ds.channels_last:
        c, h, w = ds.input_shape
        st.session_state.setdefault("_aelab_upload_notes", {})[name] = (
            f"Its images are channels-last (N, H, W, C), as PIL saves them; they are read as "
            f"{c} channel{'s' * (c > 1)} of {h}x{w} pixels (N, C, H, W).")
    return name


def upload_note(name: str) -> str | None:
    """What this session should know about how its upload ``name`` was read, if anything."""
    return st.session_state.get("_aelab_upload_notes", {}).get(name)


def store_upload_once(upload) -> str:
    """``store_upload`` for a file of ``st.file_uploader``, once per file: every rerun of the
    page sees the same file again, and counts against the session's limits only once."""
    stored = st.session_state.setdefault("_aelab_stored", {})
    if upload.file_id not in stored:
        stored[upload.file_id] = store_upload(upload.name, upload.getvalue())
    return stored[upload.file_id]
