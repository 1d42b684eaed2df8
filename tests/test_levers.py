"""Disentangling levers: beta-TCVAE and FactorVAE against their papers' formulas, the
Burgess net, 32x32 shapes with a training pool, time-limited runs, live MIG and presets."""
import json
import math

import numpy as np
import pytest
import torch
from conftest import small_config
from scipy.special import logsumexp
from scipy.stats import norm

from aelab.data import datasets as data
from aelab.data import shapes
from aelab.errors import ConfigError
from aelab.metrics.names import term_name
from aelab.models import build_model
from aelab.models.factorvae import permute_dims
from aelab.runs.folder import read_metrics
from aelab.runs.train import train_run, trainer_for
from aelab.training.presets import PRESETS, apply_preset
from aelab.training.setup import prepare_run
from aelab.training.trainer import Trainer


def numpy_of(*tensors):
    return [t.detach().double().numpy() for t in tensors]


def bce(logits, x):
    """-log Bernoulli(x; sigmoid(logits)) summed over pixels, per example."""
    p = 1 / (1 + np.exp(-logits))
    return -(x * np.log(p) + (1 - x) * np.log(1 - p)).reshape(len(x), -1).sum(1)


def test_betatcvae_loss_is_chen_et_al_with_minibatch_weighted_sampling(batch):
    x, _ = batch
    torch.manual_seed(0)
    model = build_model(small_config("betatcvae", alpha=0.5, beta=6.0, gamma=2.0)).train()
    model.train_size = 1000
    out = model(x)
    total, terms = model.loss(x, out)
    z, mu, logvar, logits = numpy_of(out.code, out.extras["mu"], out.extras["logvar"], out.recon)
    sigma = np.exp(0.5 * logvar)
    m, n = len(z), 1000
    mi, tc, dim_kl = [], [], []
    for i in range(m):  # Chen et al. 2018, eq. 2 and sec. 3.1, one example at a time
        log_q_pairs = np.array([norm.logpdf(z[i], mu[j], sigma[j]) for j in range(m)])  # (M, K)
        log_qz = logsumexp(log_q_pairs.sum(1)) - math.log(n * m)
        log_prod = sum(logsumexp(log_q_pairs[:, k]) - math.log(n * m) for k in range(z.shape[1]))
        log_qz_x = norm.logpdf(z[i], mu[i], sigma[i]).sum()
        log_pz = norm.logpdf(z[i]).sum()
        mi.append(log_qz_x - log_qz)
        tc.append(log_qz - log_prod)
        dim_kl.append(log_prod - log_pz)
    mi, tc, dim_kl = np.mean(mi), np.mean(tc), np.mean(dim_kl)
    recon = bce(logits, x.double().numpy()).mean()
    assert terms["mi"].item() == pytest.approx(mi, rel=1e-4, abs=1e-3)
    assert terms["tc"].item() == pytest.approx(tc, rel=1e-4, abs=1e-3)
    assert terms["dim_kl"].item() == pytest.approx(dim_kl, rel=1e-4, abs=1e-3)
    assert total.item() == pytest.approx(recon + 0.5 * mi + 6.0 * tc + 2.0 * dim_kl, rel=1e-4)


def test_betatcvae_terms_add_up_to_the_sampled_kl(batch):
    """MI + TC + dimension-wise KL telescopes to log q(z|x) - log p(z), a one-sample KL."""
    x, _ = batch
    torch.manual_seed(1)
    model = build_model(small_config("betatcvae")).train()
    out = model(x)
    _, terms = model.loss(x, out)
    z, mu, logvar = numpy_of(out.code, out.extras["mu"], out.extras["logvar"])
    kl_sample = (norm.logpdf(z, mu, np.exp(0.5 * logvar)) - norm.logpdf(z)).sum(1).mean()
    assert (terms["mi"] + terms["tc"] + terms["dim_kl"]).item() == pytest.approx(kl_sample, rel=1e-4)


def test_betatcvae_beta_schedule_holds_then_moves_linearly_to_beta_final(batch):
    x, _ = batch
    model = build_model(small_config("betatcvae", beta=12.0, beta_final=3.0, beta_hold=100,
                                     beta_steps=200)).train()
    expected = {0: 12.0, 100: 12.0, 200: 7.5, 300: 3.0, 5000: 3.0}
    for step, beta in expected.items():
        model.start_step(step, 10_000)
        assert model.current_beta() == pytest.approx(beta)
        torch.manual_seed(0)
        out = model(x)
        total, terms = model.loss(x, out)
        rest = terms["recon"] + terms["mi"] + terms["dim_kl"]  # alpha = gamma = 1
        assert total.item() == pytest.approx((rest + beta * terms["tc"]).item(), rel=1e-5)
    constant = build_model(small_config("betatcvae", beta=12.0, beta_final=3.0)).train()
    constant.start_step(5000, 10_000)
    assert constant.current_beta() == 12.0  # beta_steps = 0: no schedule


def test_beta_hold_can_end_when_enough_latents_have_opened(batch):
    x, _ = batch
    model = build_model(small_config("betatcvae", beta=12.0, beta_final=3.0, beta_hold=100,
                                     beta_steps=200, beta_hold_active=2)).train()
    model(x)  # training keeps the average KL per latent
    model.recent_kl = torch.tensor([0.0, 2.5, 0.2, 0.0, 0.0, 0.0])  # one latent open
    model.start_step(500, 10_000)
    assert model.hold_end() is None and model.current_beta() == 12.0
    model.recent_kl[2] = 1.5  # a second latent opens before beta_hold: still held until 100
    model.start_step(50, 10_000)
    assert model.hold_end() is None
    model.start_step(700, 10_000)
    assert model.hold_end() == 700
    for step, beta in {700: 12.0, 800: 7.5, 900: 3.0}.items():
        model.start_step(step, 10_000)
        assert model.current_beta() == pytest.approx(beta)
    # the step the hold ended travels with the weights, so a resumed run keeps its schedule
    resumed = build_model(small_config("betatcvae", beta=12.0, beta_final=3.0, beta_hold=100,
                                       beta_steps=200, beta_hold_active=2))
    resumed.load_state_dict(model.state_dict())
    resumed.start_step(800, 10_000)
    assert resumed.recent_kl is None and resumed.current_beta() == pytest.approx(7.5)
    assert "hold_ended" not in build_model(small_config("betatcvae")).state_dict()


def test_factorvae_loss_is_kim_and_mnih_density_ratio(batch):
    x, _ = batch
    torch.manual_seed(0)
    model = build_model(small_config("factorvae", gamma=7.0, disc_hidden="16,16")).train()
    out = model(x)
    total, terms = model.loss(x, out)
    z, mu, logvar, logits = numpy_of(out.code, out.extras["mu"], out.extras["logvar"], out.recon)
    d = 1 / (1 + np.exp(-numpy_of(model.discriminator(out.code))[0][:, 0]))  # D(z) in (0, 1)
    tc = np.mean(np.log(d / (1 - d)))  # Kim & Mnih eq. 3
    kl = (0.5 * (mu ** 2 + np.exp(logvar) - 1 - logvar)).sum(1).mean()
    recon = bce(logits, x.double().numpy()).mean()
    assert terms["tc"].item() == pytest.approx(tc, rel=1e-4, abs=1e-5)
    assert total.item() == pytest.approx(recon + kl + 7.0 * tc, rel=1e-4)

    torch.manual_seed(5)
    loss = model.discriminator_loss(out.code).item()
    torch.manual_seed(5)
    shuffled = permute_dims(out.code.detach())
    d_perm = 1 / (1 + np.exp(-numpy_of(model.discriminator(shuffled))[0][:, 0]))
    assert loss == pytest.approx(-0.5 * (np.log(d).mean() + np.log(1 - d_perm).mean()), rel=1e-4)


def test_permute_dims_shuffles_each_dimension_on_its_own():
    z = torch.arange(200.0).reshape(50, 4)
    shuffled = permute_dims(z, torch.Generator().manual_seed(0))
    for k in range(4):
        assert sorted(shuffled[:, k].tolist()) == z[:, k].tolist()
    rows = {tuple(r) for r in z.tolist()}
    assert sum(tuple(r) in rows for r in shuffled.tolist()) < 10  # joint rows broken up


def test_factorvae_discriminator_has_its_own_optimizer(batch):
    x, _ = batch
    model = build_model(small_config("factorvae", disc_hidden="16")).train()
    trainable = {id(p) for p in model.trainable_parameters()}
    disc = {id(p) for p in model.discriminator.parameters()}
    assert trainable and not trainable & disc
    assert trainable | disc == {id(p) for p in model.parameters()}
    before = {k: v.clone() for k, v in model.state_dict().items()}
    extra = model.after_step(x, model(x))
    assert set(extra) == {"disc"} and math.isfinite(extra["disc"].item())
    changed = {k for k, v in model.state_dict().items() if not torch.equal(v, before[k])}
    assert changed and all(k.startswith("discriminator.") for k in changed)


def test_burgess_net_has_two_fc_layers_of_256_and_needs_divisible_sides():
    model = build_model("betatcvae", arch="burgess", latent_dim=10, input_shape=(1, 32, 32))
    assert model.config.hidden == (32, 32, 64, 64)
    linears = [m for m in model.encoder.modules() if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(256, 256), (256, 256), (256, 20)]
    assert model(torch.rand(3, 1, 32, 32)).recon.shape == (3, 1, 32, 32)
    with pytest.raises(ConfigError, match="divisible by 16"):
        build_model("betatcvae", arch="burgess", input_shape=(1, 28, 28))


def test_shapes_at_32_pixels_are_the_64_pixel_sprites_scaled_down():
    factors = shapes.sample_factors(300, np.random.default_rng(0))
    small, large = shapes.render(factors, side=32), shapes.render(factors)
    assert small.shape == (300, 1, 32, 32) and set(np.unique(small)) <= {0.0, 1.0}
    pooled = large.reshape(300, 1, 32, 2, 32, 2).mean((3, 5))
    assert np.mean((pooled > 0.5) != small) < 0.01
    info = data.INFO["shapes32"]
    assert data.describe_dataset("shapes32") == (tuple(info["shape"]), info["classes"])
    assert data.is_shapes("shapes32") and data.is_shapes("shapes") and not data.is_shapes("digits")


@pytest.fixture
def small_pool(monkeypatch):
    """shapes32 with a 2,000-sprite pool (the real one takes seconds to render)."""
    monkeypatch.setattr(data, "SHAPES_POOL", 2000)
    data._shapes_pool.cache_clear()
    yield
    data._shapes_pool.cache_clear()


@pytest.mark.slow
def test_shapes32_trains_from_its_pool_with_a_live_mig_and_a_time_limit(runs_dir, small_pool):
    ds = data.load_dataset("shapes32")
    images, labels, factors = ds.pool()
    assert images.dtype == bool and images.shape == (2000, 1, 32, 32)
    assert np.array_equal(labels, shapes.sample_factors(2000, np.random.default_rng(2))[:, 0])
    run_dir = prepare_run("betatcvae", "shapes32", {"arch": "burgess", "hidden": "4,4,4,4",
                                                   "latent_dim": 4},
                          {"epochs": 1000, "batch_size": 32, "max_minutes": 0.03,
                           "live_mig_seconds": 0.5, "log_every": 10}, runs_dir=runs_dir)
    trainer = trainer_for(run_dir)  # the trainer with its live MIG
    status = trainer.run()
    assert status["state"] == "done" and status["progress"] == 1.0
    assert 1.8 <= status["train_seconds"] < 10 and status["step"] < 1000 * 2000 / 32
    assert trainer.model.train_size == 2000
    migs = [r for r in read_metrics(run_dir) if "mig" in r]
    assert len(migs) >= 3 and all(0 <= r["mig"] <= 1 for r in migs)
    assert migs[-1]["step"] == status["step"]  # the final model is scored too


def test_shapes64_is_the_same_pool_at_64_pixels_and_shapes_has_none(small_pool):
    _, _, factors32 = data.load_dataset("shapes32").pool()
    images, labels, factors = data.load_dataset("shapes64").pool()
    assert images.dtype == bool and images.shape == (2000, 1, 64, 64)
    assert np.array_equal(factors, factors32) and np.array_equal(labels, factors[:, 0])
    assert np.array_equal(images[:50], shapes.render(factors[:50]).astype(bool))
    assert data.load_dataset("shapes").pool is None  # its fixed 20,000-sprite sample
    assert data.training_images("shapes64") == data.training_images("shapes32") == 120_000
    assert data.training_images("shapes") == data.SHAPES_TRAIN
    assert data.describe_dataset("shapes64") == ((1, 64, 64), 3) and data.is_shapes("shapes64")


def test_live_mig_is_off_for_datasets_without_factors(runs_dir):
    run_dir = prepare_run("vae", "digits", {"latent_dim": 4, "hidden": "16"},
                          {"epochs": 1, "live_mig_seconds": 0.01}, runs_dir=runs_dir)
    assert train_run(run_dir)["state"] == "done"
    assert not [r for r in read_metrics(run_dir) if "mig" in r]


def test_a_preset_is_ordinary_settings_the_user_can_change():
    preset = PRESETS["class-disentangle"]
    variant, dataset, model, train = apply_preset("class-disentangle", None, None,
                                                  {"latent_dim": "6"}, {"seed": 3})
    assert (variant, dataset) == (preset.variant, preset.dataset)
    assert model == {**preset.model, "latent_dim": "6"} and train == {**preset.train, "seed": 3}
    assert apply_preset(None, "ae", "digits", {}, {}) == ("ae", "digits", {}, {})
    with pytest.raises(ConfigError, match="--variant and --dataset, or --preset"):
        apply_preset(None, "ae", None, {}, {})
    with pytest.raises(ConfigError, match="unknown preset 'nope'; choose one of: class-disentangle"):
        apply_preset("nope", None, None, {}, {})


def test_presets_command_lists_each_preset_with_a_line(capsys):
    from aelab.cli import main

    assert main(["presets"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert [line.split()[0] for line in lines] == list(PRESETS)
    assert main(["train", "--preset", "nope"]) == 2
    assert "unknown preset 'nope'" in capsys.readouterr().err


# --- the pages: presets on Train, the live MIG on Runs ---
APP = str(__import__("pathlib").Path(__file__).resolve().parents[1] / "app.py")


@pytest.fixture
def app_runs(runs_dir, monkeypatch):
    import aelab.runs.local

    monkeypatch.setattr(aelab.runs.local, "ensure_supervisor", lambda runs_dir, max_parallel=None: None)
    return runs_dir


def open_app(page):
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(APP, default_timeout=60)
    at.switch_page(page)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_train_page_preset_fills_the_form_and_the_user_can_change_it(app_runs):
    from aelab.runs.folder import read_config

    at = open_app("pages/train.py")
    at.selectbox(key="preset").select("class-disentangle").run()
    assert not at.exception
    assert at.selectbox(key="dataset").value == "shapes32"
    assert at.selectbox(key="variant").value == "betatcvae"
    assert at.selectbox(key="common.arch").value == "burgess"
    assert at.number_input(key="train.max_minutes").value == PRESETS["class-disentangle"].train["max_minutes"]
    at.number_input(key="common.latent_dim").set_value(7)  # the user's change wins
    at.button(key="start").click().run()
    assert not at.exception and not at.error
    (run_dir,) = [p for p in app_runs.iterdir() if p.is_dir()]
    config = read_config(run_dir)
    preset = PRESETS["class-disentangle"]
    assert (config["variant"], config["dataset"]) == (preset.variant, preset.dataset)
    assert config["model"]["latent_dim"] == 7 and config["model"]["arch"] == "burgess"
    assert config["model"]["beta"] == preset.model["beta"]
    assert config["train"]["live_mig_seconds"] == preset.train["live_mig_seconds"]


@pytest.mark.slow
def test_runs_page_plots_the_live_mig_the_trainer_wrote(app_runs, small_pool):
    import json

    run_dir = prepare_run("betatcvae", "shapes32", {"arch": "burgess", "hidden": "4,4,4,4",
                                                   "latent_dim": 4},
                          {"epochs": 1, "batch_size": 50, "live_mig_seconds": 0.3,
                           "log_every": 10}, runs_dir=app_runs)
    train_run(run_dir)
    at = open_app("pages/runs.py")
    at.multiselect(key="curve_runs").set_value([run_dir.name]).run()
    charts = [json.loads(c.proto.spec)["data"] for c in at.get("plotly_chart")
              if c.key in ("loss_chart", "mig_chart")]  # not the run's time-lapse
    assert len(charts) == 2
    migs = [r for r in read_metrics(run_dir) if "mig" in r]
    mig_trace = [t for traces in charts for t in traces if t["y"] and
                 t["y"] == pytest.approx([r["mig"] for r in migs])]
    assert mig_trace and mig_trace[0]["x"] == pytest.approx([r["train_seconds"] / 60 for r in migs])
    assert {t["name"] for t in charts[0]} == {term_name(k) for k in ("loss", "recon", "mi", "tc", "dim_kl")}


def test_loss_figure_ignores_live_mig_rows_even_when_one_comes_first():
    from aelab.explore.reconstructions import loss_figure, mig_figure

    rows = [{"step": 3, "mig": 0.1, "train_seconds": 60.0, "time": 0.0},
            {"step": 5, "epoch": 0.5, "loss": 2.0, "recon": 1.5, "samples_per_second": 9.0, "time": 1.0},
            {"step": 9, "mig": 0.3, "train_seconds": 120.0, "time": 2.0}]
    traces = loss_figure({"run": rows}).data
    assert [(t.name, list(t.x), list(t.y)) for t in traces] == [("Total loss", [0.5], [2.0]),
                                                                ("Reconstruction", [0.5], [1.5])]
    (mig,) = mig_figure({"run": rows}).data
    assert list(mig.x) == [1.0, 2.0] and list(mig.y) == [0.1, 0.3]
    assert mig_figure({"run": rows[1:2]}) is None


def test_pruning_pins_a_collapsed_latent_to_the_prior_and_is_saved_only_when_on(batch):
    x, _ = batch
    plain = build_model(small_config("betatcvae"))
    assert "latent_mask" not in plain.state_dict() and plain.pruned_latents() == []
    assert build_model(small_config("ae")).pruned_latents() == []  # only a VAE prunes
    model = build_model(small_config("betatcvae", prune_kl_below=0.05)).train()
    assert model.state_dict()["latent_mask"].tolist() == [1.0] * 6
    model(x)  # the first batch starts the KL average
    assert model.recent_kl.shape == (6,)
    model.recent_kl = torch.tensor([0.01, 2.0, 0.049, 0.3, 0.0, 1.0])
    model.start_step(10 ** 6, 10 ** 6)  # nothing is pruned while training goes on
    assert model.pruned_latents() == []
    stopped = model.stopped_copy()  # what a run stopped now would save; the model is untouched
    assert stopped.pruned_latents() == [0, 2, 4] and not stopped.training
    assert model.pruned_latents() == [] and model.training
    model.finish_training()
    assert model.pruned_latents() == [0, 2, 4]
    mu, logvar = model.posterior(x)
    assert torch.all(mu[:, [0, 2, 4]] == 0) and torch.all(logvar[:, [0, 2, 4]] == 0)
    assert torch.all(mu[:, [1, 3, 5]] != 0)
    out = model(x)  # a pruned latent costs no KL and is sampled from the prior
    assert torch.all(out.extras["mu"][:, 0] == 0) and out.code[:, 0].std() > 0.5
    model.recent_kl = torch.zeros(6)  # a pruned latent stays pruned; the rest follow the rule
    assert model.prune() == [1, 3, 5] and model.pruned_latents() == list(range(6))


@pytest.mark.slow
def test_training_averages_the_kl_and_prunes_when_it_ends(runs_dir, small_pool, capsys):
    run_dir = prepare_run("betatcvae", "shapes32", {"arch": "burgess", "hidden": "4,4,4,4",
                                                   "latent_dim": 4, "prune_kl_below": 1e6},
                          {"epochs": 1, "batch_size": 100}, runs_dir=runs_dir)
    trainer = Trainer(run_dir)
    assert trainer.run()["state"] == "done"
    assert trainer.model.recent_kl.shape == (4,) and torch.all(trainer.model.recent_kl >= 0)
    from aelab.runs.folder import load_model
    saved = load_model(run_dir)  # every latent was below 1e6 nats, so all were pinned at the end
    assert saved.pruned_latents() == [0, 1, 2, 3]
    images = torch.from_numpy(data.load_dataset("shapes32").pool()[0][:8]).float()
    assert torch.all(saved.encode(images) == 0)
    # the scores say which latents were pruned; --unpruned gives them back, not cached
    from aelab.cli import main
    assert main(["disentangle", str(run_dir), "--json"]) == 0
    pruned = json.loads(capsys.readouterr().out)
    assert pruned["pruned_latents"] == [0, 1, 2, 3] and np.max(pruned["mi_matrix"]) == 0
    assert main(["disentangle", str(run_dir), "--unpruned", "--json"]) == 0
    unpruned = json.loads(capsys.readouterr().out)
    assert unpruned["pruned_latents"] == [] and np.max(unpruned["mi_matrix"]) > 0
    assert load_model(run_dir).pruned_latents() == [0, 1, 2, 3]  # the run itself is unchanged
    assert main(["disentangle", "--encoder", "noise", "--unpruned"]) == 2
    assert capsys.readouterr().err == ("error: --unpruned needs a run: reference encoders "
                                       "have nothing pruned\n")
