"""What the entry points check before anything trains: the device, every setting against the
dataset, the model's size, and then the new run folder (``prepare_run``).

The CLI, the app's Train page, the run manager, studies and the demo-run recipes call these
before a run folder exists, so bad input is one sentence and nothing is written.
"""
from __future__ import annotations

from pathlib import Path

import torch

from aelab.config import TrainConfig
from aelab.data.datasets import SHAPES_SIDES, describe_dataset, is_shapes, training_images
from aelab.errors import ConfigError
from aelab.models import build_model, get_variant
from aelab.runs.folder import create_run
from aelab.training.budget import fit_budget
from aelab.training.precision import choose_precision


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
    choose_precision(train_config.precision, resolve_device(train_config.device),
                     get_variant(variant))  # bf16 where it cannot run is refused here
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
    """Validate every setting against the dataset, then create the run folder (``queued``)
    with the precision decided now (``auto`` resolved on this machine) in its config."""
    model_config, train_config = validate_run(variant, dataset, model_params, train_params)
    precision = choose_precision(train_config.precision, resolve_device(train_config.device),
                                 get_variant(variant))
    return create_run(model_config, train_config, dataset, runs_dir=runs_dir, out=out, study=study,
                      precision=precision.to_dict())
