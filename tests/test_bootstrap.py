"""The bootstrap of a fit (mncrl.bootstrap): resampling schemes, determinism, matching to the
full-data fit, target agreement, failed refits, and `mncrl.fit(..., bootstrap=B)`."""

import json

import numpy as np
import pytest

import mncrl
from mncrl import bootstrap as bs
from mncrl.api import as_environments
from mncrl.errors import MncrlError, NotIdentifiableError
from mncrl.estimators.base import Fit
from mncrl.simulation import Scenario, simulate


@pytest.fixture(scope="module")
def clean():
    """Noiseless do-data of the paper's design (d = 4): subspace recovers it exactly."""
    return simulate(Scenario(d=4, n=3000, dtype="float64"), 0)


def test_iid_indices():
    rng = np.random.default_rng(0)
    idx = bs.resample_indices(1000, rng)
    assert idx.shape == (1000,) and idx.min() >= 0 and idx.max() < 1000
    assert 550 < np.unique(idx).size < 720  # ~ (1 - 1/e) of the rows appear


@pytest.mark.parametrize("n,block", [(1000, 50), (1003, 50), (7, 7), (10, 1)])
def test_block_indices_are_contiguous_blocks(n, block):
    idx = bs.resample_indices(n, np.random.default_rng(1), block)
    assert idx.shape == (n,) and idx.min() >= 0 and idx.max() < n
    starts = idx[::block]
    for b, start in enumerate(starts):  # every block runs over consecutive rows
        run = idx[b * block : (b + 1) * block]
        np.testing.assert_array_equal(run, start + np.arange(len(run)))
    assert len(starts) == -(-n // block)


def test_block_and_resample_checks():
    assert bs.check_block(None, [10, 20]) is None and bs.check_block(10, [10, 20]) == 10
    for bad, match in (
        (11, "longer than the smallest environment"),
        (0, "positive"),
        (2.5, "positive"),
    ):
        with pytest.raises(MncrlError, match=match):
            bs.check_block(bad, [10, 20])
    with pytest.raises(MncrlError, match="integer >= 0"):
        bs.check_resamples(-1)


def _recording_fit(reference):
    """A fake estimator: returns the reference fit and records what it was given."""
    seen = []

    def fit_fn(envs):
        seen.append([float(e.sum()) for e in envs])
        return reference

    return fit_fn, seen


def test_deterministic_in_seed_and_independent_of_b(clean):
    envs = as_environments(clean)[0]
    ref = Fit(unmixing=np.linalg.pinv(clean.L))
    fa, a = _recording_fit(ref)
    fb, b = _recording_fit(ref)
    fc, c = _recording_fit(ref)
    fd, d = _recording_fit(ref)
    bs.bootstrap(envs, fa, ref, 3, seed=7)
    bs.bootstrap(envs, fb, ref, 5, seed=7)
    bs.bootstrap(envs, fc, ref, 3, seed=8)
    bs.bootstrap(envs, fd, ref, 3, seed=7, block=100)
    assert a == b[:3]  # resample b's stream does not depend on B
    assert a != c and a != d and len({tuple(r) for r in a}) == 3


def test_matching_undoes_permutation_scale_and_sign(clean):
    envs = as_environments(clean)[0]
    W = np.linalg.pinv(clean.L)
    T = clean.targets.copy()
    ref = Fit(unmixing=W, targets=T)
    perm = np.array([2, 0, 3, 1])
    scale = np.array([-3.0, 0.5, 1e3, -1e-2])
    calls = []

    def fit_fn(sample):
        calls.append(1)
        targets = T[:, perm].copy()
        if len(calls) == 2:  # one resample gets environment 1's targets wrong on one latent
            targets[1, 0] = ~targets[1, 0]
        return Fit(unmixing=W[:, perm] * scale, targets=targets)

    out = bs.bootstrap(envs, fit_fn, ref, 4, seed=0)
    s = out.summary()
    assert s["fitted"] == 4 and s["failed"] == 0 and s["degenerate"] == 0
    np.testing.assert_allclose(s["latent_corr_min"], 1.0, atol=1e-12)
    assert s["same_targets_share"] == 0.75
    freq = np.asarray(s["target_frequency"])
    expected = T.astype(float)
    expected[1, perm[0]] = 0.75 if T[1, perm[0]] else 0.25  # the flipped entry, aligned back
    np.testing.assert_allclose(freq, expected)
    json.dumps(s, allow_nan=False)


def test_failed_resamples_are_counted(clean):
    envs = as_environments(clean)[0]
    ref = Fit(unmixing=np.linalg.pinv(clean.L), targets=clean.targets)
    calls = []

    def flaky(sample):
        calls.append(1)
        if len(calls) % 2:
            raise NotIdentifiableError("not identifiable on this resample")
        return ref

    out = bs.bootstrap(envs, flaky, ref, 5, seed=0)
    assert out.failed == 3 and out.ok == 2
    assert out.failures == {"not identifiable on this resample": 3}
    assert "3 failed" in out.table() and "failed x3: not identifiable" in out.table()

    def broken(sample):
        raise MncrlError("always")

    none = bs.bootstrap(envs, broken, ref, 2, seed=0).summary()
    assert none["fitted"] == 0 and none["failed"] == 2 and none["mcc_mean"] is None
    assert "0 fitted, 2 failed" in bs.table(none)

    def crash(sample):
        raise RuntimeError("a bug is not a failed resample")

    with pytest.raises(RuntimeError):
        bs.bootstrap(envs, crash, ref, 2, seed=0)


def test_subspace_is_stable_on_clean_data(clean):
    plain = mncrl.fit(clean, "subspace")
    fit = mncrl.fit(clean, "subspace", bootstrap=8, seed=3)
    np.testing.assert_array_equal(fit.unmixing, plain.unmixing)  # the full-data fit is kept
    np.testing.assert_array_equal(fit.targets, plain.targets)
    s = fit.info["bootstrap"]
    assert s["resamples"] == 8 and s["fitted"] == 8 and s["failed"] == 0 and s["seed"] == 3
    assert min(s["latent_corr_min"]) > 0.9999 and s["mcc_min"] > 0.9999
    assert s["same_targets_share"] == 1.0
    np.testing.assert_array_equal(s["target_frequency"], plain.targets.astype(float))
    table = bs.table(s)
    assert "8 fitted, 0 failed" in table and "full-data target matrix in 8/8" in table
    blocked = mncrl.fit(clean, "subspace", bootstrap=3, block=250)
    assert blocked.info["bootstrap"]["scheme"] == "moving blocks of 250"
    json.dumps(fit.info["bootstrap"], allow_nan=False)


def test_estimator_without_targets_on_noisy_data():
    ds = simulate(Scenario(d=3, n=400, obs_noise=0.02, dtype="float64"), 0)
    fit = mncrl.fit(ds, "icrl", latent_dim=3, bootstrap=6)
    s = fit.info["bootstrap"]
    assert s["fitted"] == 6 and "same_targets_share" not in s  # icrl reports no targets
    assert 0.0 < s["mcc_mean"] < 1.0 and len(s["latent_corr_mean"]) == 3


def test_observational_rows_are_resampled(monkeypatch):
    """An estimator that fits on observational rows (like ica) gets resampled ones."""
    from mncrl import estimators
    from mncrl.estimators.base import Estimator

    seen = []

    def on_observational(envs, *, seed, latent_dim, observational):
        seen.append((float(observational.sum()), [len(e) for e in envs], len(observational)))
        return Fit(unmixing=np.linalg.qr(observational.T @ observational)[0][:, :latent_dim])

    est = Estimator(name="obs", fit=on_observational, description="t", needs_observational=True)
    monkeypatch.setattr(estimators, "get", lambda name: est)
    ds = simulate(Scenario(d=3, n=200, observational=True), 0)
    fit = mncrl.fit(ds, "obs", bootstrap=3)
    assert fit.info["bootstrap"]["fitted"] == 3 and len(seen) == 4
    assert all(s[1] == [200] * 3 and s[2] == 200 for s in seen)
    assert len({s[0] for s in seen}) == 4  # the full data and three different resamples


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"bootstrap": -1}, "integer >= 0"),
        ({"bootstrap": 2.5}, "integer >= 0"),
        ({"block": 10}, "needs bootstrap > 0"),
        ({"bootstrap": 2, "block": 0}, "positive integer"),
        ({"bootstrap": 2, "block": 10**6}, "longer than the smallest environment"),
    ],
)
def test_api_arguments(clean, kwargs, match):
    with pytest.raises(MncrlError, match=match):
        mncrl.fit(clean, "subspace", **kwargs)
