"""Experiment kind ``extrapolation`` (ours, docs/extrapolation.md): every method of
:mod:`mncrl.extrapolate` on data of the action model (:mod:`mncrl.actions`), scored against the
Monte-Carlo truth E[Y | do(A = a*)] along a line of actions reaching ``reach`` times the
training support's half-width.

The config block ``extrapolation`` holds the base action scenario (``scenario``), a ``grid`` of
action-scenario keys (cells = cartesian product, ids as the grid kind's) and the smoother's
hyper-parameters; the experiment's ``seeds`` are the data seeds (data seed
``stable_seed(experiment, cell, seed, "data")``, feature seed ``... "fit"``). One cell = one
job; its seeds run in vmapped batches of ``batch`` seeds.

Rows (tidy, one per cell x seed x method x metric; ``estimator`` = the method):

- per position ``s`` on the line (columns ``s`` and ``distance`` = max(|s| - 1, 0)):
  ``prediction``, ``truth``, ``squared_error``;
- per seed (``s`` empty): ``mse_inside`` / ``mse_outside`` (mean squared error over the
  positions with |s| <= 1 / > 1) and the same divided by the variance of the data set's
  outcome Y (``nmse_inside`` / ``nmse_outside``: a scale that does not depend on how much the
  truth happens to vary along the seed's line).
- method ``control-function`` also records ``overlap`` per position (the share of the points
  its outcome model is evaluated at that lie inside the training representation's range).
"""

from __future__ import annotations

import time
from collections.abc import Mapping

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd

from mncrl import extrapolate as ex
from mncrl.actions import ActionScenario, simulate_actions
from mncrl.experiments import core
from mncrl.threads import single_threaded_blas

KIND = "extrapolation"
TABLES: dict = {}
REQUIRED_KEYS: tuple = ()  # its scenario and methods are in its own block
POINT_METRICS = ("prediction", "truth", "squared_error")
SEED_METRICS = ("mse_inside", "mse_outside", "nmse_inside", "nmse_outside")


def _block(config: Mapping, name: str) -> dict:
    return core.experiment_block(config, name)[KIND]


def cells(config: Mapping, name: str) -> list[core.Cell]:
    """One cell per grid point; MncrlError naming the cell when its scenario is invalid."""
    return core.block_cells(config, name, KIND, ActionScenario.from_dict)


def cell_spec(config: Mapping, name: str, cell: str) -> dict:
    c, block = core.find_cell(cells(config, name), name, cell), _block(config, name)
    return {
        "kind": KIND,
        "experiment": name,
        "cell": cell,
        "job": cell,
        "seeds": list(c.seeds),
        "point": c.point,
        "scenario": c.scenario,
        "estimators": [{"label": m} for m in ex.METHODS],
        "hparams": {k: block[k] for k in ex.HPARAMS},
        "batch": int(block["batch"]),
    }


def experiment_spec(config: Mapping, name: str) -> dict:
    return {"kind": KIND, "experiment": name}


def job_cost(spec: Mapping) -> tuple[int, int]:
    """(mem_mb, minutes): a batch's data and the evaluation points of its smoothers."""
    s = ActionScenario.from_dict(spec["scenario"])
    hp = spec["hparams"]
    per_seed = (
        s.n * (s.m_obs + s.n_actions + s.d + 4 * hp["landmarks"])
        + s.grid_points * hp["eval_rows"] * (s.d + 2 * hp["landmarks"])
    ) * 8
    return int(1500 + 2 * spec["batch"] * per_seed / 2**20), int(10 + len(spec["seeds"]) / 2)


def seed_rows(s: np.ndarray, truth: np.ndarray, preds: Mapping, y_var: float) -> dict:
    """{method: {metric: value}} of one seed (module docstring); ``y_var``: Var(Y)."""
    inside = np.abs(s) <= 1.0
    spread = float(y_var)
    out = {}
    for method, pred in preds.items():
        se = (pred - truth) ** 2
        out[method] = {
            "mse_inside": float(se[inside].mean()),
            "mse_outside": float(se[~inside].mean()),
            "nmse_inside": float(se[inside].mean() / spread),
            "nmse_outside": float(se[~inside].mean() / spread),
        }
    return out


def _batch_predictions(data, seeds_fit, hp, d) -> list[dict]:
    f32 = lambda xs: jnp.asarray(np.stack(xs), dtype=jnp.float32)  # noqa: E731
    keys = jnp.stack([jax.random.key_data(jax.random.key(k)) for k in seeds_fit])
    out = ex.all_methods_batch(
        jax.random.wrap_key_data(keys),
        f32([x.X for x in data]),
        f32([x.Z for x in data]),
        f32([x.A for x in data]),
        f32([x.Y for x in data]),
        f32([x.a for x in data]),
        d,
        hp["landmarks"],
        hp["length_scale"],
        hp["eval_rows"],
        hp["draws"],
    )
    out = {k: np.asarray(v, dtype=np.float64) for k, v in out.items()}
    return [{k: v[i] for k, v in out.items()} for i in range(len(data))]


def run_cell(spec: Mapping, progress: bool = False) -> tuple[pd.DataFrame, dict]:
    s = ActionScenario.from_dict(spec["scenario"])
    exp, cell, hp = spec["experiment"], spec["cell"], ex.check_hparams(spec["hparams"])
    base = {"experiment": exp, "cell": cell, **core.label_columns(spec["point"])}
    base.update({k: v for k, v in s.to_dict().items() if not isinstance(v, list | dict)})
    seeds, size = list(spec["seeds"]), int(spec["batch"])
    rows, records = [], []
    for start in range(0, len(seeds), size):
        chunk = seeds[start : start + size]
        with single_threaded_blas():
            data = [simulate_actions(s, core.stable_seed(exp, cell, x, "data")) for x in chunk]
        t0 = time.perf_counter()
        preds = _batch_predictions(
            data, [core.stable_seed(exp, cell, x, "fit") for x in chunk], hp, s.d
        )
        seconds = (time.perf_counter() - t0) / len(chunk)
        for seed, x, p in zip(chunk, data, preds, strict=True):
            methods = {m: p[m] for m in ex.METHODS}
            summary = seed_rows(x.s, x.truth, methods, float(x.Y.var()))
            for method, pred in methods.items():
                cols = {**base, "seed": seed, "estimator": method, "seconds": seconds}
                cols["status"] = "ok"
                rows += [{**cols, "metric": k, "value": v} for k, v in summary[method].items()]
                point = {
                    "prediction": pred,
                    "truth": x.truth,
                    "squared_error": (pred - x.truth) ** 2,
                }
                if method == "control-function":
                    point["overlap"] = p["overlap"]
                for i, pos in enumerate(x.s):
                    at = {**cols, "s": float(pos), "distance": max(abs(float(pos)) - 1.0, 0.0)}
                    rows += [{**at, "metric": k, "value": float(v[i])} for k, v in point.items()]
            records.append({"seed": seed, "seconds": seconds, "status": "ok"})
        if progress:
            print(f"seeds {chunk} done", flush=True)
    return pd.DataFrame(rows), {"spec": dict(spec), "fits": records}


def aggregate(problems: pd.DataFrame, spec: Mapping) -> pd.DataFrame:
    return problems


__all__ = [
    "KIND",
    "POINT_METRICS",
    "SEED_METRICS",
    "TABLES",
    "aggregate",
    "cell_spec",
    "cells",
    "experiment_spec",
    "job_cost",
    "run_cell",
    "seed_rows",
]
