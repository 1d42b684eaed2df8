"""Variant registry: ``@register("name")`` on a model class, then build by name.

Adding a variant is one file in ``aelab/models/`` plus one import line in
``aelab/models/__init__.py``; the trainer, CLI, evaluation and tests iterate
over this registry and never name a variant themselves. The table and the
decorator live in ``variants.py``, which the model files import, so the
import graph runs one way: registry -> models -> variants.
"""
from __future__ import annotations

from typing import Any

from .errors import ConfigError
from .variants import VARIANTS as _VARIANTS, register  # noqa: F401  (register: public name)


def list_variants() -> list[str]:
    """Names of every registered variant, in registration order."""
    _load_models()
    return list(_VARIANTS)


def get_variant(name: str) -> type:
    """The model class registered as ``name``; a clear error lists the valid names."""
    _load_models()
    if name not in _VARIANTS:
        raise ConfigError(f"unknown variant {name!r}; choose one of: {', '.join(_VARIANTS)}")
    return _VARIANTS[name]


def make_config(name: str, **params: Any):
    """A validated config for variant ``name`` from keyword parameters."""
    return get_variant(name).Config.from_dict(params)


def build_model(name_or_config, **params: Any):
    """A fresh model from a variant name and parameters, or from a config object."""
    if isinstance(name_or_config, str):
        config = make_config(name_or_config, **params)
    else:
        config = name_or_config
    return get_variant(config.variant)(config)


def _load_models() -> None:
    from . import models  # noqa: F401  (importing registers every variant)
