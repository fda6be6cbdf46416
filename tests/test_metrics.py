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


def _old_amari(M):
    """The previous definition (Amari index of |L W| itself), for contrast."""
    M = np.abs(M)
    d = M.shape[0]
    rows = (M.sum(1) / M.max(1) - 1).sum()
    cols = (M.sum(0) / M.max(0) - 1).sum()
    return (rows + cols) / (2 * d * (d - 1))


def _paper_L(d, m=None, seed=0):
    rng = np.random.default_rng(seed)
    L = rng.random((d, m or d))
    L[np.arange(d), np.arange(d)] = np.abs(L).sum(axis=1)
    return L


def _near(L, eps=0.01, seed=1):
    """W with L W = I + eps * noise (a nearly perfect estimate)."""
    d = L.shape[0]
    M = np.eye(d) + eps * np.random.default_rng(seed).standard_normal((d, d))
    return np.linalg.pinv(L) @ M


def test_amari_known_matrices():
    I2 = np.eye(2)
    # L W = [[1, 1], [0, 1]]: estimate 1 = Z0 + Z1, columns to unit norm -> N = [[1, r], [0, r]]
    # with r = 1/sqrt(2): rows r/1 + 0, columns 0 + r/r -> (r + 1) / 4
    r = 2**-0.5
    assert metrics.amari(I2, np.array([[1.0, 1.0], [0.0, 1.0]])) == pytest.approx((r + 1) / 4)
    assert metrics.amari(np.eye(3), np.ones((3, 3))) == pytest.approx(1.0)
    # a lost estimate (zero column) and the latent nobody carries: worst case on both sides
    M = np.array([[1.0, 0.0], [0.0, 0.0]])
    assert metrics.amari(I2, M) == pytest.approx((1 + 1) / 4)
    # m > d: L (d x m) W (m x d) is d x d
    L = np.array([[1.0, 0.0, 2.0], [0.0, 1.0, 0.0]])
    W = np.array([[0.0, 1.0], [3.0, 0.0], [0.0, 0.0]])
    assert metrics.amari(L, W) == pytest.approx(0.0)
    assert metrics.amari(np.array([[2.0]]), np.array([[-3.0]])) == 0.0
    assert metrics.amari(np.array([[2.0]]), np.array([[0.0]])) == 1.0  # d = 1, lost


@pytest.mark.parametrize("m", [5, 8])
def test_amari_invariant_to_the_scale_of_every_estimate(m):
    L = _paper_L(5, m)
    W = _near(L)
    base = metrics.amari(L, W)
    assert 0.003 < base < 0.05
    rng = np.random.default_rng(3)
    for _ in range(20):
        c = 10 ** rng.uniform(-3, 3, 5) * rng.choice([-1.0, 1.0], 5)
        assert metrics.amari(L, W * c) == pytest.approx(base, rel=1e-9)
        best, terms = metrics.column_terms(L, W * c)
        np.testing.assert_allclose(terms, metrics.column_terms(L, W)[1], rtol=1e-9, atol=1e-15)
        assert best.tolist() == list(range(5))


def test_the_issues_example_one_column_times_100():
    """Issue #11: the same W with one column x100 moved the old value from 0.0099 to 0.131."""
    L = _paper_L(5)
    W = _near(L)
    W100 = W.copy()
    W100[:, 2] *= 100
    assert _old_amari(L @ W100) > 5 * _old_amari(L @ W)  # the old definition moved
    assert metrics.amari(L, W100) == pytest.approx(metrics.amari(L, W), rel=1e-12)


def test_amari_invariant_to_the_unit_of_every_true_latent():
    L = _paper_L(4, 6)
    W = _near(L, eps=0.05)
    base = metrics.amari(L, W)
    rng = np.random.default_rng(4)
    for _ in range(20):
        c = 10 ** rng.uniform(-3, 3, 4)
        # default scales (each latent's footprint ||L_i|| is its unit): any row scaling of L
        assert metrics.amari(c[:, None] * L, W) == pytest.approx(base, rel=1e-9)
        # explicit spreads: re-expressing Z_i in other units (Z_i / c_i, row i of L times c_i,
        # the same X) changes nothing either
        s = 10 ** rng.uniform(-1, 1, 4)
        assert metrics.amari(c[:, None] * L, W, latent_scale=s / c) == pytest.approx(
            metrics.amari(L, W, latent_scale=s), rel=1e-9
        )
        assert metrics.latent_recovery(c[:, None] * L, W, 0.1).tolist() == [True] * 4


def test_a_scaled_permutation_is_zero_at_any_scale():
    L = _paper_L(6, 9)
    rng = np.random.default_rng(5)
    for _ in range(10):
        P = np.eye(6)[:, rng.permutation(6)] * 10 ** rng.uniform(-3, 3, 6)
        W = np.linalg.pinv(L) @ P
        L2 = 10 ** rng.uniform(-3, 3, 6)[:, None] * L
        assert metrics.amari(L, W) == pytest.approx(0.0, abs=1e-12)
        assert metrics.amari(L2, W) == pytest.approx(0.0, abs=1e-12)
        assert metrics.latent_recovery(L, W, 1e-9).all()


def test_a_nearly_lost_latent_counts_as_lost():
    """Estimate 1 = Z0 + eps Z1: nobody carries Z1 beyond eps. At eps <= rtol (relative to the
    largest normalised entry) Z1 is lost and scores like eps = 0; rescaling the estimate does
    not bring it back."""
    I2 = np.eye(2)
    lost = metrics.amari(I2, np.array([[1.0, 1.0], [0.0, 0.0]]))  # Z1 exactly lost
    assert lost == pytest.approx(0.5)  # row of Z1: d - 1; row of Z0: 1; columns 0 and 0
    for eps in (1e-9, 1e-7):
        for c in (1e-6, 1.0, 1e6):
            W = np.array([[1.0, c], [0.0, c * eps]])
            assert metrics.amari(I2, W) == pytest.approx(lost, abs=1e-6)
            assert metrics.latent_recovery(I2, W, 0.01).tolist() == [True, False]
    # above rtol the tiny share is scored as it is (ratio of a tiny to a tiny entry)
    W = np.array([[1.0, 1.0], [0.0, 1e-4]])
    assert metrics.amari(I2, W) == pytest.approx(0.25, abs=1e-3)
    # rtol = 0: only exact zeros are lost; a larger rtol loses more
    assert metrics.amari(I2, np.array([[1.0, 1.0], [0.0, 1e-9]]), rtol=0) < 0.26
    assert metrics.amari(I2, np.array([[1.0, 1.0], [0.0, 1e-4]]), rtol=1e-3) == pytest.approx(
        0.5, abs=1e-4
    )
    # the same in a realistic 5 x 5 case: estimate 3 is a near-copy of estimate 0
    L = _paper_L(5)
    M = np.eye(5)
    M[:, 3] = M[:, 0] + 1e-8 * M[:, 3]
    W = np.linalg.solve(L, M)
    N, lost_rows, lost_cols = metrics.normalised_mixing(L, W)
    assert lost_rows.tolist() == [False, False, False, True, False] and not lost_cols.any()
    assert metrics.latent_recovery(L, W, 0.01).tolist() == [True, True, True, False, True]


def test_an_estimate_that_sees_no_latent_is_lost():
    """m > d: a column of W in the null space of L reads no latent (only noise, in data):
    lost, at any scale, even though rounding leaves L W_j ~ 1e-16 rather than 0."""
    L = _paper_L(3, 5)
    W = np.linalg.pinv(L)
    null = np.linalg.svd(L)[2][-1]  # L @ null ~ 1e-16
    assert 0 < np.abs(L @ null).max() < 1e-12
    for c in (1e-3, 1.0, 1e3):
        W2 = W.copy()
        W2[:, 1] = c * null
        N, lost_rows, lost_cols = metrics.normalised_mixing(L, W2)
        assert lost_cols.tolist() == [False, True, False] and lost_rows.tolist() == [
            False,
            True,
            False,
        ]
        assert metrics.amari(L, W2) == pytest.approx(2 * 2 / (2 * 3 * 2))
        best, terms = metrics.column_terms(L, W2)
        assert terms[1] == 1.0 and terms[0] == pytest.approx(0.0, abs=1e-12)


def test_normalised_mixing_is_the_correlation_of_uncorrelated_latents():
    """With independent latents of spreads s, N = |corr(Z, Zhat)|, so MCC is the matched mean
    of N; and 1 - MCC <= 2 d (d - 1)^2 amari^2 once amari < 1 / (2 d^1.5 (d - 1))
    (docs/paper.md#metric)."""
    rng = np.random.default_rng(6)
    d, n = 4, 200_000
    s = np.array([0.1, 1.0, 3.0, 0.5])
    Z = rng.standard_normal((n, d)) * s
    L = _paper_L(d, 6)
    W = _near(L, eps=0.2)
    N, _, _ = metrics.normalised_mixing(L, W, latent_scale=s)
    np.testing.assert_allclose(N, metrics.abs_correlations(Z, Z @ L @ W), atol=0.01)
    for seed in range(200):
        r = np.random.default_rng(seed)
        d = int(r.integers(2, 8))
        M = np.eye(d)[:, r.permutation(d)] + 10 ** r.uniform(-4, -1) * r.standard_normal((d, d))
        a = metrics.amari(np.eye(d), M)
        N, _, _ = metrics.normalised_mixing(np.eye(d), M)
        rows, cols = metrics.matching(N)
        if a < 1 / (2 * d**1.5 * (d - 1)):
            assert 1 - N[rows, cols].mean() <= 2 * d * (d - 1) ** 2 * a**2 + 1e-12


def test_amari_bad_inputs():
    L = np.eye(3)
    with pytest.raises(MncrlError, match="as many estimated latents"):
        metrics.amari(L, np.ones((3, 1)))
    with pytest.raises(MncrlError, match="L \\(d x m\\) and W"):
        metrics.amari(L, np.ones((2, 3)))
    with pytest.raises(MncrlError, match="L \\(d x m\\) and W"):
        metrics.amari(np.ones(3), np.ones(3))
    with pytest.raises(MncrlError, match="numeric"):
        metrics.amari(L, np.full((3, 3), "a"))
    with pytest.raises(MncrlError, match="rtol"):
        metrics.amari(L, L, rtol=1.0)
    with pytest.raises(MncrlError, match="rtol"):
        metrics.amari(L, L, rtol=-1e-6)
    with pytest.raises(MncrlError, match="latent_scale"):
        metrics.amari(L, L, latent_scale=[1.0, 1.0])
    with pytest.raises(MncrlError, match="latent_scale"):
        metrics.amari(L, L, latent_scale=[1.0, -1.0, 1.0])
    with pytest.raises(MncrlError, match="latent_scale"):
        metrics.column_terms(L, L, latent_scale=[1.0, np.nan, 1.0])
    # a diverged fit (non-finite W) scores NaN and recovers nothing, as before
    W = np.eye(3)
    W[0, 0] = np.nan
    assert np.isnan(metrics.amari(L, W))
    assert not metrics.latent_recovery(L, W, 0.01).any()


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


def test_evaluate_amari_does_not_depend_on_the_units_of_x():
    """With Z known, evaluate() measures the latents in their own spreads: multiplying every
    column of X by its own factor (L -> L D, W -> D^-1 W) leaves amari unchanged."""
    rng = np.random.default_rng(3)
    Z = rng.standard_normal((2000, 4)) * np.array([0.1, 1.0, 5.0, 0.02])
    L = rng.standard_normal((4, 6))
    W = np.linalg.pinv(L) + 0.05 * rng.standard_normal((6, 4))
    D = 10 ** rng.uniform(-3, 3, 6)
    a = metrics.evaluate(Z=Z, Zhat=Z @ L @ W, L=L, W=W)["amari"]
    b = metrics.evaluate(Z=Z, Zhat=Z @ L @ W, L=L * D, W=W / D[:, None])["amari"]
    assert a > 1e-3 and b == pytest.approx(a, rel=1e-9)
    # the L-only default does depend on them (each latent measured by the size of its L row)
    assert metrics.amari(L * D, W / D[:, None]) != pytest.approx(metrics.amari(L, W), rel=1e-3)
