"""Images saved channels-last (N, H, W, C), as PIL and most tools give them, are read as
(N, C, H, W), or refused in one sentence saying how to transpose: in ``load_npz``, in a
trained run's ``input_shape`` and on the Train page's upload."""
from __future__ import annotations

import io
import json
import os
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from aelab.data.datasets import image_layout, load_npz
from aelab.errors import DatasetError
from aelab.runs.train import train_run
from aelab.training.setup import prepare_run

APP = Path(__file__).resolve().parents[1] / "app.py"
RNG = np.random.default_rng(0)
# 3-channel 6x10 images: H != W, so a wrong transpose shows in the shape
CHW = RNG.integers(0, 256, (24, 3, 6, 10), dtype=np.uint8)
HWC = np.ascontiguousarray(CHW.transpose(0, 2, 3, 1))  # (24, 6, 10, 3)


def npz(path: Path, **arrays) -> Path:
    np.savez(path, **arrays)
    return path


def test_channels_last_is_read_as_channels_first(tmp_path):
    first = load_npz(npz(tmp_path / "first.npz", x_train=CHW[:16], x_test=CHW[16:]))
    last = load_npz(npz(tmp_path / "last.npz", x_train=HWC[:16], x_test=HWC[16:]))
    assert first.input_shape == last.input_shape == (3, 6, 10)
    assert not first.channels_last and last.channels_last
    np.testing.assert_array_equal(last.x_train, first.x_train)  # the same pixels, not a reshape
    np.testing.assert_array_equal(last.x_test, first.x_test)
    assert last.x_train.flags.c_contiguous and last.x_train.dtype == np.float32


@pytest.mark.parametrize("channels", [1, 3, 4])
def test_each_channel_count_is_recognised_at_the_end(tmp_path, channels):
    x = RNG.random((12, 9, 7, channels), dtype=np.float32)
    assert image_layout(x.shape) == "last"
    ds = load_npz(npz(tmp_path / "d.npz", x=x))
    assert ds.input_shape == (channels, 9, 7)
    assert image_layout((12, channels, 9, 7)) == "first" and image_layout((12, 9, 7)) == "none"


def test_a_trained_run_records_the_converted_shape(tmp_path):
    data = npz(tmp_path / "rgb.npz", x=HWC)
    run = prepare_run("ae", f"npz:{data}", {"latent_dim": 2, "hidden": "8"},
                      {"epochs": 1, "caches": False}, runs_dir=tmp_path / "runs")
    assert json.loads((run / "config.json").read_text())["input_shape"] == [3, 6, 10]
    assert train_run(run)["state"] == "done"


def test_ambiguous_and_unreadable_layouts_are_refused_in_one_sentence(tmp_path):
    ambiguous = npz(tmp_path / "amb.npz", x=np.zeros((5, 3, 8, 4), np.uint8))
    with pytest.raises(DatasetError) as error:
        load_npz(ambiguous)
    assert str(error.value) == (
        "x has shape (5, 3, 8, 4), which could be (N, C, H, W) or (N, H, W, C); if the channels "
        "are last, save numpy.transpose(x, (0, 3, 1, 2)) instead, so that the file holds "
        "(N, C, H, W) = 5x4x3x8")
    many = npz(tmp_path / "many.npz", x_train=np.zeros((5, 32, 32, 32), np.uint8),
               x_test=np.zeros((5, 32, 32, 32), np.uint8))
    with pytest.raises(DatasetError) as error:
        load_npz(many)
    assert str(error.value) == ("x_train has shape (5, 32, 32, 32), with 32 channels first and 32 "
                                "last; images need 1, 3, 4 channels, as (N, C, H, W) or "
                                "(N, H, W, C)")
    mixed = npz(tmp_path / "mixed.npz", x_train=HWC[:16], x_test=CHW[16:, :, :, :8])
    with pytest.raises(DatasetError, match=r"^x_train images are 3x6x10 but x_test images are "
                                           r"3x6x8; they must match$"):
        load_npz(mixed)


def _bytes(**arrays) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def _train_page() -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=60)
    at.switch_page("pages/train.py")
    at.run()
    assert not at.exception
    return at


def test_train_page_upload_converts_channels_last_and_says_so(runs_dir):
    at = _train_page()
    at.file_uploader(key="upload").set_value(("rgb.npz", _bytes(x=HWC), "application/octet-stream")).run()
    assert not at.exception and not at.error
    assert [s.value for s in at.success] == ["Stored rgb (uploaded); it is now in the dataset list."]
    assert [i.value for i in at.info] == [
        "Its images are channels-last (N, H, W, C), as PIL saves them; they are read as 3 "
        "channels of 6x10 pixels (N, C, H, W)."]
    assert load_npz(next(runs_dir.rglob("rgb.npz"))).input_shape == (3, 6, 10), os.listdir(runs_dir)


def test_train_page_upload_refuses_an_ambiguous_layout(runs_dir):
    at = _train_page()
    data = _bytes(x=np.zeros((5, 3, 8, 4), np.uint8))
    at.file_uploader(key="upload").set_value(("amb.npz", data, "application/octet-stream")).run()
    assert not at.exception and not at.success
    assert len(at.error) == 1 and "could be (N, C, H, W) or (N, H, W, C)" in at.error[0].value
    assert "numpy.transpose(x, (0, 3, 1, 2))" in at.error[0].value
    assert not list(runs_dir.rglob("amb.npz"))  # nothing invalid is stored
