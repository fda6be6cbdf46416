"""The on-disk data format shared by the simulator, the estimators and user data.

``.npz`` with ``X`` (n x m float), ``env`` (n int), optional ``Z`` (n x d), ``L`` (d x m) and
``targets`` (K x d bool); or ``.csv`` with numeric columns and an environment column.
Every loader validates and raises :class:`~mncrl.errors.DataError` with one clear line.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mncrl.errors import DataError


@dataclass(frozen=True)
class Dataset:
    """Multi-environment observations with optional ground truth.

    ``env`` holds environment indices 0..K-1 (every index present). ``targets[k, j]`` is True when
    environment k intervenes on latent j (an all-False row is an observational environment).
    """

    X: np.ndarray
    env: np.ndarray
    Z: np.ndarray | None = None
    L: np.ndarray | None = None
    targets: np.ndarray | None = None
    meta: dict = field(default_factory=dict, compare=False)

    @property
    def n_envs(self) -> int:
        return int(self.env.max()) + 1

    @property
    def n_features(self) -> int:
        return int(self.X.shape[1])

    def split_envs(self) -> list[np.ndarray]:
        """Per-environment observation blocks, in environment order."""
        return [self.X[self.env == k] for k in range(self.n_envs)]

    def subset_envs(self, keep: np.ndarray | list[int]) -> Dataset:
        """The dataset restricted to some environments, renumbered 0..len(keep)-1."""
        keep = [int(k) for k in keep]
        rows = np.isin(self.env, keep)
        remap = np.full(self.n_envs, -1, dtype=np.int64)
        remap[keep] = np.arange(len(keep))
        return Dataset(
            X=self.X[rows],
            env=remap[self.env[rows]].astype(np.int32),
            Z=None if self.Z is None else self.Z[rows],
            L=self.L,
            targets=None if self.targets is None else self.targets[keep],
            meta=dict(self.meta),
        )


def _check(cond: bool, msg: str) -> None:
    if not cond:
        raise DataError(msg)


def validate(ds: Dataset, *, min_envs: int = 2) -> Dataset:
    """Check shapes, finiteness and environment labels; return ``ds`` or raise DataError."""
    X, env = ds.X, ds.env
    _check(X.ndim == 2, f"X must be a 2-d array (rows x features), got shape {X.shape}")
    _check(X.shape[0] > 0 and X.shape[1] > 0, f"X is empty (shape {X.shape})")
    _check(np.issubdtype(X.dtype, np.number), f"X must be numeric, got dtype {X.dtype}")
    _check(bool(np.isfinite(X).all()), f"X contains {int((~np.isfinite(X)).sum())} NaN/Inf values")
    _check(
        env.ndim == 1 and env.shape[0] == X.shape[0],
        f"env must have one label per row of X ({X.shape[0]}), got shape {env.shape}",
    )
    _check(
        np.issubdtype(env.dtype, np.integer), f"env labels must be integers, got dtype {env.dtype}"
    )
    _check(int(env.min()) >= 0, "env labels must be non-negative integers")
    labels = _labels(env)
    _check(labels.size >= min_envs, f"need at least {min_envs} environments, found {labels.size}")
    _check(
        labels.size == int(labels.max()) + 1,
        f"env labels must be 0..K-1 with every label present, found {labels.tolist()[:10]}",
    )
    if ds.Z is not None:
        _check(
            ds.Z.ndim == 2 and ds.Z.shape[0] == X.shape[0],
            f"Z must have shape (n={X.shape[0]}, d), got {ds.Z.shape}",
        )
        _check(bool(np.isfinite(ds.Z).all()), "Z contains NaN/Inf values")
    if ds.L is not None:
        _check(
            ds.L.ndim == 2 and ds.L.shape[1] == X.shape[1],
            f"L must have shape (d, m={X.shape[1]}), got {ds.L.shape}",
        )
        _check(ds.L.shape[0] <= X.shape[1], f"L has more latents ({ds.L.shape[0]}) than features")
        if ds.Z is not None:
            _check(ds.L.shape[0] == ds.Z.shape[1], "L and Z disagree on the latent dimension")
    if ds.targets is not None:
        _check(
            ds.targets.ndim == 2 and ds.targets.shape[0] == labels.size,
            f"targets must have one row per environment ({labels.size}), got {ds.targets.shape}",
        )
    return ds


def _labels(env: np.ndarray) -> np.ndarray:
    """The distinct labels of non-negative integer ``env``, sorted: one counting pass (no sort)
    when the largest label is below the number of rows, as it is whenever 0..K-1 all occur."""
    top = int(env.max())
    if top >= env.size:
        return np.unique(env)
    return np.flatnonzero(np.bincount(env.astype(np.intp, copy=False), minlength=top + 1))


def from_arrays(X, env, Z=None, L=None, targets=None) -> Dataset:
    """Build and validate a Dataset from array-likes."""
    ds = Dataset(
        X=np.asarray(X),
        env=np.asarray(env),
        Z=None if Z is None else np.asarray(Z),
        L=None if L is None else np.asarray(L),
        targets=None if targets is None else np.asarray(targets, dtype=bool),
    )
    return validate(ds)


def from_env_list(envs: list) -> Dataset:
    """Build a Dataset from a list of per-environment (n_k x m) arrays."""
    blocks = [np.asarray(e) for e in envs]
    if any(b.ndim != 2 for b in blocks):
        raise DataError("every environment must be a 2-d array (rows x features)")
    if len({b.shape[1] for b in blocks}) > 1:
        raise DataError("environments disagree on the number of features")
    X = np.concatenate(blocks, axis=0) if blocks else np.zeros((0, 0))
    env = (
        np.concatenate([np.full(len(b), k, dtype=np.int32) for k, b in enumerate(blocks)])
        if blocks
        else np.zeros(0, dtype=np.int32)
    )
    return validate(Dataset(X=X, env=env))


KEYS = ("X", "env", "Z", "L", "targets")


def load(path: str | os.PathLike, *, env_column: str = "env", keys=None) -> Dataset:
    """Load and validate a ``.npz`` or ``.csv`` data file.

    ``keys`` names the arrays of a ``.npz`` to read (None: all of :data:`KEYS`); ``X`` and
    ``env`` are always read. The others are left out of the Dataset (None) without being
    decompressed, e.g. ``keys=("X", "env")`` skips the ground truth Z, as large as X. A
    ``.csv`` holds only X and env.
    """
    path = Path(path)
    wanted = set(KEYS if keys is None else keys) | {"X", "env"}
    unknown = sorted(wanted - set(KEYS))
    if unknown:
        raise DataError(f"unknown data array {unknown[0]!r}: choose from {', '.join(KEYS)}")
    if not path.exists():
        raise DataError(f"data file not found: {path}")
    suffix = path.suffix.lower()
    if suffix == ".npz":
        ds = _load_npz(path, wanted)
    elif suffix == ".csv":
        ds = _load_csv(path, env_column)
    else:
        raise DataError(f"unknown data format '{suffix}' for {path}: use .npz or .csv")
    return validate(ds)


def _load_npz(path: Path, keys: set[str]) -> Dataset:
    try:
        with np.load(path, allow_pickle=False) as f:
            found = f.files
            arrays = {k: f[k] for k in found if k in keys}
    except ValueError as exc:
        if "pickle" in str(exc):  # np.load's guess for anything that is not a zip archive
            raise DataError(
                f"cannot read {path}: not a valid .npz file (or it holds "
                "pickled object arrays, which are refused)"
            ) from None
        raise DataError(f"cannot read {path} as .npz: {exc}") from None
    except Exception as exc:  # corrupt zip, truncated file, ...
        raise DataError(f"cannot read {path} as .npz: {exc}") from None
    for key in ("X", "env"):
        _check(key in arrays, f"{path}: missing array '{key}' (found: {sorted(found)})")
    env = arrays["env"]
    if np.issubdtype(env.dtype, np.floating) and np.all(env == np.round(env)):
        env = env.astype(np.int64)
    return Dataset(
        X=arrays["X"],
        env=env,
        Z=arrays.get("Z"),
        L=arrays.get("L"),
        targets=None if "targets" not in arrays else arrays["targets"].astype(bool),
    )


def _load_csv(path: Path, env_column: str) -> Dataset:
    import pandas as pd

    try:
        df = pd.read_csv(path)
    except Exception as exc:
        raise DataError(f"cannot read {path} as CSV: {exc}") from None
    _check(
        env_column in df.columns,
        f"{path}: no environment column '{env_column}' (columns: {list(df.columns)[:10]})",
    )
    features = df.drop(columns=[env_column])
    non_numeric = [c for c in features.columns if not pd.api.types.is_numeric_dtype(features[c])]
    _check(not non_numeric, f"{path}: non-numeric feature columns {non_numeric[:5]}")
    env_raw = df[env_column]
    if pd.api.types.is_numeric_dtype(env_raw):
        _check(
            bool(np.isfinite(env_raw.to_numpy(dtype=float)).all()),
            f"{path}: missing values in column '{env_column}'",
        )
        values = env_raw.to_numpy(dtype=float)
        _check(
            bool(np.all(values == np.round(values))),
            f"{path}: environment labels in column '{env_column}' must be integers or strings",
        )
        env = values.astype(np.int64)
        if not np.array_equal(np.unique(env), np.arange(np.unique(env).size)):
            env = np.unique(env, return_inverse=True)[1]
    else:  # string labels: numbered in order of first appearance
        _, first, inverse = np.unique(env_raw.astype(str), return_index=True, return_inverse=True)
        order = np.argsort(np.argsort(first))
        env = order[inverse]
    return Dataset(
        X=features.to_numpy(dtype=float),
        env=env.astype(np.int64),
        meta={"columns": list(features.columns)},
    )


def atomic_write(path: str | os.PathLike, write) -> None:
    """Call ``write(tmp_path)`` then rename into ``path``: no half-written file on interruption."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=path.suffix)
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save(ds: Dataset, path: str | os.PathLike, *, env_column: str = "env") -> None:
    """Write a Dataset atomically as ``.npz`` (with ground truth) or ``.csv`` (X and env only)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".npz":
        arrays = {"X": ds.X, "env": ds.env}
        for key in ("Z", "L", "targets"):
            value = getattr(ds, key)
            if value is not None:
                arrays[key] = value

        def write(tmp):
            with open(tmp, "wb") as fh:
                np.savez_compressed(fh, **arrays)
    elif suffix == ".csv":
        import pandas as pd

        df = pd.DataFrame(ds.X, columns=[f"x{i}" for i in range(ds.X.shape[1])])
        df[env_column] = ds.env

        def write(tmp):
            df.to_csv(tmp, index=False)
    else:
        raise DataError(f"unknown output format '{suffix}' for {path}: use .npz or .csv")
    atomic_write(path, write)
