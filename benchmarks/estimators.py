"""Speed, memory and accuracy of the estimators (issue #3).

    .venv/bin/python benchmarks/estimators.py                      # everything, d = 6 and 30
    .venv/bin/python benchmarks/estimators.py --what timing --d 6 --repeats 5
    .venv/bin/python benchmarks/estimators.py --what cli accuracy

Parts (``--what``):

- ``timing``: one fresh worker process per (estimator, preset, d) fits the paper's training
  split (leave-one-out do(=1), n = 1e5 per environment, 75 % = 75,000 training rows each,
  K = d environments) ``--repeats`` times. ``compile`` is the jit compilation time of the first
  fit, ``seconds`` the median training time of the following fits (sparse-variance: the
  optimisation loop, ``info["seconds_train"]``; baselines: the whole fit), ``cpu s`` the
  median CPU time (all threads) of a whole fit, ``1st fit`` the wall time of the first fit
  (preparation, compilation and training: what a single in-process call costs), ``peak MiB`` the
  worker's peak resident memory after the fits (Python, libraries and the loaded training and
  test data included), ``MCC`` the pooled mcc_paper on the interventional test rows (ica too).
- ``cli``: the whole ``mncrl fit DATA --out OUT`` process (Python start-up, imports, loading,
  compilation, training, writing Zhat) on the paper's training split (75,000 rows per
  environment, the rows the reference trains on) and on a whole file written by
  ``mncrl simulate`` (n = 1e5 rows per environment, all fitted), both compressed .npz with
  ground truth; MCC is scored on the whole file: median wall and CPU time (user + system) and
  peak memory (from ``wait4``) over ``--repeats`` runs. On a busy machine wall times inflate;
  CPU time roughly bounds the wall time on an idle one (XLA uses both cores for large
  products, so idle wall time is usually lower).
- ``accuracy``: the paper's setting, d = 6, seeds 0-4, with the reference code's mixing for
  seed 0 (numpy RandomState) and with the simulator's own mixing seed 0: pooled mcc_paper per
  seed of every sparse-variance preset, ICRL (pooled interventional rows) and ICA (fitted on
  observational rows; scored on observational rows as the reference does, and on pooled rows).

Prints one table per part and writes CSV files to benchmarks/results/ (git-ignored). Timings
depend on the machine's load: the header prints the load average; run on an idle machine.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import itertools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
TIMING_CONFIGS = [
    ("sparse-variance", "reference", {}),
    ("sparse-variance", "paper", {}),
    ("sparse-variance", "reference", {"mode": "moments"}),
    ("sparse-variance", "best", {}),
    ("icrl", None, {}),
    ("ica", None, {}),
]
CLI_CONFIGS = [("sparse-variance", "reference"), ("sparse-variance", "best")]


def reference_mixing(d: int, seed: int = 0) -> np.ndarray:
    """The reference code's L (``get_rand_A``): RandomState uniforms, diagonal = |row| sum."""
    L = np.random.RandomState(seed).rand(d, d)
    np.fill_diagonal(L, np.abs(L).sum(axis=1))
    return L


def paper_split(d: int, seed: int, *, n: int = 100_000, L=None, observational=False):
    from mncrl.simulation import Scenario, simulate, train_test_split

    ds = simulate(Scenario(d=d, n=n, paired_noise=True, observational=observational), seed)
    if L is not None:
        ds = dataclasses.replace(ds, X=(ds.Z.astype(np.float64) @ L).astype(np.float32), L=L)
    return train_test_split(ds, seed, same_rows=True)


def pooled_mcc(test, W) -> float:
    from mncrl import metrics
    from mncrl.api import unmix

    inter = (
        test.targets.any(axis=1)[test.env]
        if test.targets is not None
        else np.ones(len(test.env), bool)
    )
    return metrics.mcc_paper(test.Z[inter], unmix(test.X[inter], W), env=test.env[inter])


# ---------------------------------------------------------------------------------------------
# timing (one worker process per configuration)
# ---------------------------------------------------------------------------------------------


def make_data(kind: str, d: int, path: Path) -> None:
    """Write a data file (run in a child process: a parent holding gigabytes of data would
    inflate every later child's peak memory, which Linux counts from the fork)."""
    from mncrl.data import save

    if kind == "timing":  # training split (X, env) and test split (Xt, Zt, envt), seed 0
        train, test = paper_split(d, 0, observational=True)
        np.savez(
            path,
            X=train.X,
            env=train.env,
            targets=train.targets,
            Xt=test.X,
            Zt=test.Z,
            envt=test.env,
        )
    else:  # "train": the training split in the data format, as `mncrl simulate` writes it
        save(paper_split(d, 0)[0], path)


def _data_file(kind: str, d: int, workdir: Path) -> Path:
    path = workdir / f"{kind}_d{d}.npz"
    if not path.exists():
        subprocess.run(
            [sys.executable, __file__, "--make-data", kind, str(d), str(path)], check=True
        )
    return path


def worker(args) -> None:
    """Fit one configuration ``repeats`` times; print one JSON line."""
    import resource

    from mncrl import api
    from mncrl.data import Dataset

    with np.load(args.worker_data) as f:
        train = Dataset(X=f["X"], env=f["env"], targets=f["targets"])
        test = Dataset(X=f["Xt"], env=f["envt"], Z=f["Zt"], targets=train.targets)
    overrides = json.loads(args.worker_overrides)
    times, cpus, compile_s, fit = [], [], None, None
    for r in range(args.repeats + 1):
        t0, c0 = time.perf_counter(), time.process_time()
        fit = api.fit(
            train,
            args.worker_estimator,
            args.worker_preset,
            train.targets.shape[1],
            seed=0,
            **overrides,
        )
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        if r == 0:
            compile_s, first = fit.info.get("seconds_compile", 0.0), wall
            continue
        times.append(fit.info.get("seconds_train", wall))
        cpus.append(cpu)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # before scoring
    print(
        json.dumps(
            {
                "seconds": statistics.median(times),
                "compile": compile_s,
                "peak_mib": peak,
                "cpu": statistics.median(cpus),
                "first": first,
                "mcc": pooled_mcc(test, fit.unmixing),
                "mode": fit.info.get("mode", "closed-form"),
                "n": int(np.bincount(train.env).max()),
            }
        )
    )


def timing(ds: list[int], repeats: int, workdir: Path) -> list[dict]:
    rows = []
    for d in ds:
        data = _data_file("timing", d, workdir)
        for estimator, preset, overrides in TIMING_CONFIGS:
            cmd = [
                sys.executable,
                __file__,
                "--worker-data",
                str(data),
                "--worker-estimator",
                estimator,
                "--worker-overrides",
                json.dumps(overrides),
                "--repeats",
                str(repeats),
            ]
            if preset:
                cmd += ["--worker-preset", preset]
            out = subprocess.run(cmd, capture_output=True, text=True, check=True)
            res = json.loads(out.stdout.strip().splitlines()[-1])
            label = preset or "default"
            if overrides:
                label += "+" + ",".join(f"{k}={v}" for k, v in overrides.items())
            rows.append(
                {
                    "estimator": estimator,
                    "preset": label,
                    "d": d,
                    "K": d,
                    "n": res["n"],
                    "mode": res["mode"],
                    "seconds": round(res["seconds"], 3),
                    "cpu": round(res["cpu"], 2),
                    "first_fit": round(res["first"], 2),
                    "compile": round(res["compile"], 3),
                    "peak_mib": round(res["peak_mib"]),
                    "mcc": round(res["mcc"], 4),
                }
            )
            _print_row(rows[-1])
    return rows


# ---------------------------------------------------------------------------------------------
# whole `mncrl fit` process
# ---------------------------------------------------------------------------------------------


def _run_measured(cmd: list[str]) -> tuple[float, float, float]:
    """Wall seconds, CPU seconds (user + system) and peak resident MiB of one child process."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed: {proc.stderr.read().decode()}")
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024


def cli(ds: list[int], repeats: int, workdir: Path) -> list[dict]:
    mncrl = str(Path(sys.executable).with_name("mncrl"))
    rows = []
    for d in ds:
        full = workdir / f"simulate_d{d}.npz"
        if not full.exists():
            subprocess.run(
                [
                    mncrl,
                    "simulate",
                    "--out",
                    str(full),
                    "--d",
                    str(d),
                    "--n",
                    "100000",
                    "--paired-noise",
                ],
                check=True,
                stdout=subprocess.DEVNULL,
            )
        files = [(_data_file("train", d, workdir), 75_000), (full, 100_000)]
        for (data, n), (estimator, preset) in itertools.product(files, CLI_CONFIGS):
            out = workdir / "fit.npz"
            runs = [
                _run_measured(
                    [
                        mncrl,
                        "fit",
                        str(data),
                        "--estimator",
                        estimator,
                        "--preset",
                        preset,
                        "--out",
                        str(out),
                    ]
                )
                for _ in range(repeats)
            ]
            ev = subprocess.run(
                [mncrl, "evaluate", str(out), str(full), "--no-spearman"],
                capture_output=True,
                text=True,
                check=True,
            )
            rows.append(
                {
                    "estimator": estimator,
                    "preset": preset,
                    "d": d,
                    "K": d,
                    "n": n,
                    "mode": "mncrl fit (whole process)",
                    "seconds": round(statistics.median(w for w, _, _ in runs), 3),
                    "cpu": round(statistics.median(c for _, c, _ in runs), 2),
                    "first_fit": "",
                    "compile": "",
                    "peak_mib": round(max(p for _, _, p in runs)),
                    "mcc": round(json.loads(ev.stdout)["mcc_paper"], 4),
                }
            )
            _print_row(rows[-1])
    return rows


# ---------------------------------------------------------------------------------------------
# accuracy in the paper's setting
# ---------------------------------------------------------------------------------------------


def accuracy(seeds: list[int]) -> list[dict]:
    from mncrl import api, metrics
    from mncrl.estimators import sparse_variance as sv

    rows = []
    for mixing in ("reference", "simulator"):
        L = reference_mixing(6) if mixing == "reference" else None
        splits = [paper_split(6, s, L=L, observational=True) for s in seeds]
        train = [tr.subset_envs(range(6)).split_envs() for tr, _ in splits]
        for preset in ("paper", "reference", "best"):
            fits = sv.fit_batch(train, seeds, 6, **sv.PRESETS[preset])
            for s, f, (_, te) in zip(seeds, fits, splits, strict=True):
                rows.append(
                    {
                        "mixing": mixing,
                        "seed": s,
                        "estimator": "sparse-variance",
                        "preset": preset,
                        "scored_on": "pooled interventional",
                        "mcc_paper": round(pooled_mcc(te, f.unmixing), 4),
                        "amari": round(metrics.amari(te.L, f.unmixing), 4),
                    }
                )
        for s, (tr, te) in zip(seeds, splits, strict=True):
            f = api.fit(tr, "icrl", latent_dim=6, seed=s)
            rows.append(
                {
                    "mixing": mixing,
                    "seed": s,
                    "estimator": "icrl",
                    "preset": "default",
                    "scored_on": "pooled interventional",
                    "mcc_paper": round(pooled_mcc(te, f.unmixing), 4),
                    "amari": round(metrics.amari(te.L, f.unmixing), 4),
                }
            )
            g = api.fit(tr, "ica", latent_dim=6, seed=s)
            obs = ~te.targets.any(axis=1)[te.env]
            score_obs = metrics.mcc_paper(te.Z[obs], api.unmix(te.X[obs], g.unmixing))
            for scored_on, score in (
                ("observational", score_obs),
                ("pooled interventional", pooled_mcc(te, g.unmixing)),
            ):
                rows.append(
                    {
                        "mixing": mixing,
                        "seed": s,
                        "estimator": "ica",
                        "preset": "default",
                        "scored_on": scored_on,
                        "mcc_paper": round(score, 4),
                        "amari": round(metrics.amari(te.L, g.unmixing), 4),
                    }
                )
    _print_accuracy(rows, seeds)
    return rows


def _print_accuracy(rows, seeds) -> None:
    print(
        f"{'mixing':10} {'estimator':16} {'preset':10} {'scored on':22} "
        + " ".join(f"seed{s:<3}" for s in seeds)
        + "   mean  >=0.99"
    )
    keys = []
    for r in rows:
        k = (r["mixing"], r["estimator"], r["preset"], r["scored_on"])
        if k not in keys:
            keys.append(k)
    for k in keys:
        vals = [
            r["mcc_paper"]
            for r in rows
            if (r["mixing"], r["estimator"], r["preset"], r["scored_on"]) == k
        ]
        print(
            f"{k[0]:10} {k[1]:16} {k[2]:10} {k[3]:22} "
            + " ".join(f"{v:.4f}" for v in vals)
            + f"  {np.mean(vals):.4f}  {sum(v >= 0.99 for v in vals)}/{len(vals)}"
        )


# ---------------------------------------------------------------------------------------------


def _print_row(row: dict) -> None:
    if not getattr(_print_row, "header", False):
        print(
            f"{'estimator':16} {'preset':26} {'d':>3} {'K':>3} {'n':>7} {'mode':26} "
            f"{'seconds':>8} {'cpu s':>7} {'compile':>8} {'1st fit':>8} {'peak MiB':>8} "
            f"{'MCC':>7}"
        )
        _print_row.header = True
    print(
        f"{row['estimator']:16} {row['preset']:26} {row['d']:>3} {row['K']:>3} "
        f"{row['n']:>7} {row['mode']:26} {row['seconds']:>8} {row['cpu']:>7} "
        f"{row['compile']!s:>8} {row['first_fit']!s:>8} {row['peak_mib']:>8} "
        f"{row['mcc']:>7}",
        flush=True,
    )


def _write_csv(name: str, rows: list[dict]) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / name
    with open(path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    print(f"wrote {path.relative_to(ROOT)}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--what",
        nargs="+",
        default=["timing", "cli", "accuracy"],
        choices=["timing", "cli", "accuracy"],
    )
    p.add_argument("--d", type=int, nargs="+", default=[6, 30])
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    p.add_argument("--make-data", nargs=3, help=argparse.SUPPRESS)
    p.add_argument("--worker-data", help=argparse.SUPPRESS)
    p.add_argument("--worker-estimator", help=argparse.SUPPRESS)
    p.add_argument("--worker-preset", help=argparse.SUPPRESS)
    p.add_argument("--worker-overrides", default="{}", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.make_data:
        make_data(args.make_data[0], int(args.make_data[1]), Path(args.make_data[2]))
        return
    if args.worker_data:
        worker(args)
        return
    print(
        f"# {time.strftime('%Y-%m-%d %H:%M')}, {os.cpu_count()} cores, load average "
        f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}, repeats {args.repeats}"
    )
    with tempfile.TemporaryDirectory(prefix="mncrl-bench-") as tmp:
        workdir = Path(tmp)
        if "timing" in args.what:
            _write_csv("estimators_timing.csv", timing(args.d, args.repeats, workdir))
            _print_row.header = False
        if "cli" in args.what:
            _write_csv("estimators_cli.csv", cli(args.d, args.repeats, workdir))
        if "accuracy" in args.what:
            _write_csv("estimators_accuracy.csv", accuracy(args.seeds))


if __name__ == "__main__":
    main()
