"""`icrl`: the paper's closed-form stand-in for interventional CRL (Ahuja et al. 2023).

As in the reference code (docs/paper.md#baselines): for every environment k, least
squares without intercept of the environment's rows X_k onto the constant ``target`` (10),
``gamma_k = argmin ||X_k gamma - 10||`` (the minimum-norm solution when X_k is rank deficient,
as ``numpy.linalg.lstsq`` and scikit-learn's ``LinearRegression`` return). The coefficient
vectors are the rows of Gamma (K x m) and the unmixing is W = Gamma^T, Zhat = X Gamma^T.

``cutoff`` is the singular-value cutoff that decides the numerical rank of X_k (the least
squares are solved in float64 either way):

- ``"numpy"`` (default): ``numpy.linalg.lstsq``'s default, eps64 * max(n_k, m) * s_max;
- ``"eps"``: eps * s_max with eps the machine epsilon of X_k's own dtype (float64 when it is
  not a float array). For float64 data this is ``scipy.linalg.lstsq``'s default, which
  scikit-learn's ``LinearRegression`` called without a cutoff before version 1.6, so the
  reference code's (preset ``reference``). Under a leave-one-out do-design X_k has rank 2 in
  exact arithmetic (s_2 / s_max >= ~3e-3 in the paper's setting); its other singular values
  are rounding noise, ~1e-8 s_max for float32 data and ~1e-16 s_max for float64 data. The
  default keeps (fits) float32 noise; ``"eps"`` drops it for float32 data and, like the
  reference, keeps part of it for float64 data. The fitted noise moves ICRL's pooled MCC up
  at d >= 10 (docs/paper.md#paper-vs-released-code).

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
HPARAMS = {"target": 10.0, "cutoff": "numpy"}
CUTOFFS = ("numpy", "eps")


def coefficients(envs, target: float = 10.0, cutoff: str = "numpy") -> np.ndarray:
    """Gamma (K x m): per-environment least-squares coefficients of X_k onto ``target``, with
    the singular-value ``cutoff`` ``"numpy"`` or ``"eps"`` (module docstring)."""
    from mncrl.threads import single_threaded_blas

    if cutoff not in CUTOFFS:
        raise MncrlError(f"{NAME}: cutoff must be one of {', '.join(CUTOFFS)}; got {cutoff!r}")
    rows = []
    with single_threaded_blas():
        for X in envs:
            X = np.asarray(X)
            rcond = None
            if cutoff == "eps":
                floating = np.issubdtype(X.dtype, np.floating)
                rcond = float(np.finfo(X.dtype if floating else np.float64).eps)
            X = X.astype(np.float64, copy=False)
            gamma, *_ = np.linalg.lstsq(X, np.full(X.shape[0], float(target)), rcond=rcond)
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


def fit(
    envs,
    *,
    seed: int = 0,
    latent_dim: int | None = None,
    target: float = 10.0,
    cutoff: str = "numpy",
) -> Fit:
    """Fit the ICRL stand-in; ``seed`` is unused (the estimator is deterministic)."""
    from mncrl.environments import check_envs

    blocks, m = check_envs(envs, latent_dim)
    d = m if latent_dim is None else int(latent_dim)
    if not np.isfinite(target) or target == 0:
        raise MncrlError(f"{NAME}: target must be a non-zero number, got {target!r}")
    Gamma = coefficients(blocks, target, cutoff)
    K = Gamma.shape[0]
    info = {
        "estimator": NAME,
        "latent_dim": d,
        "gamma": Gamma.tolist(),
        "target": float(target),
    }
    if cutoff != HPARAMS["cutoff"]:
        info["cutoff"] = cutoff
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
    presets={"default": dict(HPARAMS), "reference": {**HPARAMS, "cutoff": "eps"}},
    default_preset="default",
)

__all__ = ["CUTOFFS", "ESTIMATOR", "HPARAMS", "coefficients", "fit"]
