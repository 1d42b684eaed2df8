"""Scores computed in a background process, never in a page's script run: disentanglement
(``kind="disentangle"``, below) and the Latent space score table (``kind="latent"``, the
same way with ``python -m aelab latent-scores``) and the Latent space page's t-SNE views
(``kind="tsne-<perplexity>"``, with ``python -m aelab tsne``).

A finished shapes run is scored by its worker right after training
(``aelab.metrics.results.rebuild_caches``).
A run without fresh scores (trained with ``caches`` off, or before the weights changed) is
scored by ``start_scoring``: it starts ``python -m aelab disentangle RUN_DIR`` in its own
session, which writes ``disentangle.json`` into the run folder, and records the process id
in ``SCORER`` so that a second page or session does not start another. ``scoring_state``
tells a page what to show.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from aelab.metrics.results import cached_disentanglement, cached_latent_scores, cached_tsne
from aelab.runs.folder import DISENTANGLE_LOG, DISENTANGLE_PID, LATENT_LOG, LATENT_PID, TSNE_PERPLEXITIES, tsne_files
from aelab.runs.local import pid_alive

SCORER = DISENTANGLE_PID  # {"pid": ...} of the running background scorer
LOG = DISENTANGLE_LOG     # its output
COMMAND = [sys.executable, "-m", "aelab", "disentangle"]  # + the run folder and its runs folder
LATENT_COMMAND = [sys.executable, "-m", "aelab", "latent-scores"]  # the same for the Latent table
TSNE_COMMAND = [sys.executable, "-m", "aelab", "tsne"]  # + --perplexity P: a t-SNE view

# kind -> (its pid file, its log, its command, the look at fresh cached scores): the same
# one-process-per-run machinery scores disentanglement and the Latent space score table
KINDS = {
    "disentangle": lambda: (SCORER, LOG, COMMAND, cached_disentanglement),
    "latent": lambda: (LATENT_PID, LATENT_LOG, LATENT_COMMAND, cached_latent_scores),
}
for _p in TSNE_PERPLEXITIES:  # "tsne-30": the t-SNE view with perplexity 30, and so on
    KINDS[f"tsne-{_p}"] = lambda p=_p: (*tsne_files(p)[1:], [*TSNE_COMMAND, "--perplexity", str(p)],
                                        lambda run_dir: cached_tsne(run_dir, p))


def _scorer_pid(run_dir: Path, pidfile: str = SCORER) -> int | None:
    try:
        return int(json.loads((run_dir / pidfile).read_text())["pid"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _reap(pid: int) -> None:
    """Collect the exit status of our own finished child (no zombie); others are left alone."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def scoring_state(run_dir, kind: str = "disentangle") -> dict:
    """``{"state": ...}``: ``ready`` (with ``scores``), ``running``, ``failed`` (with
    ``error``, the scorer's last output line) or ``missing`` (never started)."""
    run_dir = Path(run_dir)
    pidfile, log, _, peek = KINDS[kind]()
    scores = peek(run_dir)
    if scores is not None:
        return {"state": "ready", "scores": scores}
    if not (run_dir / pidfile).exists():
        return {"state": "missing"}
    pid = _scorer_pid(run_dir, pidfile)
    if pid is None:  # being started by another session this moment (or that one crashed)
        age = time.time() - (run_dir / pidfile).stat().st_mtime
        return {"state": "running"} if age < 30 else {"state": "failed", "error": "the scorer "
                                                      "did not start; try again"}
    _reap(pid)
    if pid_alive(pid):
        return {"state": "running"}
    scores = peek(run_dir)  # it may have finished since the first look
    if scores is not None:
        return {"state": "ready", "scores": scores}
    try:
        lines = (run_dir / log).read_text(errors="replace").strip().splitlines()
    except OSError:
        lines = []
    return {"state": "failed",
            "error": lines[-1] if lines else "the scoring process ended without a result"}


def start_scoring(run_dir, kind: str = "disentangle") -> bool:
    """Start scoring ``run_dir`` in the background unless its scores are fresh or a scorer
    is running; True if a process was started."""
    run_dir = Path(run_dir)
    pidfile, log, command, _ = KINDS[kind]()
    if scoring_state(run_dir, kind)["state"] in ("ready", "running"):
        return False
    (run_dir / pidfile).unlink(missing_ok=True)  # a finished or failed scorer's record
    try:  # O_EXCL: of two sessions starting at once, one wins
        fd = os.open(run_dir / pidfile, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        return False
    with open(run_dir / log, "wb") as output:
        process = subprocess.Popen([*command, str(run_dir), "--runs-dir", str(run_dir.parent)],
                                   stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                   stderr=output, start_new_session=True)
    with os.fdopen(fd, "w") as f:
        json.dump({"pid": process.pid}, f)
    return True
