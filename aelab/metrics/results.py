"""What the explore pages read, computed once after training and kept in the run folder.

``cache.safetensors`` holds, for at most ``MAX_POINTS`` test images (a seeded
subset): their indices and labels, the codes (posterior means for VAEs), 2-D
PCA and 2-D UMAP of the codes, the same two projections of the raw pixels and,
for VAE-family runs, the mean KL per latent dimension. ``tsne-p<P>.safetensors`` holds the
t-SNE view of those codes with perplexity P (one file per perplexity of ``TSNE_PERPLEXITIES``,
made in the background on a page's demand). ``eval.json`` holds the
``evaluate`` metrics. Both record the SHA-256 of the weights they were made
from; a cache whose hash differs from the current weights is rebuilt, never trusted.
One verb per cache operation: ``rebuild_*`` computes and writes now; ``refresh_caches``
rebuilds only what is missing or stale; ``get_*`` returns the cached value, computing and
writing it first when missing or stale; ``cached_*`` returns the cached value or None and
never computes. Every function takes the run's handle (``RunRef``; a run folder the library holds
is turned into one with ``RunRef.unchecked``).
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Callable

import numpy as np
import torch

from aelab.data.datasets import load_dataset
from aelab.errors import RunError
from aelab.metrics.evaluate import encode_array, evaluate_model
from aelab.runs.folder import (
    CACHE,
    DISENTANGLEMENT,
    EVAL,
    SCORES,
    TSNE_PERPLEXITIES,
    atomic_write_json,
    atomic_write_tensors,
    os_error_reason,
    read_json,
    read_tensors,
    tsne_files,
)
from aelab.runs.refs import RunRef, weights_hash  # noqa: F401  (weights_hash: re-exported for pages)

MAX_POINTS = 10_000


class Projection:
    """A fitted 2-D view of points: ``points`` (N, 2) float32 and, for PCA and UMAP, ``place``
    puts new rows where the same fitted object maps them (t-SNE has no such map)."""

    def __init__(self, method: str, reducer, points: np.ndarray):
        self.method, self.reducer, self.points = method, reducer, points

    def place(self, rows: np.ndarray) -> np.ndarray:
        """Where the fitted view puts ``rows`` (M, ...): (M, 2) float32."""
        flat = rows.reshape(len(rows), -1).astype(np.float32)
        if self.method == "tsne":
            raise ValueError("t-SNE cannot place new points: it has no map, only its fitted points")
        return _two_columns(self.reducer.transform(flat)).astype(np.float32)

    def linear(self) -> tuple[np.ndarray, np.ndarray] | None:
        """(A (2, D), mean (D,)) of a PCA view, whose points are A @ (x - mean); else None."""
        if self.method != "pca":
            return None
        a = np.zeros((2, self.reducer.components_.shape[1]))
        a[:len(self.reducer.components_)] = self.reducer.components_
        return a, np.asarray(self.reducer.mean_, dtype=np.float64)


def _two_columns(out: np.ndarray) -> np.ndarray:
    if out.shape[1] < 2:  # a 1-D code: plot it against zero
        out = np.concatenate([out, np.zeros((len(out), 2 - out.shape[1]))], axis=1)
    return out


def fit_projection(x: np.ndarray, method: str, seed: int = 0, perplexity: float = 30.0) -> Projection:
    """2-D PCA, UMAP or t-SNE (with ``perplexity``) fitted to the rows of ``x`` (flattened),
    seeded."""
    flat = x.reshape(len(x), -1).astype(np.float32)
    if method == "pca":
        from sklearn.decomposition import PCA

        reducer = PCA(n_components=min(2, *flat.shape), random_state=seed)
        return Projection(method, reducer, _two_columns(reducer.fit_transform(flat)).astype(np.float32))
    if method == "umap":
        import umap

        neighbours = max(2, min(15, len(flat) - 1))
        reducer = umap.UMAP(n_components=2, n_neighbors=neighbours, random_state=seed, n_jobs=1)
        return Projection(method, reducer, reducer.fit_transform(flat).astype(np.float32))
    if method == "tsne":
        from sklearn.manifold import TSNE

        # scikit-learn needs perplexity < N; PCA initialisation and one thread: reproducible
        reducer = TSNE(n_components=2, perplexity=min(float(perplexity), len(flat) - 1.0), init="pca",
                       random_state=seed, n_jobs=1)
        return Projection(method, reducer, reducer.fit_transform(flat).astype(np.float32))
    raise ValueError(f"unknown projection {method!r}")


def project_2d(x: np.ndarray, method: str, seed: int = 0, perplexity: float = 30.0) -> np.ndarray:
    """2-D PCA, UMAP or t-SNE (with ``perplexity``) of the rows of ``x`` (flattened), seeded:
    (N, 2) float32."""
    return fit_projection(x, method, seed, perplexity).points


def subset_indices(n: int, seed: int = 0, limit: int = MAX_POINTS) -> np.ndarray:
    """At most ``limit`` indices of ``n`` points, seeded and sorted."""
    if n <= limit:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=limit, replace=False))


@contextmanager
def _writing(run: RunRef, name: str):
    """A failed cache write (a full disk, a folder in the file's place) as one sentence."""
    try:
        yield
    except OSError as exc:
        raise RunError(f"cannot write {name} in run {run.run_id} ({os_error_reason(exc)})") from None


def _load_run(run: RunRef):
    return run.config, run.load_model(), load_dataset(run.config["dataset"])


def rebuild_eval(run, progress: Callable[[str], None] | None = None) -> dict:
    """Compute and write ``eval.json`` (the ``evaluate`` metrics) for the current weights."""
    run = RunRef.unchecked(run)
    digest = run.weights_sha256()
    (progress or (lambda message: None))("evaluating")
    config, model, ds = _load_run(run)
    scores = evaluate_model(model, ds, seed=config["train_config"].seed)
    with _writing(run, EVAL):
        atomic_write_json(run / EVAL, {**scores, "weights_sha256": digest})
    return scores


def rebuild_projections(run, progress: Callable[[str], None] | None = None) -> None:
    """Compute and write ``cache.safetensors`` (codes and 2-D projections) for the current weights."""
    say = progress or (lambda message: None)
    run = RunRef.unchecked(run)
    digest = run.weights_sha256()
    config, model, ds = _load_run(run)
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
    scores = get_eval(run, progress)
    if "kl_per_dim" in scores:
        tensors["kl_per_dim"] = torch.tensor(scores["kl_per_dim"])
    meta = {"weights_sha256": digest, "dataset": config["dataset"], "seed": str(seed)}
    with _writing(run, CACHE):
        atomic_write_tensors(run / CACHE, tensors, meta)


def rebuild_caches(run, progress: Callable[[str], None] | None = None,
                 phase: Callable[[str, int, int], None] | None = None) -> None:
    """Write both caches (``eval.json`` and ``cache.safetensors``) for the current weights,
    and for a run the disentanglement metrics can score, ``disentangle.json``.

    ``phase(name, index, total)`` is told each step as it starts: ``evaluating``,
    ``caching`` and, for a scorable run, ``scoring``."""
    from aelab.metrics.disentanglement import scorable

    run = RunRef.unchecked(run)
    steps = [("evaluating", rebuild_eval), ("caching", rebuild_projections)]
    if scorable(run.config):
        steps.append(("scoring", get_disentanglement))
    for index, (name, build) in enumerate(steps):
        if phase is not None:
            phase(name, index, len(steps))
        build(run, progress)


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _eval_fresh(run: RunRef, digest: str) -> bool:
    """True if ``eval.json`` was made from these weights and holds only numbers (or lists of
    them); a damaged or hand-edited file counts as stale and is rebuilt."""
    try:
        scores = read_json(run / EVAL, "eval")
    except RunError:
        return False
    values = [v for k, v in scores.items() if k != "weights_sha256"]
    return scores.get("weights_sha256") == digest and "recon_mse" in scores and all(
        _is_number(v) or (isinstance(v, list) and all(map(_is_number, v))) for v in values)


PROJECTIONS = ("index", "codes", "pca_codes", "umap_codes", "pca_pixels", "umap_pixels")


def _projections_fresh(run: RunRef, digest: str) -> bool:
    """True if ``cache.safetensors`` was made from these weights and holds every array, one
    row per point; a damaged or partial file counts as stale and is rebuilt."""
    try:
        tensors, meta = read_tensors(run / CACHE)
    except RunError:
        return False
    if meta.get("weights_sha256") != digest or not set(PROJECTIONS) <= set(tensors):
        return False
    n = len(tensors["index"])
    return all(t.ndim >= 1 and len(t) == n for k, t in tensors.items() if k != "kl_per_dim") and all(
        tensors[k].ndim == 2 and tensors[k].shape[1] == 2 for k in PROJECTIONS[2:])


def refresh_caches(run, progress: Callable[[str], None] | None = None) -> bool:
    """Rebuild whichever cache is missing or made from other weights; True if any was."""
    run = RunRef.unchecked(run)
    digest = run.weights_sha256()
    rebuilt = False
    if not _eval_fresh(run, digest):
        rebuild_eval(run, progress)
        rebuilt = True
    if not _projections_fresh(run, digest):
        rebuild_projections(run, progress)
        rebuilt = True
    return rebuilt


def get_caches(run, progress: Callable[[str], None] | None = None) -> dict[str, np.ndarray]:
    """The run's cached codes and projections (rebuilt first when missing or stale)."""
    run = RunRef.unchecked(run)
    if not _projections_fresh(run, run.weights_sha256()):
        rebuild_projections(run, progress)
    tensors, _ = read_tensors(run / CACHE)
    return {k: v.numpy() for k, v in tensors.items()}


def get_eval(run, progress: Callable[[str], None] | None = None) -> dict:
    """The run's ``evaluate`` metrics (recomputed first when missing or stale; no projections)."""
    run = RunRef.unchecked(run)
    if not _eval_fresh(run, run.weights_sha256()):
        return rebuild_eval(run, progress)
    scores = read_json(run / EVAL, "eval")
    scores.pop("weights_sha256", None)
    return scores




def _check_perplexity(perplexity) -> int:
    if perplexity not in TSNE_PERPLEXITIES:
        raise RunError(f"t-SNE perplexity {perplexity!r} is not offered; choose one of "
                       f"{', '.join(map(str, TSNE_PERPLEXITIES))}")
    return int(perplexity)


def rebuild_tsne(run, perplexity: int, progress: Callable[[str], None] | None = None) -> np.ndarray:
    """Compute and write the t-SNE view (perplexity ``perplexity``) of the cached codes."""
    run = RunRef.unchecked(run)
    perplexity = _check_perplexity(perplexity)
    digest = run.weights_sha256()
    caches = get_caches(run, progress)
    seed = run.config["train_config"].seed
    (progress or (lambda message: None))(f"t-SNE of the codes (perplexity {perplexity})")
    view = project_2d(caches["codes"], "tsne", seed, perplexity)
    meta = {"weights_sha256": digest, "perplexity": str(perplexity), "seed": str(seed),
            "points": str(len(view))}
    name = tsne_files(perplexity)[0]
    with _writing(run, name):
        atomic_write_tensors(run / name, {"tsne_codes": torch.from_numpy(view)}, meta)
    return view


def cached_tsne(run, perplexity: int) -> np.ndarray | None:
    """The cached t-SNE view (N, 2) with ``perplexity`` if it was made from the current weights
    and matches the cached codes' points, else None; never computes."""
    run = RunRef.unchecked(run)
    perplexity = _check_perplexity(perplexity)
    try:
        tensors, meta = read_tensors(run / tsne_files(perplexity)[0])
        codes, code_meta = read_tensors(run / CACHE)
    except RunError:
        return None
    view = tensors.get("tsne_codes")
    digest = run.weights_sha256()
    if (view is None or meta.get("weights_sha256") != digest or code_meta.get("weights_sha256") != digest
            or meta.get("perplexity") != str(perplexity) or "index" not in codes
            or tuple(view.shape) != (len(codes["index"]), 2)):
        return None
    return view.numpy()


def get_tsne(run, perplexity: int, progress: Callable[[str], None] | None = None) -> np.ndarray:
    """The t-SNE view of the cached codes (computed and written first when missing or stale)."""
    cached = cached_tsne(run, perplexity)
    return cached if cached is not None else rebuild_tsne(run, perplexity, progress)


def _json_if_fresh(run: RunRef, name: str) -> object | None:
    """The value cached in JSON file ``name`` if it was made from the current weights (and
    has the type its reader expects: a list of rows or a dict of scores)."""
    try:
        cached = read_json(run / name, name)
        value = cached["value"]
        typed = (isinstance(value, list) and all(isinstance(row, dict) for row in value)
                 if name == SCORES else isinstance(value, dict))
        if typed and cached.get("weights_sha256") == run.weights_sha256():
            return value
    except (RunError, KeyError):
        pass
    return None


def _get_json(run, name: str, compute: Callable[[], object],
                 fresh: Callable[[object], bool] = lambda value: True):
    """``compute()``, cached in JSON file ``name`` under the weights' hash (and kept while
    ``fresh(value)``)."""
    run = RunRef.unchecked(run)
    cached = _json_if_fresh(run, name)
    if cached is not None and fresh(cached):
        return cached
    digest = run.weights_sha256()  # the weights the value is computed from
    value = compute()
    with _writing(run, name):
        atomic_write_json(run / name, {"value": value, "weights_sha256": digest})
    return value


def get_latent_scores(run, progress: Callable[[str], None] | None = None) -> list[dict]:
    """The Latent space page's score table (``aelab.explore.latent.latent_scores``), cached in
    ``scores.json`` under the weights' hash and recomputed when missing or stale."""
    from aelab.explore.latent import latent_scores

    def compute():
        caches = get_caches(run, progress)
        (progress or (lambda message: None))("scoring codes, PCA codes and pixels")
        _, model, ds = _load_run(RunRef.unchecked(run))
        return latent_scores(model, ds, caches)

    return _get_json(run, SCORES, compute)


def cached_latent_scores(run) -> list[dict] | None:
    """The cached score table if it matches the current weights, else None."""
    return _json_if_fresh(RunRef.unchecked(run), SCORES)


def get_disentanglement(run, progress: Callable[[str], None] | None = None) -> dict:
    """The disentanglement scores of a ``shapes`` run
    (``aelab.metrics.disentanglement.score_run``), cached in
    ``disentangle.json`` under the weights' hash and recomputed when missing or stale."""
    from aelab.metrics.disentanglement import score_run

    def compute():
        (progress or (lambda message: None))("scoring disentanglement (under a minute)")
        return score_run(RunRef.unchecked(run))

    return _get_json(run, DISENTANGLEMENT, compute, _current_scores)


def _current_scores(scores: dict) -> bool:
    from aelab.metrics.disentanglement import VERSION

    return scores.get("version") == VERSION


def cached_disentanglement(run) -> dict | None:
    """The cached disentanglement scores if they match the current weights and the current
    definitions of the scores, else None."""
    scores = _json_if_fresh(RunRef.unchecked(run), DISENTANGLEMENT)
    return scores if scores is not None and _current_scores(scores) else None
