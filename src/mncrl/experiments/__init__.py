"""Experiments: named blocks of the config, run one cell (one Snakemake job) at a time.

Every experiment has a *kind*, one module each, all with the same interface:

- ``cells(config, name)``: the cells (:class:`~mncrl.experiments.core.Cell`), one job each;
- ``cell_spec(config, name, cell)``: everything one job needs, as plain JSON data;
- ``run_cell(spec)``: (tidy metrics DataFrame, info dict) of one cell;
- ``aggregate(problems, experiment_spec)``: the experiment's metrics table from its cells';
- ``experiment_spec(config, name)``, ``job_cost(spec)`` and ``TABLES`` (derived tables such
  as the coverage phase diagram: name -> function of the metrics table and experiment spec).

The kind is picked from the experiment's config block: a block with a ``coverage`` mapping is
of kind ``coverage``, one with an ``extrapolation`` mapping of kind ``extrapolation`` (its own
action scenario and grid; no ``scenario`` or ``estimators``), one with a ``climate`` mapping of
kind ``climate`` (its own mode scenario and grid; ``estimators`` but no ``scenario``); any other
is a ``grid``. A kind module may set ``REQUIRED_KEYS`` (the experiment keys it needs; default
``scenario`` and ``estimators``). Adding a kind = one module + one line in :data:`KINDS` + its
block in ``config/schema.yaml``.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from types import ModuleType

from mncrl import estimators
from mncrl.errors import MncrlError
from mncrl.experiments import core
from mncrl.simulation import Scenario

#: kind -> module; every kind but ``grid`` is selected by a config block of its own name.
KINDS = {
    "grid": "mncrl.experiments.grid",
    "coverage": "mncrl.experiments.coverage",
    "extrapolation": "mncrl.experiments.extrapolation",
    "climate": "mncrl.experiments.climate",
}


def kind_of(block: Mapping) -> str:
    """The kind of an experiment's config block."""
    return next((k for k in KINDS if k != "grid" and k in block), "grid")


def module(kind: str) -> ModuleType:
    if kind not in KINDS:
        raise MncrlError(f"unknown experiment kind '{kind}'; kinds: {', '.join(KINDS)}")
    return importlib.import_module(KINDS[kind])


def module_of(config: Mapping, name: str) -> ModuleType:
    return module(kind_of(core.experiment_block(config, name)))


def names(config: Mapping) -> list[str]:
    return list(config["experiments"])


def cells(config: Mapping, name: str) -> list[core.Cell]:
    return module_of(config, name).cells(config, name)


def cell_spec(config: Mapping, name: str, cell: str) -> dict:
    return module_of(config, name).cell_spec(config, name, cell)


def experiment_spec(config: Mapping, name: str) -> dict:
    return module_of(config, name).experiment_spec(config, name)


def derived_tables(config: Mapping, name: str) -> list[str]:
    """Names of the extra tables (besides metrics and summary) the experiment writes."""
    return list(module_of(config, name).TABLES)


def job_cost(spec: Mapping) -> tuple[int, int]:
    """(mem_mb, runtime in minutes) of one cell's job (generous: clusters kill overruns)."""
    return module(spec["kind"]).job_cost(spec)


def run_cell(spec: Mapping, **options):
    return module(spec["kind"]).run_cell(spec, **options)


def aggregate(problems, spec: Mapping):
    return module(spec["kind"]).aggregate(problems, spec)


def derived_table(table: str, metrics, spec: Mapping):
    tables = module(spec["kind"]).TABLES
    if table not in tables:
        raise MncrlError(
            f"experiment kind '{spec['kind']}' has no table '{table}'; tables: "
            f"{', '.join(tables) or '(none)'}"
        )
    return tables[table](metrics, spec)


def check_config(config: Mapping) -> None:
    """Checks a JSON schema cannot express; MncrlError naming the key otherwise.

    Every estimator label names a registered estimator with an existing preset and valid
    overrides, every cell builds a valid Scenario with a unique id, every figure reads
    configured experiments.
    """
    for label, entry in config["estimators"].items():
        try:
            estimators.resolve(entry["estimator"], entry["preset"], entry["overrides"])
        except MncrlError as exc:
            raise MncrlError(f"estimators.{label}: {exc}") from None
    for name, block in config["experiments"].items():
        kind = kind_of(block)
        required = getattr(module(kind), "REQUIRED_KEYS", ("scenario", "estimators"))
        missing = [key for key in required if key not in block]
        if missing:
            raise MncrlError(f"experiments.{name}: '{missing[0]}' is required")
        if "estimators" in required:
            core.estimator_entries(config, block["estimators"])
        seen = set()
        for cell in cells(config, name):  # each kind checks its cells' scenarios
            if cell.id in seen:
                raise MncrlError(f"experiments.{name}.grid: two cells share the id '{cell.id}'")
            seen.add(cell.id)
            if "scenario" not in required:
                continue
            try:
                Scenario.from_dict(cell.scenario)
            except MncrlError as exc:
                raise MncrlError(f"experiments.{name} (cell {cell.id}): {exc}") from None
    for fig, entry in config["figures"].items():
        for exp in entry["experiments"]:
            if exp not in config["experiments"]:
                raise MncrlError(
                    f"figures.{fig}.experiments: unknown experiment '{exp}'; "
                    f"configured: {', '.join(config['experiments'])}"
                )


__all__ = [
    "KINDS",
    "aggregate",
    "cell_spec",
    "cells",
    "check_config",
    "derived_table",
    "derived_tables",
    "experiment_spec",
    "job_cost",
    "kind_of",
    "module",
    "module_of",
    "names",
    "run_cell",
]
