"""The action model of intervention extrapolation (mncrl.actions): determinism, shapes, the
discrete actions, M0, the Monte-Carlo truth against a closed form, the confounding, validation."""

import numpy as np
import pytest

from mncrl.actions import (
    ActionScenario,
    check,
    effects,
    extrapolation_line,
    interventional_mean,
    outcome,
    simulate_actions,
)
from mncrl.errors import MncrlError

SMALL = dict(n=500, truth_draws=2_000, grid_points=7)
ARRAYS = ("A", "X", "Y", "Z", "V", "U", "s", "a", "truth")
EFFECTS = ("M0", "C", "c", "w", "u", "L")


def test_same_seed_bit_identical_different_seed_differs():
    s = ActionScenario(**SMALL, obs_noise=0.1)
    one, two, other = simulate_actions(s, 3), simulate_actions(s, 3), simulate_actions(s, 4)
    for name in ARRAYS:
        a, b = getattr(one, name), getattr(two, name)
        assert a.dtype == np.float64 and a.tobytes() == b.tobytes(), name
    for name in EFFECTS:
        assert np.array_equal(getattr(one.effects, name), getattr(two.effects, name)), name
    # everything drawn differs under another seed (s, the grid positions, is not drawn)
    for name in ("A", "X", "Y", "Z", "V", "U", "a", "truth"):
        assert not np.allclose(getattr(one, name), getattr(other, name)), name
    for name in ("M0", "C", "c", "u", "L"):
        assert not np.allclose(getattr(one.effects, name), getattr(other.effects, name)), name


@pytest.mark.parametrize("d, k, m", [(3, None, None), (3, 5, 7), (2, 4, 2), (4, 4, 9)])
def test_shapes_and_structure(d, k, m):
    s = ActionScenario(d=d, k=k, m=m, targets_per_action=min(2, d), **SMALL)
    data = simulate_actions(s, 0)
    n, kk, mm = s.n, k or d, m or d
    assert (s.n_actions, s.m_obs) == (kk, mm)
    assert data.A.shape == (n, kk) and data.X.shape == (n, mm) and data.Y.shape == (n,)
    assert data.Z.shape == data.V.shape == (n, d) and data.U.shape == (n,)
    eff = data.effects
    assert eff.M0.shape == (kk, d) and eff.C.shape == (d, d) and eff.L.shape == (d, mm)
    assert eff.c.shape == eff.w.shape == (d,) and eff.u.shape == (kk,)
    assert data.s.shape == (s.grid_points,) and data.a.shape == (s.grid_points, kk)
    assert data.truth.shape == (s.grid_points,) and np.isfinite(data.truth).all()
    # the model's equations, exactly (no observation noise)
    np.testing.assert_allclose(data.Z, data.A @ eff.M0 + data.V, rtol=0, atol=1e-12)
    np.testing.assert_allclose(data.X, data.Z @ eff.L, rtol=0, atol=1e-12)
    np.testing.assert_allclose(data.Y, outcome(s.outcome, data.Z, eff.w) + data.U, atol=1e-12)
    assert np.linalg.matrix_rank(data.X) == d  # a tall mixing keeps rank d
    assert (np.abs(data.A) <= 1).all()


def test_extrapolation_line():
    s = ActionScenario(**{**SMALL, "grid_points": 11}, k=4, reach=2.5)
    data = simulate_actions(s, 1)
    u = data.effects.u
    assert np.abs(u).max() == pytest.approx(1.0) and (np.abs(u) >= 0.5 - 1e-12).all()
    np.testing.assert_allclose(data.s, np.linspace(-2.5, 2.5, 11))
    np.testing.assert_allclose(data.a, data.s[:, None] * u[None, :])
    # inside the training support [-1, 1]^k exactly when |s| <= 1
    inside = (np.abs(data.a) <= 1 + 1e-12).all(axis=1)
    np.testing.assert_array_equal(inside, np.abs(data.s) <= 1)
    pos, a = extrapolation_line(s, u)
    np.testing.assert_array_equal(pos, data.s)
    np.testing.assert_array_equal(a, data.a)


def test_levels_and_environments():
    s = ActionScenario(k=4, actions="levels", levels=3, **SMALL)
    data = simulate_actions(s, 2)
    for col in data.A.T:
        np.testing.assert_array_equal(np.unique(col), [-1.0, 0.0, 1.0])
    env = data.env
    assert env.shape == (s.n,) and env.min() == 0
    distinct = np.unique(data.A, axis=0)
    assert env.max() + 1 == len(distinct)
    # env indexes the distinct action vectors: same env <=> same action vector
    np.testing.assert_array_equal(distinct[env], data.A)
    # uniform actions: (almost surely) all distinct
    uniform = simulate_actions(ActionScenario(k=4, **SMALL), 2)
    assert len(np.unique(uniform.A[:, 0])) == s.n


@pytest.mark.parametrize("d, k, targets", [(3, None, 2), (3, 6, 1), (4, 5, 3), (2, 2, 2)])
def test_m0_rank_and_targets(d, k, targets):
    s = ActionScenario(d=d, k=k, targets_per_action=targets, effect=0.7, **SMALL)
    for seed in range(3):
        M0 = effects(s, seed).M0
        assert M0.shape == (k or d, d)
        assert np.linalg.matrix_rank(M0) == d
        np.testing.assert_array_equal(np.count_nonzero(M0, axis=1), targets)
        sv = np.linalg.svd(M0, compute_uv=False)
        assert sv[0] / sv[-1] <= 20


def test_sigma_v_and_confounding_direction():
    s = ActionScenario(d=4, v_std=1.5, v_coupling=0.5, **SMALL)
    eff = effects(s, 5)
    np.testing.assert_allclose(np.diag(eff.sigma_v), 1.5**2)  # unit columns times v_std
    assert np.linalg.norm(eff.c) == pytest.approx(1.0)
    assert set(np.unique(eff.w)) <= {-1.0, 1.0}


@pytest.mark.parametrize("seed", [0, 1])
def test_quadratic_truth_matches_closed_form(seed):
    """E[sum_j w_j (a M0 + V)_j^2 / 2] = sum_j w_j ((a M0)_j^2 + Sigma_V[j, j]) / 2; the
    tolerance is 5 Monte-Carlo standard errors of the mean over ``truth_draws`` draws, from the
    exact variance of a Gaussian quadratic form Q = Z' D Z / 2 (D = diag(w), Z ~ N(mu, S)):
    Var Q = tr((D S)^2) / 2 + mu' D S D mu."""
    s = ActionScenario(outcome="quadratic", n=100, grid_points=9, truth_draws=100_000)
    data = simulate_actions(s, seed)
    eff = data.effects
    S, D = eff.sigma_v, np.diag(eff.w)
    mu = data.a @ eff.M0
    closed = ((mu**2) @ eff.w + np.diag(S) @ eff.w) / 2
    var = np.trace(D @ S @ D @ S) / 2 + np.einsum("gi,ij,gj->g", mu, D @ S @ D, mu)
    tol = 5 * np.sqrt(var / s.truth_draws)
    # the tolerance is tight enough to see the Sigma_V term (|sum_j w_j| / 2 >= 0.5)
    assert (tol < abs(np.diag(S) @ eff.w) / 2).all()
    assert (np.abs(data.truth - closed) <= tol).all(), (data.truth - closed, tol)
    # interventional_mean is what simulate_actions stored
    np.testing.assert_array_equal(interventional_mean(s, eff, data.a, seed), data.truth)


@pytest.mark.parametrize("gamma", [0.5, 0.9])
def test_confounding_is_the_correlation_of_u_with_vc(gamma):
    n = 20_000
    s = ActionScenario(n=n, confounding=gamma, u_std=0.7, truth_draws=100, grid_points=3)
    data = simulate_actions(s, 7)
    eff = data.effects
    vc = data.V @ eff.c
    sd_vc = np.sqrt(eff.c @ eff.sigma_v @ eff.c)
    # sample sd of a Gaussian: standard error sd / sqrt(2 n)
    assert abs(vc.std() / sd_vc - 1) < 4 / np.sqrt(2 * n)
    assert abs(data.U.std() / s.u_std - 1) < 4 / np.sqrt(2 * n)
    # sample correlation: standard error (1 - rho^2) / sqrt(n)
    r = np.corrcoef(data.U, vc)[0, 1]
    assert abs(r - gamma) < 4 * (1 - gamma**2) / np.sqrt(n), r
    # U is independent of the exogenous actions
    for col in data.A.T:
        assert abs(np.corrcoef(data.U, col)[0, 1]) < 4 / np.sqrt(n)


def test_no_confounding():
    n = 20_000
    s = ActionScenario(n=n, confounding=0.0, truth_draws=100, grid_points=3)
    data = simulate_actions(s, 7)
    vc = data.V @ data.effects.c
    assert abs(np.corrcoef(data.U, vc)[0, 1]) < 4 / np.sqrt(n)
    # nor any other latent direction
    for col in data.V.T:
        assert abs(np.corrcoef(data.U, col)[0, 1]) < 4 / np.sqrt(n)


def test_outcome_functions():
    Z = np.array([[0.5, -1.0, 2.0], [1.0, 2.0, -0.5]])
    w = np.array([1.0, -1.0, 1.0])
    np.testing.assert_allclose(outcome("tanh", Z, w), np.tanh(Z) @ w)
    np.testing.assert_allclose(outcome("quadratic", Z, w), [(0.25 - 1 + 4) / 2, (1 - 4 + 0.25) / 2])
    np.testing.assert_allclose(
        outcome("interaction", Z, w), np.tanh(Z[:, 0]) * Z[:, 1] + np.tanh(Z[:, 2])
    )
    with pytest.raises(MncrlError, match="unknown outcome 'cubic'"):
        outcome("cubic", Z, w)


def test_from_dict_round_trip_and_unknown_key():
    s = ActionScenario(d=2, k=3, m=4, outcome="interaction", confounding=0.3)
    assert ActionScenario.from_dict(s.to_dict()) == s
    with pytest.raises(MncrlError, match="unknown action-scenario key 'sigma'"):
        ActionScenario.from_dict({"n": 100, "sigma": 1.0})


@pytest.mark.parametrize(
    "changes, key",
    [
        (dict(k=2), "k"),
        (dict(m=2), "m"),
        (dict(reach=1.0), "reach"),
        (dict(reach=0.5), "reach"),
        (dict(confounding=1.0), "confounding"),
        (dict(confounding=-0.1), "confounding"),
        (dict(outcome="cubic"), "outcome"),
        (dict(d=1, outcome="interaction", targets_per_action=1), "outcome"),
        (dict(targets_per_action=4), "targets_per_action"),
        (dict(n=5), "n"),
        (dict(n=True), "n"),
        (dict(levels=1), "levels"),
        (dict(truth_draws=10), "truth_draws"),
        (dict(v_coupling=1.0), "v_coupling"),
        (dict(effect=0.0), "effect"),
        (dict(actions="grid"), "actions"),
        (dict(mixing="reference"), "mixing"),
        (dict(condition=0.5), "condition"),
        (dict(obs_noise=-1.0), "obs_noise"),
    ],
)
def test_bad_values_name_the_key(changes, key):
    s = ActionScenario(**changes)
    pattern = rf"^action scenario: {key} must be"
    for call in (lambda: check(s), lambda: simulate_actions(s, 0)):
        with pytest.raises(MncrlError, match=pattern) as info:
            call()
        assert "\n" not in str(info.value)
    with pytest.raises(MncrlError, match=pattern):
        ActionScenario.from_dict({"d": 3, **changes})
