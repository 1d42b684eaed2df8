"""The table of registered variants and the ``@register`` decorator.

A leaf module (it imports nothing from aelab but errors): the model files in
``aelab/models/`` import ``register`` from here, and ``registry.py`` looks
names up in ``VARIANTS`` after importing ``aelab.models``. Keeping the table
here is what keeps the import graph free of a models <-> registry cycle.
"""
from __future__ import annotations

VARIANTS: dict[str, type] = {}


def register(name: str):
    """Class decorator that records a model class under ``name``."""

    def wrap(cls):
        if name in VARIANTS and VARIANTS[name] is not cls:
            raise RuntimeError(f"variant {name!r} is registered twice")
        if "Config" not in cls.__dict__:
            raise RuntimeError(f"variant {name!r} must define its own Config dataclass")
        cls.variant = name
        cls.Config.variant = name
        VARIANTS[name] = cls
        return cls

    return wrap
