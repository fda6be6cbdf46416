"""The experiment engine: stable cell ids and seeds, the grid kind, one-cell runs, aggregation,
the kind dispatch and the command line (the coverage kind: tests/test_coverage.py)."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from test_coverage import assert_prepared_equal, reference_prepare  # simulate + split

from mncrl import config as config_mod
from mncrl import experiments as ex
from mncrl.errors import ConvergenceError, DegenerateFitError, MncrlError, NotIdentifiableError
from mncrl.experiments import core, tables
from mncrl.experiments.__main__ import main as cli
from mncrl.simulation import Scenario, design_matrix

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = ROOT / "config/schema.yaml"
CONFIG = config_mod.load(ROOT / "config/config.yaml")


def validated(config):
    return config_mod.validate(copy.deepcopy(config), SCHEMA)


def tiny_config(estimators=("icrl", "subspace"), **scenario):
    """A small config: d = 3 linear leave-one-out, a 2-cell grid over d."""
    base = {
        "d": 3,
        "n": 400,
        "design": "leave-one-out",
        "observational": True,
        "paired_noise": True,
        **scenario,
    }
    return validated(
        {
            "scenarios": {"s": base},
            "estimators": {
                "icrl": {"estimator": "icrl", "role": "baseline"},
                "ica": {"estimator": "ica", "role": "baseline"},
                "subspace": {"estimator": "subspace"},
                "sv": {
                    "estimator": "sparse-variance",
                    "preset": "paper",
                    "overrides": {"epochs": 2, "batch_size": 256},
                    "role": "paper",
                },
            },
            "experiments": {
                "e": {
                    "scenario": "s",
                    "grid": {"d": [3, 4]},
                    "estimators": list(estimators),
                    "seeds": [0, 1],
                }
            },
        }
    )


# --------------------------------------------------------------------------------------------
# ids, grids, seeds
# --------------------------------------------------------------------------------------------


def test_stable_seed_is_pinned_and_distinct():
    # pinned: a change of the hash would silently change every result of the workflow
    assert core.stable_seed("fig2a", "d-3", 0, "data") == 1878207844
    assert core.stable_seed("fig2a", "d-3", 1, "data") == 926111467
    seeds = {
        core.stable_seed("e", c, s, p)
        for c in ("d-3", "d-6")
        for s in range(5)
        for p in ("data", "split", "fit")
    }
    assert len(seeds) == 30 and all(0 <= s < 2**31 for s in seeds)


@pytest.mark.parametrize(
    ("point", "expected"),
    [
        ({}, "base"),
        ({"d": 30, "mixing_seed": 1}, "d-30_mixing_seed-1"),
        ({"p": 0.2}, "p-0.2"),
        ({"p": 1.0}, "p-1.0"),
        ({"mechanism": "scm1"}, "mechanism-scm1"),
        ({"design_params.k": 2, "design": "random"}, "design_params.k-2_design-random"),
        ({"observational": False}, "observational-false"),
        ({"design_params.targets": [[0, 1], [2]]}, "design_params.targets-0-1-2"),
    ],
)
def test_cell_ids(point, expected):
    assert core.cell_id(point) == expected


def test_grid_is_a_cartesian_product_in_written_order():
    points = core.grid_points({"d": [3, 6], "mixing_seed": [1, 2, 3]})
    assert points[:3] == [{"d": 3, "mixing_seed": s} for s in (1, 2, 3)]
    assert len(points) == 6
    assert core.grid_points({}) == [{}]
    raw = {
        "scenarios": {"s": {"d": 3}},
        "estimators": {"i": {"estimator": "icrl"}},
        "experiments": {
            "e": {"scenario": "s", "grid": {"d": []}, "estimators": ["i"], "seeds": [0]}
        },
    }
    with pytest.raises(MncrlError, match="experiments.e.grid.d"):  # the schema refuses it
        validated(raw)


def test_apply_point_sets_design_parameters():
    base = {"d": 6, "design": "random", "design_params": {"K": 4}}
    out = core.apply_point(base, {"design_params.k": 2, "d": 8})
    assert out == {"d": 8, "design": "random", "design_params": {"K": 4, "k": 2}}
    assert base["design_params"] == {"K": 4}  # the base is not modified


def test_label_keys_label_cells_without_changing_the_scenario():
    base = {"d": 6, "p": 0.75}
    point = {"label.p": 0.2, "d": 8}
    assert core.apply_point(base, point) == {"d": 8, "p": 0.75}
    assert core.label_columns(point) == {"label_p": 0.2}
    assert core.cell_id(point) == "label.p-0.2_d-8"
    released = ex.cells(CONFIG, "fig2b-as-released")
    assert [c.scenario["p"] for c in released] == [0.75] * 6
    assert [c.point["label.p"] for c in released] == [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]
    # independent draws per label, as the released script's separate runs
    seeds = {core.stable_seed("fig2b-as-released", c.id, 0) for c in released}
    assert len(seeds) == 6


def test_paper_config_cells():
    paper = ["fig2a", "fig2b", "fig2c", "table1", "fig4"]
    points = {
        name: len(
            {
                c.scenario["d"] if name == "fig2a" else core.cell_id(c.point)
                for c in ex.cells(CONFIG, name)
            }
        )
        for name in paper
    }
    assert points == {"fig2a": 4, "fig2b": 6, "fig2c": 5, "table1": 2, "fig4": 16}
    # a d = 30 cell's seeds do not fit in one batch of max_batch_mb: one job per seed
    assert [c.id for c in ex.cells(CONFIG, "fig2a")][2:4] == ["d-10", "d-30_seeds-0"]
    assert [c.seeds for c in ex.cells(CONFIG, "fig2a") if c.point["d"] == 30] == [
        (0,),
        (1,),
        (2,),
        (3,),
        (4,),
    ]
    fig4 = ex.cells(CONFIG, "fig4")
    assert fig4[0].id == "d-3_mixing_seed-1" and fig4[0].scenario["mixing_seed"] == 1
    assert all(c.scenario["n"] == 100000 and c.scenario["paired_noise"] for c in fig4)
    fig2c = ex.cells(CONFIG, "fig2c")
    assert [c.scenario["n"] for c in fig2c] == [5000, 10000, 50000, 100000, 200000]
    assert not fig2c[0].scenario["observational"]  # no ICA in Fig. 2c
    spec = ex.cell_spec(CONFIG, "fig2a", "d-10")
    assert spec["seeds"] == [0, 1, 2, 3, 4] and spec["test_fraction"] == 0.25
    part = ex.cell_spec(CONFIG, "fig2a", "d-30_seeds-2")
    assert part["cell"] == "d-30" and part["job"] == "d-30_seeds-2" and part["seeds"] == [2]
    assert [e["label"] for e in spec["estimators"]] == [
        "sv-paper",
        "icrl",
        "icrl-reference",
        "ica",
        "sv-best",
        "subspace",
    ]
    assert all("display" not in e for e in spec["estimators"])
    Scenario.from_dict(spec["scenario"])
    assert spec["kind"] == "grid" and ex.kind_of(CONFIG["experiments"]["coverage"]) == "coverage"
    with pytest.raises(MncrlError, match="no cell 'd-31'"):
        ex.cell_spec(CONFIG, "fig2a", "d-31")
    with pytest.raises(MncrlError, match="unknown experiment 'fig9'"):
        ex.cell_spec(CONFIG, "fig9", "d-3")


def test_adding_grid_cells_leaves_existing_cells_unchanged():
    bigger = copy.deepcopy(CONFIG)
    bigger["experiments"]["fig2a"]["grid"]["d"] = [2, 3, 4, 6, 10, 30, 50]
    bigger = validated(bigger)
    for cell in ("d-3", "d-6", "d-30_seeds-0"):
        assert ex.cell_spec(bigger, "fig2a", cell) == ex.cell_spec(CONFIG, "fig2a", cell)


def test_interleave_is_sample_major():
    blocks = [np.full((3, 2), k, dtype=float) + np.arange(3)[:, None] * 10 for k in range(4)]
    pooled = core.interleave(blocks)
    assert pooled.shape == (12, 2)
    assert pooled[:4, 0].tolist() == [0, 1, 2, 3]  # sample 0 of env 0..3
    assert pooled[4:8, 0].tolist() == [10, 11, 12, 13]  # sample 1 of env 0..3
    uneven = core.interleave([np.zeros((2, 1)), np.ones((3, 1))])
    assert uneven[:, 0].tolist() == [0, 0, 1, 1, 1]


def test_prepare_separates_the_observational_environment():
    spec = ex.cell_spec(tiny_config(), "e", "d-3")
    scenario = Scenario.from_dict(spec["scenario"])
    p = core.prepare(scenario, "e", "d-3", 0, spec["test_fraction"])
    assert len(p.train_envs) == 3 and p.targets.shape == (3, 3) and p.targets.any(axis=1).all()
    assert all(block.shape == (300, 3) for block in p.train_envs)
    assert p.obs_train.shape == (300, 3) and p.obs_test_X.shape == (100, 3)
    assert p.test_X.shape == (300, 3)
    # leave-one-out do(=1): in pooled row i only latent i % 3 is free, the others equal 1
    free = np.argmax(np.abs(p.test_Z - 1.0) > 1e-6, axis=1)
    assert (free[:30] == np.arange(30) % 3).all()
    assert np.allclose(p.test_X, p.test_Z @ p.L, atol=1e-5)
    again = core.prepare(scenario, "e", "d-3", 0, spec["test_fraction"])
    assert np.array_equal(again.test_X, p.test_X) and np.array_equal(again.obs_train, p.obs_train)
    other = core.prepare(scenario, "e", "d-3", 1, spec["test_fraction"])
    assert not np.array_equal(other.test_X, p.test_X)


def block_cell(name: str, cell_id: str, **changes):
    """(data cell, scenario) of a configured grid cell, with scenario keys changed."""
    cell = next(c for c in ex.cells(CONFIG, name) if c.id == cell_id)
    return core.cell_id(cell.point), Scenario.from_dict({**cell.scenario, **changes})


@pytest.mark.parametrize(
    ("name", "cell_id", "changes"),
    [
        ("noise-sensor", "obs_noise_relative-0.0_n-2000", {}),
        ("noise-sensor", "obs_noise_relative-0.01_n-8000", {}),
        ("noise-sensor", "obs_noise_relative-0.1_n-2000", {"obs_noise": 5.0, "dtype": "float64"}),
        ("noise-linear", "obs_noise_relative-0.03_n-2000", {}),
        ("noise-linear", "obs_noise_relative-0.001_n-8000", {"observational": True}),
    ],
)
def test_prepare_is_the_simulators_data_for_every_scenario_key(name, cell_id, changes):
    """The engine's data are simulate() + split bit for bit, with the light-tunnel sensors (L
    depends on the data seed) and per-column relative observation noise."""
    data_cell, scenario = block_cell(name, cell_id, n=240, **changes)
    p = core.prepare(scenario, name, data_cell, 1, 0.25)
    assert_prepared_equal(p, reference_prepare(scenario, name, data_cell, 1, 0.25))
    assert p.train_envs[0].shape == (180, scenario.m_obs) and p.L.shape == (5, scenario.m_obs)
    other = core.prepare(scenario, name, data_cell, 2, 0.25)
    same_L = np.array_equal(other.L, p.L)
    assert same_L == (scenario.observation == "linear")  # the sensors' L is the seed's


def test_relative_noise_is_a_fraction_of_each_columns_spread():
    data_cell, clean = block_cell("noise-sensor", "obs_noise_relative-0.0_n-2000", n=600)
    noisy = clean.replace(obs_noise_relative=0.1, dtype="float64")
    a = core.prepare(clean.replace(dtype="float64"), "noise-sensor", data_cell, 0, 0.25)
    b = core.prepare(noisy, "noise-sensor", data_cell, 0, 0.25)
    clean_X, noisy_X = np.concatenate(a.train_envs), np.concatenate(b.train_envs)
    ratio = (noisy_X - clean_X).std(axis=0) / clean_X.std(axis=0)
    assert np.allclose(ratio, 0.1, rtol=0.1)  # per sensor, whatever its units
    assert np.array_equal(a.test_Z, b.test_Z)  # the latents do not change


def test_outcome_metrics_count_refusals_and_failures():
    metrics = ["mcc", "target_f1", "refused", "failed"]
    assert core.outcome_values(metrics, None) == {"refused": 0.0, "failed": 0.0}
    refused = core.outcome_values(metrics, NotIdentifiableError("no"))
    assert refused == {"refused": 1.0, "failed": 0.0}
    for error in (ConvergenceError("nan"), DegenerateFitError("collinear")):
        assert core.outcome_values(metrics, error) == {"refused": 0.0, "failed": 1.0}
    assert list(core.failed_values(metrics, True)) == ["mcc", "target_f1"]  # NaN, not outcomes
    assert DegenerateFitError in core.FIT_FAILURES


def test_refused_fits_are_counted_by_the_outcome_metrics():
    cfg = tiny_config(
        ("subspace", "icrl"), design="blocks", d=4, design_params={"size": 2}, observational=False
    )
    cfg["experiments"]["e"]["grid"] = {}
    spec = {**ex.cell_spec(cfg, "e", "base"), "metrics": ["mcc", "target_f1", "refused", "failed"]}
    frame, _ = ex.run_cell(spec)
    wide = frame.pivot_table(index=["estimator", "seed"], columns="metric", values="value")
    assert (wide.loc["subspace", "refused"] == 1.0).all()
    assert (wide.loc[:, "failed"] == 0.0).all() and (wide.loc["icrl", "refused"] == 0.0).all()
    sub = frame[frame["estimator"] == "subspace"]
    assert sub.loc[sub["metric"] == "mcc", "value"].isna().all()  # the fit metrics stay NaN
    assert (sub["status"] == "NotIdentifiableError").all()
    assert list(sub.loc[sub["seed"] == 0, "metric"]) == spec["metrics"]


def test_noise_blocks_vary_noise_and_n_on_two_scenarios():
    levels = {0.0, 0.001, 0.01, 0.03, 0.1}
    for name, observation in (("noise-sensor", "light-tunnel"), ("noise-linear", "linear")):
        cells = ex.cells(CONFIG, name)
        assert {c.point["obs_noise_relative"] for c in cells} == levels
        assert {c.point["n"] for c in cells} == {2000, 8000} and len(cells) == 10
        for c in cells:
            s = Scenario.from_dict(c.scenario)
            assert s.observation == observation and s.d == 5 and not s.observational
            assert s.m_obs == (7 if observation == "light-tunnel" else 9)
        block = CONFIG["experiments"][name]
        assert "ica" not in block["estimators"] and {"refused", "failed"} <= set(block["metrics"])
    assert CONFIG["figures"]["noise"]["experiments"] == ["noise-sensor", "noise-linear"]


def test_a_noise_cell_runs_and_records_every_fit():
    """A small noisy sensor cell: the estimators are told d (noisy data have full rank m), and
    every fit has its metrics and outcome rows."""
    spec = ex.cell_spec(CONFIG, "noise-sensor", "obs_noise_relative-0.01_n-2000")
    spec = {
        **spec,
        "scenario": {**spec["scenario"], "n": 400},
        "seeds": [0],
        "estimators": [e for e in spec["estimators"] if e["label"] in ("subspace", "icrl")],
    }
    frame, info = ex.run_cell(spec)
    assert set(frame["observation"]) == {"light-tunnel"}
    assert set(frame["obs_noise_relative"]) == {0.01}
    assert len(info["fits"]) == 2
    for record in info["fits"]:
        rows = frame[frame["estimator"] == record["estimator"]].set_index("metric")["value"]
        answered = record["status"] == "ok"
        assert rows["refused"] + rows["failed"] == (0.0 if answered else 1.0)
        assert np.isfinite(rows["mcc_paper"]) == answered
    assert all(f["info"]["latent_dim"] == 5 for f in info["fits"] if f["status"] == "ok")


def test_a_peers_cell_records_not_applicable_entries_without_fitting_them():
    """Soft interventions on a dense design: lincd (single-node designs only), subspace
    (do-interventions only) and the entries for hard interventions (``kinds``) are not
    applicable and never fitted; subspace-soft and umni answer, scored up to ancestors."""
    spec = ex.cell_spec(CONFIG, "peers", "intervention-soft_design-dense_d-4_n-10000")
    spec = {**spec, "scenario": {**spec["scenario"], "n": 3000}, "seeds": [0]}
    frame, info = ex.run_cell(spec)
    status = {f["estimator"]: f["status"] for f in info["fits"]}
    assert status == {
        "subspace": "not_applicable",
        "lincd": "not_applicable",
        "umni": "ok",
        "umni-hard": "not_applicable",
        "subspace-soft": "ok",
        "subspace-soft-hard": "not_applicable",
    }
    messages = {f["estimator"]: f["message"] for f in info["fits"]}
    assert "do-interventions" in messages["subspace"]
    assert "single-node" in messages["lincd"]
    assert "stochastic" in messages["umni-hard"]
    for label, st in status.items():
        rows = frame[frame["estimator"] == label].set_index("metric")["value"]
        assert rows["not_applicable"] == (1.0 if st == "not_applicable" else 0.0)
        assert rows["refused"] == 0.0 and rows["failed"] == 0.0
        assert np.isfinite(rows["mcc_ancestral"]) == (st == "ok")
        if st == "not_applicable":
            assert all(f["seconds"] == 0.0 for f in info["fits"] if f["estimator"] == label)
    ours = frame[frame["estimator"] == "subspace-soft"].set_index("metric")["value"]
    assert ours["mcc_ancestral"] > 0.9
    assert np.isfinite(ours["target_f1"])  # scored on the interventional rows, targets checked
    assert set(frame.loc[frame["estimator"] == "subspace-soft", "scored_on"]) == {"interventional"}


def test_problems_per_batch_respects_the_memory_cap():
    def per_batch(scenario, max_mb):
        s = Scenario.from_dict(scenario)
        return core.problems_per_batch(core.batch_mb(s, design_matrix(s, 0).shape[0]), 5, max_mb)

    big = {"d": 30, "n": 100000, "observational": True}
    assert per_batch(big, 100000) == 5
    assert per_batch(big, 2000) == 1
    assert 1 <= per_batch(big, 3000) < 5
    assert per_batch({"d": 3, "n": 1000}, 10) == 5


# --------------------------------------------------------------------------------------------
# running cells (real estimators on tiny data)
# --------------------------------------------------------------------------------------------


def test_run_cell_rows_and_determinism():
    spec = ex.cell_spec(tiny_config(("icrl", "ica", "subspace")), "e", "d-3")
    frame, info = ex.run_cell(spec)
    assert list(frame.columns[:2]) == ["experiment", "cell"]
    assert {
        "d",
        "n",
        "p",
        "mixing_seed",
        "seed",
        "estimator",
        "metric",
        "value",
        "seconds",
        "status",
        "scored_on",
        "role",
        "a4_satisfied",
    } <= set(frame.columns)
    assert (frame["status"] == "ok").all() and frame["a4_satisfied"].all()
    per = frame.groupby(["estimator", "seed"])["metric"].apply(set)
    assert per["icrl", 0] == {"mcc", "mcc_paper", "amari"}  # the default metrics
    assert "target_f1" in per["subspace", 0]  # subspace reports targets
    assert set(frame.loc[frame["estimator"] == "ica", "scored_on"]) == {"observational"}
    assert set(frame.loc[frame["estimator"] != "ica", "scored_on"]) == {"interventional"}
    sub = frame[(frame["estimator"] == "subspace") & (frame["metric"] == "mcc")]
    assert sub["value"].min() > 0.999  # noiseless do-interventions: exact recovery
    again, _ = ex.run_cell(spec)
    cols = [c for c in frame.columns if c != "seconds"]
    pd.testing.assert_frame_equal(frame[cols], again[cols])
    assert [f["estimator"] for f in info["fits"]][:3] == ["icrl", "icrl", "ica"]


def test_jobs_split_by_seed_chunk_give_the_cells_rows():
    """A cell whose seeds do not fit one batch runs as one job per chunk: the same numbers."""
    cfg = tiny_config(("sv", "icrl"))
    cfg["max_batch_mb"] = 1  # one seed per batch -> one job per seed
    jobs = [c.id for c in ex.cells(cfg, "e")]
    whole, _ = ex.run_cell({**ex.cell_spec(cfg, "e", jobs[0]), "seeds": [0, 1]})
    assert jobs == ["d-3_seeds-0", "d-3_seeds-1", "d-4_seeds-0", "d-4_seeds-1"]
    parts = [ex.run_cell(ex.cell_spec(cfg, "e", job))[0] for job in jobs[:2]]
    split = pd.concat(parts, ignore_index=True)
    cols = [c for c in whole.columns if c != "seconds"]
    assert (split["cell"] == "d-3").all()
    pd.testing.assert_frame_equal(split[cols], whole[cols], check_exact=True)


def test_run_cell_vmaps_seeds_and_matches_single_fits():
    """The batched fit of a cell gives what one-seed fits give (same keys)."""
    cfg = tiny_config(("sv",))
    spec = ex.cell_spec(cfg, "e", "d-3")
    batched, _ = ex.run_cell(spec)
    single = pd.concat(
        [ex.run_cell({**spec, "seeds": [s]})[0] for s in spec["seeds"]], ignore_index=True
    )
    cols = ["seed", "estimator", "metric"]
    b = batched.set_index(cols)["value"].sort_index()
    s = single.set_index(cols)["value"].sort_index()
    np.testing.assert_allclose(b.to_numpy(), s.to_numpy(), rtol=1e-5, atol=1e-6)


def test_failed_fits_are_recorded_not_fatal():
    cfg = tiny_config(
        ("subspace", "icrl"), design="blocks", d=4, design_params={"size": 2}, observational=False
    )
    cfg["experiments"]["e"]["grid"] = {}
    spec = ex.cell_spec(cfg, "e", "base")
    frame, info = ex.run_cell(spec)
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
    cell_tables = []
    for cell in ("d-3", "d-4"):
        spec_file = tmp_path / f"{cell}.spec.json"
        spec_file.write_text(json.dumps(ex.cell_spec(cfg, "e", cell)))
        out = tmp_path / "cells" / f"{cell}.csv"
        assert (
            cli(
                [
                    "run",
                    "--spec",
                    f"@{spec_file}",
                    "--out",
                    str(out),
                    "--info",
                    str(out.with_suffix(".json")),
                ]
            )
            == 0
        )
        cell_tables.append(str(out))
        info = json.loads(out.with_suffix(".json").read_text())
        assert info["spec"]["cell"] == cell and len(info["fits"]) == 4
    spec = json.dumps(ex.experiment_spec(cfg, "e"))
    assert (
        cli(
            [
                "aggregate",
                *cell_tables,
                "--spec",
                spec,
                "--out",
                str(tmp_path / "m.csv"),
                "--summary",
                str(tmp_path / "s.csv"),
            ]
        )
        == 0
    )
    table = pd.read_csv(tmp_path / "m.csv")
    assert table["cell"].unique().tolist() == ["d-3", "d-4"]
    summary = pd.read_csv(tmp_path / "s.csv")
    row = summary[
        (summary["cell"] == "d-3") & (summary["estimator"] == "icrl") & (summary["metric"] == "mcc")
    ].iloc[0]
    vals = table[
        (table["cell"] == "d-3") & (table["estimator"] == "icrl") & (table["metric"] == "mcc")
    ]["value"]
    assert row["mean"] == pytest.approx(vals.mean())
    assert row["se"] == pytest.approx(vals.std(ddof=1) / np.sqrt(2)) and row["n_seeds"] == 2
    assert row["d"] == 3
    assert not list((tmp_path / "cells").glob(".*"))  # no temp files left
    capsys.readouterr()


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["run", "--spec", "{not json", "--out", "X.csv"], ["not valid JSON"]),
        (["run", "--spec", "{}", "--out", "X.csv"], ["misses the key 'kind'"]),
        (["run", "--spec", "@missing.json", "--out", "X.csv"], ["spec file not found"]),
        (
            [
                "aggregate",
                "missing.csv",
                "--spec",
                '{"kind": "grid", "experiment": "e"}',
                "--out",
                "X.csv",
            ],
            ["metrics table not found"],
        ),
        (
            [
                "table",
                "phase",
                "m.csv",
                "--spec",
                '{"kind": "grid", "experiment": "e"}',
                "--out",
                "X.csv",
            ],
            ["metrics table not found"],
        ),
    ],
)
def test_cli_errors_are_one_line_and_write_nothing(tmp_path, monkeypatch, capsys, args, words):
    monkeypatch.chdir(tmp_path)
    assert cli(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and all(w in err for w in words)
    assert not (tmp_path / "X.csv").exists()


def test_cli_bad_scenario_in_spec(tmp_path, capsys):
    spec = ex.cell_spec(tiny_config(), "e", "d-3")
    spec["scenario"]["graph"] = "ring"
    assert cli(["run", "--spec", json.dumps(spec), "--out", str(tmp_path / "X.csv")]) == 2
    err = capsys.readouterr().err
    assert "graph must be one of" in err and err.count("\n") == 1


def test_remove_stale_temps(tmp_path):
    target = tmp_path / "cell.csv"
    (tmp_path / ".cell.csv.abc123.csv").write_text("half")
    (tmp_path / ".other.csv.x.csv").write_text("keep")
    tables.remove_stale_temps(target)
    assert [p.name for p in tmp_path.iterdir()] == [".other.csv.x.csv"]


def test_kinds_share_one_interface():
    for kind in ex.KINDS:
        module = ex.module(kind)
        for name in (
            "cells",
            "cell_spec",
            "run_cell",
            "aggregate",
            "experiment_spec",
            "job_cost",
            "TABLES",
        ):
            assert hasattr(module, name), (kind, name)
    with pytest.raises(MncrlError, match="unknown experiment kind 'nope'"):
        ex.module("nope")


def test_derived_table_of_a_kind_without_tables_is_refused():
    spec = {"kind": "grid", "experiment": "e"}
    with pytest.raises(MncrlError, match="has no table 'phase'"):
        ex.derived_table("phase", pd.DataFrame(), spec)


def test_cli_cells_lists_every_cell(capsys):
    assert cli(["cells", str(ROOT / "config/config.yaml"), "--experiment", "fig2a"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert [line.split("\t")[1] for line in lines][:4] == ["d-3", "d-6", "d-10", "d-30_seeds-0"]
