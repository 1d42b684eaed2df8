"""The demo runs shipped in checkpoints/, made reproducibly by ``python -m aelab demo-runs``.

Small MLPs on the offline ``mnist5k`` data, one per variant (the vanilla
autoencoder twice: a 2-D code to look at directly and a 16-D one), and four runs
on the shapes sprites for the Disentanglement page: an entangled beta-VAE, a disentangled
beta-TCVAE, an Ada-GVAE (weakly supervised by pairs) and a semivae (a few labels). Each has
its explore caches and score table and no optimizer state, so each folder stays under 2 MB
(the Burgess conv nets: 5 MB).
"""
from __future__ import annotations

import shutil
from pathlib import Path
from typing import Callable

from aelab.data.datasets import is_shapes
from aelab.metrics.results import get_disentanglement, get_latent_scores, rebuild_caches, refresh_caches
from aelab.models import get_variant
from aelab.runs.folder import TRAIN_STATE, read_config, runs_root
from aelab.runs.train import train_run
from aelab.training.presets import DISENTANGLE_RECIPE
from aelab.training.setup import prepare_run

HIDDEN = "128,64"
TRAIN = {"epochs": 60, "batch_size": 128, "lr": 2e-3, "seed": 0, "device": "cpu", "caches": True}
# name: (variant, dataset, model settings, training settings that differ from TRAIN)
DEMOS: dict[str, tuple[str, str, dict, dict]] = {
    "demo-ae-z2": ("ae", "mnist5k", {"latent_dim": 2}, {}),
    "demo-ae-z16": ("ae", "mnist5k", {"latent_dim": 16}, {}),
    "demo-denoising": ("denoising", "mnist5k", {"latent_dim": 16, "noise": "masking",
                                                "noise_level": 0.3}, {}),
    # weight 10: at 1 the unit means sat at 0.06-0.18, not near rho (the Lesson says near rho)
    "demo-sparse": ("sparse", "mnist5k", {"latent_dim": 32, "rho": 0.05, "sparsity_weight": 10.0}, {}),
    "demo-ksparse": ("ksparse", "mnist5k", {"latent_dim": 32, "k": 8, "k_start": 24}, {}),
    "demo-contractive": ("contractive", "mnist5k", {"latent_dim": 16, "contractive_weight": 0.1}, {}),
    "demo-vae": ("vae", "mnist5k", {"latent_dim": 8}, {}),
    "demo-cvae": ("cvae", "mnist5k", {"latent_dim": 8}, {}),
    "demo-betavae": ("betavae", "mnist5k", {"latent_dim": 8, "beta": 4.0}, {}),
    "demo-factorvae": ("factorvae", "mnist5k", {"latent_dim": 8, "gamma": 10.0,
                                                "disc_hidden": "64,64"}, {}),
    # 4096 inputs: a narrow MLP keeps the folder under 2 MB; the entangled contrast
    "demo-betavae-shapes": ("betavae", "shapes", {"latent_dim": 6, "beta": 4.0, "hidden": "32"},
                            {"epochs": 8, "lr": 1e-3, "batch_size": 64}),
    # the disentangled one: the recipe of the classroom preset (aelab/training/presets.py), trained longer
    "demo-betatcvae-shapes": ("betatcvae", "shapes32", {**DISENTANGLE_RECIPE, "hidden": ""},
                              {"epochs": 8, "lr": 1e-3, "batch_size": 128,
                               "live_mig_seconds": 60.0}),
    # weak supervision: the same net and data, trained on pairs that differ in one factor
    # (seed 1: seed 0 put both positions on one latent; docs/disentanglement.md, "Weak supervision")
    "demo-adagvae-shapes": ("adagvae", "shapes32", {"arch": "burgess", "latent_dim": 10,
                                                    "hidden": "", "beta": 1.0, "differing": 1,
                                                    "prune_kl_below": 0.02},
                            {"epochs": 3, "lr": 1e-3, "batch_size": 64, "seed": 1,
                             "live_mig_seconds": 60.0}),
    # labels: the same net on 64x64 sprites, told the factors of 10,000 pool sprites
    # (docs/disentanglement.md, "Labels")
    "demo-semivae-shapes": ("semivae", "shapes64", {"arch": "burgess", "latent_dim": 10,
                                                    "hidden": "", "beta": 1.0, "labels": 10_000,
                                                    "label_weight": 100.0,
                                                    "label_weight_final": 10.0, "label_batch": 64,
                                                    "shape_weight": 5.0, "scale_weight": 5.0,
                                                    "orientation_weight": 5.0,
                                                    "orientation_circle": True,
                                                    "prune_kl_below": 0.02},
                            {"epochs": 6, "lr": 1e-3, "batch_size": 64, "seed": 1,
                             "live_mig_seconds": 60.0}),
}
SIZE_LIMIT = {name: 5 * 1024 * 1024 for name in ("demo-betatcvae-shapes", "demo-adagvae-shapes",
                                                  "demo-semivae-shapes")}
# bytes; others 2 MB (the Burgess conv nets are bigger)


def make_demo_runs(runs_dir=None, names: list[str] | None = None,
                   say: Callable[[str], None] = print) -> list[Path]:
    """Train (again) the demo runs into ``runs_dir``; the folders made."""
    root = runs_root(runs_dir)
    made = []
    for name in names or list(DEMOS):
        variant, dataset, params, train = DEMOS[name]
        out = root / name
        if out.exists():
            shutil.rmtree(out)
        say(f"training {name} ({variant} on {dataset})")
        # the shipped VAE-family demos were trained before free bits existed
        off = {"free_bits": 0.0} if hasattr(get_variant(variant).Config, "free_bits") else {}
        run_dir = prepare_run(variant, dataset, {"hidden": HIDDEN, **off, **params}, {**TRAIN, **train},
                              out=out)
        status = train_run(run_dir)
        if status["state"] != "done":
            raise RuntimeError(f"demo run {name} ended {status['state']}: {status.get('error')}")
        say(f"  caches for {name}")
        finish_demo_run(run_dir)
        made.append(run_dir)
    return made


def finish_demo_run(run_dir: Path) -> None:
    """The caches the pages read (explore caches, the Latent space scores and, for runs on
    shapes, the disentanglement scores), and no resume state: a demo run is finished."""
    rebuild_caches(run_dir)
    get_latent_scores(run_dir)
    if is_shapes(read_config(run_dir)["dataset"]):
        get_disentanglement(run_dir)
    (run_dir / TRAIN_STATE).unlink(missing_ok=True)


def refresh_demo_runs(runs_dir=None, names: list[str] | None = None,
                      say: Callable[[str], None] = print) -> list[Path]:
    """Bring the caches of the demo runs in ``runs_dir`` up to date without training them again:
    only what is missing or stale (another weights' hash, scores of an older definition or
    without intervals) is computed, so the weights and every fresh cache stay as they are."""
    root = runs_root(runs_dir)
    refreshed = []
    for name in names or list(DEMOS):
        run_dir = root / name
        if not (run_dir / "config.json").is_file():
            say(f"{name}: not in {root}; make it with `python -m aelab demo-runs {name}`")
            continue
        say(f"caches for {name}")
        refresh_caches(run_dir)
        get_latent_scores(run_dir)
        if is_shapes(read_config(run_dir)["dataset"]):
            get_disentanglement(run_dir)
        refreshed.append(run_dir)
    return refreshed
