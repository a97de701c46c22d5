"""The options several commands share (the workloads file, --stack, --strategy, --time-limit,
--format, --json) and the argparse types that validate option values as they are parsed.

Two kinds of refusal, each kept as the CLI has always said it. A value that is no number of the
kind asked (`finite`, `count`, `positive`, `share`) is argparse's: usage, `argument --flag: ...`,
exit 2. A value the command itself used to refuse after parsing (a time limit, a negative budget)
raises PlannerError from its type instead: argparse lets that through, and `planner.cli.app.main`
prints it as it printed it before, `error: --flag: ...`, exit 2. A stack name is still checked by
the command (check_stack says why).
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable, Sequence

from planner.errors import PlannerError
from planner.fmt import percent
from planner.inputs.workloads import MIN_UTILIZATION
from planner.planfile import is_stack_name

STRATEGIES = ["optimal", "per-workload"]

# --- types ------------------------------------------------------------------------------------


def finite(text: str) -> float:
    """A number option: nan and inf parse as floats but are no amount, rate or limit."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
    return value


def count(text: str) -> int:
    """A count option (tokens, GPUs, requests): a whole number of at least 1, so that 0 is
    refused rather than read as absent."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number of at least 1, not {text!r}")
    return value


def positive(text: str) -> float:
    """A rate option (tokens per second): a finite number more than 0."""
    value = finite(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be more than 0, not {text!r}")
    return value


def share(text: str) -> float:
    """A share of the hours: from the workloads file's least utilization (1 %: below it a pool
    idles and the busiest rate, the average over it, grows without bound) to 1."""
    value = finite(text)
    if not MIN_UTILIZATION <= value <= 1:
        raise argparse.ArgumentTypeError(
            f"must be from {MIN_UTILIZATION:g} to 1 "
            f"(below {percent(MIN_UTILIZATION, 0)} a pool idles), "
            f"not {text!r}"
        )
    return value


def seconds(text: str) -> float:
    """--time-limit: a finite number of seconds more than 0."""
    value = finite(text)
    if value <= 0:
        raise PlannerError.single("--time-limit", "", "must be a positive number of seconds")
    return value


def not_negative(flag: str) -> Callable[[str], float]:
    """The type of a limit (USD, percent) given as FLAG: a finite number, 0 or more."""

    def limit(text: str) -> float:
        value = finite(text)
        if value < 0:
            raise PlannerError.single(flag, "", f"{value:g} is negative")
        return value

    return limit


# --- options ----------------------------------------------------------------------------------


def add_workloads(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("workloads", metavar="WORKLOADS", help="the workloads YAML file")


def add_stack(parser: argparse._ActionsContainer, help: str, default: str | None = None) -> None:
    """--stack, whose name the command checks (check_stack) when it runs, not the parser: the
    parser also reads the workflow's command lines, where the stack is "$STACK"
    (tests/test_cli.py)."""
    parser.add_argument("--stack", default=default, help=help)


def check_stack(stack: str) -> None:
    """A name Pulumi takes for a stack, and a directory name under plans/ ("." and ".." are
    refused: they would write the plan into plans/ itself or the project's root)."""
    if not is_stack_name(stack):
        raise PlannerError.single(
            "--stack", "", f"{stack!r} is not a stack name (letters, digits, '-', '_', '.')"
        )


def add_strategy(parser: argparse.ArgumentParser, help: str) -> None:
    parser.add_argument("--strategy", choices=STRATEGIES, default="optimal", help=help)


def add_time_limit(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--time-limit",
        type=seconds,
        metavar="SECONDS",
        help="stop the optimizer after this long (default: planner/data/optimizer.yaml's "
        "time_limit_s) and plan the best assignment found; the plan states how far from the "
        "optimum it may be (the solver's proven bound). A solve that reaches its gap first is "
        "byte-identical on a rerun; one the limit stops may differ",
    )


def add_format(
    parser: argparse._ActionsContainer,
    choices: Sequence[str],
    help: str,
    default: str | None = None,
) -> None:
    parser.add_argument("--format", choices=choices, default=default, help=help)


def add_json(parser: argparse._ActionsContainer, help: str = "print JSON instead of text") -> None:
    parser.add_argument("--json", action="store_true", help=help)
