"""How close aelab's training gets to the machine: FLOP/s of training against a plain
1024x1024 float32 matmul measured in the same process.

The FLOPs of one training step (forward, loss and backward of a real batch) are counted by
``torch.utils.flop_counter.FlopCounterMode`` (matmuls and convolutions; elementwise work
and the optimizer count as zero, so the percentage is of useful dense work). Training's
rate in a logging window is those FLOPs times aelab's own logged samples/second for the
window (``train_run``'s log rows; start-up excluded) over the batch size.

``share`` pairs each window with the matmul timed right after it (``train_run``'s progress
callback, outside the timed windows, 0.1 s of matmuls): the median over windows of
training's rate over its neighbour's. The host's speed drifts by 10-20% within minutes on
these shared machines (the matmul alone read 82-100 GFLOP/s within ten minutes on
2026-12-02), so a ratio of rates taken at the same moment is the one that measures the
code. ``vs best`` is the older, harsher figure: the median window against the best matmul
block timed before or after the whole training, so any drift counts against training.

With one torch thread the table also gives ``cpu share``: the same FLOPs per CPU second of
this thread, for the whole ``train_run`` call (start-up, logging and checkpoints included,
so it is conservative) against the matmul's FLOPs per CPU second. On a machine shared with
other work, where wall time mostly measures the neighbours, it is the steadier figure.

The baseline of all three is torch's ``@``, the issue's "1024x1024 float32 matmul". MKL,
behind it, runs its AVX2 code on AMD CPUs, so on an AVX-512 AMD machine it reaches about
half of what the cores can do; ``oneDNN`` and ``vs oneDNN`` pair each window with the same
product through oneDNN's kernel as well (about 2x torch's ``@`` there, the same elsewhere),
the ceiling for aelab's linear layers, which train with that kernel on CPU.

    python bench/train_speed.py efficiency          # MLP on mnist5k, convs on shapes
"""
from __future__ import annotations

import statistics
import tempfile
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

from aelab.data.datasets import load_dataset
from aelab.models import build_model
from aelab.models.nn import onednn_mm
from aelab.runs.folder import read_config, read_metrics
from aelab.runs.train import train_run
from aelab.training.setup import prepare_run

# (name, variant, dataset, model settings, training settings): the two cases
CASES = (
    ("MLP VAE 784-400-20, mnist5k, batch 128", "vae", "mnist5k",
     {"latent_dim": 20, "hidden": "400", "arch": "mlp", "likelihood": "bernoulli"},
     {"epochs": 10, "batch_size": 128, "lr": 1e-3}),
    ("conv beta-VAE 64x64 shapes, batch 64", "betavae", "shapes",
     {"latent_dim": 10, "arch": "conv"}, {"epochs": 1, "batch_size": 64, "lr": 1e-3}),
    # and the class preset's net (aelab/training/presets.py), for its first 30 seconds
    ("Burgess beta-TCVAE 32x32 shapes, batch 128", "betatcvae", "shapes32",
     {"latent_dim": 10, "arch": "burgess"},
     {"epochs": 1, "batch_size": 128, "lr": 1e-3, "max_minutes": 0.5}),
)


KERNELS = ("torch", "onednn")


class MatmulClock:
    """An (n x n) @ (n x n) float32 matmul, the baseline of every ratio here, timed on demand.

    ``kernel`` "torch" is the issue's baseline, torch's ``@`` (MKL's sgemm); "onednn" is the
    same product through oneDNN's kernel, the one aelab's linear layers train with on CPU
    (``aelab.models.nn.Linear``). MKL runs its AVX2 code on AMD CPUs, so on an AVX-512 AMD machine
    the second is about twice the first, and the honest ceiling for training."""

    def __init__(self, n: int = 1024, kernel: str = "torch"):
        if kernel not in KERNELS:
            raise ValueError(f"unknown matmul kernel {kernel!r}; choose one of {', '.join(KERNELS)}")
        self.n, self.a, self.b = n, torch.randn(n, n), torch.randn(n, n)
        self.kernel = kernel

    def product(self) -> torch.Tensor:
        """One n x n x n product (a @ b, or a @ b^T through oneDNN: the same FLOPs)."""
        if self.kernel == "onednn":
            return onednn_mm(self.a, self.b)
        return self.a @ self.b

    def rate(self, seconds: float, blocks: int = 1, warmup: int = 1) -> tuple[float, float]:
        """FLOP/s over ``blocks`` timed blocks of about ``seconds / blocks`` each, after
        ``warmup`` untimed products: the best block by wall clock and by this thread's CPU time."""
        for _ in range(warmup):
            self.product()
        best = best_cpu = 0.0
        for _ in range(blocks):
            reps, start, cpu = 0, time.perf_counter(), time.thread_time()
            while time.perf_counter() - start < seconds / blocks:
                self.product()
                reps += 1
            flops = 2 * self.n ** 3 * reps
            best = max(best, flops / (time.perf_counter() - start))
            best_cpu = max(best_cpu, flops / max(time.thread_time() - cpu, 1e-9))
        return best, best_cpu


def matmul_rate(n: int = 1024, seconds: float = 1.0) -> tuple[float, float]:
    """FLOP/s of an (n x n) @ (n x n) float32 matmul: the best of 5 timed blocks, by wall
    clock and by this thread's CPU time."""
    return MatmulClock(n).rate(seconds, blocks=5, warmup=3)


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


class MatmulAfterEachWindow:
    """``train_run``'s progress callback: times 0.1 s of each clock's matmuls after each
    logged window (the trainer restarts its window clock after the callback returns)."""

    def __init__(self, *clocks: MatmulClock):
        self.clocks, self.cpu_seconds = clocks, 0.0
        self.rates: dict[str, list[float]] = {clock.kernel: [] for clock in clocks}

    def __call__(self, status: dict) -> None:
        if status.get("state") == "running" and "samples_per_second" in status:
            cpu = time.thread_time()
            for clock in self.clocks:
                self.rates[clock.kernel].append(clock.rate(0.1)[0])
            self.cpu_seconds += time.thread_time() - cpu


def paired_shares(window_rates: list[float], matmul_rates: list[float]) -> list[float]:
    """Each logging window's training FLOP/s over the matmul rate timed right after it,
    the first window (warm-up) left out unless it is the only one."""
    if len(window_rates) != len(matmul_rates):
        raise ValueError(f"{len(window_rates)} logged windows but {len(matmul_rates)} matmul timings")
    pairs = list(zip(window_rates, matmul_rates))
    return [rate / matmul for rate, matmul in (pairs[1:] or pairs)]


def efficiency(cases=CASES) -> list[dict]:
    """Each case's training FLOP/s as a share of the matmul rate (see module docstring);
    ``cases`` as ``CASES``."""
    rows = []
    clocks = [MatmulClock(kernel=kernel) for kernel in KERNELS]
    for name, variant, dataset, model, train in cases:
        load_dataset(dataset)  # rendered / cached before any timing
        beside = MatmulAfterEachWindow(*clocks)
        with tempfile.TemporaryDirectory() as runs:
            run_dir = prepare_run(variant, dataset, model, {**train, "device": "cpu",
                                                            "caches": False}, runs_dir=runs)
            before = matmul_rate()
            cpu = time.thread_time()
            status = train_run(run_dir, progress=beside)
            cpu = time.thread_time() - cpu - beside.cpu_seconds  # training's CPU time alone
            after = matmul_rate()
            logged = [r["samples_per_second"] for r in read_metrics(run_dir)
                      if "samples_per_second" in r]
            flops = step_flops(run_dir)
        batch = train["batch_size"]
        rates = [flops / batch * sps for sps in logged]
        sps = statistics.median(logged[1:] or logged)  # the first window holds the warm-up
        rate = flops / batch * sps
        peak = max(before[0], after[0])
        torchs, onednns = beside.rates["torch"], beside.rates["onednn"]
        row = {"case": name, "flops_per_sample": flops / batch, "samples_per_s": sps,
               "gflops": rate / 1e9, "matmul_gflops": statistics.median(torchs) / 1e9,
               "share": statistics.median(paired_shares(rates, torchs)), "windows": len(rates),
               "best_matmul_gflops": peak / 1e9, "share_vs_best": rate / peak,
               "onednn_matmul_gflops": statistics.median(onednns) / 1e9,
               "share_onednn": statistics.median(paired_shares(rates, onednns))}
        if torch.get_num_threads() == 1:  # other threads' CPU time is not in thread_time
            row["cpu_share"] = flops * status["step"] / cpu / max(before[1], after[1])
        rows.append(row)
    return rows
