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

import inspect

import numpy as np

from mncrl import estimators as registry
from mncrl.environments import (
    RANK_TOL,
    as_environments,
    check_envs,
    estimate_latent_dim,
    split_by_env,
)
from mncrl.errors import DataError, MncrlError
from mncrl.estimators.base import Fit
from mncrl.threads import single_threaded_blas


def fit(
    data,
    estimator: str = "sparse-variance",
    preset: str | None = None,
    latent_dim: int | None = None,
    seed: int = 0,
    *,
    observational=None,
    progress: bool = False,
    **overrides,
) -> Fit:
    """Fit ``estimator`` to multi-environment data; see the module docstring for ``data``.

    ``preset`` selects a named hyper-parameter set (the estimator's default when None);
    ``overrides`` replace single hyper-parameters. ``progress`` shows a progress bar (for
    estimators that support one). Returns a :class:`~mncrl.estimators.base.Fit` whose
    ``info`` also records estimator, preset, seed, latent_dim and the observational
    environments that were set aside.
    """
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise MncrlError(f"seed must be a non-negative integer, got {seed!r}")
    est, preset_name, params = registry.resolve(estimator, preset, overrides)
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
        result = est.fit(blocks, seed=int(seed), latent_dim=d, **kwargs)
    except TypeError as exc:  # a hyper-parameter the estimator does not take
        raise MncrlError(f"{estimator}: {exc}") from None
    info = {
        **result.info,
        "estimator": est.name,
        "preset": preset_name,
        "seed": int(seed),
        "latent_dim": d,
        "latent_dim_estimated": estimated,
        "observational_envs": obs_envs,
    }
    return Fit(unmixing=result.unmixing, targets=result.targets, info=info)


def fit_many(
    problems,
    estimator: str = "sparse-variance",
    preset: str | None = None,
    latent_dim: int | None = None,
    seeds=None,
    **overrides,
) -> list[Fit]:
    """Fit several data sets (e.g. the seeds of one grid cell): one vmapped call when the
    estimator has ``fit_batch`` and the problems have equal shapes, else one fit each."""
    problems = list(problems)
    seeds = list(range(len(problems))) if seeds is None else [int(s) for s in seeds]
    if len(seeds) != len(problems):
        raise MncrlError(f"need one seed per problem: {len(problems)} problems, {len(seeds)} seeds")
    est, preset_name, params = registry.resolve(estimator, preset, overrides)
    prepared = [as_environments(p) for p in problems]
    same_shapes = len({tuple(np.shape(b) for b in envs) for envs, _, _ in prepared}) == 1
    uses_observational = est.needs_observational and any(o is not None for _, o, _ in prepared)
    if est.fit_batch is None or not same_shapes or uses_observational:
        return [
            fit(p, estimator, preset, latent_dim, s, **overrides)
            for p, s in zip(problems, seeds, strict=True)
        ]
    checked = [check_envs(envs, latent_dim)[0] for envs, _, _ in prepared]
    estimated = latent_dim is None
    d = estimate_latent_dim(checked[0]) if estimated else int(latent_dim)
    fits = est.fit_batch(checked, seeds, d, **params)
    return [
        Fit(
            unmixing=f.unmixing,
            targets=f.targets,
            info={
                **f.info,
                "estimator": est.name,
                "preset": preset_name,
                "seed": s,
                "latent_dim": d,
                "latent_dim_estimated": estimated,
                "observational_envs": obs_envs,
            },
        )
        for f, s, (_, _, obs_envs) in zip(fits, seeds, prepared, strict=True)
    ]


def unmix(X, W, *, block: int = 1 << 16) -> np.ndarray:
    """Zhat = X W row block by row block (float32 for float32 X, else float64)."""
    X = np.asarray(X)
    dtype = np.float32 if X.dtype == np.float32 else np.float64
    W = np.asarray(W, dtype=dtype)
    out = np.empty((X.shape[0], W.shape[1]), dtype=dtype)
    with single_threaded_blas():
        for start in range(0, X.shape[0], block):
            out[start : start + block] = np.dot(
                X[start : start + block].astype(dtype, copy=False), W
            )
    return out


__all__ = [
    "RANK_TOL",
    "as_environments",
    "check_envs",
    "estimate_latent_dim",
    "fit",
    "fit_many",
    "single_threaded_blas",
    "split_by_env",
    "unmix",
]
