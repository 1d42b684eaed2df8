"""Run folders: the only interface between the trainer, the CLI and the app.

``<runs_dir>/<run_id>/`` holds ``config.json``, ``model.safetensors``,
``train_state.safetensors`` (optimizer and RNG state for resuming),
``metrics.jsonl``, ``status.json`` and ``probes.safetensors`` (the codes of a fixed probe
set of test images through training; its format in ``aelab.runs.probes``). Every file is written to a temporary
name in the same folder and renamed into place, so a run killed at any
instant leaves either the old file or the new one, never half of one.
Nothing here unpickles: weights are safetensors, everything else JSON.
"""
from __future__ import annotations

import errno
import json
import math
import os
import platform
import secrets
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aelab.config import TrainConfig
from aelab.errors import AelabError, RunError

STATES = ("queued", "running", "done", "failed", "cancelled", "interrupted")
FINISHED = ("done", "failed", "cancelled", "interrupted")
if TYPE_CHECKING:  # torch is imported lazily so the supervisor process stays small
    import torch

# --- the files a run folder holds: every name aelab writes into one, here and only here ---
CONFIG = "config.json"
STATUS = "status.json"
METRICS = "metrics.jsonl"
WEIGHTS = "model.safetensors"
TRAIN_STATE = "train_state.safetensors"  # optimizer and RNG state for resuming
CANCEL = "cancel"                        # the stop marker (``stop_file``)
WORKER_LOG = "worker.log"                # a background worker's output
OWNER = "owner.json"                     # who may change the run (runs.ownership)
EVAL = "eval.json"                       # the caches (metrics.results)
CACHE = "cache.safetensors"
SCORES = "scores.json"
DISENTANGLEMENT = "disentangle.json"
DISENTANGLE_PID = ".disentangle.pid"     # background scorers (metrics.background)
DISENTANGLE_LOG = "disentangle.log"
LATENT_PID = ".latent-scores.pid"
LATENT_LOG = "latent-scores.log"
PROBES = "probes.safetensors"            # the probe set's codes through training (runs.probes)
TSNE_PERPLEXITIES = (5, 15, 30, 50)  # the t-SNE views a page offers, one cache file each


def tsne_files(perplexity: int) -> tuple[str, str, str]:
    """(cache, background pid file, log) of the t-SNE view with ``perplexity``."""
    return f"tsne-p{perplexity}.safetensors", f".tsne-p{perplexity}.pid", f"tsne-p{perplexity}.log"


RUN_FILES = (CONFIG, STATUS, METRICS, WEIGHTS, TRAIN_STATE, CANCEL, WORKER_LOG, OWNER, EVAL,
             CACHE, SCORES, DISENTANGLEMENT, DISENTANGLE_PID, DISENTANGLE_LOG, LATENT_PID,
             LATENT_LOG, PROBES, *(name for p in TSNE_PERPLEXITIES for name in tsne_files(p)))


# --- locations ---
def runs_root(runs_dir: str | os.PathLike | None = None) -> Path:
    """The runs folder: the argument, else ``$AELAB_RUNS``, else ``./checkpoints``."""
    return Path(runs_dir or os.environ.get("AELAB_RUNS") or "checkpoints")


def new_run_id(variant: str, dataset: str) -> str:
    """A sortable, unique, filesystem-safe id such as ``20261124-101500-vae-digits-3f2a``."""
    safe = "".join(c if c.isalnum() or c in "-_" else "-" for c in dataset.split("/")[-1])[:24]
    return f"{time.strftime('%Y%m%d-%H%M%S')}-{variant}-{safe}-{secrets.token_hex(2)}"


# --- atomic writes ---
def atomic_write_bytes(path: str | os.PathLike, data: bytes, durable: bool = True) -> None:
    """Write ``data`` to a temporary file beside ``path``, then rename it into place.

    The rename is atomic, so a killed process leaves the old file or the new one.
    ``durable`` also fsyncs the data first, so it survives an operating-system
    crash; the frequently rewritten status and metrics files skip that cost.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            _write_all(f, data, path)
            if durable:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)  # a full disk leaves no partial temporary file
        raise


def _write_all(f, data: bytes, path: Path) -> None:
    """The one place run files' bytes are written, to ``f`` on their way to ``path`` (the
    fault tests fill the disk here)."""
    f.write(data)


def os_error_reason(exc: OSError) -> str:
    """A short reason for a failed write: "no space left on device" for a full disk."""
    if exc.errno == errno.ENOSPC:
        return "no space left on device"
    return exc.strerror or str(exc) or type(exc).__name__


def atomic_write_json(path: str | os.PathLike, obj: Any, durable: bool = True) -> None:
    atomic_write_bytes(path, (json.dumps(obj, indent=1, default=_jsonable) + "\n").encode(),
                       durable)


def atomic_write_tensors(path: str | os.PathLike, tensors: dict[str, torch.Tensor],
                         metadata: dict[str, str] | None = None, durable: bool = True) -> None:
    """Save tensors as safetensors, atomically (``durable``: see ``atomic_write_bytes``)."""
    from safetensors.torch import save

    flat = {k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}
    atomic_write_bytes(path, save(flat, metadata=metadata), durable)


def _jsonable(value):
    if isinstance(value, (tuple, set)):
        return list(value)
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


# --- reading ---
def read_json(path: str | os.PathLike, what: str) -> dict:
    """A JSON object from ``path``; a RunError naming ``what`` if missing or damaged."""
    path = Path(path)
    try:
        obj = json.loads(path.read_text())
    except FileNotFoundError:
        raise RunError(f"{what} is missing ({path})") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RunError(f"{what} is damaged ({path.name}: {exc})") from None
    if not isinstance(obj, dict):
        raise RunError(f"{what} is damaged ({path.name} does not hold a JSON object)")
    return obj


def read_tensors(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Tensors and metadata of a safetensors file; refuses pickles and damaged files."""
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise RunError(f"no checkpoint yet: {path.name} does not exist in {path.parent}")
    with open(path, "rb") as f:
        head = f.read(9)
    size = path.stat().st_size
    # safetensors: an 8-byte little-endian header length, then a JSON header
    is_safetensors = len(head) == 9 and head[8:9] == b"{" and int.from_bytes(head[:8], "little") < size
    if not is_safetensors and (head[:2] == b"PK" or (head[:1] == b"\x80" and head[1:2] in b"\x02\x03\x04\x05")):
        raise RunError(f"{path.name} holds a pickle or torch.save archive; it was refused "
                       f"(aelab loads only safetensors files, and never unpickles)")
    if not is_safetensors:
        raise RunError(f"{path.name} is damaged and cannot be read as safetensors")
    try:
        tensors = {}
        with safe_open(str(path), framework="pt", device="cpu") as f:
            metadata = dict(f.metadata() or {})
            for key in f.keys():
                tensors[key] = f.get_tensor(key)
    except Exception as exc:  # safetensors raises its own error types for damaged files
        raise RunError(f"{path.name} is damaged and cannot be read as safetensors ({exc})") from None
    return tensors, metadata


def read_config(run_dir: str | os.PathLike) -> dict:
    """The run's ``config.json`` with the model and training settings validated."""
    from aelab.models import get_variant

    run_dir = Path(run_dir)
    raw = read_json(run_dir / CONFIG, f"config of run {run_dir.name}")
    try:
        for key, kind in (("variant", str), ("dataset", str), ("model", dict), ("train", dict)):
            if not isinstance(raw[key], kind):
                raise AelabError(f"{key} is {type(raw[key]).__name__}, not {kind.__name__}")
        created = raw.get("created")
        if created is not None and (not isinstance(created, (int, float)) or isinstance(created, bool)):
            raise AelabError(f"created is {type(created).__name__}, not a number")
        raw["model_config"] = get_variant(raw["variant"]).Config.from_saved(raw["model"])
        raw["train_config"] = TrainConfig.from_saved(raw["train"])
    except KeyError as exc:
        raise RunError(f"config of run {run_dir.name} is damaged (missing {exc})") from None
    except AelabError as exc:
        raise RunError(f"config of run {run_dir.name} is damaged ({exc})") from None
    return raw


# status fields and the JSON types they must have (None is allowed for each)
_NUMBER = (int, float)
STATUS_FIELDS = {"epoch": _NUMBER, "step": _NUMBER, "total_steps": _NUMBER, "progress": _NUMBER,
                 "train_seconds": _NUMBER,
                 "samples_per_second": _NUMBER, "heartbeat": _NUMBER, "submitted": _NUMBER,
                 "eta_seconds": _NUMBER, "phase_progress": _NUMBER, "pid": (int,),
                 "device": (str,), "error": (str,), "caches": (str,), "backend": (str,),
                 "phase": (str,)}


def read_status(run_dir: str | os.PathLike) -> dict:
    """The run's ``status.json`` with every known field of its JSON type; a RunError naming
    the first bad field if missing or damaged (so a hand-edited file never crashes a reader)."""
    run_dir = Path(run_dir)
    status = read_json(run_dir / STATUS, f"status of run {run_dir.name}")
    if status.get("state") not in STATES:
        raise RunError(f"status of run {run_dir.name} is damaged (state {status.get('state')!r} "
                       f"is not one of {', '.join(STATES)})")
    for key, types in STATUS_FIELDS.items():
        value = status.get(key)
        if value is not None and (not isinstance(value, types) or isinstance(value, bool)
                                  or (isinstance(value, float) and not math.isfinite(value))):
            kind = "a number" if types is _NUMBER else "an integer" if types == (int,) else "text"
            raise RunError(f"status of run {run_dir.name} is damaged ({key} is {value!r:.40}, "
                           f"not {kind})")
    return status


def read_metrics(run_dir: str | os.PathLike) -> list[dict]:
    """Every logged step of a run (an empty list before the first). Lines that are not a JSON
    object of numbers (a hand edit, a damaged file) are skipped, never fatal; NaN stays (a
    diverged loss is shown, not hidden)."""
    path = Path(run_dir) / METRICS
    try:
        text = path.read_text(errors="replace")
    except (FileNotFoundError, IsADirectoryError):
        return []
    except OSError as exc:
        raise RunError(f"metrics of run {Path(run_dir).name} cannot be read ({exc})") from None
    rows = []
    for line in text.splitlines():
        try:
            row = json.loads(line)
        except ValueError:
            continue
        if isinstance(row, dict) and all(
                v is None or (isinstance(v, (int, float)) and not isinstance(v, bool))
                for v in row.values()):
            rows.append(row)
    return rows


# keys of a logged row that are bookkeeping, not loss terms
ROW_BOOKKEEPING = ("step", "epoch", "time", "samples_per_second")


def loss_rows(rows: list[dict]) -> list[dict]:
    """The loss rows of ``read_metrics``: the trainer's live-MIG rows (``mig``) left out."""
    return [row for row in rows if "mig" not in row]


def load_model(run_dir: str | os.PathLike, device: "str | torch.device" = "cpu",
               config: dict | None = None):
    """The trained model of a run folder, in eval mode, after checking weights against config
    (``config``: the run's ``read_config``, when the caller already holds it)."""
    from aelab.models import build_model

    run_dir = Path(run_dir)
    config = config or read_config(run_dir)
    model = build_model(config["model_config"])
    tensors, _ = read_tensors(run_dir / WEIGHTS)
    load_state_checked(model, tensors, f"{WEIGHTS} of run {run_dir.name}")
    return model.to(device).eval()


def load_state_checked(model: "torch.nn.Module", tensors: dict[str, "torch.Tensor"], what: str) -> None:
    """Load ``tensors`` into ``model`` only if names and shapes match its config exactly."""
    expected = model.state_dict()
    missing = sorted(set(expected) - set(tensors))
    extra = sorted(set(tensors) - set(expected))
    if missing or extra:
        detail = f"missing {missing[0]}" if missing else f"unexpected {extra[0]}"
        raise RunError(f"{what} does not match the run's config ({detail})")
    for name, value in expected.items():
        if tuple(tensors[name].shape) != tuple(value.shape):
            raise RunError(f"{what} does not match the run's config ({name} has shape "
                           f"{tuple(tensors[name].shape)}, the config needs {tuple(value.shape)})")
    for name, tensor in tensors.items():
        if tensor.is_floating_point() and not bool(tensor.isfinite().all()):
            raise RunError(f"{what} holds NaN or infinite values (in {name}): the training "
                           f"diverged or the file was edited, so the run cannot be used; train "
                           f"it again, e.g. with a lower learning rate")
    model.load_state_dict(tensors)


# --- writing a run ---
def library_versions() -> dict[str, str]:
    import numpy
    import torch

    from aelab import __version__

    return {"aelab": __version__, "torch": torch.__version__, "numpy": numpy.__version__,
            "python": platform.python_version()}


RUN_META = ("owner", "challenge")  # the keys of ``create_run``'s ``meta`` kept in config.json


def create_run(model_config, train_config, dataset: str, runs_dir=None, out=None,
               study: dict | None = None, precision: dict | None = None, meta: dict | None = None) -> Path:
    """A new run folder holding ``config.json`` and a ``queued`` status; returns its path.

    ``study``: for a trial of a study, its id, grid point and seed (``config["study"]``);
    ``precision``: what the run asked for, trains in and why (``config["precision"]``,
    ``aelab.training.precision``); ``meta``: who started it and for what, written into
    ``config.json`` before the run can start (``owner``: the student's name; ``challenge``:
    the class challenge's id).
    """
    run_dir = Path(out) if out else runs_root(runs_dir) / new_run_id(model_config.variant, dataset)
    if run_dir.exists() and not run_dir.is_dir():
        raise RunError(f"{run_dir} already exists and is not a folder; choose another --out")
    if run_dir.is_dir() and any(run_dir.iterdir()):
        raise RunError(f"run folder {run_dir} already exists and is not empty")
    created = not run_dir.exists()
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise RunError(f"cannot create the run folder {run_dir} ({os_error_reason(exc)})") from None
    try:
        _write_new_run(run_dir, model_config, train_config, dataset, study, precision, meta)
    except OSError as exc:  # e.g. a full disk: leave no half-made run behind
        for name in (CONFIG, STATUS):
            (run_dir / name).unlink(missing_ok=True)
        if created:
            run_dir.rmdir()
        raise RunError(f"cannot write the run folder {run_dir} ({os_error_reason(exc)})") from None
    return run_dir


def _write_new_run(run_dir: Path, model_config, train_config, dataset: str,
                   study: dict | None, precision: dict | None = None, meta: dict | None = None) -> None:
    config = {
        "run_id": run_dir.name,
        "variant": model_config.variant,
        "dataset": dataset,
        "input_shape": list(model_config.input_shape),
        "num_classes": model_config.num_classes,
        "overcomplete": model_config.overcomplete,
        "model": model_config.to_dict(),
        "train": train_config.to_dict(),
        "versions": library_versions(),
        "created": time.time(),
        **({"study": study} if study else {}),
        **({"precision": precision} if precision else {}),
        **{k: v for k, v in (meta or {}).items() if k in RUN_META and v is not None},
    }
    atomic_write_json(run_dir / CONFIG, config)
    write_status(run_dir, state="queued", epoch=0, step=0, progress=0.0)


def stop_file(run_dir: str | os.PathLike) -> Path:
    """The marker whose presence asks a running run to stop at its next step."""
    return Path(run_dir) / CANCEL


def is_run_folder(path: str | os.PathLike) -> bool:
    """True if ``path`` holds a run aelab wrote: a ``config.json`` naming a variant, its
    settings and aelab's version, and a readable ``status.json`` (both plain files)."""
    path = Path(path)
    files = [path / CONFIG, path / STATUS]
    if not all(f.is_file() and not f.is_symlink() for f in files):
        return False
    try:
        config = read_json(files[0], "config")
        read_status(path)
    except RunError:
        return False
    return (isinstance(config.get("variant"), str) and isinstance(config.get("model"), dict)
            and isinstance(config.get("train"), dict)
            and isinstance(config.get("versions"), dict) and "aelab" in config["versions"])


def delete_run_files(run_dir: str | os.PathLike) -> list[str]:
    """Remove the files a run writes (``RUN_FILES`` and their temporary ``.NAME.*.tmp``
    siblings) from ``run_dir``, then the folder itself if nothing else is left in it.
    Returns the names left behind (files aelab did not write), sorted."""
    run_dir = Path(run_dir)
    for name in RUN_FILES:
        for path in (run_dir / name, *run_dir.glob(f".{name}.*.tmp")):
            if path.is_symlink() or path.is_file():  # a link is removed, never followed
                path.unlink(missing_ok=True)
    left = sorted(p.name for p in run_dir.iterdir())
    if not left:
        run_dir.rmdir()
    return left


def write_status(run_dir: str | os.PathLike, **fields: Any) -> dict:
    """Replace ``status.json`` with ``fields`` plus the common keys and a heartbeat time."""
    status = {"state": "queued", "epoch": 0, "step": 0, "progress": 0.0, "train_seconds": 0.0,
              "samples_per_second": None, "device": None, "error": None, **fields,
              "heartbeat": time.time()}
    atomic_write_json(Path(run_dir) / STATUS, status, durable=False)
    return status
