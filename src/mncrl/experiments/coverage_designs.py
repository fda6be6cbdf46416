"""The design grid of the coverage experiment: its settings, the intervention designs (random
and structured), how they are grouped into cells (jobs), and each design's Assumption-4 report.

Random designs: every environment intervenes on k nodes drawn uniformly (design ``random``,
design seed r); structured designs: ``leave-one-out``, ``atomic``, ``separating``,
``separating-bits``, ``blocks`` (size 2, d >= 4). A latent j is *unidentifiable* in a design
when some unseparated ordered pair (j, i) exists (every environment that intervenes on j also
intervenes on i).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from mncrl.experiments import core
from mncrl.interventions import make_design, unseparated_mask
from mncrl.simulation import rng_for

KIND = "coverage"
#: K rules: name -> K as a function of d.
K_RULES = {
    "2log2d": lambda d: max(1, math.ceil(2 * math.log2(d))),
    "d": lambda d: d,
    "2d": lambda d: 2 * d,
}
#: ``draws_per_job: auto`` splits a (d, K) cell into jobs of at most this much work, measured
#: as design seeds x sparsities x (K + 1) x d^2 (proportional to the data each job simulates).
JOB_WORK = 1.25e6

# --------------------------------------------------------------------------------------------
# Settings
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Subsample:
    """Run an (expensive) estimator only on random designs with design seed < ``designs`` and
    on ``seeds`` (None = no restriction); ``by_d``: (d, designs, seeds) triples that replace
    the defaults at that d. Structured designs always run on every seed, at every d in
    ``only_d`` (None = every d; outside it the estimator does not run at all)."""

    designs: int | None = None
    seeds: tuple[int, ...] | None = None
    by_d: tuple = ()
    only_d: tuple[int, ...] | None = None

    def limits(self, d: int) -> tuple[int | None, tuple[int, ...] | None]:
        for dd, designs, seeds in self.by_d:
            if dd == d:
                return designs, seeds
        return self.designs, self.seeds

    def runs(self, design: Design, seed: int) -> bool:
        if self.only_d is not None and design.d not in self.only_d:
            return False
        if design.family != "random":
            return True
        designs, seeds = self.limits(design.d)
        if seeds is not None and seed not in seeds:
            return False
        return designs is None or design.draw < designs

    def to_dict(self) -> dict:
        return {
            "designs": self.designs,
            "seeds": _seed_list(self.seeds),
            "by_d": [[d, n, _seed_list(x)] for d, n, x in self.by_d],
            "d": _seed_list(self.only_d),
        }

    @classmethod
    def from_dict(cls, v: Mapping) -> Subsample:
        return cls(
            designs=v["designs"],
            seeds=_seed_tuple(v["seeds"]),
            by_d=tuple((int(d), n, _seed_tuple(x)) for d, n, x in v["by_d"]),
            only_d=_seed_tuple(v.get("d")),
        )

    @classmethod
    def from_config(cls, entry: Mapping) -> Subsample:
        """From ``{designs: N | {d: N}, seeds: [..] | {d: [..]}, d: [..] | null}``
        (schema-validated)."""
        designs, designs_d = _split_by_d(entry["designs"])
        seeds, seeds_d = _split_by_d(entry["seeds"])
        ds = sorted(set(designs_d) | set(seeds_d))
        triples = tuple(
            (d, designs_d.get(d, designs), _seed_tuple(seeds_d.get(d, seeds))) for d in ds
        )
        only_d = _seed_tuple(entry.get("d"))
        return cls(designs=designs, seeds=_seed_tuple(seeds), by_d=triples, only_d=only_d)


def _seed_list(x):
    return None if x is None else list(x)


def _seed_tuple(x):
    return None if x is None else tuple(int(s) for s in x)


def _split_by_d(value) -> tuple:
    """(default, {d: value}) of a value that is either one value or a mapping d -> value."""
    if isinstance(value, Mapping):
        return None, {int(k): v for k, v in value.items()}
    return value, {}


@dataclass(frozen=True)
class Settings:
    """The experiment's ``coverage`` block (validated and defaulted by the config schema)."""

    d: tuple[int, ...]
    K: tuple
    k: str | tuple[int, ...]
    designs: int
    structured: tuple[str, ...]
    recovered: float
    strict: float
    subsample: tuple = ()  # (label, Subsample) pairs
    draws_per_job: int | str = "auto"

    @classmethod
    def from_block(cls, block: Mapping) -> Settings:
        ks = block["k"] if block["k"] == "all" else tuple(int(k) for k in block["k"])
        subsample = tuple(
            (str(label), Subsample.from_config(entry))
            for label, entry in block["subsample"].items()
        )
        return cls(
            d=tuple(int(d) for d in block["d"]),
            K=tuple(block["K"]),
            k=ks,
            designs=int(block["designs"]),
            structured=tuple(block["structured"]),
            recovered=float(block["recovered"]),
            strict=float(block["strict"]),
            subsample=subsample,
            draws_per_job=block["draws_per_job"],
        )


def settings(config: Mapping, name: str) -> Settings:
    return Settings.from_block(core.experiment_block(config, name)[KIND])


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
    """One intervention design of the grid: ``family`` is ``random`` or a structured design
    name; ``draw`` is the design seed of a random design (0 for structured ones) and also
    selects the SCM draw."""

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
        return self.family + "".join(f"_{k}-{v}" for k, v in self.params)

    @property
    def data_cell(self) -> str:
        """The name the data seeds are derived from (shared by designs with the same draw)."""
        return f"d-{self.d}_r-{self.draw}"

    def scenario_fields(self) -> dict:
        """The scenario keys that select this design."""
        if self.family == "random":
            return {
                "d": self.d,
                "design": "random",
                "design_params": {"K": self.K, "k": self.k},
                "design_seed": self.draw,
            }
        return {
            "d": self.d,
            "design": self.family,
            "design_params": dict(self.params),
            "design_seed": None,
        }

    def targets(self) -> np.ndarray:
        """The (K x d) bool target matrix, exactly as the simulator draws it."""
        f = self.scenario_fields()
        return make_design(f["design"], self.d, rng_for(self.draw, "design"), **f["design_params"])


def structured_designs(d: int, names: Sequence[str]) -> list[Design]:
    """The structured designs at dimension d (``blocks`` with size 2; skipped when d < 4)."""
    out = []
    for name in names:
        params = (("size", 2),) if name == "blocks" else ()
        if name == "blocks" and d < 4:
            continue
        T = make_design(name, d, 0, **dict(params))
        ks = T.sum(axis=1)
        k = int(ks[0]) if np.all(ks == ks[0]) else None
        out.append(Design(d=d, family=name, K=T.shape[0], k=k, draw=0, params=params))
    return out


@dataclass(frozen=True)
class CoverageCell:
    """One job: the random designs of one (d, K) with design seeds ``draw_start ..
    draw_start + draws - 1`` (all sparsities), or the structured designs of d (K is None)."""

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
        return [
            Design(d=self.d, family="random", K=self.K, k=k, draw=r)
            for r in range(self.draw_start, self.draw_start + self.draws)
            for k in self.ks
        ]

    def to_dict(self) -> dict:
        return {
            "id": self.id,
            "d": self.d,
            "K": self.K,
            "ks": list(self.ks),
            "draws": self.draws,
            "draw_start": self.draw_start,
            "structured": list(self.structured),
        }

    @classmethod
    def from_dict(cls, v: Mapping) -> CoverageCell:
        return cls(
            id=str(v["id"]),
            d=int(v["d"]),
            K=None if v["K"] is None else int(v["K"]),
            ks=tuple(int(k) for k in v["ks"]),
            draws=int(v["draws"]),
            structured=tuple(v["structured"]),
            draw_start=int(v["draw_start"]),
        )


def draws_per_job(s: Settings, d: int, K: int, n_ks: int) -> int:
    """Design seeds per job of a (d, K) cell (``auto``: at most :data:`JOB_WORK` per job, the
    cell split into parts of equal size)."""
    if s.designs <= 0:
        return 1
    if s.draws_per_job != "auto":
        return min(int(s.draws_per_job), s.designs)
    most = max(1, int(JOB_WORK // (max(n_ks, 1) * (K + 1) * d * d)))
    parts = math.ceil(s.designs / most)
    return math.ceil(s.designs / parts)


def coverage_cells(s: Settings) -> list[CoverageCell]:
    """Every cell: per d, the (d, K) cells of random designs (all k; split into several jobs
    by design seed when large, see :func:`draws_per_job`), then the structured one."""
    cells_ = []
    for d in s.d:
        ks = tuple(sparsities(d, s.k))
        if s.designs > 0 and ks:
            for K in env_counts(d, s.K):
                step = draws_per_job(s, d, K, len(ks))
                for lo in range(0, s.designs, step):
                    n = min(step, s.designs - lo)
                    cid = f"d-{d}_K-{K}" if n == s.designs else f"d-{d}_K-{K}_r-{lo}-{lo + n - 1}"
                    cells_.append(CoverageCell(id=cid, d=d, K=K, ks=ks, draws=n, draw_start=lo))
        structured = tuple(n for n in s.structured if n != "blocks" or d >= 4)
        if structured:
            cells_.append(CoverageCell(id=f"d-{d}_structured", d=d, K=None, structured=structured))
    return cells_


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
        t, dz = self.targets_per_env, self.design
        return {
            "d": dz.d,
            "design": dz.family,
            "design_id": dz.id,
            "K": dz.K,
            "k": dz.k,
            "draw": dz.draw,
            "k_min": min(t),
            "k_max": max(t),
            "a4_satisfied": self.satisfied,
            "n_unseparated": len(self.unseparated),
            "n_unidentifiable": len(self.unidentifiable),
            "unseparated": ";".join(f"{j}>{i}" for j, i in self.unseparated),
            "unidentifiable": ";".join(str(j) for j in self.unidentifiable),
        }


def design_report(design: Design) -> DesignReport:
    T = design.targets()
    U = unseparated_mask(T)
    pairs = tuple((int(j), int(i)) for j, i in zip(*np.nonzero(U), strict=True))
    return DesignReport(
        design=design,
        satisfied=not pairs,
        unseparated=pairs,
        unidentifiable=tuple(int(j) for j in np.flatnonzero(U.any(axis=1))),
        targets_per_env=tuple(int(x) for x in T.sum(axis=1)),
    )


def design_table(spec: Mapping) -> pd.DataFrame:
    """One row per design of the experiment: its Assumption-4 report (no simulation)."""
    rows = []
    for cell in (CoverageCell.from_dict(c) for c in spec["cells"]):
        rows += [{"cell": cell.id, **design_report(dz).row()} for dz in cell.designs()]
    return pd.DataFrame(rows)


__all__ = [
    "K_RULES",
    "JOB_WORK",
    "CoverageCell",
    "Design",
    "DesignReport",
    "Settings",
    "Subsample",
    "coverage_cells",
    "design_report",
    "design_table",
    "draws_per_job",
    "env_counts",
    "settings",
    "sparsities",
    "structured_designs",
]
