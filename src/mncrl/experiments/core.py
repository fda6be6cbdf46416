"""What every experiment kind shares: cells, stable seeds, data preparation, fits, evaluation.

Randomness: every draw of a cell comes from an integer derived from ``(experiment, data cell,
seed, purpose)`` by a stable hash (:func:`stable_seed`): the data, the train/test split and
each estimator's initialisation. Results of a cell therefore depend only on its own
definition, never on which other cells exist or in which order they run.

One problem = simulate a data seed (the simulator's own observation model and observation
noise, so every scenario key applies) -> split 75/25 (the same rows of every environment, as
the reference implementation) -> fit every estimator, told the latent dimension d (noisy data
have full rank m; all seeds of a chunk in one vmapped ``fit_batch`` call when the estimator
has one) -> evaluate on the test rows. Estimators that use observational data (``ica``,
``lincd``, ``umni``, ``subspace-soft``) get the observational environment, which the scenario
appends last when ``observational: true``; it is never passed to the other estimators. An
estimator fitted on the observational rows alone (``ica``) is scored on the observational test
rows, every other one on the interventional test rows (column ``scored_on``). Fits that fail for data reasons
(:data:`FIT_FAILURES`) are recorded (status, NaN metrics, and the :data:`OUTCOMES` an
experiment asks for), never dropped.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from mncrl import estimators, scm
from mncrl import simulation as sim
from mncrl.errors import (
    ConvergenceError,
    DataError,
    DegenerateFitError,
    MncrlError,
    NotIdentifiableError,
)
from mncrl.metrics import evaluate
from mncrl.threads import single_threaded_blas

#: Failures that depend on the data draw: recorded (status column, NaN values), not fatal.
#: Any other error (a bad hyper-parameter, bad data) stops the job with its message.
FIT_FAILURES = (NotIdentifiableError, ConvergenceError, DegenerateFitError)


#: Outcome metrics an experiment may record besides the fit metrics (``metrics: [...,
#: refused, failed]``): 1.0 when the fit ended with one of these errors, else 0.0. Never NaN,
#: so that claims and figures can count refusals (the estimator said "not identifiable") apart
#: from other failures.
class NotApplicable(Exception):
    """A setting an estimator's theory does not cover (``Estimator.applicable``, or a label's
    ``kinds``): recorded as not applicable, never fitted."""


OUTCOMES = {
    "refused": (NotIdentifiableError,),
    "failed": (ConvergenceError, DegenerateFitError),
    "not_applicable": (NotApplicable,),
}

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


def spec_key(data: Mapping) -> str:
    """Plain data as a JSON string (a cache key; keys in their given order, which may mix
    integers and strings)."""
    return json.dumps(data, default=str)


def from_key(key: str):
    return json.loads(key)


# --------------------------------------------------------------------------------------------
# Config -> cells
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Cell:
    """One job of one experiment: ``id`` names its output files, ``scenario`` is the full
    scenario dict (for a cell that runs several designs, that of its first one); ``seeds`` is
    the subset of the experiment's seeds the job runs (None: all of them)."""

    experiment: str
    id: str
    point: dict
    scenario: dict
    seeds: tuple[int, ...] | None = None


def grid_points(grid: Mapping) -> list[dict]:
    """Cartesian product of ``grid`` (key -> list of values), first key varying slowest."""
    keys = list(grid)
    return [
        dict(zip(keys, combo, strict=True)) for combo in itertools.product(*(grid[k] for k in keys))
    ]


#: Grid keys with this prefix label cells without changing the scenario (``label.p``: the
#: cells are recorded under column ``label_p`` but simulate the base scenario's ``p``).
LABEL_PREFIX = "label."


def apply_point(base: Mapping, point: Mapping) -> dict:
    """``base`` with the grid point's values set (``design_params.k`` sets a design parameter;
    ``label.<name>`` keys only label the cell and set nothing)."""
    scenario = json.loads(json.dumps(dict(base)))  # deep copy of plain data
    for key, value in point.items():
        if key.startswith(LABEL_PREFIX):
            continue
        if key.startswith("design_params."):
            params = dict(scenario.get("design_params") or {})
            params[key.split(".", 1)[1]] = value
            scenario["design_params"] = params
        else:
            scenario[key] = value
    return scenario


def experiment_block(config: Mapping, name: str) -> dict:
    """The experiment's (schema-validated, defaults filled) config block."""
    experiments = config["experiments"]
    if name not in experiments:
        raise MncrlError(f"unknown experiment '{name}'; configured: {', '.join(experiments)}")
    return experiments[name]


def base_scenario(config: Mapping, name: str) -> dict:
    """The experiment's base scenario with its ``set`` keys applied (a deep copy)."""
    block = experiment_block(config, name)
    scenarios = config["scenarios"]
    if block["scenario"] not in scenarios:
        raise MncrlError(
            f"experiments.{name}.scenario: unknown scenario '{block['scenario']}'; "
            f"defined: {', '.join(scenarios)}"
        )
    return apply_point(scenarios[block["scenario"]], block["set"])


def find_cell(cells: Sequence, name: str, cell: str):
    """The cell of ``cells`` whose id is ``cell``; MncrlError listing the ids otherwise."""
    by_id = {c.id: c for c in cells}
    if cell not in by_id:
        raise MncrlError(f"experiment '{name}' has no cell '{cell}'; cells: {', '.join(by_id)}")
    return by_id[cell]


def block_cells(config: Mapping, name: str, kind: str, check) -> list[Cell]:
    """The cells of a kind whose config block ``kind`` carries its own ``scenario`` and
    ``grid`` (one per grid point, every seed of the experiment); ``check(scenario)`` raises
    MncrlError for an invalid cell scenario, reported with the cell's id."""
    block = experiment_block(config, name)[kind]
    seeds = tuple(int(s) for s in experiment_block(config, name)["seeds"])
    out = []
    for point in grid_points(block["grid"]):
        scenario = apply_point(block["scenario"], point)
        try:
            check(scenario)
        except MncrlError as exc:
            raise MncrlError(f"experiments.{name} (cell {cell_id(point)}): {exc}") from None
        out.append(Cell(name, cell_id(point), point, scenario, seeds))
    return out


def estimator_entries(config: Mapping, labels: Sequence[str]) -> list[dict]:
    """The estimator entries (with their label) of a list of labels; ``display`` is dropped
    (presentation only: renaming must not rerun cells)."""
    table = config["estimators"]
    entries = []
    for label in labels:
        if label not in table:
            raise MncrlError(
                f"unknown estimator label '{label}'; defined in 'estimators': {', '.join(table)}"
            )
        entry = {k: v for k, v in table[label].items() if k != "display"}
        entries.append({"label": label, **entry})
    return entries


def common_spec(config: Mapping, name: str, kind: str, cell: str) -> dict:
    """The keys every cell spec has, whatever the kind."""
    block = experiment_block(config, name)
    return {
        "kind": kind,
        "experiment": name,
        "cell": cell,
        "estimators": estimator_entries(config, block["estimators"]),
        "seeds": [int(s) for s in block["seeds"]],
        "test_fraction": float(block["test_fraction"]),
        "metrics": list(block["metrics"]),
        "max_batch_mb": int(config["max_batch_mb"]),
    }


# --------------------------------------------------------------------------------------------
# Data of one problem
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Prepared:
    """The data of one seed of a problem, split and partitioned for the estimators."""

    seed: int
    train_envs: list  # interventional environments only (train rows)
    test_X: np.ndarray  # pooled interventional test rows, sample-major (reference order)
    test_Z: np.ndarray
    obs_train: np.ndarray | None
    obs_test_X: np.ndarray | None
    obs_test_Z: np.ndarray | None
    L: np.ndarray
    targets: np.ndarray  # K x d, interventional environments
    ancestors: np.ndarray | None = None  # d x d bool: [a, i] when latent a is an ancestor of i


def interleave(blocks: Sequence[np.ndarray]) -> np.ndarray:
    """Pool per-environment blocks of equal length sample-major: row i of env 0, of env 1, ...

    This is the order of the reference implementation ([n, envs, d] reshaped), which matters
    for the chunked ``mcc_paper``; blocks of unequal length are concatenated instead.
    """
    if len({b.shape[0] for b in blocks}) != 1:
        return np.concatenate(blocks, axis=0)
    return np.stack(blocks, axis=1).reshape(-1, blocks[0].shape[1])


class NoiseCache:
    """The latent noise of environment k under a data seed, drawn once (read-only arrays):
    problems that share a data seed (the designs of a coverage cell) share their noise."""

    def __init__(self):
        self._store: dict = {}

    def get(self, seed: int, k: int, kind: str, std: float, shape: tuple) -> np.ndarray:
        key = (int(seed), int(k), kind, float(std), tuple(shape))
        if key not in self._store:
            eta = scm.sample_noise(sim.rng_for(seed, "noise", k), kind, std, shape)
            eta.flags.writeable = False
            self._store[key] = eta
        return self._store[key]

    def clear(self) -> None:
        self._store.clear()


def _environments(s, data_seed: int, noise: NoiseCache):
    """(X, Z, L, T): every environment of :func:`mncrl.simulation.simulate` for the data seed,
    stacked (K_all, n, .); the same draws, bit for bit, with the latent noise from ``noise``.

    The observation is the simulator's own (:func:`mncrl.simulation.observation_model`: the
    mixing, or the light-tunnel sensors whose L depends on the data seed) and so is the
    observation noise (:func:`add_observation_noise`)."""
    B = sim.latent_graph(s, data_seed)
    T = sim.design_matrix(s, data_seed)
    model = sim.observation_model(s, B, T)
    order = scm.topological_order(B != 0)
    K_all, n, d, m = T.shape[0], s.n, s.d, s.m_obs

    def environment(k):
        """(Z_k, noiseless X_k), float64; the same draws on every call."""
        eta = noise.get(data_seed, 0 if s.paired_noise else k, s.noise, s.noise_std, (n, d))
        Zk = scm.sample_latents(
            mechanism=s.mechanism,
            B=B,
            eta=eta,
            targets=T[k],
            intervention=s.intervention_spec,
            order=order,
            scm2_variant=s.scm2_variant,
            env_index=k,
        )
        return Zk, model.observe(Zk)[0]  # in the latents' own precision, before the cast

    X = np.empty((K_all, n, m), dtype=np.dtype(s.dtype))
    Z = np.empty((K_all, n, d), dtype=np.dtype(s.dtype))
    with single_threaded_blas():
        relative_sd = relative_noise_sd(s, (environment(k)[1] for k in range(K_all)))
        for k in range(K_all):
            Zk, Xk = environment(k)
            Z[k], X[k] = Zk, add_observation_noise(Xk, s, data_seed, k, relative_sd)
    if not np.isfinite(X).all():
        raise DataError(f"the simulated X contains {int((~np.isfinite(X)).sum())} NaN/Inf values")
    return X, Z, model.L, T, B


def relative_noise_sd(s, noiseless_blocks) -> np.ndarray | None:
    """The per-column observation-noise sd of ``obs_noise_relative`` (that fraction of each
    column's pooled spread over every environment's noiseless X, as
    :func:`mncrl.simulation.simulate`); None without relative noise (blocks not read)."""
    if s.obs_noise_relative <= 0:
        return None
    return s.obs_noise_relative * sim.pooled_std(noiseless_blocks)


def add_observation_noise(Xk: np.ndarray, s, data_seed: int, k: int, relative_sd) -> np.ndarray:
    """Environment k's noiseless X (float64, modified in place) plus the simulator's observation
    noise: ``obs_noise`` (absolute), then ``relative_sd`` (per column), each from its own stream
    (:data:`mncrl.simulation.STREAMS`), added in :func:`~mncrl.simulation.simulate`'s order."""
    if s.obs_noise > 0:
        Xk += s.obs_noise * sim.rng_for(data_seed, "obs_noise", k).standard_normal(Xk.shape)
    if relative_sd is not None:
        Xk += relative_sd * sim.rng_for(data_seed, "obs_noise_relative", k).standard_normal(
            Xk.shape
        )
    return Xk


def prepare(
    scenario,
    experiment: str,
    data_cell: str,
    seed: int,
    test_fraction: float,
    noise: NoiseCache | None = None,
) -> Prepared:
    """Simulate a data seed's data set, split it and set the observational environment apart.

    The data seed is ``stable_seed(experiment, data_cell, seed, "data")`` and the split seed
    ``stable_seed(experiment, data_cell, seed, "split")``; the result equals
    ``simulate(scenario, data seed)`` followed by ``train_test_split(same_rows=True)``.
    """
    s = scenario
    data_seed = stable_seed(experiment, data_cell, seed, "data")
    X, Z, L, T, B = _environments(s, data_seed, NoiseCache() if noise is None else noise)
    K_all, n = T.shape[0], s.n
    if n < 2:
        raise MncrlError(f"environments need at least 2 rows to split, got n = {n}")
    split_seed = stable_seed(experiment, data_cell, seed, "split")
    n_test = min(max(round(n * test_fraction), 1), n - 1)
    perm = sim.rng_for(split_seed, "split", 0).permutation(n)
    test_rows, train_rows = np.sort(perm[:n_test]), np.sort(perm[n_test:])
    K = K_all - int(s.observational)
    train = np.take(X, train_rows, axis=1)  # (K_all, n_train, m)
    te_X, te_Z = np.take(X, test_rows, axis=1), np.take(Z, test_rows, axis=1)
    obs = bool(s.observational)
    return Prepared(
        seed=int(seed),
        train_envs=list(train[:K]),
        test_X=interleave(list(te_X[:K])),
        test_Z=interleave(list(te_Z[:K])),
        obs_train=train[K] if obs else None,
        obs_test_X=te_X[K] if obs else None,
        obs_test_Z=te_Z[K] if obs else None,
        L=np.asarray(L),
        targets=T[:K],
        ancestors=scm.ancestor_matrix(B),
    )


def batch_mb(scenario, K_all: int) -> float:
    """MB of one problem in memory: data, split copies and the estimator's copy."""
    itemsize = np.dtype(scenario.dtype).itemsize
    return 3 * K_all * scenario.n * (scenario.m_obs + scenario.d) * itemsize / 2**20


def problems_per_batch(per_problem_mb: float, n_problems: int, max_batch_mb: int) -> int:
    """How many problems of equal shape fit in ``max_batch_mb`` at once (at least one)."""
    return int(max(1, min(n_problems, max_batch_mb // max(per_problem_mb, 1))))


# --------------------------------------------------------------------------------------------
# Fits
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Resolved:
    """An estimator entry of the config with its registry entry and hyper-parameters."""

    entry: dict
    est: object
    hparams: dict

    @property
    def label(self) -> str:
        return self.entry["label"]

    @property
    def preset(self) -> str:
        return self.entry["preset"] or self.est.default_preset or ""


def resolve_entries(entries: Sequence[Mapping]) -> list[Resolved]:
    """Every estimator entry of a spec resolved (:func:`mncrl.estimators.resolve`)."""
    out = []
    for entry in entries:
        r = estimators.resolve(entry["estimator"], entry["preset"], entry["overrides"])
        out.append(Resolved(entry=dict(entry), est=r.estimator, hparams=r.hparams))
    return out


@dataclass(frozen=True)
class Outcome:
    """A fit, or the error that prevented it, for one seed."""

    fit: object | None
    seconds: float
    error: Exception | None = None


def scored_on(est, prepared: Prepared) -> str:
    """ "observational" for an estimator fitted on the observational rows alone (when there are
    some), else "interventional": the test rows a fit is scored on."""
    observational = est.fitted_on_observational and uses_observational(est, prepared)
    return "observational" if observational else "interventional"


def uses_observational(est, prepared: Prepared) -> bool:
    return bool(est.needs_observational and prepared.obs_train is not None)


def _fit_one(est, p: Prepared, seed: int, latent_dim: int, hparams) -> Outcome:
    kwargs = dict(hparams)
    if uses_observational(est, p):
        kwargs["observational"] = p.obs_train
    start = time.perf_counter()
    try:
        fit = est.fit(p.train_envs, seed=seed, latent_dim=latent_dim, **kwargs)
    except FIT_FAILURES as exc:
        return Outcome(None, time.perf_counter() - start, exc)
    return Outcome(fit, time.perf_counter() - start)


def fit_chunk(
    est, hparams: Mapping, prepared: Sequence[Prepared], seeds: Sequence[int], latent_dim: int
) -> list[Outcome]:
    """Fit one estimator on every problem of a chunk; one vmapped call when possible.

    ``seconds`` of a batched fit is the batch's wall time divided by the number of problems.
    If the batched call raises, the problems are refitted one by one to tell which ones fail.
    """
    batched = est.fit_batch is not None and len(prepared) > 1
    if batched and not uses_observational(est, prepared[0]):
        start = time.perf_counter()
        try:
            fits = est.fit_batch(
                [p.train_envs for p in prepared], list(seeds), latent_dim=latent_dim, **hparams
            )
        except FIT_FAILURES:
            pass
        else:
            per_problem = (time.perf_counter() - start) / len(prepared)
            return [Outcome(f, per_problem) for f in fits]
    return [_fit_one(est, p, s, latent_dim, hparams) for p, s in zip(prepared, seeds, strict=True)]


def setting(scenario, prepared: Prepared):
    """The :class:`~mncrl.estimators.base.Setting` of a problem (what an estimator's
    ``applicable`` judges)."""
    from mncrl.estimators.base import Setting

    return Setting(
        kind=scenario.intervention,
        targets=prepared.targets,
        observational=prepared.obs_train is not None,
    )


def not_applicable(r: Resolved, scenario, prepared: Prepared) -> str | None:
    """Why estimator entry ``r`` does not apply to a problem (None when it does): the entry's
    ``kinds`` (intervention kinds it is run on) or the estimator's own ``applicable``."""
    kinds = r.entry.get("kinds")
    if kinds is not None and scenario.intervention not in kinds:
        return f"run on {', '.join(kinds)} interventions only (entry '{r.label}')"
    return r.est.not_applicable(setting(scenario, prepared))


def fit_applicable(
    r: Resolved, scenario, prepared: Sequence[Prepared], seeds: Sequence[int]
) -> list[Outcome]:
    """:func:`fit_chunk` on the problems entry ``r`` applies to; a :class:`NotApplicable`
    outcome (not fitted) for the others."""
    reasons = [not_applicable(r, scenario, p) for p in prepared]
    keep = [i for i, why in enumerate(reasons) if why is None]
    fitted = fit_chunk(
        r.est, r.hparams, [prepared[i] for i in keep], [seeds[i] for i in keep], scenario.d
    )
    out = [Outcome(None, 0.0, NotApplicable(why)) for why in reasons]
    for i, outcome in zip(keep, fitted, strict=True):
        out[i] = outcome
    return out


def failed_values(metrics: Sequence[str], reports_targets: bool) -> dict:
    """NaN for every metric of a failed fit (``target_f1`` only for estimators that report
    targets; :data:`OUTCOMES` are never NaN, see :func:`outcome_values`)."""
    return {
        m: float("nan")
        for m in metrics
        if m not in OUTCOMES and (m != "target_f1" or reports_targets)
    }


def outcome_values(metrics: Sequence[str], error: Exception | None) -> dict:
    """The requested :data:`OUTCOMES` of a fit: 1.0 if ``error`` is one of the outcome's
    errors, else 0.0 (``error`` None: the fit answered)."""
    return {m: float(isinstance(error, OUTCOMES[m])) for m in metrics if m in OUTCOMES}


def evaluate_fit(fit, prepared: Prepared, scored_on: str, metrics: Sequence[str]) -> dict:
    """The requested metrics of a fit on the test rows (observational ones for ``scored_on``)."""
    if scored_on == "observational":
        X, Z = prepared.obs_test_X, prepared.obs_test_Z
        true_t = est_t = None
    else:
        X, Z = prepared.test_X, prepared.test_Z
        true_t, est_t = prepared.targets, fit.targets
    W = np.asarray(fit.unmixing, dtype=np.float64)
    Zhat = np.asarray(X, dtype=np.float64) @ W
    values = evaluate(
        Z=np.asarray(Z, dtype=np.float64),
        Zhat=Zhat,
        L=prepared.L,
        W=W,
        true_targets=true_t,
        est_targets=est_t,
        spearman="mcc_spearman" in metrics,
        ancestors=prepared.ancestors if "mcc_ancestral" in metrics else None,
    )
    return {m: float(values[m]) for m in metrics if m in values and values[m] is not None}


# --------------------------------------------------------------------------------------------
# Table columns
# --------------------------------------------------------------------------------------------


def label_columns(point: Mapping) -> dict:
    """The grid point's ``label.<name>`` values as table columns ``label_<name>``."""
    return {
        "label_" + key[len(LABEL_PREFIX) :]: value
        for key, value in point.items()
        if key.startswith(LABEL_PREFIX)
    }


def scenario_columns(scenario) -> dict:
    """The scalar scenario keys as table columns (``design_params.<name>`` flattened)."""
    out = {}
    for key, value in scenario.to_dict().items():
        if key == "design_params":
            for name, v in sorted(value.items()):
                out[f"design_params.{name}"] = v if np.isscalar(v) else json.dumps(v)
        elif value is None or isinstance(value, bool | int | float | str):
            out[key] = value
    return out


def json_scalars(info: Mapping) -> dict:
    """The JSON-scalar entries of a fit's ``info`` (non-finite floats as strings)."""
    out = {}
    for key, value in (info or {}).items():
        if isinstance(value, np.generic):
            value = value.item()
        if isinstance(value, bool | int | str) or value is None:
            out[key] = value
        elif isinstance(value, float):
            out[key] = value if math.isfinite(value) else str(value)
    return out


def estimator_columns(r: Resolved, scored_on: str) -> dict:
    """The columns that describe the estimator of a row."""
    return {
        "estimator": r.label,
        "estimator_name": r.entry["estimator"],
        "preset": r.preset,
        "role": r.entry["role"],
        "scored_on": scored_on,
    }


__all__ = [
    "FIT_FAILURES",
    "Cell",
    "NoiseCache",
    "NotApplicable",
    "OUTCOMES",
    "Outcome",
    "Prepared",
    "Resolved",
    "add_observation_noise",
    "apply_point",
    "base_scenario",
    "batch_mb",
    "cell_id",
    "common_spec",
    "estimator_columns",
    "block_cells",
    "estimator_entries",
    "evaluate_fit",
    "experiment_block",
    "failed_values",
    "find_cell",
    "fit_applicable",
    "fit_chunk",
    "from_key",
    "grid_points",
    "interleave",
    "json_scalars",
    "not_applicable",
    "outcome_values",
    "prepare",
    "problems_per_batch",
    "relative_noise_sd",
    "resolve_entries",
    "scenario_columns",
    "scored_on",
    "setting",
    "spec_key",
    "stable_seed",
    "uses_observational",
]
