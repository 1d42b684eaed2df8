"""The trainer: one loop for every variant and every device.

The training split lives on the device as one tensor; each epoch draws one
permutation and batches are slices of it (no per-item DataLoader work). Loss
terms are summed on the device and read back every ``log_every`` steps, so a
GPU never waits for the host inside the loop. The trainer only calls the model
contract (``forward``, ``loss``, ``start_step``) and never asks which variant
it holds; a model that ``trains_on_pairs`` (Ada-GVAE) gets each batch followed by
partner images rendered from the dataset's known factors (``_pairs``).
"""
from __future__ import annotations

import errno
import json
import math
import os
import threading
import time
import traceback
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from aelab.data import shapes
from aelab.config import TrainConfig
from aelab.training.budget import fit_budget
from aelab.training.memory import keep_freed_memory
from aelab.metrics.disentanglement import LiveMIG
from aelab.data.datasets import SHAPES_SIDES, describe_dataset, is_shapes, load_dataset, training_images
from aelab.errors import ConfigError, RunError
from aelab.training.optim import adam
from aelab.models import build_model, get_variant
from aelab.runs.folder import (TRAIN_STATE, WEIGHTS, atomic_write_bytes, atomic_write_tensors,
                   create_run, load_state_checked, read_config, read_metrics, read_tensors,
                   stop_file, write_status)

# an epoch's end is checkpointed only if this long has passed since the last checkpoint:
# short epochs would otherwise spend a tenth of the run writing and fsyncing checkpoints
EPOCH_CHECKPOINT_SECONDS = 5.0


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` picks CUDA, then Apple MPS, then CPU; an unavailable explicit choice is an error."""
    mps = getattr(torch.backends, "mps", None)
    mps_ok = bool(mps and mps.is_available())
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "mps" if mps_ok else "cpu")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ConfigError(f"device {name} was requested but no CUDA GPU is available; "
                              f"use --device auto or cpu")
        index = int(name.split(":")[1]) if ":" in name else 0
        if index >= torch.cuda.device_count():
            raise ConfigError(f"device {name} does not exist; this machine has "
                              f"{torch.cuda.device_count()} CUDA device(s)")
    if name == "mps" and not mps_ok:
        raise ConfigError("device mps was requested but Apple MPS is not available; "
                          "use --device auto or cpu")
    return torch.device(name)


def device_label(device: torch.device) -> str:
    """A person-readable device name: the GPU's name, or CPU."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return "Apple MPS" if device.type == "mps" else "CPU"


def validate_run(variant: str, dataset: str, model_params: dict | None = None,
                 train_params: dict | None = None):
    """Check every setting against the dataset without writing anything.

    Returns ``(model_config, train_config)``; raises a one-sentence AelabError.
    """
    if (factor_use := get_variant(variant).factor_use) and not is_shapes(dataset):
        raise ConfigError(f"{variant} trains on {factor_use}, and {dataset} has none; choose one of: "
                          f"{', '.join(SHAPES_SIDES)}")
    train_config = fit_budget(TrainConfig.from_dict(train_params or {}), dataset)  # epochs 0: the budget
    input_shape, num_classes = describe_dataset(dataset)
    params = {**(model_params or {}), "input_shape": input_shape, "num_classes": num_classes}
    model_config = get_variant(variant).Config.from_dict(params)
    if (images := training_images(dataset)) is not None:
        model_config.check_data(images)
    resolve_device(train_config.device)
    check_model_size(model_config)
    return model_config, train_config


MAX_PARAMETERS = 200_000_000  # 0.8 GB of float32 weights, before Adam's two moments


def check_model_size(model_config) -> int:
    """The model's parameter count, counted on PyTorch's meta device (no memory is used);
    a ConfigError if it exceeds ``MAX_PARAMETERS`` (huge images with an MLP, say)."""
    with torch.device("meta"):
        count = sum(p.numel() for p in build_model(model_config).parameters())
    if count > MAX_PARAMETERS:
        raise ConfigError(f"this model would have {count:,} parameters, more than the limit of "
                          f"{MAX_PARAMETERS:,}; use smaller images, fewer or smaller hidden layers, "
                          f"or arch conv")
    return count


def prepare_run(variant: str, dataset: str, model_params: dict | None = None,
                train_params: dict | None = None, runs_dir=None, out=None,
                study: dict | None = None) -> Path:
    """Validate every setting against the dataset, then create the run folder (``queued``)."""
    model_config, train_config = validate_run(variant, dataset, model_params, train_params)
    return create_run(model_config, train_config, dataset, runs_dir=runs_dir, out=out, study=study)


def fast_layout(model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    """The model with its conv weights in NHWC (channels_last) on CPU, where oneDNN's
    convolutions and their backward run about 20% faster than on NCHW weights (the conv nets
    of bench/flop_rate.py, 1 thread); a no-op for MLPs and on other devices. Only the memory
    layout changes; NHWC kernels add in another order, so losses match NCHW training to float
    rounding, not bit for bit (tests/test_train.py)."""
    return model.to(memory_format=torch.channels_last) if device.type == "cpu" else model


class Trainer:
    """Trains the run in ``run_dir`` to its configured epochs, writing the folder as it goes."""

    def __init__(self, run_dir, progress: Callable[[dict], None] | None = None,
                 should_stop: Callable[[], bool] | None = None):
        self.run_dir = Path(run_dir)
        self.progress = progress or (lambda status: None)
        self.should_stop = should_stop or (lambda: stop_file(self.run_dir).exists())
        config = read_config(self.run_dir)
        self.model_config, self.config = config["model_config"], config["train_config"]
        self.dataset_name = config["dataset"]
        self.status, self.status_lock = {}, threading.RLock()

    # --- checkpoints ---
    def _save_checkpoint(self) -> None:
        """Training state first (self-contained, for resume), then the weights."""
        tensors = {f"model.{k}": v for k, v in self.model.state_dict().items()}
        opt_state = self.optimizer.state_dict()
        for index, slots in opt_state["state"].items():
            for key, value in slots.items():
                tensors[f"opt.{index}.{key}"] = torch.as_tensor(value)
        tensors["rng.cpu"] = torch.get_rng_state()
        # the permutation generator as it was before drawing the epoch of the next step
        at_boundary = self.step % self.per_epoch == 0
        tensors["rng.epoch"] = self.batches.get_state() if at_boundary else self.epoch_rng
        if self.device.type == "cuda":
            tensors["rng.cuda"] = torch.cuda.get_rng_state(self.device)
        meta = {"step": self.step, "train_seconds": self.train_seconds,
                "param_groups": opt_state["param_groups"]}
        atomic_write_tensors(self.run_dir / TRAIN_STATE, tensors, {"state": json.dumps(meta)})
        atomic_write_tensors(self.run_dir / WEIGHTS, self.model.state_dict(),
                             {"step": str(self.step)})
        self.last_checkpoint = time.monotonic()

    def _load_checkpoint(self) -> None:
        tensors, meta = read_tensors(self.run_dir / TRAIN_STATE)
        try:
            state = json.loads(meta["state"])
        except (KeyError, json.JSONDecodeError):
            raise RunError(f"{TRAIN_STATE} of run {self.run_dir.name} is damaged (no state)") from None
        weights = {k[6:]: v for k, v in tensors.items() if k.startswith("model.")}
        load_state_checked(self.model, weights, f"{TRAIN_STATE} of run {self.run_dir.name}")
        slots: dict[int, dict] = {}
        for key, value in tensors.items():
            if key.startswith("opt."):
                _, index, name = key.split(".", 2)
                slots.setdefault(int(index), {})[name] = value.to(self.device)
        self.optimizer.load_state_dict({"state": slots, "param_groups": state["param_groups"]})
        torch.set_rng_state(tensors["rng.cpu"])
        if "rng.cuda" in tensors and self.device.type == "cuda":
            torch.cuda.set_rng_state(tensors["rng.cuda"], self.device)
        self.epoch_rng = tensors["rng.epoch"]
        self.step, self.train_seconds = int(state["step"]), float(state["train_seconds"])

    # --- the loop ---
    def run(self, resume: bool = False) -> dict:
        """Train; return the final status. A full disk ends the run ``failed`` with "no space
        left on device"; other exceptions are recorded as ``failed`` and re-raised."""
        self.step, self.train_seconds, self.metrics = 0, 0.0, []
        try:
            return self._run(resume)
        except BaseException as exc:
            full = isinstance(exc, OSError) and exc.errno == errno.ENOSPC
            if full:  # the last complete checkpoint stays (every write is atomic)
                message = (f"no space left on device while writing run {self.run_dir.name}; "
                           f"free some space, then resume it from its last checkpoint")
                extra = {}
            else:
                message = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
                extra = {"traceback": "\n".join(traceback.format_exc().strip().splitlines()[-6:])}
            try:
                self._write_status("failed", error=message, **extra)
            except OSError:  # the disk may refuse even this; the first error matters more
                self.status = {**self.status, "state": "failed", "error": message}
            if not full:
                raise
            return self.status

    def _write_status(self, state: str, **extra) -> dict:
        with self.status_lock:
            self.status = write_status(self.run_dir, **{**self.status, "state": state, **extra})
            return self.status

    def heartbeat(self) -> None:
        """Rewrite ``status.json`` unchanged but for its heartbeat time (safe from any thread)."""
        with self.status_lock:
            if self.status.get("state") == "running":
                try:
                    self.status = write_status(self.run_dir, **self.status)
                except OSError:
                    pass  # a full disk: the next write of the loop reports it

    def start_heartbeat(self, every: float = 2.0) -> threading.Event:
        """A daemon thread that calls ``heartbeat`` every ``every`` seconds until the event is set."""
        done = threading.Event()

        def beat():
            while not done.wait(every):
                self.heartbeat()

        threading.Thread(target=beat, name="aelab-heartbeat", daemon=True).start()
        return done

    def _run(self, resume: bool) -> dict:
        x, y = self._prepare(resume)
        self._begin(len(x))
        if self.step >= self.total_steps:
            return self._finish("done")
        if self.should_stop():
            return self._finish("cancelled")
        return self._loop(x, y)

    def _prepare(self, resume: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Device, model, optimizer and generators (from the checkpoint when resuming); the data."""
        cfg = self.config
        self.device = resolve_device(cfg.device)
        if self.device.type == "cpu":
            keep_freed_memory()  # no page faults for the same activation buffers every step
        if os.environ.get("AELAB_THREADS"):  # e.g. 1 when several processes share few cores
            torch.set_num_threads(max(1, int(os.environ["AELAB_THREADS"])))
        ds = load_dataset(self.dataset_name)
        if ds.input_shape != tuple(self.model_config.input_shape):
            raise RunError(f"dataset {self.dataset_name} has images of shape {ds.input_shape} but "
                           f"the run was configured for {tuple(self.model_config.input_shape)}")
        torch.manual_seed(cfg.seed)  # weights, then noise and reparameterisation samples
        self.model = fast_layout(build_model(self.model_config).to(self.device), self.device)
        # torch's fused Adam kernel without torch.optim's dynamo import (aelab/training/optim.py)
        self.optimizer = adam(self.model.trainable_parameters(), cfg.lr, self.device)
        self.batches = torch.Generator().manual_seed(cfg.seed)  # epoch permutations
        self.epoch_rng = self.batches.get_state()
        # resuming a run stopped before its first checkpoint replays it from step 0 (same seed)
        if resume and (self.run_dir / TRAIN_STATE).exists():
            self._load_checkpoint()
            self.batches.set_state(self.epoch_rng)
        if resume:
            self.metrics = [m for m in read_metrics(self.run_dir) if m.get("step", 0) <= self.step]
        x_train, y_train, factors = ds.pool() if ds.pool else (ds.x_train, ds.y_train,
                                                                ds.factors_train)
        x = torch.from_numpy(x_train).to(self.device)  # (N, C, H, W), the whole split (or pool)
        self.factors = factors if self.model.trains_on_pairs else None
        self.model.start_training(x, factors)
        y = None if y_train is None else torch.from_numpy(y_train).to(self.device)
        self.model.train_size = len(x)
        self.live_mig = LiveMIG(ds.name, cfg.live_mig_seconds)
        return x, y

    def _begin(self, n: int) -> None:
        """Step counts for ``n`` training examples, and the first ``running`` status."""
        self.per_epoch = math.ceil(n / self.config.batch_size)
        self.total_steps = self.config.epochs * self.per_epoch
        self.status = {"epoch": self.step / self.per_epoch, "step": self.step,
                       "total_steps": self.total_steps, "progress": self.step / self.total_steps,
                       "train_seconds": self.train_seconds, "device": device_label(self.device),
                       "pid": os.getpid(), "error": None}
        self._write_status("running")

    def _loop(self, x: torch.Tensor, y: torch.Tensor | None) -> dict:
        """Epochs of shuffled batches, logging, checkpointing and checking for a stop request."""
        cfg, n = self.config, len(x)
        window = _LossWindow()
        self.last_checkpoint = last_stop_check = time.monotonic()
        self._keep_good()
        self.model.train()
        for epoch in range(self.step // self.per_epoch, cfg.epochs):
            self.epoch_rng = self.batches.get_state()
            order_on_host = torch.randperm(n, generator=self.batches)
            order = order_on_host.to(self.device)
            for batch in range(self.step - epoch * self.per_epoch, self.per_epoch):
                rows = slice(batch * cfg.batch_size, (batch + 1) * cfg.batch_size)
                index, self.host_index = order[rows], order_on_host[rows]
                window.add(*self._step(x, y, index), len(index), self.step)
                self.step += 1
                now = time.monotonic()
                end_of_epoch = batch == self.per_epoch - 1
                if self.step % cfg.log_every == 0 or end_of_epoch:
                    if (stopped := self._close_window(window, now, end_of_epoch)) is not None:
                        return stopped
                training = self.train_seconds + (now - window.start)
                if self.live_mig.due(training):  # scoring time is not training time
                    self._log_mig(training)
                    window.start += time.monotonic() - now
                if cfg.max_minutes and training >= 60 * cfg.max_minutes:
                    self.train_seconds = training
                    return self._finish("done")
                if now - last_stop_check > 0.2:
                    last_stop_check = now
                    if self.should_stop():
                        self.train_seconds += time.monotonic() - window.start
                        self._save_checkpoint()
                        return self._finish("cancelled")
        return self._finish("done")

    def _step(self, x, y, index) -> tuple[list[str], torch.Tensor]:
        """One optimizer step on the examples ``index``: term names and values, on the device."""
        xb = x.index_select(0, index)  # (B, C, H, W); x[index] is 5x slower on CPU
        if not xb.is_floating_point():  # a bool pool of binary images
            xb = xb.float()
        yb = None if y is None else y[index]
        if self.factors is not None:
            xb, yb = self._pairs(xb, yb)
        self.model.start_step(self.step, self.total_steps)
        out = self.model(xb, yb)
        loss, terms = self.model.loss(xb, out)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        terms = {**terms, **self.model.after_step(xb, out)}
        return ["loss", *terms], torch.stack([loss.detach(), *(t.detach() for t in terms.values())])

    def _pairs(self, xb, yb):
        """The batch followed by one partner per image that shares all but the model's
        ``differing`` factors (Locatello et al. 2020), rendered now at the data's resolution
        (about 2.5 ms for 64 sprites at 32x32 on one core); drawn from (seed, step), so a
        resumed run draws the same partners. The factors are looked up with the batch's
        host copy of ``index`` (reading the device's would make a GPU wait for each step)."""
        rng = np.random.default_rng([self.config.seed, self.step])
        rows = shapes.pair_factors(self.factors[self.host_index.numpy()], rng,
                                   self.model.config.differing)
        partners = torch.from_numpy(shapes.render(rows, side=xb.shape[-1])).to(self.device)
        if yb is not None:  # the shapes datasets' label is the shape
            yb = torch.cat([yb, torch.from_numpy(rows[:, 0]).to(yb)])
        return torch.cat([xb, partners]), yb

    def _close_window(self, window: "_LossWindow", now: float, end_of_epoch: bool) -> dict | None:
        """Read the window's means (the one host-device sync), log and maybe checkpoint.

        Returns the final status if a term became non-finite, else None.
        """
        means, first_bad = window.read()
        elapsed = now - window.start
        self.train_seconds += elapsed
        if max(first_bad) >= 0:
            return self._diverged(window.names, first_bad)
        self._log(window.names, means, window.count / elapsed)
        window.reset()
        self._keep_good()
        since = now - self.last_checkpoint
        if since > self.config.checkpoint_seconds or (end_of_epoch and since > EPOCH_CHECKPOINT_SECONDS):
            self._save_checkpoint()
        return None

    def _keep_good(self) -> None:
        """Remember the current weights as the last ones with a finite loss."""
        self.good = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
        self.good_step = self.step

    def _log(self, names, means, samples_per_second) -> None:
        row = {"step": self.step, "epoch": round(self.step / self.per_epoch, 4),
               **dict(zip(names, means)), "samples_per_second": samples_per_second,
               "time": time.time()}
        self.metrics.append(row)
        self._write_metrics()
        remaining = (self.total_steps - self.step) * self.config.batch_size / samples_per_second
        progress = self.step / self.total_steps
        if self.config.max_minutes:  # a time budget ends the run first if it is shorter
            budget = 60 * self.config.max_minutes
            remaining = min(remaining, max(budget - self.train_seconds, 0.0))
            progress = max(progress, min(self.train_seconds / budget, 1.0))
        self._write_status("running", epoch=row["epoch"], step=self.step,
                           progress=progress, train_seconds=self.train_seconds,
                           samples_per_second=samples_per_second, eta_seconds=remaining)
        self.progress(self.status)

    def _write_metrics(self) -> None:
        atomic_write_bytes(self.run_dir / "metrics.jsonl",
                           "".join(json.dumps(m) + "\n" for m in self.metrics).encode(),
                           durable=False)

    def _log_mig(self, training_seconds: float) -> None:
        """Score the live MIG now and append it to metrics.jsonl (no-op when it is off)."""
        value = self.live_mig.score(self.model, training_seconds)
        self.model.train()
        if value is not None:
            self.metrics.append({"step": self.step, "mig": value,
                                 "train_seconds": training_seconds, "time": time.time()})
            self._write_metrics()

    def _diverged(self, names, first_bad) -> dict:
        """Stop on a non-finite loss: keep the last good weights and say what went wrong."""
        step, name = min((s, n) for s, n in zip(first_bad, names) if s >= 0)
        term = next((n for s, n in zip(first_bad, names) if s == step and n != "loss"), name)
        self.model.load_state_dict(self.good)
        atomic_write_tensors(self.run_dir / WEIGHTS, self.good, {"step": str(self.good_step)})
        message = (f"training diverged: loss term '{term}' became non-finite at step {step}; "
                   f"the weights of step {self.good_step} were kept")
        return self._finish("failed", error=message)

    def _finish(self, state: str, **extra) -> dict:
        if state == "done":
            self.model.finish_training()
            self._log_mig(self.train_seconds)  # the final model's MIG
            self._save_checkpoint()
            extra.setdefault("progress", 1.0)
        stop_file(self.run_dir).unlink(missing_ok=True)
        status = self._write_status(state, step=self.step, train_seconds=self.train_seconds, **extra)
        self.progress(status)
        return status


class _LossWindow:
    """Loss sums over the steps between two reads, kept on the device (no sync per step)."""

    def __init__(self):
        self.names: list[str] = []
        self.sums = self.bad_step = None
        self.count, self.start = 0, time.monotonic()

    def add(self, names: list[str], values: torch.Tensor, size: int, step: int) -> None:
        """Add one batch's term values (weighted by its ``size``); remember a first non-finite step."""
        if self.sums is None:
            self.names = names
            self.sums = torch.zeros_like(values)
            self.bad_step = torch.full(values.shape, -1, dtype=torch.long, device=values.device)
        self.sums += values * size
        self.bad_step = torch.where((self.bad_step < 0) & ~torch.isfinite(values), step, self.bad_step)
        self.count += size

    def read(self) -> tuple[list[float], list[int]]:
        """Each term's mean and first non-finite step (-1: none); reads the device."""
        return (self.sums / self.count).tolist(), self.bad_step.tolist()

    def reset(self) -> None:
        self.sums.zero_()
        self.count, self.start = 0, time.monotonic()


def train_run(run_dir, progress=None, should_stop=None, resume: bool = False) -> dict:
    """Train the run folder ``run_dir`` (see ``Trainer``); return its final status."""
    return Trainer(run_dir, progress=progress, should_stop=should_stop).run(resume=resume)
