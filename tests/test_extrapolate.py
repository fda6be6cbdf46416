"""Intervention extrapolation (mncrl.extrapolate): the control function against the truth and
against the method without it, ``direct``, a given unmixing, one clear error per bad input, and
the batch over seeds as a per-seed map."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mncrl import extrapolate as ex
from mncrl.actions import ActionScenario, simulate_actions
from mncrl.errors import DataError, MncrlError, NotIdentifiableError

HP = dict(landmarks=50)
# seed 0: the confounding direction moves E[Y | Z] along the extrapolation line, so the method
# without a control function is visibly biased there (how much is seed-dependent)
SEED = 0


@pytest.fixture(scope="module")
def data():
    return simulate_actions(ActionScenario(n=4000, effect=0.5, confounding=0.9), SEED)


@pytest.fixture(scope="module")
def inside(data):
    """The line's points inside the support, |s| <= 1: (s, a*, truth). Nine of them, as in
    test_cli_extrapolate (the same shapes: the compiled programs are shared)."""
    ins = np.abs(data.s) <= 1
    assert ins.sum() == 9 and (np.abs(data.a[ins]) <= 1).all()
    return data.s[ins], data.a[ins], data.truth[ins]


@pytest.fixture(scope="module")
def cf(data, inside):
    return ex.extrapolate(data.X, data.A, data.Y, inside[1], latent_dim=3, **HP)


def _rmse(pred, inside):
    return float(np.sqrt(np.mean((pred - inside[2]) ** 2)))


def _slope(values, inside):
    """Least-squares slope of ``values`` against the line position s."""
    return float(np.polyfit(inside[0], values, 1)[0])


def test_control_function_close_to_the_truth_inside(data, inside, cf):
    s, a_star, truth = inside
    assert cf.prediction.shape == truth.shape and cf.prediction.dtype == np.float64
    # the level: within 4 standard errors sd(Y) / sqrt(n) (= 0.02) of the truth
    err = np.abs(cf.prediction - truth)
    assert err.max() < 4 * data.Y.std() / np.sqrt(len(data.Y)), err
    # the shape: the effect of moving along the line (truth: slope 0.125)
    truth_slope = _slope(truth, inside)
    assert truth_slope > 0.1
    assert abs(_slope(cf.prediction, inside) - truth_slope) < 0.25 * truth_slope
    np.testing.assert_array_equal(cf.a_star, a_star)
    assert cf.M.shape == (3, 3) and cf.W.shape == (3, 3)
    assert cf.info["method"] == "control-function" and cf.info["encoder"] == "pca"
    assert cf.info["rows"] == 4000 and cf.info["landmarks"] == 50
    # overlap: the evaluation points lie inside the training representation
    assert cf.overlap.shape == s.shape and (cf.overlap >= 0.95).all()


def test_no_control_function_is_biased_under_confounding(data, inside, cf):
    ncf = ex.extrapolate(
        data.X, data.A, data.Y, inside[1], latent_dim=3, method="no-control-function", **HP
    )
    assert ncf.info["method"] == "no-control-function" and ncf.overlap is not None
    r_cf, r_ncf = _rmse(cf.prediction, inside), _rmse(ncf.prediction, inside)
    assert r_ncf > 0.15 and r_ncf > 3 * r_cf, (r_ncf, r_cf)
    # E[Y | Z] is not l(Z): the confounding multiplies the apparent effect along the line
    truth_slope = _slope(inside[2], inside)
    assert abs(_slope(ncf.prediction, inside) - truth_slope) > truth_slope


def test_direct_needs_no_representation(data, inside):
    res = ex.extrapolate(data.X, data.A, data.Y, inside[1], latent_dim=3, method="direct", **HP)
    assert res.M is None and res.W is None and res.overlap is None
    assert res.info["method"] == "direct" and "encoder" not in res.info
    # A is exogenous: inside the support a regression of Y on A is E[Y | do(A)]
    assert np.abs(res.prediction - inside[2]).max() < 4 * data.Y.std() / np.sqrt(len(data.Y))
    # X plays no part (its columns need not even be the ones of a representation)
    other = ex.extrapolate(
        np.zeros_like(data.X) + np.arange(3.0),
        data.A,
        data.Y,
        inside[1],
        latent_dim=3,
        method="direct",
        **HP,
    )
    np.testing.assert_array_equal(other.prediction, res.prediction)


def test_true_unmixing(data, inside, cf):
    W = np.linalg.pinv(data.effects.L)
    res = ex.extrapolate(data.X, data.A, data.Y, inside[1], latent_dim=3, unmixing=W, **HP)
    assert res.info["encoder"] == "unmixing"
    np.testing.assert_array_equal(res.W, W)
    # the true unmixing gives Zh = Z - mean(Z): M estimates M0 itself (least-squares standard
    # error about sd(V) / (sd(A) sqrt(n)) = 1 / (0.58 * 63) = 0.03)
    assert np.abs(res.M - data.effects.M0).max() < 0.15
    assert np.abs(res.prediction - cf.prediction).max() < 0.05
    assert np.abs(res.prediction - inside[2]).max() < 4 * data.Y.std() / np.sqrt(len(data.Y))


def _bad(data, **change):
    args = dict(X=data.X, A=data.A, Y=data.Y, a_star=data.a, latent_dim=3)
    args.update(change)
    X, A, Y, a_star = (args.pop(k) for k in ("X", "A", "Y", "a_star"))
    return lambda: ex.extrapolate(X, A, Y, a_star, **args, **HP)


def _nan(a, where=(5, 1)):
    a = a.copy()
    a[where] = np.nan
    return a


@pytest.mark.parametrize(
    "change, error, match",
    [
        (lambda d: dict(X=_nan(d.X)), DataError, r"^X contains 1 NaN/Inf values$"),
        (lambda d: dict(Y=_nan(d.Y, 7)), DataError, r"^Y contains 1 NaN/Inf values$"),
        (lambda d: dict(A=d.A[:-1]), DataError, r"^A has 3999 rows, X has 4000$"),
        (lambda d: dict(Y=d.Y[:-3]), DataError, r"^Y has 3997 rows, X has 4000$"),
        (lambda d: dict(a_star=d.a[:, :2]), DataError, r"^a_star has 2 columns, A has 3$"),
        (lambda d: dict(latent_dim=4), DataError, r"^latent_dim must be an integer in \[1, 3\]"),
        (lambda d: dict(latent_dim=0), DataError, r"^latent_dim must be an integer in \[1, 3\]"),
        (
            lambda d: dict(X=d.X[:50], A=d.A[:50], Y=d.Y[:50]),
            DataError,
            r"^50 rows are too few for 3 actions and 3 latents$",
        ),
        (lambda d: dict(method="ridge"), MncrlError, r"^unknown method 'ridge'; allowed: "),
        (lambda d: dict(method="oracle"), MncrlError, r"^unknown method 'oracle'"),
        (lambda d: dict(width=3), MncrlError, r"^extrapolate: unknown hyper-parameter 'width'$"),
        (lambda d: dict(eval_rows=0), MncrlError, r"^extrapolate: eval_rows must be an integer"),
        (
            lambda d: dict(A=np.column_stack([d.A[:, 0], d.A[:, 0], d.A[:, 2]])),
            NotIdentifiableError,
            r"^the actions are collinear",
        ),
        (
            lambda d: dict(unmixing=np.ones((3, 2))),
            DataError,
            r"^unmixing must be 3 x 3, got \(3, 2\)$",
        ),
        (
            lambda d: dict(unmixing=np.ones((3, 3))),
            NotIdentifiableError,
            r"^the representation has rank 1 < latent_dim = 3",
        ),
    ],
)
def test_bad_inputs_one_clear_error(data, change, error, match):
    with pytest.raises(error, match=match) as info:
        _bad(data, **change(data))()
    assert "\n" not in str(info.value)
    if error is MncrlError:  # not a data problem
        assert not isinstance(info.value, DataError | NotIdentifiableError)


def test_check_inputs_returns_float64_and_flattens_y(data):
    X, A, y, a_star = ex.check_inputs(
        data.X.astype(np.float32), data.A, data.Y[:, None], data.a[:2], latent_dim=2
    )
    assert X.dtype == A.dtype == y.dtype == a_star.dtype == np.float64
    assert X.shape == (4000, 3) and y.shape == (4000,) and a_star.shape == (2, 3)
    with pytest.raises(DataError, match="^Y must be one outcome column, got 2$"):
        ex.check_inputs(data.X, data.A, np.column_stack([data.Y, data.Y]), data.a, 2)


def test_batch_is_a_per_seed_map():
    """all_methods_batch over 2 seeds equals all_methods (jitted) per seed."""
    s = ActionScenario(n=600, effect=0.5, confounding=0.9, grid_points=5, truth_draws=1000)
    sets = [simulate_actions(s, seed) for seed in (0, 1)]
    names = ("X", "Z", "A", "Y", "a")
    keys = jax.random.split(jax.random.key(3), 2)
    hp = dict(latent_dim=3, landmarks=20, length_scale=1.0, eval_rows=200)
    batch = ex.all_methods_batch(
        keys,
        *(jnp.asarray(np.stack([getattr(d, n) for d in sets]), jnp.float32) for n in names),
        **hp,
    )
    assert set(batch) == {*ex.METHODS, "overlap"}
    one = jax.jit(ex.all_methods, static_argnames=tuple(hp))
    for i, d in enumerate(sets):
        single = one(keys[i], *(jnp.asarray(getattr(d, n), jnp.float32) for n in names), **hp)
        for name, value in single.items():
            assert batch[name].shape == (2, 5)
            np.testing.assert_allclose(
                np.asarray(batch[name][i]), np.asarray(value), rtol=1e-5, atol=1e-5, err_msg=name
            )
    # the two seeds are different problems: the map does not repeat one of them
    for name in ex.METHODS:
        assert not np.allclose(batch[name][0], batch[name][1]), name
