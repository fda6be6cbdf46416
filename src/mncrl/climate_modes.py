"""A ground-truth benchmark of climate modes: a vector-autoregressive SCM of d latent modes
mixed into a gridded field by spatial patterns, with regimes that shift several modes at once.

The model follows the SAVAR benchmark (Tibau et al. 2022, "SAVAR: a spatially-aggregated
vector-autoregressive model"), reimplemented from its description, row-vector convention as
:mod:`mncrl.simulation`::

    z_t = z_t B_k + z_{t-1} A_k + c_k + e_t,   e_t ~ N(0, diag(sigma_k^2))    (d modes)
    x_t = z_t L + n_t                                                          (C grid cells)

- B (d x d) is a contemporaneous DAG (Erdos-Renyi with edge probability ``graph_p`` over a
  random order, weights of size ``weight_range`` with random signs), A (d x d) the lag-1 links:
  ``autocorrelation`` on the diagonal (every mode's memory) and cross links i -> j (i != j) with
  probability ``lag_p`` and weight +-``lag_weight``, all multiplied by ``memory`` (0: no lags,
  the modes are independent in time; 1: as given). A is then scaled down, if needed, so that
  the process is stationary (spectral radius of A (I - B)^-1 at most ``max_radius``).
- Regime k intervenes on the modes of row k of the target design (``design``, any design of
  :mod:`mncrl.interventions`): ``do`` clamps mode j to ``do_value`` (no dynamics, no noise);
  ``stochastic`` cuts its contemporaneous and lagged parents and redraws it as
  ``shift + scale * e``; ``soft`` keeps them with weights x ``weight_scale`` and adds ``shift``
  to a noise of sd x ``scale``. Each regime runs ``n`` steps after a burn-in of ``burn_in``.
- L (d x C) holds one spatial pattern per mode, scaled to unit root-mean-square:
  ``sst-eofs``: the d leading EOFs of the Pacific SST anomalies shipped with eofs
  (:mod:`mncrl.climate_data`; a 5-degree grid, 450 ocean cells), the patterns of real
  modes, linearly interpolated onto a grid ``refine`` times finer (cells next to land, where
  the interpolation would reach over land, are dropped: 1,604 ocean cells at ``refine: 2``, the file's 450 at ``refine: 1``);
  ``blobs``: Gaussian blobs on a ``grid`` = [nlat, nlon] grid (centres uniform, widths 2-5
  cells, random signs; they may overlap), the modes of SAVAR.
- n_t is spatially correlated noise: white noise smoothed by a Gaussian kernel of width
  ``noise_length`` grid cells, then scaled so that its sd in every cell is ``obs_noise`` times
  the root-mean-square over cells of the noiseless field's sd (a spatially uniform noise level;
  ``obs_noise: 0.1`` = "10% noise").

When do the estimators' conditions hold? A do-regime makes its targets constant, so their
unmixing directions have zero variance in that regime whatever the lags: the do-estimators'
condition (Assumption 4 on the design) holds. With stochastic or soft regimes the lags make the
innovations of the modes dependent (z_{t-1} A is correlated across modes), which the estimators
that read precision matrices assume away: those cells are outside the theory unless
``memory: 0``.

Randomness: named streams of :func:`mncrl.simulation.rng_for` (graph and weights, patterns,
design, innovations of regime k, field noise of regime k); the same (scenario, seed) gives
bit-identical arrays.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields

import numpy as np

from mncrl import interventions as iv_mod
from mncrl.errors import MncrlError
from mncrl.scm import erdos_renyi_dag
from mncrl.simulation import rng_for
from mncrl.values import is_int as _int
from mncrl.values import is_real as _real

PATTERNS = ("sst-eofs", "blobs")


@dataclass(frozen=True)
class ModeScenario:
    """Everything that defines a simulated climate-mode data set except the seed (module
    docstring)."""

    d: int = 5
    n: int = 3000
    patterns: str = "sst-eofs"
    grid: tuple = (20, 30)
    refine: int = 2
    pattern_seed: int = 0
    graph_p: float = 0.5
    weight_range: tuple = (0.3, 0.8)
    autocorrelation: float = 0.5
    lag_p: float = 0.3
    lag_weight: float = 0.2
    memory: float = 1.0
    max_radius: float = 0.9
    noise_std: float = 1.0
    design: str = "leave-one-out"
    design_params: dict = field(default_factory=dict)
    intervention: str = "do"
    do_value: float = 1.0
    shift: float = 1.0
    scale: float = 2.0
    weight_scale: float = 0.5
    observational: bool = False
    obs_noise: float = 0.1
    noise_length: float = 2.0
    burn_in: int = 200

    def to_dict(self) -> dict:
        out = asdict(self)
        out["grid"], out["weight_range"] = list(self.grid), list(self.weight_range)
        out["design_params"] = dict(self.design_params)
        return out

    @classmethod
    def from_dict(cls, data) -> ModeScenario:
        """A checked scenario from plain data; MncrlError naming the first bad key."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise MncrlError(
                f"unknown mode-scenario key '{unknown[0]}'; keys: {', '.join(sorted(known))}"
            )
        values = dict(data)
        for key in ("grid", "weight_range"):
            if isinstance(values.get(key), list):
                values[key] = tuple(values[key])
        s = cls(**values)
        check(s)
        return s

    @property
    def intervention_spec(self) -> iv_mod.Intervention:
        return iv_mod.Intervention(
            kind=self.intervention,
            do_value=self.do_value,
            shift=self.shift,
            scale=self.scale,
            weight_scale=self.weight_scale,
        )


def _fail(key: str, rule: str, value) -> None:
    raise MncrlError(f"mode scenario: {key} must be {rule}, got {value!r}")


def check(s: ModeScenario) -> None:
    """MncrlError with one line for the first invalid field of ``s``."""
    for key, low in (("d", 1), ("n", 10), ("burn_in", 0), ("pattern_seed", 0), ("refine", 1)):
        if not (_int(getattr(s, key)) and getattr(s, key) >= low):
            _fail(key, f"an integer >= {low}", getattr(s, key))
    if s.patterns not in PATTERNS:
        _fail("patterns", f"one of {', '.join(PATTERNS)}", s.patterns)
    if s.patterns == "sst-eofs" and s.d > 10:
        _fail("d", "at most 10 with patterns sst-eofs (the field has 50 winters)", s.d)
    g = s.grid
    if not (isinstance(g, tuple) and len(g) == 2 and all(_int(v) and v >= 4 for v in g)):
        _fail("grid", "a pair [nlat, nlon] of integers >= 4", g)
    if s.patterns == "blobs" and g[0] * g[1] < s.d:
        _fail("grid", f"at least d = {s.d} cells", g)
    wr = s.weight_range
    if not (
        isinstance(wr, tuple) and len(wr) == 2 and all(_real(v) for v in wr) and 0 <= wr[0] <= wr[1]
    ):
        _fail("weight_range", "a pair [low, high] with 0 <= low <= high", wr)
    for key in ("graph_p", "lag_p"):
        if not (_real(getattr(s, key)) and 0 <= getattr(s, key) <= 1):
            _fail(key, "a probability in [0, 1]", getattr(s, key))
    if not (_real(s.autocorrelation) and -1 < s.autocorrelation < 1):
        _fail("autocorrelation", "a number in (-1, 1)", s.autocorrelation)
    if not (_real(s.max_radius) and 0 < s.max_radius < 1):
        _fail("max_radius", "a number in (0, 1) (stationarity)", s.max_radius)
    for key in ("lag_weight", "memory", "obs_noise", "noise_length"):
        if not (_real(getattr(s, key)) and getattr(s, key) >= 0):
            _fail(key, "a number >= 0", getattr(s, key))
    if not (_real(s.noise_std) and s.noise_std > 0):
        _fail("noise_std", "a number > 0", s.noise_std)
    if not isinstance(s.observational, bool):
        _fail("observational", "true or false", s.observational)
    if s.design not in iv_mod.DESIGNS:
        _fail("design", f"one of {', '.join(iv_mod.DESIGNS)}", s.design)
    if not isinstance(s.design_params, dict):
        _fail("design_params", "a mapping", s.design_params)
    iv_mod.make_design(s.design, s.d, 0, **s.design_params)
    s.intervention_spec  # noqa: B018  (checks the intervention parameters)


@dataclass(frozen=True)
class ModeData:
    """One simulated data set: ``X`` (K x n x C field, float64), ``Z`` (K x n x d modes),
    ``L`` (d x C patterns), ``targets`` (K x d bool; an all-False row is observational, last),
    ``B`` / ``A`` (contemporaneous / lag-1 weights), and the grid: ``lat`` / ``lon`` of every
    cell (C), ``shape`` (nlat, nlon) and ``mask`` (nlat x nlon bool, True where a cell is in X;
    cells are the True entries in row-major order)."""

    X: np.ndarray
    Z: np.ndarray
    L: np.ndarray
    targets: np.ndarray
    B: np.ndarray
    A: np.ndarray
    lat: np.ndarray
    lon: np.ndarray
    shape: tuple
    mask: np.ndarray


# --------------------------------------------------------------------------------------------
# patterns
# --------------------------------------------------------------------------------------------


def _unit_rms(L: np.ndarray) -> np.ndarray:
    return L / np.sqrt(np.mean(L**2, axis=1, keepdims=True))


def sst_eof_patterns(d: int, refine: int = 1):
    """(L d x C, lat C, lon C, (nlat, nlon), mask): the d leading area-weighted EOFs of the
    shipped Pacific SST anomalies in field units (unit RMS), on the ocean cells of a grid
    ``refine`` times finer than the file's (bilinear interpolation; NaN, hence dropped, where a
    neighbour is land)."""
    from scipy.interpolate import RegularGridInterpolator

    from mncrl.climate_data import example_path
    from mncrl.field import coslat_weights, signal_subspace
    from mncrl.field_io import open_field

    f = open_field(example_path("sst_ndjfm_anom"), "sst")
    lat = np.asarray(f.grid_lat, dtype=np.float64)
    lon = np.asarray(f.grid_lon, dtype=np.float64)
    ocean = f.mask
    LAT, LON = np.meshgrid(lat, lon, indexing="ij")
    w = coslat_weights(LAT[ocean])
    red = signal_subspace(np.asarray(f.data.compute(), dtype=np.float64), d, weights=w)
    maps = np.full((d, *ocean.shape), np.nan)
    maps[:, ocean] = red.eofs / w
    if refine == 1:
        return _unit_rms(maps[:, ocean]), LAT[ocean], LON[ocean], ocean.shape, ocean
    fine_lat = np.linspace(lat[0], lat[-1], (len(lat) - 1) * refine + 1)
    fine_lon = np.linspace(lon[0], lon[-1], (len(lon) - 1) * refine + 1)
    FLAT, FLON = np.meshgrid(fine_lat, fine_lon, indexing="ij")
    points = np.stack([FLAT.ravel(), FLON.ravel()], axis=1)
    fine = np.stack([RegularGridInterpolator((lat, lon), m)(points) for m in maps])
    fine = fine.reshape(d, *FLAT.shape)
    mask = np.isfinite(fine).all(axis=0)
    return _unit_rms(fine[:, mask]), FLAT[mask], FLON[mask], mask.shape, mask


def blob_patterns(d: int, grid: tuple, rng: np.random.Generator):
    """(L, lat, lon, shape, mask) of d Gaussian blobs on an nlat x nlon grid spanning 60S-60N
    and 0-360E: centres uniform at least 2 cells from the edges, widths uniform in [2, 5]
    cells, signs random."""
    nlat, nlon = grid
    ii, jj = np.meshgrid(np.arange(nlat), np.arange(nlon), indexing="ij")
    lo = min(2.0, (nlat - 1) / 2), min(2.0, (nlon - 1) / 2)
    ci = rng.uniform(lo[0], nlat - 1 - lo[0], d)
    cj = rng.uniform(lo[1], nlon - 1 - lo[1], d)
    width = rng.uniform(2.0, 5.0, d)
    sign = rng.choice([-1.0, 1.0], d)
    r2 = (ii[None] - ci[:, None, None]) ** 2 + (jj[None] - cj[:, None, None]) ** 2
    L = (sign[:, None, None] * np.exp(-r2 / (2 * width[:, None, None] ** 2))).reshape(d, -1)
    lat = np.linspace(-60.0, 60.0, nlat)
    lon = np.linspace(0.0, 360.0, nlon, endpoint=False)
    LAT, LON = np.meshgrid(lat, lon, indexing="ij")
    return _unit_rms(L), LAT.ravel(), LON.ravel(), (nlat, nlon), np.ones((nlat, nlon), bool)


def patterns(s: ModeScenario):
    """The scenario's patterns (see :func:`sst_eof_patterns`, :func:`blob_patterns`)."""
    if s.patterns == "sst-eofs":
        return sst_eof_patterns(s.d, s.refine)
    return blob_patterns(s.d, s.grid, rng_for(s.pattern_seed, "mode_patterns"))


# --------------------------------------------------------------------------------------------
# dynamics
# --------------------------------------------------------------------------------------------


def mode_graph(s: ModeScenario, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(B, A): contemporaneous DAG weights and lag-1 weights (module docstring)."""
    d = s.d
    order = rng.permutation(d)
    dag = erdos_renyi_dag(d, s.graph_p, rng)[np.ix_(np.argsort(order), np.argsort(order))]
    low, high = s.weight_range
    B = np.where(dag, rng.uniform(low, high, (d, d)) * rng.choice([-1.0, 1.0], (d, d)), 0.0)
    cross = (rng.random((d, d)) < s.lag_p) & ~np.eye(d, dtype=bool)
    A = np.where(cross, s.lag_weight * rng.choice([-1.0, 1.0], (d, d)), 0.0)
    A[np.diag_indices(d)] = s.autocorrelation
    A *= s.memory
    radius = np.abs(np.linalg.eigvals(A @ np.linalg.inv(np.eye(d) - B))).max()
    if radius > s.max_radius:
        A *= s.max_radius / radius
    return B, A


def regime_matrices(s: ModeScenario, B, A, targets_k):
    """(B_k, A_k, sigma_k, c_k) of one regime (module docstring)."""
    iv = s.intervention_spec
    t = np.asarray(targets_k, dtype=bool)
    Bk, Ak = B.copy(), A.copy()
    sigma = np.full(s.d, s.noise_std)
    c = np.zeros(s.d)
    if iv.kind == "do":
        Bk[:, t], Ak[:, t], sigma[t], c[t] = 0.0, 0.0, 0.0, iv.do_value
    elif iv.kind == "stochastic":
        Bk[:, t], Ak[:, t], sigma[t], c[t] = 0.0, 0.0, iv.scale * s.noise_std, iv.shift
    else:
        Bk[:, t] *= iv.weight_scale
        Ak[:, t] *= iv.weight_scale
        sigma[t], c[t] = iv.scale * s.noise_std, iv.shift
    return Bk, Ak, sigma, c


def run_regime(Bk, Ak, sigma, c, n: int, burn_in: int, rng: np.random.Generator) -> np.ndarray:
    """n steps (n x d) of one regime after ``burn_in`` steps from z = 0."""
    d = Bk.shape[0]
    M = np.linalg.inv(np.eye(d) - Bk)
    AM, cM = Ak @ M, c @ M
    E = (rng.standard_normal((burn_in + n, d)) * sigma) @ M + cM
    Z = np.empty((burn_in + n, d))
    z = np.zeros(d)
    for t in range(burn_in + n):
        z = z @ AM + E[t]
        Z[t] = z
    return Z[burn_in:]


def spatial_noise(shape, mask, n: int, length: float, rng: np.random.Generator) -> np.ndarray:
    """n x C unit-variance noise on the masked grid, Gaussian-smoothed over ``length`` cells
    (white when 0)."""
    from scipy.ndimage import gaussian_filter

    white = rng.standard_normal((n, *shape))
    if length > 0:
        white = gaussian_filter(white, sigma=(0.0, length, length), mode="wrap")
    noise = white[:, mask]
    return noise / noise.std(axis=0, keepdims=True)


def simulate_modes(s: ModeScenario, seed: int) -> ModeData:
    """One data set of scenario ``s`` under ``seed`` (module docstring)."""
    L, lat, lon, shape, mask = patterns(s)
    B, A = mode_graph(s, rng_for(seed, "mode_graph"))
    T = iv_mod.make_design(s.design, s.d, rng_for(seed, "design"), **s.design_params)
    if s.observational:
        T = np.vstack([T, np.zeros((1, s.d), dtype=bool)])
    Z = np.stack(
        [
            run_regime(
                *regime_matrices(s, B, A, T[k]), s.n, s.burn_in, rng_for(seed, "mode_noise", k)
            )
            for k in range(T.shape[0])
        ]
    )
    signal = Z @ L
    level = s.obs_noise * np.sqrt(np.mean(signal.reshape(-1, L.shape[1]).var(axis=0)))
    X = signal + level * np.stack(
        [
            spatial_noise(shape, mask, s.n, s.noise_length, rng_for(seed, "field_noise", k))
            for k in range(T.shape[0])
        ]
    )
    return ModeData(X=X, Z=Z, L=L, targets=T, B=B, A=A, lat=lat, lon=lon, shape=shape, mask=mask)
