"""`mncrl evaluate`: score a fit (OUT.npz from `mncrl fit`) against a data file's ground truth.

The fit's W is applied to DATA's rows (Zhat = X W), so DATA may be another file with the same
features than the one fitted, e.g. held-out test rows. Prints the metrics as one JSON object.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from mncrl.errors import MncrlError

ROWS = ("interventional", "observational", "all")


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "evaluate",
        help="score a fit against the ground truth of a data file (prints JSON)",
        description="Apply the unmixing W of OUT (written by `mncrl fit`) to the rows of DATA "
        "and print, as JSON, every metric DATA's ground truth allows: mcc, "
        "mcc_paper (pooled rows interleaved by environment, 5000-row chunks), "
        "mcc_spearman (needs Z), amari (needs L), target_f1 (needs targets in both).",
        epilog="Example: mncrl evaluate fit.npz test.npz. Metrics: docs/estimators.md.",
    )
    p.add_argument("fit", metavar="OUT", help="fit file written by `mncrl fit` (.npz with W)")
    p.add_argument(
        "data", metavar="DATA", help="data file with ground truth (.npz with X, env and Z and/or L)"
    )
    p.add_argument(
        "--rows",
        choices=ROWS,
        default="interventional",
        help="rows scored by the latent metrics: environments with targets "
        "(interventional), without (observational, e.g. for ica as in the "
        "paper) or all; without targets in DATA every row counts "
        "[interventional]",
    )
    p.add_argument(
        "--chunk", type=int, default=5000, metavar="N", help="rows per chunk of mcc_paper [5000]"
    )
    p.add_argument(
        "--no-spearman",
        action="store_true",
        help="skip mcc_spearman (ranks every column; slow on millions of rows)",
    )
    p.add_argument(
        "--env-column",
        default="env",
        metavar="NAME",
        help="name of the environment column of a .csv DATA [env]",
    )
    p.set_defaults(func=run)


def load_fit(path) -> dict:
    """The arrays of a fit file; MncrlError when it is missing or has no W."""
    import numpy as np

    path = Path(path)
    if not path.is_file():
        raise MncrlError(f"fit file not found: {path}")
    try:
        with np.load(path, allow_pickle=False) as f:
            arrays = {k: f[k] for k in f.files if k != "Zhat"}
    except Exception as exc:
        raise MncrlError(f"cannot read {path} as .npz: {exc}") from None
    W = arrays.get("W")
    if W is None or W.ndim != 2:
        raise MncrlError(f"{path}: no unmixing matrix 'W' (is it an output of `mncrl fit`?)")
    return arrays


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from mncrl.api import unmix
    from mncrl.data import load

    if args.chunk < 2:
        raise MncrlError(f"--chunk must be >= 2, got {args.chunk}")
    fit = load_fit(args.fit)
    W = fit["W"]
    ds = load(args.data, env_column=args.env_column)
    if ds.X.shape[1] != W.shape[0]:
        raise MncrlError(f"DATA has {ds.X.shape[1]} features but W expects {W.shape[0]}")
    if ds.Z is None and ds.L is None:
        raise MncrlError(f"{args.data} has no ground truth (neither Z nor L) to evaluate against")
    from mncrl import metrics  # scipy: only once there is something to score

    K = ds.n_envs
    observational = np.zeros(K, dtype=bool)
    if ds.targets is not None:
        observational = ~ds.targets.any(axis=1)
    if args.rows == "all" or ds.targets is None:
        keep_envs = np.ones(K, dtype=bool)
    elif args.rows == "interventional":
        keep_envs = ~observational
    else:
        keep_envs = observational
    if not keep_envs.any():
        raise MncrlError(f"DATA has no {args.rows} environments to score")
    rows = keep_envs[ds.env]

    result: dict = {}
    if ds.Z is not None:
        X, Z, env = ds.X[rows], ds.Z[rows], ds.env[rows]
        Zhat = unmix(X, W)
        result.update(
            metrics.evaluate(
                Z=Z, Zhat=Zhat, env=env, chunk=args.chunk, spearman=not args.no_spearman
            )
        )
    if ds.L is not None:
        if ds.L.shape[0] != W.shape[1]:
            raise MncrlError(
                f"W has {W.shape[1]} latents but DATA's L has {ds.L.shape[0]}: "
                f"amari needs the same number"
            )
        scale = None if ds.Z is None else np.asarray(Z, dtype=np.float64).std(axis=0)
        result["amari"] = metrics.amari(ds.L, W, latent_scale=scale)
    est_targets = fit.get("targets")
    if est_targets is not None and ds.targets is not None:
        true_targets = ds.targets[~observational]
        if est_targets.shape[0] != true_targets.shape[0]:
            raise MncrlError(
                f"OUT has targets for {est_targets.shape[0]} environments but DATA "
                f"has {true_targets.shape[0]} interventional environments"
            )
        if ds.L is not None:
            perm = metrics.matching_from_mixing(ds.L, W)
        else:
            perm = metrics.matching_from_latents(ds.Z[rows], unmix(ds.X[rows], W))
        result["target_f1"] = metrics.target_f1(true_targets, est_targets, perm)
    result["rows"] = int(rows.sum()) if ds.Z is not None else 0
    for key in ("estimator", "preset", "seed"):
        if key in fit:
            result[key] = fit[key].item()
    print(json.dumps(result))
    return 0
