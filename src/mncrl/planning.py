"""Experiment planning: is a set of multi-node interventions identifiable, and if not, which
extra environments would make it so (issue #5).

A design is a list of target sets (one per environment, 0-based latent indices). By the paper's
Assumption 4 it identifies the latents iff every ordered pair (j, i), i != j, is *separated*:
some environment intervenes on j and not on i. An extra environment with target set T
separates exactly the pairs with j in T and i not in T (a directed cut), so repairing a design
is a set cover of the unseparated pairs by cuts:

- :func:`propose_additions` -- greedy set cover: repeatedly add the target set that separates
  the most still-unseparated pairs (the best cut found by a deterministic local search from
  several starts); the result is compared with a fresh minimum strongly separating system
  (:func:`minimal_separating_design`, which repairs anything) and the smaller one is returned.
  Greedy: not guaranteed minimal; :func:`additions_lower_bound` gives a simple lower bound.
- :func:`check_design` -- everything ``mncrl check-design`` reports, as a :class:`DesignCheck`.

Everything is pure and deterministic (no randomness, ties broken by node index).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from itertools import combinations

import numpy as np

from mncrl.errors import MncrlError
from mncrl.interventions import as_target_matrix, assumption4, unseparated_mask

METHOD = "greedy"


def cut_gain(U: np.ndarray, members: np.ndarray) -> int:
    """Number of pairs (j, i) in U separated by the target set ``members`` (d bool)."""
    return int(U[np.ix_(members, ~members)].sum())


def best_cut(U: np.ndarray) -> np.ndarray:
    """A target set separating many pairs of U: the best of a steepest-ascent local search
    (single-node flips) started from every singleton, every complement of a singleton and the
    nodes with more unseparated pairs out than in. Deterministic; ties go to the lower index."""
    d = U.shape[0]
    out_deg, in_deg = U.sum(axis=1), U.sum(axis=0)
    starts = [out_deg > in_deg]
    for v in range(d):
        if out_deg[v]:
            starts.append(np.arange(d) == v)
        if in_deg[v]:
            starts.append(np.arange(d) != v)
    best, best_gain = None, -1
    for start in starts:
        T = start.copy()
        gain = cut_gain(U, T)
        while True:
            a = U[:, ~T].sum(axis=1)  # pairs (v, i), i outside: count iff v inside
            b = U[T, :].sum(axis=0)  # pairs (j, v), j inside: count iff v outside
            delta = np.where(T, b - a, a - b)  # change of the gain when v is flipped
            v = int(np.argmax(delta))
            if delta[v] <= 0:
                break
            T[v] = ~T[v]
            gain += int(delta[v])
        if gain > best_gain:
            best, best_gain = T, gain
    return best


def greedy_cover(targets, d: int) -> list[list[int]]:
    """Greedy set cover of the unseparated pairs of ``targets`` by extra target sets."""
    T = as_target_matrix(targets, d)
    U = unseparated_mask(T)
    added: list[list[int]] = []
    while U.any():
        cut = best_cut(U)
        if cut_gain(U, cut) == 0:  # cannot happen: {j} separates any pair (j, i)
            raise AssertionError("greedy cover made no progress")
        U[np.ix_(cut, ~cut)] = False
        added.append(np.flatnonzero(cut).tolist())
    return added


def minimal_separating_design(d: int) -> list[list[int]]:
    """A strongly separating system with the fewest environments (Sperner): node j gets a
    distinct subset c_j of {0..K-1} of size floor(K/2), K = min{K : C(K, floor(K/2)) >= d};
    environment e intervenes on the nodes whose subset contains e. Satisfies Assumption 4 on
    its own, and no design with fewer environments does."""
    if not isinstance(d, int | np.integer) or isinstance(d, bool) or d < 1:
        raise MncrlError(f"d must be an integer >= 1, got {d!r}")
    if d == 1:
        return [[0]]
    K = 1
    while math.comb(K, K // 2) < d:
        K += 1
    envs: list[list[int]] = [[] for _ in range(K)]
    for j, code in zip(range(d), combinations(range(K), K // 2), strict=False):
        for e in code:
            envs[e].append(j)
    return envs


def additions_lower_bound(targets, d: int) -> int:
    """A simple lower bound on the number of extra environments any repair needs: 0 when the
    design is identifiable, 2 when some pair is unseparated in both directions (one target set
    cannot separate (j, i) and (i, j)), else 1."""
    missing = set(assumption4(as_target_matrix(targets, d), d).unseparated)
    if not missing:
        return 0
    return 2 if any((i, j) in missing for j, i in missing) else 1


def propose_additions(targets, d: int | None = None) -> list[list[int]]:
    """Extra environments (target lists) after which ``targets`` satisfies Assumption 4.

    The greedy set cover (:func:`greedy_cover`) or, when shorter, a fresh minimum strongly
    separating system; empty when the design is already identifiable. Not guaranteed minimal.
    """
    T = as_target_matrix(targets, d)
    d = T.shape[1]
    if assumption4(T, d).satisfied:
        return []
    greedy = greedy_cover(T, d)
    fresh = minimal_separating_design(d)
    proposal = fresh if len(fresh) < len(greedy) else greedy
    repaired = np.vstack([T, as_target_matrix(proposal, d)])
    if not assumption4(repaired, d).satisfied:  # by construction; checked, never assumed
        raise AssertionError("proposed additions do not satisfy Assumption 4")
    return proposal


def recoverable_latents(targets, d: int | None = None) -> list[int]:
    """Latents j with no unseparated pair (j, i): each is still recovered on its own (the
    ``subspace`` estimator peels exactly these) even when the design as a whole is not
    identifiable."""
    T = as_target_matrix(targets, d)
    blocked = {j for j, _ in assumption4(T, T.shape[1]).unseparated}
    return [j for j in range(T.shape[1]) if j not in blocked]


@dataclass(frozen=True)
class DesignCheck:
    """The report of ``mncrl check-design`` (see :meth:`to_dict` for the JSON form)."""

    d: int
    n_environments: int
    identifiable: bool
    unseparated: tuple[tuple[int, int], ...]
    recoverable: tuple[int, ...]
    proposed_additions: tuple[tuple[int, ...], ...]
    lower_bound: int

    def to_dict(self) -> dict:
        return {
            "identifiable": self.identifiable,
            "d": self.d,
            "n_environments": self.n_environments,
            "unseparated": [list(p) for p in self.unseparated],
            "recoverable_latents": list(self.recoverable),
            "proposed_additions": [list(t) for t in self.proposed_additions],
            "additions_lower_bound": self.lower_bound,
            "method": METHOD,
        }


def check_design(targets, d: int | None = None) -> DesignCheck:
    """Assumption-4 check of a design (list of target lists or K x d bool matrix) and, when it
    fails, the greedy repair."""
    T = as_target_matrix(targets, d)
    d = T.shape[1]
    if d < 1:
        raise MncrlError("the design names no latent: give the latent dimension")
    report = assumption4(T, d)
    proposal = propose_additions(T, d)
    return DesignCheck(
        d=d,
        n_environments=int(T.shape[0]),
        identifiable=report.satisfied,
        unseparated=tuple(report.unseparated),
        recoverable=tuple(recoverable_latents(T, d)),
        proposed_additions=tuple(tuple(t) for t in proposal),
        lower_bound=additions_lower_bound(T, d),
    )


__all__ = [
    "DesignCheck",
    "additions_lower_bound",
    "best_cut",
    "check_design",
    "cut_gain",
    "greedy_cover",
    "minimal_separating_design",
    "propose_additions",
    "recoverable_latents",
]
