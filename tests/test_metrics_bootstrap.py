"""Bootstrap intervals of the scores: they hold the score, narrow with more samples, follow the
seed, and reach the pages and ``--json`` on the shipped runs."""
from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from conftest import open_page, shown_cells

from aelab.metrics import bootstrap as B
from aelab.metrics import disentanglement as D

ROOT = Path(__file__).resolve().parents[1]
CHECKPOINTS = ROOT / "checkpoints"


def toy(n: int, seed: int = 0, values: int = 4, factors: int = 3):
    """``n`` rows of ``factors`` factors with ``values`` values each (fewer than MIG's 20 bins, so
    a code equal to the factors is perfectly disentangled), that code and a random one."""
    rng = np.random.default_rng(seed)
    f = rng.integers(0, values, (n, factors))
    return f, f + 0.01 * rng.standard_normal(f.shape), rng.standard_normal((n, factors))


def width(interval) -> float:
    return interval[1] - interval[0]


def test_a_perfect_code_has_mig_1_with_a_narrow_interval_a_random_one_cannot_be_told_from_0():
    f, perfect, random = toy(2000)
    # 1 less the plug-in bias of the runner-up's MI (independent codes: ~9 / (2n) nats)
    assert D.mig(perfect, f)[0] == pytest.approx(1.0, abs=0.005)
    good = D.mig_interval(perfect, f, count=100)
    assert good[0] > 0.99 and good[0] <= D.mig(perfect, f)[0] <= good[1] <= 1.0
    score, bad = D.mig(random, f)[0], D.mig_interval(random, f, count=100)
    # a random code: the interval reaches 0 and is several times the score itself
    assert score < 0.02 and bad[0] == 0.0 <= score <= bad[1] < 0.02 and width(bad) > 3 * score


def test_intervals_narrow_with_more_samples():
    small, large = toy(500), toy(8000, seed=1)
    assert width(D.mig_interval(small[2], small[0], count=100)) > \
        2 * width(D.mig_interval(large[2], large[0], count=100))
    rng = np.random.default_rng(0)
    hits = [rng.random(n) < 0.7 for n in (200, 5000)]
    wide, narrow = (B.accuracy_interval(h) for h in hits)
    assert width(wide) > 3 * width(narrow)
    # the binomial's normal interval, 2 * 1.96 * sqrt(p (1 - p) / n), within a fifth
    assert width(narrow) == pytest.approx(2 * 1.96 * np.sqrt(0.7 * 0.3 / 5000), rel=0.2)


def test_intervals_follow_the_seed():
    f, _, random = toy(1000)
    assert D.mig_interval(random, f, seed=3) == D.mig_interval(random, f, seed=3)
    assert D.mig_interval(random, f, seed=3) != D.mig_interval(random, f, seed=4)
    hits = np.random.default_rng(0).random(300) < 0.5
    assert B.accuracy_interval(hits, seed=1) == B.accuracy_interval(hits, seed=1)


def test_the_vectorised_mig_is_mig():
    f, perfect, random = toy(1500, values=7)
    for codes in (perfect, random, np.c_[perfect[:, :2], random]):
        assert D._plugin_mig(D.discretise(codes), f) == pytest.approx(D.mig(codes, f)[0], abs=1e-12)


def test_an_interval_is_centred_on_its_score_and_normal_when_resamples_are_few():
    reps = np.linspace(0.70, 0.80, 1000)  # replicates shifted below a score of 0.8
    lo, hi = B.percentile_interval(reps, 0.8)
    assert lo < 0.8 < hi and (lo + hi) / 2 == pytest.approx(0.8, abs=1e-3)
    few = np.array([0.4, 0.5, 0.6])
    assert B.percentile_interval(few, 0.5) == pytest.approx([0.5 - 1.96 * 0.1, 0.5 + 1.96 * 0.1], abs=1e-3)
    assert B.percentile_interval(few, 0.95) == pytest.approx([0.95 - 1.96 * 0.1, 1.0], abs=1e-3)  # clipped


def test_trustworthiness_terms_average_to_scikit_learns():
    from sklearn.manifold import trustworthiness

    rng = np.random.default_rng(0)
    high = rng.standard_normal((300, 6))
    low = high[:, :2] + 0.3 * rng.standard_normal((300, 2))
    assert B.trustworthiness_terms(high, low, 5).mean() == pytest.approx(trustworthiness(high, low, n_neighbors=5))


@pytest.mark.slow
def test_every_score_holds_its_interval_and_is_the_score_without_intervals():
    """A rotation of the true factors (every interval non-trivial), with few DCI refits."""
    few = {"dci_disentanglement": 3, "dci_completeness": 3, "mig": 50}
    scores = D.score(D.reference_encoder("mixed"), resamples=few)
    plain = D.score(D.reference_encoder("mixed"), intervals=False)
    for name in D.SCORES:
        lo, hi = scores[f"{name}_ci"]
        assert lo <= scores[name] <= hi, name
        assert scores[name] == plain[name] and f"{name}_ci" not in plain
    assert scores["intervals"]["resamples"]["dci_disentanglement"] == 3
    assert width(scores["mig_ci"]) < 0.05 and width(scores["beta_vae_ci"]) < 0.05


def test_probe_accuracies_hold_their_intervals():
    from aelab.metrics.evaluate import probe_scores

    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 600)
    x = np.eye(3)[y] + 0.8 * rng.standard_normal((600, 3))
    scores = probe_scores(x[:400], y[:400], x[400:], y[400:])
    for name in ("knn_acc", "linear_acc"):
        lo, hi = scores[f"{name}_ci"]
        assert lo <= scores[name] <= hi and 0.02 < hi - lo < 0.3


def test_differences_name_overlapping_scores_and_give_values_for_the_others():
    from aelab.explore.score_intervals import differences

    this = {"mig": 0.45, "mig_ci": [0.44, 0.46], "factor_vae": 0.6, "factor_vae_ci": [0.58, 0.61]}
    other = {"mig": 0.455, "mig_ci": [0.45, 0.47], "factor_vae": 0.3, "factor_vae_ci": [0.29, 0.31]}
    assert differences(this, [("b", other)], ("mig", "factor_vae")) == [
        "b: not clearly different on MIG (mutual information gap); clearly different on "
        "FactorVAE metric (0.300 against 0.600)."]
    assert differences(this, [("c", {"mig": 0.1})], ("mig",)) == []  # no interval: nothing said


# --- the shipped runs ---
def test_the_shipped_caches_hold_intervals_around_their_scores():
    from aelab.metrics.results import cached_disentanglement, cached_latent_scores

    for run in sorted(CHECKPOINTS.iterdir()):
        for row in cached_latent_scores(run):
            for key in ("knn_acc", "linear_acc", "trust PCA 2-D", "trust UMAP 2-D"):
                if key in row:
                    lo, hi = row[f"{key}_ci"]
                    assert lo <= row[key] <= hi, (run.name, key)
        scores = cached_disentanglement(run) if (run / "disentangle.json").exists() else None
        if scores is not None:
            assert all(scores[f"{m}_ci"][0] <= scores[m] <= scores[f"{m}_ci"][1] for m in D.SCORES)


def test_an_old_cache_without_intervals_is_scored_again(tmp_path):
    import shutil

    from aelab.metrics.results import cached_latent_scores

    run = tmp_path / "demo-vae"
    shutil.copytree(CHECKPOINTS / "demo-vae", run)
    cached = json.loads((run / "scores.json").read_text())
    assert cached_latent_scores(run) is not None
    cached["value"] = [{k: v for k, v in row.items() if not k.endswith("_ci")} for row in cached["value"]]
    (run / "scores.json").write_text(json.dumps(cached))
    assert cached_latent_scores(run) is None  # stale: the page starts the background scorer


def test_an_old_eval_without_intervals_is_evaluated_again(tmp_path):
    import shutil

    from aelab.metrics.results import _eval_fresh
    from aelab.runs.refs import RunRef

    run = RunRef.unchecked(shutil.copytree(CHECKPOINTS / "demo-ae-z2", tmp_path / "demo-ae-z2"))
    assert _eval_fresh(run, run.weights_sha256())
    scores = json.loads((run / "eval.json").read_text())
    assert all(scores[f"{k}_ci"][0] <= scores[k] <= scores[f"{k}_ci"][1] for k in ("knn_acc", "pca_linear_acc"))
    (run / "eval.json").write_text(json.dumps({k: v for k, v in scores.items() if not k.endswith("_ci")}))
    assert not _eval_fresh(run, run.weights_sha256())  # get_eval evaluates it again


def test_disentangle_json_has_intervals(capsys):
    from aelab.cli import main

    assert main(["disentangle", str(CHECKPOINTS / "demo-betatcvae-shapes"), "--json"]) == 0
    scores = json.loads(capsys.readouterr().out)
    for name in D.SCORES:
        lo, hi = scores[f"{name}_ci"]
        assert lo <= scores[name] <= hi
    assert main(["disentangle", str(CHECKPOINTS / "demo-betatcvae-shapes")]) == 0
    assert "95% interval" in capsys.readouterr().out


def test_latent_scores_json_has_intervals(capsys):
    from aelab.cli import main

    assert main(["latent-scores", str(CHECKPOINTS / "demo-vae"), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    keys = [k for row in rows for k in row if f"{k}_ci" in row]
    assert {"knn_acc", "linear_acc", "trust PCA 2-D", "trust UMAP 2-D"} <= set(keys)
    assert all(row[f"{k}_ci"][0] <= row[k] <= row[f"{k}_ci"][1] for row in rows for k in row if f"{k}_ci" in row)


@pytest.mark.slow
def test_evaluate_json_has_intervals(capsys):
    from aelab.cli import main

    assert main(["evaluate", str(CHECKPOINTS / "demo-vae"), "--json"]) == 0
    scores = json.loads(capsys.readouterr().out)
    for name in ("knn_acc", "linear_acc", "pca_knn_acc", "pca_linear_acc"):
        lo, hi = scores[f"{name}_ci"]
        assert lo <= scores[name] <= hi
    assert main(["evaluate", str(CHECKPOINTS / "demo-vae")]) == 0  # plain: each interval beside its score
    lo, hi = scores["knn_acc_ci"]
    assert f"knn_acc          {scores['knn_acc']:.4f} [{lo:.4f}, {hi:.4f}]" in capsys.readouterr().out.splitlines()


@pytest.fixture
def shipped_app(monkeypatch):
    import aelab.metrics.background

    monkeypatch.setenv("AELAB_RUNS", str(CHECKPOINTS))
    monkeypatch.setattr(aelab.metrics.background, "start_scoring",
                        lambda *a, **k: pytest.fail("a shipped run was scored again"))
    # the app's page with query (run= a shipped run, as a student's link gives)
    return lambda page, **query: open_page(page, errors=True, timeout=120, **query)


@pytest.mark.slow
def test_the_disentanglement_page_shows_intervals_on_a_shipped_run(shipped_app):
    from aelab.explore import disentangle_lesson
    from aelab.metrics.results import cached_disentanglement

    at = shipped_app("disentangle", run="demo-betatcvae-shapes")
    frame = at.dataframe[0]
    table = shown_cells(frame).set_index(frame.value["metric"])  # the cells as they read
    scores = cached_disentanglement(CHECKPOINTS / "demo-betatcvae-shapes")
    lo, hi = scores["mig_ci"]
    assert table.loc["mig", "this run"] == f"{scores['mig']:.3f} [{lo:.3f}, {hi:.3f}]"
    lo, hi = disentangle_lesson.REFERENCE_CI["mixed"]["mig"]
    assert table.loc["mig", "mixed (reference)"] == \
        f"{disentangle_lesson.REFERENCE['mixed']['mig']:.3f} [{lo:.3f}, {hi:.3f}]"
    assert not any(c.endswith("_ci") for c in frame.proto.column_order)  # shown with their scores
    runs = shown_cells(at.dataframe[-1])  # every scored run: each score with its interval
    assert runs["mig"].str.fullmatch(r"\d\.\d{3} \[\d\.\d{3}, \d\.\d{3}\]").all()
    chart = json.loads(at.get("plotly_chart")[-1].proto.spec)
    names = [t["name"] for t in chart["data"]]
    assert "ground-truth (reference)" in names and len(names) >= 4 + 3  # the shipped shapes runs too
    assert all("arrayminus" in t["error_y"] for t in chart["data"])
    real = next(m.value for m in at.markdown if m.value.startswith("**Which differences are real?**"))
    assert "demo-adagvae-shapes: not clearly different on" in real and "- noise (reference): clearly different" in real
    assert any("does not tell them apart" in c.value and "another seed" in c.value for c in at.caption)


@pytest.mark.slow
def test_the_latent_page_shows_intervals_on_a_shipped_run(shipped_app):
    from aelab.metrics.results import cached_latent_scores

    at = shipped_app("latent", run="demo-vae")
    frame = at.dataframe[0]
    row = cached_latent_scores(CHECKPOINTS / "demo-vae")[0]
    lo, hi = row["knn_acc_ci"]
    assert shown_cells(frame)["knn_acc"].iloc[0] == f"{row['knn_acc']:.3f} [{lo:.3f}, {hi:.3f}]"
    assert frame.value["knn_acc"].iloc[0] == row["knn_acc"]  # the data stay numbers
    against = next(m.value for m in at.markdown if m.value.startswith("Against the codes"))
    assert "- PCA codes (8): not clearly different on 5-NN accuracy" in against
    # an empty cell holds its reason itself: the browser would draw it "None" whatever the Styler says
    assert frame.value["trust PCA 2-D"].iloc[1] == "n/a - no 2-D picture is drawn of these codes"
    pixels = cached_latent_scores(CHECKPOINTS / "demo-vae")[2]  # its column is text now, still read in full
    lo, hi = pixels["trust PCA 2-D_ci"]
    assert shown_cells(frame)["trust PCA 2-D"].iloc[2] == f"{pixels['trust PCA 2-D']:.3f} [{lo:.3f}, {hi:.3f}]"
    assert not any(c.endswith("_ci") for c in frame.proto.column_order)


@pytest.mark.slow
def test_the_runs_page_and_the_lesson_show_intervals_on_shipped_runs(shipped_app):
    """The Runs page's final metrics read each probe accuracy with its interval; the Lesson's
    beta-VAE screen gives MIG with its interval."""
    from aelab.metrics.results import get_eval

    at = shipped_app("runs", run="demo-vae")
    frame = next(f for f in at.dataframe if "metric" in f.value.columns)
    label = next(c for c in frame.value.columns if c != "metric" and not c.endswith("_ci"))
    cells = shown_cells(frame).set_index(frame.value["metric"])
    scores = get_eval(CHECKPOINTS / "demo-vae")
    lo, hi = scores["knn_acc_ci"]
    assert cells.loc["knn_acc", label] == f"{scores['knn_acc']:.4f} [{lo:.4f}, {hi:.4f}]"
    assert cells.loc["recon_mse", label] == f"{scores['recon_mse']:.4f}"  # no interval: the score alone
    assert f"{label}_ci" not in frame.proto.column_order

    at = shipped_app("lesson", step="betavae")
    migs = [c.value for c in at.caption if ": MIG " in c.value]
    assert len(migs) == 2 and all(re.search(r"MIG \d\.\d\d \[\d\.\d\d, \d\.\d\d\]", m) for m in migs)
