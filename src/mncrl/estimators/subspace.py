"""`subspace`: closed-form estimator for perfect (do) interventions (docs/subspace.md).

Principle. With X = Z L and a do-intervention on the set T_k, the projection X w has zero
variance in environment k exactly when the latent coefficient vector L w is supported on T_k.
The null space N_k of the environment covariance S_k is therefore spanned by the true unmixing
columns of the intervened latents, and the common null space of a set E of environments is
spanned by the unmixing columns of the latents intervened in all of them (a *flat*). Under
Assumption 4 the flat of the *signature* of node j (the environments intervening on j) is
exactly the line of the j-th unmixing column, and signatures of different nodes are not nested.

Algorithm (targets unknown):

1. :func:`moments` -- a pilot on a strided subsample gives the signal subspace (PCA when m > d)
   and a whitening transform; one chunked pass over each environment then forms the centred
   covariances of the *whitened* data, so that float64 keeps the smallest signal eigenvalues
   even when the latent variances span ten orders of magnitude.
2. :func:`noise_floor` -- the eigenvalues of all S_k are pooled; the noise floor is the bottom
   cluster, separated from the signal by the first ratio larger than ``null_gap``. Without
   observation noise the floor is numerical and isotropic in whitened coordinates (regime
   "noiseless"); with noise it is isotropic in orthonormal coordinates of the signal subspace
   (regime "noisy"), where it must form a tight cluster (spread <= ``floor_spread``).
3. :func:`find_blocks` -- peel the latents one by one. A set E has a common zero-variance
   direction iff the smallest eigenvalue of sum_{k in E} S_k stays at the floor (one joint
   minimisation per test: no error propagates from one environment's estimate to the next).
   Each round grows E first-fit while its flat still holds a latent not found in earlier
   rounds (found latent i lies in the flat of E iff E is inside its signature). The final E is
   a maximal signature; under Assumption 4 its flat is one line: the unmixing column.
4. The signatures are the estimated targets; Assumption 4 is checked on them and
   :class:`~mncrl.errors.NotIdentifiableError` is raised (with the estimated targets, the
   unseparated pairs and the latents that *are* recovered) instead of returning a guess.

Everything after the covariances is at most d * K symmetric eigen-decompositions of d x d.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from mncrl.errors import DataError, MncrlError, NotIdentifiableError
from mncrl.estimators.base import Estimator, Fit, do_only
from mncrl.interventions import assumption4
from mncrl.observation_noise import (
    NOISE_RTOL,
    NoiseEstimate,
    factor_analysis,
    scaled_signal_basis,
    zero_variance_estimate,
)

DEFAULTS: dict = {
    # Eigenvalues below floor_rtol x (largest eigenvalue) are numerically zero (just above the
    # d * eps relative error of a symmetric eigen-solver for d <= ~45).
    "floor_rtol": 1e-14,
    # Smallest ratio between the top of the noise-floor cluster and the next eigenvalue (pooled
    # over environments) that separates the zero-variance directions from the signal.
    "null_gap": 100.0,
    # Largest ratio top / bottom of the noise-floor cluster when there is observation noise
    # (an isotropic noise floor is tight) unless the gap above the cluster exceeds null_gap x
    # its spread (heteroscedastic floors, e.g. float32 rounding); else noise and signal overlap.
    "floor_spread": 10.0,
    # Known observation-noise variance per coordinate of X; None = estimate it.
    "noise_var": None,
    # Rows per environment used by the pilot (whitening and, for m > d, PCA).
    "pilot_rows": 4096,
    # Observation-noise model when m > d: "auto" estimates a variance per observed coordinate
    # (multi-group factor analysis, mncrl.observation_noise) when the pilot shows noise above
    # NOISE_RTOL, "isotropic" assumes one variance for all coordinates (PCA).
    "noise_model": "auto",
}

NOISE_MODELS = ("auto", "isotropic")
# A calibrated floor (unit noise) ends at this multiple of the Marchenko-Pastur edge.
FLOOR_MARGIN = 1.2
# m = d with noise: at most this many rounds of (noise from the zero-variance equations of the
# estimated latents, refit); stop when the targets repeat and psi moves less than REFINE_RTOL.
REFINE_ROUNDS = 5
# ... only when the floor (standardised coordinates) is above this: real noise, not rounding
REFINE_FLOOR = 1e-10
# m = d: a floor without a null_gap-clean gap is still used (and reported ambiguous) when its
# gap exceeds TENTATIVE_GAP and its directions have variance below TENTATIVE_LEVEL of their
# pooled variance (noise sd below ~30% of that direction's pooled sd).
TENTATIVE_GAP = 10.0
TENTATIVE_LEVEL = 0.1
REFINE_RTOL = 1e-3

PRESETS: dict[str, dict] = {"default": dict(DEFAULTS)}

_CHUNK = 4096


# --------------------------------------------------------------------------- moments


@dataclass(frozen=True)
class Moments:
    """Per-environment centred covariances in *whitened* coordinates.

    ``covs`` (K x d x d) are the covariances of X @ ``transform`` (m x d); ``counts`` (K,) the
    rows per environment. ``basis`` (m x d, orthonormal) spans the signal subspace and
    ``transform = basis @ orth``: orthonormal coordinates x @ basis become whitened ones by a
    right product with ``orth`` (d x d). ``pca_noise`` is the mean eigenvalue the pilot PCA
    discarded (an estimate of the observation-noise variance) when m > d, else None. With a
    per-coordinate noise model (``noise`` set) the orthonormal coordinates are those of
    X diag(psi)^(-1/2) projected on the signal subspace, where the noise is isotropic with
    variance ``pca_noise`` = 1, and ``basis`` (m x d, not orthonormal) maps X there.
    """

    covs: np.ndarray
    counts: np.ndarray
    transform: np.ndarray
    basis: np.ndarray
    orth: np.ndarray
    pca_noise: float | None
    noise: NoiseEstimate | None = None
    calibrated: bool = False  # noise exactly 1 in orthonormal coordinates: no gap search


def _centred_cov(X: np.ndarray, shift: np.ndarray, T: np.ndarray) -> np.ndarray:
    """Covariance of X @ T, in chunks (no full copy), shifted by ``shift`` for accuracy."""
    n = X.shape[0]
    d = T.shape[1]
    s = shift @ T
    gram = np.zeros((d, d))
    total = np.zeros(d)
    for i in range(0, n, _CHUNK):
        Y = X[i : i + _CHUNK].astype(np.float64) @ T
        Y -= s
        gram += Y.T @ Y
        total += Y.sum(axis=0)
    mean = total / n
    return (gram - n * np.outer(mean, mean)) / max(n - 1, 1)


def _pilot(envs: list[np.ndarray], rows: int) -> tuple[np.ndarray, list[np.ndarray]]:
    """Pooled covariance and per-environment means of a strided subsample."""
    covs, means, weights = [], [], []
    for k, X in enumerate(envs):
        P = X[:: max(1, X.shape[0] // rows)].astype(np.float64)
        mu = P.mean(axis=0)
        if not np.isfinite(mu).all():
            raise DataError(f"subspace: environment {k} contains NaN/Inf values")
        Pc = P - mu
        covs.append(Pc.T @ Pc / max(P.shape[0] - 1, 1))
        means.append(mu)
        weights.append(X.shape[0])
    w = np.asarray(weights, dtype=np.float64)
    return np.einsum("k,kij->ij", w / w.sum(), np.stack(covs)), means


def _sym_power(S: np.ndarray, power: float, floor_rtol: float) -> np.ndarray:
    evals, evecs = np.linalg.eigh(S)
    evals = np.maximum(evals, floor_rtol * max(evals[-1], np.finfo(float).tiny))
    return (evecs * evals**power) @ evecs.T


def _heteroscedastic(envs, means, counts, d: int, floor_rtol: float) -> Moments:
    """Moments under per-coordinate noise: full covariances, factor analysis for psi, then the
    signal subspace in noise-scaled coordinates (noise variance 1 there) and its whitening."""
    m = envs[0].shape[1]
    full = np.stack([_centred_cov(X, mu, np.eye(m)) for X, mu in zip(envs, means, strict=True)])
    bad = np.flatnonzero(~np.isfinite(full).all(axis=(1, 2)))
    if bad.size:
        raise DataError(f"subspace: environment {int(bad[0])} contains NaN/Inf values")
    noise = factor_analysis(full, counts, d)
    pool = pooled(full, counts)
    basis = scaled_signal_basis(pool, noise.psi, d)
    orth = _sym_power(basis.T @ pool @ basis, -0.5, floor_rtol)
    transform = basis @ orth
    covs = transform.T @ full @ transform
    return Moments(covs, counts, transform, basis, orth, 1.0, noise, calibrated=True)


def moments(
    envs: list[np.ndarray],
    latent_dim: int | None,
    *,
    pilot_rows: int = 4096,
    floor_rtol: float = 1e-14,
    noise_model: str = "auto",
) -> Moments:
    """Pilot (signal subspace + whitening) and one chunked pass of whitened covariances.

    ``latent_dim`` None: the numerical rank of the pilot covariance on the correlation scale
    (eigenvalues above 1e4 x floor_rtol x the largest). With m > d, ``noise_model`` "auto" and noise in the
    pilot, the per-coordinate noise variances are estimated (:func:`_heteroscedastic`).
    """
    P0, means = _pilot(envs, pilot_rows)
    m = P0.shape[0]
    # standardised coordinates (unit-free): every decision below is the same whatever units
    # each column of X is recorded in; a constant column keeps scale 1
    sd = np.sqrt(np.diag(P0))
    sd = np.where(sd > 0, sd, 1.0)
    evals, evecs = np.linalg.eigh(P0 / np.outer(sd, sd))
    evals, evecs = evals[::-1], evecs[:, ::-1]
    if latent_dim is None:
        d = int(np.sum(evals > 1e4 * floor_rtol * max(evals[0], 0.0)))
    else:
        d = int(latent_dim)
    if not 1 <= d <= m:
        raise DataError(f"subspace: latent_dim must be between 1 and m={m}, got {d}")
    if not evals[0] > 0 or evals[d - 1] <= 1e4 * floor_rtol * evals[0]:
        rank = int(np.sum(evals > 1e4 * floor_rtol * max(evals[0], 0.0)))
        raise NotIdentifiableError(
            f"the pooled covariance has rank {rank} < latent_dim {d}: some latent never varies "
            f"in any environment (every environment intervenes on it, or latent_dim is too "
            f"large), so it cannot be recovered"
        )
    counts = np.asarray([X.shape[0] for X in envs], dtype=np.int64)
    if d < m and noise_model == "auto" and np.mean(evals[d:]) > NOISE_RTOL:
        return _heteroscedastic(envs, means, counts, d, floor_rtol)
    # "orthonormal" coordinates: principal coordinates of the standardised X
    basis = (evecs[:, :d] if d < m else np.eye(m)) / sd[:, None]
    pca_noise = float(np.mean(evals[d:])) if d < m else None
    orth = _sym_power(basis.T @ P0 @ basis, -0.5, floor_rtol)
    transform = basis @ orth
    covs = np.stack([_centred_cov(X, mu, transform) for X, mu in zip(envs, means, strict=True)])
    bad = np.flatnonzero(~np.isfinite(covs).all(axis=(1, 2)))
    if bad.size:
        raise DataError(f"subspace: environment {int(bad[0])} contains NaN/Inf values")
    return Moments(covs, counts, transform, basis, orth, pca_noise)


def pooled(covs: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Pooled within-environment covariance (weights proportional to sample counts)."""
    w = counts / counts.sum()
    return np.einsum("k,kij->ij", w, covs)


# -------------------------------------------------------------------------- noise floor


@dataclass(frozen=True)
class Floor:
    """The zero-variance level, in the coordinates where it is isotropic.

    ``covs`` are the environment covariances in those coordinates and ``to_orth`` maps a
    direction there to orthonormal coordinates of the signal subspace (w_orth = to_orth @ w). An eigenvalue <=
    ``threshold`` is zero variance; ``top`` is the largest eigenvalue of the floor cluster.
    """

    regime: str  # "noiseless" (whitened), "noisy" or "calibrated" (orthonormal)
    covs: np.ndarray  # K x d x d
    to_orth: np.ndarray  # d x d
    threshold: float
    top: float
    gap: float  # smallest signal / largest floor eigenvalue
    spread: float  # largest / smallest floor eigenvalue (noisy regime)
    noise_var: float  # estimated observation-noise variance (0 when numerical)
    dims: np.ndarray  # (K,) zero-variance dimensions per environment
    env_gaps: np.ndarray  # (K,) lambda_{n_k+1} / lambda_{n_k} per environment
    ambiguous: bool = False  # calibrated floor: gap above it below null_gap (a diagnostic)


def floor_split(spectra: np.ndarray, floor_rtol: float, null_gap: float):
    """Split pooled eigenvalues into a bottom (noise-floor) cluster and the signal.

    Eigenvalues are clamped at ``floor_rtol`` times the largest one, sorted, and the first
    consecutive ratio larger than ``null_gap`` (from the bottom) separates the two groups.
    Returns (threshold, top of the floor cluster, gap ratio, bottom, clamp) or None.
    """
    top = float(spectra.max())
    if not np.isfinite(top) or top <= 0:
        return None
    clamp = floor_rtol * top
    v = np.sort(np.maximum(spectra.ravel(), clamp))
    ratios = v[1:] / v[:-1]
    big = np.flatnonzero(ratios > null_gap)
    if big.size == 0:
        return None
    i = int(big[0])
    return float(np.sqrt(v[i] * v[i + 1])), float(v[i]), float(ratios[i]), float(v[0]), clamp


def _env_gaps(evals: np.ndarray, dims: np.ndarray, clamp: float, threshold: float) -> np.ndarray:
    K, d = evals.shape
    gaps = np.full(K, np.inf)
    for k in range(K):
        n = int(dims[k])
        if 0 < n < d:
            gaps[k] = evals[k, n] / max(evals[k, n - 1], clamp)
        elif n == 0:
            gaps[k] = evals[k, 0] / max(threshold, clamp)
    return gaps


def _no_floor(K: int, d: int) -> NotIdentifiableError:
    """No zero-variance direction anywhere: every estimated signature is empty."""
    return NotIdentifiableError(
        "no environment has a zero-variance direction (no eigenvalue gap above the noise "
        "floor): the data look observational or the interventions are not perfect, so the "
        "subspace estimator cannot identify the latents",
        targets=np.zeros((K, d), dtype=bool),
        unseparated=[(j, i) for j in range(d) for i in range(d) if i != j],
    )


def noise_floor(
    covs_white: np.ndarray,
    orth: np.ndarray,
    *,
    floor_rtol: float,
    null_gap: float,
    floor_spread: float,
    noise_var: float | None,
    tentative: bool = False,
) -> Floor:
    """Decide the regime and the zero-variance threshold (see the module docstring).

    ``tentative`` (m = d in standardised coordinates, before and during the noise refinement
    of :func:`refine_noise`): a floor without a clean gap (first ratio > TENTATIVE_GAP instead
    of ``null_gap``, any spread) is used and marked ambiguous instead of refused, provided
    its directions are exactly those with whitened variance (variance relative to the pooled
    one) below TENTATIVE_LEVEL."""
    orth_inv = np.linalg.inv(orth)  # x_orth = x_white @ orth_inv
    covs_o = orth_inv.T @ covs_white @ orth_inv
    ev_w = np.linalg.eigvalsh(covs_white)
    ev_o = np.linalg.eigvalsh(covs_o)
    known = noise_var is not None and noise_var > floor_rtol * float(ev_o.max())
    split = floor_split(ev_w, floor_rtol, null_gap)
    if not known and split is not None and split[1] <= split[4] * (1 + 1e-9):
        threshold, top, gap, _, clamp = split
        dims = np.sum(ev_w <= threshold, axis=1)
        return Floor(
            "noiseless",
            covs_white,
            orth,
            threshold,
            top,
            gap,
            1.0,
            0.0,
            dims,
            _env_gaps(ev_w, dims, clamp, threshold),
        )
    split = floor_split(ev_o, floor_rtol, null_gap)
    ambiguous = False
    if split is None and tentative:
        split = floor_split(ev_o, floor_rtol, TENTATIVE_GAP)
        ambiguous = True
        # accepted only if it is the set of directions whose variance is below
        # TENTATIVE_LEVEL of their pooled variance (whitened eigenvalues): a floor of
        # zero-variance directions, not the small end of an environment's signal
        if split is not None and not np.array_equal(
            np.sum(ev_o <= split[0], axis=1), np.sum(ev_w <= TENTATIVE_LEVEL, axis=1)
        ):
            split = None
    if split is None:
        raise _no_floor(*ev_o.shape)
    threshold, top, gap, bottom, clamp = split
    spread = top / bottom
    if spread > max(floor_spread, gap / null_gap) and tentative:
        ambiguous = True
    elif spread > max(floor_spread, gap / null_gap):
        raise NotIdentifiableError(
            f"no clean noise floor: the smallest eigenvalues of the environment covariances "
            f"spread over a factor {spread:.3g} below the first gap (ratio {gap:.3g}), more than "
            f"floor_spread={floor_spread:g} and gap / null_gap: observation noise and signal "
            f"overlap (noise too large for these data)"
        )
    dims = np.sum(ev_o <= threshold, axis=1)
    if dims.sum() == 0:
        raise _no_floor(*ev_o.shape)
    noise = float(np.median(ev_o[ev_o <= threshold]))
    if (
        known
        and not tentative
        and not (noise_var / floor_spread <= noise <= noise_var * floor_spread)
    ):
        raise NotIdentifiableError(
            f"the zero-variance eigenvalues (median {noise:.3g}) do not match the observation "
            f"noise variance {noise_var:.3g}: the floor cannot be located"
        )
    return Floor(
        "noisy",
        covs_o,
        np.eye(covs_o.shape[1]),
        threshold,
        top,
        gap,
        spread,
        noise,
        dims,
        _env_gaps(ev_o, dims, clamp, threshold),
        ambiguous=ambiguous,
    )


def calibrated_floor(
    covs_white: np.ndarray, orth: np.ndarray, counts: np.ndarray, *, null_gap: float
) -> Floor:
    """The floor when the noise is known to be isotropic with variance 1 in orthonormal
    coordinates (per-coordinate noise estimated and scaled out): a zero-variance direction's
    sample variance stays below the Marchenko-Pastur edge (1 + sqrt(d / n))^2 of pure noise
    (n the smallest environment), times FLOOR_MARGIN. No gap search: a floor whose gap to the
    signal is below ``null_gap`` is used anyway and reported as ambiguous."""
    orth_inv = np.linalg.inv(orth)
    covs_o = orth_inv.T @ covs_white @ orth_inv
    ev_o = np.linalg.eigvalsh(covs_o)
    K, d = ev_o.shape
    threshold = (1.0 + np.sqrt(d / float(np.min(counts)))) ** 2 * FLOOR_MARGIN
    dims = np.sum(ev_o <= threshold, axis=1)
    if dims.sum() == 0:
        raise _no_floor(K, d)
    below, above = ev_o[ev_o <= threshold], ev_o[ev_o > threshold]
    top = float(below.max())
    gap = float(above.min()) / top if above.size else np.inf
    return Floor(
        "calibrated",
        covs_o,
        np.eye(d),
        float(threshold),
        top,
        gap,
        top / max(float(below.min()), np.finfo(float).tiny),
        float(np.median(below)),
        dims,
        _env_gaps(ev_o, dims, np.finfo(float).tiny, float(threshold)),
        ambiguous=gap < null_gap,
    )


# ---------------------------------------------------------------------------- search


@dataclass(frozen=True)
class Block:
    """A maximal signature found by the search.

    ``signature`` (K bool): the environments whose null spaces contain ``flat`` (d x r,
    orthonormal, floor coordinates); ``new`` latents not found before share this signature.
    The block is a recovered latent iff ``new == 1`` and ``flat`` is a line.
    """

    signature: np.ndarray
    new: int
    flat: np.ndarray

    @property
    def is_line(self) -> bool:
        return self.new == 1 and self.flat.shape[1] == 1


def _bound(size: int, floor: Floor) -> float:
    """Largest eigenvalue of a sum of ``size`` covariances along a common null direction."""
    return (size - 1) * floor.top + floor.threshold


def common_null(S_sum: np.ndarray, size: int, floor: Floor) -> np.ndarray:
    """Basis of the common zero-variance directions of ``size`` environments whose covariances
    sum to ``S_sum``: eigenvectors with eigenvalue <= (size - 1) * floor.top + threshold."""
    evals, evecs = np.linalg.eigh(S_sum)
    return evecs[:, : int(np.sum(evals <= _bound(size, floor)))]


def find_blocks(floor: Floor):
    """Peel latents: one maximal signature per round until all d latents are accounted for.

    Each round grows E first-fit over the environments (in order of decreasing zero-variance
    dimension), accepting an environment when E plus it still has a common null direction
    holding a latent not found before. Because that test is monotone (a larger E never passes
    when a smaller one fails), the run of candidates first-fit would accept next is the longest
    prefix of the remaining candidates that passes *jointly*: it is found with an exponential
    then binary search, so a round costs O(rejections + log K) eigenvalue decompositions.

    Returns the blocks and, as a diagnostic, the largest eigenvalue counted as zero variance
    and the smallest counted as signal, each relative to its acceptance bound (far below and
    far above 1 when the decisions are clear-cut).
    """
    covs, dims = floor.covs, floor.dims
    K, d, _ = covs.shape
    order = [int(k) for k in np.argsort(-dims, kind="stable") if dims[k] > 0]
    blocks: list[Block] = []
    sigs = np.zeros((0, K), dtype=bool)
    news = np.zeros(0, dtype=np.int64)
    found = 0
    margin = [0.0, np.inf]
    memo: dict[bytes, int] = {}

    def count(members: np.ndarray) -> int:
        """Common zero-variance dimension of an environment set (memoised)."""
        key = members.tobytes()
        if key not in memo:
            size = int(members.sum())
            bound = _bound(size, floor)
            evals = np.linalg.eigvalsh(covs[members].sum(axis=0))
            c = int(np.sum(evals <= bound))
            memo[key] = c
            if c > 0:
                margin[0] = max(margin[0], float(evals[c - 1]) / bound)
            if c < d:
                margin[1] = min(margin[1], float(evals[c]) / bound)
        return memo[key]

    def unfound(members: np.ndarray, c: int) -> int:
        """Of c common null directions, how many belong to latents not found yet."""
        return c - int(news[np.all(sigs[:, members], axis=1)].sum())

    def passes(E: np.ndarray, run: list[int]) -> bool:
        M = E.copy()
        M[run] = True
        return unfound(M, count(M)) >= 1

    while found < d:
        E = np.zeros(K, dtype=bool)
        c_E = d
        rest = list(order)
        while rest:
            first = E.copy()
            first[rest[0]] = True
            if unfound(first, min(c_E, int(dims[rest[0]]))) < 1 or not passes(E, rest[:1]):
                rest = rest[1:]  # rejected for good (monotone test)
                continue
            good, step = 1, 2
            while step <= len(rest) and passes(E, rest[:step]):
                good, step = step, 2 * step
            bad = min(step, len(rest) + 1)  # first length known (or assumed) to fail
            while bad - good > 1:
                mid = (good + bad) // 2
                good, bad = (mid, bad) if passes(E, rest[:mid]) else (good, mid)
            E[rest[:good]] = True
            c_E = count(E)
            rest = rest[good + 1 :]  # rest[good] fails with the new E
        size = int(E.sum())
        flat = common_null(covs[E].sum(axis=0), size, floor) if size else np.eye(d)
        new = unfound(E, flat.shape[1])
        if new < 1:
            raise NotIdentifiableError(
                "inconsistent zero-variance dimensions (the common null spaces do not add up to "
                "the latent dimension): the noise floor does not fit these data"
            )
        new = min(new, d - found)
        blocks.append(Block(E, new, flat))
        sigs = np.vstack([sigs, E])
        news = np.append(news, new)
        found += new
    return blocks, margin[0], margin[1]


def block_targets(blocks: list[Block]) -> np.ndarray:
    """K x d estimated target matrix: one column per latent (blocks repeated by ``new``)."""
    return np.stack([b.signature for b in blocks for _ in range(b.new)], axis=1)


# ------------------------------------------------------------------------------- fit


def _check_envs(envs) -> list[np.ndarray]:
    """Shapes and dtypes only (no copy); NaN/Inf are detected from the covariances."""
    if not isinstance(envs, list | tuple) or len(envs) == 0:
        raise DataError("subspace: envs must be a non-empty list of (n_k x m) arrays")
    out = [np.asarray(X) for X in envs]
    m = out[0].shape[1] if out[0].ndim == 2 else -1
    for k, X in enumerate(out):
        if X.ndim != 2 or X.shape[1] != m:
            raise DataError(f"subspace: environment {k} has shape {X.shape}; expected (n_k x {m})")
        if not (np.issubdtype(X.dtype, np.floating) or np.issubdtype(X.dtype, np.integer)):
            raise DataError(f"subspace: environment {k} must be real-valued, got {X.dtype}")
        if X.shape[0] < 2:
            raise DataError(f"subspace: environment {k} has {X.shape[0]} rows; need at least 2")
    return out


def check_hparams(hparams: dict) -> dict:
    """Defaults updated by ``hparams``; MncrlError on unknown names or bad values."""
    unknown = set(hparams) - set(DEFAULTS)
    if unknown:
        raise MncrlError(
            f"subspace: unknown hyper-parameter(s) {sorted(unknown)}; "
            f"choose from {sorted(DEFAULTS)}"
        )
    hp = {**DEFAULTS, **hparams}
    if not 0 < float(hp["floor_rtol"]) < 1e-3:
        raise MncrlError(f"subspace: floor_rtol must be in (0, 1e-3), got {hp['floor_rtol']}")
    for name in ("null_gap", "floor_spread"):
        if not float(hp[name]) > 1:
            raise MncrlError(f"subspace: {name} must be > 1, got {hp[name]}")
    if hp["noise_var"] is not None and not float(hp["noise_var"]) >= 0:
        raise MncrlError(f"subspace: noise_var must be >= 0 or None, got {hp['noise_var']}")
    if int(hp["pilot_rows"]) < 2:
        raise MncrlError(f"subspace: pilot_rows must be >= 2, got {hp['pilot_rows']}")
    if hp["noise_model"] not in NOISE_MODELS:
        raise MncrlError(
            f"subspace: noise_model must be one of {', '.join(NOISE_MODELS)}, got "
            f"{hp['noise_model']!r}"
        )
    return hp


def fit(
    envs: list[np.ndarray], *, seed: int | None = None, latent_dim: int | None = None, **hparams
) -> Fit:
    """Fit the closed-form subspace estimator on per-environment blocks (n_k x m).

    ``seed`` is accepted for interface compatibility and unused (the estimator is deterministic).
    ``latent_dim`` defaults to the numerical rank of the pooled covariance (pass it for noisy
    data with m > d). An environment without zero-variance directions (e.g. observational)
    is allowed and simply never enters a signature. Raises NotIdentifiableError when the
    estimated signatures do not separate the latents, DataError on malformed input.
    """
    from mncrl.threads import single_threaded_blas  # thin products: BLAS threads only stall

    t0 = time.perf_counter()
    hp = check_hparams(hparams)
    envs = _check_envs(envs)
    with single_threaded_blas():
        mom = moments(
            envs,
            latent_dim,
            pilot_rows=int(hp["pilot_rows"]),
            floor_rtol=hp["floor_rtol"],
            noise_model=hp["noise_model"],
        )
        t1 = time.perf_counter()
        result = fit_moments(mom, **hp)
        if _refinable(mom, result):
            result = refine_noise(mom, result, hp)
    result.info["timings"]["moments"] = t1 - t0
    result.info["timings"]["total"] = time.perf_counter() - t0
    return result


def _known_noise(mom: Moments, noise_var: float | None) -> float | None:
    """The noise variance the floor must match: the user's, else the pilot PCA's when it is
    above NOISE_RTOL (below it the data are numerically noiseless: nothing to match)."""
    if noise_var is not None:
        return noise_var
    return mom.pca_noise if mom.pca_noise is not None and mom.pca_noise > NOISE_RTOL else None


def _refinable(mom: Moments, first: Fit) -> bool:
    """m = d, no per-coordinate model yet, and a noise floor above REFINE_FLOOR (standardised
    coordinates: relative to each coordinate's pooled variance)."""
    return (
        mom.noise is None
        and mom.basis.shape[0] == mom.basis.shape[1]
        and first.info["regime"] == "noisy"
        and first.info["noise_var"] > REFINE_FLOOR
        and int(first.targets.sum()) >= mom.basis.shape[0]
    )


def _rescaled(mom: Moments, full: np.ndarray, noise: NoiseEstimate, floor_rtol: float):
    """Moments in coordinates X diag(psi)^(-1/2) (m = d), from the covariances of X."""
    basis = np.diag(1.0 / np.sqrt(noise.psi))
    orth = _sym_power(basis.T @ pooled(full, mom.counts) @ basis, -0.5, floor_rtol)
    transform = basis @ orth
    covs = transform.T @ full @ transform
    return Moments(covs, mom.counts, transform, basis, orth, None, noise)


def refine_noise(mom: Moments, first: Fit, hp: dict) -> Fit:
    """m = d with observation noise: covariances alone cannot tell per-coordinate noise from
    signal, the do-interventions can. Each round estimates psi from the zero-variance
    equations of the current latents and targets (w_j^T S_k w_j = sum_i w_ij^2 psi_i wherever
    environment k intervenes on latent j), rescales X to unit noise and refits with the
    floor found by the gap search again; it stops when the targets repeat and psi settles.
    A round that fails (the rescaled data do not separate the latents) ends the refinement:
    the last fit is returned with the reason in ``info["noise_refinement"]``."""
    t_inv = np.linalg.inv(mom.transform)
    full = t_inv.T @ mom.covs @ t_inv  # covariances of X (m = d)
    fit, psi, status = first, None, "not converged"
    for rounds in range(1, REFINE_ROUNDS + 1):
        noise = zero_variance_estimate(
            full, mom.counts, fit.unmixing, fit.targets, rounds=rounds, converged=False
        )
        settled = psi is not None and np.max(np.abs(noise.psi / psi - 1)) < REFINE_RTOL
        try:
            new = fit_moments(_rescaled(mom, full, noise, hp["floor_rtol"]), **hp)
        except NotIdentifiableError as exc:
            status = f"round {rounds} failed, the previous fit is kept: {exc}"
            break
        same = np.array_equal(new.targets, fit.targets)
        fit, psi = new, noise.psi
        if settled and same:
            fit.info["observation_noise"]["converged"] = True
            status = f"converged in {rounds} rounds"
            break
    fit.info["noise_refinement"] = status
    return fit


def fit_moments(mom: Moments, **hparams) -> Fit:
    """The closed-form part: from whitened per-environment covariances to (W, targets)."""
    t0 = time.perf_counter()
    hp = check_hparams(hparams)
    K, d, _ = mom.covs.shape
    # exact re-whitening (the pilot whitening is approximate): pooled covariance = identity
    rewhite = _sym_power(pooled(mom.covs, mom.counts), -0.5, hp["floor_rtol"])
    covs = rewhite @ mom.covs @ rewhite
    orth = mom.orth @ rewhite
    if mom.calibrated:
        floor = calibrated_floor(covs, orth, mom.counts, null_gap=hp["null_gap"])
    else:
        floor = noise_floor(
            covs,
            orth,
            floor_rtol=hp["floor_rtol"],
            null_gap=hp["null_gap"],
            floor_spread=hp["floor_spread"],
            noise_var=_known_noise(mom, hp["noise_var"]),
            tentative=mom.noise is not None or mom.basis.shape[0] == d,
        )
    t1 = time.perf_counter()
    blocks, acc, rej = find_blocks(floor)
    t2 = time.perf_counter()

    targets = block_targets(blocks)
    report = assumption4(targets)
    info = {
        "method": "subspace",
        "latent_dim": d,
        "reduced": mom.basis.shape[0] > d,
        "regime": floor.regime,
        "noise_var": floor.noise_var,
        "noise_model": "per-coordinate" if mom.noise else "isotropic",
        "observation_noise": mom.noise.to_info() if mom.noise else None,
        "null_threshold": floor.threshold,
        "null_gap": floor.gap,
        "floor_ambiguous": floor.ambiguous,
        "floor_spread": floor.spread,
        "null_dims": floor.dims.tolist(),
        "env_gaps": floor.env_gaps.tolist(),
        "signatures": [np.flatnonzero(b.signature).tolist() for b in blocks for _ in range(b.new)],
        "test_margin": {"accepted_max": acc, "rejected_min": rej},
        "assumption4": {
            "satisfied": report.satisfied,
            "unseparated": [list(p) for p in report.unseparated],
        },
        "hparams": hp,
        "timings": {"noise_floor": t1 - t0, "search": t2 - t1},
    }
    lines = [b.is_line for b in blocks for _ in range(b.new)]
    if not report.satisfied or not all(lines):
        first = {p[0] for p in report.unseparated}
        recovered = [j for j, ok in enumerate(lines) if ok and j not in first]
        raise _not_identifiable(targets, report.unseparated, recovered, d)

    W_floor = np.concatenate([b.flat for b in blocks], axis=1)  # d x d, floor coordinates
    W_orth = floor.to_orth @ W_floor
    W = mom.basis @ W_orth
    # unit pooled within-environment variance: pooled covariance in orthonormal coordinates
    orth_inv = np.linalg.inv(orth)
    var = np.sum((orth_inv @ W_orth) ** 2, axis=0)  # |w_white|^2
    W = _fix_signs(W / np.sqrt(var))
    info["timings"]["closed_form"] = time.perf_counter() - t0
    return Fit(unmixing=W, targets=targets, info=info)


def _fix_signs(W: np.ndarray) -> np.ndarray:
    """Make the largest-magnitude entry of every column positive (deterministic output)."""
    idx = np.argmax(np.abs(W), axis=0)
    return W * np.sign(W[idx, np.arange(W.shape[1])])


def _not_identifiable(targets, unseparated, recovered, d) -> NotIdentifiableError:
    shown = ", ".join(f"({j},{i})" for j, i in unseparated[:10])
    more = f" and {len(unseparated) - 10} more" if len(unseparated) > 10 else ""
    rec = (
        f"latents still recovered on their own (estimated indices): {recovered}"
        if recovered
        else "no latent is recovered on its own"
    )
    err = NotIdentifiableError(
        f"not identifiable: the estimated intervention signatures violate Assumption 4 "
        f"({len(unseparated)} unseparated ordered pairs (j, i) of estimated latents, i.e. no "
        f"environment intervenes on j without i: {shown}{more}); {rec}, out of {d}",
        targets=targets,
        unseparated=unseparated,
    )
    err.recovered = tuple(recovered)
    return err


ESTIMATOR = Estimator(
    name="subspace",
    fit=fit,
    description="closed form for perfect (do) interventions: intersect per-environment "
    "zero-variance subspaces; recovers the targets; raises when not identifiable",
    presets=PRESETS,
    default_preset="default",
    needs_observational=False,
    applicable=do_only,
    reports_targets=True,
)
