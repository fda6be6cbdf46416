"""Intervention types, target designs, and the paper's Assumption 4 (coverage)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


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
        raise ValueError("target indices must be non-negative")
    inferred = 1 + max((i for t in lists for i in t), default=-1)
    d = inferred if d is None else d
    if inferred > d:
        raise ValueError(f"target index {inferred - 1} out of range for d={d}")
    T = np.zeros((len(lists), d), dtype=bool)
    for k, t in enumerate(lists):
        T[k, t] = True
    return T


def _pad(T: np.ndarray, d: int) -> np.ndarray:
    if T.shape[1] > d:
        raise ValueError(f"target matrix has {T.shape[1]} columns, more than d={d}")
    return np.pad(T, ((0, 0), (0, d - T.shape[1])))


def assumption4(targets, d: int | None = None) -> CoverageReport:
    """Check Assumption 4: for every ordered pair (j, i), i != j, some environment intervenes
    on j and not on i (a strongly separating system)."""
    T = as_target_matrix(targets, d)
    d = T.shape[1]
    Ti = T.astype(np.int64)
    # sep[j, i] = number of environments with j in T_e and i not in T_e
    sep = Ti.T @ (1 - Ti)
    missing = [(j, i) for j in range(d) for i in range(d) if i != j and sep[j, i] == 0]
    return CoverageReport(satisfied=not missing, unseparated=tuple(missing), d=d)
