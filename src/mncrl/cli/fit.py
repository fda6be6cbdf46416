"""`mncrl fit`: fit an estimator to a multi-environment data file and write W and Zhat.

Writes OUT.npz atomically (nothing on error) with ``W`` (m x d), ``Zhat`` (n x d, the rows of
DATA in their order, float32 for float32 data), ``targets`` (K x d bool, when the estimator
reports them), ``degenerate`` (bool) and provenance: ``estimator``, ``preset``, ``seed``,
``latent_dim`` and ``info_json`` (hyper-parameters, losses, timings, the degeneracy
diagnosis, the bootstrap summary, ... as JSON). A degenerate fit (:mod:`mncrl.degeneracy`) is
an error unless ``--allow-degenerate``; ``--bootstrap B [--block L]`` refits B resamples
(:mod:`mncrl.bootstrap`). Compiled XLA programs are kept in a persistent cache
(:mod:`mncrl.cache`; ``--cache-dir``, ``--no-cache``).

A NetCDF DATA (``.nc``: a gridded field, ``--var``, one of ``--env``/``--epochs``/
``--env-file``, ``--latent-dim``) is reduced to its EOF scores and fitted by
:func:`mncrl.field_io.fit_field`; OUT is then NetCDF (docs/climate.md).
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
from pathlib import Path

from mncrl.errors import MncrlError


def add_parser(subparsers) -> None:
    from mncrl import estimators

    names = ", ".join(estimators.names())
    p = subparsers.add_parser(
        "fit",
        help="fit an estimator (W: Zhat = X W) to a multi-environment data file",
        description="Fit an estimator to DATA (.npz with X and env, or .csv with an env "
        "column) and write W, Zhat (rows aligned with DATA) and, when the "
        "estimator reports them, the estimated intervention targets to OUT.npz. "
        "Environments whose target row in DATA is all False (or listed with "
        "--observational-env) are observational: they are not fitted as "
        "environments, and estimators that use observational data (ica) get them.",
        epilog="Examples: mncrl fit data.npz --out fit.npz ; "
        "mncrl fit data.npz --estimator sparse-variance --preset paper --seed 3 "
        "--out fit.npz ; mncrl fit data.csv --estimator icrl --latent-dim 5 --out f.npz ; "
        "mncrl fit data.npz --set mode=moments --set restarts=16 --out fit.npz ; "
        "mncrl fit data.npz --estimator subspace --bootstrap 100 --out fit.npz ; "
        "mncrl fit sst.nc --var sst --epochs 1977 --latent-dim 3 --estimator subspace "
        "--out result.nc. "
        "Presets and hyper-parameters: docs/estimators.md; NetCDF fields: docs/climate.md.",
    )
    p.add_argument(
        "data",
        metavar="DATA",
        help="data file: .npz (X, env[, Z, L, targets]), "
        ".csv (numeric columns + environment column) or .nc (a gridded field: --var and one "
        "of --env/--epochs/--env-file)",
    )
    p.add_argument(
        "--out",
        required=True,
        metavar="OUT.npz",
        help="output file (.npz; .nc for a .nc DATA), written atomically",
    )
    p.add_argument(
        "--estimator",
        default="sparse-variance",
        metavar="NAME",
        help=f"estimator, one of: {names} [sparse-variance]",
    )
    p.add_argument(
        "--preset",
        metavar="P",
        help="named hyper-parameter set of the estimator (sparse-variance: best, "
        "paper, reference) [the estimator's default: best for sparse-variance]",
    )
    p.add_argument(
        "--latent-dim",
        type=int,
        metavar="D",
        help="number of latents d [estimated: numerical rank of the pooled "
        "covariance, relative tolerance 1e-6; required for a .nc DATA]",
    )
    p.add_argument(
        "--seed",
        type=int,
        default=0,
        metavar="S",
        help="seed of the estimator's randomness (initialisation, shuffling, FastICA; and "
        "the randomized SVD of a .nc DATA) [0]",
    )
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        dest="overrides",
        help="override one hyper-parameter, repeatable; VALUE is read as YAML "
        "(numbers, true/false, null, strings), e.g. --set lr=2e-3 "
        "--set mode=moments",
    )
    p.add_argument(
        "--env-column",
        default="env",
        metavar="NAME",
        help="name of the environment column of a .csv DATA [env]",
    )
    p.add_argument(
        "--observational-env",
        action="append",
        default=[],
        metavar="K",
        help="treat environment K as observational (repeatable), in addition to "
        "all-False target rows in DATA; for a .nc DATA, K is an environment label "
        "(e.g. DJF, 1948-1976)",
    )
    p.add_argument(
        "--allow-degenerate",
        action="store_true",
        help="write a degenerate fit (nearly collinear or collapsed recovered latents, or, "
        "for sparse-variance and subspace, no environment with a near-zero-variance "
        "direction) with its diagnosis instead of failing [off: one error line, exit 2]",
    )
    p.add_argument(
        "--bootstrap",
        type=int,
        default=0,
        metavar="B",
        help="refit B resamples of the rows within each environment and report how stable "
        "each recovered latent (|corr| with the full-data fit) and the targets are [0: off]",
    )
    p.add_argument(
        "--block",
        type=int,
        metavar="L",
        help="moving-block bootstrap with blocks of L consecutive rows (rows ordered in "
        "time) [i.i.d. rows]",
    )
    grid = p.add_argument_group("gridded NetCDF fields (DATA.nc; docs/climate.md)")
    grid.add_argument("--var", metavar="NAME", help="the field's variable in DATA.nc (e.g. sst)")
    labels = grid.add_mutually_exclusive_group()
    labels.add_argument(
        "--env",
        metavar="NAME",
        help="environment of each time step: a variable along time in DATA.nc, or season "
        "(DJF/MAM/JJA/SON), month or year of the time coordinate",
    )
    labels.add_argument(
        "--epochs",
        metavar="Y1[,Y2...]",
        help="environments = epochs starting at these years, e.g. 1977 (before/after the "
        "1976/77 Pacific climate shift)",
    )
    labels.add_argument(
        "--env-file",
        metavar="F",
        help="text/CSV file with one environment label per time step",
    )
    grid.add_argument(
        "--components",
        type=int,
        metavar="P",
        help="signal-subspace dimension: EOFs of the area-weighted anomalies the estimator "
        "sees [--latent-dim]",
    )
    grid.add_argument(
        "--chunks",
        type=int,
        metavar="N",
        help="time steps per dask chunk when reading DATA.nc [~128 MiB per chunk, a multiple "
        "of the file's own time chunks]",
    )
    caching = p.add_mutually_exclusive_group()
    caching.add_argument(
        "--cache-dir",
        metavar="DIR",
        help="directory of the persistent XLA compilation cache (compiled "
        "programs reused by later runs; same results) [$MNCRL_CACHE_DIR, "
        "else $JAX_COMPILATION_CACHE_DIR, else "
        "$XDG_CACHE_HOME/mncrl/jax = ~/.cache/mncrl/jax]; an unwritable "
        "directory gives one warning line and no cache",
    )
    caching.add_argument(
        "--no-cache", action="store_true", help="compile without the persistent compilation cache"
    )
    p.set_defaults(func=run)


def parse_overrides(items: list[str]) -> dict:
    """``["lr=2e-3", "mode=moments"]`` -> ``{"lr": 0.002, "mode": "moments"}``."""
    out: dict = {}
    if not items:
        return out
    import yaml

    for item in items:
        key, sep, text = item.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or not key:
            raise MncrlError(f"--set expects KEY=VALUE, got {item!r}")
        try:
            value = yaml.safe_load(text) if text.strip() else None
        except yaml.YAMLError:
            value = text
        if isinstance(value, str):  # YAML 1.1 reads 1e-3 as a string
            try:
                value = float(value)
            except ValueError:
                pass
        if (
            isinstance(value, float)
            and value.is_integer()
            and "." not in text
            and "e" not in text.lower()
        ):
            value = int(value)
        out[key] = value
    return out


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from mncrl import api, cache, estimators
    from mncrl.data import atomic_write, load
    from mncrl.errors import DegenerateFitError

    if Path(args.data).suffix.lower() == ".nc":
        return run_field(args)
    _no_field_flags(args)
    out = Path(args.out)
    if out.suffix.lower() != ".npz":
        raise MncrlError(f"--out must end in .npz, got {out.name!r}")
    if out.is_dir():
        raise MncrlError(f"--out {out} is a directory")
    if args.seed < 0:
        raise MncrlError(f"--seed must be a non-negative integer, got {args.seed}")
    if args.bootstrap < 0:
        raise MncrlError(f"--bootstrap must be an integer >= 0, got {args.bootstrap}")
    if args.block is not None and (args.block < 1 or not args.bootstrap):
        raise MncrlError(
            f"--block must be a positive integer, got {args.block}"
            if args.block < 1
            else "--block needs --bootstrap B"
        )
    overrides = parse_overrides(args.overrides)
    # DATA is read (decompression and checks release the GIL) while the estimator's libraries
    # import; no ground truth (Z, L) is read: targets only mark observational environments
    loading = _Background(load, args.data, env_column=args.env_column, keys=("X", "env", "targets"))
    est, preset, _ = estimators.resolve(args.estimator, args.preset, overrides)  # errors first
    cache.configure(args.cache_dir, enabled=not args.no_cache, prog="mncrl fit")
    ds = loading.result()
    X, env, targets = ds.X, ds.env, ds.targets
    del ds
    blocks = api.split_by_env(X, env)
    K = len(blocks)
    observational_env = [_env_index(k) for k in args.observational_env]
    bad = [k for k in observational_env if not 0 <= k < K]
    if bad:
        raise MncrlError(f"--observational-env {bad[0]}: DATA has environments 0..{K - 1}")
    obs = set(observational_env)
    if targets is not None:
        obs |= {k for k in range(K) if not targets[k].any()}
    interventional = [b for k, b in enumerate(blocks) if k not in obs]
    observational = None
    if obs:
        rows = [blocks[k] for k in sorted(obs)]
        observational = rows[0] if len(rows) == 1 else np.concatenate(rows)

    try:
        result = api.fit(
            interventional,
            est.name,
            args.preset,
            args.latent_dim,
            args.seed,
            observational=observational,
            progress=sys.stderr.isatty(),
            allow_degenerate=args.allow_degenerate,
            bootstrap=args.bootstrap,
            block=args.block,
            **overrides,
        )
    except DegenerateFitError as exc:
        raise DegenerateFitError(
            f"{est.name}: {exc.diagnosis.message()}; nothing written (--allow-degenerate "
            f"writes it with the diagnosis)",
            diagnosis=exc.diagnosis,
            fit=exc.fit,
        ) from None
    Zhat = api.unmix(X, result.unmixing)
    info = {**result.info, "observational_envs": sorted(obs), "data": str(args.data)}
    arrays = {
        "W": result.unmixing,
        "Zhat": Zhat,
        "estimator": np.array(est.name),
        "preset": np.array(str(preset)),
        "seed": np.array(args.seed),
        "latent_dim": np.array(int(result.unmixing.shape[1])),
        "degenerate": np.array(bool(info["degenerate"])),
        "info_json": np.array(json.dumps(info, default=_jsonable)),
    }
    if result.targets is not None:
        arrays["targets"] = np.asarray(result.targets, dtype=bool)

    def write(tmp):
        with open(tmp, "wb") as fh:
            np.savez(fh, **arrays)

    atomic_write(out, write)
    print(
        f"wrote {out}: W {result.unmixing.shape[0]}x{result.unmixing.shape[1]}, Zhat "
        f"{Zhat.shape[0]}x{Zhat.shape[1]}, estimator={est.name}, preset={preset}, "
        f"seed={args.seed}"
    )
    if info["degenerate"]:
        print(
            f"DEGENERATE fit, written because of --allow-degenerate (see info_json "
            f"'diagnosis'): {info['diagnosis']['message']}"
        )
    if "bootstrap" in info:
        from mncrl.bootstrap import table

        print(table(info["bootstrap"]))
    return 0


def _env_index(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise MncrlError(
            f"--observational-env expects an environment index (0, 1, ...), got {text!r}"
        ) from None


FIELD_FLAGS = ("var", "env", "epochs", "env_file", "components", "chunks")


def _no_field_flags(args) -> None:
    given = [f"--{f.replace('_', '-')}" for f in FIELD_FLAGS if getattr(args, f) is not None]
    if given:
        raise MncrlError(f"{given[0]} applies to a NetCDF DATA (.nc), not to {args.data}")


def run_field(args: argparse.Namespace) -> int:
    """`mncrl fit DATA.nc ...`: :func:`mncrl.field_io.fit_field`, written as NetCDF."""
    from mncrl import cache, estimators
    from mncrl.errors import DegenerateFitError
    from mncrl.field_io import fit_field, write_netcdf

    out = Path(args.out)
    if out.suffix.lower() != ".nc":
        raise MncrlError(f"--out must end in .nc for a NetCDF DATA, got {out.name!r}")
    if out.is_dir():
        raise MncrlError(f"--out {out} is a directory")
    if not args.var:
        raise MncrlError("a NetCDF DATA needs --var NAME (the field's variable)")
    if args.latent_dim is None:
        raise MncrlError("a NetCDF DATA needs --latent-dim D (the number of latents)")
    if args.seed < 0:
        raise MncrlError(f"--seed must be a non-negative integer, got {args.seed}")
    if args.block is not None and not args.bootstrap:
        raise MncrlError("--block needs --bootstrap B")
    overrides = parse_overrides(args.overrides)
    est, preset, _ = estimators.resolve(args.estimator, args.preset, overrides)
    cache.configure(args.cache_dir, enabled=not args.no_cache, prog="mncrl fit")
    try:
        result = fit_field(
            args.data,
            args.var,
            latent_dim=args.latent_dim,
            components=args.components,
            env=args.env,
            epochs=args.epochs,
            env_file=args.env_file,
            observational=args.observational_env,
            estimator=est.name,
            preset=args.preset,
            seed=args.seed,
            chunks=args.chunks,
            allow_degenerate=args.allow_degenerate,
            bootstrap=args.bootstrap,
            block=args.block,
            progress=sys.stderr.isatty(),
            **overrides,
        )
    except DegenerateFitError as exc:
        raise DegenerateFitError(
            f"{est.name}: {exc.diagnosis.message()}; nothing written (--allow-degenerate "
            f"writes it with the diagnosis)",
            diagnosis=exc.diagnosis,
            fit=exc.fit,
        ) from None
    write_netcdf(result.to_dataset(), out)
    f, red, info = result.field, result.reduction, result.fit.info
    T, d = result.latents.shape
    print(
        f"wrote {out}: latents {T}x{d}, patterns {d}x{f.grid_shape[0]}x{f.grid_shape[1]} "
        f"({int(f.mask.sum())} of {f.mask.size} cells valid), {red.p} EOFs "
        f"({100 * red.explained:.1f}% of the variance), environments "
        f"{', '.join(f'{n} ({c})' for n, c in result.envs.counts().items())}, "
        f"estimator={est.name}, preset={preset}, seed={args.seed}"
    )
    if info["degenerate"]:
        print(
            f"DEGENERATE fit, written because of --allow-degenerate (see the info_json "
            f"attribute): {info['diagnosis']['message']}"
        )
    if "bootstrap" in info:
        from mncrl.bootstrap import table

        print(
            table(info["bootstrap"])
            + "\n  (resamples of the EOF scores; the EOFs are not resampled)"
        )
    return 0


class _Background(threading.Thread):
    """``fn(*args, **kwargs)`` in a daemon thread; :meth:`result` waits and returns its value
    or raises its exception."""

    def __init__(self, fn, *args, **kwargs):
        super().__init__(daemon=True)
        self._call = lambda: fn(*args, **kwargs)
        self._value = self._error = None
        self.start()

    def run(self):
        try:
            self._value = self._call()
        except BaseException as exc:  # handed to the caller by result()
            self._error = exc

    def result(self):
        self.join()
        if self._error is not None:
            raise self._error
        return self._value


def _jsonable(value):
    import numpy as np

    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return str(value)
