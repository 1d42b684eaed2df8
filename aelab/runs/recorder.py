"""What a training run writes to its folder, in one place: ``status.json`` (and its heartbeat),
the rows of ``metrics.jsonl``, the checkpoint (``train_state.safetensors`` then
``model.safetensors``) and the failure that ended a run. Every write is atomic
(``aelab.runs.folder``), so a run killed at any moment leaves its last complete checkpoint.
"""
from __future__ import annotations

import errno
import json
import threading
import traceback
from pathlib import Path

import torch

from aelab.errors import RunError
from aelab.runs.folder import (
    TRAIN_STATE,
    WEIGHTS,
    atomic_write_bytes,
    atomic_write_tensors,
    load_state_checked,
    read_metrics,
    read_tensors,
    stop_file,
    write_status,
)


class RunRecorder:
    """The run folder ``run_dir`` as a training run writes it."""

    def __init__(self, run_dir):
        self.run_dir = Path(run_dir)
        self.status: dict = {}  # status.json as last written
        self.metrics: list[dict] = []  # metrics.jsonl's rows
        self._lock = threading.RLock()  # the heartbeat thread writes status.json too

    # --- status ---
    def write_status(self, state: str, **fields) -> dict:
        """Rewrite ``status.json``: the last status with ``state`` and ``fields`` changed."""
        with self._lock:
            self.status = write_status(self.run_dir, **{**self.status, "state": state, **fields})
            return self.status

    def begin(self, **fields) -> dict:
        """The first ``running`` status, made of ``fields`` only."""
        with self._lock:
            self.status = fields
            return self.write_status("running")

    def finish(self, state: str, **fields) -> dict:
        """The final status; a stop request (the ``cancel`` file) is answered."""
        stop_file(self.run_dir).unlink(missing_ok=True)
        return self.write_status(state, **fields)

    def failed(self, exc: BaseException) -> bool:
        """Record ``exc`` (being handled) as the run's failure. True for a full disk, which ends
        the run with its last complete checkpoint; False when the caller should re-raise."""
        full = isinstance(exc, OSError) and exc.errno == errno.ENOSPC
        if full:
            message = (f"no space left on device while writing run {self.run_dir.name}; "
                       f"free some space, then resume it from its last checkpoint")
            extra = {}
        else:
            message = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            extra = {"traceback": "\n".join(traceback.format_exc().strip().splitlines()[-6:])}
        try:
            self.write_status("failed", error=message, **extra)
        except OSError:  # the disk may refuse even this; the first error matters more
            self.status = {**self.status, "state": "failed", "error": message}
        return full

    def heartbeat(self) -> None:
        """Rewrite ``status.json`` unchanged but for its heartbeat time (safe from any thread)."""
        with self._lock:
            if self.status.get("state") == "running":
                try:
                    self.status = write_status(self.run_dir, **self.status)
                except OSError:
                    pass  # a full disk: the next write of the loop reports it

    def start_heartbeat(self, every: float = 2.0) -> threading.Event:
        """A daemon thread calling ``heartbeat`` every ``every`` seconds until the event is set."""
        done = threading.Event()

        def beat():
            while not done.wait(every):
                self.heartbeat()

        threading.Thread(target=beat, name="aelab-heartbeat", daemon=True).start()
        return done

    # --- metrics.jsonl ---
    def keep_metrics(self, up_to_step: int | None) -> None:
        """Start the rows afresh, or (resuming) from the folder's rows up to ``up_to_step``."""
        self.metrics = ([] if up_to_step is None else
                        [m for m in read_metrics(self.run_dir) if m.get("step", 0) <= up_to_step])

    def log(self, row: dict) -> None:
        """Append ``row`` and rewrite ``metrics.jsonl`` (not fsynced: the checkpoint is)."""
        self.metrics.append(row)
        atomic_write_bytes(self.run_dir / "metrics.jsonl",
                           "".join(json.dumps(m) + "\n" for m in self.metrics).encode(),
                           durable=False)

    # --- checkpoints ---
    def save_checkpoint(self, model, optimizer, step: int, train_seconds: float,
                        epoch_rng: torch.Tensor, device: torch.device) -> None:
        """Training state first (self-contained, for resume: weights, Adam's moments, the
        model's own ``train_state``, the generators), then the weights. ``epoch_rng``: the
        permutation generator's state before it drew the epoch of the next step."""
        tensors = {f"model.{k}": v for k, v in model.state_dict().items()}
        opt_state = optimizer.state_dict()
        for index, slots in opt_state["state"].items():
            for key, value in slots.items():
                tensors[f"opt.{index}.{key}"] = torch.as_tensor(value)
        tensors.update({f"extra.{k}": v for k, v in model.train_state().items()})
        tensors["rng.cpu"] = torch.get_rng_state()
        tensors["rng.epoch"] = epoch_rng
        if device.type == "cuda":
            tensors["rng.cuda"] = torch.cuda.get_rng_state(device)
        meta = {"step": step, "train_seconds": train_seconds,
                "param_groups": opt_state["param_groups"]}
        atomic_write_tensors(self.run_dir / TRAIN_STATE, tensors, {"state": json.dumps(meta)})
        self.save_weights(model.state_dict(), step)

    def save_weights(self, weights: dict[str, torch.Tensor], step: int) -> None:
        """``model.safetensors``: the weights of ``step``."""
        atomic_write_tensors(self.run_dir / WEIGHTS, weights, {"step": str(step)})

    def load_checkpoint(self, model, optimizer,
                        device: torch.device) -> tuple[int, float, torch.Tensor]:
        """Restore ``model``, ``optimizer`` and torch's generators from the training state;
        returns its step, training seconds and the permutation generator's state."""
        tensors, meta = read_tensors(self.run_dir / TRAIN_STATE)
        try:
            state = json.loads(meta["state"])
        except (KeyError, json.JSONDecodeError):
            raise RunError(f"{TRAIN_STATE} of run {self.run_dir.name} is damaged "
                           f"(no state)") from None
        weights = {k[6:]: v for k, v in tensors.items() if k.startswith("model.")}
        load_state_checked(model, weights, f"{TRAIN_STATE} of run {self.run_dir.name}")
        slots: dict[int, dict] = {}
        for key, value in tensors.items():
            if key.startswith("opt."):
                _, index, name = key.split(".", 2)
                slots.setdefault(int(index), {})[name] = value.to(device)
        optimizer.load_state_dict({"state": slots, "param_groups": state["param_groups"]})
        model.load_train_state({k[6:]: v for k, v in tensors.items() if k.startswith("extra.")})
        torch.set_rng_state(tensors["rng.cpu"])
        if "rng.cuda" in tensors and device.type == "cuda":
            torch.cuda.set_rng_state(tensors["rng.cuda"], device)
        return int(state["step"]), float(state["train_seconds"]), tensors["rng.epoch"]
