"""`planner`'s entry point: the parser built from the command modules (one module per command,
each registering its subparser and holding its run function), and `main`, which runs a command
and turns the planner's errors into a message and an exit status."""

from __future__ import annotations

import argparse
import gc
import sys
from collections.abc import Callable, Sequence

from planner.cli import (
    crossover,
    diff,
    explain,
    plan,
    preview,
    schema,
    tco,
    throughput,
    verify,
)
from planner.cli.project import check_working_directory
from planner.cli.version import VersionAction
from planner.errors import PlannerError, WarningsFailed

# `planner --help`'s description (kept as it reads: its text is part of the CLI).
DESCRIPTION = "`planner`: plan, explain, tco and schema. Bad input exits 2 with one clear message."
# In the order `planner --help` lists them.
COMMANDS = (plan, explain, tco, throughput, preview, verify, diff, crossover, schema)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="planner", description=DESCRIPTION)
    parser.add_argument("--version", action=VersionAction, help="print the version")
    sub = parser.add_subparsers(
        dest="command", required=True, metavar="COMMAND", help="the command"
    )
    for command in COMMANDS:
        command.register(sub)
    return parser


def _refused(exc: PlannerError) -> int:
    for line in exc.render().splitlines():
        print(f"error: {line}", file=sys.stderr)
    return exc.exit_code


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except PlannerError as exc:  # an option's type refused its value (see options.py)
        return _refused(exc)
    func: Callable[[argparse.Namespace], int] = args.func
    # A run builds a large acyclic object graph and exits: reference counting frees what it
    # drops, and the cyclic collector would only re-scan every plan object again and again
    # (a third of the run at 1,000 workloads). It is switched back on for callers in-process.
    collecting = gc.isenabled()
    gc.disable()
    try:
        check_working_directory()
        return func(args)
    except PlannerError as exc:
        return _refused(exc)
    except WarningsFailed as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # the reader stopped early (`planner plan ... | head`)
        sys.stderr.close()
        return 0
    finally:
        if collecting:
            gc.enable()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
