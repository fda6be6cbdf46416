"""The coverage experiment kind (identifiability maps, issue #5): design enumeration, the
schema-validated settings, Assumption 4 against brute force (mncrl.interventions), the one data
path (mncrl.experiments.core.prepare) against the simulator, the moment-based metrics and the
per-latent recovery (mncrl.metrics), the aggregation into phase and claim tables, one real cell,
the command line and the notebooks (the coverage part of the smoke workflow run by Snakemake is
checked in tests/test_workflow.py on the shared smoke run)."""

from __future__ import annotations

import copy
import itertools
import json
import math
from pathlib import Path

import jupytext
import numpy as np
import pandas as pd
import papermill
import pytest

from mncrl import config as config_mod
from mncrl import experiments as ex
from mncrl import metrics
from mncrl.errors import MncrlError
from mncrl.experiments import core
from mncrl.experiments import coverage as cov
from mncrl.experiments import coverage_tables as ctab
from mncrl.experiments.__main__ import main as cli
from mncrl.experiments.tables import concat
from mncrl.interventions import (
    a4_probability,
    assumption4,
    assumption4_batch,
    sample_random_targets,
    unidentifiable_latents,
    unseparated_mask,
)
from mncrl.simulation import Scenario, design_matrix, simulate, train_test_split

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = ROOT / "config/schema.yaml"
CONFIG = config_mod.load(ROOT / "config/config.yaml")
SMOKE = config_mod.load(ROOT / "config/config.yaml", ROOT / "config/smoke.yaml")
BASE = {
    "d": 6,
    "n": 400,
    "graph": "erdos-renyi",
    "p": 0.75,
    "weight_range": [0.1, 1.0],
    "mechanism": "linear",
    "noise": "gaussian",
    "noise_std": 0.1,
    "design": "leave-one-out",
    "intervention": "do",
    "do_value": 1.0,
    "observational": True,
    "mixing": "paper",
    "mixing_seed": 0,
    "paired_noise": False,
}
LABELS = {
    "sv-paper": "Paper (sparse variance)",
    "icrl": "ICRL",
    "ica": "ICA (observational)",
    "sv-best": "Sparse variance, moments (ours)",
    "subspace": "Subspace (ours)",
}


def coverage_config(block: dict) -> dict:
    """A minimal config with one coverage experiment of the given ``coverage`` block,
    validated by the schema (defaults filled in); MncrlError naming the key otherwise."""
    return config_mod.validate(
        {
            "scenarios": {"base": {**BASE, "n": 100}},
            "estimators": {"subspace": {"estimator": "subspace"}},
            "experiments": {
                "coverage": {
                    "scenario": "base",
                    "estimators": ["subspace"],
                    "seeds": [0],
                    "coverage": copy.deepcopy(block),
                }
            },
        },
        SCHEMA,
    )


def settings_of(block: dict) -> cov.Settings:
    return cov.settings(coverage_config(block), "coverage")


def subsample_for(s: cov.Settings, label: str) -> cov.Subsample:
    """The restriction of one estimator (none when the label is not under ``subsample``)."""
    return dict(s.subsample).get(label, cov.Subsample())


# ------------------------------------------------------------------------------ the grid


def test_env_counts_and_sparsities():
    rules = ["2log2d", "d", "2d"]
    assert cov.env_counts(6, rules) == [6, 12]  # ceil(2 log2 6) = 6 = d: one K, not two
    assert cov.env_counts(10, rules) == [7, 10, 20]
    assert cov.env_counts(20, rules) == [9, 20, 40]
    assert cov.env_counts(4, [3, "d", 3]) == [3, 4]
    assert cov.sparsities(6, "all") == [1, 2, 3, 4, 5]
    assert cov.sparsities(6, [5, 1, 9, 1]) == [1, 5]


def test_default_grid_enumeration():
    s = cov.settings(CONFIG, "coverage")
    assert s == cov.Settings.from_block(CONFIG["experiments"]["coverage"]["coverage"])
    cells = cov.coverage_cells(s)
    # large (d, K) cells are split into jobs by design seed (draws_per_job: auto)
    assert [c.id for c in cells] == [
        "d-6_K-6",
        "d-6_K-12",
        "d-6_structured",
        "d-10_K-7",
        "d-10_K-10",
        "d-10_K-20",
        "d-10_structured",
        "d-20_K-9_r-0-9",
        "d-20_K-9_r-10-19",
        "d-20_K-20_r-0-6",
        "d-20_K-20_r-7-13",
        "d-20_K-20_r-14-19",
        "d-20_K-40_r-0-3",
        "d-20_K-40_r-4-7",
        "d-20_K-40_r-8-11",
        "d-20_K-40_r-12-15",
        "d-20_K-40_r-16-19",
        "d-20_structured",
    ]
    for (d, K), parts in itertools.groupby([c for c in cells if c.K], lambda c: (c.d, c.K)):
        draws = [dz.draw for c in parts for dz in c.designs() if dz.k == 1]
        assert draws == list(range(20)), (d, K)  # every design seed exactly once
    one_job = cov.coverage_cells(settings_of({"d": [20], "draws_per_job": 20}))
    assert [c.id for c in one_job] == ["d-20_K-9", "d-20_K-20", "d-20_K-40", "d-20_structured"]
    n_random = sum(len(c.designs()) for c in cells if c.K is not None)
    # 20 designs x (d - 1) sparsities x number of distinct K, per d
    assert n_random == 20 * (5 * 2 + 9 * 3 + 19 * 3) == 1880
    ids = [dz.id for c in cells for dz in c.designs()]
    assert len(set(zip(ids, [c.d for c in cells for _ in c.designs()], strict=True))) == len(ids)
    structured = [c for c in cells if c.K is None]
    assert [[dz.family for dz in c.designs()] for c in structured] == [
        ["leave-one-out", "atomic", "separating", "blocks"]
    ] * 3
    # the cells round-trip through their JSON form (cell and experiment specs)
    assert all(cov.CoverageCell.from_dict(json.loads(json.dumps(c.to_dict()))) == c for c in cells)


def test_schema_defaults_are_the_documented_grid():
    s = settings_of({})
    assert s == cov.Settings(
        d=(6, 10, 20),
        K=("2log2d", "d", "2d"),
        k="all",
        designs=20,
        structured=("leave-one-out", "atomic", "separating", "blocks"),
        recovered=0.01,
        strict=0.001,
        subsample=(),
        draws_per_job="auto",
    )
    assert settings_of({"k": [3, 1]}).k == (3, 1)


def test_random_designs_have_k_targets_and_match_the_simulator():
    cell = cov.CoverageCell(id="d-10_K-7", d=10, K=7, ks=(1, 4, 9), draws=3)
    for design in cell.designs():
        T = design.targets()
        assert T.shape == (7, 10) and (T.sum(axis=1) == design.k).all()
        scenario = Scenario.from_dict(cov.design_scenario(BASE, design))
        sim = design_matrix(scenario, seed=123)  # design seed fixed: the data seed is irrelevant
        assert np.array_equal(sim[:-1], T) and not sim[-1].any()  # observational row last
    # different design seeds give different designs
    a, b = (cov.Design(d=10, family="random", K=7, k=4, draw=r).targets() for r in (0, 1))
    assert not np.array_equal(a, b)


def test_structured_designs_and_assumption4():
    by_name = {
        dz.family: cov.design_report(dz)
        for dz in cov.structured_designs(
            8, ["leave-one-out", "atomic", "separating", "separating-bits", "blocks"]
        )
    }
    assert by_name["leave-one-out"].satisfied and by_name["atomic"].satisfied
    assert by_name["separating"].satisfied and by_name["separating-bits"].satisfied
    assert by_name["separating"].design.K == 5  # C(5, 2) = 10 >= 8 > C(4, 2)
    blocks = by_name["blocks"]
    assert not blocks.satisfied and blocks.design.K == 4
    assert set(blocks.unseparated) == {
        (0, 1),
        (1, 0),
        (2, 3),
        (3, 2),
        (4, 5),
        (5, 4),
        (6, 7),
        (7, 6),
    }
    assert blocks.unidentifiable == tuple(range(8))
    assert cov.structured_designs(3, ["blocks"]) == []


def brute_force_unseparated(T):
    d = T.shape[1]
    return {
        (j, i)
        for j in range(d)
        for i in range(d)
        if i != j and not any(row[j] and not row[i] for row in T)
    }


def test_vectorised_assumption4_matches_brute_force():
    rng = np.random.default_rng(1)
    for d, K, k in [(4, 3, 2), (6, 6, 3), (7, 12, 2), (10, 7, 5), (5, 20, 4)]:
        T = sample_random_targets(rng, 300, d, K, k)
        assert (T.sum(axis=-1) == k).all()
        U = unseparated_mask(T)
        ok = assumption4_batch(T)
        unid = unidentifiable_latents(T)
        for t in range(len(T)):
            pairs = brute_force_unseparated(T[t])
            assert set(zip(*np.nonzero(U[t]), strict=True)) == pairs
            assert ok[t] == (not pairs) == assumption4(T[t]).satisfied
            assert set(assumption4(T[t]).unseparated) == pairs
            assert set(np.flatnonzero(unid[t])) == {j for j, _ in pairs}
        # the per-design report of the grid's own random designs (design seeds 0..29)
        for r in range(30):
            design = cov.Design(d=d, family="random", K=K, k=k, draw=r)
            pairs = brute_force_unseparated(design.targets())
            report = cov.design_report(design)
            assert report.satisfied == (not pairs) and set(report.unseparated) == pairs
            assert set(report.unidentifiable) == {j for j, _ in pairs}
            assert report.targets_per_env == (k,) * K


def exact_a4_probability(d, K, k):
    """Enumerate every design of K environments with k of d targets each."""
    subsets = [np.isin(np.arange(d), c) for c in itertools.combinations(range(d), k)]
    ok = total = 0
    for rows in itertools.product(subsets, repeat=K):
        ok += assumption4(np.array(rows)).satisfied
        total += 1
    return ok / total


@pytest.mark.parametrize("d, K, k", [(4, 3, 2), (4, 4, 1), (4, 4, 2), (5, 4, 2), (4, 5, 3)])
def test_assumption4_fractions_match_exact_enumeration(d, K, k):
    exact = exact_a4_probability(d, K, k)
    mc = a4_probability(d, K, k, draws=20000)
    assert abs(mc - exact) <= 4 * math.sqrt(exact * (1 - exact) / 20000) + 1e-9, (mc, exact)
    # and the fraction over the grid's own random designs (design seeds), within 4 SE
    designs = [cov.Design(d=d, family="random", K=K, k=k, draw=r) for r in range(400)]
    frac = np.mean([cov.design_report(dz).satisfied for dz in designs])
    assert abs(frac - exact) <= 4 * math.sqrt(exact * (1 - exact) / 400) + 1e-9


def test_exact_values_for_small_designs():
    # d = 4 atomic-like: K = 4 single targets must hit every node -> 4! / 4^4
    assert exact_a4_probability(4, 4, 1) == pytest.approx(24 / 256)
    assert a4_probability(4, 4, 4) == 0.0
    assert a4_probability(6, 3, 3, draws=2000) == 0.0  # 3 environments cannot separate 6


WHERE = "experiments.coverage.coverage"


@pytest.mark.parametrize(
    "block, key, words",
    [
        ({"kk": 1}, "", ["unknown key 'kk' in"]),
        ({"K": ["log"]}, ".K.0", ["'log'"]),
        ({"K": [0]}, ".K.0", ["0"]),
        ({"k": "some"}, ".k", ["'some'"]),
        ({"k": [0]}, ".k.0", ["0"]),
        ({"d": [1]}, ".d.0", ["1", ">= 2"]),
        ({"d": []}, ".d", ["non-empty"]),
        ({"designs": -1}, ".designs", ["-1", ">= 0"]),
        ({"structured": ["stars"]}, ".structured.0", ["'stars'", "allowed values: leave-one-out"]),
        ({"subsample": {"sv-paper": {"n": 3}}}, ".subsample.sv-paper", ["unknown key 'n' in"]),
        ({"subsample": {"sv-paper": {"seeds": [-1]}}}, ".subsample.sv-paper.seeds", ["-1"]),
        ({"subsample": {"sv-paper": {"designs": -2}}}, ".subsample.sv-paper.designs", ["-2"]),
        ({"recovered": 0}, ".recovered", ["0", "> 0"]),
        ({"strict": 1}, ".strict", ["1", "< 1"]),
        ({"draws_per_job": 0}, ".draws_per_job", ["0"]),
        ({"draws_per_job": "some"}, ".draws_per_job", ["'some'"]),
    ],
)
def test_schema_rejects_bad_coverage_blocks_naming_the_key(block, key, words):
    """The checks of the old hand-written settings(), now done by config/schema.yaml."""
    with pytest.raises(MncrlError) as err:
        coverage_config(block)
    msg = str(err.value)
    assert msg.startswith("config: ") and "\n" not in msg, msg
    assert f"{WHERE}{key}" in msg and all(w in msg for w in words), msg


def test_schema_rejects_subsample_keys_that_are_not_dimensions():
    with pytest.raises(MncrlError, match=r"subsample\.a\.designs"):
        coverage_config({"subsample": {"a": {"designs": {"six": 1}}}})


def test_subsample_keys_may_mix_integers_and_strings():
    s = settings_of({"subsample": {"a": {"designs": {6: 10, "20": 1}}}})
    assert subsample_for(s, "a") == cov.Subsample(by_d=((6, 10, None), (20, 1, None)))


def test_subsample_per_d():
    s = settings_of({"subsample": {"sv-paper": {"designs": {6: 10, 20: 1}, "seeds": {20: [0]}}}})
    sub = subsample_for(s, "sv-paper")
    assert sub == cov.Subsample.from_dict(json.loads(json.dumps(sub.to_dict())))
    # keys as strings (a config that went through JSON) mean the same
    assert sub == subsample_for(
        settings_of(
            {"subsample": {"sv-paper": {"designs": {"6": 10, "20": 1}, "seeds": {"20": [0]}}}}
        ),
        "sv-paper",
    )

    def runs(d, draw, seed, family="random"):
        return sub.runs(cov.Design(d=d, family=family, K=d, k=1, draw=draw), seed)

    assert runs(6, 9, 2) and not runs(6, 10, 0)
    assert runs(20, 0, 0) and not runs(20, 1, 0) and not runs(20, 0, 1)
    assert runs(10, 19, 2)  # no restriction at d = 10
    assert runs(20, 5, 2, family="atomic")  # structured designs always run
    assert subsample_for(settings_of({}), "x").runs(cov.Design(d=6, family="random", K=6), 0)
    # one value for every d, and null = no restriction
    flat = subsample_for(settings_of({"subsample": {"a": {"designs": 2, "seeds": None}}}), "a")
    assert flat == cov.Subsample(designs=2, seeds=None, by_d=())


def test_subsample_d_restricts_an_estimator_to_some_d_structured_designs_included():
    s = settings_of({"subsample": {"a": {"designs": 5, "d": [6]}}})
    sub = subsample_for(s, "a")
    assert sub.only_d == (6,)
    assert sub == cov.Subsample.from_dict(json.loads(json.dumps(sub.to_dict())))

    def runs(d, draw, family="random"):
        return sub.runs(cov.Design(d=d, family=family, K=d, k=1, draw=draw), 0)

    assert runs(6, 4) and not runs(6, 5) and runs(6, 0, family="atomic")
    assert not runs(10, 0) and not runs(10, 0, family="atomic")
    with pytest.raises(MncrlError, match=r"subsample\.a\.d"):
        coverage_config({"subsample": {"a": {"d": [1]}}})


def test_config_hooks():
    cells = ex.cells(CONFIG, "coverage")
    assert ex.kind_of(CONFIG["experiments"]["coverage"]) == "coverage"
    assert [c.id for c in cells][:3] == ["d-6_K-6", "d-6_K-12", "d-6_structured"]
    assert cells[0].point == {"d": 6, "K": 6} and cells[2].point == {"d": 6, "K": "structured"}
    spec = ex.cell_spec(CONFIG, "coverage", "d-20_K-40_r-4-7")
    assert spec == cov.cell_spec(CONFIG, "coverage", "d-20_K-40_r-4-7")
    assert spec["kind"] == "coverage" and spec["test_fraction"] == 0.25
    assert spec["scenario"]["n"] == 20000 and spec["scenario"]["paired_noise"] is False
    assert spec["coverage_cell"] == {
        "id": "d-20_K-40_r-4-7",
        "d": 20,
        "K": 40,
        "ks": list(range(1, 20)),
        "draws": 4,
        "draw_start": 4,
        "structured": [],
    }
    assert spec["metrics"] == ["mcc", "mcc_paper", "amari", "target_f1"]
    assert spec["subsample"]["sv-paper"]["by_d"][2] == [20, 1, [0]]
    assert (spec["recovered"], spec["strict"]) == (0.01, 0.001)
    json.dumps(spec)
    mem_mb, minutes = ex.job_cost(spec)  # one batch of the cell's largest problems at most
    assert 2000 < mem_mb <= 2000 + 3 * spec["max_batch_mb"] and minutes >= 15
    with pytest.raises(MncrlError, match="no cell 'd-7_K-1'"):
        ex.cell_spec(CONFIG, "coverage", "d-7_K-1")
    exp = ex.experiment_spec(CONFIG, "coverage")
    assert exp["kind"] == "coverage" and len(exp["cells"]) == len(cells)
    assert ex.derived_tables(CONFIG, "coverage") == ["phase", "designs"]
    assert [c.id for c in ex.cells(SMOKE, "coverage")] == ["d-6_K-6", "d-6_K-12", "d-6_structured"]
    designs = cov.design_table(ex.experiment_spec(SMOKE, "coverage"))
    assert len(designs) == 2 * 5 * 2 + 2 and set(designs["cell"]) == {
        "d-6_K-6",
        "d-6_K-12",
        "d-6_structured",
    }


# ------------------------------------------------------------------------------ data


def reference_prepare(scenario, experiment, data_cell, seed, test_fraction):
    """The data path every estimator fit used before the engine cached the noise:
    ``simulate`` + ``train_test_split(same_rows=True)``, environments partitioned by rows."""
    ds = simulate(scenario, core.stable_seed(experiment, data_cell, seed, "data"))
    train, test = train_test_split(
        ds, core.stable_seed(experiment, data_cell, seed, "split"), test_fraction, same_rows=True
    )
    targets = np.asarray(ds.targets, dtype=bool)
    K = targets.shape[0] - int(scenario.observational)
    tr_X = [train.X[train.env == k] for k in range(targets.shape[0])]
    te_X = [test.X[test.env == k] for k in range(targets.shape[0])]
    te_Z = [test.Z[test.env == k] for k in range(targets.shape[0])]
    obs = bool(scenario.observational)
    return core.Prepared(
        seed=int(seed),
        train_envs=tr_X[:K],
        test_X=core.interleave(te_X[:K]),
        test_Z=core.interleave(te_Z[:K]),
        obs_train=tr_X[K] if obs else None,
        obs_test_X=te_X[K] if obs else None,
        obs_test_Z=te_Z[K] if obs else None,
        L=np.asarray(ds.L),
        targets=targets[:K],
    )


PREPARED_FIELDS = (
    "train_envs",
    "test_X",
    "test_Z",
    "obs_train",
    "obs_test_X",
    "obs_test_Z",
    "L",
    "targets",
)


def arrays(x) -> list:
    return x if isinstance(x, list) else [x]


def assert_prepared_equal(a: core.Prepared, b: core.Prepared) -> None:
    """Every field of two Prepared is equal bit for bit, with the same dtype."""
    assert a.seed == b.seed
    for name in PREPARED_FIELDS:
        x, y = arrays(getattr(a, name)), arrays(getattr(b, name))
        assert len(x) == len(y), name
        for u, v in zip(x, y, strict=True):
            if u is None or v is None:
                assert u is None and v is None, name
            else:
                assert u.dtype == v.dtype and np.array_equal(u, v), name


def dtypes(*cases):
    """Every case in float32 (the default dtype: X = Z L must be rounded once, from float64,
    as simulate() does) and float64."""
    return [
        pytest.param(*case, dtype, id=f"{i}-{dtype}")
        for i, case in enumerate(cases)
        for dtype in ("float32", "float64")
    ]


@pytest.mark.parametrize(
    "design, changes, dtype",
    dtypes(
        (cov.Design(d=6, family="random", K=9, k=2, draw=3), {}),
        (cov.Design(d=6, family="atomic", K=6), {"observational": False}),
        (cov.Design(d=5, family="leave-one-out", K=5), {"paired_noise": True, "obs_noise": 0.01}),
        (cov.Design(d=4, family="random", K=5, k=2, draw=1), {"n": 301}),
    ),
)
def test_cached_prepare_is_bit_identical_to_simulate_and_split(design, changes, dtype):
    scenario = Scenario.from_dict({**cov.design_scenario(BASE, design), **changes, "dtype": dtype})
    noise = core.NoiseCache()
    for _ in range(2):  # second time from the cache
        a = core.prepare(scenario, "coverage", design.data_cell, 1, 0.25, noise)
        b = reference_prepare(scenario, "coverage", design.data_cell, 1, 0.25)
        assert_prepared_equal(a, b)


def grid_cell(name: str, cell_id: str, **changes):
    """(data cell, scenario) of a grid experiment's cell: the data seeds of a grid cell come
    from its grid point's id (the ``cell`` of its spec), the scenario is the cell's own."""
    cell = next(c for c in ex.cells(CONFIG, name) if c.id == cell_id)
    return core.cell_id(cell.point), Scenario.from_dict({**cell.scenario, **changes})


@pytest.mark.parametrize(
    "name, cell_id, changes, dtype",
    dtypes(
        # the paper's nonlinear SCM 1 (Table 1): fixed graph, reference mixing, paired noise, plus
        # the observational environment the experiment leaves out
        ("table1", "mechanism-scm1", {"n": 500, "observational": True}),
        ("table1", "mechanism-scm1", {"n": 333, "observational": True, "obs_noise": 0.05}),
        ("fig4", "d-6_mixing_seed-2", {"n": 400}),
    ),
)
def test_grid_prepare_is_bit_identical_to_simulate_and_split(name, cell_id, changes, dtype):
    data_cell, scenario = grid_cell(name, cell_id, **changes, dtype=dtype)
    assert scenario.paired_noise and scenario.observational
    if name == "table1":
        assert scenario.mechanism == "scm1" and scenario.graph == "paper-nonlinear"
    for seed in (0, 3):
        a = core.prepare(scenario, name, data_cell, seed, 0.25)
        b = reference_prepare(scenario, name, data_cell, seed, 0.25)
        assert a.obs_train is not None and len(a.train_envs) == scenario.d
        assert_prepared_equal(a, b)
    # a shared noise cache gives the same draws; paired noise: one draw for every environment
    noise = core.NoiseCache()
    cached = core.prepare(scenario, name, data_cell, 0, 0.25, noise)
    assert len(noise._store) == 1
    assert_prepared_equal(cached, reference_prepare(scenario, name, data_cell, 0, 0.25))


def test_designs_of_one_draw_share_the_scm_and_noise():
    scen = [
        Scenario.from_dict(
            cov.design_scenario(BASE, cov.Design(d=6, family="random", K=7, k=k, draw=2))
        )
        for k in (1, 4)
    ]
    a, b = (core.prepare(s, "coverage", "d-6_r-2", 0, 0.25) for s in scen)
    assert np.array_equal(a.obs_train, b.obs_train)  # same observational data: ICA shared
    assert not np.array_equal(a.train_envs[0], b.train_envs[0])


# ------------------------------------------------------------------------------ metrics


def test_moment_metrics_match_the_metrics_module():
    rng = np.random.default_rng(0)
    n, d = 12_345, 5  # two complete 5000-row chunks and a remainder
    Z = rng.standard_normal((n, d)).astype(np.float32)
    Z[:, 2] = 1.0  # a constant latent (correlation 0 by convention)
    X = (Z @ (rng.random((d, d)) + np.eye(d))).astype(np.float32)
    mom = metrics.row_moments(X, Z)
    assert isinstance(mom, metrics.RowMoments) and len(mom.counts) == 2
    for W in (
        np.linalg.pinv(rng.random((d, d)) + np.eye(d)),
        rng.standard_normal((d, d)),
        np.c_[rng.standard_normal((d, d - 1)), np.zeros(d)],
    ):
        got = metrics.mcc_from_moments(mom, W)
        Zhat = X.astype(np.float64) @ W
        assert got["mcc"] == pytest.approx(metrics.mcc(Z, Zhat), abs=1e-9)
        assert got["mcc_paper"] == pytest.approx(metrics.mcc_paper(Z, Zhat), abs=1e-9)
    small = metrics.row_moments(X[:300], Z[:300])  # fewer rows than a chunk: one chunk
    W = rng.standard_normal((d, d))
    assert metrics.mcc_from_moments(small, W)["mcc_paper"] == pytest.approx(
        metrics.mcc_paper(Z[:300], X[:300].astype(np.float64) @ W), abs=1e-9
    )


def test_latent_recovery():
    rng = np.random.default_rng(0)
    L = rng.random((4, 4)) + np.eye(4)
    P = np.eye(4)[[2, 0, 3, 1]] * np.array([2.0, -1.0, 0.5, 3.0])
    W = np.linalg.solve(L, P)  # L W = scaled permutation
    assert metrics.latent_recovery(L, W, 0.01).all()
    # rows = true latents, columns = estimates: estimate 0 is true latent 1 (P[1, 0] = 2);
    # make it an equal mix of latents 1 and 2 (latent 2 is still estimate 3 on its own)
    assert P[1, 0] == 2.0 and P[2, 3] == 3.0
    M = P.copy()
    M[1, 0] = M[2, 0] = 1.0
    rec = metrics.latent_recovery(L, np.linalg.solve(L, M), 0.01)
    assert rec.tolist() == [True, False, True, True]
    # in latents of unit scale the mixed estimate's column term is exactly (1 + 1) / 1 - 1
    # over d - 1 = 3
    best, terms = metrics.column_terms(L, np.linalg.solve(L, M), latent_scale=np.ones(4))
    assert terms[0] == pytest.approx(1 / 3) and terms[1:] == pytest.approx(0, abs=1e-9)
    assert best.tolist()[1:] == [3, 0, 2]


# ------------------------------------------------------------------------------ aggregation


def synthetic_metrics() -> pd.DataFrame:
    """Two estimators on six problems at d = 4: designs A (satisfies A4) and B (violates it,
    latent 0 unidentifiable), two k values, seeds 0/1. Values chosen by hand."""
    rows = []

    def add(design, k, a4, seed, est, amari, not_id, unid=None, status="ok"):
        base = {
            "experiment": "coverage",
            "cell": "d-4_K-4",
            "level": "problem",
            "d": 4,
            "design": "random",
            "design_id": f"{design}-k{k}",
            "draw": 0,
            "K": 4,
            "k": k,
            "a4_satisfied": a4,
            "n_unidentifiable": 0 if a4 else 1,
            "seed": seed,
            "estimator": est,
            "status": status,
        }
        vals = {
            "amari": amari,
            "mcc": 1 - amari,
            "not_identifiable": not_id,
            "latents_recovered": 1.0 if amari <= 0.01 else 0.5,
        }
        if unid is not None:
            vals["unidentifiable_latents_recovered"] = unid
            vals["identifiable_latents_recovered"] = 1.0
        for metric, value in vals.items():
            rows.append({**base, "metric": metric, "value": value})

    for seed in (0, 1):
        add("A", 1, True, seed, "sub", 0.0, 0.0)
        add("A", 2, True, seed, "sub", 0.0005 if seed == 0 else 0.005, 0.0)
        add("B", 2, False, seed, "sub", np.nan, 1.0, unid=0.0, status="NotIdentifiableError")
        add("A", 1, True, seed, "sv", 0.2, 0.0)
        add("A", 2, True, seed, "sv", 0.001, 0.0)
        add("B", 2, False, seed, "sv", 0.3, 0.0, unid=1.0 if seed == 0 else 0.0)
    return pd.DataFrame(rows)


AGG_SPEC = {
    "kind": "coverage",
    "experiment": "coverage",
    "recovered": 0.01,
    "strict": 0.001,
    "cells": [],
}


def test_phase_table_on_a_synthetic_table():
    phase = ctab.phase_table(synthetic_metrics(), threshold=0.01, strict=0.001)
    get = phase.set_index(["estimator", "k"])
    sub2, sv1, sv2 = get.loc[("sub", 2)], get.loc[("sv", 1)], get.loc[("sv", 2)]
    assert sub2["problems"] == 4 and sub2["designs"] == 2 and sub2["a4_fraction"] == 0.5
    assert sub2["recovered_fraction"] == 0.5  # both A problems, none of the failed B fits
    assert sub2["recovered_given_a4"] == 1.0 and sub2["recovered_given_not_a4"] == 0.0
    assert sub2["recovered_strict_fraction"] == 0.25  # only seed 0 has amari <= 1e-3
    assert sub2["not_identifiable_fraction"] == 0.5
    assert sv1["recovered_fraction"] == 0.0 and sv1["mean_amari"] == pytest.approx(0.2)
    assert sv2["recovered_fraction"] == 0.5 and sv2["a4_fraction"] == 0.5
    assert "recovered_strict_fraction" not in ctab.phase_table(synthetic_metrics(), 0.01)


def test_phase_file_adds_the_assumption4_probability():
    table = ex.aggregate(synthetic_metrics(), AGG_SPEC)  # summary rows are ignored
    phase = ex.derived_table("phase", table, AGG_SPEC)
    bare = ctab.phase_table(synthetic_metrics(), 0.01, 0.001)
    pd.testing.assert_frame_equal(phase.drop(columns="a4_probability"), bare)
    for row in phase.itertuples():
        assert row.a4_probability == a4_probability(4, 4, int(row.k), draws=ctab.A4_DRAWS)
    assert set(phase["a4_probability"]) == {a4_probability(4, 4, 1), a4_probability(4, 4, 2)}


def test_claim_rows_on_a_synthetic_table():
    rows = ctab.claim_rows(synthetic_metrics(), recovered=0.01, strict=0.001, experiment="coverage")
    assert set(rows["level"]) == {"summary"} and set(rows["cell"]) == {"d-4_all", "d-4_random"}
    v = rows[rows["design"] == "all"].set_index(["estimator", "metric"])["value"]
    n = rows[rows["design"] == "all"].set_index(["estimator", "metric"])["n_problems"]
    assert v[("sub", "rate_recovered_a4")] == 1.0 and n[("sub", "rate_recovered_a4")] == 4
    assert v[("sub", "rate_recovered_a4_strict")] == 0.75
    assert v[("sub", "rate_reported_not_identifiable")] == 1.0
    assert v[("sub", "rate_recovered_not_a4")] == 0.0
    assert v[("sub", "rate_unidentifiable_latents_recovered")] == 0.0
    assert v[("sv", "rate_recovered_a4")] == 0.5
    assert v[("sv", "rate_recovered_a4_strict")] == 0.5
    assert v[("sv", "rate_reported_not_identifiable")] == 0.0
    assert v[("sv", "rate_unidentifiable_latents_recovered")] == 0.5
    assert v[("sv", "rate_identifiable_latents_recovered_not_a4")] == 1.0
    # a rate with nothing to count is absent, not NaN
    only_a4 = synthetic_metrics()
    only_a4 = only_a4[only_a4["a4_satisfied"]]
    assert "rate_recovered_not_a4" not in set(
        ctab.claim_rows(only_a4, 0.01, 0.001, "coverage")["metric"]
    )


def test_aggregate_appends_the_summary_rows_and_records_the_thresholds():
    spec = {**AGG_SPEC, "recovered": 0.02, "strict": 0.0005}
    table = cov.aggregate(synthetic_metrics(), spec)
    problems = table[table["level"] == "problem"]
    pd.testing.assert_frame_equal(
        problems[synthetic_metrics().columns].reset_index(drop=True),
        synthetic_metrics(),
        check_dtype=False,
    )  # NaN draw: float
    summary = table[table["level"] == "summary"].reset_index(drop=True)
    expected = ctab.claim_rows(synthetic_metrics(), 0.02, 0.0005, "coverage")
    pd.testing.assert_frame_equal(summary[expected.columns], expected, check_dtype=False)
    assert ctab.thresholds_of(table) == (0.02, 0.0005)
    with pytest.raises(MncrlError, match="no 'rate_recovered_a4' summary row"):
        ctab.thresholds_of(synthetic_metrics())


def test_recovery_summary_on_a_synthetic_table():
    s = ctab.recovery_summary(synthetic_metrics(), 0.01).set_index("estimator")
    assert s.loc["sub", "problems"] == 6 and s.loc["sub", "a4_fraction"] == pytest.approx(2 / 3)
    assert s.loc["sub", "recovered_given_a4"] == 1.0
    assert s.loc["sub", "not_identifiable"] == pytest.approx(1 / 3)
    assert s.loc["sv", "recovered"] == pytest.approx(1 / 3)
    by_k = ctab.recovery_summary(synthetic_metrics(), 0.01, by=("estimator", "k"))
    assert len(by_k) == 4


def test_claims_checker_reads_the_summary_rows():
    from mncrl.claims import evaluate_all, load_claims

    _, claims = load_claims(ROOT / "paper/claims.yaml")
    ours = [c for c in claims if c.experiment == "coverage"]
    assert ours and all(c.source == "ours" for c in ours)
    table = cov.aggregate(synthetic_metrics(), AGG_SPEC)
    table["estimator"] = table["estimator"].map({"sub": "subspace", "sv": "sv-best"})
    verdicts = {v.claim: v for v in evaluate_all(ours, table)}
    assert verdicts["coverage-subspace-recovers-a4"].verdict == "fails"  # 0.75 < 0.99
    assert verdicts["coverage-subspace-reports-not-identifiable"].verdict == "holds"


# ------------------------------------------------------------------------------ one real cell


def tiny_spec(labels=("subspace", "icrl", "ica"), draws=2, ks=(2, 4), K=8):
    cell = cov.CoverageCell(id=f"d-5_K-{K}", d=5, K=K, ks=ks, draws=draws)
    return {
        "kind": "coverage",
        "experiment": "coverage",
        "cell": cell.id,
        "coverage_cell": cell.to_dict(),
        "scenario": {**BASE, "n": 600},
        "estimators": core.estimator_entries(SMOKE, list(labels)),
        "seeds": [0, 1],
        "test_fraction": 0.25,
        "metrics": ["mcc", "mcc_paper", "amari", "target_f1"],
        "subsample": {},
        "recovered": 0.01,
        "strict": 0.001,
        "max_batch_mb": 100,
    }


def test_run_cell_rows_outcomes_and_determinism():
    spec = tiny_spec()
    frame, info = ex.run_cell(spec)
    assert info["problems"] == 2 * 2 * 2
    wide = ctab.problems_wide(frame)
    assert len(wide) == 8 * 3
    sub = wide[wide["estimator"] == "subspace"]
    a4 = sub["a4_satisfied"].to_numpy(bool)
    assert a4.any() and (~a4).any(), "the tiny grid should have both kinds of designs"
    assert (sub["amari"][a4] <= 1e-3).all() and (sub["target_f1"][a4] == 1.0).all()
    assert (sub["not_identifiable"][~a4] == 1.0).all()
    assert (sub["status"][~a4] == "NotIdentifiableError").all()
    assert sub["unidentifiable_latents_recovered"][~a4].eq(0).all()
    # ICA: one fit per (K, draw, seed), reused for both k values
    ica = frame[(frame["estimator"] == "ica") & (frame["metric"] == "mcc")]
    assert ica["shared_fit"].sum() == 4 and (ica["scored_on"] == "observational").all()
    assert ica.groupby(["draw", "seed"])["value"].nunique().eq(1).all()
    again, _ = cov.run_cell(spec)
    pd.testing.assert_frame_equal(frame.drop(columns="seconds"), again.drop(columns="seconds"))


def test_subsample_restricts_an_estimator():
    spec = tiny_spec(labels=("subspace", "icrl"))
    spec["subsample"] = {"icrl": cov.Subsample(designs=1, seeds=(1,)).to_dict()}
    frame, _ = cov.run_cell(spec)
    icrl = frame[frame["estimator"] == "icrl"].drop_duplicates(["design_id", "seed"])
    assert set(icrl["draw"]) == {0} and set(icrl["seed"]) == {1} and len(icrl) == 2
    assert (
        frame[frame["estimator"] == "subspace"].drop_duplicates(["design_id", "seed"]).shape[0] == 8
    )


def test_cli_run_aggregate_and_tables(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)  # keep XLA_FLAGS of this process
    spec = tiny_spec(labels=("subspace",), draws=1, ks=(3,))
    out = tmp_path / "cell.csv"
    assert (
        cli(
            [
                "run",
                "--spec",
                json.dumps(spec),
                "--out",
                str(out),
                "--info",
                str(tmp_path / "cell.json"),
            ]
        )
        == 0
    )
    info = json.loads((tmp_path / "cell.json").read_text())
    assert info["designs"][0]["design_id"] == "random_K-8_k-3_r-0"
    agg = {**AGG_SPEC, "cells": [spec["coverage_cell"]]}
    assert (
        cli(
            [
                "aggregate",
                str(out),
                "--spec",
                json.dumps(agg),
                "--out",
                str(tmp_path / "m.csv"),
                "--summary",
                str(tmp_path / "s.csv"),
            ]
        )
        == 0
    )
    m = pd.read_csv(tmp_path / "m.csv")
    assert set(m["level"]) == {"problem", "summary"}
    for table, rows in (("phase", 1), ("designs", 1)):
        assert (
            cli(
                [
                    "table",
                    table,
                    str(tmp_path / "m.csv"),
                    "--spec",
                    json.dumps(agg),
                    "--out",
                    str(tmp_path / f"{table}.csv"),
                ]
            )
            == 0
        )
        assert len(pd.read_csv(tmp_path / f"{table}.csv")) == rows
    phase = pd.read_csv(tmp_path / "phase.csv")
    assert phase["a4_probability"].iloc[0] == a4_probability(5, 8, 3, draws=ctab.A4_DRAWS)
    capsys.readouterr()
    assert cli(["run", "--spec", "{", "--out", str(tmp_path / "x.csv")]) == 2
    assert "not valid JSON" in capsys.readouterr().err
    assert not (tmp_path / "x.csv").exists()
    assert (
        cli(
            [
                "table",
                "trees",
                str(tmp_path / "m.csv"),
                "--spec",
                json.dumps(agg),
                "--out",
                str(tmp_path / "x.csv"),
            ]
        )
        == 2
    )
    assert "has no table 'trees'" in capsys.readouterr().err
    assert not (tmp_path / "x.csv").exists()


# ------------------------------------------------------------------------------ notebooks


@pytest.fixture(scope="module")
def smoke_like_tables(tmp_path_factory):
    """A real (tiny) coverage experiment: two cells at d = 5 and a structured one, aggregated
    with its phase and design tables as the workflow writes them."""
    tmp = tmp_path_factory.mktemp("cov")
    cells = [cov.CoverageCell(id=f"d-5_K-{K}", d=5, K=K, ks=(1, 2, 3, 4), draws=2) for K in (5, 9)]
    cells.append(
        cov.CoverageCell(
            id="d-5_structured", d=5, K=None, structured=("leave-one-out", "atomic", "blocks")
        )
    )
    paths = []
    for cell in cells:
        spec = {
            **tiny_spec(labels=("subspace", "icrl")),
            "cell": cell.id,
            "coverage_cell": cell.to_dict(),
        }
        paths.append(tmp / f"{cell.id}.csv")
        cov.run_cell(spec)[0].to_csv(paths[-1], index=False)
    agg = {**AGG_SPEC, "cells": [c.to_dict() for c in cells]}
    metrics_path = tmp / "metrics.csv"
    full = ex.aggregate(concat(paths), agg)
    full.to_csv(metrics_path, index=False)
    tables = {}
    for name in ex.module("coverage").TABLES:
        tables[name] = str(tmp / f"{name}.csv")
        ex.derived_table(name, full, agg).to_csv(tables[name], index=False)
    return {"coverage": str(metrics_path)}, {"coverage": tables}


@pytest.mark.parametrize("name", ["coverage_phase", "coverage_sparsity", "coverage_targets"])
def test_notebooks_execute(name, smoke_like_tables, tmp_path):
    metrics_paths, tables = smoke_like_tables
    nb = jupytext.read(ROOT / "figures" / f"{name}.py")
    assert sum("parameters" in c.metadata.get("tags", []) for c in nb.cells) == 1
    src = tmp_path / f"{name}.in.ipynb"
    jupytext.write(nb, src)
    out_stem = tmp_path / name
    params = {
        "figure": name,
        "metrics": metrics_paths,
        "tables": tables,
        "claims_file": str(ROOT / "paper/claims.yaml"),
        "out_stem": str(out_stem),
        "headline_metric": "mcc_paper",
        "estimators": LABELS,
    }
    papermill.execute_notebook(
        str(src),
        str(tmp_path / f"{name}.ipynb"),
        parameters=params,
        kernel_name="python3",
        cwd=str(tmp_path),
        progress_bar=False,
    )
    for ext in ("pdf", "png", "md"):
        assert Path(f"{out_stem}.{ext}").stat().st_size > 100
    md = Path(f"{out_stem}.md").read_text()
    if name == "coverage_phase":
        assert "| Subspace (ours) | 5 | 32 |" in md and "## Structured designs" in md
    if name == "coverage_sparsity":
        assert "## d = 5, K = 9" in md and "| ICRL |" in md
    if name == "coverage_targets":
        assert "| 5 | random | 32 |" in md and "| 5 | blocks | 2 | 0.00 | 0.000 | 1.000 |" in md
