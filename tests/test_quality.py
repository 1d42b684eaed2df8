"""Does the library learn something PCA cannot? A small, honest quality check."""
import pytest

from aelab.metrics.evaluate import evaluate_run
from aelab.runs.train import train_run
from aelab.training.setup import prepare_run


@pytest.mark.slow
def test_ae_with_two_dims_beats_pca_with_two_components_on_digits(runs_dir):
    run = prepare_run("ae", "digits", {"latent_dim": 2, "hidden": "128,64"},
                      {"epochs": 40, "seed": 0}, runs_dir=runs_dir)
    assert train_run(run)["state"] == "done"
    scores = evaluate_run(run)
    assert scores["pca_components"] == 2 and scores["n_images"] == 270
    assert scores["recon_mse"] < scores["pca_recon_mse"]
