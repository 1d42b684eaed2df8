"""Semi-supervised beta-VAE (Locatello et al. 2020, few labels): its loss against the formula,
the labelled set the trainer gives it, and the settings it refuses."""
import numpy as np
import pytest
import torch
from conftest import small_config
from test_adagvae import numpy_kl
from test_levers import bce, numpy_of, small_pool  # noqa: F401  (small_pool: a fixture)

from aelab.data import shapes
from aelab.errors import ConfigError
from aelab.models import build_model
from aelab.models.semivae import SemiVAE, scaled_factors
from aelab.training.setup import prepare_run, validate_run
from aelab.training.trainer import Trainer


def labels_as_seen(factors: np.ndarray, circle: bool = False) -> np.ndarray:
    """The semivae labels of factor indices, written out: square 0, ellipse 1, heart 0.5;
    (1 - cos(k theta)) / 2 with k = 4, 2, 1 quarter/half/whole turns; the rest index/(size-1);
    with ``circle`` a last column (1 - sin(k theta)) / 2."""
    y = factors / (np.array(shapes.SIZES) - 1.0)
    y[:, 0] = np.choose(factors[:, 0], [0.0, 1.0, 0.5])
    theta = 2 * np.pi * factors[:, 2] / 39
    k = np.choose(factors[:, 0], [4, 2, 1])
    y[:, 2] = (1 - np.cos(k * theta)) / 2
    return np.column_stack([y, (1 - np.sin(k * theta)) / 2]) if circle else y


@pytest.mark.parametrize("circle", [False, True])
def test_semivae_loss_is_the_beta_vae_loss_plus_the_labels_cross_entropy(batch, circle):
    x, _ = batch
    factors = shapes.sample_factors(len(x), np.random.default_rng(0))
    model = build_model(small_config("semivae", latent_dim=7, beta=3.0, labels=20,
                                     label_weight=5.0, label_batch=8, shape_weight=3.0,
                                     scale_weight=2.0, orientation_weight=0.5,
                                     orientation_circle=circle)).train()
    model.start_training(x, factors)
    torch.manual_seed(1)
    out = model(x)
    before_loss = torch.get_rng_state()
    pick = torch.randint(20, (8,))  # the labelled sprites the loss draws next
    torch.set_rng_state(before_loss)
    total, terms = model.loss(x, out)
    mu, logvar, logits = numpy_of(out.extras["mu"], out.extras["logvar"], out.recon)
    kl = numpy_kl(mu, np.exp(logvar), 0.0, 1.0).sum(1)
    recon = bce(logits, x.double().numpy())
    # Locatello et al. 2020 R_s: BCE(sigmoid(mu_j(x')), y_j) summed over the 5 factors (and
    # orientation's sine on latent 5), shape's weighted by 3, scale's by 2, orientation's by 0.5
    weights = [3.0, 2, 0.5, 1, 1] + [0.5] * circle
    labelled_mu = numpy_of(model.posterior(x[pick])[0])[0][:, :len(weights)]
    y = labels_as_seen(factors[pick.numpy()], circle)
    p = 1 / (1 + np.exp(-labelled_mu))
    bce_per_factor = -(y * np.log(p) + (1 - y) * np.log(1 - p))
    supervised = (bce_per_factor * weights).sum(1).mean()
    assert terms["labels"].item() == pytest.approx(supervised, rel=1e-4)
    assert total.item() == pytest.approx(recon.mean() + 3.0 * kl.mean() + 5.0 * supervised,
                                         rel=1e-4)


def test_label_weight_falls_geometrically_from_first_to_last_step(batch):
    x, _ = batch
    model = build_model(small_config("semivae", labels=20, label_weight=100.0,
                                     label_weight_final=10.0)).train()
    model.start_training(x, shapes.sample_factors(len(x), np.random.default_rng(0)))
    weights, rest = [], []
    for step in (0, 50, 100):
        model.start_step(step, 100)
        torch.manual_seed(0)  # the same noise and labelled draw at each step
        total, terms = model.loss(x, model(x))
        weights.append(model.label_weight())
        rest.append(total.item() - weights[-1] * terms["labels"].item())
    # omega multiplies the supervised term and nothing else in the total
    assert rest == pytest.approx([rest[0]] * 3, rel=1e-5)
    assert weights == pytest.approx([100.0, 100.0 * 0.1 ** 0.5, 10.0])
    fixed = build_model(small_config("semivae", label_weight=7.0, label_weight_final=7.0))
    fixed.start_step(30, 100)
    assert fixed.label_weight() == 7.0
    with pytest.raises(ConfigError, match="label_weight and label_weight_final must both be "
                                          "positive .* got 0.0 and 10.0"):
        small_config("semivae", label_weight=0.0)


def test_labels_are_the_factors_as_the_image_shows_them():
    every = np.array([[s, 5, o, 31, 0] for s in range(3) for o in range(40)])
    y = scaled_factors(every)
    np.testing.assert_allclose(y, labels_as_seen(every), atol=1e-6)
    assert y.min() >= 0 and y.max() <= 1
    np.testing.assert_array_equal(y[:, 0], np.repeat([0.0, 1.0, 0.5], 40))  # ellipse at an end
    np.testing.assert_allclose(y[:, [1, 3, 4]], [[1, 1, 0]] * len(every))
    # 0 and 2 pi (orientation 0 and 39) are one picture, and get one label
    np.testing.assert_allclose(y[::40, 2], y[39::40, 2], atol=1e-6)
    # labels repeat with each shape's symmetry: 4 periods over the turn for the square,
    # 2 for the ellipse, 1 for the heart (counted as sign changes of label - 1/2)
    for shape, turns in enumerate((4, 2, 1)):
        crossings = np.count_nonzero(np.diff(np.sign(y[40 * shape:40 * shape + 40, 2] - 0.5)))
        assert crossings == 2 * turns
    # on the circle (cosine and sine) a label names one picture: the heart's 39 distinct
    # turns get 39 distinct labels, where the cosine alone gives theta and -theta one
    heart = scaled_factors(every[80:119], circle=True)
    np.testing.assert_allclose(heart, labels_as_seen(every[80:119], circle=True), atol=1e-6)
    assert len(np.unique(heart[:, [2, 5]].round(4), axis=0)) == 39
    assert len(np.unique(heart[:, 2].round(4))) == 20


def test_semivae_refuses_too_few_latents_too_many_labels_and_data_without_factors(batch):
    x, _ = batch
    with pytest.raises(ConfigError, match=r"\(shape, scale, orientation, pos_x, pos_y\), so "
                                          "latent_dim must be at least 5, got 4"):
        small_config("semivae", latent_dim=4, orientation_circle=False)
    with pytest.raises(ConfigError, match=r"and a second one to orientation, so latent_dim must "
                                          r"be at least 6, got 5 \(or set orientation_circle "
                                          r"false for 5\)$"):
        small_config("semivae", latent_dim=5)  # orientation on the circle: the default
    with pytest.raises(ConfigError, match="semivae trains on a few images labelled .* digits "
                                          "has none; choose one of: shapes, shapes32, shapes64"):
        validate_run("semivae", "digits", {"latent_dim": 6})
    with pytest.raises(ConfigError, match=r"labels \(200000\) must not exceed the 120000 "
                                          "training images"):  # before any run folder exists
        validate_run("semivae", "shapes32", {"labels": 200_000})
    model = build_model(small_config("semivae", labels=100))
    with pytest.raises(ConfigError, match=r"labels \(100\) must not exceed the 64 training"):
        model.start_training(x, shapes.sample_factors(64, np.random.default_rng(0)))
    model.eval()  # outside training: the beta-VAE loss, no labelled set needed
    assert "labels" not in model.loss(x, model(x))[1]


@pytest.mark.slow
def test_trainer_gives_semivae_the_first_training_images_and_their_factors(runs_dir, small_pool,
                                                                        monkeypatch):
    given = []
    start_training = SemiVAE.start_training
    monkeypatch.setattr(SemiVAE, "start_training",
                        lambda self, x, f: given.append((x, f)) or start_training(self, x, f))
    run_dir = prepare_run("semivae", "shapes32", {"arch": "burgess", "hidden": "4,4,4,4",
                                                  "latent_dim": 6, "labels": 50},
                          {"epochs": 1, "batch_size": 16, "log_every": 25}, runs_dir=runs_dir)
    trainer = Trainer(run_dir)
    assert trainer.run()["state"] == "done"
    (x, factors), = given
    np.testing.assert_array_equal(x[:50].float().numpy(), shapes.render(factors[:50], side=32))
    np.testing.assert_array_equal(trainer.model.targets.numpy(),
                                  scaled_factors(factors[:50], circle=True))
    assert "labels" in trainer.metrics[-1]


def test_a_run_saved_before_the_newer_settings_loads_with_what_it_was_trained_with(runs_dir):
    """A semivae config.json from before shape/scale/orientation weights, the circle and the
    falling omega existed is read with the values it trained with, not today's defaults (with
    those, its 5 latents would make it unreadable)."""
    import json

    from aelab.runs.folder import read_config

    run_dir = prepare_run("semivae", "shapes32", {"arch": "burgess", "hidden": "4,4,4,4",
                                                  "latent_dim": 5, "orientation_circle": False,
                                                  "labels": 50, "label_weight": 30.0},
                          {"epochs": 1}, runs_dir=runs_dir)
    config = json.loads((run_dir / "config.json").read_text())
    for added in ("shape_weight", "scale_weight", "orientation_weight", "orientation_circle",
                  "label_weight_final"):
        del config["model"][added]
    (run_dir / "config.json").write_text(json.dumps(config))
    saved = read_config(run_dir)["model_config"]
    assert (saved.shape_weight, saved.scale_weight, saved.orientation_weight) == (1.0, 1.0, 1.0)
    assert saved.orientation_circle is False and saved.latent_dim == 5
    assert saved.label_weight_final == saved.label_weight == 30.0  # omega was fixed
    # a setting the user names is today's default where absent (the CLI, the Train page)
    assert small_config("semivae").orientation_circle is True
