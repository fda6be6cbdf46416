"""The light-tunnel sensor scenario (mncrl.sensors + observation: light-tunnel) and per-sensor
relative observation noise."""

import hashlib
import subprocess
import sys

import numpy as np
import pytest

from mncrl import data
from mncrl import sensors as sm
from mncrl.cli import main
from mncrl.errors import MncrlError
from mncrl.simulation import Scenario, mixing_matrix, pooled_std, simulate

LT = Scenario(d=5, n=2_000, observation="light-tunnel", dtype="float64")


def digest(ds) -> str:
    h = hashlib.sha256()
    for a in (ds.X, ds.Z, ds.L, ds.env, ds.targets):
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


# ------------------------------------------------------------------ the data


def test_same_seed_is_bit_identical_and_seeds_differ():
    s = LT.replace(obs_noise_relative=0.01)
    assert digest(simulate(s, 3)) == digest(simulate(s, 3))
    assert digest(simulate(s, 3)) != digest(simulate(s, 4))


def test_raw_units_keep_the_sensors_spread():
    ds = simulate(LT, 0)
    assert ds.X.shape == (5 * 2_000, 7) and ds.L.shape == (5, 7)
    assert ds.meta["observation"]["sensors"] == list(sm.LINEAR_SENSORS)
    sd = ds.X.std(axis=0)
    assert sd.max() / sd.min() > 100
    assert sum(ds.meta["observation"]["clipped"].values()) == 0


def test_linear_sensors_are_z_l_plus_offset():
    ds = simulate(LT, 1)
    pred = ds.Z @ ds.L + ds.meta["observation"]["offset"]
    assert np.allclose(ds.X, pred, rtol=1e-9, atol=1e-9 * np.abs(ds.X).max())


@pytest.mark.parametrize("intervention", ["do", "stochastic", "soft"])
def test_do_targets_are_constant_actuators(intervention):
    ds = simulate(LT.replace(intervention=intervention, observational=True), 2)
    info = ds.meta["observation"]
    for k, t in enumerate(ds.targets):
        A, _ = sm.to_actuators(ds.Z[ds.env == k], info["latent_centre"], info["actuator_gain"])
        assert (np.ptp(A[:, ~t], axis=0) > 1.0).all()
        if intervention == "do":
            assert (np.ptp(A[:, t], axis=0) == 0).all()
            # X varies only along the free latents' rows of L
            Xk = ds.X[ds.env == k]
            sv = np.linalg.svd(Xk - Xk.mean(axis=0), compute_uv=False)
            assert (sv[int((~t).sum()) :] < 1e-9 * sv[0]).all()


@pytest.mark.parametrize("sensors", [sm.LINEAR_SENSORS, sm.SENSORS])
def test_l_is_the_jacobian_of_latents_to_readings(sensors):
    ds = simulate(LT.replace(sensors=list(sensors), n=50), 0)
    info = ds.meta["observation"]
    centre, gain = info["latent_centre"], info["actuator_gain"]
    h = 1e-4
    fd = np.array(
        [
            (
                sm.observe((centre + h * e)[None], centre, gain, sensors)[0]
                - sm.observe((centre - h * e)[None], centre, gain, sensors)[0]
            )[0]
            / (2 * h)
            for e in np.eye(5)
        ]
    )
    assert np.allclose(ds.L, fd, rtol=1e-6, atol=1e-6 * np.abs(fd).max())


def test_nonlinear_sensors_are_an_option():
    ds = simulate(LT.replace(sensors=list(sm.SENSORS)), 0)
    assert ds.X.shape[1] == 9
    resid = ds.X - (ds.Z @ ds.L + ds.meta["observation"]["offset"])
    linear = [sm.SENSORS.index(s) for s in sm.LINEAR_SENSORS]
    nonlinear = [sm.SENSORS.index(s) for s in sm.NONLINEAR_SENSORS]
    assert np.abs(resid[:, linear]).max() < 1e-9 * np.abs(ds.X).max()
    assert (np.abs(resid[:, nonlinear]).max(axis=0) > 1.0).all()  # Malus' law


def test_actuators_stay_in_range_and_clipping_is_counted():
    centre, gain = sm.actuator_scaling(np.zeros((1, 5)), np.ones((1, 5)))
    assert np.allclose(gain, [25.5, 25.5, 25.5, 36, 36])
    A, clipped = sm.to_actuators(np.array([[0, 0, 0, 0, 0], [6, -6, 0, 0, 9.0]]), centre, gain)
    assert np.array_equal(A[0], sm.operating_point())
    assert np.array_equal(A[1], [255, 0, 127.5, 0, 180])
    assert clipped.tolist() == [1, 1, 0, 0, 1]


# ------------------------------------------------------------------ relative observation noise


@pytest.mark.parametrize(
    "scenario",
    [LT, Scenario(d=3, m=4, n=4_000, mixing="gaussian", observational=True, dtype="float64")],
    ids=["light-tunnel", "linear"],
)
def test_relative_noise_has_the_requested_sd_per_column(scenario):
    clean = simulate(scenario, 5)
    noisy = simulate(scenario.replace(obs_noise_relative=0.02), 5)
    assert np.array_equal(clean.Z, noisy.Z)
    want = 0.02 * clean.X.std(axis=0)
    assert np.allclose(noisy.meta["obs_noise_relative_sd"], want, rtol=1e-9)
    assert np.allclose(pooled_std(np.array_split(clean.X, 3)), clean.X.std(axis=0))
    got = (noisy.X - clean.X).std(axis=0)
    assert np.allclose(got, want, rtol=0.05)


def test_relative_and_absolute_noise_are_independent_streams():
    s = Scenario(d=3, m=4, n=500, dtype="float64")
    both = simulate(s.replace(obs_noise=0.1, obs_noise_relative=0.05), 0).X
    rel = simulate(s.replace(obs_noise_relative=0.05), 0).X
    abs_ = simulate(s.replace(obs_noise=0.1), 0).X
    clean = simulate(s, 0).X
    assert np.allclose(both - rel, abs_ - clean, atol=1e-12)
    assert "obs_noise_relative_sd" not in simulate(s, 0).meta


# ------------------------------------------------------------------ errors


@pytest.mark.parametrize(
    "changes,match",
    [
        ({"d": 4}, "set d = 5"),
        ({"mechanism": "scm1"}, "needs mechanism 'linear'"),
        ({"sensors": ["ir_1", "vis_7"]}, "unknown sensor 'vis_7'"),
        ({"sensors": ["ir_1", "ir_1"]}, "listed twice"),
        ({"sensors": "ir_1"}, "non-empty list"),
        ({"sensors": []}, "non-empty list"),
        ({"sensors": ["ir_1", "vis_1", "ir_2", "vis_2", "current"]}, "only 3 of the 5"),
        ({"m": 6}, "number of sensors"),
        ({"observation": "camera"}, "observation must be one of linear, light-tunnel"),
        ({"observation": "linear", "sensors": ["ir_1"]}, "only used with observation"),
        ({"obs_noise_relative": -0.1}, "obs_noise_relative must be a number >= 0"),
    ],
)
def test_bad_values_raise_one_clear_error(changes, match):
    with pytest.raises(MncrlError, match=match) as info:
        LT.replace(**changes)
    assert "\n" not in str(info.value)


def test_mixing_matrix_needs_the_seed():
    with pytest.raises(MncrlError, match="depends on the data seed"):
        mixing_matrix(LT)
    assert np.array_equal(mixing_matrix(LT, 0), simulate(LT.replace(n=10), 0).L)


def test_parameter_file_checksum(tmp_path):
    params = sm.read_parameters()
    assert params["S"].shape == (2, 3) and float(params["A"]) > 0
    bad = tmp_path / "tutorial_Deterministic.py"
    bad.write_bytes(sm.parameters_path().read_bytes().replace(b"4.34165202", b"4.34165203"))
    with pytest.raises(MncrlError, match="sha256 .* not the pinned") as info:
        sm.read_parameters(bad)
    assert "\n" not in str(info.value)
    with pytest.raises(MncrlError, match="not found"):
        sm.read_parameters(tmp_path / "missing.py")


# ------------------------------------------------------------------ stdout and the CLI


def test_the_package_prints_nothing_on_stdout():
    code = "from mncrl import sensors as s; s.readings([[1, 2, 3, 4, 5]])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout == ""


def test_cli_writes_a_sensor_data_set(tmp_path, capsys):
    out = tmp_path / "lt.npz"
    argv = ["simulate", "--out", str(out), "--d", "5", "--n", "200", "--observation"]
    argv += ["light-tunnel", "--sensors", "ir_1,vis_1,ir_2,vis_2,current,angle_1,angle_2"]
    assert main([*argv, "--obs-noise-relative", "0.01", "--dtype", "float64"]) == 0
    line = capsys.readouterr().out
    assert line.count("\n") == 1 and "0 clipped actuator values" in line
    ds = data.load(out)
    want = simulate(LT.replace(n=200, obs_noise_relative=0.01), 0)
    assert np.array_equal(ds.X, want.X) and np.array_equal(ds.L, want.L)
