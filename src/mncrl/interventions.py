"""Intervention types, target designs, and the paper's Assumption 4 (coverage).

A *design* is a (K x d) bool matrix: ``T[k, j]`` is True when environment k intervenes on latent
j (an all-False row is an observational environment). Every named design is a generator
``gen(d, rng, **params) -> (K x d) bool`` in :data:`DESIGNS`; :func:`make_design` looks one up,
checks its parameters and seeds it. Deterministic designs ignore the random generator.

An *intervention type* says what happens to an intervened node (see :class:`Intervention`):
``do`` (constant), ``stochastic`` (parents cut, node redrawn from a shifted/rescaled noise) or
``soft`` (parents kept, edge weights and noise rescaled).
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from dataclasses import dataclass
from itertools import combinations

import numpy as np

from mncrl.errors import MncrlError
from mncrl.values import is_int as _is_int

# --------------------------------------------------------------------------------------------
# Assumption 4
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CoverageReport:
    """Whether a design satisfies Assumption 4 and, if not, the ordered pairs it misses.

    ``unseparated`` lists (j, i): no environment intervenes on j without intervening on i.
    """

    satisfied: bool
    unseparated: tuple[tuple[int, int], ...]
    d: int


def as_target_matrix(targets, d: int | None = None) -> np.ndarray:
    """A (K x d) bool matrix from either a bool matrix or a list of index lists."""
    if isinstance(targets, np.ndarray) and targets.dtype == bool and targets.ndim == 2:
        return targets if d is None or d == targets.shape[1] else _pad(targets, d)
    lists = [sorted({int(i) for i in t}) for t in targets]
    if any(i < 0 for t in lists for i in t):
        raise MncrlError("target indices must be non-negative")
    inferred = 1 + max((i for t in lists for i in t), default=-1)
    d = inferred if d is None else d
    if inferred > d:
        raise MncrlError(f"target index {inferred - 1} out of range for d={d}")
    T = np.zeros((len(lists), d), dtype=bool)
    for k, t in enumerate(lists):
        T[k, t] = True
    return T


def _pad(T: np.ndarray, d: int) -> np.ndarray:
    if T.shape[1] > d:
        raise MncrlError(f"target matrix has {T.shape[1]} columns, more than d={d}")
    return np.pad(T, ((0, 0), (0, d - T.shape[1])))


def unseparated_mask(T) -> np.ndarray:
    """``U[..., j, i]`` = True when no environment intervenes on j without intervening on i
    (i != j), for a (..., K, d) bool stack of designs: the one Assumption-4 check everything
    uses (:func:`assumption4`, the planner, the coverage experiment)."""
    T = np.asarray(T, dtype=bool)
    Ti = T.astype(np.int32)
    sep = np.einsum("...kj,...ki->...ji", Ti, 1 - Ti)  # environments with j in T_e, i not
    return (sep == 0) & ~np.eye(T.shape[-1], dtype=bool)


def assumption4_batch(T) -> np.ndarray:
    """Whether each design of a (..., K, d) stack satisfies Assumption 4."""
    return ~unseparated_mask(T).any(axis=(-2, -1))


def unidentifiable_latents(T) -> np.ndarray:
    """(..., d) bool: latent j is the first element of some unseparated pair (j, i)."""
    return unseparated_mask(T).any(axis=-1)


def assumption4(targets, d: int | None = None) -> CoverageReport:
    """Check Assumption 4: for every ordered pair (j, i), i != j, some environment intervenes
    on j and not on i (a strongly separating system)."""
    T = as_target_matrix(targets, d)
    U = unseparated_mask(T)
    missing = tuple((int(j), int(i)) for j, i in zip(*np.nonzero(U), strict=True))
    return CoverageReport(satisfied=not missing, unseparated=missing, d=T.shape[1])


def sample_random_targets(rng: np.random.Generator, n: int, d: int, K: int, k: int) -> np.ndarray:
    """``n`` random designs at once (n x K x d bool): every environment intervenes on k nodes
    drawn uniformly without replacement (the distribution of design ``random``)."""
    u = rng.random((n, K, d))
    kth = np.partition(u, k - 1, axis=-1)[..., k - 1 : k]
    return u <= kth


def a4_probability(d: int, K: int, k: int, draws: int = 4000, seed: int = 0) -> float:
    """Monte Carlo probability that a random design (K environments of k targets) satisfies
    Assumption 4 (standard error <= 0.5 / sqrt(draws))."""
    if k >= d:
        return 0.0
    rng = np.random.default_rng([seed, d, K, k])
    ok = 0
    for start in range(0, draws, 1000):
        T = sample_random_targets(rng, min(1000, draws - start), d, K, k)
        ok += int(assumption4_batch(T).sum())
    return ok / draws


# --------------------------------------------------------------------------------------------
# Intervention types
# --------------------------------------------------------------------------------------------

INTERVENTION_TYPES = ("do", "stochastic", "soft")


@dataclass(frozen=True)
class Intervention:
    """What an intervention does to each of its target nodes j.

    - ``do``: Z_j := do_value (parents cut, no noise).
    - ``stochastic``: Z_j := shift + scale * eta_j (parents cut; the node's own noise, mean
      shifted by ``shift`` and its standard deviation multiplied by ``scale``).
    - ``soft``: Z_j := weight_scale * f_j(Z_pa(j)) + shift + scale * eta_j (parents kept; for the
      linear SCM this multiplies every incoming edge weight by ``weight_scale``).
    """

    kind: str = "do"
    do_value: float = 1.0
    shift: float = 1.0
    scale: float = 2.0
    weight_scale: float = 0.5

    def __post_init__(self):
        if self.kind not in INTERVENTION_TYPES:
            raise MncrlError(
                f"unknown intervention type '{self.kind}'; allowed: {', '.join(INTERVENTION_TYPES)}"
            )
        for name in ("do_value", "shift", "scale", "weight_scale"):
            value = getattr(self, name)
            if not math.isfinite(value):
                raise MncrlError(f"intervention parameter {name} must be finite, got {value}")
        if self.scale <= 0:
            raise MncrlError(f"intervention parameter scale must be > 0, got {self.scale}")

    @property
    def cuts_parents(self) -> bool:
        return self.kind in ("do", "stochastic")


# --------------------------------------------------------------------------------------------
# Target designs
# --------------------------------------------------------------------------------------------


def leave_one_out(d: int, rng=None) -> np.ndarray:
    """The paper's design: d environments, environment e intervenes on every node except e."""
    _need(d >= 2, "design 'leave-one-out' needs d >= 2")
    return ~np.eye(d, dtype=bool)


def atomic(d: int, rng=None) -> np.ndarray:
    """d single-node environments: environment e intervenes on node e only."""
    return np.eye(d, dtype=bool)


def paper_example(d: int, rng=None) -> np.ndarray:
    """Example 1 of the paper (d = 3): do(Z1, Z2), do(Z1, Z3), do(Z2, Z3) (0-based here)."""
    _need(d == 3, f"design 'paper-example' is defined for d = 3, got d = {d}")
    return as_target_matrix([[0, 1], [0, 2], [1, 2]], 3)


def random_design(d: int, rng, K: int | None = None, k: int | None = None) -> np.ndarray:
    """K environments (default d), each with k distinct targets (default ceil(d/2)) drawn
    uniformly at random. May or may not satisfy Assumption 4."""
    K = d if K is None else K
    k = (d + 1) // 2 if k is None else k
    _need(_is_int(K) and K >= 1, f"design 'random': K must be an integer >= 1, got {K!r}")
    _need(_is_int(k) and 1 <= k <= d, f"design 'random': k must be an integer in 1..{d}, got {k!r}")
    rng = _as_generator(rng)
    T = np.zeros((K, d), dtype=bool)
    for e in range(K):
        T[e, rng.choice(d, size=k, replace=False)] = True
    return T


def separating(d: int, rng=None) -> np.ndarray:
    """A minimum-size strongly separating system (satisfies Assumption 4 with the fewest
    environments).

    Node j gets a code c_j, a distinct subset of {0..K-1} of size floor(K/2); environment e
    intervenes on the nodes whose code contains e. Distinct equal-size codes form an antichain,
    so for j != i some e is in c_j but not in c_i: Assumption 4 holds. By Sperner's theorem no
    design with fewer environments does, so K = min{K : C(K, floor(K/2)) >= d}
    (d = 3..6 -> 4 envs for d >= 4, 10 -> 5, 30 -> 7, 100 -> 9).
    """
    if d == 1:
        return np.ones((1, 1), dtype=bool)
    K = 1
    while math.comb(K, K // 2) < d:
        K += 1
    T = np.zeros((K, d), dtype=bool)
    for j, code in enumerate(combinations(range(K), K // 2)):
        if j == d:
            break
        T[list(code), j] = True
    return T


def separating_bits(d: int, rng=None) -> np.ndarray:
    """The bitwise strongly separating system: for each bit b of the node index
    (b < ceil(log2 d)), one environment with the nodes whose bit b is 1 and one with the nodes
    whose bit b is 0 (2 * ceil(log2 d) environments, none empty)."""
    if d == 1:
        return np.ones((1, 1), dtype=bool)
    bits = max(1, math.ceil(math.log2(d)))
    idx = np.arange(d)
    rows = []
    for b in range(bits):
        on = (idx >> b) & 1 == 1
        rows += [on, ~on]
    return np.array(rows, dtype=bool)


DENSE_TRIES = 1000


def dense(d: int, rng, p: float = 0.4) -> np.ndarray:
    """d environments with a dense target matrix that is not aligned with the causal order:
    the identity plus independent Bernoulli(``p``) entries, then its rows (environments) and
    columns (nodes) permuted at random, so it is not triangular in the latents' index order
    (the simulator's causal order). Redrawn from the same generator until it is invertible
    over the reals (what ``umni`` needs); it may or may not satisfy Assumption 4."""
    _need(
        isinstance(p, int | float) and not isinstance(p, bool) and 0 <= p <= 1,
        f"design 'dense': p must be a number in [0, 1], got {p!r}",
    )
    rng = _as_generator(rng)
    for _ in range(DENSE_TRIES):
        T = np.eye(d, dtype=bool) | (rng.random((d, d)) < p)
        T = T[rng.permutation(d)][:, rng.permutation(d)]
        if np.linalg.matrix_rank(T.astype(float)) == d:
            return T
    raise MncrlError(f"design 'dense': no invertible target matrix in {DENSE_TRIES} draws")


def blocks(d: int, rng=None, size: int = 2, pattern: str = "leave-one-out") -> np.ndarray:
    """A design that violates Assumption 4 on purpose: nodes are grouped in consecutive blocks
    of ``size`` that are always intervened together. ``pattern`` 'leave-one-out' (each
    environment intervenes on every block but one) or 'atomic' (one block per environment)."""
    _need(
        _is_int(size) and size >= 2, f"design 'blocks': size must be an integer >= 2, got {size!r}"
    )
    _need(
        pattern in ("leave-one-out", "atomic"),
        f"design 'blocks': pattern must be 'leave-one-out' or 'atomic', got {pattern!r}",
    )
    groups = np.arange(d) // size
    n_blocks = int(groups.max()) + 1
    _need(
        pattern == "atomic" or n_blocks >= 2,
        f"design 'blocks' with pattern 'leave-one-out' needs at least 2 blocks "
        f"(d = {d}, size = {size})",
    )
    member = groups[None, :] == np.arange(n_blocks)[:, None]
    return member if pattern == "atomic" else ~member


def custom(d: int, rng=None, targets=None) -> np.ndarray:
    """Explicit targets: a list of node-index lists (one per environment, e.g. [[0, 1], [2]];
    an empty list is an observational environment) or a (K x d) matrix of booleans."""
    _need(
        targets is not None,
        "design 'custom' needs the parameter 'targets' "
        "(a list of target lists, e.g. [[0, 1], [2]])",
    )
    try:
        if _is_bool_matrix(targets):
            T = np.asarray(targets, dtype=bool)
            _need(
                T.ndim == 2 and T.shape[1] == d,
                f"a boolean target matrix needs d = {d} columns, got shape {T.shape}",
            )
        else:
            T = as_target_matrix(targets, d)
    except MncrlError as exc:
        raise MncrlError(f"design 'custom': {exc}") from None
    except (TypeError, ValueError):
        raise MncrlError(
            f"design 'custom': targets must be a list of lists of node indices, got {targets!r}"
        ) from None
    _need(T.shape[0] >= 1, "design 'custom': needs at least one environment")
    return T


def _is_bool_matrix(targets) -> bool:
    if isinstance(targets, np.ndarray):
        return targets.dtype == bool
    rows = list(targets)
    return bool(rows) and all(
        isinstance(row, list | tuple | np.ndarray)
        and len(row) > 0
        and all(isinstance(v, bool | np.bool_) for v in row)
        for row in rows
    )


DESIGNS: dict[str, Callable[..., np.ndarray]] = {
    "leave-one-out": leave_one_out,
    "atomic": atomic,
    "paper-example": paper_example,
    "random": random_design,
    "separating": separating,
    "separating-bits": separating_bits,
    "blocks": blocks,
    "dense": dense,
    "custom": custom,
}


def design_params(name: str) -> tuple[str, ...]:
    """The parameter names a named design accepts."""
    gen = _lookup(name)
    return tuple(p for p in inspect.signature(gen).parameters if p not in ("d", "rng"))


def make_design(name: str, d: int, key_or_seed=0, **params) -> np.ndarray:
    """The (K x d) bool target matrix of design ``name``.

    ``key_or_seed`` seeds random designs: an int (-> ``numpy.random.default_rng(seed)``), a
    ``numpy.random.SeedSequence`` or a ``numpy.random.Generator``. Unknown names or parameters
    raise :class:`MncrlError` listing what is allowed.
    """
    gen = _lookup(name)
    _need(_is_int(d) and d >= 1, f"d must be an integer >= 1, got {d!r}")
    allowed = design_params(name)
    unknown = sorted(set(params) - set(allowed))
    _need(
        not unknown,
        f"design '{name}' has no parameter {', '.join(map(repr, unknown))}; "
        f"allowed: {', '.join(allowed) if allowed else '(none)'}",
    )
    T = gen(int(d), _as_generator(key_or_seed), **params)
    return np.ascontiguousarray(T, dtype=bool)


def _lookup(name: str):
    if name not in DESIGNS:
        raise MncrlError(f"unknown design '{name}'; allowed: {', '.join(DESIGNS)}")
    return DESIGNS[name]


def _as_generator(key_or_seed) -> np.random.Generator:
    if isinstance(key_or_seed, np.random.Generator):
        return key_or_seed
    if isinstance(key_or_seed, np.random.SeedSequence):
        return np.random.Generator(np.random.PCG64(key_or_seed))
    if key_or_seed is None:
        key_or_seed = 0
    _need(
        _is_int(key_or_seed) and key_or_seed >= 0,
        f"design seed must be a non-negative integer, got {key_or_seed!r}",
    )
    return np.random.default_rng(int(key_or_seed))


def _need(cond: bool, msg: str) -> None:
    if not cond:
        raise MncrlError(msg)
