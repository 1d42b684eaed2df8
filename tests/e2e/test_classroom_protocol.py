"""Students without a browser (Streamlit's websocket protocol, protocol_client.py) against a
real ``streamlit run app.py``: what bench/classroom_load.py --clients protocol relies on."""
from __future__ import annotations

import asyncio

import pytest

from .appserver import AppServer, copy_demo_runs
from .protocol_client import Student, first_message, move_all, open_all, visit

RUN = "demo-vae"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A fresh server over copies of two demo runs; stopped by its pid even when a test fails."""
    folder = tmp_path_factory.mktemp("protocol")
    copy_demo_runs(folder / "runs", [RUN, "demo-ae-z2"])
    app = AppServer(folder / "runs", log_path=folder / "streamlit.log", threads="1").start()
    try:
        app.wait_healthy(timeout=90)
        yield app
    finally:
        app.stop()
    assert app.process.poll() is not None  # the server is gone


def test_three_students_at_once_each_get_the_traversal_picture_then_move_a_slider(server):
    async def lesson():
        students = [Student(server.url, timeout=120) for _ in range(3)]
        try:
            opened = await open_all(students, f"/traversal?run={RUN}", timeout=120)
            moved = await move_all(students, {"slider:Steps": [10]}, timeout=120)
        finally:
            for s in students:
                await s.close()
        return opened, moved

    opened, moved = asyncio.run(lesson())
    for v in opened:
        assert v.exceptions == [] and v.alerts == [], server.log_tail()
        assert v.picture_s is not None and v.picture_s <= v.finished_s  # the decoder's iframe
        assert v.finished_status == 0  # FINISHED_SUCCESSFULLY: the whole page ran
        assert v.media >= 1  # the traversal grid's images, fetched from /media as a browser does
        assert v.bytes_received > 100_000  # each its own session: the decoder's weights included
    for v in moved:  # the grid's Steps slider: a rerun with every widget's value, as a browser's
        assert v.exceptions == [] and v.alerts == [] and v.finished_status == 0, server.log_tail()
        assert v.media >= 1  # a new grid
        assert v.elements == opened[0].elements  # the same run's page (the picker kept its value)
        assert v.bytes_received < 100_000  # the unchanged decoder iframe came as a ref_hash


def test_an_unknown_run_gets_one_sentence_and_no_traceback(server):
    v = asyncio.run(visit(server.url, "/traversal?run=no-such-run", timeout=120))
    assert v.exceptions == []
    assert len(v.alerts) == 1 and v.alerts[0][0] == "WARNING", v.alerts
    sentence = v.alerts[0][1]
    assert sentence.startswith("There is no run 'no-such-run' in this runs folder, so it shows ")
    assert sentence.endswith(" instead.") and sentence.count(".") == 1
    assert v.finished_status == 0


def test_the_first_frame_is_the_browsers(server):
    """The frame a browser sends first (captured from Chromium): page name from the path."""
    from streamlit.proto.BackMsg_pb2 import BackMsg

    msg = BackMsg()
    msg.ParseFromString(first_message(f"{server.url}/traversal?run={RUN}"))
    state = msg.rerun_script
    assert (state.query_string, state.page_name, state.page_script_hash) == (f"run={RUN}", "traversal", "")
    assert state.HasField("widget_states") and not state.widget_states.widgets
    assert state.context_info.url == f"{server.url}/traversal"


def test_the_recorded_frontend_files_are_the_installed_streamlits():
    """The files a protocol student loads as a browser's first visit does exist in the installed
    streamlit (hashed names: an upgrade needs `classroom_load.py --record-assets`)."""
    from pathlib import Path

    import streamlit

    from .protocol_client import RECORDED_ASSETS, frontend_files

    static = Path(streamlit.__file__).parent / "static"
    files = frontend_files((static / "index.html").read_text())
    assert len(files) == len(RECORDED_ASSETS.read_text().split()) > 61  # the HTML's and the imported ones
    missing = [f for f in files if not (static / f.lstrip("/")).is_file()]
    assert not missing, f"record again: python bench/classroom_load.py --record-assets ({missing[:3]})"
