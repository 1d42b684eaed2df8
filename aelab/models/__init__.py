"""The variants and their registry: ``@register("name")`` on a model class, then build by name.

Adding a variant is one file in this folder plus one line in the import below; the trainer,
CLI, evaluation, pages and tests iterate over the registry and never name a variant. The
table and the decorator live in ``registry.py`` (a leaf the model files import), so the
import graph runs one way: this package -> each model file -> registry.
"""
from __future__ import annotations

from typing import Any

from aelab.errors import ConfigError

# isort: off
# the survey's order (sec. 3, then 4): every list of variants the user sees follows it
from aelab.models import ae, denoising, sparse, ksparse, contractive  # noqa: F401
from aelab.models import vae, cvae, betavae, betatcvae, factorvae, adagvae, semivae  # noqa: F401
# isort: on
from aelab.models.base import CAPABILITIES, AEConfig, AEOutput, Autoencoder  # noqa: F401
from aelab.models.registry import VARIANTS as _VARIANTS  # noqa: F401  (register: public name)
from aelab.models.registry import register


def list_variants() -> list[str]:
    """Names of every registered variant, in registration order."""
    return list(_VARIANTS)


def get_variant(name: str) -> type:
    """The model class registered as ``name``; a clear error lists the valid names."""
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


def capabilities_of(variant: str) -> frozenset[str]:
    """What a registered variant can do (``base.CAPABILITIES``); nothing for an unknown name."""
    cls = _VARIANTS.get(variant)
    return cls.capabilities() if cls is not None else frozenset()


def with_capabilities(rows: list[dict], needs: tuple[str, ...] = ()) -> list[dict]:
    """The run rows (each names its ``variant``) whose variant has every capability in ``needs``."""
    unknown = set(needs) - set(CAPABILITIES)
    if unknown:
        raise ConfigError(f"unknown capabilities {sorted(unknown)}; choose from: {', '.join(CAPABILITIES)}")
    return [r for r in rows if set(needs) <= capabilities_of(r.get("variant", ""))]


def needs_text(needs: tuple[str, ...]) -> str:
    """'a model that samples from a prior (...) and is conditioned on a class label'."""
    return "a model that " + " and ".join(CAPABILITIES[n] for n in needs)


def refusal(page: str, needs: tuple[str, ...], run_id: str, variant: str) -> str | None:
    """The sentence a page shows for a run it cannot show (None if it can): what the page
    needs, and what the run is."""
    missing = tuple(n for n in needs if n not in capabilities_of(variant))
    if not missing:
        return None
    cls = _VARIANTS.get(variant)
    article = "an" if variant[:1] in "aeiou" else "a"
    what = (f"{article} {variant} run ({cls.summary().split(':')[0]})" if cls is not None
            else f"a run of the unknown variant {variant!r}")
    return f"{page} needs {needs_text(missing)}; {run_id} is {what}."
