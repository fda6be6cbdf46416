"""`sv-best` (sparse-variance, preset `best`) on every paper cell and seed the workflow runs it on.

The cells, their scenarios, seeds, data draws, train/test splits and fit seeds are the
workflow's own: every job of the experiments below is built from ``config/config.yaml`` by
:mod:`mncrl.experiments` and run by its ``run_cell`` with the estimator list cut down to one
label, so each number here is the number the full run writes into its metrics table.

Prints one row per (cell, seed): ``mcc_paper`` (the headline metric), ``amari`` and the fit's
seconds; then one row per cell with the minimum MCC and maximum Amari over its seeds, and the
minimum MCC per experiment.

Usage: ``nice -n 19 .venv/bin/python benchmarks/sv_best_cells.py [--experiments fig2a fig2b
fig2c table1 fig4] [--cells REGEX] [--label sv-best] [--preset P] [--set KEY=VALUE ...]
[--csv OUT.csv]`` (the whole set is 33 cells x 5 seeds; 6-11 minutes on 2 shared cores,
most of it simulating the d = 30 cells).
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from pathlib import Path

import pandas as pd
import yaml

from mncrl import config as config_mod
from mncrl import experiments

ROOT = Path(__file__).resolve().parents[1]
EXPERIMENTS = ("fig2a", "fig2b", "fig2c", "table1", "fig4")
METRICS = ("mcc_paper", "amari")


def parse_args(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", default=str(ROOT / "config" / "config.yaml"))
    ap.add_argument("--experiments", nargs="+", default=list(EXPERIMENTS))
    ap.add_argument("--cells", default=None, help="regex on the cell id (e.g. '^d-3')")
    ap.add_argument("--label", default="sv-best", help="estimator label of config.yaml")
    ap.add_argument("--preset", default=None, help="replace the label's preset")
    ap.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="hyper-parameter override (VALUE read as YAML), repeatable",
    )
    ap.add_argument("--csv", default=None, help="also write the per-seed rows to this CSV")
    return ap.parse_args(argv)


def overrides(pairs: list[str]) -> dict:
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise SystemExit(f"--set needs KEY=VALUE, got {pair!r}")
        out[key] = yaml.safe_load(value)
    return out


def job_spec(config, experiment: str, job: str, label: str, preset, extra: dict) -> dict:
    """The workflow's spec of one job, with only the estimator ``label`` (optionally with
    another preset or extra overrides: the fit seeds depend on the label only)."""
    spec = experiments.cell_spec(config, experiment, job)
    entries = [e for e in spec["estimators"] if e["label"] == label]
    if not entries:
        raise SystemExit(f"experiment {experiment} does not run estimator {label!r}")
    entry = dict(entries[0])
    if preset is not None:
        entry["preset"] = preset
    entry["overrides"] = {**(entry.get("overrides") or {}), **extra}
    return {**spec, "estimators": [entry]}


def run_job(spec: dict) -> pd.DataFrame:
    """One row per seed: the cell, the seed, the mixing seed and the metrics."""
    table, info = experiments.run_cell(spec)
    wide = table.pivot_table(index=["cell", "seed"], columns="metric", values="value")
    wide = wide.reset_index()
    seconds = {rec["seed"]: rec["seconds"] for rec in info["fits"]}
    wide["seconds"] = wide["seed"].map(seconds)
    wide.insert(0, "experiment", spec["experiment"])
    wide.insert(3, "mixing_seed", spec["scenario"].get("mixing_seed", 0))
    return wide[["experiment", "cell", "seed", "mixing_seed", *METRICS, "seconds"]]


def markdown(df: pd.DataFrame, floats: dict) -> str:
    cols = list(df.columns)
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for row in df.itertuples(index=False):
        cells = [
            format(v, floats[c]) if c in floats and isinstance(v, float) else str(v)
            for c, v in zip(cols, row, strict=True)
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv=None) -> int:
    args = parse_args(argv)
    config = config_mod.load(args.config)
    extra = overrides(args.set)
    pattern = re.compile(args.cells) if args.cells else None
    frames, t0 = [], time.perf_counter()
    for exp in args.experiments:
        for cell in experiments.cells(config, exp):
            if pattern is not None and not pattern.search(cell.id):
                continue
            spec = job_spec(config, exp, cell.id, args.label, args.preset, extra)
            frames.append(run_job(spec))
            last = frames[-1]
            print(
                f"{exp} {cell.id}: min mcc_paper {last['mcc_paper'].min():.4f}, max amari "
                f"{last['amari'].max():.4f} ({time.perf_counter() - t0:.0f} s)",
                file=sys.stderr,
                flush=True,
            )
    if not frames:
        raise SystemExit("no cell matched")
    rows = pd.concat(frames, ignore_index=True)
    what = f"label {args.label}" + (f", preset {args.preset}" if args.preset else "")
    what += "".join(f", {k}={v}" for k, v in extra.items())
    fmt = {"mcc_paper": ".4f", "amari": ".4f", "seconds": ".2f"}
    print(f"## Every seed ({what})\n")
    print(markdown(rows, fmt))
    per_cell = (
        rows.groupby(["experiment", "cell", "mixing_seed"], sort=False)
        .agg(
            seeds=("seed", "size"),
            min_mcc_paper=("mcc_paper", "min"),
            max_amari=("amari", "max"),
            mean_seconds=("seconds", "mean"),
        )
        .reset_index()
    )
    fmt = {"min_mcc_paper": ".4f", "max_amari": ".4f", "mean_seconds": ".2f"}
    print(f"\n## Per cell: minimum over seeds ({what})\n")
    print(markdown(per_cell, fmt))
    per_exp = (
        rows.groupby("experiment", sort=False)
        .agg(
            values=("seed", "size"), min_mcc_paper=("mcc_paper", "min"), max_amari=("amari", "max")
        )
        .reset_index()
    )
    print(f"\n## Per experiment ({what})\n")
    print(markdown(per_exp, {"min_mcc_paper": ".4f", "max_amari": ".4f"}))
    below = int((rows["mcc_paper"] < 0.99).sum())
    print(f"\n{below} of {len(rows)} values below MCC 0.99; min {rows['mcc_paper'].min():.4f}")
    if args.csv:
        rows.to_csv(args.csv, index=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
