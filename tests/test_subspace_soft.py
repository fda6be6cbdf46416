"""subspace-soft: rank-one signatures of precision differences (docs/peers.md)."""

from __future__ import annotations

import numpy as np
import pytest

from mncrl import estimators, metrics, scm
from mncrl.environments import as_environments
from mncrl.errors import MncrlError, NotIdentifiableError
from mncrl.estimators import subspace_soft as ss
from mncrl.estimators.base import Setting
from mncrl.simulation import Scenario, latent_graph, simulate


def problem(seed, *, d=4, n=100_000, design="dense", kind="stochastic", **extra):
    s = Scenario(
        d=d,
        n=n,
        p=0.5,
        design=design,
        intervention=kind,
        observational=True,
        mixing="gaussian",
        dtype="float64",
        design_seed=seed,
        **extra,
    )
    ds = simulate(s, seed)
    envs, obs, _ = as_environments(ds)
    return ds, envs, obs, scm.ancestor_matrix(latent_graph(s, seed))


def matched_targets(ds, fit):
    """The estimated targets with columns in the true latents' order (matched on |corr|)."""
    perm = metrics.matching_from_latents(ds.Z, ds.X @ fit.unmixing)  # estimate j -> true latent
    return fit.targets[:, np.argsort(perm)]


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("design", ["atomic", "dense"])
def test_hard_interventions_recover_latents_and_targets(seed, design):
    ds, envs, obs, _ = problem(seed, design=design)
    fit = ss.fit(envs, observational=obs, latent_dim=4, hard=True)
    assert metrics.mcc(ds.Z, ds.X @ fit.unmixing) > 0.995
    assert np.array_equal(matched_targets(ds, fit), ds.targets[:-1])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_soft_interventions_recover_latents_up_to_ancestors(seed):
    """Soft interventions identify each latent only up to its ancestors: the ancestral MCC is
    (nearly) 1 while the plain MCC may be lower; the targets are identified."""
    ds, envs, obs, ancestors = problem(seed, kind="soft")
    fit = ss.fit(envs, observational=obs, latent_dim=4)
    Zhat = ds.X @ fit.unmixing
    assert metrics.mcc_ancestral(ds.Z, Zhat, ancestors) > 0.99
    assert np.array_equal(matched_targets(ds, fit), ds.targets[:-1])


def test_hard_step_is_what_makes_stochastic_data_exact():
    """Without hard=True the latents are only known up to ancestors, on stochastic data too."""
    ds, envs, obs, ancestors = problem(3, d=5, design="atomic")
    soft = ss.fit(envs, observational=obs, latent_dim=5)
    hard = ss.fit(envs, observational=obs, latent_dim=5, hard=True)
    mcc_soft = metrics.mcc(ds.Z, ds.X @ soft.unmixing)
    mcc_hard = metrics.mcc(ds.Z, ds.X @ hard.unmixing)
    assert mcc_hard > 0.995
    assert mcc_hard > mcc_soft
    assert metrics.mcc_ancestral(ds.Z, ds.X @ soft.unmixing, ancestors) > 0.99


def test_column_units_do_not_matter():
    ds, envs, obs, _ = problem(0)
    factors = 10.0 ** np.array([-3.0, 3.0, 0.5, -1.5])
    base = ss.fit(envs, observational=obs, latent_dim=4, hard=True)
    scaled = ss.fit(
        [e * factors for e in envs], observational=obs * factors, latent_dim=4, hard=True
    )
    Z1 = ds.X @ base.unmixing
    Z2 = (ds.X * factors) @ scaled.unmixing
    C = metrics.abs_correlations(Z1, Z2)
    assert np.allclose(np.sort(C, axis=1)[:, -1], 1.0, atol=1e-6)
    assert np.array_equal(base.targets, scaled.targets)


def test_refuses_do_interventions_and_missing_observational_data():
    ds, envs, obs, _ = problem(0, kind="do", n=5000)
    with pytest.raises(NotIdentifiableError, match="zero-variance direction"):
        ss.fit(envs, observational=obs, latent_dim=4)
    with pytest.raises(MncrlError, match="needs observational data"):
        ss.fit(envs, latent_dim=4)


def test_refuses_fewer_environments_than_latents():
    ds, envs, obs, _ = problem(0, n=5000)
    with pytest.raises(NotIdentifiableError, match="full column rank"):
        ss.fit(envs[:3], observational=obs, latent_dim=4)


def test_refuses_a_rank_deficient_target_matrix():
    """Two latents always intervened together: no rank-one signature separates them."""
    targets = [[0, 1], [0, 1, 2], [3], [2, 3], [0, 1, 3]]
    ds, envs, obs, _ = problem(0, n=100_000, design="custom", design_params={"targets": targets})
    with pytest.raises(NotIdentifiableError, match="no precision-difference signature"):
        ss.fit(envs, observational=obs, latent_dim=4)


def test_too_many_environments_is_a_clear_error():
    ds, envs, obs, _ = problem(0, n=2000)
    with pytest.raises(MncrlError, match="max_envs"):
        ss.fit(envs, observational=obs, latent_dim=4, max_envs=3)


def test_hyperparameters_are_checked():
    ds, envs, obs, _ = problem(0, n=2000)
    with pytest.raises(MncrlError, match="rank_rtol"):
        ss.fit(envs, observational=obs, rank_rtol=1.5)
    with pytest.raises(MncrlError, match="hard"):
        ss.fit(envs, observational=obs, hard="yes")


def test_applicability():
    dense = np.array([[1, 1, 0], [0, 1, 1], [1, 0, 1]], dtype=bool)
    assert ss.applicable(Setting("soft", dense, True)) is None
    assert ss.applicable(Setting("stochastic", np.eye(3, dtype=bool), True)) is None
    assert "stochastic or soft" in ss.applicable(Setting("do", dense, True))
    assert "observational" in ss.applicable(Setting("soft", dense, False))
    singular = np.array([[1, 1, 0], [1, 1, 0], [0, 0, 1]], dtype=bool)
    assert "full column rank" in ss.applicable(Setting("soft", singular, True))


def test_registered_with_presets():
    r = estimators.resolve("subspace-soft", "hard")
    assert r.hparams["hard"] is True
    assert estimators.get("subspace-soft").needs_observational


def test_candidates_and_projections():
    cands = ss.binary_candidates(3)
    assert cands.shape == (7, 3)
    assert {tuple(c) for c in cands.astype(int)} == {
        (a, b, c) for a in (0, 1) for b in (0, 1) for c in (0, 1) if a or b or c
    }
    P = ss.projector_off([np.array([1.0, 1.0, 0.0])], 3)
    assert np.allclose(P @ np.array([1.0, 1.0, 0.0]), 0.0)
    same = ss.same_direction(cands, P, np.array([1.0, 0.0, 0.0]))
    # [1,0,0] and [0,1,0] project to opposite directions off [1,1,0]; [1,0,1], [0,1,1] differ
    assert {tuple(cands[i].astype(int)) for i in same} == {(1, 0, 0), (0, 1, 0)}


def test_change_scores_ignore_scale_and_earlier_latents():
    rng = np.random.default_rng(0)
    covs = np.stack(
        [
            np.cov(rng.normal(size=(500, 3)) @ rng.normal(size=(3, 3)), rowvar=False)
            for _ in range(3)
        ]
    )
    means = rng.normal(size=(3, 3))
    U = np.array([[2.0, 0.7, -0.3], [0.0, -0.5, 1.1], [0.0, 0.0, 3.0]])  # upper triangular
    base = ss.change_scores(covs, means)
    mixed = ss.change_scores(np.einsum("ai,kab,bj->kij", U, covs, U), means @ U)
    assert np.allclose(base, mixed, rtol=1e-8, atol=1e-12)
