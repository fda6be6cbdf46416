"""Per-environment data: validating blocks, splitting pooled rows, the latent dimension.

Below the estimators: every estimator validates its input with :func:`check_envs`; the API and
the command line turn pooled rows into blocks with :func:`split_by_env` or
:func:`as_environments`.
"""

from __future__ import annotations

import numpy as np

from mncrl.data import Dataset
from mncrl.errors import DataError, MncrlError
from mncrl.observation_noise import signal_dimension
from mncrl.threads import single_threaded_blas

RANK_TOL = 1e-6
# Full-rank data are searched for fewer latents behind observation noise only when some
# direction of the pooled correlation matrix has less than this fraction of the largest
# eigenvalue (noise sd up to ~20% of a sensor's spread); otherwise there is no floor to find.
NOISE_FLOOR_MAX = 0.05


def estimate_latent_dim(envs, rel_tol: float = RANK_TOL) -> int:
    """Numerical rank of the pooled covariance of all environments' rows.

    The number of eigenvalues above ``rel_tol`` times the largest one of its correlation
    matrix (float64; the units of each column do not matter). When that is every coordinate
    (observation noise gives every direction variance) and some direction is small enough to
    be noise (NOISE_FLOOR_MAX), the number of latents behind
    per-coordinate noise is looked for with factor analysis over the environments
    (:func:`mncrl.observation_noise.signal_dimension`): the smallest d whose left-over
    directions are pure noise; m when there is none (e.g. m = d).
    """
    blocks = [np.asarray(e) for e in envs]
    n = sum(len(b) for b in blocks)
    mu = sum(b.sum(axis=0, dtype=np.float64) for b in blocks) / n
    C = np.zeros((blocks[0].shape[1],) * 2)
    with single_threaded_blas():
        for b in blocks:
            for start in range(0, len(b), 1 << 16):
                c = b[start : start + (1 << 16)].astype(np.float64) - mu
                C += np.dot(c.T, c)
    sd = np.sqrt(np.diag(C))
    if not sd.max() > 0:
        raise MncrlError("the data have zero variance: cannot estimate the latent dimension")
    sd = np.where(sd > 0, sd, 1.0)  # a constant column adds nothing to the rank
    eig = np.linalg.eigvalsh(C / np.outer(sd, sd))
    rank = int((eig > rel_tol * eig.max()).sum())
    if rank < len(sd) or len(blocks) < 2 or eig.min() > NOISE_FLOOR_MAX * eig.max():
        return rank  # (last case: no direction small enough to be a noise floor)
    # full rank: observation noise on top of fewer latents? (factor analysis over environments)
    covs = np.stack([np.cov(np.asarray(b, dtype=np.float64), rowvar=False) for b in blocks])
    found = signal_dimension(covs, [len(b) for b in blocks])
    return rank if found is None else found


def split_by_env(X: np.ndarray, env: np.ndarray) -> list[np.ndarray]:
    """Per-environment row blocks, in environment order; views (no copy) when ``env`` is
    sorted, as in files written by the simulator."""
    env = np.asarray(env)
    K = int(env.max()) + 1
    if env.size < 2 or np.all(env[1:] >= env[:-1]):
        bounds = np.searchsorted(env, np.arange(1, K))
        return np.split(X, bounds)
    return [X[env == k] for k in range(K)]


def check_envs(envs, latent_dim=None, *, min_envs: int = 2) -> tuple[list[np.ndarray], int]:
    """Validate per-environment blocks; return them as float arrays and m.

    MncrlError for: fewer than ``min_envs`` environments, non-2-d or non-numeric blocks,
    disagreeing feature counts, NaN/Inf, an environment with fewer rows than features, a
    latent_dim outside 1..m.
    """
    if isinstance(envs, np.ndarray) or not isinstance(envs, list | tuple):
        raise DataError("environments must be a list of (n_k x m) arrays")
    if len(envs) < min_envs:
        raise DataError(f"need at least {min_envs} environments, got {len(envs)}")
    blocks = []
    for k, e in enumerate(envs):
        b = np.asarray(e)
        if b.ndim != 2:
            raise DataError(
                f"environment {k} must be a 2-d array (rows x features), got shape {b.shape}"
            )
        if not np.issubdtype(b.dtype, np.number) or np.issubdtype(b.dtype, np.complexfloating):
            raise DataError(f"environment {k} must be real-valued, got dtype {b.dtype}")
        if not np.issubdtype(b.dtype, np.floating):
            b = b.astype(np.float64)
        blocks.append(b)
    m = blocks[0].shape[1]
    for k, b in enumerate(blocks):
        if b.shape[1] != m:
            raise DataError(f"environment {k} has {b.shape[1]} features, environment 0 has {m}")
        if b.shape[0] < m:
            raise DataError(
                f"environment {k} has {b.shape[0]} rows, fewer than its {m} "
                f"features: its covariance cannot be estimated"
            )
        if not np.isfinite(b).all():
            raise DataError(f"environment {k} contains NaN/Inf values")
    if latent_dim is not None:
        if isinstance(latent_dim, bool) or not isinstance(latent_dim, int | np.integer):
            raise MncrlError(f"latent_dim must be an integer, got {latent_dim!r}")
        if not 1 <= latent_dim <= m:
            raise MncrlError(
                f"latent_dim must be between 1 and m = {m} (the number of "
                f"features), got {latent_dim}"
            )
    return blocks, m


def as_environments(data, observational=None):
    """(interventional blocks, observational rows or None, observational env indices)."""
    if isinstance(data, Dataset):
        blocks = split_by_env(data.X, data.env)
        obs_envs: list[int] = []
        if data.targets is not None:
            obs_envs = [k for k in range(len(blocks)) if not data.targets[k].any()]
        if obs_envs:
            obs_rows = [blocks[k] for k in obs_envs]
            blocks = [b for k, b in enumerate(blocks) if k not in obs_envs]
            if observational is None:
                observational = obs_rows[0] if len(obs_rows) == 1 else np.concatenate(obs_rows)
        return blocks, observational, obs_envs
    if isinstance(data, tuple) and len(data) == 2 and np.ndim(data[1]) == 1:
        X, env = np.asarray(data[0]), np.asarray(data[1])
        if X.ndim != 2 or env.shape != (X.shape[0],):
            raise DataError(
                f"(X, env) needs X of shape (n, m) and env of shape (n,), got "
                f"{X.shape} and {env.shape}"
            )
        if not np.issubdtype(env.dtype, np.integer) or (env.size and env.min() < 0):
            raise DataError("env labels must be non-negative integers")
        present = np.unique(env)
        if present.size != int(env.max(initial=-1)) + 1:
            raise DataError(
                f"env labels must be 0..K-1 with every label present, found {present.tolist()[:10]}"
            )
        return split_by_env(X, env), observational, []
    if isinstance(data, list | tuple):
        return list(data), observational, []
    raise DataError(
        f"data must be a Dataset, a tuple (X, env) or a list of per-environment "
        f"arrays, got {type(data).__name__}"
    )


__all__ = ["RANK_TOL", "as_environments", "check_envs", "estimate_latent_dim", "split_by_env"]
