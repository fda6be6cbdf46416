"""Mixing matrices: shapes, the properties each kind promises, errors."""

import numpy as np
import pytest

from mncrl.errors import MncrlError
from mncrl.mixing import MIXINGS, make_mixing


def rng(seed=0):
    return np.random.default_rng(seed)


@pytest.mark.parametrize("d,m", [(3, 3), (6, 6), (30, 30), (4, 9)])
def test_paper_mixing_is_strictly_diagonally_dominant(d, m):
    L = make_mixing("paper", d, m, rng(d))
    assert L.shape == (d, m) and np.all(L >= 0)
    off = np.abs(L).sum(axis=1) - np.abs(np.diag(L))
    assert np.all(np.diag(L) > off)
    assert np.linalg.matrix_rank(L) == d
    assert np.all(L[~np.eye(d, m, dtype=bool)] < 1.0)


def test_paper_mixing_diagonal_is_the_absolute_row_sum_of_the_uniform_draw():
    U = rng(7).random((5, 5))
    L = make_mixing("paper", 5, 5, rng(7))
    assert np.allclose(np.diag(L), U.sum(axis=1))
    assert np.array_equal(L[~np.eye(5, dtype=bool)], U[~np.eye(5, dtype=bool)])


@pytest.mark.parametrize("d,m,cond", [(3, 3, 1.0), (6, 6, 10.0), (10, 10, 1000.0), (4, 12, 50.0)])
def test_gaussian_mixing_has_the_target_condition_number(d, m, cond):
    L = make_mixing("gaussian", d, m, rng(1), condition=cond)
    s = np.linalg.svd(L, compute_uv=False)
    assert L.shape == (d, m)
    assert s[0] / s[-1] == pytest.approx(cond, rel=1e-9)
    assert np.prod(s) == pytest.approx(1.0, rel=1e-9)  # geometric mean 1


@pytest.mark.parametrize("d,m", [(1, 1), (5, 5), (5, 8)])
def test_orthogonal_mixing_has_orthonormal_rows(d, m):
    L = make_mixing("orthogonal", d, m, rng(2))
    assert L.shape == (d, m)
    assert np.allclose(L @ L.T, np.eye(d), atol=1e-12)


@pytest.mark.parametrize("kind", [k for k in MIXINGS if k != "reference"])
def test_mixing_is_deterministic_given_the_generator(kind):
    assert np.array_equal(make_mixing(kind, 5, 7, rng(3)), make_mixing(kind, 5, 7, rng(3)))
    assert not np.array_equal(make_mixing(kind, 5, 7, rng(3)), make_mixing(kind, 5, 7, rng(4)))


def test_square_by_default():
    assert make_mixing("paper", 4, None, rng()).shape == (4, 4)


def test_mixing_errors():
    with pytest.raises(MncrlError, match="m = 2 must be >= the latent dimension d = 3"):
        make_mixing("paper", 3, 2, rng())
    with pytest.raises(MncrlError, match="unknown mixing 'sparse'; allowed: paper, gaussian"):
        make_mixing("sparse", 3, 3, rng())
    with pytest.raises(MncrlError, match="condition must be >= 1"):
        make_mixing("gaussian", 3, 3, rng(), condition=0.5)


def test_reference_mixing_is_the_authors_matrix():
    # the authors' get_rand_A: np.random.seed(s); A = np.random.rand(d, d); diag = |row| sums
    expected = np.random.RandomState(0).rand(3, 3)
    np.fill_diagonal(expected, np.abs(expected).sum(axis=1))
    L = make_mixing("reference", 3, None, rng(5), seed=0)
    assert np.array_equal(L, expected)
    assert np.array_equal(make_mixing("reference", 3, None, rng(6), seed=0), L)  # rng unused
    assert not np.array_equal(make_mixing("reference", 3, None, rng(5), seed=1), L)
    assert np.all(np.diag(L) > np.abs(L).sum(axis=1) - np.diag(L))  # strictly diag. dominant
    with pytest.raises(MncrlError, match="needs the integer mixing seed"):
        make_mixing("reference", 3, None, rng())
