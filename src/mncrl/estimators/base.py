"""The one estimator interface: ``fit(envs, *, key, latent_dim=None, **hparams) -> Fit``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np


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

    ``fit`` has the signature ``fit(envs: list[np.ndarray], *, key: int, latent_dim: int | None,
    **hparams) -> Fit`` where ``envs`` are the per-environment (n_k x m) interventional blocks.
    ``presets`` maps preset names to hyper-parameter dicts; ``default_preset`` is what a user gets
    without ``--preset`` (the most reliable configuration). ``needs_observational``: the estimator
    also accepts ``observational=`` (an n x m array of unintervened data) and uses it when given.
    ``fit_batch``, when set, fits several independent problems (one per seed) in one vmapped call:
    ``fit_batch(list_of_envs, keys, latent_dim=None, **hparams) -> list[Fit]``.
    """

    name: str
    fit: Callable[..., Fit]
    description: str
    presets: dict[str, dict] = field(default_factory=dict)
    default_preset: str | None = None
    needs_observational: bool = False
    reports_targets: bool = False
    fit_batch: Callable[..., list[Fit]] | None = None
