"""Tidy tables on disk: atomic writes, reading, concatenation and summaries.

A metrics table has one row per (cell, seed or problem, estimator, metric) with the columns
``experiment``, ``cell``, the scenario/design columns of the kind, ``seed``, ``estimator``,
``estimator_name``, ``preset``, ``role``, ``scored_on``, ``metric``, ``value``, ``seconds``
(wall time of the fit) and ``status`` (``ok`` or the error that stopped the fit).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from mncrl.data import atomic_write
from mncrl.errors import MncrlError


def remove_stale_temps(path: str | Path) -> None:
    """Delete temp files a killed run left next to ``path`` (``.<name>.*`` from atomic_write)."""
    path = Path(path)
    if path.parent.is_dir():
        for tmp in path.parent.glob(f".{path.name}.*"):
            tmp.unlink(missing_ok=True)


def write_table(frame: pd.DataFrame, path: str | Path) -> None:
    """Write a tidy table atomically (.csv, or .parquet)."""
    path = Path(path)
    remove_stale_temps(path)
    if path.suffix == ".parquet":
        atomic_write(path, lambda tmp: frame.to_parquet(tmp, index=False))
    else:
        atomic_write(path, lambda tmp: frame.to_csv(tmp, index=False))


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)


def write_json(data, path: str | Path) -> None:
    """Write JSON atomically (indented, keys sorted; numpy values converted)."""
    path = Path(path)
    remove_stale_temps(path)
    text = json.dumps(data, indent=1, sort_keys=True, default=_json_default) + "\n"
    atomic_write(path, lambda tmp: Path(tmp).write_text(text))


def spec_json(spec: Mapping) -> str:
    """A spec as compact, key-sorted JSON (a rule's ``params``: a changed spec reruns)."""
    return json.dumps(spec, sort_keys=True, separators=(",", ":"))


def read_table(path: str | Path) -> pd.DataFrame:
    path = Path(path)
    if not path.exists():
        raise MncrlError(f"metrics table not found: {path}")
    return pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)


def concat(paths: Sequence[str | Path]) -> pd.DataFrame:
    """Concatenate cell tables (in the given order) into one experiment table."""
    if not paths:
        raise MncrlError("aggregate needs at least one cell table")
    return pd.concat([read_table(p) for p in paths], ignore_index=True, sort=False)


#: Columns that index points within a cell's rows (extrapolation: the position ``s`` on the line
#: of actions): summaries keep them apart.
POINT_COLUMNS = ("s",)


def summarise(frame: pd.DataFrame) -> pd.DataFrame:
    """Mean, standard error (ddof=1) and n_seeds over seeds per cell x estimator x metric (x
    point, for tables with :data:`POINT_COLUMNS`)."""
    group = ["experiment", "cell", "estimator", "metric"]
    group += [c for c in POINT_COLUMNS if c in frame.columns]
    g = frame.groupby(group, sort=False, dropna=False)["value"]
    out = g.agg(mean="mean", sd="std", n_seeds="count").reset_index()
    out["se"] = out["sd"] / np.sqrt(out["n_seeds"].clip(lower=1))
    drop = ("seed", "value", "seconds", "status", "metric", "estimator", *POINT_COLUMNS)
    keep = [c for c in frame.columns if c not in drop]
    points = [c for c in POINT_COLUMNS if c in frame.columns]
    first = frame.drop_duplicates(subset=group)[keep + ["estimator", "metric", *points]]
    merged = first.merge(out, on=group, how="left")
    secs = (
        frame.groupby(group, sort=False, dropna=False)["seconds"]
        .mean()
        .rename("seconds")
        .reset_index()
    )
    return merged.merge(secs, on=group, how="left")


__all__ = [
    "concat",
    "read_table",
    "remove_stale_temps",
    "spec_json",
    "summarise",
    "write_json",
    "write_table",
]
