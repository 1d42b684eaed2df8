"""The GPU check: one command that exercises every CUDA path the product has, before anyone
relies on it (CUDA code that has never executed is the likeliest first-run failure).

    python bench/gpu_check.py                       # on a machine with a CUDA GPU (< 8 min)
    python bench/gpu_check.py --device cpu --quick  # the same checks on the CPU (< 60 s; CI)

Checks, each a row of the printed table and of the JSON report (``--out``):

- ``resume <variant>``: every variant trains a few hundred steps (``--quick``: a few dozen) on
  the device with the real trainer (``train_run``), and a second run of the same settings,
  stopped half-way and resumed, ends on exactly the same weights (deterministic kernels on);
- ``background run``: the supervisor (``RunManager``, a separate process) trains a run on the
  device while the other checks go on; then the Runs and Traversal pages (``AppTest``) load it;
- ``precision <p>``: the Burgess beta-VAE trained by the trainer with ``precision`` fp32 and
  bf16 (the setting), step time and ratio to fp32, finite losses; on CUDA also a float16
  autocast loop with a gradient scaler (not a product setting: its speed for comparison);
- ``throughput``: the MLP VAE trained by the trainer on the device and on the CPU, in this run;
- ``recipe <demo>``: a few steps of each demo run's recipe (``aelab/training/demo_runs.py``;
  ``--quick``: two of them), steps per second and the minutes the whole recipe would take.

Exit status 1 if any check failed (the table says which and why).
"""
from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

# deterministic cuBLAS, for exact resumes: set before CUDA starts
os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")

import torch  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from aelab.data.datasets import load_dataset  # noqa: E402
from aelab.models import build_model, get_variant, list_variants  # noqa: E402
from aelab.runs.folder import read_config, read_metrics, read_tensors  # noqa: E402
from aelab.runs.local import RunManager, supervisor_running  # noqa: E402
from aelab.runs.train import train_run  # noqa: E402
from aelab.training.demo_runs import DEMOS, HIDDEN, TRAIN  # noqa: E402
from aelab.training.setup import device_label, prepare_run  # noqa: E402

QUICK_RECIPES = ("demo-vae", "demo-betatcvae-shapes")


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda", help="cuda (default), cuda:N or cpu")
    parser.add_argument("--quick", action="store_true", help="fewer steps (the CI's run)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "gpu_check.json",
                        help="where the JSON report goes")
    return parser.parse_args(argv)


def check_device(name: str) -> torch.device:
    """The device asked for, or SystemExit with one sentence when it is not there."""
    try:
        device = torch.device(name)
    except RuntimeError:
        device = None
    if device is None or device.type not in ("cuda", "cpu"):
        raise SystemExit(f"gpu_check: --device must be cuda, cuda:N or cpu, not {name!r}")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit(f"gpu_check: --device {name} asked for CUDA, but torch "
                         f"{torch.__version__} sees no CUDA GPU here; run it on a machine with "
                         f"one, or check the CPU path with --device cpu --quick")
    if device.type == "cuda" and (device.index or 0) >= torch.cuda.device_count():
        raise SystemExit(f"gpu_check: --device {name} does not exist; this machine has "
                         f"{torch.cuda.device_count()} CUDA device(s)")
    return device


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class StopAfter:
    """``progress`` and ``should_stop`` callbacks for ``train_run`` that stop a run soon after
    it logged step ``step``: the trainer asks ``should_stop`` every 0.2 s, so the callback
    waits that long once (outside the timed window) to make the next step ask."""

    def __init__(self, step: int):
        self.step, self.reached = step, False

    def progress(self, status: dict) -> None:
        if not self.reached and status.get("state") == "running" and status["step"] >= self.step:
            self.reached = True
            time.sleep(0.25)

    def should_stop(self) -> bool:
        return self.reached


# --- checks: each returns a dict with "ok", what it measured and "why" when not ok ---
def variant_resumes(variant: str, device: torch.device, root: Path, quick: bool) -> dict:
    """Train ``variant`` whole, and again stopped half-way then resumed: the same weights?"""
    if get_variant(variant).factor_use:  # the 64x64 sprites' fixed split: 20,000 images
        dataset, train = "shapes", {"epochs": 1, "batch_size": 512 if quick else 64}
        model = {"latent_dim": 6, "hidden": "32"} if quick else {"latent_dim": 6, "arch": "conv",
                                                                  "hidden": "8,16"}
        model |= {"labels": 512, "label_batch": 16} if variant == "semivae" else {}
    else:  # digits: 1,437 training images
        dataset, train = "digits", {"epochs": 1 if quick else 4, "batch_size": 48 if quick else 16}
        model = {"latent_dim": 4, "hidden": "32", **({"k": 2} if variant == "ksparse" else {})}
    train |= {"device": str(device), "seed": 0, "caches": False, "log_every": 5}
    whole, parts = (prepare_run(variant, dataset, model, train, out=root / f"{variant}-{part}")
                    for part in ("whole", "parts"))
    start = time.perf_counter()
    done = train_run(whole)
    seconds = time.perf_counter() - start
    stop = StopAfter(max(1, done["step"] // 2))
    first = train_run(parts, progress=stop.progress, should_stop=stop.should_stop)
    second = train_run(parts, resume=True)
    a, b = (read_tensors(run / "model.safetensors")[0] for run in (whole, parts))
    diff = max(float((a[k] - b[k]).abs().max()) for k in a)
    losses = [r["loss"] for r in read_metrics(whole) if "loss" in r]
    finite = bool(losses) and all(math.isfinite(v) for v in losses)
    ok = (done["state"] == "done" and first["state"] == "cancelled" and second["state"] == "done"
          and diff == 0.0 and finite)
    return {"ok": ok, "dataset": dataset, "steps": done["step"], "stopped_at": first.get("step"),
            "seconds": round(seconds, 2), "steps_per_second": round(done["step"] / seconds, 1),
            "device": done.get("device"), "max_weight_difference": diff,
            "why": "" if ok else (f"states {done['state']}/{first['state']}/{second['state']} "
                                  f"({done.get('error') or second.get('error') or ''}), "
                                  f"max |weight difference| {diff:.3g}, losses finite: {finite}")}


def submit_background_run(device: torch.device, root: Path, quick: bool) -> tuple[Path, str]:
    """Queue a run for the supervisor (a process of its own) to train on the device."""
    runs = root / "background"
    manager = RunManager(runs)
    run_id = manager.submit("vae", "digits", {"latent_dim": 4, "hidden": "32"},
                            {"epochs": 2 if quick else 20, "device": str(device), "caches": False})
    return runs, run_id


def background_run_and_pages(runs: Path, run_id: str, timeout: float = 240.0) -> dict:
    """The supervisor's run ends done on the device; the Runs and Traversal pages load it."""
    from streamlit.testing.v1 import AppTest

    try:
        status = RunManager(runs).wait(run_id, timeout=timeout)
    except Exception as exc:  # noqa: BLE001 - a check reports, it does not stop the others
        return {"ok": False, "why": f"waiting for the background run: {type(exc).__name__}: {exc}"}
    if status.get("state") != "done":
        return {"ok": False, "state": status.get("state"),
                "why": f"the background run ended {status.get('state')}: {status.get('error')}"}
    problems, shown = [], {}
    saved = os.environ.get("AELAB_RUNS")
    os.environ["AELAB_RUNS"] = str(runs)
    try:
        for page, query in (("pages/runs.py", {}), ("pages/traversal.py", {"run": run_id})):
            at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
            at.switch_page(page)
            at.query_params.update(query)
            at.run()
            problems += [f"{page}: {e.value}" for e in (*at.exception, *at.error)]
            shown[page] = run_id in page_text(at)
    finally:
        os.environ.pop("AELAB_RUNS") if saved is None else os.environ.update(AELAB_RUNS=saved)
    missing = [page for page, seen in shown.items() if not seen]
    ok = not problems and not missing
    return {"ok": ok, "device": status.get("device"), "steps": status.get("step"),
            "train_seconds": round(status.get("train_seconds") or 0.0, 2),
            "why": "; ".join(problems)[:300] or (f"{', '.join(missing)} did not show the run"
                                                 if missing else "")}


def page_text(at) -> str:
    """What an ``AppTest`` page shows as text: markdown, captions, tables, select boxes."""
    parts = [str(e.value) for kind in ("markdown", "caption", "title", "header", "subheader")
             for e in at.get(kind)]
    parts += [e.value.to_string() for e in at.dataframe]
    parts += [f"{e.value} {' '.join(map(str, e.options))}" for e in at.selectbox]
    return " ".join(parts)


def precision_steps(device: torch.device, root: Path, quick: bool) -> list[dict]:
    """The Burgess beta-VAE trained by the trainer in fp32 and bf16 (``precision``), and on
    CUDA a float16 autocast loop; step time, its ratio to fp32, finite losses."""
    dataset = "shapes32"
    steps, batch = (10, 32) if quick else (200, 128)
    rows, base = [], None
    for precision in ("fp32", "bf16"):
        try:
            run = prepare_run("betavae", dataset, {"arch": "burgess", "latent_dim": 10},
                              {"epochs": 1, "batch_size": batch, "device": str(device),
                               "precision": precision, "caches": False, "log_every": 5},
                              out=root / f"precision-{precision}")
        except Exception as exc:  # noqa: BLE001 - e.g. a GPU without bfloat16
            rows.append({"precision": precision, "ok": False, "why": f"{exc}"[:200]})
            continue
        stop = StopAfter(steps)
        status = train_run(run, progress=stop.progress, should_stop=stop.should_stop)
        rates = [r["samples_per_second"] for r in read_metrics(run) if "loss" in r]
        losses = [r["loss"] for r in read_metrics(run) if "loss" in r]
        used = read_config(run)["precision"]["used"]
        ms = 1e3 * batch / statistics.median(rates[1:] or rates) if rates else float("nan")
        base = base or ms
        ok = (status["state"] == "cancelled" and used == precision and bool(losses)
              and all(math.isfinite(v) for v in losses))
        rows.append({"precision": precision, "ok": ok, "step_ms": round(ms, 2),
                     "speedup_vs_fp32": round(base / ms, 2), "steps": status.get("step"),
                     "why": "" if ok else f"state {status['state']} ({status.get('error')}), "
                                          f"used {used}, losses {losses[:3]}"})
    if device.type == "cuda":
        rows.append(fp16_loop(device, batch, 20 if quick else 100, base))
    return rows


def fp16_loop(device: torch.device, batch: int, steps: int, base: float | None) -> dict:
    """Float16 autocast with a gradient scaler on the Burgess beta-VAE (outside the trainer)."""
    torch.manual_seed(0)
    model = build_model("betavae", arch="burgess", latent_dim=10, input_shape=(1, 32, 32)).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    scaler = torch.amp.GradScaler("cuda")
    x = torch.from_numpy(load_dataset("shapes32").x_train[:batch]).to(device).float()
    losses = []

    def step():
        with torch.autocast("cuda", dtype=torch.float16):
            out = model(x)
        out.recon, out.code = out.recon.float(), out.code.float()
        out.extras = {k: v.float() for k, v in out.extras.items()}
        loss, _ = model.loss(x, out)
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        return loss.detach()

    try:
        step()
        synchronize(device)
        start = time.perf_counter()
        losses = [step() for _ in range(steps)]
        synchronize(device)
        ms = (time.perf_counter() - start) / steps * 1e3
    except RuntimeError as exc:
        return {"precision": "fp16", "ok": False, "why": str(exc).splitlines()[0][:200]}
    values = [float(v) for v in losses]
    ok = all(math.isfinite(v) for v in values)
    return {"precision": "fp16", "ok": ok, "step_ms": round(ms, 2), "steps": steps,
            "speedup_vs_fp32": round(base / ms, 2) if base else None,
            "note": "autocast + GradScaler loop, not a precision setting",
            "why": "" if ok else f"loss not finite: {values[:5]}"}


def throughput_against_cpu(device: torch.device, root: Path, quick: bool) -> dict:
    """Samples per second of the trainer on the device and on the CPU: same model and run."""
    rates = {}
    for where in dict.fromkeys([str(device), "cpu"]):
        run = prepare_run("vae", "mnist5k", {"latent_dim": 20, "hidden": "400"},
                          {"epochs": 1 if quick else 3, "device": where, "caches": False,
                           "seed": 0, "log_every": 10}, out=root / f"throughput-{where.replace(':', '-')}")
        status = train_run(run)
        logged = [r["samples_per_second"] for r in read_metrics(run) if "loss" in r]
        rates[where] = statistics.median(logged[1:] or logged)
        if status["state"] != "done":
            return {"ok": False, "why": f"the {where} run ended {status['state']}: {status.get('error')}"}
    return {"ok": True, "samples_per_second": {k: round(v) for k, v in rates.items()},
            "ratio_to_cpu": round(rates[str(device)] / rates["cpu"], 2), "why": ""}


def recipe_speed(name: str, device: torch.device, root: Path, quick: bool) -> dict:
    """A few steps of a demo run's recipe on the device: steps/s and the whole recipe's minutes."""
    from aelab.models import get_variant as variant_class

    variant, dataset, params, train = DEMOS[name]
    off = {"free_bits": 0.0} if hasattr(variant_class(variant).Config, "free_bits") else {}
    steps = 4 if quick else 40
    run = prepare_run(variant, dataset, {"hidden": HIDDEN, **off, **params},
                      {**TRAIN, **train, "device": str(device), "caches": False,
                       "live_mig_seconds": 0.0, "log_every": 2 if quick else 10},
                      out=root / f"recipe-{name}")
    stop = StopAfter(steps)
    status = train_run(run, progress=stop.progress, should_stop=stop.should_stop)
    rates = [r["samples_per_second"] for r in read_metrics(run) if "loss" in r]
    ok = status["state"] in ("cancelled", "done") and bool(rates)
    if not ok:
        return {"ok": False, "why": f"ended {status['state']}: {status.get('error')}"}
    per_second = statistics.median(rates[1:] or rates) / read_config(run)["train_config"].batch_size
    total = status["total_steps"]
    return {"ok": True, "steps_timed": status["step"], "steps_per_second": round(per_second, 1),
            "recipe_steps": total, "recipe_minutes": round(total / per_second / 60, 1), "why": ""}


def guarded(check, *args) -> dict:
    """A check's row; an exception becomes a failed row (the other checks still run)."""
    try:
        return check(*args)
    except Exception as exc:  # noqa: BLE001
        return {"ok": False, "why": f"{type(exc).__name__}: {exc}"[:300]}


def main(argv=None) -> int:
    args = parse_args(argv)
    device = check_device(args.device)
    started = time.perf_counter()
    if device.type == "cuda":  # exact resumes need deterministic kernels
        torch.backends.cudnn.benchmark = False
        torch.backends.cudnn.deterministic = True
        torch.use_deterministic_algorithms(True, warn_only=True)
    report = {"device": device_label(device), "torch": torch.__version__,
              "cuda": torch.version.cuda, "quick": args.quick, "checks": {}}
    checks = report["checks"]
    with tempfile.TemporaryDirectory(prefix="aelab-gpu-check-") as tmp:
        root = Path(tmp)
        runs, run_id = submit_background_run(device, root, args.quick)  # trains meanwhile
        for variant in list_variants():
            checks[f"resume {variant}"] = guarded(variant_resumes, variant, device, root, args.quick)
        checks["background run + pages"] = guarded(background_run_and_pages, runs, run_id)
        rows = guarded(precision_steps, device, root, args.quick)
        for row in [rows] if isinstance(rows, dict) else rows:
            checks[f"precision {row.get('precision', '')}".strip()] = row
        checks["throughput vs CPU"] = guarded(throughput_against_cpu, device, root, args.quick)
        for name in QUICK_RECIPES if args.quick else DEMOS:
            checks[f"recipe {name}"] = guarded(recipe_speed, name, device, root, args.quick)
        deadline = time.monotonic() + 30  # the supervisor leaves once idle (5 s)
        while supervisor_running(runs) and time.monotonic() < deadline:
            time.sleep(0.25)
    report["seconds"] = round(time.perf_counter() - started, 1)
    report["ok"] = all(row["ok"] for row in checks.values())
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1))
    print(f"device: {report['device']} (torch {report['torch']}, CUDA {report['cuda']}), "
          f"{report['seconds']} s")
    for name, row in checks.items():
        shown = {k: v for k, v in row.items() if k not in ("ok", "why")}
        print(f"{'ok  ' if row['ok'] else 'FAIL'} {name:32s} {json.dumps(shown)}"
              + (f"  <- {row['why']}" if not row["ok"] else ""))
    print(f"report: {args.out}")
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
