"""`lincd`: linear causal disentanglement via interventions (Squires, Seigal, Bhate and Uhler,
ICML 2023), reimplemented from the paper's description.

Model: latents Z follow a linear SEM, B Z = noise with B = Omega^(-1/2) (I - A), observed through
X = G Z, H = G^+ so Z = H X. Environment 0 is observational; each of the d others intervenes on
one latent i_k (hard: row i_k of B becomes a multiple of e_i; soft: a different row over
{i_k} + pa(i_k)). The precision matrices are Theta_k = H^T B_k^T B_k H, so Delta_k = Theta_k -
Theta_0 lives on the rows of H of i_k and its parents: rank one when i_k is a source, rank two
otherwise, and rank one again once its ancestors' rows are projected off.

Everything is closed form on the environments' precision matrices on the signal subspace
(:mod:`mncrl.precision`), taken here in **observational-whitened** coordinates: with Sigma_0 =
L L^T (Cholesky) every Theta_k becomes L^T Theta_k L, so Theta_0 = I (the result does not depend
on the units of X, nor on any invertible transformation of it).

1. **Order** (:func:`causal_order`). d rounds fill the labels d-1, d-2, ..., 0. "Projecting off"
   rows S means P_S Delta_k P_S with P_S = I - S^T (S S^T)^(-1) S, the orthogonal projector onto
   the complement of the span of the rows S in these coordinates. For rows r acting on X this is
   the inner product <r, s> = r Sigma_0 s^T: two rows are orthogonal when the latents they
   extract are uncorrelated in the observational environment. (The paper uses the Euclidean
   inner product of X; in exact arithmetic any projector that annihilates span(S) gives the
   same ranks and the same H. Ours is coordinate-free and, measured on the paper's setting at
   N = 1e4, refused or mis-ordered fewer problems than the pooled-whitened coordinates of
   :mod:`mncrl.precision`, because sampling noise in Theta_0 is isotropic there.) Each round
   projects every remaining Delta_k off all rows found so far and scores it by
   s_1^2 / sum s_i^2 (1 for rank one); the environment with the best score is taken, and
   :class:`~mncrl.errors.NotIdentifiableError` is raised when that score is below
   ``min_score`` (0.9: a clearly rank-two change, e.g. a two-node intervention on comparable
   sources). Its ancestor set starts as every earlier label; labels are dropped greedily (the
   one whose removal keeps the highest score first) while the score without them stays >=
   ``rank_threshold`` (0.99, the paper's value for sample data; 1 - 1e-8 suits exact
   precision matrices), then the set is closed under the earlier labels' ancestor sets. The new
   row q is the top right singular vector of Delta_k projected off its ancestors' rows.
   In exact arithmetic the kept set is the intervened latent's ancestors, and q is its row of H
   orthogonalised against its ancestors' rows: H = R Q with R "triangular" along the causal
   partial order (the paper's partial-order RQ decomposition); with our inner product q_i X is
   a multiple of latent i's noise in the observational environment.
2. **Triangular factors** (:func:`cholesky_factors`). With Q stacked by label (parents have
   higher labels than children), Q^-T Theta_k Q^-1 = (B_k R)^T (B_k R) with B_k R upper
   triangular, so its upper Cholesky factor C_k is B_k R up to row signs.
3. **Targets and H** (:func:`assign_targets`). C_k and C_0 differ only in the row of the
   intervened latent. In the order of step 1, environment k takes the unassigned row i with
   the largest ||C_k[i] - C_0[i]||; R[i] = C_k[i]. H = R Q, mapped to X
   (:meth:`~mncrl.precision.Precisions.unmixing`), each column of W = H^T divided by its
   largest-magnitude entry (the paper's normalisation of H: that entry becomes +1).

What is identified. Hard (stochastic) interventions: row i_k of B_k is a multiple of e_i, so R
and H are recovered up to the row scaling fixed above: Zhat = Z up to permutation and scaling,
plus the targets and the causal partial order; ``info["weights"]`` is the latent SEM's weight
matrix in Zhat's scale (I - A = diag(B)^-1 B with B = C_0 R^-1). Soft interventions: steps 1
and 2 hold unchanged (targets and partial order are right), but row i of C_k is b'_i R with
b'_i the intervened mechanism's row, so Zhat_i is a multiple of Z_i - sum_j w'_ij Z_j (w' the
intervened weights): latent i mixed with its parents, not Z_i; ``info["weights"]`` has no
meaning then. (The paper's identifiability theorem is for perfect interventions; this is what
the algorithm returns under soft ones, derived from its steps and checked in the tests.)

Finite samples: a non-source whose incoming weights are small has a change that is nearly rank
one. For one parent with weight w and unit noises, a hard intervention doubling the noise's
standard deviation scores 0.99998 / 0.9992 / 0.989 for w = 0.1 / 0.25 / 0.5; a soft one that
also halves the weight scores like a hard one with w / 2. A source's score falls short of 1 by
the sampling error (~3e-4 at n = 2e5; 1e-3 to 2e-2 at n = 1e4 in the paper's setting, by the
intervention's strength: benchmarks/lincd_validation.py), so the order can come out wrong when
weak edges exist; the step-3 assignment of targets is more robust than the order.

Requirements: observational data (MncrlError otherwise, from :mod:`mncrl.precision`), exactly
d interventional environments (MncrlError), precision matrices that exist (a do-intervention:
NotIdentifiableError). A multi-node environment shows up as no close-to-rank-one projection at
some round (NotIdentifiableError naming the round and the best score) unless the other
environments' rows happen to explain it; a multi-node environment whose extra targets move the
precision only a little can pass ``min_score`` and give a wrong answer (the method assumes
single-node interventions; ``applicable`` says so). Deterministic: ``seed`` is ignored.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mncrl.errors import MncrlError, NotIdentifiableError
from mncrl.estimators.base import Estimator, Fit, Setting, needs_precisions

NAME = "lincd"
HPARAMS = {"rank_threshold": 0.99, "min_score": 0.9}


@dataclass(frozen=True)
class Order:
    """Step 1's result. ``envs[label]`` is the environment whose row got that label,
    ``rows`` (d x d) the rows q by label, ``ancestors[label]`` the labels projected off,
    ``scores[t]`` every candidate environment's rank-one score at round t (env -> score)."""

    envs: list[int]
    rows: np.ndarray
    ancestors: list[list[int]]
    scores: list[dict[int, float]]


def observational_whitening(cov0: np.ndarray, thetas: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(thetas in coordinates where the observational covariance is the identity, the map T of
    a row r there to the row r @ T of the input coordinates). With cov0 = L L^T the new
    coordinates are L^-1 y, so Theta becomes L^T Theta L."""
    L = np.linalg.cholesky(cov0)
    return np.einsum("ai,kab,bj->kij", L, thetas, L), np.linalg.inv(L)


def rank_one_score(M: np.ndarray) -> float:
    """s_1^2 / sum s_i^2 of M (1 for a rank-one matrix; 0 for the zero matrix)."""
    s = np.linalg.svd(M, compute_uv=False)
    total = float(s @ s)
    return float(s[0] ** 2 / total) if total > 0 else 0.0


def complement_projector(rows: np.ndarray, d: int) -> np.ndarray:
    """The orthogonal projector (d x d) onto the complement of the span of ``rows`` (r x d)."""
    if len(rows) == 0:
        return np.eye(d)
    basis, _ = np.linalg.qr(np.asarray(rows, dtype=np.float64).T)
    return np.eye(d) - basis @ basis.T


def project_off(delta: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """``delta`` projected off the span of ``rows`` on both sides: P delta P."""
    P = complement_projector(rows, delta.shape[0])
    return P @ delta @ P


def _closure(labels: set[int], ancestors: dict[int, list[int]]) -> list[int]:
    out = set(labels)
    for label in labels:
        out.update(ancestors[label])
    return sorted(out, reverse=True)


def prune(delta: np.ndarray, rows: dict[int, np.ndarray], threshold: float) -> set[int]:
    """The labels of ``rows`` still needed to make ``delta`` rank one: greedily drop the label
    whose removal keeps the highest score, while that score stays >= ``threshold``."""
    keep = set(rows)
    while keep:
        trial = {
            j: rank_one_score(project_off(delta, np.array([rows[i] for i in keep - {j}])))
            if len(keep) > 1
            else rank_one_score(delta)
            for j in keep
        }
        best = max(trial, key=lambda j: (trial[j], -j))
        if trial[best] < threshold:
            break
        keep.discard(best)
    return keep


def causal_order(deltas: np.ndarray, threshold: float, min_score: float) -> Order:
    """Step 1 (module docstring) on the K = d precision differences (K x d x d): prune with
    ``threshold``, refuse (NotIdentifiableError) when a round's best score is below
    ``min_score``."""
    K, d, _ = deltas.shape
    rows: dict[int, np.ndarray] = {}
    ancestors: dict[int, list[int]] = {}
    envs: dict[int, int] = {}
    scores: list[dict[int, float]] = []
    remaining = list(range(K))
    for t in range(d):
        label = d - 1 - t
        found = np.array([rows[j] for j in sorted(rows, reverse=True)]).reshape(-1, d)
        round_scores = {k: rank_one_score(project_off(deltas[k], found)) for k in remaining}
        scores.append(round_scores)
        k = max(remaining, key=lambda e: (round_scores[e], -e))
        if round_scores[k] < min_score:
            raise NotIdentifiableError(
                f"{NAME}: at round {t + 1} of {d} no environment's precision change is close to "
                f"rank one after projecting off the {t} rows found (best score "
                f"{round_scores[k]:.4f} < min_score {min_score}): not one single-node "
                f"intervention per latent?"
            )
        anc = _closure(prune(deltas[k], rows, threshold), ancestors)
        off = np.array([rows[j] for j in anc]).reshape(-1, d)
        _, _, vt = np.linalg.svd(project_off(deltas[k], off))
        rows[label], ancestors[label], envs[label] = vt[0], anc, k
        remaining.remove(k)
    Q = np.stack([rows[label] for label in range(d)])
    return Order(
        [envs[label] for label in range(d)], Q, [ancestors[label] for label in range(d)], scores
    )


def cholesky_factors(thetas: np.ndarray, Q: np.ndarray) -> np.ndarray:
    """Upper Cholesky factors C_k (K+1 x d x d) of Q^-T Theta_k Q^-1 (C_k^T C_k = that)."""
    Qinv = np.linalg.inv(Q)
    M = np.einsum("ai,kab,bj->kij", Qinv, thetas, Qinv)
    M = (M + np.swapaxes(M, 1, 2)) / 2
    try:
        return np.swapaxes(np.linalg.cholesky(M), 1, 2)
    except np.linalg.LinAlgError:
        raise NotIdentifiableError(
            f"{NAME}: a transformed precision matrix is not positive definite (the rows found "
            f"are nearly dependent)"
        ) from None


def assign_targets(C: np.ndarray, env_order: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """Step 3: (target label per interventional environment (K,), R (d x d)).

    ``C`` holds C_0 (observational) then C_1..C_K; environments are taken in ``env_order`` (the
    order step 1 found them), each taking the unassigned row where C_k - C_0 is largest."""
    d = C.shape[1]
    diff = np.linalg.norm(C[1:] - C[0], axis=2)
    target = np.full(len(env_order), -1)
    R = np.zeros((d, d))
    free = list(range(d))
    for k in env_order:
        i = max(free, key=lambda r: diff[k, r])
        target[k] = i
        R[i] = C[k + 1, i]
        free.remove(i)
    return target, R


def max_abs_entries(W: np.ndarray) -> np.ndarray:
    """The largest-magnitude entry of each column of W (signed); W / it normalises W."""
    return W[np.argmax(np.abs(W), axis=0), np.arange(W.shape[1])]


def fit(
    envs,
    *,
    seed: int = 0,
    latent_dim: int | None = None,
    observational=None,
    rank_threshold: float = 0.99,
    min_score: float = 0.9,
) -> Fit:
    """Fit LinCD (module docstring); ``seed`` is unused (the estimator is deterministic)."""
    from mncrl.precision import precisions

    if not 0 < rank_threshold <= 1:
        raise MncrlError(f"{NAME}: rank_threshold must be in (0, 1], got {rank_threshold!r}")
    prec = precisions(envs, observational, latent_dim, NAME)
    d, K = prec.d, len(prec.thetas) - 1
    if K != d:
        raise MncrlError(
            f"{NAME}: needs exactly one interventional environment per latent (K = d), got "
            f"K = {K} environments for d = {d} latents"
        )
    thetas, to_reduced = observational_whitening(prec.covs[0], prec.thetas)
    order = causal_order(thetas[1:] - thetas[0], rank_threshold, min_score)
    C = cholesky_factors(thetas, order.rows)
    target, R = assign_targets(C, [order.envs[label] for label in range(d - 1, -1, -1)])
    W = prec.unmixing(R @ order.rows @ to_reduced)
    scale = max_abs_entries(W)
    W, R = W / scale, R / scale[:, None]
    B = C[0] @ np.linalg.inv(R)
    weights = np.eye(d) - B / np.diag(B)[:, None]
    targets = np.zeros((K, d), dtype=bool)
    targets[np.arange(K), target] = True
    info = {
        "estimator": NAME,
        "latent_dim": d,
        "rank_threshold": float(rank_threshold),
        "rank_scores": [{str(k): s for k, s in r.items()} for r in order.scores],
        "order_envs": [order.envs[label] for label in range(d - 1, -1, -1)],
        "label_env": list(order.envs),
        "ancestors": order.ancestors,
        "target_norms": np.linalg.norm(C[1:] - C[0], axis=2).tolist(),
        "targets_agree_with_order": bool(np.array_equal(target[order.envs], np.arange(d))),
        "weights": weights.tolist(),
    }
    return Fit(unmixing=W, targets=targets, info=info)


def applicable(setting: Setting) -> str | None:
    """None when an observational environment and one stochastic or soft single-node
    intervention per latent are present; otherwise why not (one line)."""
    why = needs_precisions(setting, NAME)
    if why is not None:
        return why
    T = np.asarray(setting.targets, dtype=bool)
    if T.ndim != 2 or T.shape[0] != T.shape[1]:
        return f"{NAME} needs exactly one environment per latent (K = d), got targets {T.shape}"
    if not ((T.sum(axis=1) == 1).all() and (T.sum(axis=0) == 1).all()):
        return f"{NAME} needs single-node interventions, each latent targeted exactly once"
    return None


ESTIMATOR = Estimator(
    name=NAME,
    fit=fit,
    description="linear causal disentanglement (Squires et al. 2023): rank-one precision "
    "changes give the causal order, Cholesky factors the targets and H; closed form",
    presets={"default": dict(HPARAMS)},
    default_preset="default",
    needs_observational=True,
    reports_targets=True,
    applicable=applicable,
)

__all__ = [
    "ESTIMATOR",
    "HPARAMS",
    "Order",
    "applicable",
    "assign_targets",
    "causal_order",
    "cholesky_factors",
    "complement_projector",
    "fit",
    "max_abs_entries",
    "prune",
    "rank_one_score",
]
