"""Whole-process time of `mncrl fit DATA --preset reference --out OUT` with and without the
persistent compilation cache (run by hand; no test runs it).

    .venv/bin/python benchmarks/cli.py                    # d = 6, n = 1e5, 5 repeats
    .venv/bin/python benchmarks/cli.py --repeats 9 --d 6 --n 100000 --data /tmp/d6.npz

DATA is the paper's setting, written by ``mncrl simulate --out DATA --d 6 --n 100000 --seed 0``
(leave-one-out do-interventions: 6 environments of 1e5 rows, compressed .npz with ground
truth) unless ``--data`` names an existing file. Every repeat runs, one after the other:

- ``first run``: a new, empty ``--cache-dir`` (compiles and fills the cache);
- ``warm cache``: the cache directory filled by the first repeat's first run;
- ``no cache``: ``--no-cache``.

Interleaving keeps the three modes under the same machine load. The table gives medians over
the repeats of the wall and CPU (user + system) time and the peak resident memory of the whole
process, and of the fit's own ``info`` timings (``seconds_compile``, ``seconds_train``), the
speed-up of the median wall time over the authors' PyTorch code (``--pytorch-seconds``, 28.5 s
measured on this machine) and whether every run wrote the same W (bit for bit). The header
prints the load average: other work on the machine inflates wall times, quote medians.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from estimators import _run_measured  # noqa: E402  (benchmarks/estimators.py)

MODES = ("first run", "warm cache", "no cache")


def _fit_info(out: Path) -> tuple[np.ndarray, dict]:
    with np.load(out) as f:
        return f["W"], json.loads(f["info_json"].item())


def run(data: Path, repeats: int, workdir: Path) -> dict[str, list[dict]]:
    mncrl = str(Path(sys.executable).with_name("mncrl"))
    out = workdir / "fit.npz"
    warm = workdir / "cache-0"
    runs: dict[str, list[dict]] = {mode: [] for mode in MODES}
    for r in range(repeats):
        for mode in MODES:
            cache = {
                "first run": ["--cache-dir", str(workdir / f"cache-{r}")],
                "warm cache": ["--cache-dir", str(warm)],
                "no cache": ["--no-cache"],
            }[mode]
            wall, cpu, peak = _run_measured(
                [mncrl, "fit", str(data), "--preset", "reference", "--out", str(out), *cache]
            )
            W, info = _fit_info(out)
            runs[mode].append(
                {
                    "wall": wall,
                    "cpu": cpu,
                    "peak": peak,
                    "W": W,
                    "compile": info.get("seconds_compile", float("nan")),
                    "train": info.get("seconds_train", float("nan")),
                }
            )
            print(
                f"  repeat {r + 1}/{repeats} {mode:10}: {wall:6.2f} s wall, "
                f"{info.get('seconds_train', float('nan')):.2f} s training",
                flush=True,
            )
    return runs


def report(runs: dict[str, list[dict]], pytorch_seconds: float) -> None:
    reference = runs["first run"][0]["W"]
    print(
        f"\n{'mode':11} {'runs':>4} {'wall s':>7} {'(min-max)':>13} {'cpu s':>6} "
        f"{'peak MiB':>8} {'compile s':>9} {'train s':>7} {'vs PyTorch':>10} {'same W':>6}"
    )
    for mode, rows in runs.items():
        med = {
            k: statistics.median(row[k] for row in rows)
            for k in ("wall", "cpu", "peak", "compile", "train")
        }
        walls = [row["wall"] for row in rows]
        same = all(np.array_equal(row["W"], reference) for row in rows)
        print(
            f"{mode:11} {len(rows):>4} {med['wall']:>7.2f} "
            f"{f'({min(walls):.2f}-{max(walls):.2f})':>13} {med['cpu']:>6.2f} "
            f"{med['peak']:>8.0f} {med['compile']:>9.3f} {med['train']:>7.3f} "
            f"{pytorch_seconds / med['wall']:>9.1f}x {'yes' if same else 'NO':>6}"
        )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--repeats", type=int, default=5, help="runs per mode [5]")
    p.add_argument("--d", type=int, default=6, help="latents = environments [6]")
    p.add_argument("--n", type=int, default=100_000, help="rows per environment [100000]")
    p.add_argument(
        "--data",
        type=Path,
        help="data file (written by `mncrl simulate` when missing) [a temporary one]",
    )
    p.add_argument(
        "--pytorch-seconds",
        type=float,
        default=28.5,
        help="whole-run time of the authors' PyTorch code at d = 6 [28.5]",
    )
    args = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="mncrl-bench-cli-") as tmp:
        workdir = Path(tmp)
        data = args.data or workdir / f"d{args.d}.npz"
        if not data.exists():
            subprocess.run(
                [
                    str(Path(sys.executable).with_name("mncrl")),
                    "simulate",
                    "--out",
                    str(data),
                    "--d",
                    str(args.d),
                    "--n",
                    str(args.n),
                    "--seed",
                    "0",
                ],
                check=True,
                stdout=subprocess.DEVNULL,
            )
        print(
            f"# {time.strftime('%Y-%m-%d %H:%M')}, {os.cpu_count()} cores, load average "
            f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}; mncrl fit {data.name} "
            f"--preset reference (d = {args.d}, n = {args.n} per environment), "
            f"{args.repeats} repeats",
            flush=True,
        )
        runs = run(data, args.repeats, workdir)
        report(runs, args.pytorch_seconds)
        print(f"# load average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
