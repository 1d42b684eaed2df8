"""The Study page and its library: trials' progress, a metric against a grid value."""
from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

import aelab.runs.local
from aelab.data.datasets import training_images
from aelab.metrics.results import get_eval
from aelab.runs.folder import read_status
from aelab.runs.study import StudySpec, parse_grid
from aelab.runs.study_results import list_studies, summarise_metric, trial_rows
from aelab.runs.train import train_run
from aelab.training.budget import DEFAULT_STEPS
from aelab.training.setup import prepare_run

APP = Path(__file__).resolve().parents[1] / "app.py"
SPEC = StudySpec("ae", "digits", parse_grid(["latent_dim=2,5"]), seeds=2,
                 params={"hidden": "32", "epochs": "1", "caches": "false"})


@pytest.fixture(scope="module")
def study_root(tmp_path_factory):
    """A finished 2x2 study on digits, trained in this process, with eval.json per trial."""
    root = tmp_path_factory.mktemp("study-runs")
    for point, seed in SPEC.trials():
        record = {"id": SPEC.id, "point": point, "seed": seed, "grid": SPEC.grid, "seeds": 2}
        run_dir = prepare_run("ae", "digits", *SPEC.split(point, seed), runs_dir=root, study=record)
        assert train_run(run_dir)["state"] == "done"
        get_eval(run_dir)
    return root


@pytest.fixture(autouse=True)
def no_supervisor(monkeypatch):
    calls = []
    monkeypatch.setattr(aelab.runs.local, "ensure_supervisor",
                        lambda runs_dir, max_parallel=None: calls.append(runs_dir))
    return calls


def open_study_page(root, monkeypatch, **query) -> AppTest:
    monkeypatch.setenv("AELAB_RUNS", str(root))
    at = AppTest.from_file(str(APP), default_timeout=60)
    at.switch_page("pages/study.py")
    at.query_params.update(query)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_the_summary_is_the_mean_and_spread_over_seeds(study_root):
    rows = trial_rows(study_root, SPEC.id)
    assert len(rows) == 4 and all(r["state"] == "done" for r in rows)
    summary = summarise_metric(rows, "recon_mse", "latent_dim")
    assert [s["x"] for s in summary] == [2, 5] and [s["n"] for s in summary] == [2, 2]
    for s in summary:
        values = [r["metrics"]["recon_mse"] for r in rows if r["point"]["latent_dim"] == s["x"]]
        mean = sum(values) / 2
        assert s["mean"] == pytest.approx(mean)
        assert s["std"] == pytest.approx(math.sqrt(sum((v - mean) ** 2 for v in values)))  # n-1 = 1
        pca = [r["metrics"]["pca_recon_mse"] for r in rows if r["point"]["latent_dim"] == s["x"]]
        assert s["baseline"] == pytest.approx(sum(pca) / 2)
    assert summary[1]["baseline"] < summary[0]["baseline"]  # more PCA components, less error
    assert summarise_metric(rows, "train_loss", "latent_dim")[0]["baseline"] is None
    assert list_studies(study_root)[0] | {"created": 0} == {
        "id": SPEC.id, "variant": "ae", "dataset": "digits", "grid": {"latent_dim": ["2", "5"]},
        "seeds": 2, "trials": 4, "done": 4, "active": 0, "backend": "local", "created": 0}


def test_the_page_shows_the_trials_and_plots_a_metric_with_its_baseline(study_root, monkeypatch):
    at = open_study_page(study_root, monkeypatch, study=SPEC.id)
    trials, summary = at.dataframe[0].value, at.dataframe[1].value
    assert len(trials) == 4 and set(trials["state"]) == {"done"}
    assert at.selectbox(key="st_metric").value == "recon_mse"
    assert list(summary["latent_dim"]) == ["2", "5"] and list(summary["seeds"]) == [2, 2]
    assert summary["PCA baseline"].notna().all()
    traces = json.loads(at.get("plotly_chart")[0].proto.spec)["data"]
    assert [t["name"] for t in traces] == ["all (mean ± std)", "all (each seed)", "all PCA baseline"]
    assert traces[0]["x"] == [2, 5] and len(traces[1]["y"]) == 4
    at.selectbox(key="st_metric").set_value("train_loss").run()
    assert not at.exception
    assert at.dataframe[1].value["PCA baseline"].isna().all()


def test_the_form_refuses_a_bad_grid_in_one_sentence_and_writes_nothing(tmp_path, monkeypatch):
    root = tmp_path / "runs"
    root.mkdir()
    at = open_study_page(root, monkeypatch)
    at.selectbox(key="st_variant").set_value("ae")
    at.text_area(key="st_grid").set_value("beta=1,2")
    at.button(key="st_start").click().run()
    (error,) = [e.value for e in at.error]
    assert error.startswith("unknown grid parameter 'beta' for variant 'ae'; valid parameters: arch, ")
    assert list(root.iterdir()) == []


def test_the_teacher_starts_a_study_in_the_background(tmp_path, monkeypatch, no_supervisor):
    root = tmp_path / "runs"
    root.mkdir()
    monkeypatch.setenv("AELAB_TEACHER_TOKEN", "class-token-for-this-test")
    at = open_study_page(root, monkeypatch, token="class-token-for-this-test")
    at.text_area(key="st_grid").set_value("latent_dim=2,3")
    at.number_input(key="st_seeds").set_value(2)
    at.button(key="st_start").click().run()
    assert not at.exception and not at.error
    study_id = list_studies(root)[0]["id"]
    assert at.selectbox(key="st_study").value == study_id
    assert f"Study {study_id} started: 4 trials." in [e.value for e in at.success]
    rows = trial_rows(root, study_id)
    assert len(rows) == 4 and {r["state"] for r in rows} == {"queued"}
    # the form's default length is the default budget, as a run's on the Train page: long
    # enough for the AE's line to fall below PCA's (Lesson screen 1)
    assert at.number_input(key="st_epochs").value == 0
    for row in rows:
        config = json.loads((root / row["id"] / "config.json").read_text())
        epochs, steps_per_epoch = config["train"]["epochs"], math.ceil(training_images(config["dataset"]) / 128)
        assert epochs * steps_per_epoch >= DEFAULT_STEPS > (epochs - 1) * steps_per_epoch
    assert no_supervisor  # the local supervisor was asked to start them
    assert all(read_status(root / r["id"])["backend"] == "local" for r in rows)
    at.button(key="st_cancel").click().run()
    assert not at.exception and not at.error
    assert {r["state"] for r in trial_rows(root, study_id)} == {"cancelled"}
    assert "st_cancel" not in [b.key for b in at.button]


def test_a_student_may_not_start_a_study_beyond_the_limits(tmp_path, monkeypatch):
    root = tmp_path / "runs"
    root.mkdir()
    # a browser session under AppTest has no local headers: a student
    at = open_study_page(root, monkeypatch)
    at.text_area(key="st_grid").set_value("latent_dim=2,3")
    at.number_input(key="st_seeds").set_value(2)
    at.button(key="st_start").click().run()
    assert [e.value for e in at.error] == [
        "A study of 4 runs is more than a student may start (2 queued or running, 10 in all); "
        "ask the teacher to start it."]
    assert list(root.iterdir()) == []
    at.number_input(key="st_seeds").set_value(1)
    at.button(key="st_start").click().run()
    assert not at.error
    rows = trial_rows(root, list_studies(root)[0]["id"])
    owners = {json.loads((root / r["id"] / "owner.json").read_text())["owner"] for r in rows}
    assert len(rows) == 2 and len(owners) == 1


def test_only_the_teacher_may_start_a_study_on_ray(tmp_path, monkeypatch):
    root = tmp_path / "runs"
    root.mkdir()
    at = open_study_page(root, monkeypatch)  # a student
    at.text_area(key="st_grid").set_value("latent_dim=2")
    at.number_input(key="st_seeds").set_value(1)
    at.text_input(key="st_ray").set_value("127.0.0.1:6379")
    at.button(key="st_start").click().run()
    assert [e.value for e in at.error] == [
        "Only the teacher may start a study on a Ray cluster; leave the Ray address blank to run "
        "it on this machine."]
    assert list(root.iterdir()) == []


def test_a_ray_address_where_nothing_listens_is_refused_in_one_sentence(tmp_path, monkeypatch):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # free once closed: nothing listens there
    root = tmp_path / "runs"
    root.mkdir()
    monkeypatch.setenv("AELAB_TEACHER_TOKEN", "class-token-for-this-test")
    at = open_study_page(root, monkeypatch, token="class-token-for-this-test")
    at.text_area(key="st_grid").set_value("latent_dim=2")
    at.text_input(key="st_ray").set_value(f"127.0.0.1:{port}")
    at.button(key="st_start").click().run()
    (error,) = [e.value for e in at.error]
    assert error.startswith(f"could not connect to the Ray cluster at 127.0.0.1:{port}: ")
    assert list(root.iterdir()) == []
