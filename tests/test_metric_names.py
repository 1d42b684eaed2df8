"""Every metric and loss term a page can show has a human name and a one-line explanation
(aelab.metrics.names), and the tables, charts and figures show those, not raw keys."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from aelab.metrics.disentanglement import SCORES
from aelab.metrics.names import LOSS_TERMS, METRICS, NOT_APPLICABLE, metric_help, metric_name
from aelab.models import build_model
from aelab.runs.folder import ROW_BOOKKEEPING
from tests.conftest import VARIANTS, small_config

CHECKPOINTS = Path(__file__).resolve().parents[1] / "checkpoints"
RUNS = sorted(p for p in CHECKPOINTS.iterdir() if (p / "config.json").is_file())


def value(path: Path):
    data = json.loads(path.read_text())
    return data.get("value", data) if isinstance(data, dict) else data


def shown_metric_keys() -> set[str]:
    """The keys of every score a page shows for the shipped runs: evaluate (Runs page),
    the Latent space table, the disentanglement scores and the Disentanglement table."""
    from aelab.explore.disentangle_lesson import recon_per_pixel

    keys = set(SCORES)
    for run in RUNS:
        evaluation = value(run / "eval.json")
        keys |= {k for k, v in evaluation.items() if not isinstance(v, list) and k != "weights_sha256"}
        keys |= recon_per_pixel(evaluation, json.loads((run / "config.json").read_text())["model"]).keys()
        if (run / "scores.json").is_file():
            keys |= {k for row in value(run / "scores.json") for k in row}
    return keys


def test_every_metric_a_page_shows_has_a_name_and_one_line():
    keys = shown_metric_keys()
    assert {"knn_acc", "pca_recon_mse", "dci_disentanglement", "trust UMAP 2-D", "BCE per pixel"} <= keys
    for key in keys:
        assert key in METRICS, f"{key}: no human name in aelab.metrics.names.METRICS"
        name, line = METRICS[key]
        assert name and line.endswith(".") and "\n" not in line and len(line) < 200, key
    assert set(NOT_APPLICABLE) <= set(METRICS)


@pytest.mark.parametrize("variant", VARIANTS)
def test_every_loss_term_a_variant_logs_is_explained(variant):
    """The terms of each variant's loss on a batch (and after its step), as the trainer logs them."""
    torch.manual_seed(0)
    model = build_model(small_config(variant))
    model.train()
    x, y = torch.rand(16, 1, 8, 8), torch.arange(16) % 10
    out = model(x, y if model.conditional else None)
    total, terms = model.loss(x, out)
    terms = {"loss": total, **terms, **(model.after_step(x, out) or {})}
    for term in terms:
        assert term in LOSS_TERMS, f"{variant} logs {term!r}, which has no line in LOSS_TERMS"


def test_the_shipped_runs_log_only_explained_terms():
    for run in RUNS:
        for line in (run / "metrics.jsonl").read_text().splitlines():
            for term in json.loads(line):
                assert term in ROW_BOOKKEEPING or term == "train_seconds" or term in LOSS_TERMS, (run.name, term)


def test_a_term_that_can_go_negative_says_why():
    """beta-TCVAE's dimension-wise KL logs at about -117 on the shipped run: its line says it is
    a minibatch estimate, and which terms sum to the KL; every term the shipped runs log below
    zero says it can."""
    dim_kl = LOSS_TERMS["dim_kl"][1]
    assert "minibatch" in dim_kl and "below 0" in dim_kl and "mi + tc + dim_kl" in dim_kl
    negative = set()
    for run in RUNS:
        for line in (run / "metrics.jsonl").read_text().splitlines():
            negative |= {k for k, v in json.loads(line).items() if isinstance(v, float) and v < 0}
    assert "dim_kl" in negative
    for term in negative:
        assert "below 0" in LOSS_TERMS[term][1] or "negative" in LOSS_TERMS[term][1], term
    for term, (_, line) in LOSS_TERMS.items():
        assert "never negative" in line or "below 0" in line or term in ("loss", "mi", "disc", "mig"), term


def test_names_fall_back_to_the_key():
    assert metric_name("knn_acc") == "5-NN accuracy (codes)" and metric_help("no such key") == ""
    assert metric_name("no such key") == "no such key"


def test_the_beta_tradeoff_is_ticked_at_the_betas_only():
    """The log axis shows the betas tried and nothing else (it once showed a stray "9")."""
    from aelab.explore.disentangle_lesson import TRADEOFF, beta_study, beta_tradeoff_figure

    study = beta_study()
    assert study, "docs/beta_study.json ships"
    figure = beta_tradeoff_figure(study)
    betas = [p["beta"] for p in study]
    axes = [figure.layout[a] for a in figure.layout if a.startswith("xaxis")]
    assert len(axes) == len(TRADEOFF)
    for axis in axes:
        assert axis.type == "log" and list(axis.tickvals) == betas
        assert list(axis.ticktext) == [f"{b:g}" for b in betas] and axis.minor.ticks == ""
    assert [a.text for a in figure.layout.annotations] == [metric_name(m) for m in TRADEOFF]
