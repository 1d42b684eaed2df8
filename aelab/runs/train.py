"""Training a run folder in this process: the trainer with the callbacks the run's dataset
allows (the live MIG on shapes datasets, which have known factors). The CLI's foreground
runs, the workers of both execution backends, the demo runs and the tests start here, so the
trainer itself never imports the metrics.
"""
from __future__ import annotations

from typing import Callable

from aelab.metrics.disentanglement import LiveMIG
from aelab.runs.folder import read_config
from aelab.training.trainer import Trainer


def trainer_for(run_dir, progress: Callable[[dict], None] | None = None,
                should_stop: Callable[[], bool] | None = None) -> Trainer:
    """The ``Trainer`` of ``run_dir``, with a live MIG when the run asks for one
    (``live_mig_seconds``) and its dataset has known factors."""
    config = read_config(run_dir)
    live_mig = LiveMIG(config["dataset"], config["train_config"].live_mig_seconds)
    return Trainer(run_dir, progress=progress, should_stop=should_stop,
                   live_mig=live_mig if live_mig.every else None)


def train_run(run_dir, progress=None, should_stop=None, resume: bool = False) -> dict:
    """Train the run folder ``run_dir`` here (see ``trainer_for``); return its final status."""
    return trainer_for(run_dir, progress, should_stop).run(resume=resume)
