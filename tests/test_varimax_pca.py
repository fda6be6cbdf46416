"""`varimax-pca`: the varimax rotation and the estimator (with and without a field basis)."""

from __future__ import annotations

import numpy as np
import pytest

from mncrl import estimators
from mncrl.errors import MncrlError
from mncrl.estimators.varimax_pca import fit, varimax
from mncrl.metrics import mcc


def _haar(d, rng):
    Q, R = np.linalg.qr(rng.standard_normal((d, d)))
    return Q * np.sign(np.diag(R))


def test_varimax_undoes_a_rotation_of_simple_structure():
    rng = np.random.default_rng(0)
    simple = np.zeros((60, 3))
    for j in range(3):
        simple[20 * j : 20 * (j + 1), j] = rng.uniform(0.5, 1.0, 20)
    Q = _haar(3, rng)
    R, iterations, converged = varimax(simple @ Q)
    assert converged and iterations > 1
    recovered = simple @ Q @ R
    C = np.abs(np.corrcoef(simple.T, recovered.T)[:3, 3:])
    assert np.allclose(np.sort(C.max(axis=1)), 1.0, atol=1e-6)
    assert np.allclose(R @ R.T, np.eye(3), atol=1e-12)


def test_fit_gives_standardised_rotated_components():
    rng = np.random.default_rng(1)
    Z = rng.laplace(size=(3000, 3))
    envs = [Z[:1500] @ rng.standard_normal((3, 5)), Z[1500:] @ rng.standard_normal((3, 5))]
    f = fit(envs, latent_dim=3)
    Zhat = np.concatenate(envs) @ f.unmixing
    assert f.unmixing.shape == (5, 3) and f.targets is None
    assert np.allclose(np.cov(Zhat.T), np.eye(3), atol=1e-8)
    assert f.info["rotated_over"] == "coordinates"


def test_basis_rotates_over_grid_cells():
    rng = np.random.default_rng(2)
    cells, d = 90, 3
    patterns = np.zeros((d, cells))
    for j in range(d):
        patterns[j, 30 * j : 30 * (j + 1)] = 1.0  # spatially simple modes
    Z = rng.standard_normal((4000, d))
    field = Z @ patterns + 0.05 * rng.standard_normal((4000, cells))
    basis = np.linalg.svd(field - field.mean(axis=0), full_matrices=False)[2][:d]
    scores = (field - field.mean(axis=0)) @ basis.T
    over_cells = fit([scores], latent_dim=d, basis=basis)
    assert over_cells.info["rotated_over"] == "grid cells"
    assert mcc(Z, scores @ over_cells.unmixing) > 0.99


def test_errors_are_one_line():
    rng = np.random.default_rng(3)
    X = rng.standard_normal((100, 4))
    with pytest.raises(MncrlError, match="basis must be a"):
        fit([X], latent_dim=2, basis=np.eye(3))
    with pytest.raises(MncrlError, match="non-degenerate"):
        fit([np.outer(rng.standard_normal(100), np.ones(4))], latent_dim=2)


def test_registered_with_a_default_preset():
    r = estimators.resolve("varimax-pca")
    assert r.estimator.uses_field_basis and r.preset == "default"
