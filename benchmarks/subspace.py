"""Accuracy, not-identifiable detection and speed of the `subspace` estimator.

    .venv/bin/python benchmarks/subspace.py                          # everything
    .venv/bin/python benchmarks/subspace.py --what timing --repeats 5
    .venv/bin/python benchmarks/subspace.py --what accuracy --n 100000 --d 3 6 10 30

Parts (``--what``):

- ``accuracy``: the shared simulator (linear ER SCM p = 0.75, do(=1), paper mixing, float32
  unless ``--dtype``), seeds 0-4, for d in ``--d`` and the designs leave-one-out, atomic,
  separating (Sperner), separating-bits and random (K = 2d, the first design seed satisfying
  Assumption 4), n = ``--n`` rows per environment; plus variants at n = 5e3 (d = 6, 10):
  Gaussian mixing, tall (m = d + 5), observation noise 1e-3, tall + noise. Per cell: the
  minimum mcc and maximum Amari distance over seeds, the number of seeds that raised
  NotIdentifiableError and the number whose estimated targets differ from the truth.
- ``detection``: random designs that violate Assumption 4 (d in 3..10, K in 2..2d, target
  probability in 0.2..0.8; ``--draws`` designs, n = 2000, float32) and the ``blocks`` design:
  the fraction reported as not identifiable (the rest would be silent wrong answers).
- ``timing``: d = 30, K = 30 environments, n = 1e5 rows each (float32, in memory): the whole
  fit (one pass over the data for the covariances + the closed form) and the closed-form part
  alone (``fit_moments`` on precomputed covariances), median over ``--repeats`` runs, for the
  designs leave-one-out, atomic, separating and random (K = 30); and d = 6, 10 for scale.
  Wall and CPU time (``time.process_time``; BLAS runs single-threaded inside the fit, so on an
  idle machine CPU time is close to wall time, and on a loaded one it is the fairer number).

Prints one table per part and writes CSV files to benchmarks/results/ (git-ignored). Timings
depend on the machine's load: the header prints the load average; run on an idle machine.
"""

from __future__ import annotations

import argparse
import csv
import os
import statistics
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
DESIGNS = ["leave-one-out", "atomic", "separating", "separating-bits", "random"]


def _a4_design_seed(d: int, K: int) -> int:
    from mncrl.interventions import assumption4, make_design
    from mncrl.simulation import rng_for

    for s in range(1000):
        if assumption4(make_design("random", d, rng_for(s, "design"), K=K)).satisfied:
            return s
    raise RuntimeError(f"no random design with K={K} satisfies Assumption 4 for d={d}")


def _scenario(d: int, design: str, n: int, **kw):
    from mncrl.simulation import Scenario

    if design == "random":
        kw.update(design_params={"K": 2 * d}, design_seed=_a4_design_seed(d, 2 * d))
    return Scenario(d=d, n=n, design=design, **kw)


def _one(scenario, seed: int) -> dict:
    from mncrl import api, metrics
    from mncrl.errors import NotIdentifiableError
    from mncrl.estimators import subspace
    from mncrl.simulation import simulate

    ds = simulate(scenario, seed)
    envs = api.split_by_env(ds.X, ds.env)
    t0 = time.perf_counter()
    try:
        fit = subspace.fit(envs, latent_dim=scenario.d)
    except NotIdentifiableError:
        return {"not_identifiable": 1}
    seconds = time.perf_counter() - t0
    perm = metrics.matching_from_mixing(ds.L, fit.unmixing)
    return {
        "not_identifiable": 0,
        "mcc": metrics.mcc(ds.Z, api.unmix(ds.X, fit.unmixing)),
        "amari": metrics.amari(ds.L, fit.unmixing),
        "target_f1": metrics.target_f1(ds.targets, fit.targets, perm),
        "seconds": seconds,
        "regime": fit.info["regime"],
        "gap": fit.info["null_gap"],
    }


def _cell(label: str, scenario, seeds) -> dict:
    runs = [_one(scenario, s) for s in seeds]
    ok = [r for r in runs if not r["not_identifiable"]]
    row = {
        "cell": label,
        "d": scenario.d,
        "design": scenario.design,
        "n": scenario.n,
        "m": scenario.m_obs,
        "mixing": scenario.mixing,
        "obs_noise": scenario.obs_noise,
        "dtype": scenario.dtype,
        "seeds": len(runs),
        "not_identifiable": sum(r["not_identifiable"] for r in runs),
        "targets_wrong": sum(r["target_f1"] < 1 for r in ok),
    }
    if ok:
        row.update(
            min_mcc=min(r["mcc"] for r in ok),
            max_amari=max(r["amari"] for r in ok),
            min_gap=min(r["gap"] for r in ok),
            regime="/".join(sorted({r["regime"] for r in ok})),
            median_fit_s=statistics.median(r["seconds"] for r in ok),
        )
    return row


def accuracy(args) -> list[dict]:
    rows = []
    for d in args.d:
        for design in DESIGNS:
            sc = _scenario(d, design, args.n, dtype=args.dtype)
            rows.append(_cell(f"{design}", sc, range(5)))
            _print_row(rows[-1])
    variants = {
        "gaussian mixing": dict(mixing="gaussian"),
        "tall m=d+5": dict(mixing="gaussian", m_extra=5),
        "obs noise 1e-3": dict(obs_noise=1e-3),
        "tall + noise 1e-3": dict(mixing="gaussian", m_extra=5, obs_noise=1e-3),
    }
    for d in (6, 10):
        for design in ("leave-one-out", "atomic", "separating"):
            for name, kw in variants.items():
                kw = dict(kw)
                extra = kw.pop("m_extra", 0)
                sc = _scenario(
                    d, design, 5000, m=d + extra if extra else None, dtype=args.dtype, **kw
                )
                rows.append(_cell(f"{design}, n=5e3, {name}", sc, range(5)))
                _print_row(rows[-1])
    return rows


def detection(args) -> list[dict]:
    from mncrl import api
    from mncrl.errors import NotIdentifiableError
    from mncrl.estimators import subspace
    from mncrl.interventions import assumption4
    from mncrl.simulation import Scenario, simulate

    rng = np.random.default_rng(2024)
    rows, reported = [], 0
    for i in range(args.draws):
        while True:
            d = int(rng.integers(3, 11))
            K = int(rng.integers(2, 2 * d + 1))
            T = rng.random((K, d)) < rng.uniform(0.2, 0.8)
            if not assumption4(T).satisfied:
                break
        ds = simulate(
            Scenario(d=d, n=2000, design="custom", design_params={"targets": T.tolist()}), i
        )
        try:
            subspace.fit(api.split_by_env(ds.X, ds.env), latent_dim=d)
            ok = 0
        except NotIdentifiableError:
            ok = 1
        reported += ok
        rows.append({"kind": "random", "d": d, "K": K, "reported": ok})
    for d in (4, 6, 10, 30):
        for seed in range(5):
            ds = simulate(Scenario(d=d, n=5000, design="blocks"), seed)
            try:
                subspace.fit(api.split_by_env(ds.X, ds.env), latent_dim=d)
                ok = 0
            except NotIdentifiableError:
                ok = 1
            rows.append({"kind": "blocks", "d": d, "K": len(ds.targets), "reported": ok})
    rnd = [r for r in rows if r["kind"] == "random"]
    blk = [r for r in rows if r["kind"] == "blocks"]
    print(
        f"random designs violating Assumption 4: reported not identifiable "
        f"{sum(r['reported'] for r in rnd)}/{len(rnd)}"
    )
    print(
        f"blocks designs (d = 4, 6, 10, 30; seeds 0-4): reported not identifiable "
        f"{sum(r['reported'] for r in blk)}/{len(blk)}"
    )
    return rows


def timing(args) -> list[dict]:
    from mncrl import api
    from mncrl.estimators import subspace
    from mncrl.simulation import Scenario, simulate

    rows = []
    cases = [(30, d) for d in ("leave-one-out", "atomic", "separating", "random")] + [
        (6, "leave-one-out"),
        (10, "leave-one-out"),
    ]
    for d, design in cases:
        params = {"K": d} if design == "random" else {}
        dseed = _a4_design_seed(d, d) if design == "random" else None
        ds = simulate(
            Scenario(d=d, n=args.timing_n, design=design, design_params=params, design_seed=dseed),
            0,
        )
        envs = api.split_by_env(ds.X, ds.env)
        subspace.fit(envs, latent_dim=d)  # warm-up (imports, caches)
        total, total_cpu, closed, closed_cpu, search = [], [], [], [], []
        for _ in range(args.repeats):
            t0, c0 = time.perf_counter(), time.process_time()
            fit = subspace.fit(envs, latent_dim=d)
            total.append(time.perf_counter() - t0)
            total_cpu.append(time.process_time() - c0)
        mom = subspace.moments(envs, d)
        with api.single_threaded_blas():
            for _ in range(args.repeats):
                t0, c0 = time.perf_counter(), time.process_time()
                f = subspace.fit_moments(mom)
                closed.append(time.perf_counter() - t0)
                closed_cpu.append(time.process_time() - c0)
                search.append(f.info["timings"]["search"])
        row = {
            "d": d,
            "design": design,
            "K": len(ds.targets),
            "n": args.timing_n,
            "fit_s": statistics.median(total),
            "fit_cpu_s": statistics.median(total_cpu),
            "closed_form_ms": 1e3 * statistics.median(closed),
            "closed_form_cpu_ms": 1e3 * statistics.median(closed_cpu),
            "search_ms": 1e3 * statistics.median(search),
            "moments_s": fit.info["timings"]["moments"],
            "repeats": args.repeats,
        }
        rows.append(row)
        print(
            f"d={d:3d} {design:14s} K={row['K']:3d} n={args.timing_n:>7d}  whole fit "
            f"{row['fit_s']:7.3f} s (cpu {row['fit_cpu_s']:6.3f} s)   closed form "
            f"{row['closed_form_ms']:7.1f} ms (cpu {row['closed_form_cpu_ms']:6.1f} ms, "
            f"search {row['search_ms']:6.1f} ms)",
            flush=True,
        )
    return rows


def _print_row(r: dict) -> None:
    head = f"d={r['d']:3d} {r['cell']:40s} n={r['n']:>6d} m={r['m']:3d}"
    if "min_mcc" in r:
        print(
            f"{head}  min mcc {r['min_mcc']:.6f}  max amari {r['max_amari']:.2e}  "
            f"not-id {r['not_identifiable']}/{r['seeds']}  targets wrong {r['targets_wrong']}  "
            f"[{r['regime']}, min gap {r['min_gap']:.1e}]",
            flush=True,
        )
    else:
        print(f"{head}  not identifiable on every seed ({r['seeds']})", flush=True)


def _write(name: str, rows: list[dict]) -> None:
    if not rows:
        return
    RESULTS.mkdir(parents=True, exist_ok=True)
    keys = list(dict.fromkeys(k for r in rows for k in r))
    path = RESULTS / f"subspace_{name}.csv"
    with open(path, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=keys)
        w.writeheader()
        w.writerows(rows)
    print(f"wrote {path.relative_to(ROOT)}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--what",
        nargs="+",
        default=["accuracy", "detection", "timing"],
        choices=["accuracy", "detection", "timing"],
    )
    ap.add_argument("--d", nargs="+", type=int, default=[3, 6, 10, 30])
    ap.add_argument("--n", type=int, default=100_000, help="rows per environment (accuracy)")
    ap.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    ap.add_argument("--draws", type=int, default=300, help="violating designs (detection)")
    ap.add_argument("--repeats", type=int, default=5, help="timing repeats (median)")
    ap.add_argument("--timing-n", type=int, default=100_000, help="rows per environment")
    args = ap.parse_args()
    print(
        f"load average {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} on {os.cpu_count()} cores"
    )
    for part in args.what:
        print(f"\n== {part}")
        _write(part, globals()[part](args))


if __name__ == "__main__":
    main()
