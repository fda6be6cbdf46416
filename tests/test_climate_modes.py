"""The climate-mode benchmark's simulator (mncrl.climate_modes)."""

from __future__ import annotations

import numpy as np
import pytest

from mncrl.climate_modes import ModeScenario, mode_graph, simulate_modes, sst_eof_patterns
from mncrl.errors import MncrlError
from mncrl.simulation import rng_for

SMALL = {"d": 3, "n": 400, "patterns": "blobs", "grid": [8, 10], "burn_in": 50}


def scenario(**changes) -> ModeScenario:
    return ModeScenario.from_dict({**SMALL, **changes})


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"patterns": "waves"}, "patterns must be one of"),
        ({"grid": [3, 10]}, "grid must be a pair"),
        ({"memory": -1.0}, "memory must be a number >= 0"),
        ({"autocorrelation": 1.0}, "autocorrelation must be a number in (-1, 1)"),
        ({"max_radius": 1.0}, "max_radius must be a number in (0, 1)"),
        ({"intervention": "gentle"}, "intervention type"),
        ({"design": "nope"}, "design must be one of"),
        ({"refine": 0}, "refine must be an integer >= 1"),
        ({"colour": 1}, "unknown mode-scenario key 'colour'"),
    ],
)
def test_bad_scenarios_name_the_key(changes, message):
    with pytest.raises(MncrlError, match=None) as err:
        scenario(**changes)
    assert message in str(err.value)


def test_same_seed_same_arrays_and_to_dict_round_trip():
    s = scenario()
    a, b = simulate_modes(s, 7), simulate_modes(s, 7)
    assert np.array_equal(a.X, b.X) and np.array_equal(a.Z, b.Z)
    assert not np.array_equal(a.X, simulate_modes(s, 8).X)
    assert ModeScenario.from_dict(s.to_dict()) == s


def test_do_regimes_clamp_their_targets_and_leave_the_others_moving():
    s = scenario(intervention="do", do_value=2.0, observational=True)
    data = simulate_modes(s, 0)
    assert data.targets.shape == (s.d + 1, s.d) and not data.targets[-1].any()
    sd = data.Z.std(axis=1)
    assert np.all(sd[data.targets] == 0.0)
    assert np.allclose(data.Z[:, 0][data.targets], 2.0)
    assert np.all(sd[~data.targets] > 0.1)


def test_memory_zero_removes_every_lag_and_the_process_is_stationary():
    s = scenario(memory=0.0)
    _, A = mode_graph(s, rng_for(0, "mode_graph"))
    assert not A.any()
    for seed in range(5):
        B, A = mode_graph(
            scenario(autocorrelation=0.95, lag_p=1.0, lag_weight=0.9), rng_for(seed, "mode_graph")
        )
        radius = np.abs(np.linalg.eigvals(A @ np.linalg.inv(np.eye(3) - B))).max()
        assert radius <= 0.9 + 1e-12
        # B is a DAG: nilpotent
        assert np.allclose(np.linalg.matrix_power(B, 3), 0.0)


def test_lag_one_autocorrelation_follows_memory():
    def lag1(memory):
        Z = simulate_modes(scenario(intervention="soft", memory=memory, lag_p=0.0, n=4000), 1).Z[0]
        Z = Z - Z.mean(axis=0)
        return np.mean([np.corrcoef(Z[1:, j], Z[:-1, j])[0, 1] for j in range(3)])

    assert abs(lag1(0.0)) < 0.1
    assert lag1(1.0) > 0.3


def test_noise_level_is_relative_to_the_typical_signal_sd():
    s = scenario(obs_noise=0.5, noise_length=1.0)
    data = simulate_modes(s, 3)
    clean = simulate_modes(scenario(obs_noise=0.0), 3).X
    noise = (data.X - clean).reshape(-1, data.X.shape[2])
    signal_sd = np.sqrt(np.mean(clean.reshape(-1, clean.shape[2]).var(axis=0)))
    assert np.allclose(noise.std(axis=0), 0.5 * signal_sd, rtol=0.01)  # unit sd per regime
    # spatially correlated: neighbouring cells' noise correlates
    grid = noise.reshape(-1, 8, 10)
    assert np.corrcoef(grid[:, 3, 4], grid[:, 3, 5])[0, 1] > 0.5


def test_blob_patterns_have_unit_rms_and_cover_the_grid():
    data = simulate_modes(scenario(), 0)
    assert data.L.shape == (3, 80) and data.mask.all() and data.shape == (8, 10)
    assert np.allclose(np.sqrt(np.mean(data.L**2, axis=1)), 1.0)
    assert data.lat.min() == -60.0 and data.lat.max() == 60.0


def test_sst_eof_patterns_are_real_eofs_on_the_ocean():
    L1, lat1, lon1, shape1, mask1 = sst_eof_patterns(4, 1)
    assert shape1 == (18, 30) and L1.shape == (4, 450) and mask1.sum() == 450
    assert np.allclose(np.sqrt(np.mean(L1**2, axis=1)), 1.0)
    # orthogonal under area weights (they are EOFs)
    w = np.cos(np.deg2rad(lat1))
    G = (L1 * w) @ L1.T
    assert np.allclose(G - np.diag(np.diag(G)), 0.0, atol=1e-8 * np.abs(G).max())
    L2, _, _, shape2, mask2 = sst_eof_patterns(4, 2)
    assert shape2 == (35, 59) and L2.shape[1] == mask2.sum() > 1500
