"""How close aelab's training gets to the machine: FLOP/s of training against a plain
1024x1024 float32 matmul measured in the same process.

The FLOPs of one training step (forward, loss and backward of a real batch) are counted by
``torch.utils.flop_counter.FlopCounterMode`` (matmuls and convolutions; elementwise work
and the optimizer count as zero, so the percentage is of useful dense work). The rate is
those FLOPs times aelab's own logged samples/second (``train_run``'s steady state,
start-up excluded) over the batch size. The matmul rate is the best of several timings
taken just before and just after the training, so a noisy neighbour lowers training's
share rather than raising it.

With one torch thread the table also gives ``cpu share``: the same FLOPs per CPU second of
this thread, for the whole ``train_run`` call (start-up, logging and checkpoints included,
so it is conservative) against the matmul's FLOPs per CPU second. On a machine shared with
other work, where wall time mostly measures the neighbours, it is the steadier figure.

    python bench/train_speed.py efficiency          # MLP on mnist5k, convs on shapes
"""
from __future__ import annotations

import statistics
import tempfile
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

from aelab.data import load_dataset
from aelab.registry import build_model
from aelab.runs import read_config, read_metrics
from aelab.train import prepare_run, train_run

# (name, variant, dataset, model settings, training settings): the two cases
CASES = (
    ("MLP VAE 784-400-20, mnist5k, batch 128", "vae", "mnist5k",
     {"latent_dim": 20, "hidden": "400", "arch": "mlp", "likelihood": "bernoulli"},
     {"epochs": 10, "batch_size": 128, "lr": 1e-3}),
    ("conv beta-VAE 64x64 shapes, batch 64", "betavae", "shapes",
     {"latent_dim": 10, "arch": "conv"}, {"epochs": 1, "batch_size": 64, "lr": 1e-3}),
    # and the class preset's net (aelab/presets.py), for its first 30 seconds
    ("Burgess beta-TCVAE 32x32 shapes, batch 128", "betatcvae", "shapes32",
     {"latent_dim": 10, "arch": "burgess"},
     {"epochs": 1, "batch_size": 128, "lr": 1e-3, "max_minutes": 0.5}),
)


def matmul_rate(n: int = 1024, seconds: float = 1.0) -> tuple[float, float]:
    """FLOP/s of an (n x n) @ (n x n) float32 matmul: the best of 5 timed blocks, by wall
    clock and by this thread's CPU time."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    for _ in range(3):
        a @ b  # warm-up
    best = best_cpu = 0.0
    for _ in range(5):
        reps, start, cpu = 0, time.perf_counter(), time.thread_time()
        while time.perf_counter() - start < seconds / 5:
            a @ b
            reps += 1
        best = max(best, 2 * n ** 3 * reps / (time.perf_counter() - start))
        best_cpu = max(best_cpu, 2 * n ** 3 * reps / max(time.thread_time() - cpu, 1e-9))
    return best, best_cpu


def step_flops(run_dir) -> int:
    """FLOPs of one training step of the run's model on one batch of its data."""
    config = read_config(run_dir)
    model = build_model(config["model_config"])
    batch = config["train_config"].batch_size
    x = torch.from_numpy(load_dataset(config["dataset"]).x_train[:batch])
    with FlopCounterMode(display=False) as counter:
        out = model(x)
        loss, _ = model.loss(x, out)
        loss.backward()
    return counter.get_total_flops()


def efficiency() -> list[dict]:
    """Each case's training FLOP/s as a share of the matmul rate (see module docstring)."""
    rows = []
    for name, variant, dataset, model, train in CASES:
        load_dataset(dataset)  # rendered / cached before any timing
        with tempfile.TemporaryDirectory() as runs:
            run_dir = prepare_run(variant, dataset, model, {**train, "device": "cpu",
                                                            "caches": False}, runs_dir=runs)
            before = matmul_rate()
            cpu = time.thread_time()
            status = train_run(run_dir)
            cpu = time.thread_time() - cpu
            after = matmul_rate()
            logged = [r["samples_per_second"] for r in read_metrics(run_dir)
                      if "samples_per_second" in r]
            flops = step_flops(run_dir)
        batch = train["batch_size"]
        sps = statistics.median(logged[1:] or logged)  # the first window holds the warm-up
        rate = flops / batch * sps
        peak = max(before[0], after[0])
        row = {"case": name, "flops_per_sample": flops / batch, "samples_per_s": sps,
               "gflops": rate / 1e9, "matmul_gflops": peak / 1e9, "share": rate / peak}
        if torch.get_num_threads() == 1:  # other threads' CPU time is not in thread_time
            row["cpu_share"] = flops * status["step"] / cpu / max(before[1], after[1])
        rows.append(row)
    return rows
