"""The Python entry point: ``mncrl.fit(data, estimator=..., preset=..., latent_dim=..., seed=...)``.

``data`` may be

- a :class:`~mncrl.data.Dataset` (environments whose target row is all False are treated as
  observational: they are not passed as environments, and estimators that use observational
  data, e.g. ``ica``, receive them as ``observational=``);
- a tuple ``(X, env)``: an (n x m) array and one integer environment label per row;
- a list of per-environment (n_k x m) arrays.

Without ``latent_dim`` the latent dimension is estimated as the numerical rank of the pooled
covariance (:func:`estimate_latent_dim`) and reported in ``Fit.info["latent_dim"]``.
Every problem with the input raises :class:`~mncrl.errors.MncrlError` with one clear message.
"""

from __future__ import annotations

import contextlib
import inspect

import numpy as np

from mncrl import estimators as registry
from mncrl.data import Dataset
from mncrl.errors import DataError, MncrlError
from mncrl.estimators.base import Fit

RANK_TOL = 1e-6


def single_threaded_blas():
    """Context limiting BLAS to one thread: products of tall, thin blocks (n x m, m <= ~100)
    gain little from threads, and multi-threaded OpenBLAS slows down by 10-50x when the cores
    are busy (parallel workflow jobs, XLA's own threads). No-op without threadpoolctl."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - scikit-learn depends on threadpoolctl
        return contextlib.nullcontext()
    return threadpool_limits(limits=1, user_api="blas")


def estimate_latent_dim(envs, rel_tol: float = RANK_TOL) -> int:
    """Numerical rank of the pooled covariance of all environments' rows.

    The number of eigenvalues above ``rel_tol`` times the largest one (computed in float64).
    Noiseless data X = Z L have rank d; with observation noise every direction has variance and
    the estimate is m (pass ``latent_dim`` explicitly then).
    """
    blocks = [np.asarray(e) for e in envs]
    n = sum(len(b) for b in blocks)
    mu = sum(b.sum(axis=0, dtype=np.float64) for b in blocks) / n
    C = np.zeros((blocks[0].shape[1],) * 2)
    with single_threaded_blas():
        for b in blocks:
            for start in range(0, len(b), 1 << 16):
                c = b[start:start + (1 << 16)].astype(np.float64) - mu
                C += np.dot(c.T, c)
    eig = np.linalg.eigvalsh(C / max(n - 1, 1))
    top = eig.max()
    if not top > 0:
        raise MncrlError("the data have zero variance: cannot estimate the latent dimension")
    return int((eig > rel_tol * top).sum())


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
            raise DataError(f"environment {k} must be a 2-d array (rows x features), got "
                            f"shape {b.shape}")
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
            raise DataError(f"environment {k} has {b.shape[0]} rows, fewer than its {m} "
                            f"features: its covariance cannot be estimated")
        if not np.isfinite(b).all():
            raise DataError(f"environment {k} contains NaN/Inf values")
    if latent_dim is not None:
        if isinstance(latent_dim, bool) or not isinstance(latent_dim, int | np.integer):
            raise MncrlError(f"latent_dim must be an integer, got {latent_dim!r}")
        if not 1 <= latent_dim <= m:
            raise MncrlError(f"latent_dim must be between 1 and m = {m} (the number of "
                             f"features), got {latent_dim}")
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
            raise DataError(f"(X, env) needs X of shape (n, m) and env of shape (n,), got "
                            f"{X.shape} and {env.shape}")
        if not np.issubdtype(env.dtype, np.integer) or (env.size and env.min() < 0):
            raise DataError("env labels must be non-negative integers")
        present = np.unique(env)
        if present.size != int(env.max(initial=-1)) + 1:
            raise DataError(f"env labels must be 0..K-1 with every label present, found "
                            f"{present.tolist()[:10]}")
        return split_by_env(X, env), observational, []
    if isinstance(data, list | tuple):
        return list(data), observational, []
    raise DataError(f"data must be a Dataset, a tuple (X, env) or a list of per-environment "
                    f"arrays, got {type(data).__name__}")


def resolve(estimator: str, preset: str | None, overrides: dict) -> tuple:
    """(Estimator, preset name, hyper-parameters) with unknown keys rejected."""
    est = registry.get(estimator)
    params = registry.resolve_hparams(est, preset, overrides)
    if est.presets:
        defaults: dict = {}
        for values in est.presets.values():
            for key, value in values.items():
                defaults.setdefault(key, value)
        unknown = sorted(set(overrides) - set(defaults))
        if unknown:
            raise MncrlError(f"unknown hyper-parameter '{unknown[0]}' for {estimator}; valid: "
                             f"{', '.join(sorted(defaults))}")
        for key, value in overrides.items():
            params[key] = coerce_hparam(estimator, key, value, defaults[key])
    return est, preset if preset is not None else est.default_preset, params


def coerce_hparam(estimator: str, key: str, value, default):
    """``value`` converted to the type of the preset's ``default`` (MncrlError when it cannot
    be): integers stay integers (2.0 -> 2), numbers become floats, strings and booleans must
    match; a None default accepts anything."""
    def fail(kind):
        raise MncrlError(f"{estimator}: hyper-parameter {key} must be {kind}, got {value!r}")

    if default is None or value is None:
        return value
    if isinstance(default, bool):
        if not isinstance(value, bool | np.bool_):
            fail("true or false")
        return bool(value)
    if isinstance(default, str):
        if not isinstance(value, str):
            fail("a string")
        return value
    if isinstance(value, bool | np.bool_) or not isinstance(value, int | float | np.number):
        fail("a number")
    if isinstance(default, int | np.integer):
        if not float(value).is_integer():
            fail("an integer")
        return int(value)
    if not np.isfinite(float(value)):
        fail("a finite number")
    return float(value)


def fit(data, estimator: str = "sparse-variance", preset: str | None = None,
        latent_dim: int | None = None, seed: int = 0, *, observational=None,
        progress: bool = False, **overrides) -> Fit:
    """Fit ``estimator`` to multi-environment data; see the module docstring for ``data``.

    ``preset`` selects a named hyper-parameter set (the estimator's default when None);
    ``overrides`` replace single hyper-parameters. ``progress`` shows a progress bar (for
    estimators that support one). Returns a :class:`~mncrl.estimators.base.Fit` whose
    ``info`` also records estimator, preset, seed, latent_dim and the observational
    environments that were set aside.
    """
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise MncrlError(f"seed must be a non-negative integer, got {seed!r}")
    est, preset_name, params = resolve(estimator, preset, overrides)
    envs, obs, obs_envs = as_environments(data, observational)
    blocks, m = check_envs(envs, latent_dim)
    estimated = latent_dim is None
    d = estimate_latent_dim(blocks) if estimated else int(latent_dim)
    kwargs = dict(params)
    accepted = inspect.signature(est.fit).parameters
    if obs is not None and est.needs_observational:
        obs = np.asarray(obs)
        if obs.ndim != 2 or obs.shape[1] != m or not np.isfinite(obs).all():
            raise DataError(f"observational data must be a finite (n x {m}) array")
        kwargs["observational"] = obs
    if "progress" in accepted:
        kwargs["progress"] = progress
    try:
        result = est.fit(blocks, key=int(seed), latent_dim=d, **kwargs)
    except TypeError as exc:  # a hyper-parameter the estimator does not take
        raise MncrlError(f"{estimator}: {exc}") from None
    info = {**result.info, "estimator": est.name, "preset": preset_name, "seed": int(seed),
            "latent_dim": d, "latent_dim_estimated": estimated,
            "observational_envs": obs_envs}
    return Fit(unmixing=result.unmixing, targets=result.targets, info=info)


def fit_many(problems, estimator: str = "sparse-variance", preset: str | None = None,
             latent_dim: int | None = None, seeds=None, **overrides) -> list[Fit]:
    """Fit several data sets (e.g. the seeds of one grid cell): one vmapped call when the
    estimator has ``fit_batch`` and the problems have equal shapes, else one fit each."""
    problems = list(problems)
    seeds = list(range(len(problems))) if seeds is None else [int(s) for s in seeds]
    if len(seeds) != len(problems):
        raise MncrlError(f"need one seed per problem: {len(problems)} problems, {len(seeds)} seeds")
    est, preset_name, params = resolve(estimator, preset, overrides)
    prepared = [as_environments(p) for p in problems]
    same_shapes = len({tuple(np.shape(b) for b in envs) for envs, _, _ in prepared}) == 1
    uses_observational = est.needs_observational and any(o is not None for _, o, _ in prepared)
    if est.fit_batch is None or not same_shapes or uses_observational:
        return [fit(p, estimator, preset, latent_dim, s, **overrides)
                for p, s in zip(problems, seeds, strict=True)]
    checked = [check_envs(envs, latent_dim)[0] for envs, _, _ in prepared]
    estimated = latent_dim is None
    d = estimate_latent_dim(checked[0]) if estimated else int(latent_dim)
    fits = est.fit_batch(checked, seeds, d, **params)
    return [Fit(unmixing=f.unmixing, targets=f.targets,
                info={**f.info, "estimator": est.name, "preset": preset_name, "seed": s,
                      "latent_dim": d, "latent_dim_estimated": estimated,
                      "observational_envs": obs_envs})
            for f, s, (_, _, obs_envs) in zip(fits, seeds, prepared, strict=True)]


def unmix(X, W, *, block: int = 1 << 16) -> np.ndarray:
    """Zhat = X W row block by row block (float32 for float32 X, else float64)."""
    X = np.asarray(X)
    dtype = np.float32 if X.dtype == np.float32 else np.float64
    W = np.asarray(W, dtype=dtype)
    out = np.empty((X.shape[0], W.shape[1]), dtype=dtype)
    with single_threaded_blas():
        for start in range(0, X.shape[0], block):
            out[start:start + block] = np.dot(X[start:start + block].astype(dtype, copy=False),
                                              W)
    return out


__all__ = ["RANK_TOL", "as_environments", "check_envs", "estimate_latent_dim", "fit", "fit_many",
           "single_threaded_blas", "split_by_env", "unmix"]
