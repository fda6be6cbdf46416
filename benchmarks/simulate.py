"""Wall time and peak memory of the simulator.

Usage: .venv/bin/python benchmarks/simulate.py [--repeats 5] [--quick]

For each scenario: median and min wall time, median CPU time of ``simulate`` over the repeats (after one warm-up
run), the size of the output arrays and the peak memory traced by tracemalloc during one extra
run (NumPy reports its allocations to tracemalloc).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
import tracemalloc

from mncrl.simulation import Scenario, simulate, train_test_split

CASES = [
    ("paper d=6, LOO, paired", Scenario(d=6, paired_noise=True)),
    ("d=10, LOO (10 envs)", Scenario(d=10)),
    ("d=10, LOO, float64", Scenario(d=10, dtype="float64")),
    (
        "d=10, random K=10 stochastic +obs +noise",
        Scenario(
            d=10,
            design="random",
            design_params={"K": 10, "k": 3},
            intervention="stochastic",
            observational=True,
            obs_noise=0.01,
            mixing="gaussian",
        ),
    ),
    ("d=6, SCM 2, LOO", Scenario(graph="paper-nonlinear", mechanism="scm2")),
    ("d=6, SCM 1, LOO", Scenario(graph="paper-nonlinear", mechanism="scm1")),
    ("d=30, LOO (30 envs)", Scenario(d=30)),
]


def timed(fn, repeats):
    fn()  # warm-up (page faults of the first large allocations, imports)
    wall, cpu = [], []
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return statistics.median(wall), min(wall), statistics.median(cpu)


def peak_mb(fn):
    tracemalloc.start()
    result = fn()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak / 2**20, result


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--quick", action="store_true", help="n = 10,000 instead of the default")
    args = ap.parse_args()
    load_before = os.getloadavg()[0]
    rows = []
    for name, s in CASES:
        if args.quick:
            s = s.replace(n=10_000)
        med, best, cpu = timed(lambda s=s: simulate(s, 0), args.repeats)
        peak, ds = peak_mb(lambda s=s: simulate(s, 0))
        out_mb = (ds.X.nbytes + ds.Z.nbytes + ds.env.nbytes) / 2**20
        K = ds.targets.shape[0]
        rows.append((name, K, s.n, s.d, s.m_obs, med, best, cpu, out_mb, peak))
        del ds
    s = Scenario(d=10)
    if args.quick:
        s = s.replace(n=10_000)
    ds = simulate(s, 0)
    med, best, cpu = timed(lambda: train_test_split(ds, 0), args.repeats)
    rows.append(
        (
            "train_test_split of d=10 LOO",
            10,
            s.n,
            10,
            10,
            med,
            best,
            cpu,
            float("nan"),
            float("nan"),
        )
    )

    header = (
        f"{'scenario':42} {'K':>3} {'n/env':>7} {'d':>3} {'m':>3} "
        f"{'median s':>9} {'min s':>7} {'cpu s':>7} {'out MB':>7} {'peak MB':>8}"
    )
    print(
        f"simulate(): wall-clock median and min, median CPU time (all threads) of "
        f"{args.repeats} runs after one warm-up; {os.cpu_count()} cores, load average "
        f"{load_before:.1f} before / {os.getloadavg()[0]:.1f} after"
    )
    print(header)
    print("-" * len(header))
    for name, K, n, d, m, med, best, cpu, out_mb, peak in rows:
        print(
            f"{name:42} {K:>3} {n:>7} {d:>3} {m:>3} {med:>9.3f} {best:>7.3f} {cpu:>7.3f} "
            f"{out_mb:>7.0f} {peak:>8.0f}"
        )


if __name__ == "__main__":
    main()
