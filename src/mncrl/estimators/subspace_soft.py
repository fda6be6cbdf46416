"""`subspace-soft`: closed form for stochastic and soft multi-node interventions (docs/peers.md).

Model. Gaussian latents from a linear SCM in some causal order, an observational environment 0
and K interventional environments; environment k changes the mechanisms of its targets T_k
(stochastic: parents cut, new noise; soft: parents kept, weights and noise changed), and a node's
changed mechanism is the same in every environment that intervenes on it. Then the latent
precision matrices obey Theta^Z_k - Theta^Z_0 = sum_{j in T_k} D_j with D_j supported on the
rows and columns {j} + pa(j), and in the coordinates of :mod:`mncrl.precision`
Delta_k = Theta_k - Theta_0 = sum_{j in T_k} W D_j W^T (W: the unmixing, z = W^T x).

Principle. For a direction v of the observation space, stack the K precision differences applied
to v into the *signature matrix* M(v) = [Delta_1 v, ..., Delta_K v] (d x K). For the mixing
column l_i of latent i (x = sum_i z_i l_i, so W^T l_i = e_i), D_j l_i is non-zero only when
j = i or j is a child of i, hence M(l_i) = sum_{j in {i} + ch(i)} (W D_j e_i) t_j^T, with t_j the
j-th column of the target matrix. For a sink of the latent graph M(l_i) has rank one and its row
space is the line of t_i: the environments that intervene on i. Projecting the K-dimensional
right-hand side off the target columns found so far turns the sinks of the remaining graph into
rank-one signatures, so the latents are peeled from the last in causal order to the first.

Algorithm (targets unknown, the target matrix needs full column rank d, K >= d):

1. Precision matrices on the signal subspace (:func:`mncrl.precision.precisions`).
2. Peel d times. With P the projector off the target columns found so far and v restricted to
   the complement of the mixing columns found so far, every candidate target column s in
   {0, 1}^K is scored by the best rank-one fit of M(v) P with right factor P s: the *residual
   ratio* ||M(v) (P - s~ s~^T)|| / ||M(v) P|| minimised over v (a generalized eigenproblem,
   batched over all 2^K - 1 candidates, :func:`candidate_ratios`). Among the candidates with a
   ratio <= ``rank_rtol`` the one of least z (the squared residual over its Gaussian sampling
   level, :func:`sampling_level`: about 1 for a true rank-one signature at any sample size)
   gives the next mixing column and target column; a beam keeps near-ties (:func:`peel`). No
   admissible candidate means no latent has a rank-one signature: NotIdentifiableError (the
   target matrix is rank deficient, or an intervened mechanism differs between environments,
   or an intervention is too weak).
3. A mixing column is determined only up to the mixing columns of the latents peeled before it
   (its descendants among them): identification up to ancestors. The representative is the one
   orthogonal to them in the whitened coordinates (step 2 searches v there), so a recovered
   latent carries its own latent plus a combination of latents earlier in the causal order.
4. Unmixing W = inverse of the mixing columns; targets from the conditional distribution of
   each recovered latent given the latents before it in the estimated order, per environment:
   it changes exactly in the environments intervening on it, whatever the mixing with ancestors
   (:func:`change_scores`, a Gaussian KL divergence; :func:`target_columns`).
5. ``hard=True`` (stochastic hard interventions: an intervened latent is independent of its
   non-descendants): regress each recovered latent on the ones before it in the environment
   where it changes most, and subtract; this removes the ancestors and identifies every latent
   up to scale (as ``lincd``'s and ``umni``'s hard-intervention steps do).

Everything after the covariances is a few batched eigen-decompositions of d x d matrices per
step; the candidate set doubles with each environment, hence ``max_envs``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from mncrl.errors import MncrlError, NotIdentifiableError
from mncrl.estimators.base import Estimator, Fit, Setting, needs_precisions
from mncrl.precision import Precisions, precisions

NAME = "subspace-soft"
HPARAMS = {
    # Largest residual ratio of a rank-one signature (step 2); also the test that leaves an
    # earlier latent out of a latent's projection (step 3).
    "rank_rtol": 0.2,
    # Stochastic hard interventions: remove the ancestors (step 5).
    "hard": False,
    # Candidate target columns are all 2^K - 1 non-zero binary vectors.
    "max_envs": 16,
    # Peelings kept at once, and rank-one signatures tried per peeling and step (step 2).
    "beam": 8,
    "branch": 3,
}
_DUP_TOL = 1e-9


# ------------------------------------------------------------------- signatures and candidates


def binary_candidates(K: int) -> np.ndarray:
    """Every non-zero binary vector of length K ((2^K - 1) x K, float64)."""
    codes = np.arange(1, 2**K, dtype=np.int64)
    return ((codes[:, None] >> np.arange(K - 1, -1, -1)) & 1).astype(np.float64)


def projector_off(vectors: list[np.ndarray], n: int) -> np.ndarray:
    """Orthogonal projector of R^n onto the complement of span(vectors)."""
    if not vectors:
        return np.eye(n)
    Q, _ = np.linalg.qr(np.stack(vectors, axis=1))
    return np.eye(n) - Q @ Q.T


def complement_basis(vectors: list[np.ndarray], n: int) -> np.ndarray:
    """Orthonormal basis (n x (n - r)) of the orthogonal complement of r independent vectors."""
    if not vectors:
        return np.eye(n)
    Q, _ = np.linalg.qr(np.stack(vectors, axis=1), mode="complete")
    return Q[:, len(vectors) :]


def _inv_sqrt_psd(G: np.ndarray) -> np.ndarray:
    evals, evecs = np.linalg.eigh(G)
    floor = max(evals[-1], np.finfo(float).tiny) * 1e-12
    return (evecs / np.sqrt(np.maximum(evals, floor))) @ evecs.T


def candidate_ratios(
    deltas: np.ndarray,
    comp: np.ndarray,
    proj: np.ndarray,
    cands: np.ndarray,
    noise: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(ratio, z, best direction (C x d)) per candidate of the rank-one fit of the signature
    matrix M(v) proj with right factor proj s, v in the span of ``comp`` (d x r).

    With B(u) = sum_k u_k Delta_k comp and G = sum over an orthonormal basis q of range(proj) of
    B(q)^T B(q), the squared ratio is 1 - max_v (v' B(s~)' B(s~) v) / (v' G v): one top
    generalized eigenvalue per candidate, batched. ``z`` is the squared residual over the value
    sampling error alone would give it (:func:`sampling_level`; ``noise`` = (precision matrices
    of environments 0..K, their rows)), about 1 for a true rank-one signature whatever the
    sample size, growing with it otherwise; inf without ``noise``.
    """
    Dc = deltas @ comp  # K x d x r
    evals, evecs = np.linalg.eigh(proj)
    basis = evecs[:, evals > 0.5]  # orthonormal basis of range(proj)
    Bq = np.einsum("kq,kir->qir", basis, Dc)
    root = _inv_sqrt_psd(np.einsum("qir,qis->rs", Bq, Bq))
    ps = cands @ proj  # proj is symmetric
    norms = np.linalg.norm(ps, axis=1)
    keep = norms > _DUP_TOL * np.linalg.norm(cands, axis=1)
    ratios = np.full(len(cands), np.inf)
    z = np.full(len(cands), np.inf)
    dirs = np.zeros((len(cands), comp.shape[0]))
    if not keep.any():
        return ratios, z, dirs
    s = ps[keep] / norms[keep, None]
    F = np.einsum("ck,kir,rs->cis", s, Dc, root)  # C x d x r
    _, sv, vt = np.linalg.svd(F, full_matrices=False)
    ratios[keep] = np.sqrt(np.clip(1.0 - sv[:, 0] ** 2, 0.0, None))
    v = np.einsum("rs,cs->cr", root, vt[:, 0, :])
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    dirs[keep] = v @ comp.T
    if noise is not None:
        Q = proj[None] - np.einsum("ck,cl->ckl", s, s)
        residual = np.einsum("kij,cj,ckl->cli", deltas, dirs[keep], Q)
        zk = (residual**2).sum(axis=(1, 2)) / sampling_level(dirs[keep], Q, *noise)
        # one direction left in range(proj): every fit is exact, there is nothing to test
        z[keep] = np.where(np.linalg.norm(Q, axis=(1, 2)) < 1e-9, 0.0, zk)
    return ratios, z, dirs


def sampling_level(v: np.ndarray, Q: np.ndarray, thetas: np.ndarray, counts: np.ndarray):
    """Expected squared norm of [E_1 v, ..., E_K v] Q when E_k = error of Delta_k from sampling
    alone (C directions v, C projectors Q, K x K): a precision estimate's error has
    E||E v||^2 = (tr(Theta) v'Theta v + ||Theta v||^2) / n for Gaussian data, independent
    between environments, and Delta_k = Theta_k - Theta_0 shares environment 0's error."""
    tv = np.einsum("kij,cj->cki", thetas, v)  # C x (K+1) x d
    quad = np.einsum("cki,ci->ck", tv, v)
    level = (np.trace(thetas, axis1=1, axis2=2)[None] * quad + (tv**2).sum(axis=2)) / counts
    own = np.einsum("ck,ckl->c", level[:, 1:], Q**2)
    shared = level[:, 0] * (Q.sum(axis=1) ** 2).sum(axis=1)
    return np.maximum(own + shared, np.finfo(float).tiny)


def same_direction(cands: np.ndarray, proj: np.ndarray, col: np.ndarray) -> np.ndarray:
    """Indices of the candidates whose projection by ``proj`` is parallel to that of ``col``
    (the binary columns a peeling step cannot tell apart)."""
    ps = cands @ proj
    ps /= np.maximum(np.linalg.norm(ps, axis=1, keepdims=True), np.finfo(float).tiny)
    ref = proj @ col
    ref = ref / np.linalg.norm(ref)
    return np.flatnonzero(np.abs(ps @ ref) > 1 - 1e-9)


def distinct_best(ratios: np.ndarray, cands: np.ndarray, proj: np.ndarray, limit: int) -> list[int]:
    """Up to ``limit`` candidate indices, best ratio first, one per projected direction
    (candidates whose projections are parallel are one hypothesis for the peeling)."""
    ps = cands @ proj
    ps /= np.maximum(np.linalg.norm(ps, axis=1, keepdims=True), np.finfo(float).tiny)
    picked: list[int] = []
    for i in np.argsort(ratios, kind="stable"):
        if not np.isfinite(ratios[i]) or len(picked) == limit:
            break
        if all(abs(ps[i] @ ps[j]) <= 1 - 1e-9 for j in picked):
            picked.append(int(i))
    return picked


# ------------------------------------------------------------------------------- the peeling


@dataclass(frozen=True)
class Path:
    """A peeling in progress: mixing and target columns (peeling order), each step's residual
    ratio and z (:func:`candidate_ratios`)."""

    mix: tuple
    cols: tuple
    ratios: tuple
    z: tuple

    @property
    def worst(self) -> float:
        """The largest step z (the path's least convincing rank-one signature)."""
        return max(self.z, default=0.0)


def peel(P: Precisions, rank_rtol: float, beam: int, branch: int) -> list[Path]:
    """Complete peelings (module docstring, step 2), at most ``beam`` of them, each step
    extending every kept path by its ``branch`` best distinct rank-one signatures (smallest z:
    residual over its sampling level) with ratio <= ``rank_rtol``; paths are ranked by their
    largest step z. NotIdentifiableError when no path can be completed."""
    deltas, noise = P.deltas, (P.thetas, P.counts.astype(np.float64))
    K, d, _ = deltas.shape
    cands = binary_candidates(K)
    paths = [Path((), (), (), ())]
    for t in range(d):
        grown: list[Path] = []
        best_ratio = np.inf
        for path in paths:
            proj = projector_off(list(path.cols), K)
            ratios, z, dirs = candidate_ratios(
                deltas, complement_basis(list(path.mix), d), proj, cands, noise
            )
            best_ratio = min(best_ratio, float(ratios.min()))
            z = np.where(ratios <= rank_rtol, z, np.inf)
            for i in distinct_best(z, cands, proj, branch):
                grown.append(
                    Path(
                        path.mix + (dirs[i],),
                        path.cols + (cands[i],),
                        path.ratios + (ratios[i],),
                        path.z + (z[i],),
                    )
                )
        if not grown:
            raise NotIdentifiableError(
                f"{NAME}: after {t} of {d} latents no precision-difference signature is rank "
                f"one (best residual ratio {best_ratio:.3g} > rank_rtol {rank_rtol:g}): the "
                f"target matrix does not have full column rank, an intervened mechanism differs "
                f"between environments, or the interventions are too weak for the sample size"
            )
        paths = _distinct_paths(sorted(grown, key=lambda p: p.worst))[:beam]
    return paths


def _distinct_paths(paths: list[Path]) -> list[Path]:
    """The first of the paths that peeled the same target columns in the same order (their
    mixing columns differ only by sampling error): one hypothesis each."""
    seen: set = set()
    out = []
    for p in paths:
        key = tuple(tuple(c.astype(int)) for c in p.cols)
        if key not in seen:
            seen.add(key)
            out.append(p)
    return out


# -------------------------------------------------------------------------- targets and hard


def _conditionals(cov: np.ndarray, mean: np.ndarray, j: int, before: list[int]):
    """(intercept, coefficients, residual variance) of latent j given ``before``."""
    if not before:
        return mean[j], np.zeros(0), cov[j, j]
    S = cov[np.ix_(before, before)]
    beta = np.linalg.solve(S, cov[before, j])
    return mean[j] - beta @ mean[before], beta, cov[j, j] - cov[j, before] @ beta


def change_scores(covs: np.ndarray, means: np.ndarray) -> np.ndarray:
    """(K x d) KL divergence of each latent's conditional given the latents before it (in
    index order) from environment k (row k, environment k + 1 of ``covs``) to the observational
    environment 0. Unchanged by rescaling a latent or adding earlier latents to it."""
    K1, d, _ = covs.shape
    scores = np.zeros((K1 - 1, d))
    for j in range(d):
        before = list(range(j))
        a0, b0, v0 = _conditionals(covs[0], means[0], j, before)
        for k in range(1, K1):
            ak, bk, vk = _conditionals(covs[k], means[k], j, before)
            db = bk - b0
            shift = (ak - a0 + db @ means[k][before]) ** 2 + db @ covs[k][
                np.ix_(before, before)
            ] @ db
            r = vk / v0
            scores[k - 1, j] = 0.5 * (r - 1.0 - np.log(r) + shift / v0)
    return scores


def noise_level(scores: np.ndarray) -> float:
    """The size of a change score in an environment that does not intervene: the median over
    latents of each latent's smallest score (a latent not intervened everywhere has an
    unchanged environment, whose score is sampling error plus the error of the unmixing)."""
    return float(max(np.median(scores.min(axis=0)), np.finfo(float).tiny))


def target_columns(scores: np.ndarray, cols: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """((K x d) bool targets, (d,) margins): for each latent the binary column, among those
    with the same projected direction as the peeled one (``cols``: peeled target columns,
    K x d, latent order = scores' order, first latent peeled last), that best separates large
    change scores from small ones: the largest *margin*, the smallest score it calls a target
    over the largest it does not (at least :func:`noise_level`)."""
    K, d = scores.shape
    floor = noise_level(scores)
    cands = binary_candidates(K) > 0.5
    out = np.zeros((K, d), dtype=bool)
    margins = np.zeros(d)
    for j in range(d):
        later = [cols[:, i] for i in range(j + 1, d)]  # peeled before j
        same = cands[same_direction(cands.astype(float), projector_off(later, K), cols[:, j])]
        on = np.where(same, scores[None, :, j], np.inf).min(axis=1)
        off = np.where(same, -np.inf, scores[None, :, j]).max(axis=1)
        m = on / np.maximum(off, floor)
        best = int(np.argmax(m))
        out[:, j], margins[j] = same[best], m[best]
    return out, margins


def remove_ancestors(W: np.ndarray, covs: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """``hard=True`` (module docstring, step 5): column j of W (latent order) minus its
    regression on columns 0..j-1 in the environment where latent j changes most."""
    W = W.copy()
    for j in range(1, W.shape[1]):
        k = int(np.argmax(scores[:, j])) + 1
        C = W.T @ covs[k] @ W
        before = list(range(j))
        beta = np.linalg.solve(C[np.ix_(before, before)], C[before, j])
        W[:, j] -= W[:, before] @ beta
    return W


# ------------------------------------------------------------------------------------ the fit


def check_hparams(hparams: dict) -> dict:
    hp = {**HPARAMS, **hparams}
    unknown = sorted(set(hp) - set(HPARAMS))
    if unknown:
        raise MncrlError(f"{NAME}: unknown hyper-parameter '{unknown[0]}'")
    if not 0 < float(hp["rank_rtol"]) < 1:
        raise MncrlError(f"{NAME}: rank_rtol must be in (0, 1), got {hp['rank_rtol']!r}")
    if not isinstance(hp["hard"], bool | np.bool_):
        raise MncrlError(f"{NAME}: hard must be true or false, got {hp['hard']!r}")
    for key in ("max_envs", "beam", "branch"):
        if int(hp[key]) < 1:
            raise MncrlError(f"{NAME}: {key} must be an integer >= 1, got {hp[key]!r}")
    return hp


def fit(
    envs, *, seed: int = 0, latent_dim: int | None = None, observational=None, **hparams
) -> Fit:
    """Fit on interventional blocks ``envs`` and the ``observational`` rows; ``seed`` unused."""
    from mncrl.threads import single_threaded_blas

    t0 = time.perf_counter()
    hp = check_hparams(hparams)
    K = len(envs) if isinstance(envs, list | tuple) else 0
    if K > int(hp["max_envs"]):
        raise MncrlError(
            f"{NAME}: {K} environments, more than max_envs = {hp['max_envs']} (the candidate "
            f"target columns number 2^K - 1); raise max_envs or use fewer environments"
        )
    with single_threaded_blas():
        P = precisions(envs, observational, latent_dim, NAME)
        return fit_precisions(P, hp, t0)


@dataclass(frozen=True)
class Explained:
    """A complete peeling turned into an unmixing (reduced coordinates, latent order = causal
    order estimate), its change scores and targets, and its ``violation``: the summed change
    scores of the environments it says do not intervene on a latent (0 for the truth, up to
    sampling error)."""

    W: np.ndarray
    scores: np.ndarray
    targets: np.ndarray
    margin: float


def explain(P: Precisions, path: Path) -> Explained:
    """Steps 3-4 of the module docstring for one peeling."""
    order = list(range(P.d))[::-1]  # the last peeled first
    L = np.stack([path.mix[t] for t in order], axis=1)  # mixing columns, reduced coordinates
    W = np.linalg.inv(L).T
    covs_z = np.einsum("ai,kab,bj->kij", W, P.covs, W)
    scores = change_scores(covs_z, P.means @ W)
    targets, margins = target_columns(scores, np.stack([path.cols[t] for t in order], axis=1))
    return Explained(W, scores, targets, float(margins.min()))


def fit_precisions(P: Precisions, hp: dict, t0: float | None = None) -> Fit:
    """The estimator on precomputed :class:`~mncrl.precision.Precisions`."""
    t0 = time.perf_counter() if t0 is None else t0
    deltas = P.deltas
    K, d, _ = deltas.shape
    if K < d:
        raise NotIdentifiableError(
            f"{NAME}: {K} interventional environments for {d} latents; the target matrix needs "
            f"full column rank, so at least {d} environments"
        )
    t1 = time.perf_counter()
    paths = peel(P, float(hp["rank_rtol"]), int(hp["beam"]), int(hp["branch"]))
    found = [explain(P, path) for path in paths]
    pick = int(np.argmax([f.margin for f in found]))
    W, scores, targets = found[pick].W, found[pick].scores, found[pick].targets
    if hp["hard"]:
        W = remove_ancestors(W, P.covs, scores)
    W = W / np.sqrt(np.einsum("ai,ab,bi->i", W, P.covs[0], W))  # unit observational variance
    info = {
        "estimator": NAME,
        "latent_dim": d,
        "hard": bool(hp["hard"]),
        "rank_rtol": float(hp["rank_rtol"]),
        "rank_one_ratios": [float(r) for r in paths[pick].ratios],
        "rank_one_z": [float(v) for v in paths[pick].z],
        "peelings": [
            {"worst_z": p.worst, "margin": f.margin} for p, f in zip(paths, found, strict=True)
        ],
        "chosen_peeling": pick,
        "change_scores": scores.tolist(),
        "timings": {"peel": time.perf_counter() - t1, "total": time.perf_counter() - t0},
    }
    return Fit(unmixing=P.unmixing(W.T), targets=targets, info=info)


def applicable(setting: Setting) -> str | None:
    """None when the theory covers ``setting`` (module docstring), else the reason."""
    why = needs_precisions(setting, NAME)
    if why is not None:
        return why
    T = np.asarray(setting.targets, dtype=float)
    if np.linalg.matrix_rank(T) < T.shape[1]:
        return "the target matrix does not have full column rank"
    return None


ESTIMATOR = Estimator(
    name=NAME,
    fit=fit,
    description="ours, closed form for stochastic/soft multi-node interventions: rank-one "
    "signatures of precision differences; up to ancestors (soft), exact with hard=true",
    presets={"default": dict(HPARAMS), "hard": {**HPARAMS, "hard": True}},
    default_preset="default",
    needs_observational=True,
    reports_targets=True,
    applicable=applicable,
)

__all__ = [
    "ESTIMATOR",
    "HPARAMS",
    "NAME",
    "binary_candidates",
    "candidate_ratios",
    "change_scores",
    "fit",
    "peel",
    "remove_ancestors",
    "target_columns",
]
