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

On a failure the actual picture (or figure spec) and a difference image (expected |
actual | differences in red) are written under ``test-output/visual/`` at the repo root
(git-ignored) and the failure message names them.

After an intended change, refresh the references with

    AELAB_UPDATE_REFERENCES=1 python -m pytest tests/test_visual.py

then look at the changed files under tests/references/ before committing them.
"""
from __future__ import annotations

import json
import math
import os
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

ROOT = Path(__file__).resolve().parents[1]
REFERENCES = Path(__file__).resolve().parent / "references"
OUTPUT = ROOT / "test-output" / "visual"
UPDATE = os.environ.get("AELAB_UPDATE_REFERENCES", "") not in ("", "0")

MEAN_TOLERANCE = 2.0        # mean absolute difference, in 0-255 grey levels
OFF_LEVEL = 16              # a pixel differing by more than this is "off" ...
OFF_FRACTION = 0.01         # ... and fewer than this fraction of pixels may be
Y_RTOL, Y_ATOL = 1e-3, 1e-4  # loss values and row errors
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


# --- checking against references ---
def _save_png(path: Path, picture: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(picture).save(path, optimize=True)


def picture_problem(expected: np.ndarray, actual: np.ndarray) -> str | None:
    """Why ``actual`` does not match ``expected`` within the tolerance, or None."""
    if expected.shape != actual.shape:
        return f"the picture is {actual.shape}, the reference {expected.shape}"
    diff = np.abs(expected.astype(np.int16) - actual.astype(np.int16))
    mean, off = float(diff.mean()), float((diff > OFF_LEVEL).mean())
    if mean >= MEAN_TOLERANCE or off >= OFF_FRACTION:
        return (f"mean absolute difference {mean:.2f} (limit {MEAN_TOLERANCE}), "
                f"{off:.2%} of pixels off by more than {OFF_LEVEL} (limit {OFF_FRACTION:.0%})")
    return None


def difference_picture(expected: np.ndarray, actual: np.ndarray, zoom: int = 4) -> np.ndarray:
    """expected | actual | the differences in red over a dimmed expected, RGB, zoomed."""
    def rgb(p):
        return np.repeat(p[..., None], 3, axis=2) if p.ndim == 2 else p[..., :3]

    panels = [rgb(expected), rgb(actual)]
    if expected.shape == actual.shape:
        diff = np.abs(expected.astype(np.int16) - actual.astype(np.int16))
        diff = diff if diff.ndim == 2 else diff.max(axis=2)
        marked = (rgb(expected) * 0.35).astype(np.uint8)
        marked[..., 0] = np.maximum(marked[..., 0], np.clip(diff * 4, 0, 255).astype(np.uint8))
        marked[diff > OFF_LEVEL] = (255, 0, 0)
        panels.append(marked)
    height = max(p.shape[0] for p in panels)
    gap = np.full((height, 4, 3), 128, np.uint8)
    padded = [np.pad(p, ((0, height - p.shape[0]), (0, 0), (0, 0)), constant_values=255)
              for p in panels]
    joined = np.concatenate([x for p in padded for x in (p, gap)][:-1], axis=1)
    return joined.repeat(zoom, axis=0).repeat(zoom, axis=1)


def check_picture(name: str, actual: np.ndarray) -> None:
    """Compare a uint8 picture with ``references/<name>.png`` (or write it when updating)."""
    reference = REFERENCES / f"{name}.png"
    if UPDATE:
        _save_png(reference, actual)
        return
    if not reference.is_file():
        pytest.fail(f"no reference picture {reference}; create it with "
                    f"AELAB_UPDATE_REFERENCES=1 python -m pytest tests/test_visual.py")
    expected = np.asarray(Image.open(reference))
    problem = picture_problem(expected, actual)
    if problem:
        actual_path, diff_path = OUTPUT / f"{name}-actual.png", OUTPUT / f"{name}-diff.png"
        _save_png(actual_path, actual)
        _save_png(diff_path, difference_picture(expected, actual))
        pytest.fail(f"{name} differs from {reference.relative_to(ROOT)}: {problem}; "
                    f"see {diff_path} (expected | actual | differences) and {actual_path}")


def close(expected, actual, path: str = "") -> str | None:
    """Where two JSON-like values differ (numbers within the tolerance), or None."""
    if isinstance(expected, dict) and isinstance(actual, dict):
        if expected.keys() != actual.keys():
            return f"{path or 'top'}: keys {sorted(actual)} instead of {sorted(expected)}"
        return next((p for k in expected if (p := close(expected[k], actual[k], f"{path}.{k}"))), None)
    if isinstance(expected, list) and isinstance(actual, list):
        if len(expected) != len(actual):
            return f"{path}: {len(actual)} items instead of {len(expected)}"
        return next((p for i, (e, a) in enumerate(zip(expected, actual))
                     if (p := close(e, a, f"{path}[{i}]"))), None)
    numbers = (int, float)
    if isinstance(expected, numbers) and isinstance(actual, numbers) \
            and not isinstance(expected, bool) and not isinstance(actual, bool):
        if math.isclose(expected, actual, rel_tol=Y_RTOL, abs_tol=Y_ATOL):
            return None
        return f"{path}: {actual!r} instead of {expected!r}"
    return None if expected == actual else f"{path}: {actual!r} instead of {expected!r}"


def check_spec(name: str, actual: dict) -> None:
    """Compare a JSON spec with ``references/<name>.json`` (or write it when updating)."""
    reference = REFERENCES / f"{name}.json"
    actual = json.loads(json.dumps(actual))  # tuples -> lists, numpy numbers -> floats
    if UPDATE:
        reference.parent.mkdir(parents=True, exist_ok=True)
        reference.write_text(json.dumps(actual, indent=1, ensure_ascii=False) + "\n")
        return
    if not reference.is_file():
        pytest.fail(f"no reference {reference}; create it with "
                    f"AELAB_UPDATE_REFERENCES=1 python -m pytest tests/test_visual.py")
    problem = close(json.loads(reference.read_text()), actual)
    if problem:
        actual_path = OUTPUT / f"{name}-actual.json"
        actual_path.parent.mkdir(parents=True, exist_ok=True)
        actual_path.write_text(json.dumps(actual, indent=1, ensure_ascii=False) + "\n")
        pytest.fail(f"{name} differs from {reference.relative_to(ROOT)} at {problem}; "
                    f"the actual spec is in {actual_path}")


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
def test_the_picture_check_tolerates_float_noise_and_catches_changes(tmp_path, monkeypatch):
    monkeypatch.setitem(globals(), "REFERENCES", tmp_path / "references")
    monkeypatch.setitem(globals(), "OUTPUT", tmp_path / "out")
    monkeypatch.setitem(globals(), "ROOT", tmp_path)
    monkeypatch.setitem(globals(), "UPDATE", False)
    rng = np.random.default_rng(0)
    reference = (rng.random((24, 60)) * 255).astype(np.uint8)
    _save_png(tmp_path / "references" / "probe.png", reference)

    jitter = np.clip(reference.astype(int) + rng.integers(-3, 4, reference.shape), 0, 255)
    check_picture("probe", jitter.astype(np.uint8))  # float-sized differences pass
    assert not (tmp_path / "out").exists()

    changed = reference.copy()
    changed[:, :10] = 255 - changed[:, :10]  # a sixth of the picture inverted
    with pytest.raises(pytest.fail.Exception) as failure:
        check_picture("probe", changed)
    diff_path = tmp_path / "out" / "probe-diff.png"
    assert str(diff_path) in str(failure.value)
    assert np.asarray(Image.open(tmp_path / "out" / "probe-actual.png")).tolist() == changed.tolist()
    assert Image.open(diff_path).size == ((60 * 3 + 8) * 4, 24 * 4)

    with pytest.raises(pytest.fail.Exception, match="the picture is"):
        check_picture("probe", reference[:, :50])
    stray = reference.copy()
    stray[0, :20] = np.where(stray[0, :20] < 128, 255, 0)  # 1.4% of the pixels far off
    assert "of pixels off" in picture_problem(reference, stray)


def test_the_spec_check_uses_a_tolerance(tmp_path, monkeypatch):
    monkeypatch.setitem(globals(), "REFERENCES", tmp_path)
    monkeypatch.setitem(globals(), "OUTPUT", tmp_path / "out")
    monkeypatch.setitem(globals(), "ROOT", tmp_path)
    monkeypatch.setitem(globals(), "UPDATE", False)
    (tmp_path / "probe.json").write_text(json.dumps({"traces": [{"name": "loss", "y": [40.0, 30.0]}]}))
    check_spec("probe", {"traces": [{"name": "loss", "y": [40.0 * (1 + 1e-5), 30.0]}]})
    for wrong, where in [({"traces": [{"name": "loss", "y": [40.2, 30.0]}]}, ".traces[0].y[0]"),
                         ({"traces": [{"name": "recon", "y": [40.0, 30.0]}]}, ".traces[0].name"),
                         ({"traces": []}, ".traces: 0 items")]:
        with pytest.raises(pytest.fail.Exception, match=re.escape(f"at {where}")):
            check_spec("probe", wrong)
    assert (tmp_path / "out" / "probe-actual.json").is_file()
