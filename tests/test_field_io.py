"""`mncrl fit FIELD.nc`: a synthetic 3-mode field on a lat/lon grid with land, environments
that do-intervene on several modes (seasons, epochs, a label file), the NetCDF output, errors
(one line, exit 2, no file) and the real eofs example fields."""

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from mncrl.cli import main
from mncrl.climate_data import SHA256, example_path
from mncrl.errors import MncrlError
from mncrl.field import pattern_correlation
from mncrl.field_io import env_labels, fit_field, open_field
from mncrl.metrics import mcc

NLAT, NLON, YEARS = 10, 16, 80
# environment k intervenes on latent j (Assumption 4 holds: every ordered pair is separated)
TARGETS = np.array([[0, 1, 1], [1, 0, 1], [1, 1, 0], [1, 0, 0]], dtype=bool)
SUBSPACE = ["--estimator", "subspace"]


def _latents(env: np.ndarray, rng) -> np.ndarray:
    """A linear SCM 0 -> 1 -> 2 with do-interventions: environment k fixes TARGETS[k] at
    constants."""
    T = len(env)
    eps = rng.standard_normal((T, 3)) * [1.0, 0.8, 0.6]
    constants = rng.uniform(-1, 1, size=TARGETS.shape)
    fixed = TARGETS[env]
    Z = np.empty((T, 3))
    for j, (parent, coef) in enumerate([(None, 0.0), (0, 0.8), (1, -0.6)]):
        free = eps[:, j] + (0.0 if parent is None else coef * Z[:, parent])
        Z[:, j] = np.where(fixed[:, j], constants[env, j], free)
    return Z


def _patterns(lat, lon) -> np.ndarray:
    """Three smooth modes (3 x NLAT x NLON)."""
    la, lo = np.meshgrid(np.deg2rad(lat), np.deg2rad(lon), indexing="ij")
    return np.stack(
        [
            np.cos(la) * np.cos(lo),
            np.sin(2 * la) * np.sin(lo) + 0.3,
            np.exp(-(((la - 0.3) / 0.4) ** 2)) * np.cos(2 * lo),
        ]
    )


def _land(shape) -> np.ndarray:
    land = np.zeros(shape, dtype=bool)
    land[2:5, 3:7] = True  # a continent
    land[7, 12] = True
    return land


def write_field(path, env: np.ndarray, time, *, seed=0, noise=0.01, extra=None):
    """A NetCDF field X = Z L + noise + climatology with land NaN and one constant cell;
    returns (Z, L on the grid, land mask incl. the constant cell)."""
    rng = np.random.default_rng(seed)
    lat = np.linspace(-60, 60, NLAT)
    lon = np.arange(NLON) * 360.0 / NLON
    Z = _latents(env, rng)
    L = _patterns(lat, lon)
    X = np.einsum("tj,jyx->tyx", Z, L) + noise * rng.standard_normal((len(env), NLAT, NLON))
    X += 15 + 10 * np.cos(np.deg2rad(lat))[None, :, None]
    land = _land((NLAT, NLON))
    X[:, land] = np.nan
    X[:, 0, 0] = 4.0  # constant in time: masked too
    X[5, 9, 1] = np.nan  # one missing value: the cell is masked
    masked = land.copy()
    masked[0, 0] = masked[9, 1] = True
    ds = xr.Dataset(
        {"sst": (("time", "lat", "lon"), X.astype(np.float32), {"units": "K"})},
        coords={
            "time": ("time", time),
            "lat": ("lat", lat, {"units": "degrees_north"}),
            "lon": ("lon", lon, {"units": "degrees_east"}),
        },
    )
    for name, values in (extra or {}).items():
        ds[name] = ("time", values)
    ds.to_netcdf(path)
    return Z, L, masked


@pytest.fixture(scope="module")
def seasonal(tmp_path_factory):
    """Monthly data whose environment is the season (DJF, MAM, JJA, SON = 0..3)."""
    time = pd.date_range("1901-01-01", periods=12 * YEARS, freq="MS")
    env = np.array(
        [{12: 0, 1: 0, 2: 0, 3: 1, 4: 1, 5: 1, 6: 2, 7: 2, 8: 2}.get(m, 3) for m in time.month]
    )
    path = tmp_path_factory.mktemp("field") / "seasonal.nc"
    Z, L, masked = write_field(path, env, time, extra={"regime": env * 10})
    return path, env, Z, L, masked


def _fit(path, tmp_path, *args, out_name="out.nc"):
    out = tmp_path / out_name
    code = main(
        ["fit", str(path), "--var", "sst", "--latent-dim", "3", *SUBSPACE, "--out", str(out), *args]
    )
    return code, out


def _check_recovery(out, env, Z, L, masked, names):
    ds = xr.open_dataset(out)
    T = len(env)
    assert ds["latents"].dims == ("time", "latent") and ds["latents"].shape == (T, 3)
    assert ds["patterns"].dims == ("latent", "lat", "lon") and ds["patterns"].shape == (
        3,
        NLAT,
        NLON,
    )
    assert np.array_equal(np.isnan(ds["patterns"].values).any(axis=0), masked)
    assert np.array_equal(np.isnan(ds["patterns"].values).all(axis=0), masked)
    assert np.array_equal(ds["valid_cell"].values == 0, masked)
    assert list(ds["environment"].values) == list(names)
    Zhat = ds["latents"].values
    assert mcc(Z, Zhat) > 0.95
    ok = ~masked
    pc = pattern_correlation(L[:, ok], ds["patterns"].values[:, ok])
    assert pc.min() > 0.95, pc
    # targets: the same matrix up to the permutation of the latents
    C = np.abs(np.corrcoef(Z.T, Zhat.T)[:3, 3:])
    perm = C.argmax(axis=1)
    assert sorted(perm) == [0, 1, 2]
    assert np.array_equal(ds["targets"].values[:, perm].astype(bool), TARGETS)
    assert ds.attrs["estimator"] == "subspace" and ds.attrs["latent_dim"] == 3
    assert ds.attrs["components"] == 3 and ds.attrs["variable"] == "sst"
    assert ds["eof_variance_fraction"].shape == (3,)
    ds.close()
    return Zhat


def test_season_environments_recover_latents_patterns_targets(seasonal, tmp_path, capsys):
    path, env, Z, L, masked = seasonal
    code, out = _fit(path, tmp_path, "--env", "season")
    assert code == 0, capsys.readouterr().err
    assert "wrote" in capsys.readouterr().out
    _check_recovery(out, env, Z, L, masked, ["DJF", "MAM", "JJA", "SON"])
    ds = xr.open_dataset(out)
    assert np.array_equal(ds["time"].values, xr.open_dataset(path)["time"].values)
    assert ds["env"].values[0] == "DJF" and ds["env"].values[3] == "MAM"
    assert ds.attrs["environments"] == "season" and "mncrl_version" in ds.attrs
    assert ds.attrs["source"] == str(path)
    ds.close()
    assert [p.name for p in tmp_path.iterdir()] == ["out.nc"]  # no temporary left


def test_env_variable_more_components_and_block_bootstrap(seasonal, tmp_path, capsys):
    path, env, Z, L, masked = seasonal
    code, out = _fit(
        path, tmp_path, "--env", "regime", "--components", "4", "--bootstrap", "3", "--block", "24"
    )
    assert code == 0, capsys.readouterr().err
    assert "EOFs are not resampled" in capsys.readouterr().out
    ds = xr.open_dataset(out)
    assert ds.attrs["components"] == 4 and ds["unmixing"].shape == (4, 3)
    assert list(ds["environment"].values) == ["0", "10", "20", "30"]
    assert mcc(Z, ds["latents"].values) > 0.95
    assert ds["bootstrap_corr_mean"].shape == (3,) and ds["bootstrap_corr_min"].min() > 0.9
    assert ds["bootstrap_target_frequency"].shape == (4, 3)
    assert (
        ds.attrs["bootstrap_resamples"] == 3
        and "moving blocks of 24" in ds.attrs["bootstrap_scheme"]
    )
    ds.close()


def test_epochs_and_env_file(tmp_path, capsys):
    time = pd.date_range("1950-01-01", periods=4 * 240, freq="MS")  # 1950-2029
    years = time.year.to_numpy()
    env = np.searchsorted([1970, 1990, 2010], years, side="right")
    path = tmp_path / "epochs.nc"
    Z, L, masked = write_field(path, env, time, seed=3)
    code, out = _fit(path, tmp_path, "--epochs", "1970,1990,2010")
    assert code == 0, capsys.readouterr().err
    names = ["1950-1969", "1970-1989", "1990-2009", "2010-2029"]
    _check_recovery(out, env, Z, L, masked, names)

    labels = tmp_path / "labels.csv"
    letters = np.array(["a", "b", "c", "d"])[env]
    labels.write_text("env\n" + "\n".join(f"{x},extra" for x in letters) + "\n")
    code, out2 = _fit(path, tmp_path, "--env-file", str(labels), out_name="file.nc")
    assert code == 0, capsys.readouterr().err
    _check_recovery(out2, env, Z, L, masked, ["a", "b", "c", "d"])


@pytest.mark.parametrize(
    "args,match",
    [
        (["--env", "season", "--var", "tos"], "no variable 'tos'; its variables: sst"),
        ([], "exactly one of --env NAME, --epochs"),
        (["--env", "moon"], "--env moon: not a variable along 'time'"),
        (["--epochs", "1990,1950"], "strictly increasing"),
        (["--epochs", "2500"], "has no time steps"),
        (["--epochs", "19x"], "--epochs expects years"),
        (["--env-file", "missing.txt"], "--env-file missing.txt: cannot read it"),
        (["--env", "season", "--observational-env", "XYZ"], "'XYZ' is not one of DJF, MAM"),
        (["--env", "season", "--components", "2"], "latent_dim <= components"),
        (["--env", "season", "--bootstrap", "2", "--block", "5000"], "longer than the smallest"),
        (["--env", "season", "--block", "5"], "--block needs --bootstrap"),
        (["--env", "season", "--estimator", "nope"], "unknown estimator 'nope'"),
        (["--env", "season", "--chunks", "0"], "chunks must be a positive"),
        (["--env", "year"], "no environment has a zero-variance direction"),  # years: no do-envs
    ],
)
def test_errors_are_one_line_exit_2_no_file(seasonal, tmp_path, capsys, monkeypatch, args, match):
    path = seasonal[0]
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "out.nc"
    capsys.readouterr()
    argv = ["fit", str(path), "--latent-dim", "3", *SUBSPACE, "--out", str(out)]
    argv += args if "--var" in args else ["--var", "sst", *args]
    assert main(argv) == 2
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    assert match in lines[0], lines[0]
    assert not list(tmp_path.iterdir())


def test_other_cli_errors(seasonal, tmp_path, capsys):
    path = seasonal[0]
    cases = [
        (
            [
                "fit",
                str(path),
                "--var",
                "sst",
                "--env",
                "season",
                "--out",
                str(tmp_path / "o.npz"),
                "--latent-dim",
                "3",
            ],
            "--out must end in .nc",
        ),
        (
            [
                "fit",
                str(path),
                "--env",
                "season",
                "--latent-dim",
                "3",
                "--out",
                str(tmp_path / "o.nc"),
            ],
            "needs --var",
        ),
        (
            ["fit", str(path), "--var", "sst", "--env", "season", "--out", str(tmp_path / "o.nc")],
            "needs --latent-dim",
        ),
        (
            [
                "fit",
                str(tmp_path / "nope.nc"),
                "--var",
                "sst",
                "--env",
                "season",
                "--latent-dim",
                "3",
                "--out",
                str(tmp_path / "o.nc"),
            ],
            "no such file",
        ),
        (
            [
                "fit",
                str(path),
                "--var",
                "sst",
                "--env",
                "season",
                "--epochs",
                "1950",
                "--latent-dim",
                "3",
                "--out",
                str(tmp_path / "o.nc"),
            ],
            "not allowed with",
        ),
    ]
    bad = tmp_path / "bad.nc"
    bad.write_text("not a netcdf file")
    cases.append(
        (
            [
                "fit",
                str(bad),
                "--var",
                "sst",
                "--env",
                "season",
                "--latent-dim",
                "3",
                "--out",
                str(tmp_path / "o.nc"),
            ],
            "cannot read it as NetCDF",
        )
    )
    npz = tmp_path / "d.npz"
    np.savez(npz, X=np.random.default_rng(0).standard_normal((40, 2)), env=np.repeat([0, 1], 20))
    cases.append(
        (
            ["fit", str(npz), "--var", "sst", "--out", str(tmp_path / "o.npz")],
            "--var applies to a NetCDF DATA",
        )
    )
    cases.append(
        (
            ["fit", str(npz), "--observational-env", "x", "--out", str(tmp_path / "o.npz")],
            "expects an environment index",
        )
    )
    for argv, match in cases:
        capsys.readouterr()
        try:
            code = main(argv)
        except SystemExit as exc:  # argparse's own errors
            code = exc.code
        assert code == 2, argv
        err = capsys.readouterr().err
        lines = err.strip().splitlines()
        assert len(lines) == 1 and "Traceback" not in err, err
        assert match in lines[0], (match, lines[0])
        assert not (tmp_path / "o.nc").exists() and not (tmp_path / "o.npz").exists()


def test_observational_label_and_api(seasonal, tmp_path):
    path, env, Z, L, masked = seasonal
    res = fit_field(
        path,
        "sst",
        latent_dim=3,
        env="season",
        estimator="ica",
        observational=["SON"],
        allow_degenerate=True,
    )
    assert res.fitted_envs == ("DJF", "MAM", "JJA") and res.observational == ("SON",)
    assert res.fit.info["fitted_on"] == "observational"
    res.write(tmp_path / "ica.nc")
    ds = xr.open_dataset(tmp_path / "ica.nc")
    assert "targets" not in ds and ds.attrs["observational_envs"] == "SON"
    assert list(ds["environment"].values) == ["DJF", "MAM", "JJA"]
    ds.close()


def test_open_field_mask_weights_chunks(seasonal, tmp_path):
    path, env, Z, L, masked = seasonal
    f = open_field(path, "sst", chunks=100)
    assert f.data.shape == (len(env), NLAT * NLON - masked.sum())
    assert f.data.chunks[0][0] == 100
    assert np.array_equal(f.mask, ~masked) and f.grid_shape == (NLAT, NLON)
    assert np.allclose(f.weights, np.sqrt(np.cos(np.deg2rad(f.lat))))
    grid = f.to_grid(np.arange(f.data.shape[1]))
    assert np.isnan(grid[masked]).all() and not np.isnan(grid[~masked]).any()
    same = tmp_path / "same.txt"
    same.write_text("a\n" * len(env))
    with pytest.raises(MncrlError, match="gives one environment"):
        env_labels(f, env_file=same)


def test_eofs_example_sst(tmp_path):
    path = example_path("sst_ndjfm_anom")
    f = open_field(path, "sst")
    assert f.n_time == 50 and f.grid_shape == (18, 30)
    assert 0 < f.mask.sum() < f.mask.size  # land cells masked
    assert np.array_equal(f.mask, np.isfinite(xr.open_dataset(path)["sst"].values).all(axis=0))
    envs = env_labels(f, epochs="1977")
    assert envs.names == ("1963-1976", "1977-2012") and envs.counts()["1963-1976"] == 14


def test_eofs_example_hgt_squeezes_the_pressure_level():
    f = open_field(example_path("hgt_djf"), "z")
    assert f.n_time == 65 and f.squeezed == {"pressure": 500.0}
    assert f.mask.all() and f.weights.min() == 0.0  # the pole


def test_example_path_checks_name_and_checksum(monkeypatch):
    with pytest.raises(MncrlError, match="unknown example field"):
        example_path("nope")
    monkeypatch.setitem(SHA256, "hgt_djf", "0" * 64)
    with pytest.raises(MncrlError, match="expected 0000"):
        example_path("hgt_djf")


def test_every_fit_flag_is_documented():
    import re
    from pathlib import Path

    from mncrl.cli import build_parser

    parser = build_parser("fit")
    sub = next(a for a in parser._actions if a.dest == "command").choices["fit"]
    flags = {opt for a in sub._actions for opt in a.option_strings if opt.startswith("--")}
    flags.discard("--help")
    docs = Path(__file__).resolve().parents[1] / "docs"
    climate = set(re.findall(r"`(--[a-z0-9-]+)", (docs / "climate.md").read_text()))
    estimators = set(re.findall(r"`(--[a-z0-9-]+)", (docs / "estimators.md").read_text()))
    assert flags <= estimators, sorted(flags - estimators)
    field_flags = {"--var", "--env", "--epochs", "--env-file", "--components", "--chunks"}
    assert field_flags | {"--block", "--bootstrap", "--observational-env"} <= climate


def _small(path, dims, coords, shape, time_attrs=None):
    rng = np.random.default_rng(0)
    ds = xr.Dataset({"v": (dims, rng.standard_normal(shape))}, coords=coords)
    if time_attrs is not None:
        ds["time"].attrs.update(time_attrs)
    ds.to_netcdf(path)
    return path


def test_cf_detection_by_attributes_and_transposed_grid(tmp_path):
    time = pd.date_range("2000-01-01", periods=12, freq="MS")
    coords = {
        "time": ("time", time),
        "x": ("x", np.arange(5.0) * 10, {"standard_name": "longitude"}),
        "y": ("y", np.array([-10.0, 0.0, 10.0]), {"axis": "Y"}),
    }
    path = _small(tmp_path / "t.nc", ("time", "x", "y"), coords, (12, 5, 3))
    f = open_field(path, "v")
    assert f.grid_shape == (3, 5) and f.grid_lat.name == "y" and f.grid_lon.name == "x"
    raw = xr.open_dataset(path)["v"].transpose("time", "y", "x").values.reshape(12, -1)
    assert np.allclose(f.data.compute(), raw)
    assert env_labels(f, env="month").names == tuple(str(m) for m in range(1, 13))


def test_level_dimension_and_non_date_time_are_clear_errors(tmp_path):
    coords = {
        "time": ("time", np.arange(6.0)),
        "lat": ("lat", [0.0, 1.0]),
        "lon": ("lon", [0.0, 1.0]),
    }
    coords["plev"] = ("plev", [850.0, 500.0])
    path = _small(tmp_path / "l.nc", ("time", "plev", "lat", "lon"), coords, (6, 2, 2, 2))
    with pytest.raises(MncrlError, match="dimension 'plev' of size 2"):
        open_field(path, "v")
    del coords["plev"]
    path = _small(tmp_path / "n.nc", ("time", "lat", "lon"), coords, (6, 2, 2))
    f = open_field(path, "v")
    with pytest.raises(MncrlError, match="is not made of dates"):
        env_labels(f, env="season")
    with pytest.raises(MncrlError, match="is not made of dates"):
        env_labels(f, epochs="1977")
    path = _small(tmp_path / "nogrid.nc", ("time", "a"), {"time": ("time", np.arange(6.0))}, (6, 3))
    with pytest.raises(MncrlError, match="found no lat or lon dimension"):
        open_field(path, "v")


def test_climate_data_prints_the_checked_path(capsys):
    from mncrl import climate_data

    assert climate_data.main(["sst_ndjfm_anom"]) == 0
    assert capsys.readouterr().out.strip().endswith("sst_ndjfm_anom.nc")
    assert climate_data.main(["nope"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("mncrl.climate_data: error: unknown example field") and "\n" not in err


def test_varimax_pca_rotates_over_the_grid_cells_of_a_field(seasonal):
    path, env, Z, L, masked = seasonal
    res = fit_field(path, "sst", latent_dim=3, env="season", estimator="varimax-pca")
    assert res.fit.info["rotated_over"] == "grid cells"
    # the rotation over cells is what a climate scientist computes on the EOF loadings
    from mncrl.estimators.varimax_pca import varimax

    red = res.reduction
    lam = red.singular_values**2 / (len(red.scores) - 1)
    R, _, _ = varimax(red.eofs.T * np.sqrt(lam))
    expected = (red.scores / np.sqrt(lam)) @ R
    corr = np.abs(np.corrcoef(expected.T, res.latents.T)[:3, 3:])
    assert np.allclose(np.sort(corr.max(axis=1)), 1.0, atol=1e-8)
