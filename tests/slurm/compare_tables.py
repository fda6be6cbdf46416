"""Compare the metrics tables of two runs of the workflow (used by tests/slurm/run.sh).

    python tests/slurm/compare_tables.py RESULTS_A RESULTS_B

Finds every ``metrics.csv`` and ``summary.csv`` below each directory and requires the same set
of files with identical contents, except for wall-time columns (``seconds``), which differ
between any two runs. Values are compared as the text the workflow wrote, so "identical" means
bit-identical floats. Prints one line per table; exit status 1 on any difference.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

TABLE_NAMES = ("metrics.csv", "summary.csv")
TIMING_COLUMNS = frozenset({"seconds"})


def find_tables(root: Path) -> dict[str, Path]:
    """Relative path -> file, for every metrics/summary table below ``root``."""
    return {
        str(path.relative_to(root)): path
        for name in TABLE_NAMES
        for path in sorted(root.rglob(name))
    }


def read_table(path: Path) -> pd.DataFrame:
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    return frame.drop(columns=[c for c in frame.columns if c in TIMING_COLUMNS])


def table_difference(a: Path, b: Path) -> str | None:
    """None if the tables agree (timing columns aside), else a one-line description."""
    left, right = read_table(a), read_table(b)
    if list(left.columns) != list(right.columns):
        return f"columns differ: {list(left.columns)} vs {list(right.columns)}"
    if left.shape != right.shape:
        return f"shapes differ: {left.shape} vs {right.shape}"
    unequal = left.ne(right)
    if unequal.to_numpy().any():
        row, col = next(zip(*unequal.to_numpy().nonzero(), strict=True))
        name = left.columns[col]
        return (
            f"{int(unequal.to_numpy().sum())} values differ, first at row {row} "
            f"column {name!r}: {left.iat[row, col]!r} vs {right.iat[row, col]!r}"
        )
    return None


def compare(root_a: Path, root_b: Path) -> int:
    tables_a, tables_b = find_tables(root_a), find_tables(root_b)
    if not tables_a:
        print(f"no {' or '.join(TABLE_NAMES)} below {root_a}")
        return 1
    failures = 0
    for rel in sorted(set(tables_a) | set(tables_b)):
        if rel not in tables_a or rel not in tables_b:
            where = root_b if rel not in tables_b else root_a
            print(f"  MISSING  {rel} (not in {where})")
            failures += 1
            continue
        difference = table_difference(tables_a[rel], tables_b[rel])
        rows = len(read_table(tables_a[rel]))
        if difference is None:
            print(f"  same     {rel} ({rows} rows)")
        else:
            print(f"  DIFFERS  {rel}: {difference}")
            failures += 1
    return 1 if failures else 0


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python tests/slurm/compare_tables.py RESULTS_A RESULTS_B", file=sys.stderr)
        return 2
    return compare(Path(argv[0]), Path(argv[1]))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
