"""`lincd` (Squires et al. 2023): exact algebra, recovery, soft interventions, refusals,
applicability, units."""

from __future__ import annotations

import numpy as np
import pytest

from mncrl import estimators, metrics
from mncrl.environments import as_environments
from mncrl.errors import MncrlError, NotIdentifiableError
from mncrl.estimators import lincd
from mncrl.estimators.base import Setting
from mncrl.simulation import Scenario, simulate


def data(seed: int = 0, **kw):
    """(dataset, interventional blocks, observational rows) of a single-node design with an
    observational environment; population-like n by default."""
    params = dict(
        d=5,
        m=10,
        n=200_000,
        design="atomic",
        intervention="stochastic",
        observational=True,
        mixing="gaussian",
        dtype="float64",
        weight_range=(0.25, 1.0),
    )
    params.update(kw)
    ds = simulate(Scenario(**params), seed)
    blocks, obs, _ = as_environments(ds)
    return ds, blocks, obs


def matched(ds, fit) -> np.ndarray:
    """perm[j] = the true latent matched to estimated latent j (by correlation)."""
    return metrics.matching_from_latents(ds.Z, ds.X @ fit.unmixing)


def topological(order: list[int], adjacency: np.ndarray) -> bool:
    """Whether latents found in ``order`` respect the DAG (adjacency[i, j] != 0: i -> j)."""
    rank = {latent: t for t, latent in enumerate(order)}
    return all(rank[int(i)] < rank[int(j)] for i, j in zip(*np.nonzero(adjacency), strict=True))


# ---------------------------------------------------------------------------------------------
# the algebra on exact precision matrices
# ---------------------------------------------------------------------------------------------


def exact_thetas(rng, d: int, soft: bool = False):
    """Exact Theta_0..Theta_d of a random linear SEM (B = Omega^-1/2 (I - A), A strictly lower
    triangular after a random relabelling) with one hard or soft intervention per latent,
    observed through a random invertible H: Theta_k = H^T B_k^T B_k H. Environment k intervenes
    on latent k."""
    perm = rng.permutation(d)
    A = np.tril(rng.uniform(0.25, 1.0, (d, d)) * rng.choice([-1, 1], (d, d)), -1)
    A = A * (rng.random((d, d)) < 0.75)
    A = A[np.ix_(perm, perm)]
    omega = rng.uniform(1, 2, d)
    B = (np.eye(d) - A) / np.sqrt(omega)[:, None]
    H = rng.standard_normal((d, d))
    thetas = [H.T @ B.T @ B @ H]
    for k in range(d):
        Bk = B.copy()
        if soft:
            Bk[k] = (np.eye(d)[k] - 0.5 * A[k]) / np.sqrt(3.0)
        else:
            Bk[k] = np.eye(d)[k] / np.sqrt(3.0)
        thetas.append(H.T @ Bk.T @ Bk @ H)
    return np.array(thetas), H, A


@pytest.mark.parametrize("seed", range(5))
def test_exact_precisions_give_exact_h_and_targets(seed):
    """Population precision matrices and the paper's exact-arithmetic threshold (1 - 1e-8): the
    order is topological, each environment's target is found and H is recovered up to row
    scaling (every row of Hhat is parallel to the true row of its target)."""
    rng = np.random.default_rng(seed)
    d = 5
    thetas, H, A = exact_thetas(rng, d)
    order = lincd.causal_order(thetas[1:] - thetas[0], 1 - 1e-8, 0.9)
    found = [order.envs[label] for label in range(d - 1, -1, -1)]  # env k targets latent k
    assert topological(found, A.T != 0)
    assert all(s == pytest.approx(1.0, abs=1e-10) for s in (max(r.values()) for r in order.scores))
    C = lincd.cholesky_factors(thetas, order.rows)
    target, R = lincd.assign_targets(C, found)
    np.testing.assert_array_equal(target[order.envs], np.arange(d))
    Hhat = R @ order.rows
    for k in range(d):
        row, true = Hhat[target[k]], H[k]
        cos = abs(row @ true) / np.linalg.norm(row) / np.linalg.norm(true)
        assert cos == pytest.approx(1.0, abs=1e-10)


def test_exact_ancestor_sets_are_the_ancestors():
    """In exact arithmetic pruning keeps exactly the intervened latent's ancestors."""
    rng = np.random.default_rng(3)
    d = 5
    thetas, _, A = exact_thetas(rng, d)
    order = lincd.causal_order(thetas[1:] - thetas[0], 1 - 1e-8, 0.9)
    reach = (A != 0).astype(int)  # reach[i, j]: j is a parent of i
    for _ in range(d):
        reach = ((reach + reach @ reach) > 0).astype(int)
    for label in range(d):
        latent = order.envs[label]
        got = {order.envs[j] for j in order.ancestors[label]}
        assert got == set(np.flatnonzero(reach[latent]).tolist())


def test_exact_soft_rows_are_the_intervened_mechanisms():
    """Soft interventions, exact precisions: the order and targets are still right, but row i of
    Hhat is b'_i H (the intervened mechanism's row: latent i minus half its parents' weights),
    not a multiple of H[i] when i has parents."""
    rng = np.random.default_rng(1)
    d = 5
    thetas, H, A = exact_thetas(rng, d, soft=True)
    order = lincd.causal_order(thetas[1:] - thetas[0], 1 - 1e-8, 0.9)
    C = lincd.cholesky_factors(thetas, order.rows)
    found = [order.envs[label] for label in range(d - 1, -1, -1)]
    target, R = lincd.assign_targets(C, found)
    np.testing.assert_array_equal(target[order.envs], np.arange(d))
    Hhat = R @ order.rows
    for k in range(d):
        expected = (np.eye(d)[k] - 0.5 * A[k]) @ H
        row = Hhat[target[k]]
        cos = abs(row @ expected) / np.linalg.norm(row) / np.linalg.norm(expected)
        assert cos == pytest.approx(1.0, abs=1e-10)


# ---------------------------------------------------------------------------------------------
# recovery from data
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1])
def test_hard_interventions_recover_latents_and_targets(seed):
    ds, blocks, obs = data(seed)
    fit = lincd.fit(blocks, observational=obs, latent_dim=5)
    assert metrics.mcc(ds.Z, ds.X @ fit.unmixing) > 0.99
    perm = matched(ds, fit)
    assert metrics.target_f1(ds.targets[:-1], fit.targets, perm) == 1.0
    true_latent = ds.targets[:-1].argmax(axis=1)
    assert topological([int(true_latent[k]) for k in fit.info["order_envs"]], ds.meta["adjacency"])
    assert fit.info["targets_agree_with_order"]
    # columns of W are max-abs normalised: the largest entry of each is +1
    np.testing.assert_allclose(fit.unmixing.max(axis=0), 1.0)
    assert fit.info["estimator"] == "lincd" and fit.info["latent_dim"] == 5
    assert len(fit.info["rank_scores"]) == 5 and fit.info["rank_threshold"] == 0.99


def test_soft_interventions_give_targets_and_mechanism_noise():
    """Soft interventions: the paper's identifiability theorem is for perfect interventions.
    Steps 1-2 of the algorithm still hold (a soft change is rank one once the ancestors' rows
    are projected off), so the targets are right; but the Cholesky row of environment k is the
    intervened mechanism's row b'_i, so Zhat_i is a multiple of Z_i - sum_j w'_ij Z_j with w' the
    soft-intervened weights (the simulator's: 0.5 w), latent i mixed with its parents (module
    docstring; exact version in test_exact_soft_rows_are_the_intervened_mechanisms). We assert
    exactly that. Weights >= 0.5: a soft change (weights halved) of a non-source scores like a
    hard one with half the weight, 1 - 7.5e-4 for one parent of weight 0.5 in population, above
    the ~3e-4 sampling shortfall of a source's score at n = 2e5 (the order came out right for
    data seeds 0-7); with weights near 0.1 the two differ by ~1e-6 and sampling noise decides
    the order."""
    ds, blocks, obs = data(0, intervention="soft", weight_range=(0.5, 1.0))
    fit = lincd.fit(blocks, observational=obs, latent_dim=5)
    perm = matched(ds, fit)
    assert metrics.target_f1(ds.targets[:-1], fit.targets, perm) == 1.0
    B = ds.meta["adjacency"]  # B[j, i]: weight of j -> i
    mechanism_noise = ds.Z - 0.5 * ds.Z @ B
    Zhat = ds.X @ fit.unmixing
    true_latent = ds.targets[:-1].argmax(axis=1)
    for k, label in enumerate(fit.targets.argmax(axis=1)):
        i = true_latent[k]
        assert abs(np.corrcoef(Zhat[:, label], mechanism_noise[:, i])[0, 1]) > 0.999
    # and so not Z itself for a latent with parents
    assert metrics.mcc(ds.Z, Zhat) < 0.99


def test_invariant_to_units_of_x():
    ds, blocks, obs = data(2, n=50_000)
    fit = lincd.fit(blocks, observational=obs, latent_dim=5)
    scale = 10.0 ** np.random.default_rng(0).uniform(-3, 3, ds.X.shape[1])
    scaled = lincd.fit([b * scale for b in blocks], observational=obs * scale, latent_dim=5)
    np.testing.assert_array_equal(fit.targets, scaled.targets)
    mcc = metrics.mcc(ds.Z, ds.X @ fit.unmixing)
    mcc_scaled = metrics.mcc(ds.Z, (ds.X * scale) @ scaled.unmixing)
    assert mcc_scaled == pytest.approx(mcc, abs=1e-8)
    # the same latents; only scale and sign move (W is max-abs normalised in X units)
    Zhat, Zhat_scaled = ds.X @ fit.unmixing, (ds.X * scale) @ scaled.unmixing
    for j in range(5):
        assert abs(np.corrcoef(Zhat[:, j], Zhat_scaled[:, j])[0, 1]) == pytest.approx(1, abs=1e-9)


# ---------------------------------------------------------------------------------------------
# refusals
# ---------------------------------------------------------------------------------------------


def test_needs_observational_data():
    _, blocks, _ = data(0, n=2000)
    with pytest.raises(MncrlError, match="observational"):
        lincd.fit(blocks, latent_dim=5)


def test_do_interventions_have_no_precision_matrices():
    _, blocks, obs = data(0, n=2000, intervention="do")
    with pytest.raises(NotIdentifiableError, match="zero-variance"):
        lincd.fit(blocks, observational=obs, latent_dim=5)


def test_needs_one_environment_per_latent():
    _, blocks, obs = data(0, n=2000)
    with pytest.raises(MncrlError, match="K = d"):
        lincd.fit(blocks[:4], observational=obs, latent_dim=5)


def test_multi_node_environments_are_refused():
    """Three independent latents, each environment intervening on two of them: every change is
    rank two from the first round on, so no environment passes min_score."""
    ds, blocks, obs = data(
        0,
        d=3,
        m=6,
        n=20_000,
        graph="custom",
        edges=[],
        design="custom",
        design_params={"targets": [[0, 1], [1, 2], [0, 2]]},
    )
    with pytest.raises(NotIdentifiableError, match="round 1 of 3.*rank one"):
        lincd.fit(blocks, observational=obs, latent_dim=3)


def test_bad_threshold():
    _, blocks, obs = data(0, n=2000)
    with pytest.raises(MncrlError, match="rank_threshold"):
        lincd.fit(blocks, observational=obs, latent_dim=5, rank_threshold=1.5)


# ---------------------------------------------------------------------------------------------
# applicability and registry
# ---------------------------------------------------------------------------------------------


def test_applicable():
    eye = np.eye(4, dtype=bool)
    ok = lincd.applicable
    assert ok(Setting("stochastic", eye, True)) is None
    assert ok(Setting("soft", eye[::-1], True)) is None  # any one-to-one assignment
    assert "observational" in ok(Setting("stochastic", eye, False))
    assert "do" in ok(Setting("do", eye, True))
    assert "K = d" in ok(Setting("soft", eye[:3], True))
    two = eye | np.roll(eye, 1, axis=1)
    assert "single-node" in ok(Setting("soft", two, True))
    twice = eye.copy()
    twice[1] = twice[0]  # latent 0 twice, latent 1 never
    assert "single-node" in ok(Setting("stochastic", twice, True))


def test_registered():
    est = estimators.get("lincd")
    assert est.needs_observational and est.reports_targets
    assert est.not_applicable(Setting("do", np.eye(3, dtype=bool), True)) is not None
    resolved = estimators.resolve("lincd", overrides={"rank_threshold": 0.95})
    assert resolved.hparams == {"rank_threshold": 0.95, "min_score": 0.9}
