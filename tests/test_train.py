"""The trainer: run folders, reproducibility, logging, divergence and devices."""
import itertools
import json
import math
import time
from types import SimpleNamespace

import pytest
import torch
from conftest import TINY, VARIANTS

from aelab.config import TrainConfig
from aelab.errors import ConfigError, RunError
from aelab.models import get_variant
from aelab.models.ae import VanillaAE
from aelab.runs.folder import load_model, read_config, read_metrics, read_status, read_tensors
from aelab.runs.refs import RunRef
from aelab.runs.train import train_run
from aelab.training import trainer as trainer
from aelab.training.setup import prepare_run, resolve_device


def tiny_run(runs_dir, variant="ae", epochs=2, **train):
    params = {**TINY, **({"k": 2} if variant == "ksparse" else {})}
    return prepare_run(variant, "digits", params, {"epochs": epochs, "log_every": 5, **train},
                       runs_dir=runs_dir)


@pytest.mark.parametrize("variant", [v for v in VARIANTS  # pairs need factors: not digits
                                     if not get_variant(v).factor_use])
def test_every_variant_trains_to_a_complete_run_folder(variant, runs_dir):
    run_dir = tiny_run(runs_dir, variant)
    status = train_run(run_dir)
    assert status["state"] == "done" and status["progress"] == 1.0
    assert {p.name for p in run_dir.iterdir()} >= {"config.json", "model.safetensors",
                                                   "train_state.safetensors", "metrics.jsonl",
                                                   "status.json"}
    assert not list(run_dir.glob("*.tmp")) and not list(run_dir.glob(".*"))
    config = json.loads((run_dir / "config.json").read_text())
    assert config["variant"] == variant and config["dataset"] == "digits"
    assert config["input_shape"] == [1, 8, 8] and config["train"]["seed"] == 0
    assert config["model"]["latent_dim"] == 4 and set(config["versions"]) >= {"torch", "aelab"}
    status = read_status(run_dir)
    assert status["epoch"] == 2 and status["step"] == 24 and status["device"] == "CPU"
    assert status["samples_per_second"] > 0 and status["train_seconds"] > 0
    rows = read_metrics(run_dir)
    model = load_model(run_dir)
    _, terms = model.loss(torch.rand(2, 1, 8, 8), model.train()(torch.rand(2, 1, 8, 8),
                                                                 torch.tensor([1, 2])))
    for row in rows:  # every loss term logged separately, with throughput and epoch
        assert set(terms) <= set(row) and {"loss", "epoch", "step", "samples_per_second"} <= set(row)
        assert all(math.isfinite(row[t]) for t in terms)
    assert [r["step"] for r in rows] == [5, 10, 12, 15, 20, 24]


def test_same_seed_same_weights_and_other_seed_differs(runs_dir):
    runs = [tiny_run(runs_dir, "vae", seed=s) for s in (7, 7, 8)]
    weights = []
    for run in runs:
        train_run(run)
        weights.append(read_tensors(run / "model.safetensors")[0])
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])
    assert not all(torch.equal(weights[0][k], weights[2][k]) for k in weights[0])


CONV = {"latent_dim": 4, "arch": "conv", "hidden": "8,16"}


def test_conv_training_in_channels_last_matches_contiguous(runs_dir, monkeypatch):
    """The trainer's NHWC layout on CPU changes only the order of float additions."""
    runs = [prepare_run("vae", "digits", CONV, {"epochs": 3, "log_every": 5, "seed": 1},
                        runs_dir=runs_dir) for _ in range(2)]
    train_run(runs[0])
    monkeypatch.setattr(trainer, "fast_layout", lambda model, device: model)  # NCHW
    train_run(runs[1])
    nhwc, nchw = (read_metrics(run) for run in runs)
    assert [r["step"] for r in nhwc] == [r["step"] for r in nchw]
    for a, b in zip(nhwc, nchw):
        assert a["loss"] == pytest.approx(b["loss"], rel=1e-4)
    weights = [read_tensors(run / "model.safetensors")[0] for run in runs]
    assert all(torch.allclose(weights[0][k], weights[1][k], atol=1e-4) for k in weights[0])


def test_a_cancelled_conv_run_resumes_to_the_uninterrupted_weights(runs_dir, monkeypatch):
    """Resuming restores Adam's moments in the parameters' (NHWC) layout."""
    train = {"epochs": 3, "log_every": 5, "seed": 2}
    whole, parts = (prepare_run("vae", "digits", CONV, train, runs_dir=runs_dir) for _ in range(2))
    train_run(whole)
    clock = itertools.count(0.0, 0.3)  # the trainer asks whether to stop every 0.2 s: every step
    monkeypatch.setattr(trainer, "time", SimpleNamespace(monotonic=lambda: next(clock),
                                                         time=time.time))
    calls = itertools.count()
    assert train_run(parts, should_stop=lambda: next(calls) >= 10)["state"] == "cancelled"
    assert read_status(parts)["step"] == 10
    monkeypatch.undo()
    assert train_run(parts, resume=True)["state"] == "done"
    a, b = (read_tensors(run / "model.safetensors")[0] for run in (whole, parts))
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_training_lowers_the_loss(runs_dir):
    run = tiny_run(runs_dir, "ae", epochs=6)
    train_run(run)
    rows = read_metrics(run)
    assert rows[-1]["recon"] < 0.8 * rows[0]["recon"]


def test_divergence_stops_the_run_naming_the_term_and_step(runs_dir, monkeypatch):
    def exploding(self, x, out):
        value = torch.tensor(float("nan") if self.step >= 7 else 0.0)
        return {"boom": (value, value)}

    monkeypatch.setattr(VanillaAE, "penalties", exploding)
    run = tiny_run(runs_dir, "ae", epochs=3)
    status = train_run(run)
    assert status["state"] == "failed"
    assert "loss term 'boom' became non-finite at step 7" in status["error"]
    assert "weights of step 5 were kept" in status["error"]
    assert read_status(run)["state"] == "failed"
    model = load_model(run)  # the last good weights, all finite
    assert all(torch.isfinite(p).all() for p in model.parameters())
    assert read_tensors(run / "model.safetensors")[1]["step"] == "5"


def test_an_exception_marks_the_run_failed_with_its_message(runs_dir, monkeypatch):
    def broken(self, x, out):
        raise RuntimeError("injected fault")

    monkeypatch.setattr(VanillaAE, "penalties", broken)
    run = tiny_run(runs_dir)
    with pytest.raises(RuntimeError):
        train_run(run)
    status = read_status(run)
    assert status["state"] == "failed" and "injected fault" in status["error"]


def test_should_stop_ends_the_run_cancelled_with_a_checkpoint(runs_dir):
    run = tiny_run(runs_dir, epochs=1000)
    calls = []

    def stop_after_the_first_check():  # the first check comes before step 0
        calls.append(1)
        return len(calls) > 1

    status = train_run(run, should_stop=stop_after_the_first_check)
    assert status["state"] == "cancelled"
    assert 0 < status["step"] < 12000
    assert read_tensors(run / "model.safetensors")[1]["step"] == str(status["step"])


def test_cancel_marker_file_is_honoured_and_removed(runs_dir):
    run = tiny_run(runs_dir, epochs=1000)
    (run / "cancel").touch()
    assert train_run(run)["state"] == "cancelled"
    assert not (run / "cancel").exists()


def test_device_selection():
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    assert resolve_device("cpu").type == "cpu"
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="device cuda was requested but no CUDA GPU"):
            resolve_device("cuda")
    with pytest.raises(ConfigError, match="device must be one of: auto, cpu, cuda"):
        TrainConfig.from_dict({"device": "tpu"})


def test_loading_refuses_pickles_damage_and_mismatches(runs_dir):
    run = tiny_run(runs_dir)
    train_run(run)
    good = (run / "model.safetensors").read_bytes()

    torch.save({"w": torch.zeros(1)}, run / "model.safetensors")  # a torch.save zip (pickle)
    with pytest.raises(RunError, match="holds a pickle or torch.save archive; it was refused"):
        load_model(run)
    import pickle
    (run / "model.safetensors").write_bytes(pickle.dumps({"w": 1}, protocol=4))
    with pytest.raises(RunError, match="holds a pickle"):
        load_model(run)
    (run / "model.safetensors").write_bytes(good[: len(good) // 2])
    with pytest.raises(RunError, match="damaged"):
        load_model(run)
    (run / "model.safetensors").write_bytes(good)
    config = json.loads((run / "config.json").read_text())
    config["model"]["latent_dim"] = 5
    (run / "config.json").write_text(json.dumps(config))
    with pytest.raises(RunError, match="does not match the run's config"):
        load_model(run)
    (run / "config.json").write_text("{not json")
    with pytest.raises(RunError, match="config of run .* is damaged"):
        read_config(run)
    (run / "model.safetensors").unlink()
    with pytest.raises(RunError, match="no checkpoint yet"):
        from aelab.runs.folder import read_tensors as rt
        rt(run / "model.safetensors")


def test_resolve_run_by_id_or_path(runs_dir):
    run = tiny_run(runs_dir)
    assert RunRef.checked(run.name, runs_dir).path == run
    assert RunRef.checked(str(run)).path == run  # $AELAB_RUNS is the runs folder
    with pytest.raises(RunError, match="no run 'nope'"):
        RunRef.checked("nope", runs_dir)


def test_prepare_run_rejects_bad_settings_before_writing(runs_dir):
    with pytest.raises(ConfigError, match="k \\(9\\) must not exceed latent_dim \\(4\\)"):
        prepare_run("ksparse", "digits", {"latent_dim": 4, "k": 9}, runs_dir=runs_dir)
    with pytest.raises(ConfigError, match="cvae needs a dataset with class labels"):
        import numpy as np
        path = runs_dir.parent / "nolabels.npz"
        np.savez(path, x=np.zeros((10, 8, 8), dtype=np.uint8))
        prepare_run("cvae", f"npz:{path}", runs_dir=runs_dir)
    with pytest.raises(ConfigError, match="conv arch with 4 layers needs height and width divisible"):
        prepare_run("ae", "digits", {"arch": "conv", "hidden": "8,8,8,8"}, runs_dir=runs_dir)
    assert list(runs_dir.iterdir()) == []
