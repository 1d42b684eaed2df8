"""What the explore pages compute (``aelab.explore.latent``), each checked against an
independent computation on tiny ``digits`` runs trained once in this process."""
from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image

import aelab.explore.latent as explore
from aelab.data.datasets import load_dataset
from aelab.explore.latent import (
    class_swap_grid,
    decode_codes,
    dimension_order,
    filters_and_atoms,
    gif_bytes,
    interpolation_codes,
    interpolation_rows,
    jacobian_singular_values,
    kept_frequency,
    latent_scores,
    mean_activations,
    nearest_neighbours,
    png_bytes,
    prior_samples,
    slerp,
    traversal_grid,
    traversal_range,
    trustworthiness_2d,
)
from aelab.metrics.evaluate import encode_array
from aelab.metrics.results import project_2d
from aelab.runs.folder import load_model
from aelab.runs.train import train_run
from aelab.training.setup import prepare_run

KSPARSE = {"latent_dim": 8, "k": 2, "k_test_multiplier": 1.5}  # alpha * k = 3 kept at encode time


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """A trained model of each variant the explore functions treat differently."""
    root = tmp_path_factory.mktemp("explore-runs")
    specs = {"ae": {}, "vae": {}, "cvae": {}, "contractive": {}, "sparse": {}, "ksparse": KSPARSE}
    out = {}
    for variant, extra in specs.items():
        run = prepare_run(variant, "digits", {"latent_dim": 3, "hidden": "32", **extra},
                          {"epochs": 2, "caches": False}, runs_dir=root)
        assert train_run(run)["state"] == "done"
        out[variant] = load_model(run)
    return out


def sigmoid_decode(model, z, y=None) -> np.ndarray:
    """Images decoded straight through ``model.decode`` (not ``explore.decode_codes``)."""
    with torch.no_grad():
        z_t = torch.tensor(np.asarray(z, dtype=np.float32))
        y_t = None if y is None else torch.tensor(np.asarray(y, dtype=np.int64))
        return torch.sigmoid(model.decode(z_t, y_t)).numpy()


# --- traversal ---
@pytest.mark.slow
@pytest.mark.parametrize("variant", ["vae", "cvae"])
def test_vae_range_is_symmetric_three_aggregate_posterior_std(models, digits, variant):
    model = models[variant]
    x, y = digits.x_test, digits.y_test
    codes = encode_array(model, x, y)
    low, high = traversal_range(model, x, y, codes)
    with torch.no_grad():
        mu, logvar = model.posterior(torch.from_numpy(x), torch.from_numpy(y))
    mu, var = mu.double().numpy(), logvar.double().exp().numpy()
    # the aggregate posterior (1/N) sum_i N(mu_i, var_i) has variance Var[mu] + E[var]
    std = np.sqrt(mu.var(0) + var.mean(0))
    np.testing.assert_allclose(high, 3 * std, rtol=1e-5)
    np.testing.assert_allclose(low, -3 * std, rtol=1e-5)
    assert traversal_range(model, x, y, codes, width=2.0)[1] == pytest.approx(2 * std, rel=1e-5)


@pytest.mark.parametrize("variant", ["ae", "contractive", "ksparse"])
def test_plain_ae_range_is_the_observed_code_range(models, digits, variant):
    model = models[variant]
    codes = encode_array(model, digits.x_test)
    low, high = traversal_range(model, digits.x_test, None, codes)
    assert np.array_equal(low, codes.min(0)) and np.array_equal(high, codes.max(0))
    assert (low < high).any()


def test_dimension_order_sorts_by_kl_and_splits_at_the_threshold():
    kl = np.array([0.5, 0.001, 2.0, 0.01, 0.0, 0.5])
    active, inactive = dimension_order(kl, 6, threshold=0.01)
    assert active == [2, 0, 5, 3]  # descending KL, ties in index order; 0.01 is not below
    assert inactive == [1, 4]
    assert dimension_order(kl, 6, threshold=0.6) == ([2], [0, 5, 3, 1, 4])
    assert dimension_order(list(kl), 6, threshold=0.0) == ([2, 0, 5, 3, 1, 4], [])
    assert dimension_order(None, 4) == ([0, 1, 2, 3], [])
    assert dimension_order(np.full(3, 1e-4), 3) == ([], [0, 1, 2])  # default threshold 0.01
    many = np.random.default_rng(0).choice([0.5, 0.2, 0.001], 40)  # many ties
    active, inactive = dimension_order(many, 40)
    expected = [d for level in (0.5, 0.2) for d in range(40) if many[d] == level]
    assert active == expected and inactive == [d for d in range(40) if many[d] == 0.001]


@pytest.mark.parametrize("variant", ["ae", "cvae"])
def test_traversal_grid_row_d_varies_only_z_d(models, digits, variant):
    model = models[variant]
    y = digits.y_test[:1] if variant == "cvae" else None
    base = encode_array(model, digits.x_test[:1], y)[0]
    low, high = base - np.array([1.0, 2.0, 3.0]), base + np.array([2.0, 1.0, 0.5])
    dims, steps = [2, 0], 5
    label = None if y is None else int(y[0])
    grid = traversal_grid(model, base, dims, low, high, steps, label)
    assert grid.shape == (2, steps, 1, 8, 8)
    for row, d in enumerate(dims):
        codes = np.tile(base, (steps, 1))
        codes[:, d] = np.linspace(low[d], high[d], steps)
        expected = sigmoid_decode(model, codes, None if y is None else np.full(steps, label))
        np.testing.assert_allclose(grid[row], expected, atol=1e-6)
        assert np.abs(grid[row, 0] - grid[row, -1]).max() > 1e-3  # the sweep shows
    # the middle of a symmetric sweep around the base is the base's own decoding
    middle = traversal_grid(model, base, [1], base - 1.0, base + 1.0, 5, label)[0, 2]
    np.testing.assert_allclose(middle, sigmoid_decode(model, base[None], y)[0], atol=1e-6)


# --- generation and interpolation ---
@pytest.mark.parametrize("variant", ["ae", "vae", "cvae"])
def test_interpolation_paths_start_and_end_at_the_two_codes(models, digits, variant):
    model = models[variant]
    xa, xb = digits.x_test[3], digits.x_test[7]
    ya, yb = (int(digits.y_test[3]), int(digits.y_test[7])) if variant == "cvae" else (None, None)
    with torch.no_grad():
        cond = (lambda v: None) if ya is None else (lambda v: torch.tensor([v]))
        za = model.encode(torch.from_numpy(xa[None]), cond(ya))[0].numpy()
        zb = model.encode(torch.from_numpy(xb[None]), cond(yb))[0].numpy()
    steps = 6
    paths = interpolation_codes(model, xa, xb, ya, yb, steps)
    rows = interpolation_rows(model, xa, xb, ya, yb, steps)
    names = ["linear in code space"] + (["spherical in code space"] if variant != "ae" else [])
    assert list(paths) == names and list(rows) == names + ["pixel blending"]
    for name in names:
        assert paths[name].shape == (steps, 3)
        np.testing.assert_allclose(paths[name][0], za, atol=1e-5)
        np.testing.assert_allclose(paths[name][-1], zb, atol=1e-5)
        assert rows[name].shape == (steps, 1, 8, 8)
        first = sigmoid_decode(model, za[None], None if ya is None else [ya])[0]
        last = sigmoid_decode(model, zb[None], None if yb is None else [yb])[0]
        np.testing.assert_allclose(rows[name][0], first, atol=1e-5)
        np.testing.assert_allclose(rows[name][-1], last, atol=1e-5)
    np.testing.assert_allclose(paths["linear in code space"][steps // 2],
                               za + (zb - za) * (steps // 2) / (steps - 1), atol=1e-5)
    blend = rows["pixel blending"]
    assert np.array_equal(blend[0], xa) and np.array_equal(blend[-1], xb)
    np.testing.assert_allclose(blend[2], 0.6 * xa + 0.4 * xb, atol=1e-6)


def test_slerp_keeps_endpoints_and_unit_norm():
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal(5), rng.standard_normal(5)
    a, b = a / np.linalg.norm(a), b / np.linalg.norm(b)
    t = np.linspace(0, 1, 11)
    path = slerp(a, b, t)
    assert path.shape == (11, 5)
    np.testing.assert_allclose(path[0], a, atol=1e-12)
    np.testing.assert_allclose(path[-1], b, atol=1e-12)
    np.testing.assert_allclose(np.linalg.norm(path, axis=1), 1.0, atol=1e-12)
    # constant angular speed: equal angles between neighbours
    angles = np.arccos(np.clip(np.sum(path[1:] * path[:-1], axis=1), -1, 1))
    np.testing.assert_allclose(angles, angles[0], atol=1e-9)
    assert np.linalg.norm((a + b) / 2) < 0.99  # whereas the linear midpoint leaves the sphere
    np.testing.assert_allclose(slerp(a, a, t), np.tile(a, (11, 1)), atol=1e-12)  # parallel
    antipodal = slerp(a, -a, t)  # no great circle is singled out; the path stays bounded
    assert np.isfinite(antipodal).all() and np.linalg.norm(antipodal, axis=1).max() <= 1 + 1e-9


def test_prior_samples_are_seeded(models):
    model = models["vae"]
    a, b = prior_samples(model, 4, seed=1), prior_samples(model, 4, seed=1)
    c = prior_samples(model, 4, seed=2)
    assert a.shape == (4, 1, 8, 8) and np.array_equal(a, b) and not np.allclose(a, c)
    z = np.random.default_rng(1).standard_normal((4, 3))
    np.testing.assert_allclose(a, sigmoid_decode(model, z), atol=1e-6)


def test_class_swap_grid_keeps_z_per_row_and_changes_label_per_column(models):
    model = models["cvae"]
    grid = class_swap_grid(model, 3, seed=5)
    assert grid.shape == (3, 10, 1, 8, 8)
    for label in range(10):  # column c is the class-c grid of the same prior codes
        np.testing.assert_allclose(grid[:, label], prior_samples(model, 3, 5, y=np.array([label])),
                                   atol=1e-6)
    for row in grid:  # every label gives a different picture of the same z
        flat = row.reshape(10, -1)
        distance = np.abs(flat[:, None] - flat[None]).max(-1)
        assert (distance + np.eye(10) > 1e-4).all()
    assert not np.allclose(grid[0], grid[1])  # rows: different z


# --- latent space ---
@pytest.mark.slow
def test_trustworthiness_is_one_for_a_perfect_view_and_lower_for_a_random_one(digits):
    x = digits.x_test.reshape(len(digits.x_test), -1)
    plane = np.random.default_rng(0).standard_normal((300, 2))
    assert trustworthiness_2d(plane, plane) == pytest.approx(1.0)
    assert trustworthiness_2d(plane, 3 * plane + 1) == pytest.approx(1.0)  # same neighbours
    random_view = np.random.default_rng(1).standard_normal((len(x), 2))
    pca_view = project_2d(x, "pca")
    random_score, pca_score = trustworthiness_2d(x, random_view), trustworthiness_2d(x, pca_view)
    assert random_score < 0.65 < pca_score < 1.0  # random ~0.5; PCA keeps many neighbours


def test_trustworthiness_scores_a_seeded_subset_of_large_sets(monkeypatch):
    from sklearn.manifold import trustworthiness

    monkeypatch.setattr(explore, "TRUST_POINTS", 60)
    rng = np.random.default_rng(0)
    high, low = rng.standard_normal((200, 4)), rng.standard_normal((200, 2))
    pick = np.random.default_rng(3).choice(200, 60, replace=False)
    expected = trustworthiness(high[pick], low[pick], n_neighbors=5)
    assert trustworthiness_2d(high, low, seed=3) == pytest.approx(expected)
    assert trustworthiness_2d(high, low, seed=4) != pytest.approx(expected)


def test_a_selection_in_any_view_names_the_same_points_in_every_view(monkeypatch):
    rng = np.random.default_rng(0)
    views = {"a": rng.random((6, 2)), "b": rng.random((6, 2))}
    labels = np.array([2, 1, 2, 1, 0, 0])
    groups = explore.label_groups(labels, 6)
    assert [(name, member.tolist()) for name, _, member in groups] == [
        ("0", [4, 5]), ("1", [1, 3]), ("2", [0, 2])]
    assert len({colour for _, colour, _ in groups}) == 3
    figure = explore.label_scatters(views, labels, selected=[4, 1])
    assert len(figure.data) == 2 * 3  # a trace per view and class
    for v, points in enumerate(views.values()):
        for (name, colour, member), trace in zip(groups, figure.data[3 * v:3 * v + 3]):
            assert trace.name == name and trace.marker.color == colour and trace.showlegend == (v == 0)
            np.testing.assert_array_equal(np.column_stack([trace.x, trace.y]), points[member])
        # the selected points 4 (class 0, first) and 1 (class 1, first), none of class 2
        assert [t.selectedpoints for t in figure.data[3 * v:3 * v + 3]] == [(0,), (0,), ()]
    assert all(t.selectedpoints is None for t in explore.label_scatters(views, labels).data)
    assert {t.type for t in figure.data} == {"scatter"}  # few points: SVG
    monkeypatch.setattr(explore, "SVG_POINTS", 5)
    assert {t.type for t in explore.label_scatters(views, labels).data} == {"scattergl"}
    # a lasso in view b over its class-2 trace (curve 5) and class-0 trace (curve 3)
    event = [{"curve_number": 5, "point_index": 1}, {"curve_number": 3, "point_index": 0},
             {"curve_number": 3, "point_index": 1}]
    assert explore.selected_indices(event, groups) == [2, 4, 5]
    assert explore.selected_indices([], groups) == []
    unlabelled = explore.label_groups(None, 6)
    assert explore.selected_indices([{"curve_number": 1, "point_index": 3}], unlabelled) == [3]
    assert not any(t.showlegend for t in explore.label_scatters(views, None).data)


def test_latent_scores_compare_codes_pca_codes_and_pixels(models, digits):
    from sklearn.manifold import trustworthiness
    from sklearn.neighbors import KNeighborsClassifier

    model = models["ae"]
    index = np.arange(0, len(digits.x_test), 2)
    x, y = digits.x_test[index], digits.y_test[index]
    codes = encode_array(model, x)
    flat = x.reshape(len(x), -1)
    caches = {"index": index, "labels": y, "codes": codes,
              "pca_codes": project_2d(codes, "pca"), "umap_codes": codes[:, :2],
              "pca_pixels": project_2d(x, "pca"), "umap_pixels": flat[:, :2]}
    rows = {row["space"]: row for row in latent_scores(model, digits, caches)}
    assert list(rows) == ["codes", "PCA codes (3)", "raw pixels"]
    assert [r["dims"] for r in rows.values()] == [3, 3, 64]
    for row in rows.values():
        assert 0.0 <= row["knn_acc"] <= 1.0 and 0.0 <= row["linear_acc"] <= 1.0
    knn = KNeighborsClassifier(5).fit(digits.x_train.reshape(len(digits.x_train), -1), digits.y_train)
    assert rows["raw pixels"]["knn_acc"] == pytest.approx(knn.score(flat, y))
    assert rows["raw pixels"]["knn_acc"] > 0.9  # digits pixels: a strong baseline
    assert rows["codes"]["trust PCA 2-D"] == pytest.approx(
        trustworthiness(codes, caches["pca_codes"], n_neighbors=5))
    assert rows["codes"]["trust UMAP 2-D"] == pytest.approx(
        trustworthiness(codes, codes[:, :2], n_neighbors=5))
    assert rows["raw pixels"]["trust PCA 2-D"] == pytest.approx(
        trustworthiness(flat, caches["pca_pixels"], n_neighbors=5))
    assert "trust PCA 2-D" not in rows["PCA codes (3)"]  # no 2-D view of it is shown


def test_nearest_neighbours_are_the_closest_other_points():
    line = np.array([[0.0], [1.0], [3.0], [6.0], [10.0]])
    assert nearest_neighbours(line, 1, k=2).tolist() == [0, 2]
    assert nearest_neighbours(line, 4, k=3).tolist() == [3, 2, 1]
    assert nearest_neighbours(line, 0, k=10).tolist() == [1, 2, 3, 4]  # never itself
    codes = np.random.default_rng(0).standard_normal((100, 4))
    from sklearn.neighbors import NearestNeighbors

    expected = NearestNeighbors(n_neighbors=9).fit(codes).kneighbors(codes[[17]])[1][0][1:]
    assert nearest_neighbours(codes, 17, k=8).tolist() == expected.tolist()


# --- inside a model ---
@pytest.mark.parametrize("variant", ["ae", "cvae"])
def test_filters_and_atoms_are_the_weights_rescaled_per_image(models, variant):
    model = models[variant]
    filters, atoms = filters_and_atoms(model, n=20)
    assert filters.shape == (20, 1, 8, 8) and atoms.shape == (20, 1, 8, 8)
    first = model.encoder.body[1].weight.detach().numpy()[:20]     # (32, 64) after Flatten
    last = model.decoder.net[-2].weight.detach().numpy().T[:20]    # (64, 32) before Unflatten
    # filters: symmetric around 0 per filter (0 -> mid grey, the largest |weight| -> 0 or 1)
    flat = filters.reshape(20, -1)
    assert np.abs(flat - 0.5).max(1) == pytest.approx(0.5)
    np.testing.assert_allclose(flat, 0.5 + 0.5 * first / np.abs(first).max(1, keepdims=True), atol=1e-6)
    # atoms: each to its own [min, max]
    flat = atoms.reshape(20, -1)
    assert flat.min(1) == pytest.approx(0.0) and flat.max(1) == pytest.approx(1.0)
    low, high = last.min(1, keepdims=True), last.max(1, keepdims=True)
    np.testing.assert_allclose(flat, (last - low) / (high - low), atol=1e-6)
    assert len(filters_and_atoms(model, n=100)[0]) == 32  # at most one per hidden unit


def test_filters_and_atoms_refuse_conv_runs():
    from aelab.models import build_model, make_config

    conv = build_model(make_config("ae", latent_dim=2, arch="conv", hidden=(4,),
                                   input_shape=(1, 8, 8)))
    with pytest.raises(ValueError, match="MLP runs only"):
        filters_and_atoms(conv)


def test_mean_activations_of_sparse_units(models, digits):
    model = models["sparse"]
    rho_hat = mean_activations(model, digits.x_test)
    with torch.no_grad():
        a = torch.sigmoid(model.encoder(torch.from_numpy(digits.x_test))).numpy()
    np.testing.assert_allclose(rho_hat, a.mean(0), atol=1e-6)
    assert ((rho_hat > 0) & (rho_hat < 1)).all()


def test_kept_frequency_counts_the_top_alpha_k_units(models, digits):
    model = models["ksparse"]
    freq = kept_frequency(model, digits.x_test)
    kept = round(KSPARSE["k_test_multiplier"] * KSPARSE["k"])  # 3 of 8 units per image
    assert freq.shape == (8,)
    assert freq.sum() == pytest.approx(kept)  # exactly alpha*k units per image
    assert freq.mean() == pytest.approx(kept / KSPARSE["latent_dim"])
    with torch.no_grad():  # independently: which units are among each image's top alpha*k
        raw = model.encoder(torch.from_numpy(digits.x_test))
    top = torch.zeros_like(raw).scatter_(1, raw.topk(kept, dim=1).indices, 1.0)
    np.testing.assert_allclose(freq, top.mean(0).numpy(), atol=1e-9)


@pytest.mark.parametrize("variant", ["contractive", "ae"])
def test_jacobian_singular_values_match_autograd_and_numpy(models, digits, variant):
    model = models[variant]
    x = digits.x_test[:5]
    values = jacobian_singular_values(model, x, n=4)
    assert values.shape == (4, 3)
    for image, got in zip(x, values):
        flat = torch.from_numpy(image.reshape(-1))
        jac = torch.autograd.functional.jacobian(
            lambda v: model.encode(v.reshape(1, 1, 8, 8))[0], flat).numpy()  # (3, 64)
        expected = np.linalg.svd(jac.astype(np.float64), compute_uv=False)
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-7)
        assert (np.diff(got) <= 0).all()


def test_jacobian_of_a_conditional_encoder_uses_the_label(models, digits):
    model = models["cvae"]
    x, y = digits.x_test[:2], digits.y_test[:2]
    got = jacobian_singular_values(model, x, y)
    flat = torch.from_numpy(x[1].reshape(-1))
    jac = torch.autograd.functional.jacobian(
        lambda v: model.encode(v.reshape(1, 1, 8, 8), torch.from_numpy(y[1:2]))[0], flat).numpy()
    np.testing.assert_allclose(got[1], np.linalg.svd(jac, compute_uv=False), rtol=1e-4, atol=1e-7)


# --- pictures ---
def test_png_bytes_round_trip():
    rng = np.random.default_rng(0)
    for picture in (rng.integers(0, 256, (9, 13), dtype=np.uint8),
                    rng.integers(0, 256, (9, 13, 3), dtype=np.uint8)):
        data = png_bytes(picture)
        assert data[:8] == b"\x89PNG\r\n\x1a\n"
        assert np.array_equal(np.asarray(Image.open(io.BytesIO(data))), picture)


def test_gif_bytes_is_an_animated_looping_gif_playing_forth_and_back():
    frames = [np.full((6, 10), v, dtype=np.uint8) for v in (0, 80, 160, 240)]
    frames[1][0, 0] = 7
    data = gif_bytes(frames, duration_ms=50)
    gif = Image.open(io.BytesIO(data))
    assert gif.format == "GIF" and gif.is_animated and gif.info["loop"] == 0
    assert gif.n_frames == 6  # 0 1 2 3 2 1
    shown = []
    for i in range(gif.n_frames):
        gif.seek(i)
        shown.append(np.asarray(gif.convert("L")))
    order = [0, 1, 2, 3, 2, 1]
    for picture, j in zip(shown, order):
        assert np.array_equal(picture, frames[j])


def test_decode_codes_is_sigmoid_of_the_decoder_and_broadcasts_a_label(models):
    model = models["cvae"]
    z = np.random.default_rng(0).standard_normal((4, 3)).astype(np.float32)
    np.testing.assert_allclose(decode_codes(model, z, 6), sigmoid_decode(model, z, [6] * 4), atol=1e-6)
    np.testing.assert_allclose(decode_codes(model, z, np.array([2])), sigmoid_decode(model, z, [2] * 4),
                               atol=1e-6)
