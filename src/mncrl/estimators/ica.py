"""`ica`: scikit-learn FastICA baseline (docs/paper.md#baselines).

FastICA with ``latent_dim`` components and scikit-learn's defaults (logcosh contrast, parallel
algorithm, unit-variance whitening, 200 iterations, tol 1e-4), seeded with ``random_state=seed``.
As in the paper it is fitted on observational data (``observational=``, an n x m array of
unintervened rows mixed by the same L) when given, otherwise on the pooled environments;
``info["fitted_on"]`` says which ("observational" or "pooled-environments").

The unmixing is W = ``components_.T`` (m x d): FastICA's ``transform`` also subtracts the
training mean, which shifts every column of Zhat by a constant and changes no correlation.
"""

from __future__ import annotations

import warnings

import numpy as np

from mncrl.errors import MncrlError
from mncrl.estimators.base import Estimator, Fit

NAME = "ica"
HPARAMS = {"max_iter": 200, "tol": 1e-4, "fun": "logcosh", "algorithm": "parallel"}


def fit(
    envs,
    *,
    seed: int = 0,
    latent_dim: int | None = None,
    observational=None,
    max_iter: int = 200,
    tol: float = 1e-4,
    fun: str = "logcosh",
    algorithm: str = "parallel",
) -> Fit:
    """Fit FastICA on ``observational`` rows when given, else on the pooled environments."""
    from sklearn.decomposition import FastICA
    from sklearn.exceptions import ConvergenceWarning

    from mncrl.environments import check_envs
    from mncrl.threads import single_threaded_blas

    blocks, m = check_envs(envs, latent_dim, min_envs=1)
    d = m if latent_dim is None else int(latent_dim)
    if fun not in ("logcosh", "exp", "cube"):
        raise MncrlError(f"{NAME}: fun must be logcosh, exp or cube, got {fun!r}")
    if algorithm not in ("parallel", "deflation"):
        raise MncrlError(f"{NAME}: algorithm must be parallel or deflation, got {algorithm!r}")
    if observational is not None:
        X = np.asarray(observational, dtype=np.float64)
        if X.ndim != 2 or X.shape[1] != m or X.shape[0] < m or not np.isfinite(X).all():
            raise MncrlError(
                f"{NAME}: observational data must be a finite (n x {m}) array with n >= {m}"
            )
        fitted_on = "observational"
    else:
        X = np.concatenate([np.asarray(b, dtype=np.float64) for b in blocks])
        fitted_on = "pooled-environments"
    ica = FastICA(
        n_components=d,
        random_state=int(seed),
        max_iter=int(max_iter),
        tol=float(tol),
        fun=fun,
        algorithm=algorithm,
    )
    with warnings.catch_warnings(record=True) as caught, single_threaded_blas():
        warnings.simplefilter("always", ConvergenceWarning)
        ica.fit(X)
    converged = not any(issubclass(w.category, ConvergenceWarning) for w in caught)
    W = np.asarray(ica.components_, dtype=np.float64).T
    if not np.isfinite(W).all():
        from mncrl.errors import ConvergenceError

        raise ConvergenceError(f"{NAME}: FastICA returned NaN/Inf (degenerate data?)")
    return Fit(
        unmixing=W,
        targets=None,
        info={
            "estimator": NAME,
            "latent_dim": d,
            "fitted_on": fitted_on,
            "rows_fitted": len(X),
            "converged": converged,
            "iterations": int(ica.n_iter_),
            "mean": np.asarray(ica.mean_, dtype=np.float64).tolist(),
        },
    )


ESTIMATOR = Estimator(
    name=NAME,
    fit=fit,
    description="baseline: scikit-learn FastICA (d components, defaults), fitted on "
    "observational data when available, else on the pooled environments",
    presets={"default": dict(HPARAMS)},
    default_preset="default",
    needs_observational=True,
    fitted_on_observational=True,
)

__all__ = ["ESTIMATOR", "fit"]
