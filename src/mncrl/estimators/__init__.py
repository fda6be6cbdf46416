"""Estimator registry: name -> :class:`~mncrl.estimators.base.Estimator`, and the one place
hyper-parameters are resolved (:func:`resolve`: preset, overrides, type coercion) for the API,
the command line and the workflow.

Adding an estimator = one module exposing ``ESTIMATOR`` (an ``Estimator``) + one line in
``_MODULES`` + tests. Modules are imported lazily so ``mncrl --help`` stays fast and a process
imports only the estimators it uses.
"""

from __future__ import annotations

import importlib
from typing import NamedTuple

from mncrl.errors import MncrlError
from mncrl.estimators.base import Estimator, Fit, coerce_hparam

_MODULES = {
    "sparse-variance": "mncrl.estimators.sparse_variance",
    "subspace": "mncrl.estimators.subspace",
    "subspace-soft": "mncrl.estimators.subspace_soft",
    "icrl": "mncrl.estimators.icrl",
    "ica": "mncrl.estimators.ica",
    "lincd": "mncrl.estimators.lincd",
    "umni": "mncrl.estimators.umni",
    "varimax-pca": "mncrl.estimators.varimax_pca",
}


def names() -> list[str]:
    return list(_MODULES)


def get(name: str) -> Estimator:
    """The registered estimator called ``name``; MncrlError listing the choices otherwise."""
    if name not in _MODULES:
        raise MncrlError(f"unknown estimator '{name}'; choose from: {', '.join(_MODULES)}")
    try:
        return importlib.import_module(_MODULES[name]).ESTIMATOR
    except ImportError as exc:
        raise MncrlError(
            f"estimator '{name}' is registered but cannot be imported ({exc})"
        ) from None


class Resolved(NamedTuple):
    """An estimator with its preset name and final hyper-parameters."""

    estimator: Estimator
    preset: str | None
    hparams: dict


def resolve(name: str, preset: str | None = None, overrides: dict | None = None) -> Resolved:
    """The estimator ``name`` with the hyper-parameters of ``preset`` (its default preset when
    None) updated by ``overrides``.

    Overrides must name a key of some preset of the estimator (when it has presets) and are
    converted to the type of that key's default (:func:`~mncrl.estimators.base.coerce_hparam`).
    MncrlError for an unknown estimator, preset or key, or a value of the wrong type.
    """
    est = get(name)
    overrides = dict(overrides or {})
    preset = est.default_preset if preset is None else preset
    if preset is None:
        params: dict = {}
    elif preset not in est.presets:
        choices = ", ".join(est.presets) or "(none)"
        raise MncrlError(
            f"unknown preset '{preset}' for estimator '{est.name}'; choose from: {choices}"
        )
    else:
        params = dict(est.presets[preset])
    if est.presets:
        defaults: dict = {}
        for values in est.presets.values():
            for key, value in values.items():
                defaults.setdefault(key, value)
        unknown = sorted(set(overrides) - set(defaults))
        if unknown:
            raise MncrlError(
                f"unknown hyper-parameter '{unknown[0]}' for {name}; valid: "
                f"{', '.join(sorted(defaults))}"
            )
        overrides = {k: coerce_hparam(name, k, v, defaults[k]) for k, v in overrides.items()}
    params.update(overrides)
    return Resolved(est, preset, params)


__all__ = ["Estimator", "Fit", "Resolved", "get", "names", "resolve"]
