"""The kernel ridge smoother (mncrl.smoother): recovery of a smooth function, additive blocks up
to constants, the GCV penalty and its closed form, affine equivariance, explicit-key
determinism."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mncrl import smoother

LANDMARKS = 50


def f2d(X):
    return np.sin(2 * X[:, 0]) * np.cos(X[:, 1]) + 0.5 * X[:, 1] ** 2


def f32(a):
    return jnp.asarray(a, dtype=jnp.float32)


def fit(key, inputs, y, landmarks=LANDMARKS, length_scale=1.0):
    """fit_additive under jit (the same function; one compilation per shape)."""
    return smoother.fit_additive_jit(
        jax.random.key(key),
        tuple(f32(x) for x in inputs),
        f32(y),
        landmarks=landmarks,
        length_scale=length_scale,
    )


@pytest.fixture(scope="module")
def smooth_2d():
    rng = np.random.default_rng(0)
    X = rng.uniform(-2, 2, (2000, 2))
    y = f2d(X) + 0.3 * rng.standard_normal(len(X))
    X_test = rng.uniform(-2, 2, (2000, 2))  # as many rows as X: shared compiled ops
    return X, y, X_test


def test_recovers_a_smooth_2d_function(smooth_2d):
    X, y, X_test = smooth_2d
    model = fit(0, (X,), y)
    pred = np.asarray(smoother.predict(model, (f32(X_test),)))
    truth = f2d(X_test)
    mse = np.mean((pred - truth) ** 2)
    # well below the function's own variance and below the noise variance (0.3^2)
    assert mse < 0.05 * truth.var(), (mse, truth.var())
    assert mse < 0.3**2 / 4, mse


def test_additive_blocks_recovered_up_to_a_constant():
    rng = np.random.default_rng(1)
    n = 2000
    x1 = rng.uniform(-2, 2, (n, 2))
    x2 = rng.uniform(-2, 2, (n, 1))

    def g1(x):
        return np.sin(2 * x[:, 0]) + 0.5 * x[:, 1] ** 2

    def g2(x):
        return np.abs(x[:, 0])

    y = 1.5 + g1(x1) + g2(x2) + 0.2 * rng.standard_normal(n)
    model = fit(1, (x1, x2), y)
    assert len(model.blocks) == 2
    # each block's term is centred on the training rows
    for i, x in enumerate((x1, x2)):
        assert abs(float(smoother.predict_block(model, i, f32(x)).mean())) < 1e-4
    # and equals its function up to a constant, on fresh rows inside the training range
    e1, e2 = rng.uniform(-1.8, 1.8, (n, 2)), rng.uniform(-1.8, 1.8, (n, 1))
    for i, x, g in ((0, e1, g1), (1, e2, g2)):
        diff = np.asarray(smoother.predict_block(model, i, f32(x))) - g(x)
        assert diff.var() < 0.02 * g(x).var(), (i, diff.var(), g(x).var())
    # predict is the intercept plus the blocks
    full = smoother.predict(model, (f32(e1), f32(e2)))
    parts = (
        model.intercept
        + smoother.predict_block(model, 0, f32(e1))
        + smoother.predict_block(model, 1, f32(e2))
    )
    np.testing.assert_allclose(np.asarray(full), np.asarray(parts), rtol=1e-6, atol=1e-6)
    # the whole prediction, constants included
    whole = np.asarray(full) - (1.5 + g1(e1) + g2(e2))
    assert np.mean(whole**2) < 0.01


def test_gcv_larger_penalty_for_noise_than_for_signal(smooth_2d):
    X, _, _ = smooth_2d
    rng = np.random.default_rng(2)
    noise = rng.standard_normal(len(X))
    clean = f2d(X) + 0.01 * noise
    r_noise = float(fit(0, (X,), noise).ridge)
    r_clean = float(fit(0, (X,), clean).ridge)
    for r in (r_noise, r_clean):
        assert np.isclose(r, smoother.RIDGE_GRID, rtol=1e-6).sum() == 1, r
    assert r_noise >= 1.0 and r_noise >= 1e3 * r_clean, (r_noise, r_clean)


def test_ridge_gcv_closed_form():
    """The coefficients are ridge regression with an unpenalised intercept and unpenalised
    free columns at the chosen penalty, and the chosen penalty minimises GCV over the grid
    (both recomputed in float64)."""
    rng = np.random.default_rng(3)
    n, p, free = 400, 12, 3
    F = rng.standard_normal((n, p)) * np.linspace(0.2, 3, p) + 1.0
    y = F @ rng.standard_normal(p) * 0.3 + rng.standard_normal(n)
    mask = (False,) * free + (True,) * (p - free)
    ridge_fn = jax.jit(smoother.ridge_gcv, static_argnums=2)
    coef, f_mean, ridge = (np.asarray(v, np.float64) for v in ridge_fn(f32(F), f32(y), mask))
    Fc, yc = F - F.mean(axis=0), y - y.mean()
    np.testing.assert_allclose(f_mean, F.mean(axis=0), rtol=1e-5)
    G = Fc.T @ Fc
    Lf = Fc[:, :free]
    R_res = Fc[:, free:] - Lf @ np.linalg.lstsq(Lf, Fc[:, free:], rcond=None)[0]
    base = np.linalg.eigvalsh(R_res.T @ R_res).mean()
    D = np.diag(np.asarray(mask, dtype=float))

    def solve(rel):
        return np.linalg.solve(G + rel * base * D, Fc.T @ yc)

    def gcv(rel):
        H = Fc @ np.linalg.solve(G + rel * base * D, Fc.T)
        return n * np.sum((yc - H @ yc) ** 2) / (n - np.trace(H)) ** 2

    np.testing.assert_allclose(coef, solve(float(ridge)), rtol=1e-3, atol=1e-4)
    scores = [gcv(r) for r in smoother.RIDGE_GRID]
    assert gcv(float(ridge)) <= min(scores) * (1 + 1e-5)
    # the penalty matters: an unpenalised-limit fit differs from the heavily penalised one
    assert not np.allclose(solve(smoother.RIDGE_GRID[0]), solve(smoother.RIDGE_GRID[-1]))


def test_linear_data_extrapolate_linearly():
    """The blocks' linear parts are not penalised: on linear data the quadratic and kernel
    features are shrunk away and the fit continues the line far outside the data."""
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (1000, 1))
    y = 2 * x[:, 0] + 0.3 * rng.standard_normal(1000)
    model = fit(0, (x,), y)
    far = np.asarray(smoother.predict(model, (f32(np.array([[-2.0], [2.0]])),)))
    np.testing.assert_allclose(far, [-4.0, 4.0], atol=0.25)


def test_whitening_ignores_eigenvector_signs():
    """Rescaling the inputs by a rounding-level factor does not redraw the features."""
    rng = np.random.default_rng(1)
    X = rng.standard_normal((500, 3)) * [1.0, 2.0, 3.0]
    y = np.tanh(X[:, 0]) + X[:, 1] * X[:, 2] / 6
    a = np.asarray(smoother.predict(fit(0, (X,), y), (f32(X[:20]),)))
    b = np.asarray(smoother.predict(fit(0, (X * (1 + 1e-6),), y), (f32(X[:20] * (1 + 1e-6)),)))
    np.testing.assert_allclose(a, b, atol=1e-3)


def test_explicit_key_determinism(smooth_2d):
    X, y, X_test = smooth_2d
    a, b, c = fit(5, (X,), y), fit(5, (X,), y), fit(6, (X,), y)
    pa, pb, pc = (np.asarray(smoother.predict(m, (f32(X_test),))) for m in (a, b, c))
    np.testing.assert_array_equal(pa, pb)
    for name in ("landmarks", "k_inv_sqrt"):
        np.testing.assert_array_equal(getattr(a.blocks[0], name), getattr(b.blocks[0], name))
        assert not np.allclose(getattr(a.blocks[0], name), getattr(c.blocks[0], name))
    assert a.blocks[0].landmarks.shape == (LANDMARKS, 2)
    assert not np.allclose(pa, pc)
    # another key is another draw of the same smoother: close, not equal
    assert np.mean((pa - pc) ** 2) < 0.05 * np.var(pa)
    # the block key is split per block: the same key gives two blocks different features
    two = fit(5, (X, X[:, :1]), y)
    assert not np.allclose(two.blocks[0].landmarks[:, :1], two.blocks[1].landmarks)


def test_affine_equivariance():
    """Inputs X H + c (H invertible, far from orthogonal) give the predictions of X, also far
    outside the data: whitening turns them by an orthogonal matrix, landmarks are rows and turn
    with them, and the Gaussian kernel only sees distances. This is what makes a representation
    identified up to an affine map as good as the true latents (mncrl.extrapolate)."""
    rng = np.random.default_rng(4)
    X = rng.standard_normal((1500, 3))
    y = np.tanh(X[:, 0]) * X[:, 1] + 0.5 * X[:, 2] ** 2 + 0.2 * rng.standard_normal(1500)
    H = np.array([[2.0, 0.5, 0.0], [-1.0, 0.3, 1.5], [0.2, -2.0, 0.7]])
    c = np.array([3.0, -1.0, 0.5])
    far = rng.standard_normal((200, 3)) * 3.0  # mostly in the tails of X
    pa = np.asarray(smoother.predict(fit(0, (X,), y), (f32(far),)))
    pb = np.asarray(smoother.predict(fit(0, (X @ H + c,), y), (f32(far @ H + c),)))
    np.testing.assert_allclose(pa, pb, atol=2e-3 * np.abs(pa).max())
