"""A run you can take home (aelab/explore/export.py, ``python -m aelab export``): the Embedding
Projector's files parse back to the run's cached points, the CLI writes the export and refuses
bad input in one sentence before writing, and the Traversal and Latent pages' download button
hands out the same files. The HTML file itself is driven in Chromium by
tests/e2e/test_export_browser.py.
"""
from __future__ import annotations

import io
import json
import math
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
from conftest import ROOT, open_page, tiny_run, umap_as_pca
from PIL import Image

from aelab.cli import main
from aelab.data.datasets import load_dataset
from aelab.explore.export import SPRITE_MAX, export_files, export_run, file_names, thumbnails
from aelab.metrics.results import get_caches
from aelab.runs.refs import RunRef

DEMO = "demo-vae"  # 750 MNIST-like test points, 8 latents: quick to export


@pytest.fixture(scope="module")
def demo_runs(tmp_path_factory):
    """A runs folder holding a copy of the shipped demo runs the tests export."""
    root = tmp_path_factory.mktemp("runs")
    for name in (DEMO, "demo-cvae"):
        shutil.copytree(ROOT / "checkpoints" / name, root / name)
    return root


@pytest.fixture(scope="module")
def exported(demo_runs):
    return export_run(RunRef.unchecked(demo_runs / DEMO))


def read_tsv(data: bytes) -> list[list[str]]:
    return [line.split("\t") for line in data.decode().splitlines()]


def test_projector_files_parse_back_to_the_cached_points(demo_runs, exported):
    caches = get_caches(RunRef.unchecked(demo_runs / DEMO))
    n, dims = caches["codes"].shape
    assert list(exported) == file_names(DEMO)
    vectors = np.array(read_tsv(exported["vectors.tsv"]), dtype=np.float32)
    assert vectors.shape == (n, dims)  # one row per cached point, no header
    assert np.allclose(vectors, caches["codes"]) and np.array_equal(vectors, caches["codes"])
    rows = read_tsv(exported["metadata.tsv"])
    assert rows[0] == ["label", "split", "index"] and len(rows) == n + 1
    assert [int(r[0]) for r in rows[1:]] == caches["labels"].tolist()
    assert {r[1] for r in rows[1:]} == {"test"}
    assert [int(r[2]) for r in rows[1:]] == caches["index"].tolist()
    # the sprite: ceil(sqrt(N)) thumbnails a row, row-major, each the test image itself
    sprite = np.asarray(Image.open(io.BytesIO(exported["sprite.png"])))
    x = load_dataset("mnist5k").x_test[caches["index"]]
    cols, (h, w) = math.ceil(math.sqrt(n)), x.shape[2:]
    assert sprite.shape == (math.ceil(n / cols) * h, cols * w)
    for i in (0, 1, cols, n - 1):
        r, c = divmod(i, cols)
        expected = (x[i, 0] * 255).round()
        assert np.abs(sprite[r * h:(r + 1) * h, c * w:(c + 1) * w] - expected).max() <= 1
    # both projector configs name the three files and a thumbnail's size
    config = json.loads(exported["projector_config.json"])["embeddings"][0]
    assert config["tensorShape"] == [n, dims] and config["sprite"]["singleImageDim"] == [w, h]
    assert (config["tensorPath"], config["metadataPath"], config["sprite"]["imagePath"]) == (
        "vectors.tsv", "metadata.tsv", "sprite.png")
    pbtxt = exported["projector_config.pbtxt"].decode()
    for line in ('tensor_path: "vectors.tsv"', 'metadata_path: "metadata.tsv"',
                 'image_path: "sprite.png"', f"single_image_dim: {w}"):
        assert line in pbtxt
    assert len(exported[f"{DEMO}.html"]) < 5 * 2**20


def test_a_sprite_too_large_for_the_projector_is_shrunk():
    x = np.random.default_rng(0).random((10, 1, 12, 12), dtype=np.float32)
    assert thumbnails(x).shape == (10, 12, 12, 1)  # 4 a row of 12 px fit in 8192
    small = thumbnails(x, limit=24)  # 4 a row in 24 px: 6 px each
    assert small.shape == (10, 6, 6, 1)
    assert np.abs(small[3, ..., 0] - x[3, 0].reshape(6, 2, 6, 2).mean((1, 3)) * 255).max() <= 1.5
    assert SPRITE_MAX == 8192


def test_cli_writes_the_export_and_keeps_other_files(demo_runs, exported, tmp_path, capsys):
    out = tmp_path / "home" / "vae"
    assert main(["export", DEMO, "--out", str(out), "--runs-dir", str(demo_runs)]) == 0
    assert capsys.readouterr().out.split() == [str(out / name) for name in file_names(DEMO)]
    for name, data in exported.items():
        assert (out / name).read_bytes() == data
    # a second export into the same folder is refused, in one line, nothing changed ...
    (out / "notes.txt").write_text("mine")
    (out / "vectors.tsv").write_text("old")
    assert main(["export", DEMO, "--out", str(out), "--runs-dir", str(demo_runs)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "already holds" in err and "--force" in err, err
    assert (out / "vectors.tsv").read_text() == "old"
    # ... unless forced: the export's files are replaced, nothing else is touched
    assert main(["export", str(demo_runs / DEMO), "--out", str(out), "--force"]) == 0
    assert (out / "vectors.tsv").read_bytes() == exported["vectors.tsv"]
    assert (out / "notes.txt").read_text() == "mine"
    assert sorted(p.name for p in out.iterdir()) == sorted([*file_names(DEMO), "notes.txt"])


@pytest.mark.parametrize("args,message", [
    (["no-such-run", "--out", "{tmp}/out"], "no run 'no-such-run' in "),
    ([DEMO, "--out", "{tmp}/a-file"], "is a file, not a folder"),
    ([DEMO], "the following arguments are required: --out"),
])
def test_cli_refuses_bad_input_in_one_sentence_before_writing(args, message, demo_runs, tmp_path, capsys):
    (tmp_path / "a-file").write_text("x")
    argv = ["export", *[a.format(tmp=tmp_path) for a in args], "--runs-dir", str(demo_runs)]
    with pytest.raises(SystemExit) if "--out" not in args else _no_raise():
        assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and message in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file"]


class _no_raise:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def test_a_run_the_browser_cannot_decode_is_refused_naming_what_can(tmp_path, capsys):
    rgba = np.random.default_rng(0).random((40, 4, 8, 8), dtype=np.float32)  # 4 channels
    data = tmp_path / "rgba.npz"
    np.savez(data, x_train=rgba[:32], x_test=rgba[32:])
    run = tiny_run(tmp_path / "runs", "ae", f"npz:{data}", train={"epochs": 1})
    out = tmp_path / "out"
    assert main(["export", str(run), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0, err
    assert f"run {run.name} cannot be exported, since the browser draws 1 or 3 channels, not 4" in err
    assert "a run can be exported when the browser can run its decoder" in err
    assert not out.exists()


@pytest.fixture
def deferred(monkeypatch):
    """The callable behind each deferred download button a page draws, by its file id (what
    Streamlit runs when the button is clicked)."""
    from streamlit.runtime.media_file_manager import MediaFileManager

    stored = {}
    original = MediaFileManager.add_deferred

    def record(self, data_callable, *args, **kwargs):
        file_id = original(self, data_callable, *args, **kwargs)
        stored[file_id] = data_callable
        return file_id

    monkeypatch.setattr(MediaFileManager, "add_deferred", record)
    return stored


def test_a_run_without_labels_exports_with_empty_labels(tmp_path):
    gray = np.random.default_rng(0).random((48, 1, 8, 8), dtype=np.float32)
    data = tmp_path / "gray.npz"
    np.savez(data, x_train=gray[:32], x_test=gray[32:])  # no y: no labels
    run = tiny_run(tmp_path / "runs", "ae", f"npz:{data}", train={"epochs": 1})
    with umap_as_pca():  # the caches are made here; which 2-D view does not matter
        files = export_run(RunRef.unchecked(run))
    rows = read_tsv(files["metadata.tsv"])
    assert rows == [["label", "split", "index"], *[["", "test", str(i)] for i in range(16)]]
    assert np.array(read_tsv(files["vectors.tsv"]), dtype=np.float32).shape == (16, 4)
    page = files[f"{run.name}.html"].decode()
    assert '"labels": null' in page and "gray (uploaded)" in page and str(data) not in page


def zip_of_button(at, key: str, deferred: dict, run_id: str) -> dict[str, bytes]:
    """The files in the zip the page's download button ``key`` hands out when clicked."""
    (button,) = [b for b in at.download_button if b.key == key]
    data = deferred[button.proto.deferred_file_id]()  # what a click runs
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        names = archive.namelist()
        assert all(Path(n).parent.name == f"{run_id}-export" for n in names), names
        return {Path(n).name: archive.read(n) for n in names}


@pytest.mark.parametrize("page,key", [("traversal", "trav_export"), ("latent", "lat_export")])
def test_the_pages_download_button_hands_out_the_export(page, key, demo_runs, deferred, monkeypatch,
                                                        supervisor_calls):
    import aelab.explore.export

    built = []
    build = aelab.explore.export.export_files
    monkeypatch.setattr(aelab.explore.export, "export_files", lambda *a: built.append(a) or build(*a))
    monkeypatch.setenv("AELAB_RUNS", str(demo_runs))
    at = open_page(page, run="demo-cvae")
    assert built == []  # drawing the page builds nothing: the zip is made on the click
    files = zip_of_button(at, key, deferred, "demo-cvae")
    ref = RunRef.unchecked(demo_runs / "demo-cvae")
    expected = export_files("demo-cvae", ref.load_model(), load_dataset("mnist5k"), get_caches(ref))
    assert files == expected
