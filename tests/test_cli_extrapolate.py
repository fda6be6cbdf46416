"""`mncrl extrapolate`: .npz and .csv data, --along and --a-star, --unmixing, the output CSV, and
errors (one line on stderr, exit 2, no output file)."""

import numpy as np
import pandas as pd
import pytest

from mncrl.actions import ActionScenario, simulate_actions
from mncrl.cli import main
from mncrl.extrapolate import extrapolate

FAST = ["--latent-dim", "3", "--landmarks", "50"]
ALONG = ["--along", "0", "--reach", "3", "--points", "9"]
COLUMNS = ["a0", "a1", "a2", "prediction", "inside", "overlap"]
PREFIX = "mncrl extrapolate: error:"


@pytest.fixture(scope="module")
def sim():
    return simulate_actions(ActionScenario(n=4000, effect=0.5, confounding=0.9), 0)


@pytest.fixture(scope="module")
def files(sim, tmp_path_factory):
    root = tmp_path_factory.mktemp("extrapolate")
    npz = root / "data.npz"
    np.savez(npz, X=sim.X, A=sim.A, Y=sim.Y)
    frame = pd.DataFrame(sim.X, columns=[f"x{i}" for i in range(3)])
    for j in range(3):
        frame[f"a{j}"] = sim.A[:, j]
    frame["Y"] = sim.Y
    csv = root / "data.csv"
    frame.to_csv(csv, index=False)
    # a* (no header: k numbers a line): 9 points of the simulation's line, 3 of them inside
    a_star = sim.a[::3]
    a_csv = root / "a_star.csv"
    np.savetxt(a_csv, a_star, delimiter=",", header="a0,a1,a2")  # header as a '#' comment
    fit = root / "fit.npz"
    np.savez(fit, W=np.linalg.pinv(sim.effects.L), latent_dim=3)
    return dict(npz=npz, csv=csv, a_star=a_star, a_csv=a_csv, fit=fit, root=root)


def _run(args, capsys):
    capsys.readouterr()
    code = main(["extrapolate", *map(str, args)])
    return code, capsys.readouterr()


def _inside(a_star, A):
    return ((a_star >= A.min(axis=0)) & (a_star <= A.max(axis=0))).all(axis=1)


def test_npz_along(sim, files, tmp_path, capsys):
    out = tmp_path / "pred.csv"
    code, printed = _run([files["npz"], *ALONG, *FAST, "--out", out], capsys)
    assert code == 0, printed.err
    assert printed.err == ""
    assert printed.out.startswith(f"{out}: 9 predictions (6 outside the training range)")
    pred = pd.read_csv(out)
    assert list(pred.columns) == COLUMNS and len(pred) == 9
    # along action 0 around the centre of its range, the others at their means
    lo, hi = sim.A[:, 0].min(), sim.A[:, 0].max()
    expected_a0 = (lo + hi) / 2 + (hi - lo) / 2 * np.linspace(-3, 3, 9)
    np.testing.assert_allclose(pred["a0"], expected_a0, rtol=1e-12)
    for j in (1, 2):
        np.testing.assert_allclose(pred[f"a{j}"], sim.A[:, j].mean(), rtol=1e-12)
    # inside: exactly the points within the training range (|t| <= 1 of t in -3..3)
    assert pred["inside"].dtype == bool
    a_star = pred[["a0", "a1", "a2"]].to_numpy()
    np.testing.assert_array_equal(pred["inside"], _inside(a_star, sim.A))
    np.testing.assert_array_equal(pred["inside"], np.abs(np.linspace(-3, 3, 9)) <= 1)
    assert np.isfinite(pred["prediction"]).all()
    overlap = pred["overlap"].to_numpy()
    assert ((overlap >= 0) & (overlap <= 1)).all() and (overlap[pred["inside"]] > 0.9).all()
    # the outcome model's evaluation points leave the data towards the ends of the line
    assert overlap[0] < overlap[4] and overlap[-1] < overlap[4]
    # the CLI is the API on the same arrays
    api = extrapolate(sim.X, sim.A, sim.Y, a_star, latent_dim=3, landmarks=50)
    np.testing.assert_allclose(pred["prediction"], api.prediction, rtol=1e-12)


def test_csv_data_and_a_star_file(sim, files, tmp_path, capsys):
    out = tmp_path / "pred.csv"
    args = ["--action-columns", "a0, a1,a2", "--a-star", files["a_csv"], *FAST, "--out", out]
    code, printed = _run([files["csv"], *args], capsys)
    assert code == 0, printed.err
    pred = pd.read_csv(out)
    assert list(pred.columns) == COLUMNS and len(pred) == 9
    a_star = files["a_star"]
    np.testing.assert_allclose(pred[["a0", "a1", "a2"]].to_numpy(), a_star, rtol=1e-12)
    inside = _inside(a_star, sim.A)
    assert inside.sum() == 3  # s = -0.75, 0, 0.75 of the simulation's line
    np.testing.assert_array_equal(pred["inside"], inside)
    # the same data as .npz: the same predictions
    out2 = tmp_path / "pred_npz.csv"
    code, printed = _run([files["npz"], "--a-star", files["a_csv"], *FAST, "--out", out2], capsys)
    assert code == 0, printed.err
    np.testing.assert_allclose(pd.read_csv(out2)["prediction"], pred["prediction"], atol=1e-6)
    # and close to the truth inside the support
    truth = sim.truth[::3]
    assert np.abs(pred["prediction"] - truth)[inside].max() < 0.08


def test_direct_method_has_no_overlap_column(files, tmp_path, capsys):
    out = tmp_path / "pred.csv"
    code, printed = _run([files["npz"], *ALONG, *FAST, "--method", "direct", "--out", out], capsys)
    assert code == 0, printed.err
    assert list(pd.read_csv(out).columns) == ["a0", "a1", "a2", "prediction", "inside"]
    assert "method direct" in printed.out


def test_unmixing_from_a_fit_file(sim, files, tmp_path, capsys):
    out = tmp_path / "pred.csv"
    code, printed = _run(
        [files["npz"], *ALONG, *FAST, "--unmixing", files["fit"], "--out", out], capsys
    )
    assert code == 0, printed.err
    pred = pd.read_csv(out)
    assert list(pred.columns) == COLUMNS and len(pred) == 9
    a_star = pred[["a0", "a1", "a2"]].to_numpy()
    W = np.linalg.pinv(sim.effects.L)
    api = extrapolate(sim.X, sim.A, sim.Y, a_star, latent_dim=3, unmixing=W, landmarks=50)
    np.testing.assert_allclose(pred["prediction"], api.prediction, rtol=1e-12)
    pca = extrapolate(sim.X, sim.A, sim.Y, a_star, latent_dim=3, landmarks=50)
    assert not np.array_equal(api.prediction, pca.prediction)  # W was used, not PCA


def _write_bad(root, kind):
    """A bad input file of ``kind``; returns its path."""
    rng = np.random.default_rng(0)
    X, A, Y = rng.standard_normal((400, 3)), rng.uniform(-1, 1, (400, 2)), rng.standard_normal(400)
    if kind == "no_y":
        path = root / "no_y.npz"
        np.savez(path, X=X, A=A)
    elif kind == "nan":
        X[10, 2] = np.nan
        path = root / "nan.npz"
        np.savez(path, X=X, A=A, Y=Y)
    elif kind == "fit_no_w":
        path = root / "fit_no_w.npz"
        np.savez(path, M=np.eye(3))
    elif kind == "fit_bad_w":
        path = root / "fit_bad_w.npz"
        np.savez(path, W=np.ones((5, 3)))
    elif kind == "a_star_cols":
        path = root / "a_star_cols.csv"
        np.savetxt(path, np.zeros((4, 2)), delimiter=",")
    else:
        raise AssertionError(kind)
    return path


@pytest.mark.parametrize(
    "build, match",
    [
        (lambda f: [f["root"] / "missing.npz", *ALONG], "data file not found"),
        (
            lambda f: [_write_bad(f["root"], "no_y"), *ALONG],
            "no_y.npz: no array 'Y' (needs X, A and Y)",
        ),
        (lambda f: [f["csv"], *ALONG], "CSV DATA needs --action-columns"),
        (
            lambda f: [f["csv"], "--action-columns", "a0,a9", *ALONG],
            "data.csv: no column 'a9'",
        ),
        (
            lambda f: [f["csv"], "--action-columns", "a0,a1,a2", "--outcome", "y", *ALONG],
            "data.csv: no column 'y'",
        ),
        (lambda f: [f["npz"], "--along", "3"], "--along 3: DATA has 3 actions (0-based)"),
        (lambda f: [f["npz"], "--along", "-1"], "--along -1: DATA has 3 actions"),
        (lambda f: [f["npz"], "--along", "0", "--points", "1"], "--points >= 2"),
        (lambda f: [_write_bad(f["root"], "nan"), *ALONG], "X contains 1 NaN/Inf values"),
        (lambda f: [f["npz"], "--a-star", f["root"] / "none.csv"], "a* file not found"),
        (
            lambda f: [f["npz"], "--a-star", _write_bad(f["root"], "a_star_cols")],
            "a_star has 2 columns, A has 3",
        ),
        (
            lambda f: [f["npz"], *ALONG, "--unmixing", _write_bad(f["root"], "fit_no_w")],
            "no unmixing matrix 'W'",
        ),
        (
            lambda f: [f["npz"], *ALONG, "--unmixing", _write_bad(f["root"], "fit_bad_w")],
            "unmixing must be 3 x 3, got (5, 3)",
        ),
    ],
)
def test_errors_one_line_exit_2_no_file(files, tmp_path, capsys, build, match):
    out = tmp_path / "pred.csv"
    code, printed = _run([*build(files), *FAST, "--out", out], capsys)
    assert code == 2
    lines = printed.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(PREFIX), printed.err
    assert match in lines[0], lines[0]
    assert printed.out == ""
    assert not out.exists() and not list(tmp_path.iterdir())
