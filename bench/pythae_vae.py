"""The 784-400-20 Bernoulli VAE trained by pythae 0.1.2 and by aelab, each in a fresh process.

pythae (benchmark_VAE) is the library a user would otherwise pick; it is a bench-only
dependency (``pip install -r bench/requirements-bench.txt``; if pip wants another torch,
``pip install --no-deps pythae==0.1.2 imageio``). Both get the same data (the ``mnist5k``
train split), architecture (784-400-20 MLP, ReLU, Bernoulli likelihood), batch 128, Adam
1e-3 and epochs. A run times the *whole train call*, start-up included (pythae: building
the pipeline and calling it, which also saves the final model; aelab: ``prepare_run`` then
``train_run``, which also writes its checkpoint); imports of torch and the library come
before the clock starts for both.

    python bench/pythae_vae.py pythae 10     # prints one JSON line: seconds, per-epoch loop
    python bench/pythae_vae.py aelab 10 1    # a third argument sets torch's threads

``cpu_seconds`` is the process's CPU time over the same call: with one thread it is the
figure to compare on a loaded machine, where wall time mostly measures the neighbours.
"""
from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from aelab.data.datasets import load_dataset  # noqa: E402

BATCH, LR, HIDDEN, LATENT = 128, 1e-3, 400, 20


def run_pythae(epochs: int, x: np.ndarray) -> dict:
    from pythae.models import VAE, VAEConfig
    from pythae.models.base.base_utils import ModelOutput
    from pythae.models.nn import BaseDecoder, BaseEncoder
    from pythae.pipelines import TrainingPipeline
    from pythae.trainers import BaseTrainerConfig

    class Encoder(BaseEncoder):
        def __init__(self):
            super().__init__()
            self.hidden = nn.Sequential(nn.Flatten(), nn.Linear(784, HIDDEN), nn.ReLU())
            self.mu, self.logvar = nn.Linear(HIDDEN, LATENT), nn.Linear(HIDDEN, LATENT)

        def forward(self, x):
            h = self.hidden(x)
            return ModelOutput(embedding=self.mu(h), log_covariance=self.logvar(h))

    class Decoder(BaseDecoder):
        def __init__(self):
            super().__init__()
            self.net = nn.Sequential(nn.Linear(LATENT, HIDDEN), nn.ReLU(), nn.Linear(HIDDEN, 784),
                                     nn.Sigmoid())

        def forward(self, z):
            return ModelOutput(reconstruction=self.net(z).reshape(-1, 1, 28, 28))

    with tempfile.TemporaryDirectory() as out:
        start, cpu = time.perf_counter(), time.process_time()
        config = VAEConfig(input_dim=(1, 28, 28), latent_dim=LATENT, reconstruction_loss="bce")
        model = VAE(config, encoder=Encoder(), decoder=Decoder())
        trainer = BaseTrainerConfig(output_dir=out, num_epochs=epochs, learning_rate=LR,
                                    per_device_train_batch_size=BATCH, no_cuda=True,
                                    optimizer_cls="Adam", seed=0)
        TrainingPipeline(model=model, training_config=trainer)(train_data=x)
        return {"seconds": time.perf_counter() - start, "cpu_seconds": time.process_time() - cpu}


def run_aelab(epochs: int, x: np.ndarray) -> dict:
    from aelab.runs.folder import read_metrics
    from aelab.runs.train import train_run
    from aelab.training.setup import prepare_run

    with tempfile.TemporaryDirectory() as runs_dir:
        start, cpu = time.perf_counter(), time.process_time()
        run_dir = prepare_run("vae", "mnist5k", {"latent_dim": LATENT, "hidden": str(HIDDEN),
                                                 "arch": "mlp", "likelihood": "bernoulli"},
                              {"epochs": epochs, "batch_size": BATCH, "lr": LR, "seed": 0,
                               "device": "cpu", "caches": False}, runs_dir=runs_dir)
        status = train_run(run_dir)
        seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu
        assert status["state"] == "done", status
        return {"seconds": seconds, "cpu_seconds": cpu_seconds,
                "train_seconds": status["train_seconds"],
                "logged_samples_per_s": float(np.median([r["samples_per_second"]
                                                         for r in read_metrics(run_dir)]))}


def main() -> None:
    who, epochs = sys.argv[1], int(sys.argv[2])
    if len(sys.argv) > 3 and int(sys.argv[3]):
        torch.set_num_threads(int(sys.argv[3]))
    ds = load_dataset("mnist5k")  # loaded (and cached) before the clock, for both
    x = ds.x_train  # (N, 1, 28, 28) float32 in [0, 1]
    torch.manual_seed(0)
    result = (run_pythae if who == "pythae" else run_aelab)(epochs, x)
    print(json.dumps({"who": who, "epochs": epochs, "images": len(x),
                      "threads": torch.get_num_threads(), **result}))


if __name__ == "__main__":
    main()
