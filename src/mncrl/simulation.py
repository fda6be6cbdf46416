"""The multi-environment simulator: a :class:`Scenario` plus an integer seed -> a Dataset.

Randomness. Every draw comes from its own ``numpy.random.Generator(PCG64(SeedSequence(entropy,
spawn_key=(stream, index))))`` where ``entropy`` is the data seed (or the mixing / design seed)
and ``stream`` a fixed integer id (:data:`STREAMS`): the graph, the edge weights, the design, the
latent noise of environment k, the observation noise of environment k, the mixing and the
train/test split of environment k each have their own stream. Consequences:

- same (scenario, seed) -> bit-identical arrays, on every run and whatever else is simulated;
- the mixing depends only on (mixing, d, m, condition, mixing_seed), so one L is shared by all
  data seeds (as in the paper);
- environment k's noise does not depend on the design or on how many environments there are:
  appending the observational environment leaves the others unchanged.

Observation (``observation``). ``linear``: X = Z L with the mixing L. ``light-tunnel``: the
latents drive the actuators of the light-tunnel sensor model (:mod:`mncrl.sensors`) and X are its
raw sensor readings; L is then the model's Jacobian d X / d Z at the operating point (exact for
the linear sensors) and depends on the data seed (the actuator scaling comes from the latent
graph). Observation noise: ``obs_noise`` (one absolute standard deviation for every coordinate)
and/or ``obs_noise_relative`` (coordinate i gets ``obs_noise_relative`` times the standard
deviation of column i of the pooled noiseless X), independent draws that add up.

Dtypes. X and Z are float32 by default (``dtype="float64"`` to keep full precision); they are
computed in float64 and rounded once. L (d x m) and the adjacency are float64, ``env`` int32,
``targets`` bool.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields

import numpy as np

from mncrl import interventions as iv_mod
from mncrl import mixing as mixing_mod
from mncrl import scm
from mncrl import sensors as sensors_mod
from mncrl.data import Dataset, validate
from mncrl.errors import MncrlError
from mncrl.threads import single_threaded_blas
from mncrl.values import is_int as _is_int
from mncrl.values import is_real as _is_real

STREAMS = {
    "graph": 1,
    "weights": 2,
    "design": 3,
    "noise": 4,
    "obs_noise": 5,
    "mixing": 6,
    "split": 7,
    "obs_noise_relative": 8,
    # the action model of intervention extrapolation (mncrl.actions)
    "action_effects": 9,
    "actions": 10,
    "latent_residual": 11,
    "outcome_noise": 12,
    "truth": 13,
    # the climate-mode benchmark (mncrl.climate_modes)
    "mode_graph": 14,
    "mode_patterns": 15,
    "mode_noise": 16,
    "field_noise": 17,
}
GRAPHS = ("erdos-renyi", "paper-nonlinear", "custom")
DTYPES = ("float32", "float64")
OBSERVATIONS = ("linear", "light-tunnel")


def rng_for(seed: int, stream: str, index: int = 0) -> np.random.Generator:
    """The generator of one named stream (and index, e.g. the environment) under ``seed``."""
    _check_seed(seed, "seed")
    ss = np.random.SeedSequence(entropy=int(seed), spawn_key=(STREAMS[stream], int(index)))
    return np.random.Generator(np.random.PCG64(ss))


# --------------------------------------------------------------------------------------------
# Scenario
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Scenario:
    """Everything that defines a simulated multi-environment data set except the seed.

    Hashable: ``design_params`` (a dict on input) is stored as a sorted tuple of items and
    lists as tuples; :meth:`to_dict` gives plain dicts/lists back. Every value is checked on
    construction (:class:`MncrlError` naming the field and the allowed values).
    """

    d: int = 6
    m: int | None = None
    n: int = 100_000
    graph: str = "erdos-renyi"
    p: float = 0.75
    edges: tuple | None = None
    weight_range: tuple[float, float] = (0.1, 1.0)
    mechanism: str = "linear"
    noise: str = "gaussian"
    noise_std: float = 0.1
    design: str = "leave-one-out"
    design_params: dict | tuple = ()
    design_seed: int | None = None
    intervention: str = "do"
    do_value: float = 1.0
    shift: float = 1.0
    scale: float = 2.0
    observational: bool = False
    mixing: str = "paper"
    mixing_seed: int = 0
    condition: float = 10.0
    obs_noise: float = 0.0
    paired_noise: bool = False
    # extensions (optional, defaults keep the API above)
    weight_scale: float = 0.5
    scm2_variant: str = "paper"
    dtype: str = "float32"
    observation: str = "linear"
    sensors: tuple | None = None
    obs_noise_relative: float = 0.0

    def __post_init__(self):
        _normalise_and_check(self)

    @property
    def m_obs(self) -> int:
        """The observed dimension (m, or d when m is None; the number of sensors with
        ``observation: light-tunnel``)."""
        if self.observation == "light-tunnel":
            return len(self.sensor_names)
        return self.d if self.m is None else self.m

    @property
    def sensor_names(self) -> tuple[str, ...]:
        """The light-tunnel sensors observed (``sensors``, default the linear ones); () with
        ``observation: linear``."""
        if self.observation != "light-tunnel":
            return ()
        return sensors_mod.LINEAR_SENSORS if self.sensors is None else self.sensors

    @property
    def design_kwargs(self) -> dict:
        """``design_params`` as a dict (lists restored)."""
        return {k: _thaw(v) for k, v in self.design_params}

    @property
    def intervention_spec(self) -> iv_mod.Intervention:
        return iv_mod.Intervention(
            kind=self.intervention,
            do_value=self.do_value,
            shift=self.shift,
            scale=self.scale,
            weight_scale=self.weight_scale,
        )

    @classmethod
    def from_dict(cls, values: Mapping) -> Scenario:
        """A Scenario from a plain mapping (e.g. parsed YAML); unknown keys are an error."""
        if not isinstance(values, Mapping):
            raise MncrlError(
                f"a scenario must be a mapping of keys to values, got {type(values).__name__}"
            )
        allowed = [f.name for f in fields(cls)]
        unknown = [k for k in values if k not in allowed]
        if unknown:
            raise MncrlError(
                f"unknown scenario key {unknown[0]!r}; allowed keys: {', '.join(allowed)}"
            )
        return cls(**dict(values))

    def to_dict(self) -> dict:
        """Plain (YAML/JSON-friendly) dict; ``Scenario.from_dict(s.to_dict()) == s``."""
        out = {f.name: _thaw(getattr(self, f.name)) for f in fields(self)}
        out["design_params"] = self.design_kwargs
        return out

    def replace(self, **changes) -> Scenario:
        """A copy with some fields changed (validated)."""
        return Scenario.from_dict({**self.to_dict(), **changes})


def _freeze(value):
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if isinstance(value, Mapping):
        return tuple(sorted((str(k), _freeze(v)) for k, v in value.items()))
    if isinstance(value, list | tuple):
        return tuple(_freeze(v) for v in value)
    if isinstance(value, np.generic):
        return value.item()
    return value


def _thaw(value):
    if isinstance(value, tuple):
        return [_thaw(v) for v in value]
    return value


def _check_seed(seed, name: str) -> None:
    if not (_is_int(seed) and seed >= 0):
        raise MncrlError(f"{name} must be a non-negative integer, got {seed!r}")


def _normalise_and_check(s: Scenario) -> None:
    def fail(msg):
        raise MncrlError(f"scenario: {msg}")

    def set_(name, value):
        object.__setattr__(s, name, value)

    def choice(name, allowed):
        value = getattr(s, name)
        if value not in allowed:
            fail(f"{name} must be one of {', '.join(allowed)}; got {value!r}")

    def integer(name, low, optional=False):
        value = getattr(s, name)
        if optional and value is None:
            return
        if not _is_int(value) or value < low:
            fail(
                f"{name} must be an integer >= {low}{' or null' if optional else ''}, got {value!r}"
            )
        set_(name, int(value))

    def real(name, low=-math.inf, high=math.inf, low_open=False, what=None):
        value = getattr(s, name)
        ok = _is_real(value) and math.isfinite(value) and low <= value <= high
        ok = ok and not (low_open and value == low)
        if not ok:
            fail(f"{name} must be {what or 'a finite number'}, got {value!r}")
        set_(name, float(value))

    def flag(name):
        value = getattr(s, name)
        if not isinstance(value, bool | np.bool_):
            fail(f"{name} must be true or false, got {value!r}")
        set_(name, bool(value))

    integer("d", 1)
    integer("m", 1, optional=True)
    integer("n", 1)
    integer("design_seed", 0, optional=True)
    integer("mixing_seed", 0)
    choice("graph", GRAPHS)
    choice("mechanism", scm.MECHANISMS)
    choice("noise", scm.NOISES)
    choice("design", tuple(iv_mod.DESIGNS))
    choice("intervention", iv_mod.INTERVENTION_TYPES)
    choice("mixing", mixing_mod.MIXINGS)
    choice("scm2_variant", scm.SCM2_VARIANTS)
    choice("dtype", DTYPES)
    choice("observation", OBSERVATIONS)
    real("p", 0.0, 1.0, what="a probability in [0, 1]")
    real("noise_std", 0.0, low_open=True, what="a number > 0")
    real("do_value")
    real("shift")
    real("scale", 0.0, low_open=True, what="a number > 0")
    real("weight_scale")
    real("condition", 1.0, what="a number >= 1")
    real("obs_noise", 0.0, what="a number >= 0")
    real("obs_noise_relative", 0.0, what="a number >= 0")
    flag("observational")
    flag("paired_noise")

    wr = s.weight_range
    if not (
        isinstance(wr, list | tuple)
        and len(wr) == 2
        and all(_is_real(v) and math.isfinite(v) for v in wr)
        and wr[0] <= wr[1]
    ):
        fail(
            f"weight_range must be a pair [low, high] of finite numbers with low <= high, "
            f"got {wr!r}"
        )
    set_("weight_range", (float(wr[0]), float(wr[1])))

    if s.m is not None and s.m < s.d:
        fail(f"m (observed dimension, {s.m}) must be >= d (latent dimension, {s.d})")

    if s.graph == "custom":
        if s.edges is None:
            fail("graph 'custom' needs edges: a list of [parent, child] pairs (0-based)")
        try:
            edges = tuple((int(i), int(j)) for i, j in s.edges)
        except (TypeError, ValueError):
            fail(f"edges must be a list of [parent, child] integer pairs, got {s.edges!r}")
        set_("edges", edges)
        scm.edges_to_adjacency(edges, s.d)  # raises on bad indices / cycles
    elif s.edges is not None:
        fail(f"edges are only used with graph 'custom' (graph is {s.graph!r})")
    if s.graph == "paper-nonlinear" and s.d != 6:
        fail(f"graph 'paper-nonlinear' has 6 nodes; set d = 6 (got d = {s.d})")
    if s.mechanism == "scm2" and s.graph != "paper-nonlinear":
        fail(
            "mechanism 'scm2' is defined only on the paper's graph: set graph = "
            "'paper-nonlinear' (and d = 6)"
        )

    _check_observation(s, fail, set_)

    params = {} if s.design_params is None else s.design_params
    if isinstance(params, Mapping):
        params = _freeze(params)
    elif isinstance(params, list | tuple) and all(
        isinstance(kv, list | tuple) and len(kv) == 2 for kv in params
    ):
        params = _freeze(dict(params))
    else:
        fail(f"design_params must be a mapping of parameter names to values, got {params!r}")
    set_("design_params", params)
    iv_mod.make_design(s.design, s.d, 0, **s.design_kwargs)  # checks the parameters
    s.intervention_spec  # noqa: B018  (checks the intervention parameters)


def _check_observation(s: Scenario, fail, set_) -> None:
    """The light-tunnel keys: sensors only with it; d = 5, a linear SCM, m null or #sensors."""
    if s.observation != "light-tunnel":
        if s.sensors is not None:
            fail(
                "sensors are only used with observation 'light-tunnel' "
                f"(observation is {s.observation!r})"
            )
        return
    n_act = len(sensors_mod.ACTUATORS)
    if s.d != n_act:
        fail(
            f"observation 'light-tunnel' drives its {n_act} actuators "
            f"({', '.join(sensors_mod.ACTUATORS)}) with one latent each: set d = {n_act} "
            f"(got d = {s.d})"
        )
    if s.mechanism != "linear":
        fail(
            "observation 'light-tunnel' needs mechanism 'linear' (its actuator scaling uses the "
            f"latents' exact moments), got {s.mechanism!r}"
        )
    if s.sensors is not None:
        try:
            set_("sensors", sensors_mod.check_sensors(_thaw(_freeze(s.sensors))))
        except MncrlError as exc:
            fail(str(exc))
    if s.m is not None and s.m != len(s.sensor_names):
        fail(
            f"m ({s.m}) must be null or the number of sensors ({len(s.sensor_names)}) with "
            f"observation 'light-tunnel'"
        )
    try:
        sensors_mod.check_identifiable(s.sensor_names)
    except MncrlError as exc:
        fail(str(exc))


# --------------------------------------------------------------------------------------------
# The pieces of one simulated data set
# --------------------------------------------------------------------------------------------


def latent_graph(scenario: Scenario, seed: int) -> np.ndarray:
    """The weighted adjacency B (d x d float64, B[i, j] = weight of i -> j) for a data seed.

    Linear mechanism: weights ~ U(weight_range); nonlinear mechanisms use unit weights (their
    functional form has no weights; B only carries the graph).
    """
    s = scenario
    if s.graph == "erdos-renyi":
        A = scm.erdos_renyi_dag(s.d, s.p, rng_for(seed, "graph"))
    elif s.graph == "paper-nonlinear":
        A = scm.edges_to_adjacency(scm.PAPER_NONLINEAR_EDGES, 6)
    else:
        A = scm.edges_to_adjacency(s.edges, s.d)
    if s.mechanism != "linear":
        return A.astype(np.float64)
    return scm.draw_weights(A, rng_for(seed, "weights"), s.weight_range)


def design_matrix(scenario: Scenario, seed: int) -> np.ndarray:
    """The (K x d) bool target matrix, observational row (all False) last when requested.

    Random designs draw from ``design_seed`` when set, otherwise from the data seed.
    """
    s = scenario
    design_seed = seed if s.design_seed is None else s.design_seed
    T = iv_mod.make_design(s.design, s.d, rng_for(design_seed, "design"), **s.design_kwargs)
    if s.observational:
        T = np.vstack([T, np.zeros((1, s.d), dtype=bool)])
    return T


def mixing_matrix(scenario: Scenario, seed: int | None = None) -> np.ndarray:
    """The (d x m) mixing L, drawn from ``mixing_seed`` only (shared by every data seed).

    With ``observation: light-tunnel`` L is the sensor model's Jacobian, which depends on the
    data ``seed`` (required then; see :func:`observation_model`).
    """
    s = scenario
    if s.observation != "linear":
        if seed is None:
            raise MncrlError(
                f"observation {s.observation!r}: L depends on the data seed (the actuator "
                f"scaling comes from the latent graph); call mixing_matrix(scenario, seed)"
            )
        return observation_model(s, latent_graph(s, seed), design_matrix(s, seed)).L
    return mixing_mod.make_mixing(
        s.mixing,
        s.d,
        s.m_obs,
        rng_for(s.mixing_seed, "mixing"),
        condition=s.condition,
        seed=s.mixing_seed,
    )


def latent_moments(scenario: Scenario, B: np.ndarray, T: np.ndarray) -> tuple:
    """(means, sds), each (K x d) float64: the exact population mean and standard deviation of
    every latent in every environment of a linear SCM (weighted adjacency ``B``, design ``T``)."""
    s = scenario
    if s.mechanism != "linear":
        raise MncrlError(
            f"latent moments are exact only for mechanism 'linear', got {s.mechanism!r}"
        )
    iv = s.intervention_spec
    means, sds = [], []
    for t in np.asarray(T, dtype=bool):
        Bk = B.copy()
        const = np.zeros(s.d)
        var = np.full(s.d, s.noise_std**2)
        if iv.kind == "do":
            Bk[:, t] = 0.0
            const[t], var[t] = iv.do_value, 0.0
        else:
            Bk[:, t] *= 0.0 if iv.cuts_parents else iv.weight_scale
            const[t], var[t] = iv.shift, var[t] * iv.scale**2
        M = scm.linear_total_effects(Bk)  # Z = E M for rows E of (const + noise)
        means.append(const @ M)
        sds.append(np.sqrt(np.einsum("ij,i,ij->j", M, var, M)))
    return np.array(means), np.array(sds)


@dataclass(frozen=True)
class ObservationModel:
    """Latents -> noiseless observations for one data seed.

    ``L`` (d x m): the mixing, or for the light tunnel the Jacobian at the operating point;
    ``observe(Z)`` -> (X float64, clipped actuator values per actuator or None); ``info``: what
    goes into ``meta["observation"]`` (empty for the linear mixing).
    """

    L: np.ndarray
    observe: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray | None]]
    info: dict


def observation_model(scenario: Scenario, B: np.ndarray, T: np.ndarray) -> ObservationModel:
    """The observation model of ``scenario`` for a data seed's graph ``B`` and design ``T``.

    ``linear``: X = Z L with :func:`mixing_matrix`. ``light-tunnel``: latent j -> actuator j by
    :func:`mncrl.sensors.actuator_scaling` of the exact :func:`latent_moments` (every
    environment's mean +- 5 sd fits in the actuator's range), X = the sensor readings;
    L = diag(gain) J (J: d readings / d actuators at mid-range), and X = Z L + offset exactly
    for the linear sensors, up to clipped rows.
    """
    s = scenario
    if s.observation == "linear":
        L = mixing_matrix(s)
        return ObservationModel(L=L, observe=lambda Z: (Z @ L, None), info={})
    names = s.sensor_names
    centre, gain = sensors_mod.actuator_scaling(*latent_moments(s, B, T))
    L = sensors_mod.latent_jacobian(gain, names)
    reading0 = sensors_mod.readings(sensors_mod.operating_point()[None, :], names)[0]
    info = {
        "model": "light-tunnel",
        "sensors": list(names),
        "actuators": list(sensors_mod.ACTUATORS),
        "latent_centre": centre,
        "actuator_gain": gain,
        "offset": reading0 - centre @ L,
        "parameters_sha256": sensors_mod.PARAMETERS_SHA256,
    }
    return ObservationModel(
        L=L, observe=lambda Z: sensors_mod.observe(Z, centre, gain, names), info=info
    )


def pooled_std(blocks) -> np.ndarray:
    """Column standard deviations (ddof 0) of the row-concatenation of ``blocks`` (an iterable
    of (n_k x m) arrays), accumulated block by block in float64 (Chan et al.'s update)."""
    count, mean, m2 = 0, None, None
    for block in blocks:
        block = np.asarray(block, dtype=np.float64)
        n_b = block.shape[0]
        mean_b = block.mean(axis=0)
        m2_b = ((block - mean_b) ** 2).sum(axis=0)
        if mean is None:
            count, mean, m2 = n_b, mean_b, m2_b
            continue
        delta = mean_b - mean
        total = count + n_b
        mean = mean + delta * (n_b / total)
        m2 = m2 + m2_b + delta**2 * (count * n_b / total)
        count = total
    if mean is None:
        raise MncrlError("pooled_std needs at least one block")
    return np.sqrt(m2 / count)


# --------------------------------------------------------------------------------------------
# Simulation
# --------------------------------------------------------------------------------------------


def simulate(scenario: Scenario, seed: int) -> Dataset:
    """Simulate every environment of ``scenario`` under data seed ``seed``.

    Returns a Dataset with X (n*K x m), env (n*K, environments in consecutive blocks of n rows),
    Z (n*K x d), L (d x m), targets (K x d bool) and meta {"adjacency": B (d x d weighted),
    "scenario": scenario.to_dict(), "seed": seed}, plus "observation" (the light-tunnel model's
    scaling, offset and clipped counts) and "obs_noise_relative_sd" (the per-column noise
    standard deviations) when those options are used.
    """
    if not isinstance(scenario, Scenario):
        raise MncrlError(f"simulate needs a Scenario, got {type(scenario).__name__}")
    _check_seed(seed, "seed")
    s = scenario
    B = latent_graph(s, seed)
    T = design_matrix(s, seed)
    model = observation_model(s, B, T)
    L = model.L
    order = scm.topological_order(B != 0)
    intervention = s.intervention_spec
    K, n, d, m = T.shape[0], s.n, s.d, s.m_obs
    dtype = np.dtype(s.dtype)
    X = np.empty((n * K, m), dtype=dtype)
    Z = np.empty((n * K, d), dtype=dtype)

    def noise(k):
        return scm.sample_noise(rng_for(seed, "noise", k), s.noise, s.noise_std, (n, d))

    shared = noise(0) if s.paired_noise else None

    def environment(k):
        """(Z_k, noiseless X_k, clipped counts), float64; the same draws on every call."""
        eta = shared if s.paired_noise else noise(k)
        Zk = scm.sample_latents(
            mechanism=s.mechanism,
            B=B,
            eta=eta,
            targets=T[k],
            intervention=intervention,
            order=order,
            scm2_variant=s.scm2_variant,
            env_index=k,
        )
        Xk, clipped = model.observe(Zk)
        return Zk, Xk, clipped

    meta_extra = {}
    clipped_total = np.zeros(d, dtype=np.int64)
    with single_threaded_blas():
        if s.obs_noise_relative > 0:  # a first pass for the pooled spread of noiseless X
            rel_sd = s.obs_noise_relative * pooled_std(environment(k)[1] for k in range(K))
            meta_extra["obs_noise_relative_sd"] = rel_sd
        for k in range(K):
            Zk, Xk, clipped = environment(k)
            if s.obs_noise > 0:
                Xk += s.obs_noise * rng_for(seed, "obs_noise", k).standard_normal((n, m))
            if s.obs_noise_relative > 0:
                Xk += rel_sd * rng_for(seed, "obs_noise_relative", k).standard_normal((n, m))
            if clipped is not None:
                clipped_total += clipped
            rows = slice(k * n, (k + 1) * n)
            Z[rows] = Zk
            X[rows] = Xk
    env = np.repeat(np.arange(K, dtype=np.int32), n)
    meta = {"adjacency": B, "scenario": s.to_dict(), "seed": int(seed)}
    if model.info:
        names = model.info["actuators"]
        meta["observation"] = {
            **model.info,
            "clipped": {a: int(c) for a, c in zip(names, clipped_total, strict=True)},
        }
    meta.update(meta_extra)
    return validate(Dataset(X=X, env=env, Z=Z, L=L, targets=T, meta=meta), min_envs=1)


def example1(n: int = 1000, seed: int = 0) -> Dataset:
    """Example 1 / Figure 1 of the paper (d = m = 3, float64): Z1 = e1, Z2 = Z1 + e2,
    Z3 = Z1 + Z2 + e3 with e ~ N(0, 1); environments do(Z1=1, Z2=1), do(Z1=1, Z3=2),
    do(Z2=1, Z3=3); L = [[1, 1, 1], [1, -1, 1], [1, 1, -1]]."""
    _check_seed(seed, "seed")
    B = np.array([[0.0, 1.0, 1.0], [0.0, 0.0, 1.0], [0.0, 0.0, 0.0]])
    L = np.array([[1.0, 1.0, 1.0], [1.0, -1.0, 1.0], [1.0, 1.0, -1.0]])
    T = iv_mod.paper_example(3)
    values = np.array([[1.0, 1.0, 0.0], [1.0, 0.0, 2.0], [0.0, 1.0, 3.0]])
    do = iv_mod.Intervention("do")
    Z = np.concatenate(
        [
            scm.sample_latents(
                mechanism="linear",
                B=B,
                targets=T[k],
                intervention=do,
                do_values=values[k],
                eta=scm.sample_noise(rng_for(seed, "noise", k), "gaussian", 1.0, (n, 3)),
            )
            for k in range(3)
        ]
    )
    env = np.repeat(np.arange(3, dtype=np.int32), n)
    return validate(
        Dataset(
            X=Z @ L,
            env=env,
            Z=Z,
            L=L,
            targets=T,
            meta={"adjacency": B, "do_values": values, "seed": int(seed)},
        )
    )


def train_test_split(
    ds: Dataset, seed: int, test_fraction: float = 0.25, *, same_rows: bool = False
) -> tuple[Dataset, Dataset]:
    """Split every environment into train and test rows (round(n_k * test_fraction) test rows,
    at least one of each), deterministically from ``seed``; rows keep their original order.

    ``same_rows=True`` uses one permutation for all environments (they must have equal sizes),
    as the reference implementation does with its [n, envs, d] stack; with paired noise this
    keeps the counterfactual pairing inside each part.
    """
    _check_seed(seed, "split seed")
    if not (_is_real(test_fraction) and 0.0 < test_fraction < 1.0):
        raise MncrlError(f"test_fraction must be in (0, 1), got {test_fraction!r}")
    order = np.argsort(ds.env, kind="stable")
    counts = np.bincount(ds.env, minlength=ds.n_envs)
    if counts.min() < 2:
        raise MncrlError(
            f"environment {int(counts.argmin())} has {int(counts.min())} row(s): "
            f"need at least 2 to split"
        )
    if same_rows and np.unique(counts).size > 1:
        raise MncrlError("same_rows=True needs environments of equal size")
    train, test = [], []
    start = 0
    for k, n_k in enumerate(counts):
        rows = order[start : start + n_k]
        start += n_k
        n_test = min(max(round(n_k * test_fraction), 1), n_k - 1)
        perm = rng_for(seed, "split", 0 if same_rows else k).permutation(int(n_k))
        test.append(rows[perm[:n_test]])
        train.append(rows[perm[n_test:]])
    parts = []
    for name, idx in (("train", train), ("test", test)):
        idx = np.sort(np.concatenate(idx))
        meta = {
            **ds.meta,
            "split": {"part": name, "seed": int(seed), "test_fraction": float(test_fraction)},
        }
        parts.append(
            Dataset(
                X=ds.X[idx],
                env=ds.env[idx],
                Z=None if ds.Z is None else ds.Z[idx],
                L=ds.L,
                targets=ds.targets,
                meta=meta,
            )
        )
    return parts[0], parts[1]
