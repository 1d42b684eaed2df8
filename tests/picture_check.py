"""Comparing what a test produced with a committed reference: pictures and JSON specs.

Shared by tests/test_visual.py (image grids and figure specs) and
tests/e2e/test_page_screenshots.py (pages in Chromium). ``References`` names the folder of
the references, where failures go (``test-output/visual/...``, git-ignored) and the command
that refreshes them; with ``AELAB_UPDATE_REFERENCES=1`` every check writes its reference
instead of comparing.

A picture matches when the mean absolute difference per pixel and channel and the fraction
of pixels off by more than ``off_level`` grey levels both stay under their limits
(``Tolerance``): CPU float noise moves a few levels here and there, a change of what is
shown moves many pixels far. On a failure the actual picture and a difference image
(expected | actual | differences in red) are written and the message names both.
"""
from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
UPDATE_VARIABLE = "AELAB_UPDATE_REFERENCES"


def updating() -> bool:
    """True when the references are to be rewritten (``AELAB_UPDATE_REFERENCES=1``)."""
    return os.environ.get(UPDATE_VARIABLE, "") not in ("", "0")


@dataclass(frozen=True)
class Tolerance:
    mean: float = 2.0          # mean absolute difference, in 0-255 levels
    off_level: int = 16        # a pixel differing by more than this (in any channel) is "off" ...
    off_fraction: float = 0.01  # ... and fewer than this fraction of pixels may be
    rtol: float = 1e-3         # numbers of a JSON spec
    atol: float = 1e-4


def save_png(path: Path, picture: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(picture).save(path, optimize=True)


def load_png(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path))


def _per_pixel(diff: np.ndarray) -> np.ndarray:
    """The largest channel difference of each pixel (a grey picture: the difference itself)."""
    return diff if diff.ndim == 2 else diff.max(axis=2)


def picture_problem(expected: np.ndarray, actual: np.ndarray, tolerance: Tolerance = Tolerance()) -> str | None:
    """Why ``actual`` does not match ``expected`` within ``tolerance``, or None."""
    if expected.shape != actual.shape:
        return f"the picture is {actual.shape}, the reference {expected.shape}"
    diff = np.abs(expected.astype(np.int16) - actual.astype(np.int16))
    mean, off = float(diff.mean()), float((_per_pixel(diff) > tolerance.off_level).mean())
    if mean >= tolerance.mean or off >= tolerance.off_fraction:
        return (f"mean absolute difference {mean:.3f} (limit {tolerance.mean}), "
                f"{off:.3%} of pixels off by more than {tolerance.off_level} "
                f"(limit {tolerance.off_fraction:.3%})")
    return None


def difference_picture(expected: np.ndarray, actual: np.ndarray, zoom: int = 4,
                       off_level: int = Tolerance.off_level) -> np.ndarray:
    """expected | actual | the differences in red over a dimmed expected, RGB, zoomed (the
    third panel only when both have one size)."""
    def rgb(p):
        return np.repeat(p[..., None], 3, axis=2) if p.ndim == 2 else p[..., :3]

    panels = [rgb(expected), rgb(actual)]
    if expected.shape == actual.shape:
        diff = _per_pixel(np.abs(expected.astype(np.int16) - actual.astype(np.int16)))
        marked = (rgb(expected) * 0.35).astype(np.uint8)
        marked[..., 0] = np.maximum(marked[..., 0], np.clip(diff * 4, 0, 255).astype(np.uint8))
        marked[diff > off_level] = (255, 0, 0)
        panels.append(marked)
    height = max(p.shape[0] for p in panels)
    gap = np.full((height, 4, 3), 128, np.uint8)
    padded = [np.pad(p, ((0, height - p.shape[0]), (0, 0), (0, 0)), constant_values=255)
              for p in panels]
    joined = np.concatenate([x for p in padded for x in (p, gap)][:-1], axis=1)
    return joined.repeat(zoom, axis=0).repeat(zoom, axis=1) if zoom > 1 else joined


def spec_problem(expected, actual, tolerance: Tolerance = Tolerance(), path: str = "") -> str | None:
    """Where two JSON-like values differ (numbers within the tolerance), or None."""
    if isinstance(expected, dict) and isinstance(actual, dict):
        if expected.keys() != actual.keys():
            return f"{path or 'top'}: keys {sorted(actual)} instead of {sorted(expected)}"
        return next((p for k in expected
                     if (p := spec_problem(expected[k], actual[k], tolerance, f"{path}.{k}"))), None)
    if isinstance(expected, list) and isinstance(actual, list):
        if len(expected) != len(actual):
            return f"{path}: {len(actual)} items instead of {len(expected)}"
        return next((p for i, (e, a) in enumerate(zip(expected, actual))
                     if (p := spec_problem(e, a, tolerance, f"{path}[{i}]"))), None)
    numbers = (int, float)
    if isinstance(expected, numbers) and isinstance(actual, numbers) \
            and not isinstance(expected, bool) and not isinstance(actual, bool):
        if math.isclose(expected, actual, rel_tol=tolerance.rtol, abs_tol=tolerance.atol):
            return None
        return f"{path}: {actual!r} instead of {expected!r}"
    return None if expected == actual else f"{path}: {actual!r} instead of {expected!r}"


@dataclass(frozen=True)
class References:
    """Committed references in ``folder``; failures written to ``output``; ``refresh`` is
    the command that rewrites them (named in the messages)."""
    folder: Path
    output: Path
    refresh: str
    tolerance: Tolerance = field(default_factory=Tolerance)
    zoom: int = 4  # of the difference image: small grids are enlarged, whole pages not

    def _shown(self, path: Path) -> Path:
        try:
            return path.relative_to(ROOT)
        except ValueError:
            return path

    def _missing(self, reference: Path) -> None:
        pytest.fail(f"no reference {self._shown(reference)}; create it with {self.refresh} "
                    f"(then look at it before committing it)", pytrace=False)

    def check_picture(self, name: str, actual: np.ndarray) -> None:
        """Compare a uint8 picture with ``<folder>/<name>.png`` (or write it when updating)."""
        reference = self.folder / f"{name}.png"
        if updating():
            save_png(reference, actual)
            return
        if not reference.is_file():
            self._missing(reference)
        expected = load_png(reference)
        problem = picture_problem(expected, actual, self.tolerance)
        if problem:
            actual_path, diff_path = self.output / f"{name}-actual.png", self.output / f"{name}-diff.png"
            save_png(actual_path, actual)
            save_png(diff_path, difference_picture(expected, actual, self.zoom, self.tolerance.off_level))
            pytest.fail(f"{name} differs from {self._shown(reference)}: {problem}; see {diff_path} "
                        f"(expected | actual | differences) and {actual_path}; if the change is "
                        f"intended, refresh with {self.refresh}", pytrace=False)

    def check_spec(self, name: str, actual) -> None:
        """Compare a JSON spec with ``<folder>/<name>.json`` (or write it when updating)."""
        reference = self.folder / f"{name}.json"
        actual = json.loads(json.dumps(actual))  # tuples -> lists, numpy numbers -> floats
        if updating():
            reference.parent.mkdir(parents=True, exist_ok=True)
            reference.write_text(json.dumps(actual, indent=1, ensure_ascii=False) + "\n")
            return
        if not reference.is_file():
            self._missing(reference)
        problem = spec_problem(json.loads(reference.read_text()), actual, self.tolerance)
        if problem:
            actual_path = self.output / f"{name}-actual.json"
            actual_path.parent.mkdir(parents=True, exist_ok=True)
            actual_path.write_text(json.dumps(actual, indent=1, ensure_ascii=False) + "\n")
            pytest.fail(f"{name} differs from {self._shown(reference)} at {problem}; the actual "
                        f"spec is in {actual_path}; if the change is intended, refresh with "
                        f"{self.refresh}", pytrace=False)
