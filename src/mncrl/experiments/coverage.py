"""Experiment kind ``coverage``: identifiability maps over intervention coverage x sparsity
(ours, not in the paper; docs/coverage.md).

The paper proves identifiability for every design that satisfies Assumption 4 but tests only
leave-one-out. This kind maps where each estimator recovers the latents as the interventions
get sparser (k targets per environment) and the number of environments K changes.

Grid (the experiment's ``coverage`` block): for every latent dimension d, every K (rules
``2log2d`` = ceil(2 log2 d), ``d``, ``2d`` or integers; duplicates dropped) and every sparsity k
(``all`` = 1..d-1), ``designs`` random designs (design seeds r = 0..designs-1); plus the
structured designs (``leave-one-out``, ``atomic``, ``separating``, ``blocks``...) at every d.
Cells (one job each) are the (d, K) pairs (split by design seed when large), all k, designs
and seeds in one process, plus one cell per d for the structured designs.

Randomness: the SCM, the noise and the split of a problem come from the *draw* r (0 for the
structured designs) and the seed, via the data cell ``d-<d>_r-<r>``. Designs that share
(d, r, seed) see the same SCM and the same noise draws (common random numbers), drawn once
(:class:`~mncrl.experiments.core.NoiseCache`).

Per problem (design x seed) and estimator, one row per metric: the experiment's metrics
(``mcc`` and ``mcc_paper`` from second moments of the test rows, :func:`mncrl.metrics.row_moments`),
``not_identifiable`` (1 when the estimator raised NotIdentifiableError) and the per-latent
recovery: ``latents_recovered``, ``identifiable_latents_recovered``,
``unidentifiable_latents_recovered``. A latent j is *unidentifiable* in a design when some
unseparated ordered pair (j, i) exists (every environment that intervenes on j also
intervenes on i). Estimators that use only the observational environment (``ica``) are fitted
once per group of designs sharing their observational data (column ``shared_fit``): exact.

Aggregation appends, per d, the rates the claims check (``level = summary``,
:mod:`mncrl.experiments.coverage_tables`); derived tables: ``phase`` and ``designs``. The
design grid (settings, designs, cells, Assumption-4 reports): :mod:`.coverage_designs`.
"""

from __future__ import annotations

import hashlib
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
import pandas as pd

from mncrl.errors import MncrlError, NotIdentifiableError
from mncrl.experiments import core
from mncrl.experiments import coverage_tables as tables
from mncrl.experiments.coverage_designs import (
    K_RULES,
    CoverageCell,
    Design,
    DesignReport,
    Settings,
    Subsample,
    coverage_cells,
    design_report,
    design_table,
    draws_per_job,
    env_counts,
    settings,
    sparsities,
    structured_designs,
)
from mncrl.metrics import evaluate, latent_recovery, mcc_from_moments, row_moments
from mncrl.simulation import Scenario

KIND = "coverage"
#: Derived tables (name -> function of the metrics table and the experiment spec).
TABLES = {"phase": tables.phase_file, "designs": lambda metrics, spec: design_table(spec)}


# --------------------------------------------------------------------------------------------
# Config -> cells and specs
# --------------------------------------------------------------------------------------------


def design_scenario(base: Mapping, design: Design) -> dict:
    """The full scenario dict of one design (the base with d and the design keys set)."""
    return {**base, **design.scenario_fields()}


def cells(config: Mapping, name: str) -> list[core.Cell]:
    """The cells as :class:`~mncrl.experiments.core.Cell` (the scenario of a cell is that of
    its first design); every design's scenario is checked once (cached per config)."""
    key = core.spec_key({"block": config["experiments"][name], "scenarios": config["scenarios"]})
    return list(_cells_cached(key, name))


@lru_cache(maxsize=16)
def _cells_cached(key: str, name: str) -> tuple:
    raw = core.from_key(key)
    config = {"experiments": {name: raw["block"]}, "scenarios": raw["scenarios"]}
    base = core.base_scenario(config, name)
    out = []
    for cell in coverage_cells(settings(config, name)):
        designs = cell.designs()
        for design in designs if cell.K is None else designs[: len(cell.ks)]:
            try:
                Scenario.from_dict(design_scenario(base, design))
            except MncrlError as exc:
                raise MncrlError(
                    f"experiments.{name} (cell {cell.id}, design {design.id}): {exc}"
                ) from None
        point = {"d": cell.d, "K": cell.K if cell.K is not None else "structured"}
        out.append(
            core.Cell(
                experiment=name, id=cell.id, point=point, scenario=design_scenario(base, designs[0])
            )
        )
    return tuple(out)


def cell_spec(config: Mapping, name: str, cell: str) -> dict:
    """Everything one job needs, as plain JSON data."""
    s = settings(config, name)
    by_id = {c.id: c for c in coverage_cells(s)}
    if cell not in by_id:
        raise MncrlError(f"experiment '{name}' has no cell '{cell}'; cells: {', '.join(by_id)}")
    return {
        **core.common_spec(config, name, KIND, cell),
        "coverage_cell": by_id[cell].to_dict(),
        "scenario": core.base_scenario(config, name),
        "subsample": {label: sub.to_dict() for label, sub in s.subsample},
        "recovered": s.recovered,
        "strict": s.strict,
    }


def experiment_spec(config: Mapping, name: str) -> dict:
    """What the aggregation needs: the thresholds and the cells (for the design table)."""
    s = settings(config, name)
    return {
        "kind": KIND,
        "experiment": name,
        "recovered": s.recovered,
        "strict": s.strict,
        "cells": [c.to_dict() for c in coverage_cells(s)],
    }


def job_cost(spec: Mapping) -> tuple[int, int]:
    """(mem_mb, runtime in minutes) of one cell's job: one batch of same-shape problems in
    memory (three copies: data, split, estimator) and a generous runtime."""
    cell = CoverageCell.from_dict(spec["coverage_cell"])
    s = Scenario.from_dict(design_scenario(spec["scenario"], cell.designs()[0]))
    K = cell.K or 2 * cell.d
    mem = 3 * max(1, len(cell.ks)) * (K + 1) * s.n * (s.m_obs + cell.d) * 4 / 2**20
    problems = len(cell.designs()) * len(spec["seeds"])
    work = problems * (K + 1) * s.n * cell.d**2 * len(spec["estimators"])
    return int(2000 + min(mem, 3 * spec["max_batch_mb"])), int(15 + work / 2e10)


# --------------------------------------------------------------------------------------------
# Running one cell
# --------------------------------------------------------------------------------------------


@dataclass
class _Problem:
    design: Design
    seed: int
    report: DesignReport
    prepared: core.Prepared
    moments: dict = field(default_factory=dict)


@dataclass
class _Estimator:
    resolved: core.Resolved
    subsample: Subsample
    shared: dict = field(default_factory=dict)  # observational data digest -> Outcome
    values: dict = field(default_factory=dict)  # observational data digest -> metrics


def _evaluate(fit, q: _Problem, scored_on: str, metrics: Sequence[str]) -> dict:
    """The requested metrics of a fit, the correlations from the problem's cached moments."""
    p = q.prepared
    if scored_on == "observational":
        X, Z, true_t, est_t = p.obs_test_X, p.obs_test_Z, None, None
    else:
        X, Z, true_t, est_t = p.test_X, p.test_Z, p.targets, fit.targets
    W = np.asarray(fit.unmixing, dtype=np.float64)
    if W.ndim != 2 or W.shape != (p.L.shape[1], p.L.shape[0]):
        raise MncrlError(f"unmixing of shape {W.shape}; expected {(p.L.shape[1], p.L.shape[0])}")
    values = evaluate(
        L=p.L, W=W, true_targets=true_t, est_targets=est_t if "target_f1" in metrics else None
    )
    if "mcc" in metrics or "mcc_paper" in metrics:
        if scored_on not in q.moments:
            q.moments[scored_on] = row_moments(X, Z)
        values.update(mcc_from_moments(q.moments[scored_on], W))
    if "mcc_spearman" in metrics:
        values.update(
            evaluate(
                Z=np.asarray(Z, dtype=np.float64),
                Zhat=np.asarray(X, dtype=np.float64) @ W,
                spearman=True,
            )
        )
    return {m: float(v) for m, v in values.items() if m in metrics and v is not None}


def _recovery_values(fit, p: core.Prepared, report: DesignReport, tol: float) -> dict:
    d = p.L.shape[0]
    rec = (
        np.zeros(d, dtype=bool)
        if fit is None
        else latent_recovery(p.L, np.asarray(fit.unmixing, dtype=np.float64), tol)
    )
    unid = np.zeros(d, dtype=bool)
    unid[list(report.unidentifiable)] = True
    out = {"latents_recovered": float(rec.mean())}
    if (~unid).any():
        out["identifiable_latents_recovered"] = float(rec[~unid].mean())
    if unid.any():
        out["unidentifiable_latents_recovered"] = float(rec[unid].mean())
    return out


def _obs_digest(p: core.Prepared) -> str:
    h = hashlib.blake2b(digest_size=16)
    for a in (p.obs_train, p.obs_test_X, p.obs_test_Z):
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


def _fit_group(e: _Estimator, problems: Sequence[_Problem], experiment: str, d: int):
    """(outcomes, memos) of one estimator on a group of same-shape problems; fits on
    observational data are shared by the problems with the same observational rows."""
    r = e.resolved
    if not core.uses_observational(r.est, problems[0].prepared):
        seeds = [
            core.stable_seed(experiment, f"d-{d}_{q.design.id}", q.seed, "fit", r.label)
            for q in problems
        ]
        outcomes = core.fit_chunk(r.est, r.hparams, [q.prepared for q in problems], seeds, d)
        return outcomes, [None] * len(problems)
    outcomes, memos = [], []
    for q in problems:
        group = f"d-{d}_K-{q.design.K}_r-{q.design.draw}"
        memo = (q.seed, group, _obs_digest(q.prepared))
        if memo not in e.shared:
            seed = core.stable_seed(experiment, group, q.seed, "fit", r.label)
            e.shared[memo] = core.fit_chunk(r.est, r.hparams, [q.prepared], [seed], d)[0]
        outcomes.append(e.shared[memo])
        memos.append(memo)
    return outcomes, memos


def _values(e: _Estimator, q: _Problem, out: core.Outcome, memo, scored_on, metrics):
    """(metric values, status, shared) of one outcome; a shared fit reuses its values."""
    shared = memo is not None and memo in e.values
    if memo is not None and not shared:
        e.values[memo] = (
            None if out.error is not None else _evaluate(out.fit, q, scored_on, metrics)
        )
    if out.error is None:
        values = (
            dict(e.values[memo]) if memo is not None else _evaluate(out.fit, q, scored_on, metrics)
        )
        return values, "ok", shared
    return (
        core.failed_values(metrics, e.resolved.est.reports_targets),
        type(out.error).__name__,
        shared,
    )


def _row_columns(
    spec, scen, q: _Problem, r: core.Resolved, scored_on, status, seconds, shared
) -> dict:
    rep, dz = q.report, q.design
    return {
        "experiment": spec["experiment"],
        "cell": spec["cell"],
        "level": "problem",
        "d": scen.d,
        "n": scen.n,
        "p": scen.p,
        "mechanism": scen.mechanism,
        "intervention": scen.intervention,
        "design": dz.family,
        "design_id": dz.id,
        "draw": dz.draw,
        "K": dz.K,
        "k": dz.k,
        "a4_satisfied": rep.satisfied,
        "n_unseparated": len(rep.unseparated),
        "n_unidentifiable": len(rep.unidentifiable),
        "n_envs": dz.K,
        "seed": q.seed,
        **core.estimator_columns(r, scored_on),
        "shared_fit": shared,
        "status": status,
        "seconds": seconds,
    }


class _Clock:
    """Wall and CPU seconds per stage (CPU time is robust on shared cores)."""

    def __init__(self):
        self.wall: dict = {"prepare": 0.0, "evaluate": 0.0}
        self.cpu: dict = {"prepare": 0.0, "evaluate": 0.0}
        self.start = time.perf_counter()

    def tick(self):
        return time.perf_counter(), time.process_time()

    def tock(self, stage, t0):
        self.wall[stage] = self.wall.get(stage, 0.0) + time.perf_counter() - t0[0]
        self.cpu[stage] = self.cpu.get(stage, 0.0) + time.process_time() - t0[1]


def _groups(designs: Sequence[Design], seeds: Sequence[int]) -> dict:
    """Problems grouped by (K, draw, seed): same shapes and the same SCM and noise."""
    order: dict = {}
    for design in designs:
        for seed in seeds:
            order.setdefault((design.K, design.draw, seed), []).append(design)
    return order


def _run_batch(spec, problems, estimators_, clock, rows, records):
    exp, d, metrics = spec["experiment"], problems[0].design.d, spec["metrics"]
    scen = Scenario.from_dict(design_scenario(spec["scenario"], problems[0].design))
    for e in estimators_:
        r = e.resolved
        todo = [q for q in problems if e.subsample.runs(q.design, q.seed)]
        if not todo:
            continue
        t0 = clock.tick()
        outcomes, memos = _fit_group(e, todo, exp, d)
        clock.tock(f"fit:{r.label}", t0)
        scored_on = core.scored_on(r.est, todo[0].prepared)
        t0 = clock.tick()
        for q, out, memo in zip(todo, outcomes, memos, strict=True):
            values, status, shared = _values(e, q, out, memo, scored_on, metrics)
            values["not_identifiable"] = float(isinstance(out.error, NotIdentifiableError))
            values.update(_recovery_values(out.fit, q.prepared, q.report, spec["recovered"]))
            seconds = 0.0 if shared else out.seconds
            records.append(
                {
                    "design": q.design.id,
                    "seed": q.seed,
                    "estimator": r.label,
                    "status": status,
                    "shared_fit": shared,
                    "message": None if out.error is None else str(out.error),
                    "seconds": seconds,
                }
            )
            base = _row_columns(spec, scen, q, r, scored_on, status, seconds, shared)
            rows += [{**base, "metric": m, "value": v} for m, v in values.items()]
        clock.tock("evaluate", t0)


def run_cell(spec: Mapping, progress: bool = False) -> tuple[pd.DataFrame, dict]:
    """Run every design x seed of one coverage cell; returns (tidy DataFrame, info dict)."""
    clock = _Clock()
    cell = CoverageCell.from_dict(spec["coverage_cell"])
    subsample = {label: Subsample.from_dict(v) for label, v in spec["subsample"].items()}
    estimators_ = [
        _Estimator(r, subsample.get(r.label, Subsample()))
        for r in core.resolve_entries(spec["estimators"])
    ]
    designs = cell.designs()
    reports = {dz.id: design_report(dz) for dz in designs}
    noise = core.NoiseCache()
    rows, records = [], []
    groups = _groups(designs, spec["seeds"])
    for gi, ((K, draw, seed), group) in enumerate(groups.items()):
        noise.clear()
        scen = Scenario.from_dict(design_scenario(spec["scenario"], group[0]))
        per_mb = (K + 1) * scen.n * (scen.m_obs + scen.d) * 4 / 2**20
        size = core.problems_per_batch(per_mb, len(group), spec["max_batch_mb"])
        for start in range(0, len(group), size):
            t0 = clock.tick()
            problems = [
                _Problem(
                    design=dz,
                    seed=seed,
                    report=reports[dz.id],
                    prepared=core.prepare(
                        Scenario.from_dict(design_scenario(spec["scenario"], dz)),
                        spec["experiment"],
                        dz.data_cell,
                        seed,
                        spec["test_fraction"],
                        noise,
                    ),
                )
                for dz in group[start : start + size]
            ]
            clock.tock("prepare", t0)
            _run_batch(spec, problems, estimators_, clock, rows, records)
            del problems
        if progress:
            print(
                f"group {gi + 1}/{len(groups)} (K={K}, r={draw}, seed={seed}): "
                f"{time.perf_counter() - clock.start:.1f} s",
                file=sys.stderr,
            )
    info = {
        "spec": dict(spec),
        "designs": [reports[dz.id].row() for dz in designs],
        "fits": records,
        "timings": clock.wall,
        "cpu_seconds": clock.cpu,
        "seconds_total": time.perf_counter() - clock.start,
        "problems": len(designs) * len(spec["seeds"]),
    }
    return pd.DataFrame(rows), info


def aggregate(problems: pd.DataFrame, spec: Mapping) -> pd.DataFrame:
    """The problem rows with the per-d summary rows the claims check appended."""
    summary = tables.claim_rows(problems, spec["recovered"], spec["strict"], spec["experiment"])
    return pd.concat([problems, summary], ignore_index=True, sort=False)


__all__ = [
    "K_RULES",
    "KIND",
    "TABLES",
    "draws_per_job",
    "CoverageCell",
    "Design",
    "DesignReport",
    "Settings",
    "Subsample",
    "aggregate",
    "cell_spec",
    "cells",
    "coverage_cells",
    "design_report",
    "design_scenario",
    "design_table",
    "env_counts",
    "experiment_spec",
    "job_cost",
    "run_cell",
    "settings",
    "sparsities",
    "structured_designs",
]
