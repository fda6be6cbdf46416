"""Degenerate-fit detection (mncrl.degeneracy): fires on constructed degenerate fits and on
data without zero-variance directions, stays silent on clean fits of the paper's setting."""

import json

import numpy as np
import pytest

import mncrl
from mncrl import degeneracy as dg
from mncrl.api import as_environments
from mncrl.errors import DegenerateFitError, MncrlError
from mncrl.simulation import Scenario, simulate

PAPER = Scenario(d=6, n=20000, design="leave-one-out", intervention="do")
SHORT = {"steps": 300, "restarts": 2}  # the `best` preset (moments), shortened: MCC 0.999 here


@pytest.fixture(scope="module")
def paper():
    ds = simulate(PAPER, 0)
    envs = as_environments(ds)[0]
    return ds, envs, dg.env_moments(envs)


def _diagnose(W, moments, do_design=True):
    out = dg.diagnose(W, moments, do_design=do_design)
    json.dumps(out.to_dict(), allow_nan=False)  # JSON-able, no NaN/inf literals
    assert "\n" not in out.message()
    return out


def test_env_moments_match_numpy(paper):
    _, envs, mom = paper
    np.testing.assert_allclose(mom.covs[2], np.cov(envs[2].astype(np.float64).T), rtol=1e-9)
    X = np.concatenate(envs).astype(np.float64)
    np.testing.assert_allclose(mom.total(), np.cov(X.T), rtol=1e-9, atol=1e-15)
    assert mom.counts.tolist() == [20000] * 6


def test_true_unmixing_is_clean(paper):
    ds, _, mom = paper
    out = _diagnose(np.linalg.pinv(ds.L), mom)
    assert not out.degenerate and out.fired == [] and out.message() == ""
    assert out.condition < 1.1 and min(out.variance_ratio) > 0.1
    assert max(out.env_min_eig) < 1e-9  # every environment has its zero-variance direction


@pytest.mark.parametrize("estimator", ["subspace", "sparse-variance"])
def test_clean_fits_of_the_papers_setting_do_not_fire(paper, estimator):
    ds = paper[0]
    short = SHORT if estimator == "sparse-variance" else {}
    fit = mncrl.fit(ds, estimator, latent_dim=6, **short)  # would raise DegenerateFitError
    assert fit.info["degenerate"] is False
    diag = fit.info["diagnosis"]
    assert diag["fired"] == [] and diag["condition"] < 10 and diag["do_design"]
    assert mncrl.metrics.mcc(ds.Z, ds.X @ fit.unmixing) > 0.99


def test_nearly_collinear_columns_fire(paper):
    ds, _, mom = paper
    W = np.linalg.pinv(ds.L)
    W[:, 4] = W[:, 1] * 3.0 + 1e-4 * W[:, 2]  # latent 4 = latent 1 rescaled, plus a trace
    out = _diagnose(W, mom)
    assert out.fired == ["collinear"] and out.condition > dg.COLLINEAR_COND
    assert set(out.collinear_latents) == {1, 4} and out.max_corr_pair == (1, 4)
    assert out.max_corr > 0.9999
    msg = out.message()
    assert msg.startswith("degenerate fit: recovered latents 1 and 4 span only 1 direction")
    assert "condition number of corr(Zhat)" in msg and "> 2e+03" in msg


def test_collinearity_threshold_is_scale_free_and_sharp(paper):
    ds, _, mom = paper
    W = np.linalg.pinv(ds.L)
    for eps, fires in ((0.1, False), (1e-3, True)):
        V = W.copy()
        V[:, 0] = W[:, 3] + eps * W[:, 0]
        assert _diagnose(V, mom).collinear is fires
    V = W * np.array([1e-6, 1.0, 1e4, 3.0, 1e-3, 7.0])  # column scales do not matter
    a, b = _diagnose(W, mom), _diagnose(V, mom)
    assert a.condition == pytest.approx(b.condition, rel=1e-6)
    np.testing.assert_allclose(a.variance_ratio, b.variance_ratio, rtol=1e-6)


def test_units_of_x_do_not_matter():
    ds = simulate(Scenario(d=3, m=5, n=3000, obs_noise=0.01, dtype="float64"), 0)
    envs = as_environments(ds)[0]
    W = np.linalg.pinv(ds.L)
    units = np.array([1e-3, 1.0, 50.0, 1e3, 0.2])
    a = dg.diagnose(W, dg.env_moments(envs), do_design=True)
    b = dg.diagnose(W / units[:, None], dg.env_moments([e * units for e in envs]), do_design=True)
    assert a.condition == pytest.approx(b.condition, rel=1e-6)
    np.testing.assert_allclose(a.variance_ratio, b.variance_ratio, rtol=1e-6)
    np.testing.assert_allclose(a.env_min_eig, b.env_min_eig, rtol=1e-6, atol=1e-12)


def test_collapsed_latent_fires():
    """Noiseless tall data (m > d): a column in the null space of X gives a constant latent."""
    ds = simulate(Scenario(d=3, m=5, n=3000, dtype="float64"), 0)
    mom = dg.env_moments(as_environments(ds)[0])
    W = np.linalg.pinv(ds.L)
    null = np.linalg.svd(ds.L)[2][-1]  # L @ null = 0
    W[:, 2] = null
    out = _diagnose(W, mom)
    assert out.fired == ["collapsed"] and out.collapsed == (2,)
    assert out.variance_ratio[2] < 1e-12 and min(out.variance_ratio[:2]) > 0.01
    assert "latent 2 collapsed" in out.message()
    W[:, 0] = 0.0  # an all-zero column collapses too
    assert _diagnose(W, mom).collapsed == (0, 2)


@pytest.mark.parametrize(
    "scenario",
    [
        Scenario(d=6, n=5000, design="leave-one-out", intervention="stochastic"),
        Scenario(d=6, n=5000, design="leave-one-out", intervention="soft"),
        Scenario(d=6, n=5000, design="separating", intervention="stochastic"),
        Scenario(d=6, n=5000, design="separating", intervention="soft"),
    ],
    ids=["stochastic-loo", "soft-loo", "stochastic-separating", "soft-separating"],
)
def test_no_zero_variance_direction_fires_for_do_estimators(scenario):
    ds = simulate(scenario, 0)
    mom = dg.env_moments(as_environments(ds)[0])
    W = np.linalg.pinv(ds.L)  # even the true unmixing: the data lack what do-estimators use
    out = _diagnose(W, mom)
    assert out.fired == ["no_null_direction"] and min(out.env_min_eig) > dg.DO_NULL_RTOL
    assert "near-zero-variance direction" in out.message()
    assert not _diagnose(W, mom, do_design=False).degenerate  # e.g. icrl, ica


@pytest.mark.parametrize("intervention", ["stochastic", "soft"])
def test_the_default_estimator_refuses_stochastic_and_soft_data(intervention):
    """Issue #11: sparse-variance returned nearly collinear W here with exit 0."""
    ds = simulate(PAPER.replace(intervention=intervention), 0)
    with pytest.raises(DegenerateFitError, match="allow_degenerate=True") as err:
        mncrl.fit(ds, **SHORT)
    assert isinstance(err.value, MncrlError)
    assert "no_null_direction" in err.value.diagnosis.fired  # whatever W the estimator gives
    assert err.value.fit.info["degenerate"] is True
    fit = mncrl.fit(ds, allow_degenerate=True, **SHORT)
    assert fit.info["degenerate"] is True
    assert fit.info["diagnosis"] == err.value.diagnosis.to_dict()
    assert fit.info["diagnosis"]["message"].startswith("degenerate fit: ")


def test_observation_noise_of_one_percent_keeps_the_null_direction(paper):
    ds = paper[0]
    X = ds.X.astype(np.float64)
    X = X + 0.01 * X.std(axis=0) * np.random.default_rng(0).standard_normal(X.shape)
    out = _diagnose(np.linalg.pinv(ds.L), dg.env_moments(as_environments((X, ds.env))[0]))
    assert not out.degenerate and max(out.env_min_eig) < dg.DO_NULL_RTOL / 2


def test_do_design_estimators():
    assert dg.DO_DESIGN_ESTIMATORS == ("sparse-variance", "subspace")
