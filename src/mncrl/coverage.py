"""Identifiability maps: intervention coverage x sparsity (issue #5; ours, not in the paper).

The paper proves identifiability for every design that satisfies Assumption 4 but tests only
leave-one-out. The ``coverage`` experiment maps where each estimator recovers the latents as
the interventions get sparser (k targets per environment) and the number of environments K
changes: *how many environments, intervening on how many variables each, do I need?*

Grid (``experiments.coverage.coverage`` in the config, see docs/coverage.md):

- for every latent dimension d, every K of ``K`` (rules ``2log2d`` = ceil(2 log2 d), ``d``,
  ``2d`` or integers; duplicates dropped) and every sparsity k of ``k`` (``all`` = 1..d-1):
  ``designs`` random designs (design ``random``: every environment intervenes on k nodes drawn
  uniformly, ``design_seed`` r = 0..designs-1);
- plus the structured designs (``leave-one-out``, ``atomic``, ``separating``, ``blocks``...)
  at every d.

Cells (one Snakemake job each) are the (d, K) pairs, all k, designs and seeds in one process,
plus one cell per d for the structured designs.

Randomness. The SCM, the noise and the split of a problem come from the *draw* r (the design
seed of a random design, 0 for the structured ones) and the seed: ``stable_seed("coverage",
"d-<d>_r-<r>", seed, purpose)``. The designs that share (d, r, seed) -- the d-1 sparsities of a
design seed, and the structured designs with r = 0 -- therefore see the same SCM and the same
noise draws (common random numbers: the differences between them are the designs' alone). Only
the environment noise is shared, so every problem is still a faithful draw of
:func:`mncrl.simulation.simulate` (:func:`prepare` reproduces it bit for bit, caching the noise).

Per problem (design x seed) and estimator, one row per metric: ``mcc``, ``mcc_paper``,
``amari``, ``target_f1`` (when the estimator reports targets), ``not_identifiable`` (1 when the
estimator raised :class:`~mncrl.errors.NotIdentifiableError`), and the per-latent recovery
(:func:`latent_recovery`): ``latents_recovered``, ``identifiable_latents_recovered`` and
``unidentifiable_latents_recovered`` (fractions; an estimator that returns no unmixing recovers
none). A latent j is *unidentifiable* in a design when some unseparated ordered pair (j, i)
exists, i.e. every environment that intervenes on j also intervenes on i: then Z_j and
Z_j + c Z_i have the same zero-variance pattern in every environment, and the variance-sparsity
argument of the paper cannot tell them apart. The other latents are *identifiable* by that
argument (exactly the latents the ``subspace`` estimator can peel off).

Estimators that use only the observational environment (``ica``) give the same fit for every
design that shares their observational data (same d, K, r and seed): they are fitted once per
such group and the fit is reused (column ``shared_fit``), which is exact, not an approximation.

Aggregation: :func:`phase_table` (fraction of problems recovered per d, K, k and estimator, next
to the fraction satisfying Assumption 4), :func:`theory_table` (the Assumption-4 probability of
a random design, Monte Carlo) and :func:`claim_rows` (per d, the rates the claims in
paper/claims.yaml check, appended to the metrics table with ``level = summary``).

Command line (used by rules/coverage.smk)::

    python -m mncrl.coverage run --spec JSON --out CELL.csv --info CELL.json
    python -m mncrl.coverage aggregate CELL.csv ... --spec JSON --out metrics.csv \\
        --summary summary.csv --phase phase.csv --designs designs.csv
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

from mncrl.errors import MncrlError, NotIdentifiableError

EXPERIMENT = "coverage"
#: K rules: name -> K as a function of d.
K_RULES = {
    "2log2d": lambda d: max(1, math.ceil(2 * math.log2(d))),
    "d": lambda d: d,
    "2d": lambda d: 2 * d,
}
STRUCTURED = ("leave-one-out", "atomic", "separating", "separating-bits", "blocks")
DEFAULTS = {
    "d": [6, 10, 20],
    "K": ["2log2d", "d", "2d"],
    "k": "all",
    "designs": 20,
    "structured": ["leave-one-out", "atomic", "separating", "blocks"],
    "recovered": 0.01,
    "strict": 0.001,
    "subsample": {},
    "draws_per_job": "auto",
}
#: ``draws_per_job: auto`` splits a (d, K) cell into jobs of at most this much work, measured
#: as design seeds x sparsities x (K + 1) x d^2 (proportional to the data each job simulates).
JOB_WORK = 1.25e6
#: Per-problem metrics besides the experiment's own (mcc, mcc_paper, amari, target_f1).
RECOVERY_METRICS = ("not_identifiable", "latents_recovered", "identifiable_latents_recovered",
                    "unidentifiable_latents_recovered")
#: Summary metrics (one row per d, family and estimator; see :func:`claim_rows`).
CLAIM_METRICS = ("rate_recovered_a4", "rate_recovered_a4_strict", "rate_recovered_not_a4",
                 "rate_reported_not_identifiable", "rate_unidentifiable_latents_recovered",
                 "rate_identifiable_latents_recovered_not_a4")


# --------------------------------------------------------------------------------------------
# Settings
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Subsample:
    """Run an (expensive) estimator only on random designs with design seed < ``designs`` and
    on ``seeds`` (None = no restriction); both can depend on d (``by_d``: (d, designs, seeds)
    triples that replace the defaults at that d). Structured designs always run on every
    seed."""

    designs: int | None = None
    seeds: tuple[int, ...] | None = None
    by_d: tuple = ()

    def limits(self, d: int) -> tuple[int | None, tuple[int, ...] | None]:
        for dd, designs, seeds in self.by_d:
            if dd == d:
                return designs, seeds
        return self.designs, self.seeds

    def runs(self, design: Design, seed: int) -> bool:
        if design.family != "random":
            return True
        designs, seeds = self.limits(design.d)
        if seeds is not None and seed not in seeds:
            return False
        return designs is None or design.draw < designs

    def to_dict(self) -> dict:
        def seeds_(x):
            return None if x is None else list(x)
        return {"designs": self.designs, "seeds": seeds_(self.seeds),
                "by_d": [[d, n, seeds_(x)] for d, n, x in self.by_d]}

    @classmethod
    def from_dict(cls, v: Mapping) -> Subsample:
        def seeds_(x):
            return None if x is None else tuple(int(s) for s in x)
        return cls(designs=v.get("designs"), seeds=seeds_(v.get("seeds")),
                   by_d=tuple((int(d), n, seeds_(x)) for d, n, x in v.get("by_d") or ()))


@dataclass(frozen=True)
class Settings:
    """The validated ``coverage`` block of the experiment."""

    d: tuple[int, ...]
    K: tuple
    k: str | tuple[int, ...]
    designs: int
    structured: tuple[str, ...]
    recovered: float
    strict: float
    subsample: tuple = ()   # (label, Subsample) pairs
    draws_per_job: int | str = "auto"

    def subsample_for(self, label: str) -> Subsample:
        return dict(self.subsample).get(label, Subsample())


def _need(cond: bool, msg: str) -> None:
    if not cond:
        raise MncrlError(msg)


def _is_int(x) -> bool:
    return isinstance(x, int | np.integer) and not isinstance(x, bool | np.bool_)


def settings(block: Mapping | None, where: str = "experiments.coverage.coverage") -> Settings:
    """Validated :class:`Settings` from the experiment's ``coverage`` mapping (defaults filled)."""
    block = dict(block or {})
    unknown = sorted(set(block) - set(DEFAULTS))
    _need(not unknown, f"{where}: unknown key '{unknown[0] if unknown else ''}'; allowed: "
                       f"{', '.join(DEFAULTS)}")
    values = {**DEFAULTS, **block}
    ds = values["d"]
    _need(isinstance(ds, list | tuple) and ds and all(_is_int(d) and d >= 2 for d in ds),
          f"{where}.d must be a non-empty list of integers >= 2, got {ds!r}")
    Ks = values["K"]
    _need(isinstance(Ks, list | tuple) and len(Ks) > 0,
          f"{where}.K must be a non-empty list of rules ({', '.join(K_RULES)}) or integers")
    for K in Ks:
        _need((_is_int(K) and K >= 1) or K in K_RULES,
              f"{where}.K: {K!r} is neither an integer >= 1 nor one of {', '.join(K_RULES)}")
    ks = values["k"]
    if ks != "all":
        _need(isinstance(ks, list | tuple) and ks and all(_is_int(k) and k >= 1 for k in ks),
              f"{where}.k must be 'all' or a non-empty list of integers >= 1, got {ks!r}")
        ks = tuple(int(k) for k in ks)
    n = values["designs"]
    _need(_is_int(n) and n >= 0, f"{where}.designs must be an integer >= 0, got {n!r}")
    structured = values["structured"] or []
    _need(isinstance(structured, list | tuple) and all(s in STRUCTURED for s in structured),
          f"{where}.structured: allowed designs are {', '.join(STRUCTURED)}, got {structured!r}")
    thresholds = {}
    for key in ("recovered", "strict"):
        v = values[key]
        _need(isinstance(v, int | float) and not isinstance(v, bool) and 0 < v < 1,
              f"{where}.{key} must be a number in (0, 1), got {v!r}")
        thresholds[key] = float(v)
    subsample = []
    raw = values["subsample"] or {}
    _need(isinstance(raw, Mapping), f"{where}.subsample must map estimator labels to "
                                    f"{{designs: N, seeds: [...]}}")
    for label, entry in raw.items():
        subsample.append((str(label), _subsample(entry, f"{where}.subsample.{label}")))
    dpj = values["draws_per_job"]
    _need(dpj == "auto" or (_is_int(dpj) and dpj >= 1),
          f"{where}.draws_per_job must be 'auto' or an integer >= 1, got {dpj!r}")
    return Settings(d=tuple(int(d) for d in ds), K=tuple(Ks), k=ks, designs=int(n),
                    structured=tuple(structured), subsample=tuple(subsample),
                    draws_per_job=dpj, **thresholds)


def _subsample(entry, where: str) -> Subsample:
    """``{designs: N | {d: N}, seeds: [..] | {d: [..]}}`` -> :class:`Subsample`."""
    entry = dict(entry or {})
    bad = sorted(set(entry) - {"designs", "seeds"})
    _need(not bad, f"{where}: unknown key '{bad[0] if bad else ''}'; allowed: designs, seeds")

    def designs_ok(x):
        return x is None or (_is_int(x) and x >= 0)

    def seeds_ok(x):
        return x is None or (isinstance(x, list | tuple) and all(_is_int(v) and v >= 0
                                                                 for v in x))

    def by_d(value, ok, what):
        if isinstance(value, Mapping):
            out = {}
            for key, v in value.items():
                _need(_is_int(key) or (isinstance(key, str) and key.isdigit()),
                      f"{where}.{what}: keys must be latent dimensions d, got {key!r}")
                _need(ok(v), f"{where}.{what}.{key}: bad value {v!r}")
                out[int(key)] = v
            return None, out
        _need(ok(value), f"{where}.{what}: bad value {value!r} (an integer >= 0 for designs, "
                         f"a list of seeds for seeds, null, or a mapping d -> value)")
        return value, {}

    designs, designs_d = by_d(entry.get("designs"), designs_ok, "designs")
    seeds, seeds_d = by_d(entry.get("seeds"), seeds_ok, "seeds")

    def tup(x):
        return None if x is None else tuple(int(v) for v in x)

    ds = sorted(set(designs_d) | set(seeds_d))
    triples = tuple((d, designs_d.get(d, designs), tup(seeds_d.get(d, seeds))) for d in ds)
    return Subsample(designs=designs, seeds=tup(seeds), by_d=triples)


def env_counts(d: int, rules: Sequence) -> list[int]:
    """The numbers of environments K for latent dimension d (sorted, duplicates dropped)."""
    return sorted({int(K_RULES[r](d)) if isinstance(r, str) else int(r) for r in rules})


def sparsities(d: int, ks) -> list[int]:
    """Targets per environment: ``all`` = 1..d-1, else the listed k that are <= d."""
    if ks == "all":
        return list(range(1, d))
    return sorted({int(k) for k in ks if k <= d})


# --------------------------------------------------------------------------------------------
# Designs
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Design:
    """One intervention design of the grid.

    ``family`` is ``random`` or a structured design name; ``draw`` is the design seed of a
    random design (0 for structured ones) and also selects the SCM draw (module docstring).
    """

    d: int
    family: str
    K: int
    k: int | None = None
    draw: int = 0
    params: tuple = ()

    @property
    def id(self) -> str:
        if self.family == "random":
            return f"random_K-{self.K}_k-{self.k}_r-{self.draw}"
        extra = "".join(f"_{k}-{v}" for k, v in self.params)
        return f"{self.family}{extra}"

    @property
    def data_cell(self) -> str:
        """The name the data seeds are derived from (shared by designs with the same draw)."""
        return f"d-{self.d}_r-{self.draw}"

    def scenario_fields(self) -> dict:
        """The scenario keys that select this design."""
        if self.family == "random":
            return {"d": self.d, "design": "random", "design_params": {"K": self.K, "k": self.k},
                    "design_seed": self.draw}
        return {"d": self.d, "design": self.family, "design_params": dict(self.params),
                "design_seed": None}

    def targets(self) -> np.ndarray:
        """The (K x d) bool target matrix, exactly as the simulator draws it."""
        from mncrl.interventions import make_design
        from mncrl.simulation import rng_for

        f = self.scenario_fields()
        return make_design(f["design"], self.d, rng_for(self.draw, "design"),
                           **f["design_params"])

    def to_dict(self) -> dict:
        return {"d": self.d, "family": self.family, "K": self.K, "k": self.k, "draw": self.draw,
                "params": [list(p) for p in self.params]}

    @classmethod
    def from_dict(cls, v: Mapping) -> Design:
        return cls(d=int(v["d"]), family=str(v["family"]), K=int(v["K"]),
                   k=None if v.get("k") is None else int(v["k"]), draw=int(v.get("draw", 0)),
                   params=tuple((str(a), b) for a, b in v.get("params") or ()))


def random_designs(d: int, K: int, k: int, n: int) -> list[Design]:
    """``n`` random designs (design seeds 0..n-1) with K environments of k targets each."""
    _need(1 <= k <= d, f"k must be in 1..{d}, got {k}")
    return [Design(d=d, family="random", K=K, k=k, draw=r) for r in range(n)]


def structured_designs(d: int, names: Sequence[str]) -> list[Design]:
    """The structured designs at dimension d (``blocks`` with size 2; skipped when d < 4)."""
    from mncrl.interventions import make_design

    out = []
    for name in names:
        _need(name in STRUCTURED, f"unknown structured design '{name}'; allowed: "
                                  f"{', '.join(STRUCTURED)}")
        params = (("size", 2),) if name == "blocks" else ()
        if name == "blocks" and d < 4:
            continue
        K = make_design(name, d, 0, **dict(params)).shape[0]
        ks = make_design(name, d, 0, **dict(params)).sum(axis=1)
        k = int(ks[0]) if np.all(ks == ks[0]) else None
        out.append(Design(d=d, family=name, K=K, k=k, draw=0, params=params))
    return out


@dataclass(frozen=True)
class CoverageCell:
    """One Snakemake job: the random designs of one (d, K) with design seeds
    ``draw_start .. draw_start + draws - 1`` (all sparsities), or the structured designs of d."""

    id: str
    d: int
    K: int | None
    ks: tuple[int, ...] = ()
    draws: int = 0
    structured: tuple[str, ...] = ()
    draw_start: int = 0

    def designs(self) -> list[Design]:
        if self.K is None:
            return structured_designs(self.d, self.structured)
        return [Design(d=self.d, family="random", K=self.K, k=k, draw=r)
                for r in range(self.draw_start, self.draw_start + self.draws) for k in self.ks]

    def to_dict(self) -> dict:
        return {"id": self.id, "d": self.d, "K": self.K, "ks": list(self.ks),
                "draws": self.draws, "draw_start": self.draw_start,
                "structured": list(self.structured)}

    @classmethod
    def from_dict(cls, v: Mapping) -> CoverageCell:
        return cls(id=str(v["id"]), d=int(v["d"]), K=None if v.get("K") is None else int(v["K"]),
                   ks=tuple(int(k) for k in v.get("ks") or ()), draws=int(v.get("draws", 0)),
                   structured=tuple(v.get("structured") or ()),
                   draw_start=int(v.get("draw_start", 0)))


def draws_per_job(s: Settings, d: int, K: int, n_ks: int) -> int:
    """Design seeds per job of a (d, K) cell (``auto``: at most :data:`JOB_WORK` per job, the
    cell split into parts of equal size)."""
    if s.designs <= 0:
        return 1
    if s.draws_per_job != "auto":
        return min(int(s.draws_per_job), s.designs)
    per_draw = max(n_ks, 1) * (K + 1) * d * d
    most = max(1, int(JOB_WORK // per_draw))
    parts = math.ceil(s.designs / most)
    return math.ceil(s.designs / parts)


def coverage_cells(s: Settings) -> list[CoverageCell]:
    """Every cell: per d, the (d, K) cells of random designs (all k; split into several jobs
    by design seed when large, see :func:`draws_per_job`), then the structured one."""
    cells = []
    for d in s.d:
        ks = tuple(sparsities(d, s.k))
        if s.designs > 0 and ks:
            for K in env_counts(d, s.K):
                step = draws_per_job(s, d, K, len(ks))
                for lo in range(0, s.designs, step):
                    n = min(step, s.designs - lo)
                    cid = f"d-{d}_K-{K}" if n == s.designs else f"d-{d}_K-{K}_r-{lo}-{lo + n - 1}"
                    cells.append(CoverageCell(id=cid, d=d, K=K, ks=ks, draws=n, draw_start=lo))
        structured = tuple(n for n in s.structured if n != "blocks" or d >= 4)
        if structured:
            cells.append(CoverageCell(id=f"d-{d}_structured", d=d, K=None,
                                      structured=structured))
    return cells


# --------------------------------------------------------------------------------------------
# Assumption 4, per design and vectorised
# --------------------------------------------------------------------------------------------


def unseparated_mask(T) -> np.ndarray:
    """``U[..., j, i]`` = True when no environment intervenes on j without intervening on i
    (i != j). ``T`` is (..., K, d) bool; works on a stack of designs."""
    T = np.asarray(T, dtype=bool)
    Ti = T.astype(np.int32)
    sep = np.einsum("...kj,...ki->...ji", Ti, 1 - Ti)
    d = T.shape[-1]
    return (sep == 0) & ~np.eye(d, dtype=bool)


def assumption4_batch(T) -> np.ndarray:
    """Whether each design of a (..., K, d) stack satisfies Assumption 4."""
    return ~unseparated_mask(T).any(axis=(-2, -1))


def unidentifiable_latents(T) -> np.ndarray:
    """(..., d) bool: latent j is the first element of some unseparated pair (j, i)."""
    return unseparated_mask(T).any(axis=-1)


@dataclass(frozen=True)
class DesignReport:
    """Assumption 4 for one design: the unseparated ordered pairs and the latents they make
    unidentifiable by the variance-sparsity argument."""

    design: Design
    satisfied: bool
    unseparated: tuple[tuple[int, int], ...]
    unidentifiable: tuple[int, ...]
    targets_per_env: tuple[int, ...]

    def row(self) -> dict:
        t = self.targets_per_env
        return {"d": self.design.d, "design": self.design.family, "design_id": self.design.id,
                "K": self.design.K, "k": self.design.k, "draw": self.design.draw,
                "k_min": min(t), "k_max": max(t), "a4_satisfied": self.satisfied,
                "n_unseparated": len(self.unseparated),
                "n_unidentifiable": len(self.unidentifiable),
                "unseparated": ";".join(f"{j}>{i}" for j, i in self.unseparated),
                "unidentifiable": ";".join(str(j) for j in self.unidentifiable)}


def design_report(design: Design, T: np.ndarray | None = None) -> DesignReport:
    T = design.targets() if T is None else np.asarray(T, dtype=bool)
    U = unseparated_mask(T)
    pairs = tuple((int(j), int(i)) for j, i in zip(*np.nonzero(U), strict=True))
    return DesignReport(design=design, satisfied=not pairs, unseparated=pairs,
                        unidentifiable=tuple(int(j) for j in np.flatnonzero(U.any(axis=1))),
                        targets_per_env=tuple(int(x) for x in T.sum(axis=1)))


def design_table(cells: Sequence[CoverageCell]):
    """One row per design of the cells: its Assumption-4 report (no simulation)."""
    import pandas as pd

    rows = []
    for cell in cells:
        for design in cell.designs():
            rows.append({"cell": cell.id, **design_report(design).row()})
    return pd.DataFrame(rows)


def sample_random_targets(rng: np.random.Generator, n: int, d: int, K: int, k: int) -> np.ndarray:
    """``n`` random designs at once (n x K x d bool): every environment intervenes on k nodes
    drawn uniformly without replacement (the distribution of design ``random``)."""
    u = rng.random((n, K, d))
    kth = np.partition(u, k - 1, axis=-1)[..., k - 1:k]
    return u <= kth


def a4_probability(d: int, K: int, k: int, draws: int = 4000, seed: int = 0) -> float:
    """Monte Carlo probability that a random design (K environments of k targets) satisfies
    Assumption 4 (standard error <= 0.5 / sqrt(draws))."""
    if k >= d:
        return 0.0
    rng = np.random.default_rng([seed, d, K, k])
    ok = 0
    for start in range(0, draws, 1000):
        T = sample_random_targets(rng, min(1000, draws - start), d, K, k)
        ok += int(assumption4_batch(T).sum())
    return ok / draws


def theory_table(points: Sequence[tuple[int, int, int]], draws: int = 4000):
    """The Assumption-4 probability of random designs at every (d, K, k)."""
    import pandas as pd

    rows = [{"d": d, "K": K, "k": k, "a4_probability": a4_probability(d, K, k, draws)}
            for d, K, k in points]
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------------------------
# Per-latent recovery
# --------------------------------------------------------------------------------------------


def column_terms(L, W) -> tuple[np.ndarray, np.ndarray]:
    """For every estimated latent c (column of M = L W): the true latent it is closest to
    (largest |M_jc|) and its Amari column term sum_i |M_ic| / max_i |M_ic| - 1, divided by
    d - 1 (0 = a pure copy of one latent, 1 = equal parts of all; an all-zero column is 1)."""
    M = np.abs(np.asarray(L, dtype=np.float64) @ np.asarray(W, dtype=np.float64))
    d = M.shape[0]
    peak = M.max(axis=0)
    best = M.argmax(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(peak > 0, (M.sum(axis=0) / peak - 1.0) / max(d - 1, 1), 1.0)
    return best, terms


def latent_recovery(L, W, tol: float) -> np.ndarray:
    """(d,) bool: latent j is recovered when some estimated latent is a copy of Z_j up to
    scale with Amari column term <= ``tol`` (the per-column part of the Amari distance, so a
    design whose every latent is recovered has Amari distance of order ``tol``)."""
    best, terms = column_terms(L, W)
    d = np.asarray(L).shape[0]
    out = np.zeros(d, dtype=bool)
    out[best[terms <= tol]] = True
    return out


# --------------------------------------------------------------------------------------------
# Config hooks (mncrl.experiment calls these for an experiment with a `coverage` block)
# --------------------------------------------------------------------------------------------


def is_coverage(block: Mapping) -> bool:
    return "coverage" in (block or {})


def _settings_of(config: Mapping, name: str) -> Settings:
    from mncrl.experiment import experiment_block

    return settings(experiment_block(config, name).get("coverage"),
                    where=f"experiments.{name}.coverage")


def _base_scenario(config: Mapping, name: str) -> dict:
    from mncrl.experiment import experiment_block

    block = experiment_block(config, name)
    scenarios = config.get("scenarios") or {}
    _need(block.get("scenario") in scenarios,
          f"experiments.{name}.scenario: unknown scenario '{block.get('scenario')}'; defined: "
          f"{', '.join(scenarios)}")
    return json.loads(json.dumps({**scenarios[block["scenario"]], **(block.get("set") or {})}))


def design_scenario(base: Mapping, design: Design) -> dict:
    """The full scenario dict of one design (the base with d and the design keys set)."""
    return {**base, **design.scenario_fields()}


def experiment_cells(config: Mapping, name: str) -> list:
    """The cells of a coverage experiment as :class:`mncrl.experiment.Cell` (the scenario of a
    cell is that of its first design); every design's scenario is checked once."""
    key = json.dumps({"block": (config.get("experiments") or {}).get(name),
                      "scenarios": config.get("scenarios")}, sort_keys=True, default=str)
    return list(_cells_cached(key, name))


@lru_cache(maxsize=16)
def _cells_cached(key: str, name: str) -> tuple:
    from mncrl.experiment import Cell
    from mncrl.simulation import Scenario

    raw = json.loads(key)
    config = {"experiments": {name: raw["block"]}, "scenarios": raw["scenarios"]}
    s = _settings_of(config, name)
    base = _base_scenario(config, name)
    out = []
    for cell in coverage_cells(s):
        designs = cell.designs()
        for design in designs if cell.K is None else designs[:len(cell.ks)]:
            try:
                Scenario.from_dict(design_scenario(base, design))
            except MncrlError as exc:
                raise MncrlError(f"experiments.{name} (cell {cell.id}, design {design.id}): "
                                 f"{exc}") from None
        point = {"d": cell.d, "K": cell.K if cell.K is not None else "structured"}
        out.append(Cell(experiment=name, id=cell.id, point=point,
                        scenario=design_scenario(base, designs[0])))
    return tuple(out)


def cell_spec(config: Mapping, name: str, cell_id: str) -> dict:
    """Everything one ``run`` job needs, as plain JSON data."""
    from mncrl.experiment import estimator_entries, experiment_block

    block = experiment_block(config, name)
    s = _settings_of(config, name)
    cells = {c.id: c for c in coverage_cells(s)}
    _need(cell_id in cells, f"experiment '{name}' has no cell '{cell_id}'; cells: "
                            f"{', '.join(cells)}")
    return {
        "experiment": name,
        "cell": cell_id,
        "coverage_cell": cells[cell_id].to_dict(),
        "scenario": _base_scenario(config, name),
        "estimators": estimator_entries(config, block["estimators"]),
        "seeds": [int(x) for x in block["seeds"]],
        "test_fraction": float(block.get("test_fraction", 0.25)),
        "metrics": list(block.get("metrics") or ["mcc", "mcc_paper", "amari", "target_f1"]),
        "max_batch_mb": int(config.get("max_batch_mb", 3000)),
        "subsample": {label: sub.to_dict() for label, sub in s.subsample},
        "recovered": s.recovered,
        "strict": s.strict,
    }


def coverage_experiments(config: Mapping) -> list[str]:
    """The experiments of a config that have a ``coverage`` block."""
    return [name for name, block in (config.get("experiments") or {}).items()
            if is_coverage(block)]


def coverage_figures(config: Mapping) -> list[str]:
    """The figures (config ``figures``) that read a coverage experiment."""
    names = set(coverage_experiments(config))
    return [fig for fig, entry in (config.get("figures") or {}).items()
            if names & set((entry or {}).get("experiments") or [])]


def cell_tables(config: Mapping, name: str, results: str) -> list[str]:
    """The cell tables of a coverage experiment (inputs of its aggregation)."""
    return [f"{results}/{name}/cells/{c.id}.csv" for c in experiment_cells(config, name)]


def spec_json(spec: Mapping) -> str:
    """A spec as compact, key-sorted JSON (a rule's ``params``: a changed spec reruns)."""
    return json.dumps(spec, sort_keys=True, separators=(",", ":"))


def cell_resources(config: Mapping, name: str, cell_id: str) -> tuple[int, int]:
    """(mem_mb, runtime in minutes) of one cell job: one batch of same-shape problems in
    memory (three copies: data, split, estimator) and a generous runtime."""
    spec = cell_spec(config, name, cell_id)
    cell = CoverageCell.from_dict(spec["coverage_cell"])
    s = spec["scenario"]
    n, d = int(s.get("n", 100000)), cell.d
    K = cell.K or 2 * d
    m = int(s.get("m") or d)
    batch = max(1, len(cell.ks))
    mem = 3 * batch * (K + 1) * n * (m + d) * 4 / 2**20
    problems = len(cell.designs()) * len(spec["seeds"])
    work = problems * (K + 1) * n * d * d * len(spec["estimators"])
    return int(2000 + min(mem, 3 * spec["max_batch_mb"])), int(15 + work / 2e10)


def aggregate_spec(config: Mapping, name: str) -> dict:
    """What the aggregation needs: the thresholds and the cells (for the design table)."""
    s = _settings_of(config, name)
    return {"experiment": name, "recovered": s.recovered, "strict": s.strict,
            "cells": [c.to_dict() for c in coverage_cells(s)]}


# --------------------------------------------------------------------------------------------
# Data: experiment.prepare, with the environment noise cached across designs
# --------------------------------------------------------------------------------------------


class NoiseCache:
    """The latent noise of environment k under a data seed, drawn once (read-only arrays)."""

    def __init__(self):
        self._store: dict = {}

    def get(self, seed: int, k: int, kind: str, std: float, shape: tuple) -> np.ndarray:
        from mncrl import scm
        from mncrl.simulation import rng_for

        key = (int(seed), int(k), kind, float(std), tuple(shape))
        if key not in self._store:
            eta = scm.sample_noise(rng_for(seed, "noise", k), kind, std, shape)
            eta.flags.writeable = False
            self._store[key] = eta
        return self._store[key]

    def clear(self) -> None:
        self._store.clear()


def prepare(scenario, experiment: str, data_cell: str, seed: int, test_fraction: float = 0.25,
            noise: NoiseCache | None = None):
    """:func:`mncrl.experiment.prepare` for ``spec = {experiment, cell: data_cell}``, bit for
    bit, but with the environment noise taken from ``noise`` (shared across designs).

    Mirrors :func:`mncrl.simulation.simulate` followed by ``train_test_split(same_rows=True)``
    (tests/test_coverage.py checks the equality).
    """
    from mncrl import scm
    from mncrl import simulation as sim
    from mncrl.experiment import Prepared, interleave, stable_seed

    s = scenario
    noise = NoiseCache() if noise is None else noise
    data_seed = stable_seed(experiment, data_cell, seed, "data")
    B = sim.latent_graph(s, data_seed)
    T = sim.design_matrix(s, data_seed)
    L = sim.mixing_matrix(s)
    order = scm.topological_order(B != 0)
    iv = s.intervention_spec
    K_all, n, d, m = T.shape[0], s.n, s.d, s.m_obs
    dtype = np.dtype(s.dtype)
    X = np.empty((K_all, n, m), dtype=dtype)
    Z = np.empty((K_all, n, d), dtype=dtype)
    for k in range(K_all):
        eta = noise.get(data_seed, 0 if s.paired_noise else k, s.noise, s.noise_std, (n, d))
        Zk = scm.sample_latents(mechanism=s.mechanism, B=B, eta=eta, targets=T[k],
                                intervention=iv, order=order, scm2_variant=s.scm2_variant,
                                env_index=k)
        Xk = Zk @ L
        if s.obs_noise > 0:
            Xk += s.obs_noise * sim.rng_for(data_seed, "obs_noise", k).standard_normal((n, m))
        Z[k] = Zk
        X[k] = Xk
    _need(n >= 2, f"environments need at least 2 rows to split, got n = {n}")
    split_seed = stable_seed(experiment, data_cell, seed, "split")
    n_test = min(max(round(n * test_fraction), 1), n - 1)
    perm = sim.rng_for(split_seed, "split", 0).permutation(n)
    test_rows, train_rows = np.sort(perm[:n_test]), np.sort(perm[n_test:])
    K = K_all - int(s.observational)
    train = np.take(X, train_rows, axis=1)  # (K_all, n_train, m); a view per environment
    te_X, te_Z = np.take(X, test_rows, axis=1), np.take(Z, test_rows, axis=1)
    obs = bool(s.observational)
    return Prepared(seed=int(seed), train_envs=list(train[:K]),
                    test_X=interleave(list(te_X[:K])), test_Z=interleave(list(te_Z[:K])),
                    obs_train=train[K] if obs else None, obs_test_X=te_X[K] if obs else None,
                    obs_test_Z=te_Z[K] if obs else None, L=np.asarray(L), targets=T[:K])


# --------------------------------------------------------------------------------------------
# Running one cell
# --------------------------------------------------------------------------------------------


@dataclass
class _Problem:
    design: Design
    seed: int
    report: DesignReport
    prepared: object = None
    moments: dict = field(default_factory=dict)


@dataclass
class _Resolved:
    entry: dict
    est: object
    hparams: dict
    subsample: Subsample
    uses_obs: bool = False
    shared: dict = field(default_factory=dict)   # observational data digest -> Outcome
    values: dict = field(default_factory=dict)   # observational data digest -> metrics


@dataclass(frozen=True)
class TestMoments:
    """Second moments of the test rows [X, Z], per consecutive chunk of ``chunk`` rows and
    pooled: enough to compute ``mcc`` and ``mcc_paper`` of any linear estimate Zhat = X W
    without touching the rows again (one pass per problem instead of one per estimator).

    ``counts`` (C,), ``means`` (C, m + d) and centred ``scatters`` (C, m + d, m + d) of the
    chunks that :func:`mncrl.metrics.mcc_paper` averages over; ``pooled`` = (n, mean, scatter)
    of all rows (:func:`mncrl.metrics.mcc`).
    """

    m: int
    counts: np.ndarray
    means: np.ndarray
    scatters: np.ndarray
    pooled: tuple


def _scatters(A: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Means (C, p) and centred scatter matrices (C, p, p) of a (C, rows, p) stack."""
    mu = A.mean(axis=1)
    A = A - mu[:, None, :]
    return mu, np.matmul(A.transpose(0, 2, 1), A)


def test_moments(X, Z, chunk: int | None = None) -> TestMoments:
    """:class:`TestMoments` of the rows (X, Z) in their given order."""
    from mncrl.metrics import PAPER_CHUNK

    chunk = PAPER_CHUNK if chunk is None else int(chunk)
    XZ = np.concatenate([np.asarray(X, dtype=np.float64), np.asarray(Z, dtype=np.float64)],
                        axis=1)
    N, m = XZ.shape[0], np.asarray(X).shape[1]
    n_chunks = max(1, N // chunk)
    size = chunk if N >= chunk else N
    mus, scat = _scatters(XZ[:n_chunks * size].reshape(n_chunks, size, -1))
    counts = np.full(n_chunks, float(size))
    rest = N - n_chunks * size
    all_n, all_mu, all_S = counts, mus, scat
    if rest:
        mu_r, S_r = _scatters(XZ[n_chunks * size:][None])
        all_n, all_mu, all_S = (np.append(counts, rest), np.vstack([mus, mu_r]),
                                np.concatenate([scat, S_r]))
    mu = (all_n[:, None] * all_mu).sum(axis=0) / all_n.sum()
    dev = all_mu - mu
    S = all_S.sum(axis=0) + np.einsum("c,cp,cq->pq", all_n, dev, dev)
    return TestMoments(m=m, counts=counts, means=mus, scatters=scat,
                       pooled=(float(all_n.sum()), mu, S))


def _abs_corr_from_moments(n, mu, S, W, m: int) -> np.ndarray:
    """|corr(Z, X W)| (d x dhat) exactly as :func:`mncrl.metrics.abs_correlations`."""
    Sxx, Sxz, Szz = S[:m, :m], S[:m, m:], S[m:, m:]
    mu_z, mu_h = mu[m:], mu[:m] @ W
    czh = Sxz.T @ W
    vz = np.diag(Szz).copy()
    vh = np.einsum("ij,ik,kj->j", W, Sxx, W)
    denom = np.sqrt(np.outer(vz, np.maximum(vh, 0.0)))
    tiny_z = vz <= (1e-14 * n) * np.maximum(mu_z ** 2, 1e-300)
    tiny_h = vh <= (1e-14 * n) * np.maximum(mu_h ** 2, 1e-300)
    with np.errstate(divide="ignore", invalid="ignore"):
        C = np.abs(czh) / denom
    C[tiny_z | (vz == 0)] = 0.0
    C[:, tiny_h | (vh <= 0)] = 0.0
    return np.clip(np.nan_to_num(C, nan=0.0), 0.0, 1.0)


def mcc_from_moments(mom: TestMoments, W) -> dict:
    """``mcc`` (pooled rows) and ``mcc_paper`` (mean over the chunks) of Zhat = X W."""
    from mncrl.metrics import matching

    def one(C):
        rows, cols = matching(C)
        return float(C[rows, cols].mean())

    W = np.asarray(W, dtype=np.float64)
    n, mu, S = mom.pooled
    chunks = [one(_abs_corr_from_moments(c, mu_c, S_c, W, mom.m))
              for c, mu_c, S_c in zip(mom.counts, mom.means, mom.scatters, strict=True)]
    return {"mcc": one(_abs_corr_from_moments(n, mu, S, W, mom.m)),
            "mcc_paper": float(np.mean(chunks))}


def _evaluate(fit, q: _Problem, scored_on: str, metrics: Sequence[str]) -> dict:
    """The requested metrics of a fit (as :func:`mncrl.experiment.evaluate_fit`, with the
    correlations computed from the problem's cached :class:`TestMoments`)."""
    from mncrl.metrics import evaluate

    p = q.prepared
    if scored_on == "observational":
        X, Z, true_t, est_t = p.obs_test_X, p.obs_test_Z, None, None
    else:
        X, Z, true_t, est_t = p.test_X, p.test_Z, p.targets, fit.targets
    W = np.asarray(fit.unmixing, dtype=np.float64)
    if W.ndim != 2 or W.shape != (p.L.shape[1], p.L.shape[0]):
        raise MncrlError(f"unmixing of shape {W.shape}; expected {(p.L.shape[1], p.L.shape[0])}")
    values = evaluate(L=p.L, W=W, true_targets=true_t,
                      est_targets=est_t if "target_f1" in metrics else None)
    if "mcc" in metrics or "mcc_paper" in metrics:
        if scored_on not in q.moments:
            q.moments[scored_on] = test_moments(X, Z)
        values.update(mcc_from_moments(q.moments[scored_on], W))
    if "mcc_spearman" in metrics:
        values.update(evaluate(Z=np.asarray(Z, dtype=np.float64),
                               Zhat=np.asarray(X, dtype=np.float64) @ W, spearman=True))
    return {m: float(v) for m, v in values.items() if m in metrics and v is not None}


def _recovery_values(fit, p, report: DesignReport, tol: float) -> dict:
    d = p.L.shape[0]
    if fit is None:
        rec = np.zeros(d, dtype=bool)
    else:
        rec = latent_recovery(p.L, np.asarray(fit.unmixing, dtype=np.float64), tol)
    unid = np.zeros(d, dtype=bool)
    unid[list(report.unidentifiable)] = True
    out = {"latents_recovered": float(rec.mean())}
    if (~unid).any():
        out["identifiable_latents_recovered"] = float(rec[~unid].mean())
    if unid.any():
        out["unidentifiable_latents_recovered"] = float(rec[unid].mean())
    return out


def _obs_digest(p) -> str:
    h = hashlib.blake2b(digest_size=16)
    h.update(np.ascontiguousarray(p.obs_train).tobytes())
    h.update(np.ascontiguousarray(p.obs_test_X).tobytes())
    h.update(np.ascontiguousarray(p.obs_test_Z).tobytes())
    return h.hexdigest()


def _fit_group(r: _Resolved, problems: Sequence[_Problem], experiment: str, d: int):
    """Outcomes (experiment.Outcome) of one estimator on a group of same-shape problems."""
    from mncrl.experiment import Outcome, fit_chunk, stable_seed

    label = r.entry["label"]
    if not r.uses_obs:
        keys = [stable_seed(experiment, f"d-{d}_{q.design.id}", q.seed, "fit", label)
                for q in problems]
        return fit_chunk(r.est, r.hparams, [q.prepared for q in problems], keys, d), \
            [None] * len(problems)
    outcomes, memos = [], []
    for q in problems:
        group = f"d-{d}_K-{q.design.K}_r-{q.design.draw}"
        memo = (q.seed, group, _obs_digest(q.prepared))
        if memo not in r.shared:
            key = stable_seed(experiment, group, q.seed, "fit", label)
            out = fit_chunk(r.est, r.hparams, [q.prepared], [key], d)[0]
            r.shared[memo] = Outcome(out.fit, out.seconds, out.error)
            outcomes.append(out)
        else:
            outcomes.append(r.shared[memo])
        memos.append(memo)
    return outcomes, memos


def _groups(designs: Sequence[Design], seeds: Sequence[int]):
    """Problems grouped by (K, draw, seed): same shapes and the same SCM and noise."""
    order: dict = {}
    for design in designs:
        for seed in seeds:
            order.setdefault((design.K, design.draw, seed), []).append(design)
    return order


def run_cell(spec: Mapping, progress: bool = False):
    """Run every design x seed of one coverage cell; returns (tidy DataFrame, info dict)."""
    import pandas as pd

    from mncrl import estimators
    from mncrl.experiment import FIT_FAILURES
    from mncrl.simulation import Scenario

    t_start = time.perf_counter()
    exp = spec["experiment"]
    cell = CoverageCell.from_dict(spec["coverage_cell"])
    base = dict(spec["scenario"])
    seeds = [int(s) for s in spec["seeds"]]
    metrics = list(spec.get("metrics") or ["mcc", "mcc_paper", "amari", "target_f1"])
    tol = float(spec.get("recovered", DEFAULTS["recovered"]))
    tf = float(spec.get("test_fraction", 0.25))
    subsample = {label: Subsample.from_dict(v)
                 for label, v in (spec.get("subsample") or {}).items()}
    resolved = []
    for entry in spec["estimators"]:
        est = estimators.get(entry["estimator"])
        hp = estimators.resolve_hparams(est, entry.get("preset"), entry.get("overrides"))
        resolved.append(_Resolved(entry=entry, est=est, hparams=hp,
                                  subsample=subsample.get(entry["label"], Subsample())))
    designs = cell.designs()
    reports = {dz.id: design_report(dz) for dz in designs}
    noise = NoiseCache()
    rows, fits_info = [], []
    timings: dict = {"prepare": 0.0, "evaluate": 0.0}   # wall seconds per stage
    cpu: dict = {"prepare": 0.0, "evaluate": 0.0}       # CPU seconds (robust on shared cores)

    def tick():
        return time.perf_counter(), time.process_time()

    def tock(stage, start):
        timings[stage] = timings.get(stage, 0.0) + time.perf_counter() - start[0]
        cpu[stage] = cpu.get(stage, 0.0) + time.process_time() - start[1]

    groups = _groups(designs, seeds)
    max_mb = int(spec.get("max_batch_mb", 3000))
    for gi, ((K, draw, seed), group) in enumerate(groups.items()):
        noise.clear()
        scen = Scenario.from_dict(design_scenario(base, group[0]))
        per_mb = (K + 1) * scen.n * (scen.m_obs + scen.d) * 4 / 2**20
        size = int(max(1, min(len(group), max_mb // max(per_mb, 1))))
        for start in range(0, len(group), size):
            t0 = tick()
            problems = []
            for design in group[start:start + size]:
                sc = Scenario.from_dict(design_scenario(base, design))
                problems.append(_Problem(design=design, seed=seed, report=reports[design.id],
                                         prepared=prepare(sc, exp, design.data_cell, seed, tf,
                                                          noise)))
            tock("prepare", t0)
            for r in resolved:
                label = r.entry["label"]
                todo = [q for q in problems if r.subsample.runs(q.design, q.seed)]
                if not todo:
                    continue
                r.uses_obs = r.est.needs_observational and todo[0].prepared.obs_train is not None
                t0 = tick()
                outcomes, memos = _fit_group(r, todo, exp, cell.d)
                tock(f"fit:{label}", t0)
                scored_on = "observational" if r.uses_obs else "interventional"
                t0 = tick()
                for q, out, memo in zip(todo, outcomes, memos, strict=True):
                    # a shared fit (same observational data) was evaluated on the same rows
                    is_shared = memo is not None and memo in r.values
                    if memo is not None and not is_shared:
                        r.values[memo] = None if out.error is not None else \
                            _evaluate(out.fit, q, scored_on, metrics)
                    if out.error is None:
                        values = dict(r.values[memo]) if memo is not None else \
                            _evaluate(out.fit, q, scored_on, metrics)
                        status = "ok"
                    elif isinstance(out.error, FIT_FAILURES):
                        values = {m: float("nan") for m in metrics
                                  if m != "target_f1" or r.est.reports_targets}
                        status = type(out.error).__name__
                    else:  # pragma: no cover - fit_chunk only returns FIT_FAILURES
                        raise out.error
                    values["not_identifiable"] = float(isinstance(out.error,
                                                                  NotIdentifiableError))
                    values.update(_recovery_values(out.fit, q.prepared, q.report, tol))
                    fits_info.append({"design": q.design.id, "seed": q.seed, "estimator": label,
                                      "status": status, "shared_fit": is_shared,
                                      "message": None if out.error is None else str(out.error),
                                      "seconds": 0.0 if is_shared else out.seconds})
                    base_row = _row_columns(exp, cell, scen, q, r, scored_on, status,
                                            0.0 if is_shared else out.seconds, is_shared)
                    for metric, value in values.items():
                        rows.append({**base_row, "metric": metric, "value": value})
                tock("evaluate", t0)
            del problems
        if progress:
            print(f"group {gi + 1}/{len(groups)} (K={K}, r={draw}, seed={seed}): "
                  f"{time.perf_counter() - t_start:.1f} s", file=sys.stderr)
    frame = pd.DataFrame(rows)
    info = {"spec": dict(spec), "designs": [reports[dz.id].row() for dz in designs],
            "fits": fits_info, "timings": timings, "cpu_seconds": cpu,
            "seconds_total": time.perf_counter() - t_start, "problems": len(designs) * len(seeds)}
    return frame, info


def _row_columns(exp, cell: CoverageCell, scen, q: _Problem, r: _Resolved, scored_on: str,
                 status: str, seconds: float, shared: bool) -> dict:
    rep = q.report
    return {
        "experiment": exp, "cell": cell.id, "level": "problem", "d": scen.d, "n": scen.n,
        "p": scen.p, "mechanism": scen.mechanism, "intervention": scen.intervention,
        "design": q.design.family, "design_id": q.design.id, "draw": q.design.draw,
        "K": q.design.K, "k": q.design.k, "a4_satisfied": rep.satisfied,
        "n_unseparated": len(rep.unseparated), "n_unidentifiable": len(rep.unidentifiable),
        "n_envs": q.design.K, "seed": q.seed, "estimator": r.entry["label"],
        "estimator_name": r.entry["estimator"],
        "preset": r.entry.get("preset") or r.est.default_preset or "",
        "role": r.entry.get("role", "ours"), "scored_on": scored_on, "shared_fit": shared,
        "status": status, "seconds": seconds,
    }


# --------------------------------------------------------------------------------------------
# Aggregation
# --------------------------------------------------------------------------------------------


def problems_wide(metrics):
    """One row per problem x estimator with the metrics as columns (problem-level rows only)."""
    t = metrics
    if "level" in t.columns:
        t = t[t["level"].fillna("problem") == "problem"]
    ids = ["d", "design_id", "seed", "estimator"]
    describe = ["K", "k", "design", "draw", "a4_satisfied", "n_unidentifiable", "status"]
    describe = [c for c in describe if c in t.columns]
    values = t.drop_duplicates(ids + ["metric"]).pivot(index=ids, columns="metric",
                                                       values="value")
    values.columns.name = None
    first = t.drop_duplicates(ids).set_index(ids)[describe]
    wide = first.join(values).reset_index()
    wide["a4_satisfied"] = wide["a4_satisfied"].astype(str).str.lower() == "true"
    for col in ("d", "K", "draw", "seed"):
        if col in wide.columns and wide[col].notna().all():
            wide[col] = wide[col].astype(int)
    if "k" in wide.columns:
        wide["k"] = wide["k"].astype("Int64")
    return wide


def _recovered(wide, threshold: float):
    amari = wide["amari"] if "amari" in wide.columns else np.nan
    return (np.asarray(amari, dtype=float) <= threshold)


def phase_table(metrics, threshold: float = DEFAULTS["recovered"], strict: float | None = None):
    """Per (d, K, k, design family, estimator): how many problems (design x seed) were run,
    the fraction whose design satisfies Assumption 4 and the fraction recovered
    (amari <= ``threshold``; a failed fit counts as not recovered), overall and split by
    Assumption 4, plus mean metrics."""
    import pandas as pd

    wide = problems_wide(metrics)
    wide["recovered"] = _recovered(wide, threshold)
    if strict is not None:
        wide["recovered_strict"] = _recovered(wide, strict)
    if "not_identifiable" not in wide.columns:
        wide["not_identifiable"] = 0.0
    rows = []
    keys = ["d", "K", "k", "design", "estimator"]
    for key, g in wide.groupby(keys, dropna=False, sort=True):
        a4 = g["a4_satisfied"].to_numpy(bool)
        rec = g["recovered"].to_numpy(bool)
        row = dict(zip(keys, key, strict=True))
        row.update({
            "problems": len(g), "designs": g["design_id"].nunique(),
            "a4_fraction": float(a4.mean()),
            "recovered_fraction": float(rec.mean()),
            "recovered_given_a4": float(rec[a4].mean()) if a4.any() else np.nan,
            "recovered_given_not_a4": float(rec[~a4].mean()) if (~a4).any() else np.nan,
            "not_identifiable_fraction": float(np.nan_to_num(g["not_identifiable"]).mean()),
        })
        if strict is not None:
            row["recovered_strict_fraction"] = float(g["recovered_strict"].mean())
        for m in ("amari", "mcc", "mcc_paper", "target_f1", "latents_recovered"):
            if m in g.columns:
                v = g[m].to_numpy(dtype=float)
                row[f"mean_{m}"] = float(np.nanmean(v)) if np.isfinite(v).any() else np.nan
        rows.append(row)
    return pd.DataFrame(rows)


def claim_rows(metrics, recovered: float = DEFAULTS["recovered"],
               strict: float = DEFAULTS["strict"], experiment: str = EXPERIMENT):
    """Summary rows (``level = summary``), one per d x family (``all``, ``random``) x
    estimator x rate, in the tidy format the claims checker reads:

    - ``rate_recovered_a4`` / ``rate_recovered_a4_strict``: among problems whose design
      satisfies Assumption 4, the fraction with amari <= ``recovered`` / ``strict``;
    - ``rate_recovered_not_a4``: among problems violating it, the fraction with
      amari <= ``recovered``;
    - ``rate_reported_not_identifiable``: among problems violating it, the fraction where
      the estimator raised NotIdentifiableError;
    - ``rate_unidentifiable_latents_recovered``: pooled over problems violating Assumption 4,
      recovered unidentifiable latents / unidentifiable latents;
    - ``rate_identifiable_latents_recovered_not_a4``: the same for the identifiable latents.

    A rate with no problem to count is left out (not NaN). ``seed`` is empty; ``n_problems``
    says how many problems the rate counts.
    """
    import pandas as pd

    wide = problems_wide(metrics)
    wide["rec"] = _recovered(wide, recovered)
    wide["rec_strict"] = _recovered(wide, strict)
    for col in ("not_identifiable", "unidentifiable_latents_recovered",
                "identifiable_latents_recovered"):
        if col not in wide.columns:
            wide[col] = np.nan
    rows = []
    for family in ("all", "random"):
        sub = wide if family == "all" else wide[wide["design"] == "random"]
        for (d, est), g in sub.groupby(["d", "estimator"], sort=True):
            a4 = g["a4_satisfied"].to_numpy(bool)
            bad = g[~a4]
            rates = {}
            if a4.any():
                rates["rate_recovered_a4"] = (g["rec"][a4].mean(), int(a4.sum()))
                rates["rate_recovered_a4_strict"] = (g["rec_strict"][a4].mean(), int(a4.sum()))
            if len(bad):
                rates["rate_recovered_not_a4"] = (bad["rec"].mean(), len(bad))
                rates["rate_reported_not_identifiable"] = (
                    np.nan_to_num(bad["not_identifiable"].to_numpy(float)).mean(), len(bad))
                n_un = bad["n_unidentifiable"].to_numpy(float)
                if n_un.sum() > 0:
                    got = np.nan_to_num(bad["unidentifiable_latents_recovered"].to_numpy(float))
                    rates["rate_unidentifiable_latents_recovered"] = (
                        float((got * n_un).sum() / n_un.sum()), len(bad))
                n_id = d - n_un
                if n_id.sum() > 0:
                    got = np.nan_to_num(bad["identifiable_latents_recovered"].to_numpy(float))
                    rates["rate_identifiable_latents_recovered_not_a4"] = (
                        float((got * n_id).sum() / n_id.sum()), len(bad))
            for metric, (value, n) in rates.items():
                thr = strict if metric.endswith("_strict") else recovered
                thr = None if metric == "rate_reported_not_identifiable" else thr
                rows.append({"experiment": experiment, "cell": f"d-{int(d)}_{family}",
                             "level": "summary", "d": int(d), "design": family,
                             "estimator": est, "metric": metric, "value": float(value),
                             "n_problems": n, "threshold": thr, "status": "ok"})
    return pd.DataFrame(rows)


def thresholds_of(metrics) -> tuple[float, float]:
    """(recovered, strict) Amari thresholds recorded in the summary rows (defaults if none)."""
    rec, strict = DEFAULTS["recovered"], DEFAULTS["strict"]
    if "threshold" in metrics.columns:
        rows = metrics[metrics["metric"] == "rate_recovered_a4"]["threshold"].dropna()
        rec = float(rows.iloc[0]) if len(rows) else rec
        rows = metrics[metrics["metric"] == "rate_recovered_a4_strict"]["threshold"].dropna()
        strict = float(rows.iloc[0]) if len(rows) else strict
    return rec, strict


def recovery_summary(metrics, threshold: float = DEFAULTS["recovered"],
                     by: Sequence[str] = ("d", "estimator")):
    """Per group: problems, fraction satisfying Assumption 4, fraction recovered overall,
    given Assumption 4 and given its violation, fraction reported not identifiable, and
    mean ``mcc_paper`` / ``amari``."""
    import pandas as pd

    wide = problems_wide(metrics)
    wide["recovered"] = _recovered(wide, threshold)
    for col in ("not_identifiable", "mcc_paper", "amari"):
        if col not in wide.columns:
            wide[col] = np.nan
    rows = []
    for key, g in wide.groupby(list(by), sort=True):
        key = key if isinstance(key, tuple) else (key,)
        a4 = g["a4_satisfied"].to_numpy(bool)
        rec = g["recovered"].to_numpy(bool)
        rows.append({**dict(zip(by, key, strict=True)), "problems": len(g),
                     "a4_fraction": a4.mean(), "recovered": rec.mean(),
                     "recovered_given_a4": rec[a4].mean() if a4.any() else np.nan,
                     "recovered_given_not_a4": rec[~a4].mean() if (~a4).any() else np.nan,
                     "not_identifiable": np.nan_to_num(g["not_identifiable"]).mean(),
                     "mean_mcc_paper": g["mcc_paper"].mean(), "mean_amari": g["amari"].mean()})
    return pd.DataFrame(rows)


def aggregate(paths: Sequence[str], recovered: float = DEFAULTS["recovered"],
              strict: float = DEFAULTS["strict"], experiment: str = EXPERIMENT):
    """Cell tables -> (metrics table with the summary rows appended, phase table)."""
    import pandas as pd

    from mncrl.experiment import aggregate as concat

    problems = concat(paths)
    summary = claim_rows(problems, recovered, strict, experiment)
    full = pd.concat([problems, summary], ignore_index=True, sort=False)
    return full, phase_table(problems, recovered, strict)


# --------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------


def _load_json(text: str) -> dict:
    from pathlib import Path

    if text.startswith("@"):
        path = Path(text[1:])
        _need(path.exists(), f"spec file not found: {path}")
        text = path.read_text()
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise MncrlError(f"--spec is not valid JSON: {exc}") from None


def _cmd_run(args) -> int:
    from mncrl.experiment import write_json, write_table

    spec = _load_json(args.spec)
    for key in ("experiment", "cell", "coverage_cell", "scenario", "estimators", "seeds"):
        _need(key in spec, f"--spec misses the key '{key}'")
    frame, info = run_cell(spec, progress=args.progress)
    if args.info:
        write_json(info, args.info)
    write_table(frame, args.out)
    statuses = frame.drop_duplicates(["design_id", "seed", "estimator"])["status"] \
        .value_counts().to_dict() if len(frame) else {}
    print(f"{spec['experiment']}/{spec['cell']}: {info['problems']} problems, "
          f"{len(frame)} rows in {info['seconds_total']:.1f} s; fits: {statuses}; "
          f"timings: " + ", ".join(f"{k} {v:.1f} s" for k, v in info["timings"].items()))
    return 0


def _cmd_aggregate(args) -> int:
    from mncrl.experiment import summarise, write_table

    spec = _load_json(args.spec) if args.spec else {}
    full, phase = aggregate(args.tables, float(spec.get("recovered", DEFAULTS["recovered"])),
                            float(spec.get("strict", DEFAULTS["strict"])),
                            spec.get("experiment", EXPERIMENT))
    write_table(full, args.out)
    if args.summary:
        write_table(summarise(full), args.summary)
    if args.phase:
        write_table(phase, args.phase)
    if args.designs:
        cells = [CoverageCell.from_dict(c) for c in spec.get("cells") or []]
        write_table(design_table(cells), args.designs)
    print(f"{args.out}: {len(full)} rows from {len(args.tables)} cells; phase table "
          f"{len(phase)} rows")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m mncrl.coverage",
                                     description="Identifiability maps: run and aggregate the "
                                                 "coverage experiment's cells.")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run one coverage cell (all designs, seeds, estimators)")
    run.add_argument("--spec", required=True, help="cell spec as JSON or @FILE (cell_spec())")
    run.add_argument("--out", required=True, help="tidy metrics table of the cell")
    run.add_argument("--info", help="JSON sidecar: designs, per-fit status, timings")
    run.add_argument("--progress", action="store_true", help="print progress to stderr")
    run.set_defaults(func=_cmd_run)
    agg = sub.add_parser("aggregate", help="cell tables -> metrics, summary, phase, designs")
    agg.add_argument("tables", nargs="+", help="cell tables")
    agg.add_argument("--spec", help="aggregate_spec() as JSON or @FILE (thresholds, cells)")
    agg.add_argument("--out", required=True, help="metrics table (problem + summary rows)")
    agg.add_argument("--summary", help="mean/SE per cell x estimator x metric")
    agg.add_argument("--phase", help="phase-diagram table (phase_table())")
    agg.add_argument("--designs", help="one row per design: its Assumption-4 report")
    agg.set_defaults(func=_cmd_aggregate)
    return parser


def main(argv: list[str] | None = None) -> int:
    from mncrl.experiment import run_module_cli

    return run_module_cli(build_parser(), "mncrl.coverage", argv)


if __name__ == "__main__":
    sys.exit(main())


__all__ = ["CLAIM_METRICS", "DEFAULTS", "K_RULES", "RECOVERY_METRICS", "STRUCTURED",
           "CoverageCell", "Design", "DesignReport", "NoiseCache", "Settings", "Subsample",
           "a4_probability", "aggregate", "aggregate_spec", "assumption4_batch",
           "cell_resources", "cell_spec", "cell_tables", "coverage_experiments",
           "coverage_figures", "spec_json",
           "claim_rows", "column_terms", "coverage_cells", "design_report", "design_scenario",
           "design_table", "env_counts", "experiment_cells", "latent_recovery", "phase_table",
           "prepare", "problems_wide", "random_designs", "recovery_summary", "run_cell", "sample_random_targets",
           "settings", "sparsities", "structured_designs", "theory_table", "thresholds_of",
           "unidentifiable_latents", "unseparated_mask"]
