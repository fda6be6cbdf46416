"""`umni` (Varici et al. 2024): exact algebra, recovery (hard: the latents; soft: up to
ancestors), targets, refusals, applicability, units."""

from __future__ import annotations

import numpy as np
import pytest

from mncrl import estimators, metrics
from mncrl.environments import as_environments
from mncrl.errors import MncrlError, NotIdentifiableError
from mncrl.estimators import umni
from mncrl.estimators.base import Setting
from mncrl.scm import ancestor_matrix
from mncrl.simulation import Scenario, simulate


def data(seed: int = 0, **kw):
    """(dataset, interventional blocks, observational rows): a dense invertible multi-node
    design (identity + Bernoulli(0.4), permuted) with an observational environment, d = 4,
    population-like n."""
    params = dict(
        d=4,
        m=6,
        n=200_000,
        design="dense",
        intervention="stochastic",
        observational=True,
        mixing="gaussian",
        dtype="float64",
        weight_range=(0.5, 1.5),
    )
    params.update(kw)
    ds = simulate(Scenario(**params), seed)
    blocks, obs, _ = as_environments(ds)
    return ds, blocks, obs


def obs_sd(ds) -> np.ndarray:
    """The true latents' observational standard deviations (the observational env is last)."""
    return ds.Z[ds.env == ds.n_envs - 1].std(axis=0)


# ---------------------------------------------------------------------------------------------
# the algebra on exact precision matrices
# ---------------------------------------------------------------------------------------------


def exact_problem(rng, d: int, hard: bool):
    """Exact covariances (whitened, observational first) of a random linear SEM with a dense
    invertible multi-node design (the published script's kind: identity | upper-triangular
    Bernoulli(0.5), environments permuted); M maps latents to the coordinates (x = M z)."""
    adj = np.triu(rng.random((d, d)) < 0.5, 1)
    weights = adj * rng.choice([-1, 1], (d, d)) * rng.uniform(0.5, 1.5, (d, d))
    var = rng.uniform(0.5, 1.5, d)
    T = np.eye(d, dtype=bool) | np.triu(rng.random((d, d)) < 0.5)
    T = T[:, rng.permutation(d)].T  # environment x node
    perm = rng.permutation(d)  # hide the causal order
    weights, T = weights[np.ix_(perm, perm)], T[:, perm]

    def cov(targets):
        Bk, vk = weights.copy(), var[perm].copy()
        Bk[:, targets] = 0.0 if hard else 0.5 * Bk[:, targets]
        vk[targets] *= 0.25
        inv = np.linalg.inv(np.eye(d) - Bk.T)  # z = B^T z + noise
        return inv @ np.diag(vk) @ inv.T

    M = rng.standard_normal((d, d))
    covs = np.stack([M @ cov(t) @ M.T for t in [np.zeros(d, dtype=bool), *T]])
    evals, evecs = np.linalg.eigh(covs.mean(axis=0))
    white = evecs @ np.diag(evals**-0.5) @ evecs.T
    return white @ covs @ white, white @ M, weights, T


def exact_fit(covs, hard: bool):
    sc = umni.Scores.from_precisions(np.linalg.inv(covs), covs, np.full(len(covs), 1e12))
    tests = dict(rank_rtol=1e-8, noise_tol=3.0, energy_rtol=1e-6)
    order = umni.causal_order(sc, umni.weight_grid(len(covs) - 1, 2), chunk=4096, **tests)
    anc = umni.refine_ancestors(sc, order.rows, order.weights, kappa=2, pair_bound=8, **tests)
    rows = umni.hard_rows(anc.rows, covs, hard_tol=0.1)[0] if hard else anc.rows
    return rows, anc


@pytest.mark.parametrize("hard", [False, True])
def test_exact_precisions_identify_up_to_ancestors_or_fully(hard):
    """Population precision matrices, 10 random problems with d = 4 or 5: the soft output
    mixes every latent only with its ancestors (leak 0), the ancestor relation is exact, the
    targets are exact, and with hard interventions step 3 recovers each latent alone."""
    rng = np.random.default_rng(0)
    for trial in range(10):
        d = 4 + trial % 2
        covs, M, weights, T = exact_problem(rng, d, hard)
        rows, anc = exact_fit(covs, hard)
        E = (rows @ M).T  # Zhat = Z E
        leak, perm = metrics.ancestor_leak(E, weights)
        assert leak < 1e-10
        true_anc = ancestor_matrix(weights)
        np.testing.assert_array_equal(anc.ancestors, true_anc[np.ix_(perm, perm)])
        coef, logvar = umni.mechanism_changes(rows, covs)
        np.testing.assert_array_equal((coef > 0.1) | (logvar > 0.1), T[:, perm])
        if hard:
            share = np.abs(E) / np.abs(E).max(axis=0)
            assert (share > 1e-8).sum(axis=0).max() == 1  # one true latent per column


def test_weight_grid_is_canonical():
    g = umni.weight_grid(3, 2)
    assert (np.abs(g) <= 2).all() and (g != 0).any(axis=1).all()
    first = g[np.arange(len(g)), np.argmax(g != 0, axis=1)]
    assert (first > 0).all()  # one of w, -w
    assert (np.gcd.reduce(np.abs(g.astype(int)), axis=1) == 1).all()  # primitive
    assert len({tuple(w) for w in g.tolist()}) == len(g) == 49
    assert (np.diff(np.abs(g.astype(int)).sum(axis=1)) >= 0).all()  # simplest first


# ---------------------------------------------------------------------------------------------
# recovery from data
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1])
def test_hard_interventions_recover_latents_and_targets(seed):
    ds, blocks, obs = data(seed)
    fit = umni.fit(blocks, observational=obs, latent_dim=4, hard=True)
    assert metrics.mcc(ds.Z, ds.X @ fit.unmixing) > 0.99
    perm = metrics.matching_from_mixing(ds.L, fit.unmixing)
    np.testing.assert_array_equal(fit.targets, ds.targets[:-1][:, perm])
    assert fit.info["hard"] and fit.unmixing.shape == (6, 4)
    assert fit.info["search"]["candidates"] > 0


@pytest.mark.parametrize("seed", [0, 1])
def test_soft_interventions_give_latents_up_to_ancestors(seed):
    """The soft guarantee: every estimated latent is a combination of one true latent and its
    ancestors (ancestor_leak: the largest share of an estimated latent's squared coefficients,
    in units of the latents' standard deviations, on latents outside the matched latent's closed
    ancestor set), the combination is invertible, the columns come in a causal order and the
    targets are recovered."""
    ds, blocks, obs = data(seed, intervention="soft")
    fit = umni.fit(blocks, observational=obs, latent_dim=4)
    E = ds.L @ fit.unmixing
    leak, perm = metrics.ancestor_leak(E, ds.meta["adjacency"], obs_sd(ds))
    assert leak < 0.01
    assert np.linalg.cond(E * obs_sd(ds)[:, None]) < 1e3
    closure = ancestor_matrix(ds.meta["adjacency"]) | np.eye(len(ds.meta["adjacency"]), dtype=bool)
    for t in range(4):  # no estimated latent comes before one of its true ancestors
        assert not any(closure[perm[s], perm[t]] for s in range(t + 1, 4))
    np.testing.assert_array_equal(fit.targets, ds.targets[:-1][:, perm])
    assert not fit.info["hard"]


def test_invariant_to_units_of_x():
    """Columns of X in units 10^-3..10^3 apart: the same latents (columns of Zhat perfectly
    correlated) and the same integer combinations."""
    ds, blocks, obs = data(0, n=50_000)
    scale = 10.0 ** np.random.default_rng(1).uniform(-3, 3, ds.X.shape[1])
    a = umni.fit(blocks, observational=obs, latent_dim=4, hard=True)
    b = umni.fit([x * scale for x in blocks], observational=obs * scale, latent_dim=4, hard=True)
    za, zb = ds.X @ a.unmixing, (ds.X * scale) @ b.unmixing
    corr = np.abs([np.corrcoef(za[:, j], zb[:, j])[0, 1] for j in range(4)])
    assert corr.min() > 1 - 1e-8
    assert a.info["weights"] == b.info["weights"]
    np.testing.assert_array_equal(a.targets, b.targets)


# ---------------------------------------------------------------------------------------------
# refusals
# ---------------------------------------------------------------------------------------------


def test_needs_observational_data():
    _, blocks, _ = data(0, n=5_000)
    with pytest.raises(MncrlError, match="observational"):
        umni.fit(blocks, latent_dim=4)


def test_do_interventions_have_no_precision_matrices():
    _, blocks, obs = data(0, n=5_000, intervention="do")
    with pytest.raises(NotIdentifiableError, match="zero-variance"):
        umni.fit(blocks, observational=obs, latent_dim=4)


def test_singular_target_matrix_is_not_identifiable():
    """Latents 0 and 1 are always intervened together: no combination isolates either."""
    design = {"targets": [[0, 1], [0, 1], [2]]}
    _, blocks, obs = data(0, d=3, m=5, design="custom", design_params=design)
    with pytest.raises(NotIdentifiableError, match="rank one at causal-order step"):
        umni.fit(blocks, observational=obs, latent_dim=3)


def test_needs_one_environment_per_latent():
    _, blocks, obs = data(0, n=5_000)
    with pytest.raises(MncrlError, match="exactly d = 4"):
        umni.fit(blocks[:3], observational=obs, latent_dim=4)


def test_refuses_above_max_latents():
    _, blocks, obs = data(0, n=5_000)
    with pytest.raises(MncrlError, match="max_latents = 3"):
        umni.fit(blocks, observational=obs, latent_dim=4, max_latents=3)


@pytest.mark.parametrize(
    "bad", [{"kappa": 0}, {"rank_rtol": -1.0}, {"noise_tol": float("nan")}, {"hard": "yes"}]
)
def test_bad_hyperparameters(bad):
    _, blocks, obs = data(0, n=5_000)
    with pytest.raises(MncrlError):
        umni.fit(blocks, observational=obs, latent_dim=4, **bad)


# ---------------------------------------------------------------------------------------------
# registry and applicability
# ---------------------------------------------------------------------------------------------


def test_applicable():
    ok = umni.applicable
    dense = np.array([[1, 1, 0], [0, 1, 0], [1, 0, 1]], dtype=bool)
    assert ok(Setting("stochastic", dense, True)) is None
    assert ok(Setting("soft", np.eye(3, dtype=bool), True)) is None
    assert "observational" in ok(Setting("stochastic", dense, False))
    assert "do" in ok(Setting("do", dense, True))
    assert "K = d" in ok(Setting("soft", dense[:2], True))
    singular = np.array([[1, 1, 0], [1, 1, 0], [0, 0, 1]], dtype=bool)
    assert "invertible" in ok(Setting("stochastic", singular, True))


def test_registered():
    est = estimators.get("umni")
    assert est.needs_observational and est.reports_targets
    assert est.not_applicable(Setting("do", np.eye(3, dtype=bool), True)) is not None
    assert estimators.resolve("umni").hparams["hard"] is False
    assert estimators.resolve("umni", "hard").hparams["hard"] is True
