"""Pages that show progress stay live: the Study and Runs pages follow trials and runs from
running to done (status files written by hand between two runs of the page) and then show
the finished results; progress counts are never baked into a widget's label, where a
browser keeps the first one (tests/e2e/test_live_browser.py checks the polling itself)."""
from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

import aelab.runs.local
from aelab.runs.folder import read_status, write_status

APP = Path(__file__).resolve().parents[1] / "app.py"


@pytest.fixture(autouse=True)
def no_supervisor(monkeypatch):
    monkeypatch.setattr(aelab.runs.local, "ensure_supervisor", lambda *a, **k: None)


def open_page(page: str, **query) -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=60)
    at.switch_page(page)
    at.query_params.update(query)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def captions(at) -> list[str]:
    return [c.value for c in at.caption]


def test_study_page_follows_its_trials_to_the_finished_figures(runs_dir, hand_study):
    study = hand_study(runs_dir)
    study.run()
    at = open_page("pages/study.py", study=study.ID)
    assert "Trials: 0/2 done, 2 running (50% of all steps)" in captions(at)
    assert [i.value for i in at.info] == ["No trial has finished yet; the plot appears with "
                                          "the first result."]
    assert not at.get("plotly_chart")
    box = at.selectbox(key="st_study")
    assert box.value == study.ID and "done" not in box.format_func(box.value)  # counts are live

    study.finish()
    at.run()
    assert not at.exception
    assert "Trials: 2/2 done (100% of all steps)" in captions(at)
    assert not at.info and len(at.get("plotly_chart")) == 1
    assert at.selectbox(key="st_metric").value == "train_loss"
    summary = at.dataframe[1].value  # the trials, then the summary
    assert list(summary["mean"]) == pytest.approx([0.2, 0.1])


def test_a_trial_whose_worker_vanished_ends_interrupted(runs_dir, hand_study):
    """A worker gone without a final state would keep the page polling for ever."""
    study = hand_study(runs_dir)
    study.run()
    gone = study.trials[0]
    write_status(gone, **{**read_status(gone), "pid": 2 ** 22 + 1})  # above Linux's pid_max
    at = open_page("pages/study.py", study=study.ID)
    states = list(at.dataframe[0].value["state"])
    assert sorted(states) == ["interrupted", "running"]
    assert "Trials: 0/2 done, 1 interrupted, 1 running (50% of all steps)" in captions(at)


def test_runs_page_follows_a_run_to_done(runs_dir, hand_study):
    study = hand_study(runs_dir)
    study.run(progress=0.25)
    at = open_page("pages/runs.py")
    table = at.dataframe[0].value
    assert list(table["state"]) == ["running", "running"]
    study.finish()
    at.run()
    assert not at.exception
    assert list(at.dataframe[0].value["state"]) == ["done", "done"]
