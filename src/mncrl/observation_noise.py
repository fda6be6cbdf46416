"""Heteroscedastic observation noise: X = Z L + E with E ~ (0, diag(psi)) in every environment,
psi (one unknown variance per observed coordinate) shared by all environments.

Why it matters. The closed-form and variance-sparsity estimators read the zero-variance
directions of the environment covariances S_k = L^T C_k L + diag(psi) (C_k the latents'
covariance in environment k). With isotropic noise (psi = s 1) a zero-variance direction keeps
variance s, the same in every direction, so the floor is still recognisable. With a different
variance per sensor it is not: w^T S_k w = w^T diag(psi) w depends on w, and the directions of
smallest variance are no longer the unmixing columns. Knowing psi fixes it: in coordinates
X diag(psi)^(-1/2) the noise is isotropic again (variance 1).

What is identifiable.

- m > d (more sensors than latents): psi is estimated by *multi-group factor analysis*
  (:func:`factor_analysis`): one loading matrix and one psi for all environments, a free latent
  covariance C_k per environment, maximum likelihood on the K sample covariances. One
  covariance alone identifies psi only when (m - d)^2 >= m + d (the Ledermann bound: not for
  7 sensors and 5 latents); K environments that change C_k add K d (d + 1) / 2 - d (d + 1) / 2
  equations for the same unknowns, so psi is identified when the environments differ enough
  (every estimated variance is reported, with the coordinates that hit the lower bound).
- m = d: S_k - diag(psi) is an arbitrary positive-definite matrix for any small enough psi, so
  no covariance-based method separates noise from signal; only the interventions do (a
  do-intervention makes S_k - diag(psi) singular). :func:`from_zero_variance` uses that: given
  unmixing columns and the environments where each has zero signal variance, every pair
  (environment, column) gives one linear equation w^T S_k w = sum_i w_i^2 psi_i, solved by
  non-negative least squares.

Everything here works on covariances (K x m x m), never on rows, and is invariant to the
units of each coordinate (it runs on the pooled covariance's correlation scale).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mncrl.errors import MncrlError

# L-BFGS stops when the log-likelihood per row improves by less than FTOL (relative) or the
# gradient in log noise variances is below GTOL; the iteration cap makes a non-converged search
# a reported diagnostic. Relative noise variances are searched in [PSI_FLOOR, 1].
FTOL = 1e-10
GTOL = 1e-6
MAX_ITER = 1000
# The likelihood is flat in the noise of a sensor that reads a single latent (its noise and
# that latent's variance trade off in every environment); a do-intervention pins it at the
# largest value the data allow (the latent's variance is 0 where it is clamped). A tilt of
# TILT x sum(log psi) towards larger noise picks that boundary; where psi is identified it
# moves the estimate by about TILT / curvature (< 0.1% here).
TILT = 1e-3
# Noise variances are kept >= this fraction of each coordinate's pooled variance (a Heywood
# case, variance 0, would make the rescaling singular); hitting it is reported.
PSI_FLOOR = 1e-10


@dataclass(frozen=True)
class NoiseEstimate:
    """Estimated per-coordinate noise variances ``psi`` (m,) in X's units.

    ``relative`` = psi / pooled within-environment variance of each coordinate (the share of a
    sensor's spread that is noise), ``at_floor`` the coordinates whose estimate hit the lower
    bound (psi = 0 is a boundary solution: that coordinate looks noiseless), ``method`` how it
    was estimated, ``iterations`` and ``converged`` the search's (or the refinement rounds'),
    ``loglik`` the final Gaussian log-likelihood per row (factor analysis only).
    """

    psi: np.ndarray
    relative: np.ndarray
    at_floor: np.ndarray
    method: str
    iterations: int
    converged: bool
    loglik: float | None = None

    def to_info(self) -> dict:
        return {
            "method": self.method,
            "psi": self.psi.tolist(),
            "relative": self.relative.tolist(),
            "at_floor": np.flatnonzero(self.at_floor).tolist(),
            "iterations": self.iterations,
            "converged": self.converged,
            "loglik_per_row": self.loglik,
        }


def _check(covs: np.ndarray, counts: np.ndarray, d: int) -> tuple[np.ndarray, np.ndarray]:
    covs = np.asarray(covs, dtype=np.float64)
    counts = np.asarray(counts, dtype=np.float64)
    if covs.ndim != 3 or covs.shape[1] != covs.shape[2] or counts.shape != covs.shape[:1]:
        raise MncrlError(
            f"observation noise needs K covariances (K x m x m) and K counts, got "
            f"{covs.shape} and {counts.shape}"
        )
    if not 1 <= d < covs.shape[1]:
        raise MncrlError(
            f"factor analysis needs 1 <= latent_dim < m (more observed coordinates than "
            f"latents), got latent_dim {d} and m {covs.shape[1]}"
        )
    if not np.isfinite(covs).all():
        raise MncrlError("observation noise: the covariances contain NaN/Inf")
    return covs, counts


def _profile_covariances(S, A, psi):
    """The maximum-likelihood latent covariances C_k for loadings A and noise psi (closed
    form): with A / sqrt(psi) = U R (thin QR), R C_k R^T + I is U^T S~_k U with its eigenvalues
    below 1 raised to 1 (S~_k = S_k scaled by 1 / sqrt(psi))."""
    inv_sd = 1.0 / np.sqrt(psi)
    U, R = np.linalg.qr(A * inv_sd[:, None])
    M = U.T @ (S * np.outer(inv_sd, inv_sd)) @ U
    lam, V = np.linalg.eigh(M)
    inner = (V * (np.maximum(lam, 1.0) - 1.0)[:, None, :]) @ V.transpose(0, 2, 1)
    Rinv = np.linalg.inv(R)
    return Rinv @ inner @ Rinv.T


def _loadings(P, psi, d: int) -> np.ndarray:
    """Loadings spanning the signal subspace for noise ``psi``: the top-d principal subspace
    of the pooled covariance in noise-scaled coordinates (exact at the true psi)."""
    sd = np.sqrt(psi)
    evecs = np.linalg.eigh(P / np.outer(sd, sd))[1]
    return evecs[:, -d:] * sd[:, None]


def _neg_loglik(log_psi, S, w, P, d: int, tilt: float = 0.0) -> float:
    """Negative Gaussian log-likelihood per row (constants dropped) of the K covariances at
    noise exp(log_psi), with the loadings and latent covariances profiled out, minus
    ``tilt`` x sum(log_psi) (see TILT)."""
    psi = np.exp(log_psi)
    A = _loadings(P, psi, d)
    Sigma = A @ _profile_covariances(S, A, psi) @ A.T + np.diag(psi)
    sign, logdet = np.linalg.slogdet(Sigma)
    if np.any(sign <= 0):
        return np.inf
    trace = np.trace(np.linalg.solve(Sigma, S), axis1=1, axis2=2)
    return float(0.5 * np.sum(w * (logdet + trace)) - tilt * np.sum(log_psi))


def factor_analysis(
    covs, counts, d: int, *, tilt: float = TILT, max_iter: int = MAX_ITER
) -> NoiseEstimate:
    """Multi-group factor analysis: shared loadings and noise variances, a free latent
    covariance per environment, by maximum likelihood over the noise variances (see the
    module docstring). For given noise the signal subspace is the noise-scaled principal
    subspace of the pooled covariance and the latent covariances have a closed form, so the
    search (L-BFGS) runs over the m log noise variances only.

    ``tilt`` (default TILT, made for do-designs) favours the largest noise the data allow
    where the likelihood is flat; 0 gives the plain maximum-likelihood estimate.

    Runs on the correlation scale of the pooled covariance (unit-free) and starts from the
    classical upper bound 1 - (squared multiple correlation) of each coordinate, which keeps
    the search away from the spurious zero-noise (Heywood) optima. Deterministic.
    """
    from scipy.optimize import minimize

    covs, counts = _check(covs, counts, d)
    w = counts / counts.sum()
    pooled = np.einsum("k,kij->ij", w, covs)
    scale = np.sqrt(np.diag(pooled))
    if not np.all(scale > 0):
        raise MncrlError(f"observation noise: coordinate {int(np.argmin(scale))} of X never varies")
    S = covs / np.outer(scale, scale)
    P = pooled / np.outer(scale, scale)
    psi0 = np.clip(1.0 / np.diag(np.linalg.pinv(P, hermitian=True)), 1e-6, 1.0)
    res = minimize(
        _neg_loglik,
        np.log(psi0),
        args=(S, w, P, d, tilt),
        jac="3-point",
        method="L-BFGS-B",
        bounds=[(np.log(PSI_FLOOR), 0.0)] * len(psi0),
        options={"maxiter": max_iter, "ftol": FTOL, "gtol": GTOL},
    )
    psi = np.exp(res.x)
    return NoiseEstimate(
        psi=psi * scale**2,
        relative=psi,
        at_floor=psi <= PSI_FLOOR * (1 + 1e-6),
        method="multi-group factor analysis",
        iterations=int(res.nit),
        converged=bool(res.success),
        loglik=-float(res.fun),
    )


def from_zero_variance(covs, W, zero) -> np.ndarray:
    """Noise variances psi (m,) from unmixing columns with zero *signal* variance.

    ``W`` (m x d) are unmixing columns and ``zero`` (K x d bool) says in which environments
    column j has no signal variance (e.g. the estimated targets of a do-design). Any two such
    columns i, j of environment k (i = j included) carry noise only:
    w_i^T S_k w_j = sum_a W_ai W_aj psi_a. All these equations are solved together by
    non-negative least squares, each scaled by sqrt(w_i^T S_k w_i w_j^T S_k w_j), for psi
    relative to each coordinate's mean variance (unit-free). MncrlError when the equations
    cannot determine psi (fewer than m of them, or rank-deficient).
    """
    from scipy.optimize import nnls

    covs = np.asarray(covs, dtype=np.float64)
    W = np.asarray(W, dtype=np.float64)
    zero = np.asarray(zero, dtype=bool)
    m = W.shape[0]
    rows, rhs, scale = [], [], []
    for k in range(len(covs)):
        cols = np.flatnonzero(zero[k])
        if cols.size == 0:
            continue
        Wk = W[:, cols]
        G = Wk.T @ covs[k] @ Wk
        i, j = np.triu_indices(cols.size)
        rows.append((Wk[:, i] * Wk[:, j]).T)
        rhs.append(G[i, j])
        diag = np.abs(np.diag(G))
        scale.append(np.sqrt(diag[i] * diag[j]))
    design = np.concatenate(rows) if rows else np.zeros((0, m))
    var = np.maximum(np.einsum("kii->i", covs) / len(covs), np.finfo(float).tiny)
    design = design * var  # unknowns: psi relative to each coordinate's variance
    if design.shape[0] < m or np.linalg.matrix_rank(design) < m:
        raise MncrlError(
            f"observation noise: the {design.shape[0]} zero-variance equations cannot "
            f"determine {m} noise variances"
        )
    s = np.maximum(np.concatenate(scale), np.finfo(float).tiny)
    relative, _ = nnls(design / s[:, None], np.concatenate(rhs) / s)
    return relative * var


def zero_variance_estimate(covs, counts, W, zero, *, rounds: int, converged: bool):
    """:func:`from_zero_variance` as a :class:`NoiseEstimate` (variances kept >= PSI_FLOOR of
    each coordinate's pooled within-environment variance)."""
    covs = np.asarray(covs, dtype=np.float64)
    w = np.asarray(counts, dtype=np.float64)
    var = np.einsum("k,kii->i", w / w.sum(), covs)
    relative = np.maximum(from_zero_variance(covs, W, zero) / var, PSI_FLOOR)
    return NoiseEstimate(
        psi=relative * var,
        relative=relative,
        at_floor=relative <= PSI_FLOOR * (1 + 1e-6),
        method="zero-variance equations",
        iterations=rounds,
        converged=converged,
    )


def scaled_signal_basis(pooled, psi, d: int) -> np.ndarray:
    """m x d basis B of the signal subspace in noise-scaled coordinates: X @ B has isotropic
    unit noise and B^T (pooled - diag(psi)) B carries the signal (the top-d principal
    subspace of diag(psi)^(-1/2) pooled diag(psi)^(-1/2))."""
    inv_sd = 1.0 / np.sqrt(np.asarray(psi, dtype=np.float64))
    evals, evecs = np.linalg.eigh(pooled * np.outer(inv_sd, inv_sd))
    return inv_sd[:, None] * evecs[:, ::-1][:, :d]


# Noise is "present" when the pooled covariance's m - d smallest eigenvalues on the correlation
# scale average above this: noise sd above ~3e-8 of a coordinate's spread, so float32 rounding
# of data with large offsets (e.g. raw sensor readings) counts as the per-coordinate noise it
# is; float64 rounding stays below.
NOISE_RTOL = 1e-15


def noise_detected(pooled, d: int) -> bool:
    """Whether a pooled covariance (m x m, m > d) carries variance beyond rank d: the mean of
    its m - d smallest eigenvalues on the correlation scale exceeds NOISE_RTOL."""
    pooled = np.asarray(pooled, dtype=np.float64)
    sd = np.sqrt(np.diag(pooled))
    sd = np.where(sd > 0, sd, 1.0)
    evals = np.linalg.eigvalsh(pooled / np.outer(sd, sd))
    return bool(pooled.shape[0] > d and np.mean(evals[: pooled.shape[0] - d]) > NOISE_RTOL)


@dataclass(frozen=True)
class Denoised:
    """Signal-only second moments: ``covs`` (K x d x d) are the covariances of X @ ``transform``
    (m x d) with the estimated noise removed, whitened (their pooled covariance is the
    identity); ``noise`` the estimate used."""

    transform: np.ndarray
    covs: np.ndarray
    noise: NoiseEstimate


def denoise(covs, counts, d: int, *, floor_rtol: float = 1e-12) -> Denoised:
    """Per-coordinate noise estimated (:func:`factor_analysis`) and removed: S_k - diag(psi)
    in the noise-scaled signal subspace, whitened by its pooled covariance (eigenvalues floored
    at ``floor_rtol`` of the largest). For m > d."""
    covs, counts = _check(covs, counts, d)
    noise = factor_analysis(covs, counts, d)
    w = counts / counts.sum()
    pooled = np.einsum("k,kij->ij", w, covs)
    B = scaled_signal_basis(pooled, noise.psi, d)
    signal = B.T @ (covs - np.diag(noise.psi)) @ B
    evals, evecs = np.linalg.eigh(np.einsum("k,kij->ij", w, signal))
    evals = np.maximum(evals, floor_rtol * evals[-1])
    root = (evecs / np.sqrt(evals)) @ evecs.T
    white = root @ signal @ root
    return Denoised(B @ root, 0.5 * (white + white.transpose(0, 2, 1)), noise)


# signal_dimension: at most this many observed coordinates (one factor analysis per candidate)
MAX_DIMENSION_SEARCH = 64
# ... and the discarded eigenvalues of a consistent candidate stay below this multiple of the
# Marchenko-Pastur edge of pure unit noise
EDGE_MARGIN = 1.2


def signal_dimension(covs, counts) -> int | None:
    """The number of latents d < m behind per-coordinate noise, or None (no such d).

    For d = 1, 2, ... the noise is estimated (:func:`factor_analysis`) and the covariances
    scaled by it; d is consistent when the pooled covariance's m - d smallest eigenvalues are
    pure noise, below (1 + sqrt((m - d) / N))^2 x EDGE_MARGIN (N rows in all), and no
    environment has less variance than the noise in any direction, (1 - sqrt(m / n_k))^2 /
    EDGE_MARGIN (a too small d makes the noise absorb latents, e.g. one read by a single
    sensor, and then overshoots the environments where that latent is clamped). The smallest
    consistent d is returned (bisection: consistency is monotone in d); None when none is (the noise does not stand apart from the
    signal, or there are more than MAX_DIMENSION_SEARCH coordinates)."""
    covs = np.asarray(covs, dtype=np.float64)
    counts = np.asarray(counts, dtype=np.float64)
    m = covs.shape[1]
    if not 2 <= m <= MAX_DIMENSION_SEARCH:
        return None
    pooled = np.einsum("k,kij->ij", counts / counts.sum(), covs)
    lower = (1.0 - np.sqrt(min(m / counts.min(), 1.0))) ** 2 / EDGE_MARGIN

    def consistent(d: int) -> bool:
        psi = factor_analysis(covs, counts, d).psi
        scale = 1.0 / np.outer(np.sqrt(psi), np.sqrt(psi))
        evals = np.linalg.eigvalsh(pooled * scale)
        edge = (1.0 + np.sqrt((m - d) / counts.sum())) ** 2 * EDGE_MARGIN
        env_min = np.linalg.eigvalsh(covs * scale)[:, 0]
        return bool(evals[m - d - 1] <= edge and np.all(env_min >= lower))

    # more latents never fit worse: if m - 1 is not consistent no d is (one fit for the
    # common case of as many latents as coordinates); else bisect for the smallest
    if not consistent(m - 1):
        return None
    good, bad = m - 1, 0
    while good - bad > 1:
        mid = (good + bad) // 2
        good, bad = (mid, bad) if consistent(mid) else (good, mid)
    return good
