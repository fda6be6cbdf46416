"""Intervention extrapolation: E[Y | do(A = a*)] for actions a* outside the training support,
from a linear representation of X and a control function (Rep4Ex, Saengkyongam et al., ICLR
2024; the model in :mod:`mncrl.actions`, the method in docs/extrapolation.md).

Steps, for a representation Zh = X W + const of the latents (any rank-d linear encoder: PCA, a
causal-representation estimator's unmixing, or the true Z for the oracle):

1. *Action regression*: Zh = A Mh + b + Vh by least squares; Vh are the control variables.
2. *Outcome*: Y ~ nu(Zh) + psi(Vh), additive over the two blocks, each multivariate
   (:mod:`mncrl.smoother`: kernel ridge on Nystrom landmarks plus linear and quadratic
   parts, GCV-chosen penalty).
3. *Prediction*: E[Y | do(A = a*)] = mean_i [nu(a* Mh + b + Vh_i) + psi(Vh_i)].

Why it works: with Z = A M0 + V, V independent of A, and Zh = Z H + c for an invertible H
(what any rank-d linear encoder of a linear injective mixing gives), Vh = V H and
E[Y | Zh, Vh] = l(Z) + E[U | V]: the confounding goes to psi, nu is l in the new coordinates,
and averaging over Vh marginalises V as do(A = a*) does. Because A acts linearly and V has full
support, nu is only ever needed where Z has data; the smoother never has to extrapolate l in
the limit of many rows (with finite rows it does, in the tails: see :func:`overlap`).

Methods (:data:`METHODS`), every one with the same smoother:

- ``control-function``: the three steps above on the encoder's Zh;
- ``no-control-function``: Y ~ nu(Zh) alone, prediction mean_i nu(a* Mh + b + Vh_i) (biased
  when U and V are dependent: E[Y | Z] is not l(Z));
- ``direct``: Y ~ f(A), prediction f(a*) (exact inside the support since A is exogenous; a
  regression cannot know the shape of E[Y | do(A)] outside it);
- ``oracle``: ``control-function`` with the true latents (simulations only).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from mncrl import smoother
from mncrl.errors import DataError, MncrlError, NotIdentifiableError

METHODS = ("control-function", "no-control-function", "direct", "oracle")
ENCODERS = ("pca",)
HPARAMS = {"landmarks": 300, "length_scale": 1.0, "eval_rows": 2000, "draws": 4}


# ------------------------------------------------------------------------- representation


def pca_unmixing(X: jax.Array, d: int) -> jax.Array:
    """W (m x d): the top-d principal directions of X (Zh = (X - mean) W identifies Z up to
    an invertible affine map when X = Z L with L injective and no observation noise)."""
    Xc = X - X.mean(axis=0)
    _, evecs = jnp.linalg.eigh(Xc.T @ Xc)
    return evecs[:, ::-1][:, :d]


def action_regression(Zh: jax.Array, A: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
    """(Mh (k x d), b (d), Vh (n x d)): least squares Zh = A Mh + b + Vh."""
    A1 = jnp.concatenate([A, jnp.ones((A.shape[0], 1), A.dtype)], axis=1)
    coef = jnp.linalg.lstsq(A1, Zh)[0]
    return coef[:-1], coef[-1], Zh - A1 @ coef


# --------------------------------------------------------------------------------- methods


def _shifted(a_star: jax.Array, Mh: jax.Array, b: jax.Array, Vh: jax.Array) -> jax.Array:
    """(G, r, d): a* Mh + b + Vh_i for every a* (rows of a_star) and every kept row i."""
    return (a_star @ Mh + b)[:, None, :] + Vh[None, :, :]


def _average(f, points: jax.Array) -> jax.Array:
    G, r, d = points.shape
    return f(points.reshape(G * r, d)).reshape(G, r).mean(axis=1)


def _ensemble(one, key, draws: int):
    """The mean of ``one(key_i)`` over ``draws`` keys split from ``key``: an average over
    independent draws of the landmarks, the smoother's main source of variance
    far from the data (docs/extrapolation.md)."""
    return jax.lax.map(one, jax.random.split(key, draws)).mean(axis=0)


def control_function(key, Zh, A, Y, a_star, landmarks, length_scale, eval_rows, draws=1):
    """Predictions at a_star (G x k) of the ``control-function`` method (module docstring)."""
    Mh, b, Vh = action_regression(Zh, A)
    keep = Vh[:eval_rows]

    def one(k):
        model = smoother.fit_additive(k, (Zh, Vh), Y, landmarks, length_scale)
        nu = _average(partial(smoother.predict_block, model, 0), _shifted(a_star, Mh, b, keep))
        return model.intercept + nu + smoother.predict_block(model, 1, keep).mean()

    return _ensemble(one, key, draws)


def no_control_function(key, Zh, A, Y, a_star, landmarks, length_scale, eval_rows, draws=1):
    """Predictions of the ``no-control-function`` method."""
    Mh, b, Vh = action_regression(Zh, A)
    points = _shifted(a_star, Mh, b, Vh[:eval_rows])

    def one(k):
        model = smoother.fit_additive(k, (Zh,), Y, landmarks, length_scale)
        return model.intercept + _average(partial(smoother.predict_block, model, 0), points)

    return _ensemble(one, key, draws)


def direct(key, A, Y, a_star, landmarks, length_scale, draws=1):
    """Predictions of the ``direct`` method: a regression of Y on A, evaluated at a_star."""

    def one(k):
        return smoother.predict(
            smoother.fit_additive(k, (A,), Y, landmarks, length_scale), (a_star,)
        )

    return _ensemble(one, key, draws)


def overlap(Zh, A, a_star, eval_rows, quantile: float = 0.999) -> jax.Array:
    """(G,) the share of the points a* Mh + b + Vh_i (what nu is evaluated at) that lie within
    the training representation's ``quantile`` Mahalanobis radius: 1 inside the data, falling
    towards 0 where the prediction rests on the smoother's extrapolation."""
    Mh, b, Vh = action_regression(Zh, A)
    mean = Zh.mean(axis=0)
    prec = jnp.linalg.inv(jnp.atleast_2d(jnp.cov(Zh, rowvar=False)))
    radius = jnp.quantile(jnp.einsum("ni,ij,nj->n", Zh - mean, prec, Zh - mean), quantile)
    pts = _shifted(a_star, Mh, b, Vh[:eval_rows]) - mean
    return (jnp.einsum("gni,ij,gnj->gn", pts, prec, pts) <= radius).mean(axis=1)


_STATIC = ("landmarks", "length_scale", "eval_rows", "draws")


def all_methods(key, X, Z, A, Y, a_star, latent_dim, landmarks, length_scale, eval_rows, draws=1):
    """{method: predictions (G,)} for every method of :data:`METHODS` on one data set, the
    representation by PCA (``Z``: the true latents, for the oracle), and the overlap of the
    control-function evaluation points. Pure: ``jax.vmap`` over seeds."""
    hp = dict(landmarks=landmarks, length_scale=length_scale, draws=draws)
    Zh = (X - X.mean(axis=0)) @ pca_unmixing(X, latent_dim)
    k_cf, k_ncf, k_dir, k_or = jax.random.split(key, 4)
    return {
        "control-function": control_function(k_cf, Zh, A, Y, a_star, **hp, eval_rows=eval_rows),
        "no-control-function": no_control_function(
            k_ncf, Zh, A, Y, a_star, **hp, eval_rows=eval_rows
        ),
        "direct": direct(k_dir, A, Y, a_star, **hp),
        "oracle": control_function(k_or, Z, A, Y, a_star, **hp, eval_rows=eval_rows),
        "overlap": overlap(Zh, A, a_star, eval_rows),
    }


def _all_methods_batch(
    keys, X, Z, A, Y, a_star, latent_dim, landmarks, length_scale, eval_rows, draws=1
):
    """:func:`all_methods` over a batch of seeds (leading axis of every array), one compiled
    program. ``lax.map``, not ``vmap``: XLA's CPU batched eigen-decompositions and least
    squares of a vmapped batch ran minutes (or stalled) where the per-seed loop takes
    seconds (benchmarks/extrapolation.py)."""
    one = partial(
        all_methods,
        latent_dim=latent_dim,
        landmarks=landmarks,
        length_scale=length_scale,
        eval_rows=eval_rows,
        draws=draws,
    )
    return jax.lax.map(lambda args: one(*args), (keys, X, Z, A, Y, a_star))


all_methods_batch = jax.jit(_all_methods_batch, static_argnames=("latent_dim", *_STATIC))
_control_function_jit = jax.jit(control_function, static_argnames=_STATIC)
_no_control_function_jit = jax.jit(no_control_function, static_argnames=_STATIC)
_direct_jit = jax.jit(direct, static_argnames=("landmarks", "length_scale", "draws"))
_overlap_jit = jax.jit(overlap, static_argnames=("eval_rows",))


# ------------------------------------------------------------------------------ user API


@dataclass(frozen=True)
class Extrapolation:
    """Predicted E[Y | do(A = a*)] at each row of ``a_star``; ``overlap`` (control-function
    methods: see :func:`overlap`), the action effects ``M`` on the representation, the
    unmixing ``W`` (m x d, Zh = (X - mean) W) and ``info`` (ridge penalty, rows, method)."""

    a_star: np.ndarray
    prediction: np.ndarray
    overlap: np.ndarray | None
    M: np.ndarray | None
    W: np.ndarray | None
    info: dict = field(default_factory=dict)


def check_hparams(hparams: dict) -> dict:
    hp = {**HPARAMS, **hparams}
    unknown = sorted(set(hp) - set(HPARAMS))
    if unknown:
        raise MncrlError(f"extrapolate: unknown hyper-parameter '{unknown[0]}'")
    for key in ("landmarks", "eval_rows", "draws"):
        if not (isinstance(hp[key], int | np.integer) and hp[key] >= 1):
            raise MncrlError(f"extrapolate: {key} must be an integer >= 1, got {hp[key]!r}")
    if not (isinstance(hp["length_scale"], int | float) and hp["length_scale"] > 0):
        raise MncrlError(f"extrapolate: length_scale must be > 0, got {hp['length_scale']!r}")
    return {k: (int(v) if k != "length_scale" else float(v)) for k, v in hp.items()}


def _as_matrix(name: str, a, rows: int | None = None) -> np.ndarray:
    a = np.asarray(a, dtype=np.float64)
    if a.ndim == 1:
        a = a[:, None]
    if a.ndim != 2 or a.shape[0] == 0:
        raise DataError(f"{name} must be a non-empty matrix, got shape {a.shape}")
    if rows is not None and a.shape[0] != rows:
        raise DataError(f"{name} has {a.shape[0]} rows, X has {rows}")
    if not np.isfinite(a).all():
        raise DataError(f"{name} contains {int((~np.isfinite(a)).sum())} NaN/Inf values")
    return a


def check_inputs(X, A, Y, a_star, latent_dim):
    """(X, A, y, a_star) as float64 arrays; DataError / NotIdentifiableError with one line
    when they cannot support an answer."""
    X = _as_matrix("X", X)
    n, m = X.shape
    A = _as_matrix("A", A, n)
    y = _as_matrix("Y", Y, n)
    if y.shape[1] != 1:
        raise DataError(f"Y must be one outcome column, got {y.shape[1]}")
    a_star = _as_matrix("a_star", a_star)
    if a_star.shape[1] != A.shape[1]:
        raise DataError(f"a_star has {a_star.shape[1]} columns, A has {A.shape[1]}")
    if not (isinstance(latent_dim, int | np.integer) and 1 <= latent_dim <= m):
        raise DataError(f"latent_dim must be an integer in [1, {m}], got {latent_dim!r}")
    k = A.shape[1]
    if n < 10 * (k + latent_dim):
        raise DataError(f"{n} rows are too few for {k} actions and {latent_dim} latents")
    Ac = A - A.mean(axis=0)
    sv = np.linalg.svd(Ac, compute_uv=False)
    if sv[-1] <= 1e-8 * sv[0]:
        raise NotIdentifiableError(
            "the actions are collinear (or one never varies): their effects on the latents "
            "cannot be told apart, so no do(A = a*) is identified"
        )
    return X, A, y[:, 0], a_star


def extrapolate(
    X,
    A,
    Y,
    a_star,
    *,
    latent_dim: int,
    method: str = "control-function",
    unmixing=None,
    seed: int = 0,
    **hparams,
) -> Extrapolation:
    """E[Y | do(A = a*)] for each row of ``a_star`` from observations X (n x m), actions A
    (n x k) and outcome Y (n), by ``method`` (:data:`METHODS` but ``oracle``). The
    representation is PCA of X unless ``unmixing`` (m x latent_dim, e.g. the ``W`` of
    ``mncrl fit``) is given. ``seed`` draws the landmarks."""
    if method not in METHODS or method == "oracle":
        allowed = ", ".join(m for m in METHODS if m != "oracle")
        raise MncrlError(f"unknown method '{method}'; allowed: {allowed} (oracle: simulations)")
    hp = check_hparams(hparams)
    X, A, y, a_star = check_inputs(X, A, Y, a_star, latent_dim)
    key = jax.random.key(int(seed))
    f32 = partial(jnp.asarray, dtype=jnp.float32)
    info = {"method": method, "rows": int(X.shape[0]), "latent_dim": int(latent_dim), **hp}
    if method == "direct":
        pred = _direct_jit(
            key, f32(A), f32(y), f32(a_star), hp["landmarks"], hp["length_scale"], hp["draws"]
        )
        return Extrapolation(a_star, np.asarray(pred, np.float64), None, None, None, info)
    if unmixing is None:
        W = np.asarray(pca_unmixing(jnp.asarray(X), int(latent_dim)), dtype=np.float64)
        info["encoder"] = "pca"
    else:
        W = _as_matrix("unmixing", unmixing)
        if W.shape != (X.shape[1], latent_dim):
            raise DataError(f"unmixing must be {X.shape[1]} x {latent_dim}, got {W.shape}")
        info["encoder"] = "unmixing"
    Zh = (X - X.mean(axis=0)) @ W
    if np.linalg.matrix_rank(Zh) < latent_dim:
        raise NotIdentifiableError(
            f"the representation has rank {np.linalg.matrix_rank(Zh)} < latent_dim = "
            f"{latent_dim}: the encoder loses latent directions"
        )
    fn = _control_function_jit if method == "control-function" else _no_control_function_jit
    pred = fn(key, f32(Zh), f32(A), f32(y), f32(a_star), **hp)
    ov = _overlap_jit(f32(Zh), f32(A), f32(a_star), hp["eval_rows"])
    Mh = np.asarray(action_regression(jnp.asarray(Zh), jnp.asarray(A))[0], np.float64)
    return Extrapolation(
        a_star, np.asarray(pred, np.float64), np.asarray(ov, np.float64), Mh, W, info
    )


__all__ = [
    "ENCODERS",
    "HPARAMS",
    "METHODS",
    "Extrapolation",
    "action_regression",
    "all_methods",
    "all_methods_batch",
    "check_inputs",
    "control_function",
    "direct",
    "extrapolate",
    "no_control_function",
    "overlap",
    "pca_unmixing",
]
