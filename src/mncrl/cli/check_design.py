"""`mncrl check-design`: is a set of interventions identifiable (Assumption 4), and which extra
environments would make it so.

FILE is a JSON or YAML list of target lists, one per environment, with 0-based latent indices,
e.g. ``[[0, 1], [0, 2], [1, 2]]`` (an empty list is an observational environment). Exit code
0 for a valid file whether or not the design is identifiable (1 with ``--strict`` when it is
not); 2 for a bad file or bad arguments (one line on stderr).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from mncrl.errors import MncrlError


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "check-design",
        help="check a design (list of target lists) against Assumption 4 and propose repairs",
        description="Read a design -- a JSON or YAML list of target lists, one per "
        "environment, 0-based latent indices, e.g. [[0, 1], [0, 2], [1, 2]] -- and "
        "report whether it satisfies Assumption 4 (every ordered pair of latents "
        "(j, i) is separated by an environment that intervenes on j and not on i). "
        "When it does not, list the unseparated pairs, the latents that are still "
        "recoverable on their own, and extra environments that repair the design, "
        "found by a greedy set cover (not guaranteed minimal).",
        epilog="Exit codes: 0 valid file (identifiable or not), 1 not identifiable with "
        "--strict, 2 unreadable or malformed file / bad arguments. Docs: docs/planning.md.",
    )
    p.add_argument(
        "file",
        metavar="FILE",
        help="design file (.json, .yaml/.yml; other names: JSON, else YAML); - = stdin",
    )
    p.add_argument(
        "--latent-dim",
        type=_positive_int,
        default=None,
        metavar="D",
        help="number of latents d (default: largest index + 1); every index must be < D",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    p.add_argument(
        "--strict", action="store_true", help="exit with code 1 when the design is not identifiable"
    )
    p.set_defaults(func=run)


def _positive_int(text: str) -> int:
    import argparse

    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1, got {value}")
    return value


def read_design(path: str) -> list[list[int]]:
    """The list of target lists in ``path`` (``-`` = stdin); MncrlError with one line else."""
    if path == "-":
        text, name = sys.stdin.read(), "<stdin>"
    else:
        p = Path(path)
        if not p.is_file():
            raise MncrlError(f"design file not found: {path}")
        try:
            text = p.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise MncrlError(f"cannot read {path}: {exc}") from None
        name = path
    return validate_design(_parse(text, name), name)


def _parse(text: str, name: str):
    suffix = Path(name).suffix.lower()
    if suffix in (".yaml", ".yml"):
        return _parse_yaml(text, name)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        if suffix == ".json":
            raise MncrlError(
                f"{name} is not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})"
            ) from None
    return _parse_yaml(text, name)


def _parse_yaml(text: str, name: str):
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        loc = f" (line {where.line + 1}, column {where.column + 1})" if where else ""
        problem = getattr(exc, "problem", None) or "syntax error"
        raise MncrlError(f"{name} is not valid JSON or YAML: {problem}{loc}") from None


def validate_design(data, name: str = "design") -> list[list[int]]:
    """Check that ``data`` is a list of lists of distinct non-negative integers."""
    shape = "a list of target lists, e.g. [[0, 1], [2]]"
    if not isinstance(data, list):
        raise MncrlError(f"{name}: expected {shape}, got {_kind(data)}")
    design = []
    for k, env in enumerate(data):
        if not isinstance(env, list):
            raise MncrlError(
                f"{name}: environment {k} must be a list of latent indices, got {_kind(env)}"
            )
        for v in env:
            if isinstance(v, bool) or not isinstance(v, int):
                raise MncrlError(
                    f"{name}: environment {k}: latent indices must be integers, got {v!r}"
                )
            if v < 0:
                raise MncrlError(f"{name}: environment {k}: latent indices must be >= 0, got {v}")
        if len(set(env)) != len(env):
            dup = next(v for v in env if env.count(v) > 1)
            raise MncrlError(f"{name}: environment {k} lists latent {dup} more than once")
        design.append(sorted(env))
    return design


def _kind(value) -> str:
    return "nothing (empty file)" if value is None else f"{type(value).__name__} {value!r}"[:80]


def format_text(check) -> str:
    """The human-readable report (first line: 'identifiable' or 'not identifiable: ...')."""
    lines = []
    if check.identifiable:
        lines.append(
            f"identifiable: the {check.n_environments} environments satisfy "
            f"Assumption 4 for d = {check.d} (every ordered pair of latents is "
            f"separated)"
        )
        return "\n".join(lines) + "\n"
    pairs = ", ".join(f"({j},{i})" for j, i in check.unseparated)
    lines.append(
        f"not identifiable: {len(check.unseparated)} unseparated ordered pair(s) "
        f"(j,i) -- no environment intervenes on j without i: {pairs}"
    )
    lines.append(f"design: {check.n_environments} environment(s), d = {check.d} latents")
    rec = ", ".join(map(str, check.recoverable)) if check.recoverable else "none"
    lines.append(f"latents still recoverable on their own: {rec}")
    n = len(check.proposed_additions)
    bound = (
        f"a lower bound is {check.lower_bound}, so this proposal is minimal"
        if n == check.lower_bound
        else f"a lower bound is {check.lower_bound}; greedy, so not guaranteed minimal"
    )
    lines.append(
        f"proposed additions (greedy set cover over the unseparated pairs): "
        f"{n} environment(s); {bound}"
    )
    lines += [f"  {list(t)}" for t in check.proposed_additions]
    lines.append("with these additions the design satisfies Assumption 4")
    return "\n".join(lines) + "\n"


def run(args) -> int:
    from mncrl.planning import check_design

    design = read_design(args.file)
    d = args.latent_dim
    top = max((v for env in design for v in env), default=-1)
    if d is not None and top >= d:
        raise MncrlError(
            f"{args.file}: latent index {top} out of range for --latent-dim {d} "
            f"(indices are 0-based)"
        )
    if d is None and top < 0:
        raise MncrlError(f"{args.file}: the design names no latent; give --latent-dim")
    check = check_design(design, top + 1 if d is None else d)
    if args.json:
        sys.stdout.write(json.dumps(check.to_dict()) + "\n")
    else:
        sys.stdout.write(format_text(check))
    return 1 if args.strict and not check.identifiable else 0
