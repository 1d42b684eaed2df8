"""Disentanglement metrics: reference encoders with known answers, the formulas on hand-made
inputs, a trained run on the shapes sprites, and the ``disentangle`` command."""
import json
import math

import numpy as np
import pytest

from aelab.cli import main
from aelab.data import shapes
from aelab.errors import ConfigError, RunError
from aelab.metrics import disentanglement as D
from tests.conftest import shown_cells

OTHER = ("beta_vae", "factor_vae", "dci_disentanglement", "dci_completeness",
         "dci_informativeness")


@pytest.fixture(scope="module")
def reference():
    """The scores of the three reference encoders (seed 0), computed once."""
    return {name: D.score_encoder(name, intervals=False) for name in D.REFERENCE_ENCODERS}


@pytest.fixture(scope="module")
def shapes_run(tmp_path_factory):
    """A tiny beta-VAE trained for one epoch on shapes (renders the 25,000 sprites once)."""
    from aelab.runs.train import train_run
    from aelab.training.setup import prepare_run

    run_dir = prepare_run("betavae", "shapes", {"latent_dim": 6, "hidden": "64"},
                          {"epochs": 1, "caches": False},
                          runs_dir=tmp_path_factory.mktemp("runs"))
    assert train_run(run_dir)["state"] == "done"
    return run_dir


# --- reference encoders ---
@pytest.mark.slow
def test_true_factors_score_high(reference):
    gt = reference["ground-truth"]
    assert gt["mig"] >= 0.8
    for metric in OTHER:
        assert gt[metric] >= 0.9, metric
    mi = np.array(gt["mi_matrix"])
    assert mi.shape == (5, 5) and gt["factors"] == list(shapes.FACTORS)
    assert (mi.argmax(0) == np.arange(5)).all()  # code k carries factor k
    # shape and scale have fewer values than bins: their code holds all of H(v_k)
    assert mi[0, 0] == pytest.approx(math.log(3), rel=0.01)
    assert mi[1, 1] == pytest.approx(math.log(6), rel=0.01)


@pytest.mark.slow  # the reference encoders are scored once for these
def test_a_rotation_of_the_true_factors_is_entangled_but_informative(reference):
    gt, mixed = reference["ground-truth"], reference["mixed"]
    assert mixed["mig"] <= gt["mig"] / 2
    assert mixed["dci_disentanglement"] <= gt["dci_disentanglement"] / 2
    assert mixed["dci_completeness"] <= gt["dci_completeness"] / 2
    # a rotation is invertible and linear, so it keeps every bit of the factors: the codes
    # should predict the factors as well as the true factors do
    assert mixed["dci_informativeness"] >= 0.9
    # the beta-VAE and FactorVAE metrics are more lenient to rotations than MIG and DCI
    print(f"\nmixed: beta_vae {mixed['beta_vae']:.3f}, factor_vae {mixed['factor_vae']:.3f}")
    for lenient in ("beta_vae", "factor_vae"):
        for strict in ("mig", "dci_disentanglement"):
            assert mixed[lenient] / gt[lenient] > mixed[strict] / gt[strict]


@pytest.mark.slow  # the reference encoders are scored once for these
def test_noise_scores_at_chance(reference):
    noise = reference["noise"]
    assert noise["chance"]["beta_vae"] == noise["chance"]["factor_vae"] == 0.2
    assert abs(noise["beta_vae"] - 0.2) <= 0.1
    assert abs(noise["factor_vae"] - 0.2) <= 0.1
    assert noise["mig"] < 0.05
    assert noise["dci_disentanglement"] < 0.2 and noise["dci_completeness"] < 0.2
    # informativeness: the mean majority-class rate (1/3, 1/6, 1/40, 1/32, 1/32 -> 0.12)
    chance = noise["chance"]["dci_informativeness"]
    assert chance == pytest.approx(np.mean([1 / s for s in shapes.SIZES]), abs=0.02)
    assert abs(noise["dci_informativeness"] - chance) < 0.05


@pytest.mark.slow  # the reference encoders are scored once for these
def test_true_factors_beat_their_rotation_which_beats_noise(reference):
    truth, mixed, noise = (reference[n] for n in ("ground-truth", "mixed", "noise"))
    for metric in ("mig", *OTHER):
        assert mixed[metric] > noise[metric], metric
        if metric == "dci_informativeness":  # a rotation loses no information
            assert truth[metric] >= mixed[metric], metric
        else:
            assert truth[metric] > mixed[metric], metric


@pytest.mark.slow
def test_scores_are_reproducible_and_follow_the_seed(reference):
    again = D.score(D.reference_encoder("noise"), seed=0, intervals=False)
    assert again == {k: v for k, v in reference["noise"].items() if k != "encoder"}
    other = D.score(D.reference_encoder("noise"), seed=1, intervals=False)
    assert other["beta_vae"] != again["beta_vae"] or other["mi_matrix"] != again["mi_matrix"]


def test_reference_encoders():
    f = shapes.sample_factors(20_000, np.random.default_rng(0))
    gt = D.reference_encoder("ground-truth")(f)
    assert np.allclose(gt.mean(0), 0, atol=0.05) and np.allclose(gt.std(0), 1, atol=0.05)
    rotation = D.rotation_matrix()
    assert np.allclose(rotation @ rotation.T, np.eye(5)) and np.linalg.det(rotation) > 0
    assert np.abs(rotation).max() < D.MIXING_ENTRY
    assert np.allclose(D.reference_encoder("mixed")(f), gt @ rotation)
    noise = D.reference_encoder("noise")
    assert np.array_equal(noise(f[:10]), noise(f[:10]))  # a pure function of the batch
    assert abs(np.corrcoef(noise(f)[:, 0], f[:, 3])[0, 1]) < 0.05
    with pytest.raises(ConfigError, match="unknown reference encoder 'rotated'; choose one of: "
                                          "ground-truth, mixed, noise"):
        D.reference_encoder("rotated")


# --- the formulas on hand-made inputs ---
def test_mig_against_a_hand_computed_example():
    # v0, v1 are two fair coins; z0 = v0, z1 = v0 AND v1
    factors = np.array([[0, 0], [0, 1], [1, 0], [1, 1]])
    codes = np.array([[0.0, 0.0], [0.0, 0.0], [1.0, 0.0], [1.0, 1.0]])
    score, mi = D.mig(codes, factors)
    # I(z1; v0) = H(z1) - H(z1 | v0) = [3/4 ln(4/3) + 1/4 ln 4] - 1/2 ln 2, the same for v1
    a = 0.75 * math.log(4 / 3) + 0.25 * math.log(4) - 0.5 * math.log(2)
    assert mi == pytest.approx(np.array([[math.log(2), 0.0], [a, a]]))
    # MIG = 1/2 [(ln 2 - a) / ln 2 + (a - 0) / ln 2]
    assert score == pytest.approx(0.5 * ((math.log(2) - a) + a) / math.log(2))
    assert D.mig(codes[:, :1], factors)[0] == pytest.approx(0.5)  # one code: the gap is I itself


def test_discretise_uses_equal_width_bins():
    codes = np.array([[0.0], [0.04], [0.06], [0.5], [1.0]])
    assert D.discretise(codes, 20)[:, 0].tolist() == [0, 0, 1, 10, 19]
    assert len(set(D.discretise(np.zeros((3, 1)), 20)[:, 0])) == 1  # a collapsed code: one bin


def test_dci_of_given_importance_matrices():
    assert D.dci_from_importance(np.eye(5)) == pytest.approx((1.0, 1.0))
    assert D.dci_from_importance(np.eye(5)[[1, 0, 4, 2, 3]] * 3) == pytest.approx((1.0, 1.0))
    assert D.dci_from_importance(np.ones((4, 5))) == pytest.approx((0.0, 0.0))
    # one code carries both factors: not disentangled (D = 0) but complete (C = 1)
    assert D.dci_from_importance(np.array([[1.0, 1.0], [0.0, 0.0]])) == pytest.approx((0.0, 1.0))
    # two codes share one factor and the other factor is unused: D = 1, C = 0
    assert D.dci_from_importance(np.array([[1.0, 0.0], [1.0, 0.0]])) == pytest.approx((1.0, 0.0))
    # a 2 x 2 case by hand: row entropies H_2(3/4, 1/4), weights 1/2 each
    h = -(0.75 * math.log2(0.75) + 0.25 * math.log2(0.25))
    assert D.dci_from_importance(np.array([[3.0, 1.0], [1.0, 3.0]])) == pytest.approx((1 - h, 1 - h))


def test_factor_vae_leaves_collapsed_codes_out():
    rng = np.random.default_rng(0)
    pool = shapes.sample_factors(D.POOL, rng)
    # the true factors plus a dead unit (constant code) and one that barely moves
    codes = np.hstack([D.standardised_factors(pool), np.full((len(pool), 1), 0.3),
                       1e-3 * rng.standard_normal((len(pool), 1))])
    assert D.factor_vae_metric(pool, codes, rng, n_train=500, n_eval=500) == 1.0


def test_pairs_and_votes_hold_the_factor_at_its_value():
    rng = np.random.default_rng(0)
    pool = shapes.sample_factors(D.POOL, rng)
    group = D._group(pool, 2)  # orientation
    values = rng.integers(0, 40, (30, 64))
    a, b = D._draw_pairs(group, values, rng)
    assert a.shape == b.shape == (30, 64) and (a != b).all()
    assert (pool[a, 2] == values).all() and (pool[b, 2] == values).all()
    assert len(np.unique(a)) > 1000  # the other factors vary: many different rows
    rows = D._batches(group, values[:, 0], 64, rng)
    assert rows.shape == (30, 64) and (pool[rows, 2] == values[:, :1]).all()
    assert all(len(set(r)) == 64 for r in rows)  # without replacement
    with pytest.raises(ValueError, match="the pool is too small: orientation index"):
        D._group(pool[:1000], 2)


def test_non_finite_codes_are_refused():
    with pytest.raises(RunError, match="the codes contain NaN or infinite values"):
        D.score(lambda f: np.full((len(f), 3), np.nan))


# --- a trained run and the command line ---
@pytest.mark.slow
def test_a_trained_shapes_run_is_scored_from_the_command_line(shapes_run, capsys):
    assert main(["disentangle", shapes_run.name, "--runs-dir", str(shapes_run.parent),
                 "--json"]) == 0
    scores = json.loads(capsys.readouterr().out)
    assert scores["run"] == shapes_run.name and scores["dataset"] == "shapes"
    for metric in ("mig", *OTHER):
        assert math.isfinite(scores[metric]) and 0 <= scores[metric] <= 1, metric
    mi = np.array(scores["mi_matrix"])
    assert mi.shape == (6, 5) and np.isfinite(mi).all() and (mi >= 0).all()
    text = D.format_scores(scores)
    assert f"run {shapes_run.name} (betavae), 6 code dimensions" in text
    assert "orientation" in text.splitlines()[-7] and text.splitlines()[-1].startswith("z5")


def test_a_model_represents_factors_deterministically(shapes_run):
    from aelab.runs.folder import load_model

    represent = D.model_encoder(load_model(shapes_run), chunk=16)
    factors = shapes.sample_factors(40, np.random.default_rng(0))
    codes = represent(factors)
    assert codes.shape == (40, 6) and np.array_equal(codes, represent(factors))


@pytest.mark.slow  # the reference encoders are scored once for these
def test_plain_output_of_a_reference_encoder(reference, monkeypatch, capsys):
    cached = {k: v for k, v in reference["ground-truth"].items() if k != "encoder"}
    monkeypatch.setattr(D, "score", lambda represent, seed=0, **options: cached)
    assert main(["disentangle", "--encoder", "ground-truth"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("reference encoder ground-truth, 5 code dimensions")
    assert f"{'mig':<22}{cached['mig']:>7.3f}{0:>8.3f}" in out
    assert "shape  scale  orientation  pos_x  pos_y" in out


def test_runs_not_trained_on_shapes_are_refused(tmp_path, capsys):
    from aelab.training.setup import prepare_run

    run_dir = prepare_run("ae", "digits", {"latent_dim": 2, "hidden": "16"}, {"epochs": 1},
                          runs_dir=tmp_path)
    message = (f"disentanglement metrics need a run trained on the shapes dataset; run "
               f"{run_dir.name} was trained on digits")
    with pytest.raises(RunError) as info:
        D.score_run(run_dir)
    assert str(info.value) == message
    assert main(["disentangle", str(run_dir), "--runs-dir", str(tmp_path)]) == 2
    assert capsys.readouterr().err == f"error: {message}\n"


@pytest.mark.parametrize("argv, message", [
    ([], "disentangle needs exactly one of a run (folder or id) or --encoder "
         "ground-truth|mixed|noise"),
    (["some-run", "--encoder", "noise"], "disentangle needs exactly one of a run"),
    (["--encoder", "rotated"], "unknown reference encoder 'rotated'; choose one of: "
                               "ground-truth, mixed, noise"),
    (["no-such-run"], "no run 'no-such-run'"),
])
def test_command_line_errors(argv, message, tmp_path, capsys):
    assert main(["disentangle", *argv, "--runs-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {message}") and err.count("\n") == 1


@pytest.mark.slow
def test_disentanglement_page_against_two_shapes_runs(shapes_run, tmp_path, monkeypatch):
    """The page explains every score, labels latents by the MIG-gap rule, shows two runs side
    by side on the same sprite and the trade-off table."""
    import shutil
    from pathlib import Path

    from streamlit.testing.v1 import AppTest

    import aelab.metrics.results
    from aelab.explore import disentangle_lesson, score_intervals

    runs = tmp_path / "runs"
    aelab.metrics.results.get_disentanglement(shapes_run)  # what the worker does after training
    for name in (shapes_run.name, "twin"):
        shutil.copytree(shapes_run, runs / name)
    monkeypatch.setenv("AELAB_RUNS", str(runs))
    project = aelab.metrics.results.project_2d  # UMAP compiles for ~25 s; PCA stands in for it here
    monkeypatch.setattr(aelab.metrics.results, "project_2d", lambda x, method, seed=0: project(x, "pca", seed))
    at = AppTest.from_file(str(Path(__file__).resolve().parents[1] / "app.py"), default_timeout=300)
    at.run()
    at.switch_page("pages/disentangle.py").run()
    assert not at.exception, [e.value for e in at.exception]
    scores = json.loads((runs / shapes_run.name / "disentangle.json").read_text())["value"]
    frames = [d.value for d in at.dataframe]  # the score table first, the trade-off table last
    table = frames[0].set_index("metric")
    assert list(table.index) == list(D.SCORES)
    assert table.loc["mig", "this run"] == pytest.approx(scores["mig"])
    cells = shown_cells(at.dataframe[0]).set_index(table.index)  # what the cells read
    assert cells.loc["mig", "this run"] == score_intervals.shown(scores, "mig")
    assert cells.loc["mig", "this run"].startswith(f"{scores['mig']:.3f} [")
    assert table.loc["factor_vae", "chance"] == pytest.approx(0.2)
    assert cells.loc["mig", "ground-truth (reference)"] == "0.889 [0.887, 0.891]"
    assert table.loc["mig", "published (dSprites)"] == disentangle_lesson.PUBLISHED["mig"]
    assert table.loc["beta_vae", "what it measures"].startswith("How often a linear classifier")
    expected = disentangle_lesson.dimension_labels(np.array(scores["mi_matrix"]))
    shown = [m.value for m in at.markdown if "→" in m.value]
    # the run's traversals (6 latents), then both sides of the comparison (6 rows each)
    assert len(shown) == 18
    for text in shown:
        j = int(text.split("**z")[1].split("**")[0])
        assert text.split("→ ")[1].split()[0] == expected[j]
    assert [s.label for s in at.selectbox if s.key in ("dis_left", "dis_right")] == \
        ["Entangled", "Disentangled"]
    heat = json.loads(at.get("plotly_chart")[0].proto.spec)
    assert heat["data"][0]["type"] == "heatmap"
    assert len(frames[-1]) == 2 and frames[-1].iloc[0]["mig"] == pytest.approx(scores["mig"])
    assert shown_cells(at.dataframe[-1]).iloc[0]["mig"] == score_intervals.shown(scores, "mig")
    at.number_input(key="dis_pos_x").set_value(3).run()  # another sprite: new traversals
    assert not at.exception and at.query_params["pos_x"] in ("3", ["3"])


def test_latents_are_named_only_when_one_factor_clearly_dominates():
    from aelab.explore import disentangle_lesson

    h = np.log(np.array(shapes.SIZES))
    mi = np.zeros((5, 5))   # z4 says nothing about any factor -> unused
    mi[0, 3] = 0.9 * h[3]   # z0 carries pos_x alone: gap 0.9
    mi[1, 4] = 0.5 * h[4]   # z1 and z2 share pos_y: gap 0.5 - 0.45 = 0.05 -> mixed
    mi[2, 4] = 0.45 * h[4]
    mi[3, 1] = 0.25 * h[1]  # z3 carries scale with a gap of 0.25 and shape with 0.21
    mi[3, 0] = 0.21 * h[0]
    assert disentangle_lesson.dimension_labels(mi) == ["pos_x", "mixed", "mixed", "scale", "unused"]
    assert disentangle_lesson.dimension_labels(mi, threshold=0.3) == ["pos_x", "mixed", "mixed", "mixed", "unused"]
    best, gaps = disentangle_lesson.mig_gaps(mi)
    assert best[3] == 0 and gaps[3] == pytest.approx(0.9) and gaps[4] == pytest.approx(0.05)


@pytest.mark.slow
def test_the_page_shows_the_reference_encoders_intervals_as_measured():
    """The reference encoders' intervals on the page against a fresh computation at full
    resampling (DCI's refits make it about a minute)."""
    from aelab.explore import disentangle_lesson

    for name in D.REFERENCE_ENCODERS:
        scores = D.score_encoder(name)
        for metric in D.SCORES:
            assert disentangle_lesson.REFERENCE_CI[name][metric] == pytest.approx(
                scores[f"{metric}_ci"], abs=5e-4)


@pytest.mark.slow  # the reference encoders are scored once for these
def test_the_page_shows_the_reference_encoders_as_measured(reference):
    from aelab.explore import disentangle_lesson

    for name in D.REFERENCE_ENCODERS:
        for metric in D.SCORES:
            assert disentangle_lesson.REFERENCE[name][metric] == pytest.approx(reference[name][metric], abs=5e-4)


def test_the_page_never_scores_in_its_script_run(shapes_run, tmp_path, monkeypatch):
    """An unscored run: the page starts the background scorer and says so, nothing more."""
    import shutil
    from pathlib import Path

    from streamlit.testing.v1 import AppTest

    import aelab.metrics.background

    runs = tmp_path / "runs"
    shutil.copytree(shapes_run, runs / shapes_run.name)
    (runs / shapes_run.name / "disentangle.json").unlink(missing_ok=True)
    monkeypatch.setenv("AELAB_RUNS", str(runs))
    started = []
    monkeypatch.setattr(aelab.metrics.background, "start_scoring",
                        lambda run_dir, kind="disentangle": started.append(run_dir))
    monkeypatch.setattr(D, "score", lambda *a, **k: pytest.fail("scored in the page"))
    at = AppTest.from_file(str(Path(__file__).resolve().parents[1] / "app.py"), default_timeout=60)
    at.run()
    at.switch_page("pages/disentangle.py").run()
    assert not at.exception, [e.value for e in at.exception]
    assert [Path(r) for r in started] == [runs / shapes_run.name]  # the page hands a RunRef
    assert "Scoring this run's disentanglement in the background" in at.info[0].value
    assert not at.dataframe


def test_the_beta_study_is_read_from_docs(tmp_path):
    from aelab.explore import disentangle_lesson

    assert disentangle_lesson.beta_study(tmp_path / "missing.json") is None
    (tmp_path / "broken.json").write_text("{")
    assert disentangle_lesson.beta_study(tmp_path / "broken.json") is None
    summary = [{"beta": 1.0, "seeds": 3, "mig_mean": 0.1, "mig_std": 0.01}]
    (tmp_path / "study.json").write_text(json.dumps({"setting": "s", "summary": summary}))
    assert disentangle_lesson.beta_study(tmp_path / "study.json") == summary


def test_mig_and_dci_match_an_independent_computation():
    """MIG from plain counting (equal-width bins, plug-in entropies) and DCI D/C from the
    paper's formulas, written here without aelab's helpers, to 1e-10."""
    rng = np.random.default_rng(3)
    factors = shapes.sample_factors(3000, rng)
    codes = np.hstack([D.standardised_factors(factors)[:, [3, 1]] + 0.3 * rng.standard_normal((3000, 2)),
                       rng.standard_normal((3000, 2))])

    def entropy(labels):
        p = np.unique(labels, return_counts=True)[1] / len(labels)
        return -(p * np.log(p)).sum()

    def mutual(a, b):
        return entropy(a) + entropy(b) - entropy(a * 10_000 + b)

    bins = [np.clip(((c - c.min()) / (c.max() - c.min()) * 20).astype(int), 0, 19) for c in codes.T]
    mi = np.array([[mutual(b, factors[:, k]) for k in range(5)] for b in bins])
    top = np.sort(mi, axis=0)[::-1]
    expected = np.mean([(top[0, k] - top[1, k]) / entropy(factors[:, k]) for k in range(5)])
    score, ours = D.mig(codes, factors)
    assert np.abs(ours - mi).max() < 1e-10 and abs(score - expected) < 1e-10

    r = rng.random((4, 5)) ** 3  # an importance matrix
    p = r / r.sum(1, keepdims=True)
    d = sum(r[j].sum() / r.sum() * (1 + (p[j] * np.log(p[j])).sum() / np.log(5)) for j in range(4))
    q = r / r.sum(0, keepdims=True)
    c = np.mean([1 + (q[:, k] * np.log(q[:, k])).sum() / np.log(4) for k in range(5)])
    assert np.allclose(D.dci_from_importance(r), (d, c), atol=1e-10, rtol=0)
