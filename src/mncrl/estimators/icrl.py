"""`icrl`: the paper's closed-form stand-in for interventional CRL (Ahuja et al. 2023).

As in the reference code (docs/paper.md#baselines): for every environment k, least
squares without intercept of the environment's rows X_k onto the constant ``target`` (10),
``gamma_k = argmin ||X_k gamma - 10||`` (the minimum-norm solution when X_k is rank deficient,
as ``numpy.linalg.lstsq`` and scikit-learn's ``LinearRegression`` return). The coefficient
vectors are the rows of Gamma (K x m) and the unmixing is W = Gamma^T, Zhat = X Gamma^T.

W must have d columns. When K != d:

- K > d: the d environments whose coefficient vectors are the most linearly independent are
  kept (column-pivoted QR of Gamma^T; kept in environment order). ``info["selected_envs"]``.
- K < d: the K coefficient vectors are completed by the top d - K principal directions of the
  pooled covariance orthogonal to them. ``info["completed_with_pca"]`` says how many.
"""

from __future__ import annotations

import numpy as np

from mncrl.errors import MncrlError
from mncrl.estimators.base import Estimator, Fit

NAME = "icrl"
HPARAMS = {"target": 10.0}


def coefficients(envs, target: float = 10.0) -> np.ndarray:
    """Gamma (K x m): per-environment least-squares coefficients of X_k onto ``target``."""
    from mncrl.threads import single_threaded_blas

    rows = []
    with single_threaded_blas():
        for X in envs:
            X = np.asarray(X, dtype=np.float64)
            gamma, *_ = np.linalg.lstsq(X, np.full(X.shape[0], float(target)), rcond=None)
            rows.append(gamma)
    return np.stack(rows)


def _select(Gamma: np.ndarray, d: int) -> np.ndarray:
    from scipy.linalg import qr

    _, _, piv = qr(Gamma.T, pivoting=True, mode="economic")
    return np.sort(piv[:d])


def _complete(Gamma: np.ndarray, envs, d: int) -> np.ndarray:
    """d - K unit directions of largest pooled variance orthogonal to the rows of Gamma."""
    X = np.concatenate([np.asarray(e, dtype=np.float64) for e in envs])
    C = np.cov(X, rowvar=False)
    Q, _ = np.linalg.qr(Gamma.T)
    P = np.eye(C.shape[0]) - Q @ Q.T
    eigval, eigvec = np.linalg.eigh(P @ C @ P)
    return eigvec[:, np.argsort(eigval)[::-1][: d - Gamma.shape[0]]]


def fit(envs, *, seed: int = 0, latent_dim: int | None = None, target: float = 10.0) -> Fit:
    """Fit the ICRL stand-in; ``seed`` is unused (the estimator is deterministic)."""
    from mncrl.environments import check_envs

    blocks, m = check_envs(envs, latent_dim)
    d = m if latent_dim is None else int(latent_dim)
    if not np.isfinite(target) or target == 0:
        raise MncrlError(f"{NAME}: target must be a non-zero number, got {target!r}")
    Gamma = coefficients(blocks, target)
    K = Gamma.shape[0]
    info = {"estimator": NAME, "latent_dim": d, "gamma": Gamma.tolist(), "target": float(target)}
    if K > d:
        keep = _select(Gamma, d)
        info["selected_envs"] = keep.tolist()
        W = Gamma[keep].T
    elif K < d:
        info["completed_with_pca"] = d - K
        W = np.concatenate([Gamma.T, _complete(Gamma, blocks, d)], axis=1)
    else:
        W = Gamma.T
    return Fit(unmixing=np.asarray(W, dtype=np.float64), targets=None, info=info)


ESTIMATOR = Estimator(
    name=NAME,
    fit=fit,
    description="baseline: the paper's ICRL stand-in, per-environment least squares of X onto "
    "the constant 10; W = Gamma^T",
    presets={"default": dict(HPARAMS)},
    default_preset="default",
)

__all__ = ["ESTIMATOR", "coefficients", "fit"]
