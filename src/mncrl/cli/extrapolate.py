"""`mncrl extrapolate`: predict E[Y | do(A = a*)] for actions a* (also outside the range seen)
from observations X, actions A and an outcome Y (docs/extrapolation.md).

Writes a CSV with one row per a*: the actions, the prediction, ``inside`` (a* within the
training range of every action) and, for the representation methods, ``overlap`` (the share of
the outcome model's evaluation points inside the training representation's range; low overlap
means the prediction leans on the smoother's extrapolation).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from mncrl.errors import MncrlError

METHODS = ("control-function", "no-control-function", "direct")


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "extrapolate",
        help="predict the effect of actions outside the training range (control function)",
        description="Predict E[Y | do(A = a*)] from observations X, actions A and outcome Y: "
        "a linear representation of X (PCA, or the unmixing W of `mncrl fit`), the action "
        "regression Zhat = A M + b + Vhat, and an additive outcome model Y ~ nu(Zhat) + "
        "psi(Vhat) averaged over Vhat (Rep4Ex's control function).",
        epilog="Example: mncrl extrapolate data.npz --latent-dim 3 --along 0 --reach 3 "
        "--out pred.csv. Model, assumptions, methods: docs/extrapolation.md.",
    )
    p.add_argument(
        "data",
        metavar="DATA",
        help=".npz with X (n x m), A (n x k) and Y (n), or .csv (see --action-columns)",
    )
    p.add_argument("--latent-dim", type=int, required=True, metavar="D", help="latents d")
    p.add_argument("--out", required=True, metavar="OUT.csv", help="predictions (CSV)")
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument(
        "--a-star", metavar="FILE", help="the actions a* to predict at: .csv or .npy, k columns"
    )
    where.add_argument(
        "--along",
        type=int,
        metavar="J",
        help="predict along action J (0-based), the others at their mean, on --points values "
        "spanning --reach times the half-width of J's training range around its centre",
    )
    p.add_argument("--reach", type=float, default=3.0, help="with --along [3.0]")
    p.add_argument("--points", type=int, default=25, help="with --along [25]")
    p.add_argument("--method", choices=METHODS, default="control-function", help="[%(default)s]")
    p.add_argument(
        "--unmixing",
        metavar="FIT.npz",
        help="use W of this `mncrl fit` output as the representation instead of PCA",
    )
    p.add_argument(
        "--action-columns",
        metavar="A1,A2,...",
        help="CSV DATA: the action columns (every other column but --outcome is a feature)",
    )
    p.add_argument("--outcome", default="Y", metavar="NAME", help="CSV DATA: outcome [Y]")
    p.add_argument("--seed", type=int, default=0, help="seed of the landmark draws [0]")
    p.add_argument(
        "--landmarks", type=int, default=300, help="kernel landmarks per block and draw [300]"
    )
    p.add_argument(
        "--draws", type=int, default=4, help="landmark draws averaged per prediction [4]"
    )
    p.add_argument(
        "--length-scale",
        type=float,
        default=1.0,
        help="Gaussian-kernel length (whitened units) [1.0]",
    )
    p.add_argument(
        "--eval-rows", type=int, default=2000, help="control rows averaged per prediction [2000]"
    )
    p.set_defaults(func=run)


def _read_npz(path: Path):
    import numpy as np

    try:
        with np.load(path, allow_pickle=False) as f:
            arrays = {k: f[k] for k in f.files}
    except Exception as exc:
        raise MncrlError(f"cannot read {path} as .npz: {exc}") from None
    missing = [k for k in ("X", "A", "Y") if k not in arrays]
    if missing:
        raise MncrlError(f"{path}: no array '{missing[0]}' (needs X, A and Y)")
    return arrays["X"], arrays["A"], arrays["Y"]


def _read_csv(path: Path, action_columns: str | None, outcome: str):
    import pandas as pd

    if not action_columns:
        raise MncrlError("CSV DATA needs --action-columns")
    try:
        frame = pd.read_csv(path)
    except Exception as exc:
        raise MncrlError(f"cannot read {path} as CSV: {exc}") from None
    actions = [c.strip() for c in action_columns.split(",") if c.strip()]
    for col in [*actions, outcome]:
        if col not in frame.columns:
            raise MncrlError(f"{path}: no column '{col}'")
    features = [c for c in frame.columns if c not in (*actions, outcome)]
    if not features:
        raise MncrlError(f"{path}: no feature columns besides the actions and the outcome")
    bad = [c for c in frame.columns if not pd.api.types.is_numeric_dtype(frame[c])]
    if bad:
        raise MncrlError(f"{path}: column '{bad[0]}' is not numeric")
    return (
        frame[features].to_numpy(float),
        frame[actions].to_numpy(float),
        frame[outcome].to_numpy(float),
    )


def read_data(path, action_columns=None, outcome="Y"):
    """(X, A, Y) of an .npz or .csv file; MncrlError with one line otherwise."""
    path = Path(path)
    if not path.is_file():
        raise MncrlError(f"data file not found: {path}")
    if path.suffix == ".npz":
        return _read_npz(path)
    if path.suffix == ".csv":
        return _read_csv(path, action_columns, outcome)
    raise MncrlError(f"{path}: unsupported format (use .npz or .csv)")


def read_a_star(path):
    import numpy as np

    path = Path(path)
    if not path.is_file():
        raise MncrlError(f"a* file not found: {path}")
    try:
        if path.suffix == ".npy":
            return np.load(path, allow_pickle=False)
        return np.loadtxt(path, delimiter=",", ndmin=2, comments="#")
    except Exception as exc:
        raise MncrlError(f"cannot read {path}: {exc}") from None


def along(A, j: int, reach: float, points: int):
    """a* on a line along action j (module help of --along)."""
    import numpy as np

    if not 0 <= j < A.shape[1]:
        raise MncrlError(f"--along {j}: DATA has {A.shape[1]} actions (0-based)")
    if reach <= 0 or points < 2:
        raise MncrlError("--reach must be > 0 and --points >= 2")
    lo, hi = A[:, j].min(), A[:, j].max()
    centre, half = (lo + hi) / 2, (hi - lo) / 2
    a = np.tile(A.mean(axis=0), (points, 1))
    a[:, j] = centre + half * np.linspace(-reach, reach, points)
    return a


def run(args: argparse.Namespace) -> int:
    import numpy as np
    import pandas as pd

    from mncrl.data import atomic_write
    from mncrl.extrapolate import extrapolate

    X, A, Y = read_data(args.data, args.action_columns, args.outcome)
    A = np.asarray(A, dtype=float)
    A = A[:, None] if A.ndim == 1 else A
    a_star = (
        read_a_star(args.a_star) if args.a_star else along(A, args.along, args.reach, args.points)
    )
    W = None
    if args.unmixing:
        from mncrl.cli.evaluate import load_fit

        W = load_fit(args.unmixing)["W"]
    res = extrapolate(
        X,
        A,
        Y,
        a_star,
        latent_dim=args.latent_dim,
        method=args.method,
        unmixing=W,
        seed=args.seed,
        landmarks=args.landmarks,
        length_scale=args.length_scale,
        eval_rows=args.eval_rows,
        draws=args.draws,
    )
    a_star = res.a_star
    out = pd.DataFrame(a_star, columns=[f"a{i}" for i in range(a_star.shape[1])])
    out["prediction"] = res.prediction
    out["inside"] = ((a_star >= A.min(axis=0)) & (a_star <= A.max(axis=0))).all(axis=1)
    if res.overlap is not None:
        out["overlap"] = res.overlap
    atomic_write(args.out, lambda tmp: out.to_csv(tmp, index=False))
    low = int((out.get("overlap", pd.Series([1.0])) < 0.5).sum())
    print(
        f"{args.out}: {len(out)} predictions ({int((~out['inside']).sum())} outside the training "
        f"range), method {args.method}"
        + (f"; {low} rest mostly on the smoother's extrapolation (overlap < 0.5)" if low else "")
    )
    return 0
