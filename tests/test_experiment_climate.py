"""Experiment kind ``climate``: config, cells, one job's rows, metrics, the notebooks."""

from __future__ import annotations

import json
from pathlib import Path

import jupytext
import numpy as np
import papermill
import pytest
import yaml

from mncrl import config as config_mod
from mncrl import experiments, field, provenance
from mncrl.errors import MncrlError
from mncrl.experiments import climate as kind

ROOT = Path(__file__).resolve().parents[1]
TINY = {
    "d": 3,
    "n": 600,
    "patterns": "blobs",
    "grid": [10, 12],
    "burn_in": 50,
    "observational": True,
}


def config(estimators=("subspace", "subspace-soft-hard", "varimax-pca", "ica"), **block):
    base = yaml.safe_load((ROOT / "config/config.yaml").read_text())
    exp = {
        "climate": {
            "scenario": dict(TINY),
            "grid": {"intervention": ["do", "stochastic"], "memory": [0.0]},
        },
        "estimators": list(estimators),
        "seeds": [0, 1],
    }
    exp["climate"].update(block)
    base["experiments"] = {"cl": exp}
    base["figures"] = {}
    return config_mod.validate(base, ROOT / "config/schema.yaml")


def test_block_is_its_own_kind_with_cells_from_its_grid():
    cfg = config()
    assert experiments.kind_of(cfg["experiments"]["cl"]) == "climate"
    ids = [c.id for c in experiments.cells(cfg, "cl")]
    assert ids == ["intervention-do_memory-0.0", "intervention-stochastic_memory-0.0"]
    spec = experiments.cell_spec(cfg, "cl", ids[0])
    assert spec["components"] is None and spec["seeds"] == [0, 1]
    assert [e["label"] for e in spec["estimators"]] == [
        "subspace",
        "subspace-soft-hard",
        "varimax-pca",
        "ica",
    ]
    mem, minutes = experiments.job_cost(spec)
    assert mem > 0 and minutes > 0
    assert len(provenance.experiment_hashes(cfg)["cl"]) == 16


def test_config_errors_name_the_cell_and_key():
    with pytest.raises(MncrlError, match=r"experiments.cl \(cell memory-1.0\).*memory"):
        config(grid={"memory": [-1.0]})
    with pytest.raises(MncrlError, match="components \\(2\\) must be >= the number of modes"):
        config(components=2)
    with pytest.raises(MncrlError, match="unknown estimator label 'nope'"):
        config(estimators=("nope",))
    base = yaml.safe_load((ROOT / "config/config.yaml").read_text())
    del base["experiments"]["climate"]["estimators"]
    with pytest.raises(MncrlError, match="experiments.climate: 'estimators' is required"):
        config_mod.validate(base, ROOT / "config/schema.yaml")


@pytest.fixture(scope="module")
def do_cell():
    spec = experiments.cell_spec(config(), "cl", "intervention-do_memory-0.0")
    frame, info = experiments.run_cell(spec)
    return spec, frame, info


def test_one_job_rows(do_cell):
    spec, frame, info = do_cell
    status = {(f["seed"], f["estimator"]): f["status"] for f in info["fits"]}
    assert status[(0, "subspace-soft-hard")] == "not_applicable"  # do cell: stochastic only
    assert status[(0, "subspace")] == status[(1, "varimax-pca")] == "ok"
    assert set(frame["metric"]) == set(kind.METRICS)
    assert (frame["components"] == 3).all() and frame["explained"].between(0.5, 1.0).all()
    ours = frame[
        (frame["estimator"] == "subspace") & frame["metric"].isin(["mcc", "pattern_correlation"])
    ]
    assert (ours["value"] > 0.95).all()
    f1 = frame[(frame["estimator"] == "subspace") & (frame["metric"] == "target_f1")]
    assert (f1["value"] == 1.0).all()
    # baselines report no targets: NaN-free rows without target_f1
    assert frame[(frame["estimator"] == "varimax-pca") & (frame["metric"] == "target_f1")].empty


def test_job_is_deterministic(do_cell):
    spec, frame, _ = do_cell
    again, _ = experiments.run_cell(spec)
    assert np.array_equal(frame["value"].to_numpy(), again["value"].to_numpy(), equal_nan=True)


def test_pattern_values_of_the_true_latents_are_one():
    s = kind.ModeScenario.from_dict({**TINY, "obs_noise": 0.0})
    problem = kind.prepare_field(s, None, "cl", "c", 0, 0.25)
    # the exact unmixing of the noiseless field in EOF coordinates: scores = Z (L_red)
    W = np.linalg.pinv(problem.prepared.L)
    from mncrl.estimators.base import Fit

    values = kind.pattern_values(Fit(unmixing=W[:, ::-1] * [2.0, -1.0, 0.5]), problem)
    assert values["pattern_correlation"] == pytest.approx(1.0, abs=1e-9)
    maps = field.regression_patterns(problem.reduction.scores @ W, problem.reduction)
    assert np.allclose(maps, problem.patterns, atol=1e-8)


def _run_notebook(name, params, tmp_path):
    nb = jupytext.read(ROOT / f"figures/{name}.py")
    src = tmp_path / f"{name}.ipynb"
    jupytext.write(nb, src)
    papermill.execute_notebook(
        str(src),
        str(tmp_path / f"{name}.out.ipynb"),
        parameters=params,
        kernel_name="python3",
        cwd=str(ROOT),
    )


def test_notebooks_render_figures_and_tables(do_cell, tmp_path):
    spec, frame, info = do_cell
    exp_dir = tmp_path / "cl"
    (exp_dir / "cells").mkdir(parents=True)
    frame.to_csv(exp_dir / "metrics.csv", index=False)
    (exp_dir / "cells" / f"{spec['cell']}.json").write_text(json.dumps(info, default=str))
    (tmp_path / "figures").mkdir()
    for name in ("climate", "climate_maps"):
        stem = tmp_path / "figures" / name
        params = {
            "metrics": {"cl": str(exp_dir / "metrics.csv")},
            "out_stem": str(stem),
            "estimators": {"subspace": "Subspace, closed form (ours)"},
        }
        _run_notebook(name, params, tmp_path)
        assert stem.with_suffix(".png").stat().st_size > 10_000
        text = stem.with_suffix(".md").read_text()
        assert "Subspace, closed form (ours)" in text


def test_real_sst_notebook_renders_maps_and_targets(tmp_path):
    (tmp_path / "figures").mkdir()
    stem = tmp_path / "figures" / "climate_sst"
    _run_notebook("climate_sst", {"out_stem": str(stem), "bootstrap": 10}, tmp_path)
    assert stem.with_suffix(".png").stat().st_size > 10_000
    text = stem.with_suffix(".md").read_text()
    assert "| environments fitted | 1977-1989, 1990-2000, 2001-2012 |" in text
    assert "bootstrap resamples fitted / failed" in text
