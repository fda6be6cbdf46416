"""The one estimator interface: ``fit(envs, *, seed, latent_dim=None, **hparams) -> Fit``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from mncrl.errors import MncrlError


@dataclass(frozen=True)
class Fit:
    """Result of fitting an estimator.

    ``unmixing`` is W (m x d): Zhat = X @ W. ``targets`` (K x d bool), when the estimator
    reports them, says which estimated latent (column of W) each environment intervened on.
    ``info`` carries diagnostics (loss curve, iterations, timings, chosen preset, ...).
    """

    unmixing: np.ndarray
    targets: np.ndarray | None = None
    info: dict = field(default_factory=dict)

    def transform(self, X: np.ndarray) -> np.ndarray:
        return np.asarray(X) @ self.unmixing


@dataclass(frozen=True)
class Estimator:
    """A registry entry.

    ``fit`` has the signature ``fit(envs: list[np.ndarray], *, seed: int, latent_dim: int | None,
    **hparams) -> Fit`` where ``envs`` are the per-environment (n_k x m) interventional blocks
    and ``seed`` an integer seed (deterministic estimators accept and ignore it).
    ``presets`` maps preset names to hyper-parameter dicts; ``default_preset`` is what a user gets
    without ``--preset`` (the most reliable configuration). ``needs_observational``: the estimator
    also accepts ``observational=`` (an n x m array of unintervened data) and uses it when given.
    ``fit_batch``, when set, fits several independent problems (one per seed) in one vmapped call:
    ``fit_batch(list_of_envs, seeds, latent_dim=None, **hparams) -> list[Fit]``.
    ``uses_field_basis``: the estimator also accepts ``basis=`` (p x C, orthonormal rows: the
    EOFs of a gridded field whose signal-subspace coordinates the data are, :mod:`mncrl.field`)
    and uses it (``varimax-pca`` rotates loadings over grid cells, not over coordinates).
    ``fitted_on_observational``: the estimator fits the observational rows alone (``ica``), so
    experiments score it on observational test rows; the others are scored on the
    interventional ones (where their targets can be checked too).
    ``applicable``, when set, says whether the estimator's theory covers a :class:`Setting`:
    ``applicable(setting) -> None`` (it does) or the reason it does not, one line. Experiments
    record a setting an estimator does not cover as "not applicable" instead of fitting it.
    """

    name: str
    fit: Callable[..., Fit]
    description: str
    presets: dict[str, dict] = field(default_factory=dict)
    default_preset: str | None = None
    needs_observational: bool = False
    reports_targets: bool = False
    fit_batch: Callable[..., list[Fit]] | None = None
    applicable: Callable[[Setting], str | None] | None = None
    fitted_on_observational: bool = False
    uses_field_basis: bool = False

    def not_applicable(self, setting: Setting) -> str | None:
        """Why the estimator does not cover ``setting`` (None when it does)."""
        return None if self.applicable is None else self.applicable(setting)


@dataclass(frozen=True)
class Setting:
    """What an experiment knows about a data set before fitting: the intervention ``kind``
    ("do", "stochastic" or "soft"), the (K x d) bool ``targets`` of the interventional
    environments and whether an observational environment exists (``observational``)."""

    kind: str
    targets: np.ndarray
    observational: bool


def coerce_hparam(estimator: str, key: str, value, default):
    """``value`` converted to the type of ``default`` (MncrlError when it cannot be).

    Integers stay integers (2.0 -> 2), numbers become finite floats, strings and booleans must
    match; a None default accepts anything (the estimator checks such keys itself).
    """

    def fail(kind):
        raise MncrlError(f"{estimator}: hyper-parameter {key} must be {kind}, got {value!r}")

    if default is None or value is None:
        return value
    if isinstance(default, bool):
        if not isinstance(value, bool | np.bool_):
            fail("true or false")
        return bool(value)
    if isinstance(default, str):
        if not isinstance(value, str):
            fail("a string")
        return value
    if isinstance(value, bool | np.bool_) or not isinstance(value, int | float | np.number):
        fail("a number")
    if isinstance(default, int | np.integer):
        if not float(value).is_integer():
            fail("an integer")
        return int(value)
    if not np.isfinite(float(value)):
        fail("a finite number")
    return float(value)


def do_only(setting: Setting) -> str | None:
    """``applicable`` of the estimators whose theory needs do-interventions (zero-variance
    directions): the paper's ``sparse-variance`` and ``subspace``."""
    if setting.kind != "do":
        return f"needs do-interventions (zero-variance directions), not {setting.kind} ones"
    return None


def needs_precisions(setting: Setting, name: str) -> str | None:
    """The part of ``applicable`` every precision-matrix estimator shares (``lincd``, ``umni``,
    ``subspace-soft``): stochastic or soft interventions and an observational environment."""
    if setting.kind not in ("stochastic", "soft"):
        return (
            f"{name} needs stochastic or soft interventions (precision matrices), "
            f"got {setting.kind}"
        )
    if not setting.observational:
        return f"{name} needs an observational environment"
    return None
