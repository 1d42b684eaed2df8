"""Why the MLP VAE trains below the matmul rate: one of its GEMMs, timed with its output
in cache and out of it, against a 1024x1024 float32 matmul in the same process.

The GEMM is the first layer's weight gradient of the 784-400-20 VAE of
``bench/train_speed.py efficiency`` (batch 128): (400 x 128) @ (128 x 784), 80 MFLOP, whose
1.25 MB output is the size of the weight. A training step writes such an output to memory
that the rest of the step (the other layers, Adam's pass over 10 MB of parameters, gradients
and moments) has pushed out of the core's 1 MB L2 cache, so the same GEMM runs as in the
"cold output" rows, not the first one.

    python bench/gemm_cache.py          # one thread
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repo's aelab, not installed
sys.path.insert(0, str(Path(__file__).resolve().parent))  # flop_rate
from flop_rate import matmul_rate  # noqa: E402


def best_seconds(call, repeats: int, blocks: int = 5) -> float:
    """The best per-call time over ``blocks`` timed blocks of ``repeats`` calls."""
    for i in range(10):
        call(i)
    best = float("inf")
    for _ in range(blocks):
        start = time.perf_counter()
        for i in range(repeats):
            call(i)
        best = min(best, (time.perf_counter() - start) / repeats)
    return best


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    matmul = matmul_rate()[0]  # the same baseline as bench/flop_rate.py's table
    grad, x = torch.randn(128, 400), torch.rand(128, 784)  # dL/dh of layer 1, the batch
    flops = 2 * 400 * 128 * 784
    outs = [torch.empty(400, 784) for _ in range(8)]
    flush = torch.empty(8 << 20)  # 32 MB, more than the caches

    def flushed(i):
        flush.fill_(1.0)
        torch.mm(grad.t(), x, out=outs[0])

    flush_alone = best_seconds(lambda i: flush.fill_(1.0), 20)
    rows = [("output in cache (the same buffer each call)",
             best_seconds(lambda i: torch.mm(grad.t(), x, out=outs[0]), 200)),
            ("cold output (4 buffers in turn, 5 MB)",
             best_seconds(lambda i: torch.mm(grad.t(), x, out=outs[i % 4]), 200)),
            ("cold output (8 buffers in turn, 10 MB)",
             best_seconds(lambda i: torch.mm(grad.t(), x, out=outs[i % 8]), 200)),
            ("a new output each call (as autograd does)",
             best_seconds(lambda i: grad.t() @ x, 200)),
            ("every cache flushed first (32 MB written)",
             best_seconds(flushed, 20) - flush_alone)]
    print(f"{torch.get_num_threads()} thread(s); 1024x1024 float32 matmul {matmul / 1e9:.1f} GFLOP/s")
    print(f"{'(400x128) @ (128x784), 80 MFLOP':<46}{'ms':>7}{'GFLOP/s':>9}{'share':>7}")
    for name, seconds in rows:
        rate = flops / seconds
        print(f"{name:<46}{seconds * 1e3:>7.3f}{rate / 1e9:>9.1f}{rate / matmul:>7.0%}")


if __name__ == "__main__":
    main()
