"""Typed settings dataclasses with validation in one place.

Fields are declared with ``param(default, help, **rules)``; ``from_dict`` turns
CLI strings or JSON values into the field types, and ``validate`` checks the
rules (``choices``, ``ge``, ``gt``, ``le``, ``lt``) and then the cross-field
``check``. The same metadata drives the CLI listing and the app's widgets.
"""
from __future__ import annotations

import dataclasses
import functools
import math
import typing
from dataclasses import dataclass, field
from typing import Any, ClassVar

from aelab.errors import ConfigError


def param(default, help: str, **rules):
    """A settings field with a help text and validation rules."""
    return field(default=default, metadata={"help": help, **rules})


class Settings:
    """Mixin for dataclasses of settings: parsing, validation and description."""

    variant: ClassVar[str] = ""
    hidden_from_parameters: ClassVar[tuple[str, ...]] = ()
    # settings added after runs were first saved: the value a saved config without the key was
    # trained with (or a function of its saved settings giving it), which may not be today's
    # default; ``from_saved`` applies them
    saved_without: ClassVar[dict[str, Any]] = {}

    @classmethod
    def from_dict(cls, params: dict[str, Any]):
        """A validated instance from a dict whose values may be strings (CLI ``--param``)."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(params) - names)
        if unknown:
            owner = f"variant {cls.variant!r}" if cls.variant else "training"
            raise ConfigError(f"unknown parameter {unknown[0]!r} for {owner}; valid parameters: "
                              f"{', '.join(sorted(names - set(cls.hidden_from_parameters)))}")
        hints = _hints(cls)
        settings = cls(**{k: _coerce(k, v, hints[k]) for k, v in params.items()})
        settings.validate()
        return settings

    @classmethod
    def from_saved(cls, params: dict[str, Any]):
        """``from_dict`` for a run's saved settings: a setting added since the run was saved
        takes the value the run was trained with (``saved_without``), not today's default."""
        older = {name: value(params) if callable(value) else value
                 for name, value in cls.saved_without.items() if name not in params}
        return cls.from_dict({**params, **older})

    def validate(self) -> None:
        """Check every field against its rules, then the cross-field rules in ``check``."""
        for f in dataclasses.fields(self):
            _check_rules(f.name, getattr(self, f.name), f.metadata)
        self.check()

    def check(self) -> None:
        """Cross-field rules; raise ConfigError. Override as needed."""

    def to_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v
                for k, v in dataclasses.asdict(self).items()}

    @classmethod
    def parameters(cls) -> list[dict[str, Any]]:
        """Each user-settable field: name, type, default, help and rules (for CLI and app)."""
        hints = _hints(cls)
        return [{"name": f.name, "type": _type_name(hints[f.name]), "default": f.default,
                 **dict(f.metadata)}
                for f in dataclasses.fields(cls) if f.name not in cls.hidden_from_parameters]


@functools.lru_cache(maxsize=None)
def _hints(cls) -> dict[str, Any]:
    """The field types of a settings class, resolved once per class (``get_type_hints``
    evaluates every annotation string each call: most of the time of reading a run's config)."""
    return typing.get_type_hints(cls)


def _type_name(tp) -> str:
    return {int: "int", float: "float", str: "str", bool: "bool"}.get(tp, "ints")


def _coerce(name: str, value: Any, tp) -> Any:
    """Turn a CLI string (or JSON value) into the field's type, with a clear error."""
    try:
        if tp is bool:
            if isinstance(value, str):
                if value.lower() not in ("true", "false", "1", "0", "yes", "no"):
                    raise ValueError
                return value.lower() in ("true", "1", "yes")
            return bool(value)
        if tp is int:
            if isinstance(value, bool) or float(value) != int(float(value)):
                raise ValueError
            return int(float(value))
        if tp is float:
            if isinstance(value, bool):
                raise ValueError
            return float(value)
        if tp is str:
            return str(value)
        if isinstance(value, str):  # tuple[int, ...]: "512,256" or "" (the default)
            parts = value.replace(" ", "").split(",")
            return () if parts == [""] else tuple(int(v) for v in parts)  # "400,,200": int("")
        return tuple(int(v) for v in value)
    except (TypeError, ValueError, OverflowError):
        kind = {int: "an integer", float: "a number", bool: "true or false",
                str: "text"}.get(tp, "comma-separated integers such as 512,256")
        raise ConfigError(f"{name} must be {kind}, got {value!r}") from None


def _check_rules(name: str, value: Any, rules) -> None:
    choices = rules.get("choices")
    if choices is not None and value not in choices:
        raise ConfigError(f"{name} must be one of: {', '.join(map(str, choices))}; got {value!r}")
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"{name} must be a finite number, got {value}")
    low = ("(", rules["gt"]) if "gt" in rules else ("[", rules["ge"]) if "ge" in rules else None
    high = (")", rules["lt"]) if "lt" in rules else ("]", rules["le"]) if "le" in rules else None
    too_low = low is not None and (value <= low[1] if low[0] == "(" else value < low[1])
    too_high = high is not None and (value >= high[1] if high[0] == ")" else value > high[1])
    if not (too_low or too_high):
        return
    if low and high:
        raise ConfigError(f"{name} must be in {low[0]}{low[1]}, {high[1]}{high[0]}, got {value}")
    if low:
        raise ConfigError(f"{name} must be {'>' if low[0] == '(' else '>='} {low[1]}, got {value}")
    raise ConfigError(f"{name} must be {'<' if high[0] == ')' else '<='} {high[1]}, got {value}")


DEVICES = ("auto", "cpu", "cuda", "mps")
PRECISIONS = ("fp32", "bf16", "auto")  # aelab.training.precision says what each means


@dataclass
class TrainConfig(Settings):
    """How a run is trained (stored in ``config.json`` beside the model settings)."""

    saved_without: ClassVar[dict[str, Any]] = {"precision": "fp32"}  # runs saved before it

    epochs: int = param(0, "passes over the training split; 0 = the default budget, as many "
                           "epochs as about 1500 optimizer steps take on the dataset "
                           "(config.json records the epochs used)", ge=0, le=100000)
    batch_size: int = param(128, "examples per step", ge=1, le=1 << 20)
    lr: float = param(1e-3, "Adam learning rate", gt=0.0, le=10.0)
    seed: int = param(0, "seed of weights, batches and noise", ge=0, le=2**31 - 1)
    device: str = param("auto", "auto (CUDA, then MPS, then CPU), cpu, cuda, cuda:N or mps")
    log_every: int = param(50, "steps between reads of the loss (one host-device sync)", ge=1)
    checkpoint_seconds: float = param(60.0, "longest time between checkpoints within an epoch",
                                      gt=0.0)
    caches: bool = param(True, "after training, precompute codes, projections and metrics "
                               "for the explore pages (background runs)")
    max_minutes: float = param(0.0, "stop after this many minutes of training even if epochs "
                                    "remain (0 = no time limit)", ge=0.0)
    precision: str = param("fp32", "number format of training: fp32; bf16 = the forward and "
                                   "backward in bfloat16 autocast, weights, optimizer and loss "
                                   "in float32; auto = bf16 where it is at least 1.5x faster "
                                   "(CUDA GPUs with bf16, CPUs with fast bfloat16 matmuls), "
                                   "else fp32", choices=PRECISIONS)
    live_mig_seconds: float = param(0.0, "shapes datasets: score MIG on a small fixed sample "
                                         "every this many seconds into metrics.jsonl (0 = off)",
                                    ge=0.0)

    def check(self):
        base = self.device.split(":")[0]
        if base not in DEVICES or (":" in self.device and base != "cuda"):
            raise ConfigError(f"device must be one of: auto, cpu, cuda, cuda:N, mps; got {self.device!r}")
