"""`umni`: linear causal representation learning from unknown multi-node interventions (Varici,
Acarturk, Shanmugam and Tajer, NeurIPS 2024), reimplemented from the paper's description.

Model: latents Z follow a linear SEM observed through an injective linear map. Environment 0 is
observational; each of K = d interventional environments applies stochastic (hard: parents cut,
or soft: parents kept) interventions to an unknown *set* of latents, the (K x d) target matrix T
being invertible over the reals. Everything runs on the environments' precision matrices Theta_k
in the standardised, whitened signal-subspace coordinates of :mod:`mncrl.precision` (nothing
depends on the units of X); there the rows of the true encoder are h_1..h_d.

Score differences. Delta_k = Theta_k - Theta_0 is environment k's (Gaussian) score difference,
sum_i T[k, i] M_i with M_i the change of latent i's mechanism, supported on the rows h_s of i and
its parents. For an integer vector w, Delta_w = sum_k w_k Delta_k = sum_i u_i M_i with u = T^T w,
and R_w = Delta_w Sigma_0 Delta_w (Sigma_0: the observational covariance, i.e. the second moment
of the centred observational data; the published script evaluates score differences on
observational samples) has the column space span{h_s : s in N(u)}, N(u) = the latents with
u_i != 0 and their parents.

Rank-one test. "Rank one projected off rows S": with Q an orthonormal basis of the complement of
span(S) and l1 >= l2 the top eigenvalues of Q^T R_w Q, (a) l2 / l1 <= ``rank_rtol`` (relative:
no drift with |w|^2 like the published absolute 0.05), (b) l2 <= z * (its sampling level) with
z <= ``noise_tol``: the level is E||Q^T (Delta_w-hat - Delta_w) L_0||_F^2 from the asymptotic
covariance of Gaussian precision estimates (:meth:`Scores.noise`; it falls like 1 / n), and
(c) l1 >= ``energy_rtol`` * trace(R_w). (b) decides in practice: at n = 1e5 per environment true
rank-one candidates measured z <= 1.1 while nearly all rank-two ones had l2 / l1 in the same
1e-5..1e-3 range but z >= 5; l2 / l1 alone could not separate them.

1. **Causal order** (:func:`causal_order`). For t = 0..d-1, every w in {-kappa..kappa}^K (0, -w
   duplicates and non-primitive vectors skipped, sorted by L1 norm: :func:`weight_grid`) is
   scored projected off the rows found so far, in chunks through one vectorised
   ``numpy.linalg.eigvalsh`` each. The kept w is the *first* (simplest) one passing at the
   strictest tier z <= noise_tol * (0.1, 0.3, 1) (:func:`best_candidate`; the smallest l2 / l1
   instead favours near cancellations: two new latents whose mechanism changes sum to almost
   rank one for that ratio of integers; measured 8-9 wrong fits of 20 against 2 in the
   published setting, n = 5, 6, hard). NotIdentifiableError
   when none passes. With p the top eigenvector, the new row is R_w p: a vector of R_w's column
   space (so a combination of h_t and the rows of N(u) only) whose projection is p. In exact
   arithmetic the kept u involves exactly one latent not yet found, whose parents all are: the
   rows come in a causal order and estimated latent t is Z_t plus earlier latents.
2. **Up to ancestors** (:func:`refine_ancestors`). For t = d-2..0 and j = t+1..d-1 (t implied
   an ancestor of j through some s between them is not tested), the combinations a w_j + b w_t
   (a in 1..kappa, b in -``pair_bound``..pair_bound: the coefficient to cancel grows with the
   updates; with |b| <= kappa, 12 % (d = 5) and 40 % (d = 6) of exact-arithmetic problems kept
   a removable non-ancestor, none with pair_bound = 8) are
   tested projected off the rows s < j, s != t. In exact arithmetic one is rank one iff t is
   not an ancestor of j (the rows between them are already cleaned: the loop order); the
   direction of the projected column space then gives the coefficient c of row t in h_j, row j
   becomes row_j + c row_t and w_j becomes a w_j + b w_t. Otherwise t is marked an ancestor of
   j. Result: estimated latent j is a combination of Z_j and its ancestors (the paper's
   identifiability up to ancestors for soft interventions; a wrong "not an ancestor" only adds
   an ancestor's row, so the guarantee needs only the true non-ancestors to pass).
3. **Hard interventions** (``hard=True``; :func:`hard_rows`). Under a hard intervention on j,
   Z_j is independent of every latent before it in the causal order. For each j the regression
   of estimated latent j on the earlier estimated latents (they span the true earlier latents)
   is computed in every environment from the covariances; in the environment where its
   coefficients move most from the observational ones (by more than ``hard_tol`` in units of
   the predecessors' and of the observational residual's standard deviations; that environment
   intervenes on j) the regression is subtracted from row j. When none moves that far, latent j
   is independent of its predecessors already in the observational environment, whose
   regression is subtracted. Either way row j becomes h_j up to scale: Zhat = Z up to
   permutation and scaling. All earlier latents are used, not only the estimated ancestors (the
   same answer in exact arithmetic, without inheriting step 2's errors). With soft
   interventions this step is wrong (Z_j still depends on its parents), which is why ``hard``
   defaults to False: the data do not say which kind of intervention produced them (preset
   ``hard`` turns it on).

Targets (``Fit.targets``, K x d, columns = estimated latents). The kept weights W (K x d,
column t = w_t) satisfy T^T W = U with U[i, t] != 0 only for i = latent t or an (estimated)
ancestor of it, non-zero on the diagonal; so W^-1 = U^-1 T^T: row t of W^-1 is the target column
of latent t plus multiples of its descendants' target columns, equal to it (up to scale) only
when every kept combination isolates its latent (U diagonal; measured for 7-60 % of the
problems). ``info["targets_from_weights"]`` is that support of W^-T, ``info["targets_agree"]``
whether it equals ``Fit.targets``. ``Fit.targets`` itself comes from mechanism changes: latent
j is a target of environment k when the regression of estimated latent j on the earlier ones
differs from the observational one (coefficients, in the units above, by more than
``target_tol``, or |log residual-variance ratio| > ``target_tol``). In a causal order this
regression is invariant exactly across the environments that do not intervene on j, so this
holds after step 1 already, for soft and hard interventions alike. A mean shift alone is
invisible (Gaussian scores use precision matrices only).

Output: columns of W in the estimated causal order, scaled to unit observational variance.
``info``: ``causal_order`` (0..d-1: the column order is the causal order), ``weights`` (row t:
the integer vector of latent t after step 2; ``order_weights`` after step 1), ``rank_scores``,
``rank_z`` and ``energies`` (l2 / l1, z and l1 / trace(R_w) of each step-1 choice),
``ancestors`` (d x d, [t, j]: t is an estimated ancestor of j), ``ancestor_scores`` and
``ancestor_z`` (of each tested pair's best candidate; None: implied, not tested), ``hard``
(whether step 3 ran) with ``hard_envs`` (the environment whose regression was subtracted, -1
for the observational one) and ``hard_changes``, ``coef_changes`` / ``logvar_changes`` (K x d),
``targets_from_weights``, ``targets_agree`` and ``search`` (candidates scored, grid size,
seconds).

Cost: step 1 scores ~((2 kappa + 1)^K - 1) / 2 candidates at each of the d steps (d * 5^d / 2
small eigen-decompositions for kappa = 2; measured by ``benchmarks/umni_validation.py
--cost``). Above ``max_latents`` (8) the fit is refused with an MncrlError instead of running
for minutes to hours. Requirements: observational data (MncrlError, from
:mod:`mncrl.precision`), K = d interventional environments (MncrlError), precision matrices
that exist (a do-intervention: NotIdentifiableError), a rank-one combination at every step
(NotIdentifiableError naming the step and the closest candidate; e.g. a singular target
matrix, or kappa too small for the design). Deterministic: ``seed`` is ignored.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np

from mncrl.errors import MncrlError, NotIdentifiableError
from mncrl.estimators.base import Estimator, Fit, Setting, needs_precisions

NAME = "umni"
HPARAMS = {
    "kappa": 2,
    "rank_rtol": 0.01,
    "noise_tol": 3.0,
    "energy_rtol": 1e-3,
    "pair_bound": 8,
    "hard": False,
    "hard_tol": 0.1,
    "target_tol": 0.1,
    "max_latents": 8,
    "chunk": 8192,
}
# rows of the estimated encoder whose smallest/largest singular value falls below this are
# (numerically) collinear: no answer (NotIdentifiableError); a step-2 update that would leave
# a row with less than this part outside the other rows' span is refused
MIN_INDEPENDENCE = 1e-6
# a candidate's tier: the first k with z <= noise_tol * TIERS[k] (best_candidate)
TIERS = (0.1, 0.3, 1.0)


@dataclass(frozen=True)
class Scores:
    """What every rank test needs: B_k = Delta_k L_0 (K x d x d, L_0 L_0^T = Sigma_0, so
    R_w = (sum_k w_k B_k)(...)^T), the precision matrices (K+1 x d x d, observational first),
    the sample sizes (K+1,) and L_0."""

    B: np.ndarray
    thetas: np.ndarray
    counts: np.ndarray
    L0: np.ndarray

    @classmethod
    def from_precisions(cls, thetas: np.ndarray, covs: np.ndarray, counts) -> Scores:
        L0 = np.linalg.cholesky(covs[0])
        B = (thetas[1:] - thetas[0]) @ L0
        return cls(B, thetas, np.asarray(counts, dtype=np.float64), L0)

    @property
    def d(self) -> int:
        return self.B.shape[1]

    def noise(self, Q: np.ndarray) -> np.ndarray:
        """a_k (K+1,): E||Q^T E_k L_0||_F^2 for the sampling error E_k of Theta_k (Gaussian
        data: Theta_k^(1/2) G Theta_k^(1/2) / sqrt(n_k), G symmetric with unit variance off the
        diagonal), i.e. [tr(Q^T Theta Q) tr(L_0^T Theta L_0) + ||Q^T Theta L_0||_F^2] / n_k. The
        projected R_w's noise is then sum_k w_k^2 a_k + (sum_k w_k)^2 a_0."""
        QT = np.einsum("ia,kij->kaj", Q, self.thetas)
        first = np.einsum("kaj,ja->k", QT, Q) * np.einsum(
            "ia,kij,jb->k", self.L0, self.thetas, self.L0
        )
        second = (np.einsum("kaj,jb->kab", QT, self.L0) ** 2).sum(axis=(1, 2))
        return (first + second) / self.counts


@dataclass(frozen=True)
class Search:
    """The chosen candidate of a batch: its index (-1: none passed), l2 / l1 (``ratio``), l2
    over its expected sampling level (``z``), l1 / trace(R_w) (``energy``), the number of
    candidates scored, the top eigenvector p (full coordinates) of the projected R_w and
    ``row`` = R_w p (normalised): the vector of R_w's column space whose projection is p. When
    none passed, ``ratio`` and ``z`` are those of the candidate with the smallest z."""

    index: int
    ratio: float
    z: float
    energy: float
    evaluated: int
    direction: np.ndarray
    row: np.ndarray


def weight_grid(K: int, kappa: int) -> np.ndarray:
    """Integer vectors in {-kappa..kappa}^K (n x K, int8 so that K = 10 still fits in ~0.3 GB):
    non-zero, first non-zero entry positive (w and -w give the same R_w) and primitive (gcd 1:
    2w gives the same ranks as w), sorted by L1 norm (ties lexicographic)."""
    if not 1 <= kappa <= 127:
        raise MncrlError(f"{NAME}: kappa must be between 1 and 127, got {kappa}")
    grid = np.indices((2 * kappa + 1,) * K, dtype=np.int8).reshape(K, -1).T - np.int8(kappa)
    first = grid[np.arange(len(grid)), np.argmax(grid != 0, axis=1)]
    grid = grid[(first > 0) & (np.gcd.reduce(np.abs(grid), axis=1) == 1)]
    order = np.argsort(np.abs(grid).sum(axis=1, dtype=np.int64), kind="stable")
    return grid[order]


def complement(rows: np.ndarray, d: int) -> np.ndarray:
    """Orthonormal basis (d x (d - r)) of the orthogonal complement of the span of r rows."""
    rows = np.asarray(rows, dtype=np.float64).reshape(-1, d)
    if rows.shape[0] == 0:
        return np.eye(d)
    _, _, vt = np.linalg.svd(rows)
    return vt[rows.shape[0] :].T


def rank_scores(
    sc: Scores, Q: np.ndarray, w: np.ndarray, energy_rtol: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(ratio l2 / l1, z = l2 / expected sampling level, energy l1 / trace(R_w)) of Q^T R_w Q
    for each weight vector (rows of ``w``); ratio and z are inf when the energy is below
    ``energy_rtol``. With a one-dimensional Q, l2 = 0."""
    QB = np.einsum("ia,kij->kaj", Q, sc.B)
    Y = np.einsum("nk,kaj->naj", w, QB)
    lam = np.linalg.eigvalsh(Y @ Y.transpose(0, 2, 1))
    total = np.einsum("nk,kl,nl->n", w, np.einsum("kij,lij->kl", sc.B, sc.B), w)
    top = lam[:, -1]
    energy = np.where(total > 0, top / np.where(total > 0, total, 1.0), 0.0)
    second = np.maximum(lam[:, -2], 0.0) if lam.shape[1] > 1 else np.zeros(len(w))
    a = sc.noise(Q)
    level = (w**2) @ a[1:] + w.sum(axis=1) ** 2 * a[0]
    ok = (energy >= energy_rtol) & (top > 0)
    ratio = np.where(ok, second / np.where(top > 0, top, 1.0), np.inf)
    z = np.where(ok & (level > 0), second / np.where(level > 0, level, 1.0), np.inf)
    return ratio, z, energy


def best_candidate(
    sc: Scores,
    Q: np.ndarray,
    weights: np.ndarray,
    *,
    rank_rtol: float,
    noise_tol: float,
    energy_rtol: float,
    chunk: int,
) -> Search:
    """The first weight vector (in the order of the rows of ``weights``) whose R_w projected
    on the columns of Q is rank one (l2 / l1 <= rank_rtol and l1 >= energy_rtol *
    trace(R_w)) at the strictest noise tier possible: z <= noise_tol * TIERS[0], else <=
    noise_tol * TIERS[1], ...

    Taking the smallest l2 / l1 over thousands of candidates instead would favour near
    cancellations (a combination of two new latents' mechanism changes whose sum happens to be
    close to rank one for that particular ratio of integers) over true single-latent
    combinations: measured far more wrong picks (benchmarks/umni_validation.py). With a
    one-dimensional complement every candidate is trivially rank one and the one keeping the
    largest share of trace(R_w) is taken."""
    one_dim = Q.shape[1] == 1
    levels = noise_tol * np.asarray(TIERS, dtype=np.float64)
    best_key, best_i, best_vals = (math.inf, math.inf), -1, (math.inf, math.inf, 0.0)
    fallback = (math.inf, math.inf)
    for start in range(0, len(weights), chunk):
        w = weights[start : start + chunk].astype(np.float64)
        ratio, z, energy = rank_scores(sc, Q, w, energy_rtol)
        j = int(np.argmin(z))
        fallback = min(fallback, (float(z[j]), float(ratio[j])))
        if one_dim:
            tier = np.where(np.isfinite(ratio), 0.0, np.inf)
            second = -energy
        else:
            passed = (z[:, None] <= levels[None, :]) & (ratio[:, None] <= rank_rtol)
            tier = np.where(passed.any(axis=1), np.argmax(passed, axis=1), np.inf)
            second = np.arange(start, start + len(w), dtype=np.float64)
        i = int(np.lexsort((second, tier))[0])
        if np.isfinite(tier[i]) and (tier[i], second[i]) < best_key:
            best_key, best_i = (tier[i], second[i]), start + i
            best_vals = (float(ratio[i]), float(z[i]), float(energy[i]))
    d = Q.shape[0]
    if best_i < 0:
        return Search(-1, fallback[1], fallback[0], 0.0, len(weights), *np.zeros((2, d)))
    QB = np.einsum("ia,kij->kaj", Q, sc.B)
    Y = np.einsum("k,kaj->aj", weights[best_i].astype(np.float64), QB)
    _, vec = np.linalg.eigh(Y @ Y.T)
    direction = Q @ vec[:, -1]
    direction /= np.linalg.norm(direction)
    Yw = np.einsum("k,kij->ij", weights[best_i].astype(np.float64), sc.B)
    row = Yw @ (Yw.T @ direction)
    return Search(best_i, *best_vals, len(weights), direction, row / np.linalg.norm(row))


@dataclass(frozen=True)
class Order:
    """Step 1: ``rows`` (d x d, whitened coordinates, causal order), the kept integer
    ``weights`` (d x K, row t for latent t), their ``ratios``, ``zs`` and ``energies`` and the
    number of candidates ``evaluated``."""

    rows: np.ndarray
    weights: np.ndarray
    ratios: np.ndarray
    zs: np.ndarray
    energies: np.ndarray
    evaluated: int


def causal_order(
    sc: Scores,
    grid: np.ndarray,
    *,
    rank_rtol: float,
    noise_tol: float,
    energy_rtol: float,
    chunk: int,
) -> Order:
    """Step 1 of the module docstring: one row per step, from the first integer combination
    whose R_w is rank one off the rows found so far."""
    d = sc.d
    rows, weights, stats, evaluated = [], [], [], 0
    for t in range(d):
        found = best_candidate(
            sc,
            complement(np.array(rows), d),
            grid,
            rank_rtol=rank_rtol,
            noise_tol=noise_tol,
            energy_rtol=energy_rtol,
            chunk=chunk,
        )
        evaluated += found.evaluated
        if found.index < 0:
            raise NotIdentifiableError(
                f"{NAME}: no integer combination of the environments' score differences (kappa "
                f"= {int(np.abs(grid).max())}) is rank one at causal-order step {t + 1} of {d} "
                f"(closest: second/first eigenvalue {found.ratio:.2g}, {found.z:.2g} x its "
                f"sampling level; thresholds rank_rtol = {rank_rtol:g}, noise_tol = "
                f"{noise_tol:g}): the target matrix is singular, kappa too small for it, or the "
                f"data are not from a linear model with stochastic interventions"
            )
        rows.append(found.row)
        weights.append(grid[found.index])
        stats.append((found.ratio, found.z, found.energy))
    ratios, zs, energies = np.array(stats).T
    return Order(np.array(rows), np.array(weights, dtype=np.int64), ratios, zs, energies, evaluated)


def _independence(row: np.ndarray, others: np.ndarray) -> float:
    """Norm of the part of the unit vector ``row`` orthogonal to the span of ``others``."""
    Q = complement(others, len(row))
    return float(np.linalg.norm(Q.T @ row))


def _pairs(kappa: int, bound: int) -> np.ndarray:
    """(a, b) with a in 1..kappa, b in -bound..bound, gcd(a, |b|) = 1 (n x 2), sorted by
    |a| + |b|."""
    pairs = [
        (a, b)
        for a in range(1, kappa + 1)
        for b in range(-bound, bound + 1)
        if math.gcd(a, abs(b)) == 1
    ]
    return np.array(sorted(pairs, key=lambda p: abs(p[0]) + abs(p[1])))


@dataclass(frozen=True)
class Ancestors:
    """Step 2: cleaned ``rows`` and ``weights``, the estimated ``ancestors`` (d x d bool,
    [t, j]: t is an ancestor of j), each tested pair's ``ratios`` and ``zs`` (NaN: implied by
    transitivity, not tested) and the number of candidates ``evaluated``."""

    rows: np.ndarray
    weights: np.ndarray
    ancestors: np.ndarray
    ratios: np.ndarray
    zs: np.ndarray
    evaluated: int


def refine_ancestors(
    sc: Scores,
    rows: np.ndarray,
    weights: np.ndarray,
    *,
    kappa: int,
    pair_bound: int,
    rank_rtol: float,
    noise_tol: float,
    energy_rtol: float,
) -> Ancestors:
    """Step 2 of the module docstring: remove from each row the rows of latents found not to
    be its ancestors."""
    d = sc.d
    rows, weights = rows.copy(), weights.astype(np.int64)
    anc = np.zeros((d, d), dtype=bool)
    ratios, zs = np.full((d, d), np.nan), np.full((d, d), np.nan)
    pairs = _pairs(kappa, pair_bound)
    evaluated = 0
    for t in range(d - 2, -1, -1):
        for j in range(t + 1, d):
            if (anc[t, t + 1 : j] & anc[t + 1 : j, j]).any():
                anc[t, j] = True  # implied: t -> s -> j
                continue
            others = [s for s in range(j) if s != t]
            Q = complement(rows[others], d)
            cands = pairs[:, :1] * weights[j] + pairs[:, 1:] * weights[t]
            found = best_candidate(
                sc,
                Q,
                cands,
                rank_rtol=rank_rtol,
                noise_tol=noise_tol,
                energy_rtol=energy_rtol,
                chunk=len(cands),
            )
            evaluated += found.evaluated
            ratios[t, j], zs[t, j] = found.ratio, found.z
            if found.index < 0:
                anc[t, j] = True
                continue
            # the kept direction is P h_j = c_t P row_t + c_j P row_j (P: projector on Q)
            P = Q @ Q.T
            coef, *_ = np.linalg.lstsq(
                np.stack([P @ rows[t], P @ rows[j]], axis=1), found.direction, rcond=None
            )
            new = rows[j] + (coef[0] / coef[1]) * rows[t] if coef[1] != 0 else rows[t]
            new = new / np.linalg.norm(new)
            if _independence(new, np.delete(rows, j, axis=0)) < MIN_INDEPENDENCE:
                anc[t, j] = True  # the update would (nearly) copy another row: no answer
                continue
            rows[j] = new
            w = cands[found.index]
            weights[j] = w // np.gcd.reduce(np.abs(w))
    return Ancestors(rows, weights, anc, ratios, zs, evaluated)


def _regressions(S: np.ndarray, j: int) -> tuple[np.ndarray, np.ndarray]:
    """Regression of latent j on latents 0..j-1 in every environment, from the (E x d x d)
    covariances S: coefficients (E x j) and residual variances (E,)."""
    if j == 0:
        return np.zeros((len(S), 0)), S[:, 0, 0].copy()
    beta = np.linalg.solve(S[:, :j, :j], S[:, :j, j][..., None])[..., 0]
    resid = S[:, j, j] - np.einsum("ea,ea->e", beta, S[:, :j, j])
    return beta, resid


def _standardised(beta: np.ndarray, resid: np.ndarray, S0: np.ndarray, j: int) -> np.ndarray:
    """Coefficients times the predecessors' observational standard deviations, over the
    observational residual standard deviation of latent j: its own noise, so the scale does
    not depend on how much of its ancestors an estimated latent still carries."""
    sd = np.sqrt(np.diag(S0))
    return beta * sd[:j] / np.sqrt(resid[0])


def hard_rows(rows: np.ndarray, covs: np.ndarray, *, hard_tol: float):
    """Step 3 of the module docstring: (rows, the environment used per latent, -1 for the
    observational one; the largest standardised coefficient change per latent)."""
    d = rows.shape[0]
    S = rows @ covs @ rows.T
    out = rows.copy()
    used = np.full(d, -1)
    change = np.zeros(d)
    for j in range(1, d):
        beta, resid = _regressions(S, j)
        std = _standardised(beta, resid, S[0], j)
        moved = np.abs(std[1:] - std[0]).max(axis=1)
        k = int(np.argmax(moved))
        change[j] = moved[k]
        e = k + 1 if moved[k] > hard_tol else 0
        used[j] = e - 1
        out[j] = rows[j] - beta[e] @ rows[:j]
    return out, used, change


def mechanism_changes(rows: np.ndarray, covs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For every interventional environment k and latent j (rows in a causal order): the largest
    change of the standardised regression coefficients of latent j on the earlier latents from
    the observational environment, and |log| of the residual variance ratio (both K x d)."""
    d = rows.shape[0]
    S = rows @ covs @ rows.T
    coef = np.zeros((len(covs) - 1, d))
    logvar = np.zeros((len(covs) - 1, d))
    for j in range(d):
        beta, resid = _regressions(S, j)
        if j:
            std = _standardised(beta, resid, S[0], j)
            coef[:, j] = np.abs(std[1:] - std[0]).max(axis=1)
        logvar[:, j] = np.abs(np.log(resid[1:] / resid[0]))
    return coef, logvar


def weight_targets(weights: np.ndarray) -> np.ndarray:
    """Support of W^-T (K x d) for the kept weights (d x K, row t = w_t, i.e. W = weights^T):
    the target matrix when every kept combination isolates its latent (module docstring)."""
    inv = np.linalg.inv(weights.T.astype(np.float64))  # W^-1 (d x K)
    return np.abs(inv.T) > 1e-9 * np.abs(inv).max()


def _check_rows(rows: np.ndarray) -> None:
    sv = np.linalg.svd(rows, compute_uv=False)
    if not sv[-1] > MIN_INDEPENDENCE * sv[0]:
        raise NotIdentifiableError(
            f"{NAME}: the estimated latents are (nearly) collinear (singular values of the "
            f"encoder {sv[-1] / sv[0]:.1e} apart): no answer; the rank tests are too loose "
            f"for these data (rank_rtol, noise_tol) or the model does not hold"
        )


def _nan_to_none(a: np.ndarray) -> list:
    return [[None if np.isnan(v) else float(v) for v in row] for row in a]


def _check(name: str, value, low, kind=float) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float | np.number):
        raise MncrlError(f"{NAME}: {name} must be a number, got {value!r}")
    if kind is int and not float(value).is_integer():
        raise MncrlError(f"{NAME}: {name} must be an integer, got {value!r}")
    if not (math.isfinite(value) and value >= low):
        raise MncrlError(f"{NAME}: {name} must be >= {low}, got {value!r}")


def fit(
    envs,
    *,
    seed: int = 0,
    latent_dim: int | None = None,
    observational=None,
    kappa: int = 2,
    rank_rtol: float = 0.01,
    noise_tol: float = 3.0,
    energy_rtol: float = 1e-3,
    pair_bound: int = 8,
    hard: bool = False,
    hard_tol: float = 0.1,
    target_tol: float = 0.1,
    max_latents: int = 8,
    chunk: int = 8192,
) -> Fit:
    """Fit UMNI-CRL (module docstring); ``seed`` is unused (the estimator is deterministic)."""
    from mncrl.precision import precisions
    from mncrl.threads import single_threaded_blas

    for name, value, low, kind in (
        ("kappa", kappa, 1, int),
        ("pair_bound", pair_bound, 1, int),
        ("rank_rtol", rank_rtol, 0, float),
        ("noise_tol", noise_tol, 0, float),
        ("energy_rtol", energy_rtol, 0, float),
        ("hard_tol", hard_tol, 0, float),
        ("target_tol", target_tol, 0, float),
        ("max_latents", max_latents, 1, int),
        ("chunk", chunk, 1, int),
    ):
        _check(name, value, low, kind)
    if not isinstance(hard, bool | np.bool_):
        raise MncrlError(f"{NAME}: hard must be true or false, got {hard!r}")
    start = time.perf_counter()
    prec = precisions(envs, observational, latent_dim, NAME)
    d, K = prec.d, prec.covs.shape[0] - 1
    if K != d:
        raise MncrlError(
            f"{NAME} needs exactly d = {d} interventional environments (one per latent, with an "
            f"invertible target matrix), got {K}"
        )
    if d > max_latents:
        raise MncrlError(
            f"{NAME}: d = {d} latents is above max_latents = {max_latents}: the integer search "
            f"scores ~(2 kappa + 1)^d / 2 = {((2 * kappa + 1) ** d) // 2:,} combinations at each "
            f"of the d steps (time grows ~{2 * kappa + 1}x per latent); raise max_latents to run "
            f"it anyway"
        )
    with single_threaded_blas():
        sc = Scores.from_precisions(prec.thetas, prec.covs, prec.counts)
        grid = weight_grid(K, int(kappa))
        tests = {"rank_rtol": rank_rtol, "noise_tol": noise_tol, "energy_rtol": energy_rtol}
        order = causal_order(sc, grid, chunk=int(chunk), **tests)
        refined = refine_ancestors(
            sc,
            order.rows,
            order.weights,
            kappa=int(kappa),
            pair_bound=int(pair_bound),
            **tests,
        )
        rows = refined.rows
        _check_rows(rows)
        info_hard: dict = {"hard": bool(hard)}
        if hard:
            rows, used, change = hard_rows(rows, prec.covs, hard_tol=hard_tol)
            info_hard.update(hard_envs=used.tolist(), hard_changes=change.tolist())
            _check_rows(rows)
        rows = rows / np.sqrt(np.einsum("ti,ij,tj->t", rows, prec.covs[0], rows))[:, None]
        coef, logvar = mechanism_changes(rows, prec.covs)
    targets = (coef > target_tol) | (logvar > target_tol)
    from_weights = weight_targets(refined.weights)
    info = {
        "estimator": NAME,
        "latent_dim": d,
        "causal_order": list(range(d)),
        "weights": refined.weights.tolist(),
        "order_weights": order.weights.tolist(),
        "rank_scores": order.ratios.tolist(),
        "rank_z": order.zs.tolist(),
        "energies": order.energies.tolist(),
        "ancestors": refined.ancestors.tolist(),
        "ancestor_scores": _nan_to_none(refined.ratios),
        "ancestor_z": _nan_to_none(refined.zs),
        **info_hard,
        "coef_changes": coef.tolist(),
        "logvar_changes": logvar.tolist(),
        "targets_from_weights": from_weights.tolist(),
        "targets_agree": bool(np.array_equal(from_weights, targets)),
        "search": {
            "candidates": int(order.evaluated + refined.evaluated),
            "grid": int(len(grid)),
            "seconds": time.perf_counter() - start,
        },
    }
    return Fit(unmixing=prec.unmixing(rows), targets=targets, info=info)


def applicable(setting: Setting) -> str | None:
    """None when an observational environment and d stochastic or soft interventional
    environments with an invertible target matrix are present; otherwise why not (one line)."""
    why = needs_precisions(setting, NAME)
    if why is not None:
        return why
    T = np.asarray(setting.targets, dtype=bool)
    if T.ndim != 2 or T.shape[0] != T.shape[1]:
        return f"{NAME} needs exactly one environment per latent (K = d), got targets {T.shape}"
    if np.linalg.matrix_rank(T.astype(np.float64)) < T.shape[1]:
        return f"{NAME} needs an invertible target matrix (over the reals)"
    return None


ESTIMATOR = Estimator(
    name=NAME,
    fit=fit,
    description="UMNI-CRL (Varici et al. 2024): integer combinations of precision-matrix "
    "differences with rank-one projections give a causal order and latents up to ancestors "
    "(fully identified with hard=true); closed form, d <= 8",
    presets={"default": dict(HPARAMS), "hard": {**HPARAMS, "hard": True}},
    default_preset="default",
    needs_observational=True,
    reports_targets=True,
    applicable=applicable,
)

__all__ = [
    "ESTIMATOR",
    "HPARAMS",
    "Ancestors",
    "Order",
    "Search",
    "applicable",
    "best_candidate",
    "causal_order",
    "complement",
    "fit",
    "hard_rows",
    "mechanism_changes",
    "refine_ancestors",
    "Scores",
    "rank_scores",
    "weight_grid",
    "weight_targets",
]
