"""Estimator registry: name -> :class:`~mncrl.estimators.base.Estimator`.

Adding an estimator = one module exposing ``ESTIMATOR`` (an ``Estimator``) + one line in
``_MODULES`` + tests. Modules are imported lazily so ``mncrl --help`` stays fast.
"""

from __future__ import annotations

import importlib

from mncrl.errors import MncrlError
from mncrl.estimators.base import Estimator, Fit

_MODULES = {
    "sparse-variance": "mncrl.estimators.sparse_variance",
    "subspace": "mncrl.estimators.subspace",
    "icrl": "mncrl.estimators.icrl",
    "ica": "mncrl.estimators.ica",
}


def names() -> list[str]:
    return list(_MODULES)


def get(name: str) -> Estimator:
    """The registered estimator called ``name``; MncrlError listing the choices otherwise."""
    if name not in _MODULES:
        raise MncrlError(f"unknown estimator '{name}'; choose from: {', '.join(_MODULES)}")
    return importlib.import_module(_MODULES[name]).ESTIMATOR


def resolve_hparams(estimator: Estimator, preset: str | None, overrides: dict | None = None) -> dict:
    """Hyper-parameters for ``preset`` (default preset when None) updated by ``overrides``."""
    preset = estimator.default_preset if preset is None else preset
    if preset is None:
        params: dict = {}
    elif preset not in estimator.presets:
        choices = ", ".join(estimator.presets) or "(none)"
        raise MncrlError(f"unknown preset '{preset}' for estimator '{estimator.name}'; choose from: {choices}")
    else:
        params = dict(estimator.presets[preset])
    params.update(overrides or {})
    return params


__all__ = ["Estimator", "Fit", "get", "names", "resolve_hparams"]
