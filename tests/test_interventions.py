"""Target designs, intervention types and the Assumption-4 checker."""

from itertools import combinations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mncrl.errors import MncrlError
from mncrl.interventions import (
    DESIGNS,
    Intervention,
    as_target_matrix,
    assumption4,
    design_params,
    make_design,
)


def brute_force_assumption4(T: np.ndarray) -> bool:
    """The paper's wording: for every node j, the union of the non-intervened sets S_e over the
    environments e that intervene on j equals [d] minus {j}."""
    K, d = T.shape
    for j in range(d):
        union = set()
        for e in range(K):
            if T[e, j]:
                union |= {i for i in range(d) if not T[e, i]}
        if union != set(range(d)) - {j}:
            return False
    return True


def brute_force_unseparated(T: np.ndarray) -> set:
    K, d = T.shape
    return {
        (j, i)
        for j in range(d)
        for i in range(d)
        if i != j and not any(T[e, j] and not T[e, i] for e in range(K))
    }


bool_matrices = st.integers(1, 7).flatmap(
    lambda d: st.integers(1, 9).flatmap(
        lambda K: st.lists(
            st.lists(st.booleans(), min_size=d, max_size=d), min_size=K, max_size=K
        ).map(lambda rows: np.array(rows, dtype=bool))
    )
)


# ------------------------------------------------------------------ Assumption 4


@given(bool_matrices)
@settings(max_examples=300, deadline=None)
def test_assumption4_agrees_with_the_papers_definition(T):
    report = assumption4(T)
    assert report.satisfied == brute_force_assumption4(T)
    assert set(report.unseparated) == brute_force_unseparated(T)
    assert report.d == T.shape[1]


@given(bool_matrices, st.data())
@settings(max_examples=200, deadline=None)
def test_adding_environments_never_breaks_assumption4(T, data):
    d = T.shape[1]
    extra = np.array(
        data.draw(
            st.lists(st.lists(st.booleans(), min_size=d, max_size=d), min_size=1, max_size=4)
        ),
        dtype=bool,
    )
    before = assumption4(T)
    after = assumption4(np.vstack([T, extra]))
    assert set(after.unseparated) <= set(before.unseparated)
    if before.satisfied:
        assert after.satisfied


@given(bool_matrices, st.randoms(use_true_random=False))
@settings(max_examples=100, deadline=None)
def test_assumption4_ignores_environment_order(T, rnd):
    rows = list(range(T.shape[0]))
    rnd.shuffle(rows)
    assert assumption4(T[rows]) == assumption4(T)


@pytest.mark.parametrize("d", [2, 3, 4, 5, 6, 7, 8, 10, 16, 17, 30, 31, 32, 33, 64, 100])
@pytest.mark.parametrize("name", ["leave-one-out", "atomic", "separating", "separating-bits"])
def test_identifiable_designs_satisfy_assumption4(name, d):
    T = make_design(name, d, 0)
    assert T.shape[1] == d and T.dtype == bool
    assert assumption4(T).satisfied


def test_paper_example_satisfies_assumption4():
    T = make_design("paper-example", 3, 0)
    assert T.tolist() == [[True, True, False], [True, False, True], [False, True, True]]
    assert assumption4(T).satisfied


@pytest.mark.parametrize(
    "d,size,pattern",
    [
        (2, 2, "atomic"),
        (3, 2, "leave-one-out"),
        (4, 2, "leave-one-out"),
        (6, 3, "leave-one-out"),
        (6, 2, "atomic"),
        (7, 3, "atomic"),
        (10, 4, "leave-one-out"),
        (30, 2, "leave-one-out"),
    ],
)
def test_block_designs_violate_assumption4_exactly_within_blocks(d, size, pattern):
    T = make_design("blocks", d, 0, size=size, pattern=pattern)
    report = assumption4(T)
    assert not report.satisfied
    block = np.arange(d) // size
    within = {(j, i) for j in range(d) for i in range(d) if i != j and block[i] == block[j]}
    assert set(report.unseparated) == within


def test_leave_one_out_and_atomic_are_the_documented_matrices():
    assert np.array_equal(make_design("leave-one-out", 4, 0), ~np.eye(4, dtype=bool))
    assert np.array_equal(make_design("atomic", 4, 0), np.eye(4, dtype=bool))


# ------------------------------------------------------------------ separating systems


def _min_separating_size(d: int) -> int:
    """Brute force: fewest environments whose node codes (subsets of the environments) are
    pairwise incomparable, which is exactly Assumption 4."""
    K = 1
    while True:
        codes = [frozenset(c) for r in range(K + 1) for c in combinations(range(K), r)]
        for chosen in combinations(codes, d):
            if all(not (a <= b or b <= a) for a, b in combinations(chosen, 2)):
                return K
        K += 1


@pytest.mark.parametrize("d", [2, 3, 4, 5, 6, 7])
def test_separating_is_minimal(d):
    assert make_design("separating", d, 0).shape[0] == _min_separating_size(d)


def test_separating_sizes_match_sperner_bound():
    sizes = {d: make_design("separating", d, 0).shape[0] for d in (2, 3, 6, 10, 30, 100)}
    assert sizes == {2: 2, 3: 3, 6: 4, 10: 5, 30: 7, 100: 9}


@given(st.integers(2, 300))
@settings(max_examples=60, deadline=None)
def test_separating_designs_always_satisfy_assumption4(d):
    for name in ("separating", "separating-bits"):
        T = make_design(name, d, 0)
        assert assumption4(T).satisfied
        assert T.any(axis=1).all(), "no environment may be empty (observational)"
        assert not T.all(axis=1).any(), "no environment may intervene on every node"


@pytest.mark.parametrize("d,K", [(2, 2), (3, 4), (4, 4), (5, 6), (8, 6), (9, 8), (30, 10)])
def test_separating_bits_has_two_environments_per_bit(d, K):
    assert make_design("separating-bits", d, 0).shape[0] == K


def test_single_node_edge_case():
    for name in ("atomic", "separating", "separating-bits", "random"):
        T = make_design(name, 1, 0)
        assert T.shape == (1, 1) and T.all()
        assert assumption4(T).satisfied


# ------------------------------------------------------------------ random and custom


def test_random_design_shape_and_row_sizes():
    T = make_design("random", 8, 3, K=12, k=3)
    assert T.shape == (12, 8)
    assert (T.sum(axis=1) == 3).all()


def test_random_design_is_deterministic_and_seed_dependent():
    a = make_design("random", 8, 5, K=6, k=4)
    assert np.array_equal(a, make_design("random", 8, 5, K=6, k=4))
    ss = [make_design("random", 8, np.random.SeedSequence(5), K=6, k=4) for _ in range(2)]
    assert np.array_equal(ss[0], ss[1])  # a SeedSequence is an accepted key, too
    others = [make_design("random", 8, s, K=6, k=4) for s in range(6, 12)]
    assert any(not np.array_equal(a, b) for b in others)


def test_random_design_targets_are_uniform():
    T = np.vstack([make_design("random", 6, s, K=10, k=2) for s in range(200)])
    freq = T.mean(axis=0)  # each node is a target with probability k/d = 1/3
    se = np.sqrt((1 / 3) * (2 / 3) / T.shape[0])
    assert np.all(np.abs(freq - 1 / 3) < 5 * se)


def test_random_design_defaults():
    T = make_design("random", 5, 0)
    assert T.shape == (5, 5) and (T.sum(axis=1) == 3).all()


def test_custom_design_from_index_lists_and_bool_matrix():
    T = make_design("custom", 4, 0, targets=[[0, 1], [2], [], [3, 0]])
    assert T.tolist() == [
        [True, True, False, False],
        [False, False, True, False],
        [False, False, False, False],
        [True, False, False, True],
    ]
    M = make_design("custom", 3, 0, targets=[[True, False, True], [False, True, True]])
    assert M.tolist() == [[True, False, True], [False, True, True]]
    # 0/1 integers are node indices, not a matrix
    assert make_design("custom", 3, 0, targets=[[0, 1], [1, 0]]).tolist() == [
        [True, True, False],
        [True, True, False],
    ]


def test_as_target_matrix_round_trip():
    T = as_target_matrix([[2], [0, 1]], 4)
    assert T.shape == (2, 4) and T[0, 2] and T[1, :2].all() and not T[:, 3].any()
    assert as_target_matrix(T) is T


# ------------------------------------------------------------------ errors


@pytest.mark.parametrize(
    "name,d,params,message",
    [
        ("nope", 3, {}, "unknown design 'nope'; allowed: leave-one-out, atomic"),
        ("atomic", 3, {"K": 2}, "design 'atomic' has no parameter 'K'; allowed: (none)"),
        ("random", 3, {"kk": 2}, "has no parameter 'kk'; allowed: K, k"),
        ("random", 3, {"k": 4}, "k must be an integer in 1..3"),
        ("random", 3, {"K": 0}, "K must be an integer >= 1"),
        ("random", 3, {"K": 2.5}, "K must be an integer >= 1"),
        ("paper-example", 4, {}, "defined for d = 3"),
        ("leave-one-out", 1, {}, "needs d >= 2"),
        ("blocks", 4, {"size": 1}, "size must be an integer >= 2"),
        ("blocks", 4, {"size": 4}, "needs at least 2 blocks"),
        ("blocks", 4, {"pattern": "x"}, "pattern must be"),
        ("custom", 3, {}, "needs the parameter 'targets'"),
        ("custom", 3, {"targets": [[0, 3]]}, "target index 3 out of range for d=3"),
        ("custom", 3, {"targets": [[-1]]}, "non-negative"),
        ("custom", 3, {"targets": [["a"]]}, "list of lists of node indices"),
        ("custom", 3, {"targets": [[True, False]]}, "needs d = 3 columns"),
        ("custom", 3, {"targets": []}, "at least one environment"),
    ],
)
def test_bad_designs_raise_clear_errors(name, d, params, message):
    with pytest.raises(MncrlError) as info:
        make_design(name, d, 0, **params)
    assert message in str(info.value)


def test_bad_design_seed():
    with pytest.raises(MncrlError, match="non-negative integer"):
        make_design("random", 3, -1)


def test_design_params_lists_parameters():
    assert design_params("random") == ("K", "k")
    assert design_params("blocks") == ("size", "pattern")
    assert set(DESIGNS) == {
        "leave-one-out",
        "atomic",
        "paper-example",
        "random",
        "separating",
        "separating-bits",
        "blocks",
        "dense",
        "custom",
    }


def test_dense_design_is_invertible_permuted_and_seeded():
    d = 6
    draws = [make_design("dense", d, seed) for seed in range(20)]
    for T in draws:
        assert T.shape == (d, d) and np.linalg.matrix_rank(T.astype(float)) == d
        # a permutation matrix is inside (the identity, rows and columns permuted)
        assert T.sum() >= d
    assert np.array_equal(make_design("dense", d, 3), draws[3])
    # not aligned with the latents' order: some draw is neither upper nor lower triangular
    assert any(np.triu(T, 1).any() and np.tril(T, -1).any() for T in draws)
    # Bernoulli(p) on top of the identity: p = 0 keeps a permutation matrix, p = 1 is all ones
    # (singular for d > 1: refused after its tries)
    P = make_design("dense", d, 0, p=0.0)
    assert (P.sum(axis=0) == 1).all() and (P.sum(axis=1) == 1).all()
    with pytest.raises(MncrlError, match="no invertible target matrix"):
        make_design("dense", d, 0, p=1.0)
    with pytest.raises(MncrlError, match="p must be a number"):
        make_design("dense", d, 0, p=1.5)


def test_intervention_validation():
    assert Intervention().kind == "do" and Intervention("stochastic").cuts_parents
    assert not Intervention("soft").cuts_parents
    with pytest.raises(MncrlError, match="unknown intervention type 'hard'; allowed: do"):
        Intervention("hard")
    with pytest.raises(MncrlError, match="scale must be > 0"):
        Intervention("soft", scale=0.0)
    with pytest.raises(MncrlError, match="do_value must be finite"):
        Intervention("do", do_value=float("nan"))
