"""Cost of the coverage experiment: per-problem seconds of every stage, and the projected
core-seconds of the configured grid.

Usage: .venv/bin/python benchmarks/coverage.py [--config config/config.yaml ...] [--draws 1]
       [--cases 6:12,10:20,20:9,20:20,20:40] [--estimators sv-paper,sv-best,...] [--repeats 2]

For each case d:K, runs one coverage cell restricted to ``--draws`` design seeds and the first
seed (every k, every estimator, no subsampling) twice -- the first run pays the JAX
compilations -- and prints the second run's CPU seconds per problem (data preparation, each
estimator's fit, evaluation; CPU time is robust to other processes on shared cores). Then projects the configured grid: for every cell of the
experiment, problems x per-problem cost of each estimator (as subsampled by the config),
interpolating the cost in (K + 1) d^2 between the measured cases. Single-threaded (like the
Snakemake jobs); the load average is printed because the machine is shared.
"""

from __future__ import annotations

import argparse
import copy
import os
import time
from pathlib import Path

import numpy as np

from mncrl import config as config_mod
from mncrl.experiments import coverage as cov

SCHEMA = Path(__file__).resolve().parents[1] / "config" / "schema.yaml"


def measure(config: dict, name: str, d: int, K: int, draws: int, labels, repeats: int = 2):
    cfg = copy.deepcopy(config)
    block = cfg["experiments"][name]
    block["coverage"] = {
        **block["coverage"],
        "d": [d],
        "K": [K],
        "designs": draws,
        "structured": [],
        "subsample": {},
        "draws_per_job": max(draws, 1),
    }
    block["seeds"] = block["seeds"][:1]
    if labels:
        block["estimators"] = [lab for lab in block["estimators"] if lab in labels]
    cfg = config_mod.validate(cfg, SCHEMA)  # the changed block, checked as the workflow does
    spec = cov.cell_spec(cfg, name, f"d-{d}_K-{K}")
    result = None
    for _ in range(repeats):
        t0 = time.perf_counter()
        _, info = cov.run_cell(spec)
        wall = time.perf_counter() - t0
        result = (info, wall)
    info, wall = result
    per = {k: v / info["problems"] for k, v in info["cpu_seconds"].items()}
    per["wall"] = wall / info["problems"]
    return info["problems"], per


def project(config: dict, name: str, costs: dict) -> dict:
    """Projected core-seconds per stage for the whole configured experiment."""
    s = cov.settings(config, name)
    subsample = dict(s.subsample)
    seeds = config["experiments"][name]["seeds"]
    sizes = np.array(sorted(costs))
    total: dict = {}
    for cell in cov.coverage_cells(s):
        for design in cell.designs():
            size = (design.K + 1) * cell.d**2
            for stage in costs[sizes[0]]:
                xs = sizes.astype(float)
                ys = np.array([costs[x][stage] for x in sizes])
                cost = float(
                    np.interp(size, xs, ys, left=ys[0] * size / xs[0], right=ys[-1] * size / xs[-1])
                )
                if stage.startswith("fit:"):
                    sub = subsample.get(stage[4:], cov.Subsample())
                    n = sum(sub.runs(design, seed) for seed in seeds)
                elif stage == "wall":
                    continue
                else:
                    n = len(seeds)
                total[stage] = total.get(stage, 0.0) + n * cost
    return total


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--config",
        nargs="+",
        default=["config/config.yaml"],
        help="config files, later ones merged over earlier ones (as Snakemake "
        "--configfile): e.g. config/config.yaml config/smoke.yaml",
    )
    ap.add_argument("--experiment", default="coverage")
    ap.add_argument("--draws", type=int, default=1)
    ap.add_argument("--cases", default="6:12,10:20,20:9,20:20,20:40")
    ap.add_argument("--estimators", default="", help="comma-separated labels (default: all)")
    ap.add_argument("--repeats", type=int, default=2, help="runs per case; the last is shown")
    args = ap.parse_args()
    config = config_mod.load(*args.config)
    labels = [x for x in args.estimators.split(",") if x]
    load0 = os.getloadavg()[0]
    costs = {}
    print(
        f"{'case':>8} {'problems':>8}  CPU seconds per problem (second run; wall = "
        "wall-clock per problem)"
    )
    for case in args.cases.split(","):
        d, K = (int(x) for x in case.split(":"))
        n, per = measure(config, args.experiment, d, K, args.draws, labels, args.repeats)
        costs[(K + 1) * d * d] = per
        stages = "  ".join(f"{k} {v:.3f}" for k, v in per.items())
        print(f"{d:>3}:{K:<4} {n:>8}  {stages}", flush=True)
    total = project(config, args.experiment, costs)
    print("\nprojected core-seconds for the configured grid (subsampling applied):")
    for stage, secs in sorted(total.items(), key=lambda kv: -kv[1]):
        print(f"  {stage:<16} {secs:8.0f}")
    print(
        f"  {'total':<16} {sum(total.values()):8.0f}  (/2 cores = "
        f"{sum(total.values()) / 2 / 60:.1f} min)"
    )
    print(f"\nload average: {load0:.2f} before, {os.getloadavg()[0]:.2f} after (2 cores)")


if __name__ == "__main__":
    main()
