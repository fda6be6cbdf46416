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

Every fit is diagnosed (:mod:`mncrl.degeneracy`): ``Fit.info["degenerate"]`` (bool) and
``Fit.info["diagnosis"]`` (the numbers, as a JSON-able dict); a degenerate fit raises
:class:`~mncrl.errors.DegenerateFitError` unless ``allow_degenerate=True``. ``bootstrap=B``
refits B resamples of the rows (:mod:`mncrl.bootstrap`) and reports the stability of the
recovered latents and targets in ``Fit.info["bootstrap"]``.
"""

from __future__ import annotations

import inspect

import numpy as np

from mncrl import estimators as registry
from mncrl.degeneracy import DO_DESIGN_ESTIMATORS, diagnose, env_moments
from mncrl.environments import (
    RANK_TOL,
    as_environments,
    check_envs,
    estimate_latent_dim,
    split_by_env,
)
from mncrl.errors import DataError, DegenerateFitError, MncrlError
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
    basis=None,
    progress: bool = False,
    allow_degenerate: bool = False,
    bootstrap: int = 0,
    block: int | None = None,
    **overrides,
) -> Fit:
    """Fit ``estimator`` to multi-environment data; see the module docstring for ``data``.

    ``preset`` selects a named hyper-parameter set (the estimator's default when None);
    ``overrides`` replace single hyper-parameters. ``progress`` shows a progress bar (for
    estimators that support one). Returns a :class:`~mncrl.estimators.base.Fit` whose
    ``info`` also records estimator, preset, seed, latent_dim, the observational
    environments that were set aside, ``degenerate`` and ``diagnosis``
    (:func:`mncrl.degeneracy.diagnose`).

    A degenerate fit raises :class:`~mncrl.errors.DegenerateFitError` (carrying the diagnosis
    and the fit) unless ``allow_degenerate``. ``bootstrap=B`` > 0 refits B resamples of the
    rows within each environment (moving blocks of ``block`` rows when given, for
    time-ordered rows; observational rows the estimator uses are resampled too), with the same
    hyper-parameters, seed and latent dimension, resampling streams from
    ``numpy.random.SeedSequence(seed)``; the summary is ``info["bootstrap"]``
    (:mod:`mncrl.bootstrap`). The returned W and targets are those of the full data.
    ``basis`` (p x C): the data are the EOF coordinates of a gridded field with these EOFs
    (:mod:`mncrl.field`); given to estimators that use it (``uses_field_basis``), ignored by
    the others.
    """
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise MncrlError(f"seed must be a non-negative integer, got {seed!r}")
    resamples = _check_bootstrap(bootstrap, block)
    est, preset_name, params = registry.resolve(estimator, preset, overrides)
    envs, obs, obs_envs = as_environments(data, observational)
    blocks, m = check_envs(envs, latent_dim)
    estimated = latent_dim is None
    d = estimate_latent_dim(blocks) if estimated else int(latent_dim)
    kwargs = dict(params)
    if basis is not None and est.uses_field_basis:
        kwargs["basis"] = np.asarray(basis, dtype=np.float64)
    accepted = inspect.signature(est.fit).parameters
    uses_obs = obs is not None and est.needs_observational
    if uses_obs:
        obs = np.asarray(obs)
        if obs.ndim != 2 or obs.shape[1] != m or not np.isfinite(obs).all():
            raise DataError(f"observational data must be a finite (n x {m}) array")
    if resamples:  # before the fit: a bad block length must not cost one
        from mncrl.bootstrap import bootstrap as run_bootstrap
        from mncrl.bootstrap import check_block

        check_block(block, [len(b) for b in blocks] + ([len(obs)] if uses_obs else []))

    def refit(env_blocks, observational_rows=None, show_progress=False):
        extra = {"observational": observational_rows} if uses_obs else {}
        if "progress" in accepted:
            extra["progress"] = show_progress
        try:
            return est.fit(env_blocks, seed=int(seed), latent_dim=d, **kwargs, **extra)
        except TypeError as exc:  # a hyper-parameter the estimator does not take
            raise MncrlError(f"{estimator}: {exc}") from None

    result = refit(blocks, obs, progress)
    diagnosis = diagnose(
        result.unmixing, env_moments(blocks), do_design=est.name in DO_DESIGN_ESTIMATORS
    )
    info = {
        **result.info,
        "estimator": est.name,
        "preset": preset_name,
        "seed": int(seed),
        "latent_dim": d,
        "latent_dim_estimated": estimated,
        "observational_envs": obs_envs,
        "degenerate": diagnosis.degenerate,
        "diagnosis": diagnosis.to_dict(),
    }
    out = Fit(unmixing=result.unmixing, targets=result.targets, info=info)
    if diagnosis.degenerate and not allow_degenerate:
        raise DegenerateFitError(
            f"{est.name}: {diagnosis.message()}; pass allow_degenerate=True to get it anyway",
            diagnosis=diagnosis,
            fit=out,
        )
    if resamples:
        if uses_obs:  # observational rows are resampled like one more environment
            boot = run_bootstrap(
                [*blocks, obs],
                lambda sample: refit(sample[:-1], sample[-1]),
                out,
                resamples,
                seed=int(seed),
                block=block,
            )
        else:
            boot = run_bootstrap(blocks, refit, out, resamples, seed=int(seed), block=block)
        info["bootstrap"] = boot.to_dict()
    return out


def _check_bootstrap(bootstrap, block) -> int:
    """The number of resamples (MncrlError unless an integer >= 0; ``block`` needs one)."""
    if isinstance(bootstrap, bool) or not isinstance(bootstrap, int | np.integer) or bootstrap < 0:
        raise MncrlError(
            f"bootstrap must be the number of resamples, an integer >= 0, got {bootstrap!r}"
        )
    if block is not None:
        if not bootstrap:
            raise MncrlError("block (the bootstrap's block length) needs bootstrap > 0")
        if isinstance(block, bool) or not isinstance(block, int | np.integer) or block < 1:
            raise MncrlError(f"block must be a positive integer, got {block!r}")
    return int(bootstrap)


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
