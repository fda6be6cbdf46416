"""Experiment kind ``extrapolation``: config, cells, one job's rows, summaries, the notebook."""

from __future__ import annotations

import copy
from pathlib import Path

import jupytext
import numpy as np
import pandas as pd
import papermill
import pytest
import yaml

from mncrl import config as config_mod
from mncrl import experiments, provenance
from mncrl.errors import MncrlError
from mncrl.experiments import extrapolation as kind
from mncrl.experiments.tables import summarise

ROOT = Path(__file__).resolve().parents[1]
TINY = {"d": 2, "n": 600, "effect": 0.5, "grid_points": 9, "truth_draws": 2000}


def config(**block):
    base = yaml.safe_load((ROOT / "config/config.yaml").read_text())
    exp = {
        "extrapolation": {
            "scenario": dict(TINY),
            "grid": {"confounding": [0.0, 0.9]},
            "landmarks": 20,
            "eval_rows": 200,
            "batch": 2,
        },
        "seeds": [0, 1, 2],
    }
    exp["extrapolation"].update(block)
    base["experiments"] = {"ex": exp}
    base["figures"] = {}
    return config_mod.validate(base, ROOT / "config/schema.yaml")


def test_block_is_its_own_kind_with_cells_from_its_grid():
    cfg = config()
    assert experiments.kind_of(cfg["experiments"]["ex"]) == "extrapolation"
    cells = experiments.cells(cfg, "ex")
    assert [c.id for c in cells] == ["confounding-0.0", "confounding-0.9"]
    spec = experiments.cell_spec(cfg, "ex", "confounding-0.9")
    assert spec["scenario"]["confounding"] == 0.9 and spec["seeds"] == [0, 1, 2]
    assert [e["label"] for e in spec["estimators"]] == [
        "control-function",
        "no-control-function",
        "direct",
        "oracle",
    ]
    mem, minutes = experiments.job_cost(spec)
    assert mem > 0 and minutes > 0
    # the experiment hash reads the block (no named scenario, no estimator labels)
    assert len(provenance.experiment_hashes(cfg)["ex"]) == 16


def test_config_errors_name_the_cell_and_key():
    with pytest.raises(MncrlError, match=r"experiments.ex \(cell confounding-1.5\).*confounding"):
        config(grid={"confounding": [1.5]})
    with pytest.raises(MncrlError, match="unknown action-scenario key 'dd'"):
        config(scenario={**TINY, "dd": 3})
    # a grid block without scenario / estimators is refused with one line
    base = yaml.safe_load((ROOT / "config/config.yaml").read_text())
    bad = copy.deepcopy(base)
    del bad["experiments"]["fig2a"]["scenario"]
    with pytest.raises(MncrlError, match="experiments.fig2a: 'scenario' is required"):
        config_mod.validate(bad, ROOT / "config/schema.yaml")


@pytest.fixture(scope="module")
def cell_rows():
    cfg = config()
    spec = experiments.cell_spec(cfg, "ex", "confounding-0.9")
    frame, info = experiments.run_cell(spec)
    return spec, frame, info


def test_one_job_rows(cell_rows):
    spec, frame, info = cell_rows
    assert [f["status"] for f in info["fits"]] == ["ok"] * 3
    per_seed = frame[frame["s"].isna()]
    per_point = frame[frame["s"].notna()]
    methods = {"control-function", "no-control-function", "direct", "oracle"}
    assert set(per_seed["estimator"]) == methods == set(per_point["estimator"])
    assert set(per_seed["metric"]) == set(kind.SEED_METRICS)
    # 9 positions x (prediction, truth, squared_error) per method and seed, + overlap for cf
    assert len(per_point) == 3 * (4 * 9 * 3 + 9)
    assert set(per_point.loc[per_point["metric"] == "overlap", "estimator"]) == {"control-function"}
    # the per-seed errors are the per-point ones, averaged inside / outside |s| <= 1
    one = per_point[(per_point["seed"] == 1) & (per_point["estimator"] == "direct")]
    se = one[one["metric"] == "squared_error"].set_index("s")["value"]
    inside = se[np.abs(se.index) <= 1].mean()
    got = per_seed[(per_seed["seed"] == 1) & (per_seed["estimator"] == "direct")]
    assert got.set_index("metric").loc["mse_inside", "value"] == pytest.approx(inside)
    assert np.allclose(per_point["distance"], np.maximum(np.abs(per_point["s"]) - 1, 0))
    # the truth is the same for every method of a seed
    truth = per_point[per_point["metric"] == "truth"].pivot_table(
        index=["seed", "s"], columns="estimator", values="value"
    )
    assert np.allclose(truth.to_numpy(), truth.to_numpy()[:, :1])


def test_job_is_deterministic_and_independent_of_the_batch_size(cell_rows):
    spec, frame, _ = cell_rows
    again, _ = experiments.run_cell({**spec, "batch": 3})
    cols = ["seed", "estimator", "metric", "s", "value"]
    pd.testing.assert_frame_equal(
        frame[cols].reset_index(drop=True), again[cols].reset_index(drop=True), rtol=1e-5
    )


def test_summary_keeps_positions_apart(cell_rows):
    _, frame, _ = cell_rows
    summary = summarise(frame)
    pts = summary[(summary["metric"] == "truth") & (summary["estimator"] == "oracle")]
    assert len(pts) == 9 and pts["n_seeds"].eq(3).all()
    seed_level = summary[summary["metric"] == "mse_outside"]
    assert len(seed_level) == 4 and seed_level["s"].isna().all()


def test_notebook_renders_the_figure_and_table(cell_rows, tmp_path):
    _, frame, _ = cell_rows
    path = tmp_path / "ex.csv"
    frame.to_csv(path, index=False)
    nb = jupytext.read(ROOT / "figures/extrapolation.py")
    src = tmp_path / "in.ipynb"
    jupytext.write(nb, src)
    stem = tmp_path / "figures" / "extrapolation"
    stem.parent.mkdir()
    papermill.execute_notebook(
        str(src),
        str(tmp_path / "out.ipynb"),
        parameters={
            "metrics": {"ex": str(path)},
            "out_stem": str(stem),
            "claims_file": str(ROOT / "paper/claims.yaml"),
        },
        kernel_name="python3",
        cwd=str(tmp_path),
        progress_bar=False,
    )
    for ext in ("pdf", "png"):
        assert Path(f"{stem}.{ext}").stat().st_size > 1000
    md = Path(f"{stem}.md").read_text()
    oracle = frame[(frame["estimator"] == "oracle") & (frame["metric"] == "mse_outside")]
    direct = frame[(frame["estimator"] == "direct") & (frame["metric"] == "mse_outside")]
    ratio = direct["value"].mean() / oracle["value"].mean()
    assert "| tanh | 0.9 | 600 | direct |" in md and f"| {ratio:.2f} | 3 |" in md
