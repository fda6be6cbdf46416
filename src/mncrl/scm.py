"""Structural causal models of the latents: graphs, mechanisms and interventional sampling.

Conventions
- A graph is a (d x d) bool adjacency ``A`` with ``A[i, j]`` True for the edge i -> j; a weighted
  graph is the float matrix ``B`` with the edge weights (zero where there is no edge).
- Nodes are 0-based. The paper's fixed nonlinear graph (docs/paper.md#table-1, 1-based there) is
  :data:`PAPER_NONLINEAR_EDGES`.
- Samples are rows: Z is (n x d).

Mechanisms (``MECHANISMS``)
- ``linear``: Z_j = sum_{i in pa(j)} B_ij Z_i + eta_j.
- ``scm1``: Z_j = sum_{i in pa(j)} Z_i^2 + eta_j (the paper's SCM 1 on its graph; defined on any
  DAG).
- ``scm2``: the paper's SCM 2 on its fixed graph (d = 6), with variant ``paper`` (Z3^2 in Z4) or
  ``reference`` (+Z3 in Z4, as in the authors' code).

Interventions are applied per environment by :func:`sample_latents` with a row of the target
matrix and an :class:`~mncrl.interventions.Intervention`. Samples that leave a nonlinear
mechanism's domain raise :class:`~mncrl.errors.MncrlError` naming the node and environment.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from mncrl.errors import MncrlError
from mncrl.interventions import Intervention

MECHANISMS = ("linear", "scm1", "scm2")
NOISES = ("gaussian", "uniform", "laplace")
SCM2_VARIANTS = ("paper", "reference")

# pa(2)={1}, pa(3)={1,2}, pa(4)={1,2,3}, pa(5)={1,3,4}, pa(6)={2,3,4,5} (1-based) -> 0-based.
PAPER_NONLINEAR_EDGES: tuple[tuple[int, int], ...] = (
    (0, 1),
    (0, 2),
    (1, 2),
    (0, 3),
    (1, 3),
    (2, 3),
    (0, 4),
    (2, 4),
    (3, 4),
    (1, 5),
    (2, 5),
    (3, 5),
    (4, 5),
)


# --------------------------------------------------------------------------------------------
# Graphs
# --------------------------------------------------------------------------------------------


def erdos_renyi_dag(d: int, p: float, rng: np.random.Generator) -> np.ndarray:
    """Erdos-Renyi DAG in the fixed topological order 0 < 1 < ... < d-1: each edge i -> j with
    i < j present independently with probability p."""
    upper = np.triu(np.ones((d, d), dtype=bool), k=1)
    return upper & (rng.random((d, d)) < p)


def edges_to_adjacency(edges, d: int) -> np.ndarray:
    """Bool adjacency from (parent, child) pairs; raises MncrlError on bad indices or cycles."""
    A = np.zeros((d, d), dtype=bool)
    for edge in edges:
        if len(edge) != 2:
            raise MncrlError(f"an edge must be a (parent, child) pair, got {edge!r}")
        i, j = (int(v) for v in edge)
        if not (0 <= i < d and 0 <= j < d):
            raise MncrlError(f"edge ({i}, {j}) has a node outside 0..{d - 1}")
        if i == j:
            raise MncrlError(f"edge ({i}, {j}) is a self-loop")
        A[i, j] = True
    topological_order(A)  # raises on a cycle
    return A


def topological_order(A: np.ndarray) -> np.ndarray:
    """A topological order of the DAG ``A`` (Kahn's algorithm, smallest index first)."""
    A = np.asarray(A, dtype=bool)
    indegree = A.sum(axis=0).astype(int)
    order: list[int] = []
    ready = sorted(int(j) for j in np.flatnonzero(indegree == 0))
    while ready:
        i = ready.pop(0)
        order.append(i)
        for j in np.flatnonzero(A[i]):
            indegree[j] -= 1
            if indegree[j] == 0:
                ready.append(int(j))
                ready.sort()
    if len(order) != A.shape[0]:
        raise MncrlError("the graph has a cycle: an SCM needs a DAG")
    return np.array(order, dtype=np.int64)


def ancestor_matrix(A: np.ndarray) -> np.ndarray:
    """``M[a, i]`` True when a is an ancestor of i in the DAG with adjacency (support) ``A``
    (``A[a, i]``: edge a -> i); the transitive closure, diagonal False."""
    A = np.asarray(A) != 0
    M = A.copy()
    for _ in range(A.shape[0]):
        nxt = M | ((M.astype(np.int64) @ A.astype(np.int64)) > 0)
        if np.array_equal(nxt, M):
            break
        M = nxt
    return M


def draw_weights(
    A: np.ndarray, rng: np.random.Generator, weight_range: tuple[float, float] = (0.1, 1.0)
) -> np.ndarray:
    """Weighted adjacency: every edge gets a weight ~ U(low, high), independently."""
    low, high = weight_range
    W = rng.uniform(low, high, size=A.shape)
    return np.where(A, W, 0.0)


# --------------------------------------------------------------------------------------------
# Noise
# --------------------------------------------------------------------------------------------


def sample_noise(rng: np.random.Generator, kind: str, std: float, shape) -> np.ndarray:
    """Centred noise with standard deviation ``std`` (float64): gaussian N(0, std^2), uniform
    U(-a, a) with a = std*sqrt(3), laplace with scale b = std/sqrt(2)."""
    if kind == "gaussian":
        x = rng.standard_normal(shape)
        x *= std
        return x
    if kind == "uniform":
        a = std * np.sqrt(3.0)
        return rng.uniform(-a, a, size=shape)
    if kind == "laplace":
        return rng.laplace(0.0, std / np.sqrt(2.0), size=shape)
    raise MncrlError(f"unknown noise distribution '{kind}'; allowed: {', '.join(NOISES)}")


# --------------------------------------------------------------------------------------------
# Mechanisms
# --------------------------------------------------------------------------------------------

# A nonlinear mechanism maps (Z, j) -> f_j(Z_pa(j)) for node j, reading only parent columns.
Mechanism = Callable[[np.ndarray, int], np.ndarray]


def scm1_mechanism(A: np.ndarray) -> Mechanism:
    """SCM 1: f_j = sum of the squared parents (the paper's SCM 1 on its graph)."""
    parents = [np.flatnonzero(A[:, j]) for j in range(A.shape[0])]

    def f(Z: np.ndarray, j: int) -> np.ndarray:
        pa = parents[j]
        if pa.size == 0:
            return np.zeros(Z.shape[0])
        return np.einsum("ij,ij->i", Z[:, pa], Z[:, pa])

    return f


def scm2_mechanism(variant: str = "paper") -> Mechanism:
    """SCM 2 of the paper (0-based; Zk here is the paper's Z(k+1)):
    Z0 = e, Z1 = sin Z0, Z2 = sqrt(Z0 + Z1), Z3 = log(Z0^2 + Z1) + Z2^2 (``reference``: + Z2),
    Z4 = Z2 cos Z0 + arctan Z3, Z5 = Z1 Z2 exp(Z3^2 / Z4); noise added by the caller."""
    if variant not in SCM2_VARIANTS:
        raise MncrlError(f"unknown scm2 variant '{variant}'; allowed: {', '.join(SCM2_VARIANTS)}")
    last = (lambda z: z * z) if variant == "paper" else (lambda z: z)

    def f(Z: np.ndarray, j: int) -> np.ndarray:
        z = [Z[:, i] for i in range(6)]
        if j == 0:
            return np.zeros(Z.shape[0])
        if j == 1:
            return np.sin(z[0])
        if j == 2:
            return np.sqrt(z[0] + z[1])
        if j == 3:
            return np.log(z[0] * z[0] + z[1]) + last(z[2])
        if j == 4:
            return z[2] * np.cos(z[0]) + np.arctan(z[3])
        return z[1] * z[2] * np.exp(z[3] * z[3] / z[4])

    return f


SCM2_DOMAIN = {
    2: "sqrt of a negative argument (Z1 + Z2 < 0, 1-based names)",
    3: "log of a non-positive argument (Z1^2 + Z2 <= 0, 1-based names)",
    5: "exp(Z4^2 / Z5) overflows or divides by Z5 = 0 (1-based names)",
}


# --------------------------------------------------------------------------------------------
# Sampling one environment
# --------------------------------------------------------------------------------------------


def linear_total_effects(B: np.ndarray) -> np.ndarray:
    """(I - B)^{-1} = I + B + B^2 + ... + B^{d-1} for a DAG's weighted adjacency B.

    The finite series keeps exact zeros (a column of B that is zero stays a unit column), so
    do-intervened nodes come out exactly constant.
    """
    d = B.shape[0]
    M = np.eye(d)
    P = np.eye(d)
    for _ in range(d - 1):
        P = P @ B
        if not P.any():
            break
        M = M + P
    return M


def sample_latents(
    *,
    mechanism: str,
    B: np.ndarray,
    eta: np.ndarray,
    targets: np.ndarray,
    intervention: Intervention,
    do_values: np.ndarray | None = None,
    order: np.ndarray | None = None,
    scm2_variant: str = "paper",
    env_index: int = 0,
) -> np.ndarray:
    """Latent samples (n x d, float64) of one environment.

    ``B`` is the weighted adjacency (only its support is used by ``scm1``; ignored by ``scm2``),
    ``eta`` the (n x d) noise, ``targets`` the environment's (d,) bool target row,
    ``do_values`` an optional (d,) vector of do-values (default: ``intervention.do_value``).
    ``env_index`` only names the environment in error messages.
    """
    d = B.shape[0]
    targets = np.asarray(targets, dtype=bool)
    values = (
        np.full(d, intervention.do_value)
        if do_values is None
        else np.asarray(do_values, dtype=float)
    )
    if mechanism == "linear":
        return _linear(B, eta, targets, intervention, values)
    if mechanism == "scm1":
        f = scm1_mechanism(B != 0)
    elif mechanism == "scm2":
        if d != 6:
            raise MncrlError(f"mechanism 'scm2' is defined for d = 6, got d = {d}")
        f = scm2_mechanism(scm2_variant)
    else:
        raise MncrlError(f"unknown mechanism '{mechanism}'; allowed: {', '.join(MECHANISMS)}")
    order = topological_order(B != 0) if order is None else order
    return _nonlinear(f, order, eta, targets, intervention, values, mechanism, env_index)


def _linear(B, eta, targets, iv: Intervention, values) -> np.ndarray:
    Bk = B.copy()
    E = eta.copy()
    if targets.any():
        if iv.kind == "do":
            Bk[:, targets] = 0.0
            E[:, targets] = values[targets]
        else:
            Bk[:, targets] *= 0.0 if iv.cuts_parents else iv.weight_scale
            E[:, targets] = iv.shift + iv.scale * eta[:, targets]
    Z = E @ linear_total_effects(Bk)
    if iv.kind == "do":
        Z[:, targets] = values[targets]  # exact constants, whatever the rounding of the matmul
    return Z


def _nonlinear(
    f: Mechanism, order, eta, targets, iv: Intervention, values, mechanism, env_index
) -> np.ndarray:
    n, d = eta.shape
    Z = np.zeros((n, d), order="F")  # column-major: every node is a contiguous column
    eta = np.asfortranarray(eta)
    for j in order:
        if targets[j] and iv.kind == "do":
            Z[:, j] = values[j]
            continue
        with np.errstate(all="ignore"):
            if targets[j]:
                parents = iv.weight_scale * f(Z, j) if iv.kind == "soft" else 0.0
                Z[:, j] = parents + iv.shift + iv.scale * eta[:, j]
            else:
                Z[:, j] = f(Z, j) + eta[:, j]
        bad = ~np.isfinite(Z[:, j])
        if bad.any():
            reason = SCM2_DOMAIN.get(int(j), "overflow") if mechanism == "scm2" else "overflow"
            where = np.flatnonzero(targets).tolist()
            raise MncrlError(
                f"mechanism '{mechanism}': node {j} (Z{j + 1} in the paper's 1-based names) in "
                f"environment {env_index} (targets {where if where else 'none: observational'}) "
                f"is NaN/Inf for {int(bad.sum())} of {n} samples: {reason}; this mechanism is "
                f"not defined on this environment"
            )
    return Z
