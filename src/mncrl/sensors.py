"""The light-tunnel sensor observation model: latents -> actuators -> raw sensor readings.

The physical model is ``causalchamber.simulators.lt.Deterministic`` (the light tunnel of the
Causal Chamber, package ``causalchamber`` 0.2.8, MIT licence), called, not reimplemented. Its
inputs are the actuators (:data:`ACTUATORS`: red, green, blue LED brightness in [0, 255], the
polariser angles pol_1, pol_2 in degrees in [-180, 180]) and fixed sensor settings
(:data:`SETTINGS`); its outputs are the nine sensor readings :data:`SENSORS` in their raw,
uncalibrated units. Nothing is downloaded: the simulator runs offline, and its calibrated
parameters are read from the package's own tutorial script (:data:`PARAMETERS_FILE`), whose
sha256 is pinned (:data:`PARAMETERS_SHA256`).

Which sensor reads which actuator (the simulator's equations):

- ``ir_1, vis_1, ir_2, vis_2, current``: linear in (red, green, blue), blind to the polarisers;
- ``angle_1``, ``angle_2``: linear in pol_1, resp. pol_2 (only);
- ``ir_3, vis_3``: (red, green, blue) times Malus' law cos^2(pol_1 - pol_2): nonlinear.

The five RGB sensors span only the three colour directions, so the latents are identifiable
from :data:`LINEAR_SENSORS` (Jacobian rank 5) only because the two angle sensors read the
polarisers; :func:`check_sensors` refuses a sensor set whose Jacobian has rank < 5.

Latent j drives actuator j through an affine map (:func:`actuator_scaling`): the interval that
holds every environment's population mean +- :data:`ENVELOPE_SDS` standard deviations of latent
j is mapped onto the actuator's physical range (its midpoint onto mid-range); values outside
the range are clipped and counted (:func:`to_actuators`).
"""

from __future__ import annotations

import ast
import contextlib
import functools
import hashlib
import importlib
import importlib.util
import io
from pathlib import Path

import numpy as np

from mncrl.errors import MncrlError

PACKAGE_VERSION = "0.2.8"
ACTUATORS = ("red", "green", "blue", "pol_1", "pol_2")
#: Physical range [low, high] of each actuator (LED levels; polariser angles in degrees).
ACTUATOR_RANGES = np.array([[0.0, 255.0]] * 3 + [[-180.0, 180.0]] * 2)
#: The simulator's outputs, in its own order.
SENSORS = ("ir_1", "vis_1", "ir_2", "vis_2", "ir_3", "vis_3", "current", "angle_1", "angle_2")
#: The sensors that are linear in the actuators (the default observation).
LINEAR_SENSORS = ("ir_1", "vis_1", "ir_2", "vis_2", "current", "angle_1", "angle_2")
NONLINEAR_SENSORS = ("ir_3", "vis_3")
#: Fixed sensor settings (photodiode sizes, exposure times, reference voltages), the values of
#: the package's tutorial example; they set each light sensor's gain 2^(diode + t).
SETTINGS = {
    **{f"diode_ir_{i}": 2 for i in (1, 2, 3)},
    **{f"diode_vis_{i}": 1 for i in (1, 2, 3)},
    **{f"t_{kind}_{i}": 3 for kind in ("ir", "vis") for i in (1, 2, 3)},
    "v_c": 5,
    "v_angle_1": 5,
    "v_angle_2": 5,
}
#: How many latent standard deviations around every environment's mean fit in the range.
ENVELOPE_SDS = 5.0
#: The file of the package that holds the calibrated parameters (``parameters = {...}``).
PARAMETERS_FILE = "simulators/tutorials/test_scripts/tutorial_Deterministic.py"
PARAMETERS_SHA256 = "1d923abec9a112e2cb8b46b6ea876f72a001707dfedda12399676090960c4341"
_SIMULATOR_MODULE = "causalchamber.simulators.lt.sensors.main"


# --------------------------------------------------------------------------------------------
# The package: parameters and simulator
# --------------------------------------------------------------------------------------------


def _missing_package() -> MncrlError:
    return MncrlError(
        f"the light-tunnel observation model needs the package causalchamber=={PACKAGE_VERSION} "
        f"(pip install causalchamber=={PACKAGE_VERSION})"
    )


def parameters_path() -> Path:
    """The installed package's parameter file (located without importing the package)."""
    spec = importlib.util.find_spec("causalchamber")
    if spec is None or not spec.submodule_search_locations:
        raise _missing_package()
    return Path(next(iter(spec.submodule_search_locations))) / PARAMETERS_FILE


def read_parameters(path: str | Path | None = None) -> dict[str, np.ndarray]:
    """The calibrated parameters of ``lt.Deterministic`` (name -> float64 array), read from the
    ``parameters = {...}`` literal of the package's tutorial script after checking its sha256."""
    path = parameters_path() if path is None else Path(path)
    if not path.is_file():
        raise MncrlError(f"light-tunnel parameter file not found: {path}")
    data = path.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    if digest != PARAMETERS_SHA256:
        raise MncrlError(
            f"light-tunnel parameter file {path} has sha256 {digest}, not the pinned "
            f"{PARAMETERS_SHA256} of causalchamber=={PACKAGE_VERSION}"
        )
    for node in ast.walk(ast.parse(data)):
        if (
            isinstance(node, ast.Assign)
            and isinstance(node.value, ast.Dict)
            and any(isinstance(t, ast.Name) and t.id == "parameters" for t in node.targets)
        ):
            return {
                ast.literal_eval(k): np.asarray(ast.literal_eval(v.args[0]), dtype=np.float64)
                for k, v in zip(node.value.keys, node.value.values, strict=True)
            }
    raise MncrlError(f"no 'parameters = {{...}}' literal in {path}")  # pragma: no cover


@functools.cache
def _simulator():
    """The package's simulator with the calibrated parameters. The package prints a citation
    notice (and a warning when torch is absent) on import: it goes nowhere, never to stdout."""
    params = read_parameters()
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            module = importlib.import_module(_SIMULATOR_MODULE)
    except ImportError:
        raise _missing_package() from None
    return module.Deterministic(**params)


# --------------------------------------------------------------------------------------------
# Sensors
# --------------------------------------------------------------------------------------------


def check_sensors(names) -> tuple[str, ...]:
    """A validated sensor tuple: a non-empty list of distinct names of :data:`SENSORS`."""
    if isinstance(names, str) or not isinstance(names, list | tuple) or not names:
        raise MncrlError(
            f"sensors must be a non-empty list of sensor names ({', '.join(SENSORS)}), "
            f"got {names!r}"
        )
    unknown = [s for s in names if s not in SENSORS]
    if unknown:
        raise MncrlError(f"unknown sensor {unknown[0]!r}; allowed: {', '.join(SENSORS)}")
    repeated = sorted({s for s in names if list(names).count(s) > 1})
    if repeated:
        raise MncrlError(f"sensor {repeated[0]!r} is listed twice")
    return tuple(str(s) for s in names)


def check_identifiable(names) -> None:
    """Refuse a sensor set whose Jacobian (actuators x sensors) has rank < 5: some direction
    of the latents would move no sensor at the operating point."""
    rank = int(np.linalg.matrix_rank(actuator_jacobian(names)))
    if rank < len(ACTUATORS):
        raise MncrlError(
            f"sensors {', '.join(names)} respond to only {rank} of the {len(ACTUATORS)} "
            f"independent actuator directions ({', '.join(ACTUATORS)}) at the operating point, "
            f"so the 5 latents are not identifiable: pol_1 and pol_2 are read only by angle_1 "
            f"and angle_2, and the colours need 3 independent light/current sensors"
        )


def readings(actuators: np.ndarray, sensors=SENSORS) -> np.ndarray:
    """The simulator's readings (n x len(sensors), float64, raw units) for actuator rows
    (n x 5: red, green, blue, pol_1, pol_2) under the fixed :data:`SETTINGS`."""
    import pandas as pd

    A = np.asarray(actuators, dtype=np.float64)
    if A.ndim != 2 or A.shape[1] != len(ACTUATORS):
        raise MncrlError(f"actuators must be an (n x {len(ACTUATORS)}) array, got {A.shape}")
    n = A.shape[0]
    inputs = {name: A[:, i] for i, name in enumerate(ACTUATORS)}
    inputs.update({name: np.full(n, value) for name, value in SETTINGS.items()})
    outputs = _simulator().simulate_from_inputs(pd.DataFrame(inputs))
    by_name = dict(zip(SENSORS, outputs, strict=True))
    return np.column_stack([np.asarray(by_name[s], dtype=np.float64).reshape(n) for s in sensors])


def operating_point() -> np.ndarray:
    """The actuators at mid-range (the image of the latents' envelope centre): (5,)."""
    return ACTUATOR_RANGES.mean(axis=1)


def actuator_jacobian(sensors=LINEAR_SENSORS) -> np.ndarray:
    """d readings / d actuators at the operating point, (5 x len(sensors)) float64: central
    differences of the simulator with a step of 1e-4 of each range (exact up to rounding for
    the linear sensors, whose Jacobian is the same everywhere; a local slope for ir_3, vis_3,
    whose polariser slope is 0 at the operating point, where the polarisers are aligned)."""
    J = _jacobian_all()
    return J[:, [SENSORS.index(s) for s in check_sensors(sensors)]]


@functools.cache
def _jacobian_all() -> np.ndarray:
    a0 = operating_point()
    steps = 1e-4 * (ACTUATOR_RANGES[:, 1] - ACTUATOR_RANGES[:, 0])
    shifts = np.diag(steps)
    f = readings(np.vstack([a0 + shifts, a0 - shifts]))
    k = len(ACTUATORS)
    J = (f[:k] - f[k:]) / (2.0 * steps[:, None])
    J.flags.writeable = False
    return J


# --------------------------------------------------------------------------------------------
# Latents -> actuators
# --------------------------------------------------------------------------------------------


def actuator_scaling(
    means: np.ndarray, sds: np.ndarray, envelope_sds: float = ENVELOPE_SDS
) -> tuple[np.ndarray, np.ndarray]:
    """(centre, gain), each (5,): actuator_j = mid_j + gain_j (Z_j - centre_j).

    ``means``, ``sds``: (K x 5) population means and standard deviations of the latents in each
    environment. The envelope [min_k(mean - c sd), max_k(mean + c sd)] (c = ``envelope_sds``)
    of latent j is mapped onto actuator j's range; a latent that is the same constant in every
    environment gets an envelope of width 1 around it.
    """
    means, sds = np.atleast_2d(means), np.atleast_2d(sds)
    if means.shape[-1] != len(ACTUATORS) or means.shape != sds.shape:
        raise MncrlError(
            f"the light tunnel has {len(ACTUATORS)} actuators: needs d = {len(ACTUATORS)} "
            f"latents, got moments of shape {means.shape}"
        )
    low = (means - envelope_sds * sds).min(axis=0)
    high = (means + envelope_sds * sds).max(axis=0)
    width = np.where(high > low, high - low, 1.0)
    gain = (ACTUATOR_RANGES[:, 1] - ACTUATOR_RANGES[:, 0]) / width
    return (low + high) / 2.0, gain


def to_actuators(
    Z: np.ndarray, centre: np.ndarray, gain: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(actuators (n x 5) clipped to their ranges, number of clipped values per actuator (5,))."""
    A = operating_point() + (np.asarray(Z, dtype=np.float64) - centre) * gain
    low, high = ACTUATOR_RANGES[:, 0], ACTUATOR_RANGES[:, 1]
    clipped = ((A < low) | (A > high)).sum(axis=0)
    return np.clip(A, low, high), clipped


def latent_jacobian(gain: np.ndarray, sensors=LINEAR_SENSORS) -> np.ndarray:
    """The (5 x m) mixing L = diag(gain) @ :func:`actuator_jacobian`: d readings / d latents at
    the operating point; X = Z L + offset exactly for the linear sensors (no clipping)."""
    return np.asarray(gain, dtype=np.float64)[:, None] * actuator_jacobian(sensors)


def observe(
    Z: np.ndarray, centre: np.ndarray, gain: np.ndarray, sensors=LINEAR_SENSORS
) -> tuple[np.ndarray, np.ndarray]:
    """(readings (n x m) float64 in raw units, clipped counts (5,)) for latents Z (n x 5)."""
    A, clipped = to_actuators(Z, centre, gain)
    return readings(A, sensors), clipped


__all__ = [
    "ACTUATORS",
    "ACTUATOR_RANGES",
    "ENVELOPE_SDS",
    "LINEAR_SENSORS",
    "NONLINEAR_SENSORS",
    "PACKAGE_VERSION",
    "PARAMETERS_FILE",
    "PARAMETERS_SHA256",
    "SENSORS",
    "SETTINGS",
    "actuator_jacobian",
    "actuator_scaling",
    "check_identifiable",
    "check_sensors",
    "latent_jacobian",
    "observe",
    "operating_point",
    "parameters_path",
    "read_parameters",
    "readings",
    "to_actuators",
]
