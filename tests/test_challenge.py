"""A class challenge: the teacher makes it on the Challenge page, three students enter real
(tiny) runs within its locked settings, the leaderboard ranks them by the runs' own
evaluation; a crafted request with a locked setting changed, and a closed challenge, are
refused before anything is written."""
from __future__ import annotations

import csv
import io
import json
import re
import time
from pathlib import Path

import pytest
from conftest import open_page, umap_as_pca
from streamlit.testing.v1 import AppTest

from aelab.runs import challenges
from aelab.runs.challenges import ChallengeError
from aelab.runs.local import finish_caches
from aelab.runs.train import train_run
from aelab.ui import challenge as challenges_ui
from aelab.ui import identity


@pytest.fixture
def runs(runs_dir, monkeypatch, supervisor_calls):
    """An empty runs folder with a teacher token; the entries are trained by the test itself."""
    monkeypatch.setenv("AELAB_TEACHER_TOKEN", "s3cret")
    monkeypatch.setattr(identity, "browser_cookies", lambda: {})
    return runs_dir


def session(**query) -> AppTest:
    """The Challenge page with ``query`` (``token=``, ``id=``), as its link opens it."""
    return open_page("challenge", errors=True, **query)


def teacher_creates(runs) -> str:
    at = session(token="s3cret")
    at.text_input(key="new.name").input("Smallest error at code size 4")
    at.number_input(key="new.epochs").set_value(1)
    at.number_input(key="new.minutes").set_value(0.0)
    at.button(key="FormSubmitter:new_challenge-Create challenge").click().run()
    assert not at.error, [e.value for e in at.error]
    (made,) = challenges.list_all(runs)
    assert f"/challenge?id={made.id}" in at.success[0].value
    assert (made.datasets, made.variants, made.latent_dim, made.goal) == (["digits"], ["ae"], 4, "test_mse")
    return made.id


def student(name: str, challenge_id: str) -> AppTest:
    at = session(id=challenge_id)
    at.text_input(key="student_name").input(name).run()
    assert any(f"You are **{name}**" in c.value for c in at.sidebar.caption)
    return at


def run_dirs(runs) -> set[str]:
    return {p.name for p in runs.iterdir() if p.is_dir() and not p.name.startswith(".")}


def field(at: AppTest, name: str):
    """The entry form's widget ``name`` ("train.lr", "common.latent_dim") on challenge ``?id=``."""
    cid = at.query_params["id"]
    return at.number_input(key=f"ch.{cid if isinstance(cid, str) else cid[0]}.{name}")


def enter(at: AppTest, runs, lr: float, seed: int = 0) -> Path:
    before = run_dirs(runs)
    field(at, "train.lr").set_value(lr)
    field(at, "train.seed").set_value(seed)
    at.button(key="ch.start").click().run()
    assert not at.error, [e.value for e in at.error]
    (new,) = run_dirs(runs) - before
    return runs / new


def finish(run_dir: Path) -> None:
    """Train the entry here as its worker would, then build its caches (the score)."""
    status = train_run(run_dir)
    assert status["state"] == "done"
    with umap_as_pca():
        finish_caches(run_dir, status)


@pytest.mark.slow
def test_three_students_are_ranked_by_their_runs_evaluation_against_pca(runs):
    cid = teacher_creates(runs)
    entries, screens = {}, {}
    for name, lr in (("Ada", 3e-3), ("Bob", 1e-4), ("Cy", 1e-3)):
        screens[name] = student(name, cid)
        run_dir = enter(screens[name], runs, lr)
        config = json.loads((run_dir / "config.json").read_text())
        assert (config["challenge"], config["owner"], config["model"]["latent_dim"],
                config["train"]["epochs"]) == (cid, name, 4, 1)
        if name == "Ada":  # trained, not yet scored: the page says so and computes nothing itself
            assert train_run(run_dir)["state"] == "done"
            challenges_ui._entries.clear()
            waiting = session(id=cid, token="s3cret")
            scoring = waiting.dataframe[0].value
            assert scoring["state"].tolist() == ["scoring"] and scoring["rank"].tolist() == [""]
            assert scoring["score"].tolist() == ["n/a - not scored yet"]
            assert not (run_dir / "eval.json").exists()
            with umap_as_pca():  # the worker's step after training (a background process in the app)
                finish_caches(run_dir, json.loads((run_dir / "status.json").read_text()))
        else:
            finish(run_dir)
        entries[name] = json.loads((run_dir / "eval.json").read_text())
    expected = sorted(entries, key=lambda n: entries[n]["recon_mse"])

    challenges_ui._entries.clear()  # the board shared by every session (for BOARD_TTL seconds)
    board = session(id=cid, token="s3cret")  # the teacher's screen
    table = board.dataframe[0].value
    assert list(table["student"]) == expected and list(table["rank"]) == ["1", "2", "3"]
    assert [float(s) for s in table["score"]] == pytest.approx([entries[n]["recon_mse"] for n in expected], rel=1e-3)
    assert all(str(p).startswith("data:image/png;base64,") for p in table["reconstructions"])
    chosen = {"Ada": "lr=0.003", "Bob": "lr=0.0001", "Cy": "defaults"}  # Cy kept the default lr
    assert list(table["settings"]) == [chosen[n] for n in expected]
    pca = entries["Ada"]["pca_recon_mse"]
    assert list(table["beats PCA"]) == ["yes" if entries[n]["recon_mse"] < pca else "no" for n in expected]
    assert any(f"scores **{pca:.4g}**" in m.value for m in board.markdown)
    assert [d.proto.label for d in board.get("download_button")] == ["Export the leaderboard (CSV)"]
    exported = list(csv.DictReader(io.StringIO(challenges.csv_text(*board_rows(runs, cid)))))
    assert [r["student"] for r in exported] == expected and exported[0]["rank"] == "1"
    assert [float(r["recon_mse"]) for r in exported] == pytest.approx([entries[n]["recon_mse"] for n in expected],
                                                                       rel=1e-5)
    assert {r["pca_baseline_recon_mse"] for r in exported} == {f"{pca:.6g}"}

    bob = screens["Bob"].run()  # a student's screen: their own row marked, no teacher controls
    rows = bob.dataframe[0].value["student"].tolist()
    assert [r for r in rows if r.endswith(" (you)")] == ["Bob (you)"]
    assert not bob.get("download_button") and "ch.close" not in _keys(bob) and "ch.start" in _keys(bob)

    presenter = session(id=cid, present="1")  # the projector: no entry form, the board large
    assert projector_rows(presenter) == [(str(i), n) for i, n in enumerate(expected, 1)]
    assert "ch.start" not in _keys(presenter) and not presenter.dataframe
    (board_html,) = [h.proto.body for h in presenter.get("html") if "aelab-board" in h.proto.body]
    assert board_html.count('<img src="data:image/png;base64,') == 3 and "height: 180px" in board_html


def projector_rows(at: AppTest) -> list[tuple[str, str]]:
    """(rank, student) of each row of the presenter-mode leaderboard (an HTML table)."""
    (body,) = [h.proto.body for h in at.get("html") if "aelab-board" in h.proto.body]
    return re.findall(r'<tr><td class="rank">(\d*)</td><td>([^<]*)</td>', body)


def board_rows(runs, cid):
    challenge = challenges.load(runs, cid)
    return challenge, challenges.entries(runs, challenge)


def _keys(at: AppTest) -> set[str]:
    return {b.key for b in at.button}


def test_a_forged_value_for_a_locked_setting_never_reaches_the_run(runs):
    cid = teacher_creates(runs)
    at = student("Ada", cid)
    assert field(at, "train.epochs").disabled and field(at, "common.latent_dim").disabled
    # what a hand-made websocket message sends: values for the disabled widgets (AppTest
    # refuses to set a disabled widget, as a browser does); the server discards them
    field(at, "train.epochs")._value = 50
    field(at, "common.latent_dim")._value = 32
    at.button(key="ch.start").click().run()
    (new,) = run_dirs(runs)
    config = json.loads((runs / new / "config.json").read_text())
    assert (config["train"]["epochs"], config["model"]["latent_dim"]) == (1, 4)


def crafted_entry(challenge_id: str, model: dict, train: dict) -> None:
    """A request that reached the entry's server side with settings of its own choosing."""
    import streamlit as st

    from aelab.errors import AelabError
    from aelab.ui import challenge, identity

    identity.take_name("Bea")
    try:
        challenge.enter(challenge_id, "ae", "digits", model, train)
    except AelabError as exc:
        st.error(str(exc))


@pytest.mark.parametrize("model, train, sentence", [
    ({"latent_dim": 4}, {"epochs": 50, "max_minutes": 0.0}, "This challenge's budget is 1 epochs; got 50."),
    ({"latent_dim": 32}, {"epochs": 1, "max_minutes": 0.0}, "This challenge locks the code size at 4; got 32."),
    ({"latent_dim": 4}, {"epochs": 1, "max_minutes": 30.0},
     "This challenge's time budget is 0 minutes; got 30.0."),
    ({"latent_dim": 4}, {"epochs": 1, "max_minutes": 0.0, "caches": False},
     "A challenge entry is scored when it finishes: its caches cannot be turned off."),
])
def test_an_entry_outside_the_locked_settings_is_refused_with_a_sentence(runs, model, train, sentence):
    cid = teacher_creates(runs)
    at = AppTest.from_function(crafted_entry, args=(cid, model, train), default_timeout=60)
    at.run()
    assert [e.value for e in at.error] == [sentence]
    assert run_dirs(runs) == set()


def test_an_entry_needs_a_name_and_the_challenges_variants(runs):
    cid = teacher_creates(runs)
    nameless = session(id=cid)
    nameless.button(key="ch.start").click().run()
    assert [e.value for e in nameless.error] == ["Type your name in the sidebar first: the leaderboard shows it."]
    assert run_dirs(runs) == set()
    with pytest.raises(ChallengeError, match="the variant 'vae' is locked out"):
        challenges.check_entry(challenges.load(runs, cid), "vae", "digits", {"latent_dim": 4},
                               challenges.locked_train(challenges.load(runs, cid)))


@pytest.mark.slow
def test_the_projector_sees_new_entries_live_and_closing_stops_new_ones(runs):
    cid = teacher_creates(runs)
    finish(enter(student("Ada", cid), runs, 1e-3))
    time.sleep(challenges_ui.BOARD_TTL)  # the rows every session shares are at most this old
    projector = session(id=cid, present="1")
    assert projector_rows(projector) == [("1", "Ada")]
    finish(enter(student("Bob", cid), runs, 1e-3, seed=1))
    time.sleep(challenges_ui.BOARD_TTL)
    projector.run()  # what its timed refresh does
    assert sorted(name for _, name in projector_rows(projector)) == ["Ada", "Bob"]

    late = student("Cy", cid)  # his page is open when the teacher closes the challenge
    teacher = session(id=cid, token="s3cret")
    teacher.button(key="ch.close").click().run()
    assert challenges.load(runs, cid).closed
    before = run_dirs(runs)
    late.button(key="ch.start").click().run()  # his click reruns a page that reads the challenge again
    assert run_dirs(runs) == before and "ch.start" not in _keys(late)
    assert [i.value for i in late.info] == ["This challenge is closed: it takes no new entries; the leaderboard stays."]
    assert sorted(late.dataframe[0].value["student"]) == ["Ada", "Bob"]
    at = AppTest.from_function(crafted_entry, args=(cid, {"latent_dim": 4}, {"epochs": 1, "max_minutes": 0.0}))
    at.run()  # an entry already on its way when the challenge closed
    assert [e.value for e in at.error] == [
        "The challenge Smallest error at code size 4 is closed: it takes no new entries."]
    assert run_dirs(runs) == before


def test_bad_challenges_are_refused_with_a_sentence(runs):
    with pytest.raises(ChallengeError, match="MIG needs the sprites' true factors"):
        challenges.create(runs, "m", ["digits"], ["ae"], 4, 1, 0, "mig")
    with pytest.raises(ChallengeError, match="The budget must be 1 to 200 epochs; got 0"):
        challenges.create(runs, "m", ["digits"], ["ae"], 4, 0, 0, "test_mse")
    bad = session(id="../../etc")
    assert [e.value for e in bad.error] == [
        "'../../etc' is not a challenge id (they look like c-1a2b3c); open the link the teacher gave you."]
    assert re.match(r"There is no challenge c-000000", session(id="c-000000").error[0].value)
