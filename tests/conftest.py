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
