"""A gridded field (time x grid cells) reduced to its signal subspace, and maps of latents on it.

Climate fields have far more grid cells C than latent modes d. Every estimator of the toolkit
works on the field's coordinates in a p-dimensional *signal subspace* (p >= d): the leading
empirical orthogonal functions (EOFs) of the area-weighted anomalies, the standard first step of
climate-mode analysis:

1. **anomalies**: each cell's time mean is subtracted;
2. **area weights**: cell c is multiplied by ``sqrt(cos(latitude_c))`` so that a cell's share of
   the variance is proportional to its area (:func:`coslat_weights`);
3. **reduction**: the truncated SVD X_w = U S V^T (T x C) keeps p components (in memory:
   from the eigenvectors of the smaller of X_w^T X_w and X_w X_w^T); the *scores*
   U S (T x p) are the data every estimator sees, the *EOFs* V^T (p x C, orthonormal rows) span
   the subspace. A numpy array is decomposed exactly; a dask array (a field larger than memory,
   :mod:`mncrl.field_io`) by a randomized SVD that streams its chunks, one pass at a time.

An estimator's unmixing W (p x d) gives the latent time series Zhat = scores W. The spatial
pattern of latent j (:func:`regression_patterns`) is the multiple-regression map of the
field on Zhat: B = (Zhat^T Zhat)^(-1) Zhat^T X (d x C, in the field's units, weights undone).
When X = Z L + noise and Zhat recovers Z up to permutation and scale, B recovers the rows of L
up to the same permutation and scale, which is what :func:`pattern_correlation` scores.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mncrl.errors import MncrlError


@dataclass(frozen=True)
class Reduction:
    """A field's signal subspace: ``scores`` (T x p), ``eofs`` (p x C, orthonormal rows, in the
    weighted anomaly space), ``singular_values`` (p), ``mean`` (C, the time mean subtracted),
    ``weights`` (C, the area weights applied) and ``explained`` (share of the weighted anomaly
    variance in the p components)."""

    scores: np.ndarray
    eofs: np.ndarray
    singular_values: np.ndarray
    mean: np.ndarray
    weights: np.ndarray
    explained: float

    @property
    def p(self) -> int:
        return self.scores.shape[1]


def coslat_weights(latitude) -> np.ndarray:
    """sqrt(cos(latitude)) per cell (degrees), exactly 0 at the poles; MncrlError outside
    [-90, 90]."""
    lat = np.asarray(latitude, dtype=np.float64)
    if not np.isfinite(lat).all() or np.abs(lat).max(initial=0.0) > 90.0:
        raise MncrlError("latitudes must be finite degrees in [-90, 90]")
    cos = np.where(np.abs(lat) == 90.0, 0.0, np.cos(np.deg2rad(lat)))  # cos(pi/2) is 6e-17
    return np.sqrt(np.clip(cos, 0.0, None))


def _is_dask(X) -> bool:
    return type(X).__module__.startswith("dask")


def signal_subspace(X, p: int, *, weights=None, seed: int = 0, power_iter: int = 2) -> Reduction:
    """The p-dimensional signal subspace of the field X (T x C, numpy or dask; no NaN).

    ``weights`` (C) multiply the anomalies (default 1). A dask array is decomposed by a
    randomized SVD (k = p + 10 random directions from ``seed``, ``max(power_iter, 1)`` power
    iterations): 1 + 2 * power_iter passes over the data, each its own computation, so only
    the chunks being multiplied are in memory (dask's threaded scheduler).
    """
    if X.ndim != 2:
        raise MncrlError(f"a field must be 2-d (time x cells), got shape {X.shape}")
    T, C = X.shape
    p = int(p)
    if not 1 <= p <= min(T - 1, C):
        raise MncrlError(
            f"the signal subspace needs 1 <= p <= min(T - 1, C) = {min(T - 1, C)}, got {p}"
        )
    w = np.ones(C) if weights is None else np.asarray(weights, dtype=np.float64)
    if w.shape != (C,):
        raise MncrlError(f"weights must have one value per cell ({C}), got shape {w.shape}")
    if _is_dask(X):
        return _dask_subspace(X, p, w, seed, power_iter)
    Xa = np.asarray(X, dtype=np.float64)
    if not np.isfinite(Xa).all():
        raise MncrlError("the field has missing (NaN) or infinite values: mask those cells first")
    mean = Xa.mean(axis=0)
    Xw = (Xa - mean) * w
    scores, eofs, s = _leading(Xw, p)
    return _reduction(scores, eofs, s, mean, w, float(np.square(Xw).sum()))


def _leading(Xw: np.ndarray, p: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(scores U S, EOFs V^T, singular values S) of the p leading components of Xw, from the
    eigenvectors of its smaller Gram matrix (several times faster than a full SVD)."""
    from scipy.linalg import eigh

    T, C = Xw.shape
    small = C if C <= T else T
    G = Xw.T @ Xw if C <= T else Xw @ Xw.T
    lam, vec = eigh(G, subset_by_index=[small - p, small - 1])
    lam, vec = lam[::-1], vec[:, ::-1]
    s = np.sqrt(np.clip(lam, 0.0, None))
    if C <= T:
        return Xw @ vec, vec.T, s
    with np.errstate(divide="ignore", invalid="ignore"):
        eofs = np.where(s[:, None] > 0, (vec.T @ Xw) / s[:, None], 0.0)
    return vec * s, eofs, s


OVERSAMPLE = 10  # extra random directions of the dask sketch (Halko et al. 2011)


def _dask_subspace(X, p: int, w: np.ndarray, seed: int, power_iter: int) -> Reduction:
    """Randomized SVD of the weighted anomalies of a dask array, one pass over X at a time.

    Every pass is its own ``dask.compute``, so only the chunks in flight are in memory (one
    graph for all passes would keep each chunk alive until its last pass needs it). The
    anomalies are never formed: X is shifted by the mean of its first chunk (so that float32
    keeps the anomalies' precision) and the exact mean is put back by linearity. Pass 1 gives
    the column sums, the sums of squares and a sketch Omega Xw of the row space (Omega:
    k x T Gaussian from ``seed``); each of the ``max(power_iter, 1)`` rounds is one pass for
    Xw Q_c and one for Q^T Xw. float32 data are multiplied in float32 (the corrections, QR
    and SVD in float64)."""
    import dask

    from mncrl.threads import single_threaded_blas

    T, C = X.shape
    k = min(p + OVERSAMPLE, T, C)
    dt = np.float32 if X.dtype == np.float32 else np.float64
    rng = np.random.default_rng(int(seed))
    nan_error = "the field has missing (NaN) or infinite values: mask those cells first"
    with single_threaded_blas(), dask.config.set(scheduler="threads"):
        shift = np.asarray(X[: X.chunks[0][0]].mean(axis=0).compute(), dtype=np.float64)
        if not np.isfinite(shift).all():
            raise MncrlError(nan_error)
        Xs = X.astype(dt) - shift.astype(dt)
        omega = rng.standard_normal((k, T))
        colsum, sumsq, sketch = dask.compute(
            Xs.sum(axis=0, dtype=np.float64),
            (Xs * Xs).sum(axis=0, dtype=np.float64),
            _left(omega, Xs, dt),
        )
        if not (np.isfinite(colsum).all() and np.isfinite(sumsq).all()):
            raise MncrlError(nan_error)
        delta = np.asarray(colsum, dtype=np.float64) / T  # mean - shift
        ones = np.ones(T)

        def left(M, MX):  # M Xw from M Xs, M (r x T)
            return (np.asarray(MX, dtype=np.float64) - np.outer(M @ ones, delta)) * w

        def right(M):  # Xw M, M (C x r)
            wM = w[:, None] * M
            return np.asarray(_right(Xs, wM, dt).compute(), dtype=np.float64) - delta @ wM

        B = left(omega, sketch)
        for _ in range(max(int(power_iter), 1)):
            Q, _r = np.linalg.qr(right(np.linalg.qr(B.T)[0]))
            B = left(Q.T, _left(Q.T, Xs, dt).compute())
    Ub, s, Vt = np.linalg.svd(B, full_matrices=False)
    total = float(np.sum(np.square(w) * (np.asarray(sumsq) - T * np.square(delta))))
    return _reduction((Q @ Ub[:, :p]) * s[:p], Vt[:p], s[:p], shift + delta, w, total)


def _left(M: np.ndarray, X, dt):
    """M X (r x C) for a numpy M (r x T) and a dask X (T x C), lazily."""
    import dask.array as da

    Md = da.from_array(np.asarray(M, dtype=dt), chunks=((M.shape[0],), X.chunks[0]))
    return da.dot(Md, X)


def _right(X, M: np.ndarray, dt):
    """X M (T x r) for a dask X (T x C) and a numpy M (C x r), lazily."""
    import dask.array as da

    Md = da.from_array(np.asarray(M, dtype=dt), chunks=(X.chunks[1], (M.shape[1],)))
    return da.dot(X, Md)


def _reduction(scores, eofs, s, mean, w, total) -> Reduction:
    if total <= 0 or not np.isfinite(total):
        raise MncrlError("the field has no variance (every cell constant in time)")
    # a deterministic sign: each EOF's largest-magnitude entry is positive
    sign = np.sign(eofs[np.arange(eofs.shape[0]), np.abs(eofs).argmax(axis=1)])
    sign[sign == 0] = 1.0
    return Reduction(
        scores=scores * sign,
        eofs=eofs * sign[:, None],
        singular_values=s,
        mean=mean,
        weights=w,
        explained=float(np.square(s).sum() / total),
    )


def regression_patterns(Zhat: np.ndarray, red: Reduction) -> np.ndarray:
    """The regression maps (d x C, field units) of the field on the latents Zhat (T x d):
    B = (Zhat_c^T Zhat_c)^(-1) Zhat_c^T X with Zhat_c centred, computed in the subspace (the
    part of the field outside it is orthogonal to Zhat when Zhat = scores W). Cells of zero
    weight (the poles) get NaN."""
    Zc = Zhat - Zhat.mean(axis=0)
    G = Zc.T @ Zc
    if np.linalg.matrix_rank(G) < G.shape[0]:
        raise MncrlError("the latents are collinear: their regression maps are not defined")
    coef = np.linalg.solve(G, Zc.T @ (red.scores - red.scores.mean(axis=0)))  # d x p
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(red.weights > 0, (coef @ red.eofs) / red.weights, np.nan)


def pattern_correlation(true: np.ndarray, estimate: np.ndarray, perm=None) -> np.ndarray:
    """|centred spatial correlation| of each true pattern (row of ``true``, d x C) with its
    matched estimate (row ``perm[i]`` of ``estimate``; default the matching that maximises the
    total, Hungarian); cells that are NaN in either are ignored."""
    from mncrl.metrics import matching

    ok = np.isfinite(true).all(axis=0) & np.isfinite(estimate).all(axis=0)
    A = true[:, ok] - true[:, ok].mean(axis=1, keepdims=True)
    B = estimate[:, ok] - estimate[:, ok].mean(axis=1, keepdims=True)
    na, nb = np.linalg.norm(A, axis=1), np.linalg.norm(B, axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        C = np.abs(A @ B.T) / np.outer(na, nb)
    C = np.nan_to_num(C)
    if perm is None:
        rows, cols = matching(C)
        perm = np.empty(C.shape[0], dtype=int)
        perm[rows] = cols
    return C[np.arange(C.shape[0]), np.asarray(perm)]
