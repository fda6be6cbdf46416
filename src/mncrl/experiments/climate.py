"""Experiment kind ``climate`` (ours, docs/climate.md): estimators on a gridded field of
climate modes with known answers (:mod:`mncrl.climate_modes`), through the same pipeline a
user's NetCDF field goes through (:mod:`mncrl.field`).

The config block ``climate`` holds the base mode scenario (``scenario``), a ``grid`` of
mode-scenario keys (cells = cartesian product, ids as the grid kind's) and ``components``, the
dimension p of the signal subspace (null: the number of modes d). The experiment's
``estimators`` (labels of the config's estimator table) and ``seeds`` are as in a grid
experiment; data seed ``stable_seed(experiment, cell, seed, "data")``, split seed ``... "split"``,
fit seed ``... "fit", label``.

Per seed: the field of every regime is pooled, its anomalies are area-weighted
(sqrt(cos(latitude))) and reduced to p EOF coordinates (:func:`mncrl.field.signal_subspace`,
on every row: the reduction is unsupervised); every estimator is fitted on the interventional
regimes' train rows of those coordinates (estimators with ``uses_field_basis`` also get the
EOFs, so ``varimax-pca`` rotates over grid cells). Rows (tidy, one per cell x seed x estimator
x metric):

- ``mcc``, ``amari`` (of the mixing in EOF coordinates), ``target_f1`` on the test rows, as
  the grid kind records them, and the outcomes ``refused`` / ``failed`` / ``not_applicable``;
- ``pattern_correlation`` / ``pattern_correlation_min``: the mean / smallest over modes of the
  |spatial correlation| between a mode's true pattern and the regression map of the field on
  its matched estimated latent (:func:`mncrl.field.regression_patterns`; latents matched by
  |corr| of the time series over every row).
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Mapping

import numpy as np
import pandas as pd

from mncrl import field
from mncrl.climate_modes import ModeScenario, simulate_modes
from mncrl.errors import MncrlError
from mncrl.experiments import core
from mncrl.metrics import matching_from_latents
from mncrl.simulation import rng_for
from mncrl.threads import single_threaded_blas

KIND = "climate"
TABLES: dict = {}
#: the metrics of every climate experiment (its block's ``metrics`` key is not used)
METRICS = (
    "mcc",
    "amari",
    "target_f1",
    "pattern_correlation",
    "pattern_correlation_min",
    "refused",
    "failed",
    "not_applicable",
)
REQUIRED_KEYS = ("estimators",)


def _block(config: Mapping, name: str) -> dict:
    return core.experiment_block(config, name)[KIND]


def cells(config: Mapping, name: str) -> list[core.Cell]:
    """One cell per grid point; MncrlError naming the cell when its scenario is invalid or
    has more modes than ``components``."""
    p = _block(config, name)["components"]

    def check(scenario):
        s = ModeScenario.from_dict(scenario)
        if p is not None and p < s.d:
            raise MncrlError(f"components ({p}) must be >= the number of modes d ({s.d})")

    return core.block_cells(config, name, KIND, check)


def cell_spec(config: Mapping, name: str, cell: str) -> dict:
    c, block = core.find_cell(cells(config, name), name, cell), _block(config, name)
    exp = core.experiment_block(config, name)
    return {
        "kind": KIND,
        "experiment": name,
        "cell": cell,
        "job": cell,
        "seeds": list(c.seeds),
        "point": c.point,
        "scenario": c.scenario,
        "estimators": core.estimator_entries(config, exp["estimators"]),
        "components": block["components"],
        "test_fraction": float(exp["test_fraction"]),
    }


def experiment_spec(config: Mapping, name: str) -> dict:
    return {"kind": KIND, "experiment": name}


def job_cost(spec: Mapping) -> tuple[int, int]:
    """(mem_mb, minutes): one seed's field (float64) and its copies at a time."""
    s = ModeScenario.from_dict(spec["scenario"])
    cells_ = s.grid[0] * s.grid[1] if s.patterns == "blobs" else 1800 * s.refine**2 // 4
    regimes = 1 + int(s.observational) + 2 * s.d
    field_mb = regimes * s.n * (cells_ + s.d) * 8 / 2**20
    return int(1500 + 5 * field_mb), int(10 + 2 * len(spec["seeds"]))


@dataclasses.dataclass(frozen=True)
class FieldProblem:
    """One seed's reduced field: the estimators' data (``prepared``), the reduction, the
    truth (modes over every row, patterns) and the grid (``mask``: nlat x nlon, True where a
    cell is in the field, cells in row-major order)."""

    prepared: core.Prepared
    reduction: field.Reduction
    Z_all: np.ndarray
    patterns: np.ndarray
    mask: np.ndarray


def prepare_field(
    s: ModeScenario, components, exp: str, cell: str, seed: int, test_fraction: float
):
    """Simulate, reduce and split one seed (module docstring)."""
    data = simulate_modes(s, core.stable_seed(exp, cell, seed, "data"))
    K_all, n, C = data.X.shape
    w = field.coslat_weights(data.lat)
    red = field.signal_subspace(data.X.reshape(-1, C), components or s.d, weights=w)
    scores = red.scores.reshape(K_all, n, -1)
    n_test = min(max(round(n * test_fraction), 1), n - 1)
    perm = rng_for(core.stable_seed(exp, cell, seed, "split"), "split", 0).permutation(n)
    test_rows, train_rows = np.sort(perm[:n_test]), np.sort(perm[n_test:])
    K = K_all - int(s.observational)
    train, te_X = scores[:, train_rows], scores[:, test_rows]
    te_Z = data.Z[:, test_rows]
    obs = bool(s.observational)
    prepared = core.Prepared(
        seed=int(seed),
        train_envs=list(train[:K]),
        test_X=core.interleave(list(te_X[:K])),
        test_Z=core.interleave(list(te_Z[:K])),
        obs_train=train[K] if obs else None,
        obs_test_X=te_X[K] if obs else None,
        obs_test_Z=te_Z[K] if obs else None,
        L=(data.L * w) @ red.eofs.T,
        targets=data.targets[:K],
    )
    return FieldProblem(prepared, red, data.Z.reshape(-1, s.d), data.L, data.mask)


def pattern_values(fit, problem: FieldProblem) -> dict:
    """``pattern_correlation`` (mean over modes) and ``pattern_correlation_min`` of a fit."""
    Zhat = problem.reduction.scores @ np.asarray(fit.unmixing, dtype=np.float64)
    maps = field.regression_patterns(Zhat, problem.reduction)
    perm = matching_from_latents(problem.Z_all, Zhat)  # perm[j]: true mode of estimate j
    order = np.empty_like(perm)
    order[perm] = np.arange(len(perm))
    corr = field.pattern_correlation(problem.patterns, maps, perm=order)
    return {"pattern_correlation": float(corr.mean()), "pattern_correlation_min": float(corr.min())}


def fit_one(
    r: core.Resolved, s: ModeScenario, problem: FieldProblem, fit_seed: int
) -> core.Outcome:
    """Estimator entry ``r`` on one seed's problem (the EOFs given to estimators that use
    them); a :class:`~mncrl.experiments.core.NotApplicable` outcome when it does not apply."""
    if r.est.uses_field_basis:
        r = dataclasses.replace(r, hparams={**r.hparams, "basis": problem.reduction.eofs})
    return core.fit_applicable(r, s, [problem.prepared], [fit_seed])[0]


def _values(r: core.Resolved, out: core.Outcome, problem: FieldProblem, scored_on: str) -> dict:
    metrics = list(METRICS)
    if out.error is None:
        values = core.evaluate_fit(out.fit, problem.prepared, scored_on, metrics)
        values.update(pattern_values(out.fit, problem))
    else:
        values = core.failed_values(metrics, r.est.reports_targets)
    values.update(core.outcome_values(metrics, out.error))
    return values


def _status(out: core.Outcome) -> str:
    if out.error is None:
        return "ok"
    return (
        "not_applicable" if isinstance(out.error, core.NotApplicable) else type(out.error).__name__
    )


def run_cell(spec: Mapping, progress: bool = False) -> tuple[pd.DataFrame, dict]:
    s = ModeScenario.from_dict(spec["scenario"])
    exp, cell = spec["experiment"], spec["cell"]
    resolved = core.resolve_entries(spec["estimators"])
    base = {"experiment": exp, "cell": cell, **core.label_columns(spec["point"])}
    base.update(core.scenario_columns(s))
    rows, records = [], []
    for seed in spec["seeds"]:
        with single_threaded_blas():
            problem = prepare_field(s, spec["components"], exp, cell, seed, spec["test_fraction"])
        for r in resolved:
            out = fit_one(r, s, problem, core.stable_seed(exp, cell, seed, "fit", r.label))
            scored_on = core.scored_on(r.est, problem.prepared)
            values, status = _values(r, out, problem, scored_on), _status(out)
            cols = {
                **base,
                "components": problem.reduction.p,
                "explained": problem.reduction.explained,
                "seed": seed,
                **core.estimator_columns(r, scored_on),
            }
            rows += [
                {**cols, "metric": m, "value": v, "seconds": out.seconds, "status": status}
                for m, v in values.items()
            ]
            records.append(
                {
                    "seed": seed,
                    "estimator": r.label,
                    "status": status,
                    "message": None if out.error is None else str(out.error),
                    "seconds": out.seconds,
                    "info": {} if out.fit is None else core.json_scalars(out.fit.info),
                }
            )
        if progress:
            print(f"seed {seed} done", file=sys.stderr)
    return pd.DataFrame(rows), {"spec": dict(spec), "fits": records}


def aggregate(problems: pd.DataFrame, spec: Mapping) -> pd.DataFrame:
    return problems


__all__ = [
    "KIND",
    "METRICS",
    "REQUIRED_KEYS",
    "TABLES",
    "aggregate",
    "cell_spec",
    "cells",
    "experiment_spec",
    "fit_one",
    "job_cost",
    "pattern_values",
    "prepare_field",
    "run_cell",
]
