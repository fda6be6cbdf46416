"""`varimax-pca`: varimax-rotated principal components, the climate community's mode extraction
(the first step of Mapped-PCMCI; Kaiser 1958) as a baseline.

On the pooled, centred rows of every environment: the d leading principal components (the
eigenvectors V of the pooled covariance with eigenvalues lambda), their loadings
Lambda = V diag(sqrt(lambda)) (m x d), and the orthogonal rotation R (d x d) that maximises
the varimax criterion sum_j [ mean_i Lambda_ij^4 - (mean_i Lambda_ij^2)^2 ] of Lambda R (raw
varimax: no Kaiser row normalisation). The latents are the rotated, standardised component
scores: W = V diag(1 / sqrt(lambda)) R.

Given ``basis`` (p x C, orthonormal rows; the data are the coordinates of a gridded field in
its signal subspace, :mod:`mncrl.field`), the loadings are rotated over the C grid cells,
Lambda_cell = basis^T Lambda, as a climate scientist rotates the EOFs of a field; without it,
over the m coordinates of the data. The varimax criterion is not invariant to a rotation of
the coordinates, so the two differ.

Varimax finds spatially simple patterns; nothing in it reads the interventions, so it
recovers the modes only when their patterns happen to be the simplest rotation. It reports
no targets.
"""

from __future__ import annotations

import numpy as np

from mncrl.errors import ConvergenceError, MncrlError
from mncrl.estimators.base import Estimator, Fit

NAME = "varimax-pca"
HPARAMS = {"max_iter": 1000, "tol": 1e-10}


def varimax(
    loadings: np.ndarray, max_iter: int = 1000, tol: float = 1e-10
) -> tuple[np.ndarray, int, bool]:
    """(R, iterations, converged): the orthogonal d x d rotation maximising the raw varimax
    criterion of ``loadings`` R (the classic SVD iteration; stops when the criterion's relative
    gain is below ``tol``)."""
    Lam = np.asarray(loadings, dtype=np.float64)
    n, d = Lam.shape
    R = np.eye(d)
    value = 0.0
    for it in range(1, int(max_iter) + 1):
        LR = Lam @ R
        G = Lam.T @ (LR**3 - LR * (np.square(LR).sum(axis=0) / n))
        U, s, Vt = np.linalg.svd(G)
        R = U @ Vt
        new = float(s.sum())
        if new <= value * (1.0 + tol):
            return R, it, True
        value = new
    return R, int(max_iter), False


def fit(
    envs,
    *,
    seed: int = 0,
    latent_dim: int | None = None,
    basis=None,
    max_iter: int = 1000,
    tol: float = 1e-10,
) -> Fit:
    """Varimax-rotated PCA of the pooled environments (module docstring); ``seed`` unused."""
    from mncrl.environments import check_envs

    blocks, m = check_envs(envs, latent_dim, min_envs=1)
    d = m if latent_dim is None else int(latent_dim)
    X = np.concatenate([np.asarray(b, dtype=np.float64) for b in blocks])
    X = X - X.mean(axis=0)
    lam, V = np.linalg.eigh(X.T @ X / (len(X) - 1))
    lam, V = lam[::-1][:d], V[:, ::-1][:, :d]
    if lam[-1] <= lam[0] * 1e-12:
        raise MncrlError(f"{NAME}: the data have fewer than {d} non-degenerate components")
    loadings = V * np.sqrt(lam)
    if basis is not None:
        B = np.asarray(basis, dtype=np.float64)
        if B.ndim != 2 or B.shape[0] != m:
            raise MncrlError(f"{NAME}: basis must be a ({m} x cells) array, got shape {B.shape}")
        loadings = B.T @ loadings
    R, iterations, converged = varimax(loadings, max_iter, tol)
    if not converged:
        raise ConvergenceError(f"{NAME}: varimax did not converge in {max_iter} iterations")
    return Fit(
        unmixing=(V / np.sqrt(lam)) @ R,
        targets=None,
        info={
            "estimator": NAME,
            "latent_dim": d,
            "rotated_over": "grid cells" if basis is not None else "coordinates",
            "iterations": iterations,
            "explained": float(lam.sum() / np.trace(X.T @ X / (len(X) - 1))),
        },
    )


ESTIMATOR = Estimator(
    name=NAME,
    fit=fit,
    description="baseline: varimax-rotated PCA of the pooled environments (climate modes, "
    "Mapped-PCMCI's first step); rotates over grid cells given a field basis",
    presets={"default": dict(HPARAMS)},
    default_preset="default",
    uses_field_basis=True,
)

__all__ = ["ESTIMATOR", "fit", "varimax"]
