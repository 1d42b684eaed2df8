"""Studies: the sweep CLI on the local supervisor and on a real Ray cluster."""
import json
import os
import signal
import subprocess
import sys

import pytest

from aelab.cli import main
from aelab.manager import pid_alive
from aelab.runs import read_json, read_status
from aelab.study import StudySpec, parse_grid, study_trials

SWEEP = ["sweep", "--variant", "ae", "--dataset", "digits", "--epochs", "1",
         "--param", "hidden=32", "--param", "caches=false", "--param", "log_every=5"]


def sweep_json(capsys, argv) -> tuple[int, dict]:
    code = main(argv)
    return code, json.loads(capsys.readouterr().out)


BAD_GRIDS = [
    (["--grid", "beta=1,2"], "unknown grid parameter 'beta' for variant 'ae'"),
    (["--grid", "latent_dim=2,zero"], "grid value latent_dim=zero is invalid: latent_dim must be an integer"),
    (["--grid", "latent_dim=2,0"], "grid value latent_dim=0 is invalid: latent_dim must be in [1, 4096]"),
    (["--grid", "arch=conv", "--grid", "hidden=8,8,8,8;16,16,16,16"],
     "grid point arch=conv, hidden=8,8,8,8 is invalid: conv arch with 4 layers"),
    (["--grid", "lr=0.1,0.1"], "--grid lr lists the value 0.1 twice"),
    (["--grid", "seed=1,2"], "seed cannot be a grid parameter; use --seeds"),
    (["--grid", "latent_dim"], "--grid expects NAME=v1,v2,..., got 'latent_dim'"),
    (["--grid", "lr=0.1,"], "--grid lr has an empty value"),
    (["--grid", "lr=1", "--grid", "lr=2"], "--grid lr is given twice"),
    ([], "a study needs at least one --grid"),
    (["--grid", "lr=1", "--seeds", "0"], "--seeds must be between 1 and 1000"),
    (["--grid", "lr=1", "--ray", "--ray-address", "h:1"], "use --ray (start a local Ray cluster) or"),
    (["--grid", "lr=1", "--ray-address", "nohost"], "--ray-address expects HOST:PORT"),
]


@pytest.mark.parametrize("extra,message", BAD_GRIDS)
def test_bad_grids_are_refused_before_anything_is_written(extra, message, runs_dir, capsys):
    argv = ["sweep", "--variant", "ae", "--dataset", "digits", "--runs-dir", str(runs_dir), *extra]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1, err
    assert list(runs_dir.iterdir()) == []


def test_grid_values_split_on_semicolons_when_a_value_holds_commas():
    assert parse_grid(["hidden=64,32;128", "lr=0.1,0.01"]) == {
        "hidden": ["64,32", "128"], "lr": ["0.1", "0.01"]}
    spec = StudySpec("ae", "digits", parse_grid(["latent_dim=2,3", "lr=0.1"]), seeds=2)
    assert len(spec.trials()) == 4
    assert spec.split({"latent_dim": "2", "lr": "0.1"}, 1) == ({"latent_dim": "2"}, {"lr": "0.1", "seed": 1})
    assert spec.id == StudySpec("ae", "digits", parse_grid(["latent_dim=2,3", "lr=0.1"]), 2).id
    assert spec.id != StudySpec("ae", "digits", parse_grid(["latent_dim=2,3", "lr=0.2"]), 2).id


def test_local_sweep_on_digits_and_the_same_command_picks_it_up(runs_dir, capsys, monkeypatch):
    monkeypatch.setenv("AELAB_MAX_RUNS", "2")
    argv = [*SWEEP, "--grid", "latent_dim=2,3", "--seeds", "1", "--runs-dir", str(runs_dir), "--json"]
    code, out = sweep_json(capsys, argv)
    assert code == 0
    assert [t["state"] for t in out["trials"]] == ["done", "done"]
    assert [t["point"] for t in out["trials"]] == [{"latent_dim": "2"}, {"latent_dim": "3"}]
    for trial in out["trials"]:
        config = read_json(runs_dir / trial["id"] / "config.json", "config")
        assert config["study"]["id"] == out["study"]
        assert config["model"]["latent_dim"] == int(trial["point"]["latent_dim"])
        assert read_status(runs_dir / trial["id"])["state"] == "done"
    again_code, again = sweep_json(capsys, argv)  # nothing new is trained or created
    assert again_code == 0 and again == out
    assert sorted(p.name for p in runs_dir.iterdir() if not p.name.startswith(".")) == \
        sorted(t["id"] for t in out["trials"])
    assert list(study_trials(runs_dir)) == [out["study"]]
