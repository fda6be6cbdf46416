"""Mixing matrices L (d x m, m >= d, full row rank): X = Z L in the row-vector convention.

Kinds (``MIXINGS``):
- ``paper``: L ~ U[0, 1)^(d x m), then L[i, i] := sum_k |L[i, k]| (the whole row, old diagonal
  included): the leading d x d block is strictly diagonally dominant, hence L is injective.
- ``gaussian``: L = U diag(s) V^T from the SVD of a standard Gaussian d x m matrix with the
  singular values replaced by a geometric sequence with condition number exactly ``condition``
  and geometric mean 1.
- ``orthogonal``: Haar-random L with orthonormal rows (L L^T = I).
- ``reference``: the reference code's exact L for a mixing seed (its ``get_rand_A``): NumPy's
  legacy ``RandomState(mixing_seed).rand(d, m)`` with the diagonal replaced by the absolute row
  sum. Same construction as ``paper`` but the reference's random stream, so mixing seed 0 is
  the very matrix behind the paper's Fig. 2a (the conditioning of L matters at d = 3).

Observation noise (additive, on X) is drawn by the simulator, not here.
"""

from __future__ import annotations

import numpy as np

from mncrl.errors import MncrlError

MIXINGS = ("paper", "gaussian", "orthogonal", "reference")


def paper_mixing(d: int, m: int, rng: np.random.Generator) -> np.ndarray:
    """The reference code's L: uniform entries with the diagonal set to the absolute row sum."""
    L = rng.random((d, m))
    idx = np.arange(d)
    L[idx, idx] = np.abs(L).sum(axis=1)
    return L


def reference_mixing(d: int, m: int, seed: int) -> np.ndarray:
    """The reference implementation's L for ``seed``: legacy ``RandomState(seed)`` uniforms,
    diagonal set to the absolute row sum (bit-identical to the authors' script)."""
    L = np.random.RandomState(seed).rand(d, m)
    idx = np.arange(d)
    L[idx, idx] = np.abs(L).sum(axis=1)
    return L


def gaussian_mixing(
    d: int, m: int, rng: np.random.Generator, condition: float = 10.0
) -> np.ndarray:
    """Random L with condition number ``condition`` (ratio of largest to smallest singular
    value), Gaussian singular vectors and singular values condition^{1/2} ... condition^{-1/2}."""
    if not condition >= 1.0:
        raise MncrlError(f"condition must be >= 1, got {condition}")
    G = rng.standard_normal((d, m))
    U, _, Vt = np.linalg.svd(G, full_matrices=False)
    s = condition ** np.linspace(0.5, -0.5, d) if d > 1 else np.ones(1)
    return (U * s) @ Vt


def orthogonal_mixing(d: int, m: int, rng: np.random.Generator) -> np.ndarray:
    """Haar-random d x m matrix with orthonormal rows (QR of a Gaussian with sign fix)."""
    G = rng.standard_normal((m, d))
    Q, R = np.linalg.qr(G)
    Q = Q * np.sign(np.diag(R))
    return Q.T


def make_mixing(
    kind: str,
    d: int,
    m: int | None,
    rng: np.random.Generator,
    *,
    condition: float = 10.0,
    seed: int | None = None,
) -> np.ndarray:
    """A (d x m) mixing matrix of the given kind (float64). ``reference`` uses the integer
    ``seed`` (the mixing seed) instead of ``rng``."""
    m = d if m is None else m
    if m < d:
        raise MncrlError(f"the observed dimension m = {m} must be >= the latent dimension d = {d}")
    if kind == "paper":
        return paper_mixing(d, m, rng)
    if kind == "gaussian":
        return gaussian_mixing(d, m, rng, condition)
    if kind == "orthogonal":
        return orthogonal_mixing(d, m, rng)
    if kind == "reference":
        if seed is None:
            raise MncrlError("mixing 'reference' needs the integer mixing seed")
        return reference_mixing(d, m, seed)
    raise MncrlError(f"unknown mixing '{kind}'; allowed: {', '.join(MIXINGS)}")
