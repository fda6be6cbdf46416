"""Kernel ridge regression in JAX (Nystrom landmarks): the smoother of intervention
extrapolation.

A *block* is a set of input columns, whitened by its own training mean and covariance (the
symmetric inverse square root), turned into ``[z, q(z), k(z) K^{-1/2}]``:

- z, the block itself: a linear part, not penalised, so the fit continues linearly where it
  has no data instead of decaying to the mean;
- q(z), the degree-2 monomials z_i z_j (i <= j; z_i^2 / sqrt(2) and z_i z_j for i < j, so
  that the ridge penalty on them is the Frobenius norm of the quadratic form z' B z, which
  does not depend on the basis): the fit continues the data's curvature, so an outcome that
  grows quadratically keeps growing in the sparse tails where the kernel part fades;
- the Nystrom features of a Gaussian kernel of length ``length_scale``: k(z) holds the kernel
  between z and D *landmarks* (D training rows drawn without replacement from an explicit PRNG
  key), K is the landmarks' own kernel matrix. Ridge on them is kernel ridge regression
  restricted to the span of the landmarks' kernel functions.

Why landmarks and not random Fourier features: the fit is *equivariant under invertible affine
maps of a block's inputs*. Whitened inputs of X H + c are the whitened inputs of X turned by an
orthogonal matrix; the linear part spans the same functions, and the Gaussian kernel between
rows (landmarks are rows, so they turn with them) only sees distances; the quadratic forms
of z and of z Q are the same space with the same (Frobenius) penalty. A representation
identified up to an affine map (PCA of a linear mixing) then gives the same predictions as the
true latents, where random Fourier frequencies (fixed directions in the whitened coordinates)
would give another approximation of the kernel, whose difference is largest far from the data.

A model is additive over blocks, f(x) = c + sum_blocks f_b(x_b), each block multivariate:
``Y ~ nu(Z) + psi(V)`` is two blocks. The ridge penalty (one penalty on the quadratic and
kernel features; the intercept and each block's linear part are not penalised, so a fit whose
data are linear stays linear outside them) is chosen by generalised cross-validation over a
grid relative to the mean eigenvalue of the features' Gram matrix (closed form from one
eigen-decomposition).

Everything is a pure function of arrays and keys, jitted at module level, so a batch of seeds
is one ``jax.lax.map`` or ``jax.vmap``.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

#: Ridge penalties tried, relative to the mean eigenvalue of the centred Gram matrix.
RIDGE_GRID = tuple(10.0**e for e in range(-6, 2))
#: Eigenvalues of the landmarks' kernel matrix below this share of the largest are floored
#: (near-duplicate landmarks): K^{-1/2} stays finite.
KERNEL_FLOOR = 1e-6


class Block(NamedTuple):
    """How one block's inputs become features: whitening (mean, inverse square root of the
    covariance), the landmarks (whitened, divided by the kernel length) and K^{-1/2}."""

    mean: jax.Array
    whiten: jax.Array
    landmarks: jax.Array
    k_inv_sqrt: jax.Array
    length_scale: jax.Array


class Model(NamedTuple):
    """A fitted additive model: its blocks, the features' centring, coefficients, intercept and
    the chosen relative ridge penalty."""

    blocks: tuple
    f_mean: jax.Array
    coef: jax.Array
    intercept: jax.Array
    ridge: jax.Array


def whitening(X: jax.Array) -> tuple[jax.Array, jax.Array]:
    """(mean, W): z = (X - mean) W has identity covariance. W is the symmetric inverse square
    root: unlike evecs / sqrt(evals) it does not depend on the eigenvectors' arbitrary signs
    (rounding would otherwise change the features), and it makes whitening equivariant."""
    cov = jnp.atleast_2d(jnp.cov(X, rowvar=False))
    evals, evecs = jnp.linalg.eigh(cov)
    return X.mean(axis=0), (evecs / jnp.sqrt(jnp.maximum(evals, 1e-12 * evals.max()))) @ evecs.T


def gaussian_kernel(A: jax.Array, B: jax.Array) -> jax.Array:
    """exp(-|a - b|^2 / 2) for every row pair (inputs already divided by the length)."""
    sq = (A * A).sum(1)[:, None] + (B * B).sum(1)[None, :] - 2.0 * A @ B.T
    return jnp.exp(-0.5 * jnp.maximum(sq, 0.0))


def make_block(key: jax.Array, X: jax.Array, landmarks: int, length_scale: float) -> Block:
    """A block for the training inputs X (n x p): ``landmarks`` rows of X (at most n)."""
    mean, whiten = whitening(X)
    idx = jax.random.choice(key, X.shape[0], (min(landmarks, X.shape[0]),), replace=False)
    centres = (X[idx] - mean) @ whiten / length_scale
    evals, evecs = jnp.linalg.eigh(gaussian_kernel(centres, centres))
    evals = jnp.maximum(evals, KERNEL_FLOOR * evals.max())
    return Block(mean, whiten, centres, (evecs / jnp.sqrt(evals)) @ evecs.T, length_scale)


def n_linear(block: Block) -> int:
    return block.whiten.shape[1]


def n_quadratic(block: Block) -> int:
    p = n_linear(block)
    return p * (p + 1) // 2


def n_penalised(block: Block) -> int:
    """Quadratic monomials plus landmarks."""
    return n_quadratic(block) + block.landmarks.shape[0]


def quadratic(z: jax.Array) -> jax.Array:
    """The monomials z_i z_j, i <= j, weighted so the sum of squared coefficients is the
    Frobenius norm of the quadratic form (module docstring)."""
    i, j = np.triu_indices(z.shape[1])
    return z[:, i] * z[:, j] * np.where(i == j, 1.0 / np.sqrt(2.0), 1.0)


def whitened_and_kernel(block: Block, X: jax.Array) -> tuple[jax.Array, jax.Array]:
    """(z, k(z)): the whitened rows of X and their kernel with the landmarks."""
    z = (X - block.mean) @ block.whiten
    return z, gaussian_kernel(z / block.length_scale, block.landmarks)


def block_features(block: Block, X: jax.Array) -> jax.Array:
    """[z, q(z), k(z) K^{-1/2}] with z the whitened X (module docstring)."""
    z, k = whitened_and_kernel(block, X)
    return jnp.concatenate([z, quadratic(z), k @ block.k_inv_sqrt], axis=1)


def design(blocks: tuple, inputs: tuple) -> jax.Array:
    return jnp.concatenate([block_features(b, x) for b, x in zip(blocks, inputs, strict=True)], 1)


def ridge_gcv(
    F: jax.Array, y: jax.Array, penalised: tuple
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """(coefficients, feature means, relative penalty) of ridge regression of y on F with an
    unpenalised intercept and unpenalised columns where ``penalised`` (static, one bool per
    column) is False, the penalty chosen by generalised cross-validation: the free columns are
    projected out (Frisch-Waugh), the rest is ridge on the residuals."""
    n = F.shape[0]
    pen = np.asarray(penalised, dtype=bool)
    free_idx, pen_idx = np.flatnonzero(~pen), np.flatnonzero(pen)
    f_mean = F.mean(axis=0)
    Fc, yc = F - f_mean, y - y.mean()
    Lf, R = Fc[:, free_idx], Fc[:, pen_idx]
    Qf = jnp.linalg.qr(Lf)[0] if free_idx.size else jnp.zeros((n, 0), F.dtype)
    R_res = R - Qf @ (Qf.T @ R)
    y_res = yc - Qf @ (Qf.T @ yc)
    evals, Q = jnp.linalg.eigh(R_res.T @ R_res)
    evals = jnp.maximum(evals, 0.0)
    g = Q.T @ (R_res.T @ y_res)
    lams = jnp.asarray(RIDGE_GRID) * evals.mean()
    shrink = evals[None, :] / (evals[None, :] + lams[:, None])  # (grid, p)
    # residual sum of squares per penalty from the eigen-decomposition alone (no n x p
    # product): |y - f|^2 = |y|^2 - 2 sum g^2 / (e + lam) + sum e g^2 / (e + lam)^2
    inv = 1.0 / (evals[None, :] + lams[:, None])  # (grid, p)
    g2 = g * g
    rss = y_res @ y_res - 2.0 * (inv * g2).sum(axis=1) + (evals * g2 * inv * inv).sum(axis=1)
    rss = jnp.maximum(rss, 0.0)
    dof = free_idx.size + shrink.sum(axis=1)
    gcv = n * rss / (n - dof) ** 2
    best = jnp.argmin(jnp.where(dof < n - 1, gcv, jnp.inf))
    beta_pen = Q @ (g / (evals + lams[best]))
    coef = jnp.zeros(F.shape[1], F.dtype).at[pen_idx].set(beta_pen)
    if free_idx.size:
        beta_free = jnp.linalg.lstsq(Lf, yc - R @ beta_pen)[0]
        coef = coef.at[free_idx].set(beta_free)
    return coef, f_mean, jnp.asarray(RIDGE_GRID)[best]


def penalised_columns(blocks: tuple) -> tuple:
    """Per design column: False for a block's linear part (not penalised: the fit continues
    linearly where it has no data), True for its quadratic and kernel features."""
    out: list[bool] = []
    for b in blocks:
        out += [False] * n_linear(b) + [True] * n_penalised(b)
    return tuple(out)


def fit_additive(
    key: jax.Array, inputs: tuple, y: jax.Array, landmarks: int, length_scale: float
) -> Model:
    """Fit y ~ c + sum_b f_b(inputs[b]) (module docstring)."""
    keys = jax.random.split(key, len(inputs))
    blocks = tuple(
        make_block(k, x, landmarks, length_scale) for k, x in zip(keys, inputs, strict=True)
    )
    coef, f_mean, ridge = ridge_gcv(design(blocks, inputs), y, penalised_columns(blocks))
    return Model(blocks, f_mean, coef, y.mean(), ridge)


def block_slices(model: Model) -> list[slice]:
    """The coefficient slice of each block."""
    out, start = [], 0
    for b in model.blocks:
        width = n_linear(b) + n_penalised(b)
        out.append(slice(start, start + width))
        start += width
    return out


def predict_block(model: Model, index: int, X: jax.Array) -> jax.Array:
    """Block ``index``'s centred contribution f_b at the rows X (the other blocks' terms and the
    intercept left out). K^{-1/2} is applied to the coefficients, not to the kernel rows: the
    value of ``block_features(...) @ coef`` (up to rounding) at a fraction of the cost when X
    has many rows (the prediction step evaluates nu at tens of thousands of points)."""
    sl, b = block_slices(model)[index], model.blocks[index]
    c = model.coef[sl]
    p, q = n_linear(b), n_quadratic(b)
    z, k = whitened_and_kernel(b, X)
    out = z @ c[:p] + quadratic(z) @ c[p : p + q] + k @ (b.k_inv_sqrt @ c[p + q :])
    return out - model.f_mean[sl] @ c


def predict(model: Model, inputs: tuple) -> jax.Array:
    """The fitted function at new rows (one array per block)."""
    return model.intercept + sum(predict_block(model, i, x) for i, x in enumerate(inputs))


fit_additive_jit = jax.jit(fit_additive, static_argnames=("landmarks", "length_scale"))

__all__ = [
    "RIDGE_GRID",
    "Block",
    "Model",
    "block_features",
    "fit_additive",
    "fit_additive_jit",
    "gaussian_kernel",
    "make_block",
    "predict",
    "predict_block",
    "ridge_gcv",
]
