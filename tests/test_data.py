"""Named datasets and the checks on a user's npz file."""
import numpy as np
import pytest

from aelab.data.datasets import INFO, _cached_split, dataset_from_arrays, list_datasets, load_dataset, load_npz
from aelab.errors import DatasetError


@pytest.mark.parametrize("name,n,shape", [("digits", 1797, (1, 8, 8)), ("mnist5k", 5000, (1, 28, 28))])
def test_offline_datasets(name, n, shape):
    ds = load_dataset(name)
    assert len(ds.x_train) + len(ds.x_test) == n
    assert len(ds.x_test) == pytest.approx(0.15 * n, abs=1)
    assert ds.input_shape == shape and ds.num_classes == 10
    for x in (ds.x_train, ds.x_test):
        assert x.dtype == np.float32 and x.min() >= 0 and x.max() <= 1 and x.max() > 0.99
    assert ds.y_train.dtype == np.int64 and len(ds.y_train) == len(ds.x_train)
    again = load_dataset(name)
    assert np.array_equal(again.y_test, ds.y_test)  # the split is fixed
    info = INFO[name]
    assert (info["train"], info["test"], tuple(info["shape"]), info["classes"]) == (
        len(ds.x_train), len(ds.x_test), ds.input_shape, ds.num_classes)


def test_mnist_offline_without_cache_names_the_offline_datasets(tmp_path, monkeypatch):
    monkeypatch.setenv("AELAB_DATA", str(tmp_path))
    monkeypatch.setenv("AELAB_OFFLINE", "1")
    from aelab.data import datasets as data

    data._torchvision.cache_clear()
    with pytest.raises(DatasetError, match=r"mnist is not cached .* offline datasets: digits, mnist5k"):
        load_dataset("mnist")
    rows = {r["name"]: r for r in list_datasets()}
    assert rows["digits"]["offline"] and rows["mnist5k"]["offline"]
    assert not rows["fashion-mnist"]["offline"]


def test_unknown_dataset_lists_the_valid_names():
    with pytest.raises(DatasetError, match="unknown dataset 'cifar'; choose one of: digits, mnist5k"):
        load_dataset("cifar")


def save(tmp_path, **arrays):
    path = tmp_path / "data.npz"
    np.savez(path, **arrays)
    return path


def test_npz_with_splits_uint8_and_channels(tmp_path):
    rng = np.random.default_rng(0)
    path = save(tmp_path, x_train=rng.integers(0, 256, (20, 3, 16, 16), dtype=np.uint8),
                x_test=rng.integers(0, 256, (5, 3, 16, 16), dtype=np.uint8),
                y_train=rng.integers(0, 4, 20), y_test=rng.integers(0, 4, 5))
    ds = load_dataset(f"npz:{path}")
    assert ds.input_shape == (3, 16, 16) and len(ds.x_test) == 5
    assert ds.x_train.max() <= 1.0 and ds.x_train.dtype == np.float32
    assert ds.evaluation_split()[0] is ds.x_test


def test_npz_with_only_x_is_split_and_evaluated_whole(tmp_path):
    x = np.random.default_rng(0).random((40, 10, 10)).astype(np.float32)
    ds = load_npz(save(tmp_path, x=x))
    assert ds.input_shape == (1, 10, 10) and len(ds.x_test) == 6 and ds.y_train is None
    whole, labels = ds.evaluation_split()
    assert len(whole) == 40 and labels is None


BAD = [
    (dict(a=np.zeros((3, 4, 4))), "must hold x_train and x_test (or a single x); it has: a"),
    (dict(x=np.zeros((3, 4))), "x must have shape (N, H, W), (N, C, H, W) or (N, H, W, C), got (3, 4)"),
    (dict(x=np.zeros((0, 4, 4))), "x is empty"),
    (dict(x=np.full((3, 4, 4), np.nan)), "x contains NaN or infinite values"),
    (dict(x=np.full((3, 4, 4), 2.0)), "x values must lie in [0, 1]"),
    (dict(x=np.full((3, 4, 4), -0.5)), "x values must lie in [0, 1]"),
    (dict(x=np.zeros((3, 4, 4)), y=np.zeros(4)), "y has 4 labels but there are 3 images"),
    (dict(x=np.zeros((3, 4, 4)), y=np.array([0.5, 1, 2])), "y must hold integer class labels"),
    (dict(x=np.zeros((3, 4, 4)), y=np.array([-1, 1, 2])), "class labels must be 0 or greater"),
    (dict(x_train=np.zeros((3, 4, 4)), x_test=np.zeros((2, 5, 5))),
     "x_train images are 1x4x4 but x_test images are 1x5x5"),
    (dict(x_train=np.zeros((3, 4, 4)), x_test=np.zeros((2, 4, 4)), y_train=np.zeros(3)),
     "has y_train but no y_test"),
    (dict(x_train=np.zeros((3, 4, 4)), x_test=np.zeros((2, 4, 4)), y_train=np.zeros(3),
          y_test=np.zeros(3)), "y_test has 3 labels but there are 2 images"),
    (dict(x=np.array([["a"]] * 3)), "x must have shape"),
    (dict(x=np.full((3, 4, 4), "a")), "x must be uint8 (0-255) or float (0-1) numbers"),
]


@pytest.mark.parametrize("arrays,message", BAD)
def test_bad_npz_files_get_one_clear_sentence(tmp_path, arrays, message):
    with pytest.raises(DatasetError) as info:
        load_npz(save(tmp_path, **arrays))
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_npz_holding_a_pickle_is_refused_unread(tmp_path):
    path = tmp_path / "evil.npz"
    np.savez(path, x=np.array([{"a": 1}], dtype=object))
    with pytest.raises(DatasetError, match="holds Python objects"):
        load_npz(path)


def test_not_an_npz_and_missing_file(tmp_path):
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a zip")
    with pytest.raises(DatasetError, match="not a readable .npz file"):
        load_npz(bad)
    with pytest.raises(DatasetError, match="does not exist"):
        load_dataset(f"npz:{tmp_path / 'missing.npz'}")


def test_dataset_from_arrays_is_the_shared_validator():
    ds = dataset_from_arrays("mine", {"x": np.ones((10, 2, 2), dtype=np.uint8) * 255})
    assert ds.x_train.max() == 1.0


def test_a_pickle_named_npz_is_refused_unread(tmp_path):
    import pickle

    path = tmp_path / "evil.npz"
    path.write_bytes(pickle.dumps({"x": 1}))
    with pytest.raises(DatasetError, match="is a Python pickle"):
        load_npz(path)


@pytest.mark.slow
def test_shipped_datasets_load_from_their_split_cache_without_sklearn(tmp_path, monkeypatch):
    """The first load writes the split to $AELAB_DATA; a later process reads the same arrays
    without importing sklearn or pandas (the start-up cost of `python -m aelab train`)."""
    import json
    import os
    import subprocess
    import sys

    code = ("import json, sys; from aelab.data.datasets import load_dataset; "
            "d = [load_dataset(n) for n in ('digits', 'mnist5k')]; "
            "print(json.dumps([[float(a.sum()), a.dtype.str, a.shape] for ds in d for a in "
            "(ds.x_train, ds.y_train, ds.x_test, ds.y_test)] + "
            "[sorted({'sklearn', 'pandas'} & set(sys.modules))]))")
    env = {**os.environ, "AELAB_DATA": str(tmp_path)}
    first, second = (json.loads(subprocess.run([sys.executable, "-c", code], env=env, check=True,
                                               capture_output=True, text=True).stdout)
                     for _ in range(2))
    assert first[-1] == ["pandas", "sklearn"] and second[-1] == []
    assert first[:-1] == second[:-1]
    monkeypatch.setenv("AELAB_DATA", str(tmp_path))
    (tmp_path / "mnist5k-split-v1.npz").write_bytes(b"damaged")  # remade, not an error
    made = []
    assert _cached_split("mnist5k", lambda: made.append(1) or load_dataset("mnist5k")) and made
    assert _cached_split("mnist5k", lambda: None).x_train.shape == (4250, 1, 28, 28)


def test_rendered_sprites_are_cached_as_bits_and_read_back_identical(tmp_path, monkeypatch):
    from aelab.data import datasets as data
    from aelab.data import shapes

    monkeypatch.setenv("AELAB_DATA", str(tmp_path))
    factors = shapes.sample_factors(300, np.random.default_rng(5))
    rendered = data._render_cached(factors, 32)
    assert rendered.dtype == bool and np.array_equal(rendered, shapes.render(factors, side=32))
    monkeypatch.setattr(shapes, "render", lambda *a, **k: pytest.fail("rendered again"))
    assert np.array_equal(data._render_cached(factors, 32), rendered)  # read from the cache
    assert len(list(tmp_path.glob("shapes32-*.npz"))) == 1
    monkeypatch.undo()
    monkeypatch.setenv("AELAB_DATA", str(tmp_path))
    other = data._render_cached(factors[:200], 32)  # other factors: another file, not the old one
    assert np.array_equal(other, rendered[:200]) and len(list(tmp_path.glob("shapes32-*.npz"))) == 2
