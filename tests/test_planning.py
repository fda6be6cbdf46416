"""Experiment planning: Assumption-4 checks and the greedy repair of designs."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mncrl import planning
from mncrl.errors import MncrlError
from mncrl.interventions import as_target_matrix, assumption4


def _repaired(targets, d, additions):
    T = as_target_matrix(targets, d)
    if additions:
        T = np.vstack([T, as_target_matrix(additions, d)])
    return T


designs = st.integers(1, 9).flatmap(
    lambda d: st.tuples(
        st.just(d),
        st.lists(st.lists(st.integers(0, d - 1), unique=True, max_size=d), max_size=2 * d + 2),
    )
)


@settings(max_examples=300, deadline=None)
@given(designs)
def test_greedy_repair_always_satisfies_assumption4(design):
    d, targets = design
    additions = planning.propose_additions(targets, d)
    assert assumption4(_repaired(targets, d, additions), d).satisfied
    identifiable = assumption4(as_target_matrix(targets, d), d).satisfied
    assert (additions == []) == identifiable
    assert all(len(set(t)) == len(t) and all(0 <= v < d for v in t) for t in additions)
    assert len(additions) >= planning.additions_lower_bound(targets, d)
    # never worse than starting from scratch with a minimum separating system
    assert len(additions) <= len(planning.minimal_separating_design(d))


@settings(max_examples=200, deadline=None)
@given(designs)
def test_recoverable_latents_are_those_without_unseparated_pairs(design):
    d, targets = design
    rep = assumption4(as_target_matrix(targets, d), d)
    rec = planning.recoverable_latents(targets, d)
    assert set(rec) == set(range(d)) - {j for j, _ in rep.unseparated}
    assert (len(rec) == d) == rep.satisfied


@settings(max_examples=200, deadline=None)
@given(
    st.integers(2, 8).flatmap(
        lambda d: st.lists(
            st.tuples(st.integers(0, d - 1), st.integers(0, d - 1)).filter(lambda p: p[0] != p[1]),
            min_size=1,
        ).map(lambda pairs: (d, pairs))
    )
)
def test_best_cut_is_a_local_optimum_that_separates_something(case):
    d, pairs = case
    U = np.zeros((d, d), dtype=bool)
    for j, i in pairs:
        U[j, i] = True
    cut = planning.best_cut(U)
    gain = planning.cut_gain(U, cut)
    assert gain >= 1
    assert gain >= max(int(U[j].sum()) for j in range(d))  # no worse than a singleton
    for v in range(d):  # no single flip improves
        flipped = cut.copy()
        flipped[v] = ~flipped[v]
        assert planning.cut_gain(U, flipped) <= gain


@pytest.mark.parametrize("d", [1, 2, 3, 4, 5, 6, 10, 11, 30, 100])
def test_minimal_separating_design(d):
    envs = planning.minimal_separating_design(d)
    assert assumption4(envs, d).satisfied
    K = len(envs)
    assert d == 1 or math.comb(K, K // 2) >= d > math.comb(K - 1, (K - 1) // 2)


@pytest.mark.parametrize("d", [3, 4])
def test_no_smaller_design_exists(d):
    """Brute force: no design with one environment fewer satisfies Assumption 4."""
    K = len(planning.minimal_separating_design(d)) - 1
    for bits in itertools.product([False, True], repeat=K * d):
        assert not assumption4(np.array(bits, dtype=bool).reshape(K, d), d).satisfied


def test_known_cases():
    blocks = [[0, 1], [0, 1], [2, 3], [2, 3], [4, 5], [4, 5]]
    check = planning.check_design(blocks)
    assert not check.identifiable and check.unseparated == (
        (0, 1),
        (1, 0),
        (2, 3),
        (3, 2),
        (4, 5),
        (5, 4),
    )
    assert check.proposed_additions == ((0, 2, 4), (1, 3, 5)) and check.lower_bound == 2
    assert check.recoverable == ()
    # the paper's Example 1 and leave-one-out: identifiable, nothing to add
    for design in ([[0, 1], [0, 2], [1, 2]], [[1, 2, 3], [0, 2, 3], [0, 1, 3], [0, 1, 2]]):
        c = planning.check_design(design)
        assert c.identifiable and c.proposed_additions == () and c.lower_bound == 0
    # nested targets: 0 is separated from 1 and 2 (environment [0]), 1 and 2 are not from 0
    c = planning.check_design([[0, 1, 2], [0, 1], [0]])
    assert c.unseparated == ((1, 0), (2, 0), (2, 1)) and c.recoverable == (0,)
    assert len(c.proposed_additions) == 2  # (2,1) and (1,0) need opposite memberships
    # an empty design: a fresh minimum separating system (Sperner: 5 environments for d = 10)
    assert len(planning.propose_additions([], 10)) == 5
    # an unused latent: d given larger than the largest index
    c = planning.check_design([[0], [1]], 3)
    assert not c.identifiable and 2 not in c.recoverable


def test_to_dict_is_the_cli_json():
    out = planning.check_design([[0], [0, 1]]).to_dict()
    assert out == {
        "identifiable": False,
        "d": 2,
        "n_environments": 2,
        "unseparated": [[1, 0]],
        "recoverable_latents": [0],
        "proposed_additions": [[1]],
        "additions_lower_bound": 1,
        "method": "greedy",
    }


def test_bad_inputs():
    with pytest.raises(MncrlError):
        planning.minimal_separating_design(0)
    with pytest.raises(ValueError):
        planning.check_design([[0, 5]], 3)
    with pytest.raises(MncrlError):
        planning.check_design([], 0)


def test_deterministic():
    rng = np.random.default_rng(0)
    T = rng.random((5, 12)) < 0.3
    assert planning.propose_additions(T) == planning.propose_additions(T.copy())
