"""`subspace`: closed-form estimator for perfect (do) interventions (spec/methods.md §2).

Principle. With X = Z L and a do-intervention on the set T_k, the projection X w has zero
variance in environment k exactly when the latent coefficient vector L w is supported on T_k.
The null space N_k of the environment covariance S_k is therefore spanned by the true unmixing
columns of the intervened latents, and an intersection of null spaces is the span of the
unmixing columns of the latents intervened in all of those environments (a *flat*). Under
Assumption 4 the flat of the *signature* of node j (the set of environments intervening on j)
is exactly the line of the j-th unmixing column, and signatures of different nodes are not
nested.

Algorithm (targets unknown):

1. :func:`moments` — a pilot on a strided subsample gives the signal subspace (PCA when
   m > d) and a whitening transform; one chunked pass over each environment then forms the
   centred covariances of the *whitened* data, so that float64 keeps the smallest signal
   eigenvalues even when the latent variances span ten orders of magnitude.
2. :func:`null_spaces` — per-environment eigen-decompositions. The null space is the bottom
   cluster of the pooled spectra, separated by the first eigenvalue ratio larger than
   ``null_gap``. With observation noise (noise floor above the numerical floor) the spectra are
   taken in orthonormal coordinates, where the noise is isotropic; without, in whitened
   coordinates, where the numerical floor is isotropic.
3. :func:`find_blocks` — peel the latents one by one. Each round grows an environment set E
   first-fit while the flat V_E still holds a latent not found in earlier rounds (how many
   found latents lie in V_E is combinatorial: found latent i lies in V_E iff E is inside its
   signature). The final E is a maximal signature; under Assumption 4 its flat is one line.
4. The signatures are the estimated targets; Assumption 4 is checked on them and
   :class:`~mncrl.errors.NotIdentifiableError` is raised (with the estimated targets, the
   unseparated pairs and the latents that *are* recovered) instead of returning a guess.

Everything after the covariances is a few hundred eigen-decompositions of at most d x d.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from mncrl.errors import DataError, MncrlError, NotIdentifiableError
from mncrl.estimators.base import Estimator, Fit
from mncrl.interventions import assumption4

DEFAULTS: dict = {
    # Eigenvalues below floor_rtol x (largest eigenvalue) are numerically zero.
    "floor_rtol": 1e-13,
    # Smallest ratio between the top of the bottom (noise-floor) cluster of eigenvalues and the
    # next eigenvalue, pooled over environments, that separates null space from signal.
    "null_gap": 100.0,
    # Sine of the principal angle (whitened coordinates) below which a flat meets a null space
    # (the minimum; see angle_safety).
    "angle_tol": 1e-3,
    # The tolerance is raised to angle_safety x the largest split-half null-space error.
    "angle_safety": 10.0,
    # Known observation-noise variance per coordinate of X; None = estimate it.
    "noise_var": None,
    # Rows per environment used by the pilot (whitening and, for m > d, PCA).
    "pilot_rows": 4096,
}

PRESETS: dict[str, dict] = {"default": dict(DEFAULTS)}

_CHUNK = 4096


# --------------------------------------------------------------------------- moments


@dataclass(frozen=True)
class Moments:
    """Per-environment centred covariances in *whitened* coordinates.

    ``covs`` (K x d x d) are the covariances of X @ ``transform`` (m x d); ``counts`` (K,) the
    rows per environment; ``halves`` (K x 2 x d x d) the covariances of the first and second
    half of every chunk of rows (used to measure how noisy the null-space estimates are). ``basis`` (m x d, orthonormal) spans the signal subspace and
    ``transform = basis @ orth``: orthonormal coordinates x @ basis become whitened ones by
    a right product with ``orth`` (d x d).
    ``pca_noise`` is the mean discarded pilot eigenvalue when m > d (else None).
    """

    covs: np.ndarray
    counts: np.ndarray
    halves: np.ndarray
    transform: np.ndarray
    basis: np.ndarray
    orth: np.ndarray
    pca_noise: float | None


def _centred_cov(X: np.ndarray, shift: np.ndarray, T: np.ndarray) -> np.ndarray:
    """Sufficient statistics of X @ T for the two halves of every chunk of rows, computed in
    chunks (no full copy) and shifted by ``shift`` for accuracy: (grams 2 x d x d, sums 2 x d,
    counts 2)."""
    n = X.shape[0]
    d = T.shape[1]
    s = shift @ T
    grams = np.zeros((2, d, d))
    sums = np.zeros((2, d))
    counts = np.zeros(2)
    for i in range(0, n, _CHUNK):
        Y = X[i : i + _CHUNK] @ T
        Y -= s
        h = (Y.shape[0] + 1) // 2
        for part, R in enumerate((Y[:h], Y[h:])):
            grams[part] += R.T @ R
            sums[part] += R.sum(axis=0)
            counts[part] += R.shape[0]
    return grams, sums, counts


def _cov(gram: np.ndarray, total: np.ndarray, n: float) -> np.ndarray:
    mean = total / max(n, 1)
    return (gram - n * np.outer(mean, mean)) / max(n - 1, 1)


def _pilot(envs: list[np.ndarray], rows: int) -> tuple[np.ndarray, list[np.ndarray]]:
    """Pooled covariance and per-environment means of a strided subsample."""
    covs, means, weights = [], [], []
    for X in envs:
        step = max(1, X.shape[0] // rows)
        P = X[::step]
        mu = P.mean(axis=0)
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


def moments(envs: list[np.ndarray], latent_dim: int | None, *, pilot_rows: int = 4096,
            floor_rtol: float = 1e-13) -> Moments:
    """Pilot (subspace + whitening) and one chunked pass of whitened covariances."""
    P0, means = _pilot(envs, pilot_rows)
    m = P0.shape[0]
    evals, evecs = np.linalg.eigh(P0)
    evals, evecs = evals[::-1], evecs[:, ::-1]
    if latent_dim is None:
        d = int(np.sum(evals > floor_rtol * max(evals[0], 0.0) * 1e3))
    else:
        d = int(latent_dim)
    if not 1 <= d <= m:
        raise DataError(f"subspace: latent_dim must be between 1 and m={m}, got {d}")
    basis = evecs[:, :d] if d < m else np.eye(m)
    pca_noise = float(np.mean(evals[d:])) if d < m else None
    Q = basis.T @ P0 @ basis
    orth = _sym_power(Q, -0.5, floor_rtol)          # whitened = orthonormal @ orth
    transform = basis @ orth
    covs, halves = [], []
    for X, mu in zip(envs, means, strict=True):
        grams, sums, cnt = _centred_cov(X, mu, transform)
        covs.append(_cov(grams.sum(0), sums.sum(0), cnt.sum()))
        halves.append(np.stack([_cov(grams[i], sums[i], cnt[i]) for i in range(2)]))
    counts = np.asarray([X.shape[0] for X in envs], dtype=np.int64)
    return Moments(np.stack(covs), counts, np.stack(halves), transform, basis, orth, pca_noise)


def pooled(covs: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Pooled within-environment covariance (weights proportional to sample counts)."""
    w = counts / counts.sum()
    return np.einsum("k,kij->ij", w, covs)


# -------------------------------------------------------------------------- null spaces


@dataclass(frozen=True)
class NullSpaces:
    """Per-environment null-space bases (whitened coordinates) and how they were found."""

    bases: list[np.ndarray]       # K arrays (d x n_k), orthonormal in whitened coordinates
    dims: np.ndarray              # (K,) n_k
    regime: str                   # "noiseless" (whitened spectra) or "noisy" (orthonormal)
    threshold: float              # eigenvalues <= threshold (in the regime's coordinates) are null
    noise_var: float              # estimated observation-noise variance (0 at the numerical floor)
    gap: float                    # ratio at the split (smallest signal / largest null eigenvalue)
    env_gaps: np.ndarray          # (K,) lambda_{n_k+1} / lambda_{n_k} per environment
    errors: np.ndarray            # (K,) estimated sine error of every basis (split halves)


def floor_split(spectra: np.ndarray, floor_rtol: float, null_gap: float):
    """Split pooled eigenvalues into a bottom (noise-floor) cluster and the signal.

    Eigenvalues are clamped at ``floor_rtol`` times the largest one, sorted, and the first
    consecutive ratio larger than ``null_gap`` (from the bottom) separates the two groups.
    Returns (threshold, top of the bottom cluster, gap ratio, clamp) or None without a gap.
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
    return float(np.sqrt(v[i] * v[i + 1])), float(v[i]), float(ratios[i]), clamp


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


def _sin_max(A: np.ndarray, B: np.ndarray) -> float:
    """Sine of the largest principal angle between two subspaces of equal dimension."""
    if A.shape[1] == 0:
        return 0.0
    cos = np.linalg.svd(A.T @ B, compute_uv=False)
    return float(np.sqrt(max(0.0, 1.0 - float(cos.min()) ** 2)))


def null_spaces(covs_white: np.ndarray, halves_white: np.ndarray, orth: np.ndarray, *,
                floor_rtol: float, null_gap: float, noise_var: float | None) -> NullSpaces:
    """Estimate every N_k (see the module docstring for the two regimes).

    Noiseless regime: the whitened spectra have a bottom cluster at the numerical clamp. Else
    the spectra are read in orthonormal coordinates (isotropic noise floor), with the known or
    PCA-estimated noise variance when available. The same split applied to the two half-sample
    covariances gives two estimates of each N_k whose angle measures the estimation error.
    """
    ev_w, vec_w = np.linalg.eigh(covs_white)
    orth_inv = np.linalg.inv(orth)                 # x_orth = x_white @ orth_inv
    covs_o = orth_inv.T @ covs_white @ orth_inv
    ev_o, vec_o = np.linalg.eigh(covs_o)
    clamp_o = floor_rtol * float(ev_o.max())
    known = noise_var is not None and noise_var > clamp_o
    split = floor_split(ev_w, floor_rtol, null_gap)
    noiseless = not known and split is not None and split[1] <= split[3] * (1 + 1e-9)
    if noiseless:
        to_white = np.eye(covs_white.shape[1])
        evals, vecs, halves = ev_w, vec_w, halves_white
        regime, noise = "noiseless", 0.0
    else:
        to_white = orth_inv                        # directions: w_white = orth_inv @ w_orth
        halves = orth_inv.T @ halves_white @ orth_inv
        evals, vecs = ev_o, vec_o
        if known:
            split = (float(noise_var * np.sqrt(null_gap)), float(noise_var), float("nan"), clamp_o)
        else:
            split = floor_split(evals, floor_rtol, null_gap)
        regime = "noisy"
    if split is None:
        raise NotIdentifiableError(
            "no environment has a zero-variance direction (no eigenvalue gap above the noise "
            "floor): the data look observational or the interventions are not perfect, so "
            "the subspace estimator cannot identify the latents")
    threshold, _, gap, clamp = split
    dims = np.sum(evals <= threshold, axis=1)
    if not noiseless:
        noise = float(np.median(evals[evals <= threshold])) if dims.sum() else 0.0
    bases = [_basis(to_white, vecs[k][:, : int(dims[k])]) for k in range(len(dims))]
    _, hvecs = np.linalg.eigh(halves)
    errors = np.array([
        _sin_max(_basis(to_white, hvecs[k, 0][:, : int(n)]),
                 _basis(to_white, hvecs[k, 1][:, : int(n)])) / 2.0
        for k, n in enumerate(dims)])
    env_gaps = _env_gaps(evals, dims, clamp, threshold)
    return NullSpaces(bases, dims, regime, threshold, noise, gap, env_gaps, errors)


def _basis(to_white: np.ndarray, V: np.ndarray) -> np.ndarray:
    return _orthonormal(to_white @ V)


# ---------------------------------------------------------------------------- search


@dataclass(frozen=True)
class Block:
    """A maximal signature found by the search.

    ``signature`` (K bool): the environments whose null space contains ``flat`` (d x r,
    orthonormal, whitened coordinates); ``new`` latents not found before share this signature.
    The block is a recovered latent iff ``new == 1`` and ``flat`` is a line.
    """

    signature: np.ndarray
    new: int
    flat: np.ndarray

    @property
    def is_line(self) -> bool:
        return self.new == 1 and self.flat.shape[1] == 1


def _orthonormal(B: np.ndarray) -> np.ndarray:
    if B.shape[1] == 0:
        return B
    Q, _ = np.linalg.qr(B)
    return Q


def _complement(U: np.ndarray) -> np.ndarray:
    """Orthonormal basis of the orthogonal complement of span(U) (U orthonormal)."""
    d, n = U.shape
    Q, _ = np.linalg.qr(U, mode="complete") if n else (np.eye(d), None)
    return Q[:, n:]


def _meet(B: np.ndarray, U: np.ndarray, R: np.ndarray, tol: float):
    """span(B) intersected with span(U) (R spans the complement of U), all orthonormal.

    Returns (basis of the intersection, largest accepted sin^2, smallest rejected sin^2).
    Uses whichever of U or R has fewer columns.
    """
    r = B.shape[1]
    if R.shape[1] == 0:
        return B, 0.0, 1.0
    if U.shape[1] == 0:
        return B[:, :0], 0.0, 1.0
    if R.shape[1] <= U.shape[1]:
        _, sin, Vt = np.linalg.svd(R.T @ B, full_matrices=True)
        sin2 = np.concatenate([sin**2, np.zeros(r - sin.size)])          # descending
        q = int(np.sum(sin2 > tol**2))
        keep = Vt[q:]
        acc = float(sin2[q]) if q < r else 0.0
        rej = float(sin2[q - 1]) if q > 0 else 1.0
    else:
        _, cos, Vt = np.linalg.svd(U.T @ B, full_matrices=True)
        sin2 = np.concatenate([1.0 - cos**2, np.ones(r - cos.size)])    # ascending
        c = int(np.sum(sin2 <= tol**2))
        keep = Vt[:c]
        acc = float(sin2[c - 1]) if c > 0 else 0.0
        rej = float(sin2[c]) if c < r else 1.0
    return B @ keep.T, acc, rej


def find_blocks(bases: list[np.ndarray], d: int, tol: float):
    """Peel latents: one maximal signature per round until all d latents are accounted for.

    ``bases`` are orthonormal null-space bases (d x n_k). Environments are tried in order of
    decreasing null dimension. Returns the blocks and, as a diagnostic, the largest accepted
    and the smallest rejected sin^2 over all intersection tests.
    """
    K = len(bases)
    dims = np.array([b.shape[1] for b in bases])
    order = [int(k) for k in np.argsort(-dims, kind="stable") if dims[k] > 0]
    comps = [_complement(b) for b in bases]
    blocks: list[Block] = []
    sigs = np.zeros((0, K), dtype=bool)
    news = np.zeros(0, dtype=np.int64)
    found = 0
    accepted_max, rejected_min = 0.0, 1.0
    while found < d:
        E = np.zeros(K, dtype=bool)
        inside_sigs, inside_new = sigs, news      # found blocks whose signature contains E
        B = np.eye(d)
        for k in order:
            meet, acc, rej = _meet(B, bases[k], comps[k], tol)
            c = meet.shape[1]
            rejected_min = min(rejected_min, rej)
            if c == 0:
                continue
            keep = inside_sigs[:, k]
            if c - int(inside_new[keep].sum()) < 1:
                continue
            accepted_max = max(accepted_max, acc)
            E[k] = True
            inside_sigs, inside_new = inside_sigs[keep], inside_new[keep]
            B = meet
        new = B.shape[1] - int(inside_new.sum())
        if new < 1:
            raise NotIdentifiableError(
                "inconsistent null-space dimensions (the flats do not add up to the latent "
                "dimension); the noise floor or angle_tol does not fit these data")
        new = min(new, d - found)
        blocks.append(Block(E, new, B))
        sigs = np.vstack([sigs, E])
        news = np.append(news, new)
        found += new
    return blocks, accepted_max, rejected_min


def refine_line(bases: list[np.ndarray], signature: np.ndarray) -> np.ndarray:
    """Least-squares intersection of the null spaces in ``signature``: the eigenvector of the
    smallest eigenvalue of sum_k (I - P_k)."""
    d = bases[0].shape[0]
    M = np.zeros((d, d))
    for k in np.flatnonzero(signature):
        M += np.eye(d) - bases[k] @ bases[k].T
    _, V = np.linalg.eigh(M)
    return V[:, 0]


def block_targets(blocks: list[Block]) -> np.ndarray:
    """K x d estimated target matrix: one column per latent (blocks repeated by ``new``)."""
    return np.stack([b.signature for b in blocks for _ in range(b.new)], axis=1)


# ------------------------------------------------------------------------------- fit


def _check_envs(envs) -> list[np.ndarray]:
    if not isinstance(envs, list | tuple) or len(envs) == 0:
        raise DataError("subspace: envs must be a non-empty list of (n_k x m) arrays")
    out = [np.ascontiguousarray(X, dtype=np.float64) for X in envs]
    m = out[0].shape[1] if out[0].ndim == 2 else -1
    for k, X in enumerate(out):
        if X.ndim != 2 or X.shape[1] != m:
            raise DataError(f"subspace: environment {k} has shape {X.shape}; expected (n_k x {m})")
        if X.shape[0] < 2:
            raise DataError(f"subspace: environment {k} has {X.shape[0]} rows; need at least 2")
        if not np.isfinite(X).all():
            raise DataError(f"subspace: environment {k} contains NaN/Inf values")
    return out


def check_hparams(hparams: dict) -> dict:
    """Defaults updated by ``hparams``; MncrlError on unknown names or bad values."""
    unknown = set(hparams) - set(DEFAULTS)
    if unknown:
        raise MncrlError(f"subspace: unknown hyper-parameter(s) {sorted(unknown)}; "
                         f"choose from {sorted(DEFAULTS)}")
    hp = {**DEFAULTS, **hparams}
    for name in ("floor_rtol", "angle_tol"):
        if not 0 < float(hp[name]) < 1:
            raise MncrlError(f"subspace: {name} must be in (0, 1), got {hp[name]}")
    if not float(hp["angle_safety"]) >= 1:
        raise MncrlError(f"subspace: angle_safety must be >= 1, got {hp['angle_safety']}")
    if not float(hp["null_gap"]) > 1:
        raise MncrlError(f"subspace: null_gap must be > 1, got {hp['null_gap']}")
    if hp["noise_var"] is not None and not float(hp["noise_var"]) >= 0:
        raise MncrlError(f"subspace: noise_var must be >= 0 or None, got {hp['noise_var']}")
    if int(hp["pilot_rows"]) < 2:
        raise MncrlError(f"subspace: pilot_rows must be >= 2, got {hp['pilot_rows']}")
    return hp


def fit(envs: list[np.ndarray], *, key: int | None = None, latent_dim: int | None = None,
        **hparams) -> Fit:
    """Fit the closed-form subspace estimator on per-environment blocks (n_k x m).

    ``key`` is accepted for interface compatibility and unused (the estimator is deterministic).
    ``latent_dim`` defaults to the numerical rank of the pooled covariance (pass it for noisy
    data with m > d). Raises NotIdentifiableError when the estimated signatures do not
    separate the latents, DataError on malformed input.
    """
    t0 = time.perf_counter()
    hp = check_hparams(hparams)
    envs = _check_envs(envs)
    mom = moments(envs, latent_dim, pilot_rows=int(hp["pilot_rows"]), floor_rtol=hp["floor_rtol"])
    t1 = time.perf_counter()
    result = fit_moments(mom, **hp)
    result.info["timings"]["moments"] = t1 - t0
    result.info["timings"]["total"] = time.perf_counter() - t0
    return result


def fit_moments(mom: Moments, **hparams) -> Fit:
    """The closed-form part: from whitened per-environment covariances to (W, targets)."""
    t0 = time.perf_counter()
    hp = check_hparams(hparams)
    K, d, _ = mom.covs.shape
    # exact re-whitening (the pilot whitening is approximate): pooled covariance = identity
    rewhite = _sym_power(pooled(mom.covs, mom.counts), -0.5, hp["floor_rtol"])
    covs = rewhite @ mom.covs @ rewhite
    orth = mom.orth @ rewhite
    noise_var = hp["noise_var"] if hp["noise_var"] is not None else mom.pca_noise
    halves = rewhite @ mom.halves @ rewhite
    ns = null_spaces(covs, halves, orth, floor_rtol=hp["floor_rtol"], null_gap=hp["null_gap"],
                     noise_var=noise_var)
    tol = angle_tolerance(ns.errors, hp["angle_tol"], hp["angle_safety"])
    t1 = time.perf_counter()
    blocks, acc, rej = find_blocks(ns.bases, d, tol)
    t2 = time.perf_counter()

    targets = block_targets(blocks)
    report = assumption4(targets)
    info = {
        "method": "subspace",
        "latent_dim": d,
        "reduced": mom.basis.shape[0] > d,
        "regime": ns.regime,
        "noise_var": ns.noise_var,
        "null_threshold": ns.threshold,
        "null_gap": ns.gap,
        "null_dims": ns.dims.tolist(),
        "env_gaps": ns.env_gaps.tolist(),
        "signatures": [np.flatnonzero(b.signature).tolist() for b in blocks for _ in range(b.new)],
        "null_space_errors": ns.errors.tolist(),
        "angle_tol": tol,
        "angle_margin": {"accepted_max_sin2": acc, "rejected_min_sin2": rej},
        "assumption4": {"satisfied": report.satisfied,
                        "unseparated": [list(p) for p in report.unseparated]},
        "hparams": hp,
        "timings": {"null_spaces": t1 - t0, "search": t2 - t1},
    }
    lines = [b.is_line for b in blocks for _ in range(b.new)]
    if not report.satisfied or not all(lines):
        first = {p[0] for p in report.unseparated}
        recovered = [j for j, ok in enumerate(lines) if ok and j not in first]
        raise _not_identifiable(targets, report.unseparated, recovered, d)

    W_white = np.stack([refine_line(ns.bases, b.signature) for b in blocks], axis=1)
    # unit columns in whitened coordinates = unit pooled within-environment variance
    W = _fix_signs(mom.basis @ (orth @ W_white))
    info["timings"]["closed_form"] = time.perf_counter() - t0
    return Fit(unmixing=W, targets=targets, info=info)


def angle_tolerance(errors: np.ndarray, angle_tol: float, angle_safety: float) -> float:
    """Sine tolerance of the intersection tests: ``angle_tol``, raised to ``angle_safety`` times
    the largest estimated null-space error when the data are noisier than that."""
    worst = float(np.max(errors)) if errors.size else 0.0
    return float(max(angle_tol, angle_safety * worst))


def _fix_signs(W: np.ndarray) -> np.ndarray:
    """Make the largest-magnitude entry of every column positive (deterministic output)."""
    idx = np.argmax(np.abs(W), axis=0)
    return W * np.sign(W[idx, np.arange(W.shape[1])])


def _not_identifiable(targets, unseparated, recovered, d) -> NotIdentifiableError:
    shown = ", ".join(f"({j},{i})" for j, i in unseparated[:10])
    more = f" and {len(unseparated) - 10} more" if len(unseparated) > 10 else ""
    rec = (f"latents still recovered on their own (estimated indices): {recovered}"
           if recovered else "no latent is recovered on its own")
    err = NotIdentifiableError(
        f"not identifiable: the estimated intervention signatures violate Assumption 4 "
        f"({len(unseparated)} unseparated ordered pairs (j, i) of estimated latents, i.e. no "
        f"environment intervenes on j without i: {shown}{more}); {rec}, out of {d}",
        targets=targets, unseparated=unseparated)
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
    reports_targets=True,
)
