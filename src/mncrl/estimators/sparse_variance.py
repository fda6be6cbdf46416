"""`sparse-variance`: the paper's variance-sparsity estimator (spec/paper.md §3, methods.md §1).

A linear map Zhat = X W (W is m x d, no bias) is learned by AdamW on the loss

    sum_kj s(a1 V_kj) - sum_k s(a2 sum_j V_kj) - sum_j s(a2 sum_k V_kj)
    + 10 sum_g ||{V_kj : (j - k) mod d = g}||_2 + 5 (||W||_F - 1)^2,      s = logistic,

where V (K environments x d) holds the variance of every column of Zhat in every environment.
Two ways to get V (``mode``):

- ``minibatch`` (faithful to the reference code): unbiased variances of each minibatch.
  Equal-sized environments are stacked [n, K, m] and every minibatch takes the same rows of
  every environment (the reference's layout); the rows are reshuffled every epoch and the last
  batch of an epoch is partial. Environments of unequal size each get their own permutation and
  a batch size proportional to their size, ``b_k = ceil(batch_size * n_k / n_max)``, so that one
  epoch is ``ceil(n_max / batch_size)`` steps and covers every environment once.
- ``moments`` (ours): V_kj = w_j^T S_k w_j with S_k the covariance of environment k, computed once
  in a single float64 pass over the data; a step then costs O(K m^2 d), independent of n.

Both run as ``jit``-compiled ``lax.scan`` loops, ``vmap``-ed over random restarts and (with
:func:`fit_batch`) over independent data sets. Restarts keep the one with the lowest final loss,
always evaluated exactly (with the full-data covariances), whatever the mode.

Implementation notes (none changes the estimator):

- every environment is centred once by its own mean (variances are shift invariant; it keeps
  float32 sums accurate);
- a minibatch's variances are computed as w_j^T S_b w_j from the minibatch covariance S_b when
  m <= 2d (one data pass per step and no gradient through the data), otherwise from Zhat;
- epochs are shuffled by two rounds of a packed-key sort (random high bits, position low bits):
  4x faster than ``jax.random.permutation`` on CPU; two rows keep their input order only if
  they draw the same key in both rounds (probability 2^-2(32-b) per pair, b = bits of n);
- training runs in (at most ~10) calls of a compiled chunk of epochs/steps so that a progress
  bar can update between calls; the chunking depends only on the number of epochs/steps, so
  results are the same with or without a progress bar.

Generalisations beyond the paper (K = m = d):

- K != d: the diagonal groups are the wrap-around diagonals of the K x d matrix V tiled along
  its columns, i.e. entry (k, j) belongs to group (j - k) mod d. Every entry is in exactly one
  of d groups of K entries. For K = d this is the paper's (and the reference code's) term; for
  K < d it equals the reference's ``diagonal(cat(V, V), i)``; for K > d the reference truncates
  its diagonals while we keep wrapping.
- m > d: W is m x d and V is K x d, so the loss (and the diagonal term) only depends on d; the
  reference's loop over m offsets (which double-counts entries when m > d) is not reproduced.
  The initialisation keeps PyTorch's fan-in rule U(-1/sqrt(m), 1/sqrt(m)).
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from dataclasses import asdict, dataclass, fields
from functools import partial

import numpy as np

from mncrl.errors import ConvergenceError, MncrlError
from mncrl.estimators.base import Estimator, Fit

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


HPARAMS = {f.name: f.default for f in fields(Config)}

PRESETS = {
    # App. B.2 of the paper.
    "paper": {"mode": "minibatch", "lr": 2e-3, "batch_size": 4096, "epochs": 50, "restarts": 1},
    # Defaults of the reference code (experiment_main.py).
    "reference": {"mode": "minibatch", "lr": 1e-3, "batch_size": 1024, "epochs": 50,
                  "restarts": 1},
    # Ours: exact variances, several restarts, keep the lowest final loss (tuned for reliability,
    # see docs/estimators.md).
    "best": {"mode": "moments", "lr": 5e-3, "steps": 2000, "restarts": 8},
}


def make_config(**hparams) -> Config:
    """A validated Config; MncrlError on unknown keys or bad values."""
    unknown = sorted(set(hparams) - set(HPARAMS))
    if unknown:
        raise MncrlError(f"unknown hyper-parameter '{unknown[0]}' for {NAME}; valid: "
                         f"{', '.join(HPARAMS)}")
    values = {}
    for key, value in hparams.items():
        default = HPARAMS[key]
        values[key] = _coerce(key, value, default)
    cfg = Config(**values)
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


def _coerce(key, value, default):
    """Cast a user value to the type of the default (ints stay exact, None allowed for steps)."""
    if value is None and key == "steps":
        return None
    if isinstance(default, str):
        if not isinstance(value, str):
            raise MncrlError(f"{NAME}: {key} must be a string, got {value!r}")
        return value
    expect_int = isinstance(default, int) or key == "steps"
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise MncrlError(f"{NAME}: {key} must be a number, got {value!r}")
    if expect_int:
        if float(value) != int(value):
            raise MncrlError(f"{NAME}: {key} must be an integer, got {value!r}")
        return int(value)
    if not math.isfinite(float(value)):
        raise MncrlError(f"{NAME}: {key} must be finite, got {value!r}")
    return float(value)


@dataclass(frozen=True)
class Layout:
    """Static shape information of one training problem."""

    counts: tuple[int, ...]
    m: int
    d: int
    batch_size: int

    @property
    def K(self) -> int:
        return len(self.counts)

    @property
    def equal(self) -> bool:
        return len(set(self.counts)) == 1

    @property
    def n_max(self) -> int:
        return max(self.counts)

    @property
    def steps_per_epoch(self) -> int:
        return -(-self.n_max // self.batch_size)

    @property
    def env_batch(self) -> tuple[int, ...]:
        """Rows of environment k in one minibatch: B for the largest, proportional otherwise."""
        B, n_max = self.batch_size, self.n_max
        return tuple(-(-B * n // n_max) for n in self.counts)

    @property
    def offsets(self) -> tuple[int, ...]:
        return tuple(int(x) for x in np.concatenate([[0], np.cumsum(self.counts)[:-1]]))

    @property
    def use_covariance(self) -> bool:
        """Minibatch variances via the m x m batch covariance (cheaper when m <= 2d)."""
        return self.m <= 2 * self.d


# --------------------------------------------------------------------------------------------
# The loss
# --------------------------------------------------------------------------------------------


def diagonal_groups(K: int, d: int) -> np.ndarray:
    """Group index of every entry of the K x d variance matrix: (j - k) mod d (wrap-around
    diagonals of V tiled along its columns; the paper's diagonals when K = d)."""
    return (np.arange(d)[None, :] - np.arange(K)[:, None]) % d


def _group_matrix(K: int, d: int) -> np.ndarray:
    """(K*d) x d one-hot matrix of the diagonal groups (a small dot instead of a scatter)."""
    return np.eye(d, dtype=np.float32)[diagonal_groups(K, d).ravel()]


def loss_terms(V, W, cfg: Config) -> dict:
    """The four terms of the paper's loss (unweighted) for variances V (K x d) and W (m x d)."""
    import jax
    import jax.numpy as jnp

    sig = jax.nn.sigmoid
    K, d = V.shape
    sq = (V * V).reshape(K * d) @ _group_matrix(K, d)  # squared norm of every diagonal group
    positive = sq > 0
    norms = jnp.where(positive, jnp.sqrt(jnp.where(positive, sq, 1.0)), 0.0)  # grad 0 at 0
    return {
        "variance": jnp.sum(sig(cfg.steepness_var * V)),
        "support": jnp.sum(sig(cfg.steepness_support * V.sum(axis=1)))
        + jnp.sum(sig(cfg.steepness_support * V.sum(axis=0))),
        "diagonal": jnp.sum(norms),
        "norm": (jnp.sqrt(jnp.sum(W * W)) - 1.0) ** 2,
    }


def total_loss(V, W, cfg: Config):
    t = loss_terms(V, W, cfg)
    return (cfg.weight_var * t["variance"] - cfg.weight_support * t["support"]
            + cfg.weight_diag * t["diagonal"] + cfg.weight_norm * t["norm"])


def variances_from_covariances(S, W):
    """V_kj = w_j^T S_k w_j for covariances S (K x m x m) and W (m x d)."""
    import jax.numpy as jnp

    return jnp.einsum("kaj,aj->kj", jnp.einsum("kab,bj->kaj", S, W), W)


def batch_covariances(Xb, mask):
    """Unbiased per-environment covariances (K x m x m) of a masked minibatch Xb [B, K, m].

    Computed as (X^T X - c mu mu^T) / (c - 1) over the c valid rows: the rows are centred per
    environment beforehand (by the full environment mean), so the batch mean is small and the
    subtraction loses no float32 accuracy; this saves a centring pass over the batch.
    """
    import jax.numpy as jnp

    Xb = jnp.swapaxes(Xb * mask[..., None], 0, 1)  # [K, B, m]: batch dims lead (fast under vmap)
    cnt = mask.sum(axis=0)
    mu = Xb.sum(axis=1) / jnp.maximum(cnt, 1.0)[:, None]
    gram = jnp.einsum("kbi,kbj->kij", Xb, Xb) - cnt[:, None, None] * mu[:, :, None] * mu[:, None, :]
    return gram / jnp.maximum(cnt - 1.0, 1.0)[:, None, None]


def batch_variances(Xb, mask, W):
    """Unbiased per-environment variances (K x d) of the columns of Xb W (masked rows)."""
    import jax.numpy as jnp

    Z = jnp.einsum("bkm,md->bkd", Xb, W)
    cnt = mask.sum(axis=0)
    mu = jnp.einsum("bk,bkd->kd", mask, Z) / jnp.maximum(cnt, 1.0)[:, None]
    dev = (Z - mu[None]) ** 2
    return jnp.einsum("bk,bkd->kd", mask, dev) / jnp.maximum(cnt - 1.0, 1.0)[:, None]


# --------------------------------------------------------------------------------------------
# Shuffling and minibatches
# --------------------------------------------------------------------------------------------


def _shuffle(key, n: int, n_valid):
    """A random order of 0..n_valid-1 followed by n_valid..n-1 (int32, length n).

    Two rounds (three above 2^20 rows) of a single-operand sort of 32-bit keys holding random
    high bits and the current position in the low bits.
    """
    import jax
    import jax.numpy as jnp

    bits = max(1, (n - 1).bit_length())
    if bits > 24:  # too few random bits left: fall back to a sort of (key, index) pairs
        u = jax.random.uniform(key, (n,))
        u = jnp.where(jnp.arange(n) < n_valid, u, 2.0)
        return jnp.argsort(u).astype(jnp.int32)
    rounds = 2 if bits <= 20 else 3
    low = jnp.uint32((1 << bits) - 1)
    pos = jnp.arange(n, dtype=jnp.uint32)
    invalid = pos >= jnp.uint32(n_valid)  # after each round the invalid rows stay last
    perm = pos
    for r in range(rounds):
        hi = jax.random.bits(jax.random.fold_in(key, r), (n,), jnp.uint32) >> bits
        hi = jnp.where(invalid, jnp.uint32(0xFFFFFFFF) >> bits, hi)
        order = jnp.sort((hi << bits) | pos) & low
        perm = perm[order]
    return perm.astype(jnp.int32)


def _epoch_batches(key, layout: Layout):
    """Everything one epoch needs to draw its minibatches: permutation(s) of the rows."""
    import jax
    import jax.numpy as jnp

    if layout.equal:
        n = layout.n_max
        perm = _shuffle(key, n, n)
        pad = layout.steps_per_epoch * layout.batch_size - n
        return jnp.concatenate([perm, jnp.zeros(pad, jnp.int32)]) if pad else perm
    keys = jax.random.split(key, layout.K)
    counts = jnp.asarray(layout.counts)
    return jax.vmap(_shuffle, in_axes=(0, None, 0))(keys, layout.n_max, counts)


def _minibatch(X, perms, s, layout: Layout):
    """Rows [B, K, m] and mask [B, K] of step ``s`` of an epoch."""
    import jax
    import jax.numpy as jnp

    B = layout.batch_size
    if layout.equal:
        idx = jax.lax.dynamic_slice(perms, (s * B,), (B,))
        valid = (s * B + jnp.arange(B)) < layout.n_max
        mask = jnp.broadcast_to(valid[:, None], (B, layout.K)).astype(X.dtype)
        # X is [n, K*m]: gathering whole rows of K*m values is ~2x faster on CPU than [n, K, m]
        return X[idx].reshape(B, layout.K, layout.m), mask
    b = jnp.asarray(layout.env_batch)[None, :]  # [1, K]
    n = jnp.asarray(layout.counts)[None, :]
    i = jnp.arange(B)[:, None]  # [B, 1]
    local = s * b + i
    valid = (i < b) & (local < n)
    local = jnp.minimum(local, n - 1)
    idx = jnp.take_along_axis(perms.T, local, axis=0)  # perms: [K, n_max]
    rows = jnp.asarray(layout.offsets)[None, :] + idx  # [B, K]
    return X[rows], valid.astype(X.dtype)


# --------------------------------------------------------------------------------------------
# Training (one problem, one restart; vmapped by the caller)
# --------------------------------------------------------------------------------------------


def _optimizer(cfg: Config):
    import optax

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
    import jax
    import optax

    loss, grad = jax.value_and_grad(lambda w: total_loss(V_of(w), w, cfg))(W)
    updates, opt_state = _optimizer(cfg).update(grad, opt_state, W)
    return optax.apply_updates(W, updates), opt_state, loss


def _minibatch_chunk(W, opt_state, shuffle_key, X, start, *, cfg, layout, length):
    """``length`` epochs starting at epoch ``start``; returns losses [length, steps_per_epoch]."""
    import jax
    import jax.numpy as jnp

    def epoch(carry, e):
        perms = _epoch_batches(jax.random.fold_in(shuffle_key, e), layout)

        def step(carry, s):
            W, opt_state = carry
            Xb, mask = _minibatch(X, perms, s, layout)
            if layout.use_covariance:
                S = batch_covariances(Xb, mask)
                W, opt_state, loss = _step(W, opt_state,
                                           lambda w: variances_from_covariances(S, w), cfg)
            else:
                W, opt_state, loss = _step(W, opt_state,
                                           lambda w: batch_variances(Xb, mask, w), cfg)
            return (W, opt_state), loss

        return jax.lax.scan(step, carry, jnp.arange(layout.steps_per_epoch))

    (W, opt_state), losses = jax.lax.scan(epoch, (W, opt_state), start + jnp.arange(length))
    return W, opt_state, losses


def _moments_chunk(W, opt_state, shuffle_key, S, start, *, cfg, layout, length):
    """``length`` full-batch steps on the exact covariances S; returns losses [length]."""
    import jax

    del shuffle_key, start, layout

    def step(carry, _):
        W, opt_state = carry
        W, opt_state, loss = _step(W, opt_state, lambda w: variances_from_covariances(S, w), cfg)
        return (W, opt_state), loss

    (W, opt_state), losses = jax.lax.scan(step, (W, opt_state), None, length=length)
    return W, opt_state, losses


_COMPILED: OrderedDict = OrderedDict()  # compiled chunk runners, least recently used first
_MAX_COMPILED = 32


def _compiled_chunk(cfg: Config, layout: Layout, length: int, args):
    """The jit-compiled chunk runner, vmapped over (problems, restarts); cached per shapes."""
    import jax

    shapes = tuple((a.shape, str(a.dtype)) for a in jax.tree_util.tree_leaves(args)
                   if hasattr(a, "shape"))
    cache_key = (cfg, layout, length, shapes)
    if cache_key in _COMPILED:
        _COMPILED.move_to_end(cache_key)
        return _COMPILED[cache_key]
    body = _minibatch_chunk if cfg.mode == "minibatch" else _moments_chunk
    fn = partial(body, cfg=cfg, layout=layout, length=length)
    over_restarts = jax.vmap(fn, in_axes=(0, 0, 0, None, None))
    over_problems = jax.vmap(over_restarts, in_axes=(0, 0, 0, 0, None))
    _COMPILED[cache_key] = jax.jit(over_problems).lower(*args).compile()
    if len(_COMPILED) > _MAX_COMPILED:
        _COMPILED.popitem(last=False)
    return _COMPILED[cache_key]


def _initial_state(seeds, *, cfg: Config, m: int, d: int):
    """W [P, R, m, d], optimiser state and shuffle keys [P, R] of every seed and restart.

    Drawn on the host (numpy SeedSequence per (seed, restart)): no compilation, and restart r
    of a run is the same whatever the number of restarts.
    """
    import jax
    import jax.numpy as jnp

    R = cfg.restarts
    W = np.stack([np.stack([init_unmixing(int(s), r, m, d) for r in range(R)]) for s in seeds])
    keys = np.stack([np.stack([shuffle_key_data(int(s), r) for r in range(R)]) for s in seeds])
    if ("opt_init", cfg) not in _JITTED:
        _JITTED[("opt_init", cfg)] = jax.jit(jax.vmap(jax.vmap(_optimizer(cfg).init)))
    W = jnp.asarray(W)
    return W, _JITTED[("opt_init", cfg)](W), jax.random.wrap_key_data(jnp.asarray(keys))


def _chunks(total: int) -> list[int]:
    """Split ``total`` units into ~10 calls of equal length (plus one shorter remainder)."""
    size = max(1, -(-total // 10))
    sizes = [size] * (total // size)
    if total % size:
        sizes.append(total % size)
    return sizes


# --------------------------------------------------------------------------------------------
# Data preparation
# --------------------------------------------------------------------------------------------


def _as_blocks(envs, latent_dim):
    """Validated per-environment float arrays, m and d (m when latent_dim is None)."""
    from mncrl.environments import check_envs

    blocks, m = check_envs(envs, latent_dim)
    if any(b.shape[0] < 2 for b in blocks):
        raise MncrlError(f"{NAME} needs at least 2 rows per environment")
    return blocks, m, m if latent_dim is None else int(latent_dim)


def _prepare(problems, layout: Layout, need_rows: bool):
    """Per-problem environment covariances (P x K x m x m, float64 numpy and a float32 device
    copy) and, for minibatch mode, the centred float32 rows on device (P x n x K*m for equal
    sizes, the reference's [n, envs, m] stack; P x N x m otherwise), written environment by
    environment into one buffer."""
    import jax
    import jax.numpy as jnp

    from mncrl.threads import single_threaded_blas

    P, K, m = len(problems), layout.K, layout.m
    S = np.empty((P, K, m, m))
    X = None
    if need_rows:
        shape = (P, layout.n_max, K * m) if layout.equal else (P, sum(layout.counts), m)
        X = jnp.zeros(shape, jnp.float32)
    with single_threaded_blas():
        for p, blocks in enumerate(problems):
            for k, block in enumerate(blocks):
                centred = np.asarray(block, dtype=np.float64)
                centred = centred - centred.mean(axis=0)
                S[p, k] = np.dot(centred.T, centred) / (len(centred) - 1)
                if need_rows:
                    rows = jnp.asarray(centred.astype(np.float32))
                    if layout.equal:
                        X = _put_equal(X, rows[None], p, k * m)
                    else:
                        X = _put_flat(X, rows[None], p, layout.offsets[k])
    if not np.isfinite(S).all():
        raise MncrlError(f"{NAME}: the data contain NaN/Inf or overflow float64")
    return S, jax.device_put(S.astype(np.float32)), X


def _donating_put(index_of):
    import jax

    @partial(jax.jit, donate_argnums=0)
    def put(buf, block, p, k):
        return jax.lax.dynamic_update_slice(buf, block, index_of(p, k))

    return put


_JITTED: dict = {}


def _put_equal(buf, block, p, k):
    if "equal" not in _JITTED:
        _JITTED["equal"] = _donating_put(lambda p, col: (p, 0, col))
    return _JITTED["equal"](buf, block, p, k)


def _put_flat(buf, block, p, offset):
    if "flat" not in _JITTED:
        _JITTED["flat"] = _donating_put(lambda p, off: (p, off, 0))
    return _JITTED["flat"](buf, block, p, offset)


# --------------------------------------------------------------------------------------------
# Public entry points
# --------------------------------------------------------------------------------------------


def fit_batch(problems, keys, latent_dim=None, *, progress: bool = False, **hparams) -> list[Fit]:
    """Fit several independent data sets of identical shapes in one vmapped call.

    ``problems`` is a list of environment lists (one per seed), ``keys`` one integer seed per
    problem. Returns one :class:`Fit` per problem (the best of ``restarts`` for each).
    """
    import jax.numpy as jnp

    t0 = time.perf_counter()
    cfg = make_config(**hparams)
    if len(problems) == 0 or len(problems) != len(keys):
        raise MncrlError(f"{NAME}: need one key per problem, got {len(problems)} problems and "
                         f"{len(keys)} keys")
    for seed in keys:
        if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or not \
                0 <= seed < 2**31:
            raise MncrlError(f"{NAME}: seeds must be integers in [0, 2^31), got {seed!r}")
    prepared = [_as_blocks(envs, latent_dim) for envs in problems]
    shapes = {tuple(b.shape for b in blocks) for blocks, _, _ in prepared}
    if len(shapes) > 1:
        raise MncrlError(f"{NAME}.fit_batch: every problem must have the same environment sizes")
    _, m, d = prepared[0]
    counts = tuple(b.shape[0] for b in prepared[0][0])
    layout = Layout(counts=counts, m=m, d=d, batch_size=cfg.batch_size)
    S64, S, X = _prepare([blocks for blocks, _, _ in prepared], layout, cfg.mode == "minibatch")
    t_prep = time.perf_counter() - t0

    P, R = len(problems), cfg.restarts
    W, opt_state, shuffle_keys = _initial_state(keys, cfg=cfg, m=m, d=d)

    if cfg.mode == "minibatch":
        total, unit, data = cfg.epochs, "epoch", X
        n_steps = cfg.epochs * layout.steps_per_epoch
    else:
        n_steps = cfg.steps if cfg.steps is not None else cfg.epochs * layout.steps_per_epoch
        total, unit, data = n_steps, "step", S

    losses, t_compile, start = [], 0.0, 0
    bar = _progress_bar(total, unit, progress)
    t_train0 = time.perf_counter()
    for length in _chunks(total):
        args = (W, opt_state, shuffle_keys, data, jnp.int32(start))
        tc = time.perf_counter()
        run = _compiled_chunk(cfg, layout, length, args)
        t_compile += time.perf_counter() - tc
        W, opt_state, chunk_losses = run(*args)
        losses.append(np.asarray(chunk_losses).reshape(P, R, -1))
        start += length
        if bar is not None:
            bar.update(length)
    if bar is not None:
        bar.close()
    del X, data, args  # free the device copy of the rows before building the results
    t_train = time.perf_counter() - t_train0 - t_compile

    losses = np.concatenate(losses, axis=-1)  # [P, R, steps]
    final, V, terms = _final_losses(W, S64, cfg)
    W = np.asarray(W, dtype=np.float64)
    fits = []
    for p in range(P):
        ok = np.isfinite(final[p]) & np.isfinite(W[p]).all(axis=(1, 2))
        if not ok.any():
            raise ConvergenceError(
                f"{NAME} diverged (NaN/Inf loss) in every restart for seed {keys[p]} "
                f"(mode={cfg.mode}, lr={cfg.lr}); lower the learning rate, e.g. --set "
                f"lr={cfg.lr / 10:g}")
        best = int(np.nanargmin(np.where(ok, final[p], np.inf)))
        curve = losses[p, best]
        if cfg.mode == "minibatch":
            curve = curve.reshape(cfg.epochs, layout.steps_per_epoch).mean(axis=1)
        fits.append(Fit(unmixing=W[p, best], targets=None, info={
            "estimator": NAME, "mode": cfg.mode, "hparams": asdict(cfg), "latent_dim": d,
            "steps": int(n_steps), "steps_per_epoch": layout.steps_per_epoch,
            "env_batch": list(layout.env_batch), "restarts": R, "selected_restart": best,
            "final_loss": float(final[p, best]), "final_losses": final[p].tolist(),
            "loss_terms": {k: float(v[p, best]) for k, v in terms.items()},
            "variances": np.asarray(V[p, best], dtype=np.float64).tolist(),
            "loss_curve": _downsample(curve).tolist(),
            "loss_curve_unit": "epoch mean" if cfg.mode == "minibatch" else "step",
            "seconds_prepare": t_prep / P, "seconds_compile": t_compile / P,
            "seconds_train": t_train / P, "batched_with": P,
        }))
    return fits


def _final_losses(W, S, cfg: Config):
    """Exact (full-data, float64) loss, variances V and loss terms of every [problem, restart]
    for W [P, R, m, d] and covariances S [P, K, m, m] (numpy: no compilation needed)."""
    def expit(x):  # the logistic function, overflow-free (no scipy import on the CLI path)
        return 0.5 * (1.0 + np.tanh(0.5 * x))

    W = np.asarray(W, dtype=np.float64)
    V = np.einsum("pkab,praj,prbj->prkj", S, W, W, optimize=True)
    K, d = V.shape[-2:]
    sq = (V * V).reshape(*V.shape[:2], K * d) @ _group_matrix(K, d).astype(np.float64)
    terms = {
        "variance": expit(cfg.steepness_var * V).sum(axis=(-2, -1)),
        "support": expit(cfg.steepness_support * V.sum(axis=-1)).sum(axis=-1)
        + expit(cfg.steepness_support * V.sum(axis=-2)).sum(axis=-1),
        "diagonal": np.sqrt(np.maximum(sq, 0.0)).sum(axis=-1),
        "norm": (np.sqrt((W * W).sum(axis=(-2, -1))) - 1.0) ** 2,
    }
    total = (cfg.weight_var * terms["variance"] - cfg.weight_support * terms["support"]
             + cfg.weight_diag * terms["diagonal"] + cfg.weight_norm * terms["norm"])
    return total, V, terms


def _downsample(curve: np.ndarray, points: int = 200) -> np.ndarray:
    step = max(1, -(-len(curve) // points))
    return np.asarray(curve[::step], dtype=np.float64)


def _progress_bar(total: int, unit: str, enabled: bool):
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(total=total, unit=unit, desc=NAME, leave=False)


def fit(envs, *, key: int, latent_dim: int | None = None, progress: bool = False,
        **hparams) -> Fit:
    """Fit the paper's estimator to a list of per-environment (n_k x m) arrays."""
    if latent_dim is None:
        from mncrl.environments import estimate_latent_dim

        latent_dim = estimate_latent_dim(envs)
    return fit_batch([envs], [key], latent_dim, progress=progress, **hparams)[0]


def _fit_batch(problems, keys, latent_dim=None, **hparams):
    if latent_dim is None:
        from mncrl.environments import estimate_latent_dim

        latent_dim = estimate_latent_dim(problems[0])
    return fit_batch(problems, keys, latent_dim, **hparams)


ESTIMATOR = Estimator(
    name=NAME,
    fit=fit,
    description="the paper's estimator: AdamW on a variance-sparsity loss of Zhat = X W "
                "(modes: minibatch = faithful, moments = exact variances)",
    presets={name: {**HPARAMS, **values} for name, values in PRESETS.items()},
    default_preset="best",
    needs_observational=False,
    reports_targets=False,
    fit_batch=_fit_batch,
)

__all__ = ["Config", "ESTIMATOR", "HPARAMS", "PRESETS", "batch_covariances", "batch_variances",
           "diagonal_groups", "fit", "fit_batch", "init_unmixing", "loss_terms", "make_config",
           "shuffle_key_data",
           "total_loss", "variances_from_covariances"]
