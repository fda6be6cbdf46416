"""Experiment grids, stable cell ids and seeds, one-cell runs, aggregation and the CLI."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from mncrl import experiment as mx
from mncrl.errors import MncrlError
from mncrl.simulation import Scenario

ROOT = Path(__file__).resolve().parents[1]
CONFIG = yaml.safe_load((ROOT / "config/config.yaml").read_text())


def tiny_config(estimators=("icrl", "subspace"), **scenario):
    """A small config: d = 3 linear leave-one-out, a 2-cell grid over d."""
    base = {"d": 3, "n": 400, "design": "leave-one-out", "observational": True,
            "paired_noise": True, **scenario}
    return {
        "scenarios": {"s": base},
        "estimators": {"icrl": {"estimator": "icrl", "role": "baseline"},
                       "ica": {"estimator": "ica", "role": "baseline"},
                       "subspace": {"estimator": "subspace"},
                       "sv": {"estimator": "sparse-variance", "preset": "paper",
                              "overrides": {"epochs": 2, "batch_size": 256}, "role": "paper"}},
        "experiments": {"e": {"scenario": "s", "grid": {"d": [3, 4]},
                              "estimators": list(estimators), "seeds": [0, 1]}},
    }


# --------------------------------------------------------------------------------------------
# ids, grids, seeds
# --------------------------------------------------------------------------------------------


def test_stable_seed_is_pinned_and_distinct():
    # pinned: a change of the hash would silently change every result of the workflow
    assert mx.stable_seed("fig2a", "d-3", 0, "data") == 1878207844
    assert mx.stable_seed("fig2a", "d-3", 1, "data") == 926111467
    seeds = {mx.stable_seed("e", c, s, p) for c in ("d-3", "d-6") for s in range(5)
             for p in ("data", "split", "fit")}
    assert len(seeds) == 30 and all(0 <= s < 2**31 for s in seeds)


@pytest.mark.parametrize(("point", "expected"), [
    ({}, "base"),
    ({"d": 30, "mixing_seed": 1}, "d-30_mixing_seed-1"),
    ({"p": 0.2}, "p-0.2"),
    ({"p": 1.0}, "p-1.0"),
    ({"mechanism": "scm1"}, "mechanism-scm1"),
    ({"design_params.k": 2, "design": "random"}, "design_params.k-2_design-random"),
    ({"observational": False}, "observational-false"),
    ({"design_params.targets": [[0, 1], [2]]}, "design_params.targets-0-1-2"),
])
def test_cell_ids(point, expected):
    assert mx.cell_id(point) == expected


def test_grid_is_a_cartesian_product_in_written_order():
    points = mx.grid_points({"d": [3, 6], "mixing_seed": [1, 2, 3]})
    assert points[:3] == [{"d": 3, "mixing_seed": s} for s in (1, 2, 3)]
    assert len(points) == 6
    assert mx.grid_points({}) == [{}]
    with pytest.raises(MncrlError, match="non-empty list"):
        mx.grid_points({"d": []})


def test_apply_point_sets_design_parameters():
    base = {"d": 6, "design": "random", "design_params": {"K": 4}}
    out = mx.apply_point(base, {"design_params.k": 2, "d": 8})
    assert out == {"d": 8, "design": "random", "design_params": {"K": 4, "k": 2}}
    assert base["design_params"] == {"K": 4}  # the base is not modified


def test_paper_config_cells():
    paper = ["fig2a", "fig2b", "fig2c", "table1", "fig4"]
    counts = {name: len(mx.experiment_cells(CONFIG, name)) for name in paper}
    assert counts == {"fig2a": 4, "fig2b": 6, "fig2c": 5, "table1": 2, "fig4": 16}
    fig4 = mx.experiment_cells(CONFIG, "fig4")
    assert fig4[0].id == "d-3_mixing_seed-1" and fig4[0].scenario["mixing_seed"] == 1
    assert all(c.scenario["n"] == 100000 and c.scenario["paired_noise"] for c in fig4)
    fig2c = mx.experiment_cells(CONFIG, "fig2c")
    assert [c.scenario["n"] for c in fig2c] == [5000, 10000, 50000, 100000, 200000]
    assert not fig2c[0].scenario["observational"]  # no ICA in Fig. 2c
    spec = mx.cell_spec(CONFIG, "fig2a", "d-30")
    assert spec["seeds"] == [0, 1, 2, 3, 4] and spec["test_fraction"] == 0.25
    assert [e["label"] for e in spec["estimators"]] == ["sv-paper", "icrl", "ica", "sv-best",
                                                       "subspace"]
    assert all("display" not in e for e in spec["estimators"])
    Scenario.from_dict(spec["scenario"])
    with pytest.raises(MncrlError, match="no cell 'd-31'"):
        mx.cell_spec(CONFIG, "fig2a", "d-31")
    with pytest.raises(MncrlError, match="unknown experiment 'fig9'"):
        mx.cell_spec(CONFIG, "fig9", "d-3")


def test_adding_grid_cells_leaves_existing_cells_unchanged():
    bigger = copy.deepcopy(CONFIG)
    bigger["experiments"]["fig2a"]["grid"]["d"] = [2, 3, 4, 6, 10, 30, 50]
    for cell in ("d-3", "d-6", "d-30"):
        assert mx.cell_spec(bigger, "fig2a", cell) == mx.cell_spec(CONFIG, "fig2a", cell)


def test_interleave_is_sample_major():
    blocks = [np.full((3, 2), k, dtype=float) + np.arange(3)[:, None] * 10 for k in range(4)]
    pooled = mx.interleave(blocks)
    assert pooled.shape == (12, 2)
    assert pooled[:4, 0].tolist() == [0, 1, 2, 3]       # sample 0 of env 0..3
    assert pooled[4:8, 0].tolist() == [10, 11, 12, 13]  # sample 1 of env 0..3
    uneven = mx.interleave([np.zeros((2, 1)), np.ones((3, 1))])
    assert uneven[:, 0].tolist() == [0, 0, 1, 1, 1]


def test_prepare_separates_the_observational_environment():
    spec = mx.cell_spec(tiny_config(), "e", "d-3")
    scenario = Scenario.from_dict(spec["scenario"])
    p = mx.prepare(scenario, spec, 0)
    assert len(p.train_envs) == 3 and p.targets.shape == (3, 3) and p.targets.any(axis=1).all()
    assert all(block.shape == (300, 3) for block in p.train_envs)
    assert p.obs_train.shape == (300, 3) and p.obs_test_X.shape == (100, 3)
    assert p.test_X.shape == (300, 3)
    # leave-one-out do(=1): in pooled row i only latent i % 3 is free, the others equal 1
    free = np.argmax(np.abs(p.test_Z - 1.0) > 1e-6, axis=1)
    assert (free[:30] == np.arange(30) % 3).all()
    assert np.allclose(p.test_X, p.test_Z @ p.L, atol=1e-5)
    again = mx.prepare(scenario, spec, 0)
    assert np.array_equal(again.test_X, p.test_X) and np.array_equal(again.obs_train,
                                                                      p.obs_train)
    other = mx.prepare(scenario, spec, 1)
    assert not np.array_equal(other.test_X, p.test_X)


def test_seeds_per_chunk_respects_the_memory_cap():
    s = Scenario.from_dict({"d": 30, "n": 100000, "observational": True})
    assert mx.seeds_per_chunk(s, 5, 100000) == 5
    assert mx.seeds_per_chunk(s, 5, 2000) == 1
    assert 1 <= mx.seeds_per_chunk(s, 5, 3000) < 5
    small = Scenario.from_dict({"d": 3, "n": 1000})
    assert mx.seeds_per_chunk(small, 5, 10) == 5


# --------------------------------------------------------------------------------------------
# running cells (real estimators on tiny data)
# --------------------------------------------------------------------------------------------


def test_run_cell_rows_and_determinism():
    spec = mx.cell_spec(tiny_config(("icrl", "ica", "subspace")), "e", "d-3")
    frame, info = mx.run_cell(spec)
    assert list(frame.columns[:2]) == ["experiment", "cell"]
    assert {"d", "n", "p", "mixing_seed", "seed", "estimator", "metric", "value", "seconds",
            "status", "scored_on", "role", "a4_satisfied"} <= set(frame.columns)
    assert (frame["status"] == "ok").all() and frame["a4_satisfied"].all()
    per = frame.groupby(["estimator", "seed"])["metric"].apply(set)
    assert per["icrl", 0] >= {"mcc", "mcc_paper", "mcc_spearman", "amari"}
    assert "target_f1" in per["subspace", 0]  # subspace reports targets
    assert set(frame.loc[frame["estimator"] == "ica", "scored_on"]) == {"observational"}
    assert set(frame.loc[frame["estimator"] != "ica", "scored_on"]) == {"interventional"}
    sub = frame[(frame["estimator"] == "subspace") & (frame["metric"] == "mcc")]
    assert sub["value"].min() > 0.999  # noiseless do-interventions: exact recovery
    again, _ = mx.run_cell(spec)
    cols = [c for c in frame.columns if c != "seconds"]
    pd.testing.assert_frame_equal(frame[cols], again[cols])
    assert [f["estimator"] for f in info["fits"]][:3] == ["icrl", "icrl", "ica"]


def test_run_cell_vmaps_seeds_and_matches_single_fits():
    """The batched fit of a cell gives what one-seed fits give (same keys)."""
    cfg = tiny_config(("sv",))
    spec = mx.cell_spec(cfg, "e", "d-3")
    batched, _ = mx.run_cell(spec)
    single = pd.concat([mx.run_cell({**spec, "seeds": [s]})[0] for s in spec["seeds"]],
                       ignore_index=True)
    cols = ["seed", "estimator", "metric"]
    b = batched.set_index(cols)["value"].sort_index()
    s = single.set_index(cols)["value"].sort_index()
    np.testing.assert_allclose(b.to_numpy(), s.to_numpy(), rtol=1e-5, atol=1e-6)


def test_failed_fits_are_recorded_not_fatal():
    cfg = tiny_config(("subspace", "icrl"), design="blocks", d=4,
                      design_params={"size": 2}, observational=False)
    cfg["experiments"]["e"]["grid"] = {}
    spec = mx.cell_spec(cfg, "e", "base")
    frame, info = mx.run_cell(spec)
    sub = frame[frame["estimator"] == "subspace"]
    assert (sub["status"] == "NotIdentifiableError").all() and sub["value"].isna().all()
    assert not frame.loc[frame["estimator"] == "subspace", "a4_satisfied"].any()
    assert (frame.loc[frame["estimator"] == "icrl", "status"] == "ok").all()
    msgs = [f["message"] for f in info["fits"] if f["estimator"] == "subspace"]
    assert all(m for m in msgs)


# --------------------------------------------------------------------------------------------
# files and the command line
# --------------------------------------------------------------------------------------------


def test_cli_run_aggregate_and_summary(tmp_path, capsys):
    cfg = tiny_config(("icrl", "subspace"))
    tables = []
    for cell in ("d-3", "d-4"):
        spec_file = tmp_path / f"{cell}.spec.json"
        spec_file.write_text(json.dumps(mx.cell_spec(cfg, "e", cell)))
        out = tmp_path / "cells" / f"{cell}.csv"
        assert mx.main(["run", "--spec", f"@{spec_file}", "--out", str(out),
                        "--info", str(out.with_suffix(".json"))]) == 0
        tables.append(str(out))
        info = json.loads(out.with_suffix(".json").read_text())
        assert info["spec"]["cell"] == cell and len(info["fits"]) == 4
    assert mx.main(["aggregate", *tables, "--out", str(tmp_path / "m.csv"),
                    "--summary", str(tmp_path / "s.csv")]) == 0
    table = pd.read_csv(tmp_path / "m.csv")
    assert table["cell"].unique().tolist() == ["d-3", "d-4"]
    summary = pd.read_csv(tmp_path / "s.csv")
    row = summary[(summary["cell"] == "d-3") & (summary["estimator"] == "icrl")
                  & (summary["metric"] == "mcc")].iloc[0]
    vals = table[(table["cell"] == "d-3") & (table["estimator"] == "icrl")
                 & (table["metric"] == "mcc")]["value"]
    assert row["mean"] == pytest.approx(vals.mean())
    assert row["se"] == pytest.approx(vals.std(ddof=1) / np.sqrt(2)) and row["n_seeds"] == 2
    assert row["d"] == 3
    assert not list((tmp_path / "cells").glob(".*"))  # no temp files left
    capsys.readouterr()


@pytest.mark.parametrize(("args", "words"), [
    (["run", "--spec", "{not json", "--out", "X.csv"], ["not valid JSON"]),
    (["run", "--spec", "{}", "--out", "X.csv"], ["misses the key 'experiment'"]),
    (["run", "--spec", "@missing.json", "--out", "X.csv"], ["spec file not found"]),
    (["aggregate", "missing.csv", "--out", "X.csv"], ["metrics table not found"]),
])
def test_cli_errors_are_one_line_and_write_nothing(tmp_path, monkeypatch, capsys, args, words):
    monkeypatch.chdir(tmp_path)
    assert mx.main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and all(w in err for w in words)
    assert not (tmp_path / "X.csv").exists()


def test_cli_bad_scenario_in_spec(tmp_path, capsys):
    spec = mx.cell_spec(tiny_config(), "e", "d-3")
    spec["scenario"]["graph"] = "ring"
    assert mx.main(["run", "--spec", json.dumps(spec), "--out", str(tmp_path / "X.csv")]) == 2
    err = capsys.readouterr().err
    assert "graph must be one of" in err and err.count("\n") == 1


def test_remove_stale_temps(tmp_path):
    target = tmp_path / "cell.csv"
    (tmp_path / ".cell.csv.abc123.csv").write_text("half")
    (tmp_path / ".other.csv.x.csv").write_text("keep")
    mx.remove_stale_temps(target)
    assert [p.name for p in tmp_path.iterdir()] == [".other.csv.x.csv"]
