"""Command line of the experiment engine (what the Snakemake rules call)::

    python -m mncrl.experiments run --spec JSON_OR_@FILE --out CELL.csv --info CELL.json
    python -m mncrl.experiments aggregate CELL.csv ... --spec JSON --out metrics.csv \\
        --summary summary.csv
    python -m mncrl.experiments table NAME metrics.csv --spec JSON --out NAME.csv
    python -m mncrl.experiments cells CONFIG.yaml [--experiment NAME]

``--spec`` of ``run`` is a cell spec (:func:`mncrl.experiments.cell_spec`), that of
``aggregate`` and ``table`` an experiment spec (:func:`mncrl.experiments.experiment_spec`).
Errors: one line on stderr, exit code 2, no output file.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from mncrl.errors import MncrlError
from mncrl.threads import limit_xla_threads

REQUIRED = {
    "run": ("kind", "experiment", "cell", "scenario", "estimators", "seeds"),
    "aggregate": ("kind", "experiment"),
    "table": ("kind", "experiment"),
}


def load_spec(text: str, command: str) -> dict:
    """A spec from JSON text or ``@FILE``; MncrlError when it is not valid or misses keys."""
    if text.startswith("@"):
        path = Path(text[1:])
        if not path.exists():
            raise MncrlError(f"spec file not found: {path}")
        text = path.read_text()
    try:
        spec = json.loads(text)
    except json.JSONDecodeError as exc:
        raise MncrlError(f"--spec is not valid JSON: {exc}") from None
    missing = [key for key in REQUIRED[command] if key not in spec]
    if missing:
        raise MncrlError(f"--spec misses the key '{missing[0]}'")
    return spec


def _cmd_run(args) -> int:
    from mncrl import experiments
    from mncrl.experiments.tables import write_json, write_table

    spec = load_spec(args.spec, "run")
    frame, info = experiments.run_cell(spec, progress=args.progress)
    if args.info:
        write_json(info, args.info)
    write_table(frame, args.out)
    statuses = {}
    for record in info["fits"]:
        statuses[record["status"]] = statuses.get(record["status"], 0) + 1
    print(
        f"{spec['experiment']}/{spec['cell']}: {len(frame)} rows, {len(spec['seeds'])} seeds, "
        f"{len(spec['estimators'])} estimators; fits: {statuses}"
    )
    return 0


def _cmd_aggregate(args) -> int:
    from mncrl import experiments
    from mncrl.experiments.tables import concat, summarise, write_table

    spec = load_spec(args.spec, "aggregate")
    frame = experiments.aggregate(concat(args.tables), spec)
    write_table(frame, args.out)
    if args.summary:
        write_table(summarise(frame), args.summary)
    print(f"{args.out}: {len(frame)} rows from {len(args.tables)} cells")
    return 0


def _cmd_table(args) -> int:
    from mncrl import experiments
    from mncrl.experiments.tables import read_table, write_table

    spec = load_spec(args.spec, "table")
    frame = experiments.derived_table(args.name, read_table(args.metrics), spec)
    write_table(frame, args.out)
    print(f"{args.out}: {len(frame)} rows")
    return 0


def _cmd_cells(args) -> int:
    from mncrl import config as config_mod
    from mncrl import experiments

    config = config_mod.load(args.config)
    names = [args.experiment] if args.experiment else experiments.names(config)
    for name in names:
        for cell in experiments.cells(config, name):
            print(f"{name}\t{cell.id}\t{json.dumps(cell.point)}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m mncrl.experiments", description="Run, aggregate and list experiment cells."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run one cell (all its problems, seeds and estimators)")
    run.add_argument("--spec", required=True, help="the cell spec as JSON, or @FILE")
    run.add_argument("--out", required=True, help="tidy metrics table (.csv or .parquet)")
    run.add_argument("--info", help="JSON sidecar: spec, per-fit status and info, timings")
    run.add_argument("--progress", action="store_true", help="print progress to stderr")
    run.set_defaults(func=_cmd_run)
    agg = sub.add_parser("aggregate", help="cell tables -> the experiment's metrics table")
    agg.add_argument("tables", nargs="+", help="cell tables, in order")
    agg.add_argument("--spec", required=True, help="the experiment spec as JSON, or @FILE")
    agg.add_argument("--out", required=True, help="experiment table (.csv or .parquet)")
    agg.add_argument("--summary", help="mean/SE/n per cell x estimator x metric")
    agg.set_defaults(func=_cmd_aggregate)
    table = sub.add_parser("table", help="a derived table of the experiment's kind")
    table.add_argument("name", help="table name (e.g. phase, designs for coverage)")
    table.add_argument("metrics", help="the experiment's metrics table")
    table.add_argument("--spec", required=True, help="the experiment spec as JSON, or @FILE")
    table.add_argument("--out", required=True, help="output table (.csv or .parquet)")
    table.set_defaults(func=_cmd_table)
    cells = sub.add_parser("cells", help="list the cells of a config file's experiments")
    cells.add_argument("config", help="a YAML config (e.g. config/config.yaml)")
    cells.add_argument("--experiment", help="only this experiment")
    cells.set_defaults(func=_cmd_cells)
    return parser


def main(argv: list[str] | None = None) -> int:
    limit_xla_threads()  # before anything imports jax
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except MncrlError as exc:
        print(f"mncrl.experiments {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
