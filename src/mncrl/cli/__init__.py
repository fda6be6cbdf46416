"""`mncrl` command line: one subcommand per module in this package.

Each subcommand module exposes ``add_parser(subparsers)`` (registering its flags and setting
``func``) and is listed in ``COMMANDS``. Errors of type :class:`~mncrl.errors.MncrlError`
become one line on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from mncrl.errors import MncrlError

COMMANDS = ["simulate", "fit", "evaluate", "check_design", "extrapolate"]


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # argparse's own usage errors: one line, exit 2
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser of every subcommand, or only of ``command`` (e.g. ``"check-design"``) when it
    names one: a command imports only its own module (``mncrl fit`` not the simulator's)."""
    parser = _Parser(prog="mncrl", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(
        dest="command",
        required=True,
        parser_class=_Parser,
        metavar="{" + ",".join(c.replace("_", "-") for c in COMMANDS) + "}",
    )
    chosen = {c.replace("_", "-"): c for c in COMMANDS}.get(command)
    for name in [chosen] if chosen else COMMANDS:
        try:
            module = importlib.import_module(f"mncrl.cli.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"mncrl.cli.{name}":
                continue
            raise
        module.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run ``mncrl ARGV`` and return its exit code.

    Without ``argv`` this is the program (the `mncrl` script, ``python -m mncrl``): it reads
    sys.argv and ends the process itself, see :func:`_exit`.
    """
    program = argv is None
    argv = sys.argv[1:] if program else list(argv)
    parser = build_parser(argv[0] if argv else None)
    args = parser.parse_args(argv)
    try:
        code = int(args.func(args) or 0)
    except MncrlError as exc:
        print(f"mncrl {args.command}: error: {exc}", file=sys.stderr)
        code = 2
    except KeyboardInterrupt:
        print(f"mncrl {args.command}: interrupted", file=sys.stderr)
        code = 130
    return _exit(code) if program else code


def _exit(code: int) -> int:
    """End the process with ``code`` once stdout and stderr are flushed, skipping the
    interpreter's teardown (0.2-0.6 s once JAX is loaded: its thread pools, device buffers and
    thousands of objects). Nothing is left to do: output files are complete (written
    atomically) and compiled programs are in the cache before they run. When flushing fails
    (e.g. a closed pipe) the code is returned and Python exits as usual."""
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except OSError:
        return code
    os._exit(code)


if __name__ == "__main__":
    sys.exit(main())
