"""mncrl.field: the signal subspace (exact and streamed dask), area weights, regression maps and
pattern correlations."""

import dask.array as da
import numpy as np
import pytest

from mncrl.errors import MncrlError
from mncrl.field import (
    coslat_weights,
    pattern_correlation,
    regression_patterns,
    signal_subspace,
)
from mncrl.metrics import mcc


def _field(T=600, C=400, d=3, noise=0.05, seed=0, offset=280.0):
    """X = Z L + noise + a large climatological mean; lat of every cell."""
    rng = np.random.default_rng(seed)
    Z = rng.standard_normal((T, d)) * np.linspace(3, 1, d)
    L = rng.standard_normal((d, C))
    lat = rng.uniform(-70, 70, C)
    X = offset + Z @ L + noise * rng.standard_normal((T, C))
    return X, Z, L, lat


def _same_subspace(a, b, atol):
    assert np.allclose(a.singular_values, b.singular_values, rtol=atol)
    assert np.allclose(a.eofs, b.eofs, atol=atol)  # deterministic signs
    assert np.allclose(a.scores, b.scores, atol=atol * np.abs(a.scores).max())
    assert np.allclose(a.mean, b.mean, atol=atol * 300)
    assert a.explained == pytest.approx(b.explained, rel=atol)


@pytest.mark.parametrize("chunks", [(100, 400), (64, 150)])
def test_dask_agrees_with_exact(chunks):
    X, Z, L, lat = _field()
    w = coslat_weights(lat)
    exact = signal_subspace(X, 3, weights=w)
    lazy = signal_subspace(da.from_array(X, chunks=chunks), 3, weights=w, seed=1)
    _same_subspace(exact, lazy, 1e-8)


def test_dask_float32_is_close_and_seeded():
    X, Z, L, lat = _field()
    exact = signal_subspace(X, 3)
    X32 = da.from_array(X.astype(np.float32), chunks=(128, 400))
    a = signal_subspace(X32, 3, seed=5)
    b = signal_subspace(X32, 3, seed=5)
    assert np.array_equal(a.scores, b.scores) and np.array_equal(a.eofs, b.eofs)
    # the float32 rounding of the data itself (offset 280) limits the agreement
    _same_subspace(exact, a, 1e-4)


def test_reduction_properties():
    X, Z, L, lat = _field(noise=0.0)
    w = coslat_weights(lat)
    red = signal_subspace(X, 3, weights=w)
    assert red.p == 3 and red.scores.shape == (600, 3) and red.eofs.shape == (3, 400)
    assert np.allclose(red.eofs @ red.eofs.T, np.eye(3), atol=1e-10)
    assert red.explained == pytest.approx(1.0)
    assert np.allclose(red.mean, X.mean(axis=0))
    assert np.array_equal(red.weights, w)
    # the scores are the weighted anomalies projected on the EOFs
    assert np.allclose(red.scores, ((X - X.mean(axis=0)) * w) @ red.eofs.T)
    assert np.all(np.diff(red.singular_values) <= 0)
    # deterministic sign: each EOF's largest entry is positive
    assert (red.eofs[np.arange(3), np.abs(red.eofs).argmax(axis=1)] > 0).all()


def test_coslat_weights():
    w = coslat_weights([0.0, 60.0, -60.0, 90.0, -90.0])
    assert np.allclose(w, [1.0, np.sqrt(0.5), np.sqrt(0.5), 0.0, 0.0], atol=1e-8)
    for bad in ([91.0], [np.nan], [-100.0]):
        with pytest.raises(MncrlError, match="latitudes must be finite degrees"):
            coslat_weights(bad)


def test_weights_give_area_shares():
    """A cell with weight w contributes w^2 of its variance: zero weight, no influence."""
    X, Z, L, lat = _field(noise=0.0)
    w = np.ones(400)
    w[:200] = 0.0
    red = signal_subspace(X, 3, weights=w)
    assert np.allclose(red.eofs[:, :200], 0.0, atol=1e-12)
    only = signal_subspace(X[:, 200:], 3)
    assert np.allclose(red.singular_values, only.singular_values)


@pytest.mark.parametrize(
    "X,p,kwargs,match",
    [
        (np.zeros((10, 4, 2)), 2, {}, "must be 2-d"),
        (np.ones((10, 4)), 0, {}, "1 <= p <= min"),
        (np.ones((10, 4)), 5, {}, "1 <= p <= min"),
        (np.ones((10, 4)), 2, {"weights": np.ones(3)}, "one value per cell"),
        (np.ones((10, 4)), 2, {}, "no variance"),
    ],
)
def test_errors(X, p, kwargs, match):
    with pytest.raises(MncrlError, match=match):
        signal_subspace(X, p, **kwargs)


@pytest.mark.parametrize("lazy", [False, True])
def test_nan_is_an_error(lazy):
    X, Z, L, lat = _field(T=50, C=20)
    X[7, 3] = np.nan
    X = da.from_array(X, chunks=(10, 20)) if lazy else X
    with pytest.raises(MncrlError, match="missing"):
        signal_subspace(X, 2)


def test_patterns_recovered_from_true_latents_and_from_a_mixing():
    """X = Z L + noise: regression on Z (or on any invertible mix of the scores that recovers
    Z up to permutation and scale) gives back the rows of L."""
    X, Z, L, lat = _field(noise=0.2, seed=3)
    w = coslat_weights(lat)
    red = signal_subspace(da.from_array(X, chunks=(150, 400)), 3, weights=w)
    # the unmixing that maps the scores to Z (least squares), permuted and scaled
    W = np.linalg.lstsq(red.scores, Z - Z.mean(axis=0), rcond=None)[0]
    W = W[:, [2, 0, 1]] * [2.0, -0.5, 3.0]
    Zhat = red.scores @ W
    assert mcc(Z, Zhat) > 0.99
    B = regression_patterns(Zhat, red)
    assert B.shape == (3, 400)
    pc = pattern_correlation(L, B)
    assert pc.min() > 0.99, pc
    # in field units: the pattern of the latent Zhat_j = s_j Z_i is L_i / s_j
    assert np.allclose(B[1], -L[0] / 0.5, atol=0.05 * np.abs(L[0]).max() / 0.5)


def test_regression_patterns_nan_at_zero_weight_and_collinear_error():
    X, Z, L, lat = _field(noise=0.1)
    lat[:5] = 90.0
    red = signal_subspace(X, 3, weights=coslat_weights(lat))
    B = regression_patterns(red.scores, red)
    assert np.isnan(B[:, :5]).all() and np.isfinite(B[:, 5:]).all()
    with pytest.raises(MncrlError, match="collinear"):
        regression_patterns(red.scores[:, [0, 0]], red)


def test_pattern_correlation_matching_and_nan():
    rng = np.random.default_rng(0)
    A = rng.standard_normal((3, 50))
    B = A[[2, 0, 1]] * [[-2.0], [1.0], [0.5]]
    B[:, 4] = np.nan
    assert np.allclose(pattern_correlation(A, B), 1.0)
    assert np.allclose(pattern_correlation(A, B, perm=[1, 2, 0]), 1.0)
    assert pattern_correlation(A, B, perm=[0, 1, 2]).max() < 0.5
