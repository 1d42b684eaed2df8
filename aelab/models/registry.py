"""The table of registered variants and the ``@register`` decorator.

A leaf module (it imports nothing from aelab): the model files import ``register`` from
here, and ``aelab.models`` (the package) looks names up in ``VARIANTS`` once every model
file has registered. Keeping the table here keeps the import graph free of a cycle.
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
