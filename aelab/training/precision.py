"""The number format a run trains in: ``fp32``, ``bf16`` or ``auto`` (the ``precision`` setting).

``bf16`` runs each step's forward (and with it the backward of those ops) under
``torch.autocast(device_type, dtype=torch.bfloat16)``: matmuls and convolutions in bfloat16,
while the weights, Adam's moments, the loss and everything saved stay float32 (the
trainer casts the forward's outputs to float32 and computes the loss outside autocast).

``auto`` picks bfloat16 where it pays: on a CUDA GPU that supports it, and on a CPU whose
bfloat16 matmul runs at least ``AUTO_MIN_SPEEDUP`` times its float32 one, read from the
CPU's flags (AMX tiles) or else measured once per machine (a fraction of a second) and kept
in ``~/.cache/aelab/`` keyed by CPU model and torch version. A variant that declares
``fp32_only`` (a reason) stays in float32 under ``auto`` and refuses ``bf16``.

``choose_precision`` decides when a run is created (``prepare_run`` writes the decision into
``config.json``), so a resumed run goes on in the precision it started in.
"""
from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import platform
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from aelab.config import PRECISIONS
from aelab.errors import ConfigError

AUTO_MIN_SPEEDUP = 1.5  # bfloat16 matmul rate / float32 matmul rate that makes auto pick bf16
DTYPES = {"bf16": torch.bfloat16}


@dataclass(frozen=True)
class Precision:
    """What a run asked for, what it trains in and why (``config.json``'s ``precision``)."""

    asked: str
    used: str
    reason: str

    def to_dict(self) -> dict:
        return asdict(self)


def choose_precision(asked: str, device: torch.device, model_class) -> Precision:
    """The precision a run of ``model_class`` on ``device`` trains in, with the reason; a
    ConfigError for ``bf16`` where it cannot run (an ``fp32_only`` variant, or a device
    without bfloat16)."""
    if asked not in PRECISIONS:
        raise ConfigError(f"precision must be one of: {', '.join(PRECISIONS)}; got {asked!r}")
    if asked == "fp32":
        return Precision(asked, "fp32", "float32, as asked")
    blocker = getattr(model_class, "fp32_only", "")
    if blocker:
        if asked == "bf16":
            raise ConfigError(f"{model_class.variant} cannot train in bf16 ({blocker}); "
                              f"use precision fp32 or auto")
        return Precision(asked, "fp32", f"float32: {model_class.variant} {blocker}")
    supported, why = bf16_support(device)
    if asked == "bf16":
        if not supported:
            raise ConfigError(f"precision bf16 is not available here ({why}); use fp32 or auto")
        return Precision(asked, "bf16", f"bfloat16 autocast, as asked ({why})")
    if not supported:
        return Precision(asked, "fp32", f"float32: {why}")
    if device.type == "cpu":
        speedup, source = cpu_bf16_speedup()
        if speedup is None:
            return Precision(asked, "bf16", f"bfloat16 autocast: {cpu_model()} has {source}")
        if speedup < AUTO_MIN_SPEEDUP:
            return Precision(asked, "fp32", f"float32: this CPU's bfloat16 matmul is only "
                                            f"{speedup:.2f}x its float32 one ({source}; bf16 "
                                            f"needs {AUTO_MIN_SPEEDUP}x)")
        return Precision(asked, "bf16", f"bfloat16 autocast: this CPU's bfloat16 matmul is "
                                        f"{speedup:.2f}x its float32 one ({source})")
    return Precision(asked, "bf16", f"bfloat16 autocast: {why}")


def bf16_support(device: torch.device) -> tuple[bool, str]:
    """Whether ``device`` runs bfloat16 autocast, and a few words saying why (not)."""
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
        if torch.cuda.is_bf16_supported():
            return True, f"{name} supports bfloat16"
        return False, f"{name} does not support bfloat16"
    if device.type == "cpu":
        if torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported():
            return True, f"{cpu_model()} has bfloat16 kernels"
        return False, f"{cpu_model()} has no bfloat16 kernels in this torch"
    return False, f"aelab trains in float32 on {device.type}"


def autocast(device: torch.device, used: str):
    """The context a step's forward runs in: bfloat16 autocast for ``bf16``, nothing for fp32."""
    if used == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=DTYPES[used])


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``), or the platform's processor string."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine() or "unknown CPU"


def cpu_flags() -> set[str]:
    """The CPU's feature flags (Linux), empty elsewhere."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return set(line.split(":", 1)[1].split())
    return set()


def cache_file() -> Path:
    """Where the measured speed-up is kept: ``$XDG_CACHE_HOME/aelab`` or ``~/.cache/aelab``."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "aelab" / "bf16-speedup.json"


def cpu_bf16_speedup() -> tuple[float | None, str]:
    """This CPU's bfloat16 / float32 matmul rate ratio and where it comes from: None for AMX
    tiles in the CPU's flags (enough without measuring); otherwise it is measured once per CPU
    model and torch version and read from the cache afterwards."""
    if "amx_bf16" in cpu_flags():
        return None, "AMX tiles (amx_bf16 in its flags)"
    key = f"{cpu_model()} | torch {torch.__version__}"
    path = cache_file()
    with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
        return float(json.loads(path.read_text())[key]), f"measured once, cached in {path}"
    speedup = measure_bf16_speedup()
    with contextlib.suppress(OSError, ValueError):  # a read-only home: measure again next time
        cached = json.loads(path.read_text()) if path.is_file() else {}
        cached = cached if isinstance(cached, dict) else {}
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps({**cached, key: speedup}, indent=1))
        os.replace(tmp, path)
    return speedup, "measured just now"


def measure_bf16_speedup(n: int = 1024, repeats: int = 3) -> float:
    """The best of ``repeats`` bfloat16 ``n`` x ``n`` matmuls against the best float32 one,
    interleaved, float32 through the kernel aelab's linear layers use (oneDNN where torch has
    it): float32 time / bfloat16 time. About 0.2 s on a 2-core CPU."""
    from aelab.models.nn import _ONEDNN_LINEAR, onednn_mm

    gen = torch.Generator().manual_seed(0)
    a, b = torch.randn(n, n, generator=gen), torch.randn(n, n, generator=gen)
    a16, b16 = a.bfloat16(), b.bfloat16()
    fp32 = (lambda: onednn_mm(a, b)) if _ONEDNN_LINEAR is not None else (lambda: a @ b)
    bf16 = lambda: a16 @ b16  # noqa: E731
    best = {fp32: float("inf"), bf16: float("inf")}
    for fn in (fp32, bf16):
        fn()  # warm-up: oneDNN picks and builds its kernel
    for _ in range(repeats):
        for fn in (fp32, bf16):
            start = time.perf_counter()
            fn()
            best[fn] = min(best[fn], time.perf_counter() - start)
    return best[fp32] / best[bf16]


def precise_forward(model, x: torch.Tensor, y: torch.Tensor | None, device: torch.device,
                    used: str):
    """``model(x, y)`` under ``used``'s autocast, its floating outputs cast to float32 so the
    loss (computed by the caller, outside autocast) is float32."""
    if used == "fp32":
        return model(x, y)
    with autocast(device, used):
        out = model(x, y)
    up = lambda t: t.float() if t.is_floating_point() else t  # noqa: E731
    return dataclasses.replace(out, recon=up(out.recon), code=up(out.code),
                               extras={k: up(v) for k, v in out.extras.items()})


def run_precision(config: dict, device: torch.device, model_class) -> Precision:
    """The precision of a run from its ``read_config``: the decision saved when it was created
    (a resumed run keeps it), else decided now (fp32 for a run saved before the setting)."""
    saved = config.get("precision")
    if isinstance(saved, dict) and {"asked", "used", "reason"} <= set(saved):
        return Precision(saved["asked"], saved["used"], saved["reason"])
    return choose_precision(config["train_config"].precision, device, model_class)
