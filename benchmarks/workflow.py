"""Per-rule cost of a finished workflow run, from Snakemake's `benchmark:` files.

Usage: .venv/bin/python benchmarks/workflow.py [RESULTS_DIR]   (default: results)

Prints, per rule and per experiment (estimate jobs), the number of jobs, the total, median and
largest wall time, the total CPU time and the largest peak memory (RSS) of a job. Wall times sum
over jobs: with N cores the run takes roughly total / N plus the critical path. Each
benchmark file holds one line per run of its job (the last run is used).
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path


def read_benchmarks(root: Path) -> list[dict]:
    rows = []
    for path in sorted((root / "benchmarks").rglob("*.tsv")):
        lines = path.read_text().strip().splitlines()
        if len(lines) < 2:
            continue
        header, last = lines[0].split("\t"), lines[-1].split("\t")
        rec = dict(zip(header, last, strict=False))
        rel = path.relative_to(root / "benchmarks").with_suffix("")
        parts = rel.parts
        rows.append(
            {
                "rule": parts[0],
                "group": parts[1] if len(parts) > 2 else "-",
                "job": "/".join(parts[1:]) or parts[0],
                "s": float(rec["s"]),
                "cpu": float(rec.get("cpu_time", "nan")),
                "rss": float(rec.get("max_rss", "nan")),
            }
        )
    return rows


def table(rows: list[dict], key) -> list[tuple]:
    groups: dict = {}
    for r in rows:
        groups.setdefault(key(r), []).append(r)
    out = []
    for name, rs in sorted(groups.items()):
        wall = [r["s"] for r in rs]
        out.append(
            (
                name,
                len(rs),
                sum(wall),
                statistics.median(wall),
                max(wall),
                sum(r["cpu"] for r in rs),
                max(r["rss"] for r in rs),
            )
        )
    return out


def show(title: str, rows: list[tuple]) -> None:
    header = (
        f"{title:28} {'jobs':>5} {'total s':>9} {'median s':>9} {'max s':>8} "
        f"{'cpu s':>8} {'max RSS MB':>11}"
    )
    print(header)
    print("-" * len(header))
    for name, n, total, med, mx, cpu, rss in rows:
        print(f"{name:28} {n:>5} {total:>9.1f} {med:>9.1f} {mx:>8.1f} {cpu:>8.1f} {rss:>11.0f}")
    print()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("results", nargs="?", default="results", help="the results_dir of a run")
    args = ap.parse_args()
    rows = read_benchmarks(Path(args.results))
    if not rows:
        raise SystemExit(f"no benchmark files under {args.results}/benchmarks")
    show("rule", table(rows, lambda r: r["rule"]))
    show(
        "estimate: experiment",
        table([r for r in rows if r["rule"] == "estimate"], lambda r: r["group"]),
    )
    slowest = sorted((r for r in rows if r["rule"] == "estimate"), key=lambda r: -r["s"])[:8]
    show(
        "slowest estimate jobs",
        [(r["job"], 1, r["s"], r["s"], r["s"], r["cpu"], r["rss"]) for r in slowest],
    )
    total = sum(r["s"] for r in rows)
    print(
        f"all jobs: {len(rows)}, summed wall time {total:.0f} s "
        f"(~{total / 2 / 60:.1f} min on 2 cores if perfectly packed)"
    )


if __name__ == "__main__":
    main()
