"""Metrics against hand-computed cases."""

import numpy as np
import pytest

from mncrl import metrics
from mncrl.errors import MncrlError


def _latents(n=6000, d=4, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, d)) @ np.triu(np.ones((d, d)))  # correlated latents


def test_scaled_permutation_is_perfect():
    Z = _latents()
    perm, scale = np.array([2, 0, 3, 1]), np.array([-3.0, 0.5, 2.0, -0.1])
    Zhat = Z[:, perm] * scale + 7.0
    assert metrics.mcc(Z, Zhat) == pytest.approx(1.0, abs=1e-12)
    assert metrics.mcc_paper(Z, Zhat) == pytest.approx(1.0, abs=1e-12)
    assert metrics.mcc_spearman(Z, Zhat) == pytest.approx(1.0, abs=1e-12)
    L = np.random.default_rng(1).random((4, 4)) + 4 * np.eye(4)
    P = np.eye(4)[:, perm]
    W = np.linalg.inv(L) @ P @ np.diag(scale)
    assert metrics.amari(L, W) == pytest.approx(0.0, abs=1e-12)
    assert list(metrics.matching_from_mixing(L, W)) == list(perm)
    assert list(metrics.matching_from_latents(Z, Zhat)) == list(perm)


def test_mcc_hand_computed():
    # a, b orthogonal, zero mean, equal norm: corr(a, a+b) = corr(b, a+b) = 1/sqrt(2), corr(a, b) = 0
    a = np.array([1.0, -1.0, 1.0, -1.0])
    b = np.array([1.0, 1.0, -1.0, -1.0])
    Z = np.stack([a, b], axis=1)
    Zhat = np.stack([b, a + b], axis=1)
    C = metrics.abs_correlations(Z, Zhat)
    np.testing.assert_allclose(C, [[0.0, 2**-0.5], [1.0, 2**-0.5]], atol=1e-12)
    # best matching: Zhat0=b <-> Z1 (1.0), Zhat1 <-> Z0 (0.7071)
    assert metrics.mcc(Z, Zhat) == pytest.approx((1 + 2**-0.5) / 2)


def test_constant_column_counts_as_uncorrelated():
    Z = _latents(n=100, d=2)
    Zhat = np.stack([Z[:, 0], np.full(100, 3.0)], axis=1)
    C = metrics.abs_correlations(Z, Zhat)
    assert np.all(C[:, 1] == 0.0)
    assert metrics.mcc(Z, Zhat) == pytest.approx(0.5)


def test_amari_known_matrices():
    I2 = np.eye(2)
    # M = [[1, 1], [0, 1]]: rows 1 + 0, columns 0 + 1 -> 2 / (2 * 2 * 1) = 0.5
    assert metrics.amari(I2, np.array([[1.0, 1.0], [0.0, 1.0]])) == pytest.approx(0.5)
    assert metrics.amari(np.eye(3), np.ones((3, 3))) == pytest.approx(1.0)
    # a lost latent (zero column) is the worst case on that side
    M = np.array([[1.0, 0.0], [0.0, 0.0]])
    assert metrics.amari(I2, M) == pytest.approx((1 + 1) / 4)
    # m > d: L (d x m) W (m x d) is d x d
    L = np.array([[1.0, 0.0, 2.0], [0.0, 1.0, 0.0]])
    W = np.array([[0.0, 1.0], [3.0, 0.0], [0.0, 0.0]])
    assert metrics.amari(L, W) == pytest.approx(0.0)
    with pytest.raises(MncrlError, match="as many estimated latents"):
        metrics.amari(L, np.ones((3, 1)))


def test_mcc_paper_chunks_drop_the_remainder():
    rng = np.random.default_rng(0)
    Z = rng.standard_normal((12000, 2))
    Zhat = Z.copy()
    Zhat[5000:10000, 1] = Z[5000:10000, 1] + rng.standard_normal(5000)  # corr ~ 1/sqrt(2)
    Zhat[10000:] = rng.standard_normal((2000, 2))  # the dropped remainder: pure noise
    second = metrics.mcc(Z[5000:10000], Zhat[5000:10000])
    assert metrics.mcc_paper(Z, Zhat) == pytest.approx((1.0 + second) / 2)
    # fewer rows than one chunk: one chunk of everything
    assert metrics.mcc_paper(Z[:300], Zhat[:300]) == pytest.approx(metrics.mcc(Z[:300], Zhat[:300]))


def test_interleave_order_matches_the_reference_reshape():
    env = np.array([0, 0, 0, 1, 1, 1, 2, 2, 2])
    order = metrics.interleave_order(env)
    assert list(order) == [0, 3, 6, 1, 4, 7, 2, 5, 8]
    # the reference stacks [n, envs, d] and reshapes to rows: same order
    stacked = np.arange(9).reshape(3, 3).T.reshape(-1)
    assert list(order) == list(stacked)
    # unequal sizes: smaller environments run out first
    assert list(metrics.interleave_order(np.array([1, 0, 0, 1, 1]))) == [1, 0, 2, 3, 4]


def test_mcc_paper_with_env_interleaves():
    rng = np.random.default_rng(0)
    n, K = 4000, 3
    env = np.repeat(np.arange(K), n)
    Z = rng.standard_normal((n * K, 2))
    Zhat = Z + 0.1 * rng.standard_normal(Z.shape)
    order = metrics.interleave_order(env)
    expected = metrics.mcc_paper(Z[order], Zhat[order])
    assert metrics.mcc_paper(Z, Zhat, env=env) == pytest.approx(expected)


def test_target_f1():
    T = np.array([[1, 1, 0], [0, 1, 1]], dtype=bool)
    assert metrics.target_f1(T, T) == 1.0
    # estimated latents are a permutation of the true ones: perm[j] = true latent of estimate j
    perm = np.array([2, 0, 1])
    E = T[:, perm]
    assert metrics.target_f1(T, E, perm) == 1.0
    # one false positive, one missed: tp = 3, |est| = 4, |true| = 4 -> 6 / 8
    E2 = np.array([[1, 0, 1], [0, 1, 1]], dtype=bool)
    assert metrics.target_f1(T, E2) == pytest.approx(0.75)
    assert metrics.target_f1(np.zeros((2, 2), bool), np.zeros((2, 2), bool)) == 1.0


def test_evaluate_computes_what_the_inputs_allow():
    Z = _latents(n=6000, d=3)
    L = np.random.default_rng(2).random((3, 3)) + 3 * np.eye(3)
    W = np.linalg.inv(L)
    Zhat = Z @ L @ W
    T = np.eye(3, dtype=bool)
    full = metrics.evaluate(Z=Z, Zhat=Zhat, L=L, W=W, true_targets=T, est_targets=T)
    assert set(full) == {"mcc", "mcc_paper", "mcc_spearman", "amari", "target_f1"}
    assert full["mcc"] == pytest.approx(1.0) and full["amari"] == pytest.approx(0.0, abs=1e-9)
    assert set(metrics.evaluate(L=L, W=W)) == {"amari"}
    assert set(metrics.evaluate(Z=Z, Zhat=Zhat, spearman=False)) == {"mcc", "mcc_paper"}
    assert metrics.evaluate() == {}


def test_bad_inputs():
    with pytest.raises(MncrlError, match="same rows"):
        metrics.mcc(np.ones((5, 2)), np.ones((4, 2)))
    with pytest.raises(MncrlError, match="chunk"):
        metrics.mcc_paper(np.ones((5, 2)), np.ones((5, 2)), chunk=1)
    with pytest.raises(MncrlError):
        metrics.target_f1(np.ones((2, 2), bool), np.ones((3, 2), bool))
