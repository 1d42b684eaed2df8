"""The procedural sprites dataset: factor grid, determinism and fixed-factor sampling."""
import numpy as np
import pytest

from aelab.data import shapes


def test_factor_grid():
    assert shapes.FACTORS == ("shape", "scale", "orientation", "pos_x", "pos_y")
    assert shapes.SIZES == (3, 6, 40, 32, 32) and shapes.N_COMBINATIONS == 737_280
    assert shapes.SCALES[0] == 0.5 and shapes.SCALES[-1] == 1.0
    assert shapes.ORIENTATIONS[0] == 0 and shapes.ORIENTATIONS[-1] == pytest.approx(2 * np.pi)
    corners = np.array([[0, 0, 0, 0, 0], [2, 5, 39, 31, 31]])
    assert shapes.index_of(corners).tolist() == [0, 737_279]
    rows = shapes.factors_of(np.arange(0, 737_280, 9973))
    assert np.array_equal(shapes.factors_of(shapes.index_of(rows)), rows)


def test_rendering_is_deterministic_binary_and_follows_the_factors():
    rng = np.random.default_rng(0)
    factors = shapes.sample_factors(64, rng)
    images = shapes.render(factors)
    assert images.shape == (64, 1, 64, 64) and images.dtype == np.float32
    assert set(np.unique(images)) <= {0.0, 1.0}
    assert np.array_equal(images, shapes.render(factors))
    assert (images.reshape(64, -1).sum(1) > 10).all()  # every sprite is visible
    base = np.array([[0, 5, 0, 16, 16]])
    area = {s: shapes.render(base + [[s, 0, 0, 0, 0]]).sum() for s in range(3)}
    assert len(set(area.values())) == 3  # three different shapes
    small, large = shapes.render(np.array([[1, 0, 0, 16, 16], [1, 5, 0, 16, 16]])).sum((1, 2, 3))
    assert large > 2.5 * small  # area grows with scale squared (0.5 -> 1)
    left, right = shapes.render(np.array([[0, 3, 0, 0, 16], [0, 3, 0, 31, 16]]))
    cols = np.flatnonzero(left[0].sum(0)), np.flatnonzero(right[0].sum(0))
    assert cols[0].mean() < 20 < 44 < cols[1].mean()  # pos_x moves the sprite right
    top = np.flatnonzero(shapes.render(np.array([[0, 3, 0, 16, 0]]))[0, 0].sum(1))
    assert top.mean() < 20  # pos_y = 0 is the top
    turned = shapes.render(np.array([[1, 5, 10, 16, 16]]))  # ellipse turned by 90 degrees
    flat = shapes.render(np.array([[1, 5, 0, 16, 16]]))
    assert np.ptp(np.flatnonzero(flat[0, 0].sum(0))) > np.ptp(np.flatnonzero(turned[0, 0].sum(0)))


def test_fixed_factor_sampling():
    rng = np.random.default_rng(1)
    factors = shapes.sample_factors(500, rng, fixed={2: 7})
    assert (factors[:, 2] == 7).all()
    for position, size in enumerate(shapes.SIZES):
        if position != 2:
            assert factors[:, position].min() == 0 or size > 20
            assert len(np.unique(factors[:, position])) > min(size, 10) - 1
    with pytest.raises(ValueError, match="orientation index must be in"):
        shapes.sample_factors(3, rng, fixed={2: 40})
    with pytest.raises(ValueError):
        shapes.render(np.array([[3, 0, 0, 0, 0]]))


def test_shapes_dataset_has_factor_labels():
    from aelab.data.datasets import load_dataset

    ds = load_dataset("shapes")
    assert ds.input_shape == (1, 64, 64) and ds.num_classes == 3
    assert ds.factors_train.shape == (20_000, 5) and ds.factors_test.shape == (5_000, 5)
    assert np.array_equal(ds.y_test, ds.factors_test[:, 0])
    assert np.array_equal(ds.x_test[:10], shapes.render(ds.factors_test[:10]))
    assert ds.x_train.nbytes + ds.x_test.nbytes < 500e6
