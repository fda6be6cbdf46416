"""Experiments: named grids of scenarios x estimators x seeds, run one grid cell at a time.

The configuration (``config/config.yaml``, checked against ``config/schema.yaml``) has

- ``scenarios``: name -> base scenario (the keys of :class:`mncrl.simulation.Scenario`);
- ``estimators``: label -> ``{estimator, preset, overrides, role, display}``;
- ``experiments``: name -> ``{scenario, set, grid, estimators, seeds, test_fraction, metrics}``.

An experiment's *grid* maps scenario keys (or ``design_params.<name>``) to lists of values; its
cells are the cartesian product, in the order written. A cell's id names its grid point
(``d-30_mixing_seed-1``), so adding a value to a grid adds cells without renaming the others.

Randomness: every draw of a cell comes from an integer derived from ``(experiment, cell id,
seed, purpose)`` by a stable hash (:func:`stable_seed`): the data, the train/test split and
each estimator's initialisation. Results of a cell therefore depend only on its own
definition, never on which other cells exist or in which order they run.

One cell = simulate every seed -> split 75/25 (the same rows of every environment, as the
reference implementation) -> fit every estimator (all seeds of a chunk in one vmapped
``fit_batch`` call when the estimator has one) -> evaluate on the test rows -> tidy rows
(one per seed x estimator x metric). Estimators that use observational data (``ica``) get the
observational environment, which the scenario appends last when ``observational: true``; it is
never passed to the other estimators. Following the paper, such estimators are scored on the
observational test rows (column ``scored_on``).

Command line (used by the Snakemake rules)::

    python -m mncrl.experiment cells CONFIG.yaml [--experiment NAME]
    python -m mncrl.experiment run --spec JSON_OR_@FILE --out CELL.csv --info CELL.json
    python -m mncrl.experiment aggregate CELL.csv ... --out metrics.csv --summary summary.csv
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import math
import re
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mncrl.errors import ConvergenceError, MncrlError, NotIdentifiableError

#: Failures that depend on the data draw: recorded (status column, NaN values), not fatal.
#: Any other error (a bad hyper-parameter, bad data) stops the job with its message.
FIT_FAILURES = (NotIdentifiableError, ConvergenceError)

#: Metrics every cell records (``experiments.<name>.metrics`` can restrict the list).
METRICS = ("mcc", "mcc_paper", "mcc_spearman", "amari", "target_f1")
#: Columns of a tidy metrics table, in order; scenario columns follow ``cell``.
ID_COLUMNS = ("experiment", "cell")
ROW_COLUMNS = ("n_envs", "a4_satisfied", "seed", "estimator", "estimator_name", "preset", "role",
               "scored_on", "metric", "value", "seconds", "status")
EXPERIMENT_DEFAULTS = {"set": {}, "grid": {}, "test_fraction": 0.25, "metrics": list(METRICS)}
ROLES = ("paper", "baseline", "ours", "extension")


# --------------------------------------------------------------------------------------------
# Stable ids and seeds
# --------------------------------------------------------------------------------------------


def stable_seed(*parts) -> int:
    """A 31-bit integer seed from any sequence of strings/ints (stable across runs/platforms)."""
    text = "\x1f".join(str(p) for p in parts)
    digest = hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") & 0x7FFFFFFF


def _format_value(value) -> str:
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, float):
        text = repr(value)
    elif isinstance(value, str | int):
        text = str(value)
    else:
        text = json.dumps(value, sort_keys=True, separators=(",", ""))
    return re.sub(r"[^A-Za-z0-9.+-]+", "-", text).strip("-") or "x"


def cell_id(point: Mapping) -> str:
    """The id of a grid point: ``key-value`` pairs joined by ``_`` (``base`` for no grid)."""
    if not point:
        return "base"
    return "_".join(f"{key}-{_format_value(value)}" for key, value in point.items())


# --------------------------------------------------------------------------------------------
# Config -> cells -> cell specs
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Cell:
    """One grid point of one experiment: ``scenario`` is the full scenario dict of the cell."""

    experiment: str
    id: str
    point: dict
    scenario: dict


def grid_points(grid: Mapping) -> list[dict]:
    """Cartesian product of ``grid`` (key -> list of values), first key varying slowest."""
    keys = list(grid)
    for key in keys:
        values = grid[key]
        if not isinstance(values, list | tuple) or len(values) == 0:
            raise MncrlError(f"grid key '{key}' needs a non-empty list of values, got {values!r}")
    return [dict(zip(keys, combo, strict=True))
            for combo in itertools.product(*(grid[k] for k in keys))]


def apply_point(base: Mapping, point: Mapping) -> dict:
    """``base`` with the grid point's values set (``design_params.k`` sets a design parameter)."""
    scenario = json.loads(json.dumps(dict(base)))  # deep copy of plain data
    for key, value in point.items():
        if key.startswith("design_params."):
            params = dict(scenario.get("design_params") or {})
            params[key.split(".", 1)[1]] = value
            scenario["design_params"] = params
        else:
            scenario[key] = value
    return scenario


def experiment_block(config: Mapping, name: str) -> dict:
    """The experiment's config block with defaults filled in."""
    experiments = config.get("experiments") or {}
    if name not in experiments:
        raise MncrlError(f"unknown experiment '{name}'; configured: {', '.join(experiments)}")
    return {**EXPERIMENT_DEFAULTS, **experiments[name]}


def experiment_cells(config: Mapping, name: str) -> list[Cell]:
    """Every cell of experiment ``name``, in grid order."""
    block = experiment_block(config, name)
    scenarios = config.get("scenarios") or {}
    base_name = block["scenario"]
    if base_name not in scenarios:
        raise MncrlError(f"experiments.{name}.scenario: unknown scenario '{base_name}'; "
                         f"defined: {', '.join(scenarios)}")
    base = {**scenarios[base_name], **(block.get("set") or {})}
    if "coverage" in block:  # identifiability maps (issue #5): cells from mncrl.coverage
        from mncrl import coverage

        return coverage.experiment_cells(config, name)
    cells = []
    for point in grid_points(block.get("grid") or {}):
        cells.append(Cell(experiment=name, id=cell_id(point), point=point,
                          scenario=apply_point(base, point)))
    return cells


def estimator_entries(config: Mapping, labels: Sequence[str]) -> list[dict]:
    """The estimator entries (with their label) of a list of labels."""
    table = config.get("estimators") or {}
    entries = []
    for label in labels:
        if label not in table:
            raise MncrlError(f"unknown estimator label '{label}'; defined in 'estimators': "
                             f"{', '.join(table)}")
        entry = {"preset": None, "overrides": {}, "role": "ours", **table[label]}
        entry.pop("display", None)  # presentation only: renaming must not rerun cells
        entries.append({"label": label, **entry})
    return entries


def cell_spec(config: Mapping, experiment: str, cell: str) -> dict:
    """Everything one ``run`` job needs, as plain JSON-serialisable data."""
    cells = {c.id: c for c in experiment_cells(config, experiment)}
    if cell not in cells:
        raise MncrlError(f"experiment '{experiment}' has no cell '{cell}'; cells: "
                         f"{', '.join(cells)}")
    block = experiment_block(config, experiment)
    c = cells[cell]
    return {
        "experiment": experiment,
        "cell": cell,
        "point": c.point,
        "scenario": c.scenario,
        "estimators": estimator_entries(config, block["estimators"]),
        "seeds": [int(s) for s in block["seeds"]],
        "test_fraction": float(block["test_fraction"]),
        "metrics": list(block["metrics"]),
        "max_batch_mb": int(config.get("max_batch_mb", 3000)),
    }


def check_config(config: Mapping) -> None:
    """Checks a JSON schema cannot express; MncrlError naming the key otherwise.

    Every cell must build a valid Scenario, every estimator label must exist and name a
    registered estimator with an existing preset, every figure must read configured experiments.
    """
    from mncrl import estimators
    from mncrl.simulation import Scenario

    for label, entry in (config.get("estimators") or {}).items():
        est = _get_estimator(estimators, entry.get("estimator"), f"estimators.{label}.estimator")
        try:
            estimators.resolve_hparams(est, entry.get("preset"), entry.get("overrides"))
        except MncrlError as exc:
            raise MncrlError(f"estimators.{label}.preset: {exc}") from None
    for name, block in (config.get("experiments") or {}).items():
        estimator_entries(config, block.get("estimators") or [])
        seen = set()
        for cell in experiment_cells(config, name):
            if cell.id in seen:
                raise MncrlError(f"experiments.{name}.grid: two cells share the id '{cell.id}'")
            seen.add(cell.id)
            try:
                Scenario.from_dict(cell.scenario)
            except MncrlError as exc:
                where = f"experiments.{name} (cell {cell.id})"
                raise MncrlError(f"{where}: {exc}") from None
    experiments = config.get("experiments") or {}
    for fig, entry in (config.get("figures") or {}).items():
        for exp in entry.get("experiments") or []:
            if exp not in experiments:
                raise MncrlError(f"figures.{fig}.experiments: unknown experiment '{exp}'; "
                                 f"configured: {', '.join(experiments)}")


def _get_estimator(registry, name, where):
    try:
        return registry.get(name)
    except MncrlError as exc:
        raise MncrlError(f"{where}: {exc}") from None
    except ImportError as exc:
        raise MncrlError(f"{where}: estimator '{name}' is registered but cannot be imported "
                         f"({exc})") from None


def format_schema_error(error) -> str:
    """One line for a ``jsonschema.ValidationError``: where, what, and the allowed values."""
    where = ".".join(str(p) for p in error.absolute_path) or "(top level)"
    validator = error.validator
    if validator == "additionalProperties":
        allowed = sorted(error.schema.get("properties") or {})
        patterns = list(error.schema.get("patternProperties") or {})
        extra = sorted(set(error.instance) - set(allowed))
        extra = [k for k in extra if not any(re.search(p, k) for p in patterns)]
        readable = [re.sub(r"\[.*$", "<name>", p.lstrip("^").replace("\\.", ".")) for p in patterns]
        allowed_text = ", ".join(allowed + readable)
        return f"config: unknown key '{extra[0] if extra else '?'}' in {where}; allowed keys: " \
               f"{allowed_text}"
    if validator == "enum":
        allowed = ", ".join(str(v) for v in error.validator_value)
        return f"config: {where} = {error.instance!r} is not allowed; allowed values: {allowed}"
    if validator in ("minimum", "exclusiveMinimum", "maximum", "exclusiveMaximum"):
        op = {"minimum": ">=", "exclusiveMinimum": ">", "maximum": "<=",
              "exclusiveMaximum": "<"}[validator]
        return f"config: {where} = {error.instance!r}; must be {op} {error.validator_value}"
    if validator == "required":
        return f"config: {where}: {error.message}"
    return f"config: {where}: {error.message}"


# --------------------------------------------------------------------------------------------
# Running one cell
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Prepared:
    """The data of one seed of a cell, split and partitioned for the estimators."""

    seed: int
    train_envs: list          # interventional environments only (train rows)
    test_X: np.ndarray        # pooled interventional test rows, sample-major (reference order)
    test_Z: np.ndarray
    obs_train: np.ndarray | None
    obs_test_X: np.ndarray | None
    obs_test_Z: np.ndarray | None
    L: np.ndarray
    targets: np.ndarray       # K x d, interventional environments


def interleave(blocks: Sequence[np.ndarray]) -> np.ndarray:
    """Pool per-environment blocks of equal length sample-major: row i of env 0, of env 1, ...

    This is the order of the reference implementation ([n, envs, d] reshaped), which matters
    for the chunked ``mcc_paper``; blocks of unequal length are concatenated instead.
    """
    if len({b.shape[0] for b in blocks}) != 1:
        return np.concatenate(blocks, axis=0)
    return np.stack(blocks, axis=1).reshape(-1, blocks[0].shape[1])


def prepare(scenario, spec: Mapping, seed: int) -> Prepared:
    """Simulate the seed's data set, split it and separate the observational environment."""
    from mncrl.simulation import simulate, train_test_split

    exp, cell = spec["experiment"], spec["cell"]
    ds = simulate(scenario, stable_seed(exp, cell, seed, "data"))
    train, test = train_test_split(ds, stable_seed(exp, cell, seed, "split"),
                                   spec.get("test_fraction", 0.25), same_rows=True)
    targets = np.asarray(ds.targets, dtype=bool)
    K = targets.shape[0] - int(scenario.observational)
    tr_X = [train.X[train.env == k] for k in range(targets.shape[0])]
    te_X = [test.X[test.env == k] for k in range(targets.shape[0])]
    te_Z = [test.Z[test.env == k] for k in range(targets.shape[0])]
    has_obs = bool(scenario.observational)
    return Prepared(
        seed=int(seed), train_envs=tr_X[:K], test_X=interleave(te_X[:K]),
        test_Z=interleave(te_Z[:K]),
        obs_train=tr_X[K] if has_obs else None,
        obs_test_X=te_X[K] if has_obs else None,
        obs_test_Z=te_Z[K] if has_obs else None,
        L=np.asarray(ds.L), targets=targets[:K])


def seeds_per_chunk(scenario, n_seeds: int, max_batch_mb: int) -> int:
    """How many seeds fit in memory at once (data, split copies and the estimator's copy)."""
    from mncrl.simulation import design_matrix

    K = design_matrix(scenario, 0).shape[0]
    itemsize = np.dtype(scenario.dtype).itemsize
    per_seed = 3 * K * scenario.n * (scenario.m_obs + scenario.d) * itemsize / 2**20
    return int(max(1, min(n_seeds, max_batch_mb // max(per_seed, 1))))


@dataclass(frozen=True)
class Outcome:
    """A fit, or the error that prevented it, for one seed."""

    fit: object | None
    seconds: float
    error: Exception | None = None


def _fit_one(est, envs, key, latent_dim, hparams, observational=None) -> Outcome:
    kwargs = dict(hparams)
    if observational is not None:
        kwargs["observational"] = observational
    start = time.perf_counter()
    try:
        fit = est.fit(envs, key=key, latent_dim=latent_dim, **kwargs)
    except FIT_FAILURES as exc:
        return Outcome(None, time.perf_counter() - start, exc)
    return Outcome(fit, time.perf_counter() - start)


def fit_chunk(est, hparams: Mapping, prepared: Sequence[Prepared], keys: Sequence[int],
              latent_dim: int) -> list[Outcome]:
    """Fit one estimator on every seed of a chunk; one vmapped call when possible.

    ``seconds`` of a batched fit is the batch's wall time divided by the number of seeds.
    If the batched call raises, the seeds are refitted one by one to tell which ones fail.
    """
    use_obs = est.needs_observational and prepared[0].obs_train is not None
    if est.fit_batch is not None and len(prepared) > 1 and not use_obs:
        start = time.perf_counter()
        try:
            fits = est.fit_batch([p.train_envs for p in prepared], list(keys),
                                 latent_dim=latent_dim, **hparams)
        except FIT_FAILURES:
            pass
        else:
            per_seed = (time.perf_counter() - start) / len(prepared)
            return [Outcome(f, per_seed) for f in fits]
    return [_fit_one(est, p.train_envs, k, latent_dim, hparams,
                     observational=p.obs_train if use_obs else None)
            for p, k in zip(prepared, keys, strict=True)]


def evaluate_fit(fit, prepared: Prepared, scored_on: str, metrics: Sequence[str]) -> dict:
    """The requested metrics of a fit on the test rows (observational ones for ``scored_on``)."""
    from mncrl.metrics import evaluate

    if scored_on == "observational":
        X, Z = prepared.obs_test_X, prepared.obs_test_Z
        true_t = est_t = None
    else:
        X, Z = prepared.test_X, prepared.test_Z
        true_t, est_t = prepared.targets, fit.targets
    W = np.asarray(fit.unmixing, dtype=np.float64)
    Zhat = np.asarray(X, dtype=np.float64) @ W
    values = evaluate(Z=np.asarray(Z, dtype=np.float64), Zhat=Zhat, L=prepared.L, W=W,
                      true_targets=true_t, est_targets=est_t)
    return {m: float(values[m]) for m in metrics if m in values and values[m] is not None}


def _scenario_columns(scenario) -> dict:
    out = {}
    for key, value in scenario.to_dict().items():
        if key == "design_params":
            for name, v in sorted(value.items()):
                out[f"design_params.{name}"] = v if np.isscalar(v) else json.dumps(v)
        elif value is None or isinstance(value, bool | int | float | str):
            out[key] = value
    return out


def _json_scalars(info: Mapping) -> dict:
    out = {}
    for key, value in (info or {}).items():
        if isinstance(value, np.generic):
            value = value.item()
        if isinstance(value, bool | int | str) or value is None:
            out[key] = value
        elif isinstance(value, float):
            out[key] = value if math.isfinite(value) else str(value)
    return out


def _fit_record(entry: Mapping, seed: int, out: Outcome, status: str) -> dict:
    return {"seed": seed, "estimator": entry["label"], "status": status,
            "message": None if out.error is None else str(out.error), "seconds": out.seconds,
            "info": {} if out.fit is None else _json_scalars(out.fit.info)}


def run_cell(spec: Mapping):
    """Run one cell; returns (tidy DataFrame, info dict for the JSON sidecar)."""
    import pandas as pd

    from mncrl import estimators
    from mncrl.interventions import assumption4
    from mncrl.simulation import Scenario

    scenario = Scenario.from_dict(spec["scenario"])
    exp, cell, seeds = spec["experiment"], spec["cell"], list(spec["seeds"])
    metrics = list(spec.get("metrics") or METRICS)
    entries = spec["estimators"]
    resolved = []
    for entry in entries:
        est = estimators.get(entry["estimator"])
        hp = estimators.resolve_hparams(est, entry.get("preset"), entry.get("overrides"))
        resolved.append((entry, est, hp))

    base_cols = {"experiment": exp, "cell": cell, **_scenario_columns(scenario)}
    rows, fits_info = [], []
    chunk = seeds_per_chunk(scenario, len(seeds), spec.get("max_batch_mb", 3000))
    design_ok: dict[int, bool] = {}  # per seed: random designs can differ between seeds
    for start in range(0, len(seeds), chunk):
        prepared = [prepare(scenario, spec, s) for s in seeds[start:start + chunk]]
        design_ok.update({p.seed: bool(assumption4(p.targets).satisfied) for p in prepared})
        for entry, est, hp in resolved:
            keys = [stable_seed(exp, cell, p.seed, "fit", entry["label"]) for p in prepared]
            outcomes = fit_chunk(est, hp, prepared, keys, scenario.d)
            scored_on = "observational" if est.needs_observational and \
                prepared[0].obs_train is not None else "interventional"
            for p, out in zip(prepared, outcomes, strict=True):
                if out.error is None:
                    values, status = evaluate_fit(out.fit, p, scored_on, metrics), "ok"
                else:
                    values = {m: float("nan") for m in metrics
                              if m != "target_f1" or est.reports_targets}
                    status = type(out.error).__name__
                fits_info.append(_fit_record(entry, p.seed, out, status))
                fit_cols = {**base_cols, "n_envs": len(p.train_envs),
                            "a4_satisfied": design_ok[p.seed], "seed": p.seed,
                            "estimator": entry["label"], "estimator_name": entry["estimator"],
                            "preset": entry.get("preset") or est.default_preset or "",
                            "role": entry.get("role", "ours"), "scored_on": scored_on}
                rows += [{**fit_cols, "metric": m, "value": values[m], "seconds": out.seconds,
                          "status": status} for m in metrics if m in values]
        del prepared
    frame = pd.DataFrame(rows)
    info = {"spec": dict(spec), "scenario": scenario.to_dict(),
            "a4_satisfied": {str(k): v for k, v in design_ok.items()}, "fits": fits_info}
    return frame, info


# --------------------------------------------------------------------------------------------
# Files: atomic writes, aggregation, summaries
# --------------------------------------------------------------------------------------------


def remove_stale_temps(path: str | Path) -> None:
    """Delete temp files a killed run left next to ``path`` (``.<name>.*`` from atomic_write)."""
    path = Path(path)
    if path.parent.is_dir():
        for tmp in path.parent.glob(f".{path.name}.*"):
            tmp.unlink(missing_ok=True)


def write_table(frame, path: str | Path) -> None:
    """Write a tidy table atomically (.csv, or .parquet)."""
    from mncrl.data import atomic_write

    path = Path(path)
    remove_stale_temps(path)
    if path.suffix == ".parquet":
        atomic_write(path, lambda tmp: frame.to_parquet(tmp, index=False))
    else:
        atomic_write(path, lambda tmp: frame.to_csv(tmp, index=False))


def write_json(data, path: str | Path) -> None:
    from mncrl.data import atomic_write

    path = Path(path)
    remove_stale_temps(path)
    text = json.dumps(data, indent=1, sort_keys=True, default=_json_default) + "\n"
    atomic_write(path, lambda tmp: Path(tmp).write_text(text))


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)


def read_table(path: str | Path):
    import pandas as pd

    path = Path(path)
    if not path.exists():
        raise MncrlError(f"metrics table not found: {path}")
    return pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)


def aggregate(paths: Sequence[str | Path]):
    """Concatenate cell tables (in the given order) into one experiment table."""
    import pandas as pd

    if not paths:
        raise MncrlError("aggregate needs at least one cell table")
    frames = [read_table(p) for p in paths]
    return pd.concat(frames, ignore_index=True, sort=False)


def summarise(frame):
    """Mean, standard error (ddof=1) and n_seeds over seeds per cell x estimator x metric."""
    group = ["experiment", "cell", "estimator", "metric"]
    g = frame.groupby(group, sort=False, dropna=False)["value"]
    out = g.agg(mean="mean", sd="std", n_seeds="count").reset_index()
    out["se"] = out["sd"] / np.sqrt(out["n_seeds"].clip(lower=1))
    keep = [c for c in frame.columns if c not in ("seed", "value", "seconds", "status",
                                                   "metric", "estimator")]
    first = frame.drop_duplicates(subset=group)[keep + ["estimator", "metric"]]
    merged = first.merge(out, on=group, how="left")
    secs = frame.groupby(group, sort=False)["seconds"].mean().rename("seconds").reset_index()
    return merged.merge(secs, on=group, how="left")


# --------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------


def _load_spec(text: str) -> dict:
    if text.startswith("@"):
        path = Path(text[1:])
        if not path.exists():
            raise MncrlError(f"spec file not found: {path}")
        text = path.read_text()
    try:
        spec = json.loads(text)
    except json.JSONDecodeError as exc:
        raise MncrlError(f"--spec is not valid JSON: {exc}") from None
    for key in ("experiment", "cell", "scenario", "estimators", "seeds"):
        if key not in spec:
            raise MncrlError(f"--spec misses the key '{key}'")
    return spec


def _load_config(path: str) -> dict:
    import yaml

    p = Path(path)
    if not p.exists():
        raise MncrlError(f"config file not found: {p}")
    return yaml.safe_load(p.read_text()) or {}


def _cmd_run(args) -> int:
    spec = _load_spec(args.spec)
    frame, info = run_cell(spec)
    if args.info:
        write_json(info, args.info)
    write_table(frame, args.out)
    failed = sorted({f["estimator"] for f in info["fits"] if f["status"] != "ok"})
    print(f"{spec['experiment']}/{spec['cell']}: {len(frame)} rows, "
          f"{len(spec['seeds'])} seeds, {len(spec['estimators'])} estimators"
          + (f"; failed fits: {', '.join(failed)}" if failed else ""))
    return 0


def _cmd_aggregate(args) -> int:
    frame = aggregate(args.tables)
    write_table(frame, args.out)
    if args.summary:
        write_table(summarise(frame), args.summary)
    print(f"{args.out}: {len(frame)} rows from {len(args.tables)} cells")
    return 0


def _cmd_cells(args) -> int:
    config = _load_config(args.config)
    names = [args.experiment] if args.experiment else list(config.get("experiments") or {})
    for name in names:
        for cell in experiment_cells(config, name):
            print(f"{name}\t{cell.id}\t{json.dumps(cell.point)}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m mncrl.experiment",
                                     description="Run and aggregate experiment grid cells.")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run one grid cell (all seeds, all estimators)")
    run.add_argument("--spec", required=True,
                     help="the cell spec as JSON, or @FILE (see cell_spec())")
    run.add_argument("--out", required=True, help="tidy metrics table (.csv or .parquet)")
    run.add_argument("--info", help="JSON sidecar: spec, scenario, per-fit status and info")
    run.set_defaults(func=_cmd_run)
    agg = sub.add_parser("aggregate", help="concatenate cell tables into one table")
    agg.add_argument("tables", nargs="+", help="cell tables, in order")
    agg.add_argument("--out", required=True, help="experiment table (.csv or .parquet)")
    agg.add_argument("--summary", help="mean/SE/n per cell x estimator x metric")
    agg.set_defaults(func=_cmd_aggregate)
    cells = sub.add_parser("cells", help="list the cells of a config file's experiments")
    cells.add_argument("config", help="a YAML config (e.g. config/config.yaml)")
    cells.add_argument("--experiment", help="only this experiment")
    cells.set_defaults(func=_cmd_cells)
    return parser


def limit_threads() -> None:
    """Make XLA respect the thread budget a scheduler gives through ``OMP_NUM_THREADS``.

    Snakemake sets ``OMP_NUM_THREADS`` (and the BLAS variables) to a job's ``threads``; XLA's
    CPU backend ignores them and starts one thread per core. With a budget of one thread we
    switch its intra-op thread pool off (before jax is imported) so parallel jobs do not
    oversubscribe the cores. An explicit ``XLA_FLAGS`` is left alone.
    """
    import os

    if os.environ.get("OMP_NUM_THREADS") == "1" and "XLA_FLAGS" not in os.environ:
        os.environ["XLA_FLAGS"] = ("--xla_cpu_multi_thread_eigen=false "
                                   "intra_op_parallelism_threads=1")


def run_module_cli(parser, prog: str, argv: list[str] | None = None) -> int:
    """Run a ``python -m mncrl.<module>`` command line: thread limits, one-line errors, exit 2."""
    limit_threads()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except MncrlError as exc:
        print(f"{prog} {args.command}: error: {exc}", file=sys.stderr)
        return 2


def main(argv: list[str] | None = None) -> int:
    return run_module_cli(build_parser(), "mncrl.experiment", argv)


if __name__ == "__main__":
    sys.exit(main())
