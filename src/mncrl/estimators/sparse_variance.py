"""`sparse-variance`: the paper's variance-sparsity estimator (Bing, Ninad, Wahl and Runge,
*Identifying Linearly-Mixed Causal Representations from Multi-Node Interventions*, CLeaR 2024,
§3; its hyper-parameters in App. B.2).

The data are K environments of rows x (1 x m) of the same linear mixing of d latents, each
environment intervening on some of them. A linear map Zhat = X W (W is m x d, no bias) is
learned by AdamW on the loss

    sum_kj s(a1 V_kj) - sum_k s(a2 sum_j V_kj) - sum_j s(a2 sum_k V_kj)
    + 10 sum_g ||{V_kj : (j - k) mod d = g}||_2 + 5 (||W||_F - 1)^2,      s = logistic,

where V (K environments x d) holds the variance of every column of Zhat in every environment
(a1 = 1000, a2 = 2000). The first terms reward variances that are exactly zero (a latent
intervened on, e.g. by do(Z_j = 1), has no variance in that environment) while keeping every
row and column of V non-zero; the diagonal groups push the zeros apart, and the norm term
removes the scale. Two ways to get V (``mode``):

- ``minibatch`` (faithful to the authors' released code): unbiased variances of each minibatch.
  Equal-sized environments are stacked [n, K, m] and every minibatch takes the same rows of
  every environment (the released code's layout); the rows are reshuffled every epoch and the
  last batch of an epoch is partial. Environments of unequal size each get their own
  permutation and a batch size proportional to their size, ``b_k = ceil(batch_size * n_k /
  n_max)``, so that one epoch is ``ceil(n_max / batch_size)`` steps and covers every
  environment once.
- ``moments`` (ours): V_kj = w_j^T S_k w_j with S_k the covariance of environment k, computed once
  in a single float64 pass over the data; a step then costs O(K m^2 d), independent of n.

Both run as ``jit``-compiled ``lax.scan`` loops, ``vmap``-ed over random restarts and (with
:func:`fit_batch`) over independent data sets. Restarts keep the one with the lowest final loss,
always evaluated exactly (numpy float64, with the full-data covariances), whatever the mode.

Implementation notes (none changes the estimator):

- every environment is centred once by its own mean (variances are shift invariant; it keeps
  float32 sums accurate);
- a minibatch's variances are computed as w_j^T S_b w_j from the minibatch covariance S_b when
  m <= 2d (one data pass per step and no gradient through the data), otherwise from Zhat;
- epochs are shuffled by two rounds of a packed-key sort (random high bits, position low bits):
  4x faster than ``jax.random.permutation`` on CPU (the minibatch layout and the shuffles are
  in :mod:`mncrl.estimators.minibatches`);
- training runs in (at most ~10) calls of a compiled chunk of epochs/steps so that a progress
  bar can update between calls; the chunking depends only on the number of epochs/steps, so
  results are the same with or without a progress bar;
- ``info["seconds_compile"]`` is JAX's own measure (its compile events: tracing, lowering, XLA
  compilation or loading from a persistent cache) of the fitting thread during training, and
  ``seconds_train`` the rest of the training time; both are shared out over the batch.

Generalisations beyond the paper (K = m = d):

- K != d: the diagonal groups are the wrap-around diagonals of the K x d matrix V tiled along
  its columns, i.e. entry (k, j) belongs to group (j - k) mod d. Every entry is in exactly one
  of d groups of K entries. For K = d this is the paper's (and the released code's) term; for
  K < d it equals the released code's ``diagonal(cat(V, V), i)``; for K > d that code truncates
  its diagonals while we keep wrapping.
- m > d: W is m x d and V is K x d, so the loss (and the diagonal term) only depends on d; the
  released code's loop over m offsets (which double-counts entries when m > d) is not
  reproduced. The initialisation keeps PyTorch's fan-in rule U(-1/sqrt(m), 1/sqrt(m)).

Whitening (``whiten``, ours; on in preset ``best``, off in ``paper`` and ``reference``): the loss
is written in the units of X (the sigmoids' steepness acts on raw variances, the norm term on
raw W), so its minimiser changes when a column of X is rescaled, and in X's own coordinates it
is biased (the norm and diagonal terms pull columns towards low-variance directions; at d = 3
down to pooled MCC 0.75). With ``whiten`` the whole fit runs on Y = X A, A from the standardised
pooled within-environment covariance (:func:`whitening`; the top-d principal subspace when
m > d), and W = A W~ is returned: rescaling the columns of X leaves Y, hence the fit, unchanged,
and for a leave-one-out do-design the true unmixing is a stationary point of the whitened loss
(docs/estimators.md, "Presets").
"""

from __future__ import annotations

import math
import threading
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, fields
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import optax

from mncrl.environments import check_envs, estimate_latent_dim
from mncrl.errors import ConvergenceError, MncrlError
from mncrl.estimators.base import Estimator, Fit, coerce_hparam, do_only
from mncrl.estimators.minibatches import (
    Layout,
    batch_covariances,
    batch_variances,
    epoch_batches,
    minibatch,
    put_rows,
    row_buffer,
)
from mncrl.observation_noise import denoise, noise_detected
from mncrl.threads import single_threaded_blas

NAME = "sparse-variance"
MODES = ("minibatch", "moments")


@dataclass(frozen=True)
class Config:
    """Hyper-parameters (all settable with ``--set key=value``)."""

    mode: str = "minibatch"
    lr: float = 1e-3
    batch_size: int = 1024
    epochs: int = 50
    steps: int | None = None  # optimiser steps; None: epochs * ceil(n_max / batch_size)
    restarts: int = 1
    weight_decay: float = 0.01
    b1: float = 0.9
    b2: float = 0.999
    eps: float = 1e-8
    steepness_var: float = 1000.0
    steepness_support: float = 2000.0
    weight_var: float = 1.0
    weight_support: float = 1.0
    weight_diag: float = 10.0
    weight_norm: float = 5.0
    # Ours (off in the paper's presets): train in whitened coordinates of the pooled
    # within-environment covariance (its top-d principal subspace when m > d); W is mapped back.
    whiten: bool = False


HPARAMS = {f.name: f.default for f in fields(Config)}
_TYPES = {**HPARAMS, "steps": 1}  # what each value is coerced like (steps: an int or None)

PRESETS = {
    # App. B.2 of the paper.
    "paper": {"mode": "minibatch", "lr": 2e-3, "batch_size": 4096, "epochs": 50, "restarts": 1},
    # Defaults of the authors' released code (experiment_main.py).
    "reference": {"mode": "minibatch", "lr": 1e-3, "batch_size": 1024, "epochs": 50, "restarts": 1},
    # Ours: exact variances in whitened coordinates (no dependence on the units of X; the
    # minimiser is unbiased there for leave-one-out designs), 12 restarts, keep the lowest final
    # loss (tuned for reliability, see docs/estimators.md).
    "best": {"mode": "moments", "lr": 5e-3, "steps": 2000, "restarts": 12, "whiten": True},
}


def make_config(**hparams) -> Config:
    """A validated Config; MncrlError on unknown keys or bad values."""
    unknown = sorted(set(hparams) - set(HPARAMS))
    if unknown:
        raise MncrlError(
            f"unknown hyper-parameter '{unknown[0]}' for {NAME}; valid: {', '.join(HPARAMS)}"
        )
    cfg = Config(**{k: coerce_hparam(NAME, k, v, _TYPES[k]) for k, v in hparams.items()})
    if cfg.mode not in MODES:
        raise MncrlError(f"{NAME}: mode must be one of {', '.join(MODES)}, got {cfg.mode!r}")
    for key in ("batch_size", "epochs", "restarts"):
        if getattr(cfg, key) < 1:
            raise MncrlError(f"{NAME}: {key} must be >= 1, got {getattr(cfg, key)}")
    if cfg.steps is not None and cfg.steps < 1:
        raise MncrlError(f"{NAME}: steps must be >= 1 (or null), got {cfg.steps}")
    if not (cfg.lr > 0 and math.isfinite(cfg.lr)):
        raise MncrlError(f"{NAME}: lr must be a positive number, got {cfg.lr}")
    return cfg


# --------------------------------------------------------------------------------------------
# The loss (one definition: jnp float32 in training, numpy float64 for the exact final losses)
# --------------------------------------------------------------------------------------------


def diagonal_groups(K: int, d: int) -> np.ndarray:
    """Group index of every entry of the K x d variance matrix: (j - k) mod d (wrap-around
    diagonals of V tiled along its columns; the paper's diagonals when K = d)."""
    return (np.arange(d)[None, :] - np.arange(K)[:, None]) % d


def _group_matrix(K: int, d: int) -> np.ndarray:
    """(K*d) x d one-hot matrix of the diagonal groups (a small dot instead of a scatter)."""
    return np.eye(d, dtype=np.float32)[diagonal_groups(K, d).ravel()]


def _expit(x):
    """The logistic function in numpy, overflow-free (no scipy import on the CLI path)."""
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def loss_terms(V, W, cfg: Config, xp=jnp) -> dict:
    """The four terms of the paper's loss (unweighted) for variances V (..., K, d) and W
    (..., m, d), in the array namespace ``xp``: ``jnp`` (differentiable; the diagonal norms
    have gradient 0 at 0) or ``np`` (batched over the leading axes)."""
    sigmoid = jax.nn.sigmoid if xp is jnp else _expit
    K, d = V.shape[-2:]
    groups = _group_matrix(K, d).astype(V.dtype)
    sq = (V * V).reshape(*V.shape[:-2], K * d) @ groups  # squared norm of every diagonal group
    positive = sq > 0
    norms = xp.where(positive, xp.sqrt(xp.where(positive, sq, 1.0)), 0.0)
    return {
        "variance": xp.sum(sigmoid(cfg.steepness_var * V), axis=(-2, -1)),
        "support": xp.sum(sigmoid(cfg.steepness_support * V.sum(axis=-1)), axis=-1)
        + xp.sum(sigmoid(cfg.steepness_support * V.sum(axis=-2)), axis=-1),
        "diagonal": xp.sum(norms, axis=-1),
        "norm": (xp.sqrt(xp.sum(W * W, axis=(-2, -1))) - 1.0) ** 2,
    }


def weighted_loss(terms: dict, cfg: Config):
    """The loss from its four terms and the weights of ``cfg``."""
    return (
        cfg.weight_var * terms["variance"]
        - cfg.weight_support * terms["support"]
        + cfg.weight_diag * terms["diagonal"]
        + cfg.weight_norm * terms["norm"]
    )


def total_loss(V, W, cfg: Config, xp=jnp):
    return weighted_loss(loss_terms(V, W, cfg, xp), cfg)


def _final_losses(W, S, cfg: Config):
    """Exact (full-data, float64) loss, variances V and loss terms of every [problem, restart]
    for W [P, R, m, d] and covariances S [P, K, m, m] (numpy: no compilation needed)."""
    W = np.asarray(W, dtype=np.float64)
    V = np.einsum("pkab,praj,prbj->prkj", S, W, W, optimize=True)
    terms = loss_terms(V, W, cfg, xp=np)
    return weighted_loss(terms, cfg), V, terms


def variances_from_covariances(S, W):
    """V_kj = w_j^T S_k w_j for covariances S (K x m x m) and W (m x d)."""
    return jnp.einsum("kaj,aj->kj", jnp.einsum("kab,bj->kaj", S, W), W)


def _minibatch_variances(Xb, mask, layout: Layout):
    """w -> the minibatch's variances (K x d), through the batch covariance when m <= 2d."""
    if layout.use_covariance:
        S = batch_covariances(Xb, mask)
        return lambda w: variances_from_covariances(S, w)
    return lambda w: batch_variances(Xb, mask, w)


# --------------------------------------------------------------------------------------------
# Training (one problem, one restart; vmapped by _run_chunk)
# --------------------------------------------------------------------------------------------


def _optimizer(cfg: Config):
    return optax.adamw(cfg.lr, b1=cfg.b1, b2=cfg.b2, eps=cfg.eps, weight_decay=cfg.weight_decay)


def init_unmixing(seed: int, restart: int, m: int, d: int) -> np.ndarray:
    """PyTorch's ``nn.Linear(m, d, bias=False)`` default init, transposed: W ~ U(-1/sqrt(m),
    1/sqrt(m)) (m x d, float32), drawn from ``SeedSequence(seed, spawn_key=(restart, 0))``."""
    bound = 1.0 / math.sqrt(m)
    rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed, spawn_key=(restart, 0))))
    return rng.uniform(-bound, bound, (m, d)).astype(np.float32)


def shuffle_key_data(seed: int, restart: int) -> np.ndarray:
    """The (threefry) key data of a restart's minibatch shuffles: 2 uint32 words from
    ``SeedSequence(seed, spawn_key=(restart, 1))``; epoch e uses ``fold_in(key, e)``."""
    return np.random.SeedSequence(seed, spawn_key=(restart, 1)).generate_state(2, np.uint32)


def _step(W, opt_state, V_of, cfg: Config):
    loss, grad = jax.value_and_grad(lambda w: total_loss(V_of(w), w, cfg))(W)
    updates, opt_state = _optimizer(cfg).update(grad, opt_state, W)
    return optax.apply_updates(W, updates), opt_state, loss


def _minibatch_chunk(W, opt_state, shuffle_key, X, start, *, cfg, layout, length):
    """``length`` epochs starting at epoch ``start``; returns losses [length, steps_per_epoch]."""

    def epoch(carry, e):
        perms = epoch_batches(jax.random.fold_in(shuffle_key, e), layout)

        def step(carry, s):
            Xb, mask = minibatch(X, perms, s, layout)
            W, opt_state, loss = _step(*carry, _minibatch_variances(Xb, mask, layout), cfg)
            return (W, opt_state), loss

        return jax.lax.scan(step, carry, jnp.arange(layout.steps_per_epoch))

    (W, opt_state), losses = jax.lax.scan(epoch, (W, opt_state), start + jnp.arange(length))
    return W, opt_state, losses


def _moments_chunk(W, opt_state, shuffle_key, S, start, *, cfg, layout, length):
    """``length`` full-batch steps on the exact covariances S; returns losses [length]."""
    del shuffle_key, start, layout

    def step(carry, _):
        W, opt_state, loss = _step(*carry, lambda w: variances_from_covariances(S, w), cfg)
        return (W, opt_state), loss

    (W, opt_state), losses = jax.lax.scan(step, (W, opt_state), None, length=length)
    return W, opt_state, losses


@partial(jax.jit, static_argnames=("cfg", "layout", "length"))
def _run_chunk(
    W, opt_state, shuffle_keys, data, start, *, cfg: Config, layout: Layout, length: int
):
    """``length`` epochs (minibatch) or steps (moments) of every [problem, restart]: W, the
    optimiser state and the shuffle keys are [P, R, ...], ``data`` (the rows or the covariances)
    [P, ...]; returns W, the state and the losses [P, R, length, ...]."""
    body = _minibatch_chunk if cfg.mode == "minibatch" else _moments_chunk
    one = partial(body, cfg=cfg, layout=layout, length=length)
    over_restarts = jax.vmap(one, in_axes=(0, 0, 0, None, None))
    over_problems = jax.vmap(over_restarts, in_axes=(0, 0, 0, 0, None))
    return over_problems(W, opt_state, shuffle_keys, data, start)


@partial(jax.jit, static_argnames="cfg")
def _init_opt_state(W, *, cfg: Config):
    """The optimiser state of every [problem, restart] of W [P, R, m, d]."""
    return jax.vmap(jax.vmap(_optimizer(cfg).init))(W)


def _initial_state(seeds, *, cfg: Config, m: int, d: int):
    """W [P, R, m, d], optimiser state and shuffle keys [P, R] of every seed and restart (m: the
    training coordinates, d whitened ones with ``whiten``).

    Drawn on the host (numpy SeedSequence per (seed, restart)): no compilation, and restart r
    of a run is the same whatever the number of restarts.
    """
    R = cfg.restarts
    W = np.stack([np.stack([init_unmixing(int(s), r, m, d) for r in range(R)]) for s in seeds])
    keys = np.stack([np.stack([shuffle_key_data(int(s), r) for r in range(R)]) for s in seeds])
    W = jnp.asarray(W)
    return W, _init_opt_state(W, cfg=cfg), jax.random.wrap_key_data(jnp.asarray(keys))


def _chunks(total: int) -> list[int]:
    """Split ``total`` units into ~10 calls of equal length (plus one shorter remainder)."""
    size = max(1, -(-total // 10))
    sizes = [size] * (total // size)
    if total % size:
        sizes.append(total % size)
    return sizes


def _schedule(cfg: Config, layout: Layout) -> tuple[int, str, int]:
    """Units of training (epochs or steps), their name and the number of optimiser steps."""
    n_steps = cfg.epochs * layout.steps_per_epoch
    if cfg.mode == "minibatch":
        return cfg.epochs, "epoch", n_steps
    n_steps = n_steps if cfg.steps is None else cfg.steps
    return n_steps, "step", n_steps


def _train(state, data, cfg: Config, layout: Layout, progress: bool):
    """Run the whole schedule in chunks; returns the final W [P, R, m, d] and the losses
    [P, R, optimiser steps]."""
    W, opt_state, shuffle_keys = state
    P, R = W.shape[:2]
    total, unit, _ = _schedule(cfg, layout)
    losses, start = [], 0
    bar = _progress_bar(total, unit, progress)
    for length in _chunks(total):
        W, opt_state, chunk = _run_chunk(
            W,
            opt_state,
            shuffle_keys,
            data,
            jnp.int32(start),
            cfg=cfg,
            layout=layout,
            length=length,
        )
        losses.append(np.asarray(chunk).reshape(P, R, -1))
        start += length
        if bar is not None:
            bar.update(length)
    if bar is not None:
        bar.close()
    return W, np.concatenate(losses, axis=-1)


_COMPILE_EVENTS = frozenset(
    {
        "/jax/core/compile/jaxpr_trace_duration",
        "/jax/core/compile/jaxpr_to_mlir_module_duration",
        "/jax/core/compile/backend_compile_duration",
    }
)


@contextmanager
def _compile_seconds():
    """Yields a one-element list that accumulates the seconds this thread spends tracing,
    lowering and compiling inside the block (JAX's own compile events)."""
    thread, seconds = threading.get_ident(), [0.0]

    def listen(event, duration, **_):
        if event in _COMPILE_EVENTS and threading.get_ident() == thread:
            seconds[0] += duration

    jax.monitoring.register_event_duration_secs_listener(listen)
    try:
        yield seconds
    finally:
        jax.monitoring.unregister_event_duration_listener(listen)


# --------------------------------------------------------------------------------------------
# Data preparation
# --------------------------------------------------------------------------------------------


def _as_blocks(envs, latent_dim):
    """Validated per-environment float arrays, m and d (m when latent_dim is None)."""
    blocks, m = check_envs(envs, latent_dim)
    if any(b.shape[0] < 2 for b in blocks):
        raise MncrlError(f"{NAME} needs at least 2 rows per environment")
    return blocks, m, m if latent_dim is None else int(latent_dim)


def _layout(problems, latent_dim, cfg: Config):
    """The validated environment blocks of every problem and their common Layout (of the
    coordinates trained in: d whitened ones when ``cfg.whiten``, else the m of X)."""
    prepared = [_as_blocks(envs, latent_dim) for envs in problems]
    if len({tuple(b.shape for b in blocks) for blocks, _, _ in prepared}) > 1:
        raise MncrlError(f"{NAME}.fit_batch: every problem must have the same environment sizes")
    blocks, m, d = prepared[0]
    counts = tuple(b.shape[0] for b in blocks)
    layout = Layout(counts=counts, m=d if cfg.whiten else m, d=d, batch_size=cfg.batch_size)
    return [b for b, _, _ in prepared], layout


#: Eigenvalues of the pooled correlation matrix are floored at this fraction of the largest
#: before whitening: a direction with (almost) no variance in any environment, e.g. a latent
#: intervened on in every environment or float32 rounding noise (~1e-14), is not blown up to
#: unit variance. Correlations, not covariances: the floor does not depend on the units of X.
WHITEN_FLOOR = 1e-8


def whitening(S: np.ndarray, counts, d: int) -> tuple[np.ndarray, int]:
    """The m x d map A to whitened coordinates X A and the number of floored directions.

    P = sum_k (n_k - 1) S_k / sum_k (n_k - 1) is the pooled within-environment covariance of
    the covariances S (K x m x m), s its standard deviations and R = P / (s s^T) its correlation
    matrix; with (l, U) the top d eigenpairs of R, l floored at ``WHITEN_FLOOR`` * l_1,
    A = diag(1/s) U diag(l)^-1/2, so A^T P A = I (for m > d: the top-d principal subspace of
    the standardised X, whitened). Multiplying the columns of X by positive factors D gives
    R unchanged and A / D: the coordinates X A are the same whatever the units of X.
    """
    weights = np.asarray(counts, dtype=np.float64) - 1.0
    pooled = np.einsum("k,kab->ab", weights / weights.sum(), S)
    sd = np.sqrt(np.clip(np.diag(pooled), 0.0, None))
    sd = np.where(sd > 0, sd, 1.0)  # a constant column: its correlations are 0
    corr = pooled / np.outer(sd, sd)
    evals, evecs = np.linalg.eigh(0.5 * (corr + corr.T))
    evals, evecs = evals[::-1][:d], evecs[:, ::-1][:, :d]
    if not evals[0] > 0:
        raise MncrlError(f"{NAME}: the data have no variance in any environment")
    floor = WHITEN_FLOOR * evals[0]
    return evecs / np.sqrt(np.maximum(evals, floor)) / sd[:, None], int((evals < floor).sum())


def _signal_map(S: np.ndarray, counts, d: int, mode: str):
    """(A, floored directions, (noise info or None, covariances in the coordinates X A)) of
    one problem. In moments mode with m > d and observation noise in the data
    (:func:`~mncrl.observation_noise.noise_detected`) the per-coordinate noise is estimated
    and removed first (:func:`~mncrl.observation_noise.denoise`: the variances that should
    be exactly zero are zero again); otherwise :func:`whitening`."""
    m = S.shape[-1]
    pooled = np.einsum("k,kab->ab", np.asarray(counts, float) / np.sum(counts), S)
    if mode == "moments" and m > d and noise_detected(pooled, d):
        out = denoise(S, counts, d)
        return out.transform, 0, (out.noise.to_info(), out.covs)
    A, floored = whitening(S, counts, d)
    return A, floored, (None, _whiten(S[None], A[None])[0])


def _whiten(S: np.ndarray, A: np.ndarray) -> np.ndarray:
    """Covariances S (P x K x m x m) in the coordinates X A (P x K x d x d, symmetric)."""
    St = np.einsum("pai,pkab,pbj->pkij", A, S, A, optimize=True)
    return 0.5 * (St + np.swapaxes(St, -1, -2))


def _centred(block) -> np.ndarray:
    centred = np.asarray(block, dtype=np.float64)
    return centred - centred.mean(axis=0)


def _prepare(problems, layout: Layout, cfg: Config):
    """Per-problem environment covariances (P x K x m' x m', float64 numpy), the training data
    on device, the maps to the training coordinates (P x m x d) and the number of floored
    directions of each problem's whitening (both None without ``cfg.whiten``).

    m' = m, or d with ``cfg.whiten`` (then everything is in the whitened coordinates X A, see
    :func:`whitening`). The training data are the centred float32 rows for minibatch mode
    (:func:`~.minibatches.row_buffer`: P x n x K*m' for equal sizes, the released code's
    [n, envs, m] stack; P x N x m' otherwise, written environment by environment into one
    buffer), the float32 covariances for moments mode."""
    P, K, m = len(problems), layout.K, problems[0][0].shape[1]
    S = np.empty((P, K, m, m))
    X = row_buffer(P, layout) if cfg.mode == "minibatch" else None
    with single_threaded_blas():
        for p, blocks in enumerate(problems):
            for k, block in enumerate(blocks):
                centred = _centred(block)
                S[p, k] = np.dot(centred.T, centred) / (len(centred) - 1)
                if X is not None and not cfg.whiten:
                    X = put_rows(X, centred.astype(np.float32), p, k, layout)
    if not np.isfinite(S).all():
        raise MncrlError(f"{NAME}: the data contain NaN/Inf or overflow float64")
    A, floored = None, None
    if cfg.whiten:
        maps = [_signal_map(S_p, layout.counts, layout.d, cfg.mode) for S_p in S]
        A = np.stack([a for a, _, _ in maps])
        floored = [(n, info) for _, n, (info, _) in maps]
        S = np.stack([covs for _, _, (_, covs) in maps])
        if X is not None:
            with single_threaded_blas():
                for p, blocks in enumerate(problems):
                    for k, block in enumerate(blocks):
                        rows = np.dot(_centred(block), A[p]).astype(np.float32)
                        X = put_rows(X, rows, p, k, layout)
    return S, X if X is not None else jax.device_put(S.astype(np.float32)), A, floored


# --------------------------------------------------------------------------------------------
# Public entry points
# --------------------------------------------------------------------------------------------


def _check_seeds(problems, seeds) -> None:
    if len(problems) == 0 or len(problems) != len(seeds):
        raise MncrlError(
            f"{NAME}: need one seed per problem, got {len(problems)} problems and "
            f"{len(seeds)} seeds"
        )
    for seed in seeds:
        if (
            isinstance(seed, bool)
            or not isinstance(seed, int | np.integer)
            or not 0 <= seed < 2**31
        ):
            raise MncrlError(f"{NAME}: seeds must be integers in [0, 2^31), got {seed!r}")


def _best_restart(final, W, seed, cfg: Config) -> int:
    """The restart with the lowest finite final loss (ConvergenceError when there is none)."""
    ok = np.isfinite(final) & np.isfinite(W).all(axis=(1, 2))
    if not ok.any():
        raise ConvergenceError(
            f"{NAME} diverged (NaN/Inf loss) in every restart for seed {seed} "
            f"(mode={cfg.mode}, lr={cfg.lr}); lower the learning rate, e.g. --set "
            f"lr={cfg.lr / 10:g}"
        )
    return int(np.nanargmin(np.where(ok, final, np.inf)))


def fit_batch(problems, seeds, latent_dim=None, *, progress: bool = False, **hparams) -> list[Fit]:
    """Fit several independent data sets of identical shapes in one vmapped call.

    ``problems`` is a list of environment lists, ``seeds`` one integer seed per problem (it
    draws the initial W and the minibatch shuffles of every restart). Returns one :class:`Fit`
    per problem (the best of ``restarts`` for each).
    """
    t0 = time.perf_counter()
    cfg = make_config(**hparams)
    _check_seeds(problems, seeds)
    blocks, layout = _layout(problems, latent_dim, cfg)
    S64, data, A, floored = _prepare(blocks, layout, cfg)
    seconds = {"seconds_prepare": time.perf_counter() - t0}

    state = _initial_state(seeds, cfg=cfg, m=layout.m, d=layout.d)
    t0 = time.perf_counter()
    with _compile_seconds() as compiling:
        W, losses = _train(state, data, cfg, layout, progress)
    seconds["seconds_compile"] = compiling[0]
    seconds["seconds_train"] = time.perf_counter() - t0 - compiling[0]
    del data, state  # free the device copy of the rows before building the results
    return _results(W, losses, S64, (A, floored), seeds, cfg, layout, seconds)


def _results(W, losses, S, white, seeds, cfg: Config, layout: Layout, seconds: dict) -> list[Fit]:
    """One Fit per problem: its best restart by the exact final loss (covariances S, float64,
    in the training coordinates) and the diagnostics; with ``cfg.whiten`` the unmixing is
    mapped back to X's coordinates by the maps of ``white`` = (A [P, m, d], floored
    directions per problem). ``seconds`` (of the whole batch) are shared out per problem."""
    A, floored = white
    final, V, terms = _final_losses(W, S, cfg)
    W = np.asarray(W, dtype=np.float64)
    P, R = W.shape[:2]
    W_x = W if A is None else np.einsum("pai,prij->praj", A, W)
    fits = []
    for p in range(P):
        best = _best_restart(final[p], W[p], seeds[p], cfg)
        curve = losses[p, best]
        if cfg.mode == "minibatch":
            curve = curve.reshape(cfg.epochs, layout.steps_per_epoch).mean(axis=1)
        fits.append(
            Fit(
                unmixing=W_x[p, best],
                targets=None,
                info={
                    "estimator": NAME,
                    "mode": cfg.mode,
                    "hparams": asdict(cfg),
                    "latent_dim": layout.d,
                    "steps": int(_schedule(cfg, layout)[2]),
                    "steps_per_epoch": layout.steps_per_epoch,
                    "env_batch": list(layout.env_batch),
                    "restarts": R,
                    **(
                        {}
                        if A is None
                        else {
                            "whiten_floored": floored[p][0],
                            "observation_noise": floored[p][1],
                        }
                    ),
                    "selected_restart": best,
                    "final_loss": float(final[p, best]),
                    "final_losses": final[p].tolist(),
                    "loss_terms": {k: float(v[p, best]) for k, v in terms.items()},
                    "variances": np.asarray(V[p, best], dtype=np.float64).tolist(),
                    "loss_curve": _downsample(curve).tolist(),
                    "loss_curve_unit": "epoch mean" if cfg.mode == "minibatch" else "step",
                    **{k: v / P for k, v in seconds.items()},
                    "batched_with": P,
                },
            )
        )
    return fits


def _downsample(curve: np.ndarray, points: int = 200) -> np.ndarray:
    step = max(1, -(-len(curve) // points))
    return np.asarray(curve[::step], dtype=np.float64)


def _progress_bar(total: int, unit: str, enabled: bool):
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(total=total, unit=unit, desc=NAME, leave=False)


def fit(
    envs, *, seed: int, latent_dim: int | None = None, progress: bool = False, **hparams
) -> Fit:
    """Fit the paper's estimator to a list of per-environment (n_k x m) arrays; ``seed`` (an
    integer) draws the initial W and the minibatch shuffles."""
    if latent_dim is None:
        latent_dim = estimate_latent_dim(envs)
    return fit_batch([envs], [seed], latent_dim, progress=progress, **hparams)[0]


def _fit_batch(problems, seeds, latent_dim=None, **hparams):
    """The registry's fit_batch: like :func:`fit`, latent_dim None is estimated from the data."""
    if latent_dim is None:
        latent_dim = estimate_latent_dim(problems[0])
    return fit_batch(problems, seeds, latent_dim, **hparams)


ESTIMATOR = Estimator(
    name=NAME,
    fit=fit,
    description="the paper's estimator: AdamW on a variance-sparsity loss of Zhat = X W "
    "(modes: minibatch = faithful, moments = exact variances)",
    presets={name: {**HPARAMS, **values} for name, values in PRESETS.items()},
    default_preset="best",
    needs_observational=False,
    applicable=do_only,
    reports_targets=False,
    fit_batch=_fit_batch,
)

__all__ = [
    "Config",
    "ESTIMATOR",
    "HPARAMS",
    "PRESETS",
    "diagonal_groups",
    "fit",
    "fit_batch",
    "init_unmixing",
    "loss_terms",
    "make_config",
    "shuffle_key_data",
    "total_loss",
    "variances_from_covariances",
    "weighted_loss",
    "whitening",
]
