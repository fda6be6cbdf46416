"""Minibatches of rows for the ``minibatch`` mode of `sparse-variance`
(:mod:`mncrl.estimators.sparse_variance`): the static shapes of a training problem, the layout of
its rows on device, the per-epoch shuffles, the rows of one optimiser step and their unbiased
per-environment (co)variances.

A problem is K environments of n_k rows x (1 x m), every row centred beforehand by the mean of
its own environment (so a minibatch mean is small; :func:`batch_covariances` relies on it). An
epoch is ``ceil(n_max / batch_size)`` steps and visits every row of every environment exactly
once. Every step yields rows [B, K, m] and a mask [B, K] (1 for a valid row), B = batch_size.

- Equal environment sizes (n_k = n), the authors' released code's layout: the environments are
  stacked [n, K, m], stored flattened as [n, K*m] (gathering whole rows of K*m values is ~2x
  faster on CPU than gathering from [n, K, m]). An epoch draws one permutation of the n rows,
  padded with zeros to a multiple of B; step s takes its positions s*B .. s*B + B - 1, i.e. the
  same rows of every environment, and the last batch of an epoch is partial (its padding rows
  are masked out).
- Unequal sizes: the environments are concatenated [N, m] (N = sum n_k; environment k starts
  at row ``offsets[k]``). Every environment draws its own permutation each epoch and takes
  ``b_k = ceil(B * n_k / n_max)`` rows a step (``Layout.env_batch``: B for the largest, so one
  epoch covers the largest once and the others at least once): step s takes positions
  s*b_k .. s*b_k + b_k - 1 of environment k's permutation. Slots past b_k or past n_k are masked.

Shuffles (:func:`_shuffle`) are two rounds (three above 2^20 rows) of a single-operand sort of
packed 32-bit keys, random high bits and the current position in the low b bits (b = bits of
n): 4x faster than ``jax.random.permutation`` on CPU. Two rows keep their input order only if
they draw the same key in both rounds (probability 2^-2(32-b) per pair). Rows past ``n_valid``
(the padding of an environment shorter than n_max) get the largest high bits and stay last. Above
2^24 rows too few random bits are left and a sort of (uniform, index) pairs is used instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np


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
# The rows on device
# --------------------------------------------------------------------------------------------


def row_buffer(P: int, layout: Layout):
    """Zeros for the rows of P problems: [P, n, K*m] for equal sizes, [P, N, m] otherwise."""
    K, m = layout.K, layout.m
    shape = (P, layout.n_max, K * m) if layout.equal else (P, sum(layout.counts), m)
    return jnp.zeros(shape, jnp.float32)


@partial(jax.jit, donate_argnums=0, static_argnames="equal")
def _put_rows(buf, rows, p, start, *, equal: bool):
    """``buf`` (donated: updated in place) with ``rows`` of one environment written for problem
    ``p`` from column ``start`` (equal sizes, [P, n, K*m]) or row ``start`` ([P, N, m])."""
    index = (p, 0, start) if equal else (p, start, 0)
    return jax.lax.dynamic_update_slice(buf, rows[None], index)


def put_rows(buf, rows, p: int, k: int, layout: Layout):
    """``buf`` (donated) with the float32 ``rows`` of environment k of problem p written in."""
    start = k * layout.m if layout.equal else layout.offsets[k]
    return _put_rows(buf, rows, p, start, equal=layout.equal)


# --------------------------------------------------------------------------------------------
# Shuffling and minibatches
# --------------------------------------------------------------------------------------------


def _shuffle(key, n: int, n_valid):
    """A random order of 0..n_valid-1 followed by n_valid..n-1 (int32, length n).

    Two rounds (three above 2^20 rows) of a single-operand sort of 32-bit keys holding random
    high bits and the current position in the low bits.
    """
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


def epoch_batches(key, layout: Layout):
    """Everything one epoch needs to draw its minibatches: permutation(s) of the rows."""
    if layout.equal:
        n = layout.n_max
        perm = _shuffle(key, n, n)
        pad = layout.steps_per_epoch * layout.batch_size - n
        return jnp.concatenate([perm, jnp.zeros(pad, jnp.int32)]) if pad else perm
    keys = jax.random.split(key, layout.K)
    counts = jnp.asarray(layout.counts)
    return jax.vmap(_shuffle, in_axes=(0, None, 0))(keys, layout.n_max, counts)


def minibatch(X, perms, s, layout: Layout):
    """Rows [B, K, m] and mask [B, K] of step ``s`` of an epoch."""
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
# Statistics of a minibatch
# --------------------------------------------------------------------------------------------


def batch_covariances(Xb, mask):
    """Unbiased per-environment covariances (K x m x m) of a masked minibatch Xb [B, K, m].

    Computed as (X^T X - c mu mu^T) / (c - 1) over the c valid rows: the rows are centred per
    environment beforehand (by the full environment mean), so the batch mean is small and the
    subtraction loses no float32 accuracy; this saves a centring pass over the batch.
    """
    Xb = jnp.swapaxes(Xb * mask[..., None], 0, 1)  # [K, B, m]: batch dims lead (fast under vmap)
    cnt = mask.sum(axis=0)
    mu = Xb.sum(axis=1) / jnp.maximum(cnt, 1.0)[:, None]
    gram = jnp.einsum("kbi,kbj->kij", Xb, Xb) - cnt[:, None, None] * mu[:, :, None] * mu[:, None, :]
    return gram / jnp.maximum(cnt - 1.0, 1.0)[:, None, None]


def batch_variances(Xb, mask, W):
    """Unbiased per-environment variances (K x d) of the columns of Xb W (masked rows)."""
    Z = jnp.einsum("bkm,md->bkd", Xb, W)
    cnt = mask.sum(axis=0)
    mu = jnp.einsum("bk,bkd->kd", mask, Z) / jnp.maximum(cnt, 1.0)[:, None]
    dev = (Z - mu[None]) ** 2
    return jnp.einsum("bk,bkd->kd", mask, dev) / jnp.maximum(cnt - 1.0, 1.0)[:, None]


__all__ = [
    "Layout",
    "batch_covariances",
    "batch_variances",
    "epoch_batches",
    "minibatch",
    "put_rows",
    "row_buffer",
]
