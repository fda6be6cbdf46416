"""Seconds per fit of the estimators for stochastic / soft interventions (issue #12 target:
every closed-form estimator under 1 s per fit at d = 8, n = 1e5 rows per environment on one
core; umni's integer search reported against d).

    .venv/bin/python benchmarks/peers_speed.py                  # d = 4 6 8, n = 1e5, 5 repeats
    .venv/bin/python benchmarks/peers_speed.py --d 8 --repeats 3

One data set per d (the peers scenario: linear Gaussian SCM, dense target matrix, stochastic
interventions, an observational environment, float32 as ``mncrl simulate`` writes), then every
estimator fitted ``--repeats`` times on it with BLAS limited to one thread; the table gives the
median and the fastest fit, and the share spent computing the environments' covariances
(``mncrl.precision.precisions``, common to all three) measured in the same run.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

from mncrl import estimators, precision  # noqa: E402
from mncrl.environments import as_environments  # noqa: E402
from mncrl.simulation import Scenario, simulate  # noqa: E402

ENTRIES = (
    ("subspace-soft", {"hard": True}),
    ("lincd", {}),
    ("umni", {"hard": True}),
)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--d", type=int, nargs="+", default=[4, 6, 8])
    ap.add_argument("--n", type=int, default=100_000, help="rows per environment")
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    print(f"n = {args.n} rows per environment, {args.repeats} repeats, one BLAS thread")
    print("| d | estimator | design | median s | min s | covariances s (median) |")
    print("|---|---|---|---|---|---|")
    for d in args.d:
        for design in ("dense", "atomic"):
            s = Scenario(
                d=d,
                n=args.n,
                p=0.5,
                design=design,
                intervention="stochastic",
                observational=True,
                mixing="gaussian",
                design_seed=0,
            )
            envs, obs, _ = as_environments(simulate(s, 0))
            cov = []
            for _ in range(args.repeats):
                t = time.perf_counter()
                precision.precisions(envs, obs, d, "benchmark")
                cov.append(time.perf_counter() - t)
            for name, hp in ENTRIES:
                est = estimators.get(name)
                if design == "dense" and name == "lincd":
                    continue  # lincd needs one single-node environment per latent
                times = []
                for _ in range(args.repeats):
                    t = time.perf_counter()
                    est.fit(envs, observational=obs, latent_dim=d, **hp)
                    times.append(time.perf_counter() - t)
                print(
                    f"| {d} | {name} | {design} | {statistics.median(times):.3f} | "
                    f"{min(times):.3f} | {statistics.median(cov):.3f} |",
                    flush=True,
                )


if __name__ == "__main__":
    main()
