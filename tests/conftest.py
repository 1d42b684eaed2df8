"""Shared fixtures: small configs of every variant and tiny runs on ``digits``."""
from __future__ import annotations

import os

import pytest
import torch

# Tests run training in this process and in worker processes at once on a 2-core
# machine; one thread each avoids OpenMP oversubscription (behaviour is unchanged).
os.environ.setdefault("AELAB_THREADS", "1")
torch.set_num_threads(int(os.environ["AELAB_THREADS"]))

from aelab.models import list_variants, make_config

VARIANTS = list_variants()
DIGITS_SHAPE = (1, 8, 8)


def small_config(variant: str, **overrides):
    """A small config of ``variant`` for 8x8 digits with 10 classes."""
    params = {"latent_dim": 6, "hidden": "32", "input_shape": DIGITS_SHAPE, "num_classes": 10}
    if variant == "ksparse":
        params["k"] = 3
    params.update(overrides)
    return make_config(variant, **params)


@pytest.fixture
def runs_dir(tmp_path, monkeypatch):
    """An empty runs folder, also set as ``$AELAB_RUNS``."""
    folder = tmp_path / "runs"
    folder.mkdir()
    monkeypatch.setenv("AELAB_RUNS", str(folder))
    return folder


@pytest.fixture
def batch():
    """64 digits images and labels."""
    from aelab.data.datasets import load_dataset

    ds = load_dataset("digits")
    return torch.from_numpy(ds.x_train[:64]), torch.from_numpy(ds.y_train[:64])


@pytest.fixture
def media(monkeypatch):
    """The bytes of every picture and download a page hands Streamlit's media store, by file id."""
    from streamlit.runtime.memory_media_file_storage import MemoryMediaFileStorage

    stored = {}
    original = MemoryMediaFileStorage.load_and_get_id

    def record(self, path_or_data, mimetype, kind, filename=None):
        file_id = original(self, path_or_data, mimetype, kind, filename)
        stored[file_id] = (path_or_data, mimetype)
        return file_id

    monkeypatch.setattr(MemoryMediaFileStorage, "load_and_get_id", record)
    return stored


class HandStudy:
    """A study of two trials (``latent_dim`` 2 and 4) whose status files the test writes by
    hand: ``run()`` marks them running (this process's pid, so alive), ``finish()`` done with
    one logged step each. No training: what live pages show as trials end."""

    ID = "live"

    def __init__(self, runs_dir):
        from aelab.training.trainer import prepare_run

        self.runs_dir = runs_dir
        grid = {"latent_dim": ["2", "4"]}
        self.trials = [prepare_run("ae", "digits", {"latent_dim": d, "hidden": "8"},
                                   {"epochs": 1, "caches": False}, runs_dir=runs_dir,
                                   study={"id": self.ID, "point": {"latent_dim": str(d)},
                                          "seed": 0, "grid": grid, "seeds": 1})
                       for d in (2, 4)]

    def run(self, progress: float = 0.5) -> None:
        from aelab.runs.folder import write_status

        for trial in self.trials:
            write_status(trial, state="running", progress=progress, pid=os.getpid())

    def finish(self) -> None:
        import json

        from aelab.runs.folder import write_status

        for i, trial in enumerate(self.trials):
            row = {"step": 12, "epoch": 1, "loss": 0.2 / (i + 1), "recon": 0.2 / (i + 1)}
            (trial / "metrics.jsonl").write_text(json.dumps(row) + "\n")
            write_status(trial, state="done", progress=1.0, pid=os.getpid())


@pytest.fixture
def hand_study():
    """``hand_study(runs_dir)``: a ``HandStudy`` in that runs folder."""
    return HandStudy
