"""bench/flop_rate.py, the efficiency table's harness: each logging window of a real
training is paired with the matmul timed right after it."""
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
import flop_rate  # noqa: E402


def test_paired_shares_pair_each_window_with_its_own_matmul():
    # window 0 is the warm-up and left out; window i goes with matmul i, not with the best
    assert flop_rate.paired_shares([1.0, 30.0, 60.0], [100.0, 50.0, 120.0]) == [0.6, 0.5]
    assert flop_rate.paired_shares([40.0], [80.0]) == [0.5]  # a single window is kept
    with pytest.raises(ValueError, match="3 logged windows but 2 matmul timings"):
        flop_rate.paired_shares([1.0, 2.0, 3.0], [1.0, 2.0])


@pytest.mark.slow
def test_efficiency_times_a_matmul_after_every_logged_window():
    case = ("tiny MLP VAE", "vae", "digits", {"latent_dim": 4, "hidden": "32", "arch": "mlp"},
            {"epochs": 2, "batch_size": 64, "lr": 1e-3, "log_every": 5})
    row, = flop_rate.efficiency([case])
    assert row["windows"] >= 4  # 2 epochs of digits' training split, a window per 5 steps
    # 8x8 digits -> 32 -> mu, logvar (8) | 4 -> 32 -> 64: forward, every weight's gradient,
    # and every layer's input gradient but the first's (the images need none)
    layers = [64 * 32, 32 * 8, 4 * 32, 32 * 64]
    assert row["flops_per_sample"] == 2 * (2 * sum(layers) + sum(layers[1:]))
    assert row["matmul_gflops"] > 0 and row["best_matmul_gflops"] > 0
    assert row["onednn_matmul_gflops"] > 0
    assert 0 < row["share"] < 10 and 0 < row["share_vs_best"] < 10 and 0 < row["share_onednn"] < 10


def test_the_onednn_clock_times_the_same_product():
    clock = flop_rate.MatmulClock(64, kernel="onednn")
    torch.testing.assert_close(clock.product(), clock.a @ clock.b.t(), rtol=1e-4, atol=1e-3)
    assert flop_rate.MatmulClock(64).product().shape == (64, 64)
    with pytest.raises(ValueError, match="unknown matmul kernel 'blas'; choose one of torch, onednn"):
        flop_rate.MatmulClock(64, kernel="blas")
