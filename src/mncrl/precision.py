"""Precision matrices of the environments on the signal subspace, and their differences.

The estimators for stochastic and soft interventions (``lincd``, ``umni``, ``subspace-soft``)
work with the Gaussian scores of each environment: its precision matrix Theta_k (the inverse
covariance) on the d-dimensional signal subspace, and the differences Delta_k = Theta_k -
Theta_0 from the observational environment 0. For a linear latent SCM, Delta_k lives on the
latents environment k intervenes on and their parents (docs/peers.md).

Coordinates: every column of X is standardised by its pooled standard deviation (the result
does not depend on units), projected on the top-d principal directions of the pooled
within-environment covariance, and whitened there, so the pooled covariance is the identity and
relative thresholds mean the same for every data set. ``transform`` (m x d) maps a row of X to
these coordinates; a direction ``r`` there is the unmixing column ``transform @ r`` in X.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mncrl.degeneracy import env_moments
from mncrl.environments import check_envs, estimate_latent_dim
from mncrl.errors import DataError, MncrlError, NotIdentifiableError

# A reduced covariance whose condition number exceeds this has a zero-variance direction (a
# do-intervention, or latent_dim too large): its precision matrix does not exist.
MAX_CONDITION = 1e10


@dataclass(frozen=True)
class Precisions:
    """Environment 0 is the observational one, 1..K the interventional ones (input order).

    ``covs``/``thetas`` (K+1 x d x d) are covariances and precision matrices, ``means``
    (K+1 x d), ``counts`` (K+1,), all in the reduced coordinates (module docstring).
    """

    covs: np.ndarray
    thetas: np.ndarray
    means: np.ndarray
    counts: np.ndarray
    transform: np.ndarray

    @property
    def d(self) -> int:
        return self.covs.shape[1]

    @property
    def deltas(self) -> np.ndarray:
        """Delta_k = Theta_k - Theta_0 for the K interventional environments (K x d x d)."""
        return self.thetas[1:] - self.thetas[0]

    def unmixing(self, rows: np.ndarray) -> np.ndarray:
        """The unmixing W (m x r) in X of r directions given as rows (r x d) of reduced
        coordinates."""
        return self.transform @ np.asarray(rows, dtype=np.float64).T


def reduce(
    blocks: list[np.ndarray], d: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(covs, means, counts, transform) of the blocks in the reduced coordinates (module
    docstring); float64, one chunked pass per block."""
    mom = env_moments(blocks)
    pooled = mom.pooled()
    sd = np.sqrt(np.diag(pooled))
    sd = np.where(sd > 0, sd, 1.0)
    evals, evecs = np.linalg.eigh(pooled / np.outer(sd, sd))
    evals, evecs = evals[::-1][:d], evecs[:, ::-1][:, :d]
    if not evals[-1] > evals[0] * 1e-12:
        raise NotIdentifiableError(
            f"the pooled covariance has fewer than latent_dim = {d} directions with variance: "
            f"some latent never varies (or latent_dim is too large)"
        )
    transform = (evecs / sd[:, None]) / np.sqrt(evals)
    covs = np.einsum("ai,kab,bj->kij", transform, mom.covs, transform)
    return covs, mom.means @ transform, mom.counts, transform


def precisions(envs, observational, latent_dim: int | None, name: str) -> Precisions:
    """The observational and interventional environments' precision matrices (module
    docstring). ``name`` (the estimator) prefixes error messages.

    MncrlError when there are no observational rows; NotIdentifiableError when an environment
    has a zero-variance direction (a do-intervention: precision matrices do not exist).
    """
    if observational is None:
        raise MncrlError(
            f"{name} needs observational data (an environment without interventions): pass "
            f"observational= (API) or mark it with --observational-env (CLI)"
        )
    blocks, m = check_envs(envs, latent_dim, min_envs=1)
    obs = np.asarray(observational)
    if obs.ndim != 2 or obs.shape[1] != m or not np.issubdtype(obs.dtype, np.number):
        raise DataError(f"{name}: observational data must be a numeric (n x {m}) array")
    if not np.isfinite(obs).all():
        raise DataError(f"{name}: observational data contain NaN/Inf values")
    blocks = [obs, *blocks]
    d = estimate_latent_dim(blocks) if latent_dim is None else int(latent_dim)
    covs, means, counts, transform = reduce(blocks, d)
    evals = np.linalg.eigvalsh(covs)
    cond = evals[:, -1] / np.maximum(evals[:, 0], np.finfo(float).tiny)
    bad = np.flatnonzero(cond > MAX_CONDITION)
    if bad.size:
        k = int(bad[0])
        which = "the observational environment" if k == 0 else f"environment {k - 1}"
        raise NotIdentifiableError(
            f"{name}: {which} has a zero-variance direction (condition number {cond[k]:.1e}): "
            f"a do-intervention or too large a latent_dim; precision matrices do not exist "
            f"(for do-interventions use subspace)"
        )
    return Precisions(covs, np.linalg.inv(covs), means, counts, transform)


__all__ = ["MAX_CONDITION", "Precisions", "precisions", "reduce"]
