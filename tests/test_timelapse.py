"""The latent space as it learns: the trainer's probe file (``aelab.runs.probes``) holds what
each frame's weights give, stays consistent through a cancel and resume, stays small, and the
pages show its time-lapse (``aelab.explore.timelapse``), or say in one sentence that a run
has none."""
from __future__ import annotations

import itertools
import json
import shutil
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from conftest import TINY, open_page

import aelab.training.trainer as trainer
from aelab.config import TrainConfig
from aelab.data.datasets import load_dataset
from aelab.explore.timelapse import (
    active_counts,
    aligned_maps,
    collapses,
    pca_2d,
    timelapse_figure,
    timelapse_summary,
)
from aelab.metrics.evaluate import encode_array, vae_scores
from aelab.models import build_model, make_config
from aelab.runs.folder import PROBES, RUN_FILES, delete_run_files, load_model, read_status
from aelab.runs.probes import (
    ProbeRecorder,
    frame_steps,
    probe_indices,
    read_probes,
)
from aelab.runs.train import train_run
from aelab.training.budget import fit_budget, training_size
from aelab.training.setup import prepare_run
from aelab.ui.timelapse import NO_PROBES, PLAY_IT, TITLE

ROOT = Path(__file__).resolve().parents[1]
TRAIN = {"epochs": 3, "device": "cpu", "caches": False, "seed": 3}


def encoded(run_dir, probes) -> np.ndarray:
    """The probe set encoded now with the run's saved weights."""
    ds = load_dataset("digits")
    index = probes["index"]
    return encode_array(load_model(run_dir), ds.x_test[index], ds.y_test[index])


def same_codes(stored: np.ndarray, fresh: np.ndarray) -> None:
    """Equal up to the float16 the file keeps codes in."""
    np.testing.assert_allclose(stored, fresh, rtol=2 ** -10, atol=1e-4)


def test_frames_hold_each_steps_codes_through_a_cancel_and_resume(runs_dir, monkeypatch):
    whole, parts = (prepare_run("vae", "digits", TINY, TRAIN, runs_dir=runs_dir) for _ in range(2))
    assert train_run(whole)["state"] == "done"
    done = read_probes(whole)
    # the last frame is the final weights' codes and KL; the first the initial weights'
    assert done["steps"][0] == 0 and done["steps"][-1] == read_status(whole)["step"] == 36
    same_codes(done["codes"][-1], encoded(whole, done))
    ds = load_dataset("digits")
    x, y = ds.x_test[done["index"]], ds.y_test[done["index"]]
    kl = vae_scores(load_model(whole), x, y)["kl_per_dim"]
    np.testing.assert_allclose(done["kl"][-1], kl, rtol=1e-4, atol=1e-6)
    torch.manual_seed(TRAIN["seed"])
    initial = build_model(make_config("vae", input_shape=(1, 8, 8), num_classes=10, latent_dim=4,
                                      hidden=(32,))).eval()
    same_codes(done["codes"][0], encode_array(initial, x, y))
    assert done["meta"]["total_steps"] == 36 and done["meta"]["code"] == "posterior mean"
    assert (done["labels"] == y).all() and len(set(done["labels"][done["shown"]])) == 8

    # cancelled at step 10 (between two sync points): its checkpoint's frame is its weights'
    clock = itertools.count(0.0, 0.3)  # the trainer asks whether to stop every 0.2 s: every step
    monkeypatch.setattr(trainer, "time", SimpleNamespace(monotonic=lambda: next(clock), time=time.time))
    calls = itertools.count()
    assert train_run(parts, should_stop=lambda: next(calls) >= 10)["state"] == "cancelled"
    monkeypatch.undo()
    cut = read_probes(parts)
    assert cut["steps"][-1] == read_status(parts)["step"] == 10
    same_codes(cut["codes"][-1], encoded(parts, cut))
    # a frame written after the last checkpoint by a run that was then killed: dropped on resume
    recorder = ProbeRecorder(parts, "digits", ds.x_test, ds.y_test, load_model(parts), torch.device("cpu"),
                             36, 12, 50, resume_step=10)
    recorder.record(load_model(parts), 11, 0.0)
    assert read_probes(parts)["steps"][-1] == 11
    assert train_run(parts, resume=True)["state"] == "done"
    resumed = read_probes(parts)
    # the resumed run continues the same file: the uninterrupted run's frames, plus step 10's
    assert resumed["steps"].tolist() == sorted({*done["steps"].tolist(), 10})
    common = np.isin(resumed["steps"], done["steps"])
    assert np.array_equal(resumed["codes"][common], done["codes"])
    assert np.array_equal(resumed["recon"][common], done["recon"])
    same_codes(resumed["codes"][-1], encoded(parts, resumed))


def test_every_variant_records_probe_frames(runs_dir):
    """Each variant's code (its posterior mean for the VAE family) and reconstructions."""
    from aelab.models import list_variants

    for variant in list_variants():
        if variant in ("adagvae", "semivae"):
            continue  # shapes-only variants: their page tests train them
        run = prepare_run(variant, "digits", {**TINY, **({"k": 2} if variant == "ksparse" else {})},
                          {**TRAIN, "epochs": 1}, runs_dir=runs_dir)
        assert train_run(run)["state"] == "done", variant
        probes = read_probes(run)
        assert probes["codes"].shape == (len(probes["steps"]), 256, 4), variant
        assert ("kl" in probes) == (probes["meta"]["code"] == "posterior mean"), variant
        same_codes(probes["codes"][-1], encoded(run, probes))


def test_alignment_leaves_a_rotated_copy_of_a_frame_unchanged():
    rng = np.random.default_rng(0)
    first = rng.normal(size=(200, 6)) * [5, 3, 1, 0.5, 0.2, 0.1]
    rotation, _ = np.linalg.qr(rng.normal(size=(6, 6)))  # orthogonal, a reflection maybe
    other = rng.normal(size=(200, 6)) * [4, 4, 2, 1, 1, 1]
    # a rotated copy after a frame, and a frame after a rotated copy
    for frames, same in (([first, first @ rotation, other], (0, 1)),
                         ([other, first, first @ rotation], (1, 2))):
        maps = aligned_maps(np.stack(frames))
        np.testing.assert_allclose(maps[same[0]], maps[same[1]], atol=1e-9)
        # only turned, never scaled: each map keeps its own PCA map's distances
        for t, frame in enumerate(frames):
            d = np.linalg.norm(maps[t][:, None] - maps[t][None], axis=-1)
            d0 = np.linalg.norm(pca_2d(frame)[:, None] - pca_2d(frame)[None], axis=-1)
            np.testing.assert_allclose(d, d0, atol=1e-9)
    assert np.allclose(aligned_maps(np.stack([first, other]))[-1], pca_2d(other))  # the anchor


def test_active_latents_and_collapses():
    steps = np.array([0, 10, 20, 30])
    kl = np.array([[0.5, 0.0, 0.3, 0.2],
                   [0.5, 0.0, 0.005, 0.2],
                   [0.5, 0.02, 0.001, 0.001],
                   [0.5, 0.03, 0.001, 0.5]])  # z2 collapses at 10; z3 dips and recovers
    assert active_counts(kl).tolist() == [3, 2, 2, 3]
    assert collapses(steps, kl) == {10: [2]}
    kl[3, 1] = 0.0  # z1 came alive at step 20 and collapsed at 30
    assert collapses(steps, kl) == {10: [2], 30: [1]}
    probes = {"steps": steps, "kl": kl, "index": np.arange(5), "meta": {"total_steps": 40}}
    assert timelapse_summary(probes) == ("5 test images, encoded at 4 steps from 0 to 30 of 40; 2 of 4 latents "
                                         "active at the last step; collapsed (red x): z2 at step 10, z1 at step 30.")
    kl[3, 1] = 0.5
    assert timelapse_summary(probes).endswith("; 3 of 4 latents active at the last step; collapsed (red x): "
                                              "z2 at step 10.")
    assert timelapse_summary({**probes, "kl": kl[:, [0, 3]]}).endswith(", none collapsed.")


def test_the_probe_file_stays_small_for_a_default_run(tmp_path):
    """Every frame a default run's schedule can take, written by the recorder (the sizes of
    the codes, KL and reconstructions are those of a run; the weights are untrained)."""
    for variant, dataset in (("vae", "digits"), ("vae", "mnist5k"), ("betavae", "shapes64")):
        ds = load_dataset(dataset)
        model = build_model(make_config(variant, input_shape=ds.input_shape, num_classes=ds.num_classes,
                                        **({"arch": "conv"} if dataset == "shapes64" else {})))
        config = fit_budget(TrainConfig(), dataset)
        steps_per_epoch = -(-training_size(dataset) // config.batch_size)
        total = config.epochs * steps_per_epoch
        folder = tmp_path / dataset
        folder.mkdir()
        recorder = ProbeRecorder(folder, dataset, ds.x_test, ds.y_test, model, torch.device("cpu"),
                                 total, steps_per_epoch, 50)
        due = [s for s in range(total + 1) if recorder.due(s) and (s % 50 == 0 or s % steps_per_epoch == 0)]
        for step in [*due, 997]:  # 997: a cancel's frame between two sync points
            recorder.record(model, step, 0.0)
        size = (folder / PROBES).stat().st_size
        assert size < 1_000_000, (dataset, size)
        assert len(read_probes(folder)["steps"]) >= 8, dataset
        print(dataset, total, "steps:", len(read_probes(folder)["steps"]), "frames,", size, "bytes")


def test_probe_set_and_schedule_are_fixed():
    assert np.array_equal(probe_indices(270), probe_indices(270))
    assert sorted(probe_indices(100).tolist()) == list(range(100))
    steps = frame_steps(1500, 48)
    assert steps[0] == 0 and steps[-1] == 1500 and (np.diff(steps) > 0).all()
    assert (steps < 375).sum() > len(steps) / 2 - 2  # most frames in the first quarter


def test_runs_delete_removes_the_probe_file_and_keeps_the_users(runs_dir):
    run = prepare_run("ae", "digits", TINY, {**TRAIN, "epochs": 1}, runs_dir=runs_dir)
    train_run(run)
    assert PROBES in RUN_FILES and (run / PROBES).is_file()
    (run / "notes.txt").write_text("mine")
    assert delete_run_files(run) == ["notes.txt"]


def test_timelapse_figure_has_one_frame_per_step_and_a_slider(runs_dir):
    run = prepare_run("vae", "digits", TINY, TRAIN, runs_dir=runs_dir)
    train_run(run)
    probes = read_probes(run)
    figure = timelapse_figure(probes)
    assert [f.name for f in figure.frames] == [str(s) for s in probes["steps"]]
    assert len(figure.layout.sliders[0].steps) == len(probes["steps"])
    assert [b.label for b in figure.layout.updatemenus[0].buttons] == ["Play", "Pause"]
    maps = aligned_maps(probes["codes"])
    first = figure.frames[0].data  # label 0's points at step 0
    member = np.flatnonzero(probes["labels"] == 0)
    np.testing.assert_allclose(first[0].x, maps[0, member, 0], rtol=1e-4, atol=1e-5)
    # classes are named as the dataset names them (sprites by their shape), as on the Latent page
    sprites = {**probes, "labels": probes["labels"] % 3, "meta": {**probes["meta"], "dataset": "shapes64"}}
    figure = timelapse_figure(sprites)
    assert [t.name for t in figure.data if getattr(t, "showlegend", False)] == ["square", "ellipse", "heart"]
    assert figure.layout.legend.title.text == "class"


def test_runs_page_shows_the_timelapse_or_says_a_run_has_none(runs_dir):
    run = prepare_run("vae", "digits", TINY, TRAIN, runs_dir=runs_dir)
    train_run(run)
    shutil.copytree(ROOT / "checkpoints" / "demo-vae", runs_dir / "demo-vae")
    at = open_page("pages/runs.py", run=run.name)
    (chart,) = [c for c in at.get("plotly_chart") if c.key == "runs_timelapse"]
    spec = json.loads(chart.proto.spec)
    steps = read_probes(run)["steps"]
    assert [f["name"] for f in spec["frames"]] == [str(s) for s in steps]
    assert len(spec["layout"]["sliders"][0]["steps"]) == len(steps)
    assert NO_PROBES not in [c.value for c in at.caption]
    at = open_page("pages/runs.py", run="demo-vae")
    assert not [c for c in at.get("plotly_chart") if c.key == "runs_timelapse"]
    assert NO_PROBES in [c.value for c in at.caption]


@pytest.mark.slow
def test_latent_page_says_a_shipped_run_has_no_timelapse(monkeypatch):
    import aelab.metrics.background

    monkeypatch.setenv("AELAB_RUNS", str(ROOT / "checkpoints"))
    monkeypatch.setattr(aelab.metrics.background, "start_scoring", lambda run_dir, kind="disentangle": True)
    at = open_page("latent", run="demo-vae")
    assert NO_PROBES in [c.value for c in at.caption]
    assert TITLE in [h.value for h in at.subheader] and not [e for e in at.expander if e.label == PLAY_IT]
