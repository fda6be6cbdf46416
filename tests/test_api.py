"""`mncrl.fit`: input forms, latent-dimension estimation, validation."""

import numpy as np
import pytest

import mncrl
from mncrl import api
from mncrl.data import Dataset
from mncrl.errors import DataError, DegenerateFitError, MncrlError
from mncrl.simulation import Scenario, simulate

FAST = {"steps": 200, "restarts": 2}  # the `best` preset, shortened


@pytest.fixture(scope="module")
def ds():
    return simulate(Scenario(d=3, n=2000, observational=True), 0)


def test_lazy_exports():
    assert mncrl.fit is api.fit
    assert mncrl.metrics.mcc is not None


def test_dataset_tuple_and_list_give_the_same_fit(ds):
    inter = ds.subset_envs([0, 1, 2])
    a = mncrl.fit(inter, seed=1, **FAST)
    b = mncrl.fit((inter.X, inter.env), seed=1, **FAST)
    c = mncrl.fit(inter.split_envs(), seed=1, **FAST)
    assert np.array_equal(a.unmixing, b.unmixing) and np.array_equal(a.unmixing, c.unmixing)
    assert a.info["estimator"] == "sparse-variance" and a.info["preset"] == "best"
    assert a.info["seed"] == 1 and a.info["latent_dim"] == 3 and a.info["latent_dim_estimated"]


def test_every_fit_is_diagnosed(ds):
    f = mncrl.fit(ds.subset_envs([0, 1, 2]), seed=1, **FAST)
    assert f.info["degenerate"] is False
    diag = f.info["diagnosis"]
    assert diag["degenerate"] is False and diag["fired"] == [] and diag["message"] == ""
    assert diag["do_design"] and len(diag["env_min_eig"]) == 3 and len(diag["variance_ratio"]) == 3
    g = mncrl.fit(ds, "icrl")  # not a do-design estimator: check (c) does not count
    assert g.info["diagnosis"]["do_design"] is False and "bootstrap" not in g.info


def test_degenerate_fit_raises_or_is_returned_with_its_diagnosis(monkeypatch):
    """A stand-in estimator whose W has two identical columns: DegenerateFitError carries the
    diagnosis and the fit; allow_degenerate=True returns that fit."""
    from mncrl import estimators
    from mncrl.estimators.base import Estimator, Fit

    def collinear(envs, *, seed, latent_dim):
        W = np.eye(envs[0].shape[1])[:, :latent_dim]
        W[:, 1] = 2 * W[:, 0]
        return Fit(unmixing=W, info={"own": 1})

    est = Estimator(name="collinear", fit=collinear, description="test")
    monkeypatch.setattr(estimators, "get", lambda name: est)
    envs = _env_list()
    with pytest.raises(DegenerateFitError, match="collinear: degenerate fit: ") as err:
        mncrl.fit(envs, "collinear")
    assert err.value.diagnosis.fired == ["collinear"] and err.value.fit.info["own"] == 1
    assert "allow_degenerate=True" in str(err.value) and "\n" not in str(err.value)
    f = mncrl.fit(envs, "collinear", allow_degenerate=True)
    assert f.info["degenerate"] is True and f.info["diagnosis"]["fired"] == ["collinear"]
    np.testing.assert_array_equal(f.unmixing, err.value.fit.unmixing)


def test_observational_environments_are_set_aside(ds):
    f = mncrl.fit(ds, "icrl")
    assert f.info["observational_envs"] == [3] and f.unmixing.shape == (3, 3)
    g = mncrl.fit(ds, "ica", seed=0)
    assert g.info["fitted_on"] == "observational"
    # without targets every environment counts as interventional
    h = mncrl.fit(Dataset(X=ds.X, env=ds.env), "icrl", latent_dim=3)
    assert h.info["observational_envs"] == [] and len(h.info["gamma"]) == 4


def test_latent_dim_is_estimated_from_the_rank():
    ds = simulate(Scenario(d=3, m=5, n=1000), 0)
    assert api.estimate_latent_dim(ds.split_envs()) == 3
    f = mncrl.fit(ds, "icrl")
    assert f.info["latent_dim"] == 3 and f.unmixing.shape == (5, 3)
    noisy = simulate(Scenario(d=3, m=5, n=1000, obs_noise=0.1), 0)
    # noise fills every direction; factor analysis over the environments finds the 3 latents
    assert api.estimate_latent_dim(noisy.split_envs()) == 3


def test_fit_many_uses_fit_batch_and_equals_single_fits():
    problems = [simulate(Scenario(d=3, n=1000), s) for s in (0, 1)]
    many = api.fit_many(problems, seeds=[0, 1], latent_dim=3, **FAST)
    for p, s, f in zip(problems, (0, 1), many, strict=True):
        single = api.fit(p, seed=s, latent_dim=3, **FAST)
        np.testing.assert_allclose(f.unmixing, single.unmixing, rtol=1e-4, atol=1e-5)
        assert f.info["seed"] == s and f.info["batched_with"] == 2
    loop = api.fit_many(problems, "icrl", seeds=[0, 1])
    assert [f.info["seed"] for f in loop] == [0, 1]


def _env_list(seed=0, n=50, m=3, K=3):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal((n, m)) for _ in range(K)]


@pytest.mark.parametrize(
    "mutate,message",
    [
        (lambda e: [np.where(np.eye(50, 3, dtype=bool), np.nan, e[0])] + e[1:], "NaN/Inf"),
        (lambda e: [e[0] * np.inf] + e[1:], "NaN/Inf"),
        (lambda e: e[:1], "at least 2 environments"),
        (lambda e: [e[0][:2]] + e[1:], "fewer than its 3 features"),
        (lambda e: [e[0][:, :2]] + e[1:], "features"),
        (lambda e: [e[0][:, 0]] + e[1:], "2-d"),
    ],
)
def test_bad_data(mutate, message):
    with pytest.raises(DataError, match=message):
        mncrl.fit(mutate(_env_list()), "icrl")


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"latent_dim": 4}, "between 1 and m = 3"),
        ({"latent_dim": 0}, "between 1 and m = 3"),
        ({"estimator": "nope"}, "unknown estimator 'nope'"),
        ({"preset": "fastest"}, "unknown preset 'fastest'"),
        ({"learning_rate": 0.1}, "unknown hyper-parameter 'learning_rate'"),
        ({"lr": "fast"}, "lr must be a number"),
        ({"epochs": 2.5}, "epochs must be an integer"),
        ({"seed": -1}, "seed"),
    ],
)
def test_bad_arguments(kwargs, message):
    with pytest.raises(MncrlError, match=message):
        mncrl.fit(_env_list(), **kwargs)


def test_bad_data_types():
    with pytest.raises(DataError, match="Dataset, a tuple"):
        mncrl.fit("data.npz")
    X = np.ones((6, 2))
    with pytest.raises(DataError, match="0..K-1"):
        mncrl.fit((X, np.array([0, 0, 2, 2, 2, 2])))
    with pytest.raises(DataError, match="non-negative"):
        mncrl.fit((X, np.array([0, 0, -1, 1, 1, 1])))


def test_split_by_env_makes_views_for_sorted_labels():
    X = np.arange(12.0).reshape(6, 2)
    blocks = api.split_by_env(X, np.array([0, 0, 1, 1, 1, 2]))
    assert [len(b) for b in blocks] == [2, 3, 1] and all(np.shares_memory(b, X) for b in blocks)
    shuffled = api.split_by_env(X, np.array([1, 0, 1, 0, 2, 1]))
    assert [b[:, 0].tolist() for b in shuffled] == [[2.0, 6.0], [0.0, 4.0, 10.0], [8.0]]


def test_unmix_blocks_rows():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((1000, 3)).astype(np.float32)
    W = rng.standard_normal((3, 2))
    Z = api.unmix(X, W, block=128)
    assert Z.dtype == np.float32
    np.testing.assert_allclose(Z, X @ W, rtol=1e-5, atol=1e-5)
