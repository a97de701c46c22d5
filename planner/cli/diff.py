"""`planner diff BASE HEAD`: what a change does to the plan, as a pull-request comment (or JSON),
and the budget and perimeter gates that fail the check."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from planner.catalog import default_catalog
from planner.cli import options
from planner.errors import PlannerError


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    diff = commands.add_parser(
        "diff", help="what a change does to the plan: a pull-request comment, and a budget gate"
    )
    diff.add_argument("base", metavar="BASE", help="plan.json, or a directory of plans")
    diff.add_argument("head", metavar="HEAD", help="plan.json, or a directory of plans")
    options.add_format(
        diff,
        choices=["markdown", "json"],
        default="markdown",
        help="markdown (default): the pull-request comment; json: everything",
    )
    diff.add_argument(
        "--fail-on-increase-pct",
        type=options.not_negative("--fail-on-increase-pct"),
        metavar="P",
        help="exit 1 when the monthly estimate rises more than P percent",
    )
    diff.add_argument(
        "--fail-above-usd",
        type=options.not_negative("--fail-above-usd"),
        metavar="X",
        help="exit 1 when the monthly estimate is above X USD",
    )
    diff.add_argument(
        "--fail-on-verify",
        action="store_true",
        help="exit 1 when HEAD fails `planner verify` (its perimeter or a security rule); the "
        "comment says so at the top",
    )
    diff.add_argument(
        "--fail-on-weaker-perimeter",
        action="store_true",
        help="exit 1 when a workload's perimeter got weaker (e.g. technical -> contractual "
        "after its data was downgraded), even on purpose",
    )
    diff.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from planner.diff.compare import diff_plans, load_plans
    from planner.render.diff_report import render_json, render_markdown

    base, head = load_plans(Path(args.base)), load_plans(Path(args.head))
    if not head:
        # An empty BASE is a project's first plan; an empty HEAD is a plan that is not there
        # (a failed or misdirected `planner plan`), not every workload removed.
        raise PlannerError.single(
            args.head, "", "no plan.json here or in its stack directories: HEAD must hold a plan"
        )
    diff = diff_plans(
        base, head, default_catalog(), args.fail_on_increase_pct, args.fail_above_usd,
        args.fail_on_verify, args.fail_on_weaker_perimeter,
    )  # fmt: skip
    print(render_json(diff) if args.format == "json" else render_markdown(diff), end="")
    if diff.gate:
        print(f"budget gate failed: {'; '.join(diff.gate)}", file=sys.stderr)
    if diff.perimeter_gate:
        print(f"perimeter gate failed: {'; '.join(diff.perimeter_gate)}", file=sys.stderr)
    return 1 if diff.failed else 0
