"""Per-coordinate observation noise (mncrl.observation_noise): factor analysis over
environments (m > d) and the zero-variance equations (any m), on exact and sampled covariances."""

from __future__ import annotations

import numpy as np
import pytest

from mncrl import observation_noise as on
from mncrl.errors import MncrlError


def _covariances(seed, m=7, d=5, K=5, rel=1e-3, do=True, units=3.0):
    """Population covariances L^T C_k L + diag(psi): leave-one-out do-design (each environment
    lets one latent vary) or full-rank latent covariances; columns in wildly different units."""
    rng = np.random.default_rng(seed)
    L = rng.standard_normal((d, m)) * 10 ** rng.uniform(-units, units, m)
    covs = []
    for k in range(K):
        if do:
            C = np.zeros((d, d))
            C[k % d, k % d] = rng.uniform(0.5, 2)
        else:
            B = rng.standard_normal((d, d))
            C = B @ B.T
        covs.append(L.T @ C @ L)
    covs = np.stack(covs)
    psi = rel * rng.uniform(0.5, 2, m) * np.einsum("kii->i", covs) / K
    return covs + np.diag(psi), psi, L


@pytest.mark.parametrize("do", [True, False])
def test_factor_analysis_recovers_psi_from_exact_covariances(do):
    """Exact covariances: the likelihood peaks at the true psi. Do-designs with the default
    tilt: every variance within 10% (most within 0.1%); full-rank latent covariances in every
    environment (weaker information on psi) without the tilt, which is made for do-designs:
    the typical variance within 1%."""
    for seed in range(3):
        covs, psi, _ = _covariances(seed, do=do, K=5 if do else 8)
        est = on.factor_analysis(covs, np.full(len(covs), 1000), 5, tilt=on.TILT if do else 0)
        err = np.abs(est.psi / psi - 1)
        assert np.median(err) < 1e-2, err
        if do:
            assert err.max() < 0.1, err
        assert est.converged and not est.at_floor.any()


def test_factor_analysis_is_unit_free():
    covs, _, _ = _covariances(0)
    a = on.factor_analysis(covs, np.full(5, 1000), 5)
    f = 10 ** np.random.default_rng(1).uniform(-3, 3, 7)
    b = on.factor_analysis(covs * np.outer(f, f), np.full(5, 1000), 5)
    # the same problem on the correlation scale; only rounding (then the search's stopping
    # point) differs
    np.testing.assert_allclose(b.psi, a.psi * f**2, rtol=1e-3)
    np.testing.assert_allclose(b.relative, a.relative, rtol=1e-3)


def test_noiseless_coordinate_hits_the_floor():
    covs, psi, _ = _covariances(2)
    covs = covs - np.diag(np.where(np.arange(7) == 3, psi, 0.0))
    est = on.factor_analysis(covs, np.full(5, 1000), 5)
    assert est.relative[3] < 1e-3 * np.median(est.relative)


def test_tilt_pins_the_noise_of_a_single_sensor_latent():
    """A latent read by one sensor only: its variance and that sensor's noise trade off in
    every environment (flat likelihood: plain maximum likelihood lands anywhere below the
    bound, e.g. 0.07x the truth on the light-tunnel sensors); the do-design pins the noise
    where the latent is clamped, and the tilt finds it."""
    _, _, L = _covariances(5)
    rng = np.random.default_rng(5)
    d, m = 5, 8
    L = np.hstack([L, np.zeros((d, 1))])
    L[:, 7] = 0.0
    L[4, 7] = 3.0  # sensor 7 reads latent 4 only
    covs = []
    for k in range(d):
        C = np.zeros((d, d))
        C[k, k] = rng.uniform(0.5, 2)
        covs.append(L.T @ C @ L)
    covs = np.stack(covs)
    psi = 1e-3 * rng.uniform(0.5, 2, m) * np.einsum("kii->i", covs) / d
    covs = covs + np.diag(psi)
    tilted = on.factor_analysis(covs, np.full(d, 1000), d)
    np.testing.assert_allclose(tilted.psi, psi, rtol=0.05)


def test_zero_variance_equations_exact():
    """Given the true unmixing and which latents are clamped, psi is exact (m = d too; raw
    units for m = d, where W is unique; for m > d the minimum-norm W of comparable units)."""
    for m in (5, 7):
        covs, psi, L = _covariances(3, m=m, units=3.0 if m == 5 else 0.0)
        W = np.linalg.pinv(L)  # m x d with L W = I
        zero = np.ones((5, 5), dtype=bool)
        zero[np.arange(5), np.arange(5)] = False  # environment k lets latent k vary
        np.testing.assert_allclose(on.from_zero_variance(covs, W, zero), psi, rtol=1e-8)


def test_scaled_signal_basis_gives_unit_noise():
    covs, psi, L = _covariances(4)
    pooled = covs.mean(axis=0)
    B = on.scaled_signal_basis(pooled, psi, 5)
    signal = B.T @ (pooled - np.diag(psi)) @ B
    # B spans the noise-scaled signal subspace: the noise part is exactly the identity there
    np.testing.assert_allclose(B.T @ np.diag(psi) @ B, np.eye(5), atol=1e-9)
    assert np.linalg.matrix_rank(signal) == 5


@pytest.mark.parametrize(
    ("covs", "d", "match"),
    [
        (np.eye(4)[None], 4, "latent_dim < m"),
        (np.eye(4)[None], 0, "latent_dim < m"),
        (np.ones((2, 3)), 1, "K x m x m"),
        (np.full((1, 3, 3), np.nan), 1, "NaN"),
    ],
)
def test_bad_input(covs, d, match):
    with pytest.raises(MncrlError, match=match):
        on.factor_analysis(covs, np.ones(len(covs)), d)


def test_too_few_equations():
    covs, _, L = _covariances(0)
    zero = np.zeros((5, 5), dtype=bool)
    zero[0, :2] = True
    with pytest.raises(MncrlError, match="cannot determine"):
        on.from_zero_variance(covs, np.linalg.pinv(L), zero)


def test_denoise_restores_zero_variance_directions():
    """After removing the estimated noise, every do-environment has exact zero-variance
    directions again (d - 1 of them: one latent varies per environment) and the pooled
    covariance is the identity; noise_detected sees the noise and not its absence."""
    covs, psi, L = _covariances(1)
    assert on.noise_detected(covs.mean(axis=0), 5)
    assert not on.noise_detected((covs - np.diag(psi)).mean(axis=0), 5)
    out = on.denoise(covs, np.full(5, 1000), 5)
    np.testing.assert_allclose(out.covs.mean(axis=0), np.eye(5), atol=1e-9)
    ev = np.linalg.eigvalsh(out.covs)
    assert np.all(ev[:, :4] < 1e-3) and np.all(ev[:, 4] > 0.5)
    assert out.transform.shape == (7, 5)


def test_signal_dimension():
    """The number of latents behind per-coordinate noise (exact covariances of 1000 rows per
    environment): 5 latents in 7 or 9 coordinates; none below m when m = d."""
    for m in (7, 9):
        covs, _, _ = _covariances(6, m=m)
        assert on.signal_dimension(covs, np.full(5, 1000)) == 5
    covs, _, _ = _covariances(6, m=5)
    assert on.signal_dimension(covs, np.full(5, 1000)) is None


def test_estimate_latent_dim_sees_through_noise():
    from mncrl.environments import estimate_latent_dim
    from mncrl.simulation import Scenario, simulate

    ds = simulate(Scenario(d=4, m=7, n=3000, mixing="gaussian", obs_noise_relative=0.01), 0)
    assert estimate_latent_dim(ds.split_envs()) == 4
    ds = simulate(Scenario(d=4, m=7, n=3000, mixing="gaussian"), 0)  # noiseless: the rank
    assert estimate_latent_dim(ds.split_envs()) == 4
