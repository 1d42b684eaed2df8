"""The probe file of a run folder (``probes.safetensors``): the latent space as it learns.

While a run trains, the trainer encodes a fixed probe set of test images (``PROBE_IMAGES``,
drawn with a fixed seed from the dataset's test split) at steps of a fixed schedule
(``frame_steps``: denser early, where the code space changes most) and at the checkpoint that
ends the run, and keeps each frame here. One safetensors file, rewritten atomically with every
frame (``aelab.runs.folder.atomic_write_tensors``), so a reader sees every frame or the file
before it; nothing is pickled. Its tensors (F frames, P probe images, D latents, R shown):

- ``index`` int64 (P,): the probe images' positions in the test split, in probe order
- ``labels`` int64 (P,): their labels (only when the dataset has labels)
- ``steps`` int64 (F,): the optimizer step of each frame, increasing (0: the initial weights)
- ``seconds`` float32 (F,): the training seconds at each frame
- ``codes`` float16 (F, P, D): the deterministic codes (a VAE's posterior mean)
- ``kl`` float32 (F, D): VAE family only, each latent's KL to the prior, mean over the probes
- ``shown`` int64 (R,): positions in the probe set of the images shown reconstructed
- ``images`` uint8 (R, C, H, W): those images, 0..255
- ``recon`` uint8 (F, R, C, H, W): their reconstructions at each frame, 0..255

Its metadata (the safetensors header's JSON): ``format`` (``FORMAT``), ``dataset``,
``split`` ("test"), ``code`` ("posterior mean" or "code"), ``total_steps`` and ``per_epoch``.

The schedule depends only on the run's settings and the frames are taken at the trainer's
sync points (every ``log_every`` steps and each epoch's end), so a resumed run, which first
drops the frames past its checkpoint (``ProbeRecorder(resume_step=...)``), records the same
frames an uninterrupted run does; a frame written after the last checkpoint by a run that was
killed is dropped when it resumes and taken again.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from aelab.errors import RunError
from aelab.runs.folder import PROBES, atomic_write_tensors, read_tensors

FORMAT = 1
PROBE_IMAGES = 256   # test images encoded at every frame
PROBE_SEED = 0       # seed of the probe set's draw from the test split
SHOWN_IMAGES = 8     # probe images whose reconstructions are kept at every frame
MAX_FRAMES = 48      # frames of a run's schedule, at most
FILE_BUDGET = 960_000  # bytes: fewer frames where each frame is large (big codes, big images)
MIN_FRAMES = 8


def probe_indices(n_test: int, seed: int = PROBE_SEED) -> np.ndarray:
    """The probe set: ``PROBE_IMAGES`` positions in a test split of ``n_test`` images (all of
    them when it is smaller), in a seeded random order."""
    rng = np.random.default_rng(seed)
    return rng.permutation(n_test)[:min(PROBE_IMAGES, n_test)].astype(np.int64)


def shown_positions(labels: np.ndarray | None, n: int) -> np.ndarray:
    """Positions in the probe set of the ``SHOWN_IMAGES`` images shown reconstructed: the first
    probe of each class, in class order (then the next probes), or the first probes."""
    if labels is None:
        return np.arange(min(SHOWN_IMAGES, n), dtype=np.int64)
    firsts = [int(np.flatnonzero(labels == c)[0]) for c in np.unique(labels)]
    rest = [i for i in range(n) if i not in set(firsts)]
    return np.array((firsts + rest)[:min(SHOWN_IMAGES, n)], dtype=np.int64)


def frame_count(latent_dim: int, n_probes: int, image_shape, kl: bool) -> int:
    """How many frames a run's schedule has: ``MAX_FRAMES``, fewer when ``MAX_FRAMES`` frames of
    this size would pass ``FILE_BUDGET`` (never fewer than ``MIN_FRAMES``)."""
    shown = min(SHOWN_IMAGES, n_probes) * int(np.prod(image_shape))
    per_frame = 2 * n_probes * latent_dim + (4 * latent_dim if kl else 0) + shown + 12
    return int(np.clip((FILE_BUDGET - 2 * shown) // per_frame, MIN_FRAMES, MAX_FRAMES))


def frame_steps(total_steps: int, frames: int) -> np.ndarray:
    """The steps the frames are due at: 0, then ``total_steps * (k / (frames - 1))**2`` (the
    squares put most frames early, where the map moves most), each step once."""
    k = np.arange(frames) / max(frames - 1, 1)
    return np.unique(np.round(total_steps * k ** 2).astype(np.int64))


def last_sync_before(step: int, log_every: int, per_epoch: int) -> int:
    """The trainer's last sync point before ``step`` (a multiple of ``log_every`` or of
    ``per_epoch``; 0 at the start)."""
    return max((step - 1) // log_every * log_every, (step - 1) // per_epoch * per_epoch, 0)


class ProbeRecorder:
    """Encodes the probe set and keeps the frames of ``run_dir``'s probe file.

    ``x``, ``y``: the dataset's test split (``y`` None without labels); ``resume_step``: keep the
    file's frames up to this step (a resumed run), else start a new file.
    """

    def __init__(self, run_dir, dataset_name: str, x_test: np.ndarray, y_test: np.ndarray | None,
                 model, device: torch.device, total_steps: int, per_epoch: int, log_every: int,
                 resume_step: int | None = None):
        self.path = Path(run_dir) / PROBES
        self.index = probe_indices(len(x_test))
        self.labels = None if y_test is None else np.asarray(y_test)[self.index].astype(np.int64)
        self.shown = shown_positions(self.labels, len(self.index))
        x = x_test[self.index]
        self.images = (np.clip(x[self.shown], 0, 1) * 255).round().astype(np.uint8)
        self.x = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)).to(device)
        self.y = None if self.labels is None else torch.from_numpy(self.labels).to(device)
        self.kl = bool(getattr(model, "kl_per_dim", False)) and hasattr(model, "posterior")
        self.total_steps, self.per_epoch, self.log_every = total_steps, per_epoch, log_every
        latent_dim = model.config.latent_dim
        self.schedule = frame_steps(total_steps, frame_count(latent_dim, len(self.index),
                                                             x.shape[1:], self.kl))
        self.meta = {"format": str(FORMAT), "dataset": dataset_name, "split": "test",
                     "code": "posterior mean" if self.kl else "code",
                     "total_steps": str(total_steps), "per_epoch": str(per_epoch)}
        self.frames: list[dict[str, np.ndarray | int | float]] = []
        if resume_step is not None:
            self._keep_up_to(resume_step)

    def due(self, step: int) -> bool:
        """Whether a sync point at ``step`` takes a frame: a scheduled step lies between the
        previous sync point (exclusive) and it."""
        low = -1 if step == 0 else last_sync_before(step, self.log_every, self.per_epoch)
        return bool(((self.schedule > low) & (self.schedule <= step)).any())

    @torch.no_grad()
    def record(self, model, step: int, seconds: float) -> None:
        """Encode the probe set with ``model`` as it is now and write the file with this frame
        (replacing a frame of the same step). The model's train/eval mode is restored."""
        was_training = model.training
        model.eval()
        try:
            if self.kl:
                from aelab.models.losses import gaussian_kl

                mu, logvar = model.posterior(self.x, self.y)
                kl = gaussian_kl(mu, logvar).mean(0).float().cpu().numpy()
            else:
                mu, kl = model.encode(self.x, self.y), None
            shown_y = None if self.y is None else self.y[self.shown]
            recon = torch.sigmoid(model.decode(mu[self.shown], shown_y))
        finally:
            model.train(was_training)
        frame = {"step": int(step), "seconds": float(seconds),
                 "codes": mu.float().cpu().numpy().astype(np.float16),
                 "recon": (recon.float().clamp(0, 1) * 255).round().to(torch.uint8).cpu().numpy()}
        if kl is not None:
            frame["kl"] = kl
        self.frames = [f for f in self.frames if f["step"] != step] + [frame]
        self.frames.sort(key=lambda f: f["step"])
        self._write()

    def _keep_up_to(self, step: int) -> None:
        """Load the file's frames up to ``step`` (those of the same probe set and shapes); write
        it back if frames past ``step`` were dropped."""
        try:
            probes = read_probes(self.path.parent)
        except RunError:
            probes = None  # a damaged file: the resumed run starts a new one
        if probes is None or not np.array_equal(probes["index"], self.index):
            return
        for i, s in enumerate(probes["steps"]):
            if s <= step:
                frame = {"step": int(s), "seconds": float(probes["seconds"][i]),
                         "codes": probes["codes"][i], "recon": probes["recon"][i]}
                if self.kl and "kl" in probes:
                    frame["kl"] = probes["kl"][i]
                self.frames.append(frame)
        if len(self.frames) < len(probes["steps"]):
            self._write()

    def _write(self) -> None:
        arrays = {"index": self.index, "shown": self.shown, "images": self.images,
                  "steps": np.array([f["step"] for f in self.frames], dtype=np.int64),
                  "seconds": np.array([f["seconds"] for f in self.frames], dtype=np.float32),
                  "codes": np.stack([f["codes"] for f in self.frames]),
                  "recon": np.stack([f["recon"] for f in self.frames])}
        if self.labels is not None:
            arrays["labels"] = self.labels
        if self.kl:
            arrays["kl"] = np.stack([f["kl"] for f in self.frames]).astype(np.float32)
        atomic_write_tensors(self.path, {k: torch.from_numpy(np.ascontiguousarray(v))
                                         for k, v in arrays.items()}, self.meta, durable=False)


def read_probes(run_dir) -> dict | None:
    """The run's probe file as numpy arrays (see the module docstring) plus ``meta`` (its
    metadata, ``total_steps`` and ``per_epoch`` as integers); None when the run has none (runs
    trained before aelab recorded probes). A damaged or inconsistent file is a RunError."""
    path = Path(run_dir) / PROBES
    if not path.is_file():
        return None
    tensors, meta = read_tensors(path)
    name = f"{PROBES} of run {path.parent.name}"
    arrays = {k: v.numpy() for k, v in tensors.items()}
    required = ("index", "steps", "seconds", "codes", "shown", "images", "recon")
    missing = [k for k in required if k not in arrays]
    if missing:
        raise RunError(f"{name} is damaged (no {missing[0]})")
    f, p = len(arrays["steps"]), len(arrays["index"])
    shapes_ok = (arrays["codes"].ndim == 3 and arrays["codes"].shape[:2] == (f, p)
                 and len(arrays["seconds"]) == f and arrays["recon"].shape[:2] == (f, len(arrays["shown"]))
                 and arrays["recon"].shape[1:] == arrays["images"].shape
                 and ("kl" not in arrays or arrays["kl"].shape == (f, arrays["codes"].shape[2]))
                 and ("labels" not in arrays or arrays["labels"].shape == (p,))
                 and bool((np.diff(arrays["steps"]) > 0).all()))
    if not shapes_ok or f == 0:
        raise RunError(f"{name} is damaged (its arrays do not fit together)")
    try:
        arrays["meta"] = {**meta, "total_steps": int(meta["total_steps"]),
                          "per_epoch": int(meta["per_epoch"]), "format": int(meta["format"])}
    except (KeyError, ValueError) as exc:
        raise RunError(f"{name} is damaged (metadata {exc})") from None
    arrays["codes"] = arrays["codes"].astype(np.float32)
    return arrays

