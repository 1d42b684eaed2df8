"""The trainer: one loop for every variant and every device.

The training split lives on the device as one tensor; each epoch draws one
permutation and batches are slices of it (no per-item DataLoader work). Loss
terms are summed on the device and read back every ``log_every`` steps, so a
GPU never waits for the host inside the loop. The trainer only calls the model
contract (``forward``, ``loss``, ``start_step``) and never asks which variant
it holds; a model that ``trains_on_pairs`` (Ada-GVAE) gets each batch followed by
partner images rendered from the dataset's known factors (``_with_partners``).

What the run folder holds is written by its ``RunRecorder`` (``aelab.runs.recorder``), the
codes of a fixed probe set of test images through training by a ``ProbeRecorder``
(``aelab.runs.probes``: frames on a fixed step schedule and at the checkpoint ending the run);
scores of the model while it trains (the live MIG) come in as a callback from the caller
that knows the dataset has factors (``aelab.runs.train``).
"""
from __future__ import annotations

import math
import os
import sys
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from aelab.data import shapes
from aelab.data.datasets import load_dataset
from aelab.errors import RunError
from aelab.models import build_model
from aelab.runs.folder import TRAIN_STATE, read_config, stop_file
from aelab.runs.probes import ProbeRecorder
from aelab.runs.recorder import RunRecorder
from aelab.training.memory import keep_freed_memory
from aelab.training.optim import adam
from aelab.training.precision import precise_forward, run_precision
from aelab.training.setup import device_label, resolve_device

# an epoch's end is checkpointed only if this long has passed since the last checkpoint:
# short epochs would otherwise spend a tenth of the run writing and fsyncing checkpoints
EPOCH_CHECKPOINT_SECONDS = 5.0

# (model, seconds of training, final) -> a score to log now, or None: the live MIG
LiveScore = Callable[[torch.nn.Module, float, bool], float | None]


def fast_layout(model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    """The model with its conv weights in NHWC (channels_last) on CPU, where oneDNN's
    convolutions and their backward run faster than on NCHW weights; a no-op for MLPs and on
    other devices. Only the memory layout changes; NHWC kernels add in another order, so
    losses match NCHW training to float rounding, not bit for bit (tests/test_train.py)."""
    return model.to(memory_format=torch.channels_last) if device.type == "cpu" else model


class Trainer:
    """Trains the run in ``run_dir`` to its configured epochs, writing the folder as it goes.

    ``progress`` gets each status written; ``should_stop`` (default: the folder's ``cancel``
    file) is asked a few times a second; ``live_mig`` (see ``LiveScore``) scores the model now
    and then, its rows going to ``metrics.jsonl`` beside the losses.
    """

    def __init__(self, run_dir, progress: Callable[[dict], None] | None = None,
                 should_stop: Callable[[], bool] | None = None, live_mig: LiveScore | None = None):
        self.run_dir = Path(run_dir)
        self.progress = progress or (lambda status: None)
        self.should_stop = should_stop or (lambda: stop_file(self.run_dir).exists())
        self.live_mig = live_mig
        config = read_config(self.run_dir)
        self.model_config, self.config = config["model_config"], config["train_config"]
        self.dataset_name = config["dataset"]
        self.saved_config = config  # its saved precision decision, read by _setup
        self.record = RunRecorder(self.run_dir)
        # made by run(): the device, model, optimizer and the generator of epoch permutations
        self.device = self.model = self.optimizer = self.batches = self.precision = None
        self.epoch_rng = None  # the permutation generator's state at the current epoch's start
        self.factors = None  # the data's known factors, for a model that trains on pairs
        self.step, self.train_seconds = 0, 0.0
        self.per_epoch = self.total_steps = 0
        self.good, self.good_step = {}, 0  # the last weights with a finite loss, and their step
        self.last_checkpoint = 0.0  # time.monotonic() of the last checkpoint
        self.probes: ProbeRecorder | None = None  # the probe set's frames (probes.safetensors)

    @property
    def metrics(self) -> list[dict]:
        """The rows of ``metrics.jsonl`` so far."""
        return self.record.metrics

    def run(self, resume: bool = False) -> dict:
        """Train; return the final status. A full disk ends the run ``failed`` with "no space
        left on device"; other exceptions are recorded as ``failed`` and re-raised."""
        try:
            return self._train(*self._setup(resume))
        except BaseException as exc:
            if not self.record.failed(exc):
                raise
            return self.record.status

    def _setup(self, resume: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Device, model, optimizer and generators (from the checkpoint when resuming), then the
        first ``running`` status; the training images and labels, on the device."""
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
        # the step's forward in bfloat16 autocast or float32 (aelab/training/precision.py)
        self.precision = run_precision(self.saved_config, self.device, type(self.model))
        if self.precision.asked != "fp32":  # the run's log says what auto or bf16 chose, and why
            print(f"precision {self.precision.asked}: {self.precision.used}, "
                  f"{self.precision.reason}", file=sys.stderr, flush=True)
        self.batches = torch.Generator().manual_seed(cfg.seed)  # epoch permutations
        self.epoch_rng = self.batches.get_state()
        self.step, self.train_seconds = 0, 0.0
        # resuming a run stopped before its first checkpoint replays it from step 0 (same seed)
        if resume and (self.run_dir / TRAIN_STATE).exists():
            self.step, self.train_seconds, self.epoch_rng = self.record.load_checkpoint(
                self.model, self.optimizer, self.device)
            self.batches.set_state(self.epoch_rng)
        self.record.keep_metrics(self.step if resume else None)
        x_train, y_train, factors = ds.pool() if ds.pool else (ds.x_train, ds.y_train,
                                                                ds.factors_train)
        x = torch.from_numpy(x_train).to(self.device)  # (N, C, H, W), the whole split (or pool)
        self.factors = factors if self.model.trains_on_pairs else None
        self.model.start_training(x, factors)
        y = None if y_train is None else torch.from_numpy(y_train).to(self.device)
        self.model.train_size = len(x)
        self.per_epoch = math.ceil(len(x) / cfg.batch_size)
        self.total_steps = cfg.epochs * self.per_epoch
        if len(ds.x_test):
            self.probes = ProbeRecorder(self.run_dir, self.dataset_name, ds.x_test, ds.y_test,
                                        self.model, self.device, self.total_steps, self.per_epoch,
                                        cfg.log_every, resume_step=self.step if resume else None)
        self.record.begin(epoch=self.step / self.per_epoch, step=self.step,
                          total_steps=self.total_steps, progress=self.step / self.total_steps,
                          train_seconds=self.train_seconds, device=device_label(self.device),
                          pid=os.getpid(), error=None)
        return x, y

    def _train(self, x: torch.Tensor, y: torch.Tensor | None) -> dict:
        """The loop: epochs of shuffled batches; every ``log_every`` steps (and at each epoch's
        end) one read of the device for the logged means, a check for divergence and maybe a
        checkpoint; the live MIG when due; a stop request or the time budget ends it early."""
        cfg, n = self.config, len(x)
        if self.step >= self.total_steps:
            return self._finish("done")
        if self.should_stop():
            return self._finish("cancelled")
        window = _LossWindow()
        self.last_checkpoint = last_stop_check = time.monotonic()
        self._keep_good()
        self.model.train()
        if self.step == 0:
            self._probe()  # the initial weights' frame
        for epoch in range(self.step // self.per_epoch, cfg.epochs):
            self.epoch_rng = self.batches.get_state()
            order_on_host = torch.randperm(n, generator=self.batches)
            order = order_on_host.to(self.device)
            for batch in range(self.step - epoch * self.per_epoch, self.per_epoch):
                rows = slice(batch * cfg.batch_size, (batch + 1) * cfg.batch_size)
                index = order[rows]
                window.add(*self._step(x, y, index, order_on_host[rows]), len(index), self.step)
                self.step += 1
                now = time.monotonic()
                end_of_epoch = batch == self.per_epoch - 1
                if self.step % cfg.log_every == 0 or end_of_epoch:
                    means, first_bad = window.read()  # the one host-device sync
                    elapsed = now - window.start
                    self.train_seconds += elapsed
                    if max(first_bad) >= 0:
                        return self._diverged(window.names, first_bad)
                    self._log(window.names, means, window.count / elapsed)
                    if self.probes and self.probes.due(self.step):
                        self._probe()  # before the reset: not training time
                    window.reset()
                    self._keep_good()
                    since = now - self.last_checkpoint
                    if since > cfg.checkpoint_seconds or (end_of_epoch and
                                                          since > EPOCH_CHECKPOINT_SECONDS):
                        self._checkpoint()
                training = self.train_seconds + (now - window.start)
                if self._log_live_mig(training):  # scoring time is not training time
                    window.start += time.monotonic() - now
                if cfg.max_minutes and training >= 60 * cfg.max_minutes:
                    self.train_seconds = training
                    return self._finish("done")
                if now - last_stop_check > 0.2:
                    last_stop_check = now
                    if self.should_stop():
                        self.train_seconds += time.monotonic() - window.start
                        self._checkpoint(ending=True)
                        return self._finish("cancelled")
        return self._finish("done")

    def _step(self, x, y, index, host_index) -> tuple[list[str], torch.Tensor]:
        """One optimizer step on the examples ``index`` (``host_index``: its host copy): term
        names and values, on the device."""
        xb = x.index_select(0, index)  # (B, C, H, W); faster than x[index] on CPU
        if not xb.is_floating_point():  # a bool pool of binary images
            xb = xb.float()
        yb = None if y is None else y[index]
        if self.factors is not None:
            xb, yb = self._with_partners(xb, yb, host_index)
        self.model.start_step(self.step, self.total_steps)
        out = precise_forward(self.model, xb, yb, self.device, self.precision.used)
        loss, terms = self.model.loss(xb, out)  # float32, outside any autocast
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        terms = {**terms, **self.model.after_step(xb, out)}
        return ["loss", *terms], torch.stack([loss.detach(), *(t.detach() for t in terms.values())])

    def _with_partners(self, xb, yb, host_index):
        """The batch followed by one partner per image that shares all but the model's
        ``differing`` factors (Locatello et al. 2020), rendered now at the data's resolution;
        drawn from (seed, step), so a resumed run draws the same partners. The factors are
        looked up with the batch's host copy of the index (reading the device's would make a
        GPU wait for each step)."""
        rng = np.random.default_rng([self.config.seed, self.step])
        rows = shapes.pair_factors(self.factors[host_index.numpy()], rng,
                                   self.model.config.differing)
        partners = torch.from_numpy(shapes.render(rows, side=xb.shape[-1])).to(self.device)
        if yb is not None:  # the shapes datasets' label is the shape
            yb = torch.cat([yb, torch.from_numpy(rows[:, 0]).to(yb)])
        return torch.cat([xb, partners]), yb

    def _keep_good(self) -> None:
        """Remember the current weights as the last ones with a finite loss."""
        self.good = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
        self.good_step = self.step

    def _checkpoint(self, ending: bool = False) -> None:
        """Save the training state and weights; the checkpoint ``ending`` the run also gets
        the probe set's frame."""
        # the permutation generator as it was before drawing the epoch of the next step
        at_boundary = self.step % self.per_epoch == 0
        epoch_rng = self.batches.get_state() if at_boundary else self.epoch_rng
        self.record.save_checkpoint(self.model, self.optimizer, self.step, self.train_seconds,
                                    epoch_rng, self.device)
        self.last_checkpoint = time.monotonic()
        if ending:
            self._probe()

    def _probe(self) -> None:
        """The probe set's frame of the model as it is now (``probes.safetensors``)."""
        if self.probes:
            self.probes.record(self.model, self.step, self.train_seconds)

    def _log(self, names, means, samples_per_second) -> None:
        """A loss row in ``metrics.jsonl`` and a ``running`` status with the progress and ETA."""
        row = {"step": self.step, "epoch": round(self.step / self.per_epoch, 4),
               **dict(zip(names, means)), "samples_per_second": samples_per_second,
               "time": time.time()}
        self.record.log(row)
        remaining = (self.total_steps - self.step) * self.config.batch_size / samples_per_second
        progress = self.step / self.total_steps
        if self.config.max_minutes:  # a time budget ends the run first if it is shorter
            budget = 60 * self.config.max_minutes
            remaining = min(remaining, max(budget - self.train_seconds, 0.0))
            progress = max(progress, min(self.train_seconds / budget, 1.0))
        status = self.record.write_status("running", epoch=row["epoch"], step=self.step,
                                          progress=progress, train_seconds=self.train_seconds,
                                          samples_per_second=samples_per_second,
                                          eta_seconds=remaining)
        self.progress(status)

    def _log_live_mig(self, training_seconds: float, final: bool = False) -> bool:
        """Score the live MIG if it is due (or ``final``) and log its row; whether it did."""
        value = self.live_mig(self.model, training_seconds, final) if self.live_mig else None
        if value is not None:
            self.record.log({"step": self.step, "mig": value,
                             "train_seconds": training_seconds, "time": time.time()})
        return value is not None

    def _diverged(self, names, first_bad) -> dict:
        """Stop on a non-finite loss: keep the last good weights and say what went wrong."""
        step, name = min((s, n) for s, n in zip(first_bad, names) if s >= 0)
        term = next((n for s, n in zip(first_bad, names) if s == step and n != "loss"), name)
        self.model.load_state_dict(self.good)
        self.record.save_weights(self.good, self.good_step)
        message = (f"training diverged: loss term '{term}' became non-finite at step {step}; "
                   f"the weights of step {self.good_step} were kept")
        return self._finish("failed", error=message)

    def _finish(self, state: str, **extra) -> dict:
        if state == "done":
            self.model.finish_training()
            self._log_live_mig(self.train_seconds, final=True)  # the final model's MIG
            self._checkpoint(ending=True)
            extra.setdefault("progress", 1.0)
        status = self.record.finish(state, step=self.step, train_seconds=self.train_seconds, **extra)
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
