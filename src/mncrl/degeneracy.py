"""Degenerate-fit detection: a fitted W that must not be handed back as if it were an answer.

:func:`diagnose` looks at the fitted unmixing W (m x d) together with the per-environment
covariances of X (:func:`env_moments`) and runs three checks, each scale-free (unchanged when a
column of W or a column of X is multiplied by a positive factor):

(a) **collinear** -- the recovered latents Zhat = X W are nearly linearly dependent: the
    condition number of their correlation matrix (pooled within-environment covariance of
    Zhat, normalised to unit diagonal) exceeds :data:`COLLINEAR_COND` = 2e3. Two latents with
    |corr| = r give a condition number of at least (1 + r) / (1 - r), so it fires for any
    pair with |corr| > 0.999 and for any larger group where one latent is almost a
    combination of the others. A correct fit reproduces the true latents' correlation matrix,
    whose condition number is 1 in the paper's leave-one-out do-design and at most 6e2 in
    every simulated scenario measured (d = 20 atomic do-design; <= 1.5e2 for d <= 10); the
    degenerate sparse-variance fits on stochastic, soft and random do-data measured 8e3 - 1e12.
(b) **collapsed** -- a recovered latent that carries (almost) none of the variance of the
    features it combines: var(X w_j) / (w_j' D w_j) < :data:`COLLAPSE_RTOL` = 1e-6, where D
    is the diagonal of the pooled within-environment covariance of X (the variance of the
    combination divided by what it would be if the features were uncorrelated). 1e-6 is the
    relative tolerance with which :func:`mncrl.environments.estimate_latent_dim` counts a
    direction of X as numerically zero: Zhat_j is then at the level of rounding and
    observation noise, e.g. w_j in the null space of noiseless data with m > d. The true
    unmixings measured >= 0.1 under the paper's mixing and ~1 / cond(L)^2 under Gaussian
    mixings of condition number cond(L) (5.7e-6 at 1e3), so it stays silent up to mixings of
    condition ~1e3 (beyond, the latent-dimension estimate already drops such directions).
(c) **no null direction** (estimators that assume do-interventions: ``sparse-variance``,
    ``subspace``) -- with X's columns standardised, in coordinates where the pooled
    within-environment covariance of its top-d principal subspace is the identity, every environment's covariance has its
    smallest eigenvalue above :data:`DO_NULL_RTOL` = 0.02, i.e. no environment has a
    direction with less than 2 % of its pooled variance (14 % in standard deviation). A
    do-intervention makes every direction w with L w supported on the intervened set exactly
    constant, so an intervening environment has a zero eigenvalue, lifted by observation
    noise to the noise-to-signal ratio: measured <= 0.008 with 1 % per-sensor noise (sd 1 %
    of each column's spread; d = 5 - 10), 0.01 - 0.07 with 3 %, 0.1 - 0.4 with 10 %.
    Stochastic and soft interventions keep the intervened latents random: the smallest value
    over the environments measured >= 0.064 for d <= 6 (10 seeds each of leave-one-out,
    separating, random and atomic designs), but only 0.012 - 0.05 for d = 10, where this
    check can stay silent. 0.02 sits between the two for d <= 6 (margins 2.5x and 3x).
    Without any near-zero direction the do-design estimators have nothing to find.

The :class:`Diagnosis` records every number (also when nothing fires), says which checks
fired and renders one message line. Pure functions; numpy only.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from mncrl.threads import single_threaded_blas

COLLINEAR_COND = 2e3
COLLAPSE_RTOL = 1e-6
DO_NULL_RTOL = 2e-2
# Eigenvalues of the pooled covariance below this fraction of the largest are numerically zero
# (the principal subspace used by check (c) must not include such directions).
RANK_RTOL = 1e-12
DO_DESIGN_ESTIMATORS = ("sparse-variance", "subspace")
_CHUNK = 1 << 16


@dataclass(frozen=True)
class Moments:
    """Per-environment centred covariances ``covs`` (K x m x m, denominator n_k - 1), means
    ``means`` (K x m) and row counts ``counts`` (K,), float64."""

    covs: np.ndarray
    means: np.ndarray
    counts: np.ndarray

    def pooled(self) -> np.ndarray:
        """Pooled within-environment covariance (weights proportional to the row counts)."""
        w = self.counts / self.counts.sum()
        return np.einsum("k,kij->ij", w, self.covs)

    def total(self) -> np.ndarray:
        """Covariance of all rows pooled (within- plus between-environment scatter)."""
        n = self.counts.sum()
        mu = self.counts @ self.means / n
        dev = self.means - mu
        scatter = np.einsum("k,ki,kj->ij", self.counts.astype(np.float64), dev, dev)
        within = np.einsum("k,kij->ij", self.counts - 1.0, self.covs)
        return (within + scatter) / max(n - 1, 1)


def env_moments(envs) -> Moments:
    """Covariances, means and counts of per-environment (n_k x m) blocks, in float64 row
    chunks (two passes: the mean first, then the centred Gram matrix; no full-size copy)."""
    covs, means, counts = [], [], []
    with single_threaded_blas():
        for X in envs:
            X = np.asarray(X)
            n = X.shape[0]
            mu = np.zeros(X.shape[1])
            for s in range(0, n, _CHUNK):
                mu += X[s : s + _CHUNK].sum(axis=0, dtype=np.float64)
            mu /= n
            gram = np.zeros((X.shape[1],) * 2)
            for s in range(0, n, _CHUNK):
                c = X[s : s + _CHUNK].astype(np.float64) - mu
                gram += c.T @ c
            covs.append(gram / max(n - 1, 1))
            means.append(mu)
            counts.append(n)
    return Moments(np.stack(covs), np.stack(means), np.asarray(counts, dtype=np.int64))


@dataclass(frozen=True)
class Diagnosis:
    """What :func:`diagnose` measured; ``degenerate`` when any check fired.

    ``condition`` is the condition number of corr(Zhat) over the latents that did not collapse
    (inf when singular), ``max_corr`` / ``max_corr_pair`` its largest off-diagonal entry,
    ``collinear_latents`` the latents that carry the near-null combination (|weight| > 0.2 in
    the eigenvector of the smallest eigenvalue). ``variance_ratio[j]`` is check (b)'s ratio,
    ``collapsed`` the latents below the threshold. ``env_min_eig[k]`` is environment k's
    smallest eigenvalue in pooled-whitened coordinates (check (c)); ``do_design`` says whether
    check (c) applies.
    """

    condition: float
    max_corr: float
    max_corr_pair: tuple[int, int] | None
    collinear_latents: tuple[int, ...]
    null_dims: int
    variance_ratio: tuple[float, ...]
    collapsed: tuple[int, ...]
    env_min_eig: tuple[float, ...]
    do_design: bool
    thresholds: dict = field(
        default_factory=lambda: {
            "collinear_cond": COLLINEAR_COND,
            "collapse_rtol": COLLAPSE_RTOL,
            "do_null_rtol": DO_NULL_RTOL,
        }
    )

    @property
    def collinear(self) -> bool:
        return not self.condition <= self.thresholds["collinear_cond"]

    @property
    def no_null_direction(self) -> bool:
        return (
            self.do_design
            and len(self.env_min_eig) > 0
            and min(self.env_min_eig) > self.thresholds["do_null_rtol"]
        )

    @property
    def fired(self) -> list[str]:
        """Names of the checks that fired: ``collinear``, ``collapsed``, ``no_null_direction``."""
        out = []
        if self.collinear:
            out.append("collinear")
        if self.collapsed:
            out.append("collapsed")
        if self.no_null_direction:
            out.append("no_null_direction")
        return out

    @property
    def degenerate(self) -> bool:
        return bool(self.fired)

    def message(self) -> str:
        """One line: what fired, with the numbers and thresholds ("" when nothing fired)."""
        t = self.thresholds
        parts = []
        if self.collinear:
            who = _names(self.collinear_latents)
            span = len(self.collinear_latents) - self.null_dims
            pair = ""
            if self.max_corr_pair is not None:
                i, j = self.max_corr_pair
                pair = f"; largest |corr| {self.max_corr:.4f} between latents {i} and {j}"
            parts.append(
                f"recovered {who} span only {span} direction{'s' if span != 1 else ''} "
                f"(condition number of corr(Zhat) {self.condition:.3g} > "
                f"{t['collinear_cond']:.0e}{pair})"
            )
        if self.collapsed:
            worst = min(self.variance_ratio[j] for j in self.collapsed)
            parts.append(
                f"{_names(self.collapsed)} collapsed (variance {worst:.2g} of what "
                f"{'its' if len(self.collapsed) == 1 else 'their'} features carry "
                f"< {t['collapse_rtol']:.0e})"
            )
        if self.no_null_direction:
            k = int(np.argmin(self.env_min_eig))
            parts.append(
                f"no environment has the near-zero-variance direction that the "
                f"do-interventions this estimator assumes would give (smallest relative "
                f"eigenvalue {self.env_min_eig[k]:.3g}, environment {k}, > "
                f"{t['do_null_rtol']:.0e}; stochastic and soft interventions give none)"
            )
        return ("degenerate fit: " + "; ".join(parts)) if parts else ""

    def to_dict(self) -> dict:
        """JSON-able: every number, the thresholds, ``fired``, ``degenerate`` and ``message``."""
        return {
            "degenerate": self.degenerate,
            "fired": self.fired,
            "message": self.message(),
            "condition": _num(self.condition),
            "max_corr": _num(self.max_corr),
            "max_corr_pair": None if self.max_corr_pair is None else list(self.max_corr_pair),
            "collinear_latents": list(self.collinear_latents),
            "null_dims": self.null_dims,
            "variance_ratio": [_num(v) for v in self.variance_ratio],
            "collapsed": list(self.collapsed),
            "env_min_eig": [_num(v) for v in self.env_min_eig],
            "do_design": self.do_design,
            "thresholds": dict(self.thresholds),
        }


def _num(x: float) -> float | str:
    x = float(x)
    return x if np.isfinite(x) else str(x)  # JSON has no inf


def _names(idx) -> str:
    idx = [int(i) for i in idx]
    if len(idx) == 1:
        return f"latent {idx[0]}"
    return "latents " + ", ".join(map(str, idx[:-1])) + f" and {idx[-1]}"


def variance_ratios(W: np.ndarray, pooled: np.ndarray) -> np.ndarray:
    """Check (b)'s ratio per column of W: var(X w) / (w' diag(P) w) for P = ``pooled``."""
    var = np.einsum("ij,ik,kj->j", W, pooled, W)
    carried = np.einsum("ij,i,ij->j", W, np.diag(pooled), W)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(carried > 0, np.maximum(var, 0.0) / carried, 0.0)
    return ratio


def collinearity(cov: np.ndarray) -> tuple[float, float, tuple[int, int] | None, np.ndarray]:
    """(condition number, largest off-diagonal |corr|, its pair, near-null eigenvectors) of the
    correlation matrix of a covariance ``cov`` (d x d, positive diagonal); the eigenvectors
    (columns) are those whose eigenvalue is below the largest / :data:`COLLINEAR_COND`."""
    s = np.sqrt(np.diag(cov))
    R = cov / np.outer(s, s)
    R = (R + R.T) / 2
    evals, evecs = np.linalg.eigh(R)
    cond = float(evals[-1] / evals[0]) if evals[0] > 0 else float("inf")
    null = evecs[:, evals * COLLINEAR_COND < evals[-1]]
    if R.shape[0] < 2:
        return cond, 0.0, None, null
    off = np.abs(R - np.diag(np.diag(R)))
    i, j = np.unravel_index(int(np.argmax(off)), off.shape)
    return cond, float(off[i, j]), (int(min(i, j)), int(max(i, j))), null


def env_min_eigenvalues(covs: np.ndarray, pooled: np.ndarray, d: int) -> np.ndarray:
    """Check (c): each environment's smallest covariance eigenvalue in coordinates where the
    pooled covariance of the standardised columns (a correlation matrix, so units do not
    matter), restricted to its top-``d`` principal subspace, is the identity."""
    scale = np.sqrt(np.diag(pooled))
    scale = 1.0 / np.where(scale > 0, scale, 1.0)
    pooled = pooled * np.outer(scale, scale)
    covs = covs * np.outer(scale, scale)
    evals, evecs = np.linalg.eigh(pooled)
    evals, evecs = evals[::-1][:d], evecs[:, ::-1][:, :d]
    keep = evals > RANK_RTOL * max(evals[0], np.finfo(float).tiny)
    if not keep.any():
        return np.zeros(len(covs))
    T = evecs[:, keep] / np.sqrt(evals[keep])
    return np.array([np.linalg.eigvalsh(T.T @ S @ T)[0] for S in covs])


def diagnose(W, moments: Moments, *, do_design: bool) -> Diagnosis:
    """Run checks (a) - (c) (module docstring) on the unmixing W (m x d) and the data's
    per-environment ``moments``; check (c) only counts when ``do_design``."""
    W = np.asarray(W, dtype=np.float64)
    P = moments.pooled()
    ratio = variance_ratios(W, P)
    collapsed = tuple(int(j) for j in np.flatnonzero(ratio < COLLAPSE_RTOL))
    alive = np.setdiff1d(np.arange(W.shape[1]), collapsed)
    cond, max_corr, pair, null = 1.0, 0.0, None, np.zeros((0, 0))
    if alive.size >= 2:  # else nothing to be collinear with
        cond, max_corr, pair, null = collinearity(W[:, alive].T @ P @ W[:, alive])
        pair = (int(alive[pair[0]]), int(alive[pair[1]]))
    involved = np.abs(null).max(axis=1, initial=0.0) > 0.1 if null.size else np.zeros(0, bool)
    collinear_latents = tuple(int(alive[i]) for i in np.flatnonzero(involved))
    null_dims = int(null.shape[1]) if null.size else 0
    return Diagnosis(
        condition=float(cond),
        max_corr=float(max_corr),
        max_corr_pair=pair,
        collinear_latents=collinear_latents,
        null_dims=null_dims,
        variance_ratio=tuple(float(r) for r in ratio),
        collapsed=collapsed,
        env_min_eig=tuple(float(v) for v in env_min_eigenvalues(moments.covs, P, W.shape[1])),
        do_design=bool(do_design),
    )


__all__ = [
    "COLLAPSE_RTOL",
    "COLLINEAR_COND",
    "DO_DESIGN_ESTIMATORS",
    "DO_NULL_RTOL",
    "Diagnosis",
    "Moments",
    "collinearity",
    "diagnose",
    "env_min_eigenvalues",
    "env_moments",
    "variance_ratios",
]
