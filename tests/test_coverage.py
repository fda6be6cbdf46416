"""The coverage experiment (identifiability maps, issue #5): design enumeration, Assumption 4
against brute force, the cached data path against the simulator, the moment-based metrics
against mncrl.metrics, per-latent recovery, the aggregation into phase and claim tables, one
real cell, the notebooks, and the coverage part of the smoke workflow run by Snakemake."""

from __future__ import annotations

import itertools
import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import jupytext
import numpy as np
import pandas as pd
import papermill
import pytest
import yaml

from mncrl import coverage as cov
from mncrl import experiment as mx
from mncrl import metrics
from mncrl.errors import MncrlError
from mncrl.interventions import assumption4
from mncrl.simulation import Scenario, design_matrix

ROOT = Path(__file__).resolve().parents[1]
BASE = {"d": 6, "n": 400, "graph": "erdos-renyi", "p": 0.75, "weight_range": [0.1, 1.0],
        "mechanism": "linear", "noise": "gaussian", "noise_std": 0.1, "design": "leave-one-out",
        "intervention": "do", "do_value": 1.0, "observational": True, "mixing": "paper",
        "mixing_seed": 0, "paired_noise": False}
LABELS = {"sv-paper": "Paper (sparse variance)", "icrl": "ICRL", "ica": "ICA (observational)",
          "sv-best": "Sparse variance, moments (ours)", "subspace": "Subspace (ours)"}


def config_yaml(*names):
    out: dict = {}

    def update(dst, src):
        for k, v in src.items():
            if isinstance(v, dict) and isinstance(dst.get(k), dict):
                update(dst[k], v)
            else:
                dst[k] = v

    for name in names:
        update(out, yaml.safe_load((ROOT / "config" / name).read_text()))
    return out


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
    s = cov.settings(config_yaml("config.yaml")["experiments"]["coverage"]["coverage"])
    cells = cov.coverage_cells(s)
    # large (d, K) cells are split into jobs by design seed (draws_per_job: auto)
    assert [c.id for c in cells] == [
        "d-6_K-6", "d-6_K-12", "d-6_structured", "d-10_K-7", "d-10_K-10", "d-10_K-20",
        "d-10_structured", "d-20_K-9_r-0-9", "d-20_K-9_r-10-19", "d-20_K-20_r-0-6",
        "d-20_K-20_r-7-13", "d-20_K-20_r-14-19", "d-20_K-40_r-0-3", "d-20_K-40_r-4-7",
        "d-20_K-40_r-8-11", "d-20_K-40_r-12-15", "d-20_K-40_r-16-19", "d-20_structured"]
    for (d, K), parts in itertools.groupby([c for c in cells if c.K], lambda c: (c.d, c.K)):
        draws = [dz.draw for c in parts for dz in c.designs() if dz.k == 1]
        assert draws == list(range(20)), (d, K)  # every design seed exactly once
    one_job = cov.coverage_cells(cov.settings({"d": [20], "draws_per_job": 20}))
    assert [c.id for c in one_job] == ["d-20_K-9", "d-20_K-20", "d-20_K-40", "d-20_structured"]
    n_random = sum(len(c.designs()) for c in cells if c.K is not None)
    # 20 designs x (d - 1) sparsities x number of distinct K, per d
    assert n_random == 20 * (5 * 2 + 9 * 3 + 19 * 3) == 1880
    ids = [dz.id for c in cells for dz in c.designs()]
    assert len(set(zip(ids, [c.d for c in cells for _ in c.designs()], strict=True))) == len(ids)
    structured = [c for c in cells if c.K is None]
    assert [[dz.family for dz in c.designs()] for c in structured] == \
        [["leave-one-out", "atomic", "separating", "blocks"]] * 3


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
    by_name = {dz.family: cov.design_report(dz) for dz in cov.structured_designs(
        8, ["leave-one-out", "atomic", "separating", "separating-bits", "blocks"])}
    assert by_name["leave-one-out"].satisfied and by_name["atomic"].satisfied
    assert by_name["separating"].satisfied and by_name["separating-bits"].satisfied
    assert by_name["separating"].design.K == 5  # C(5, 2) = 10 >= 8 > C(4, 2)
    blocks = by_name["blocks"]
    assert not blocks.satisfied and blocks.design.K == 4
    assert set(blocks.unseparated) == {(0, 1), (1, 0), (2, 3), (3, 2), (4, 5), (5, 4),
                                       (6, 7), (7, 6)}
    assert blocks.unidentifiable == tuple(range(8))
    assert cov.structured_designs(3, ["blocks"]) == []


def brute_force_unseparated(T):
    d = T.shape[1]
    return {(j, i) for j in range(d) for i in range(d)
            if i != j and not any(row[j] and not row[i] for row in T)}


def test_vectorised_assumption4_matches_brute_force():
    rng = np.random.default_rng(1)
    for d, K, k in [(4, 3, 2), (6, 6, 3), (7, 12, 2), (10, 7, 5), (5, 20, 4)]:
        T = cov.sample_random_targets(rng, 300, d, K, k)
        assert (T.sum(axis=-1) == k).all()
        U = cov.unseparated_mask(T)
        ok = cov.assumption4_batch(T)
        for t in range(len(T)):
            pairs = brute_force_unseparated(T[t])
            assert set(zip(*np.nonzero(U[t]), strict=True)) == pairs
            assert ok[t] == (not pairs) == assumption4(T[t]).satisfied
            report = cov.design_report(cov.Design(d=d, family="random", K=K, k=k), T[t])
            assert set(report.unseparated) == pairs
            assert set(report.unidentifiable) == {j for j, _ in pairs}


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
    mc = cov.a4_probability(d, K, k, draws=20000)
    assert abs(mc - exact) <= 4 * math.sqrt(exact * (1 - exact) / 20000) + 1e-9, (mc, exact)
    # and the fraction over the grid's own random designs (design seeds), within 4 SE
    designs = cov.random_designs(d, K, k, 400)
    frac = np.mean([cov.design_report(dz).satisfied for dz in designs])
    assert abs(frac - exact) <= 4 * math.sqrt(exact * (1 - exact) / 400) + 1e-9


def test_exact_values_for_small_designs():
    # d = 4 atomic-like: K = 4 single targets must hit every node -> 4! / 4^4
    assert exact_a4_probability(4, 4, 1) == pytest.approx(24 / 256)
    assert cov.a4_probability(4, 4, 4) == 0.0
    assert cov.a4_probability(6, 3, 3, draws=2000) == 0.0  # 3 environments cannot separate 6


def test_settings_errors_name_the_key():
    with pytest.raises(MncrlError, match="unknown key 'kk'"):
        cov.settings({"kk": 1})
    with pytest.raises(MncrlError, match=r"\.K: 'log' is neither"):
        cov.settings({"K": ["log"]})
    with pytest.raises(MncrlError, match=r"\.k must be 'all'"):
        cov.settings({"k": "some"})
    with pytest.raises(MncrlError, match=r"subsample\.sv-paper: unknown key 'n'"):
        cov.settings({"subsample": {"sv-paper": {"n": 3}}})
    with pytest.raises(MncrlError, match=r"\.recovered must be a number in \(0, 1\)"):
        cov.settings({"recovered": 0})


def test_subsample_per_d():
    sub = cov.settings({"subsample": {"sv-paper": {"designs": {6: 10, "20": 1},
                                                   "seeds": {20: [0]}}}}).subsample_for("sv-paper")
    assert sub == cov.Subsample.from_dict(json.loads(json.dumps(sub.to_dict())))

    def runs(d, draw, seed, family="random"):
        return sub.runs(cov.Design(d=d, family=family, K=d, k=1, draw=draw), seed)

    assert runs(6, 9, 2) and not runs(6, 10, 0)
    assert runs(20, 0, 0) and not runs(20, 1, 0) and not runs(20, 0, 1)
    assert runs(10, 19, 2)  # no restriction at d = 10
    assert runs(20, 5, 2, family="atomic")  # structured designs always run
    assert cov.settings({}).subsample_for("x").runs(cov.Design(d=6, family="random", K=6), 0)
    with pytest.raises(MncrlError, match=r"designs: keys must be latent dimensions"):
        cov.settings({"subsample": {"a": {"designs": {"six": 1}}}})


def test_config_hooks():
    config = config_yaml("config.yaml")
    cells = mx.experiment_cells(config, "coverage")
    assert [c.id for c in cells][:3] == ["d-6_K-6", "d-6_K-12", "d-6_structured"]
    spec = cov.cell_spec(config, "coverage", "d-20_K-40_r-4-7")
    assert spec["scenario"]["n"] == 20000 and spec["scenario"]["paired_noise"] is False
    assert spec["coverage_cell"] == {"id": "d-20_K-40_r-4-7", "d": 20, "K": 40,
                                     "ks": list(range(1, 20)), "draws": 4, "draw_start": 4,
                                     "structured": []}
    json.dumps(spec)
    with pytest.raises(MncrlError, match="no cell 'd-7_K-1'"):
        cov.cell_spec(config, "coverage", "d-7_K-1")
    smoke = config_yaml("config.yaml", "smoke.yaml")
    assert [c.id for c in mx.experiment_cells(smoke, "coverage")] == \
        ["d-6_K-6", "d-6_K-12", "d-6_structured"]


# ------------------------------------------------------------------------------ data


@pytest.mark.parametrize("design, changes", [
    (cov.Design(d=6, family="random", K=9, k=2, draw=3), {}),
    (cov.Design(d=6, family="atomic", K=6), {"observational": False}),
    (cov.Design(d=5, family="leave-one-out", K=5), {"paired_noise": True, "obs_noise": 0.01}),
])
def test_cached_prepare_is_bit_identical_to_the_experiment_runner(design, changes):
    scenario = Scenario.from_dict({**cov.design_scenario(BASE, design), **changes})
    noise = cov.NoiseCache()
    for _ in range(2):  # second time from the cache
        a = cov.prepare(scenario, "coverage", design.data_cell, 1, 0.25, noise)
        b = mx.prepare(scenario, {"experiment": "coverage", "cell": design.data_cell,
                                  "test_fraction": 0.25}, 1)
        for name in ("train_envs", "test_X", "test_Z", "obs_train", "obs_test_X",
                     "obs_test_Z", "L", "targets"):
            x, y = getattr(a, name), getattr(b, name)
            if isinstance(x, list):
                assert len(x) == len(y) and all(np.array_equal(u, v) and u.dtype == v.dtype
                                                for u, v in zip(x, y, strict=True)), name
            elif x is None:
                assert y is None, name
            else:
                assert np.array_equal(x, y) and x.dtype == y.dtype, name


def test_designs_of_one_draw_share_the_scm_and_noise():
    scen = [Scenario.from_dict(cov.design_scenario(BASE, cov.Design(
        d=6, family="random", K=7, k=k, draw=2))) for k in (1, 4)]
    a, b = (cov.prepare(s, "coverage", "d-6_r-2", 0) for s in scen)
    assert np.array_equal(a.obs_train, b.obs_train)  # same observational data: ICA shared
    assert not np.array_equal(a.train_envs[0], b.train_envs[0])


# ------------------------------------------------------------------------------ metrics


def test_moment_metrics_match_the_metrics_module():
    rng = np.random.default_rng(0)
    n, d = 12_345, 5  # two complete 5000-row chunks and a remainder
    Z = rng.standard_normal((n, d)).astype(np.float32)
    Z[:, 2] = 1.0  # a constant latent (correlation 0 by convention)
    X = (Z @ (rng.random((d, d)) + np.eye(d))).astype(np.float32)
    mom = cov.test_moments(X, Z)
    for W in (np.linalg.pinv(rng.random((d, d)) + np.eye(d)), rng.standard_normal((d, d)),
              np.c_[rng.standard_normal((d, d - 1)), np.zeros(d)]):
        got = cov.mcc_from_moments(mom, W)
        Zhat = X.astype(np.float64) @ W
        assert got["mcc"] == pytest.approx(metrics.mcc(Z, Zhat), abs=1e-9)
        assert got["mcc_paper"] == pytest.approx(metrics.mcc_paper(Z, Zhat), abs=1e-9)
    small = cov.test_moments(X[:300], Z[:300])  # fewer rows than a chunk: one chunk
    W = rng.standard_normal((d, d))
    assert cov.mcc_from_moments(small, W)["mcc_paper"] == pytest.approx(
        metrics.mcc_paper(Z[:300], X[:300].astype(np.float64) @ W), abs=1e-9)


def test_latent_recovery():
    rng = np.random.default_rng(0)
    L = rng.random((4, 4)) + np.eye(4)
    P = np.eye(4)[[2, 0, 3, 1]] * np.array([2.0, -1.0, 0.5, 3.0])
    W = np.linalg.solve(L, P)  # L W = scaled permutation
    assert cov.latent_recovery(L, W, 0.01).all()
    # rows = true latents, columns = estimates: estimate 0 is true latent 1 (P[1, 0] = 2);
    # make it an equal mix of latents 1 and 2 (latent 2 is still estimate 3 on its own)
    assert P[1, 0] == 2.0 and P[2, 3] == 3.0
    M = P.copy()
    M[1, 0] = M[2, 0] = 1.0
    rec = cov.latent_recovery(L, np.linalg.solve(L, M), 0.01)
    assert rec.tolist() == [True, False, True, True]
    best, terms = cov.column_terms(L, np.linalg.solve(L, M))
    assert terms[0] == pytest.approx(1 / 3) and terms[1:] == pytest.approx(0, abs=1e-9)
    assert best.tolist()[1:] == [3, 0, 2]


# ------------------------------------------------------------------------------ aggregation


def synthetic_metrics() -> pd.DataFrame:
    """Two estimators on six problems at d = 4: designs A (satisfies A4) and B (violates it,
    latent 0 unidentifiable), two k values, seeds 0/1. Values chosen by hand."""
    rows = []

    def add(design, k, a4, seed, est, amari, not_id, unid=None, status="ok"):
        base = {"experiment": "coverage", "cell": "d-4_K-4", "level": "problem", "d": 4,
                "design": "random", "design_id": f"{design}-k{k}", "draw": 0, "K": 4, "k": k,
                "a4_satisfied": a4, "n_unidentifiable": 0 if a4 else 1, "seed": seed,
                "estimator": est, "status": status}
        vals = {"amari": amari, "mcc": 1 - amari, "not_identifiable": not_id,
                "latents_recovered": 1.0 if amari <= 0.01 else 0.5}
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


def test_phase_table_on_a_synthetic_table():
    phase = cov.phase_table(synthetic_metrics(), threshold=0.01, strict=0.001)
    get = phase.set_index(["estimator", "k"])
    sub2, sv1, sv2 = get.loc[("sub", 2)], get.loc[("sv", 1)], get.loc[("sv", 2)]
    assert sub2["problems"] == 4 and sub2["designs"] == 2 and sub2["a4_fraction"] == 0.5
    assert sub2["recovered_fraction"] == 0.5  # both A problems, none of the failed B fits
    assert sub2["recovered_given_a4"] == 1.0 and sub2["recovered_given_not_a4"] == 0.0
    assert sub2["recovered_strict_fraction"] == 0.25  # only seed 0 has amari <= 1e-3
    assert sub2["not_identifiable_fraction"] == 0.5
    assert sv1["recovered_fraction"] == 0.0 and sv1["mean_amari"] == pytest.approx(0.2)
    assert sv2["recovered_fraction"] == 0.5 and sv2["a4_fraction"] == 0.5


def test_claim_rows_on_a_synthetic_table():
    rows = cov.claim_rows(synthetic_metrics(), recovered=0.01, strict=0.001)
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
    assert "rate_recovered_not_a4" not in set(cov.claim_rows(only_a4)["metric"])


def test_claims_checker_reads_the_summary_rows():
    from mncrl.claims import evaluate_all, load_claims

    _, claims = load_claims(ROOT / "paper/claims.yaml")
    ours = [c for c in claims if c.experiment == "coverage"]
    assert ours and all(c.source == "ours" for c in ours)
    table = pd.concat([synthetic_metrics(), cov.claim_rows(synthetic_metrics())])
    table["estimator"] = table["estimator"].map({"sub": "subspace", "sv": "sv-best"})
    verdicts = {v.claim: v for v in evaluate_all(ours, table)}
    assert verdicts["coverage-subspace-recovers-a4"].verdict == "fails"  # 0.75 < 0.99
    assert verdicts["coverage-subspace-reports-not-identifiable"].verdict == "holds"


# ------------------------------------------------------------------------------ one real cell


def tiny_spec(labels=("subspace", "icrl", "ica"), draws=2, ks=(2, 4), K=8):
    config = config_yaml("config.yaml", "smoke.yaml")
    cell = cov.CoverageCell(id=f"d-5_K-{K}", d=5, K=K, ks=ks, draws=draws)
    return {"experiment": "coverage", "cell": cell.id, "coverage_cell": cell.to_dict(),
            "scenario": {**BASE, "n": 600},
            "estimators": mx.estimator_entries(config, list(labels)), "seeds": [0, 1],
            "metrics": ["mcc", "mcc_paper", "amari", "target_f1"], "subsample": {},
            "recovered": 0.01, "max_batch_mb": 100}


def test_run_cell_rows_outcomes_and_determinism():
    spec = tiny_spec()
    frame, info = cov.run_cell(spec)
    assert info["problems"] == 2 * 2 * 2
    wide = cov.problems_wide(frame)
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
    spec["subsample"] = {"icrl": {"designs": 1, "seeds": [1]}}
    frame, _ = cov.run_cell(spec)
    icrl = frame[frame["estimator"] == "icrl"].drop_duplicates(["design_id", "seed"])
    assert set(icrl["draw"]) == {0} and set(icrl["seed"]) == {1} and len(icrl) == 2
    assert frame[frame["estimator"] == "subspace"].drop_duplicates(
        ["design_id", "seed"]).shape[0] == 8


def test_cli_run_and_aggregate(tmp_path, capsys):
    spec = tiny_spec(labels=("subspace",), draws=1, ks=(3,))
    out = tmp_path / "cell.csv"
    assert cov.main(["run", "--spec", json.dumps(spec), "--out", str(out),
                     "--info", str(tmp_path / "cell.json")]) == 0
    info = json.loads((tmp_path / "cell.json").read_text())
    assert info["designs"][0]["design_id"] == "random_K-8_k-3_r-0"
    agg = {"experiment": "coverage", "recovered": 0.01, "strict": 0.001,
           "cells": [spec["coverage_cell"]]}
    assert cov.main(["aggregate", str(out), "--spec", json.dumps(agg), "--out",
                     str(tmp_path / "m.csv"), "--phase", str(tmp_path / "phase.csv"),
                     "--designs", str(tmp_path / "designs.csv"),
                     "--summary", str(tmp_path / "s.csv")]) == 0
    m = pd.read_csv(tmp_path / "m.csv")
    assert set(m["level"]) == {"problem", "summary"}
    assert len(pd.read_csv(tmp_path / "designs.csv")) == 1
    assert cov.main(["run", "--spec", "{", "--out", str(tmp_path / "x.csv")]) == 2
    assert "not valid JSON" in capsys.readouterr().err
    assert not (tmp_path / "x.csv").exists()


# ------------------------------------------------------------------------------ notebooks


@pytest.fixture(scope="module")
def smoke_like_table(tmp_path_factory):
    """A real (tiny) coverage table: two cells at d = 5 and a structured one."""
    path = tmp_path_factory.mktemp("cov") / "metrics.csv"
    frames = []
    for K in (5, 9):
        frames.append(cov.run_cell(tiny_spec(labels=("subspace", "icrl"), draws=2,
                                             ks=(1, 2, 3, 4), K=K))[0])
    structured = cov.CoverageCell(id="d-5_structured", d=5, K=None,
                                  structured=("leave-one-out", "atomic", "blocks"))
    spec = {**tiny_spec(labels=("subspace", "icrl")), "cell": structured.id,
            "coverage_cell": structured.to_dict()}
    frames.append(cov.run_cell(spec)[0])
    cells = []
    for i, f in enumerate(frames):
        cells.append(tmp_path_factory.getbasetemp() / f"cell{i}.csv")
        f.to_csv(cells[-1], index=False)
    full, _ = cov.aggregate([str(c) for c in cells])
    full.to_csv(path, index=False)
    return path


@pytest.mark.parametrize("name", ["coverage_phase", "coverage_sparsity", "coverage_targets"])
def test_notebooks_execute(name, smoke_like_table, tmp_path):
    nb = jupytext.read(ROOT / "figures" / f"{name}.py")
    assert sum("parameters" in c.metadata.get("tags", []) for c in nb.cells) == 1
    src = tmp_path / f"{name}.in.ipynb"
    jupytext.write(nb, src)
    out_stem = tmp_path / name
    params = {"metrics": {"coverage": str(smoke_like_table)},
              "claims_file": str(ROOT / "paper/claims.yaml"), "out_stem": str(out_stem),
              "headline_metric": "mcc_paper", "estimators": LABELS, "roles": {}}
    papermill.execute_notebook(str(src), str(tmp_path / f"{name}.ipynb"), parameters=params,
                               kernel_name="python3", cwd=str(tmp_path), progress_bar=False)
    for ext in ("pdf", "png", "md"):
        assert Path(f"{out_stem}.{ext}").stat().st_size > 100
    md = Path(f"{out_stem}.md").read_text()
    if name == "coverage_phase":
        assert "| Subspace (ours) | 5 | 32 |" in md and "## Structured designs" in md
    if name == "coverage_sparsity":
        assert "## d = 5, K = 9" in md and "| ICRL |" in md
    if name == "coverage_targets":
        assert "| 5 | random | 32 |" in md and "| 5 | blocks | 2 | 0.00 | 0.000 | 1.000 |" in md


# ------------------------------------------------------------------------------ Snakemake


ITEMS = ("Snakefile", "rules", "config", "envs", "profiles", "figures", "paper")


@pytest.mark.workflow
def test_smoke_coverage_part_runs_with_snakemake(tmp_path):
    """`snakemake --configfile config/smoke.yaml coverage` in a copy of the workflow: the cell
    tables, metrics (with summary rows), phase and design tables and the three figures."""
    for item in ITEMS:
        src = ROOT / item
        if src.is_dir():
            shutil.copytree(src, tmp_path / item, ignore=shutil.ignore_patterns(
                "*.pdf", "*.png", "*.md", "__pycache__", ".ipynb_checkpoints"))
        elif src.exists():
            shutil.copy(src, tmp_path / item)
    shutil.copy(ROOT / "paper/claims.yaml", tmp_path / "paper/claims.yaml")
    snakemake = str(Path(sys.executable).with_name("snakemake"))
    proc = subprocess.run([snakemake, "--configfile", "config/smoke.yaml", "--cores", "2",
                           "coverage"], cwd=tmp_path, capture_output=True, text=True,
                          timeout=600, env={**os.environ, "PYTHONHASHSEED": "0"})
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    out = tmp_path / "results/smoke"
    smoke = config_yaml("config.yaml", "smoke.yaml")["experiments"]["coverage"]
    for cell in ("d-6_K-6", "d-6_K-12", "d-6_structured"):
        assert (out / "coverage/cells" / f"{cell}.csv").stat().st_size > 0
        assert (out / "benchmarks/coverage/coverage" / f"{cell}.tsv").exists()
    table = pd.read_csv(out / "coverage/metrics.csv")
    problems = table[table["level"] == "problem"]
    assert set(problems["d"]) == {6} and set(problems["seed"]) == set(smoke["seeds"])
    assert set(problems["estimator"]) == set(smoke["estimators"])
    assert set(problems["status"]) <= {"ok", "NotIdentifiableError", "ConvergenceError"}
    sub = cov.problems_wide(problems[problems["estimator"] == "subspace"])
    assert (sub["amari"][sub["a4_satisfied"]] <= 1e-3).all()
    assert (sub["not_identifiable"][~sub["a4_satisfied"]] == 1).all()
    summary = table[table["level"] == "summary"]
    assert {"rate_recovered_a4", "rate_reported_not_identifiable"} <= set(summary["metric"])
    phase = pd.read_csv(out / "coverage/phase.csv")
    assert set(phase["K"].dropna()) >= {6, 12}
    designs = pd.read_csv(out / "coverage/designs.csv")
    assert len(designs) == 2 * 5 * 2 + 2
    for name in ("coverage_phase", "coverage_sparsity", "coverage_targets"):
        for ext in ("pdf", "png", "md"):
            assert (out / "figures" / f"{name}.{ext}").stat().st_size > 100
        assert (out / "notebooks" / f"{name}.ipynb").exists()
