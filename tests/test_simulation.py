"""The simulator: Scenario validation, what simulate() produces, determinism, splitting."""

import hashlib
import os
import subprocess
import sys

import numpy as np
import pytest

from mncrl.errors import MncrlError
from mncrl.interventions import assumption4
from mncrl.simulation import (
    Scenario,
    design_matrix,
    example1,
    latent_graph,
    mixing_matrix,
    simulate,
    train_test_split,
)

SMALL = dict(d=4, n=2_000)


def population_moments(ds, scenario):
    """Theoretical per-environment mean and covariance of X for a linear scenario."""
    B, L, s = ds.meta["adjacency"], ds.L, scenario
    out = []
    for t in ds.targets:
        Bk = B.copy()
        var = np.full(s.d, s.noise_std**2)
        const = np.zeros(s.d)
        if s.intervention == "do":
            Bk[:, t] = 0.0
            var[t] = 0.0
            const[t] = s.do_value
        else:
            Bk[:, t] *= 0.0 if s.intervention == "stochastic" else s.weight_scale
            var[t] *= s.scale**2
            const[t] = s.shift
        M = np.linalg.inv(np.eye(s.d) - Bk)
        mean_z = const @ M
        cov_z = M.T @ np.diag(var) @ M
        out.append((mean_z @ L, L.T @ cov_z @ L + s.obs_noise**2 * np.eye(L.shape[1])))
    return out


# ------------------------------------------------------------------ what the data are


def test_shapes_dtypes_and_meta():
    s = Scenario(
        d=5, m=7, n=300, design="random", design_params={"K": 4, "k": 2}, observational=True
    )
    ds = simulate(s, 3)
    assert ds.X.shape == (5 * 300, 7) and ds.Z.shape == (5 * 300, 5) and ds.L.shape == (5, 7)
    assert ds.X.dtype == np.float32 and ds.Z.dtype == np.float32 and ds.L.dtype == np.float64
    assert ds.env.dtype == np.int32 and np.array_equal(ds.env, np.repeat(np.arange(5), 300))
    assert ds.targets.shape == (5, 5) and ds.targets.dtype == bool
    assert not ds.targets[-1].any() and (ds.targets[:-1].sum(axis=1) == 2).all()
    assert ds.meta["seed"] == 3 and ds.meta["scenario"] == s.to_dict()
    A = ds.meta["adjacency"]
    assert A.shape == (5, 5) and not np.tril(A).any()
    assert np.array_equal(A, latent_graph(s, 3))
    assert np.array_equal(ds.targets, design_matrix(s, 3))
    assert np.array_equal(ds.L, mixing_matrix(s))
    assert np.allclose(ds.X, ds.Z.astype(np.float64) @ ds.L, atol=1e-5)


def test_float64_option():
    ds = simulate(Scenario(**SMALL, dtype="float64"), 0)
    assert ds.X.dtype == np.float64 and ds.Z.dtype == np.float64
    assert np.allclose(ds.X, ds.Z @ ds.L, atol=1e-12)


def test_default_scenario_is_the_papers_leave_one_out_design():
    s = Scenario(n=500)
    ds = simulate(s, 0)
    assert ds.targets.shape == (6, 6) and np.array_equal(ds.targets, ~np.eye(6, dtype=bool))
    assert assumption4(ds.targets).satisfied


@pytest.mark.parametrize(
    "design,params",
    [("leave-one-out", {}), ("atomic", {}), ("separating", {}), ("random", {"K": 5, "k": 2})],
)
def test_do_targets_are_exactly_constant_and_the_rest_vary(design, params):
    s = Scenario(
        d=6, n=3_000, design=design, design_params=params, do_value=0.75, observational=True
    )
    ds = simulate(s, 1)
    for k, t in enumerate(ds.targets):
        Zk = ds.Z[ds.env == k]
        assert np.all(Zk[:, t] == np.float32(0.75))
        assert np.all(Zk[:, ~t].std(axis=0) > 0.05)


@pytest.mark.parametrize("intervention", ["do", "stochastic", "soft"])
@pytest.mark.parametrize("obs_noise", [0.0, 0.05])
def test_per_environment_moments_of_x_match_the_population(intervention, obs_noise):
    s = Scenario(
        d=4,
        m=5,
        n=200_000,
        p=0.8,
        design="random",
        design_params={"K": 3, "k": 2},
        intervention=intervention,
        shift=0.6,
        scale=1.5,
        weight_scale=0.3,
        observational=True,
        obs_noise=obs_noise,
        mixing="gaussian",
        condition=5.0,
    )
    ds = simulate(s, 7)
    for k, (mean, cov) in enumerate(population_moments(ds, s)):
        Xk = ds.X[ds.env == k].astype(np.float64)
        emp_cov = np.cov(Xk.T)
        assert np.linalg.norm(emp_cov - cov) / np.linalg.norm(cov) < 0.03, k
        sd = np.sqrt(np.diag(cov) / Xk.shape[0])
        assert np.all(np.abs(Xk.mean(axis=0) - mean) < 6 * sd + 1e-6), k


def test_covariance_of_x_is_l_transpose_cov_z_l():
    ds = simulate(Scenario(d=5, m=8, n=50_000, design="atomic", observational=True), 2)
    for k in range(ds.n_envs):
        rows = ds.env == k
        cz = np.cov(ds.Z[rows].astype(np.float64).T)
        cx = np.cov(ds.X[rows].astype(np.float64).T)
        assert np.allclose(cx, ds.L.T @ cz @ ds.L, rtol=1e-4, atol=1e-7)


@pytest.mark.parametrize("noise", ["gaussian", "uniform", "laplace"])
def test_noise_distribution_of_a_free_root(noise):
    ds = simulate(Scenario(d=3, n=100_000, noise=noise, noise_std=0.2, observational=True), 0)
    z0 = ds.Z[ds.env == 3][:, 0].astype(np.float64)  # observational: Z0 is pure noise
    assert abs(z0.std() / 0.2 - 1) < 0.02
    kurt = np.mean((z0 / z0.std()) ** 4) - 3
    assert abs(kurt - {"gaussian": 0.0, "uniform": -1.2, "laplace": 3.0}[noise]) < 0.25


def test_edge_probability_reaches_the_graph():
    dens = [np.count_nonzero(latent_graph(Scenario(d=10, p=0.3), s)) / 45 for s in range(100)]
    assert abs(np.mean(dens) - 0.3) < 4 * np.sqrt(0.3 * 0.7 / 4500)
    assert not latent_graph(Scenario(d=10, p=0.0), 0).any()
    assert np.count_nonzero(latent_graph(Scenario(d=10, p=1.0), 0)) == 45


def test_custom_and_paper_graphs():
    s = Scenario(d=3, n=100, graph="custom", edges=((2, 0), (0, 1)))
    B = latent_graph(s, 0)
    assert set(zip(*np.nonzero(B), strict=True)) == {(2, 0), (0, 1)}
    assert np.all((B[B != 0] >= 0.1) & (B[B != 0] < 1.0))
    ds = simulate(s.replace(observational=True), 0)
    Zo = ds.Z[ds.env == 3].astype(np.float64)
    assert np.corrcoef(Zo[:, 2], Zo[:, 0])[0, 1] > 0.05
    nl = latent_graph(Scenario(graph="paper-nonlinear", mechanism="scm1"), 0)
    assert set(np.unique(nl)) == {0.0, 1.0} and np.count_nonzero(nl) == 13


# ------------------------------------------------------------------ nonlinear scenarios


@pytest.mark.parametrize("variant", ["paper", "reference"])
def test_scm2_leave_one_out_is_finite(variant):
    s = Scenario(graph="paper-nonlinear", mechanism="scm2", n=20_000, scm2_variant=variant)
    ds = simulate(s, 4)
    assert np.isfinite(ds.X).all() and np.isfinite(ds.Z).all()


def test_scm2_observational_environment_is_a_clear_error():
    s = Scenario(graph="paper-nonlinear", mechanism="scm2", n=1_000, observational=True)
    with pytest.raises(MncrlError) as info:
        simulate(s, 0)
    msg = str(info.value)
    assert "node 2 (Z3" in msg and "environment 6" in msg and "sqrt of a negative" in msg


def test_scm1_simulates_on_paper_and_random_graphs():
    for s in (
        Scenario(graph="paper-nonlinear", mechanism="scm1", n=1_000, observational=True),
        Scenario(d=5, mechanism="scm1", n=1_000, design="atomic"),
    ):
        ds = simulate(s, 0)
        assert np.isfinite(ds.X).all()


# ------------------------------------------------------------------ determinism and independence


def _digest(ds) -> str:
    h = hashlib.sha256()
    for a in (ds.X, ds.Z, ds.env, ds.L, ds.targets, ds.meta["adjacency"]):
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


RICH = Scenario(
    d=5,
    m=6,
    n=1_000,
    design="random",
    design_params={"K": 6, "k": 2},
    intervention="stochastic",
    observational=True,
    obs_noise=0.01,
    mixing="orthogonal",
)


def test_same_seed_is_bit_identical():
    assert _digest(simulate(RICH, 11)) == _digest(simulate(RICH, 11))


def test_bit_identical_in_a_fresh_process():
    # Same machine and BLAS configuration (the environment is inherited: OPENBLAS_CORETYPE
    # selects LAPACK kernels whose last bits can differ); a different hash seed.
    code = (
        "import hashlib, numpy as np; from mncrl.simulation import Scenario, simulate; "
        f"ds = simulate(Scenario.from_dict({RICH.to_dict()!r}), 11); h = hashlib.sha256()\n"
        "for a in (ds.X, ds.Z, ds.env, ds.L, ds.targets, ds.meta['adjacency']):\n"
        "    h.update(np.ascontiguousarray(a).tobytes())\n"
        "print(h.hexdigest())"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONHASHSEED": "123"},
    )
    assert out.stdout.strip() == _digest(simulate(RICH, 11))


def test_different_seeds_give_independent_draws():
    a, b = simulate(RICH, 1), simulate(RICH, 2)
    assert not np.array_equal(a.meta["adjacency"], b.meta["adjacency"])
    assert not np.array_equal(a.targets, b.targets)  # random design derived from the seed
    assert np.array_equal(a.L, b.L)  # one mixing for every data seed
    za, zb = a.Z[a.env == 6].astype(float), b.Z[b.env == 6].astype(float)
    assert abs(np.corrcoef(za[:, 0], zb[:, 0])[0, 1]) < 4 / np.sqrt(za.shape[0])


def test_a_cell_does_not_depend_on_other_cells():
    before = _digest(simulate(RICH, 5))
    for other in (Scenario(d=8, n=500), RICH.replace(d=3, design_params={"K": 2, "k": 1})):
        simulate(other, 5)
        simulate(other, 6)
    np.random.seed(999)  # global numpy state is never used
    assert _digest(simulate(RICH, 5)) == before


def test_mixing_depends_only_on_the_mixing_seed():
    s = Scenario(**SMALL)
    a, b, c = simulate(s, 0), simulate(s, 1), simulate(s.replace(mixing_seed=1), 0)
    assert np.array_equal(a.L, b.L) and not np.array_equal(a.L, c.L)
    assert np.array_equal(a.Z, c.Z)  # the latents do not depend on the mixing


def test_design_seed_fixes_a_random_design_across_data_seeds():
    s = Scenario(d=6, n=100, design="random", design_params={"K": 5, "k": 3}, design_seed=42)
    designs = {simulate(s, seed).targets.tobytes() for seed in range(5)}
    assert len(designs) == 1
    free = s.replace(design_seed=None)
    assert len({simulate(free, seed).targets.tobytes() for seed in range(5)}) > 1


def test_observational_environment_is_appended_without_changing_the_others():
    s = Scenario(d=4, n=1_000)
    a, b = simulate(s, 3), simulate(s.replace(observational=True), 3)
    assert b.targets.shape == (5, 4) and not b.targets[-1].any()
    assert np.array_equal(a.X, b.X[b.env < 4]) and np.array_equal(a.Z, b.Z[b.env < 4])


def test_paired_noise_reuses_the_same_draws_in_every_environment():
    s = Scenario(d=4, n=2_000, design="atomic", observational=True, paired_noise=True)
    ds = simulate(s, 0)
    # node 0 is a root: free in environments 1, 2, 3 and the observational one -> identical
    z0 = [ds.Z[ds.env == k][:, 0] for k in (1, 2, 3, 4)]
    assert all(np.array_equal(z0[0], z) for z in z0[1:])
    unpaired = simulate(s.replace(paired_noise=False), 0)
    u0 = [unpaired.Z[unpaired.env == k][:, 0] for k in (1, 4)]
    assert not np.array_equal(u0[0], u0[1])


# ------------------------------------------------------------------ Scenario


def test_scenario_round_trip_and_hashable():
    s = Scenario(
        d=3,
        graph="custom",
        edges=[[0, 1], [1, 2]],
        design="custom",
        design_params={"targets": [[0, 1], [2]]},
        weight_range=[0.5, 2],
    )
    assert s.edges == ((0, 1), (1, 2)) and s.weight_range == (0.5, 2.0)
    assert s.design_kwargs == {"targets": [[0, 1], [2]]}
    assert Scenario.from_dict(s.to_dict()) == s
    assert hash(Scenario.from_dict(s.to_dict())) == hash(s)
    assert {s: 1}[Scenario(**{**s.to_dict()})] == 1
    assert Scenario(design_params=None) == Scenario()  # an empty YAML value
    assert Scenario(design_params={"K": 3, "k": 1}, design="random") == Scenario(
        design_params=(("k", 1), ("K", 3)), design="random"
    )


def test_observation_keys_round_trip():
    s = Scenario()
    assert (s.observation, s.sensors, s.obs_noise_relative, s.sensor_names) == (
        "linear",
        None,
        0.0,
        (),
    )
    lt = Scenario(
        d=5,
        observation="light-tunnel",
        sensors=["angle_1", "ir_1", "vis_1", "ir_2", "current", "angle_2"],
    )
    assert lt.sensors == ("angle_1", "ir_1", "vis_1", "ir_2", "current", "angle_2")
    assert lt.m_obs == 6 and Scenario(d=5, observation="light-tunnel").m_obs == 7
    assert Scenario.from_dict(lt.to_dict()) == lt and hash(
        Scenario.from_dict(lt.to_dict())
    ) == hash(lt)
    assert lt.to_dict()["sensors"] == list(lt.sensors)


def test_from_dict_unknown_key_lists_the_allowed_keys():
    with pytest.raises(MncrlError) as info:
        Scenario.from_dict({"d": 3, "edge_prob": 0.5})
    assert "unknown scenario key 'edge_prob'" in str(info.value)
    assert "d, m, n, graph, p, edges" in str(info.value)
    with pytest.raises(MncrlError, match="must be a mapping"):
        Scenario.from_dict([("d", 3)])


@pytest.mark.parametrize(
    "values,message",
    [
        ({"d": 0}, "d must be an integer >= 1"),
        ({"d": 2.5}, "d must be an integer >= 1"),
        ({"d": True}, "d must be an integer >= 1"),
        ({"n": 0}, "n must be an integer >= 1"),
        ({"m": 3}, "m (observed dimension, 3) must be >= d (latent dimension, 6)"),
        ({"p": 1.5}, "p must be a probability in [0, 1]"),
        ({"p": "high"}, "p must be a probability"),
        ({"noise_std": 0}, "noise_std must be a number > 0"),
        ({"noise_std": float("nan")}, "noise_std must be a number > 0"),
        ({"scale": -1}, "scale must be a number > 0"),
        ({"condition": 0.5}, "condition must be a number >= 1"),
        ({"obs_noise": -0.1}, "obs_noise must be a number >= 0"),
        ({"mechanism": "tanh"}, "mechanism must be one of linear, scm1, scm2; got 'tanh'"),
        ({"noise": "cauchy"}, "noise must be one of gaussian, uniform, laplace"),
        ({"design": "nope"}, "design must be one of leave-one-out, atomic"),
        ({"intervention": "hard"}, "intervention must be one of do, stochastic, soft"),
        ({"mixing": "sparse"}, "mixing must be one of paper, gaussian, orthogonal"),
        ({"graph": "tree"}, "graph must be one of erdos-renyi, paper-nonlinear, custom"),
        ({"dtype": "float16"}, "dtype must be one of float32, float64"),
        ({"observational": "yes"}, "observational must be true or false"),
        ({"mixing_seed": -1}, "mixing_seed must be an integer >= 0"),
        ({"design_seed": -3}, "design_seed must be an integer >= 0 or null"),
        ({"weight_range": [1.0, 0.1]}, "weight_range must be a pair [low, high]"),
        ({"weight_range": 0.5}, "weight_range must be a pair"),
        ({"graph": "custom"}, "graph 'custom' needs edges"),
        ({"edges": [[0, 1]]}, "edges are only used with graph 'custom'"),
        ({"graph": "custom", "edges": [[0, 1], [1, 0]]}, "cycle"),
        ({"graph": "custom", "edges": [[0, 9]]}, "outside 0..5"),
        ({"graph": "custom", "edges": "0-1"}, "edges must be a list of [parent, child]"),
        ({"graph": "paper-nonlinear", "d": 5}, "graph 'paper-nonlinear' has 6 nodes"),
        ({"mechanism": "scm2"}, "mechanism 'scm2' is defined only on the paper's graph"),
        ({"design": "random", "design_params": {"q": 1}}, "design 'random' has no parameter 'q'"),
        ({"design": "random", "design_params": {"k": 9}}, "k must be an integer in 1..6"),
        ({"design_params": 3}, "design_params must be a mapping"),
        ({"design": "paper-example"}, "defined for d = 3"),
    ],
)
def test_bad_scenario_values_are_named(values, message):
    with pytest.raises(MncrlError) as info:
        Scenario.from_dict(values)
    assert message in str(info.value)


def test_simulate_rejects_bad_seeds_and_non_scenarios():
    with pytest.raises(MncrlError, match="seed must be a non-negative integer"):
        simulate(Scenario(**SMALL), -1)
    with pytest.raises(MncrlError, match="seed must be a non-negative integer"):
        simulate(Scenario(**SMALL), 1.5)
    with pytest.raises(MncrlError, match="needs a Scenario"):
        simulate({"d": 3}, 0)


# ------------------------------------------------------------------ train/test split


def test_split_per_environment():
    ds = simulate(Scenario(d=3, n=1_001, design="atomic", observational=True), 0)
    train, test = train_test_split(ds, seed=0)
    for k in range(4):
        assert (test.env == k).sum() == 250 and (train.env == k).sum() == 751
    # disjoint and complete: every original row is in exactly one part
    rows = {r.tobytes() for r in np.column_stack([ds.Z, ds.env[:, None]])}
    tr = {r.tobytes() for r in np.column_stack([train.Z, train.env[:, None]])}
    te = {r.tobytes() for r in np.column_stack([test.Z, test.env[:, None]])}
    assert not tr & te and tr | te == rows
    assert train.L is ds.L and np.array_equal(test.targets, ds.targets)
    assert test.meta["split"] == {"part": "test", "seed": 0, "test_fraction": 0.25}
    assert np.all(np.diff(train.env) >= 0), "original row order is kept"


def test_split_is_deterministic_and_seeded():
    ds = simulate(Scenario(**SMALL), 0)
    a, b, c = train_test_split(ds, 1), train_test_split(ds, 1), train_test_split(ds, 2)
    assert np.array_equal(a[1].X, b[1].X) and not np.array_equal(a[1].X, c[1].X)


def test_split_same_rows_keeps_pairing():
    ds = simulate(Scenario(d=3, n=400, design="atomic", observational=True, paired_noise=True), 0)
    _, test = train_test_split(ds, 3, 0.5, same_rows=True)
    z0 = [test.Z[test.env == k][:, 0] for k in (1, 2, 3)]  # node 0 free, paired noise
    assert np.array_equal(z0[0], z0[1]) and np.array_equal(z0[0], z0[2])


def test_split_errors():
    ds = simulate(Scenario(**SMALL), 0)
    for bad in (0.0, 1.0, -0.5, "a"):
        with pytest.raises(MncrlError, match="test_fraction must be in"):
            train_test_split(ds, 0, bad)
    tiny = simulate(Scenario(d=3, n=1), 0)
    with pytest.raises(MncrlError, match="need at least 2 to split"):
        train_test_split(tiny, 0)


# ------------------------------------------------------------------ Example 1


def test_example1():
    ds = example1(n=500, seed=0)
    assert ds.targets.tolist() == [[True, True, False], [True, False, True], [False, True, True]]
    values = ds.meta["do_values"]
    for k in range(3):
        Zk = ds.Z[ds.env == k]
        t = ds.targets[k]
        assert np.all(Zk[:, t] == values[k, t]) and Zk[:, ~t].std() > 0.5
    assert np.allclose(ds.X, ds.Z @ ds.L)
    # environment 0: Z3 = Z1 + Z2 + e3 = 2 + e3 (unit noise)
    assert abs(ds.Z[ds.env == 0][:, 2].mean() - 2.0) < 0.25
