"""Which labels can one squashed latent learn? The semivae choices (aelab/models/semivae.py),
measured on the Burgess encoder alone (no decoder, no KL), 32x32 sprites.

Each case trains the encoder from the same seed for ``--steps`` Adam steps (lr 1e-3) on
batches of 64 from 40,000 rendered sprites, with one output per labelled factor, and reports
how often shape read from the shape output (the nearest of its labels) is right on 3,000
other sprites (chance 1/3):

* ``shape, grid order``: BCE(sigmoid(out), index / 2), the ellipse in the middle;
* ``shape, ellipse at an end``: BCE against semivae's ``SHAPE_TARGET`` (square 0, heart 0.5,
  ellipse 1);
* ``shape, 3-way softmax``: three outputs and a cross-entropy, the classifier's ceiling;
* ``five factors, orientation index / 39`` and ``five factors, orientation as seen``: all
  five labels at once (the supervised term with equal weights), orientation as the grid's
  index or as semivae's (1 - cos(k theta)) / 2.

And ``--ceiling`` scores the labels themselves as a code (``aelab.metrics.disentanglement.score``): what
a model that learned them exactly would get, with orientation as seen (its cosine, and on the
circle: cosine and sine), with orientation replaced by noise, without orientation, and with
every label blurred by Gaussian noise (std 0.05, about 1.5 position steps).

``--generalisation RUN`` asks whether a trained semivae run's labelled latents learned the
factors or the labelled sprites: the root-mean-square error of sigmoid(mu_j) against label
y_j on 5,000 of its labelled pool sprites and on the dataset's 5,000 test sprites.

    python bench/label_targets.py            # about 8 minutes on one core
    python bench/label_targets.py --ceiling  # about 2 minutes
    python bench/label_targets.py --generalisation checkpoints/demo-semivae-shapes
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repo's aelab
from aelab.data import shapes  # noqa: E402
from aelab.models.nn import Encoder  # noqa: E402
from aelab.models.semivae import SHAPE_TARGET, scaled_factors  # noqa: E402

SIDE, TRAIN, TEST, BATCH = 32, 40_000, 3_000, 64


def labels(factors: np.ndarray, case: str) -> np.ndarray:
    """The targets of a case: (N, outputs) in [0, 1], or shape indices for the softmax."""
    if case == "shape, grid order":
        return factors[:, :1] / 2.0
    if case == "shape, ellipse at an end":
        return SHAPE_TARGET[factors[:, :1]]
    if case == "shape, 3-way softmax":
        return factors[:, 0]
    y = scaled_factors(factors).astype(np.float64)
    if case == "five factors, orientation index / 39":
        y[:, 2] = factors[:, 2] / 39.0
    return y


def shape_accuracy(out: torch.Tensor, factors: np.ndarray, case: str) -> float:
    """Share of sprites whose shape output is nearest its own shape's label."""
    if case == "shape, 3-way softmax":
        return float((out.argmax(1).numpy() == factors[:, 0]).mean())
    targets = np.arange(3) / 2.0 if case == "shape, grid order" else SHAPE_TARGET
    p = torch.sigmoid(out[:, 0]).numpy()
    return float((np.abs(p[:, None] - targets).argmin(1) == factors[:, 0]).mean())


CASES = ("shape, grid order", "shape, ellipse at an end", "shape, 3-way softmax",
         "five factors, orientation index / 39", "five factors, orientation as seen")


def run(case: str, steps: int, seed: int = 0) -> dict:
    """Train one case; its shape accuracy every 1,000 steps."""
    rng = np.random.default_rng(seed)
    train_f, test_f = shapes.sample_factors(TRAIN, rng), shapes.sample_factors(TEST, rng)
    x = torch.from_numpy(shapes.render(train_f, side=SIDE)).to(torch.bool)
    x_test = torch.from_numpy(shapes.render(test_f, side=SIDE))
    y = torch.from_numpy(labels(train_f, case))
    softmax = case == "shape, 3-way softmax"
    torch.manual_seed(seed)
    encoder = Encoder("burgess", (1, SIDE, SIDE), (32, 32, 64, 64), 3 if softmax else y.shape[1])
    optimizer = torch.optim.Adam(encoder.parameters(), lr=1e-3)
    curve = []
    for step in range(1, steps + 1):
        pick = torch.randint(TRAIN, (BATCH,))
        out = encoder(x[pick].float())
        loss = (F.cross_entropy(out, y[pick]) if softmax else
                F.binary_cross_entropy_with_logits(out, y[pick].float(), reduction="none")
                .sum(1).mean())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if step % 1000 == 0 or step == steps:
            with torch.no_grad():
                curve.append((step, shape_accuracy(encoder(x_test), test_f, case)))
    return {"case": case, "curve": curve}


def ceiling() -> list[dict]:
    """Disentanglement scores of the labels as codes, exact and spoiled (module docstring)."""
    from aelab.metrics.disentanglement import score

    rng = np.random.default_rng(0)
    seen = lambda f: scaled_factors(f).astype(np.float64)  # noqa: E731
    codes = {"labels as seen": seen,
             "labels as seen, orientation on the circle":
                 lambda f: scaled_factors(f, circle=True).astype(np.float64),
             "orientation replaced by noise":
                 lambda f: np.c_[seen(f)[:, :2], rng.random(len(f)), seen(f)[:, 3:]],
             "without orientation": lambda f: np.delete(seen(f), 2, axis=1),
             "every label + noise (std 0.05)":
                 lambda f: seen(f) + 0.05 * rng.standard_normal((len(f), len(shapes.FACTORS)))}
    rows = []
    for name, code in codes.items():
        scores = score(code)
        rows.append({"code": name, **{k: round(scores[k], 3) for k in
                                      ("mig", "dci_disentanglement", "factor_vae")}})
    return rows


def generalisation(run_dir: str, n: int = 5000) -> dict:
    """RMS of sigmoid(mu_j) - y_j per labelled latent of a semivae run, on ``n`` of its labelled
    pool sprites and on the test split (a separate sample of the grid)."""
    from aelab.data.datasets import load_dataset
    from aelab.runs.folder import load_model, read_config

    config = read_config(run_dir)
    if config["variant"] != "semivae":
        raise SystemExit(f"{run_dir} is a {config['variant']} run, not a semivae one")
    model = load_model(run_dir).eval()
    settings = model.config
    ds = load_dataset(config["dataset"])
    images, _, factors = ds.pool() if ds.pool else (ds.x_train, None, ds.factors_train)
    names = list(shapes.FACTORS) + ["orientation (sine)"] * settings.orientation_circle

    def rms(images: np.ndarray, factors: np.ndarray) -> list[float]:
        with torch.no_grad():
            mu = model.posterior(torch.from_numpy(images).float())[0]
        y = scaled_factors(factors, settings.orientation_circle)
        guess = torch.sigmoid(mu[:, :len(names)]).numpy()
        return np.sqrt(((guess - y) ** 2).mean(0)).round(3).tolist()

    labelled = min(n, settings.labels)
    return {"latents": names, "labelled": rms(images[:labelled], factors[:labelled]),
            "test": rms(ds.x_test[:n], ds.factors_test[:n])}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=4000)
    ap.add_argument("--ceiling", action="store_true", help="score the labels as codes instead")
    ap.add_argument("--generalisation", metavar="RUN",
                    help="a semivae run folder: its labelled latents' errors on labelled and "
                         "other sprites")
    ap.add_argument("--json", action="store_true", help="one JSON object instead of a table")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    if args.generalisation:
        result = generalisation(args.generalisation)
        print(json.dumps(result) if args.json else "\n".join(
            f"{name:20s} labelled {a:.3f}  test {b:.3f}" for name, a, b in
            zip(result["latents"], result["labelled"], result["test"])))
        return
    if args.ceiling:
        rows = ceiling()
        print(json.dumps(rows) if args.json else "\n".join(
            f"{r['code']:42s} MIG {r['mig']:.3f}  DCI D {r['dci_disentanglement']:.3f}  "
            f"FactorVAE {r['factor_vae']:.3f}" for r in rows))
        return
    rows = [run(case, args.steps) for case in CASES]
    if args.json:
        print(json.dumps(rows))
        return
    print(f"shape accuracy on {TEST} other sprites after steps " +
          ", ".join(str(s) for s, _ in rows[0]["curve"]))
    for row in rows:
        print(f"{row['case']:40s} " + "  ".join(f"{a:.2f}" for _, a in row["curve"]))


if __name__ == "__main__":
    main()
