"""Gridded NetCDF fields: read lazily, label environments in time, fit, write the result.

:func:`open_field` opens one variable of a NetCDF file with xarray + dask (nothing is loaded
but a pass that finds the valid cells), finds its time, latitude and longitude dimensions by
CF conventions, drops length-1 extra dimensions (e.g. one pressure level), stacks
(lat, lon) into cells and keeps the cells that are finite and not constant in time (land cells
of an SST field are missing). :func:`env_labels` gives every time step an environment: a
variable along time, a component of the date (``season``, ``month``, ``year``), epochs that
start at given years, or a file with one label per step. :func:`fit_field` reduces the field
to its signal subspace (:func:`mncrl.field.signal_subspace`), fits an estimator on the
per-environment rows of the scores (time order kept), maps the unmixing back
(Zhat = scores W) and computes the regression patterns; :meth:`FieldFit.write` writes
everything as NetCDF, atomically.

The bootstrap (``bootstrap=B``, ``block=L``) resamples the rows of the *scores*: the
reduction is computed once, from all time steps, and is not resampled.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mncrl.errors import MncrlError
from mncrl.field import Reduction, coslat_weights, regression_patterns, signal_subspace

CHUNK_BYTES = 1 << 27  # default dask chunk: ~128 MiB of time steps x all cells
SEASONS = ("DJF", "MAM", "JJA", "SON")
DATE_PARTS = ("season", "month", "year")
_NAMES = {
    "time": {"time", "t", "date", "times"},
    "lat": {"lat", "latitude", "nav_lat", "rlat"},
    "lon": {"lon", "longitude", "nav_lon", "rlon"},
}
_STANDARD = {"time": "time", "lat": "latitude", "lon": "longitude"}
_AXIS = {"time": "T", "lat": "Y", "lon": "X"}
_UNITS = {
    "lat": {"degrees_north", "degree_north", "degree_n", "degrees_n"},
    "lon": {"degrees_east", "degree_east", "degree_e", "degrees_e"},
}


@dataclass(frozen=True)
class Field:
    """A gridded field, lazily: ``data`` (dask, T x C valid cells, time order), ``time``
    (the time coordinate, an xarray DataArray), ``lat``/``lon`` (C, of every valid cell),
    ``grid_lat``/``grid_lon`` (the grid's coordinates, xarray), ``mask`` (n_lat x n_lon,
    True on valid cells), ``weights`` (C, sqrt(cos(lat))), the variable's name and
    attributes, the source path, the squeezed extra dimensions and the lazy ``dataset``
    (for environment variables along time)."""

    data: object
    time: object
    lat: np.ndarray
    lon: np.ndarray
    grid_lat: object
    grid_lon: object
    mask: np.ndarray
    weights: np.ndarray
    var: str
    attrs: dict
    path: str
    squeezed: dict
    dataset: object

    @property
    def grid_shape(self) -> tuple[int, int]:
        return self.mask.shape

    @property
    def n_time(self) -> int:
        return int(self.data.shape[0])

    def to_grid(self, values: np.ndarray) -> np.ndarray:
        """(..., C) values of the valid cells -> (..., n_lat, n_lon), NaN on masked cells."""
        values = np.asarray(values, dtype=np.float64)
        out = np.full(values.shape[:-1] + (self.mask.size,), np.nan)
        out[..., self.mask.ravel()] = values
        return out.reshape(values.shape[:-1] + self.mask.shape)


def _open(path, chunks=None):
    import xarray as xr

    path = Path(path)
    if not path.is_file():
        raise MncrlError(f"{path}: no such file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return xr.open_dataset(path, chunks=chunks)
    except Exception as exc:  # every backend's own error type: one line
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise MncrlError(f"{path}: cannot read it as NetCDF ({first})") from None


def _role(ds, dim: str) -> str | None:
    """'time', 'lat', 'lon' or None for the dimension ``dim`` of ``ds`` (CF: its name, or its
    coordinate's ``standard_name``, ``axis`` or ``units``; a datetime coordinate is time)."""
    coord = ds.coords.get(dim)
    attrs = {} if coord is None else coord.attrs
    for role in ("time", "lat", "lon"):
        if str(attrs.get("standard_name", "")).lower() == _STANDARD[role]:
            return role
    for role in ("time", "lat", "lon"):
        if str(attrs.get("axis", "")).upper() == _AXIS[role]:
            return role
    units = str(attrs.get("units", "")).lower()
    for role in ("lat", "lon"):
        if units in _UNITS[role]:
            return role
    if coord is not None and np.issubdtype(coord.dtype, np.datetime64):
        return "time"
    for role in ("time", "lat", "lon"):
        if dim.lower() in _NAMES[role]:
            return role
    return None


def _dims(ds, var: str) -> tuple[dict, dict]:
    """({'time': dim, 'lat': dim, 'lon': dim}, {extra dim: size}) of ``ds[var]``."""
    da = ds[var]
    roles: dict = {}
    extra: dict = {}
    for dim in da.dims:
        role = _role(ds, dim)
        if role is None or role in roles:
            extra[dim] = int(da.sizes[dim])
        else:
            roles[role] = dim
    missing = [r for r in ("time", "lat", "lon") if r not in roles]
    if missing:
        raise MncrlError(
            f"variable {var!r} has dimensions {tuple(da.dims)}: found no "
            f"{' or '.join(missing)} dimension (CF names time/lat/latitude/lon/longitude, or "
            "coordinates with axis T/Y/X or standard_name time/latitude/longitude)"
        )
    big = {d: n for d, n in extra.items() if n != 1}
    if big:
        dim, n = next(iter(big.items()))
        raise MncrlError(
            f"variable {var!r} has a dimension {dim!r} of size {n} besides time, latitude and "
            f"longitude: select one {dim} first (e.g. xarray .sel or cdo sellevel)"
        )
    return roles, extra


def _chunk_steps(ds, var: str, time_dim: str, cells: int, chunks) -> int:
    """Time steps per dask chunk: ``chunks`` when given, else ~CHUNK_BYTES of all cells,
    rounded to a multiple of the file's own time chunks."""
    T = int(ds.sizes[time_dim])
    if chunks is not None:
        if isinstance(chunks, bool) or not isinstance(chunks, int | np.integer) or chunks < 1:
            raise MncrlError(f"chunks must be a positive number of time steps, got {chunks!r}")
        return int(min(chunks, T))
    itemsize = max(np.dtype(ds[var].dtype).itemsize, 4)
    steps = max(1, CHUNK_BYTES // (cells * itemsize))
    stored = ds[var].encoding.get("chunksizes")
    if stored:
        on_disk = int(stored[ds[var].dims.index(time_dim)])
        steps = max(on_disk, steps // on_disk * on_disk)
    return int(min(steps, T))


def open_field(path, var: str, *, chunks: int | None = None) -> Field:
    """Open ``var`` of the NetCDF file ``path`` lazily (``chunks`` time steps per dask chunk;
    default ~128 MiB per chunk, aligned with the file's chunks). One pass over the data finds
    the valid cells: finite at every time step and not constant. MncrlError (one line) for a
    missing file or variable, missing time/lat/lon dimensions, a non-singleton extra
    dimension, non-numeric data, fewer than 3 time steps or no valid cell."""
    import dask

    probe = _open(path)
    if var not in probe.data_vars:
        names = ", ".join(str(v) for v in probe.data_vars) or "none"
        raise MncrlError(f"{path}: no variable {var!r}; its variables: {names}")
    if not np.issubdtype(probe[var].dtype, np.number):
        raise MncrlError(f"variable {var!r} is not numeric (dtype {probe[var].dtype})")
    roles, extra = _dims(probe, var)
    t, y, x = roles["time"], roles["lat"], roles["lon"]
    cells = int(probe.sizes[y] * probe.sizes[x])
    steps = _chunk_steps(probe, var, t, cells, chunks)
    probe.close()
    ds = _open(path, chunks={t: steps, y: -1, x: -1, **{d: -1 for d in extra}})
    arr = ds[var]
    squeezed = {d: _scalar(arr[d].values[0]) if d in arr.coords else 0 for d in extra}
    arr = arr.isel({d: 0 for d in extra}).transpose(t, y, x)
    T, ny, nx = arr.shape
    if T < 3:
        raise MncrlError(f"variable {var!r} has {T} time steps: a field needs at least 3")
    flat = arr.data.reshape(T, ny * nx)
    with dask.config.set(scheduler="threads"):
        lo, hi = dask.compute(flat.min(axis=0), flat.max(axis=0))
    valid = np.isfinite(lo) & np.isfinite(hi) & (hi > lo)
    if not valid.any():
        raise MncrlError(
            f"variable {var!r}: no grid cell is finite at every time step and varies in time"
        )
    lat2, lon2 = np.meshgrid(ds[y].values, ds[x].values, indexing="ij")
    lat = lat2.ravel()[valid].astype(np.float64)
    return Field(
        data=flat[:, valid],
        time=ds[t],
        lat=lat,
        lon=lon2.ravel()[valid].astype(np.float64),
        grid_lat=ds[y],
        grid_lon=ds[x],
        mask=valid.reshape(ny, nx),
        weights=coslat_weights(lat),
        var=var,
        attrs=dict(arr.attrs),
        path=str(path),
        squeezed=squeezed,
        dataset=ds,
    )


def _scalar(value):
    return value.item() if hasattr(value, "item") else value


# ----------------------------------------------------------------------------- environments


@dataclass(frozen=True)
class Environments:
    """One label per time step (``labels``, str), the environments in order (``names``) and
    how they were made (``spec``, e.g. ``"season"``, ``"epochs 1977"``)."""

    labels: np.ndarray
    names: tuple
    spec: str

    def counts(self) -> dict:
        return {n: int(np.sum(self.labels == n)) for n in self.names}


def _label_strings(values) -> np.ndarray:
    values = np.asarray(values)
    if values.dtype.kind == "f":
        if not np.isfinite(values).all():
            raise MncrlError("environment labels must not be missing (NaN)")
        if np.all(values == np.round(values)):
            values = values.astype(np.int64)
    return np.array([str(v).strip() for v in values.tolist()], dtype=object)


def _order(names) -> tuple:
    names = sorted(set(names))
    if set(names) <= set(SEASONS):
        return tuple(s for s in SEASONS if s in names)
    try:
        return tuple(sorted(names, key=float))
    except ValueError:
        return tuple(names)


def _years(field: Field) -> np.ndarray:
    try:
        return np.asarray(field.time.dt.year.values, dtype=np.int64)
    except (TypeError, AttributeError):
        raise MncrlError(
            f"the time coordinate {field.time.name!r} is not made of dates "
            f"(dtype {field.time.dtype}): use --env NAME of a variable or --env-file"
        ) from None


def env_from_name(field: Field, name: str) -> Environments:
    """Labels from the variable/coordinate ``name`` along time (it wins over a date part of
    the same name), else from ``season`` (DJF/MAM/JJA/SON), ``month`` or ``year`` of the
    time coordinate."""
    ds, tdim = field.dataset, field.time.dims[0]
    if name in ds.variables and name != field.var:
        v = ds[name]
        if v.dims != (tdim,):
            raise MncrlError(
                f"--env {name}: the variable has dimensions {v.dims}, not ({tdim!r},) "
                "(one label per time step)"
            )
        return _environments(_label_strings(v.values), name)
    if name in DATE_PARTS:
        _years(field)
        labels = _label_strings(getattr(field.time.dt, name).values)
        return _environments(labels, name)
    along = [str(v) for v in ds.variables if ds[v].dims == (tdim,) and v != tdim]
    raise MncrlError(
        f"--env {name}: not a variable along {tdim!r} in {field.path} nor one of "
        f"{', '.join(DATE_PARTS)}; variables along time: {', '.join(along) or 'none'}"
    )


def parse_years(text) -> list[int]:
    """``"1977"`` / ``"1977,1990"`` / ``[1977, 1990]`` -> strictly increasing years."""
    items = text.split(",") if isinstance(text, str) else list(text)
    try:
        years = [int(str(y).strip()) for y in items]
    except ValueError:
        raise MncrlError(
            f"--epochs expects years separated by commas (e.g. 1977 or 1960,1977), got {text!r}"
        ) from None
    if not years or any(b <= a for a, b in zip(years, years[1:], strict=False)):
        raise MncrlError(f"--epochs years must be strictly increasing, got {text!r}")
    return years


def env_from_epochs(field: Field, years) -> Environments:
    """Epochs separated at the start of each year in ``years``: labels ``"FIRST-LAST"`` (the
    years of the data in each epoch), in time order; every epoch must have time steps."""
    years = parse_years(years)
    y = _years(field)
    index = np.searchsorted(np.asarray(years), y, side="right")
    names = []
    labels = np.empty(len(y), dtype=object)
    for k in range(len(years) + 1):
        rows = index == k
        if not rows.any():
            lo = "the start" if k == 0 else str(years[k - 1])
            hi = "the end" if k == len(years) else str(years[k] - 1)
            raise MncrlError(
                f"--epochs {','.join(map(str, years))}: the epoch from {lo} to {hi} has no time "
                f"steps (the data cover {y.min()}-{y.max()})"
            )
        name = f"{y[rows].min()}-{y[rows].max()}"
        names.append(name)
        labels[rows] = name
    return Environments(
        labels=labels, names=tuple(names), spec=f"epochs {','.join(map(str, years))}"
    )


def env_from_file(field: Field, path) -> Environments:
    """One label per time step from a text file: one per line (a CSV's first column; blank
    lines and lines starting with ``#`` skipped; a first line ``env``, ``label`` or
    ``environment`` is a header)."""
    path = Path(path)
    try:
        lines = path.read_text().splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise MncrlError(f"--env-file {path}: cannot read it ({exc.strerror or exc})") from None
    labels = [ln.split(",")[0].strip() for ln in lines if ln.strip() and not ln.startswith("#")]
    if labels and labels[0].lower() in {"env", "label", "environment"}:
        labels = labels[1:]
    if len(labels) != field.n_time:
        raise MncrlError(
            f"--env-file {path} has {len(labels)} labels, the field has {field.n_time} time steps"
        )
    return _environments(np.array(labels, dtype=object), f"file {path.name}")


def _environments(labels: np.ndarray, spec: str) -> Environments:
    return Environments(labels=labels, names=_order(labels.tolist()), spec=spec)


def env_labels(field: Field, *, env=None, epochs=None, env_file=None) -> Environments:
    """The environments of ``field``'s time steps from exactly one of ``env`` (a name),
    ``epochs`` (years) and ``env_file`` (a path); at least 2 environments."""
    given = [n for n, v in (("--env", env), ("--epochs", epochs), ("--env-file", env_file)) if v]
    if len(given) != 1:
        raise MncrlError(
            "a NetCDF field needs exactly one of --env NAME, --epochs Y1[,Y2...] and --env-file F"
            + (f" (got {' and '.join(given)})" if given else "")
        )
    if env:
        envs = env_from_name(field, env)
    elif epochs:
        envs = env_from_epochs(field, epochs)
    else:
        envs = env_from_file(field, env_file)
    if len(envs.names) < 2:
        raise MncrlError(f"{envs.spec}: gives one environment ({envs.names[0]}), need at least 2")
    return envs


# ------------------------------------------------------------------------------------- fit


@dataclass(frozen=True)
class FieldFit:
    """The result of :func:`fit_field`: the estimator's ``fit`` (W p x d, targets over the
    fitted environments, info), the ``reduction``, the ``field`` and its ``envs``, the
    fitted (interventional) environments ``fitted_envs`` and the ``observational`` ones,
    ``latents`` (T x d) and ``patterns`` (d x n_lat x n_lon, NaN on masked cells)."""

    fit: object
    reduction: Reduction
    field: Field
    envs: Environments
    fitted_envs: tuple
    observational: tuple
    latents: np.ndarray
    patterns: np.ndarray

    def to_dataset(self):
        """The result as an xarray Dataset (see :func:`result_dataset`)."""
        return result_dataset(self)

    def write(self, path) -> None:
        """Write :meth:`to_dataset` to ``path`` (.nc) atomically: nothing on error."""
        write_netcdf(self.to_dataset(), path)


def fit_field(
    path,
    var: str,
    *,
    latent_dim: int,
    components: int | None = None,
    env: str | None = None,
    epochs=None,
    env_file=None,
    observational=(),
    estimator: str = "sparse-variance",
    preset: str | None = None,
    seed: int = 0,
    chunks: int | None = None,
    power_iter: int = 2,
    allow_degenerate: bool = False,
    bootstrap: int = 0,
    block: int | None = None,
    progress: bool = False,
    **overrides,
) -> FieldFit:
    """Fit ``estimator`` to the field ``var`` of the NetCDF file ``path``.

    Environments come from exactly one of ``env``, ``epochs`` and ``env_file``
    (:func:`env_labels`); ``observational`` lists labels set aside as observational (given
    to estimators that use them). The field is reduced to ``components`` (default
    ``latent_dim``) EOFs of its area-weighted anomalies; the estimator is fitted on each
    environment's rows of the scores in time order (``api.fit``: presets, overrides,
    degeneracy check, ``bootstrap``/``block`` on the scores); latents = scores W and the
    patterns are the regression maps of the field on them (:mod:`mncrl.field`).
    """
    from mncrl import api
    from mncrl import estimators as registry

    registry.resolve(estimator, preset, overrides)  # bad names fail before any reading
    if isinstance(latent_dim, bool) or not isinstance(latent_dim, int | np.integer):
        raise MncrlError(
            f"a NetCDF field needs the number of latents (latent_dim), got {latent_dim!r}"
        )
    p = int(latent_dim if components is None else components)
    if latent_dim < 1 or p < latent_dim:
        raise MncrlError(
            f"need 1 <= latent_dim <= components, got latent_dim={latent_dim}, components={p}"
        )
    api._check_bootstrap(bootstrap, block)
    field = open_field(path, var, chunks=chunks)
    envs = env_labels(field, env=env, epochs=epochs, env_file=env_file)
    observational = tuple(str(o) for o in observational)
    unknown = [o for o in observational if o not in envs.names]
    if unknown:
        raise MncrlError(
            f"observational environment {unknown[0]!r} is not one of {', '.join(envs.names)}"
        )
    fitted = tuple(n for n in envs.names if n not in observational)
    if block is not None and bootstrap:
        from mncrl.bootstrap import check_block

        check_block(block, [envs.counts()[n] for n in fitted])
    red = signal_subspace(field.data, p, weights=field.weights, seed=seed, power_iter=power_iter)
    blocks = [red.scores[envs.labels == n] for n in fitted]
    obs = None
    if observational:
        obs = red.scores[np.isin(envs.labels, list(observational))]
    result = api.fit(
        blocks,
        estimator,
        preset,
        int(latent_dim),
        seed,
        observational=obs,
        basis=red.eofs,
        progress=progress,
        allow_degenerate=allow_degenerate,
        bootstrap=bootstrap,
        block=block,
        **overrides,
    )
    latents = red.scores @ np.asarray(result.unmixing, dtype=np.float64)
    patterns = field.to_grid(regression_patterns(latents, red))
    return FieldFit(
        fit=result,
        reduction=red,
        field=field,
        envs=envs,
        fitted_envs=fitted,
        observational=observational,
        latents=latents,
        patterns=patterns,
    )


# ----------------------------------------------------------------------------------- write


def _coord(da):
    """A clean copy of a coordinate: values, attributes without ``bounds``, time encoding."""
    import xarray as xr

    attrs = {k: v for k, v in da.attrs.items() if k != "bounds"}
    out = xr.DataArray(np.asarray(da.values), dims=da.dims, attrs=attrs, name=da.name)
    out.encoding = {k: v for k, v in da.encoding.items() if k in ("units", "calendar", "dtype")}
    return out


def result_dataset(result: FieldFit):
    """The NetCDF layout of a :class:`FieldFit` (documented in docs/climate.md)."""
    import xarray as xr

    import mncrl

    f, red, fit = result.field, result.reduction, result.fit
    t, y, x = f.time.name, f.grid_lat.name, f.grid_lon.name
    d, p = result.latents.shape[1], red.p
    total = float(np.square(red.singular_values).sum() / red.explained)
    units = f.attrs.get("units")
    coords = {
        t: _coord(f.time),
        y: _coord(f.grid_lat),
        x: _coord(f.grid_lon),
        "latent": ("latent", np.arange(d)),
        "component": ("component", np.arange(p)),
        "environment": ("environment", np.array(result.fitted_envs, dtype=object)),
    }
    data = {
        "latents": (
            (t, "latent"),
            result.latents,
            {"long_name": "recovered latent time series: EOF scores times the unmixing W"},
        ),
        "patterns": (
            ("latent", y, x),
            result.patterns,
            {
                "long_name": "regression map of the field on each latent",
                **({"units": f"{units} per unit latent"} if units else {}),
            },
        ),
        "env": (
            (t,),
            result.envs.labels.astype(str).astype(object),
            {"long_name": "environment of each time step"},
        ),
        "unmixing": (
            ("component", "latent"),
            np.asarray(fit.unmixing, dtype=np.float64),
            {"long_name": "unmixing W: latents = EOF scores @ W"},
        ),
        "eof_variance_fraction": (
            ("component",),
            np.square(red.singular_values) / total,
            {"long_name": "share of the area-weighted anomaly variance of each EOF"},
        ),
        "valid_cell": (
            (y, x),
            f.mask.astype(np.int8),
            {"long_name": "1 where the cell is finite at every time step and not constant"},
        ),
    }
    if fit.targets is not None:
        data["targets"] = (
            ("environment", "latent"),
            np.asarray(fit.targets, dtype=np.int8),
            {"long_name": "1 where the environment intervenes on the latent (estimated)"},
        )
    info = dict(fit.info)
    boot = info.get("bootstrap")
    if boot and boot.get("fitted"):
        data["bootstrap_corr_mean"] = (
            ("latent",),
            np.asarray(boot["latent_corr_mean"]),
            {"long_name": "mean matched |corr| with the full-data latent over the resamples"},
        )
        data["bootstrap_corr_min"] = (
            ("latent",),
            np.asarray(boot["latent_corr_min"]),
            {"long_name": "min matched |corr| with the full-data latent over the resamples"},
        )
        if boot.get("target_frequency") is not None:
            data["bootstrap_target_frequency"] = (
                ("environment", "latent"),
                np.asarray(boot["target_frequency"]),
                {"long_name": "share of resamples with the latent among the environment's targets"},
            )
    attrs = {
        "title": f"mncrl fit of {f.var}",
        "source": f.path,
        "variable": f.var,
        "estimator": str(info.get("estimator")),
        "preset": str(info.get("preset")),
        "seed": int(info.get("seed", 0)),
        "components": int(p),
        "latent_dim": int(d),
        "environments": result.envs.spec,
        "observational_envs": ",".join(result.observational),
        "eof_explained_variance": float(red.explained),
        "valid_cells": int(f.mask.sum()),
        "degenerate": int(bool(info.get("degenerate"))),
        "mncrl_version": mncrl.__version__,
        "info_json": json.dumps(info, default=_jsonable),
    }
    if boot:
        attrs.update(
            bootstrap_resamples=int(boot["resamples"]),
            bootstrap_fitted=int(boot["fitted"]),
            bootstrap_failed=int(boot["failed"]),
            bootstrap_scheme=str(boot["scheme"]) + " of the EOF scores (the EOFs not resampled)",
        )
    for dim, value in f.squeezed.items():
        attrs[f"selected_{dim}"] = value if isinstance(value, int | float | str) else str(value)
    return xr.Dataset(data, coords=coords, attrs=attrs)


def write_netcdf(ds, path) -> None:
    """``ds.to_netcdf`` into a temporary file next to ``path``, then renamed: nothing is left
    on error. MncrlError unless ``path`` ends in .nc."""
    from mncrl.data import atomic_write

    path = Path(path)
    if path.suffix.lower() != ".nc":
        raise MncrlError(f"the output of a NetCDF field must end in .nc, got {path.name!r}")
    if path.is_dir():
        raise MncrlError(f"--out {path} is a directory")

    def write(tmp):
        from xarray.coding.variables import SerializationWarning

        with warnings.catch_warnings():  # e.g. the input's own ambiguous time units
            warnings.simplefilter("ignore", SerializationWarning)
            ds.to_netcdf(tmp, engine="netcdf4")

    atomic_write(path, write)


def _jsonable(value):
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return str(value)


__all__ = [
    "Environments",
    "Field",
    "FieldFit",
    "env_from_epochs",
    "env_from_file",
    "env_from_name",
    "env_labels",
    "fit_field",
    "open_field",
    "parse_years",
    "result_dataset",
    "write_netcdf",
]
