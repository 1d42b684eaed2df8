"""Training speed of aelab's trainer: against the classic PyTorch VAE example loop
(``plain``, the default), against pythae 0.1.2 (``pythae``, see ``bench/pythae_vae.py``),
and as a share of the machine's matmul rate (``efficiency``, see ``bench/flop_rate.py``).

    python bench/train_speed.py efficiency
    python bench/train_speed.py precision               # bf16 against fp32 step time, same run
    python bench/train_speed.py pythae --repeats 3      # each train call in a fresh process
    python bench/train_speed.py pythae --repeats 3 --threads 1   # both libraries on 1 thread

The ``precision`` comparison: the trainer's step time (``train_run``'s logged rate, median
over its log windows) with ``precision`` fp32 and bf16, alternating in one process, for the
Burgess net on shapes32 and shapes64, the 32-64 conv net on shapes64 and the MLP VAE; the
ratio of each pair, the 1024x1024 bfloat16 / float32 matmul rate ratio and the CPU model.

    python bench/train_speed.py precision --threads 1 --repeats 3   # steadier when shared

The ``plain`` comparison:

Trains the 784-400-20 MLP VAE of pytorch/examples ``vae/main.py`` (Adam lr 1e-3,
batch 128, summed BCE + KL) on the ``mnist5k`` training split two ways:

* plain: the example's own loop, unchanged in kind: a map-style Dataset that turns
  each uint8 image into a PIL image and runs ``ToTensor()`` per item (as
  torchvision's MNIST does), ``DataLoader(batch_size=128, shuffle=True)``,
  ``.to(device)`` per batch and ``loss.item()`` every step;
* aelab: ``prepare_run("vae", "mnist5k", hidden=400, latent_dim=20, ...)`` then
  ``train_run``, the same architecture with a batch-mean loss.

It reports training samples/second (wall time of the training epochs only, after
a discarded 1-epoch warm-up of each; for aelab also the rate aelab logs itself),
the ratio aelab/plain, and the held-out loss of both models computed by one
function: mean over the 750 test images of summed BCE + KL, with z = mu and with
z = mu + sigma * eps for a fixed eps. Targets: >= 1.3x on CPU with held-out loss
within 2%; >= 5x on CUDA.

    python bench/train_speed.py                      # 10 epochs, device auto
    python bench/train_speed.py --epochs 5 --repeats 3 --device cpu --json
    python bench/train_speed.py --threads 1 --repeats 3   # steadier on a shared 2-core VM

Timings are wall clock; on a shared VM, multi-threaded torch ops can stall for
seconds when the host takes a core, so use --repeats (median) and compare the
per-repeat numbers in --json before trusting one run.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn, optim
from torch.nn import functional as F
from torchvision import transforms

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repo's aelab, not installed
sys.path.insert(0, str(Path(__file__).resolve().parent))  # flop_rate
from aelab.data.datasets import load_dataset
from aelab.runs.folder import load_model, read_config, read_metrics
from aelab.runs.train import train_run
from aelab.training.setup import prepare_run, resolve_device

BATCH, LR, LATENT = 128, 1e-3, 20


# --- the plain loop: model, loss and train() copied from pytorch/examples vae/main.py
# (https://github.com/pytorch/examples/blob/main/vae/main.py, BSD-3-Clause) ---
class VAE(nn.Module):
    def __init__(self):  # the example's code, kept as written
        super(VAE, self).__init__()
        self.fc1 = nn.Linear(784, 400)
        self.fc21 = nn.Linear(400, 20)
        self.fc22 = nn.Linear(400, 20)
        self.fc3 = nn.Linear(20, 400)
        self.fc4 = nn.Linear(400, 784)

    def encode(self, x):
        h1 = F.relu(self.fc1(x))
        return self.fc21(h1), self.fc22(h1)

    def reparameterize(self, mu, logvar):
        std = torch.exp(0.5 * logvar)
        eps = torch.randn_like(std)
        return mu + eps * std

    def decode(self, z):
        h3 = F.relu(self.fc3(z))
        return torch.sigmoid(self.fc4(h3))

    def forward(self, x):
        mu, logvar = self.encode(x.view(-1, 784))
        z = self.reparameterize(mu, logvar)
        return self.decode(z), mu, logvar


# Reconstruction + KL divergence losses summed over all elements and batch
def loss_function(recon_x, x, mu, logvar):
    BCE = F.binary_cross_entropy(recon_x, x.view(-1, 784), reduction='sum')
    KLD = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
    return BCE + KLD


class MNISTLike(torch.utils.data.Dataset):
    """uint8 (N, 28, 28) images served one at a time the way torchvision's MNIST does."""

    def __init__(self, images, labels):
        self.images, self.labels, self.transform = images, labels, transforms.ToTensor()

    def __len__(self):
        return len(self.images)

    def __getitem__(self, index):
        img = Image.fromarray(self.images[index], mode="L")
        return self.transform(img), int(self.labels[index])


def train_plain(ds, device, epochs, seed=0):
    """The example's main(): returns (trained model, seconds spent in the epochs)."""
    torch.manual_seed(seed)
    images = np.round(ds.x_train[:, 0] * 255).astype(np.uint8)  # what the original file holds
    kwargs = {"num_workers": 1, "pin_memory": True} if device.type == "cuda" else {}
    train_loader = torch.utils.data.DataLoader(MNISTLike(images, ds.y_train), batch_size=BATCH,
                                               shuffle=True, **kwargs)
    model = VAE().to(device)
    optimizer = optim.Adam(model.parameters(), lr=LR)
    start = time.perf_counter()
    for epoch in range(1, epochs + 1):  # the example's train(epoch)
        model.train()
        train_loss = 0
        for batch_idx, (data, _) in enumerate(train_loader):
            data = data.to(device)
            optimizer.zero_grad()
            recon_batch, mu, logvar = model(data)
            loss = loss_function(recon_batch, data, mu, logvar)
            loss.backward()
            train_loss += loss.item()
            optimizer.step()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return model, time.perf_counter() - start


def train_aelab(device, epochs, seed=0):
    """aelab's trainer: returns (model, seconds of train_run, aelab's logged samples/s)."""
    with tempfile.TemporaryDirectory() as runs_dir:
        run_dir = prepare_run("vae", "mnist5k", {"latent_dim": LATENT, "hidden": "400",
                                                 "arch": "mlp", "likelihood": "bernoulli"},
                              {"epochs": epochs, "batch_size": BATCH, "lr": LR, "seed": seed,
                               "device": str(device)}, runs_dir=runs_dir)
        start = time.perf_counter()
        status = train_run(run_dir)
        seconds = time.perf_counter() - start
        if status["state"] != "done":
            raise SystemExit(f"aelab run ended {status['state']}: {status.get('error')}")
        logged = [row["samples_per_second"] for row in read_metrics(run_dir)]
        return load_model(run_dir, device), seconds, statistics.median(logged)


@torch.no_grad()
def held_out(posterior, logits, x, eps):
    """Mean over images of summed BCE + KL, with z = mu and with z = mu + sigma * eps."""
    mu, logvar = posterior(x)
    kl = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp(), dim=1)
    out = {}
    for name, z in (("mu", mu), ("sampled", mu + torch.exp(0.5 * logvar) * eps)):
        bce = F.binary_cross_entropy_with_logits(logits(z), x.view(len(x), -1), reduction="none")
        out[name] = (bce.sum(1) + kl).mean().item()
    return out


def evaluate_both(plain, aelab, ds, device):
    x = torch.from_numpy(ds.x_test).to(device)
    eps = torch.randn(len(x), LATENT, generator=torch.Generator().manual_seed(1234)).to(device)
    plain.eval()
    p = held_out(lambda xb: plain.encode(xb.view(-1, 784)),
                 lambda z: plain.fc4(F.relu(plain.fc3(z))), x, eps)
    a = held_out(aelab.posterior, lambda z: aelab.decode(z).flatten(1), x, eps)
    return p, a


def compare_pythae(epochs: int, repeats: int, threads: int = 0) -> dict:
    """pythae and aelab train calls, each in a fresh process with ``threads`` torch threads
    (0: torch's default), interleaved ``repeats`` times; the median whole-call seconds (wall
    and CPU) of each and their ratios."""
    import subprocess

    script = str(Path(__file__).with_name("pythae_vae.py"))
    runs = {"pythae": [], "aelab": []}
    for _ in range(repeats):
        for who in runs:
            out = subprocess.run([sys.executable, script, who, str(epochs), str(threads)],
                                 check=True, capture_output=True, text=True).stdout
            runs[who].append(json.loads(out.strip().splitlines()[-1]))
    med = {who: statistics.median(r["seconds"] for r in rows) for who, rows in runs.items()}
    cpu = {who: statistics.median(r["cpu_seconds"] for r in rows) for who, rows in runs.items()}
    return {"epochs": epochs, "repeats": repeats, "images": runs["aelab"][0]["images"],
            "threads": runs["aelab"][0]["threads"], "pythae_seconds": med["pythae"],
            "aelab_seconds": med["aelab"], "ratio": med["pythae"] / med["aelab"],
            "pythae_cpu_seconds": cpu["pythae"], "aelab_cpu_seconds": cpu["aelab"],
            "cpu_ratio": cpu["pythae"] / cpu["aelab"],
            "aelab_train_seconds": statistics.median(r["train_seconds"] for r in runs["aelab"]),
            "per_repeat": {who: [r["seconds"] for r in rows] for who, rows in runs.items()}}


# (name, variant, dataset, model settings, batch size): the conv nets, and the MLP
PRECISION_CASES = (
    ("Burgess beta-VAE, shapes32, batch 128", "betavae", "shapes32",
     {"arch": "burgess", "latent_dim": 10}, 128),
    ("Burgess beta-VAE, shapes64, batch 128", "betavae", "shapes64",
     {"arch": "burgess", "latent_dim": 10}, 128),
    ("conv beta-VAE 32-64, shapes64, batch 64", "betavae", "shapes64",
     {"arch": "conv", "latent_dim": 10}, 64),
    ("MLP VAE 784-400-20, mnist5k, batch 128", "vae", "mnist5k",
     {"arch": "mlp", "hidden": "400", "latent_dim": 20}, 128),
)


def step_ms(variant, dataset, model, batch, precision, seconds) -> float:
    """Median milliseconds per optimizer step of the real trainer (``train_run``) over its
    log windows, the first (warm-up) window left out, in ``seconds`` of training."""
    with tempfile.TemporaryDirectory() as runs_dir:
        run_dir = prepare_run(variant, dataset, model,
                              {"epochs": 1000, "batch_size": batch, "max_minutes": seconds / 60,
                               "log_every": 5, "precision": precision, "device": "cpu",
                               "caches": False, "seed": 0}, runs_dir=runs_dir)
        if read_config(run_dir)["precision"]["used"] != precision:
            raise SystemExit(f"{variant} did not train in {precision}: "
                             f"{read_config(run_dir)['precision']['reason']}")
        status = train_run(run_dir)
        if status["state"] != "done":
            raise SystemExit(f"{variant} {precision} ended {status['state']}: {status.get('error')}")
        rates = [row["samples_per_second"] for row in read_metrics(run_dir) if "loss" in row]
        if not rates:
            raise SystemExit(f"{variant} {precision}: no log window in {seconds:g} s of training "
                             f"({status['step']} steps); give more --seconds")
        return 1e3 * batch / statistics.median(rates[1:] or rates)


def matmul_rates(n: int = 1024, repeats: int = 10) -> dict:
    """GFLOP/s of an n x n matmul: float32 through torch's ``@`` (MKL) and oneDNN, bfloat16
    through ``@`` (oneDNN); the best of ``repeats`` each, interleaved."""
    from aelab.models.nn import onednn_mm

    a, b = torch.randn(n, n), torch.randn(n, n)
    a16, b16 = a.bfloat16(), b.bfloat16()
    kernels = {"fp32_mkl": lambda: a @ b, "fp32_onednn": lambda: onednn_mm(a, b),
               "bf16": lambda: a16 @ b16}
    best = dict.fromkeys(kernels, float("inf"))
    for fn in kernels.values():
        fn()
    for _ in range(repeats):
        for name, fn in kernels.items():
            start = time.perf_counter()
            fn()
            best[name] = min(best[name], time.perf_counter() - start)
    return {name: 2 * n ** 3 / t / 1e9 for name, t in best.items()}


def compare_precision(repeats: int, seconds: float) -> dict:
    """Each case's trainer step in fp32 and bf16, alternating ``repeats`` times in this
    process (median of each), the ratio fp32 / bf16, the bf16 / fp32 matmul rate ratio and
    the CPU it ran on."""
    from aelab.training.precision import cpu_flags, cpu_model

    rows = []
    for name, variant, dataset, model, batch in PRECISION_CASES:
        load_dataset(dataset)  # rendered or read before any timing
        times = {"fp32": [], "bf16": []}
        for _ in range(repeats):
            for precision in times:
                times[precision].append(step_ms(variant, dataset, model, batch, precision, seconds))
        med = {p: statistics.median(t) for p, t in times.items()}
        rows.append({"case": name, "fp32_ms": med["fp32"], "bf16_ms": med["bf16"],
                     "speedup": med["fp32"] / med["bf16"], "per_repeat": times})
    rates = matmul_rates()
    flags = sorted(cpu_flags() & {"avx512_bf16", "amx_bf16", "amx_tile", "avx512f", "avx2"})
    return {"cpu": cpu_model(), "bf16_flags": flags, "threads": torch.get_num_threads(),
            "torch": torch.__version__, "repeats": repeats, "seconds_per_run": seconds,
            "matmul_gflops": rates, "matmul_bf16_vs_fp32": rates["bf16"] / rates["fp32_onednn"],
            "matmul_bf16_vs_fp32_mkl": rates["bf16"] / rates["fp32_mkl"], "cases": rows}


def print_precision(result: dict) -> None:
    print(f"CPU {result['cpu']} (flags: {', '.join(result['bf16_flags']) or 'none of note'}), "
          f"{result['threads']} threads, torch {result['torch']}, median of {result['repeats']} "
          f"runs of {result['seconds_per_run']:g} s each, fp32 and bf16 alternating")
    print(f"{'case':<42}{'fp32 ms':>9}{'bf16 ms':>9}{'bf16 speed-up':>15}")
    for row in result["cases"]:
        print(f"{row['case']:<42}{row['fp32_ms']:>9.1f}{row['bf16_ms']:>9.1f}{row['speedup']:>14.2f}x")
    rates = result["matmul_gflops"]
    print(f"1024x1024 matmul: bf16 {rates['bf16']:.0f} GFLOP/s, fp32 {rates['fp32_onednn']:.0f} "
          f"(oneDNN, what aelab's layers use) / {rates['fp32_mkl']:.0f} (torch's @, MKL): bf16 "
          f"{result['matmul_bf16_vs_fp32']:.2f}x oneDNN's fp32, "
          f"{result['matmul_bf16_vs_fp32_mkl']:.2f}x MKL's")
    print("target (issue 30): the conv nets at least 1.6x their fp32 step on an AMX CPU")


def other_parts(args) -> None:
    """``efficiency``, ``pythae`` or ``precision``: print a table (or one JSON object with
    --json)."""
    if args.part == "precision":
        result = compare_precision(args.repeats, args.seconds)
        print(json.dumps(result)) if args.json else print_precision(result)
        return
    if args.part == "efficiency":
        from flop_rate import efficiency

        rows = efficiency()
        if args.json:
            print(json.dumps(rows))
            return
        print(f"{'case':<42}{'MFLOP/sample':>13}{'samples/s':>11}{'GFLOP/s':>9}{'matmul':>8}{'share':>7}"
              f"{'best matmul':>13}{'vs best':>9}{'cpu share':>11}{'oneDNN':>8}{'vs oneDNN':>11}")
        for r in rows:
            cpu_share = f"{r['cpu_share']:>11.0%}" if "cpu_share" in r else f"{'-':>11}"
            print(f"{r['case']:<42}{r['flops_per_sample'] / 1e6:>13.2f}{r['samples_per_s']:>11.0f}"
                  f"{r['gflops']:>9.1f}{r['matmul_gflops']:>8.1f}{r['share']:>7.0%}"
                  f"{r['best_matmul_gflops']:>13.1f}{r['share_vs_best']:>9.0%}{cpu_share}"
                  f"{r['onednn_matmul_gflops']:>8.1f}{r['share_onednn']:>11.0%}")
        print("matmul: torch's @ (MKL) right after each window, median; share: each window against "
              "it (median); vs best: the median window against the best of the run; oneDNN, vs "
              "oneDNN: the same product through oneDNN's kernel, which aelab's linear layers use "
              "(about 2x MKL's on AMD AVX-512 CPUs, where MKL runs AVX2 code)")
        print("targets: MLP >= 60%, conv on 64x64 shapes >= 70% of the 1024x1024 float32 matmul rate")
        return
    result = compare_pythae(args.epochs, args.repeats, args.threads)
    if args.json:
        print(json.dumps(result))
        return
    print(f"{args.epochs} epochs x {result['images']} images, {result['threads']} threads, "
          f"median of {args.repeats}, whole train call incl. start-up, fresh process each")
    print(f"pythae 0.1.2 {result['pythae_seconds']:.2f} s, aelab {result['aelab_seconds']:.2f} s "
          f"(of which training loop {result['aelab_train_seconds']:.2f} s): aelab "
          f"{result['ratio']:.2f}x faster (target >= 2x)")
    print(f"CPU time of the same calls: pythae {result['pythae_cpu_seconds']:.2f} s, aelab "
          f"{result['aelab_cpu_seconds']:.2f} s: {result['cpu_ratio']:.2f}x (the steadier figure "
          f"on a loaded machine with --threads 1)")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("part", nargs="?", choices=("plain", "pythae", "efficiency", "precision"),
                    default="plain")
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    ap.add_argument("--repeats", type=int, default=1, help="timed repeats; the median is reported")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch's default)")
    ap.add_argument("--seconds", type=float, default=8.0,
                    help="precision: seconds of training per timed run")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.part != "plain":
        return other_parts(args)
    device = resolve_device(args.device)
    threads = torch.get_num_threads()
    ds = load_dataset("mnist5k")  # loaded (and cached) before any timing
    n = len(ds.x_train)

    train_plain(ds, device, 1)  # warm-up, discarded
    train_aelab(device, 1)
    plain_sps, aelab_sps, aelab_logged, losses = [], [], [], []
    for _ in range(args.repeats):
        plain, t_plain = train_plain(ds, device, args.epochs)
        aelab, t_aelab, logged = train_aelab(device, args.epochs)
        if torch.get_num_threads() != threads:  # e.g. AELAB_THREADS set in the environment
            raise SystemExit(f"aelab changed torch threads {threads} -> {torch.get_num_threads()}; "
                             f"unset AELAB_THREADS or pass the same --threads")
        plain_sps.append(n * args.epochs / t_plain)
        aelab_sps.append(n * args.epochs / t_aelab)
        aelab_logged.append(logged)
        losses.append(evaluate_both(plain, aelab, ds, device))

    med = statistics.median
    ratio = med(aelab_sps) / med(plain_sps)
    held = {f"{who}_{z}": med(loss[i][z] for loss in losses)
            for i, who in enumerate(("plain", "aelab")) for z in ("mu", "sampled")}
    rel = {z: (held[f"aelab_{z}"] - held[f"plain_{z}"]) / held[f"plain_{z}"]
           for z in ("mu", "sampled")}
    target = 5.0 if device.type == "cuda" else 1.3
    meets = ratio >= target and (device.type == "cuda" or max(map(abs, rel.values())) <= 0.02)
    result = {"device": device.type, "threads": threads, "epochs": args.epochs,
              "repeats": args.repeats, "train_images": n, "plain_samples_per_s": med(plain_sps),
              "aelab_samples_per_s": med(aelab_sps), "ratio": ratio,
              "aelab_logged_samples_per_s": med(aelab_logged), "per_repeat": {
                  "plain_samples_per_s": plain_sps, "aelab_samples_per_s": aelab_sps},
              "held_out": held, "held_out_rel_diff": rel, "target_ratio": target,
              "meets_target": meets}
    if args.json:
        print(json.dumps(result))
        return result
    print(f"device {device.type}, {threads} threads, {args.epochs} epochs x {n} images, "
          f"median of {args.repeats}")
    print(f"{'':8}{'samples/s':>12}{'held-out z=mu':>16}{'z sampled':>12}")
    for who, sps in (("plain", med(plain_sps)), ("aelab", med(aelab_sps))):
        print(f"{who:8}{sps:12.0f}{held[who + '_mu']:16.2f}{held[who + '_sampled']:12.2f}")
    print(f"aelab's own logged rate (median of log rows): {med(aelab_logged):.0f} samples/s")
    print(f"ratio aelab/plain: {ratio:.2f}x; held-out relative difference: "
          f"z=mu {rel['mu']:+.2%}, sampled {rel['sampled']:+.2%}")
    print("target: " + ("at least 5x on CUDA" if device.type == "cuda" else
                        "at least 1.3x on CPU with held-out loss within 2%")
          + f" -> {'met' if meets else 'NOT met'}")
    return result


if __name__ == "__main__":
    main()
