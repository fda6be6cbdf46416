"""Experiment kind ``grid``: named grids of scenarios x estimators x seeds: the paper's
experiments (Fig. 2a/2b/2c, Table 1, Fig. 4) and ours (the noise blocks).

An experiment's ``grid`` maps scenario keys (or ``design_params.<name>``, or ``label.<name>``
for a key that labels cells without changing the scenario) to lists of values;
its cells are the cartesian product, in the order written. A cell's id names its grid point
(``d-30_mixing_seed-1``), so adding a value to a grid adds cells without renaming the others.
One cell = one job: every seed simulated (in chunks that fit ``max_batch_mb``), every estimator
fitted (seeds vmapped), evaluated on the test rows; one tidy row per seed x estimator x metric.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping

import pandas as pd

from mncrl.errors import MncrlError
from mncrl.experiments import core
from mncrl.interventions import assumption4
from mncrl.simulation import Scenario, design_matrix

KIND = "grid"
#: Derived tables of this kind (name -> function of the metrics table and experiment spec).
TABLES: dict = {}


def seed_chunks(scenario: Scenario, seeds: list[int], max_batch_mb: int) -> list[list[int]]:
    """The seeds of a cell in chunks whose data fit in ``max_batch_mb`` at once (one chunk =
    one vmapped batch; every chunk is computed on its own, whatever job runs it)."""
    per_seed = core.batch_mb(scenario, design_matrix(scenario, 0).shape[0])
    size = core.problems_per_batch(per_seed, len(seeds), max_batch_mb)
    return [seeds[i : i + size] for i in range(0, len(seeds), size)]


def cells(config: Mapping, name: str) -> list[core.Cell]:
    """Every job of experiment ``name``, in grid order: one per grid point, or one per chunk
    of seeds when a grid point's seeds do not fit in one batch (``<cell>_seeds-0``, ...), so
    that large cells spread over the cores. Numbers do not depend on the split."""
    base = core.base_scenario(config, name)
    block = core.experiment_block(config, name)
    seeds = [int(s) for s in block["seeds"]]
    jobs = []
    for point in core.grid_points(block["grid"]):
        scenario = core.apply_point(base, point)
        try:
            checked = Scenario.from_dict(scenario)
        except MncrlError as exc:
            raise MncrlError(f"experiments.{name} (cell {core.cell_id(point)}): {exc}") from None
        chunks = seed_chunks(checked, seeds, config["max_batch_mb"])
        for chunk in chunks:
            job = core.cell_id(point)
            if len(chunks) > 1:
                job += "_seeds-" + "-".join(str(s) for s in chunk)
            jobs.append(
                core.Cell(
                    experiment=name, id=job, point=point, scenario=scenario, seeds=tuple(chunk)
                )
            )
    return jobs


def cell_spec(config: Mapping, name: str, cell: str) -> dict:
    """Everything one job needs, as plain JSON-serialisable data (``cell`` names the grid
    point, ``job`` the job)."""
    c = core.find_cell(cells(config, name), name, cell)
    return {
        **core.common_spec(config, name, KIND, core.cell_id(c.point)),
        "job": c.id,
        "seeds": list(c.seeds),
        "point": c.point,
        "scenario": c.scenario,
    }


def experiment_spec(config: Mapping, name: str) -> dict:
    """What aggregating the experiment needs beyond its cell tables (nothing for a grid)."""
    return {"kind": KIND, "experiment": name}


def job_cost(spec: Mapping) -> tuple[int, int]:
    """(mem_mb, runtime in minutes) of one job: the data of one chunk of seeds in memory at
    once, and a generous runtime (a cluster kills jobs that exceed it)."""
    scenario = Scenario.from_dict(spec["scenario"])
    seeds = list(spec["seeds"])
    chunk = len(seed_chunks(scenario, seeds, spec["max_batch_mb"])[0])
    resident = 3 * (scenario.d + 1) * scenario.n * (scenario.m_obs + scenario.d) * 4 / 2**20
    return int(1500 + 1.5 * chunk * resident), int(
        10 + scenario.d**2 * scenario.n * len(seeds) / 2e7
    )


def _fit_rows(r: core.Resolved, prepared, outcomes, base_cols, a4, metrics) -> tuple[list, list]:
    scored_on = core.scored_on(r.est, prepared[0])
    rows, records = [], []
    for p, out in zip(prepared, outcomes, strict=True):
        if out.error is None:
            values, status = core.evaluate_fit(out.fit, p, scored_on, metrics), "ok"
        else:
            values = core.failed_values(metrics, r.est.reports_targets)
            status = (
                "not_applicable"
                if isinstance(out.error, core.NotApplicable)
                else type(out.error).__name__
            )
        values.update(core.outcome_values(metrics, out.error))
        records.append(
            {
                "seed": p.seed,
                "estimator": r.label,
                "status": status,
                "message": None if out.error is None else str(out.error),
                "seconds": out.seconds,
                "info": {} if out.fit is None else core.json_scalars(out.fit.info),
            }
        )
        cols = {
            **base_cols,
            "n_envs": len(p.train_envs),
            "a4_satisfied": a4[p.seed],
            "seed": p.seed,
            **core.estimator_columns(r, scored_on),
        }
        rows += [
            {**cols, "metric": m, "value": values[m], "seconds": out.seconds, "status": status}
            for m in metrics
            if m in values
        ]
    return rows, records


def run_cell(spec: Mapping, progress: bool = False) -> tuple[pd.DataFrame, dict]:
    """Run one job (a grid cell, or a chunk of its seeds); returns (tidy DataFrame, info dict
    for the JSON sidecar)."""
    scenario = Scenario.from_dict(spec["scenario"])
    exp, cell = spec["experiment"], spec["cell"]
    resolved = core.resolve_entries(spec["estimators"])
    base_cols = {
        "experiment": exp,
        "cell": cell,
        **core.label_columns(spec["point"]),
        **core.scenario_columns(scenario),
    }
    rows, records, a4 = [], [], {}
    chunks = seed_chunks(scenario, list(spec["seeds"]), spec["max_batch_mb"])
    for i, chunk in enumerate(chunks):
        prepared = [core.prepare(scenario, exp, cell, s, spec["test_fraction"]) for s in chunk]
        a4.update({p.seed: bool(assumption4(p.targets).satisfied) for p in prepared})
        for r in resolved:
            fit_seeds = [core.stable_seed(exp, cell, p.seed, "fit", r.label) for p in prepared]
            outcomes = core.fit_applicable(r, scenario, prepared, fit_seeds)
            new_rows, new_records = _fit_rows(r, prepared, outcomes, base_cols, a4, spec["metrics"])
            rows += new_rows
            records += new_records
        del prepared
        if progress:
            print(f"chunk {i + 1}/{len(chunks)} (seeds {chunk}) done", file=sys.stderr)
    info = {
        "spec": dict(spec),
        "scenario": scenario.to_dict(),
        "a4_satisfied": {str(k): v for k, v in a4.items()},
        "fits": records,
    }
    return pd.DataFrame(rows), info


def aggregate(problems: pd.DataFrame, spec: Mapping) -> pd.DataFrame:
    """The experiment's metrics table: the cell tables as they are."""
    return problems


__all__ = [
    "KIND",
    "TABLES",
    "aggregate",
    "cell_spec",
    "cells",
    "experiment_spec",
    "job_cost",
    "run_cell",
    "seed_chunks",
]
