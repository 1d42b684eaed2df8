"""Visual regression of what the pages show, built with the same ``aelab.explore.reconstructions`` calls.

Three tiny ``digits`` runs (``ae`` z=2, ``denoising`` z=4, ``vae`` z=4; seed 0, trained in
this process on one CPU thread, so every number is reproducible) give:

- the Runs page's loss figures (``loss_figure``): trace names, count, x and y data,
  compared with ``tests/references/<name>.json`` (y with a relative tolerance);
- the Reconstructions page's pictures (``image_grid`` of ``reconstruction_rows`` and
  ``denoising_rows``) compared with ``tests/references/<name>.png`` pixel by pixel:
  a mean absolute difference under 2 and under 1% of pixels off by more than 16, which
  CPU float differences stay well inside; the MSE and BCE each row shows are compared
  with ``tests/references/<name>.json``.

The comparison (tests/picture_check.py, shared with the browser screenshots of
tests/e2e/test_page_screenshots.py): on a failure the actual picture (or figure spec) and a
difference image (expected | actual | differences in red) are written under
``test-output/visual/`` at the repo root (git-ignored) and the failure message names them.

After an intended change, refresh the references with

    AELAB_UPDATE_REFERENCES=1 python -m pytest tests/test_visual.py

then look at the changed files under tests/references/ before committing them.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from aelab.data.datasets import load_dataset
from aelab.explore.reconstructions import denoising_rows, image_grid, loss_figure, pick_examples, reconstruction_rows
from aelab.metrics.evaluate import fit_pca
from aelab.runs.folder import load_model, read_metrics
from aelab.runs.local import RunManager
from aelab.runs.train import train_run
from aelab.training.setup import prepare_run

from picture_check import References, Tolerance, load_png, picture_problem, save_png

ROOT = Path(__file__).resolve().parents[1]
REFERENCES = Path(__file__).resolve().parent / "references"
OUTPUT = ROOT / "test-output" / "visual"
RUNS = (("ae", 2), ("denoising", 4), ("vae", 4))


# --- fixture runs ---
@pytest.fixture(scope="module")
def fixture_runs(tmp_path_factory):
    """The three runs, with fixed folder names so the labels are reproducible too."""
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("visual-runs")
    for i, (variant, latent) in enumerate(RUNS, 1):
        run_dir = prepare_run(variant, "digits", {"latent_dim": latent, "hidden": "32"},
                              {"epochs": 20, "lr": 5e-3, "log_every": 24, "seed": 0, "device": "cpu",
                               "caches": False}, runs_dir=root, out=root / f"run-{variant}-{i:04d}")
        assert train_run(run_dir)["state"] == "done"
    rows = RunManager(root, start_supervisor=False).list()
    return root, {r["variant"]: r for r in rows}


def legend_label(row: dict) -> str:
    """A fixed label per fixture run (the references hold it): the pages' own labels carry
    the run's creation time (aelab.runs.labels.run_label), which changes on every test run."""
    return f"{row['variant']} z={row['latent_dim']} · {row['dataset']} · {row['id'][-4:]}"


@pytest.fixture(scope="module")
def page_models(fixture_runs):
    """label -> model, in the Reconstructions page's order, and the digits data set."""
    root, rows = fixture_runs
    models = {legend_label(rows[v]): load_model(root / rows[v]["id"]) for v, _ in RUNS}
    return models, load_dataset("digits")


# --- checking against references (tests/picture_check.py) ---
REFS = References(REFERENCES, OUTPUT, "AELAB_UPDATE_REFERENCES=1 python -m pytest tests/test_visual.py")
check_picture, check_spec = REFS.check_picture, REFS.check_spec


def figure_spec(figure) -> dict:
    """What a loss figure shows: each trace's name, kind and data, and the axis titles."""
    layout = figure.layout
    return {"traces": [{"name": t.name, "type": t.type, "mode": t.mode,
                        "x": [float(v) for v in t.x], "y": [float(v) for v in t.y]}
                       for t in figure.data],
            "xaxis": layout.xaxis.title.text, "yaxis": layout.yaxis.title.text,
            "legend": layout.legend.title.text}


def rows_spec(rows) -> list[dict]:
    """The labels and errors the page prints beside the rows and in its table."""
    return [{"label": r.label, "mse": r.mse, "bce": r.bce} for r in rows]


# --- the Runs page ---
@pytest.mark.slow
@pytest.mark.parametrize("name, variants", [("loss-ae", ("ae",)),
                                            ("loss-overlay", ("ae", "denoising", "vae"))])
def test_loss_figure(fixture_runs, name, variants):
    root, rows = fixture_runs
    # as the Runs page: {run label: logged metrics} for the runs picked
    figure = loss_figure({legend_label(rows[v]): read_metrics(root / rows[v]["id"]) for v in variants})
    spec = figure_spec(figure)
    check_spec(name, spec)
    assert len(spec["traces"]) == {1: 2, 3: 7}[len(variants)]
    assert all(t["x"] == [float(e) for e in range(1, 21)] for t in spec["traces"])  # each epoch's end


# --- the Reconstructions page ---
def pca_for(ds):
    return lambda k: fit_pca(ds.x_train, k)


@pytest.mark.parametrize("how", ["random", "per class", "worst"])
def test_reconstruction_picture(page_models, how):
    models, ds = page_models
    worst_of = next(iter(models.values()))  # the page's "Worst for" default: the first run
    index = pick_examples(ds.x_test, ds.y_test, how, 10, 0, model=worst_of if how == "worst" else None)
    rows = reconstruction_rows(models, ds.x_test[index], ds.y_test[index], ds.x_train, pca_for(ds))
    assert [r.label for r in rows][0] == "original" and len(rows) == 1 + 3 + 2
    name = f"reconstructions-{how.replace(' ', '-')}"
    check_picture(name, image_grid([r.images for r in rows]))
    check_spec(name, rows_spec(rows))


@pytest.mark.parametrize("noise, level", [("gaussian", 0.3), ("masking", 0.5), ("salt_pepper", 0.2)])
def test_denoising_picture(page_models, noise, level):
    models, ds = page_models
    index = pick_examples(ds.x_test, ds.y_test, "random", 10, 0)
    rows = denoising_rows(models, ds.x_test[index], ds.y_test[index], ds.x_train, noise, level, 0,
                          pca_for(ds))
    assert [r.label for r in rows][:2] == ["clean", f"{noise} {level:.2f}"]
    name = f"denoising-{noise}-{level:.2f}"
    check_picture(name, image_grid([r.images for r in rows]))
    check_spec(name, rows_spec(rows))


def test_page_scale_only_enlarges_the_pixels(page_models):
    """The page shows each row with ``scale=12``; that is the same picture, enlarged."""
    models, ds = page_models
    rows = reconstruction_rows(models, ds.x_test[:4], ds.y_test[:4], ds.x_train, pca_for(ds))
    small, big = image_grid([rows[1].images]), image_grid([rows[1].images], scale=12)
    np.testing.assert_array_equal(big, small.repeat(12, axis=0).repeat(12, axis=1))


# --- the checker itself ---
def probe_references(tmp_path, monkeypatch) -> References:
    monkeypatch.delenv("AELAB_UPDATE_REFERENCES", raising=False)
    return References(tmp_path / "references", tmp_path / "out", "REFRESH-COMMAND")


def test_the_picture_check_tolerates_float_noise_and_catches_changes(tmp_path, monkeypatch):
    refs = probe_references(tmp_path, monkeypatch)
    rng = np.random.default_rng(0)
    reference = (rng.random((24, 60)) * 255).astype(np.uint8)
    save_png(tmp_path / "references" / "probe.png", reference)

    jitter = np.clip(reference.astype(int) + rng.integers(-3, 4, reference.shape), 0, 255)
    refs.check_picture("probe", jitter.astype(np.uint8))  # float-sized differences pass
    assert not (tmp_path / "out").exists()

    changed = reference.copy()
    changed[:, :10] = 255 - changed[:, :10]  # a sixth of the picture inverted
    with pytest.raises(pytest.fail.Exception) as failure:
        refs.check_picture("probe", changed)
    diff_path = tmp_path / "out" / "probe-diff.png"
    assert str(diff_path) in str(failure.value) and "REFRESH-COMMAND" in str(failure.value)
    assert load_png(tmp_path / "out" / "probe-actual.png").tolist() == changed.tolist()
    assert Image.open(diff_path).size == ((60 * 3 + 8) * 4, 24 * 4)

    with pytest.raises(pytest.fail.Exception, match="the picture is"):
        refs.check_picture("probe", reference[:, :50])
    stray = reference.copy()
    stray[0, :20] = np.where(stray[0, :20] < 128, 255, 0)  # 1.4% of the pixels far off
    assert "of pixels off" in picture_problem(reference, stray)
    with pytest.raises(pytest.fail.Exception, match="no reference .*REFRESH-COMMAND"):
        refs.check_picture("absent", reference)


def test_the_picture_check_counts_a_colour_pixel_once(tmp_path):
    """An RGB pixel off in all three channels is one pixel off, not three."""
    reference = np.full((10, 10, 3), 200, np.uint8)
    changed = reference.copy()
    changed[0, :5] = 0  # 5% of the pixels, every channel
    assert "5.000% of pixels off" in picture_problem(reference, changed)
    assert picture_problem(reference, changed, Tolerance(mean=100, off_fraction=0.06)) is None


def test_updating_writes_the_reference(tmp_path, monkeypatch):
    refs = probe_references(tmp_path, monkeypatch)
    monkeypatch.setenv("AELAB_UPDATE_REFERENCES", "1")
    picture = np.arange(64, dtype=np.uint8).reshape(8, 8)
    refs.check_picture("new", picture)
    refs.check_spec("new", {"y": (1, 2)})
    assert load_png(tmp_path / "references" / "new.png").tolist() == picture.tolist()
    assert json.loads((tmp_path / "references" / "new.json").read_text()) == {"y": [1, 2]}


def test_the_spec_check_uses_a_tolerance(tmp_path, monkeypatch):
    refs = References(tmp_path, tmp_path / "out", "REFRESH-COMMAND")
    monkeypatch.delenv("AELAB_UPDATE_REFERENCES", raising=False)
    (tmp_path / "probe.json").write_text(json.dumps({"traces": [{"name": "loss", "y": [40.0, 30.0]}]}))
    refs.check_spec("probe", {"traces": [{"name": "loss", "y": [40.0 * (1 + 1e-5), 30.0]}]})
    for wrong, where in [({"traces": [{"name": "loss", "y": [40.2, 30.0]}]}, ".traces[0].y[0]"),
                         ({"traces": [{"name": "recon", "y": [40.0, 30.0]}]}, ".traces[0].name"),
                         ({"traces": []}, ".traces: 0 items")]:
        with pytest.raises(pytest.fail.Exception, match=re.escape(f"at {where}")):
            refs.check_spec("probe", wrong)
    assert (tmp_path / "out" / "probe-actual.json").is_file()
