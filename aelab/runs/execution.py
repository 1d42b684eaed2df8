"""Where runs execute: one small interface with a backend per place.

A backend takes a prepared run folder (``config.json`` and a ``queued``
status, written by ``aelab.training.setup.prepare_run``) and makes it run somewhere:

- ``local`` (``aelab.runs.local.LocalBackend``): the supervisor process of the runs
  folder starts one worker process per run, ``$AELAB_MAX_RUNS`` at a time;
- ``ray`` (``aelab.runs.ray_backend.RayBackend``): each run is a Ray task on a cluster;
  its status, checkpoints and final files stream back to this machine's runs folder.

The trainer and the run folders know nothing of either: a worker of any backend
calls ``aelab.runs.train.trainer_for(run_dir).run()`` on a folder with the same contract.
"""
from __future__ import annotations

from pathlib import Path
from typing import Protocol


class Backend(Protocol):
    """Submit, watch and cancel prepared run folders."""

    name: str

    def submit(self, run_dir: Path, resume: bool = False) -> None:
        """Start (or queue) the run in ``run_dir``; ``resume`` continues from its checkpoint."""

    def state(self, run_dir: Path) -> dict:
        """The run's current status (``status.json`` as the backend knows it)."""

    def cancel(self, run_dir: Path) -> dict:
        """Ask the run to stop; its status afterwards."""


def get_backend(runs_dir=None, ray: bool = False, ray_address: str | None = None,
                max_parallel: int | None = None, gpus_per_trial: float = 0.0) -> Backend:
    """The local backend, or Ray when ``ray`` (start a local cluster) or ``ray_address`` is given."""
    from aelab.runs.folder import runs_root

    runs_dir = runs_root(runs_dir)
    if ray or ray_address:
        from aelab.runs.ray_backend import RayBackend

        return RayBackend(runs_dir, address=ray_address, gpus_per_trial=gpus_per_trial)
    from aelab.runs.local import LocalBackend

    return LocalBackend(runs_dir, max_parallel)
