"""The default training length: a budget of optimizer steps, turned into epochs for the dataset.

A fixed number of epochs is a different amount of training on each dataset (a small one gets
a few dozen steps, a large one thousands), so ``epochs = 0`` (the default)
means "about ``DEFAULT_STEPS`` steps": as many whole epochs as that takes at the run's batch
size. The run's ``config.json`` records the epochs actually used.
"""
from __future__ import annotations

import dataclasses
import math

from aelab.config import TrainConfig

DEFAULT_STEPS = 1500  # optimizer steps of a default run (TrainConfig's epochs help says it)
MIN_EPOCHS = 1


def fit_budget(train_config: TrainConfig, dataset: str) -> TrainConfig:
    """``train_config`` with ``epochs`` 0 replaced by the whole epochs that give at least
    ``DEFAULT_STEPS`` steps over ``dataset``'s training images; explicit epochs are kept."""
    if train_config.epochs:
        return train_config
    per_epoch = math.ceil(training_size(dataset) / train_config.batch_size)
    return dataclasses.replace(train_config, epochs=max(MIN_EPOCHS, math.ceil(DEFAULT_STEPS / per_epoch)))


def training_size(dataset: str) -> int:
    """How many images an epoch of ``dataset`` draws (a named one without loading it)."""
    from aelab.data.datasets import load_dataset, training_images

    n = training_images(dataset)
    if n is None:  # a user's npz file: its size is known only once loaded
        ds = load_dataset(dataset)
        n = len(ds.pool()[0]) if ds.pool else len(ds.x_train)
    return max(1, n)
