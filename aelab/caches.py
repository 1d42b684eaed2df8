"""What the explore pages read, computed once after training and kept in the run folder.

``cache.safetensors`` holds, for at most ``MAX_POINTS`` test images (a seeded
subset): their indices and labels, the codes (posterior means for VAEs), 2-D
PCA and 2-D UMAP of the codes, the same two projections of the raw pixels and,
for VAE-family runs, the mean KL per latent dimension. ``eval.json`` holds the
``evaluate`` metrics. Both record the SHA-256 of the weights they were made
from; a cache whose hash differs from the current weights is rebuilt, never trusted.
"""
from __future__ import annotations

import functools
import hashlib
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from .data import load_dataset
from .errors import RunError
from .evaluate import encode_array, evaluate_model
from .runs import (WEIGHTS, atomic_write_json, atomic_write_tensors, load_model, read_config,
                   read_json, read_tensors)

CACHE = "cache.safetensors"
EVAL = "eval.json"
MAX_POINTS = 10_000


def weights_hash(run_dir) -> str:
    """SHA-256 of the run's weights file (the key every cache is checked against)."""
    path = Path(run_dir) / WEIGHTS
    if not path.is_file():
        raise RunError(f"no checkpoint yet: {WEIGHTS} does not exist in {Path(run_dir)}")
    stat = path.stat()  # weights are replaced atomically, so a new file has a new inode/mtime
    return _file_sha256(str(path.resolve()), stat.st_ino, stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=256)
def _file_sha256(path: str, inode: int, mtime_ns: int, size: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def project_2d(x: np.ndarray, method: str, seed: int = 0) -> np.ndarray:
    """2-D PCA or UMAP of the rows of ``x`` (flattened), seeded: (N, 2) float32."""
    flat = x.reshape(len(x), -1).astype(np.float32)
    if method == "pca":
        from sklearn.decomposition import PCA

        out = PCA(n_components=min(2, *flat.shape), random_state=seed).fit_transform(flat)
        if out.shape[1] < 2:  # a 1-D code: plot it against zero
            out = np.concatenate([out, np.zeros((len(out), 2 - out.shape[1]))], axis=1)
        return out.astype(np.float32)
    if method == "umap":
        import umap

        neighbours = max(2, min(15, len(flat) - 1))
        reducer = umap.UMAP(n_components=2, n_neighbors=neighbours, random_state=seed, n_jobs=1)
        return reducer.fit_transform(flat).astype(np.float32)
    raise ValueError(f"unknown projection {method!r}")


def subset_indices(n: int, seed: int = 0, limit: int = MAX_POINTS) -> np.ndarray:
    """At most ``limit`` indices of ``n`` points, seeded and sorted."""
    if n <= limit:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=limit, replace=False))


def _load_run(run_dir: Path):
    config = read_config(run_dir)
    return config, load_model(run_dir), load_dataset(config["dataset"])


def build_eval(run_dir, progress: Callable[[str], None] | None = None) -> dict:
    """Compute and write ``eval.json`` (the ``evaluate`` metrics) for the current weights."""
    run_dir = Path(run_dir)
    digest = weights_hash(run_dir)
    (progress or (lambda message: None))("evaluating")
    config, model, ds = _load_run(run_dir)
    scores = evaluate_model(model, ds, seed=config["train_config"].seed)
    atomic_write_json(run_dir / EVAL, {**scores, "weights_sha256": digest})
    return scores


def build_projections(run_dir, progress: Callable[[str], None] | None = None) -> None:
    """Compute and write ``cache.safetensors`` (codes and 2-D projections) for the current weights."""
    say = progress or (lambda message: None)
    run_dir = Path(run_dir)
    digest = weights_hash(run_dir)
    config, model, ds = _load_run(run_dir)
    seed = config["train_config"].seed
    index = subset_indices(len(ds.x_test), seed)
    x = ds.x_test[index]
    y = None if ds.y_test is None else ds.y_test[index]
    say("encoding the test split")
    codes = encode_array(model, x, y)
    tensors = {"index": torch.from_numpy(index), "codes": torch.from_numpy(codes)}
    if y is not None:
        tensors["labels"] = torch.from_numpy(y)
    for source, data in (("codes", codes), ("pixels", x)):
        for method in ("pca", "umap"):
            say(f"{method.upper()} of the {source}")
            tensors[f"{method}_{source}"] = torch.from_numpy(project_2d(data, method, seed))
    scores = load_eval(run_dir, progress)
    if "kl_per_dim" in scores:
        tensors["kl_per_dim"] = torch.tensor(scores["kl_per_dim"])
    meta = {"weights_sha256": digest, "dataset": config["dataset"], "seed": str(seed)}
    atomic_write_tensors(run_dir / CACHE, tensors, meta)


def build_caches(run_dir, progress: Callable[[str], None] | None = None,
                 phase: Callable[[str, int, int], None] | None = None) -> None:
    """Write both caches (``eval.json`` and ``cache.safetensors``) for the current weights,
    and for a run the disentanglement metrics can score, ``disentangle.json``.

    ``phase(name, index, total)`` is told each step as it starts: ``evaluating``,
    ``caching`` and, for a scorable run, ``scoring``."""
    from .disentangle import scorable

    steps = [("evaluating", build_eval), ("caching", build_projections)]
    if scorable(read_config(Path(run_dir))):
        steps.append(("scoring", load_disentanglement))
    for index, (name, build) in enumerate(steps):
        if phase is not None:
            phase(name, index, len(steps))
        build(run_dir, progress)


def _eval_fresh(run_dir: Path, digest: str) -> bool:
    try:
        return read_json(run_dir / EVAL, "eval").get("weights_sha256") == digest
    except RunError:
        return False


def _projections_fresh(run_dir: Path, digest: str) -> bool:
    try:
        return read_tensors(run_dir / CACHE)[1].get("weights_sha256") == digest
    except RunError:
        return False


def ensure_caches(run_dir, progress: Callable[[str], None] | None = None) -> bool:
    """Rebuild whichever cache is missing or made from other weights; True if any was."""
    run_dir = Path(run_dir)
    digest = weights_hash(run_dir)
    rebuilt = False
    if not _eval_fresh(run_dir, digest):
        build_eval(run_dir, progress)
        rebuilt = True
    if not _projections_fresh(run_dir, digest):
        build_projections(run_dir, progress)
        rebuilt = True
    return rebuilt


def load_caches(run_dir, progress: Callable[[str], None] | None = None) -> dict[str, np.ndarray]:
    """The run's cached codes and projections (rebuilt first when missing or stale)."""
    run_dir = Path(run_dir)
    if not _projections_fresh(run_dir, weights_hash(run_dir)):
        build_projections(run_dir, progress)
    tensors, _ = read_tensors(run_dir / CACHE)
    return {k: v.numpy() for k, v in tensors.items()}


def load_eval(run_dir, progress: Callable[[str], None] | None = None) -> dict:
    """The run's ``evaluate`` metrics (recomputed first when missing or stale; no projections)."""
    run_dir = Path(run_dir)
    if not _eval_fresh(run_dir, weights_hash(run_dir)):
        return build_eval(run_dir, progress)
    scores = read_json(run_dir / EVAL, "eval")
    scores.pop("weights_sha256", None)
    return scores


SCORES = "scores.json"
DISENTANGLEMENT = "disentangle.json"


def _peek_json(run_dir: Path, name: str) -> object | None:
    """The value cached in JSON file ``name`` if it was made from the current weights."""
    try:
        cached = read_json(run_dir / name, name)
        if cached.get("weights_sha256") == weights_hash(run_dir):
            return cached["value"]
    except (RunError, KeyError):
        pass
    return None


def _cached_json(run_dir, name: str, compute: Callable[[], object]):
    """``compute()``, cached in JSON file ``name`` under the weights' hash."""
    run_dir = Path(run_dir)
    cached = _peek_json(run_dir, name)
    if cached is not None:
        return cached
    digest = weights_hash(run_dir)  # the weights the value is computed from
    value = compute()
    atomic_write_json(run_dir / name, {"value": value, "weights_sha256": digest})
    return value


def load_latent_scores(run_dir, progress: Callable[[str], None] | None = None) -> list[dict]:
    """The Latent space page's score table (see ``explore.latent_scores``), cached in
    ``scores.json`` under the weights' hash and recomputed when missing or stale."""
    from .explore import latent_scores

    def compute():
        caches = load_caches(run_dir, progress)
        (progress or (lambda message: None))("scoring codes, PCA codes and pixels")
        _, model, ds = _load_run(Path(run_dir))
        return latent_scores(model, ds, caches)

    return _cached_json(run_dir, SCORES, compute)


def peek_latent_scores(run_dir) -> list[dict] | None:
    """The cached score table if it matches the current weights, else None."""
    return _peek_json(Path(run_dir), SCORES)


def load_disentanglement(run_dir, progress: Callable[[str], None] | None = None) -> dict:
    """The disentanglement scores of a ``shapes`` run (``disentangle.score_run``), cached in
    ``disentangle.json`` under the weights' hash and recomputed when missing or stale."""
    from .disentangle import score_run

    def compute():
        (progress or (lambda message: None))("scoring disentanglement (under a minute)")
        return score_run(run_dir)

    return _cached_json(run_dir, DISENTANGLEMENT, compute)


def peek_disentanglement(run_dir) -> dict | None:
    """The cached disentanglement scores if they match the current weights, else None."""
    return _peek_json(Path(run_dir), DISENTANGLEMENT)
