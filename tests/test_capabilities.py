"""Pages choose runs by what a model can do, never by its variant's name.

A new variant is made inside the test - one class with its own Config, one ``register``
call - trained for an epoch on ``digits``, and must then appear on every page its
capabilities fit (and be refused in one sentence on the others). A second toy, with no
capability, shows the refusal. Both are removed from the registry afterwards.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

import aelab.metrics.background
import aelab.metrics.results
import aelab.runs.local
from aelab.errors import ConfigError
from aelab.metrics.results import rebuild_caches
from aelab.models import CAPABILITIES, capabilities_of, list_variants, refusal, register, with_capabilities
from aelab.models.base import AEConfig, Autoencoder
from aelab.models.registry import VARIANTS
from aelab.models.vae import VAE
from aelab.models.vae import Config as VAEConfig
from aelab.runs.train import train_run
from aelab.training.setup import prepare_run

APP = Path(__file__).resolve().parents[1] / "app.py"
TIMEOUT = 60


def test_each_variant_declares_what_differs_and_inherits_the_rest():
    assert capabilities_of("ae") == {"plain"}
    assert capabilities_of("vae") == {"samples_prior", "kl_per_dim"}
    assert capabilities_of("cvae") == {"samples_prior", "kl_per_dim", "conditional"}
    for name in ("betavae", "betatcvae", "factorvae", "adagvae", "semivae"):
        assert capabilities_of(name) == capabilities_of("vae"), name
    assert capabilities_of("sparse") == {"target_rate"} and capabilities_of("ksparse") == {"kept_k"}
    assert capabilities_of("contractive") == {"contractive_jacobian"}
    assert capabilities_of("denoising") == {"corrupts_input"}
    assert capabilities_of("no-such-variant") == frozenset()


def test_with_capabilities_filters_rows_and_refuses_an_unknown_capability():
    rows = [{"id": "a", "variant": "ae"}, {"id": "f", "variant": "factorvae"},
            {"id": "c", "variant": "cvae"}, {"id": "x", "variant": "gone"}]
    assert [r["id"] for r in with_capabilities(rows, ("samples_prior",))] == ["f", "c"]
    assert [r["id"] for r in with_capabilities(rows, ("samples_prior", "conditional"))] == ["c"]
    assert [r["id"] for r in with_capabilities(rows)] == ["a", "f", "c", "x"]
    with pytest.raises(ConfigError, match="unknown capabilities.*samples_prior"):
        with_capabilities(rows, ("prior",))
    assert refusal("Generate", ("samples_prior",), "f", "factorvae") is None
    assert refusal("Generate", ("samples_prior",), "demo-ae-z2", "ae") == (
        f"Generate needs a model that {CAPABILITIES['samples_prior']}; demo-ae-z2 is an ae run "
        "(Vanilla autoencoder).")


# --- "one file plus one line", end to end ---
@dataclass
class ToyPriorConfig(VAEConfig):
    """Nothing of its own: the toy only needs a Config to be registered."""


class ToyPrior(VAE):
    """Toy prior: a VAE under a name no page knows."""

    Config = ToyPriorConfig


@dataclass
class ToyCodeConfig(AEConfig):
    """Nothing of its own."""


class ToyCode(Autoencoder):
    """Toy code: an autoencoder that declares no capability."""

    Config = ToyCodeConfig


@pytest.fixture(scope="module")
def toys(tmp_path_factory):
    """The two toys registered (one line each), one tiny trained run of each with its
    caches, ``$AELAB_RUNS`` on that folder; the registry as before afterwards."""
    root = tmp_path_factory.mktemp("toy-runs")
    project = aelab.metrics.results.project_2d
    with pytest.MonkeyPatch.context() as mp:
        register("toyprior")(ToyPrior)
        register("toycode")(ToyCode)
        try:
            mp.setattr(aelab.metrics.results, "project_2d",
                       lambda x, method, seed=0: project(x, "pca", seed))
            mp.setattr(aelab.runs.local, "ensure_supervisor", lambda runs_dir, max_parallel=None: None)
            mp.setattr(aelab.metrics.background, "start_scoring", lambda run_dir, kind="disentangle": True)
            mp.setenv("AELAB_RUNS", str(root))
            ids = {}
            for name in ("toyprior", "toycode"):
                run_dir = prepare_run(name, "digits", {"hidden": "32", "latent_dim": 2},
                                      {"epochs": 1, "caches": False}, runs_dir=root)
                assert train_run(run_dir)["state"] == "done"
                rebuild_caches(run_dir)
                ids[name] = run_dir.name
            yield ids
        finally:
            VARIANTS.pop("toyprior", None)
            VARIANTS.pop("toycode", None)
    assert "toyprior" not in list_variants() and "toycode" not in list_variants()


def open_view(page: str, **query) -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
    at.switch_page(f"pages/{page}.py")
    at.query_params.update(query)
    at.run()
    assert not at.exception, [e.message for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    return at


def offered(at: AppTest, key: str) -> list[str]:
    box = at.selectbox(key=key)
    return [o for o in box.options]


@pytest.mark.slow
def test_a_new_variant_appears_on_every_page_its_capabilities_fit(toys):
    prior, code = toys["toyprior"], toys["toycode"]
    assert capabilities_of("toyprior") == {"samples_prior", "kl_per_dim"}
    assert capabilities_of("toycode") == frozenset()

    # Generate: the prior's run only; its samples are drawn
    at = open_view("generate", run=prior)
    assert at.selectbox(key="gen_run").value == prior and len(offered(at, "gen_run")) == 1
    assert any("z ~ N(0, I)" in i.captions for i in at.image), "no prior samples drawn"
    assert not at.info, [i.value for i in at.info]
    # ... the other is refused in one sentence that says why
    at = open_view("generate", run=code)
    assert [w.value for w in at.warning] == [
        f"Generate needs a model that {CAPABILITIES['samples_prior']}; {code} is a toycode run "
        f"(Toy code), so it shows {at.selectbox(key='gen_run').format_func(prior)} instead."]

    # Traversal, Latent space, Inside, Runs: every run; Traversal's prior mean only with a prior
    for page, key in (("traversal", "trav_run"), ("latent", None), ("inside", "in_run"),
                      ("runs", "action_run")):
        for run_id in (prior, code):
            at = open_view(page, run=run_id)
            assert at.query_params["run"] == run_id, (page, run_id)
            assert not [w.value for w in at.warning if "instead" in w.value], (page, run_id)
            if key:
                assert len(offered(at, key)) == 2, page
    assert open_view("traversal", run=prior).radio(key="trav_source").options == ["test image", "prior mean"]
    assert open_view("traversal", run=code).radio(key="trav_source").options == ["test image"]
    assert any(f"{code} (toycode) does none of these" in c.value for c in open_view("inside", run=code).caption)

    # Disentanglement: neither (digits have no known factors); it says what it needs
    at = open_view("disentangle")
    assert any("No finished runs on the shapes datasets" in i.value for i in at.info)

    # Home lists the variant with what it can do; Train offers it
    home = open_view("home")
    table = next(d.value for d in home.dataframe if "what it can do" in d.value.columns)
    row = table[table["variant"] == "toyprior"].iloc[0]
    assert CAPABILITIES["samples_prior"] in row["what it can do"]
    assert "toyprior" in open_view("train").selectbox(key="variant").options
