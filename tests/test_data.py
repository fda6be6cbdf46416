"""The data loader (mncrl.data): round trips and every bad-input case gives one clear DataError."""

import numpy as np
import pytest

from mncrl import data
from mncrl.data import DataError
from mncrl.simulation import Scenario, simulate


def good_arrays(n=6, m=2):
    return {"X": np.arange(n * m, dtype=float).reshape(n, m), "env": np.repeat([0, 1], n // 2)}


def write_npz(path, **arrays):
    np.savez(path, **arrays)
    return path


# ------------------------------------------------------------------ round trips


def test_npz_round_trip_keeps_ground_truth(tmp_path):
    ds = simulate(Scenario(d=3, m=4, n=50, design="atomic"), 0)
    data.save(ds, tmp_path / "d.npz")
    back = data.load(tmp_path / "d.npz")
    for key in ("X", "env", "Z", "L", "targets"):
        assert np.array_equal(getattr(back, key), getattr(ds, key)), key
    assert back.X.dtype == np.float32


def test_csv_round_trip(tmp_path):
    ds = simulate(Scenario(d=3, n=20, design="atomic"), 0)
    data.save(ds, tmp_path / "d.csv")
    back = data.load(tmp_path / "d.csv")
    assert np.allclose(back.X, ds.X) and np.array_equal(back.env, ds.env)
    assert back.Z is None and back.meta["columns"] == ["x0", "x1", "x2"]


def test_csv_string_labels_numbered_by_first_appearance(tmp_path):
    (tmp_path / "s.csv").write_text("a,b,env\n1,2,obs\n3,4,do1\n5,6,obs\n7,8,do1\n")
    ds = data.load(tmp_path / "s.csv")
    assert ds.env.tolist() == [0, 1, 0, 1]


def test_load_only_some_arrays(tmp_path):
    ds = simulate(Scenario(d=3, m=4, n=50, design="atomic"), 0)
    data.save(ds, tmp_path / "d.npz")
    part = data.load(tmp_path / "d.npz", keys=("targets",))  # X and env always
    assert np.array_equal(part.X, ds.X) and np.array_equal(part.env, ds.env)
    assert np.array_equal(part.targets, ds.targets) and part.Z is None and part.L is None
    assert data.load(tmp_path / "d.npz", keys=()).targets is None
    with pytest.raises(DataError, match="unknown data array 'W': choose from X, env, Z, L"):
        data.load(tmp_path / "d.npz", keys=("W",))


def test_arrays_left_out_are_not_read_but_X_and_env_are_validated(tmp_path):
    path = write_npz(tmp_path / "z.npz", **good_arrays(), Z=np.full((6, 2), np.nan))
    assert data.load(path, keys=("X", "env")).Z is None  # a bad Z is never read
    with pytest.raises(DataError, match="Z contains NaN/Inf"):
        data.load(path)
    bad = write_npz(tmp_path / "x.npz", X=np.full((6, 2), np.inf), env=np.repeat([0, 1], 3))
    with pytest.raises(DataError, match="X contains 12 NaN/Inf values"):
        data.load(bad, keys=("X", "env"))
    noenv = write_npz(tmp_path / "noenv.npz", X=np.ones((4, 2)), Z=np.ones((4, 1)))
    with pytest.raises(DataError, match=r"missing array 'env' \(found: \['X', 'Z'\]\)"):
        data.load(noenv, keys=("X", "env"))


@pytest.mark.parametrize(
    "env,message",
    [
        (np.array([0, 0, 0, 5, 5, 5]), "found [0, 5]"),  # a label beyond the rows
        (np.array([0, 0, 0, 2, 2, 2], dtype=np.uint64), "found [0, 2]"),
        (np.array([1, 1, 1, 2, 2, 2]), "found [1, 2]"),
    ],
)
def test_env_labels_with_gaps_are_listed(tmp_path, env, message):
    path = write_npz(tmp_path / "gap.npz", X=np.ones((6, 2)), env=env)
    with pytest.raises(DataError) as info:
        data.load(path)
    assert "every label present" in str(info.value) and message in str(info.value)


def test_save_is_atomic_on_a_bad_suffix(tmp_path):
    ds = simulate(Scenario(d=3, n=20, design="atomic"), 0)
    with pytest.raises(DataError, match="unknown output format '.txt'"):
        data.save(ds, tmp_path / "d.txt")
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------ bad npz files


@pytest.mark.parametrize(
    "change,message",
    [
        ({"X": np.array([[1.0, np.nan]] * 6)}, "X contains 6 NaN/Inf values"),
        ({"X": np.array([[1.0, np.inf], [2.0, 3.0]] * 3)}, "X contains 3 NaN/Inf values"),
        ({"X": np.ones(6)}, "X must be a 2-d array"),
        ({"X": np.ones((0, 2)), "env": np.zeros(0, int)}, "X is empty"),
        ({"X": np.array([["a", "b"]] * 6)}, "X must be numeric"),
        ({"env": np.zeros(6, int)}, "need at least 2 environments, found 1"),
        ({"env": np.array([0, 0, 0, 2, 2, 2])}, "every label present"),
        ({"env": np.array([0, 0, -1, 1, 1, 1])}, "non-negative"),
        ({"env": np.array([0, 0, 0.5, 1, 1, 1])}, "env labels must be integers"),
        ({"env": np.array([0, 0, 1, 1])}, "env must have one label per row of X (6)"),
        ({"Z": np.ones((5, 2))}, "Z must have shape (n=6, d)"),
        ({"Z": np.full((6, 2), np.nan)}, "Z contains NaN/Inf"),
        ({"L": np.ones((2, 3))}, "L must have shape (d, m=2)"),
        ({"L": np.ones((3, 2))}, "L has more latents (3) than features"),
        ({"targets": np.ones((3, 2), bool)}, "targets must have one row per environment (2)"),
    ],
)
def test_bad_npz(tmp_path, change, message):
    arrays = {**good_arrays(), **change}
    path = write_npz(tmp_path / "bad.npz", **arrays)
    with pytest.raises(DataError) as info:
        data.load(path)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_npz_missing_env(tmp_path):
    path = write_npz(tmp_path / "noenv.npz", X=np.ones((4, 2)))
    with pytest.raises(DataError, match=r"missing array 'env' \(found: \['X'\]\)"):
        data.load(path)


def test_corrupt_npz(tmp_path):
    (tmp_path / "c.npz").write_bytes(b"this is not a zip file")
    with pytest.raises(DataError, match="cannot read .*c.npz: not a valid .npz file"):
        data.load(tmp_path / "c.npz")


def test_missing_file_and_unknown_format(tmp_path):
    with pytest.raises(DataError, match="data file not found"):
        data.load(tmp_path / "nope.npz")
    (tmp_path / "d.txt").write_text("1,2\n")
    with pytest.raises(DataError, match="unknown data format '.txt'"):
        data.load(tmp_path / "d.txt")


# ------------------------------------------------------------------ bad CSV files


@pytest.mark.parametrize(
    "text,message",
    [
        ("a,b,env\n1,2,0\n1,2,3,4\n", "cannot read"),
        ("", "cannot read"),
        ("a,b,env\n1,2,0\n3,4,\n5,6,1\n", "missing values in column 'env'"),
        ("a,b,env\n1,x,0\n3,4,1\n", "non-numeric feature columns ['b']"),
        ("a,b,env\n1,,0\n3,4,1\n", "X contains 1 NaN/Inf values"),
        ("a,b,env\n1,2,0\n3,4,0\n", "need at least 2 environments, found 1"),
        ("a,b,group\n1,2,0\n3,4,1\n", "no environment column 'env'"),
        ("env\n0\n1\n", "X is empty"),
    ],
)
def test_bad_csv(tmp_path, text, message):
    (tmp_path / "bad.csv").write_text(text)
    with pytest.raises(DataError) as info:
        data.load(tmp_path / "bad.csv")
    assert message in str(info.value)
    assert "\n" not in str(info.value).strip()


def test_binary_garbage_csv(tmp_path):
    (tmp_path / "g.csv").write_bytes(b"\x00\x01\x02\xff\xfe")
    with pytest.raises(DataError, match="cannot read"):
        data.load(tmp_path / "g.csv")


def test_csv_non_integer_env_labels_are_rejected(tmp_path):
    (tmp_path / "f.csv").write_text("a,b,env\n1,2,0.5\n3,4,1\n5,6,1\n")
    with pytest.raises(DataError, match="integer"):
        data.load(tmp_path / "f.csv")


def test_from_env_list_errors():
    with pytest.raises(DataError, match="disagree on the number of features"):
        data.from_env_list([np.ones((3, 2)), np.ones((3, 3))])
    with pytest.raises(DataError, match="2-d array"):
        data.from_env_list([np.ones(3), np.ones(3)])
    with pytest.raises(DataError, match="need at least 2 environments"):
        data.from_env_list([np.ones((3, 2))])
