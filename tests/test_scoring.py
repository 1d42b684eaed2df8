"""The background scorer: one process per run at a time, its states, and the worker's scores."""
import json
import sys
import time

import pytest

from aelab.metrics import background as scoring
from aelab.metrics.disentanglement import VERSION
from aelab.metrics.results import DISENTANGLEMENT, _get_json, weights_hash


@pytest.fixture
def run_dir(tmp_path):
    """A trained tiny digits run (the scorer's command is replaced, so any run will do)."""
    from aelab.runs.train import train_run
    from aelab.training.setup import prepare_run

    run = prepare_run("ae", "digits", {"latent_dim": 2, "hidden": "8"},
                      {"epochs": 1, "caches": False}, runs_dir=tmp_path)
    assert train_run(run)["state"] == "done"
    return run


def fake_scorer(monkeypatch, code: str) -> None:
    monkeypatch.setattr(scoring, "COMMAND", [sys.executable, "-c", code])


def wait_until_done(run_dir, timeout: float = 30.0) -> dict:
    deadline = time.monotonic() + timeout
    while (state := scoring.scoring_state(run_dir))["state"] == "running":
        assert time.monotonic() < deadline, "the scorer never finished"
        time.sleep(0.05)
    return state


def test_one_scorer_at_a_time_then_its_scores(run_dir, monkeypatch):
    digest = weights_hash(run_dir)
    fake_scorer(monkeypatch, "import json, sys, time; time.sleep(0.5); "
                f"open(sys.argv[1] + '/{DISENTANGLEMENT}', 'w').write(json.dumps("
                f"{{'value': {{'mig': 0.5, 'version': {VERSION}}}, 'weights_sha256': '{digest}'}}))")
    assert scoring.scoring_state(run_dir) == {"state": "missing"}
    assert scoring.start_scoring(run_dir) is True
    assert scoring.scoring_state(run_dir)["state"] == "running"
    assert scoring.start_scoring(run_dir) is False  # a second session starts nothing
    assert wait_until_done(run_dir) == {"state": "ready", "scores": {"mig": 0.5, "version": VERSION}}
    assert scoring.start_scoring(run_dir) is False  # fresh scores: nothing to do


def test_a_failed_scorer_says_why_and_can_start_again(run_dir, monkeypatch):
    fake_scorer(monkeypatch, "import sys; sys.exit('error: the model could not be loaded')")
    assert scoring.start_scoring(run_dir) is True
    assert wait_until_done(run_dir) == {"state": "failed",
                                        "error": "error: the model could not be loaded"}
    fake_scorer(monkeypatch, "pass")
    assert scoring.start_scoring(run_dir) is True
    assert wait_until_done(run_dir) == {"state": "failed",
                                        "error": "the scoring process ended without a result"}


def test_scores_of_other_weights_or_definitions_are_not_ready(run_dir):
    _get_json(run_dir, DISENTANGLEMENT, lambda: {"mig": 0.1, "version": VERSION})
    assert scoring.scoring_state(run_dir) == {"state": "ready",
                                              "scores": {"mig": 0.1, "version": VERSION}}
    cached = json.loads((run_dir / DISENTANGLEMENT).read_text())
    (run_dir / DISENTANGLEMENT).write_text(json.dumps({**cached, "weights_sha256": "0" * 64}))
    assert scoring.scoring_state(run_dir) == {"state": "missing"}
    old = {**cached, "value": {"mig": 0.1, "version": VERSION - 1}}  # scored by older code
    (run_dir / DISENTANGLEMENT).write_text(json.dumps(old))
    assert scoring.scoring_state(run_dir) == {"state": "missing"}
