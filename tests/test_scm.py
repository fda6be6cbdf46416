"""Graphs, noise and mechanisms of the latent SCM: statistical checks of what they claim."""

import numpy as np
import pytest

from mncrl import scm
from mncrl.errors import MncrlError
from mncrl.interventions import Intervention


def rng(seed=0):
    return np.random.default_rng(seed)


# ------------------------------------------------------------------ graphs


@pytest.mark.parametrize("p", [0.0, 0.2, 0.5, 0.75, 1.0])
def test_erdos_renyi_edge_density_matches_p(p):
    d, graphs = 10, 300
    r = rng(1)
    A = np.stack([scm.erdos_renyi_dag(d, p, r) for _ in range(graphs)])
    assert not np.tril(A.any(axis=0)).any(), "edges only go from lower to higher index"
    possible = graphs * d * (d - 1) // 2
    density = A.sum() / possible
    se = np.sqrt(p * (1 - p) / possible)
    assert abs(density - p) <= 4 * se + 1e-12
    # every admissible edge appears with probability p (no position bias)
    per_edge = A.mean(axis=0)[np.triu_indices(d, 1)]
    assert np.all(np.abs(per_edge - p) <= 5 * np.sqrt(p * (1 - p) / graphs) + 1e-12)


def test_weights_are_uniform_in_range_on_edges_only():
    A = scm.erdos_renyi_dag(30, 0.75, rng(2))
    B = scm.draw_weights(A, rng(3), (0.1, 1.0))
    w = B[A]
    assert np.all(B[~A] == 0)
    assert w.min() >= 0.1 and w.max() < 1.0
    assert abs(w.mean() - 0.55) < 4 * 0.26 / np.sqrt(w.size)
    B2 = scm.draw_weights(A, rng(3), (-2.0, -1.0))
    assert np.all((B2[A] >= -2.0) & (B2[A] < -1.0))


def test_paper_nonlinear_graph_parents():
    A = scm.edges_to_adjacency(scm.PAPER_NONLINEAR_EDGES, 6)
    parents = {j: set(np.flatnonzero(A[:, j]).tolist()) for j in range(6)}
    # the paper (1-based): pa(2)={1}, pa(3)={1,2}, pa(4)={1,2,3}, pa(5)={1,3,4}, pa(6)={2,3,4,5}
    assert parents == {0: set(), 1: {0}, 2: {0, 1}, 3: {0, 1, 2}, 4: {0, 2, 3}, 5: {1, 2, 3, 4}}


def test_topological_order_of_unordered_dag():
    A = scm.edges_to_adjacency([(3, 0), (0, 2), (3, 1), (1, 2)], 4)
    order = scm.topological_order(A).tolist()
    pos = {v: i for i, v in enumerate(order)}
    assert sorted(order) == [0, 1, 2, 3]
    assert all(pos[i] < pos[j] for i, j in zip(*np.nonzero(A), strict=True))


@pytest.mark.parametrize(
    "edges,message",
    [
        ([(0, 1), (1, 2), (2, 0)], "cycle"),
        ([(0, 5)], "outside 0..2"),
        ([(1, 1)], "self-loop"),
        ([(0, 1, 2)], "(parent, child) pair"),
    ],
)
def test_bad_edge_lists(edges, message):
    with pytest.raises(MncrlError, match=message.replace("(", r"\(").replace(")", r"\)")):
        scm.edges_to_adjacency(edges, 3)


# ------------------------------------------------------------------ noise


@pytest.mark.parametrize(
    "kind,excess_kurtosis", [("gaussian", 0.0), ("uniform", -1.2), ("laplace", 3.0)]
)
def test_noise_has_the_requested_std_and_shape(kind, excess_kurtosis):
    x = scm.sample_noise(rng(4), kind, 0.3, (400_000,))
    assert abs(x.mean()) < 5 * 0.3 / np.sqrt(x.size)
    assert abs(x.std() / 0.3 - 1) < 0.01
    kurt = np.mean((x / x.std()) ** 4) - 3
    assert abs(kurt - excess_kurtosis) < 0.15


def test_unknown_noise():
    with pytest.raises(MncrlError, match="unknown noise distribution 'cauchy'; allowed: gaussian"):
        scm.sample_noise(rng(), "cauchy", 1.0, (3,))


# ------------------------------------------------------------------ linear mechanism


def _linear_setup(d=5, seed=0):
    A = scm.erdos_renyi_dag(d, 1.0, rng(seed))
    return scm.draw_weights(A, rng(seed + 1))


def test_total_effects_are_the_inverse():
    B = _linear_setup(8)
    M = scm.linear_total_effects(B)
    assert np.allclose(M @ (np.eye(8) - B), np.eye(8), atol=1e-12)


def test_linear_observational_covariance():
    d, n, std = 5, 400_000, 0.1
    B = _linear_setup(d)
    eta = scm.sample_noise(rng(5), "gaussian", std, (n, d))
    Z = scm.sample_latents(
        mechanism="linear", B=B, eta=eta, targets=np.zeros(d, bool), intervention=Intervention()
    )
    M = np.linalg.inv(np.eye(d) - B)
    expected = std**2 * M.T @ M  # Z = eta M (rows)
    assert np.linalg.norm(np.cov(Z.T) - expected) / np.linalg.norm(expected) < 0.02
    # the structural equations hold exactly: Z_j - sum_i B_ij Z_i = eta_j
    assert np.allclose(Z - Z @ B, eta, atol=1e-12)


def test_do_intervention_is_exactly_constant_and_cuts_parents():
    d, n = 5, 50_000
    B = _linear_setup(d)
    eta = scm.sample_noise(rng(6), "gaussian", 0.1, (n, d))
    T = np.array([False, True, False, True, False])
    Z = scm.sample_latents(
        mechanism="linear", B=B, eta=eta, targets=T, intervention=Intervention("do", do_value=1.5)
    )
    assert np.all(Z[:, T] == 1.5)
    free = ~T
    assert np.all(Z[:, free].std(axis=0) > 0.05)
    # unintervened nodes still follow their mechanisms (with the constants as parent values)
    assert np.allclose((Z - Z @ B)[:, free], eta[:, free], atol=1e-12)


def test_per_node_do_values():
    B = _linear_setup(3)
    eta = scm.sample_noise(rng(), "gaussian", 1.0, (100, 3))
    Z = scm.sample_latents(
        mechanism="linear",
        B=B,
        eta=eta,
        targets=np.array([1, 0, 1], bool),
        intervention=Intervention(),
        do_values=np.array([2.0, 9.0, 3.0]),
    )
    assert np.all(Z[:, 0] == 2.0) and np.all(Z[:, 2] == 3.0)


def test_stochastic_intervention_shifts_rescales_and_cuts_parents():
    d, n, std = 4, 400_000, 0.1
    B = _linear_setup(d)
    eta = scm.sample_noise(rng(7), "gaussian", std, (n, d))
    T = np.array([False, False, True, False])
    iv = Intervention("stochastic", shift=0.7, scale=3.0)
    Z = scm.sample_latents(mechanism="linear", B=B, eta=eta, targets=T, intervention=iv)
    assert abs(Z[:, 2].mean() - 0.7) < 5 * 0.3 / np.sqrt(n)
    assert abs(Z[:, 2].std() / 0.3 - 1) < 0.01
    assert np.allclose(Z[:, 2], 0.7 + 3.0 * eta[:, 2])  # no parent contribution
    assert np.allclose((Z - Z @ B)[:, [0, 1, 3]], eta[:, [0, 1, 3]], atol=1e-12)


def test_soft_intervention_rescales_weights_and_noise():
    d, n, std = 4, 400_000, 0.1
    B = _linear_setup(d)
    eta = scm.sample_noise(rng(8), "gaussian", std, (n, d))
    T = np.array([False, False, False, True])
    iv = Intervention("soft", shift=0.5, scale=2.0, weight_scale=0.25)
    Z = scm.sample_latents(mechanism="linear", B=B, eta=eta, targets=T, intervention=iv)
    # regression of Z3 on its parents recovers the scaled weights; residual std = scale * std
    pa = np.flatnonzero(B[:, 3])
    design = np.column_stack([Z[:, pa], np.ones(n)])
    coef, *_ = np.linalg.lstsq(design, Z[:, 3], rcond=None)
    assert np.allclose(coef[:-1], 0.25 * B[pa, 3], atol=0.02)
    assert abs(coef[-1] - 0.5) < 0.05
    resid = Z[:, 3] - design @ coef
    assert abs(resid.std() / 0.2 - 1) < 0.01


# ------------------------------------------------------------------ nonlinear mechanisms


def _paper_graph():
    return scm.edges_to_adjacency(scm.PAPER_NONLINEAR_EDGES, 6).astype(float)


def test_scm1_structural_equations():
    B = _paper_graph()
    eta = scm.sample_noise(rng(9), "gaussian", 0.1, (10_000, 6))
    Z = scm.sample_latents(
        mechanism="scm1", B=B, eta=eta, targets=np.zeros(6, bool), intervention=Intervention()
    )
    z = Z.T
    assert np.allclose(z[0], eta[:, 0])
    assert np.allclose(z[1], z[0] ** 2 + eta[:, 1])
    assert np.allclose(z[2], z[0] ** 2 + z[1] ** 2 + eta[:, 2])
    assert np.allclose(z[3], z[0] ** 2 + z[1] ** 2 + z[2] ** 2 + eta[:, 3])
    assert np.allclose(z[4], z[0] ** 2 + z[2] ** 2 + z[3] ** 2 + eta[:, 4])
    assert np.allclose(z[5], z[1] ** 2 + z[2] ** 2 + z[3] ** 2 + z[4] ** 2 + eta[:, 5])


@pytest.mark.parametrize("variant", ["paper", "reference"])
def test_scm2_leave_one_out_environments_are_finite_and_follow_the_equations(variant):
    B = _paper_graph()
    n = 20_000
    eta = scm.sample_noise(rng(10), "gaussian", 0.1, (n, 6))
    for e in range(6):
        T = np.ones(6, bool)
        T[e] = False
        Z = scm.sample_latents(
            mechanism="scm2",
            B=B,
            eta=eta,
            targets=T,
            intervention=Intervention(),
            scm2_variant=variant,
            env_index=e,
        )
        assert np.isfinite(Z).all()
        assert np.all(Z[:, T] == 1.0) and Z[:, e].std() > 0.05
        z = [Z[:, i] for i in range(6)]
        f = {
            0: 0 * z[0],
            1: np.sin(z[0]),
            2: np.sqrt(z[0] + z[1]),
            3: np.log(z[0] ** 2 + z[1]) + (z[2] ** 2 if variant == "paper" else z[2]),
            4: z[2] * np.cos(z[0]) + np.arctan(z[3]),
            5: z[1] * z[2] * np.exp(z[3] ** 2 / z[4]),
        }[e]
        assert np.allclose(Z[:, e], f + eta[:, e])


def test_scm2_variants_differ_in_z4_only():
    B = _paper_graph()
    eta = scm.sample_noise(rng(11), "gaussian", 0.1, (1000, 6))
    T = np.array([True, True, False, False, True, True])  # Z3 and Z4 (1-based) free
    kw = dict(mechanism="scm2", B=B, eta=eta, targets=T, intervention=Intervention())
    a = scm.sample_latents(scm2_variant="paper", **kw)
    b = scm.sample_latents(scm2_variant="reference", **kw)
    assert np.array_equal(a[:, :3], b[:, :3])
    assert np.allclose(a[:, 3] - b[:, 3], a[:, 2] ** 2 - a[:, 2])


def test_scm2_observational_domain_error_names_node_and_environment():
    B = _paper_graph()
    eta = scm.sample_noise(rng(12), "gaussian", 0.1, (10_000, 6))
    with pytest.raises(MncrlError) as info:
        scm.sample_latents(
            mechanism="scm2",
            B=B,
            eta=eta,
            targets=np.zeros(6, bool),
            intervention=Intervention(),
            env_index=6,
        )
    msg = str(info.value)
    assert "node 2 (Z3" in msg and "environment 6" in msg and "sqrt of a negative" in msg
    assert "observational" in msg


def test_scm2_needs_six_nodes_and_unknown_mechanism():
    with pytest.raises(MncrlError, match="defined for d = 6"):
        scm.sample_latents(
            mechanism="scm2",
            B=np.zeros((3, 3)),
            eta=np.zeros((2, 3)),
            targets=np.zeros(3, bool),
            intervention=Intervention(),
        )
    with pytest.raises(MncrlError, match="unknown mechanism 'tanh'; allowed: linear, scm1, scm2"):
        scm.sample_latents(
            mechanism="tanh",
            B=np.zeros((3, 3)),
            eta=np.zeros((2, 3)),
            targets=np.zeros(3, bool),
            intervention=Intervention(),
        )
    with pytest.raises(MncrlError, match="unknown scm2 variant"):
        scm.scm2_mechanism("other")


def test_scm1_overflow_is_reported_not_returned():
    B = _paper_graph()
    eta = np.full((4, 6), 1e100)
    with pytest.raises(MncrlError, match="mechanism 'scm1': node 2 .* overflow"):
        scm.sample_latents(
            mechanism="scm1", B=B, eta=eta, targets=np.zeros(6, bool), intervention=Intervention()
        )
