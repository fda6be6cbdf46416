"""The `subspace` closed-form estimator (docs/subspace.md) on the shared simulator.

Thresholds are the project's targets: mcc >= 0.999 and Amari distance <= 1e-3 on every seed for
designs that satisfy Assumption 4; NotIdentifiableError (never a silent guess) otherwise.
Sample sizes are small to keep the suite fast; benchmarks/subspace.py covers n = 1e5.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mncrl import api, estimators, metrics
from mncrl.errors import DataError, MncrlError, NotIdentifiableError
from mncrl.estimators import subspace
from mncrl.interventions import assumption4
from mncrl.planning import recoverable_latents
from mncrl.simulation import Scenario, simulate


def _simulate(seed=0, **kw):
    ds = simulate(Scenario(**kw), seed)
    return ds, api.split_by_env(ds.X, ds.env)


def _a4_random(d, K, k=None):
    """The first design seed whose random design satisfies Assumption 4 (deterministic)."""
    for s in range(200):
        sc = Scenario(
            d=d,
            design="random",
            design_params={"K": K, **({"k": k} if k else {})},
            design_seed=s,
            n=10,
        )
        if assumption4(simulate(sc, 0).targets).satisfied:
            return s
    raise AssertionError("no Assumption-4 random design found")


def _assert_recovered(ds, fit):
    Zhat = api.unmix(ds.X, fit.unmixing)
    mcc = metrics.mcc(ds.Z, Zhat)
    amari = metrics.amari(ds.L, fit.unmixing)
    assert mcc >= 0.999, mcc
    assert amari <= 1e-3, amari
    # estimated targets = true targets after matching estimated to true latents
    keep = ds.targets.any(axis=1)
    perm = metrics.matching_from_mixing(ds.L, fit.unmixing)
    assert metrics.target_f1(ds.targets[keep], fit.targets[keep], perm) == 1.0
    assert not fit.targets[~keep].any()  # observational rows: no targets
    return mcc, amari


def _same_columns(A, B):
    """Two bool matrices with the same multiset of columns."""
    key = lambda M: sorted(map(tuple, M.T.astype(int)))  # noqa: E731
    return key(A) == key(B)


# ------------------------------------------------------------------------------ recovery


DESIGNS = ["leave-one-out", "atomic", "separating", "separating-bits", "random"]


@pytest.mark.parametrize("d", [3, 6, 10])
@pytest.mark.parametrize("design", DESIGNS)
def test_recovers_every_seed(d, design):
    params, dseed = {}, None
    if design == "random":
        params, dseed = {"K": 2 * d}, _a4_random(d, 2 * d)
    for seed in range(5):
        ds, envs = _simulate(
            seed, d=d, n=5000, design=design, design_params=params, design_seed=dseed
        )
        fit = subspace.fit(envs, latent_dim=d)
        _assert_recovered(ds, fit)


@pytest.mark.parametrize("design", ["leave-one-out", "atomic", "separating"])
def test_recovers_d30(design):
    ds, envs = _simulate(0, d=30, n=3000, design=design)
    fit = subspace.fit(envs, latent_dim=30)
    _assert_recovered(ds, fit)


def test_paper_setting_with_observational_environment():
    """The paper's scenario: paired noise, observational environment appended last (passed in
    directly: it has no zero-variance direction and must not enter any signature)."""
    ds, envs = _simulate(1, d=6, n=5000, observational=True, paired_noise=True)
    fit = subspace.fit(envs, latent_dim=6)
    _assert_recovered(ds, fit)
    assert fit.info["null_dims"][-1] == 0


@pytest.mark.parametrize("mechanism", ["scm1", "scm2"])
def test_nonlinear_scms(mechanism):
    ds, envs = _simulate(0, d=6, n=5000, graph="paper-nonlinear", mechanism=mechanism)
    _assert_recovered(ds, subspace.fit(envs, latent_dim=6))


@pytest.mark.parametrize("design", ["leave-one-out", "atomic", "separating"])
@pytest.mark.parametrize("case", ["tall", "noise", "tall+noise", "float64"])
def test_tall_noisy_and_float64(design, case):
    kw = dict(d=6, n=5000, design=design, mixing="gaussian")
    if "tall" in case:
        kw["m"] = 11
    if "noise" in case:
        kw["obs_noise"] = 1e-3
    if case == "float64":
        kw["dtype"] = "float64"
    for seed in range(3):
        ds, envs = _simulate(seed, **kw)
        fit = subspace.fit(envs, latent_dim=6)
        _assert_recovered(ds, fit)
        assert fit.unmixing.shape == (kw.get("m", 6), 6)
        assert fit.info["reduced"] is ("tall" in case)
        noise = fit.info["observation_noise"]
        if case == "float64":  # no floor but the numerical one
            assert fit.info["regime"] == "noiseless" and noise is None
        elif "tall" in case:  # m > d: float32 rounding or noise, factor analysis, unit floor
            assert fit.info["regime"] == "calibrated"
            assert noise["method"] == "multi-group factor analysis"
            # rounding noise (~1e-14 of the variance) leaves the likelihood too flat for the
            # search's stopping rule; real noise does not
            assert noise["converged"] or case == "tall"
        else:  # m = d: noise from the zero-variance equations, refined to convergence
            assert fit.info["regime"] == "noisy"
            assert noise["method"] == "zero-variance equations" and noise["converged"]
            assert fit.info["noise_refinement"].startswith("converged")


def _raw_units(envs, seed, lo=-3.0, hi=3.0):
    """Every column multiplied by its own factor 10^U[lo, hi] (deterministic in seed)."""
    f = 10 ** np.random.default_rng(seed).uniform(lo, hi, envs[0].shape[1])
    return [X.astype(np.float64) * f for X in envs], f


def _latent_corr(A, B):
    """|corr| of matched columns of two latent estimates (same rows)."""
    C = metrics.abs_correlations(A, B)
    rows, cols = metrics.matching(C)
    return C[rows, cols]


def _five_latents(seed, m, n, design, noise):
    """d = 5 latents, Gaussian mixing into m coordinates, float64, per-sensor noise ``noise``."""
    return _simulate(
        seed,
        d=5,
        m=m,
        n=n,
        design=design,
        mixing="gaussian",
        dtype="float64",
        obs_noise_relative=noise,
    )


@pytest.mark.parametrize("m", [5, 8])
@pytest.mark.parametrize("noise", [0.0, 0.01])
def test_units_do_not_matter(m, noise):
    """Each column of X times any factor in 10^[-3, 3]: the same latents (up to scale and sign)
    and the same targets, without and with per-sensor noise, m = d and m > d."""
    for seed in range(3):
        ds, envs = _five_latents(seed, m, 4000, "leave-one-out", noise)
        a = subspace.fit(envs, latent_dim=5)
        scaled, f = _raw_units(envs, seed)
        b = subspace.fit(scaled, latent_dim=5)
        assert np.array_equal(a.targets, b.targets)
        X = np.concatenate([e.astype(np.float64) for e in envs])
        corr = _latent_corr(X @ a.unmixing, (X * f) @ b.unmixing)
        assert corr.min() >= 1 - 1e-6, corr


@pytest.mark.parametrize("m", [5, 7])
@pytest.mark.parametrize("design", ["leave-one-out", "separating"])
def test_per_sensor_noise_in_raw_units(m, design):
    """1% noise per sensor (sd = 1% of that sensor's spread, so a different variance per
    coordinate) in raw units spanning six orders of magnitude: recovered, and the noise
    variances estimated (factor analysis for m > d, zero-variance equations for m = d)."""
    for seed in range(3):
        ds, envs = _five_latents(seed, m, 8000, design, 0.01)
        scaled, f = _raw_units(envs, seed)
        fit = subspace.fit(scaled, latent_dim=5)
        Zhat = api.unmix(ds.X.astype(np.float64) * f, fit.unmixing)
        assert metrics.mcc(ds.Z, Zhat) >= 0.99
        keep = ds.targets.any(axis=1)
        perm = metrics.matching_from_latents(ds.Z, Zhat)
        assert metrics.target_f1(ds.targets[keep], fit.targets[keep], perm) == 1.0
        noise = fit.info["observation_noise"]
        true_sd = 0.01 * np.concatenate([e.astype(np.float64) for e in envs]).std(axis=0) * f
        np.testing.assert_allclose(np.asarray(noise["psi"]), true_sd**2, rtol=0.15)


def test_exact_on_noiseless_float64():
    ds, envs = _simulate(2, d=10, n=2000, design="separating", dtype="float64")
    fit = subspace.fit(envs, latent_dim=10)
    assert metrics.amari(ds.L, fit.unmixing) < 1e-10


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.integers(2, 5).flatmap(
        lambda d: st.tuples(
            st.just(d),
            st.lists(
                st.lists(st.booleans(), min_size=d, max_size=d), min_size=1, max_size=2 * d + 1
            ),
        )
    ),
    st.integers(0, 3),
)
def test_property_design_decides(design, seed):
    """Any design, noiseless float64 data: the latents are recovered exactly when the design
    satisfies Assumption 4, and NotIdentifiableError carries the true signatures otherwise."""
    d, rows = design
    T = np.array(rows, dtype=bool)
    ds, envs = _simulate(
        seed, d=d, n=200, design="custom", design_params={"targets": rows}, dtype="float64", p=0.5
    )
    rep = assumption4(T)
    if rep.satisfied:
        fit = subspace.fit(envs, latent_dim=d)
        assert metrics.amari(ds.L, fit.unmixing) < 1e-8
        assert _same_columns(fit.targets, T)
    else:
        with pytest.raises(NotIdentifiableError) as err:
            subspace.fit(envs, latent_dim=d)
        if T.all(axis=0).any():  # a latent that never varies
            assert "never varies" in str(err.value)
        else:
            assert _same_columns(err.value.targets, T)
            assert len(err.value.unseparated) == len(rep.unseparated)


# ------------------------------------------------------------------------ not identifiable


@pytest.mark.parametrize("d", [4, 6, 10])
def test_blocks_design_is_reported(d):
    ds, envs = _simulate(0, d=d, n=3000, design="blocks")
    with pytest.raises(NotIdentifiableError) as err:
        subspace.fit(envs, latent_dim=d)
    e = err.value
    assert "not identifiable" in str(e) and "Assumption 4" in str(e)
    assert _same_columns(e.targets, ds.targets)
    assert len(e.unseparated) == len(assumption4(ds.targets).unseparated) > 0
    assert e.recovered == ()


def test_partially_identifiable_design_names_recovered_latents():
    rows = [[0], [1], [2, 3], [2, 3, 0]]  # 2 and 3 always together
    ds, envs = _simulate(0, d=4, n=3000, design="custom", design_params={"targets": rows})
    with pytest.raises(NotIdentifiableError) as err:
        subspace.fit(envs, latent_dim=4)
    e = err.value
    true_sigs = {tuple(ds.targets[:, j]) for j in recoverable_latents(ds.targets)}
    est_sigs = {tuple(e.targets[:, j]) for j in e.recovered}
    assert est_sigs == true_sigs and len(e.recovered) == 2
    assert "still recovered" in str(e)


def test_random_violating_designs_are_always_reported():
    rng = np.random.default_rng(11)
    n_checked = 0
    while n_checked < 30:
        d = int(rng.integers(3, 8))
        K = int(rng.integers(2, 2 * d + 1))
        T = rng.random((K, d)) < rng.uniform(0.2, 0.8)
        if assumption4(T).satisfied:
            continue
        n_checked += 1
        ds, envs = _simulate(
            n_checked, d=d, n=1000, design="custom", design_params={"targets": T.tolist()}
        )
        with pytest.raises(NotIdentifiableError):
            subspace.fit(envs, latent_dim=d)


def test_observational_only_is_not_identifiable():
    rng = np.random.default_rng(0)
    envs = [rng.standard_normal((500, 4)) @ rng.standard_normal((4, 4)) for _ in range(3)]
    with pytest.raises(NotIdentifiableError, match="zero-variance"):
        subspace.fit(envs, latent_dim=4)


def test_too_much_noise_raises_instead_of_guessing():
    """Observation noise close to the smallest signal variance: no clean floor -> raise."""
    ds, envs = _simulate(2, d=10, n=5000, design="atomic", obs_noise=3e-2, dtype="float64")
    with pytest.raises(NotIdentifiableError):
        subspace.fit(envs, latent_dim=10)


# --------------------------------------------------------------------------- interface


def test_registry_and_api():
    est = estimators.get("subspace")
    assert est is subspace.ESTIMATOR and est.reports_targets and est.default_preset == "default"
    ds, _ = _simulate(0, d=4, n=2000, design="separating", observational=True)
    fit = api.fit(ds, "subspace")  # observational env set aside by the API
    assert fit.targets.shape == (len(ds.targets) - 1, 4)
    assert metrics.amari(ds.L, fit.unmixing) <= 1e-3


def test_deterministic_and_key_ignored():
    _, envs = _simulate(
        3, d=6, n=2000, design="random", design_params={"K": 12}, design_seed=_a4_random(6, 12)
    )
    a = subspace.fit(envs, latent_dim=6, seed=0)
    b = subspace.fit(envs, latent_dim=6, seed=123)
    assert np.array_equal(a.unmixing, b.unmixing) and np.array_equal(a.targets, b.targets)


def test_scale_free():
    """Multiplying X by a constant changes nothing but the scale of W (relative thresholds)."""
    _, envs = _simulate(0, d=5, n=2000, design="leave-one-out", dtype="float64")
    a = subspace.fit(envs, latent_dim=5)
    b = subspace.fit([1e4 * X for X in envs], latent_dim=5)
    assert np.array_equal(a.targets, b.targets)
    np.testing.assert_allclose(b.unmixing * 1e4, a.unmixing, rtol=1e-6, atol=1e-9)


def test_unit_pooled_variance_and_info():
    ds, envs = _simulate(0, d=6, n=3000, design="atomic")
    fit = subspace.fit(envs, latent_dim=6)
    Zhat = [X.astype(np.float64) @ fit.unmixing for X in envs]
    pooled = np.mean([np.var(z, axis=0, ddof=1) for z in Zhat], axis=0)
    np.testing.assert_allclose(pooled, 1.0, rtol=1e-3)
    info = fit.info
    for key in (
        "signatures",
        "null_gap",
        "null_dims",
        "env_gaps",
        "assumption4",
        "reduced",
        "regime",
        "noise_var",
        "test_margin",
        "timings",
    ):
        assert key in info
    assert info["assumption4"]["satisfied"] and info["null_dims"] == [1] * 6
    assert info["test_margin"]["accepted_max"] < 1 < info["test_margin"]["rejected_min"]
    assert {"moments", "search", "closed_form", "total"} <= set(info["timings"])


def test_latent_dim_default_is_the_rank():
    ds, envs = _simulate(
        0, d=4, m=7, n=2000, design="leave-one-out", mixing="gaussian", dtype="float64"
    )
    fit = subspace.fit(envs)
    assert fit.unmixing.shape == (7, 4) and fit.info["latent_dim"] == 4


def test_fit_moments_matches_fit():
    _, envs = _simulate(0, d=5, n=2000, design="separating")
    mom = subspace.moments(envs, 5)
    np.testing.assert_array_equal(
        subspace.fit_moments(mom).unmixing, subspace.fit(envs, latent_dim=5).unmixing
    )


@pytest.mark.parametrize(
    "envs, match",
    [
        ([], "non-empty"),
        ([np.ones((10, 3)), np.ones((10, 4))], "expected"),
        ([np.ones((1, 3)), np.ones((10, 3))], "at least 2"),
        ([np.full((10, 3), np.nan), np.ones((10, 3))], "NaN"),
    ],
)
def test_bad_input(envs, match):
    with pytest.raises(DataError, match=match):
        subspace.fit(envs, latent_dim=2)


def test_bad_hparams_and_latent_dim():
    _, envs = _simulate(0, d=3, n=500, design="atomic")
    with pytest.raises(MncrlError, match="unknown hyper-parameter"):
        subspace.fit(envs, latent_dim=3, angle=1)
    with pytest.raises(MncrlError, match="null_gap"):
        subspace.fit(envs, latent_dim=3, null_gap=0.5)
    with pytest.raises(DataError, match="latent_dim"):
        subspace.fit(envs, latent_dim=4)
