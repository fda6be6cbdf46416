"""How well an estimate recovers the latents (docs/estimators.md, "Metrics"; docs/paper.md#metric).

- :func:`mcc`: mean correlation coefficient: Pearson |corr| between every true latent Z_i and
  every estimate Zhat_j, a one-to-one matching that maximises the total (Hungarian algorithm,
  ``scipy.optimize.linear_sum_assignment``), mean of the matched |corr|.
- :func:`mcc_paper`: the paper's protocol: the pooled rows in consecutive chunks of 5000, one
  :func:`mcc` (with its own matching) per chunk, averaged over chunks.
- :func:`mcc_spearman`: :func:`mcc` on ranks (invariant to monotone transformations).
- :func:`amari`: Amari distance of L W (d x d) from a scaled permutation, in [0, 1], invariant to
  the scale of every estimate and every true latent (:func:`normalised_mixing`).
- :func:`target_f1`: F1 of estimated against true intervention targets after aligning the
  estimated latents to the true ones.
- :func:`evaluate`: every metric the given inputs allow, as a flat dict.
- :func:`row_moments` + :func:`mcc_from_moments`: ``mcc`` and ``mcc_paper`` of any linear
  estimate Zhat = X W from second moments of the rows, computed once for many estimates.
- :func:`latent_recovery`: which true latents some estimated latent copies (per-column Amari).

All functions take numpy arrays (any float dtype) and return Python floats.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment

from mncrl.errors import MncrlError
from mncrl.scm import ancestor_matrix
from mncrl.threads import single_threaded_blas

PAPER_CHUNK = 5000
AMARI_RTOL = 1e-6  # a latent / estimate below this relative size counts as lost (amari)
_ROWS_PER_PASS = 1 << 16


def _as_2d(name: str, a) -> np.ndarray:
    a = np.asarray(a)
    if a.ndim == 1:
        a = a[:, None]
    if a.ndim != 2:
        raise MncrlError(f"{name} must be a 2-d array (rows x latents), got shape {a.shape}")
    if not np.issubdtype(a.dtype, np.number):
        raise MncrlError(f"{name} must be numeric, got dtype {a.dtype}")
    return a


def _pair(Z, Zhat) -> tuple[np.ndarray, np.ndarray]:
    Z, Zhat = _as_2d("Z", Z), _as_2d("Zhat", Zhat)
    if Z.shape[0] != Zhat.shape[0]:
        raise MncrlError(
            f"Z and Zhat must have the same rows, got {Z.shape[0]} and {Zhat.shape[0]}"
        )
    if Z.shape[0] < 2:
        raise MncrlError("need at least 2 rows to compute correlations")
    return Z, Zhat


def abs_correlations(Z, Zhat) -> np.ndarray:
    """|Pearson correlation| (d x dhat) between the columns of Z and Zhat.

    Accumulated in float64 over blocks of rows (no full-size copies). A constant column has
    correlation 0 with everything.
    """
    Z, Zhat = _pair(Z, Zhat)
    n = Z.shape[0]
    mu_z = Z.mean(axis=0, dtype=np.float64)
    mu_h = Zhat.mean(axis=0, dtype=np.float64)
    czh = np.zeros((Z.shape[1], Zhat.shape[1]))
    vz = np.zeros(Z.shape[1])
    vh = np.zeros(Zhat.shape[1])
    with single_threaded_blas():
        for start in range(0, n, _ROWS_PER_PASS):
            a = Z[start : start + _ROWS_PER_PASS].astype(np.float64) - mu_z
            b = Zhat[start : start + _ROWS_PER_PASS].astype(np.float64) - mu_h
            czh += np.dot(a.T, b)
            vz += np.einsum("ij,ij->j", a, a)
            vh += np.einsum("ij,ij->j", b, b)
    denom = np.sqrt(np.outer(vz, vh))
    # columns whose variance is at the rounding level of their mean count as constant
    tiny_z = vz <= (1e-14 * n) * np.maximum(mu_z**2, 1e-300)
    tiny_h = vh <= (1e-14 * n) * np.maximum(mu_h**2, 1e-300)
    with np.errstate(divide="ignore", invalid="ignore"):
        C = np.abs(czh) / denom
    C[tiny_z | (vz == 0)] = 0.0
    C[:, tiny_h | (vh == 0)] = 0.0
    return np.clip(np.nan_to_num(C, nan=0.0), 0.0, 1.0)


def matching(C: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows and columns of the one-to-one matching that maximises the sum of C (Hungarian)."""
    rows, cols = linear_sum_assignment(-np.asarray(C, dtype=np.float64))
    return rows, cols


def _mcc_from_corr(C: np.ndarray) -> float:
    rows, cols = matching(C)
    return float(C[rows, cols].mean())


def mcc(Z, Zhat) -> float:
    """Mean of the matched |Pearson correlations| between true and estimated latents.

    With dhat != d estimated columns, min(d, dhat) pairs are matched.
    """
    return _mcc_from_corr(abs_correlations(Z, Zhat))


def interleave_order(env) -> np.ndarray:
    """Row order that interleaves environments like the reference's [n, envs, d] reshape:
    row t of every environment (in environment order), then row t + 1, ...

    Rows are taken in their order within each environment; with unequal sizes the smaller
    environments simply run out first.
    """
    env = np.asarray(env)
    order = np.argsort(env, kind="stable")
    counts = np.bincount(env)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    rank = np.empty(len(env), dtype=np.int64)
    rank[order] = np.arange(len(env)) - np.repeat(starts, counts)
    return np.lexsort((env, rank))


def mcc_paper(Z, Zhat, chunk: int = PAPER_CHUNK, env=None) -> float:
    """The paper's pooled MCC: mean of :func:`mcc` over consecutive ``chunk``-row blocks.

    As in the reference code, only complete chunks count (a remainder of fewer than ``chunk``
    rows is dropped); unlike it, fewer than ``chunk`` rows in total give one chunk of all rows
    (the reference would return NaN). With ``env`` the rows are first interleaved across
    environments (:func:`interleave_order`), which is how the reference pools its test rows;
    without it the rows are used in the given order.
    """
    Z, Zhat = _pair(Z, Zhat)
    if not (isinstance(chunk, int | np.integer) and chunk >= 2):
        raise MncrlError(f"chunk must be an integer >= 2, got {chunk!r}")
    if env is not None:
        env = np.asarray(env)
        if env.shape != (Z.shape[0],):
            raise MncrlError(f"env must have one label per row ({Z.shape[0]}), got {env.shape}")
        order = interleave_order(env)
        Z, Zhat = Z[order], Zhat[order]
    n_chunks = max(1, Z.shape[0] // chunk)
    size = chunk if Z.shape[0] >= chunk else Z.shape[0]
    return float(
        np.mean(
            [
                mcc(Z[c * size : (c + 1) * size], Zhat[c * size : (c + 1) * size])
                for c in range(n_chunks)
            ]
        )
    )


def _ranks(A: np.ndarray) -> np.ndarray:
    from scipy.stats import rankdata

    out = np.empty(A.shape, dtype=np.float64 if A.shape[0] >= 1 << 24 else np.float32)
    for j in range(A.shape[1]):
        out[:, j] = rankdata(A[:, j])
    return out


def mcc_spearman(Z, Zhat) -> float:
    """:func:`mcc` with Spearman (rank) correlations."""
    Z, Zhat = _pair(Z, Zhat)
    return mcc(_ranks(Z), _ranks(Zhat))


def joint_covariance(Z, Zhat) -> np.ndarray:
    """Covariance ((d + dhat) x (d + dhat), float64) of the columns of [Z, Zhat], accumulated
    over blocks of rows."""
    Z, Zhat = _pair(Z, Zhat)
    n = Z.shape[0]
    mu = np.concatenate([Z.mean(axis=0, dtype=np.float64), Zhat.mean(axis=0, dtype=np.float64)])
    C = np.zeros((mu.size, mu.size))
    with single_threaded_blas():
        for start in range(0, n, _ROWS_PER_PASS):
            a = (
                np.concatenate(
                    [Z[start : start + _ROWS_PER_PASS], Zhat[start : start + _ROWS_PER_PASS]],
                    axis=1,
                ).astype(np.float64)
                - mu
            )
            C += a.T @ a
    return C / (n - 1)


def ancestral_correlations(Z, Zhat, ancestors) -> np.ndarray:
    """|partial correlation| (d x dhat) of true latent i and estimate j given the true
    ancestors of i (``ancestors[a, i]``: a is an ancestor of i; d x d bool).

    1 when estimate j is latent i plus any combination of i's ancestors (what identification
    "up to ancestors" promises), below 1 when j also carries other latents or noise, 0 when it
    carries nothing of i beyond its ancestors. With no ancestors it is :func:`abs_correlations`.
    """
    Z, Zhat = _pair(Z, Zhat)
    d, dh = Z.shape[1], Zhat.shape[1]
    A = np.asarray(ancestors, dtype=bool)
    if A.shape != (d, d):
        raise MncrlError(f"ancestors must be a ({d} x {d}) bool matrix, got shape {A.shape}")
    C = joint_covariance(Z, Zhat)
    out = np.zeros((d, dh))
    hat = np.arange(d, d + dh)
    for i in range(d):
        an = np.flatnonzero(A[:, i] & (np.arange(d) != i))
        keep = np.concatenate([[i], hat])
        S = C[np.ix_(keep, keep)]
        if an.size:
            G = C[np.ix_(an, an)]
            cross = C[np.ix_(keep, an)]
            S = S - cross @ np.linalg.lstsq(G, cross.T, rcond=None)[0]
        var = np.diag(S)
        scale = np.sqrt(np.maximum(var[0] * var[1:], 0.0))
        tiny = var[1:] <= 1e-12 * np.diag(C)[hat]  # estimate j is a function of the ancestors
        with np.errstate(divide="ignore", invalid="ignore"):
            row = np.abs(S[0, 1:]) / scale
        out[i] = np.where(tiny | ~np.isfinite(row), 0.0, np.clip(row, 0.0, 1.0))
    return out


def mcc_ancestral(Z, Zhat, ancestors) -> float:
    """Identification up to ancestors, scored like :func:`mcc`: the mean matched
    :func:`ancestral_correlations` (Hungarian matching on them). Equals 1 exactly when every
    estimate is one true latent plus a combination of its ancestors."""
    return _mcc_from_corr(ancestral_correlations(Z, Zhat, ancestors))


def ancestor_leak(effective: np.ndarray, adjacency: np.ndarray, scale=None):
    """How far estimated latents are from the soft guarantee "up to ancestors".

    ``effective`` (d x d) is E = L W (Zhat = Z E), ``adjacency`` the true graph (edge i -> j
    when [i, j] != 0), ``scale`` the true latents' standard deviations (default 1). Each
    estimated latent j is the combination sum_i E[i, j] Z_i; its *leak* onto a true latent v is
    the share of sum_i (E[i, j] scale_i)^2 carried by latents that are neither v nor an ancestor
    of v. Estimated latents are matched one-to-one to true ones by the smallest total leak
    (Hungarian). Returns (the largest leak of a matched pair, ``perm`` with perm[j] = the true
    latent of estimated latent j). 0 means exactly "up to ancestors" (with E invertible, every
    matched latent then has a non-zero coefficient on its own true latent); 1 the worst.
    """
    E = np.asarray(effective, dtype=np.float64)
    s = np.ones(len(E)) if scale is None else np.asarray(scale, dtype=np.float64)
    share = (E * s[:, None]) ** 2
    share = share / np.maximum(share.sum(axis=0), np.finfo(float).tiny)
    allowed = ancestor_matrix(adjacency) | np.eye(len(adjacency), dtype=bool)
    # cost[v, j]: share of estimated latent j outside v's closed ancestor set
    cost = (~allowed).T.astype(np.float64) @ share
    rows, cols = linear_sum_assignment(cost)
    perm = np.empty(len(E), dtype=np.int64)
    perm[cols] = rows
    return float(cost[rows, cols].max()), perm


def _mixing_inputs(L, W, latent_scale, rtol) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Validated float64 L (d x m), W (m x d) and the latents' scales s (d,)."""
    try:
        L, W = np.asarray(L, dtype=np.float64), np.asarray(W, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise MncrlError(f"L and W must be numeric arrays: {exc}") from None
    if L.ndim != 2 or W.ndim != 2 or L.shape[1] != W.shape[0]:
        raise MncrlError(f"amari needs L (d x m) and W (m x d), got {L.shape} and {W.shape}")
    d = L.shape[0]
    if W.shape[1] != d:
        raise MncrlError(
            f"amari needs as many estimated latents as true ones, got L W of shape {(d, W.shape[1])}"
        )
    if d == 0:
        raise MncrlError("amari needs at least one latent (L has no rows)")
    if not (isinstance(rtol, int | float | np.floating | np.integer) and 0 <= rtol < 1):
        raise MncrlError(f"rtol must be a number in [0, 1), got {rtol!r}")
    if latent_scale is None:
        norms = np.linalg.norm(L, axis=1)
        s = np.divide(1.0, norms, out=np.zeros(d), where=norms > 0)
    else:
        try:
            s = np.asarray(latent_scale, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise MncrlError(f"latent_scale must be numeric: {exc}") from None
        if s.shape != (d,) or not np.isfinite(s).all() or (s < 0).any():
            raise MncrlError(
                f"latent_scale must hold {d} finite non-negative spreads (one per true latent), "
                f"got {latent_scale!r}"
            )
    return L, W, s


def normalised_mixing(L, W, *, latent_scale=None, rtol: float = AMARI_RTOL):
    """The scale-free composition of the estimates that :func:`amari` scores.

    Returns ``(N, lost_rows, lost_cols)``. With s_i the spread of true latent i
    (``latent_scale``; by default 1 / ||L_i||, i.e. every latent's footprint Z_i L_i in X has
    unit size) and A = diag(s) L, ``N[:, j] = |A W_j| / ||A W_j||``: the magnitude of each
    latent's part of estimate j relative to the estimate's spread (exactly |corr(Z_i, Zhat_j)|
    when the latents are uncorrelated with spreads s). N does not change when a column of W
    (an estimate) or, with the default scales, a row of L (a true latent's unit) is rescaled.

    - ``lost_cols[j]``: estimate j carries no latent: ||A W_j|| <= rtol ||A||_2 ||W_j|| (its
      weights reach the latents with at most ``rtol`` of the gain they could have; W_j = 0
      included; e.g. W_j in the null space of L when m > d). Its column of N is 0. For m = d
      the gain is at least 1 / cond(A), so only a mixing with condition number above 1 / rtol
      can lose an exact estimate.
    - ``lost_rows[i]``: no estimate carries latent i: max_j N_ij <= rtol max N.

    Non-finite L or W give an all-NaN N and nothing lost.
    """
    L, W, s = _mixing_inputs(L, W, latent_scale, rtol)
    d = L.shape[0]
    if not (np.isfinite(L).all() and np.isfinite(W).all()):
        nothing = np.zeros(d, dtype=bool)
        return np.full((d, d), np.nan), nothing, nothing.copy()
    A = s[:, None] * L
    P = np.abs(A @ W)
    col = np.linalg.norm(P, axis=0)
    gain = np.linalg.norm(A, 2) if A.size else 0.0
    lost_cols = col <= rtol * gain * np.linalg.norm(W, axis=0)
    lost_cols |= col == 0
    N = np.divide(P, col, out=np.zeros_like(P), where=~lost_cols)
    lost_rows = N.max(axis=1) <= rtol * N.max()
    return N, lost_rows, lost_cols


def amari(L, W, *, latent_scale=None, rtol: float = AMARI_RTOL) -> float:
    """Amari distance of the estimates' composition from a permutation, in [0, 1].

    L is the true mixing (d x m), W the unmixing (m x d), so Zhat = Z L W for any m >= d. The
    index is computed on N = :func:`normalised_mixing` (|L W| with latent i measured in units
    of spread s_i, by default 1 / ||L_i||, and each estimate scaled to unit norm), so it does not
    change when an estimate (column of W) or, with the default scales, a true latent (row of L)
    is rescaled:
    ``a = [sum_i (sum_j N_ij / max_j N_ij - 1) + sum_j (sum_i N_ij / max_i N_ij - 1)]
    / (2 d (d - 1))``: 0 exactly when L W is a scaled permutation, 1 when every entry of N is
    the same. A lost latent (a row of N whose largest entry is at most ``rtol`` of the largest
    entry of N: no estimate carries it) and a lost estimate (a column of W that reaches the
    latents with at most ``rtol`` of the gain its size allows) count as the worst case, d - 1.
    d = 1: 0, or 1 when lost. NaN when L or W is not finite (e.g. a diverged fit).
    """
    N, lost_rows, lost_cols = normalised_mixing(L, W, latent_scale=latent_scale, rtol=rtol)
    d = N.shape[0]
    if np.isnan(N).any():
        return float("nan")
    if d == 1:
        return float(lost_rows[0] or lost_cols[0])

    def side(A, lost):
        peak = A.max(axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            terms = A.sum(axis=1) / peak - 1.0
        return np.where(lost, d - 1.0, terms).sum()

    return float((side(N, lost_rows) + side(N.T, lost_cols)) / (2.0 * d * (d - 1)))


def matching_from_mixing(L, W) -> np.ndarray:
    """``perm[j]`` = the true latent matched to estimated latent j, from |L W| with every
    column normalised to unit length (Hungarian on the normalised magnitudes)."""
    M = np.abs(np.asarray(L, dtype=np.float64) @ np.asarray(W, dtype=np.float64))
    norms = np.linalg.norm(M, axis=0)
    M = np.divide(M, norms, out=np.zeros_like(M), where=norms > 0)
    return _perm_from(M)


def matching_from_latents(Z, Zhat) -> np.ndarray:
    """``perm[j]`` = the true latent matched to estimated latent j, from |corr(Z, Zhat)|."""
    return _perm_from(abs_correlations(Z, Zhat))


def _perm_from(C: np.ndarray) -> np.ndarray:
    rows, cols = matching(C)
    perm = np.full(C.shape[1], -1, dtype=np.int64)
    perm[cols] = rows
    return perm


def target_f1(true_targets, est_targets, perm=None) -> float:
    """F1 score of estimated intervention targets (K x dhat bool) against true ones (K x d).

    ``perm[j]`` is the true latent that estimated latent j stands for (e.g. from
    :func:`matching_from_mixing`); identity when omitted; -1 = unmatched (its targets count as
    false positives). 1.0 when both are empty.
    """
    T = np.asarray(true_targets, dtype=bool)
    E = np.asarray(est_targets, dtype=bool)
    if T.ndim != 2 or E.ndim != 2 or T.shape[0] != E.shape[0]:
        raise MncrlError(
            f"targets must be (K x d) matrices with the same K, got {T.shape} and {E.shape}"
        )
    perm = np.arange(E.shape[1]) if perm is None else np.asarray(perm, dtype=np.int64)
    if perm.shape != (E.shape[1],) or perm.max(initial=-1) >= T.shape[1]:
        raise MncrlError(
            f"perm must map each of the {E.shape[1]} estimated latents to a true "
            f"latent index < {T.shape[1]}"
        )
    aligned = np.zeros_like(T)
    extra = 0
    for j, i in enumerate(perm):
        if i >= 0:
            aligned[:, i] |= E[:, j]
        else:
            extra += int(E[:, j].sum())
    tp = int((aligned & T).sum())
    n_est = int(aligned.sum()) + extra
    n_true = int(T.sum())
    if n_est == 0 and n_true == 0:
        return 1.0
    return float(2 * tp / (n_est + n_true))


# --------------------------------------------------------------------------------------------
# Correlations from second moments (many estimates, one pass over the rows)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RowMoments:
    """Second moments of the test rows [X, Z], per consecutive chunk of ``chunk`` rows and
    pooled: enough to compute ``mcc`` and ``mcc_paper`` of any linear estimate Zhat = X W
    without touching the rows again (one pass per problem instead of one per estimator).

    ``counts`` (C,), ``means`` (C, m + d) and centred ``scatters`` (C, m + d, m + d) of the
    chunks that :func:`mcc_paper` averages over; ``pooled`` = (n, mean, scatter)
    of all rows (:func:`mcc`).
    """

    m: int
    counts: np.ndarray
    means: np.ndarray
    scatters: np.ndarray
    pooled: tuple


def _scatters(A: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Means (C, p) and centred scatter matrices (C, p, p) of a (C, rows, p) stack."""
    mu = A.mean(axis=1)
    A = A - mu[:, None, :]
    return mu, np.matmul(A.transpose(0, 2, 1), A)


def row_moments(X, Z, chunk: int | None = None) -> RowMoments:
    """:class:`RowMoments` of the rows (X, Z) in their given order."""
    chunk = PAPER_CHUNK if chunk is None else int(chunk)
    XZ = np.concatenate([np.asarray(X, dtype=np.float64), np.asarray(Z, dtype=np.float64)], axis=1)
    N, m = XZ.shape[0], np.asarray(X).shape[1]
    n_chunks = max(1, N // chunk)
    size = chunk if N >= chunk else N
    mus, scat = _scatters(XZ[: n_chunks * size].reshape(n_chunks, size, -1))
    counts = np.full(n_chunks, float(size))
    rest = N - n_chunks * size
    all_n, all_mu, all_S = counts, mus, scat
    if rest:
        mu_r, S_r = _scatters(XZ[n_chunks * size :][None])
        all_n, all_mu, all_S = (
            np.append(counts, rest),
            np.vstack([mus, mu_r]),
            np.concatenate([scat, S_r]),
        )
    mu = (all_n[:, None] * all_mu).sum(axis=0) / all_n.sum()
    dev = all_mu - mu
    S = all_S.sum(axis=0) + np.einsum("c,cp,cq->pq", all_n, dev, dev)
    return RowMoments(
        m=m, counts=counts, means=mus, scatters=scat, pooled=(float(all_n.sum()), mu, S)
    )


def _abs_corr_from_moments(n, mu, S, W, m: int) -> np.ndarray:
    """|corr(Z, X W)| (d x dhat) exactly as :func:`abs_correlations`."""
    Sxx, Sxz, Szz = S[:m, :m], S[:m, m:], S[m:, m:]
    mu_z, mu_h = mu[m:], mu[:m] @ W
    czh = Sxz.T @ W
    vz = np.diag(Szz).copy()
    vh = np.einsum("ij,ik,kj->j", W, Sxx, W)
    denom = np.sqrt(np.outer(vz, np.maximum(vh, 0.0)))
    tiny_z = vz <= (1e-14 * n) * np.maximum(mu_z**2, 1e-300)
    tiny_h = vh <= (1e-14 * n) * np.maximum(mu_h**2, 1e-300)
    with np.errstate(divide="ignore", invalid="ignore"):
        C = np.abs(czh) / denom
    C[tiny_z | (vz == 0)] = 0.0
    C[:, tiny_h | (vh <= 0)] = 0.0
    return np.clip(np.nan_to_num(C, nan=0.0), 0.0, 1.0)


def mcc_from_moments(mom: RowMoments, W) -> dict:
    """``mcc`` (pooled rows) and ``mcc_paper`` (mean over the chunks) of Zhat = X W."""

    def one(C):
        rows, cols = matching(C)
        return float(C[rows, cols].mean())

    W = np.asarray(W, dtype=np.float64)
    n, mu, S = mom.pooled
    chunks = [
        one(_abs_corr_from_moments(c, mu_c, S_c, W, mom.m))
        for c, mu_c, S_c in zip(mom.counts, mom.means, mom.scatters, strict=True)
    ]
    return {
        "mcc": one(_abs_corr_from_moments(n, mu, S, W, mom.m)),
        "mcc_paper": float(np.mean(chunks)),
    }


# --------------------------------------------------------------------------------------------
# Per-latent recovery
# --------------------------------------------------------------------------------------------


def column_terms(
    L, W, *, latent_scale=None, rtol: float = AMARI_RTOL
) -> tuple[np.ndarray, np.ndarray]:
    """For every estimated latent c (column of N = :func:`normalised_mixing`, the same
    normalisation as :func:`amari`): the true latent it is closest to (largest N_jc) and its
    Amari column term sum_i N_ic / max_i N_ic - 1, divided by d - 1 (0 = a pure copy of one
    latent, 1 = equal parts of all; a lost estimate is 1, a non-finite W gives NaN)."""
    N, _, lost_cols = normalised_mixing(L, W, latent_scale=latent_scale, rtol=rtol)
    d = N.shape[0]
    peak = N.max(axis=0)
    best = np.argmax(np.nan_to_num(N, nan=0.0), axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(lost_cols, 1.0, (N.sum(axis=0) / peak - 1.0) / max(d - 1, 1))
    return best, terms


def latent_recovery(L, W, tol: float, *, latent_scale=None, rtol: float = AMARI_RTOL) -> np.ndarray:
    """(d,) bool: latent j is recovered when some estimated latent is a copy of Z_j up to
    scale with Amari column term <= ``tol`` (the per-column part of the Amari distance, so a
    design whose every latent is recovered has Amari distance of order ``tol``). A lost latent
    (see :func:`amari`) is never recovered."""
    best, terms = column_terms(L, W, latent_scale=latent_scale, rtol=rtol)
    _, lost_rows, _ = normalised_mixing(L, W, latent_scale=latent_scale, rtol=rtol)
    out = np.zeros(lost_rows.shape[0], dtype=bool)
    out[best[terms <= tol]] = True
    return out & ~lost_rows


def evaluate(
    Z=None,
    Zhat=None,
    L=None,
    W=None,
    true_targets=None,
    est_targets=None,
    *,
    env=None,
    chunk: int = PAPER_CHUNK,
    spearman: bool = True,
    ancestors=None,
) -> dict[str, float]:
    """Every metric the given inputs allow.

    Z & Zhat -> ``mcc``, ``mcc_paper`` (pooled 5000-row chunks, interleaved by ``env`` when
    given), ``mcc_spearman``; L & W -> ``amari`` (latents measured in their standard
    deviations over all rows of Z when Z is given, else in 1 / ||L_i||); true & estimated targets -> ``target_f1``
    (latents aligned by |L W| when L and W are given, else by |corr(Z, Zhat)|); Z & Zhat &
    the true ``ancestors`` (d x d bool) -> ``mcc_ancestral``.
    """
    out: dict[str, float] = {}
    have_latents = Z is not None and Zhat is not None
    have_mixing = L is not None and W is not None
    if have_latents:
        out["mcc"] = mcc(Z, Zhat)
        out["mcc_paper"] = mcc_paper(Z, Zhat, chunk=chunk, env=env)
        if spearman:
            out["mcc_spearman"] = mcc_spearman(Z, Zhat)
        if ancestors is not None:
            out["mcc_ancestral"] = mcc_ancestral(Z, Zhat, ancestors)
    if have_mixing:
        # the latents' own spreads when Z is known: then the value does not depend on the
        # units of X either (L's row norms do)
        scale = None if Z is None else np.asarray(Z, dtype=np.float64).std(axis=0)
        out["amari"] = amari(L, W, latent_scale=scale)
    if true_targets is not None and est_targets is not None:
        if have_mixing:
            perm = matching_from_mixing(L, W)
        elif have_latents:
            perm = matching_from_latents(Z, Zhat)
        else:
            perm = None
        out["target_f1"] = target_f1(true_targets, est_targets, perm)
    return out


__all__ = [
    "AMARI_RTOL",
    "PAPER_CHUNK",
    "RowMoments",
    "abs_correlations",
    "amari",
    "ancestor_leak",
    "ancestral_correlations",
    "column_terms",
    "evaluate",
    "interleave_order",
    "latent_recovery",
    "matching",
    "matching_from_latents",
    "matching_from_mixing",
    "joint_covariance",
    "mcc",
    "mcc_ancestral",
    "mcc_from_moments",
    "mcc_paper",
    "mcc_spearman",
    "normalised_mixing",
    "row_moments",
    "target_f1",
]
